import CellAnalysis
import CellData
import Foundation
import Torch

/// Which data of an AnnData feed scAtlasVAE: the counts (X or a layer), the batch keys (the
/// first is the main one, the rest the reference's additional batch keys), the label keys
/// and their categories, and the gene names.
///
/// Label categories leave out the unlabelled name (default "undefined") and missing values:
/// those cells get code −1 and no label loss. The reference instead keeps the unlabelled name
/// as a category and assumes it sorts last, which breaks on label names sorting after it.
public struct ScAtlasVAESetup: Codable, Sendable, Equatable {
  public var layer: String?
  public var batchKey: String?
  public var batchCategories: [String]
  public var additionalBatchKeys: [String]
  public var additionalBatchCategories: [[String]]
  public var labelKeys: [String]
  public var labelCategories: [[String]]
  public var unlabeled: String
  /// obsm key of the latent-constraint target, if any.
  public var latentTargetKey: String?
  public var geneNames: [String]

  public init(_ adata: AnnData, layer: String? = nil, batchKeys: [String] = [], labelKeys: [String] = [],
              unlabeled: String = "undefined", latentTargetKey: String? = nil) throws {
    if let layer, adata.layers[layer] == nil {
      throw SCVIModelError.setup("no layer '\(layer)' (layers: \(adata.layers.keys.sorted().joined(separator: ", ")))")
    }
    if layer == nil, adata.X == nil { throw SCVIModelError.setup("the AnnData has no X; name a layer of counts") }
    try self.init(metadata: adata, layer: layer, batchKeys: batchKeys, labelKeys: labelKeys, unlabeled: unlabeled,
                  latentTargetKey: latentTargetKey)
  }

  /// The setup of cells whose counts are read elsewhere (a backed file): `metadata` holds obs
  /// and var (and obsm for a latent target); `layer` is recorded (nil: X).
  public init(metadata adata: AnnData, layer: String? = nil, batchKeys: [String] = [], labelKeys: [String] = [],
              unlabeled: String = "undefined", latentTargetKey: String? = nil) throws {
    if let duplicate = Self.firstDuplicate(batchKeys + labelKeys) {
      throw SCVIModelError.setup("obs column '\(duplicate)' is named twice among the batch and label keys")
    }
    self.layer = layer
    self.unlabeled = unlabeled
    batchKey = batchKeys.first
    additionalBatchKeys = Array(batchKeys.dropFirst())
    let batchCategories = try batchKeys.map { try Self.categories(adata, $0, what: "batch") }
    self.batchCategories = batchCategories.first ?? []
    additionalBatchCategories = Array(batchCategories.dropFirst())
    self.labelKeys = labelKeys
    labelCategories = try labelKeys.map { key in
      try Self.categories(adata, key, what: "label", skipping: unlabeled)
    }
    for (key, categories) in zip(labelKeys, labelCategories) where categories.isEmpty {
      throw SCVIModelError.setup("label key '\(key)' has no labelled cell (every cell is '\(unlabeled)' or missing)")
    }
    if let latentTargetKey, adata.obsm[latentTargetKey] == nil {
      throw SCVIModelError.setup("no obsm '\(latentTargetKey)' for the latent constraint (obsm: \(adata.obsm.keys.sorted().joined(separator: ", ")))")
    }
    self.latentTargetKey = latentTargetKey
    geneNames = adata.varNames
  }

  /// A saved setup's category lists name each category once (a damaged model file may not).
  func checkCategories(file: String) throws {
    let lists = [("batch", batchCategories)] + additionalBatchCategories.map { ("batch", $0) } + labelCategories.map { ("label", $0) }
    for (what, categories) in lists {
      do { _ = try SCVISetup.codeLookup(categories, what: what) } catch SCVIModelError.setup(let message) {
        throw SCVIModelError.file("\(file): \(message)")
      }
    }
  }

  /// A setup from saved keys and categories (no data needed).
  init(batchKeys: [String], batchCategories: [[String]], labelKeys: [String], labelCategories: [[String]],
       unlabeled: String, geneNames: [String], layer: String? = nil) {
    self.layer = layer
    batchKey = batchKeys.first
    additionalBatchKeys = Array(batchKeys.dropFirst())
    self.batchCategories = batchCategories.first ?? []
    additionalBatchCategories = Array(batchCategories.dropFirst())
    self.labelKeys = labelKeys
    self.labelCategories = labelCategories
    self.unlabeled = unlabeled
    latentTargetKey = nil
    self.geneNames = geneNames
  }

  public var batchKeys: [String] { (batchKey.map { [$0] } ?? []) + additionalBatchKeys }

  /// The network's category counts for this setup.
  public func config(_ base: ScAtlasVAEConfig? = nil) -> ScAtlasVAEConfig {
    var config = base ?? ScAtlasVAEConfig(nInput: geneNames.count)
    config.nInput = geneNames.count
    config.nBatch = batchCategories.count
    config.nAdditionalBatch = additionalBatchCategories.map(\.count)
    config.nLabels = labelCategories.map(\.count)
    return config
  }

  /// Category order: the column's own when categorical, else sorted (empty and missing
  /// values are refused for batches; `skipping` and missing values are left out for labels).
  static func categories(_ adata: AnnData, _ key: String, what: String, skipping: String? = nil) throws -> [String] {
    guard let column = adata.obs[key] else {
      throw SCVIModelError.setup("no obs column '\(key)' for the \(what) (obs columns: \(adata.obs.columnNames.joined(separator: ", ")))")
    }
    let values = try adata.obs.labels(key)
    if skipping == nil, let missing = values.firstIndex(where: { $0 == nil }) {
      throw SCVIModelError.setup("\(what) column '\(key)' has a missing value at cell '\(adata.obsNames[missing])'")
    }
    let present = Set(values.compactMap { $0 })
    var names: [String]
    if case .categorical(let c) = column {
      names = (0..<c.categories.count).map { c.categories.text(at: $0) }.filter { present.contains($0) }
    } else {
      names = present.sorted()
    }
    if let skipping { names.removeAll { $0 == skipping } }
    return names
  }

  private static func firstDuplicate(_ names: [String]) -> String? {
    var seen = Set<String>()
    return names.first { !seen.insert($0).inserted }
  }
}

/// Where the counts of registered cells are: in memory, or on disk, read by row blocks and
/// checked block by block as they are read (`--backed`).
enum AtlasCounts {
  case memory(CountMatrix)
  case streamed(RowBlockSource, check: StreamingLoader.BlockCheck)
}

/// The registered cells of an AnnData for scAtlasVAE: counts and covariate codes, validated once.
struct AtlasCells {
  let counts: AtlasCounts
  let count: Int
  let batchCodes: [Int]?
  let additionalBatchCodes: [[Int]]
  /// Per label key; −1 for unlabelled cells and for labels the setup does not know.
  let labelCodes: [[Int]]
  let latentTarget: (values: [Float], width: Int)?
  let obsNames: [String]

  /// - Parameters:
  ///   - requireBatches: refuse batches the setup does not know (training, loading);
  ///     query mapping passes false and registers no batch codes.
  init(_ adata: AnnData, setup: ScAtlasVAESetup, reconstruction: AtlasReconstruction, requireBatches: Bool = true,
       allowEmptyCells: Bool = false) throws {
    try Self.checkGenes(adata, setup)
    let counts = try CountMatrix(adata, layer: setup.layer)
    let source = setup.layer.map { "layer '\($0)'" } ?? "X"
    let integers = reconstruction == .zinb || reconstruction == .nb
    if let bad = counts.firstInvalidCount(integers: integers) {
      let problem = !bad.value.isFinite ? "is \(bad.value)" : bad.value < 0 ? "is negative (\(bad.value))"
        : "is not an integer (\(bad.value)); the \(reconstruction.rawValue) likelihood needs raw counts"
      throw SCVIModelError.invalidCounts("\(source) at cell '\(adata.obsNames[bad.row])', gene '\(adata.varNames[bad.column])' \(problem)")
    }
    if !allowEmptyCells, let empty = counts.rowSums().firstIndex(where: { $0 <= 0 }) {
      throw SCVIModelError.invalidCounts(
        "cell '\(adata.obsNames[empty])' has no counts in \(source) (\(counts.rowSums().filter { $0 <= 0 }.count) such cells); remove empty cells first (preprocess --min-counts 1)")
    }
    try self.init(covariatesOf: adata, counts: .memory(counts), setup: setup, requireBatches: requireBatches)
  }

  /// Cells whose counts stream from `source` (a backed .h5ad or a collection); `metadata` holds
  /// their obs and var. Counts are checked as each block is read: a bad count or, unless
  /// `allowEmptyCells`, an empty cell stops the pass with the cell and gene named.
  init(streaming source: RowBlockSource, metadata: AnnData, setup: ScAtlasVAESetup, reconstruction: AtlasReconstruction,
       requireBatches: Bool = true, allowEmptyCells: Bool = false) throws {
    try Self.checkGenes(metadata, setup)
    let check = try StreamedCells.blockCheck(
      source, metadata: metadata, genes: setup.geneNames, layer: setup.layer,
      integers: reconstruction == .zinb || reconstruction == .nb, requireCounts: !allowEmptyCells,
      likelihood: reconstruction.rawValue)
    try self.init(covariatesOf: metadata, counts: .streamed(source, check: check), setup: setup, requireBatches: requireBatches)
  }

  private init(covariatesOf adata: AnnData, counts: AtlasCounts, setup: ScAtlasVAESetup, requireBatches: Bool) throws {
    self.counts = counts
    count = adata.nObs
    if requireBatches {
      batchCodes = try setup.batchKey.map { try SCVISetup.codes(adata, key: $0, categories: setup.batchCategories, what: "batch") }
      additionalBatchCodes = try zip(setup.additionalBatchKeys, setup.additionalBatchCategories).map {
        try SCVISetup.codes(adata, key: $0, categories: $1, what: "batch")
      }
    } else {
      batchCodes = nil
      additionalBatchCodes = []
    }
    labelCodes = try zip(setup.labelKeys, setup.labelCategories).map { key, categories in
      guard adata.obs[key] != nil else { return Array(repeating: -1, count: adata.nObs) }
      let lookup = try SCVISetup.codeLookup(categories, what: "label")
      return try adata.obs.labels(key).map { $0.flatMap { lookup[$0] } ?? -1 }
    }
    if let key = setup.latentTargetKey, adata.obsm[key] != nil {
      let target = try adata.representation(useRep: key)
      latentTarget = (target.values.map { Float($0) }, target.cols)
    } else {
      latentTarget = nil
    }
    obsNames = adata.obsNames
  }

  private static func checkGenes(_ adata: AnnData, _ setup: ScAtlasVAESetup) throws {
    guard adata.varNames == setup.geneNames else {
      throw SCVIModelError.genesMismatch(
        "the data's \(adata.nVars) genes are not the model's \(setup.geneNames.count) genes in the model's order (align the query first: ScAtlasVAE.alignGenes)")
    }
  }

  var isStreaming: Bool {
    if case .streamed = counts { return true }
    return false
  }

  /// Calls `body` with the minibatches of the cells `indices` for pass `epoch`: from memory
  /// (shuffled by libtorch's randperm under `Runtime.seed`), or streamed by row blocks with
  /// `streaming`'s block and buffer sizes and seed (docs/scale.md). Only the last minibatch of
  /// a pass can be partial, in both.
  func forEachMinibatch(_ indices: [Int], batchSize: Int, shuffle: Bool, epoch: Int = 0,
                        streaming: StreamingLoader.Options = StreamingLoader.Options(),
                        _ body: (AtlasInput) throws -> Void) throws {
    switch counts {
    case .memory(let matrix):
      for batch in minibatchPositions(indices, batchSize: batchSize, shuffle: shuffle) {
        try body(input(batch, x: matrix.rows(batch)))
      }
    case .streamed(let source, let check):
      let options = StreamingLoader.passOptions(streaming, batchSize: batchSize, shuffle: shuffle, seed: streaming.seed)
      let loader = try StreamingLoader(source: source, cells: indices.count == count ? nil : indices, options: options,
                                       check: check)
      let stream = try loader.pass(epoch: epoch)
      while let batch = try stream.next() { try body(input(batch.indices, x: batch.x)) }
    }
  }

  /// The network input for the cells at `indices`, whose counts are `x`.
  func input(_ indices: [Int], x: Tensor) -> AtlasInput {
    func codes(_ all: [Int]) -> Tensor { Tensor(indices.map { Int64(all[$0]) }) }
    var target: Tensor?
    if let (values, width) = latentTarget {
      var rows = [Float]()
      rows.reserveCapacity(indices.count * width)
      for i in indices { rows += values[(i * width)..<((i + 1) * width)] }
      target = Tensor(rows, shape: [indices.count, width])
    }
    return AtlasInput(x: x, batch: batchCodes.map(codes), additionalBatches: additionalBatchCodes.map(codes),
                      labels: labelCodes.map(codes), latentTarget: target)
  }

  /// N / count per class of each label key over `cells` (N counts every cell, labelled or
  /// not, as the reference); a class without cells gets weight 0, not the reference's infinity.
  func classWeights(config: ScAtlasVAEConfig, cells: [Int]? = nil) -> [Tensor] {
    let cells = cells ?? Array(0..<count)
    return zip(labelCodes, config.nLabels).map { codes, nClasses in
      var counts = [Double](repeating: 0, count: nClasses)
      for cell in cells where codes[cell] >= 0 { counts[codes[cell]] += 1 }
      return Tensor(counts.map { $0 > 0 ? Float(Double(cells.count) / $0) : 0 })
    }
  }
}
