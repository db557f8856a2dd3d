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
    let jsonURL = dir.appendingPathComponent(descriptionFile)
    let weightsURL = dir.appendingPathComponent(weightsFile)
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
    let cells = try RegisteredCells(adata, setup: description.setup, config: description.config)
    let prior = Array(repeating: Float(0), count: Swift.max(description.config.nBatch, 1))
    let module = try VAE(config: description.config, libraryLogMeans: prior, libraryLogVars: prior)
    do {
      try module.loadStateDict(try Safetensors.read(weightsURL).tensors)
    } catch {
      throw SCVIModelError.file("\(weightsURL.path): \(error)")
    }
    module.eval()
    let model = SCVIModel(kind: description.kind, setup: description.setup, module: module, cells: cells)
    model.history = description.history
    model.trainSeconds = description.trainSeconds
    model.stopReason = description.stopReason
    return model
  }
}
