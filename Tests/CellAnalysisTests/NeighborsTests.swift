import CellAnalysis
import CellData
import Foundation
import XCTest

/// kNN and UMAP connectivities against scanpy's `sc.pp.neighbors(n_neighbors=15,
/// use_rep="X_pca", transformer="sklearn")` (exact brute force) on the PBMC PCA.
final class NeighborsTests: XCTestCase {
  let fixtures = AnalysisFixtures.shared

  func sparse(_ adata: AnnData, _ key: String) throws -> SparseMatrix {
    guard case .sparse(let m)? = adata.obsp[key] else { throw CellDataError("no obsp['\(key)']") }
    return m
  }

  /// Connectivities agree to 1e-5. scikit-learn computes cosine distances of float32 data in
  /// float32 and the small cosine bandwidths amplify its rounding (exact distances would be
  /// 3e-5 off); we repeat its float32 arithmetic (98% of distances bit-equal, the rest 1 ulp
  /// of the dot product, which OpenBLAS sums in its own kernel order): 5.4e-6 seen. scanpy's
  /// own result moves by 7e-6 (1 vs 2 OpenBLAS threads) to 9e-6 (another CPU kernel).
  func assertMatchesScanpy(metric: Neighbors.Metric, connectivityTolerance: Double) throws {
    var adata = try fixtures.annData()
    try adata.neighbors(nNeighbors: 15, useRep: "X_pca", metric: metric, method: .exact)
    let distances = try sparse(adata, "distances")
    let expected = fixtures.csr("\(metric.rawValue)_distances")
    XCTAssertEqual(distances.indptr, expected.indptr)
    XCTAssertEqual(distances.indices.map(Int.init), expected.indices, "\(metric) kNN indices differ from scanpy")
    let ours = distances.data.doubles!
    let worstDistance = zip(ours, expected.data).map { Swift.abs($0 - Double($1)) / Swift.max(1, Double($1)) }.max()!
    XCTAssertLessThan(worstDistance, 1e-5, "\(metric) distances")

    let connectivities = try sparse(adata, "connectivities")
    let expectedConnectivities = fixtures.csr("\(metric.rawValue)_connectivities")
    XCTAssertEqual(connectivities.indptr, expectedConnectivities.indptr)
    XCTAssertEqual(connectivities.indices.map(Int.init), expectedConnectivities.indices)
    let worst = zip(connectivities.data.doubles!, expectedConnectivities.data).map { Swift.abs($0 - Double($1)) }.max()!
    XCTAssertLessThan(worst, connectivityTolerance, "\(metric) connectivities (worst \(worst))")
  }

  func testEuclideanMatchesScanpy() throws { try assertMatchesScanpy(metric: .euclidean, connectivityTolerance: 1e-5) }
  func testCosineMatchesScanpy() throws { try assertMatchesScanpy(metric: .cosine, connectivityTolerance: 1e-5) }

  func testUnsNeighborsHasScanpyKeys() throws {
    var adata = try fixtures.annData()
    try adata.neighbors(nNeighbors: 10, useRep: "X_pca", nPCs: 20)
    guard case .dict(let info)? = adata.uns["neighbors"], case .dict(let params)? = info["params"] else {
      return XCTFail("uns['neighbors'] missing")
    }
    XCTAssertEqual(info["connectivities_key"], .string("connectivities"))
    XCTAssertEqual(info["distances_key"], .string("distances"))
    XCTAssertEqual(params["n_neighbors"], .integer(10))
    XCTAssertEqual(params["method"], .string("umap"))
    XCTAssertEqual(params["metric"], .string("euclidean"))
    XCTAssertEqual(params["use_rep"], .string("X_pca"))
    XCTAssertEqual(params["n_pcs"], .integer(20))
    XCTAssertEqual(try sparse(adata, "distances").nnz, 700 * 9)
  }

  func testNNDescentRecallAgainstExact() throws {
    let x = try fixtures.embedding("X_pca")
    let exact = try Neighbors.knn(x, k: 15)
    let approximate = try Neighbors.knn(x, k: 15, method: .nnDescent(), seed: 3)
    var hits = 0
    for i in 0..<x.rows {
      hits += Set(exact.neighbors(of: i).dropFirst()).intersection(approximate.neighbors(of: i).dropFirst()).count
    }
    let recall = Double(hits) / Double(x.rows * 14)
    XCTAssertGreaterThan(recall, 0.95, "NN-descent recall \(recall)")
    let again = try Neighbors.knn(x, k: 15, method: .nnDescent(), seed: 3)
    XCTAssertEqual(again, approximate, "NN-descent is not deterministic for a fixed seed")
  }

  func testBadInputIsAClearError() throws {
    var adata = try fixtures.annData()
    XCTAssertThrowsError(try adata.neighbors(useRep: "X_scVI")) { error in
      XCTAssertTrue("\(error)".contains("X_scVI") && "\(error)".contains("X_pca"), "\(error)")
    }
    XCTAssertThrowsError(try adata.neighbors(nNeighbors: 700, useRep: "X_pca")) { error in
      XCTAssertTrue("\(error)".contains("n_neighbors"), "\(error)")
    }
    XCTAssertThrowsError(try adata.neighbors(nNeighbors: 1, useRep: "X_pca"))
    var values = [Float](repeating: 0.5, count: 700 * 3)
    values[5] = .nan
    adata.obsm["X_bad"] = .dense(try DenseArray(rows: 700, cols: 3, values: values))
    XCTAssertThrowsError(try adata.neighbors(useRep: "X_bad")) { error in
      XCTAssertTrue("\(error)".contains("NaN"), "\(error)")
    }
    XCTAssertThrowsError(try adata.neighbors(useRep: "X_pca", nPCs: 51))
    XCTAssertNil(adata.obsp["connectivities"], "a failed call must not leave a graph behind")
  }
}
