import CIgraph
import CellData
import Foundation

/// Community detection on a weighted neighbourhood graph with libigraph, as scanpy's
/// `sc.tl.leiden(flavor="igraph")` and `sc.tl.louvain` build the graph: every stored entry
/// (i, j) of the adjacency matrix becomes an undirected edge with its weight, so a
/// symmetric matrix gives each edge twice (which leaves modularity unchanged).
public enum Clustering {
  /// igraph keeps one global RNG and error handler; calls are serialised.
  private static let lock = NSLock()

  /// Leiden with the modularity objective (igraph's `community_leiden(objective_function=
  /// "modularity")`: node weights = strengths, resolution / total strength). `nIterations`
  /// negative runs until stable; scanpy's default is 2. `beta` is igraph's randomness (0.01).
  /// Returns cluster labels 0, 1, … numbered by decreasing cluster size.
  public static func leiden(_ graph: WeightedGraph, resolution: Double = 1, nIterations: Int = 2, beta: Double = 0.01,
                            useWeights: Bool = true, seed: UInt64 = 0) throws -> [Int] {
    guard resolution > 0, resolution.isFinite else { throw CellDataError("leiden: resolution must be positive, got \(resolution)") }
    guard nIterations != 0 else { throw CellDataError("leiden: n_iterations must be non-zero (negative: until stable)") }
    return try withIgraph(graph, useWeights: useWeights, seed: seed) { g, weights, edgeWeights in
      var strength = [Double](repeating: 0, count: graph.n)
      for i in 0..<graph.n {
        for p in graph.indptr[i]..<graph.indptr[i + 1] where graph.weights[p] != 0 {
          let w = useWeights ? graph.weights[p] : 1
          strength[i] += w
          strength[graph.indices[p]] += w
        }
      }
      let total = strength.reduce(0, +)
      guard total > 0 else { throw CellDataError("leiden: the graph has no edges") }
      var nodeWeights = igraph_vector_t()
      try check(strength.withUnsafeBufferPointer { igraph_vector_init_array(&nodeWeights, $0.baseAddress, Int64(graph.n)) })
      defer { igraph_vector_destroy(&nodeWeights) }
      var membership = igraph_vector_int_t()
      try check(igraph_vector_int_init(&membership, 0))
      defer { igraph_vector_int_destroy(&membership) }
      var clusters: igraph_integer_t = 0
      var quality: igraph_real_t = 0
      try check(igraph_community_leiden(g, edgeWeights, &nodeWeights, resolution / total, beta, false,
                                        Int64(nIterations), &membership, &clusters, &quality))
      return sortedBySize((0..<graph.n).map { Int(igraph_vector_int_get(&membership, Int64($0))) })
    }
  }

  /// Louvain (igraph's `community_multilevel`) at `resolution`; labels by decreasing size.
  public static func louvain(_ graph: WeightedGraph, resolution: Double = 1, useWeights: Bool = true,
                             seed: UInt64 = 0) throws -> [Int] {
    guard resolution > 0, resolution.isFinite else { throw CellDataError("louvain: resolution must be positive, got \(resolution)") }
    return try withIgraph(graph, useWeights: useWeights, seed: seed) { g, _, edgeWeights in
      var membership = igraph_vector_int_t()
      try check(igraph_vector_int_init(&membership, 0))
      defer { igraph_vector_int_destroy(&membership) }
      try check(igraph_community_multilevel(g, edgeWeights, resolution, &membership, nil, nil))
      return sortedBySize((0..<graph.n).map { Int(igraph_vector_int_get(&membership, Int64($0))) })
    }
  }

  /// Relabels clusters 0, 1, … by decreasing size; ties keep the order of first appearance.
  public static func sortedBySize(_ labels: [Int]) -> [Int] {
    var sizes: [Int: Int] = [:], first: [Int: Int] = [:]
    for (i, label) in labels.enumerated() {
      sizes[label, default: 0] += 1
      if first[label] == nil { first[label] = i }
    }
    let order = sizes.keys.sorted { sizes[$0]! != sizes[$1]! ? sizes[$0]! > sizes[$1]! : first[$0]! < first[$1]! }
    var rank: [Int: Int] = [:]
    for (r, label) in order.enumerated() { rank[label] = r }
    return labels.map { rank[$0]! }
  }

  /// Builds the igraph graph (and weight vector), seeds igraph's RNG and runs `body`.
  private static func withIgraph<T>(_ graph: WeightedGraph, useWeights: Bool, seed: UInt64,
                                    _ body: (UnsafePointer<igraph_t>, UnsafeMutablePointer<igraph_vector_t>,
                                             UnsafePointer<igraph_vector_t>?) throws -> T) throws -> T {
    guard graph.n >= 1 else { throw CellDataError("clustering: the graph is empty") }
    if let bad = graph.weights.first(where: { $0 < 0 }) { throw CellDataError("clustering: negative edge weight \(bad)") }
    lock.lock()
    defer { lock.unlock() }
    _ = igraph_set_error_handler(igraph_error_handler_ignore)
    _ = igraph_set_warning_handler(igraph_warning_handler_ignore)
    var endpoints: [Int64] = [], weightValues: [Double] = []
    endpoints.reserveCapacity(2 * graph.edgeCount)
    weightValues.reserveCapacity(graph.edgeCount)
    for i in 0..<graph.n {
      for p in graph.indptr[i]..<graph.indptr[i + 1] where graph.weights[p] != 0 {
        endpoints.append(Int64(i))
        endpoints.append(Int64(graph.indices[p]))
        weightValues.append(graph.weights[p])
      }
    }
    var edges = igraph_vector_int_t()
    try check(endpoints.withUnsafeBufferPointer { igraph_vector_int_init_array(&edges, $0.baseAddress, Int64($0.count)) })
    defer { igraph_vector_int_destroy(&edges) }
    var g = igraph_t()
    try check(igraph_create(&g, &edges, Int64(graph.n), false))
    defer { igraph_destroy(&g) }
    var weights = igraph_vector_t()
    try check(weightValues.withUnsafeBufferPointer { igraph_vector_init_array(&weights, $0.baseAddress, Int64($0.count)) })
    defer { igraph_vector_destroy(&weights) }
    try check(igraph_rng_seed(igraph_rng_default(), seed))
    return try withUnsafePointer(to: &g) { gp in
      try withUnsafeMutablePointer(to: &weights) { wp in
        try body(gp, wp, useWeights ? UnsafePointer(wp) : nil)
      }
    }
  }

  private static func check(_ status: igraph_error_t) throws {
    guard status != IGRAPH_SUCCESS else { return }
    throw CellDataError("igraph: \(String(cString: igraph_strerror(status)))")
  }
}
