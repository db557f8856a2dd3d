import Foundation

/// A progress line for step-based training: every few seconds the step, the running loss and
/// the items (cells, tokens) per second since the last line, on standard error.
struct ThroughputMeter {
  let label: String
  let unit: String
  let totalSteps: Int
  let enabled: Bool
  /// Seconds between lines (more on a log file than on a terminal).
  let interval: Double
  private var items = 0
  private var seconds = 0.0
  private var lastLine = Date()
  private var open = false
  private static let isTerminal = isatty(STDERR_FILENO) != 0

  init(label: String, unit: String = "tokens", totalSteps: Int, enabled: Bool) {
    self.label = label
    self.unit = unit
    self.totalSteps = totalSteps
    self.enabled = enabled
    interval = Self.isTerminal ? 2 : 30
  }

  mutating func record(items n: Int, seconds s: Double, step: Int, epoch: Int, of epochs: Int, loss: Double) {
    guard enabled else { return }
    items += n
    seconds += s
    guard Date().timeIntervalSince(lastLine) >= interval else { return }
    let rate = Double(items) / max(seconds, 1e-9)
    let line = "\(label) step \(step)/\(totalSteps) (epoch \(epoch + 1)/\(epochs))  loss \(String(format: "%.4g", loss))  \(Int(rate.rounded())) \(unit)/s"
    FileHandle.standardError.write(Data((Self.isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
    open = Self.isTerminal
    (items, seconds, lastLine) = (0, 0, Date())
  }

  /// Ends an open terminal line.
  mutating func finish() {
    if open { FileHandle.standardError.write(Data("\n".utf8)) }
    open = false
  }
}
