import CellData
import Foundation
import Torch

/// Multi-omic integration as the reference's Tutorial_Multiomics: the RNA genes and a second
/// modality (proteins of CITE-seq, from obsm) as tokens of one sequence, each token with its
/// modality embedded (`mod_encoder`) and added to the batch embedding before the decoders, and
/// the integration objective.
extension ScGPTTasks {
  /// The modality vocabulary: the modality names sorted, then the specials (as the tutorial's
  /// `Vocab(np.unique(mod_type).tolist() + special_tokens)`).
  static func modalityVocabulary(_ modality: String) -> [String] { ["RNA", modality].sorted() + GeneVocab.specialTokens }

  /// Trains a new model on RNA (X, preprocessed as `integrate`) and the features of
  /// `obsm[featureKey]` (named by a DataFrame's columns, or by `uns["<modality lowercased>_names"]`
  /// / `uns["protein_names"]`), each binned per cell within its modality. Vocabulary tokens of
  /// the features are `"<modality>:<name>"`.
  public static func multiomic(_ adata: AnnData, featureKey: String, modality: String = "Protein", options: ScGPTTaskOptions,
                               dab: Bool = true) throws -> ScGPTTaskModel {
    guard options.pretrained == nil, options.vocabulary == nil else {
      throw ScGPTError.invalidInput("multi-omic models are trained from scratch here (their vocabulary holds the features)")
    }
    guard let batchKey = options.batchKey else { throw ScGPTError.invalidInput("multi-omic integration needs a batch key") }
    let (features, featureNames) = try obsmFeatures(adata, key: featureKey, modality: modality)
    let batchLabels = try obsColumn(adata, batchKey, what: "batch")
    if let missing = batchLabels.firstIndex(where: { $0 == nil }) {
      throw ScGPTError.invalidInput("cell '\(adata.obsNames[missing])' has no batch in obs['\(batchKey)']")
    }
    let batchNames = Array(Set(batchLabels.map { $0! })).sorted()
    let batchIndex = Dictionary(uniqueKeysWithValues: batchNames.enumerated().map { ($1, $0) })
    let batches = batchLabels.map { batchIndex[$0!]! }

    var data = try withGeneNames(adata, column: options.geneColumn, layer: options.layer)
    var random = ScGPTRandom(seed: options.training.seed)
    var preprocessor = ScGPTPreprocessor.tutorial(nHVG: options.nHVG.flatMap { $0 < data.nVars ? $0 : nil })
    preprocessor.binning = options.nBins
    preprocessor.tieBreak = options.tieBreak
    try preprocessor(&data, batchKey: batchKey, random: &random)
    let genes = data.varNames, nGenes = genes.count, nFeatures = featureNames.count

    // One binned matrix [cells × (genes + features)], each modality binned within the cell.
    let rna = try data.matrix(layer: preprocessor.binnedKey).denseDoubles()
    let binner = ValueBinning(nBins: options.nBins, tieBreak: preprocessor.tieBreak)
    var combined: [Float] = []
    combined.reserveCapacity(adata.nObs * (nGenes + nFeatures))
    for cell in 0..<adata.nObs {
      combined += rna[(cell * nGenes)..<((cell + 1) * nGenes)].map { Float($0) }
      let row = features[(cell * nFeatures)..<((cell + 1) * nFeatures)].map { Float($0) }
      combined += row.contains(where: { $0 != 0 }) ? binner.bin(row, random: &random).bins.map(Float.init) : row
    }
    let featureTokens = featureNames.map { "\(modality):\($0)" }
    let vocab = try GeneVocab(tokens: GeneVocab.specialTokens + genes + featureTokens)
    let modalities = modalityVocabulary(modality)
    let position = Dictionary(uniqueKeysWithValues: modalities.enumerated().map { ($1, $0) })
    let tokenModalities = GeneVocab.specialTokens.map { position[$0]! } + Array(repeating: position["RNA"]!, count: nGenes)
      + Array(repeating: position[modality]!, count: nFeatures)

    var config = options.architecture.config(vocab: vocab)
    config.padValue = -2
    config.useBatchLabels = true
    config.numBatchLabels = batchNames.count
    config.batchNormalization = .domainSpecific
    config.explicitZeroProb = true
    config.doMVC = true
    config.doDAB = dab
    config.ecsThreshold = 0.8
    config.numModalities = modalities.count
    config.modalityPadId = position["<pad>"]!
    var folder = ScGPTModelFolder(network: try ScGPTNetwork(config), vocab: vocab)
    folder.network.tokenModalities = Tensor(tokenModalities.map(Int64.init))

    let includeZeroGenes = options.includeZeroGenes ?? true
    let maxLength = options.maxLength ?? nGenes + nFeatures + 1
    let tokens = try ScGPTCellTokens(
      binned: .dense(try DenseArray(shape: [adata.nObs, nGenes + nFeatures], data: .float32(combined))),
      geneIds: Array(3..<(3 + nGenes + nFeatures)), vocab: vocab, maxLength: maxLength, padValue: -2,
      includeZeroGenes: includeZeroGenes, cellNames: adata.obsNames, random: &random)
    try withTorchErrors { folder.network.to(options.device) }
    let tuner = try ScGPTFineTuner(network: folder.network, objective: .integration, options: options.training)
    let result = try tuner.fit(tokens, batches: batches)

    folder.args["task"] = "multiomic"
    folder.args["genes"] = genes
    folder.args["feature_key"] = featureKey
    folder.args["modality"] = modality
    folder.args["features"] = featureNames
    folder.args["modalities"] = modalities
    folder.args["token_modalities"] = tokenModalities
    folder.args["n_bins"] = options.nBins
    folder.args["tie_break"] = options.tieBreak == .random ? "random" : "lowest"
    folder.args["max_length"] = maxLength
    folder.args["include_zero_gene"] = includeZeroGenes
    folder.args["batch_key"] = batchKey
    folder.args["batches"] = batchNames
    return ScGPTTaskModel(folder: folder, result: result, data: data, tokens: tokens, batches: batches, skippedCells: 0, unknownGenes: 0)
  }

  /// obsm[key] as cells × features (row-major) and the feature names; values must be finite and
  /// non-negative counts or intensities.
  static func obsmFeatures(_ adata: AnnData, key: String, modality: String) throws -> (values: [Double], names: [String]) {
    guard let element = adata.obsm[key] else {
      throw ScGPTError.invalidInput("no obsm['\(key)'] (obsm has: \(adata.obsm.keys.sorted().joined(separator: ", ")))")
    }
    var values: [Double], names: [String]
    switch element {
    case .dataFrame(let frame):
      names = frame.columnNames
      let columns = try names.map { try frame.doubles($0) }
      values = (0..<adata.nObs).flatMap { cell in columns.map { $0[cell] } }
    case .dense(let array) where array.shape.count == 2 && array.shape[0] == adata.nObs:
      guard let v = array.data.doubles else { throw ScGPTError.invalidInput("obsm['\(key)'] is not numeric") }
      values = v
      let nameKeys = ["\(modality.lowercased())_names", "protein_names"]
      if let found = nameKeys.lazy.compactMap({ adata.uns[$0] }).first, case .dense(let n) = found, n.data.count == array.shape[1] {
        names = (0..<n.data.count).map { n.data.text(at: $0) }
      } else {
        names = (0..<array.shape[1]).map { "\(modality)\($0)" }
      }
    case .sparse(let matrix) where matrix.nRows == adata.nObs:
      values = matrix.denseDoubles()
      names = (0..<matrix.nCols).map { "\(modality)\($0)" }
    default:
      throw ScGPTError.invalidInput("obsm['\(key)'] is not a cells × features table or matrix (\(element.typeDescription))")
    }
    guard !names.isEmpty else { throw ScGPTError.invalidInput("obsm['\(key)'] has no features") }
    if let bad = values.firstIndex(where: { !($0 >= 0) || !$0.isFinite }) {
      throw ScGPTError.invalidInput(
        "obsm['\(key)'] holds \(values[bad]) for cell '\(adata.obsNames[bad / names.count])': features must be finite and non-negative")
    }
    return (values, names)
  }
}
