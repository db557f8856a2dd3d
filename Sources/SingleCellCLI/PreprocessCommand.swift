import ArgumentParser
import SingleCell

/// `singlecell preprocess IN.h5ad -o OUT.h5ad`: scanpy's standard preprocessing steps, in
/// scanpy's order: filters, QC metrics, counts kept in layers["counts"], normalize_total,
/// log1p, highly variable genes, scale.
struct PreprocessCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "preprocess",
    abstract: "Filter, normalise, log-transform and select highly variable genes (scanpy semantics).",
    discussion: """
      Raw counts are kept in layers["counts"] before normalisation. Steps run in this order:
      --min-genes/--min-counts (cells), --min-cells (genes), QC metrics, normalize_total, log1p,
      highly variable genes, scale. The output is written atomically.
      """)

  @OptionGroup var global: GlobalOptions

  @Argument(help: "Input: an .h5ad file with counts in X, a 10x Genomics .h5 file or a 10x Matrix Market directory.")
  var input: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad file.") var output: String

  @Option(help: "Keep cells with at least this many expressed genes.") var minGenes: Int?
  @Option(help: "Keep cells with at least this many counts.") var minCounts: Double?
  @Option(help: "Keep genes expressed in at least this many cells.") var minCells: Int?
  @Option(help: "Add QC metrics with this prefix marking mitochondrial genes (e.g. MT-).") var qcMitoPrefix: String?
  @Option(help: "normalize_total target sum (e.g. 1e4); omit to skip normalisation.") var normalizeTotal: Double?
  @Flag(help: "normalize_total: leave out highly expressed genes when computing totals.") var excludeHighlyExpressed = false
  @Flag(help: "Apply log1p.") var log1p = false
  @Option(help: "Select this many highly variable genes.") var hvg: Int?
  @Option(help: "HVG flavor: seurat, cell_ranger or seurat_v3.") var hvgFlavor: String = "seurat"
  @Option(help: "Layer for HVG selection (seurat_v3 wants counts).") var hvgLayer: String?
  @Option(help: "obs column of batches for HVG selection.") var batchKey: String?
  @Flag(help: "Keep only the highly variable genes.") var subset = false
  @Flag(help: "Scale each gene to zero mean and unit variance.") var scale = false
  @Option(help: "Clip scaled values to this magnitude.") var scaleMaxValue: Double?
  @Option(help: "Add obsm['X_pca'] with this many principal components (exact SVD).") var pca: Int?
  @Flag(help: "Store sparse X and layers as CSR (backed reading, --backed, reads rows and refuses CSC).") var toCsr = false

  func validate() throws {
    if hvgFlavor == "seurat_v3", hvg == nil {
      throw ValidationError("--hvg-flavor seurat_v3 needs --hvg N")
    }
    guard HVGFlavor(rawValue: hvgFlavor) != nil else {
      throw ValidationError("--hvg-flavor must be one of \(HVGFlavor.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    if subset && hvg == nil { throw ValidationError("--subset needs --hvg N") }
  }

  func run() throws {
    _ = try global.apply()
    var adata = try AnnData.read(input: input, requireX: true)
    try adata.X!.requireCountsForPreprocessing(file: input)
    if minGenes != nil || minCounts != nil {
      try adata.filterCells(minCounts: minCounts, minGenes: minGenes)
    }
    if let minCells { try adata.filterGenes(minCells: minCells) }
    if let prefix = qcMitoPrefix {
      try adata.markGenes(withPrefix: prefix, as: "mt")
      try adata.calculateQCMetrics(qcVars: ["mt"])
    }
    adata.layers["counts"] = adata.X
    if let target = normalizeTotal {
      try adata.normalizeTotal(targetSum: target, excludeHighlyExpressed: excludeHighlyExpressed)
    }
    if log1p { try adata.log1p() }
    if let n = hvg {
      var options = HVGOptions(flavor: HVGFlavor(rawValue: hvgFlavor)!, nTopGenes: n)
      options.layer = hvgLayer ?? (options.flavor == .seuratV3 ? "counts" : nil)
      options.batchKey = batchKey
      options.subset = subset
      try adata.highlyVariableGenes(options)
    }
    if scale { try adata.scale(maxValue: scaleMaxValue) }
    if let pca { try adata.pca(nComponents: pca, seed: global.seed) }
    if toCsr {
      adata.X = adata.X.map(\.asCSR)
      adata.layers = adata.layers.mapValues(\.asCSR)
    }
    try adata.write(h5ad: output)
    print("wrote \(output): \(adata.nObs) cells × \(adata.nVars) genes")
  }
}

extension Matrix {
  /// A CSC matrix switched to CSR; others unchanged.
  var asCSR: Matrix {
    if case .sparse(let s) = self, s.format == .csc { return .sparse(s.switchedFormat()) }
    return self
  }

  /// preprocess starts from counts: NaN or negative values are an error naming the file.
  func requireCountsForPreprocessing(file: String) throws {
    do {
      try requireFinite("X")
      if let (_, bad) = data.firstNumber(where: { $0 < 0 }) {
        throw CellDataError("X has a negative value (\(bad)); preprocess expects counts")
      }
    } catch let error as CellDataError {
      throw CellDataError("\(file): \(error.message)")
    }
  }
}
