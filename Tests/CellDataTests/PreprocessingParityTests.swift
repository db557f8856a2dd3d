import Foundation
import XCTest

@testable import CellData

/// Parity with scanpy on the bundled PBMC data (fixtures from make_hvg_fixtures.py).
final class PreprocessingParityTests: XCTestCase {
  func counts() throws -> AnnData {
    try AnnData.read(h5ad: Fixtures.data("pbmc68k_reduced.h5ad"))
  }

  func lognorm() throws -> AnnData {
    var a = try counts()
    try a.normalizeTotal(targetSum: 1e4)
    try a.log1p()
    return a
  }

  func testBundledPBMCShape() throws {
    let a = try counts()
    XCTAssertEqual([a.nObs, a.nVars], [700, 765])
    guard case .categorical(let labels)? = a.obs["bulk_labels"] else { return XCTFail("bulk_labels") }
    XCTAssertEqual(labels.categories.count, 10)
    try a.X!.requireCounts("X")
  }

  func testNormalizeTotalAndLog1pMatchScanpy() throws {
    let ours = try lognorm().X!
    let scanpy = try AnnData.read(h5ad: Fixtures.path("pbmc68k_lognorm.h5ad")).X!
    XCTAssertEqual(ours.data.dtypeName, "float32")
    assertClose(try ours.denseDoubles(), try scanpy.denseDoubles(), relative: 1e-6)
  }

  func hvgCase(_ name: String) throws -> (expected: [String: Any], options: HVGOptions, input: AnnData) {
    let all = try Fixtures.json("hvg_expected.json")["cases"] as! [String: [String: Any]]
    let expected = try XCTUnwrap(all[name])
    var options = HVGOptions(flavor: HVGFlavor(rawValue: expected["flavor"] as! String)!, nTopGenes: expected["n_top_genes"] as? Int)
    options.batchKey = expected["batch_key"] as? String
    var input = options.flavor == .seuratV3 ? try counts() : try lognorm()
    try input.obs.set("half", .categorical(Categorical((0..<input.nObs).map { $0 < 350 ? "first" : "second" })))
    return (expected, options, input)
  }

  func checkHVG(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
    var (expected, options, a) = try hvgCase(name)
    let result = try a.highlyVariableGenes(options)
    let ours = Set(zip(a.varNames, result.highlyVariable).filter(\.1).map(\.0))
    let theirs = Set(expected["hvg"] as! [String])
    XCTAssertEqual(ours.count, theirs.count, "\(name): number of genes", file: file, line: line)
    XCTAssertEqual(ours.subtracting(theirs).sorted(), [], "\(name): genes only Swift selects", file: file, line: line)
    XCTAssertEqual(theirs.subtracting(ours).sorted(), [], "\(name): genes only scanpy selects", file: file, line: line)
    let means = (expected["means"] as! [Any]).map { ($0 as? Double) ?? .nan }
    assertClose(result.means, means, relative: 1e-6, absolute: 1e-12, file: file, line: line)
    if let norm = expected["dispersions_norm"] as? [Any] {
      assertClose(result.dispersionsNorm!, norm.map { ($0 as? Double) ?? .nan }, relative: 1e-5, absolute: 1e-9, file: file, line: line)
    }
    if let norm = expected["variances_norm"] as? [Any] {
      assertClose(result.variancesNorm!, norm.map { ($0 as? Double) ?? .nan }, relative: 1e-5, file: file, line: line)
    }
  }

  func testSeuratTop200() throws { try checkHVG("seurat_top200") }
  func testSeuratCutoffs() throws { try checkHVG("seurat_cutoffs") }
  func testCellRangerTop200() throws { try checkHVG("cell_ranger_top200") }
  func testSeuratV3Top200() throws { try checkHVG("seurat_v3_top200") }
  func testSeuratV3Top500() throws { try checkHVG("seurat_v3_top500") }
  func testSeuratBatched() throws { try checkHVG("seurat_top200_batch") }
  func testCellRangerBatched() throws { try checkHVG("cell_ranger_top200_batch") }
  func testSeuratV3Batched() throws { try checkHVG("seurat_v3_top200_batch") }

  func testQCMetricsMatchScanpy() throws {
    var a = try counts()
    try a.markGenes(withPrefix: "MT-", as: "mt")
    try a.calculateQCMetrics(qcVars: ["mt"])
    let expected = try Fixtures.json("qc_expected.json")
    let obs = expected["obs"] as! [String: [Any]]
    for (column, values) in obs {
      assertClose(try a.obs.doubles(column), values.map { ($0 as? Double) ?? .nan }, relative: 1e-6)
    }
    let vars = expected["var"] as! [String: [Any]]
    for (column, values) in vars {
      assertClose(try a.var.doubles(column), values.map { ($0 as? Double) ?? .nan }, relative: 1e-6)
    }
  }
}
