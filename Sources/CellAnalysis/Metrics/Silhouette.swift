import CellData
import Torch

/// Silhouette widths as scib-metrics computes them (`silhouette_samples`, scikit-learn's
/// definition): a(i) = mean distance to the own cluster (size − 1 in the denominator),
/// b(i) = mean distance to the nearest other cluster; s = (b − a) / max(a, b), 0 for
/// singletons. Distances are computed in float64 blocks on libtorch.
public enum Silhouette {
  /// How the between-cluster distance b(i) is taken (scib-metrics' `between_cluster_distances`).
  public enum BetweenClusters: String, Sendable {
    /// The usual silhouette: the nearest other cluster.
    case nearest
    /// BRAS: mean distance to all cells of other clusters.
    case meanOther
    /// BRAS variant: the farthest other cluster.
    case furthest
  }

  public static func samples(_ x: Representation, labels: LabelCodes, metric: Neighbors.Metric = .euclidean,
                             between: BetweenClusters = .nearest) throws -> [Double] {
    try labels.requireCount(x.rows, "silhouette")
    let n = x.rows, clusters = labels.nCategories
    let sizes = labels.sizes.map(Double.init)
    var sums = [Double](repeating: 0, count: n * clusters)
    try withTorchErrors {
      try withNoGrad {
        let points = metric == .cosine ? Neighbors.normalizedRows(x) : Neighbors.centeredRows(x)
        let all = Tensor(points, shape: [n, x.cols])
        let squared = all.square().sum(dim: 1)
        let oneHot = Tensor(labels.codes.map { Int64($0) }).oneHot(clusters).to(.float64)
        let blockRows = Swift.max(1, Swift.min(n, 4_000_000 / n))
        for start in stride(from: 0, to: n, by: blockRows) {
          let rows = Swift.min(blockRows, n - start)
          let block = all.narrow(dim: 0, start: start, length: rows)
          let products = block.matmul(all.T)
          let distances: Tensor
          switch metric {
          case .euclidean:
            distances = (squared.narrow(dim: 0, start: start, length: rows).unsqueeze(dim: 1) + squared.unsqueeze(dim: 0)
              - products * 2).clamp(min: 0).sqrt()
          case .cosine:
            distances = (1 - products).clamp(min: 0)
          }
          let perCluster = distances.matmul(oneHot).contiguous()
          try perCluster.withUnsafeElements(Double.self) { buffer in
            for t in 0..<(rows * clusters) { sums[start * clusters + t] = buffer[t] }
          }
        }
      }
    }
    let total = Double(n)
    return (0..<n).map { i in
      let own = labels.codes[i]
      let intra = sums[i * clusters + own] / (sizes[own] - 1)
      var inter: Double
      switch between {
      case .nearest:
        inter = .infinity
        for c in 0..<clusters where c != own { inter = Swift.min(inter, sums[i * clusters + c] / sizes[c]) }
      case .furthest:
        inter = -.infinity
        for c in 0..<clusters where c != own { inter = Swift.max(inter, sums[i * clusters + c] / sizes[c]) }
      case .meanOther:
        var s = 0.0
        for c in 0..<clusters where c != own { s += sums[i * clusters + c] }
        inter = s / (total - sizes[own])
      }
      let value = (inter - intra) / Swift.max(intra, inter)
      return value.isNaN ? 0 : value
    }
  }

  /// scib-metrics `silhouette_label`: mean silhouette of the labels, rescaled to (s + 1) / 2.
  public static func label(_ x: Representation, labels: LabelCodes, rescale: Bool = true,
                           metric: Neighbors.Metric = .euclidean) throws -> Double {
    let s = try samples(x, labels: labels, metric: metric)
    let mean = s.reduce(0, +) / Double(s.count)
    return rescale ? (mean + 1) / 2 : mean
  }

  /// scib-metrics `silhouette_batch` (batch ASW): within each label, the silhouette of the
  /// batches, 1 − |s| per cell, averaged per label and then over labels. Labels with one batch
  /// (or as many batches as cells) are skipped.
  public static func batch(_ x: Representation, labels: LabelCodes, batches: LabelCodes, rescale: Bool = true,
                           metric: Neighbors.Metric = .euclidean, between: BetweenClusters = .nearest) throws -> Double {
    try labels.requireCount(x.rows, "silhouette_batch labels")
    try batches.requireCount(x.rows, "silhouette_batch batches")
    var groupMeans: [Double] = []
    for group in 0..<labels.nCategories {
      let members = (0..<x.rows).filter { labels.codes[$0] == group }
      let groupBatches = LabelCodes(values: members.map { batches.codes[$0] })
      if groupBatches.nCategories == 1 || groupBatches.nCategories == members.count { continue }
      let s = try samples(x.subset(members), labels: groupBatches, metric: metric, between: between)
      let scores = s.map { rescale ? 1 - Swift.abs($0) : Swift.abs($0) }
      groupMeans.append(scores.reduce(0, +) / Double(scores.count))
    }
    guard !groupMeans.isEmpty else {
      throw CellDataError("silhouette_batch is undefined: every label has a single batch (or as many batches as cells)")
    }
    return groupMeans.reduce(0, +) / Double(groupMeans.count)
  }

  /// scib-metrics `bras` (batch removal adapted silhouette): `batch` with cosine distances and
  /// the mean distance to other batches.
  public static func bras(_ x: Representation, labels: LabelCodes, batches: LabelCodes) throws -> Double {
    try batch(x, labels: labels, batches: batches, metric: .cosine, between: .meanOther)
  }
}
