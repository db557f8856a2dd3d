import CellData
import Foundation
import Torch

/// scvi-tools model folders (`model.save(dir)`) read into an `SCVIModel`: 1.x and 0.15–0.20
/// `model.pt` ({model_state_dict, var_names, attr_dict}), and the pre-0.15 layout
/// (`model_params.pt`, `attr.pkl`, `var_names.csv`) where its pieces can be read. The pickles
/// are read by value: pandas and numpy objects are interpreted, never executed.
extension SCVIModel {
  /// What a scvi-tools folder says about its model, before any data is attached.
  public struct ScviToolsFolder {
    /// scvi-tools' class name: "SCVI" or "LinearSCVI".
    public var modelName: String
    public var kind: Kind
    public var architecture: Architecture
    public var geneNames: [String]
    public var layer: String?
    public var batchKey: String?
    public var labelsKey: String?
    public var batchCategories: [String]
    public var labelCategories: [String]
    public var state: StateDict
    /// The scvi-tools version that wrote it, when recorded.
    public var version: String?
  }

  /// Reads `dir` as written by scvi-tools' `SCVI.save` / `LinearSCVI.save`.
  public static func readScviToolsFolder(_ dir: URL) throws -> ScviToolsFolder {
    let modelFile = dir.appendingPathComponent("model.pt")
    if FileManager.default.fileExists(atPath: modelFile.path) {
      let root = try TorchFile.load(modelFile)
      guard let attributes = root["attr_dict"], let names = root["var_names"]?.stringArray else {
        throw SCVIModelError.file("\(modelFile.path) has no attr_dict or var_names: not a scvi-tools model file")
      }
      let state = try tensors(root["model_state_dict"], file: modelFile)
      return try folder(attributes: attributes, geneNames: names, state: state, file: modelFile)
    }
    let legacyParams = dir.appendingPathComponent("model_params.pt")
    guard FileManager.default.fileExists(atPath: legacyParams.path) else {
      throw SCVIModelError.file("\(dir.path) has neither model.pt (scvi-tools ≥ 0.15) nor model_params.pt (older): not a scvi-tools model folder")
    }
    let names = try legacyVarNames(dir.appendingPathComponent("var_names.csv"))
    let attrURL = dir.appendingPathComponent("attr.pkl")
    let attributes = try PickleFile.load(attrURL)
    let state = try TorchFile.loadStateDict(legacyParams)
    return try folder(attributes: attributes, geneNames: names, state: state, file: attrURL)
  }

  /// A model from a scvi-tools folder on `adata` (the model's genes, in its order, and
  /// its batches and labels).
  public static func importScviTools(_ dir: URL, adata: AnnData) throws -> SCVIModel {
    let folder = try readScviToolsFolder(dir)
    var setup = try SCVISetup(adata, layer: folder.layer, batchKey: folder.batchKey, labelsKey: folder.labelsKey)
    setup.batchCategories = folder.batchCategories
    setup.labelCategories = folder.labelCategories
    setup.geneNames = folder.geneNames
    let model = try SCVIModel(adata, setup: setup, kind: folder.kind, architecture: folder.architecture)
    // The prior buffers of a latent library come from the file, like every other weight.
    do {
      try model.module.loadStateDict(folder.state)
    } catch {
      throw SCVIModelError.file("\(dir.path): the weights do not fit a \(folder.modelName) with these settings: \(error)")
    }
    model.module.eval()
    return model
  }

  // MARK: - Reading the pieces

  static func tensors(_ value: PickleValue?, file: URL) throws -> StateDict {
    guard let dict = value?.dict else { throw SCVIModelError.file("\(file.path): model_state_dict is missing") }
    var state = StateDict()
    for (key, entry) in dict.entries {
      guard let name = key.string else { continue }
      if case .tensor(let tensor) = entry { state[name] = tensor }  // "pyro_param_store" and the like are skipped
    }
    return state
  }

  private static func folder(attributes: PickleValue, geneNames: [String], state: StateDict, file: URL) throws
    -> ScviToolsFolder
  {
    guard attributes.dict != nil else { throw SCVIModelError.file("\(file.path): the attributes are not a dict") }
    func fail(_ what: String) -> SCVIModelError { .file("\(file.path): \(what)") }
    // Constructor arguments: {"non_kwargs": {...}, "kwargs": {"model_kwargs": {...}}} (≥ 0.15) or flat (older).
    var arguments: [String: PickleValue] = [:]
    func absorb(_ dict: PickleDict, expandingDicts: Bool) {
      for (key, value) in dict.entries {
        guard let name = key.string else { continue }
        if expandingDicts, let inner = value.dict { absorb(inner, expandingDicts: false) } else { arguments[name] = value }
      }
    }
    if let initParams = attributes["init_params_"]?.dict {
      if let nonKwargs = initParams.value(forKey: "non_kwargs")?.dict {
        absorb(nonKwargs, expandingDicts: false)
        if let kwargs = initParams.value(forKey: "kwargs")?.dict { absorb(kwargs, expandingDicts: true) }
      } else {
        absorb(initParams, expandingDicts: true)
      }
    }
    let registry = attributes["registry_"]
    let modelName = registry?["model_name"]?.string ?? (state["decoder.factor_regressor.fc_layers.Layer 0.0.weight"] != nil ? "LinearSCVI" : "SCVI")
    let kind: Kind
    switch modelName {
    case "SCVI": kind = .scvi
    case "LinearSCVI": kind = .ldvae
    default: throw fail("holds a \(modelName) model; only SCVI and LinearSCVI import as scvi/ldvae")
    }
    func size(_ name: String, _ fallback: Int) throws -> Int {
      guard let value = arguments[name] else { return fallback }
      guard let number = value.number.flatMap({ Int(exactly: $0) }), number > 0 else {
        throw fail("\(name) is not a positive integer (\(value))")
      }
      return number
    }
    func choice<T: RawRepresentable>(_ name: String, _ fallback: T) throws -> T where T.RawValue == String {
      guard let value = arguments[name] else { return fallback }
      guard let text = value.string, let parsed = T(rawValue: text) else { throw fail("unsupported \(name) \(value)") }
      return parsed
    }
    var architecture = Architecture()
    architecture.nHidden = try size("n_hidden", 128)
    architecture.nLatent = try size("n_latent", 10)
    architecture.nLayers = try size("n_layers", 1)
    architecture.dropoutRate = arguments["dropout_rate"]?.number ?? 0.1
    guard (0..<1).contains(architecture.dropoutRate) else { throw fail("dropout_rate \(architecture.dropoutRate) is not in [0, 1)") }
    architecture.dispersion = try choice("dispersion", Dispersion.gene)
    architecture.geneLikelihood = try choice("gene_likelihood", kind == .scvi ? GeneLikelihood.zinb : .nb)
    architecture.latentDistribution = try choice("latent_distribution", LatentDistribution.normal)
    if let observed = arguments["use_observed_lib_size"]?.number { architecture.useObservedLibSize = observed != 0 }
    let unsupported = arguments.keys.filter { !Self.importedArguments.contains($0) }.sorted()
    if !unsupported.isEmpty {
      // Settings beyond these change the network; the weight load then says what does not fit.
      FileHandle.standardError.write(Data("warning: \(file.path): settings not read: \(unsupported.joined(separator: ", "))\n".utf8))
    }

    // Setup: registry_ (≥ 0.15) or scvi_setup_dict_ (older).
    let setupArgs = registry?["setup_args"]
    var batchCategories = ["0"], labelCategories = ["0"]
    var batchKey = setupArgs?["batch_key"]?.string, labelsKey = setupArgs?["labels_key"]?.string
    var layer = setupArgs?["layer"]?.string
    if let fields = registry?["field_registries"] {
      if let mapping = fields["batch"]?["state_registry"]?["categorical_mapping"]?.stringArray { batchCategories = mapping }
      if let mapping = fields["labels"]?["state_registry"]?["categorical_mapping"]?.stringArray { labelCategories = mapping }
    } else if let legacy = attributes["scvi_setup_dict_"] {
      let categorical = legacy["categorical_mappings"]
      if let batch = categorical?["_scvi_batch"] {
        batchKey = batch["original_key"]?.string
        if let mapping = batch["mapping"]?.stringArray { batchCategories = mapping }
      }
      if let labels = categorical?["_scvi_labels"] {
        labelsKey = labels["original_key"]?.string
        if let mapping = labels["mapping"]?.stringArray { labelCategories = mapping }
      }
      if let location = legacy["data_registry"]?["X"], location["attr_name"]?.string == "layers" {
        layer = location["attr_key"]?.string
      }
    } else {
      throw fail("no registry_ or scvi_setup_dict_: cannot tell the batches and labels")
    }
    // A batch or label key that scvi-tools filled by default ("_scvi_batch" of zeros) means none.
    if batchKey?.hasPrefix("_scvi") == true { batchKey = nil }
    if labelsKey?.hasPrefix("_scvi") == true { labelsKey = nil }
    let config = architecture.config(kind: kind, nInput: geneNames.count, nBatch: batchCategories.count,
                                     nLabels: labelCategories.count)
    try SCVIModel.checkSizes(config, against: state, file: file.path)
    return ScviToolsFolder(
      modelName: modelName, kind: kind, architecture: architecture, geneNames: geneNames, layer: layer,
      batchKey: batchKey, labelsKey: labelsKey, batchCategories: batchCategories, labelCategories: labelCategories,
      state: state, version: registry?["scvi_version"]?.string)
  }

  static let importedArguments: Set<String> = [
    "n_hidden", "n_latent", "n_layers", "dropout_rate", "dispersion", "gene_likelihood", "latent_distribution",
    "use_observed_lib_size", "use_cuda", "adata", "registry",
  ]

  /// `var_names.csv` of the pre-0.15 layout: one name per line (numpy's savetxt).
  private static func legacyVarNames(_ url: URL) throws -> [String] {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
      throw SCVIModelError.file("\(url.path) is missing or not text (the pre-0.15 layout keeps the genes there)")
    }
    return text.split(whereSeparator: \.isNewline).map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
  }
}

// MARK: - Writing

extension SCVIModel {
  /// The scvi-tools version whose folder layout `exportScviTools` writes.
  public static let scviToolsLayoutVersion = "1.4.2"

  /// Writes `dir/model.pt` as scvi-tools 1.x's `model.save(dir)` does, so that
  /// `scvi.model.SCVI.load(dir, adata)` (or LinearSCVI) opens it on the same genes: the state
  /// dict, the gene names and an attr_dict with the constructor arguments and the setup
  /// registry (batch and label categories). Written atomically; `dir` is created.
  public func exportScviTools(to dir: URL) throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let state = module.stateDict().map { (PickleValue.string($0.key), PickleValue.tensor($0.value.detach().to(.cpu))) }
    let root = PickleValue.dict(PickleDict([
      (.string("model_state_dict"), TorchFile.orderedDict(state)),
      (.string("var_names"), .numpyObjectArray(setup.geneNames)),
      (.string("attr_dict"), attributes()),
    ]))
    try TorchFile.save(root, to: dir.appendingPathComponent("model.pt"))
  }

  private func attributes() -> PickleValue {
    func dict(_ entries: [(String, PickleValue)]) -> PickleValue {
      .dict(PickleDict(entries.map { (key: PickleValue.string($0.0), value: $0.1) }))
    }
    func optional(_ text: String?) -> PickleValue { text.map { .string($0) } ?? .none }
    let c = config
    let arguments = dict([
      ("n_hidden", .int(c.nHidden)), ("n_latent", .int(c.nLatent)), ("n_layers", .int(c.nLayers)),
      ("dropout_rate", .float(c.dropoutRate)), ("dispersion", .string(c.dispersion.rawValue)),
      ("gene_likelihood", .string(c.geneLikelihood.rawValue)), ("use_observed_lib_size", .bool(c.useObservedLibSize)),
      ("latent_distribution", .string(c.latentDistribution.rawValue)),
    ])
    // A setup without a key is scvi-tools' default column of zeros, with mapping [0].
    func categorical(_ key: String?, _ categories: [String], column: String, count: String) -> PickleValue {
      dict([
        ("data_registry", dict([("attr_name", .string("obs")), ("attr_key", .string(column))])),
        ("state_registry", dict([
          ("categorical_mapping", key == nil ? .numpyInt64Array([0]) : .numpyObjectArray(categories)),
          ("original_key", .string(key ?? column)),
        ])),
        ("summary_stats", dict([(count, .int(key == nil ? 1 : categories.count))])),
      ])
    }
    let empty = dict([("data_registry", dict([])), ("state_registry", dict([])), ("summary_stats", dict([]))])
    let registry = dict([
      ("scvi_version", .string(Self.scviToolsLayoutVersion)),
      ("model_name", .string(kind == .scvi ? "SCVI" : "LinearSCVI")),
      ("setup_method_name", .string("setup_anndata")),
      ("setup_args", dict([
        ("layer", optional(setup.layer)), ("batch_key", optional(setup.batchKey)), ("labels_key", optional(setup.labelsKey)),
        ("size_factor_key", .none), ("categorical_covariate_keys", .none), ("continuous_covariate_keys", .none),
      ])),
      ("field_registries", dict([
        ("X", dict([
          ("data_registry", dict([("attr_name", .string(setup.layer == nil ? "X" : "layers")), ("attr_key", optional(setup.layer))])),
          ("state_registry", dict([("n_obs", .int(cells.count)), ("n_vars", .int(setup.geneNames.count)),
                                   ("column_names", .numpyObjectArray(setup.geneNames))])),
          ("summary_stats", dict([("n_vars", .int(setup.geneNames.count)), ("n_cells", .int(cells.count))])),
        ])),
        ("batch", categorical(setup.batchKey, setup.batchCategories, column: "_scvi_batch", count: "n_batch")),
        ("labels", categorical(setup.labelsKey, setup.labelCategories, column: "_scvi_labels", count: "n_labels")),
        ("size_factor", empty), ("extra_categorical_covs", empty), ("extra_continuous_covs", empty),
      ])),
    ])
    return dict([
      ("registry_", registry),
      ("init_params_", dict([("non_kwargs", arguments), ("kwargs", dict([(kind == .scvi ? "kwargs" : "model_kwargs", dict([]))]))])),
      // scvi-tools refuses to query a model not marked trained; exported weights are meant for use.
      ("is_trained_", .bool(true)),
    ])
  }
}
