import CellAnalysis
import CellData
import Foundation
import Torch
import XCTest

/// The fixtures of tests/fixtures/analysis/make_analysis_fixtures.py (scanpy 1.11.5,
/// umap-learn 0.5.12, python-igraph, scikit-learn, scib-metrics 0.6.1) on the bundled PBMC
/// data: arrays in analysis.safetensors, scalars in analysis.json. Loaded once.
final class AnalysisFixtures: @unchecked Sendable {
  static let shared: AnalysisFixtures = {
    do { return try AnalysisFixtures() } catch { fatalError("analysis fixtures: \(error)") }
  }()

  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("tests/fixtures/analysis")

  let tensors: StateDict
  let json: [String: Any]

  init() throws {
    tensors = try Safetensors.read(Self.directory.appendingPathComponent("analysis.safetensors")).tensors
    let data = try Data(contentsOf: Self.directory.appendingPathComponent("analysis.json"))
    json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
  }

  func embedding(_ key: String) throws -> Representation {
    let t = tensors[key]!
    return try Representation(rows: t.size(0), cols: t.size(1), values: t.toArray(Float.self).map(Double.init),
                              singlePrecision: true)
  }

  func csr(_ prefix: String) -> (data: [Float], indices: [Int], indptr: [Int]) {
    (tensors["\(prefix)_data"]!.toArray(Float.self), tensors["\(prefix)_indices"]!.toArray(Int32.self).map(Int.init),
     tensors["\(prefix)_indptr"]!.toArray(Int32.self).map(Int.init))
  }

  func ints(_ key: String) -> [Int] { tensors[key]!.toArray(Int32.self).map(Int.init) }

  var labels: [String] { json["labels"] as! [String] }
  var batches: [String] { json["batch"] as! [String] }
  func number(_ key: String) -> Double { (json[key] as! NSNumber).doubleValue }
  var scib: [String: Any] { json["scib"] as! [String: Any] }
  func scibNumber(_ key: String) -> Double { (scib[key] as! NSNumber).doubleValue }

  /// An AnnData with the 700 cells, obsm X_pca and the label/batch columns.
  func annData() throws -> AnnData {
    var adata = try AnnData(X: nil, obs: DataFrame(index: (0..<700).map { "cell\($0)" }),
                            var: DataFrame(index: []))
    let x = tensors["X_pca"]!
    adata.obsm["X_pca"] = .dense(try DenseArray(rows: 700, cols: x.size(1), values: x.toArray(Float.self)))
    try adata.obs.set("bulk_labels", .categorical(Categorical(labels)))
    try adata.obs.set("batch", .categorical(Categorical(batches)))
    return adata
  }
}
