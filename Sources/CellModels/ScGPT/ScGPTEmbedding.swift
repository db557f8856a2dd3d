import CellData
import Foundation
import Torch

/// Zero-shot cell embeddings as the reference's `embed_data` (scgpt/tasks/cell_emb.py): genes
/// matched to the vocabulary by name (unknown ones dropped and counted), each cell's non-zero
/// raw counts binned, `<cls>` first with the pad value, the model without batch labels, DSBN
/// or extra heads, the `<cls>` output L2-normalised.
extension ScGPTModelFolder {
  public struct EmbedOptions: Sendable {
    /// Tokens per cell, `<cls>` included (a longer cell keeps a random sample of its genes).
    public var maxLength = 1200
    public var batchSize = 64
    /// var column of gene names (default: var names).
    public var geneColumn: String?
    /// Layer of raw counts (default X).
    public var layer: String?
    /// `.lowest` (default) makes the embedding reproducible; `.random` is the reference's
    /// tie-break, whose embeddings vary between runs (its issue #319).
    public var tieBreak: ValueBinning.TieBreak = .lowest
    /// Seeds subsampling of long cells and the random tie-break.
    public var seed: UInt32 = 0
    /// `.bfloat16`: the forward under bf16 autocast (the embeddings are float32 either way).
    public var precision = DType.float32

    public init(maxLength: Int = 1200, batchSize: Int = 64, geneColumn: String? = nil, layer: String? = nil,
                tieBreak: ValueBinning.TieBreak = .lowest, seed: UInt32 = 0) {
      self.maxLength = maxLength
      self.batchSize = batchSize
      self.geneColumn = geneColumn
      self.layer = layer
      self.tieBreak = tieBreak
      self.seed = seed
    }
  }

  /// A folder loaded as `embed_data` builds its model: no batch labels, DSBN, zero
  /// probabilities or adversarial head (those weights are reported as unexpected).
  public static func loadForEmbedding(_ directory: URL) throws -> ScGPTModelFolder {
    try load(directory, skipMismatchedShapes: true) {
      $0.useBatchLabels = false
      $0.batchNormalization = .none
      $0.explicitZeroProb = false
      $0.doDAB = false
      $0.nCls = 1
    }
  }

  /// The cells of `adata` as `embed_data`'s minibatches of tokens, and how its genes matched
  /// the vocabulary. A cell without any expressed known gene is an error naming it.
  public func embeddingBatches(_ adata: AnnData, options: EmbedOptions = EmbedOptions()) throws
    -> (batches: [TokenizedCells], match: GeneMatch)
  {
    guard options.batchSize > 0, options.maxLength > 1 else {
      throw ScGPTError.invalidInput("batch size must be positive and max length above 1")
    }
    let names: [String]
    if let column = options.geneColumn {
      guard adata.var[column] != nil else {
        throw ScGPTError.invalidInput("no var column '\(column)' of gene names (var columns: \(adata.var.columnNames.joined(separator: ", ")))")
      }
      names = try adata.var.labels(column).map { $0 ?? "" }
    } else {
      names = adata.varNames
    }
    let match = try vocab.match(names)
    guard let padId = vocab["<pad>"], let clsId = vocab["<cls>"] else {
      throw ScGPTError.vocabulary("the vocabulary needs <pad> and <cls>")
    }
    let counts = try CountMatrix(adata, layer: options.layer)
    if let bad = counts.firstInvalidCount(integers: false) {
      throw ScGPTError.invalidInput("cell '\(adata.obsNames[bad.row])' has the value \(bad.value): raw counts must be finite and non-negative")
    }
    let known = match.known.indices.filter { match.known[$0] }
    let padValue = Float(network.config.padValue)
    let binning = ValueBinning(nBins: (args["n_bins"] as? Int) ?? 51, tieBreak: options.tieBreak)
    var random = ScGPTRandom(seed: options.seed)
    var batches: [TokenizedCells] = []
    for start in stride(from: 0, to: counts.nRows, by: options.batchSize) {
      let rows = Array(start..<Swift.min(start + options.batchSize, counts.nRows))
      let dense = counts.rows(rows).toArray(Float.self)
      var cells: [(ids: [Int], values: [Float])] = []
      for (r, cell) in rows.enumerated() {
        let expressed = known.filter { dense[r * counts.nCols + $0] != 0 }
        guard !expressed.isEmpty else {
          throw ScGPTError.invalidInput("cell '\(adata.obsNames[cell])' expresses none of the model's genes: remove it or check the gene names")
        }
        // Binned over all the cell's expressed genes, then sampled (the reference's collator order).
        let bins = binning.bin(expressed.map { dense[r * counts.nCols + $0] }, random: &random).bins
        var order = Array(expressed.indices)
        if expressed.count > options.maxLength - 1 {
          order = Array(random.permutation(expressed.count).prefix(options.maxLength - 1))
        }
        cells.append(([clsId] + order.map { match.ids[expressed[$0]] }, [padValue] + order.map { Float(bins[$0]) }))
      }
      let length = cells.map(\.ids.count).max() ?? 1
      batches.append(TokenizedCells(
        geneIds: cells.map { $0.ids + Array(repeating: padId, count: length - $0.ids.count) },
        values: cells.map { $0.values + Array(repeating: padValue, count: length - $0.values.count) }, padId: padId))
    }
    return (batches, match)
  }

  /// L2-normalised `<cls>` embeddings [cells, d_model] in the AnnData's cell order, with the
  /// genes' match to the vocabulary.
  public func embed(_ adata: AnnData, options: EmbedOptions = EmbedOptions()) throws -> (embeddings: Tensor, match: GeneMatch) {
    let (batches, match) = try embeddingBatches(adata, options: options)
    network.eval()
    let device = network.parameters.first?.device ?? .cpu
    let parts = try withNoGrad {
      try batches.map { cells -> Tensor in
        let batch = ScGPTBatch(geneIds: cells.geneIdTensor.to(device), values: cells.valueTensor.to(device),
                               paddingMask: cells.paddingMask.to(device))
        let cls = try Autocast.run(on: device, dtype: options.precision) { try network.encode(batch).select(dim: 1, index: 0) }
        return l2Normalized(cls.to(.float32)).to(.cpu)
      }
    }
    return (Tensor.cat(parts, dim: 0), match)
  }
}
