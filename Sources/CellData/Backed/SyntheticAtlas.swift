import Foundation

/// A synthetic atlas for scale tests, drawn from real profiles and written by blocks, so that
/// a million cells never sit in memory at once.
///
/// Each new cell resamples a random profile cell (its counts on the kept genes), picks a batch,
/// and draws counts ~ Poisson(x · f · s[batch, gene]) for the profile's nonzero counts x, with a
/// per-cell library factor f = exp(N(0, libraryNoise²)) and a per-batch gene scale
/// s = exp(N(0, geneScaleNoise²)) fixed for the whole atlas. Zeros of the profile stay zero, so
/// sparsity follows the real data. Poisson draws above a mean of 30 use the normal
/// approximation (rounded, at least 0). The kept genes are the `genes` with the most counts.
public enum SyntheticAtlas {
  public struct Options: Sendable {
    public var cells: Int
    public var genes: Int
    public var batches: Int
    public var libraryNoise: Double
    public var geneScaleNoise: Double
    public var seed: UInt64
    /// Cells generated and appended per block.
    public var blockRows: Int
    public var writer: H5ADBlockWriter.Options
    /// obs columns of the profile copied to each new cell (e.g. a cell-type label).
    public var copiedObs: [String]

    public init(cells: Int, genes: Int, batches: Int = 4, libraryNoise: Double = 0.3, geneScaleNoise: Double = 0.2,
                seed: UInt64 = 0, blockRows: Int = 10_000, writer: H5ADBlockWriter.Options = H5ADBlockWriter.Options(),
                copiedObs: [String] = []) {
      self.cells = cells
      self.genes = genes
      self.batches = batches
      self.libraryNoise = libraryNoise
      self.geneScaleNoise = geneScaleNoise
      self.seed = seed
      self.blockRows = blockRows
      self.writer = writer
      self.copiedObs = copiedObs
    }
  }

  /// Writes the atlas to `path` from the counts of `profiles` (X, or `layer`). `progress` gets
  /// the number of cells written after each block. Returns the number of nonzeros.
  @discardableResult
  public static func write(from profiles: AnnData, layer: String? = nil, to path: String, options: Options,
                           progress: ((Int) -> Void)? = nil) throws -> Int {
    guard options.cells > 0, options.genes > 0, options.batches > 0, options.blockRows > 0 else {
      throw CellDataError("synthetic atlas: cells, genes, batches and block rows must be positive")
    }
    guard options.libraryNoise >= 0, options.geneScaleNoise >= 0 else {
      throw CellDataError("synthetic atlas: noise levels must not be negative")
    }
    let matrix: Matrix
    if let layer {
      guard let m = profiles.layers[layer] else { throw CellDataError("profiles have no layer '\(layer)'") }
      matrix = m
    } else {
      guard let m = profiles.X else { throw CellDataError("profiles have no X") }
      matrix = m
    }
    let source = try InMemoryRows(matrix).storage
    guard source.nRows > 0 else { throw CellDataError("profiles have no cells") }
    guard options.genes <= source.nCols else {
      throw CellDataError("synthetic atlas: \(options.genes) genes asked for, but the profiles have \(source.nCols)")
    }
    if let bad = source.values.first(where: { !$0.isFinite || $0 < 0 }) {
      throw CellDataError("profiles: \(bad) is not a count")
    }

    // The genes with the most counts, in the profiles' order.
    var totals = [Double](repeating: 0, count: source.nCols)
    for k in 0..<source.nnz { totals[Int(source.columns[k])] += Double(source.values[k]) }
    let kept = Array(totals.indices.sorted { totals[$0] > totals[$1] || (totals[$0] == totals[$1] && $0 < $1) }
      .prefix(options.genes)).sorted()
    var map = [Int32](repeating: -1, count: source.nCols)
    for (target, column) in kept.enumerated() { map[column] = Int32(target) }
    let profilesRows = source.remapped(map, width: options.genes)

    var rng = SplitMixRandom(seed: options.seed)
    let scales = (0..<options.batches).map { _ in
      (0..<options.genes).map { _ in Float(exp(options.geneScaleNoise * rng.normal())) }
    }
    let copied = try options.copiedObs.map { name -> [String?] in
      guard profiles.obs[name] != nil else { throw CellDataError("profiles have no obs column '\(name)'") }
      return try profiles.obs.labels(name)
    }

    let writer = try H5ADBlockWriter(path: path, nCols: options.genes, options: options.writer)
    var batchCodes: [Int] = [], profileRows: [Int] = []
    batchCodes.reserveCapacity(options.cells)
    profileRows.reserveCapacity(options.cells)
    var written = 0
    while written < options.cells {
      let n = Swift.min(options.blockRows, options.cells - written)
      var block = CSRRows(nCols: options.genes)
      for _ in 0..<n {
        let s = rng.below(source.nRows), b = rng.below(options.batches)
        let library = exp(options.libraryNoise * rng.normal())
        for k in profilesRows.rowStarts[s]..<profilesRows.rowStarts[s + 1] {
          let gene = profilesRows.columns[k]
          let mean = Double(profilesRows.values[k]) * library * Double(scales[b][Int(gene)])
          let count = rng.poisson(mean)
          if count > 0 {
            block.values.append(Float(count))
            block.columns.append(gene)
          }
        }
        block.rowStarts.append(block.values.count)
        batchCodes.append(b)
        profileRows.append(s)
      }
      try writer.append(block)
      written += n
      progress?(written)
    }

    let width = String(options.cells - 1).count
    var obs = DataFrame(index: (0..<options.cells).map { "cell_" + String(repeating: "0", count: width - String($0).count) + String($0) })
    try obs.set("batch", .categorical(Categorical(codes: batchCodes, categories: .string((0..<options.batches).map { "batch_\($0)" }))))
    for (name, labels) in zip(options.copiedObs, copied) {
      let categories = Set(labels.compactMap { $0 }).sorted()
      let code = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
      let codes = profileRows.map { labels[$0].map { code[$0]! } ?? -1 }
      try obs.set(name, .categorical(Categorical(codes: codes, categories: .string(categories))))
    }
    let variables = DataFrame(index: kept.map { profiles.varNames[$0] })
    let settings = "cells \(options.cells), genes \(options.genes) (most counts), batches \(options.batches), library noise \(options.libraryNoise), gene-scale noise \(options.geneScaleNoise), seed \(options.seed)"
    try writer.finish(obs: obs, var: variables, uns: ["synthetic_atlas": .array(.string([settings]))])
    return writer.nnz
  }
}

/// SplitMix64 with the draws the generator needs; stable across platforms.
struct SplitMixRandom {
  private var state: UInt64
  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in (0, 1).
  mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992 }

  mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

  /// A standard normal draw (Box–Muller).
  mutating func normal() -> Double { (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform()) }

  /// A Poisson draw: multiplication method up to a mean of 30, normal approximation above.
  mutating func poisson(_ mean: Double) -> Int {
    guard mean > 0 else { return 0 }
    if mean > 30 { return Swift.max(0, Int((mean + mean.squareRoot() * normal()).rounded())) }
    let limit = exp(-mean)
    var product = uniform(), count = 0
    while product > limit {
      count += 1
      product *= uniform()
    }
    return count
  }
}
