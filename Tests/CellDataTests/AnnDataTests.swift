import Foundation
import XCTest

@testable import CellData

final class AnnDataTests: XCTestCase {
  /// 3 cells × 4 genes, CSR, values 1...; obs column "group" categorical.
  func small(prefix: String = "c", genes: [String] = ["g0", "g1", "g2", "g3"]) throws -> AnnData {
    let dense = try DenseArray(rows: 3, cols: 4, values: [1, 0, 2, 0, 0, 3, 0, 4, 5, 0, 0, 6] as [Float])
    var obs = DataFrame(index: (0..<3).map { "\(prefix)\($0)" })
    try obs.set("group", .categorical(Categorical(["a", "b", "a"])))
    try obs.set("score", .array(.float64([0.5, 1.5, 2.5])))
    var a = try AnnData(X: .sparse(try SparseMatrix.csr(from: dense)), obs: obs, var: DataFrame(index: genes))
    a.obsm["X_pca"] = .dense(try DenseArray(rows: 3, cols: 2, values: [1, 2, 3, 4, 5, 6] as [Double]))
    return a
  }

  func testSubsetByIndexMaskAndName() throws {
    let a = try small()
    let s = try a.subset(obs: [2, 0], vars: [3, 1])
    XCTAssertEqual(s.obsNames, ["c2", "c0"])
    XCTAssertEqual(s.varNames, ["g3", "g1"])
    XCTAssertEqual(try s.X!.denseDoubles(), [6, 0, 0, 0])
    XCTAssertEqual(try s.obs.labels("group"), ["a", "a"])
    XCTAssertEqual(s.obsm["X_pca"], .dense(try DenseArray(rows: 2, cols: 2, values: [5, 6, 1, 2] as [Double])))
    XCTAssertEqual(try a.subset(obsMask: [false, true, false]).obsNames, ["c1"])
    XCTAssertEqual(try a.subset(obsNames: ["c1"], varNames: ["g1", "g3"]).X!.denseDoubles(), [3, 4])
    XCTAssertThrowsMessage(try a.subset(obs: [5]), containing: ["observation index 5"])
    XCTAssertThrowsMessage(try a.subset(varMask: [true]), containing: ["mask has 1 entries; expected 4"])
    XCTAssertThrowsMessage(try a.subset(varNames: ["nope"]), containing: ["'nope'"])
  }

  func testTransposeSwapsAxes() throws {
    let t = try small().transposed()
    XCTAssertEqual([t.nObs, t.nVars], [4, 3])
    XCTAssertEqual(try t.X!.denseDoubles(), [1, 0, 5, 0, 3, 0, 2, 0, 0, 0, 4, 6])
    XCTAssertEqual(t.varm["X_pca"]?.length, 3)
    XCTAssertNoThrow(try t.validate())
  }

  func testSparseFormatSwitchKeepsValues() throws {
    guard case .sparse(let csr) = try small().X! else { return XCTFail() }
    let csc = csr.switchedFormat()
    XCTAssertEqual(csc.format, .csc)
    XCTAssertEqual(csc.denseDoubles(), csr.denseDoubles())
    XCTAssertEqual(csc.switchedFormat(), csr)
  }

  func testVarNamesMakeUniqueLikeAnndata() {
    XCTAssertEqual(makeUnique(["a", "a", "b", "a", "a-1"], joiner: "-"), ["a", "a-2", "b", "a-3", "a-1"])
    XCTAssertEqual(makeUnique(["x", "y"], joiner: "-"), ["x", "y"])
  }

  /// A gene name that occurs twice is matched occurrence by occurrence; a second occurrence the
  /// query lacks is a missing (zero) gene, not a crash.
  func testAlignmentMatchesRepeatedGeneNamesInOrder() throws {
    let a = try small(genes: ["g0", "dup", "g2", "dup"])  // columns 1 and 3 both "dup"
    let (same, none) = try AnnData.aligned(a, toGenes: ["dup", "g0", "dup"])
    XCTAssertEqual(none, 0)
    XCTAssertEqual(try same.X!.denseDoubles(), [0, 1, 0, 3, 0, 4, 0, 5, 6])
    let unique = try small(genes: ["g0", "dup", "g2", "dup-1"])
    let (partial, missing) = try AnnData.aligned(unique, toGenes: ["dup", "g0", "dup"])
    XCTAssertEqual(missing, 1)
    XCTAssertEqual(try partial.X!.denseDoubles(), [0, 1, 0, 3, 0, 0, 0, 5, 0])
  }

  func testConcatenateWithBatchKey() throws {
    let a = try small(prefix: "a")
    let b = try small(prefix: "b", genes: ["g3", "g0", "g9", "g2"])
    let c = try AnnData.concatenate([a, b], batchKey: "sample", batchCategories: ["A", "B"], indexUnique: "-")
    XCTAssertEqual(c.varNames, ["g0", "g2", "g3"])
    XCTAssertEqual(c.nObs, 6)
    XCTAssertEqual(c.obsNames.first, "a0-A")
    XCTAssertEqual(try c.obs.labels("sample"), ["A", "A", "A", "B", "B", "B"])
    XCTAssertEqual(try c.obs.labels("group"), ["a", "b", "a", "a", "b", "a"])
    // b's genes g3, g0, g2 are its columns 0, 1, 3: values of cell b0 are g0=0, g2=0, g3=1.
    XCTAssertEqual(Array(try c.X!.denseDoubles()[9..<12]), [0, 0, 1])
    XCTAssertThrowsError(try AnnData.concatenate([]))
  }

  func testShapeValidation() throws {
    var a = try small()
    a.obsm["bad"] = .dense(try DenseArray(rows: 2, cols: 1, values: [1, 2] as [Double]))
    XCTAssertThrowsMessage(try a.validate(), containing: ["obsm['bad']", "expected 3"])
    XCTAssertThrowsMessage(
      try SparseMatrix(format: .csr, nRows: 2, nCols: 2, data: .float32([1]), indices: [5], indptr: [0, 1, 1]),
      containing: ["index 5 out of range"])
    XCTAssertThrowsMessage(
      try SparseMatrix(format: .csc, nRows: 2, nCols: 2, data: .float32([1, 2, 3]), indices: [0, -1, 1], indptr: [0, 2, 3]),
      containing: ["index -1 out of range 0..<2"])
    XCTAssertNoThrow(try SparseMatrix(format: .csr, nRows: 2, nCols: 2, data: .float32([]), indices: [], indptr: [0, 0, 0]))
    XCTAssertThrowsMessage(try DenseArray(shape: [2, 2], data: .float32([1])), containing: ["does not hold"])
  }
}
