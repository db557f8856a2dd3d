import CellData
import Foundation
import Torch

/// The JSON half of a saved model (the weights are in model.safetensors, keyed as the reference).
struct ScAtlasVAEModelFile: Codable {
  static let currentFormat = "swift-singlecell/scatlasvae-model/1"
  var format = currentFormat
  var config: ScAtlasVAEConfig
  var setup: ScAtlasVAESetup
  var history: TrainingHistory
  var trainSeconds: Double
}

extension ScAtlasVAE {
  public static let weightsFile = "model.safetensors"
  public static let descriptionFile = "model.json"

  /// Writes `dir/model.safetensors` (the state dict with the reference's keys) and
  /// `dir/model.json` (config, setup with genes and categories, history), each atomically.
  public func save(to dir: URL) throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let state = StateDict(module.stateDict().map { ($0.key, $0.value.detach().to(.cpu).contiguous()) })
    try Safetensors.write(state, metadata: ["format": ScAtlasVAEModelFile.currentFormat],
                          to: dir.appendingPathComponent(Self.weightsFile))
    let description = ScAtlasVAEModelFile(config: config, setup: setup, history: history, trainSeconds: trainSeconds)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeAtomically(try encoder.encode(description), to: dir.appendingPathComponent(Self.descriptionFile))
  }

  /// The setup (genes, keys, categories) of a saved model folder, from its model.json alone.
  public static func readSetup(from dir: URL) throws -> ScAtlasVAESetup { try readDescription(dir).setup }

  /// model.json of a saved folder, its format and category lists checked.
  static func readDescription(_ dir: URL) throws -> ScAtlasVAEModelFile {
    let jsonURL = dir.appendingPathComponent(descriptionFile)
    guard FileManager.default.fileExists(atPath: jsonURL.path) else {
      throw SCVIModelError.file("\(jsonURL.path) does not exist (is \(dir.path) a model folder written by atlas train?)")
    }
    let description: ScAtlasVAEModelFile
    do {
      description = try JSONDecoder().decode(ScAtlasVAEModelFile.self, from: Data(contentsOf: jsonURL))
    } catch {
      throw SCVIModelError.file("\(jsonURL.path) is not a scAtlasVAE model description: \(error)")
    }
    guard description.format == ScAtlasVAEModelFile.currentFormat else {
      throw SCVIModelError.file("\(jsonURL.path) has format '\(description.format)', expected '\(ScAtlasVAEModelFile.currentFormat)'")
    }
    try description.setup.checkCategories(file: jsonURL.path)
    return description
  }

  /// The config, setup and weights of a saved model folder, without data.
  static func readFolder(_ dir: URL) throws -> (description: ScAtlasVAEModelFile, module: ScAtlasVAENetwork) {
    let jsonURL = dir.appendingPathComponent(descriptionFile)
    let weightsURL = dir.appendingPathComponent(weightsFile)
    let description = try readDescription(dir)
    // The weights are read first, so that model.json's sizes are checked against them before
    // anything of those sizes is allocated.
    let module: ScAtlasVAENetwork
    do {
      let weights = try Safetensors.read(weightsURL).tensors
      try description.config.check(against: weights, file: jsonURL.path)
      module = try ScAtlasVAENetwork(config: description.config)
      try module.loadStateDict(weights)
    } catch let error as SCVIModelError {
      throw error
    } catch {
      throw SCVIModelError.file("\(weightsURL.path): \(error)")
    }
    module.eval()
    return (description, module)
  }

  /// Loads a model saved by `save(to:)` onto `adata`, which must hold the model's genes in
  /// its order (see `alignGenes`). With `requireBatches` false the data needs no batch
  /// columns (embedding and label prediction only).
  public static func load(from dir: URL, adata: AnnData, requireBatches: Bool = true) throws -> ScAtlasVAE {
    let (description, module) = try readFolder(dir)
    let cells = try AtlasCells(adata, setup: description.setup, reconstruction: description.config.reconstruction,
                               requireBatches: requireBatches, allowEmptyCells: !requireBatches)
    return loaded(description, module, cells)
  }

  /// A saved model on cells that stream from `source` (the backed files a `--backed` run
  /// trained on), whose obs and var are `metadata`.
  public static func load(from dir: URL, streaming source: RowBlockSource, metadata: AnnData,
                          requireBatches: Bool = true) throws -> ScAtlasVAE {
    let (description, module) = try readFolder(dir)
    let cells = try AtlasCells(streaming: source, metadata: metadata, setup: description.setup,
                               reconstruction: description.config.reconstruction, requireBatches: requireBatches,
                               allowEmptyCells: !requireBatches)
    return loaded(description, module, cells)
  }

  private static func loaded(_ description: ScAtlasVAEModelFile, _ module: ScAtlasVAENetwork, _ cells: AtlasCells)
    -> ScAtlasVAE
  {
    let model = ScAtlasVAE(setup: description.setup, module: module, cells: cells)
    model.history = description.history
    model.trainSeconds = description.trainSeconds
    return model
  }
}

// MARK: - The reference's save_to_disk file

extension ScAtlasVAE {
  /// Reads a file written by the reference's `save_to_disk` (a torch.save pickle with the
  /// state dict, `model_var_index`, `model_config` and the category lists), read by value:
  /// pandas objects are interpreted, never executed; tensors saved on CUDA load on the CPU.
  /// `total_variational` is not in the reference's saved config: pass it if the model used it.
  /// Returns the setup (genes, keys, categories) and the network with its weights.
  public static func readReferenceFile(_ url: URL, totalVariational: Bool = false) throws
    -> (setup: ScAtlasVAESetup, module: ScAtlasVAENetwork)
  {
    func fail(_ what: String) -> SCVIModelError { .file("\(url.path): \(what)") }
    let root = try TorchFile.load(url)
    guard let stateValue = root["model_state_dict"]?.dict, let config = root["model_config"] else {
      throw fail("no model_state_dict or model_config: not a scAtlasVAE save_to_disk file")
    }
    guard let genes = root["model_var_index"]?.pandasStrings ?? root["model_var_index"]?.stringArray else {
      throw fail("model_var_index (the genes) is missing or not a readable pandas Index")
    }
    var state = StateDict()
    for (key, value) in stateValue.entries { if let name = key.string, case .tensor(let t) = value { state[name] = t } }

    func keys(_ name: String) -> [String] {
      if let one = config[name]?.string { return [one] }
      if case .list(let list)? = config[name] { return list.items.compactMap(\.string) }
      return []
    }
    func categories(_ value: PickleValue?, _ what: String) throws -> [[String]] {
      switch value {
      case nil, .none?: return []
      case .list(let list)?:
        return try list.items.map { item in
          guard let names = item.pandasStrings else { throw fail("\(what) is not a readable pandas Categorical") }
          return names
        }
      case let single?:
        guard let names = single.pandasStrings else { throw fail("\(what) is not a readable pandas Categorical") }
        return [names]
      }
    }
    let unlabeled = config["unlabel_key"]?.string ?? "undefined"
    let batchKeys = keys("batch_key"), labelKeys = keys("label_key")
    let batchCategories = try categories(root["batch_category"], "batch_category")
      + categories(root["additional_batch_category"], "additional_batch_category")
    // The reference counts the unlabelled name among its label categories; ours do not.
    let labelCategories = try (categories(root["label_category"], "label_category")
      + categories(root["additional_label_category"], "additional_label_category")).map { $0.filter { $0 != unlabeled } }
    guard batchCategories.count == batchKeys.count, labelCategories.count == labelKeys.count else {
      throw fail("\(batchKeys.count) batch keys and \(labelKeys.count) label keys, but \(batchCategories.count) and \(labelCategories.count) category lists")
    }

    var network = ScAtlasVAEConfig(nInput: genes.count)
    if case .list(let stacks)? = config["hidden_stacks"] { network.hiddenStacks = stacks.items.compactMap(\.int) }
    network.nLatent = config["n_latent"]?.int ?? 10
    network.nBatch = batchCategories.first?.count ?? 0
    network.nAdditionalBatch = batchCategories.dropFirst().map(\.count)
    network.nLabels = labelCategories.map(\.count)
    func choice<T: RawRepresentable>(_ name: String, _ fallback: T) throws -> T where T.RawValue == String {
      guard let value = config[name], case .string(let text) = value else { return fallback }
      guard let parsed = T(rawValue: text) else { throw fail("unsupported \(name) '\(text)'") }
      return parsed
    }
    network.dispersion = try choice("dispersion", AtlasDispersion.geneCell)
    network.reconstruction = try choice("reconstruction_method", AtlasReconstruction.zinb)
    network.covariateEncoding = try choice("batch_embedding", AtlasCovariateEncoding.embedding)
    if config["mmd_key"]?.string != nil { network.mmdKey = try choice("mmd_key", AtlasMMDKey.batch) }
    network.batchHiddenDim = config["batch_hidden_dim"]?.int ?? 8
    for (name, path) in [("log_variational", \ScAtlasVAEConfig.logVariational), ("encode_libsize", \.encodeLibsize),
                         ("decode_libsize", \.decodeLibsize), ("use_layer_norm", \.useLayerNorm), ("inject_batch", \.injectBatch),
                         ("inject_label", \.injectLabel), ("inject_additional_batch", \.injectAdditionalBatch)] {
      if case .bool(let value)? = config[name] { network[keyPath: path] = value }
    }
    network.dropoutRate = config["dropout_rate"]?.number ?? 0.1
    network.totalVariational = totalVariational
    // rna_dropout is not saved: the dropout head's shape tells it.
    if let head = state["px_rna_dropout_decoder.weight"] { network.rnaDropout = head.shape.first == 1 && genes.count > 1 ? .cell : .gene }
    if case .bool(false)? = config["use_batch_norm"] { throw fail("models without batch norm are not supported") }
    if case .global(_, let name)? = config["activation_fn"], name != "ReLU" { throw fail("activation \(name) is not supported (only ReLU)") }

    try network.check(against: state, file: url.path)
    let setup = ScAtlasVAESetup(batchKeys: batchKeys, batchCategories: batchCategories, labelKeys: labelKeys,
                                labelCategories: labelCategories, unlabeled: unlabeled, geneNames: genes)
    try setup.checkCategories(file: url.path)
    let module = try ScAtlasVAENetwork(config: network)
    do {
      try module.loadStateDict(state, strict: true)
    } catch {
      throw fail("the weights do not fit the saved config: \(error)")
    }
    module.eval()
    return (setup, module)
  }

  /// A model from the reference's `save_to_disk` file on `adata` (the model's genes in its
  /// order: see `AnnData.aligned`); batches are not needed to embed and predict.
  public static func loadReferenceFile(_ url: URL, adata: AnnData, totalVariational: Bool = false) throws -> ScAtlasVAE {
    let (setup, module) = try readReferenceFile(url, totalVariational: totalVariational)
    let cells = try AtlasCells(adata, setup: setup, reconstruction: module.config.reconstruction, requireBatches: false,
                               allowEmptyCells: !module.config.encodeLibsize)
    return ScAtlasVAE(setup: setup, module: module, cells: cells)
  }
}
