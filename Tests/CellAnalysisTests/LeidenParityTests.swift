import CellAnalysis
import CellData
import Foundation
import XCTest

/// Leiden partitions identical to python-igraph's: the same random stream (Python's
/// `random.Random` for scib-metrics, numpy's `RandomState` for scanpy) installed as igraph's
/// RNG, and the same edge list.
final class LeidenParityTests: XCTestCase {
  let fixtures = AnalysisFixtures.shared

  func testRandomStreamsMatchPython() throws {
    let streams = fixtures.json["random_streams"] as! [String: Any]
    for (name, stream, seed) in [("python_random_42", Clustering.RandomStream.pythonRandom, UInt64(42)),
                                 ("numpy_random_state_0", .numpyRandomState, 0)] {
      let expected = streams[name] as! [String: [NSNumber]]
      let source = try IgraphRandomSource(stream: stream, seed: seed)
      XCTAssertEqual((0..<5).map { _ in source.bits32() }, expected["getrandbits32"]!.map(\.uint64Value), name)
      // Foundation's JSON parser on Linux may round the last digit: compare to 1e-15.
      for (a, e) in zip((0..<3).map { _ in source.uniform() }, expected["random"]!.map(\.doubleValue)) {
        XCTAssertEqual(a, e, accuracy: 1e-15, name)
      }
      for (a, e) in zip((0..<3).map { _ in source.normal() }, expected["gauss"]!.map(\.doubleValue)) {
        XCTAssertEqual(a, e, accuracy: 1e-15, name)
      }
    }
    var big = MersenneTwister(pythonSeed: (1 << 40) + 7)
    XCTAssertEqual(UInt64(big.next()), (streams["python_random_2_40_plus_7"] as! [NSNumber])[0].uint64Value)
    XCTAssertThrowsError(try IgraphRandomSource(stream: .numpyRandomState, seed: 1 << 32))
  }

  /// On scib-metrics' own connectivity graph, each resolution of the sweep gives scib-metrics'
  /// partition exactly.
  func testScibLeidenPartitionsPerResolution() throws {
    let (data, indices, indptr) = fixtures.csr("scib_connectivities")
    let graph = WeightedGraph(n: 700, indptr: indptr, indices: indices, weights: data.map(Double.init))
    let labels = LabelCodes(fixtures.labels)
    let resolutions = (fixtures.scib["leiden_resolutions"] as! [NSNumber]).map(\.doubleValue)
    let nmis = (fixtures.scib["leiden_nmi_per_resolution"] as! [NSNumber]).map(\.doubleValue)
    for (r, expectedNMI) in zip(resolutions, nmis) {
      let ours = try Clustering.leiden(graph, resolution: r, nIterations: 2, beta: 0.01, seed: 42,
                                       randomStream: .pythonRandom)
      let theirs = fixtures.ints("scib_leiden_\(r)")
      XCTAssertEqual(try ClusterAgreement.ari(theirs, ours), 1, "resolution \(r): not scib-metrics' partition")
      XCTAssertEqual(try ClusterAgreement.nmi(labels.codes, ours), expectedNMI, accuracy: 1e-12, "resolution \(r)")
    }
  }

  /// From our own exact kNN and connectivities: every resolution's partition is scib-metrics'
  /// and so are the sweep's NMI and ARI.
  func testScibLeidenSweepFromOurNeighbors() throws {
    let corrected = try fixtures.embedding("X_corrected")
    let knn = try Neighbors.knn(corrected, k: 15)
    let graph = try WeightedGraph(FuzzySimplicialSet.connectivities(knn))
    for r in (fixtures.scib["leiden_resolutions"] as! [NSNumber]).map(\.doubleValue) {
      let ours = try Clustering.leiden(graph, resolution: r, seed: 42, randomStream: .pythonRandom)
      XCTAssertEqual(try ClusterAgreement.ari(fixtures.ints("scib_leiden_\(r)"), ours), 1, "resolution \(r)")
    }
    let result = try ClusterAgreement.leidenNMIARI(knn: knn, labels: LabelCodes(fixtures.labels))
    XCTAssertEqual(result.nmi, fixtures.scibNumber("leiden_nmi"), accuracy: 1e-12)
    XCTAssertEqual(result.ari, fixtures.scibNumber("leiden_ari"), accuracy: 1e-12)
  }

  /// `sc.tl.leiden(flavor="igraph", n_iterations=2, random_state=0)`: the same partitions.
  func testScanpyLeidenPartitions() throws {
    var adata = try fixtures.annData()
    try adata.neighbors(nNeighbors: 15, useRep: "X_pca")
    for resolution in [1.0, 0.5] {
      let labels = try adata.leiden(resolution: resolution, keyAdded: "leiden_\(resolution)")
      XCTAssertEqual(try ClusterAgreement.ari(fixtures.ints("leiden_\(resolution)"), labels), 1, "resolution \(resolution)")
    }
  }
}
