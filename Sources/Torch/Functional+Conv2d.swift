import CTorch

/// How the elements of a tensor lie in memory (torch.memory_format).
public enum MemoryFormat: Int32, Sendable {
  /// Row-major: [N, C, H, W] with W fastest.
  case contiguous = 0
  /// NHWC: channels fastest (4-dimensional tensors); oneDNN's convolutions, batch norm and
  /// pooling have kernels for it that need no reorder of the activations.
  case channelsLast = 1
}

extension Tensor {
  /// This tensor laid out in `format` (itself, with no copy, when it already is).
  public func contiguous(memoryFormat format: MemoryFormat) -> Tensor {
    withHandle { wrap(ct_contiguous_format($0, format.rawValue)) }
  }

  public func isContiguous(memoryFormat format: MemoryFormat) -> Bool {
    withHandle { ct_is_contiguous_format($0, format.rawValue) == 1 }
  }

  /// The largest value along `dim` and its index (the first on ties), as torch.max(x, dim); the
  /// gradient flows to that one element, as in max-pooling.
  public func max(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
    var values: OpaquePointer?
    var indices: OpaquePointer?
    withHandle { check(ct_max_dim($0, Int64(dim), keepDim ? 1 : 0, &values, &indices)) }
    return (wrap(values), wrap(indices))
  }
}

extension Functional {
  /// x: [N, C_in, H, W], weight: [C_out, C_in/groups, kH, kW]; stride, padding and dilation
  /// are (H, W). The output keeps x's memory format (channels-last in, channels-last out).
  public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                            padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
    let s = [Int64(stride.0), Int64(stride.1)]
    let p = [Int64(padding.0), Int64(padding.1)]
    let d = [Int64(dilation.0), Int64(dilation.1)]
    return withExtendedLifetime((x, weight, bias)) {
      wrap(ct_conv2d(x.handle, weight.handle, bias?.handle, s, p, d, Int64(groups)))
    }
  }

  /// Max-pooling over [N, C, H, W]; kernel, stride (default: the kernel) and padding are (H, W).
  public static func maxPool2d(_ x: Tensor, kernelSize: (Int, Int), stride: (Int, Int)? = nil,
                               padding: (Int, Int) = (0, 0), ceilMode: Bool = false) -> Tensor {
    let k = [Int64(kernelSize.0), Int64(kernelSize.1)]
    let s = stride.map { [Int64($0.0), Int64($0.1)] } ?? k
    let p = [Int64(padding.0), Int64(padding.1)]
    return x.withHandle { wrap(ct_max_pool2d($0, k, s, p, ceilMode ? 1 : 0)) }
  }
}
