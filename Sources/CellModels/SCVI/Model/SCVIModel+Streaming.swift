import CellData
import Foundation
import Torch

/// scVI / LDVAE on cells that stay on disk: a backed .h5ad (`BackedH5AD`) or a collection of
/// them (`BackedCollection`). Counts stream through `StreamingLoader` in training and in the
/// outputs on the setup cells; covariates come from the obs held in memory.
extension SCVIModel {
  /// A model set up on `source`, whose obs and var are `metadata` (e.g. `BackedH5AD.metadata`).
  /// Counts are checked as they are read (an invalid count stops training with the cell and
  /// gene); LDVAE's library prior (latent library size) needs one pass over the file first.
  public convenience init(streaming source: RowBlockSource, metadata: AnnData, setup: SCVISetup, kind: Kind = .scvi,
                          architecture: Architecture = Architecture(), blockRows: Int = 1024) throws {
    let config = architecture.config(
      kind: kind, nInput: setup.geneNames.count, nBatch: setup.batchCategories.count, nLabels: setup.labelCategories.count)
    let streamed = try StreamedCells(source: source, metadata: metadata, setup: setup, config: config)
    var prior: (means: [Float], vars: [Float])?
    if !config.useObservedLibSize {
      var sizes: [Double] = []
      sizes.reserveCapacity(source.nRows)
      for start in stride(from: 0, to: source.nRows, by: Swift.max(blockRows, 1)) {
        let rows = try source.rows(start..<Swift.min(start + blockRows, source.nRows))
        try streamed.check(start, rows)
        sizes += rows.rowSums()
      }
      prior = try VAE.libraryLogPrior(librarySizes: sizes, batchIndices: streamed.batchCodes, nBatch: config.nBatch)
    }
    let module = try VAE(config: config, libraryLogMeans: prior?.means, libraryLogVars: prior?.vars)
    self.init(kind: kind, setup: setup, module: module, cells: .empty(genes: setup.geneNames.count))
    self.streamed = streamed
  }

  /// Whether the setup cells stream from disk.
  public var isStreaming: Bool { streamed != nil }

  /// The setup cells' count.
  var cellCount: Int { streamed?.count ?? cells.count }

  /// Minibatches of the setup cells `indices` (all when nil): from memory, or streamed with
  /// `streaming`'s block and buffer sizes.
  func setupMinibatches(_ indices: [Int]?, batchSize: Int, shuffle: Bool, seed: UInt64 = 0,
                        streaming: StreamingLoader.Options = StreamingLoader.Options()) throws -> MinibatchSource {
    guard let streamed else { return try cells.loader(indices, batchSize: batchSize, shuffle: shuffle) }
    return try streamed.loader(
      indices, options: StreamingLoader.passOptions(streaming, batchSize: batchSize, shuffle: shuffle, seed: seed))
  }
}

/// The registered cells of a streamed source: covariate codes and names in memory, counts
/// checked block by block as they are read.
struct StreamedCells {
  let source: RowBlockSource
  let batchCodes: [Int]
  let labelCodes: [Int]
  let obsNames: [String]
  let check: StreamingLoader.BlockCheck

  var count: Int { source.nRows }

  init(source: RowBlockSource, metadata: AnnData, setup: SCVISetup, config: VAEConfig) throws {
    try setup.checkGenes(metadata)
    check = try Self.blockCheck(
      source, metadata: metadata, genes: setup.geneNames, layer: setup.layer, integers: config.geneLikelihood != .poisson,
      requireCounts: config.useObservedLibSize, likelihood: config.geneLikelihood.rawValue)
    self.source = source
    batchCodes = try SCVISetup.codes(metadata, key: setup.batchKey, categories: setup.batchCategories, what: "batch")
    labelCodes = try SCVISetup.codes(metadata, key: setup.labelsKey, categories: setup.labelCategories, what: "label")
    obsNames = metadata.obsNames
  }

  /// The count check of `source` (matrix `layer`, nil: X), once its shape is checked against the
  /// cells and genes of `metadata` and `genes`.
  static func blockCheck(_ source: RowBlockSource, metadata: AnnData, genes: [String], layer: String?, integers: Bool,
                         requireCounts: Bool, likelihood: String) throws -> StreamingLoader.BlockCheck {
    guard source.nCols == genes.count, source.nRows == metadata.nObs else {
      throw SCVIModelError.setup(
        "\(source.sourceDescription) is \(source.nRows) × \(source.nCols), but its obs and var have \(metadata.nObs) and \(genes.count) entries")
    }
    return countCheck(obsNames: metadata.obsNames, genes: genes, integers: integers, requireCounts: requireCounts,
                      likelihood: likelihood, source: source.sourceDescription + (layer.map { " layer '\($0)'" } ?? " X"))
  }

  func loader(_ cells: [Int]?, options: StreamingLoader.Options) throws -> StreamingLoader {
    try StreamingLoader(source: source, cells: cells, batchCodes: batchCodes, labelCodes: labelCodes, options: options,
                        check: check)
  }

  /// The checks `RegisteredCells` makes on counts in memory, made on each block read.
  private static func countCheck(obsNames: [String], genes: [String], integers: Bool, requireCounts: Bool, likelihood: String,
                                 source: String) -> StreamingLoader.BlockCheck {
    { firstRow, rows in
      for r in 0..<rows.nRows {
        var total: Float = 0
        for k in rows.rowStarts[r]..<rows.rowStarts[r + 1] {
          let v = rows.values[k]
          if !v.isFinite || v < 0 || (integers && v.rounded() != v) {
            let problem = !v.isFinite ? "is \(v)" : v < 0 ? "is negative (\(v))"
              : "is not an integer (\(v)); the \(likelihood) likelihood needs raw counts (use the counts layer, not normalized data)"
            throw SCVIModelError.invalidCounts(
              "\(source) at cell '\(obsNames[firstRow + r])', gene '\(genes[Int(rows.columns[k])])' \(problem)")
          }
          total += v
        }
        if requireCounts && total <= 0 {
          throw SCVIModelError.invalidCounts(
            "cell '\(obsNames[firstRow + r])' has no counts in \(source); its observed library size log(0) is undefined. Remove empty cells first.")
        }
      }
    }
  }
}

extension RegisteredCells {
  /// No cells (a streamed model's in-memory registration).
  static func empty(genes: Int) -> RegisteredCells {
    RegisteredCells(
      counts: try! CountMatrix(.sparse(SparseMatrix(format: .csr, nRows: 0, nCols: genes, data: .float32([]), indices: [],
                                                    indptr: [0]))),
      batchCodes: [], labelCodes: [], obsNames: [], obs: DataFrame(index: []))
  }
}
