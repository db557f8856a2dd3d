import ArgumentParser
import Foundation
import SingleCell

/// `singlecell metrics IN.h5ad --embedding X_scVI --label-key L --batch-key B`: the
/// scib-metrics integration benchmark of one embedding, printed as JSON.
struct MetricsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "metrics",
    abstract: "scib-metrics integration scores of an embedding (bio conservation, batch correction, total) as JSON.",
    discussion: """
      Metrics: silhouette_label, leiden_nmi, leiden_ari, clisi (bio conservation); bras, ilisi,
      graph_connectivity, pcr_comparison (batch correction); silhouette_batch is reported too.
      Aggregates follow scib-metrics' Benchmarker: category means, total = 0.6 bio + 0.4 batch.
      PCR comparison needs a pre-integration embedding (--pre-embedding, default X_pca when
      present and different from --embedding).
      """)

  @OptionGroup var global: GlobalOptions

  @Argument(help: "Input .h5ad file.") var input: String
  @Option(help: "obsm key of the embedding to score.") var embedding: String
  @Option(help: "obs column of cell-type labels.") var labelKey: String
  @Option(help: "obs column of batches.") var batchKey: String
  @Option(help: "obsm key of the unintegrated embedding for PCR comparison.") var preEmbedding: String?
  @Option(name: [.short, .customLong("output")], help: "Also write the JSON to this file.") var output: String?

  func run() throws {
    _ = try global.apply()
    let adata = try AnnData.read(h5ad: input)
    let data = try adata.representation(useRep: embedding)
    let preKey = preEmbedding ?? (adata.obsm["X_pca"] != nil && embedding != "X_pca" ? "X_pca" : nil)
    let pre = try preKey.map { try adata.representation(useRep: $0) }
    let benchmark = try IntegrationBenchmark(embedding: data, labels: adata.obsLabels(labelKey),
                                             batches: adata.obsLabels(batchKey), preIntegration: pre)
    var json: [String: Any] = [
      "embedding": embedding, "label_key": labelKey, "batch_key": batchKey, "n_cells": adata.nObs,
      "metrics": benchmark.scores,
    ]
    if let preKey { json["pre_embedding"] = preKey }
    if let bio = benchmark.bioConservation { json["bio_conservation"] = bio }
    if let batch = benchmark.batchCorrection { json["batch_correction"] = batch }
    if let total = benchmark.total { json["total"] = total }
    let text = String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]),
                      as: UTF8.self)
    print(text)
    if let output {
      let url = URL(fileURLWithPath: output)
      try Data((text + "\n").utf8).write(to: url, options: .atomic)
    }
  }
}
