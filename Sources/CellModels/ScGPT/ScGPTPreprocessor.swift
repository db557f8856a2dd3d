import CellData

/// scGPT's `Preprocessor` on an AnnData, in place, on CellData's preprocessing: optional gene
/// and cell filters by counts, normalize_total into `layers[normedKey]`, log1p into
/// `layers[log1pKey]`, highly variable genes (seurat_v3 on raw X by default, subsetting every
/// layer), then per-cell binning of the last layer into `layers[binnedKey]` (int64) with the
/// edges in `obsm["bin_edges"]` (float64, cells × nBins). X itself is left as it was.
public struct ScGPTPreprocessor: Sendable {
  /// Keep genes with at least this many counts (sc.pp.filter_genes min_counts); nil: no filter.
  public var filterGeneByCounts: Int?
  /// Keep cells with at least this many counts (sc.pp.filter_cells min_counts); nil: no filter.
  public var filterCellByCounts: Int?
  /// Per-cell target sum; nil skips normalisation. (The reference takes the median instead when
  /// given an int or True; here the number given is the target.)
  public var normalizeTotal: Double? = 1e4
  public var normedKey = "X_normed"
  public var log1p = false
  public var log1pKey = "X_log1p"
  /// Number of highly variable genes to keep; nil keeps all.
  public var subsetHVG: Int?
  public var hvgFlavor: HVGFlavor = .seuratV3
  /// The layer HVG selection reads (nil: X, the raw counts, as the reference with result keys).
  public var hvgLayer: String?
  /// Number of bins (zeros get bin 0, the rest 1…binning−1); nil skips binning.
  public var binning: Int?
  public var binnedKey = "X_binned"
  public var tieBreak: ValueBinning.TieBreak = .lowest
  /// The reference bins an all-zero cell to zeros with a warning; by default that is an error
  /// here (such a cell carries no information and tokenises to `<cls>` alone).
  public var allowEmptyCells = false

  public init(normalizeTotal: Double? = 1e4, log1p: Bool = false, subsetHVG: Int? = nil, binning: Int? = nil) {
    self.normalizeTotal = normalizeTotal
    self.log1p = log1p
    self.subsetHVG = subsetHVG
    self.binning = binning
  }

  /// The tutorials' settings: filter genes with < 3 counts, target 1e4, log1p of raw data,
  /// `nHVG` seurat_v3 genes (nil keeps all), 51 bins.
  public static func tutorial(nHVG: Int?, dataIsRaw: Bool = true) -> ScGPTPreprocessor {
    var p = ScGPTPreprocessor(normalizeTotal: 1e4, log1p: dataIsRaw, subsetHVG: nHVG, binning: 51)
    p.filterGeneByCounts = 3
    return p
  }

  /// Runs the steps on `adata`; `random` breaks binning ties under `.random`. Returns the key
  /// of the binned layer (or of the last layer written when binning is off; nil = X). On an
  /// error `adata` is left as it was.
  @discardableResult
  public func callAsFunction(_ adata: inout AnnData, batchKey: String? = nil, random: inout ScGPTRandom) throws -> String? {
    var work = adata
    let key = try run(&work, batchKey: batchKey, random: &random)
    adata = work
    return key
  }

  private func run(_ adata: inout AnnData, batchKey: String?, random: inout ScGPTRandom) throws -> String? {
    if let n = filterGeneByCounts { try adata.filterGenes(minCounts: Double(n)) }
    if let n = filterCellByCounts, n > 0 { try adata.filterCells(minCounts: Double(n)) }
    var current: String? = nil
    if let target = normalizeTotal {
      adata.layers[normedKey] = try adata.matrix(layer: nil)
      try adata.normalizeTotal(targetSum: target, layer: normedKey)
      current = normedKey
    }
    if log1p {
      adata.layers[log1pKey] = try adata.matrix(layer: current)
      try adata.log1p(layer: log1pKey)
      current = log1pKey
    }
    if let n = subsetHVG {
      var options = HVGOptions(flavor: hvgFlavor, nTopGenes: n)
      options.layer = hvgLayer
      options.batchKey = batchKey
      options.subset = true
      try adata.highlyVariableGenes(options)
    }
    guard let nBins = binning else { return current }
    try bin(&adata, layer: current, nBins: nBins, random: &random)
    return binnedKey
  }

  /// Bins each cell of `layer` (nil: X) into `layers[binnedKey]` and `obsm["bin_edges"]`.
  public func bin(_ adata: inout AnnData, layer: String?, nBins: Int, random: inout ScGPTRandom) throws {
    guard nBins >= 3 else { throw ScGPTError.invalidConfig("binning needs at least 3 bins, got \(nBins)") }
    let m = try adata.matrix(layer: layer)
    let values = try m.denseDoubles()
    let nGenes = m.nCols
    if let bad = values.first(where: { !($0 >= 0) }) {
      throw ScGPTError.invalidInput("binning assumes non-negative finite data, but \(layer ?? "X") holds \(bad)")
    }
    let binner = ValueBinning(nBins: nBins, tieBreak: tieBreak)
    var binned: [Int64] = []
    var edges: [Double] = []
    binned.reserveCapacity(values.count)
    for i in 0..<m.nRows {
      let row = values[(i * nGenes)..<((i + 1) * nGenes)].map { Float($0) }
      if !allowEmptyCells && !row.contains(where: { $0 != 0 }) {
        throw ScGPTError.invalidInput(
          "cell '\(adata.obsNames[i])' has no expressed genes\(subsetHVG != nil ? " among the selected genes" : ""); remove such cells (filterCellByCounts) or set allowEmptyCells")
      }
      let (bins, cellEdges) = binner.bin(row, random: &random)
      binned += bins.map(Int64.init)
      edges += cellEdges
    }
    adata.layers[binnedKey] = .dense(try DenseArray(shape: [m.nRows, nGenes], data: .int64(binned)))
    adata.obsm["bin_edges"] = .dense(try DenseArray(shape: [m.nRows, nBins], data: .float64(edges)))
  }
}
