import CellData
import Foundation

/// The local inverse Simpson index (Korsunsky et al. 2019) as scib-metrics' `lisi_knn`:
/// Gaussian neighbour weights on the kNN distances with a per-cell bandwidth found by
/// binary search to the target perplexity, then 1 / Σ_label (weight of the label)².
public enum LISI {
  /// LISI of every cell. `knn` lists each cell first (it is masked out); `perplexity`
  /// defaults to floor(k / 3) with k the number of neighbours listed (self included).
  public static func perCell(knn: Neighbors.KNN, labels: LabelCodes, perplexity: Double? = nil,
                             tolerance: Double = 1e-5) throws -> [Double] {
    try labels.requireCount(knn.n, "LISI")
    let k = knn.k
    let target = log(perplexity ?? (Double(k) / 3).rounded(.down))
    guard target.isFinite else { throw CellDataError("LISI: perplexity must be positive") }
    var out = [Double](repeating: 0, count: knn.n)
    var p = [Double](repeating: 0, count: k)
    for i in 0..<knn.n {
      let base = i * k
      func entropy(_ beta: Double) -> Double {
        var sum = 0.0, weighted = 0.0
        for m in 0..<k {
          let d = knn.distances[base + m]
          p[m] = knn.indices[base + m] == i ? 0 : exp(-d * beta)
          sum += p[m]
          weighted += d * p[m]
        }
        guard sum > 0 else {
          for m in 0..<k { p[m] = 0 }
          return 0
        }
        for m in 0..<k { p[m] /= sum }
        return log(sum) + beta * weighted / sum
      }
      var beta = 1.0, low = -Double.infinity, high = Double.infinity
      var h = entropy(beta)
      var difference = h - target
      var tries = 0
      while Swift.abs(difference) >= tolerance && tries < 50 {
        if difference > 0 {
          low = beta
          beta = high == .infinity ? beta * 2 : (beta + high) / 2
        } else {
          high = beta
          beta = low == -.infinity ? beta / 2 : (beta + low) / 2
        }
        h = entropy(beta)
        difference = h - target
        tries += 1
      }
      if h == 0 {
        out[i] = -1
        continue
      }
      var perLabel = [Double](repeating: 0, count: labels.nCategories)
      for m in 0..<k { perLabel[labels.codes[knn.indices[base + m]]] += p[m] }
      out[i] = 1 / perLabel.reduce(0) { $0 + $1 * $1 }
    }
    return out
  }

  /// scib-metrics `ilisi_knn`: median batch LISI, scaled to (median − 1) / (batches − 1).
  public static func integration(knn: Neighbors.KNN, batches: LabelCodes, perplexity: Double? = nil,
                                 scale: Bool = true) throws -> Double {
    guard batches.nCategories > 1 || !scale else { throw CellDataError("iLISI needs at least two batches") }
    let median = try nanMedian(perCell(knn: knn, labels: batches, perplexity: perplexity))
    return scale ? (median - 1) / Double(batches.nCategories - 1) : median
  }

  /// scib-metrics `clisi_knn`: median label LISI, scaled to (labels − median) / (labels − 1).
  public static func cellType(knn: Neighbors.KNN, labels: LabelCodes, perplexity: Double? = nil,
                              scale: Bool = true) throws -> Double {
    guard labels.nCategories > 1 || !scale else { throw CellDataError("cLISI needs at least two labels") }
    let median = try nanMedian(perCell(knn: knn, labels: labels, perplexity: perplexity))
    let count = Double(labels.nCategories)
    return scale ? (count - median) / (count - 1) : median
  }

  static func nanMedian(_ values: [Double]) throws -> Double {
    let sorted = values.filter { !$0.isNaN }.sorted()
    guard !sorted.isEmpty else { throw CellDataError("LISI: no finite values") }
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  }
}
