import Foundation

// Helpers for tests that run the ranks of a data-parallel job in one process; each target that
// needs them links this file (Tests/<Target>/Ranks.swift is a symbolic link to
// Tests/Support/Ranks.swift).

/// Runs `body(rank)` on one thread per rank and returns each rank's result.
func runRanks<T>(_ count: Int, _ body: @escaping (Int) throws -> T) -> [Result<T, Error>] {
  let shared = RankResults(body, count: count)
  let group = DispatchGroup()
  let threads = (0..<count).map { rank in
    group.enter()
    let thread = Thread {
      shared.run(rank)
      group.leave()
    }
    thread.stackSize = 8 << 20
    return thread
  }
  threads.forEach { $0.start() }
  group.wait()
  return shared.results.map { $0! }
}

/// The body and the results of `runRanks`, shared by its threads (each writes its own slot).
final class RankResults<T>: @unchecked Sendable {
  let body: (Int) throws -> T
  var results: [Result<T, Error>?]
  let lock = NSLock()
  init(_ body: @escaping (Int) throws -> T, count: Int) {
    self.body = body
    results = Array(repeating: nil, count: count)
  }
  func run(_ rank: Int) {
    let result = Result { try body(rank) }
    lock.lock()
    results[rank] = result
    lock.unlock()
  }
}

/// A TCP port nobody listens on now (bound, then released).
func freePort() throws -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { throw POSIXError(.EBADF) }
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  address.sin_port = 0
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
  }
  guard bound else { throw POSIXError(.EADDRINUSE) }
  return Int(UInt16(bigEndian: address.sin_port))
}
