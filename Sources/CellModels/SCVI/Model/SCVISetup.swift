import CellData
import Foundation

/// Which data of an AnnData feed a model (scvi-tools' `setup_anndata`): the counts (X or a
/// layer), the batch and label columns, their category order and the gene names.
///
/// Categories keep the column's order when it is categorical, else they are sorted, as
/// scvi-tools does. Without a batch key every cell is in one batch ("0"), so a model built
/// without batches has scvi-tools' n_batch = 1 and the same state-dict shapes.
public struct SCVISetup: Codable, Sendable, Equatable {
  public var layer: String?
  public var batchKey: String?
  public var labelsKey: String?
  public var batchCategories: [String]
  public var labelCategories: [String]
  public var geneNames: [String]

  public init(_ adata: AnnData, layer: String? = nil, batchKey: String? = nil, labelsKey: String? = nil) throws {
    if let layer, adata.layers[layer] == nil {
      throw SCVIModelError.setup("no layer '\(layer)' (layers: \(adata.layers.keys.sorted().joined(separator: ", ")))")
    }
    if layer == nil, adata.X == nil { throw SCVIModelError.setup("the AnnData has no X; name a layer of counts") }
    try self.init(metadata: adata, layer: layer, batchKey: batchKey, labelsKey: labelsKey)
  }

  /// The setup of cells whose counts are read elsewhere (a backed file): `metadata` holds obs
  /// and var only; `layer` is recorded (nil: X).
  public init(metadata adata: AnnData, layer: String? = nil, batchKey: String? = nil, labelsKey: String? = nil) throws {
    self.layer = layer
    self.batchKey = batchKey
    self.labelsKey = labelsKey
    batchCategories = try batchKey.map { try Self.categories(adata, $0) } ?? ["0"]
    labelCategories = try labelsKey.map { try Self.categories(adata, $0) } ?? ["0"]
    geneNames = adata.varNames
  }

  /// The category order of an obs column.
  static func categories(_ adata: AnnData, _ key: String) throws -> [String] {
    guard let column = adata.obs[key] else {
      throw SCVIModelError.setup("no obs column '\(key)' (obs columns: \(adata.obs.columnNames.joined(separator: ", ")))")
    }
    if case .categorical(let c) = column {
      return (0..<c.categories.count).map { c.categories.text(at: $0) }
    }
    let labels = try adata.obs.labels(key)
    if let missing = labels.firstIndex(where: { $0 == nil }) {
      throw SCVIModelError.setup("obs column '\(key)' has a missing value at cell \(missing) ('\(adata.obsNames[missing])')")
    }
    return Set(labels.compactMap { $0 }).sorted()
  }

  /// Each category's code; a category named twice (a damaged model file) is an error.
  static func codeLookup(_ categories: [String], what: String) throws -> [String: Int] {
    var lookup: [String: Int] = [:]
    for (code, category) in categories.enumerated() {
      guard lookup.updateValue(code, forKey: category) == nil else {
        throw SCVIModelError.setup("the model's \(what) categories name '\(category)' twice")
      }
    }
    return lookup
  }

  /// Each cell's code in `categories` for the obs column `key`; 0 for every cell without a key.
  /// A missing column, a missing value or an unknown category is an error naming the cell.
  static func codes(_ adata: AnnData, key: String?, categories: [String], what: String) throws -> [Int] {
    guard let key else { return Array(repeating: 0, count: adata.nObs) }
    guard adata.obs[key] != nil else {
      throw SCVIModelError.setup("no obs column '\(key)' for the \(what) (obs columns: \(adata.obs.columnNames.joined(separator: ", ")))")
    }
    let lookup = try codeLookup(categories, what: what)
    return try adata.obs.labels(key).enumerated().map { cell, label in
      guard let label else {
        throw SCVIModelError.setup("obs column '\(key)' has a missing value at cell \(cell) ('\(adata.obsNames[cell])'): every cell needs a \(what)")
      }
      guard let code = lookup[label] else {
        throw SCVIModelError.setup(
          "cell '\(adata.obsNames[cell])' has \(what) '\(label)', which the model does not know (known: \(categories.prefix(20).joined(separator: ", ")))")
      }
      return code
    }
  }

  /// Checks that `adata` has this setup's genes in the same order.
  func checkGenes(_ adata: AnnData) throws {
    guard adata.varNames != geneNames else { return }
    let known = Set(geneNames), present = Set(adata.varNames)
    let missing = geneNames.filter { !present.contains($0) }
    let extra = adata.varNames.filter { !known.contains($0) }
    if missing.isEmpty && extra.isEmpty {
      throw SCVIModelError.genesMismatch("the data has the model's \(geneNames.count) genes but in another order; reorder var to the model's gene order")
    }
    throw SCVIModelError.genesMismatch(
      "the data's \(adata.nVars) genes do not match the model's \(geneNames.count): \(missing.count) model genes missing (e.g. \(missing.prefix(5).joined(separator: ", "))), \(extra.count) unknown genes (e.g. \(extra.prefix(5).joined(separator: ", ")))")
  }
}

/// Errors of the model facades: setup, data that does not fit the model, files.
public enum SCVIModelError: Error, CustomStringConvertible, Equatable {
  case setup(String)
  case invalidCounts(String)
  case genesMismatch(String)
  case notTrained(String)
  case file(String)

  public var description: String {
    switch self {
    case .setup(let m): return "setup: \(m)"
    case .invalidCounts(let m): return "counts: \(m)"
    case .genesMismatch(let m): return "genes: \(m)"
    case .notTrained(let m): return m
    case .file(let m): return "model files: \(m)"
    }
  }
}

/// The registered cells of an AnnData: counts and covariate codes, validated once.
struct RegisteredCells {
  let counts: CountMatrix
  let batchCodes: [Int]
  let labelCodes: [Int]
  let obsNames: [String]
  let obs: DataFrame

  /// Validates counts (finite, non-negative, integer for nb/zinb; no empty cell with an
  /// observed library size) and maps the covariates through `setup`'s categories.
  init(_ adata: AnnData, setup: SCVISetup, config: VAEConfig) throws {
    try setup.checkGenes(adata)
    let counts = try CountMatrix(adata, layer: setup.layer)
    let source = setup.layer.map { "layer '\($0)'" } ?? "X"
    let integers = config.geneLikelihood != .poisson
    if let bad = counts.firstInvalidCount(integers: integers) {
      let problem = !bad.value.isFinite ? "is \(bad.value)" : bad.value < 0 ? "is negative (\(bad.value))"
        : "is not an integer (\(bad.value)); the \(config.geneLikelihood.rawValue) likelihood needs raw counts (use the counts layer, not normalized data)"
      throw SCVIModelError.invalidCounts(
        "\(source) at cell '\(adata.obsNames[bad.row])', gene '\(adata.varNames[bad.column])' \(problem)")
    }
    if config.useObservedLibSize, let empty = counts.rowSums().firstIndex(where: { $0 <= 0 }) {
      throw SCVIModelError.invalidCounts(
        "cell '\(adata.obsNames[empty])' has no counts in \(source); its observed library size log(0) is undefined. Remove empty cells first (preprocess --min-counts 1 / filterCells(minCounts: 1)).")
    }
    self.counts = counts
    batchCodes = try SCVISetup.codes(adata, key: setup.batchKey, categories: setup.batchCategories, what: "batch")
    labelCodes = try SCVISetup.codes(adata, key: setup.labelsKey, categories: setup.labelCategories, what: "label")
    obsNames = adata.obsNames
    obs = adata.obs
  }

  init(counts: CountMatrix, batchCodes: [Int], labelCodes: [Int], obsNames: [String], obs: DataFrame) {
    self.counts = counts
    self.batchCodes = batchCodes
    self.labelCodes = labelCodes
    self.obsNames = obsNames
    self.obs = obs
  }

  var count: Int { counts.nRows }

  func loader(_ cells: [Int]? = nil, batchSize: Int = 128, shuffle: Bool = false, dropLast: Bool = false) throws
    -> MinibatchLoader
  {
    try MinibatchLoader(counts: counts, cells: cells, batchCodes: batchCodes, labelCodes: labelCodes,
                        batchSize: batchSize, shuffle: shuffle, dropLast: dropLast)
  }
}
