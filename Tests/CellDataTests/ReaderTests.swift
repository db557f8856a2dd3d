import Foundation
import XCTest

@testable import CellData

/// 10x readers and CSV metadata against scanpy's readers (make_10x_fixtures.py).
final class ReaderTests: XCTestCase {
  func check(_ a: AnnData, _ key: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let expected = try XCTUnwrap(try Fixtures.json("tenx_expected.json")[key] as? [String: Any])
    XCTAssertEqual(a.obsNames, expected["obs_names"] as? [String], file: file, line: line)
    XCTAssertEqual(a.varNames, expected["var_names"] as? [String], file: file, line: line)
    XCTAssertEqual(a.var["gene_ids"], .array(.string(expected["gene_ids"] as! [String])), file: file, line: line)
    XCTAssertEqual(try a.X!.denseDoubles(), (expected["X"] as! [[Double]]).flatMap { $0 }, file: file, line: line)
    guard case .sparse(let s)? = a.X else { return XCTFail("X should be sparse", file: file, line: line) }
    XCTAssertEqual(s.format, .csr, file: file, line: line)
    XCTAssertEqual(s.data.dtypeName, "float32", file: file, line: line)
  }

  func testMTXv3Gzipped() throws { try check(try AnnData.read10xMTX(directory: Fixtures.path("tenx_v3_mtx")), "v3_mtx") }
  func testMTXv2() throws { try check(try AnnData.read10xMTX(directory: Fixtures.path("tenx_v2_mtx")), "v2_mtx") }
  func testH5v3() throws { try check(try AnnData.read10xH5(Fixtures.path("tenx_v3.h5")), "v3_h5") }
  func testH5v2() throws { try check(try AnnData.read10xH5(Fixtures.path("tenx_v2.h5")), "v2_h5") }

  func testMissingAndBrokenMTX() throws {
    let dir = try Fixtures.temporaryDirectory(removedAfter: self)
    XCTAssertThrowsMessage(try AnnData.read10xMTX(directory: dir), containing: [dir, "matrix.mtx"])
    try "%%MatrixMarket matrix coordinate integer general\n2 2 3\n1 1 5\n".write(toFile: dir + "/matrix.mtx", atomically: true, encoding: .utf8)
    try "g1\tA\ng2\tB\n".write(toFile: dir + "/genes.tsv", atomically: true, encoding: .utf8)
    try "c1\nc2\n".write(toFile: dir + "/barcodes.tsv", atomically: true, encoding: .utf8)
    XCTAssertThrowsMessage(try AnnData.read10xMTX(directory: dir), containing: ["matrix.mtx", "truncated"])
  }

  func testJoinCSVMetadata() throws {
    var a = try AnnData.read10xMTX(directory: Fixtures.path("tenx_v2_mtx"))
    try a.joinObsMetadata(csv: Fixtures.path("obs_metadata.csv"))
    XCTAssertEqual(try a.obs.labels("donor").prefix(3), ["donor0", "donor1", "donor0"])
    XCTAssertEqual(try a.obs.doubles("quality").prefix(3), [0, 0.5, 1])
    var other = try AnnData(X: nil, obs: DataFrame(index: ["not-a-barcode"]), var: DataFrame(index: []))
    XCTAssertThrowsMessage(try other.joinObsMetadata(csv: Fixtures.path("obs_metadata.csv")), containing: ["not in the table", "not-a-barcode"])
  }
}
