/// Errors of scBasset: a bad configuration, input that does not fit the model, a checkpoint
/// that does not match.
public enum SCBassetError: Error, CustomStringConvertible, Equatable {
  case invalidConfig(String)
  case invalidInput(String)
  case checkpoint(String)

  public var description: String {
    switch self {
    case .invalidConfig(let m): return "scBasset configuration: \(m)"
    case .invalidInput(let m): return "scBasset input: \(m)"
    case .checkpoint(let m): return "scBasset checkpoint: \(m)"
    }
  }
}

extension SCBassetError {
  /// `error` as a checkpoint error naming `file` (one "scBasset checkpoint:" prefix, not two).
  static func checkpoint(_ file: String, _ error: Error) -> SCBassetError {
    if case .checkpoint(let message)? = error as? SCBassetError { return .checkpoint("\(file): \(message)") }
    return .checkpoint("\(file): \(error)")
  }
}
