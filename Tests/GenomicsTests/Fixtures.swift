import Foundation
import XCTest

@testable import Genomics

/// Paths of tests/fixtures/genomics and scratch folders for tests.
enum Fixtures {
  static let folder: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("tests/fixtures/genomics").path

  static func path(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }

  static func json(_ name: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(name))))
  }

  /// The true sequences of tiny.fa by record name.
  static func tinySequences() throws -> [String: String] {
    try XCTUnwrap(json("tiny_sequences.json") as? [String: String])
  }

  /// A fresh temporary folder, removed at the end of the test.
  static func temporaryFolder(_ test: XCTestCase) throws -> String {
    let folder = (NSTemporaryDirectory() as NSString).appendingPathComponent("genomics-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
    return folder
  }

  /// tiny.fa copied into a fresh folder (without index), so tests can build and write the .fai.
  static func tinyFastaCopy(_ test: XCTestCase) throws -> String {
    let target = (try temporaryFolder(test) as NSString).appendingPathComponent("tiny.fa")
    try FileManager.default.copyItem(atPath: path("tiny.fa"), toPath: target)
    return target
  }
}

func XCTAssertThrowsGenomicsError<T>(
  _ expression: @autoclosure () throws -> T, messageContains fragments: [String],
  file: StaticString = #filePath, line: UInt = #line
) {
  XCTAssertThrowsError(try expression(), file: file, line: line) { error in
    guard let error = error as? GenomicsError else {
      return XCTFail("expected a GenomicsError, got \(error)", file: file, line: line)
    }
    for fragment in fragments {
      XCTAssertTrue(
        error.description.contains(fragment), "'\(error.description)' does not mention '\(fragment)'", file: file,
        line: line)
    }
  }
}
