import CellData

/// Each cell's tokens for training and inference, unpadded: `<cls>` (value 0, as the
/// tutorials' `tokenize_and_pad_batch`) then its non-zero genes in column order. A cell longer
/// than `maxLength` keeps `<cls>` and a random sample of its other tokens, drawn once, as the
/// reference tokenises its whole data set up front.
public struct ScGPTCellTokens: Sendable {
  public var ids: [[Int]]
  public var values: [[Float]]
  public var padId: Int
  public var padValue: Float

  public var count: Int { ids.count }
  /// Tokens per cell, `<cls>` included.
  public var lengths: [Int] { ids.map(\.count) }

  /// Tokens given per cell (`<cls>` first, unpadded).
  public init(ids: [[Int]], values: [[Float]], padId: Int, padValue: Float) {
    self.ids = ids
    self.values = values
    self.padId = padId
    self.padValue = padValue
  }

  /// Tokens of every row of `binned` (cells × genes; `geneIds[j]` is column j's vocabulary id).
  /// A cell without a non-zero value is an error naming it (`cellNames`), unless
  /// `includeZeroGenes`.
  public init(binned: Matrix, geneIds: [Int], vocab: GeneVocab, maxLength: Int, padValue: Float,
              includeZeroGenes: Bool = false, cellNames: [String]? = nil, random: inout ScGPTRandom) throws {
    guard geneIds.count == binned.nCols else {
      throw ScGPTError.invalidInput("\(geneIds.count) gene ids for \(binned.nCols) genes")
    }
    guard maxLength > 1 else { throw ScGPTError.invalidInput("max length \(maxLength) is too short (<cls> and at least one gene)") }
    guard let padId = vocab["<pad>"], let clsId = vocab["<cls>"] else {
      throw ScGPTError.vocabulary("the vocabulary needs <pad> and <cls>")
    }
    self.padId = padId
    self.padValue = padValue
    ids = []
    values = []
    ids.reserveCapacity(binned.nRows)
    values.reserveCapacity(binned.nRows)
    let nGenes = binned.nCols
    let blockSize = max(1, (1 << 22) / max(1, nGenes))
    for start in stride(from: 0, to: binned.nRows, by: blockSize) {
      let rows = Array(start..<min(start + blockSize, binned.nRows))
      let dense = try binned.rows(rows).denseDoubles()
      for (r, cell) in rows.enumerated() {
        var cellIds = [clsId], cellValues: [Float] = [0]
        for j in 0..<nGenes {
          let v = dense[r * nGenes + j]
          if includeZeroGenes || v != 0 {
            cellIds.append(geneIds[j])
            cellValues.append(Float(v))
          }
        }
        guard cellIds.count > 1 else {
          throw ScGPTError.invalidInput("cell '\(cellNames?[cell] ?? String(cell))' expresses none of the model's genes: remove it or check the gene names")
        }
        Self.sample(&cellIds, &cellValues, maxLength: maxLength, random: &random)
        ids.append(cellIds)
        values.append(cellValues)
      }
    }
  }

  /// A cell longer than `maxLength` keeps `<cls>` (position 0) and a random `maxLength − 1` of
  /// its other tokens, as the reference's `tokenize_and_pad_batch`.
  static func sample(_ ids: inout [Int], _ values: inout [Float], maxLength: Int, random: inout ScGPTRandom) {
    guard ids.count > maxLength else { return }
    let keep = [0] + random.choiceWithoutReplacement(ids.count - 1, size: maxLength - 1).map { $0 + 1 }
    ids = keep.map { ids[$0] }
    values = keep.map { values[$0] }
  }

  /// Cells `rows` padded on the right to the longest among them. (The reference pads every
  /// minibatch to the longest cell of the whole data set; with the key-padding mask the outputs
  /// at real tokens are the same, only batch-norm statistics in training count the padding.)
  public func padded(_ rows: [Int]) -> TokenizedCells {
    let length = rows.map { ids[$0].count }.max() ?? 1
    return TokenizedCells(
      geneIds: rows.map { ids[$0] + Array(repeating: padId, count: length - ids[$0].count) },
      values: rows.map { values[$0] + Array(repeating: padValue, count: length - values[$0].count) },
      padId: padId)
  }
}

/// Minibatch orders of scGPT's fine-tuning loops.
enum ScGPTSampling {
  /// Cells per length bucket, in minibatches: a shuffled window of this many minibatches is
  /// sorted by length before it is cut, so a minibatch pads little.
  static let bucketWindow = 50

  /// A random order cut into minibatches (the last may be smaller); with `lengths`, cells of
  /// similar length share minibatches (length buckets) and the minibatches are shuffled.
  static func shuffled(_ cells: [Int], batchSize: Int, lengths: [Int]? = nil, random: inout ScGPTRandom) -> [[Int]] {
    let order = random.permutation(cells.count).map { cells[$0] }
    guard let lengths else { return chunks(order, batchSize) }
    let minibatches = bucketed(order, lengths: lengths, batchSize: batchSize)
    return random.permutation(minibatches.count).map { minibatches[$0] }
  }

  /// scGPT's `SubsetsBatchSampler` with intra- and inter-subset shuffling: each group's cells
  /// shuffled and cut into minibatches (length-bucketed with `lengths`), then all minibatches
  /// shuffled, so every minibatch holds cells of one group (what domain-specific batch norm needs).
  static func perGroup(_ cells: [Int], groups: [Int], batchSize: Int, lengths: [Int]? = nil, random: inout ScGPTRandom) -> [[Int]] {
    let minibatches = grouped(cells, groups: groups).flatMap { members in
      let order = random.permutation(members.count).map { members[$0] }
      return lengths.map { bucketed(order, lengths: $0, batchSize: batchSize) } ?? chunks(order, batchSize)
    }
    return random.permutation(minibatches.count).map { minibatches[$0] }
  }

  /// Minibatches for evaluation, each within one group, cells sorted by length (`lengths`)
  /// so that little is padded; the caller puts the results back in cell order.
  static func inOrder(_ cells: [Int], groups: [Int]?, batchSize: Int, lengths: [Int]? = nil) -> [[Int]] {
    let sorted = { (members: [Int]) -> [Int] in
      guard let lengths else { return members }
      return members.sorted { (lengths[$0], $0) < (lengths[$1], $1) }
    }
    guard let groups else { return chunks(sorted(cells), batchSize) }
    return grouped(cells, groups: groups).flatMap { chunks(sorted($0), batchSize) }
  }

  private static func bucketed(_ order: [Int], lengths: [Int], batchSize: Int) -> [[Int]] {
    let window = batchSize * bucketWindow
    return stride(from: 0, to: order.count, by: window).flatMap { start in
      chunks(order[start..<min(start + window, order.count)].sorted { (lengths[$0], $0) < (lengths[$1], $1) }, batchSize)
    }
  }

  private static func grouped(_ cells: [Int], groups: [Int]) -> [[Int]] {
    var members: [Int: [Int]] = [:]
    for cell in cells { members[groups[cell], default: []].append(cell) }
    return members.keys.sorted().map { members[$0]! }
  }

  /// `cells` in consecutive minibatches of `size` (the last may be smaller).
  static func chunks(_ cells: [Int], _ size: Int) -> [[Int]] {
    stride(from: 0, to: cells.count, by: size).map { Array(cells[$0..<min($0 + size, cells.count)]) }
  }
}
