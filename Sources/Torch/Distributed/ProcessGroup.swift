import CTorch
import Foundation

/// Where the ranks of a data-parallel job meet, as torch.distributed's `init_process_group`
/// with a TCP rendezvous: rank 0 hosts a TCPStore on the master's port, every rank joins it.
public struct DistributedOptions: Sendable, Equatable {
  public var rank: Int
  public var worldSize: Int
  public var masterAddress: String
  public var masterPort: Int
  /// Seconds a rank waits for the others: to join, and in every collective. torch's
  /// default is 30 minutes (`default_pg_timeout`).
  public var timeout: Double
  /// The address or network interface Gloo binds to. Nil: 127.0.0.1 when the master is a
  /// loopback address, else the address of this machine's hostname (torch's default device).
  public var glooHostname: String?
  public var glooInterface: String?

  public init(rank: Int, worldSize: Int, masterAddress: String = "127.0.0.1", masterPort: Int = 29500,
              timeout: Double = 1800, glooHostname: String? = nil, glooInterface: String? = nil) {
    self.rank = rank
    self.worldSize = worldSize
    self.masterAddress = masterAddress
    self.masterPort = masterPort
    self.timeout = timeout
    self.glooHostname = glooHostname
    self.glooInterface = glooInterface
  }

  var isLoopback: Bool {
    masterAddress == "localhost" || masterAddress == "::1" || masterAddress.hasPrefix("127.")
  }
}

/// A group of processes (ranks) that run collectives together, on torch.distributed's Gloo
/// backend (CPU tensors) and, with `init(nccl:device:)`, its NCCL backend (CUDA tensors).
/// Every rank must call the same collectives in the same order; one that fails (another rank
/// died, hung past the timeout, or the network broke) throws. Sendable: its properties are
/// constants and c10d's process groups may be called from any thread (as torch's).
public final class ProcessGroup: @unchecked Sendable {
  public enum ReduceOp: Sendable { case sum, average, max, min }

  public let rank: Int
  public let worldSize: Int
  public let options: DistributedOptions
  let handle: OpaquePointer
  private let store: TCPStore

  /// Joins the job: rank 0 hosts the rendezvous, every rank checks that the others agree on
  /// the world size and that no rank is taken twice, then the Gloo group connects.
  ///
  /// Sets SIGPIPE to be ignored, process-wide: Gloo writes to its sockets with `writev`, which
  /// raises SIGPIPE when the peer has died, and SIGPIPE's default ends the process without a
  /// word. torch.distributed runs under Python, which ignores SIGPIPE from the start; with it
  /// ignored here too, the write fails with EPIPE and the collective throws.
  public init(gloo options: DistributedOptions) throws {
    signal(SIGPIPE, SIG_IGN)
    let (rank, size) = (options.rank, options.worldSize)
    guard size >= 1 else { throw DistributedError("the world size must be at least 1, got \(size)") }
    guard rank >= 0 && rank < size else { throw DistributedError("rank \(rank) is outside 0..<\(size) (world size \(size))") }
    guard options.timeout > 0 else { throw DistributedError("the timeout must be positive, got \(options.timeout) s") }
    guard (0...65535).contains(options.masterPort) else {
      throw DistributedError("the master port must be in 0...65535, got \(options.masterPort)")
    }
    store = try TCPStore(host: options.masterAddress, port: options.masterPort, isServer: rank == 0, timeout: options.timeout, rank: rank)
    try Self.join(store, rank: rank, size: size, options: options)
    let hostname = options.glooHostname ?? (options.glooInterface == nil && options.isLoopback ? "127.0.0.1" : nil)
    guard let handle = ct_process_group_gloo(store.handle, Int32(rank), Int32(size), options.timeout, hostname, options.glooInterface) else {
      throw DistributedError("rank \(rank): the Gloo process group could not connect: \(String(cString: ct_last_error()))")
    }
    self.handle = handle
    self.rank = rank
    self.worldSize = size
    self.options = options
  }

  /// Joins as `init(gloo:)`, then adds torch.distributed's NCCL backend for tensors on CUDA
  /// device `device`; CPU tensors keep going through Gloo (torch's default on GPU machines,
  /// "cpu:gloo,cuda:nccl"). NCCL comes from swift-singlecell's plugin library
  /// (`NCCLPlugin.path`), loaded with libtorch_cuda on first use.
  public convenience init(nccl options: DistributedOptions, device: Int) throws {
    try self.init(gloo: options)
    let plugin = try NCCLPlugin.path()
    guard ct_process_group_add_nccl(handle, plugin, Int32(device), options.timeout) == 0 else {
      throw DistributedError("rank \(rank): \(String(cString: ct_last_error()))")
    }
  }

  deinit { ct_process_group_free(handle) }

  /// The port rank 0's rendezvous listens on (useful when it was started on port 0).
  public var masterPort: Int { store.port }

  /// The join check, through the store: rank 0 publishes its world size; each rank compares,
  /// claims its rank and marks itself ready; any mismatch is published so every rank stops
  /// with the same message instead of waiting for the timeout.
  private static func join(_ store: TCPStore, rank: Int, size: Int, options: DistributedOptions) throws {
    if rank == 0 { try store.set("singlecell/world_size", String(size)) }
    func fail(_ message: String) throws -> Never {
      try? store.set("singlecell/error", message)
      throw DistributedError(message)
    }
    let announced = try store.get("singlecell/world_size")
    if announced != String(size) {
      try fail("rank \(rank) was started with world size \(size) but rank 0 with \(announced)")
    }
    if try store.add("singlecell/rank/\(rank)", 1) > 1 {
      try fail("two processes joined as rank \(rank) of \(size)")
    }
    try store.set("singlecell/ready/\(rank)", "1")
    let ready = (0..<size).map { "singlecell/ready/\($0)" }
    let deadline = Date().addingTimeInterval(options.timeout)
    while !(try store.contains(ready)) {
      if try store.contains(["singlecell/error"]) { throw DistributedError(try store.get("singlecell/error")) }
      if Date() >= deadline {
        let missing = try (0..<size).filter { !(try store.contains(["singlecell/ready/\($0)"])) }
        throw DistributedError(
          "rank \(rank): timed out after \(formatSeconds(options.timeout)) waiting for rank\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) of \(size) to join at \(options.masterAddress):\(options.masterPort)")
      }
      usleep(20_000)
    }
  }

  private func failure(_ what: String) -> DistributedError {
    DistributedError("rank \(rank) of \(worldSize): \(what) failed (a rank died, hung for more than \(formatSeconds(options.timeout)), or the network broke): \(String(cString: ct_last_error()))")
  }

  /// Copies rank `root`'s tensors into every rank's, in place.
  public func broadcast(_ tensors: [Tensor], from root: Int = 0) throws {
    let status = withExtendedLifetime(tensors) {
      tensors.map(\.handle).map { Optional($0) }.withUnsafeBufferPointer { ct_broadcast(handle, $0.baseAddress, Int32(tensors.count), Int32(root)) }
    }
    if status != 0 { throw failure("broadcast") }
  }

  /// Reduces `tensor` over the ranks, in place; every rank gets the result. `average` is the
  /// sum divided by the world size.
  public func allReduce(_ tensor: Tensor, _ op: ReduceOp = .sum) throws {
    let code: Int32
    switch op {
    case .sum: code = Int32(CT_REDUCE_SUM)
    case .average: code = Int32(CT_REDUCE_AVG)
    case .max: code = Int32(CT_REDUCE_MAX)
    case .min: code = Int32(CT_REDUCE_MIN)
    }
    if tensor.withHandle({ ct_all_reduce(handle, $0, code) }) != 0 { throw failure("all-reduce") }
  }

  /// Reduces a few numbers (float64) over the ranks.
  public func allReduce(_ values: [Double], _ op: ReduceOp = .sum) throws -> [Double] {
    guard !values.isEmpty else { return [] }
    let tensor = Tensor(values)
    try allReduce(tensor, op)
    return tensor.toArray(Double.self)
  }

  /// Rank `root`'s bytes on every rank.
  public func broadcast(bytes: [UInt8], from root: Int = 0) throws -> [UInt8] {
    let count = Tensor([Int64(bytes.count)])
    try broadcast([count], from: root)
    let n = Int(count.toArray(Int64.self)[0])
    let data = rank == root ? Tensor(bytes) : Tensor.zeros([n], dtype: .uint8)
    if n > 0 { try broadcast([data], from: root) }
    return data.toArray(UInt8.self)
  }

  /// Waits until every rank has reached the barrier.
  public func barrier() throws {
    if ct_barrier(handle) != 0 { throw failure("barrier") }
  }
}

/// Where the NCCL plugin (plugins/nccl, built by `make nccl-plugin`) is looked for:
/// `$SINGLECELL_NCCL_PLUGIN`, else libctorch_nccl.so beside the running executable.
public enum NCCLPlugin {
  public static let fileName = "libctorch_nccl.so"

  public static func path(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                          executable: URL = runningExecutable) throws -> String {
    if let path = environment["SINGLECELL_NCCL_PLUGIN"], !path.isEmpty { return path }
    let beside = executable.deletingLastPathComponent().appendingPathComponent(fileName).path
    guard FileManager.default.fileExists(atPath: beside) else {
      throw DistributedError("NCCL needs swift-singlecell's plugin \(fileName), not found beside \(executable.path): build it with `make nccl-plugin` (it needs the CUDA and NCCL headers; docs/distributed.md) or set SINGLECELL_NCCL_PLUGIN")
    }
    return beside
  }

  public static var runningExecutable: URL {
    URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
  }
}
