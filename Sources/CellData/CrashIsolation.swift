import CHDF5
import Foundation

/// libhdf5 1.10 trusts the bytes of a file: a damaged B-tree, object header or heap makes it
/// read or write past its buffers (SIGSEGV in H5F__accum_read, H5B_find, …) or loop, which no
/// check of ours in front of it can prevent. So a file from outside is first read in a forked
/// child: if the child dies or does not finish, the caller gets a clear error and its own
/// process never touches the damaged bytes; if it succeeds (or throws), the real read follows.
enum CrashIsolation {
  /// Runs `body` in a forked child. Throws when the child dies by a signal, or has not
  /// finished after `timeout` seconds (default: 2 minutes plus 1 s per 10 MB of the file).
  static func check(file path: String, timeout: Double? = nil, _ body: () throws -> Void) throws {
    let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    let limit = timeout ?? 120 + Double(bytes ?? 0) / 10_000_000
    fflush(nil)
    let child = fork()
    if child == 0 {
      // The child dies with its parent, and quietly: a crash is expected here on damaged files.
      chdf5_die_with_parent()
      for signal in [SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL] { _ = Foundation.signal(signal, SIG_DFL) }
      let null = open("/dev/null", O_WRONLY)
      if null >= 0 {
        dup2(null, STDERR_FILENO)
        dup2(null, STDOUT_FILENO)
      }
      do { try body() } catch { _exit(1) }
      _exit(0)
    }
    guard child > 0 else { return }  // no fork available: the real read goes ahead
    var status: Int32 = 0
    let deadline = Date().addingTimeInterval(limit)
    while true {
      let done = waitpid(child, &status, WNOHANG)
      if done == child { break }
      if done < 0 && errno != EINTR { return }
      if Date() > deadline {
        kill(child, SIGKILL)
        _ = waitpid(child, &status, 0)
        throw CellDataError("\(path): reading the file did not finish within \(Int(limit)) s; it is probably damaged (nothing was read)")
      }
      usleep(1_000)
    }
    let signal = status & 0x7F
    if signal != 0 && signal != 0x7F {
      throw CellDataError("\(path): the file is damaged: reading it crashes libhdf5 (signal \(signal)); nothing was read")
    }
  }
}
