/// Multiplies the learning rate by `gamma` every `stepSize` epochs (torch.optim.lr_scheduler.StepLR).
public final class StepLR {
  public let optimizer: any Optimizer
  public let stepSize: Int
  public let gamma: Double
  public private(set) var epoch = 0
  private let baseLearningRate: Double

  public init(_ optimizer: any Optimizer, stepSize: Int, gamma: Double = 0.1) {
    self.optimizer = optimizer
    self.stepSize = stepSize
    self.gamma = gamma
    baseLearningRate = optimizer.learningRate
  }

  /// Call once per epoch, after the optimizer's steps.
  public func step() {
    epoch += 1
    if epoch % stepSize == 0 { optimizer.learningRate *= gamma }
  }
}

/// Lowers the learning rate when a metric stops improving
/// (torch.optim.lr_scheduler.ReduceLROnPlateau, same defaults and rules).
public final class ReduceLROnPlateau {
  public enum Mode: Sendable { case min, max }
  public enum ThresholdMode: Sendable { case relative, absolute }

  public let optimizer: any Optimizer
  public let mode: Mode
  public let factor: Double
  public let patience: Int
  public let threshold: Double
  public let thresholdMode: ThresholdMode
  public let cooldown: Int
  public let minLearningRate: Double
  public let eps: Double
  public private(set) var best: Double
  public private(set) var badEpochs = 0
  private var cooldownCounter = 0

  public init(_ optimizer: any Optimizer, mode: Mode = .min, factor: Double = 0.1, patience: Int = 10,
              threshold: Double = 1e-4, thresholdMode: ThresholdMode = .relative, cooldown: Int = 0,
              minLearningRate: Double = 0, eps: Double = 1e-8) {
    precondition(factor < 1, "ReduceLROnPlateau: factor must be < 1")
    self.optimizer = optimizer
    self.mode = mode
    self.factor = factor
    self.patience = patience
    self.threshold = threshold
    self.thresholdMode = thresholdMode
    self.cooldown = cooldown
    self.minLearningRate = minLearningRate
    self.eps = eps
    best = mode == .min ? .infinity : -.infinity
  }

  private func isBetter(_ value: Double) -> Bool {
    switch (mode, thresholdMode) {
    case (.min, .relative): return value < best * (1 - threshold)
    case (.min, .absolute): return value < best - threshold
    case (.max, .relative): return value > best * (1 + threshold)
    case (.max, .absolute): return value > best + threshold
    }
  }

  /// Call once per epoch with the monitored metric.
  public func step(_ metric: Double) {
    if isBetter(metric) {
      best = metric
      badEpochs = 0
    } else {
      badEpochs += 1
    }
    if cooldownCounter > 0 {
      cooldownCounter -= 1
      badEpochs = 0
    }
    if badEpochs > patience {
      let old = optimizer.learningRate
      let new = Swift.max(old * factor, minLearningRate)
      if old - new > eps { optimizer.learningRate = new }
      cooldownCounter = cooldown
      badEpochs = 0
    }
  }
}
