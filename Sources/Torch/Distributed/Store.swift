import CTorch
import Foundation

/// A failure of distributed training: rendezvous, a collective, or bad job settings.
public struct DistributedError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Throws the shim's last error, after `context`, when `status` is not 0.
func distributedCheck(_ status: Int32, _ context: @autoclosure () -> String) throws {
  guard status != 0 else { return }
  throw DistributedError("\(context()): \(String(cString: ct_last_error()))")
}

/// torch.distributed's TCPStore: a key-value server that rank 0 hosts and every rank reaches,
/// where the ranks meet and exchange addresses.
final class TCPStore {
  let handle: OpaquePointer
  let timeout: Double

  /// The server on `port` (0: a free one), or a client that tries to reach `host:port` for `timeout` s.
  init(host: String, port: Int, isServer: Bool, timeout: Double, rank: Int) throws {
    guard let handle = ct_tcp_store(host, Int32(port), isServer ? 1 : 0, timeout) else {
      let reason = String(cString: ct_last_error())
      throw DistributedError(isServer
        ? "rank 0 cannot host the rendezvous on port \(port): \(reason)"
        : "rank \(rank) cannot reach the master at \(host):\(port) within \(formatSeconds(timeout)) (is rank 0 running, and is --master right?): \(reason)")
    }
    self.handle = handle
    self.timeout = timeout
  }
  deinit { ct_store_free(handle) }

  /// The port the server listens on.
  var port: Int { Int(ct_store_port(handle)) }

  func set(_ key: String, _ value: String) throws {
    let bytes = Array(value.utf8)
    try distributedCheck(ct_store_set(handle, key, bytes, Int64(bytes.count)), "store set \(key)")
  }

  /// The value of `key`, waiting for it up to the store's timeout.
  func get(_ key: String) throws -> String {
    var data: UnsafeMutableRawPointer?
    var size: Int64 = 0
    try distributedCheck(ct_store_get(handle, key, &data, &size), "store get \(key)")
    defer { ct_bytes_free(data) }
    guard let data else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: data, count: Int(size)), as: UTF8.self)
  }

  func add(_ key: String, _ delta: Int) throws -> Int {
    var result: Int64 = 0
    try distributedCheck(ct_store_add(handle, key, Int64(delta), &result), "store add \(key)")
    return Int(result)
  }

  /// Whether every key is set (does not wait).
  func contains(_ keys: [String]) throws -> Bool {
    var present: Int32 = 0
    let status = withCStrings(keys) { ct_store_check(handle, $0, Int32(keys.count), &present) }
    try distributedCheck(status, "store check")
    return present == 1
  }
}

func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
  let copies = strings.map { strdup($0) }
  defer { copies.forEach { free($0) } }
  let pointers = copies.map { UnsafePointer($0) }
  return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

func formatSeconds(_ seconds: Double) -> String {
  seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.3g s", seconds)
}
