import CHDF5
import Foundation

/// libhdf5 1.10 trusts the bytes of a file: a damaged B-tree, object header or heap makes it
/// read or write past its buffers (SIGSEGV in H5F__accum_read, H5B_find, …) or loop, which no
/// check of ours in front of it can prevent. So a file from outside is first read in a forked
/// child: if the child dies, throws (its message is passed back) or does not finish, the caller
/// gets that error and its own process never touches the damaged bytes; only after the child
/// has read the whole file does the real read follow.
enum CrashIsolation {
  /// The byte a child that read the whole file sends before it exits.
  private static let finished: UInt8 = 0

  /// True in the reading child, which works on one thread: libdispatch does not promise to work
  /// in a child forked from a process that has used it (on Darwin it aborts there).
  nonisolated(unsafe) static var isChild = false

  /// Runs `body` in a forked child. Throws when the child dies by a signal, or has not
  /// finished after `timeout` seconds (default: 2 minutes plus 1 s per 10 MB of the file).
  static func check(file path: String, timeout: Double? = nil, _ body: () throws -> Void) throws {
    let bytes = fileBytes(path)
    let limit = timeout ?? 120 + Double(bytes) / 10_000_000
    let memoryBudget = readingBudget(fileBytes: bytes)
    fflush(nil)
    var pipeEnds: [Int32] = [-1, -1]
    guard pipe(&pipeEnds) == 0 else { return }
    let child = fork()
    if child == 0 {
      close(pipeEnds[0])
      // The child dies with its parent, and quietly: a crash is expected here on damaged files.
      chdf5_die_with_parent()
      isChild = true
      for signal in [SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL] { _ = Foundation.signal(signal, SIG_DFL) }
      capAddressSpace(budget: memoryBudget)
      let null = open("/dev/null", O_WRONLY)
      if null >= 0 {
        dup2(null, STDERR_FILENO)
        dup2(null, STDOUT_FILENO)
      }
      do { try body() } catch {
        let message = Array("\(error)".utf8.prefix(4096))
        _ = message.withUnsafeBytes { write(pipeEnds[1], $0.baseAddress, $0.count) }
        _exit(1)
      }
      _ = write(pipeEnds[1], [finished], 1)
      _exit(0)
    }
    close(pipeEnds[1])
    defer { close(pipeEnds[0]) }
    guard child > 0 else { return }  // no fork available: the real read goes ahead
    // The child sends one byte when it has read the file, and the caller goes on at once; a
    // detached thread reaps the child (the teardown of its address space, with libtorch mapped,
    // takes a few ms). Otherwise the child's message, if any, and its exit status decide.
    var reply: [UInt8] = []
    var status: Int32 = 0
    var exited = false
    let deadline = Date().addingTimeInterval(limit)
    func readAvailable(waitingMilliseconds: Int32) -> Int {  // bytes read; 0 at end of file; -1 for none yet
      var ready = pollfd(fd: pipeEnds[0], events: Int16(POLLIN), revents: 0)
      guard poll(&ready, 1, waitingMilliseconds) > 0 else { return -1 }
      var chunk = [UInt8](repeating: 0, count: 4097)
      let n = chunk.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
      if n > 0 { reply += chunk[0..<n] }
      return n
    }
    while !exited {
      let left = deadline.timeIntervalSinceNow
      if left <= 0 {
        kill(child, SIGKILL)
        _ = waitpid(child, &status, 0)
        throw CellDataError("\(path): reading the file did not finish within \(Int(limit)) s; it is probably damaged (nothing was read)")
      }
      let n = readAvailable(waitingMilliseconds: Int32(Swift.min(left * 1000 + 1, 1000)))
      if reply == [finished] {
        Thread.detachNewThread { var status: Int32 = 0; _ = waitpid(child, &status, 0) }
        return
      }
      if n == 0 { break }  // end of file: the child has ended
      // No end of file comes while a process forked meanwhile holds a copy of the pipe's end;
      // the child's exit tells too (its last words are then read).
      if n < 0, waitpid(child, &status, WNOHANG) == child {
        exited = true
        while readAvailable(waitingMilliseconds: 0) > 0 {}
      }
    }
    while !exited && waitpid(child, &status, 0) < 0 {
      guard errno == EINTR else { return }
    }
    let signal = status & 0x7F
    if signal != 0 && signal != 0x7F {
      let gib = String(format: "%.1f", Double(memoryBudget) / Double(1 << 30))
      throw CellDataError(
        "\(path): the file is damaged: reading it crashes libhdf5 (signal \(signal)) or needs more than \(gib) GiB of memory (\(budgetRule)); nothing was read")
    }
    if (status >> 8) & 0xFF != 0 {
      // A libhdf5 fault caught in the child left only the child's HDF5 unusable, not ours.
      let text = String(decoding: reply, as: UTF8.self)
        .replacingOccurrences(of: "; HDF5 cannot be used again in this process", with: "")
      throw CellDataError(reply.isEmpty ? "\(path): the file cannot be read" : text)
    }
  }

  /// For a child that reads large arrays through a small buffer (`H5Dataset.readThrough`)
  /// instead of keeping them: its address-space cap no longer sees them, so the memory the
  /// caller's read will give them is counted against the same bound here.
  final class Budget {
    let file: String
    let limit: Int
    private(set) var bytes = 0

    init(file: String) {
      self.file = file
      limit = CrashIsolation.readingBudget(fileBytes: CrashIsolation.fileBytes(file))
    }

    /// 16 bytes per stored number of a sparse matrix (`bytesPerElement`): a bound on the values
    /// and indices as read and what the caller builds from them. A dense array is counted at the
    /// size the caller reads each number as.
    func count(elements: Int, bytesPerElement: Int = 16) throws {
      let (more, overflow) = elements.multipliedReportingOverflow(by: bytesPerElement)
      bytes = overflow ? Int.max : bytes.addingReportingOverflow(more).partialValue
      guard elements >= 0, bytes >= 0, bytes <= limit else {
        let gib = String(format: "%.1f", Double(limit) / Double(1 << 30))
        throw CellDataError(
          "\(file): the file is damaged or too large: reading it needs more than \(gib) GiB of memory (\(budgetRule)); nothing was read")
      }
    }

    /// Reads a dataset of numbers through (converted to `memoryType`, as the caller will), after
    /// counting it.
    func readThrough(_ dataset: H5Dataset, as memoryType: hid_t? = nil, bytesPerElement: Int = 16) throws {
      try count(elements: (try? dataset.checkedShape())?.reduce(1, *) ?? 0, bytesPerElement: bytesPerElement)
      try dataset.readThrough(as: memoryType)
    }
  }

  /// The file's size in bytes (0 when it cannot be read).
  static func fileBytes(_ path: String) -> Int {
    (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
  }

  static let budgetRule = "the bound for reading a file: 100 × its size, at least 2 GiB, at most the memory available"

  /// Memory the read of a file of `fileBytes` may take (`budgetRule`): a fuzzed 88 kB file made
  /// libhdf5 allocate without end (24 GB, until the kernel killed the process); with the bound
  /// the allocation fails and the read ends with an error in seconds. Real h5ad files decode to
  /// a few times their size (gzip on counts compresses 3–10×).
  static func readingBudget(fileBytes: Int) -> Int {
    var budget = Swift.max(2 << 30, fileBytes.multipliedReportingOverflow(by: 100).overflow ? Int.max : fileBytes * 100)
    #if os(Linux)
    if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
      let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
      let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    {
      budget = Swift.min(budget, kb * 1024)
    }
    #endif
    return budget
  }

  /// Caps the child's address space at what it maps now plus `budget` (never raising a cap
  /// already set).
  private static func capAddressSpace(budget: Int) {
    #if os(Linux)
    guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
      let pages = statm.split(separator: " ").first.flatMap({ Int($0) })
    else { return }
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0 else { return }
    let cap = rlim_t(pages * Int(sysconf(Int32(_SC_PAGESIZE))) + budget)
    if limit.rlim_cur != rlim_t.max && limit.rlim_cur <= cap { return }
    limit.rlim_cur = cap
    _ = setrlimit(Int32(RLIMIT_AS.rawValue), &limit)
    #endif
  }
}
