import Foundation
import XCTest

@testable import CellData

final class H5ADReadTests: XCTestCase {
  func readRoundTrip() throws -> AnnData {
    try AnnData.read(h5ad: Fixtures.path("roundtrip.h5ad"), warn: { XCTFail("unexpected warning \($0)") })
  }

  func testReadsShapeNamesAndSparseX() throws {
    let a = try readRoundTrip()
    let expected = try Fixtures.json("roundtrip_expected.json")
    XCTAssertEqual([a.nObs, a.nVars], expected["shape"] as? [Int])
    XCTAssertEqual(a.obsNames, expected["obs_names"] as? [String])
    XCTAssertEqual(a.varNames, expected["var_names"] as? [String])
    guard case .sparse(let x)? = a.X else { return XCTFail("X should be sparse") }
    XCTAssertEqual(x.format, .csr)
    XCTAssertEqual(x.data.dtypeName, "float32")
    let dense = (expected["X_dense"] as! [[Double]]).flatMap { $0 }
    XCTAssertEqual(x.denseDoubles(), dense)
  }

  func testReadsEveryColumnKind() throws {
    let a = try readRoundTrip()
    let expected = try Fixtures.json("roundtrip_expected.json")
    XCTAssertEqual(a.obs.columnNames, expected["obs_columns"] as? [String])
    let obs = expected["obs"] as! [String: [String: Any]]

    guard case .categorical(let cellType)? = a.obs["cell_type"] else { return XCTFail("cell_type not categorical") }
    XCTAssertEqual(cellType.codes, obs["cell_type"]!["codes"] as? [Int])
    XCTAssertEqual(cellType.categories, .string(obs["cell_type"]!["categories"] as! [String]))
    XCTAssertFalse(cellType.ordered)
    XCTAssertEqual(cellType.codes[4], -1, "the missing value is code -1")
    guard case .categorical(let stage)? = a.obs["stage"] else { return XCTFail("stage not categorical") }
    XCTAssertTrue(stage.ordered)

    XCTAssertEqual(a.obs["n_genes"], .array(.int64((obs["n_genes"]!["values"] as! [Int]).map(Int64.init))))
    assertClose(try a.obs.doubles("score"), obs["score"]!["values"] as! [Double], relative: 1e-15)
    XCTAssertEqual(a.obs["is_doublet"], .array(.bool(obs["is_doublet"]!["values"] as! [Bool])))
    // anndata stores a string column with repeated values as a categorical.
    XCTAssertEqual(try a.obs.labels("donor"), (0..<12).map { "donor_\($0 % 3)" })
    let gene_ids = (expected["var"] as! [String: [String: Any]])["gene_ids"]!["values"] as! [String]
    XCTAssertEqual(a.var["gene_ids"], .array(.string(gene_ids)))

    guard case .nullable(let batch)? = a.obs["batch_int"] else { return XCTFail("batch_int not nullable") }
    XCTAssertEqual(batch.kind, .integer)
    let batchExpected = obs["batch_int"]!["values"] as! [Any]
    XCTAssertEqual(batch.mask, batchExpected.map { $0 is NSNull })
    guard case .nullable(let passed)? = a.obs["passed"] else { return XCTFail("passed not nullable") }
    XCTAssertEqual(passed.kind, .boolean)
    XCTAssertEqual(passed.mask, [false, false, true] + [false, false, true] + [false, false, true] + [false, false, true])
  }

  func testReadsLayersObsmUnsAndRaw() throws {
    let a = try readRoundTrip()
    let expected = try Fixtures.json("roundtrip_expected.json")
    XCTAssertEqual(a.layers.keys.sorted(), expected["layers"] as? [String])
    XCTAssertEqual(try a.layers["counts"]!.denseDoubles(), (expected["counts_layer_dense"] as! [[Double]]).flatMap { $0 })
    guard case .sparse(let csc)? = a.layers["csc"] else { return XCTFail("csc layer") }
    XCTAssertEqual(csc.format, .csc)
    XCTAssertEqual(csc.data.dtypeName, "int32")

    guard case .dense(let pca)? = a.obsm["X_pca"] else { return XCTFail("X_pca") }
    XCTAssertEqual(pca.shape, [12, 3])
    assertClose(pca.data.doubles!, (expected["X_pca"] as! [[Double]]).flatMap { $0 }, relative: 1e-7)
    guard case .dataFrame(let coords)? = a.obsm["coords"] else { return XCTFail("obsm data frame") }
    XCTAssertEqual(coords.columnNames, ["x", "label", "comment"])
    guard case .nullable(let comment)? = coords["comment"] else { return XCTFail("comment not nullable") }
    XCTAssertEqual(comment.kind, .string)
    XCTAssertEqual(try coords.labels("comment").prefix(4), ["a", nil, "ü", "x"])

    XCTAssertEqual(a.uns["title"], .string(expected["uns_title"] as! String))
    XCTAssertEqual(a.uns["n_pcs"], .integer(3))
    XCTAssertEqual(a.uns["resolution"], .number(0.75))
    XCTAssertEqual(a.uns["flag"], .scalar(.bool([true])))
    XCTAssertEqual(a.uns["weights"], .array(.float64([0.1, 0.2, 0.7])))
    XCTAssertEqual(a.uns["matrix"], .dense(try DenseArray(shape: [2, 3], data: .int32([0, 1, 2, 3, 4, 5]))))
    guard case .dict(let neighbors)? = a.uns["neighbors"], case .dict(let params)? = neighbors["params"] else {
      return XCTFail("nested uns")
    }
    XCTAssertEqual(params["n_neighbors"], .integer(expected["uns_neighbors_n"] as! Int))
    XCTAssertEqual(params["method"], .string("umap"))
    XCTAssertEqual(a.uns["empty"], .dict([:]))

    let raw = try XCTUnwrap(a.raw)
    XCTAssertEqual([raw.X!.nRows, raw.X!.nCols], expected["raw_shape"] as? [Int])
    XCTAssertEqual(raw.var.index, expected["raw_var_names"] as? [String])
    XCTAssertEqual(a.obsp["distances"]?.nCols, 12)
    XCTAssertEqual(a.varp["corr"]?.nCols, 7)
  }

  func testGzipCompressedFileReadsTheSame() throws {
    let plain = try readRoundTrip()
    let gzip = try AnnData.read(h5ad: Fixtures.path("gzip.h5ad"))
    XCTAssertEqual(gzip, plain)
  }

  func testReadsAnndata07Layout() throws {
    let a = try AnnData.read(h5ad: Fixtures.path("legacy_v07.h5ad"))
    XCTAssertEqual([a.nObs, a.nVars], [4, 3])
    XCTAssertEqual(try a.X!.denseDoubles(), [1, 0, 2, 0, 0, 3, 4, 5, 0, 0, 6, 0])
    XCTAssertEqual(a.obs.columnNames, ["louvain", "n_genes"])
    XCTAssertEqual(try a.obs.labels("louvain"), ["A", "B", "B", "A"])
    XCTAssertEqual(a.obs.indexName, "index")
    XCTAssertEqual(a.uns["note"], .string("legacy"))
  }
}
