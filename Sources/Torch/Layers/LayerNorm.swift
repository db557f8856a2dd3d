/// Layer normalisation over the trailing `normalizedShape` dimensions (torch.nn.LayerNorm).
public final class LayerNorm: Module, UnaryLayer {
  public let normalizedShape: [Int]
  public let weight: Tensor?
  public let bias: Tensor?
  public let eps: Double

  public init(_ normalizedShape: [Int], eps: Double = 1e-5, elementwiseAffine: Bool = true, bias: Bool = true) {
    self.normalizedShape = normalizedShape
    self.eps = eps
    weight = elementwiseAffine ? Tensor.ones(normalizedShape) : nil
    self.bias = elementwiseAffine && bias ? Tensor.zeros(normalizedShape) : nil
    super.init()
    if let weight { registerParameter("weight", weight) }
    if let b = self.bias { registerParameter("bias", b) }
  }
  public convenience init(_ size: Int, eps: Double = 1e-5, elementwiseAffine: Bool = true) {
    self.init([size], eps: eps, elementwiseAffine: elementwiseAffine)
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    Functional.layerNorm(x, normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps)
  }
}
