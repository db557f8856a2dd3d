/// Dropout with probability `p`, active only in training mode.
public final class Dropout: Module, UnaryLayer {
  public let p: Double
  public init(_ p: Double = 0.5) {
    precondition(p >= 0 && p < 1, "Dropout: p must be in [0, 1)")
    self.p = p
  }
  public func callAsFunction(_ x: Tensor) -> Tensor { Functional.dropout(x, p: p, training: isTraining) }
}

public final class ReLU: Module, UnaryLayer {
  public override init() {}
  public func callAsFunction(_ x: Tensor) -> Tensor { x.relu() }
}

public final class GELU: Module, UnaryLayer {
  public let tanhApproximation: Bool
  public init(tanhApproximation: Bool = false) { self.tanhApproximation = tanhApproximation }
  public func callAsFunction(_ x: Tensor) -> Tensor { x.gelu(tanhApproximation: tanhApproximation) }
}

public final class LeakyReLU: Module, UnaryLayer {
  public let negativeSlope: Double
  public init(_ negativeSlope: Double = 0.01) { self.negativeSlope = negativeSlope }
  public func callAsFunction(_ x: Tensor) -> Tensor { x.leakyRelu(negativeSlope) }
}

public final class Identity: Module, UnaryLayer {
  public override init() {}
  public func callAsFunction(_ x: Tensor) -> Tensor { x }
}
