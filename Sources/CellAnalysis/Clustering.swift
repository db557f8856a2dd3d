import CIgraph
import CellData
import Foundation

/// Community detection on a weighted neighbourhood graph with libigraph, as scanpy's
/// `sc.tl.leiden(flavor="igraph")` and `sc.tl.louvain` build the graph: every stored entry
/// (i, j) of the adjacency matrix becomes an undirected edge with its weight, in the matrix's
/// (row-major) order, so a symmetric matrix gives each edge twice (which leaves modularity
/// unchanged). scib-metrics builds the same edge list (`Weighted_Adjacency(mode="directed")`
/// then `to_undirected(mode="each")`).
///
/// igraph draws its random numbers from the stream that python-igraph would feed it
/// (`RandomStream`), so that with the same graph and seed the partitions are the reference's,
/// not merely statistically alike.
public enum Clustering {
  /// igraph keeps one global RNG and error handler; calls are serialised.
  private static let lock = NSLock()

  /// The random stream igraph's Leiden and Louvain consume. python-igraph's
  /// `set_random_number_generator(obj)` installs a 32-bit generator whose raw draws are
  /// `obj.getrandbits(32)`, uniform reals `obj.random()` and normals `obj.gauss(0, 1)`;
  /// these cases reproduce the objects the reference libraries install.
  public enum RandomStream: Sendable, Equatable {
    /// scanpy's `sc.tl.leiden(flavor="igraph", random_state=seed)`: numpy's
    /// `RandomState(seed)` behind scanpy's `_RNGIgraph` (`getrandbits(32)` =
    /// `tomaxint() & 0xFFFFFFFF`, `random` = `random_sample`, `gauss` = `normal`).
    case numpyRandomState
    /// scib-metrics' Leiden: Python's `random.Random(seed)`.
    case pythonRandom
  }

  /// Leiden with the modularity objective (igraph's `community_leiden(objective_function=
  /// "modularity")`: node weights = strengths, resolution / total strength). `nIterations`
  /// negative runs until stable; scanpy's default is 2. `beta` is igraph's randomness (0.01).
  /// `seed` seeds `randomStream` (scanpy's `random_state`, default 0). Returns cluster labels
  /// 0, 1, … numbered by decreasing cluster size (igraph's own numbering is by first appearance;
  /// the partition is the same).
  public static func leiden(_ graph: WeightedGraph, resolution: Double = 1, nIterations: Int = 2, beta: Double = 0.01,
                            useWeights: Bool = true, seed: UInt64 = 0,
                            randomStream: RandomStream = .numpyRandomState) throws -> [Int] {
    guard resolution > 0, resolution.isFinite else { throw CellDataError("leiden: resolution must be positive, got \(resolution)") }
    guard nIterations != 0 else { throw CellDataError("leiden: n_iterations must be non-zero (negative: until stable)") }
    return try withIgraph(graph, useWeights: useWeights, seed: seed, randomStream: randomStream) { g, weights, edgeWeights in
      // python-igraph's community_leiden(objective_function="modularity"): node weights are
      // igraph_strength(ALL, NO_LOOPS) and the resolution is divided by their sum.
      var nodeWeights = igraph_vector_t()
      try check(igraph_vector_init(&nodeWeights, 0))
      defer { igraph_vector_destroy(&nodeWeights) }
      try check(igraph_strength(g, &nodeWeights, igraph_vss_all(), IGRAPH_ALL, false, edgeWeights))
      let total = igraph_vector_sum(&nodeWeights)
      guard total > 0 else { throw CellDataError("leiden: the graph has no edges") }
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
                             seed: UInt64 = 0, randomStream: RandomStream = .numpyRandomState) throws -> [Int] {
    guard resolution > 0, resolution.isFinite else { throw CellDataError("louvain: resolution must be positive, got \(resolution)") }
    return try withIgraph(graph, useWeights: useWeights, seed: seed, randomStream: randomStream) { g, _, edgeWeights in
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

  /// Builds the igraph graph (and weight vector), installs the seeded random stream as igraph's
  /// default RNG and runs `body`; igraph's own RNG is restored afterwards.
  private static func withIgraph<T>(_ graph: WeightedGraph, useWeights: Bool, seed: UInt64, randomStream: RandomStream,
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
    let source = try IgraphRandomSource(stream: randomStream, seed: seed)
    var rng = igraph_rng_t(type: igraphRandomType, state: Unmanaged.passUnretained(source).toOpaque(), is_seeded: true)
    // libigraph 0.10 copies the struct into its default; later versions keep the pointer, which
    // stays valid until the default is restored below.
    var saved = igraph_rng_default().pointee
    return try withExtendedLifetime(source) {
      try withUnsafeMutablePointer(to: &rng) { rngPointer in
        igraph_rng_set_default(rngPointer)
        defer { igraph_rng_set_default(&saved) }
        return try withUnsafePointer(to: &g) { gp in
          try withUnsafeMutablePointer(to: &weights) { wp in
            try body(gp, wp, useWeights ? UnsafePointer(wp) : nil)
          }
        }
      }
    }
  }

  /// The igraph RNG type over `IgraphRandomSource`, laid out as python-igraph's
  /// `igraph_rngtype_Python`: 32 bits, `get`, `get_real` and `get_norm` only.
  nonisolated(unsafe) private static let igraphRandomType: UnsafeMutablePointer<igraph_rng_type_t> = {
    func source(_ state: UnsafeMutableRawPointer?) -> IgraphRandomSource {
      Unmanaged<IgraphRandomSource>.fromOpaque(state!).takeUnretainedValue()
    }
    let type = UnsafeMutablePointer<igraph_rng_type_t>.allocate(capacity: 1)
    type.initialize(to: igraph_rng_type_t(
      name: UnsafePointer(strdup("swift-singlecell Python-compatible MT19937")), bits: 32,
      init: nil, destroy: nil, seed: nil,
      get: { source($0).bits32() }, get_int: nil,
      get_real: { source($0).uniform() }, get_norm: { source($0).normal() },
      get_geom: nil, get_binom: nil, get_exp: nil, get_gamma: nil, get_pois: nil))
    return type
  }()

  private static func check(_ status: igraph_error_t) throws {
    guard status != IGRAPH_SUCCESS else { return }
    throw CellDataError("igraph: \(String(cString: igraph_strerror(status)))")
  }
}

/// One seeded random stream, in the shape of the generator object python-igraph calls:
/// `getrandbits(32)`, `random()`, `gauss(0, 1)`. `Clustering` installs it as igraph's RNG.
public final class IgraphRandomSource {
  private var twister: MersenneTwister
  private let stream: Clustering.RandomStream
  private var spareNormal: Double?

  public init(stream: Clustering.RandomStream, seed: UInt64) throws {
    self.stream = stream
    switch stream {
    case .numpyRandomState:
      guard let seed32 = UInt32(exactly: seed) else {
        throw CellDataError("clustering: numpy's RandomState takes a seed in 0..<2^32, got \(seed)")
      }
      twister = MersenneTwister(seed: seed32)
    case .pythonRandom:
      twister = MersenneTwister(pythonSeed: seed)
    }
  }

  /// `getrandbits(32)`.
  public func bits32() -> UInt64 {
    switch stream {
    case .pythonRandom:
      return igraph_uint_t(twister.next())
    case .numpyRandomState:
      // tomaxint() is next_uint64() >> 1 (high word drawn first) on a 64-bit long.
      let high = UInt64(twister.next()), low = UInt64(twister.next())
      return igraph_uint_t((((high << 32) | low) >> 1) & 0xFFFF_FFFF)
    }
  }

  /// `random()` / `random_sample()`.
  public func uniform() -> Double { twister.nextDouble() }

  /// `gauss(0, 1)` (CPython's Box–Muller with a cached second value) or numpy's legacy
  /// `normal(0, 1)` (polar method with a cached second value).
  public func normal() -> Double {
    if let spare = spareNormal {
      spareNormal = nil
      return spare
    }
    switch stream {
    case .pythonRandom:
      let angle = twister.nextDouble() * 2 * Double.pi
      let radius = (-2 * Foundation.log(1 - twister.nextDouble())).squareRoot()
      spareNormal = Foundation.sin(angle) * radius
      return Foundation.cos(angle) * radius
    case .numpyRandomState:
      var x1 = 0.0, x2 = 0.0, r2 = 0.0
      repeat {
        x1 = 2 * twister.nextDouble() - 1
        x2 = 2 * twister.nextDouble() - 1
        r2 = x1 * x1 + x2 * x2
      } while r2 >= 1 || r2 == 0
      let f = (-2 * Foundation.log(r2) / r2).squareRoot()
      spareNormal = f * x1
      return f * x2
    }
  }
}
