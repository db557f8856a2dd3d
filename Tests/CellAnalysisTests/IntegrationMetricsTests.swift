import CellAnalysis
import CellData
import Foundation
import XCTest

/// scib-metrics 0.6.1 on the fixture's "X_corrected" embedding with bulk_labels as labels
/// and total-count tertiles as batches (see make_analysis_fixtures.py), exact neighbours.
final class IntegrationMetricsTests: XCTestCase {
  let fixtures = AnalysisFixtures.shared
  lazy var corrected = try! fixtures.embedding("X_corrected")
  lazy var labels = LabelCodes(fixtures.labels)
  lazy var batches = LabelCodes(fixtures.batches)
  lazy var knn90 = try! Neighbors.knn(corrected, k: 90)

  func assertClose(_ value: Double, _ key: String, tolerance: Double = 1e-3) {
    let expected = fixtures.scibNumber(key)
    XCTAssertEqual(value, expected, accuracy: tolerance, "\(key): \(value) vs scib-metrics \(expected)")
  }

  func testSilhouettes() throws {
    assertClose(try Silhouette.label(corrected, labels: labels), "silhouette_label")
    assertClose(try Silhouette.batch(corrected, labels: labels, batches: batches), "silhouette_batch")
    assertClose(try Silhouette.bras(corrected, labels: labels, batches: batches), "bras")
  }

  func testLISI() throws {
    assertClose(try LISI.integration(knn: knn90, batches: batches), "ilisi")
    assertClose(try LISI.cellType(knn: knn90, labels: labels), "clisi")
    let perCell = try LISI.perCell(knn: knn90, labels: batches)
    let expected = (fixtures.scib["lisi_batch_first10"] as! [NSNumber]).map(\.doubleValue)
    for (a, e) in zip(perCell.prefix(10), expected) { XCTAssertEqual(a, e, accuracy: 1e-3) }
  }

  func testGraphConnectivity() throws {
    assertClose(try GraphConnectivity.score(knn: knn90.truncated(to: 15), labels: labels), "graph_connectivity")
  }

  func testPCR() throws {
    let pre = try fixtures.embedding("X_pca")
    assertClose(try PCR.regression(pre, batches: batches), "pcr_pre", tolerance: 1e-5)
    assertClose(try PCR.regression(corrected, batches: batches), "pcr_post", tolerance: 1e-5)
    assertClose(try PCR.comparison(before: pre, after: corrected, batches: batches), "pcr_comparison")
    XCTAssertThrowsError(try PCR.regression(pre, batches: LabelCodes([String](repeating: "one", count: 700))))
  }

  func testNMIAndARIMatchScikitLearn() throws {
    let leiden = fixtures.ints("leiden_1.0")
    XCTAssertEqual(try ClusterAgreement.nmi(labels.codes, leiden), fixtures.number("nmi_leiden_vs_labels"), accuracy: 1e-12)
    XCTAssertEqual(try ClusterAgreement.ari(labels.codes, leiden), fixtures.number("ari_leiden_vs_labels"), accuracy: 1e-12)
    XCTAssertEqual(try ClusterAgreement.ari([0, 0, 1, 1], [5, 5, 2, 2]), 1)
    XCTAssertEqual(try ClusterAgreement.nmi([0, 0, 0], [1, 1, 1]), 1)
  }

  /// Every score and the aggregates within 1e-3 of scib-metrics (the Leiden sweep reproduces
  /// scib-metrics' partitions, see LeidenParityTests).
  func testLeidenSweepAndAggregateScores() throws {
    let benchmark = try IntegrationBenchmark(embedding: corrected, labels: fixtures.labels, batches: fixtures.batches,
                                             preIntegration: fixtures.embedding("X_pca"))
    let s = benchmark.scores
    for key in ["leiden_nmi", "leiden_ari", "silhouette_label", "silhouette_batch", "bras", "ilisi", "clisi",
                "graph_connectivity", "pcr_comparison"] {
      assertClose(s[key]!, key)
    }
    let reference = fixtures.json["benchmarker"] as! [String: NSNumber]
    XCTAssertEqual(benchmark.batchCorrection!, reference["Batch correction"]!.doubleValue, accuracy: 1e-3)
    XCTAssertEqual(benchmark.bioConservation!, reference["Bio conservation"]!.doubleValue, accuracy: 1e-3)
    XCTAssertEqual(benchmark.total!, reference["Total"]!.doubleValue, accuracy: 1e-3)
    // The aggregate itself is Benchmarker's formula: fed scib-metrics' own values it agrees to
    // rounding. Benchmarker's "Batch correction" mean adds numpy float32 scalars (BRAS, iLISI)
    // to Python floats, which NumPy 2 keeps in float32 (1.5e-8 off the float64 mean here).
    let fed = IntegrationBenchmark(scores: [
      "silhouette_label": reference["Silhouette label"]!.doubleValue, "leiden_nmi": reference["Leiden NMI"]!.doubleValue,
      "leiden_ari": reference["Leiden ARI"]!.doubleValue, "clisi": reference["cLISI"]!.doubleValue,
      "bras": reference["BRAS"]!.doubleValue, "ilisi": reference["iLISI"]!.doubleValue,
      "graph_connectivity": reference["Graph connectivity"]!.doubleValue,
      "pcr_comparison": reference["PCR comparison"]!.doubleValue,
    ])
    XCTAssertEqual(fed.batchCorrection!, reference["Batch correction"]!.doubleValue, accuracy: 1e-7)
    XCTAssertEqual(fed.total!, reference["Total"]!.doubleValue, accuracy: 1e-7)
    XCTAssertEqual(fed.bioConservation!, reference["Bio conservation"]!.doubleValue, accuracy: 1e-12)
  }

  func testBadInputIsAClearError() throws {
    XCTAssertThrowsError(try Silhouette.label(corrected, labels: LabelCodes(Array(fixtures.labels.prefix(10)))))
    XCTAssertThrowsError(try IntegrationBenchmark(embedding: corrected, labels: fixtures.labels,
                                                  batches: [String](repeating: "b", count: 700))) { error in
      XCTAssertTrue("\(error)".contains("two batches"), "\(error)")
    }
    let oneBatchPerLabel = LabelCodes(fixtures.labels)
    XCTAssertThrowsError(try Silhouette.batch(corrected, labels: labels, batches: oneBatchPerLabel))
  }
}
