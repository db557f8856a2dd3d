/// 1-D convolution over [N, C, L], initialised as torch.nn.Conv1d.
public final class Conv1d: Module, UnaryLayer {
  public let weight: Tensor
  public let bias: Tensor?
  public let stride: Int, padding: Int, dilation: Int, groups: Int

  public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
              dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
    precondition(inChannels % groups == 0 && outChannels % groups == 0, "Conv1d: channels must divide groups")
    let bound = 1 / Double(inChannels / groups * kernelSize).squareRoot()
    weight = Tensor.uniform([outChannels, inChannels / groups, kernelSize], bound: bound)
    self.bias = bias ? Tensor.uniform([outChannels], bound: bound) : nil
    self.stride = stride
    self.padding = padding
    self.dilation = dilation
    self.groups = groups
    super.init()
    registerParameter("weight", weight)
    if let b = self.bias { registerParameter("bias", b) }
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    Functional.conv1d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                      groups: groups)
  }
}
