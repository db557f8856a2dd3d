import CellData

/// scikit-learn's `trustworthiness`: how far the k nearest neighbours in the embedding
/// reach into the ranking of the original space,
/// T = 1 − 2 / (n k (2n − 3k − 1)) · Σ_i Σ_{j ∈ kNN_embedded(i)} max(0, rank_i(j) − k),
/// with rank_i(j) the position of j among i's neighbours in the original space (1-based,
/// ties by index as a stable argsort).
public func trustworthiness(original: Representation, embedded: Representation, nNeighbors: Int = 5,
                            metric: Neighbors.Metric = .euclidean) throws -> Double {
  let n = original.rows
  guard embedded.rows == n else {
    throw CellDataError("trustworthiness: \(n) original rows but \(embedded.rows) embedded rows")
  }
  guard nNeighbors >= 1, Double(nNeighbors) < Double(n) / 2 else {
    throw CellDataError("trustworthiness: n_neighbors (\(nNeighbors)) must be below n_samples / 2 (\(n) samples)")
  }
  let embeddedNeighbors = try Neighbors.knn(embedded, k: nNeighbors + 1)
  let points = metric == .cosine ? Neighbors.normalizedRows(original) : original.values
  let d = original.cols, k = nNeighbors
  var penalty = 0.0
  points.withUnsafeBufferPointer { p in
    var row = [Double](repeating: 0, count: n)
    for i in 0..<n {
      for j in 0..<n { row[j] = j == i ? .infinity : Neighbors.distance(p, i, j, d, metric) }
      for j in embeddedNeighbors.neighbors(of: i).dropFirst() {
        let dij = row[j]
        var rank = 1
        for m in 0..<n where row[m] < dij || (row[m] == dij && m < j) { rank += 1 }
        if rank > k { penalty += Double(rank - k) }
      }
    }
  }
  let nd = Double(n), kd = Double(k)
  return 1 - penalty * (2 / (nd * kd * (2 * nd - 3 * kd - 1)))
}
