import Foundation

#if canImport(Glibc)
  import Glibc
#endif

// Two ways in. Built normally: a replay driver,
//     singlecell-fuzz READER [--memory-mb N] [--seconds S] FILE...
// which caps its own address space at N MiB (setrlimit RLIMIT_AS), reads each FILE with READER
// under an alarm of S seconds (a hang ends the process with SIGALRM), and prints
//     BEGIN i / OK i summary / ERROR i message
// per file, so a parent that sees the process die by a signal knows which input did it.
// Built by `make fuzz` (-sanitize=fuzzer -D FUZZING): libFuzzer's entry point, the reader named
// by $FUZZ_READER.

/// Whether `error` reports a fault inside libhdf5 that was caught (see CHDF5Safe).
func hdf5Poisoned(_ error: Error) -> Bool { "\(error)".contains("HDF5 cannot be used again in this process") }

/// Unbuffered, so that what precedes a crash reaches the parent.
private func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

private func scratchFolder() -> URL {
  FileManager.default.temporaryDirectory.appendingPathComponent("singlecell-fuzz-\(getpid())-\(UUID().uuidString)")
}

#if FUZZING
  private let fuzzReader: FuzzReader = {
    let name = ProcessInfo.processInfo.environment["FUZZ_READER"] ?? ""
    guard let reader = FuzzReader(rawValue: name) else {
      FileHandle.standardError.write(Data("set FUZZ_READER to one of \(FuzzReader.allCases.map(\.rawValue))\n".utf8))
      exit(2)
    }
    return reader
  }()

  @_cdecl("LLVMFuzzerTestOneInput")
  public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    if case .failure(let error) = readBytes(fuzzReader, bytes, scratch: scratchFolder()), hdf5Poisoned(error) {
      // A fault inside libhdf5 was caught: not a crash of ours, but HDF5 is unusable from now on.
      // The input is kept in $FUZZ_CAUGHT_DIR and the process ends quietly (libFuzzer's fork mode
      // starts a new one).
      if let folder = ProcessInfo.processInfo.environment["FUZZ_CAUGHT_DIR"] {
        let name = String(UInt64(bitPattern: Int64(bytes.hashValue)), radix: 16)
        try? Data(bytes).write(to: URL(fileURLWithPath: folder).appendingPathComponent("caught-\(name)"))
      }
      _exit(0)
    }
    return 0
  }

  // SwiftPM links an executable with `main` aliased to `<module>_main`, so libFuzzer's own main
  // is never pulled in: this one hands over to libFuzzer's driver instead.
  @_silgen_name("LLVMFuzzerRunDriver")
  func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
  ) -> Int32

  @_cdecl("SingleCellFuzz_main")
  public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var count = argc
    var arguments = argv
    _ = fuzzReader  // fail early on a bad $FUZZ_READER
    return runFuzzerDriver(&count, &arguments, fuzzTestOneInput)
  }
#else
  @main
  struct ReplayDriver {
    static func main() {
      var arguments = Array(CommandLine.arguments.dropFirst())
      func option(_ name: String) -> Int? {
        guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = Int(arguments[i + 1]) else { return nil }
        arguments.removeSubrange(i...(i + 1))
        return v
      }
      let memoryMB = option("--memory-mb")
      let seconds = option("--seconds") ?? 10
      guard let name = arguments.first, let reader = FuzzReader(rawValue: name) else {
        print("usage: singlecell-fuzz READER [--memory-mb N] [--seconds S] FILE...  (READER: \(FuzzReader.allCases.map(\.rawValue).joined(separator: ", ")))")
        exit(2)
      }
      if let memoryMB {
        var limit = rlimit(rlim_cur: rlim_t(memoryMB) << 20, rlim_max: rlim_t(memoryMB) << 20)
        if setrlimit(Int32(RLIMIT_AS.rawValue), &limit) != 0 { perror("setrlimit"); exit(2) }
      }
      for (i, file) in arguments.dropFirst().enumerated() {
        say("BEGIN \(i)")
        alarm(UInt32(seconds))
        let result: Result<String, Error>
        if reader.bundleFiles != nil {
          // Bundles are split into a scratch folder first.
          guard let bytes = FileManager.default.contents(atPath: file) else { say("ERROR \(i) cannot read \(file)"); continue }
          result = readBytes(reader, [UInt8](bytes), scratch: scratchFolder())
        } else {
          result = Result { try read(reader, file) }
        }
        alarm(0)
        switch result {
        case .success(let summary): say("OK \(i) \(summary)")
        case .failure(let error):
          say("ERROR \(i) \("\(error)".replacingOccurrences(of: "\n", with: " "))")
          // After a caught fault in libhdf5 the library is unusable: exit 3 so the parent goes on
          // with the next input in a fresh process.
          if hdf5Poisoned(error) { exit(3) }
        }
      }
    }
  }
#endif
