import CellData
import Foundation

/// Agreement of two partitions, as scikit-learn computes it.
public enum ClusterAgreement {
  /// Contingency counts of two labelings (rows: first, columns: second).
  static func contingency(_ a: [Int], _ b: [Int]) -> (table: [[Double]], rows: [Double], cols: [Double]) {
    let ra = (a.max() ?? -1) + 1, rb = (b.max() ?? -1) + 1
    var table = [[Double]](repeating: [Double](repeating: 0, count: rb), count: ra)
    for (x, y) in zip(a, b) { table[x][y] += 1 }
    let rows = table.map { $0.reduce(0, +) }
    let cols = (0..<rb).map { j in table.reduce(0) { $0 + $1[j] } }
    return (table, rows, cols)
  }

  /// `normalized_mutual_info_score` with the arithmetic mean of the entropies.
  public static func nmi(_ truth: [Int], _ predicted: [Int]) throws -> Double {
    guard truth.count == predicted.count, !truth.isEmpty else {
      throw CellDataError("NMI: labelings of \(truth.count) and \(predicted.count) cells")
    }
    let a = LabelCodes(values: truth).codes, b = LabelCodes(values: predicted).codes
    let (table, rows, cols) = contingency(a, b)
    if rows.count == 1 && cols.count == 1 { return 1 }
    let n = Double(a.count)
    var mi = 0.0
    for i in 0..<rows.count {
      for j in 0..<cols.count where table[i][j] > 0 {
        let p = table[i][j] / n
        mi += p * (log(table[i][j]) + log(n) - log(rows[i]) - log(cols[j]))
      }
    }
    func entropy(_ counts: [Double]) -> Double {
      counts.reduce(0) { $1 > 0 ? $0 - ($1 / n) * log($1 / n) : $0 }
    }
    let normalizer = Swift.max((entropy(rows) + entropy(cols)) / 2, Double.ulpOfOne)
    return Swift.max(0, mi) / normalizer
  }

  /// `adjusted_rand_score` from the pair confusion matrix.
  public static func ari(_ truth: [Int], _ predicted: [Int]) throws -> Double {
    guard truth.count == predicted.count, !truth.isEmpty else {
      throw CellDataError("ARI: labelings of \(truth.count) and \(predicted.count) cells")
    }
    let a = LabelCodes(values: truth).codes, b = LabelCodes(values: predicted).codes
    let (table, rows, cols) = contingency(a, b)
    let n = Double(a.count)
    let sumSquares = table.reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }
    let tp = sumSquares - n
    let fp = cols.reduce(0) { $0 + $1 * $1 } - sumSquares
    let fn = rows.reduce(0) { $0 + $1 * $1 } - sumSquares
    let tn = n * n - fp - fn - sumSquares
    if fn == 0 && fp == 0 { return 1 }
    return 2 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))
  }

  /// scib-metrics `nmi_ari_cluster_labels_leiden`: Leiden (modularity, beta 0.01, 2 iterations)
  /// on the UMAP connectivities of the kNN graph at resolutions 2·x/10 for x = 1…10, each run
  /// with igraph's RNG set to a fresh `random.Random(seed)`; NMI and ARI at the resolution with
  /// the best NMI (the first one on ties, as `np.argmax`). `resolution` alone skips the sweep.
  public static func leidenNMIARI(knn: Neighbors.KNN, labels: LabelCodes, resolution: Double? = nil,
                                  seed: UInt64 = 42) throws -> (nmi: Double, ari: Double, resolution: Double) {
    try labels.requireCount(knn.n, "Leiden NMI/ARI")
    let graph = try WeightedGraph(FuzzySimplicialSet.connectivities(knn))
    let resolutions = resolution.map { [$0] } ?? (1...10).map { 2 * Double($0) / 10 }
    var best: (nmi: Double, ari: Double, resolution: Double)?
    for r in resolutions {
      let clusters = try Clustering.leiden(graph, resolution: r, nIterations: 2, beta: 0.01, seed: seed,
                                           randomStream: .pythonRandom)
      let nmi = try self.nmi(labels.codes, clusters)
      if best == nil || nmi > best!.nmi { best = (nmi, try ari(labels.codes, clusters), r) }
    }
    return best!
  }
}
