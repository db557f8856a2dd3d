/// torch.nn.PReLU: max(0, x) + a·min(0, x) with a learnt slope `weight` ([numParameters], 0.25).
public final class PReLU: Module, UnaryLayer {
  public let weight: Tensor

  public init(numParameters: Int = 1, initialSlope: Double = 0.25) {
    weight = Tensor.full([numParameters], initialSlope)
    super.init()
    registerParameter("weight", weight)
  }

  /// With one slope it applies everywhere; with C slopes, to channel dim 1 of [N, C, …] as torch.
  public func callAsFunction(_ x: Tensor) -> Tensor {
    var slope = weight
    if weight.count > 1, x.rank > 1 {
      slope = weight.reshape([weight.count] + [Int](repeating: 1, count: x.rank - 2))
    }
    return x.relu() - slope * (-x).relu()
  }
}
