import CellData
import Foundation
import XCTest

/// Runs the `singlecell` binary built next to the tests, in a scratch folder per test.
class CLITestCase: XCTestCase {
  static let repository = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  /// The bundled PBMC counts (700 cells × 765 genes).
  let counts = repository.appendingPathComponent("data/pbmc68k_reduced.h5ad").path
  var scratch: URL!

  override func setUpWithError() throws {
    scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cli-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

  // MARK: - Running the binary

  struct Result {
    let status: Int32
    let stdout: String
    let stderr: String
  }

  /// Runs the `singlecell` built next to this test binary (`swift build --build-tests` builds both),
  /// with `environment` added to this process's.
  func singlecell(_ arguments: [String], environment: [String: String] = [:], file: StaticString = #filePath,
                  line: UInt = #line) throws -> Result {
    let executable = try Self.builtExecutable("singlecell", file: file, line: line)
    // Output goes to files, so a chatty command can never block on a full pipe.
    let stdoutURL = scratch.appendingPathComponent("stdout-\(UUID().uuidString)")
    let stderrURL = scratch.appendingPathComponent("stderr-\(UUID().uuidString)")
    for url in [stdoutURL, stderrURL] { try Data().write(to: url) }
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
    process.standardError = try FileHandle(forWritingTo: stderrURL)
    try process.run()
    process.waitUntilExit()
    return Result(status: process.terminationStatus, stdout: try String(contentsOf: stdoutURL, encoding: .utf8),
                  stderr: try String(contentsOf: stderrURL, encoding: .utf8))
  }

  /// An executable product built next to this test binary (`swift build --build-tests` builds them all).
  static func builtExecutable(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
    let folders = [URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent(),
                   Bundle(for: CLITestCase.self).bundleURL.deletingLastPathComponent()]
    guard let executable = folders.map({ $0.appendingPathComponent(name) })
      .first(where: { FileManager.default.isExecutableFile(atPath: $0.path) })
    else {
      XCTFail("no \(name) next to the tests in \(folders.map(\.path)); run `swift build --build-tests`",
              file: file, line: line)
      throw CocoaError(.fileNoSuchFile)
    }
    return executable
  }

  /// The dense obsm array `key` of the .h5ad at `path`.
  func denseObsm(_ path: String, _ key: String) throws -> DenseArray {
    guard case .dense(let array) = try XCTUnwrap(try AnnData.read(h5ad: path).obsm[key], "no obsm['\(key)']") else {
      throw CellDataError("obsm['\(key)'] of \(path) is not a dense array")
    }
    return array
  }

  func json(_ path: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
    return try XCTUnwrap(object as? [String: Any])
  }
}
