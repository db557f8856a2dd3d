import CTorch

/// How a loss reduces over elements (torch's `reduction=`).
public enum Reduction: Int32, Sendable {
  case none = 0, mean = 1, sum = 2
}

/// Stateless neural-network functions (torch.nn.functional).
public enum Functional {
  public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    withExtendedLifetime((x, weight, bias)) { wrap(ct_linear(x.handle, weight.handle, bias?.handle)) }
  }

  /// x: [N, C_in, L], weight: [C_out, C_in/groups, K].
  public static func conv1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, groups: Int = 1) -> Tensor {
    withExtendedLifetime((x, weight, bias)) {
      wrap(ct_conv1d(x.handle, weight.handle, bias?.handle, Int64(stride), Int64(padding), Int64(dilation),
                     Int64(groups)))
    }
  }

  public static func maxPool1d(_ x: Tensor, kernelSize: Int, stride: Int? = nil, padding: Int = 0,
                               ceilMode: Bool = false) -> Tensor {
    x.withHandle {
      wrap(ct_max_pool1d($0, Int64(kernelSize), Int64(stride ?? kernelSize), Int64(padding), ceilMode ? 1 : 0))
    }
  }

  public static func avgPool1d(_ x: Tensor, kernelSize: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    x.withHandle { wrap(ct_avg_pool1d($0, Int64(kernelSize), Int64(stride ?? kernelSize), Int64(padding))) }
  }

  /// Constant padding; `pad` lists (before, after) pairs starting from the last dimension.
  public static func pad(_ x: Tensor, _ pad: [Int], value: Double = 0) -> Tensor {
    let p = pad.map(Int64.init)
    return x.withHandle { wrap(ct_pad($0, p, Int32(p.count), value)) }
  }

  /// Batch normalisation; in training mode updates `runningMean`/`runningVar` in place.
  public static func batchNorm(_ x: Tensor, runningMean: Tensor?, runningVar: Tensor?, weight: Tensor?, bias: Tensor?,
                               training: Bool, momentum: Double = 0.1, eps: Double = 1e-5) -> Tensor {
    withExtendedLifetime((x, runningMean, runningVar, weight, bias)) {
      wrap(ct_batch_norm(x.handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle,
                         training ? 1 : 0, momentum, eps))
    }
  }

  public static func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?,
                               eps: Double = 1e-5) -> Tensor {
    let s = normalizedShape.map(Int64.init)
    return withExtendedLifetime((x, weight, bias)) {
      wrap(ct_layer_norm(x.handle, s, Int32(s.count), weight?.handle, bias?.handle, eps))
    }
  }

  public static func embedding(_ indices: Tensor, weight: Tensor, paddingIndex: Int? = nil) -> Tensor {
    withExtendedLifetime((indices, weight)) {
      wrap(ct_embedding(weight.handle, indices.handle, Int64(paddingIndex ?? -1)))
    }
  }

  /// Zeroes each element with probability p and scales the rest by 1 / (1 − p): torch's masks
  /// for the same seed, or with `Runtime.dropoutMasks = .fast` on CPU float32 our own
  /// generator's (`DropoutRandom`).
  public static func dropout(_ x: Tensor, p: Double, training: Bool) -> Tensor {
    guard training, p > 0 else { return x }
    guard p < 1, DropoutRandom.applies(x) else { return x.withHandle { wrap(ct_dropout($0, p, 1)) } }
    return x * DropoutRandom.mask(x.shape, keep: 1 - p)
  }

  public static func softmax(_ x: Tensor, dim: Int) -> Tensor { x.withHandle { wrap(ct_softmax($0, Int64(dim))) } }
  public static func logSoftmax(_ x: Tensor, dim: Int) -> Tensor {
    x.withHandle { wrap(ct_log_softmax($0, Int64(dim))) }
  }

  /// softmax(q·kᵀ·scale + mask)·v. A bool mask marks positions that may be attended (true);
  /// a float mask is added to the scores. `scale` defaults to 1/√E. With dropout and
  /// `Runtime.dropoutMasks = .fast` the steps are written out (libtorch's own fallback on CPU,
  /// with the fast masks).
  public static func scaledDotProductAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor? = nil,
                                               dropout: Double = 0, isCausal: Bool = false,
                                               scale: Double? = nil) -> Tensor {
    if dropout > 0, !isCausal, DropoutRandom.applies(q) {
      var scores = q.matmul(k.transpose(-2, -1)) * (scale ?? 1 / Double(q.size(-1)).squareRoot())
      if let mask { scores = mask.dtype == .bool ? scores.maskedFill(mask.logicalNot(), -.infinity) : scores + mask }
      return Functional.dropout(scores.softmax(dim: -1), p: dropout, training: true).matmul(v)
    }
    return withExtendedLifetime((q, k, v, mask)) {
      wrap(ct_scaled_dot_product_attention(q.handle, k.handle, v.handle, mask?.handle, dropout, isCausal ? 1 : 0,
                                           scale ?? 0))
    }
  }

  /// Cross-entropy from logits [N, C] and int64 class targets [N].
  public static func crossEntropy(_ logits: Tensor, _ target: Tensor, weight: Tensor? = nil,
                                  reduction: Reduction = .mean, ignoreIndex: Int = -100,
                                  labelSmoothing: Double = 0) -> Tensor {
    withExtendedLifetime((logits, target, weight)) {
      wrap(ct_cross_entropy(logits.handle, target.handle, weight?.handle, reduction.rawValue, Int64(ignoreIndex),
                            labelSmoothing))
    }
  }

  public static func binaryCrossEntropyWithLogits(_ logits: Tensor, _ target: Tensor, weight: Tensor? = nil,
                                                  posWeight: Tensor? = nil, reduction: Reduction = .mean) -> Tensor {
    withExtendedLifetime((logits, target, weight, posWeight)) {
      wrap(ct_bce_with_logits(logits.handle, target.handle, weight?.handle, posWeight?.handle, reduction.rawValue))
    }
  }

  public static func mseLoss(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    withExtendedLifetime((input, target)) { wrap(ct_mse_loss(input.handle, target.handle, reduction.rawValue)) }
  }
}

extension Tensor {
  public func softmax(dim: Int) -> Tensor { Functional.softmax(self, dim: dim) }
  public func logSoftmax(dim: Int) -> Tensor { Functional.logSoftmax(self, dim: dim) }
}
