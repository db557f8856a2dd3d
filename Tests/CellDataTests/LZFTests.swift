import CHDF5
import CHDF5Safe
import Foundation
import XCTest

@testable import CellData

/// h5py's LZF filter (id 32000): the fixtures come from tests/fixtures/celldata/make_lzf_fixtures.py.
final class LZFTests: XCTestCase {
  func testReadsLZFCompressedH5ADWrittenByAnndata() throws {
    let expected = try Fixtures.json("lzf_expected.json")
    let a = try AnnData.read(h5ad: Fixtures.path("lzf.h5ad"))
    XCTAssertEqual([a.nObs, a.nVars], expected["shape"] as? [Int])
    guard case .sparse(let x) = try XCTUnwrap(a.X) else { return XCTFail("X is not sparse") }
    XCTAssertEqual(x.nnz, expected["nnz"] as? Int)
    let values = x.denseDoubles()
    XCTAssertEqual(values.reduce(0, +), expected["sum"] as? Double)
    XCTAssertEqual(Array(values.prefix(a.nVars)), expected["row0"] as? [Double])
    XCTAssertEqual(try a.obs.labels("cell_type").prefix(8).map { $0 ?? "" }, expected["cell_type_first8"] as? [String])
    XCTAssertEqual(try a.obs.labels("donor").last ?? nil, expected["donor_last"] as? String)
  }

  func testLZFFileEqualsItsGzipTwin() throws {
    let lzf = try AnnData.read(h5ad: Fixtures.path("lzf.h5ad"))
    let gzip = try AnnData.read(h5ad: Fixtures.path("lzf_as_gzip.h5ad"))
    XCTAssertEqual(lzf, gzip)
    XCTAssertNotNil(lzf.obsm["X_pca"])
  }

  /// The caller's read decodes LZF chunks itself (`CompressedChunks`, as for gzip) into what
  /// libhdf5's read through the registered filter gives; a damaged chunk is named by the caller's
  /// read, in memory (our decoder) and backed (the filter).
  func testCorruptLZFChunkIsAClearError() throws {
    let path = Fixtures.path("lzf_corrupt.h5ad")
    XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, "/X/data", "corrupt chunk at element 0", "not an LZF block"])
    XCTAssertThrowsMessage(try BackedH5AD.open(path, isolated: false).rows(0..<400), containing: [path, "LZF", "corrupt chunk"])
  }

  func testLZFChunksAreDecodedHereAsLibhdf5DecodesThem() throws {
    let file = try H5Group.openFile(Fixtures.path("lzf.h5ad"))
    for name in ["X/data", "X/indices", "obsm/X_pca"] {
      let dataset = try file.dataset(name)
      let shape = try dataset.checkedShape()
      let count = shape.reduce(1, *)
      let type = try XCTUnwrap(dataset.numberKind().readMemoryType)
      let chunks = try XCTUnwrap(CompressedChunks(dataset, memoryType: type, count: count), name)
      XCTAssertEqual(chunks.codec, .lzf, name)
      var decoded = [UInt32](repeating: 0, count: count)  // every array here has 4-byte elements
      XCTAssertTrue(try decoded.withUnsafeMutableBytes { try chunks.read(into: $0.baseAddress!, roundBytes: 1) }, name)
      var libhdf5 = [UInt32](repeating: 1, count: count)
      var fault: Int32 = 0
      XCTAssertGreaterThanOrEqual(libhdf5.withUnsafeMutableBytes { chdf5_safe_dread(dataset.id, type, $0.baseAddress, &fault) }, 0)
      XCTAssertEqual(decoded, libhdf5, name)
    }
  }

  // The decoder itself, on hand-made blocks.

  private func decode(_ input: [UInt8], capacity: Int) -> (Int, [UInt8]) {
    var out = [UInt8](repeating: 0, count: capacity)
    let n = chdf5_lzf_decode(input, input.count, &out, capacity)
    return (n, n > 0 ? Array(out.prefix(n)) : [])
  }

  func testDecodesLiteralsAndOverlappingBackReferences() {
    // "ab" literal (control 1), then a back-reference of length 2 + 2 = 4 at distance 2
    // (control 2 << 5 = 64, offset byte 1), then a long one: length field 7 + 3 extra + 2 = 12
    // at distance 1 (control 7 << 5 = 224, extra 3, offset 0).
    let (n, out) = decode([1, 97, 98, 64, 1, 224, 3, 0], capacity: 64)
    XCTAssertEqual(n, 18)
    XCTAssertEqual(String(decoding: out, as: UTF8.self), "ababab" + String(repeating: "b", count: 12))
  }

  func testRejectsMalformedBlocks() {
    XCTAssertEqual(decode([4, 1, 2], capacity: 64).0, CHDF5_LZF_TRUNCATED, "literal past the end")
    XCTAssertEqual(decode([0, 7, 224], capacity: 64).0, CHDF5_LZF_TRUNCATED, "missing length byte")
    XCTAssertEqual(decode([0, 7, 32], capacity: 64).0, CHDF5_LZF_TRUNCATED, "missing offset byte")
    XCTAssertEqual(decode([0, 7, 32, 1], capacity: 64).0, CHDF5_LZF_BAD_REFERENCE, "before the start")
    XCTAssertEqual(decode([255, 255, 255], capacity: 64).0, CHDF5_LZF_BAD_REFERENCE)
    XCTAssertEqual(decode([3, 1, 2, 3, 4], capacity: 3).0, CHDF5_LZF_OUTPUT_FULL, "literal too long")
    XCTAssertEqual(decode([0, 7, 224, 200, 0], capacity: 64).0, CHDF5_LZF_OUTPUT_FULL, "reference too long")
  }
}
