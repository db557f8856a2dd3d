import CellData
import Foundation

/// UMAP layout of a fuzzy neighbourhood graph, following umap-learn's
/// `simplicial_set_embedding` as `sc.tl.umap` calls it: spectral initialisation, scaled to
/// [0, 10], then negative-sampling SGD with the epochs-per-sample schedule. Seeded,
/// single-threaded and deterministic (umap-learn's own random stream is not reproduced).
public enum UMAP {
  public enum Initialization: Sendable, Equatable {
    /// Normalized-Laplacian eigenvectors, scaled to 10 plus N(0, 1e-4) noise (umap-learn).
    case spectral
    /// Uniform in [−10, 10].
    case random
    /// Given coordinates, `rows × nComponents` row-major.
    case given([Double])
  }

  public struct Options: Sendable, Equatable {
    public var nComponents = 2
    /// scanpy's default (umap-learn's own is 0.1).
    public var minDist = 0.5
    public var spread = 1.0
    /// nil: 500 for up to 10,000 cells, else 200 (umap-learn and scanpy).
    public var nEpochs: Int?
    public var learningRate = 1.0
    public var repulsionStrength = 1.0
    public var negativeSampleRate = 5
    /// Curve parameters; nil fits them from minDist and spread.
    public var a: Double?
    public var b: Double?
    public var initialization = Initialization.spectral

    public init(nComponents: Int = 2, minDist: Double = 0.5, spread: Double = 1, nEpochs: Int? = nil,
                learningRate: Double = 1, repulsionStrength: Double = 1, negativeSampleRate: Int = 5,
                a: Double? = nil, b: Double? = nil, initialization: Initialization = .spectral) {
      self.nComponents = nComponents
      self.minDist = minDist
      self.spread = spread
      self.nEpochs = nEpochs
      self.learningRate = learningRate
      self.repulsionStrength = repulsionStrength
      self.negativeSampleRate = negativeSampleRate
      self.a = a
      self.b = b
      self.initialization = initialization
    }
  }

  public struct Result: Sendable {
    /// Row-major `n × nComponents` coordinates.
    public let embedding: [Float]
    public let nComponents: Int
    public let a: Double
    public let b: Double
  }

  /// Lays out the symmetric connectivity graph. `data` (the representation the graph came
  /// from) only places disconnected components relative to each other.
  public static func embed(graph: WeightedGraph, data: Representation? = nil, options: Options = Options(),
                           seed: UInt64 = 0) throws -> Result {
    let n = graph.n, dim = options.nComponents
    guard n >= 2 else { throw CellDataError("UMAP: need at least 2 cells, got \(n)") }
    guard dim >= 1 else { throw CellDataError("UMAP: n_components must be positive") }
    guard options.negativeSampleRate >= 0, options.learningRate > 0 else {
      throw CellDataError("UMAP: learning rate must be positive and negative_sample_rate non-negative")
    }
    if let e = options.nEpochs, e < 0 { throw CellDataError("UMAP: n_epochs must be non-negative") }
    let (a, b): (Double, Double)
    if let givenA = options.a, let givenB = options.b {
      (a, b) = (givenA, givenB)
    } else {
      (a, b) = try findABParams(spread: options.spread, minDist: options.minDist)
    }
    let defaultEpochs = n <= 10_000 ? 500 : 200
    let nEpochs = options.nEpochs ?? defaultEpochs
    var rng = SplitMix64(seed: seed)

    // Drop edges too weak to be sampled even once (umap-learn).
    let maxWeight = graph.weights.max() ?? 0
    guard maxWeight > 0 else { throw CellDataError("UMAP: the graph has no edges; run neighbors first") }
    let threshold = maxWeight / Double(nEpochs > 10 ? nEpochs : defaultEpochs)
    var head: [Int] = [], tail: [Int] = [], weights: [Double] = []
    var kept = [Int](repeating: 0, count: n + 1), keptIndices: [Int] = [], keptWeights: [Double] = []
    for i in 0..<n {
      for p in graph.indptr[i]..<graph.indptr[i + 1] where graph.weights[p] >= threshold && graph.weights[p] > 0 {
        head.append(i)
        tail.append(graph.indices[p])
        weights.append(graph.weights[p])
        keptIndices.append(graph.indices[p])
        keptWeights.append(graph.weights[p])
      }
      kept[i + 1] = keptIndices.count
    }
    let pruned = WeightedGraph(n: n, indptr: kept, indices: keptIndices, weights: keptWeights)

    var coordinates: [[Double]]
    switch options.initialization {
    case .spectral:
      let spectral = try SpectralLayout.layout(pruned, data: data, dim: dim, rng: &rng)
      let largest = spectral.flatMap { $0 }.map(Swift.abs).max() ?? 1
      let expansion = largest > 0 ? 10 / largest : 1
      coordinates = spectral.map { row in row.map { Double(Float($0 * expansion)) + Double(Float(rng.nextNormal() * 1e-4)) } }
    case .random:
      coordinates = (0..<n).map { _ in (0..<dim).map { _ in Double(Float(rng.nextUnit() * 20 - 10)) } }
    case .given(let values):
      guard values.count == n * dim, values.allSatisfy({ $0.isFinite }) else {
        throw CellDataError("UMAP: the initial coordinates must be \(n) × \(dim) finite values")
      }
      coordinates = (0..<n).map { Array(values[($0 * dim)..<(($0 + 1) * dim)]) }
    }
    // Rescale each axis to [0, 10].
    var embedding = [Float](repeating: 0, count: n * dim)
    for t in 0..<dim {
      let column = coordinates.map { $0[t] }
      let low = column.min()!, high = column.max()!
      let span = high - low
      for i in 0..<n { embedding[i * dim + t] = Float(span > 0 ? 10 * (column[i] - low) / span : 0) }
    }
    let seeds = (0..<3).map { _ in Int64(truncatingIfNeeded: rng.next() & 0x7FFF_FFFF) }
    var optimizer = LayoutOptimizer(embedding: embedding, dim: dim, head: head, tail: tail, weights: weights,
                                    nEpochs: nEpochs, a: a, b: b, gamma: options.repulsionStrength,
                                    initialAlpha: options.learningRate,
                                    negativeSampleRate: Double(options.negativeSampleRate), seeds: seeds)
    optimizer.run()
    return Result(embedding: optimizer.embedding, nComponents: dim, a: a, b: b)
  }
}

extension AnnData {
  /// `sc.tl.umap`: lays out obsp[connectivities] of `neighborsKey` and writes
  /// obsm["X_umap"] (float32) and uns["umap"]["params"] {a, b}.
  public mutating func umap(options: UMAP.Options = UMAP.Options(), neighborsKey: String = "neighbors",
                            seed: UInt64 = 0) throws {
    let graph = try WeightedGraph(neighborsGraph(key: neighborsKey))
    let params = neighborsParams(key: neighborsKey)
    let data = try? representation(useRep: params["use_rep"]?.scalarString,
                                   nPCs: params["n_pcs"]?.scalarDouble.map { Int($0) })
    let result = try UMAP.embed(graph: graph, data: data, options: options, seed: seed)
    obsm["X_umap"] = .dense(try DenseArray(rows: nObs, cols: result.nComponents, values: result.embedding))
    var umapParams: [String: Element] = ["a": .number(result.a), "b": .number(result.b)]
    if seed != 0 { umapParams["random_state"] = .integer(Int(seed)) }
    uns["umap"] = .dict(["params": .dict(umapParams)])
  }
}
