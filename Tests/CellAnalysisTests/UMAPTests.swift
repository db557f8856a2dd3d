import CellAnalysis
import CellData
import Foundation
import XCTest

/// UMAP against umap-learn through `sc.tl.umap(random_state=0)` on the same neighbours. The
/// random streams differ, so layouts are compared by trustworthiness (scikit-learn's, k 15).
final class UMAPTests: XCTestCase {
  let fixtures = AnalysisFixtures.shared

  func testABParamsMatchUmapLearn() throws {
    let (a, b) = try UMAP.findABParams(spread: 1, minDist: 0.5)
    XCTAssertEqual(a, fixtures.number("umap_a"), accuracy: 1e-5)
    XCTAssertEqual(b, fixtures.number("umap_b"), accuracy: 1e-5)
    for (key, spread, minDist) in [("ab_min_dist_0.1", 1.0, 0.1), ("ab_spread_2_min_dist_0.25", 2.0, 0.25)] {
      let expected = (fixtures.json[key] as! [NSNumber]).map(\.doubleValue)
      let fitted = try UMAP.findABParams(spread: spread, minDist: minDist)
      XCTAssertEqual(fitted.a, expected[0], accuracy: 1e-5 * expected[0], key)
      XCTAssertEqual(fitted.b, expected[1], accuracy: 1e-5 * expected[1], key)
    }
    XCTAssertThrowsError(try UMAP.findABParams(spread: 0, minDist: 0.5))
  }

  func testTrustworthinessMatchesScikitLearn() throws {
    let x = try fixtures.embedding("X_pca"), scanpyUMAP = try fixtures.embedding("X_umap")
    let t15 = try trustworthiness(original: x, embedded: scanpyUMAP, nNeighbors: 15)
    XCTAssertEqual(t15, fixtures.number("umap_trustworthiness"), accuracy: 1e-9)
    let t5 = try trustworthiness(original: x, embedded: scanpyUMAP, nNeighbors: 5)
    XCTAssertEqual(t5, fixtures.number("trustworthiness_scanpy_umap_k5"), accuracy: 1e-9)
    XCTAssertThrowsError(try trustworthiness(original: x, embedded: scanpyUMAP, nNeighbors: 350))
  }

  func testLayoutIsAsTrustworthyAsUmapLearn() throws {
    var adata = try fixtures.annData()
    try adata.neighbors(nNeighbors: 15, useRep: "X_pca")
    try adata.umap(seed: 0)
    guard case .dense(let coordinates)? = adata.obsm["X_umap"], case .dict(let info)? = adata.uns["umap"],
      case .dict(let params)? = info["params"]
    else { return XCTFail("X_umap or uns['umap'] missing") }
    XCTAssertEqual(coordinates.shape, [700, 2])
    XCTAssertEqual(params["a"], .number(try UMAP.findABParams(spread: 1, minDist: 0.5).a))
    let ours = try Representation(rows: 700, cols: 2, values: coordinates.data.doubles!)
    let t = try trustworthiness(original: fixtures.embedding("X_pca"), embedded: ours, nNeighbors: 15)
    let reference = fixtures.number("umap_trustworthiness")
    XCTAssertEqual(t, reference, accuracy: 0.02, "trustworthiness \(t) vs umap-learn \(reference)")
  }

  func testSameSeedSameLayoutOtherSeedOther() throws {
    let knn = try Neighbors.knn(fixtures.embedding("X_pca").subset(Array(0..<200)), k: 10)
    let graph = try WeightedGraph(FuzzySimplicialSet.connectivities(knn))
    let options = UMAP.Options(nEpochs: 50)
    let first = try UMAP.embed(graph: graph, options: options, seed: 7)
    let second = try UMAP.embed(graph: graph, options: options, seed: 7)
    let other = try UMAP.embed(graph: graph, options: options, seed: 8)
    XCTAssertEqual(first.embedding, second.embedding)
    XCTAssertNotEqual(first.embedding, other.embedding)
    XCTAssertTrue(first.embedding.allSatisfy { $0.isFinite })
  }

  func testDisconnectedComponentsAreLaidOutApart() throws {
    // Two far-apart blobs: the kNN graph has two components; each gets its own region.
    var values: [Double] = []
    for i in 0..<120 {
      let offset = i < 60 ? 0.0 : 1000.0
      for j in 0..<5 {
        let noise = sin(Double(i) * 12.9898 + Double(j) * 78.233) * 43758.5453
        values.append(offset + noise - noise.rounded(.down))
      }
    }
    let data = try Representation(rows: 120, cols: 5, values: values)
    let graph = try WeightedGraph(FuzzySimplicialSet.connectivities(Neighbors.knn(data, k: 8)))
    XCTAssertEqual(graph.weakComponents().count, 2)
    let result = try UMAP.embed(graph: graph, data: data, options: UMAP.Options(nEpochs: 100), seed: 1)
    let xs = stride(from: 0, to: 240, by: 2).map { Double(result.embedding[$0]) }
    let ys = stride(from: 1, to: 240, by: 2).map { Double(result.embedding[$0]) }
    func centroid(_ r: Range<Int>) -> (Double, Double) {
      (r.map { xs[$0] }.reduce(0, +) / Double(r.count), r.map { ys[$0] }.reduce(0, +) / Double(r.count))
    }
    let (a, b) = (centroid(0..<60), centroid(60..<120))
    XCTAssertGreaterThan(((a.0 - b.0) * (a.0 - b.0) + (a.1 - b.1) * (a.1 - b.1)).squareRoot(), 1)
  }

  func testUMAPWithoutNeighborsIsAClearError() throws {
    var adata = try fixtures.annData()
    XCTAssertThrowsError(try adata.umap()) { error in
      XCTAssertTrue("\(error)".contains("neighbors"), "\(error)")
    }
  }
}
