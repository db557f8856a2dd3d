import CellData
import Torch

/// k-nearest-neighbour search and the neighbourhood graph of scanpy's `sc.pp.neighbors`.
public enum Neighbors {
  public enum Metric: String, Sendable, CaseIterable {
    case euclidean
    /// 1 − cosine similarity (scikit-learn's "cosine").
    case cosine
  }

  public enum Method: Sendable, Equatable {
    /// Exact search: blocked distance matrices on libtorch, candidates refined in float64.
    case exact
    /// Approximate search by NN-descent (Dong et al. 2011), seeded and deterministic.
    case nnDescent(NNDescent.Options = NNDescent.Options())

    var name: String {
      switch self {
      case .exact: return "exact"
      case .nnDescent: return "nndescent"
      }
    }
  }

  /// The k nearest neighbours of each row, the row itself first (distance 0), as scanpy's
  /// `knn_indices` / `knn_distances` (`k` includes the row itself).
  public struct KNN: Sendable, Equatable {
    public let n: Int
    public let k: Int
    /// Row-major `n × k` neighbour indices; column 0 is the row itself.
    public var indices: [Int]
    /// Row-major `n × k` distances, ascending along each row.
    public var distances: [Double]

    public init(n: Int, k: Int, indices: [Int], distances: [Double]) {
      precondition(indices.count == n * k && distances.count == n * k, "KNN: arrays do not fill \(n) × \(k)")
      self.n = n
      self.k = k
      self.indices = indices
      self.distances = distances
    }

    public func neighbors(of i: Int) -> ArraySlice<Int> { indices[(i * k)..<((i + 1) * k)] }

    /// The first `m` neighbours (self included) of each row.
    public func truncated(to m: Int) -> KNN {
      precondition(m >= 1 && m <= k, "KNN: cannot keep \(m) of \(k) neighbours")
      var idx: [Int] = [], dist: [Double] = []
      idx.reserveCapacity(n * m)
      dist.reserveCapacity(n * m)
      for i in 0..<n {
        idx += indices[(i * k)..<(i * k + m)]
        dist += distances[(i * k)..<(i * k + m)]
      }
      return KNN(n: n, k: m, indices: idx, distances: dist)
    }

    /// scanpy's obsp["distances"]: CSR float32 with the k − 1 neighbours of each row (self
    /// left out), in neighbour order.
    public func distanceMatrix() -> SparseMatrix {
      var idx: [Int32] = [], values: [Float] = []
      idx.reserveCapacity(n * (k - 1))
      values.reserveCapacity(n * (k - 1))
      for i in 0..<n {
        for j in 1..<k {
          idx.append(Int32(indices[i * k + j]))
          values.append(Float(distances[i * k + j]))
        }
      }
      let indptr = (0...n).map { $0 * (k - 1) }
      return try! SparseMatrix(format: .csr, nRows: n, nCols: n, data: .float32(values), indices: idx, indptr: indptr)
    }
  }

  /// The `k` nearest neighbours (the row itself included) of every row of `data`.
  public static func knn(_ data: Representation, k: Int, metric: Metric = .euclidean, method: Method = .exact,
                         seed: UInt64 = 0) throws -> KNN {
    guard data.rows >= 2 else { throw CellDataError("neighbors: need at least 2 observations, got \(data.rows)") }
    guard k >= 2, k < data.rows else {
      throw CellDataError("neighbors: n_neighbors (self included) must be at least 2 and below n_obs = \(data.rows), got \(k)")
    }
    switch method {
    case .exact: return try exactKNN(data, k: k, metric: metric)
    case .nnDescent(let options): return try NNDescent.knn(data, k: k, metric: metric, options: options, seed: seed)
    }
  }

  /// Exact search. Candidate blocks come from one float32 matrix product per block of rows
  /// (‖y‖² − 2x·y on centred data, or −2x̂·ŷ for cosine); k + max(8, k/2) candidates per
  /// row are then re-measured directly in float64, so order and values are exact unless the
  /// float32 error (~1e-7 of the squared norms) reorders points that many ranks apart.
  ///
  /// Cosine distances of float32 data (`singlePrecision`) are re-measured as scikit-learn's
  /// `cosine_distances` computes them in float32 instead (`SklearnCosine32`): its rounding,
  /// 1e-7 on distances of ~0.01, moves UMAP connectivities by 3e-5 through the small cosine
  /// bandwidths, and scanpy's connectivities carry it.
  static func exactKNN(_ data: Representation, k: Int, metric: Metric) throws -> KNN {
    let n = data.rows, d = data.cols
    let points = metric == .cosine ? normalizedRows(data) : centeredRows(data)
    let candidates = Swift.min(n, k + Swift.max(8, k / 2))
    let blockRows = Swift.max(1, Swift.min(n, 4_000_000 / n))
    var candidateIndices = [Int](repeating: 0, count: n * candidates)
    try withTorchErrors {
      try withNoGrad {
        let x = Tensor(points.map { Float($0) }, shape: [n, d])
        // Per row, ranking by ‖y‖² − 2x·y equals ranking by distance (‖x‖² is constant).
        let scaledT = (x * -2).T.contiguous()
        let squaredNorms = x.square().sum(dim: 1).unsqueeze(dim: 0)
        for start in stride(from: 0, to: n, by: blockRows) {
          let rows = Swift.min(blockRows, n - start)
          let block = x.narrow(dim: 0, start: start, length: rows)
          let scores: Tensor
          switch metric {
          case .euclidean: scores = block.matmul(scaledT) + squaredNorms
          case .cosine: scores = block.matmul(scaledT)
          }
          let top = scores.topk(candidates, dim: 1, largest: false).indices.contiguous()
          try top.withUnsafeElements(Int64.self) { buffer in
            for t in 0..<(rows * candidates) { candidateIndices[start * candidates + t] = Int(buffer[t]) }
          }
        }
      }
    }
    var indices = [Int](repeating: 0, count: n * k)
    var distances = [Double](repeating: 0, count: n * k)
    let cosine32 = metric == .cosine && data.singlePrecision ? SklearnCosine32(data) : nil
    points.withUnsafeBufferPointer { p in
      var row: [(Double, Int)] = []
      row.reserveCapacity(candidates)
      for i in 0..<n {
        row.removeAll(keepingCapacity: true)
        for c in 0..<candidates {
          let j = candidateIndices[i * candidates + c]
          if j != i { row.append((cosine32?.distance(i, j) ?? distance(p, i, j, d, metric), j)) }
        }
        row.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        indices[i * k] = i
        for m in 1..<k {
          indices[i * k + m] = row[m - 1].1
          distances[i * k + m] = row[m - 1].0
        }
      }
    }
    return KNN(n: n, k: k, indices: indices, distances: distances)
  }

  /// Distance between rows i and j of row-major `p` (width d) already centred (euclidean) or
  /// normalised (cosine).
  @inline(__always)
  static func distance(_ p: UnsafeBufferPointer<Double>, _ i: Int, _ j: Int, _ d: Int, _ metric: Metric) -> Double {
    var s = 0.0
    switch metric {
    case .euclidean:
      for t in 0..<d {
        let diff = p[i * d + t] - p[j * d + t]
        s += diff * diff
      }
      return s.squareRoot()
    case .cosine:
      for t in 0..<d { s += p[i * d + t] * p[j * d + t] }
      return Swift.max(0, Swift.min(2, 1 - s))
    }
  }

  /// Rows minus the column means (Euclidean distances are unchanged; cancellation is smaller).
  static func centeredRows(_ data: Representation) -> [Double] {
    let n = data.rows, d = data.cols
    var means = [Double](repeating: 0, count: d)
    for i in 0..<n { for t in 0..<d { means[t] += data.values[i * d + t] } }
    for t in 0..<d { means[t] /= Double(n) }
    var out = data.values
    for i in 0..<n { for t in 0..<d { out[i * d + t] -= means[t] } }
    return out
  }

  /// Rows scaled to unit length (zero rows stay zero, so their cosine distance is 1).
  static func normalizedRows(_ data: Representation) -> [Double] {
    let d = data.cols
    var out = data.values
    for i in 0..<data.rows {
      var s = 0.0
      for t in 0..<d { s += out[i * d + t] * out[i * d + t] }
      let norm = s.squareRoot()
      if norm > 0 { for t in 0..<d { out[i * d + t] /= norm } }
    }
    return out
  }
}

/// scikit-learn's `cosine_distances` on float32 data, operation by operation: rows scaled by
/// `normalize` (float32 norms from numpy's `einsum("ij,ij->i")`, whose SSE loop keeps four
/// float32 partial sums over an unrolled stride of 16, then divides), dot products in float32
/// accumulated by fused multiply-adds in column order (OpenBLAS' sgemm kernel order: bit-equal
/// to it for 98% of pairs on the fixture, 1 float32 ulp otherwise), and 1 − s in float32,
/// clipped to [0, 2].
struct SklearnCosine32 {
  let d: Int
  let rows: [Float]

  init(_ data: Representation) {
    d = data.cols
    var rows = data.values.map { Float($0) }
    for i in 0..<data.rows {
      let base = i * d
      let norm = Self.einsumSquaredNorm(rows, base, d).squareRoot()
      if norm != 0 { for t in 0..<d { rows[base + t] /= norm } }
    }
    self.rows = rows
  }

  /// numpy's `sum_of_products_contig_contig_outstride0_two` for float32 with 4-lane SSE
  /// vectors, without fused multiply-add: blocks of 16 fold into the lane sums last vector
  /// first, the tail vector by vector, then (l0 + l1) + (l2 + l3).
  static func einsumSquaredNorm(_ x: [Float], _ base: Int, _ d: Int) -> Float {
    var lanes: (Float, Float, Float, Float) = (0, 0, 0, 0)
    func add(_ offset: Int, _ acc: (Float, Float, Float, Float)) -> (Float, Float, Float, Float) {
      func v(_ l: Int) -> Float { offset + l < d ? x[base + offset + l] : 0 }
      return (v(0) * v(0) + acc.0, v(1) * v(1) + acc.1, v(2) * v(2) + acc.2, v(3) * v(3) + acc.3)
    }
    var start = 0
    while d - start >= 16 {
      lanes = add(start, add(start + 4, add(start + 8, add(start + 12, lanes))))
      start += 16
    }
    while start < d {
      lanes = add(start, lanes)
      start += 4
    }
    return (lanes.0 + lanes.1) + (lanes.2 + lanes.3)
  }

  func distance(_ i: Int, _ j: Int) -> Double {
    var s: Float = 0
    for t in 0..<d { s = s.addingProduct(rows[i * d + t], rows[j * d + t]) }
    return Double(Swift.max(0, Swift.min(2, 1 - s)))
  }
}
