/// y = x·Wᵀ + b, initialised as torch.nn.Linear (uniform ±1/√in for weight and bias).
public final class Linear: Module, UnaryLayer {
  public let weight: Tensor
  public let bias: Tensor?

  public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
    let bound = 1 / Double(inFeatures).squareRoot()
    weight = Tensor.uniform([outFeatures, inFeatures], bound: bound)
    self.bias = bias ? Tensor.uniform([outFeatures], bound: bound) : nil
    super.init()
    registerParameter("weight", weight)
    if let b = self.bias { registerParameter("bias", b) }
  }

  public func callAsFunction(_ x: Tensor) -> Tensor { Functional.linear(x, weight: weight, bias: bias) }
}

extension Tensor {
  /// Uniform in [−bound, bound).
  static func uniform(_ shape: [Int], bound: Double) -> Tensor {
    withNoGrad { (Tensor.rand(shape) * (2 * bound)) - bound }
  }
}
