import CellData
import Foundation
import Torch

/// The size of an scGPT model trained from scratch (no pretrained weights ship with this
/// project). Defaults: the tutorials' fine-tuning sizes (d 128, 4 heads, 4 layers).
public struct ScGPTArchitecture: Sendable {
  public var dModel = 128
  public var nHead = 4
  public var dHid = 128
  public var nLayers = 4
  public var nLayersCls = 3
  public var dropout = 0.2
  /// Dropout on attention probabilities. 0 (the default here) keeps libtorch's fused,
  /// memory-efficient attention in training on CPU, where it takes no dropout; nil is the
  /// reference's (the layer's dropout), which computes full score matrices.
  public var attentionDropout: Double? = 0

  public init() {}

  /// A new model's config of this size over `vocab` (its `<pad>` is the padding token).
  func config(vocab: GeneVocab) -> ScGPTConfig {
    var config = ScGPTConfig(ntoken: vocab.count, dModel: dModel, nHead: nHead, dHid: dHid, nLayers: nLayers,
                             padTokenId: vocab["<pad>"]!)
    config.nLayersCls = nLayersCls
    config.dropout = dropout
    config.attentionDropout = attentionDropout
    return config
  }
}

/// Settings shared by the fine-tuning tasks.
public struct ScGPTTaskOptions: Sendable {
  /// seurat_v3 genes to keep (nil or ≥ the gene count: all genes that pass the count filter).
  public var nHVG: Int? = 1200
  /// Tokens per cell, `<cls>` included (nil: the number of genes + 1, i.e. no subsampling).
  public var maxLength: Int?
  /// Tokens for every gene, zeros included (the reference's `include_zero_gene`), instead of
  /// the expressed genes only; nil: the tutorial's (annotation no, integration yes).
  public var includeZeroGenes: Bool?
  public var nBins = 51
  /// Binning ties: `.lowest` (deterministic, the default) or `.random`, the reference's
  /// `_digitize`, drawn from the run's seed (as `np.random.seed(seed)` before the reference's
  /// preprocessing, so its bins are reproduced). New cells are binned as the model was trained.
  public var tieBreak: ValueBinning.TieBreak = .lowest
  public var training: ScGPTTrainingOptions
  /// Used when `pretrained` is nil.
  public var architecture = ScGPTArchitecture()
  /// A model folder to start from (its vocabulary decides which genes are used; its weights
  /// are loaded where the shapes fit, as the reference's `load_pretrained`).
  public var pretrained: URL?
  /// For a new model: a vocab.json (e.g. the census vocabulary of the official checkpoints)
  /// instead of the data's genes; genes it lacks are left out.
  public var vocabulary: URL?
  /// obs column of batches (for HVG selection; the integration's batch labels).
  public var batchKey: String?
  /// Layer of raw counts (default X).
  public var layer: String?
  /// var column of gene names (default: var names).
  public var geneColumn: String?
  public var device: Device = .cpu
  /// Streamed pretraining: how rows are read (block size, buffer, read-ahead).
  public var streaming = StreamingLoader.Options()

  public init(training: ScGPTTrainingOptions) { self.training = training }
}

/// A fine-tuned model with what it was trained on.
public struct ScGPTTaskModel {
  public var folder: ScGPTModelFolder
  public var result: ScGPTTrainingResult
  /// The training data after preprocessing (the model's genes), in the input's cell order.
  public var data: AnnData
  public var tokens: ScGPTCellTokens
  /// Batch indices of the cells (into args.json's `batches`) when the model takes batch labels.
  public var batches: [Int]?
  /// Cells of the input left out (annotation: without a label).
  public var skippedCells: Int
  public var unknownGenes: Int
}

/// scGPT's fine-tuning tasks on AnnData: cell-type annotation and batch integration, as the
/// reference tutorials (Tutorial_Annotation, Tutorial_Integration). The model folder records
/// what inference needs in args.json: `task`, `genes`, `cell_types`, `label_key`, `batches`,
/// `batch_key`, `n_bins`, `max_length`.
public enum ScGPTTasks {
  /// Trains a classifier of `labelKey` on the cells that have a label; `unlabeled` names a
  /// label that counts as missing too.
  public static func annotate(_ adata: AnnData, labelKey: String, unlabeled: String? = nil, options: ScGPTTaskOptions) throws -> ScGPTTaskModel {
    let labels = try obsColumn(adata, labelKey, what: "label")
    let keep = labels.indices.filter { labels[$0] != nil && labels[$0] != unlabeled }
    guard !keep.isEmpty else { throw ScGPTError.invalidInput("no cell has a label in obs['\(labelKey)']") }
    let types = Array(Set(keep.map { labels[$0]! })).sorted()
    guard types.count >= 2 else {
      throw ScGPTError.invalidInput("obs['\(labelKey)'] has only one cell type (\(types[0])): a classifier needs at least 2")
    }
    let labelled = keep.count == adata.nObs ? adata : try adata.subset(obs: keep)
    let index = Dictionary(uniqueKeysWithValues: types.enumerated().map { ($1, $0) })
    let cellTypes = keep.map { index[labels[$0]!]! }
    var model = try train(labelled, objective: .annotation, options: options, cellTypes: cellTypes) { config in
      config.nCls = types.count
      config.useBatchLabels = false
      config.batchNormalization = .none
      config.doDAB = false
      config.doMVC = false
      config.explicitZeroProb = false
    }
    model.skippedCells = adata.nObs - keep.count
    model.folder.args["cell_types"] = types
    model.folder.args["label_key"] = labelKey
    return model
  }

  /// Trains the integration objective with batch labels and domain-specific batch norm over
  /// `options.batchKey`; `dab` adds the adversarial batch discriminator.
  public static func integrate(_ adata: AnnData, options: ScGPTTaskOptions, dab: Bool = true) throws -> ScGPTTaskModel {
    guard let batchKey = options.batchKey else { throw ScGPTError.invalidInput("integration needs a batch key") }
    let labels = try obsColumn(adata, batchKey, what: "batch")
    if let missing = labels.firstIndex(where: { $0 == nil }) {
      throw ScGPTError.invalidInput("cell '\(adata.obsNames[missing])' has no batch in obs['\(batchKey)']")
    }
    let names = Array(Set(labels.map { $0! })).sorted()
    let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    var model = try train(adata, objective: .integration, options: options, batches: labels.map { index[$0!]! }) { config in
      config.useBatchLabels = true
      config.numBatchLabels = names.count
      config.batchNormalization = .domainSpecific
      config.explicitZeroProb = true
      config.doMVC = true
      config.doDAB = dab
      config.ecsThreshold = 0.8
      config.nCls = 1
    }
    model.folder.args["batches"] = names
    return model
  }

  /// Masked-value pretraining of a new model (or further training of `options.pretrained`) on
  /// any cells: GEP + GEPC, no batch labels. The folder embeds with `scgpt embed`.
  /// `objective`: `.pretraining` (masked values), `.generative` or `.generativeAndMasked` (the
  /// pretraining branch's generative attention; the model gets a `flag_encoder`).
  public static func pretrain(_ adata: AnnData, options: ScGPTTaskOptions, objective: ScGPTObjective = .pretraining) throws -> ScGPTTaskModel {
    guard [.pretraining, .generative, .generativeAndMasked].contains(objective) else {
      throw ScGPTError.invalidInput("pretraining objectives are masked, generative and both")
    }
    return try train(adata, objective: objective, options: options, configure: pretrainingConfig(objective))
  }

  private static func pretrainingConfig(_ objective: ScGPTObjective) -> (inout ScGPTConfig) -> Void {
    { config in
      config.generative = objective != .pretraining
      config.useBatchLabels = false
      config.batchNormalization = .none
      config.doDAB = false
      config.doMVC = true
      config.explicitZeroProb = false
      config.nCls = 1
    }
  }

  /// What `pretrain(streaming:)` trained.
  public struct StreamedPretraining {
    public var folder: ScGPTModelFolder
    public var result: ScGPTTrainingResult
    public var data: ScGPTStreamedCells
    /// Genes of the data that are not in the vocabulary (ignored).
    public var unknownGenes: Int
  }

  /// Pretraining on cells streamed from `source` (backed .h5ad files whose columns are `genes`)
  /// by row blocks, tokenised per minibatch (`ScGPTStreamedCells`): a new model over the
  /// vocabulary (`options.vocabulary`, or these genes) or `options.pretrained` trained further.
  /// No HVG selection; `options.maxLength` (default: every expressed gene) caps each cell.
  public static func pretrain(streaming source: RowBlockSource, genes: [String], options: ScGPTTaskOptions,
                              objective: ScGPTObjective = .pretraining) throws -> StreamedPretraining
  {
    guard objective.isPretraining else { throw ScGPTError.invalidInput("pretraining objectives are masked, generative and both") }
    guard genes.count == source.nCols else { throw ScGPTError.invalidInput("\(genes.count) gene names for \(source.nCols) columns") }
    let configure = pretrainingConfig(objective)
    var folder: ScGPTModelFolder
    if let url = options.pretrained {
      folder = try ScGPTModelFolder.load(url, skipMismatchedShapes: true, configure: configure)
    } else {
      var seen = Set<String>()
      var vocab = try options.vocabulary.map { try GeneVocab(contentsOf: $0) }
        ?? GeneVocab(genes: genes.filter { seen.insert($0).inserted }, specials: GeneVocab.specialTokens, specialFirst: true)
      _ = vocab.appendMissingSpecials()
      folder = ScGPTModelFolder(network: try ScGPTNetwork(newConfig(vocab: vocab, options: options, configure: configure)), vocab: vocab)
    }
    let match = try folder.vocab.match(genes)
    let geneIds = zip(match.ids, match.known).map { $1 ? $0 : nil }
    let maxLength = options.maxLength ?? geneIds.compactMap { $0 }.count + 1
    let data = try ScGPTStreamedCells(
      source: source, geneIds: geneIds, vocab: folder.vocab, maxLength: maxLength, nBins: options.nBins,
      padValue: Float(folder.network.config.padValue), batchSize: options.training.batchSize,
      validationFraction: options.training.validationFraction, seed: options.training.seed, streaming: options.streaming,
      shard: options.training.processGroup.map { StreamingLoader.Shard(rank: $0.rank, worldSize: $0.worldSize) })
    try withTorchErrors { folder.network.to(options.device) }
    let result = try ScGPTFineTuner(network: folder.network, objective: objective, options: options.training).fit(data)
    folder.args["task"] = objective.rawValue
    folder.args["genes"] = zip(genes, match.known).filter(\.1).map(\.0)
    folder.args["n_bins"] = options.nBins
    folder.args["tie_break"] = "lowest"
    folder.args["max_length"] = maxLength
    folder.args["include_zero_gene"] = false
    return StreamedPretraining(folder: folder, result: result, data: data, unknownGenes: match.unknownCount)
  }

  /// A new model's config over `vocab` with `options.architecture` (pad value −2).
  private static func newConfig(vocab: GeneVocab, options: ScGPTTaskOptions, configure: (inout ScGPTConfig) -> Void) -> ScGPTConfig {
    var config = options.architecture.config(vocab: vocab)
    config.padValue = -2
    configure(&config)
    return config
  }

  private static func train(_ adata: AnnData, objective: ScGPTObjective, options: ScGPTTaskOptions, cellTypes: [Int]? = nil,
                            batches: [Int]? = nil, configure: (inout ScGPTConfig) -> Void) throws -> ScGPTTaskModel {
    var data = try withGeneNames(adata, column: options.geneColumn, layer: options.layer)
    var unknown = 0
    var pretrained: ScGPTModelFolder?
    var given: GeneVocab?
    if let url = options.pretrained.map({ $0.appendingPathComponent(ScGPTModelFolder.vocabFile) }) ?? options.vocabulary {
      // The vocabulary picks the genes.
      var vocab = try GeneVocab(contentsOf: url)
      _ = vocab.appendMissingSpecials()
      let match = try vocab.match(data.varNames)
      unknown = match.unknownCount
      if unknown > 0 { data = try data.subset(vars: match.known.indices.filter { match.known[$0] }) }
      given = vocab
    }
    if let url = options.pretrained {
      // The architecture comes from its args.json.
      pretrained = try withoutActuallyEscaping(configure) { configure in
        try ScGPTModelFolder.load(url, skipMismatchedShapes: true) { configure(&$0) }
      }
    }
    var random = ScGPTRandom(seed: options.training.seed)
    let nHVG = options.nHVG.flatMap { $0 < data.nVars ? $0 : nil }
    var preprocessor = ScGPTPreprocessor.tutorial(nHVG: nHVG)
    preprocessor.binning = options.nBins
    preprocessor.tieBreak = options.tieBreak
    try preprocessor(&data, batchKey: options.batchKey, random: &random)
    let genes = data.varNames

    var folder: ScGPTModelFolder
    if let pretrained {
      folder = pretrained
    } else {
      let vocab = try given ?? GeneVocab(genes: genes, specials: GeneVocab.specialTokens, specialFirst: true)
      folder = ScGPTModelFolder(network: try ScGPTNetwork(newConfig(vocab: vocab, options: options, configure: configure)), vocab: vocab)
    }
    let geneIds = try folder.vocab.match(genes).ids
    let maxLength = options.maxLength ?? genes.count + 1
    let includeZeroGenes = options.includeZeroGenes ?? (objective == .integration)
    let tokens = try ScGPTCellTokens(
      binned: try data.matrix(layer: preprocessor.binnedKey), geneIds: geneIds, vocab: folder.vocab, maxLength: maxLength,
      padValue: Float(folder.network.config.padValue), includeZeroGenes: includeZeroGenes, cellNames: data.obsNames,
      random: &random)
    try withTorchErrors { folder.network.to(options.device) }
    let tuner = try ScGPTFineTuner(network: folder.network, objective: objective, options: options.training)
    let result = try tuner.fit(tokens, cellTypes: cellTypes, batches: batches)

    folder.args["task"] = objective.rawValue
    folder.args["genes"] = genes
    folder.args["n_bins"] = options.nBins
    folder.args["tie_break"] = options.tieBreak == .random ? "random" : "lowest"
    folder.args["max_length"] = maxLength
    folder.args["include_zero_gene"] = includeZeroGenes
    if let key = options.batchKey { folder.args["batch_key"] = key }
    if let column = options.geneColumn { folder.args["gene_column"] = column }
    return ScGPTTaskModel(folder: folder, result: result, data: data, tokens: tokens,
                          batches: folder.network.config.needsBatchLabels ? batches : nil, skippedCells: 0, unknownGenes: unknown)
  }

  // MARK: - Inference with a fine-tuned folder

  /// A folder's view of new cells: their counts aligned by name to `genes` (default: the genes
  /// a fine-tuned folder records; absent genes zero, counted), binned, tokenised; and their
  /// batch indices when the model takes batch labels (a batch it was not trained on is an
  /// error).
  public static func tokens(for adata: AnnData, folder: ScGPTModelFolder, genes: [String]? = nil, includeZeroGenes: Bool? = nil,
                            layer: String? = nil, geneColumn: String? = nil, seed: UInt32 = 0)
    throws -> (tokens: ScGPTCellTokens, batches: [Int]?, missingGenes: Int)
  {
    if folder.args["task"] as? String == "multiomic" && genes == nil {
      throw ScGPTError.invalidInput("a multi-omic model needs each cell's RNA and second modality together: embed them with `scgpt multiomic`" + ((folder.args["modality"] as? String).map { " (\($0))" } ?? ""))
    }
    guard let genes = genes ?? folder.args["genes"] as? [String], !genes.isEmpty else {
      throw ScGPTError.checkpoint("args.json has no 'genes': this folder was not fine-tuned here (train it with annotate or integrate)")
    }
    let named = try withGeneNames(adata, column: geneColumn ?? folder.args["gene_column"] as? String, layer: layer)
    var (aligned, missing) = try AnnData.aligned(named, toGenes: genes)
    var preprocessor = ScGPTPreprocessor(normalizeTotal: 1e4, log1p: true, binning: (folder.args["n_bins"] as? Int) ?? 51)
    preprocessor.tieBreak = folder.args["tie_break"] as? String == "random" ? .random : .lowest
    preprocessor.filterGeneByCounts = nil
    var random = ScGPTRandom(seed: seed)
    try preprocessor(&aligned, random: &random)
    let allGenes = includeZeroGenes ?? (folder.args["include_zero_gene"] as? Bool) ?? false
    let tokens = try ScGPTCellTokens(
      binned: try aligned.matrix(layer: preprocessor.binnedKey), geneIds: try folder.vocab.match(genes).ids, vocab: folder.vocab,
      maxLength: allGenes ? genes.count + 1 : (folder.args["max_length"] as? Int) ?? genes.count + 1,
      padValue: Float(folder.network.config.padValue), includeZeroGenes: allGenes, cellNames: aligned.obsNames, random: &random)
    guard folder.network.config.needsBatchLabels else { return (tokens, nil, missing) }
    guard let key = folder.args["batch_key"] as? String, let names = folder.args["batches"] as? [String] else {
      throw ScGPTError.checkpoint("the model takes batch labels but args.json has no 'batch_key' and 'batches'")
    }
    let labels = try obsColumn(adata, key, what: "batch")
    let index = try SCVISetup.codeLookup(names, what: "batch")  // args.json's list: a duplicate is an error
    let batches = try labels.enumerated().map { cell, label -> Int in
      guard let label, let i = index[label] else {
        throw ScGPTError.invalidInput(
          "cell '\(adata.obsNames[cell])' is in batch '\(label ?? "(missing)")', which the model was not trained on (its batches: \(names.joined(separator: ", ")))")
      }
      return i
    }
    return (tokens, batches, missing)
  }

  /// Cell-type predictions of a fine-tuned annotation folder: the most probable type and its
  /// probability per cell, and all probabilities [cells, types].
  public static func predict(_ adata: AnnData, folder: ScGPTModelFolder, layer: String? = nil, geneColumn: String? = nil,
                             precision: DType = .float32) throws
    -> (labels: [String], confidence: [Double], probabilities: Tensor, missingGenes: Int)
  {
    guard let types = folder.args["cell_types"] as? [String], types.count == folder.network.config.nCls else {
      throw ScGPTError.checkpoint("args.json has no 'cell_types' matching the classifier: this is not an annotation model")
    }
    let (tokens, batches, missing) = try tokens(for: adata, folder: folder, layer: layer, geneColumn: geneColumn)
    let probabilities = try folder.network.classProbabilities(tokens, batches: batches, precision: precision)
    let (top, best) = (probabilities.max(dim: 1).toArray(Float.self), probabilities.argmax(dim: 1).toArray(Int64.self))
    return (best.map { types[Int($0)] }, top.map(Double.init), probabilities, missing)
  }

  /// L2-normalised cell embeddings [cells, d] of a fine-tuned folder (eval mode; with
  /// domain-specific batch norm each cell through its own batch's statistics).
  public static func embed(_ adata: AnnData, folder: ScGPTModelFolder, layer: String? = nil, geneColumn: String? = nil,
                           precision: DType = .float32) throws -> (embeddings: Tensor, missingGenes: Int)
  {
    let (tokens, batches, missing) = try tokens(for: adata, folder: folder, layer: layer, geneColumn: geneColumn)
    return (try folder.network.cellEmbeddings(tokens, batches: batches, precision: precision), missing)
  }

  // MARK: - Helpers

  static func obsColumn(_ adata: AnnData, _ key: String, what: String) throws -> [String?] {
    guard adata.obs[key] != nil else {
      throw ScGPTError.invalidInput("no \(what) column '\(key)' in obs (obs has: \(adata.obs.columnNames.joined(separator: ", ")))")
    }
    return try adata.obs.labels(key)
  }

  /// `adata` with the counts of `layer` (when given) as X, the var index replaced by `column`'s
  /// names (when given), and the counts checked: finite, non-negative.
  static func withGeneNames(_ adata: AnnData, column: String?, layer: String?) throws -> AnnData {
    var out = adata
    if let layer {
      guard let counts = adata.layers[layer] else { throw ScGPTError.invalidInput("no layer '\(layer)' of counts") }
      out.X = counts
    }
    if let column {
      guard adata.var[column] != nil else {
        throw ScGPTError.invalidInput("no var column '\(column)' of gene names (var columns: \(adata.var.columnNames.joined(separator: ", ")))")
      }
      out.var.index = try adata.var.labels(column).map { $0 ?? "" }
    }
    let counts = try CountMatrix(out, layer: nil)
    if let bad = counts.firstInvalidCount(integers: false) {
      throw ScGPTError.invalidInput("cell '\(out.obsNames[bad.row])' has the value \(bad.value): raw counts must be finite and non-negative")
    }
    return out
  }
}

extension ScGPTModelFolder {
  /// Whether the folder's args.json records a fine-tuning run of this project (its `genes`).
  public static func isFineTuned(_ directory: URL) throws -> Bool {
    try readArgs(directory.appendingPathComponent(argsFile))["genes"] != nil
  }
}
