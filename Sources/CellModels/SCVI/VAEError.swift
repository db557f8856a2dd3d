/// Errors of the VAE networks: a bad configuration or input that does not fit the network.
public enum VAEError: Error, CustomStringConvertible, Equatable {
  case invalidConfig(String)
  case invalidInput(String)

  public var description: String {
    switch self {
    case .invalidConfig(let m): return "VAE configuration: \(m)"
    case .invalidInput(let m): return "VAE input: \(m)"
    }
  }
}
