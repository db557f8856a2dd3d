import CellAnalysis
import CellData
import Foundation
import Torch
import XCTest

/// PCA against scanpy's `sc.pp.pca(n_comps=30, svd_solver="arpack")` on the bundled PBMC
/// data after normalize_total(1e4) + log1p (tests/fixtures/analysis/make_pca_fixture.py).
/// scanpy works in float32: components 1–10 agree to 1e-4 of their largest value and 11–20
/// to 1e-3 (about 3e-4 seen); variance ratios to 1e-5 relative.
final class PCATests: XCTestCase {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  func preprocessedPBMC() throws -> AnnData {
    var adata = try AnnData.read(h5ad: Self.root.appendingPathComponent("data/pbmc68k_reduced.h5ad").path)
    try adata.normalizeTotal(targetSum: 1e4)
    try adata.log1p()
    return adata
  }

  func column(_ rows: [[Double]], _ j: Int) -> [Double] { rows.map { $0[j] } }

  func assertMatchesUpToSign(_ ours: [Double], _ theirs: [Double], tolerance: Double, _ what: String) {
    let dot = zip(ours, theirs).reduce(0) { $0 + $1.0 * $1.1 }
    let sign: Double = dot < 0 ? -1 : 1
    let scale = theirs.map(Swift.abs).max() ?? 1
    let worst = zip(ours, theirs).map { Swift.abs(sign * $0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst / scale, tolerance, what)
  }

  func testMatchesScanpyOnPBMC() throws {
    // 700 cells × 765 genes: the exact solver takes the cells' Gram matrix; the other exact paths,
    // forced, agree.
    for solver in [PCA.Solver.exact, .covarianceEigh, .fullSVD] { try checkAgainstScanpy(solver) }
  }

  func checkAgainstScanpy(_ solver: PCA.Solver) throws {
    var adata = try preprocessedPBMC()
    try adata.pca(nComponents: 30, solver: solver)
    let expected = try Safetensors.read(Self.root.appendingPathComponent("tests/fixtures/analysis/pca.safetensors")).tensors
    guard case .dense(let embedding)? = adata.obsm["X_pca"], case .dense(let pcs)? = adata.varm["PCs"],
      case .dict(let info)? = adata.uns["pca"], case .dense(let ratio)? = info["variance_ratio"]
    else { return XCTFail("PCA results missing") }
    XCTAssertEqual(embedding.shape, [700, 30])
    XCTAssertEqual(pcs.shape, [765, 30])
    let ours = embedding.data.doubles!, theirs = expected["X_pca"]!.toArray(Float.self).map(Double.init)
    let ourPCs = pcs.data.doubles!, theirPCs = expected["PCs"]!.toArray(Float.self).map(Double.init)
    for j in 0..<20 {
      let pick = { (flat: [Double], rows: Int) in (0..<rows).map { flat[$0 * 30 + j] } }
      assertMatchesUpToSign(pick(ours, 700), pick(theirs, 700), tolerance: j < 10 ? 1e-4 : 1e-3, "X_pca component \(j)")
      assertMatchesUpToSign(pick(ourPCs, 765), pick(theirPCs, 765), tolerance: j < 10 ? 1e-4 : 1e-3, "PCs component \(j)")
    }
    let expectedRatio = expected["variance_ratio"]!.toArray(Double.self)
    for (a, e) in zip(ratio.data.doubles!, expectedRatio) { XCTAssertEqual(a, e, accuracy: 1e-5 * e + 1e-7) }
  }

  func testRandomizedSolverAgreesWithExact() throws {
    let adata = try preprocessedPBMC()
    let values = try adata.X!.denseDoubles()
    let exact = try PCA.fit(values: values, rows: 700, cols: 765, nComponents: 10)
    let randomized = try PCA.fit(values: values, rows: 700, cols: 765, nComponents: 10,
                                 solver: .randomized(oversamples: 10, powerIterations: 6), seed: 1)
    for j in 0..<5 {
      assertMatchesUpToSign(column(randomized.embedding, j), column(exact.embedding, j), tolerance: 1e-3,
                            "randomized component \(j)")
    }
  }

  /// The exact solver gives the full SVD's results from CSR, CSC and dense storage, centred or
  /// not: through the genes' covariance read in row blocks (300 genes, fewer than the cells) and
  /// through the cells' Gram matrix (all 765 genes, more than the cells).
  func testExactSolverAgreesWithTheFullSVDFromEveryStorage() throws {
    for genes in [300, 765] { try checkExactAgainstFullSVD(genes: genes) }
  }

  func checkExactAgainstFullSVD(genes: Int) throws {
    let adata = try preprocessedPBMC().subset(vars: Array(0..<genes))
    guard case .sparse(let csr) = adata.X! else { return XCTFail("expected sparse X") }
    let storages: [(String, Matrix)] = [
      ("CSR", .sparse(csr)), ("CSC", .sparse(csr.switchedFormat())),
      ("dense", .dense(try DenseArray(rows: 700, cols: genes, values: csr.denseDoubles()))),
    ]
    for zeroCenter in [true, false] {
      let svd = try PCA.fit(storages[0].1, nComponents: 20, zeroCenter: zeroCenter, solver: .fullSVD)
      for (name, matrix) in storages {
        let fit = try PCA.fit(matrix, nComponents: 20, zeroCenter: zeroCenter)
        let what = "\(genes) genes, \(name), zeroCenter \(zeroCenter)"
        for j in 0..<20 {
          // Signs are fixed by the loadings (svd_flip), so they match without a sign search.
          let scale = column(svd.embedding, j).map(Swift.abs).max()!
          let worst = zip(column(fit.embedding, j), column(svd.embedding, j)).map { Swift.abs($0 - $1) }.max()!
          XCTAssertLessThan(worst / scale, 1e-8, "\(what): component \(j)")
        }
        for (a, e) in zip(fit.varianceRatio, svd.varianceRatio) { XCTAssertEqual(a, e, accuracy: 1e-10 * e, what) }
        for (a, e) in zip(fit.variance, svd.variance) { XCTAssertEqual(a, e, accuracy: 1e-9 * e, what) }
      }
    }
  }

  func testBadInputIsAClearError() {
    XCTAssertThrowsError(try PCA.fit(values: [1, .nan, 3, 4], rows: 2, cols: 2, nComponents: 1)) { error in
      XCTAssertTrue("\(error)".contains("NaN"), "\(error)")
    }
    XCTAssertThrowsError(try PCA.fit(values: [1, 2, 3, 4], rows: 2, cols: 2, nComponents: 3))
  }
}
