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

  /// The config, setup and weights of a saved model folder, without data.
  static func readFolder(_ dir: URL) throws -> (description: ScAtlasVAEModelFile, module: ScAtlasVAENetwork) {
    let jsonURL = dir.appendingPathComponent(descriptionFile)
    let weightsURL = dir.appendingPathComponent(weightsFile)
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
    let module = try ScAtlasVAENetwork(config: description.config)
    do {
      try module.loadStateDict(try Safetensors.read(weightsURL).tensors)
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
    let model = ScAtlasVAE(setup: description.setup, module: module, cells: cells)
    model.history = description.history
    model.trainSeconds = description.trainSeconds
    return model
  }
}
