/// Errors of scGPT: a bad vocabulary, configuration or input, a checkpoint that does not match.
public enum ScGPTError: Error, CustomStringConvertible, Equatable {
  case vocabulary(String)
  case invalidConfig(String)
  case invalidInput(String)
  case checkpoint(String)

  public var description: String {
    switch self {
    case .vocabulary(let m): return "scGPT vocabulary: \(m)"
    case .invalidConfig(let m): return "scGPT configuration: \(m)"
    case .invalidInput(let m): return "scGPT input: \(m)"
    case .checkpoint(let m): return "scGPT checkpoint: \(m)"
    }
  }
}
