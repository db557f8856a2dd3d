import Foundation
import XCTest

@testable import CellData

final class PreprocessingTests: XCTestCase {
  func matrix(_ values: [Double], rows: Int, cols: Int) throws -> AnnData {
    try AnnData(X: .dense(try DenseArray(rows: rows, cols: cols, values: values)))
  }

  func testFiltersMatchScanpySemantics() throws {
    var a = try matrix([1, 0, 0, 2, 3, 0, 0, 0, 0], rows: 3, cols: 3)
    try a.filterCells(minGenes: 1)
    XCTAssertEqual(a.obsNames, ["0", "1"])
    XCTAssertEqual(try a.obs.doubles("n_genes"), [1, 2])
    try a.filterGenes(minCells: 1)
    XCTAssertEqual(a.varNames, ["0", "1"])
    XCTAssertEqual(try a.var.doubles("n_cells"), [2, 1])
  }

  func testNormalizeTotalDefaultTargetAndExclusion() throws {
    var a = try matrix([1, 3, 2, 2, 0, 0], rows: 3, cols: 2)
    try a.normalizeTotal()
    // totals 4, 4, 0 over cells with counts → median 4; the empty cell stays zero.
    XCTAssertEqual(try a.X!.denseDoubles(), [1, 3, 2, 2, 0, 0])
    var b = try matrix([1, 99, 10, 10], rows: 2, cols: 2)
    try b.normalizeTotal(targetSum: 10, excludeHighlyExpressed: true, maxFraction: 0.6)
    // gene 1 is > 60 % of cell 0, so totals use gene 0 only: 1 and 10.
    XCTAssertEqual(try b.X!.denseDoubles(), [10, 990, 10, 10])
  }

  func testBadInputIsAClearError() throws {
    var nan = try matrix([1, .nan], rows: 1, cols: 2)
    XCTAssertThrowsMessage(try nan.normalizeTotal(targetSum: 1e4), containing: ["non-finite", "nan"])
    var negative = try matrix([1, -2, 3, 4], rows: 2, cols: 2)
    XCTAssertThrowsMessage(try negative.log1p(), containing: ["-2"])
    XCTAssertThrowsMessage(
      try negative.highlyVariableGenes(HVGOptions(flavor: .seuratV3, nTopGenes: 1)), containing: ["counts", "negative"])
    XCTAssertThrowsMessage(try negative.normalizeTotal(targetSum: -1), containing: ["target sum"])
    XCTAssertThrowsMessage(try negative.highlyVariableGenes(HVGOptions(flavor: .seuratV3)), containing: ["n_top_genes"])
    var ok = try matrix([1, 2, 3, 4], rows: 2, cols: 2)
    var options = HVGOptions()
    options.batchKey = "missing"
    XCTAssertThrowsMessage(try ok.highlyVariableGenes(options), containing: ["batch key 'missing'"])
    XCTAssertThrowsMessage(try ok.matrix(layer: "counts"), containing: ["no layer 'counts'"])
    XCTAssertThrowsMessage(try matrix([0.5], rows: 1, cols: 1).X!.requireCounts("X"), containing: ["integer counts", "0.5"])
  }

  /// The checks scan the stored values in place, whatever their dtype, and name the first bad one.
  func testValueChecksFindTheFirstBadValueOfEveryDtype() throws {
    let cases: [(ArrayData, Int?)] = [
      (.float32([1, 2, -3, -4]), 2), (.float64([0, .infinity]), 1), (.int16([3, -1]), 1),
      (.uint64([1, 2]), nil), (.bool([true, false]), nil), (.string(["-1"]), nil),
    ]
    for (data, expected) in cases {
      XCTAssertEqual(data.firstNumber(where: { $0 < 0 || !$0.isFinite })?.index, expected, data.dtypeName)
    }
    XCTAssertEqual(ArrayData.float32([1, -2.5]).firstNumber(where: { $0 < 0 })?.value, -2.5)
    let counts = Matrix.dense(try DenseArray(shape: [2, 2], data: .int32([1, 2, -7, 4])))
    XCTAssertThrowsMessage(try counts.requireCounts("X"), containing: ["found -7.0 at storage position 2"])
    XCTAssertNoThrow(try counts.requireFinite("X"))
    let strings = Matrix.dense(try DenseArray(shape: [1, 1], data: .string(["a"])))
    XCTAssertThrowsMessage(try strings.requireFinite("X"), containing: ["strings"])
  }

  /// normalize_total, log1p and scale (centred or not) give the same values from every storage:
  /// dense float64 and int32, CSR and CSC float32 (each is read in place, in its own order).
  func testEveryStorageGivesTheSameValues() throws {
    let values: [Double] = [1, 0, 2, 0, 3, 4, 0, 5, 0, 6, 0, 0]  // 4 cells × 3 genes
    let totals = (0..<4).map { i in (0..<3).reduce(0.0) { $0 + values[i * 3 + $1] } }
    let normalized = (0..<12).map { Foundation.log1p(values[$0] * 10 / totals[$0 / 3]) }
    let means = (0..<3).map { j in (0..<4).reduce(0.0) { $0 + normalized[$1 * 3 + j] } / 4 }
    let stds = (0..<3).map { j in
      ((0..<4).reduce(0.0) { $0 + pow(normalized[$1 * 3 + j] - means[j], 2) } / 3).squareRoot()
    }
    let scaled = (0..<12).map { normalized[$0] / stds[$0 % 3] }
    let centred = (0..<12).map { (normalized[$0] - means[$0 % 3]) / stds[$0 % 3] }

    let csr = try SparseMatrix.csr(from: try DenseArray(rows: 4, cols: 3, values: values))
    let csr32 = try SparseMatrix(format: .csr, nRows: 4, nCols: 3, data: .float32(values.filter { $0 != 0 }.map(Float.init)),
                                 indices: csr.indices, indptr: csr.indptr)
    let storages: [(String, Matrix)] = [
      ("dense float64", .dense(try DenseArray(rows: 4, cols: 3, values: values))),
      ("dense int32", .dense(try DenseArray(shape: [4, 3], data: .int32(values.map { Int32($0) })))),
      ("CSR float32", .sparse(csr32)),
      ("CSC float32", .sparse(csr32.switchedFormat())),
    ]
    for (name, x) in storages {
      var a = try AnnData(X: x)
      try a.normalizeTotal(targetSum: 10)
      try a.log1p()
      assertClose(try a.X!.denseDoubles(), normalized, relative: 1e-6, absolute: 1e-6)
      var b = a
      try b.scale()
      assertClose(try b.X!.denseDoubles(), centred, relative: 1e-5, absolute: 1e-6)
      XCTAssertEqual(b.X!.data.dtypeName, x.data.dtypeName == "float64" ? "float64" : "float32", name)
      try a.scale(zeroCenter: false)
      assertClose(try a.X!.denseDoubles(), scaled, relative: 1e-5, absolute: 1e-6)
      XCTAssertEqual(a.X!.nRows, 4, name)
    }
  }

  func testScaleZeroCentersAndClips() throws {
    var a = try matrix([1, 10, 3, 10, 5, 10], rows: 3, cols: 2)
    try a.scale(maxValue: 0.9)
    // gene 0: mean 3, sd 2 → -1, 0, 1 clipped to ±0.9; gene 1 is constant → 0.
    XCTAssertEqual(try a.X!.denseDoubles(), [-0.9, 0, 0, 0, 0.9, 0])
    assertClose(try a.var.doubles("std"), [2, 1], relative: 1e-12)
  }

  func testLoessReproducesAQuadratic() throws {
    let x = (0..<100).map { Double($0) / 10 }
    let y = x.map { 2 + 0.5 * $0 - 0.1 * $0 * $0 }
    let fitted = try Loess1D(x: x, y: y, span: 0.3).fittedValues()
    assertClose(fitted, y, relative: 1e-9, absolute: 1e-9)
  }
}
