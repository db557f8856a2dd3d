import Foundation

/// Cells `rows` of `tokens`, with their labels (indexed like `tokens`), for one optimiser step.
public struct ScGPTMinibatch {
  public var tokens: ScGPTCellTokens
  public var rows: [Int]
  public var cellTypes: [Int]?
  public var batches: [Int]?
  /// Batch norm's statistics as if padded to this many tokens (`ScGPTBatch.normalizationLength`).
  public var normalizationLength: Int?

  public init(tokens: ScGPTCellTokens, rows: [Int], cellTypes: [Int]? = nil, batches: [Int]? = nil,
              normalizationLength: Int? = nil) {
    self.tokens = tokens
    self.rows = rows
    self.cellTypes = cellTypes
    self.batches = batches
    self.normalizationLength = normalizationLength
  }
}

/// Where `ScGPTFineTuner` gets its minibatches: tokenised cells in memory
/// (`ScGPTTokenMinibatches`) or cells streamed from .h5ad files (`ScGPTStreamedCells`).
/// The order of an epoch depends only on the seed and the epoch, so a resumed run sees the
/// same minibatches.
public protocol ScGPTTrainingData {
  /// The cells (indices into the data) trained on and held out for validation.
  var trainingCells: [Int] { get }
  var validationCells: [Int] { get }
  /// Minibatches per training epoch (at most: a streamed minibatch whose cells express no
  /// vocabulary gene is left out).
  var stepsPerEpoch: Int { get }
  /// Runs `body` on the training minibatches of `epoch` after the first `skipping`.
  func forEachTrainingMinibatch(epoch: Int, skipping: Int, _ body: (ScGPTMinibatch) throws -> Void) throws
  /// Runs `body` on the validation minibatches, the same ones every time.
  func forEachValidationMinibatch(_ body: (ScGPTMinibatch) throws -> Void) throws
}

extension ScGPTTrainingData {
  var trainingCount: Int { trainingCells.count }
  var validationCount: Int { validationCells.count }
}

/// Tokenised cells in memory, split into training and validation cells.
struct ScGPTTokenMinibatches: ScGPTTrainingData {
  let tokens: ScGPTCellTokens
  let trainingCells: [Int]
  let validationCells: [Int]
  let cellTypes: [Int]?
  let batches: [Int]?
  /// One batch per minibatch (domain-specific batch norm).
  let groupByBatch: Bool
  let batchSize: Int
  let lengthBuckets: Bool
  let seed: UInt32
  /// Data-parallel: this rank takes every worldSize-th minibatch from rank (training: the
  /// list padded with its first minibatches, so every rank takes the same number of steps).
  var rank = 0
  var worldSize = 1

  var stepsPerEpoch: Int { (minibatches(epoch: 0).count + worldSize - 1) / worldSize }

  func minibatches(epoch: Int) -> [[Int]] {
    var random = ScGPTRandom.derived(seed, stream: .epochOrder, index: epoch)
    let lengths = lengthBuckets ? tokens.lengths : nil
    return groupByBatch
      ? ScGPTSampling.perGroup(trainingCells, groups: batches!, batchSize: batchSize, lengths: lengths, random: &random)
      : ScGPTSampling.shuffled(trainingCells, batchSize: batchSize, lengths: lengths, random: &random)
  }

  func forEachTrainingMinibatch(epoch: Int, skipping: Int, _ body: (ScGPTMinibatch) throws -> Void) throws {
    // The reference pads every training cell to the longest one; batch norm counts that padding.
    let longest = trainingCells.lazy.map { tokens.ids[$0].count }.max()
    let mine = DistributedSampler.strided(minibatches(epoch: epoch), rank: rank, worldSize: worldSize, padded: true)
    for rows in mine.dropFirst(skipping) {
      try body(ScGPTMinibatch(tokens: tokens, rows: rows, cellTypes: cellTypes, batches: batches, normalizationLength: longest))
    }
  }

  func forEachValidationMinibatch(_ body: (ScGPTMinibatch) throws -> Void) throws {
    let all = ScGPTSampling.inOrder(validationCells, groups: groupByBatch ? batches : nil, batchSize: batchSize, lengths: tokens.lengths)
    for rows in DistributedSampler.strided(all, rank: rank, worldSize: worldSize, padded: false) {
      try body(ScGPTMinibatch(tokens: tokens, rows: rows, cellTypes: cellTypes, batches: batches))
    }
  }
}

extension ScGPTRandom {
  /// The independent streams a training run draws from.
  enum Stream: UInt64 {
    case epochOrder = 1, step, validation, streamedTokens
  }

  /// A generator for item `index` of `stream` of a run seeded `seed` (splitmix64 of the three).
  static func derived(_ seed: UInt32, stream: Stream, index: Int) -> ScGPTRandom {
    ScGPTRandom(seed: UInt32(truncatingIfNeeded: derivedSeed(seed, stream: stream, index: index)))
  }

  static func derivedSeed(_ seed: UInt32, stream: Stream, index: Int) -> UInt64 {
    var z = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ stream.rawValue &* 0xBF58_476D_1CE4_E5B9 &+ UInt64(bitPattern: Int64(index))
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
