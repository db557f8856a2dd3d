import CellData
import Foundation

/// UMAP's fuzzy simplicial set (umap-learn `fuzzy_simplicial_set`, as scanpy's
/// `method="umap"` connectivities): per-point bandwidths by binary search
/// (`smooth_knn_dist`), membership strengths exp(−(d − ρ)/σ), then the fuzzy union
/// A + Aᵀ − A∘Aᵀ. Arithmetic is float32 where umap-learn's is (the bandwidth search and the
/// memberships), so that results agree to float rounding.
public enum FuzzySimplicialSet {
  static let smoothKTolerance = 1e-5
  static let minKDistScale: Float = 1e-3

  /// σ and ρ of each point from its sorted kNN distances (self first), umap-learn's
  /// `smooth_knn_dist` with `k` = the number of neighbours (self included).
  public static func smoothKNNDistances(_ knn: Neighbors.KNN, localConnectivity: Double = 1, bandwidth: Double = 1,
                                        iterations: Int = 64) -> (sigmas: [Float], rhos: [Float]) {
    let n = knn.n, k = knn.k
    let dist = knn.distances.map { Float($0) }
    let target = log2(Double(k)) * bandwidth
    let meanAll = Float(dist.reduce(0.0) { $0 + Double($1) } / Double(dist.count))
    var sigmas = [Float](repeating: 0, count: n), rhos = [Float](repeating: 0, count: n)
    for i in 0..<n {
      let row = dist[(i * k)..<((i + 1) * k)]
      let nonZero = row.filter { $0 > 0 }
      var rho: Float = 0
      if Double(nonZero.count) >= localConnectivity {
        let index = Int(localConnectivity.rounded(.down))
        let interpolation = localConnectivity - Double(index)
        if index > 0 {
          rho = nonZero[nonZero.startIndex + index - 1]
          if interpolation > smoothKTolerance {
            rho += Float(interpolation) * (nonZero[nonZero.startIndex + index] - nonZero[nonZero.startIndex + index - 1])
          }
        } else {
          rho = Float(interpolation) * nonZero[nonZero.startIndex]
        }
      } else if let largest = nonZero.max() {
        rho = largest
      }
      // umap-learn declares psum, lo, mid and hi float32; the search runs in float32.
      var lo: Float = 0, hi = Float.greatestFiniteMagnitude, mid: Float = 1
      for _ in 0..<iterations {
        var psum: Float = 0
        for j in 1..<k {
          let d = row[row.startIndex + j] - rho
          psum += d > 0 ? expf(-(d / mid)) : 1
        }
        if Swift.abs(Double(psum) - target) < smoothKTolerance { break }
        if Double(psum) > target {
          hi = mid
          mid = (lo + hi) / 2
        } else {
          lo = mid
          mid = hi >= Float.greatestFiniteMagnitude ? mid * 2 : (lo + hi) / 2
        }
      }
      var sigma = mid
      if rho > 0 {
        let meanRow = Float(row.reduce(0.0) { $0 + Double($1) } / Double(k))
        sigma = Swift.max(sigma, minKDistScale * meanRow)
      } else {
        sigma = Swift.max(sigma, minKDistScale * meanAll)
      }
      sigmas[i] = sigma
      rhos[i] = rho
    }
    return (sigmas, rhos)
  }

  /// The symmetric connectivity graph (CSR float32, sorted column indices, no zeros, no
  /// diagonal), scanpy's obsp["connectivities"]. `setOpMixRatio` 1 is the fuzzy union.
  public static func connectivities(_ knn: Neighbors.KNN, localConnectivity: Double = 1,
                                    setOpMixRatio: Double = 1) -> SparseMatrix {
    let n = knn.n, k = knn.k
    let (sigmas, rhos) = smoothKNNDistances(knn, localConnectivity: localConnectivity)
    // Directed memberships, one row per point.
    var rows = [[(Int, Float)]](repeating: [], count: n)
    for i in 0..<n {
      for m in 0..<k {
        let j = knn.indices[i * k + m]
        guard j >= 0, j != i else { continue }
        let d = Float(knn.distances[i * k + m])
        let value: Float = (d - rhos[i] <= 0 || sigmas[i] == 0) ? 1 : expf(-((d - rhos[i]) / sigmas[i]))
        if value != 0 { rows[i].append((j, value)) }
      }
      rows[i].sort { $0.0 < $1.0 }
    }
    // Transpose: rows of Aᵀ come out sorted by column because i runs in order.
    var transposed = [[(Int, Float)]](repeating: [], count: n)
    for i in 0..<n { for (j, v) in rows[i] { transposed[j].append((i, v)) } }
    let mix = Float(setOpMixRatio)
    var indices: [Int32] = [], values: [Float] = [], indptr = [0]
    indices.reserveCapacity(2 * n * k)
    values.reserveCapacity(2 * n * k)
    for i in 0..<n {
      let a = rows[i], t = transposed[i]
      var p = 0, q = 0
      while p < a.count || q < t.count {
        let column: Int, x: Float, y: Float
        if q == t.count || (p < a.count && a[p].0 < t[q].0) {
          (column, x, y) = (a[p].0, a[p].1, 0)
          p += 1
        } else if p == a.count || t[q].0 < a[p].0 {
          (column, x, y) = (t[q].0, 0, t[q].1)
          q += 1
        } else {
          (column, x, y) = (a[p].0, a[p].1, t[q].1)
          p += 1
          q += 1
        }
        let product = x * y
        let union = (x + y) - product
        let value = setOpMixRatio == 1 ? union : mix * union + (1 - mix) * product
        if value != 0 {
          indices.append(Int32(column))
          values.append(value)
        }
      }
      indptr.append(indices.count)
    }
    return try! SparseMatrix(format: .csr, nRows: n, nCols: n, data: .float32(values), indices: indices, indptr: indptr)
  }
}
