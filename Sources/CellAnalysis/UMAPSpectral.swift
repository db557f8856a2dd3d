import CellData
import Foundation
import Torch

/// umap-learn's spectral initialisation: eigenvectors of the normalized Laplacian
/// I − D^−½ W D^−½ for the smallest non-trivial eigenvalues, per connected component laid
/// out around a meta-embedding (`multi_component_layout`).
enum SpectralLayout {
  static func layout(_ graph: WeightedGraph, data: Representation?, dim: Int, rng: inout SplitMix64) throws -> [[Double]] {
    let (count, labels) = graph.weakComponents()
    if count == 1 { return try connectedLayout(graph, dim: dim, rng: &rng) }
    let meta = try metaEmbedding(count: count, labels: labels, data: data, dim: dim, rng: &rng)
    var result = [[Double]](repeating: [Double](repeating: 0, count: dim), count: graph.n)
    for label in 0..<count {
      let nodes = (0..<graph.n).filter { labels[$0] == label }
      var nearest = Double.infinity
      for other in 0..<count where other != label {
        let d = zip(meta[label], meta[other]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        if d > 0 { nearest = Swift.min(nearest, d) }
      }
      let range = nearest / 2
      if nodes.count < 2 * dim || nodes.count <= dim + 1 {
        for v in nodes {
          result[v] = (0..<dim).map { meta[label][$0] + (rng.nextUnit() * 2 - 1) * range }
        }
      } else {
        let local = try connectedLayout(graph.subgraph(nodes), dim: dim, rng: &rng)
        let largest = local.flatMap { $0 }.map(Swift.abs).max() ?? 1
        let expansion = largest > 0 ? range / largest : 1
        for (p, v) in nodes.enumerated() {
          result[v] = (0..<dim).map { meta[label][$0] + local[p][$0] * expansion }
        }
      }
    }
    return result
  }

  /// Where each component goes: ±unit vectors for few components, otherwise a spectral
  /// embedding of the component centroids (umap-learn's `component_layout`).
  static func metaEmbedding(count: Int, labels: [Int], data: Representation?, dim: Int,
                            rng: inout SplitMix64) throws -> [[Double]] {
    if count <= 2 * dim || data == nil {
      if count > 2 * dim { return (0..<count).map { _ in (0..<dim).map { _ in rng.nextUnit() * 10 } } }
      let half = (count + 1) / 2
      let base = (0..<half).map { i in (0..<dim).map { $0 == i ? 1.0 : 0.0 } }
      return Array((base + base.map { $0.map { -$0 } }).prefix(count))
    }
    let data = data!
    var centroids = [[Double]](repeating: [Double](repeating: 0, count: data.cols), count: count)
    var sizes = [Double](repeating: 0, count: count)
    for i in 0..<data.rows {
      sizes[labels[i]] += 1
      for (t, v) in data.row(i).enumerated() { centroids[labels[i]][t] += v }
    }
    for c in 0..<count { centroids[c] = centroids[c].map { $0 / sizes[c] } }
    var indptr = [0], indices: [Int] = [], weights: [Double] = []
    for a in 0..<count {
      for b in 0..<count where b != a {
        let d2 = zip(centroids[a], centroids[b]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        indices.append(b)
        weights.append(Swift.max(exp(-d2), 1e-300))
      }
      indptr.append(indices.count)
    }
    let affinity = WeightedGraph(n: count, indptr: indptr, indices: indices, weights: weights)
    let embedding = try connectedLayout(affinity, dim: dim, rng: &rng)
    let largest = embedding.flatMap { $0 }.max() ?? 1
    return embedding.map { $0.map { $0 / (largest > 0 ? largest : 1) } }
  }

  /// The `dim` eigenvectors of D^−½ W D^−½ after the trivial one (largest eigenvalues first),
  /// one row per node.
  static func connectedLayout(_ graph: WeightedGraph, dim: Int, rng: inout SplitMix64) throws -> [[Double]] {
    let n = graph.n
    var degree = [Double](repeating: 0, count: n)
    for p in 0..<graph.edgeCount { degree[graph.indices[p]] += graph.weights[p] }
    guard degree.allSatisfy({ $0 > 0 }) else { throw CellDataError("UMAP: the graph has a node without edges") }
    let scale = degree.map { 1 / $0.squareRoot() }
    let trivialNorm = degree.reduce(0, +).squareRoot()
    let trivial = degree.map { $0.squareRoot() / trivialNorm }
    let vectors = try topEigenvectors(n: n, count: dim, deflate: trivial, rng: &rng) { x, y in
      for i in 0..<n {
        var s = 0.0
        for p in graph.indptr[i]..<graph.indptr[i + 1] { s += graph.weights[p] * scale[graph.indices[p]] * x[graph.indices[p]] }
        y[i] = s * scale[i]
      }
    }
    return (0..<n).map { i in vectors.map { $0[i] } }
  }

  /// The `count` largest-eigenvalue eigenvectors of a symmetric operator orthogonal to the
  /// unit vector `deflate`, by a thick-restarted Krylov subspace with Rayleigh–Ritz.
  static func topEigenvectors(n: Int, count: Int, deflate: [Double], rng: inout SplitMix64,
                              apply: ([Double], inout [Double]) -> Void) throws -> [[Double]] {
    let available = n - 1
    guard available >= count else { throw CellDataError("UMAP: \(n) nodes are too few for \(count) dimensions") }
    let maxBasis = Swift.min(available, Swift.max(2 * count + 10, 40))
    let keep = Swift.min(maxBasis - 1, count + 4)
    var basis: [[Double]] = [], images: [[Double]] = []

    func orthonormalized(_ v: [Double]) -> [Double]? {
      var w = v
      for _ in 0..<2 {
        var c = dot(w, deflate)
        for i in 0..<n { w[i] -= c * deflate[i] }
        for b in basis {
          c = dot(w, b)
          for i in 0..<n { w[i] -= c * b[i] }
        }
      }
      let norm = dot(w, w).squareRoot()
      return norm > 1e-10 ? w.map { $0 / norm } : nil
    }
    func randomVector() -> [Double] { (0..<n).map { _ in rng.nextNormal() } }
    func extend(_ v: [Double]) {
      var image = [Double](repeating: 0, count: n)
      apply(v, &image)
      basis.append(v)
      images.append(image)
    }

    var next = randomVector()
    for _ in 0..<300 {
      while basis.count < maxBasis {
        guard let v = orthonormalized(next) ?? orthonormalized(randomVector()) else { break }
        extend(v)
        next = images[images.count - 1]
      }
      let m = basis.count
      var h = [Double](repeating: 0, count: m * m)
      for a in 0..<m {
        for b in a..<m {
          let value = (dot(basis[a], images[b]) + dot(basis[b], images[a])) / 2
          h[a * m + b] = value
          h[b * m + a] = value
        }
      }
      let (values, vectors) = try withTorchErrors {
        let (w, v) = Tensor(h, shape: [m, m]).eigh()
        return (w.toArray(Double.self), v.contiguous().toArray(Double.self))
      }
      let kept = Swift.min(keep, m)
      var ritz: [[Double]] = [], ritzImages: [[Double]] = []
      var converged = true
      for r in 0..<kept {
        let column = m - 1 - r
        var x = [Double](repeating: 0, count: n), sx = [Double](repeating: 0, count: n)
        for a in 0..<m {
          let y = vectors[a * m + column]
          for i in 0..<n {
            x[i] += y * basis[a][i]
            sx[i] += y * images[a][i]
          }
        }
        if r < count {
          let theta = values[column]
          var residual = 0.0
          for i in 0..<n { residual += (sx[i] - theta * x[i]) * (sx[i] - theta * x[i]) }
          if residual.squareRoot() > 1e-8 { converged = false }
        }
        ritz.append(x)
        ritzImages.append(sx)
      }
      if converged || m == available { return Array(ritz.prefix(count)) }
      basis = ritz
      images = ritzImages
      next = ritzImages[kept - 1]
    }
    return Array(basis.prefix(count))
  }

  @inline(__always)
  static func dot(_ a: [Double], _ b: [Double]) -> Double {
    var s = 0.0
    for i in 0..<a.count { s += a[i] * b[i] }
    return s
  }
}
