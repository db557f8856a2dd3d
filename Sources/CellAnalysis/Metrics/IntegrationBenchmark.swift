import CellData

/// The scib-metrics benchmark of one embedding: bio-conservation and batch-correction
/// metrics on exact kNN graphs (15 neighbours for Leiden and graph connectivity, 90 for
/// LISI, self included, as scib-metrics' Benchmarker), and its aggregate scores.
public struct IntegrationBenchmark: Sendable {
  /// Metric values by scib-metrics' names (silhouette_label, leiden_nmi, leiden_ari, clisi,
  /// silhouette_batch, bras, ilisi, graph_connectivity, pcr_comparison).
  public private(set) var scores: [String: Double] = [:]

  /// The metrics averaged into each category: scib-metrics 0.6 Benchmarker's defaults
  /// without the isolated-label, k-means and kBET metrics. silhouette_batch is reported but,
  /// as in scib-metrics 0.6 (where BRAS replaced it), not aggregated.
  public static let bioConservationMetrics = ["silhouette_label", "leiden_nmi", "leiden_ari", "clisi"]
  public static let batchCorrectionMetrics = ["bras", "ilisi", "graph_connectivity", "pcr_comparison"]

  /// Runs every metric. `preIntegration` (e.g. X_pca) enables PCR comparison; without it
  /// that metric is left out of the batch-correction mean.
  public init(embedding: Representation, labels: [String], batches: [String], preIntegration: Representation? = nil,
              leidenSeed: UInt64 = 42) throws {
    guard labels.count == embedding.rows, batches.count == embedding.rows else {
      throw CellDataError("metrics: \(labels.count) labels and \(batches.count) batches for \(embedding.rows) cells")
    }
    let labelCodes = LabelCodes(labels), batchCodes = LabelCodes(batches)
    guard labelCodes.nCategories > 1 else { throw CellDataError("metrics need at least two labels") }
    guard batchCodes.nCategories > 1 else { throw CellDataError("metrics need at least two batches") }
    let largest = Swift.min(90, embedding.rows - 1)
    let knn90 = try Neighbors.knn(embedding, k: largest)
    let knn15 = knn90.truncated(to: Swift.min(15, largest))

    scores["silhouette_label"] = try Silhouette.label(embedding, labels: labelCodes)
    let leiden = try ClusterAgreement.leidenNMIARI(knn: knn15, labels: labelCodes, seed: leidenSeed)
    scores["leiden_nmi"] = leiden.nmi
    scores["leiden_ari"] = leiden.ari
    scores["clisi"] = try LISI.cellType(knn: knn90, labels: labelCodes)
    scores["silhouette_batch"] = try Silhouette.batch(embedding, labels: labelCodes, batches: batchCodes)
    scores["bras"] = try Silhouette.bras(embedding, labels: labelCodes, batches: batchCodes)
    scores["ilisi"] = try LISI.integration(knn: knn90, batches: batchCodes)
    scores["graph_connectivity"] = try GraphConnectivity.score(knn: knn15, labels: labelCodes)
    if let preIntegration {
      scores["pcr_comparison"] = try PCR.comparison(before: preIntegration, after: embedding, batches: batchCodes)
    }
  }

  public init(scores: [String: Double]) { self.scores = scores }

  /// Mean of the bio-conservation metrics present.
  public var bioConservation: Double? { Self.mean(Self.bioConservationMetrics.compactMap { scores[$0] }) }
  /// Mean of the batch-correction metrics present.
  public var batchCorrection: Double? { Self.mean(Self.batchCorrectionMetrics.compactMap { scores[$0] }) }
  /// 0.6 · bio conservation + 0.4 · batch correction (scib-metrics' Benchmarker).
  public var total: Double? {
    guard let bio = bioConservation, let batch = batchCorrection else { return nil }
    return 0.6 * bio + 0.4 * batch
  }

  static func mean(_ values: [Double]) -> Double? {
    values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
  }
}
