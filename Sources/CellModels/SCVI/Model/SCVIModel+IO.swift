import CellData
import Foundation
import Torch

/// The JSON half of a saved model (the weights are in model.safetensors, keyed as scvi-tools).
struct SCVIModelFile: Codable {
  static let currentFormat = "swift-singlecell/scvi-model/1"
  var format = currentFormat
  var kind: SCVIModel.Kind
  var config: VAEConfig
  var setup: SCVISetup
  var history: TrainingHistory
  var trainSeconds: Double
  var stopReason: String?
}

extension SCVIModel {
  public static let weightsFile = "model.safetensors"
  public static let descriptionFile = "model.json"

  /// Writes `dir/model.safetensors` (the state dict, with scvi-tools' keys) and
  /// `dir/model.json` (kind, network config, setup with gene names and categories, history).
  /// Each file is written atomically; `dir` is created if needed.
  public func save(to dir: URL) throws {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let state = StateDict(module.stateDict().map { ($0.key, $0.value.detach().to(.cpu).contiguous()) })
    try Safetensors.write(state, metadata: ["format": SCVIModelFile.currentFormat, "kind": kind.rawValue],
                          to: dir.appendingPathComponent(Self.weightsFile))
    let description = SCVIModelFile(kind: kind, config: config, setup: setup, history: history,
                                    trainSeconds: trainSeconds, stopReason: stopReason)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try writeAtomically(try encoder.encode(description), to: dir.appendingPathComponent(Self.descriptionFile))
  }

  /// Loads a model saved by `save(to:)` onto `adata`, which must have the model's genes in
  /// the same order and only known batches and labels.
  public static func load(from dir: URL, adata: AnnData) throws -> SCVIModel {
    let weightsURL = dir.appendingPathComponent(weightsFile)
    let description = try readDescriptionFile(dir)
    // A model trained streaming keeps obs and var but no counts: it loads without setup cells.
    let countsMissing = description.setup.layer.map { adata.layers[$0] == nil } ?? (adata.X == nil)
    let cells = countsMissing && adata.uns["streamed_from"] != nil
      ? RegisteredCells.empty(genes: description.setup.geneNames.count)
      : try RegisteredCells(adata, setup: description.setup, config: description.config)
    // The weights are read before the network is built, so that sizes in model.json are checked
    // against what the file holds before anything of that size is allocated.
    let weights: StateDict
    do {
      weights = try Safetensors.read(weightsURL).tensors
    } catch {
      throw SCVIModelError.file("\(weightsURL.path): \(error)")
    }
    try checkSizes(description.config, against: weights, file: dir.appendingPathComponent(descriptionFile).path)
    let prior = Array(repeating: Float(0), count: Swift.max(description.config.nBatch, 1))
    let module = try VAE(config: description.config, libraryLogMeans: prior, libraryLogVars: prior)
    do {
      try module.loadStateDict(weights)
    } catch {
      throw SCVIModelError.file("\(weightsURL.path): \(error)")
    }
    module.eval()
    let model = SCVIModel(kind: description.kind, setup: description.setup, module: module, cells: cells)
    model.history = description.history
    model.trainSeconds = description.trainSeconds
    model.stopReason = description.stopReason
    if countsMissing, case .dense(let source)? = adata.uns["streamed_from"] {
      let files = (0..<source.data.count).map { source.data.text(at: $0) }.joined(separator: ", ")
      model.setupCellsUnavailable = "the model was trained streaming from \(files) and its folder keeps no counts; pass those cells (DATA) explicitly"
    }
    return model
  }

  /// The kind, network configuration and setup of a model folder written by `save(to:)`,
  /// without its weights.
  public static func readDescription(from dir: URL) throws -> (kind: Kind, config: VAEConfig, setup: SCVISetup) {
    let d = try readDescriptionFile(dir)
    return (d.kind, d.config, d.setup)
  }

  static func readDescriptionFile(_ dir: URL) throws -> SCVIModelFile {
    let jsonURL = dir.appendingPathComponent(descriptionFile)
    guard FileManager.default.fileExists(atPath: jsonURL.path) else {
      throw SCVIModelError.file("\(jsonURL.path) does not exist (is \(dir.path) a model folder written by scvi/ldvae train?)")
    }
    let description: SCVIModelFile
    do {
      description = try JSONDecoder().decode(SCVIModelFile.self, from: Data(contentsOf: jsonURL))
    } catch {
      throw SCVIModelError.file("\(jsonURL.path) is not a valid model description: \(error)")
    }
    guard description.format == SCVIModelFile.currentFormat else {
      throw SCVIModelError.file("\(jsonURL.path) has format '\(description.format)', expected '\(SCVIModelFile.currentFormat)'")
    }
    let c = description.config, setup = description.setup
    func bad(_ what: String) -> SCVIModelError { .file("\(jsonURL.path): \(what)") }
    guard c.nInput == setup.geneNames.count else {
      throw bad("config.nInput \(c.nInput) does not match the \(setup.geneNames.count) gene names of setup")
    }
    guard c.nBatch >= 0, c.nBatch <= Swift.max(setup.batchCategories.count, 1),
      c.nLabels >= 0, c.nLabels <= Swift.max(setup.labelCategories.count, 1)
    else { throw bad("config.nBatch \(c.nBatch) / nLabels \(c.nLabels) do not match the setup's categories") }
    guard c.nHidden > 0, c.nLatent > 0, c.nLayers > 0, c.nLayers <= 1_000 else {
      throw bad("config needs nHidden, nLatent and nLayers (at most 1000) above 0 (has \(c.nHidden), \(c.nLatent), \(c.nLayers))")
    }
    guard c.dropoutRate.isFinite, c.dropoutRate >= 0, c.dropoutRate < 1 else {
      throw bad("config.dropoutRate \(c.dropoutRate) is not in [0, 1)")
    }
    return description
  }

  /// The weights the config implies must fit in what the weights file holds (with slack): a
  /// size field never allocates much more than the file (`impliedWeightsFit`; the blocks are
  /// parts every scVI and LDVAE network has).
  static func checkSizes(_ c: VAEConfig, against weights: StateDict, file: String) throws {
    let fits = c.nLayers <= 1_000 && impliedWeightsFit(sizes: [c.nInput, c.nHidden, c.nLatent, c.nLayers, c.nBatch, c.nLabels], blocks: {
      [
        [c.nInput, c.nHidden],  // the encoder's first layer
        [c.nLayers - 1, c.nHidden, c.nHidden],  // its further layers
        [c.nHidden, c.nLatent, 2],  // mean and variance heads
        [c.nBatch, Swift.min(c.nHidden, c.nInput)],  // the decoder's batch inputs
        [c.nInput, c.dispersion == .geneBatch ? c.nBatch : c.dispersion == .geneLabel ? c.nLabels : 1],  // dispersion
      ]
    }, weights: weights)
    guard fits else {
      throw SCVIModelError.file("\(file): the config's sizes (nInput \(c.nInput), nHidden \(c.nHidden), nLatent \(c.nLatent), nLayers \(c.nLayers), nBatch \(c.nBatch), nLabels \(c.nLabels)) imply more weights than the weights file holds (\(weights.valueCount) values)")
    }
  }
}
