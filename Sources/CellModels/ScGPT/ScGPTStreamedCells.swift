import CellData
import Foundation
import Torch

/// Cells streamed by row blocks from a `RowBlockSource` (one backed .h5ad or a collection of
/// them) and tokenised per minibatch, for pretraining on more cells than memory holds. Held in
/// memory: the split (one index per cell) and the loader's buffers (`StreamingLoader`).
///
/// A cell's tokens are its non-zero genes that the vocabulary knows, in column order, binned
/// per cell, `<cls>` first, and a random `maxLength − 1` of the genes when it has more (drawn
/// per minibatch from the seed: every epoch samples anew, as the reference's collator). The raw
/// counts are binned directly: per-cell quantile bins do not change under normalize_total and
/// log1p, which keep each cell's order of values, so the bins are those of the in-memory
/// preprocessing (with the deterministic lowest-bin tie rule; no HVG selection: every gene of the
/// vocabulary is kept, as the reference's pretraining). Cells that express no vocabulary gene are
/// left out of their minibatch and counted.
public final class ScGPTStreamedCells: ScGPTTrainingData {
  public let source: RowBlockSource
  public let trainingCells: [Int]
  public let validationCells: [Int]
  public let maxLength: Int
  /// Cells left out because they express no vocabulary gene (training passes and validation).
  public private(set) var emptyCells = 0
  private let geneIds: [Int]
  private let binning: ValueBinning
  private let padId: Int
  private let clsId: Int
  private let padValue: Float
  private let seed: UInt32
  private let shard: StreamingLoader.Shard?
  private let training: StreamingLoader
  private let validation: StreamingLoader?

  /// - Parameters:
  ///   - geneIds: the vocabulary id of each source column (nil: not in the vocabulary, ignored).
  ///   - validationFraction: share of the cells (by the seed, as in memory) held out.
  ///   - streaming: how rows are read (block size, buffer, read-ahead); batch size, shuffling
  ///     and seed are this run's.
  ///   - shard: data-parallel: this rank's share of the row blocks (every rank the same number
  ///     of training minibatches; each validation block read by one rank).
  public init(source: RowBlockSource, geneIds: [Int?], vocab: GeneVocab, maxLength: Int, nBins: Int = 51, padValue: Float,
              batchSize: Int, validationFraction: Double, seed: UInt32,
              streaming: StreamingLoader.Options = StreamingLoader.Options(), shard: StreamingLoader.Shard? = nil) throws {
    guard geneIds.count == source.nCols else { throw ScGPTError.invalidInput("\(geneIds.count) gene ids for \(source.nCols) genes") }
    guard geneIds.contains(where: { $0 != nil }) else { throw ScGPTError.invalidInput("none of the data's genes is in the vocabulary") }
    guard maxLength > 1 else { throw ScGPTError.invalidInput("max length \(maxLength) is too short (<cls> and at least one gene)") }
    guard let padId = vocab["<pad>"], let clsId = vocab["<cls>"] else { throw ScGPTError.vocabulary("the vocabulary needs <pad> and <cls>") }
    guard (0..<1).contains(validationFraction) else { throw ScGPTError.invalidInput("the validation fraction must lie in [0, 1)") }
    var random = ScGPTRandom(seed: seed)
    let order = random.permutation(source.nRows)
    let nValidation = Int((Double(source.nRows) * validationFraction).rounded(.up))
    trainingCells = Array(order.dropFirst(nValidation))
    validationCells = Array(order.prefix(nValidation))
    guard !trainingCells.isEmpty else { throw ScGPTError.invalidInput("no cells left to train on (\(source.nRows) cells)") }
    var options = streaming  // its block size, buffer and read-ahead; the rest from this run
    options.batchSize = batchSize
    options.shuffle = true
    options.seed = UInt64(seed)
    options.shard = shard.map { .init(rank: $0.rank, worldSize: $0.worldSize, equalize: true) }
    training = try StreamingLoader(source: source, cells: trainingCells, options: options)
    var inOrder = options
    inOrder.shuffle = false
    inOrder.shard = shard.map { .init(rank: $0.rank, worldSize: $0.worldSize, equalize: false) }
    validation = validationCells.isEmpty ? nil : try StreamingLoader(source: source, cells: validationCells, options: inOrder)
    self.source = source
    self.geneIds = geneIds.map { $0 ?? -1 }
    self.maxLength = maxLength
    binning = ValueBinning(nBins: nBins, tieBreak: .lowest)
    self.padId = padId
    self.clsId = clsId
    self.padValue = padValue
    self.seed = seed
    self.shard = shard
  }

  public var stepsPerEpoch: Int { training.batchCount }

  public func forEachTrainingMinibatch(epoch: Int, skipping: Int, _ body: (ScGPTMinibatch) throws -> Void) throws {
    let stream = try training.pass(epoch: epoch)
    var index = 0
    while let batch = try stream.next() {
      defer { index += 1 }
      guard index >= skipping else { continue }
      let pass = epoch * stepsPerEpoch + index
      var random = ScGPTRandom.derived(seed, stream: .streamedTokens, index: pass * (shard?.worldSize ?? 1) + (shard?.rank ?? 0))
      if let cells = tokens(batch.x, random: &random) {
        try body(cells)
      } else if let shard, shard.worldSize > 1 {
        // The other ranks would wait for this step's gradients.
        throw ScGPTError.invalidInput("rank \(shard.rank): a minibatch of \(batch.x.size(0)) cells in which no cell expresses a vocabulary gene; data-parallel ranks must all take the step: filter such cells out first")
      }
    }
  }

  public func forEachValidationMinibatch(_ body: (ScGPTMinibatch) throws -> Void) throws {
    guard let validation else { return }
    var random = ScGPTRandom.derived(seed, stream: .streamedTokens, index: -1 - (shard?.rank ?? 0))
    try validation.forEachBatch { batch in
      if let cells = tokens(batch.x, random: &random) { try body(cells) }
    }
  }

  /// The minibatch's cells as tokens (nil when none expresses a vocabulary gene).
  private func tokens(_ counts: Tensor, random: inout ScGPTRandom) -> ScGPTMinibatch? {
    let nGenes = geneIds.count
    let x = counts.toArray(Float.self)
    var ids: [[Int]] = [], values: [[Float]] = []
    for cell in 0..<counts.size(0) {
      var columns: [Int] = [], counts: [Float] = []
      for j in 0..<nGenes where x[cell * nGenes + j] != 0 && geneIds[j] >= 0 {
        columns.append(geneIds[j])
        counts.append(x[cell * nGenes + j])
      }
      guard !columns.isEmpty else {
        emptyCells += 1
        continue
      }
      let bins = binning.bin(counts, random: &random).bins
      var cellIds = [clsId] + columns, cellValues = [Float(0)] + bins.map(Float.init)
      ScGPTCellTokens.sample(&cellIds, &cellValues, maxLength: maxLength, random: &random)
      ids.append(cellIds)
      values.append(cellValues)
    }
    guard !ids.isEmpty else { return nil }
    return ScGPTMinibatch(tokens: ScGPTCellTokens(ids: ids, values: values, padId: padId, padValue: padValue), rows: Array(ids.indices))
  }
}
