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
  /// unit vector `deflate`, by a thick-restarted Krylov subspace with Rayleigh–Ritz: grow an
  /// orthonormal basis to `maxBasis` vectors, keep the best `count + 4` Ritz vectors, repeat
  /// until each residual is below `tolerance` × its eigenvalue (ARPACK's criterion; umap-learn
  /// asks for 1e-4).
  static func topEigenvectors(n: Int, count: Int, deflate: [Double], tolerance: Double = 1e-4,
                              rng: inout SplitMix64, apply: ([Double], inout [Double]) -> Void) throws -> [[Double]] {
    let available = n - 1
    guard available >= count else { throw CellDataError("UMAP: \(n) nodes are too few for \(count) dimensions") }
    let maxBasis = Swift.min(available, Swift.max(60, 2 * count + 1, Swift.min(150, Int(Double(n).squareRoot()))))
    let keep = Swift.min(maxBasis - 1, count + 4)
    // Basis vectors and their images, each a row of length n.
    var basis: [[Double]] = [], images: [[Double]] = []

    func orthonormalized(_ v: [Double]) -> [Double]? {
      var w = v
      for _ in 0..<2 {
        subtractProjection(&w, deflate)
        for b in basis { subtractProjection(&w, b) }
      }
      let norm = dot(w, w).squareRoot()
      guard norm > 1e-10 else { return nil }
      return w.map { $0 / norm }
    }
    func randomVector() -> [Double] { (0..<n).map { _ in rng.nextNormal() } }

    var next = randomVector()
    for _ in 0..<500 {
      while basis.count < maxBasis {
        guard let v = orthonormalized(next) ?? orthonormalized(randomVector()) else { break }
        var image = [Double](repeating: 0, count: n)
        apply(v, &image)
        basis.append(v)
        images.append(image)
        next = image
      }
      let m = basis.count
      let (values, ritz, ritzImages) = try rayleighRitz(basis: basis, images: images, keep: Swift.min(keep, m))
      var converged = true
      for r in 0..<count {
        var residual = 0.0
        for i in 0..<n { residual += (ritzImages[r][i] - values[r] * ritz[r][i]) * (ritzImages[r][i] - values[r] * ritz[r][i]) }
        if residual.squareRoot() > tolerance * Swift.abs(values[r]) { converged = false }
      }
      if converged || m == available { return Array(ritz.prefix(count)) }
      basis = ritz
      images = ritzImages
      next = ritzImages[ritzImages.count - 1]
    }
    return Array(basis.prefix(count))
  }

  /// The `keep` Ritz pairs of largest value from an orthonormal basis and its images
  /// (projected matrix, eigen-decomposition and back-projection on libtorch).
  static func rayleighRitz(basis: [[Double]], images: [[Double]], keep: Int) throws
    -> (values: [Double], vectors: [[Double]], images: [[Double]]) {
    let m = basis.count, n = basis[0].count
    return try withTorchErrors {
      withNoGrad {
        let v = Tensor(basis.flatMap { $0 }, shape: [m, n])
        let w = Tensor(images.flatMap { $0 }, shape: [m, n])
        let projected = v.matmul(w.T)
        let (values, vectors) = ((projected + projected.T) / 2).eigh()
        let top = vectors.narrow(dim: 1, start: m - keep, length: keep).flip([1])
        let ritz = top.T.matmul(v).contiguous().toArray(Double.self)
        let ritzImages = top.T.matmul(w).contiguous().toArray(Double.self)
        let rows = { (flat: [Double]) in (0..<keep).map { Array(flat[($0 * n)..<(($0 + 1) * n)]) } }
        return (Array(values.toArray(Double.self).suffix(keep).reversed()), rows(ritz), rows(ritzImages))
      }
    }
  }

  /// w −= (w·u) u for a unit vector u.
  static func subtractProjection(_ w: inout [Double], _ u: [Double]) {
    let c = dot(w, u)
    w.withUnsafeMutableBufferPointer { wp in
      u.withUnsafeBufferPointer { up in
        for i in 0..<wp.count { wp[i] -= c * up[i] }
      }
    }
  }

  static func dot(_ a: [Double], _ b: [Double]) -> Double {
    a.withUnsafeBufferPointer { ap in
      b.withUnsafeBufferPointer { bp in
        var s = 0.0
        for i in 0..<ap.count { s += ap[i] * bp[i] }
        return s
      }
    }
  }
}
