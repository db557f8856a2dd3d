import CellAnalysis
import CellData
import Foundation
import XCTest

/// Leiden against scanpy's `sc.tl.leiden(flavor="igraph", n_iterations=2)` on our own
/// connectivities (which agree with scanpy's to 1e-5). igraph is fed scanpy's random stream;
/// the partitions are the same (LeidenParityTests) and the ARI check here is a looser guard.
final class ClusteringTests: XCTestCase {
  let fixtures = AnalysisFixtures.shared

  func neighbored() throws -> AnnData {
    var adata = try fixtures.annData()
    try adata.neighbors(nNeighbors: 15, useRep: "X_pca")
    return adata
  }

  func testLeidenAgreesWithScanpy() throws {
    var adata = try neighbored()
    for resolution in [1.0, 0.5] {
      let labels = try adata.leiden(resolution: resolution, keyAdded: "leiden_\(resolution)")
      let expected = fixtures.ints("leiden_\(resolution)")
      let ari = try ClusterAgreement.ari(expected, labels)
      XCTAssertGreaterThanOrEqual(ari, 0.9, "resolution \(resolution): ARI \(ari) vs scanpy")
    }
  }

  func testLeidenObsColumnIsSortedBySize() throws {
    var adata = try neighbored()
    try adata.leiden(resolution: 1)
    guard case .categorical(let column)? = adata.obs["leiden"], case .string(let categories) = column.categories else {
      return XCTFail("obs['leiden'] is not a categorical of strings")
    }
    XCTAssertEqual(categories, (0..<categories.count).map(String.init))
    let sizes = (0..<categories.count).map { c in column.codes.filter { $0 == c }.count }
    XCTAssertEqual(sizes, sizes.sorted(by: >))
    XCTAssertGreaterThan(categories.count, 3)
    guard case .dict(let info)? = adata.uns["leiden"], case .dict(let params)? = info["params"] else {
      return XCTFail("uns['leiden'] missing")
    }
    XCTAssertEqual(params["n_iterations"], .integer(2))
    XCTAssertEqual(params["resolution"], .number(1))
  }

  func testSeededAndResolutionMatters() throws {
    let adata = try neighbored()
    let graph = try WeightedGraph(adata.neighborsGraph())
    let first = try Clustering.leiden(graph, resolution: 1, seed: 5)
    XCTAssertEqual(first, try Clustering.leiden(graph, resolution: 1, seed: 5))
    let coarse = try Clustering.leiden(graph, resolution: 0.2, nIterations: -1, seed: 5)
    let fine = try Clustering.leiden(graph, resolution: 2, nIterations: -1, seed: 5)
    XCTAssertLessThan(Set(coarse).count, Set(fine).count)
  }

  func testLouvainFindsSimilarClusters() throws {
    var adata = try neighbored()
    let louvain = try adata.louvain(resolution: 1)
    let leiden = try adata.leiden(resolution: 1)
    XCTAssertNotNil(adata.obs["louvain"])
    XCTAssertGreaterThan(try ClusterAgreement.ari(leiden, louvain), 0.6)
  }

  func testBadInputIsAClearError() throws {
    var adata = try fixtures.annData()
    XCTAssertThrowsError(try adata.leiden()) { error in
      XCTAssertTrue("\(error)".contains("neighbors"), "\(error)")
    }
    adata = try neighbored()
    XCTAssertThrowsError(try adata.leiden(resolution: 0))
    XCTAssertThrowsError(try adata.leiden(resolution: .nan))
  }

  func testSortedBySize() {
    XCTAssertEqual(Clustering.sortedBySize([7, 3, 3, 9, 9, 9, 7]), [1, 2, 2, 0, 0, 0, 1])
  }
}
