import Foundation
import Torch

/// The metrics of one epoch by name, e.g. "train_loss", "elbo_validation".
public typealias EpochMetrics = [String: Double]

/// Stop when a monitored metric has not improved for `patience` epochs (Lightning's
/// `EarlyStopping`, which scvi-tools uses: improvement means beating the best value by
/// more than `minDelta`).
public struct EarlyStopping: Sendable, Codable, Equatable {
  public enum Mode: String, Sendable, Codable { case min, max }
  public var monitor: String
  public var mode: Mode
  public var patience: Int
  public var minDelta: Double

  /// scvi-tools' defaults: `elbo_validation`, min, patience 45, min_delta 0.
  public init(monitor: String = "elbo_validation", mode: Mode = .min, patience: Int = 45, minDelta: Double = 0) {
    self.monitor = monitor
    self.mode = mode
    self.patience = patience
    self.minDelta = minDelta
  }

  func improves(_ value: Double, on best: Double?) -> Bool {
    guard let best else { return true }
    return mode == .min ? value < best - minDelta : value > best + minDelta
  }
}

/// A learning-rate schedule stepped once per epoch.
public enum LearningRateSchedule {
  /// Multiply the rate by the scheduler's factor when `monitor` plateaus.
  case plateau(ReduceLROnPlateau, monitor: String)
  case step(StepLR)
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
  case invalidOptions(String)
  /// A metric became NaN or infinite; the module holds the last good state again.
  case diverged(epoch: Int, metric: String, checkpoint: String?)
  case unknownMetric(String, available: [String])

  public var description: String {
    switch self {
    case .invalidOptions(let message): return "training: \(message)"
    case .diverged(let epoch, let metric, let checkpoint):
      let kept = checkpoint.map { "; the last good state was saved to \($0)" } ?? ""
      return "training diverged at epoch \(epoch + 1): \(metric) is not finite. The model was restored to the state after epoch \(epoch)\(kept). Try a lower learning rate."
    case .unknownMetric(let name, let available):
      return "training: no metric '\(name)' (the epoch reports \(available.sorted().joined(separator: ", ")))"
    }
  }
}

/// Per-epoch metrics, in order. `csv()` writes scvi-tools-style history columns.
public struct TrainingHistory: Sendable, Codable, Equatable {
  public private(set) var epochs: [EpochMetrics] = []

  public init(epochs: [EpochMetrics] = []) { self.epochs = epochs }

  mutating func append(_ metrics: EpochMetrics) { epochs.append(metrics) }

  /// Every metric name, sorted.
  public var columns: [String] { Set(epochs.flatMap(\.keys)).sorted() }

  /// The values of one metric, epoch by epoch (nil where an epoch lacks it).
  public func values(_ name: String) -> [Double?] { epochs.map { $0[name] } }

  /// The last epoch's value of a metric.
  public func last(_ name: String) -> Double? { epochs.last?[name] }

  /// `epoch,metric…` with one row per epoch (0-based, as Lightning counts).
  public func csv() -> String {
    let names = columns
    var lines = [(["epoch"] + names).joined(separator: ",")]
    for (epoch, metrics) in epochs.enumerated() {
      lines.append(([String(epoch)] + names.map { metrics[$0].map { "\($0)" } ?? "" }).joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
  }
}

/// The epoch loop shared by every model: runs an epoch body, records its metrics, prints a
/// progress line, steps a learning-rate schedule, stops early, and guards against
/// divergence by keeping the last good state in memory (and on disk, when a checkpoint path
/// is set, if training diverges).
public final class Trainer {
  public struct Options {
    public var maxEpochs: Int
    public var earlyStopping: EarlyStopping?
    public var schedule: LearningRateSchedule?
    /// Where the last good state is written as safetensors when training diverges.
    public var checkpoint: URL?
    /// Print a progress line to standard error.
    public var progress: Bool
    /// The name in the progress line, e.g. "scvi".
    public var label: String
    /// Called after each completed epoch (0-based) has been recorded, with the history of the
    /// whole run (a resumed run's earlier epochs too), e.g. to write a checkpoint.
    public var onEpochEnd: ((_ epoch: Int, _ history: TrainingHistory) throws -> Void)?

    public init(maxEpochs: Int, earlyStopping: EarlyStopping? = nil, schedule: LearningRateSchedule? = nil,
                checkpoint: URL? = nil, progress: Bool = false, label: String = "train") {
      self.maxEpochs = maxEpochs
      self.earlyStopping = earlyStopping
      self.schedule = schedule
      self.checkpoint = checkpoint
      self.progress = progress
      self.label = label
    }
  }

  public let options: Options
  public private(set) var history = TrainingHistory()
  /// Why the loop ended: "max_epochs" or "early_stopping".
  public private(set) var stopReason = "max_epochs"
  /// Wall-clock seconds spent in `fit`, and in each completed epoch.
  public private(set) var seconds = 0.0
  public private(set) var epochSeconds: [Double] = []
  private var stopRequest: String?

  /// Ends `fit` after the running epoch (its metrics are kept), recording `reason` as the
  /// stop reason, e.g. "max_steps".
  public func stopAfterCurrentEpoch(reason: String) { stopRequest = reason }

  public init(options: Options) throws {
    guard options.maxEpochs > 0 else { throw TrainingError.invalidOptions("maxEpochs must be positive, got \(options.maxEpochs)") }
    if let stopping = options.earlyStopping, stopping.patience < 1 {
      throw TrainingError.invalidOptions("early-stopping patience must be at least 1, got \(stopping.patience)")
    }
    self.options = options
  }

  /// Runs `epoch(e)` for e = 0, 1, … and returns the history. `epoch` trains one pass and
  /// returns its metrics (training and, if any, validation).
  ///
  /// `resuming` is the history of a run being continued: its epochs are not run again, and
  /// early stopping counts from its values (the returned history holds the new epochs only).
  @discardableResult
  public func fit(_ module: Module, resuming prior: TrainingHistory = TrainingHistory(),
                  epoch body: (Int) throws -> EpochMetrics) throws -> TrainingHistory {
    let start = Date()
    defer { seconds = Date().timeIntervalSince(start) }
    var lastGood = Self.snapshot(module)
    var best: Double?
    var badEpochs = 0
    if let stopping = options.earlyStopping {
      for value in prior.values(stopping.monitor).compactMap({ $0 }) {
        if stopping.improves(value, on: best) { best = value; badEpochs = 0 } else { badEpochs += 1 }
      }
      if badEpochs >= stopping.patience {
        stopReason = "early_stopping"
        return history
      }
    }
    for epoch in prior.epochs.count..<Swift.max(options.maxEpochs, prior.epochs.count) {
      let epochStart = Date()
      let metrics = try body(epoch)
      if let bad = metrics.keys.sorted().first(where: { !metrics[$0]!.isFinite }) {
        try module.loadStateDict(lastGood)
        var saved: String?
        if let url = options.checkpoint {
          try Safetensors.write(lastGood, metadata: ["epoch": String(epoch)], to: url)
          saved = url.path
        }
        finishProgressLine()
        throw TrainingError.diverged(epoch: epoch, metric: bad, checkpoint: saved)
      }
      history.append(metrics)
      epochSeconds.append(Date().timeIntervalSince(epochStart))
      lastGood = Self.snapshot(module)
      try stepSchedule(metrics)
      try options.onEpochEnd?(epoch, TrainingHistory(epochs: prior.epochs + history.epochs))
      if options.progress { report(epoch: epoch, metrics: metrics, seconds: Date().timeIntervalSince(epochStart)) }
      if let reason = stopRequest {
        stopReason = reason
        break
      }

      if let stopping = options.earlyStopping {
        guard let value = metrics[stopping.monitor] else {
          throw TrainingError.unknownMetric(stopping.monitor, available: Array(metrics.keys))
        }
        if stopping.improves(value, on: best) {
          best = value
          badEpochs = 0
        } else {
          badEpochs += 1
          if badEpochs >= stopping.patience {
            stopReason = "early_stopping"
            break
          }
        }
      }
    }
    finishProgressLine()
    return history
  }

  private func stepSchedule(_ metrics: EpochMetrics) throws {
    switch options.schedule {
    case .plateau(let scheduler, let monitor):
      guard let value = metrics[monitor] else { throw TrainingError.unknownMetric(monitor, available: Array(metrics.keys)) }
      scheduler.step(value)
    case .step(let scheduler): scheduler.step()
    case nil: break
    }
  }

  /// A detached copy of every parameter and buffer.
  private static func snapshot(_ module: Module) -> StateDict {
    StateDict(module.stateDict().map { ($0.key, $0.value.detach().clone()) })
  }

  // MARK: - Progress

  private var progressOpen = false
  private static let isTerminal = isatty(STDERR_FILENO) != 0

  private func report(epoch: Int, metrics: EpochMetrics, seconds: Double) {
    let total = options.maxEpochs
    let shown = metrics.keys.filter { $0.hasSuffix("loss") || $0.hasPrefix("elbo") || $0.contains("auroc") }.sorted()
    let values = shown.map { "\($0) \(String(format: "%.4g", metrics[$0]!))" }.joined(separator: "  ")
    let line = "\(options.label) epoch \(epoch + 1)/\(total)  \(values)  \(String(format: "%.2f", seconds)) s/epoch"
    if Self.isTerminal {
      FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
      progressOpen = true
    } else if epoch == 0 || (epoch + 1) % Swift.max(1, total / 10) == 0 || epoch + 1 == total {
      FileHandle.standardError.write(Data((line + "\n").utf8))
    }
  }

  private func finishProgressLine() {
    if progressOpen { FileHandle.standardError.write(Data("\n".utf8)) }
    progressOpen = false
  }
}
