import Foundation
import XCTest

@testable import CellData

/// Paths of the committed fixtures (tests/fixtures/celldata) and the bundled data (data/).
enum Fixtures {
  static let repoRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  static func path(_ name: String) -> String {
    repoRoot.appendingPathComponent("tests/fixtures/celldata/\(name)").path
  }

  /// A file under tests/fixtures/fuzz (regression inputs and seeds), e.g. "10x-h5/x.h5".
  static func fuzz(_ name: String) -> String {
    repoRoot.appendingPathComponent("tests/fixtures/fuzz/\(name)").path
  }

  static func data(_ name: String) -> String {
    repoRoot.appendingPathComponent("data/\(name)").path
  }

  static func json(_ name: String) throws -> [String: Any] {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path(name)))
    return try XCTUnwrap(JSONSerialization.jsonObject(with: bytes) as? [String: Any])
  }

  /// Where tests write files that tests/fixtures/celldata/verify_roundtrip.py then checks
  /// with anndata: $CELLDATA_ROUNDTRIP_DIR, else /tmp/celldata-roundtrip.
  static var roundTripDirectory: String {
    let dir = ProcessInfo.processInfo.environment["CELLDATA_ROUNDTRIP_DIR"] ?? "/tmp/celldata-roundtrip"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  /// A fresh empty temporary directory, removed when `test` ends.
  static func temporaryDirectory(removedAfter test: XCTestCase) throws -> String {
    let dir = NSTemporaryDirectory() + "celldata-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
  }
}

/// Collects warnings in tests.
final class WarningLog: @unchecked Sendable {
  private let lock = NSLock()
  private var lines: [String] = []
  var messages: [String] { lock.withLock { lines } }
  var handler: WarningHandler { { [self] line in lock.withLock { lines.append(line) } } }
}

func XCTAssertThrowsMessage<T>(
  _ expression: @autoclosure () throws -> T, containing parts: [String],
  file: StaticString = #filePath, line: UInt = #line
) {
  XCTAssertThrowsError(try expression(), file: file, line: line) { error in
    let message = "\(error)"
    for part in parts {
      XCTAssertTrue(message.contains(part), "message '\(message)' lacks '\(part)'", file: file, line: line)
    }
  }
}

/// Element-wise |a - b| <= relative * max(|a|, |b|) + absolute.
func assertClose(
  _ actual: [Double], _ expected: [Double], relative: Double = 1e-6, absolute: Double = 0,
  file: StaticString = #filePath, line: UInt = #line
) {
  guard actual.count == expected.count else {
    return XCTFail("count \(actual.count) != \(expected.count)", file: file, line: line)
  }
  var worst = 0.0, worstIndex = -1
  for i in actual.indices {
    let (a, b) = (actual[i], expected[i])
    if a.isNaN && b.isNaN { continue }
    let excess = abs(a - b) - (relative * max(abs(a), abs(b)) + absolute)
    if excess > worst || a.isNaN != b.isNaN { worst = max(excess, 1); worstIndex = i }
  }
  if worstIndex >= 0 {
    XCTFail("element \(worstIndex): \(actual[worstIndex]) vs \(expected[worstIndex])", file: file, line: line)
  }
}
