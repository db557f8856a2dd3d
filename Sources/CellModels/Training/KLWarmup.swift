/// The KL weight during warm-up (scvi-tools' `_compute_kl_weight`): a linear ramp from
/// `minWeight` to `maxWeight` over `epochs` epochs (or, when `epochs` is nil, over `steps`
/// optimizer steps), then `maxWeight`.
public struct KLWarmup: Sendable, Codable, Equatable {
  public var epochs: Int?
  public var steps: Int?
  public var minWeight: Double
  public var maxWeight: Double

  /// scvi-tools' default: 400 epochs from 0 to 1.
  public init(epochs: Int? = 400, steps: Int? = nil, minWeight: Double = 0, maxWeight: Double = 1) {
    self.epochs = epochs
    self.steps = steps
    self.minWeight = minWeight
    self.maxWeight = maxWeight
  }

  public func weight(epoch: Int, step: Int) -> Double {
    let slope = maxWeight - minWeight
    if let epochs, epochs > 0 {
      if epoch < epochs { return slope * Double(epoch) / Double(epochs) + minWeight }
    } else if let steps, steps > 0 {
      if step < steps { return slope * Double(step) / Double(steps) + minWeight }
    }
    return maxWeight
  }
}
