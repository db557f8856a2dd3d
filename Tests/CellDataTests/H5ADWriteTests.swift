import Foundation
import XCTest

@testable import CellData

final class H5ADWriteTests: XCTestCase {
  /// Reads the anndata fixture, writes it with Swift and reads it back: equal in Swift.
  /// The written file is left in Fixtures.roundTripDirectory for verify_roundtrip.py,
  /// which checks that anndata reads it back equal to the original.
  func testRoundTripOfEveryEncoding() throws {
    for name in ["roundtrip.h5ad", "legacy_v07.h5ad", "no_x.h5ad"] {
      let original = try AnnData.read(h5ad: Fixtures.path(name))
      let out = Fixtures.roundTripDirectory + "/swift_" + name
      try original.write(h5ad: out)
      let back = try AnnData.read(h5ad: out, warn: { XCTFail("warning \($0)") })
      XCTAssertEqual(back, original, name)
    }
  }

  func testFailedWriteLeavesNoFileAndKeepsAnExistingOne() throws {
    let dir = try Fixtures.temporaryDirectory(removedAfter: self)
    let path = dir + "/out.h5ad"
    var a = try AnnData.read(h5ad: Fixtures.path("roundtrip.h5ad"))
    a.uns["bad/name"] = .string("a slash is not allowed in an element name")

    XCTAssertThrowsMessage(try a.write(h5ad: path), containing: ["bad/name"])
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "no partial or temporary file")

    try Data("previous".utf8).write(to: URL(fileURLWithPath: path))
    XCTAssertThrowsError(try a.write(h5ad: path))
    XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "previous")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["out.h5ad"])
  }

  func testWriteIntoMissingDirectoryFails() throws {
    let a = try AnnData(X: .dense(try DenseArray(rows: 1, cols: 1, values: [1.0] as [Double])))
    XCTAssertThrowsMessage(try a.write(h5ad: "/nonexistent-dir/out.h5ad"), containing: ["/nonexistent-dir"])
  }

  func testInconsistentShapesAreRejectedBeforeWriting() throws {
    var a = try AnnData(X: .dense(try DenseArray(rows: 2, cols: 2, values: [1, 2, 3, 4] as [Double])))
    a.layers["wrong"] = .dense(try DenseArray(rows: 3, cols: 2, values: [Double](repeating: 0, count: 6)))
    let dir = try Fixtures.temporaryDirectory(removedAfter: self)
    XCTAssertThrowsMessage(try a.write(h5ad: dir + "/x.h5ad"), containing: ["layers['wrong']", "(3, 2)"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.h5ad"))
  }
}
