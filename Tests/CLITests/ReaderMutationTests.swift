import Foundation
import XCTest

/// A bounded, deterministic mutation run of every reader of an outside file (DESIGN.md, Testing):
/// corrupted copies of the seed inputs of tests/fixtures/fuzz/seeds.txt (byte and bit flips,
/// truncations, overwritten, deleted and duplicated blocks, numbers and length fields replaced
/// by extreme values) are read by `singlecell-fuzz READER` in a child process that caps its
/// address space, so that a crash, a hang or an allocation above the cap kills the child and not
/// the test runner. Every input must end in OK or in a thrown error. A crashing input is kept in
/// the scratch folder and named in the failure; copy it to tests/fixtures/fuzz/<reader>/, where
/// `testRegressionInputs` reads it from then on.
final class ReaderMutationTests: CLITestCase {
  /// Inputs per reader; the whole run stays well under two minutes in debug and release.
  static let inputsPerReader: [String: Int] = [
    "h5ad": 1200, "h5ad-backed": 400, "10x-h5": 500, "10x-mtx": 300, "10x-mtx-gz": 150, "fasta": 300, "fasta-noindex": 150,
    "peaks": 150, "meme": 200, "jaspar": 200, "pfm": 200, "safetensors": 400, "torch": 500, "pickle": 400,
    "scvi-model": 250, "scgpt-config": 400, "training-checkpoint": 400, "scvi-tools": 250, "scvi-tools-legacy": 250,
    "scbasset-scvi-tools": 250,
    "scatlasvae-reference": 250, "atlas-model": 250, "scbasset-model": 250,
  ]
  static let memoryLimitMB = 3072
  static let secondsPerInput = 10

  func testH5AD() throws { try mutationRun("h5ad") }
  func testH5ADBacked() throws { try mutationRun("h5ad-backed") }
  func testTenxH5() throws { try mutationRun("10x-h5") }
  func testTenxMTX() throws { try mutationRun("10x-mtx") }
  func testTenxMTXGzip() throws { try mutationRun("10x-mtx-gz") }
  func testFASTAWithIndex() throws { try mutationRun("fasta") }
  func testFASTAWithoutIndex() throws { try mutationRun("fasta-noindex") }
  func testPeakNames() throws { try mutationRun("peaks") }
  func testMEME() throws { try mutationRun("meme") }
  func testJASPAR() throws { try mutationRun("jaspar") }
  func testPFM() throws { try mutationRun("pfm") }
  func testSafetensors() throws { try mutationRun("safetensors") }
  func testTorchSave() throws { try mutationRun("torch") }
  func testPickle() throws { try mutationRun("pickle") }
  func testSCVIModelFolder() throws { try mutationRun("scvi-model") }
  func testScGPTVocabAndArgs() throws { try mutationRun("scgpt-config") }
  func testTrainingCheckpoint() throws { try mutationRun("training-checkpoint") }
  func testScviToolsFolder() throws { try mutationRun("scvi-tools") }
  func testScviToolsLegacyFolder() throws { try mutationRun("scvi-tools-legacy") }
  func testSCBassetScviToolsFolder() throws { try mutationRun("scbasset-scvi-tools") }
  func testScAtlasVAEReferenceFile() throws { try mutationRun("scatlasvae-reference") }
  func testScAtlasVAEModelFolder() throws { try mutationRun("atlas-model") }
  func testSCBassetModelFolder() throws { try mutationRun("scbasset-model") }

  /// Every input once found to crash a reader (tests/fixtures/fuzz/<reader>/*) now reads to OK or
  /// to a thrown error.
  func testRegressionInputs() throws {
    let root = Self.repository.appendingPathComponent("tests/fixtures/fuzz")
    var checked = 0
    for reader in try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
    where Self.inputsPerReader[reader] != nil {
      let folder = root.appendingPathComponent(reader)
      let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        .filter { !$0.hasPrefix(".") && $0 != "README.md" }
        .map { folder.appendingPathComponent($0).path }
      checked += files.count
      try runChild(reader: reader, files: files)
    }
    XCTAssertGreaterThan(checked, 0, "no regression inputs under \(root.path)")
  }

  // MARK: - The run

  func seeds(_ reader: String) throws -> [[UInt8]] {
    let list = try String(contentsOf: Self.repository.appendingPathComponent("tests/fixtures/fuzz/seeds.txt"), encoding: .utf8)
    let paths = list.split(separator: "\n").filter { !$0.hasPrefix("#") }
      .map { $0.split(separator: " ", maxSplits: 1).map(String.init) }
      .filter { $0.count == 2 && $0[0] == reader }.map { $0[1] }
    XCTAssertFalse(paths.isEmpty, "no seeds for \(reader) in tests/fixtures/fuzz/seeds.txt")
    return try paths.map { [UInt8](try Data(contentsOf: Self.repository.appendingPathComponent($0))) }
  }

  func mutationRun(_ reader: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let seeds = try seeds(reader)
    let count = try XCTUnwrap(Self.inputsPerReader[reader])
    // The seed of the generator is fixed per reader: the same inputs on every run.
    var rng = SplitMix64(seed: reader.utf8.reduce(0x5EED_F00D) { $0 &* 31 &+ UInt64($1) })
    let folder = scratch.appendingPathComponent("mutants-\(reader)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var files: [String] = []
    for i in 0..<count {
      let seed = seeds[Int(rng.next() % UInt64(seeds.count))]
      let url = folder.appendingPathComponent(String(format: "%05d", i))
      try Data(Mutator.mutate(seed, &rng)).write(to: url)
      files.append(url.path)
    }
    // The seeds themselves must read.
    let seedFolder = scratch.appendingPathComponent("seeds-\(reader)")
    try FileManager.default.createDirectory(at: seedFolder, withIntermediateDirectories: true)
    var seedFiles: [String] = []
    for (i, seed) in seeds.enumerated() {
      let url = seedFolder.appendingPathComponent("seed\(i)")
      try Data(seed).write(to: url)
      seedFiles.append(url.path)
    }
    let seedResults = try runChild(reader: reader, files: seedFiles, file: file, line: line)
    for (i, result) in seedResults.enumerated() where !result.hasPrefix("OK") {
      XCTFail("\(reader): seed \(i) does not read: \(result)", file: file, line: line)
    }
    let start = Date()
    let results = try runChild(reader: reader, files: files, file: file, line: line)
    let ok = results.filter { $0.hasPrefix("OK") }.count
    let caught = results.filter { $0.contains("HDF5 cannot be used again") }.count
    // A rejection names the file it rejects (for a bundle, a file of the folder it was split into).
    // Peak names are strings, not a file: their errors name the peak instead.
    if reader != "peaks" {
      // Readers of a folder: the folder's path or the name of the file in it.
      let folderFiles: [String: [String]] = [
        "10x-mtx": [], "10x-mtx-gz": [], "fasta": [], "scvi-model": [], "scgpt-config": ["vocab.json", "args.json"],
        "scvi-tools": ["model.pt"], "scvi-tools-legacy": ["attr.pkl", "model_params.pt", "var_names.csv"],
        "scbasset-scvi-tools": ["model.pt"], "atlas-model": ["model.json", "model.safetensors"],
        "scbasset-model": ["scbasset.json", "model.safetensors"],
      ]
      var unnamed: [String] = []
      for (i, result) in results.enumerated() where result.hasPrefix("ERROR") {
        let names = folderFiles[reader].map { $0 + ["singlecell-fuzz-"] } ?? [URL(fileURLWithPath: files[i]).lastPathComponent]
        if !names.contains(where: result.contains) { unnamed.append(result) }
      }
      XCTAssertTrue(unnamed.isEmpty, "\(reader): \(unnamed.count) errors do not name the file, e.g. \(unnamed.prefix(3))",
                    file: file, line: line)
    }
    print("mutation run \(reader): \(files.count) inputs, \(ok) read, \(files.count - ok) rejected (\(caught) by a caught libhdf5 fault), "
      + String(format: "%.1f s", Date().timeIntervalSince(start)))
  }

  /// Runs the reader over `files` in child processes, restarting after an input that kills one;
  /// fails the test for each such input. Returns the OK/ERROR line of each file.
  @discardableResult
  func runChild(reader: String, files: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
    let executable = try Self.builtExecutable("singlecell-fuzz", file: file, line: line)
    var results = [String](repeating: "", count: files.count)
    var next = 0
    while next < files.count {
      let batch = Array(files[next...])
      let output = scratch.appendingPathComponent("child-\(UUID().uuidString)")
      try Data().write(to: output)
      let process = Process()
      process.executableURL = executable
      process.arguments = [reader, "--memory-mb", String(Self.memoryLimitMB), "--seconds", String(Self.secondsPerInput)] + batch
      var environment = ProcessInfo.processInfo.environment
      environment["SWIFT_BACKTRACE"] = "enable=no"
      process.environment = environment
      process.standardOutput = try FileHandle(forWritingTo: output)
      process.standardError = FileHandle.nullDevice
      try process.run()
      process.waitUntilExit()
      let lines = try String(contentsOf: output, encoding: .utf8).split(separator: "\n")
      var lastBegun = -1
      for l in lines {
        let parts = l.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let i = Int(parts[1]) else { continue }
        if parts[0] == "BEGIN" { lastBegun = i } else if i < batch.count { results[next + i] = String(l) }
      }
      if process.terminationReason == .exit && process.terminationStatus == 0 && lastBegun == batch.count - 1
        && !results[next + lastBegun].isEmpty
      {
        break
      }
      // Exit status 3: a fault inside libhdf5 was caught and reported as an error; libhdf5 is
      // unusable in that process, so the next input gets a fresh one.
      if process.terminationReason == .exit && process.terminationStatus == 3 && lastBegun >= 0
        && results[next + lastBegun].hasPrefix("ERROR")
      {
        next += lastBegun + 1
        continue
      }
      // The child died on the input it began last (or before the first one).
      let culprit = max(lastBegun, 0)
      let how = process.terminationReason == .uncaughtSignal
        ? (process.terminationStatus == SIGALRM ? "hang (over \(Self.secondsPerInput) s)" : "signal \(process.terminationStatus)")
        : "exit status \(process.terminationStatus)"
      let kept = scratch.deletingLastPathComponent().appendingPathComponent("fuzz-crash-\(reader)-\(UUID().uuidString.prefix(8))")
      try? FileManager.default.copyItem(at: URL(fileURLWithPath: batch[culprit]), to: kept)
      XCTFail("\(reader): \(how) on input \(batch[culprit]); kept as \(kept.path) (add it to tests/fixtures/fuzz/\(reader)/)",
              file: file, line: line)
      results[next + culprit] = "CRASH \(how)"
      next += culprit + 1
    }
    return results
  }
}

/// SplitMix64: a small deterministic generator.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Corrupts a copy of an input in one of several ways (one to three at a time).
enum Mutator {
  static let extremeNumbers = ["0", "-1", "1", "2147483647", "2147483648", "4294967295", "9223372036854775807",
                               "-9223372036854775808", "99999999999999999999", "1e308", "nan", "-0", "65536"]
  static let extremeWords: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
                                       0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0x1_0000_0000]

  static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
    var bytes = input
    for _ in 0..<(1 + Int(rng.next() % 3)) { mutateOnce(&bytes, &rng) }
    return bytes
  }

  static func mutateOnce(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
    func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(rng.next() % UInt64(n)) }
    guard !bytes.isEmpty else { bytes = [UInt8(below(256))]; return }
    switch below(9) {
    case 0:  // random bytes
      for _ in 0..<(1 + below(20)) { bytes[below(bytes.count)] = UInt8(below(256)) }
    case 1:  // bit flips
      for _ in 0..<(1 + below(8)) { bytes[below(bytes.count)] ^= UInt8(1 << below(8)) }
    case 2:  // truncation
      bytes.removeSubrange(below(bytes.count)...)
    case 3:  // an overwritten block
      let start = below(bytes.count), end = min(bytes.count, start + 1 + below(4096))
      for i in start..<end { bytes[i] = UInt8(below(256)) }
    case 4:  // a deleted block
      let start = below(bytes.count)
      bytes.removeSubrange(start..<min(bytes.count, start + 1 + below(256)))
    case 5:  // a duplicated block
      let start = below(bytes.count), end = min(bytes.count, start + 1 + below(256))
      bytes.insert(contentsOf: bytes[start..<end], at: below(bytes.count))
    case 6:  // an extreme little-endian word (length and offset fields of binary formats)
      let width = [1, 2, 4, 8][below(4)]
      let value = extremeWords[below(extremeWords.count)]
      let at = below(bytes.count / width + 1) * width
      for k in 0..<width where at + k < bytes.count { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
    case 7, 8:  // a number of a text format replaced by an extreme one
      var runs: [Range<Int>] = []
      var i = 0
      while i < bytes.count && runs.count < 4096 {
        if (0x30...0x39).contains(bytes[i]) {
          var j = i
          while j < bytes.count && (0x30...0x39).contains(bytes[j]) { j += 1 }
          runs.append(i..<j)
          i = j
        } else {
          i += 1
        }
      }
      guard !runs.isEmpty else { bytes[below(bytes.count)] = UInt8(below(256)); return }
      let run = runs[below(runs.count)]
      bytes.replaceSubrange(run, with: Array(extremeNumbers[below(extremeNumbers.count)].utf8))
    default:
      break
    }
  }
}
