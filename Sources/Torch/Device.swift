import CTorch

/// Where a tensor lives.
public enum Device: Equatable, Sendable, CustomStringConvertible {
  case cpu
  case cuda(Int)

  /// Parses "cpu", "cuda" or "cuda:N"; CUDA must be available.
  public init(parsing text: String) throws {
    let lower = text.lowercased()
    if lower == "cpu" { self = .cpu; return }
    guard lower == "cuda" || lower.hasPrefix("cuda:") else {
      throw TorchError.invalidArgument("unknown device '\(text)': use cpu, cuda or cuda:N")
    }
    let index = lower == "cuda" ? 0 : Int(lower.dropFirst(5))
    guard let index, index >= 0 else { throw TorchError.invalidArgument("bad CUDA index in '\(text)'") }
    guard Runtime.cudaAvailable else {
      throw TorchError.invalidArgument(
        "device '\(text)' requested but CUDA is not available: \(String(cString: ct_last_error()))")
    }
    guard index < Runtime.cudaDeviceCount else {
      throw TorchError.invalidArgument("device '\(text)' requested but only \(Runtime.cudaDeviceCount) CUDA devices exist")
    }
    self = .cuda(index)
  }

  var typeCode: Int32 {
    switch self {
    case .cpu: return Int32(CT_CPU)
    case .cuda: return Int32(CT_CUDA)
    }
  }
  var index: Int32 {
    switch self {
    case .cpu: return -1
    case .cuda(let i): return Int32(i)
    }
  }

  public var description: String {
    switch self {
    case .cpu: return "cpu"
    case .cuda(let i): return "cuda:\(i)"
    }
  }
}
