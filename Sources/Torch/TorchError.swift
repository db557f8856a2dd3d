import CTorch

/// Errors thrown by the Torch layer. `.libtorch` carries libtorch's own message.
public enum TorchError: Error, CustomStringConvertible, Equatable {
  case libtorch(String)
  case invalidArgument(String)
  case io(String)
  case stateDict(String)

  public var description: String {
    switch self {
    case .libtorch(let m): return "libtorch: \(m)"
    case .invalidArgument(let m): return m
    case .io(let m): return m
    case .stateDict(let m): return "state dict: \(m)"
    }
  }
}

/// Collects the first libtorch failure inside `withTorchErrors`.
final class TorchErrorSink: @unchecked Sendable {
  var first: String?
}

enum TorchErrorScope {
  @TaskLocal static var sink: TorchErrorSink?
}

/// Runs `body`, turning any libtorch failure inside it into a thrown `TorchError.libtorch`.
///
/// Tensor operations do not throw individually. Inside this scope a failing operation
/// records libtorch's message and yields an undefined tensor (later operations on it fail
/// too, and only the first message is kept); when the scope ends the error is thrown.
/// Outside any scope a libtorch failure stops the process with libtorch's message.
public func withTorchErrors<T>(_ body: () throws -> T) throws -> T {
  let sink = TorchErrorSink()
  let result = try TorchErrorScope.$sink.withValue(sink) { try body() }
  if let message = sink.first { throw TorchError.libtorch(message) }
  return result
}

/// Records (or, outside a scope, reports fatally) the shim's last error.

func reportTorchFailure() {
  let message = String(cString: ct_last_error())
  if let sink = TorchErrorScope.sink {
    if sink.first == nil { sink.first = message }
    return
  }
  fatalError("libtorch error: \(message)")
}

/// Wraps a handle returned by the shim; NULL means the call failed.

func wrap(_ handle: OpaquePointer?) -> Tensor {
  if let handle { return Tensor(handle: handle) }
  reportTorchFailure()
  return Tensor(handle: ct_undefined())
}

/// Checks a status returned by the shim (0 = success).

func check(_ status: Int32) {
  if status != 0 { reportTorchFailure() }
}
