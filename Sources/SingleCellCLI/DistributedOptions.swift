import ArgumentParser
import Foundation
import SingleCell

/// Data-parallel training options (docs/distributed.md): `--nproc N` starts N local ranks;
/// `--rank/--world-size/--master` (or torchrun's RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
/// join a job whose rank 0 hosts the rendezvous.
struct DistributedArguments: ParsableArguments {
  @Option(help: "Train with N local processes (data-parallel, Gloo on loopback).")
  var nproc: Int?
  @Option(help: "This process's rank in a multi-process job (default: $RANK).")
  var rank: Int?
  @Option(help: "Processes in the job (default: $WORLD_SIZE).")
  var worldSize: Int?
  @Option(help: "HOST:PORT where rank 0 hosts the rendezvous (default: $MASTER_ADDR:$MASTER_PORT).")
  var master: String?
  @Option(help: "Seconds a rank waits for the others, to join and in each collective (torch's default, 30 min).")
  var distTimeout: Double = 1800
  @Option(help: "Network interface Gloo uses between machines (default: $GLOO_SOCKET_IFNAME, else this host name's address).")
  var glooInterface: String?

  /// This process's part of a training command: nil when `--nproc` started the local ranks
  /// (and they have finished); otherwise the device (libtorch set up by `global`) and the job's
  /// process group, nil for a single-process run.
  func start(_ global: GlobalOptions) throws -> (device: Device, group: ProcessGroup?)? {
    if let nproc {
      try LocalLauncher.run(nproc: nproc)
      return nil
    }
    LocalLauncher.followLauncher()
    let job = try job()
    let device = try device(try global.apply(), asked: global.device, in: job)
    // c10d logs every connection retry with a backtrace; our errors carry its reason already.
    if job != nil && ProcessInfo.processInfo.environment["TORCH_CPP_LOG_LEVEL"] == nil { Runtime.setLogLevel(.fatal) }
    return (device, try processGroup(job, device: device))
  }

  /// The job this process belongs to; nil for a single-process run.
  func job(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DistributedOptions? {
    func integer(_ flag: Int?, _ name: String) throws -> Int? {
      if let flag { return flag }
      guard let text = environment[name], !text.isEmpty else { return nil }
      guard let value = Int(text) else { throw ValidationError("\(name) must be an integer, got '\(text)'") }
      return value
    }
    let rank = try integer(rank, "RANK"), worldSize = try integer(worldSize, "WORLD_SIZE")
    _ = try localRank(environment)  // validated here; it picks the GPU (`device(_:)`)
    guard rank != nil || worldSize != nil || master != nil else { return nil }
    guard let rank, let worldSize else {
      throw ValidationError("a multi-process job needs both --rank and --world-size (or RANK and WORLD_SIZE)")
    }
    let (host, port) = try masterAddress(environment)
    guard distTimeout > 0 else { throw ValidationError("--dist-timeout must be positive") }
    let interface = glooInterface ?? environment["GLOO_SOCKET_IFNAME"]?.split(separator: ",").first.map(String.init)
    let job = DistributedOptions(rank: rank, worldSize: worldSize, masterAddress: host, masterPort: port,
                                 timeout: distTimeout, glooInterface: interface)
    guard worldSize >= 1 else { throw ValidationError("--world-size must be at least 1, got \(worldSize)") }
    guard (0..<worldSize).contains(rank) else { throw ValidationError("--rank \(rank) is outside 0..<\(worldSize)") }
    return job
  }

  /// torchrun's LOCAL_RANK (this rank's index on its machine), when set.
  func localRank(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int? {
    guard let text = environment["LOCAL_RANK"], !text.isEmpty else { return nil }
    guard let value = Int(text), value >= 0 else { throw ValidationError("LOCAL_RANK must be a non-negative integer, got '\(text)'") }
    return value
  }

  /// The device of this rank: a plain `--device cuda` in a job means cuda:LOCAL_RANK (modulo the
  /// devices present), as torchrun scripts do; cpu or an explicit cuda:N stay as they are.
  func device(_ device: Device, asked text: String, in job: DistributedOptions?) throws -> Device {
    guard job != nil, text.lowercased() == "cuda", let local = try localRank() else { return device }
    return .cuda(local % max(1, Runtime.cudaDeviceCount))
  }

  /// The job's process group: Gloo, plus NCCL for the rank's CUDA device when it trains there.
  func processGroup(_ job: DistributedOptions?, device: Device) throws -> ProcessGroup? {
    guard let job else { return nil }
    if case .cuda(let index) = device { return try ProcessGroup(nccl: job, device: index) }
    return try ProcessGroup(gloo: job)
  }

  private func masterAddress(_ environment: [String: String]) throws -> (String, Int) {
    let text: String
    if let master {
      text = master
    } else if let address = environment["MASTER_ADDR"], let port = environment["MASTER_PORT"] {
      text = "\(address):\(port)"
    } else {
      throw ValidationError("a multi-process job needs --master HOST:PORT (or MASTER_ADDR and MASTER_PORT)")
    }
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
      (1...65535).contains(port), colon > text.startIndex
    else { throw ValidationError("--master must be HOST:PORT with a port in 1...65535, got '\(text)'") }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host, port)
  }
}

/// metrics.json's entries for a data-parallel run (none for a single process): the ranks, and
/// the largest difference between a rank's final weights and rank 0's (0 when in sync).
func dataParallelMetrics(ranks: Int?, replicaDifference: Double?) -> [String: Any] {
  guard let ranks else { return [:] }
  return ["ranks": ranks, "max_weight_difference_across_ranks": replicaDifference ?? 0]
}

/// A training verb's output folder in a data-parallel job: rank 0 runs `body` with a staging
/// folder that replaces `outdir` when `body` succeeds (`writeFolderAtomically`); the other ranks
/// run it with nil, to train alongside and write nothing. Returns whether this rank wrote.
@discardableResult
func writeFolderOnRankZero(_ outdir: URL, group: ProcessGroup?, _ body: (URL?) throws -> Void) throws -> Bool {
  guard (group?.rank ?? 0) == 0 else {
    try body(nil)
    return false
  }
  try writeFolderAtomically(outdir) { try body($0) }
  return true
}

/// `--nproc N`: runs this same command as N local ranks (this binary, the same arguments
/// without --nproc, and RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK set), waits
/// for them, and stops the others as soon as one fails.
enum LocalLauncher {
  static func run(nproc: Int, arguments: [String] = CommandLine.arguments) throws {
    guard nproc >= 1 else { throw ValidationError("--nproc must be at least 1, got \(nproc)") }
    let environment = ProcessInfo.processInfo.environment
    if environment["SINGLECELL_LAUNCHER_PID"] != nil {
      throw ValidationError("--nproc inside a rank started by --nproc")
    }
    let port = try freeLocalPort()
    var childArguments = [String]()
    var skip = false
    for argument in arguments.dropFirst() {
      if skip { skip = false; continue }
      if argument == "--nproc" { skip = true; continue }
      if argument.hasPrefix("--nproc=") { continue }
      childArguments.append(argument)
    }
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    // Ranks share this machine's cores; torchrun likewise sets OMP_NUM_THREADS for its workers.
    let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / nproc)
    var pids: [pid_t] = []
    for rank in 0..<nproc {
      var env = environment
      env["RANK"] = String(rank)
      env["LOCAL_RANK"] = String(rank)
      env["WORLD_SIZE"] = String(nproc)
      env["LOCAL_WORLD_SIZE"] = String(nproc)
      env["MASTER_ADDR"] = "127.0.0.1"
      env["MASTER_PORT"] = String(port)
      env["SINGLECELL_LAUNCHER_PID"] = String(getpid())
      if env["OMP_NUM_THREADS"] == nil { env["OMP_NUM_THREADS"] = String(threads) }
      do {
        pids.append(try spawn(executable, [executable] + childArguments, env))
      } catch {
        stop(pids)
        throw error
      }
    }
    var running = Dictionary(uniqueKeysWithValues: pids.enumerated().map { ($1, $0) })
    var failure: String?
    while !running.isEmpty {
      var status: Int32 = 0
      let pid = waitpid(-1, &status, 0)
      if pid < 0 {
        if errno == EINTR { continue }
        break
      }
      guard let rank = running.removeValue(forKey: pid) else { continue }
      let exited = (status & 0x7f) == 0, code = (status >> 8) & 0xff, signal = status & 0x7f
      if failure == nil && !(exited && code == 0) {
        failure = exited ? "rank \(rank) exited with status \(code)" : "rank \(rank) was killed by signal \(signal)"
        if !running.isEmpty {
          FileHandle.standardError.write(Data("singlecell: \(failure!); stopping the other ranks\n".utf8))
          stop(Array(running.keys))
        }
      }
    }
    if let failure { throw LaunchError(message: failure) }
  }

  struct LaunchError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
  }

  /// SIGTERM, then SIGKILL for those still running after 5 s (reaped by the caller's loop).
  private static func stop(_ pids: [pid_t]) {
    for pid in pids { kill(pid, SIGTERM) }
    let deadline = Date().addingTimeInterval(5)
    while Date() < deadline, pids.contains(where: { kill($0, 0) == 0 && !isZombie($0) }) { usleep(50_000) }
    for pid in pids where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
  }

  private static func isZombie(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return true }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
  }

  private static func spawn(_ path: String, _ argv: [String], _ env: [String: String]) throws -> pid_t {
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (cArgs + cEnv).forEach { free($0) } }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, path, nil, nil, cArgs, cEnv)
    guard status == 0 else { throw LaunchError(message: "cannot start \(path): \(String(cString: strerror(status)))") }
    return pid
  }

  /// A loopback TCP port nobody listens on now (bound, then released for rank 0 to take).
  static func freeLocalPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw LaunchError(message: "cannot open a socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard ok else { throw LaunchError(message: "cannot find a free port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
  }

  /// In a rank started by --nproc: exit when the launcher is gone (it can no longer stop us).
  static func followLauncher() {
    guard let text = ProcessInfo.processInfo.environment["SINGLECELL_LAUNCHER_PID"], let launcher = pid_t(text) else { return }
    let watcher = Thread {
      while getppid() == launcher { sleep(1) }
      FileHandle.standardError.write(Data("singlecell: the --nproc launcher is gone; stopping\n".utf8))
      exit(1)
    }
    watcher.start()
  }
}
