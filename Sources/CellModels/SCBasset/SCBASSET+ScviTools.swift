import Foundation
import Torch

/// scvi-tools' `SCBASSET.save(dir)` folders read into an `SCBASSET` (for prediction,
/// embeddings and further use): weights renamed from scvi-tools' keys, the sequence length
/// from the bottleneck's width, cells from var_names, batches from the registry.
extension SCBASSET {
  public static func importScviTools(_ dir: URL) throws -> SCBASSET {
    let file = dir.appendingPathComponent("model.pt")
    guard FileManager.default.fileExists(atPath: file.path) else {
      throw SCBassetError.checkpoint("\(dir.path) has no model.pt: not a scvi-tools model folder")
    }
    let root = try TorchFile.load(file)
    guard let attributes = root["attr_dict"], let cells = root["var_names"]?.stringArray else {
      throw SCBassetError.checkpoint("\(file.path) has no attr_dict or var_names: not a scvi-tools model file")
    }
    let registry = attributes["registry_"]
    let modelName = registry?["model_name"]?.string ?? "?"
    guard modelName == "SCBASSET" else {
      throw SCBassetError.checkpoint("\(file.path) holds a scvi-tools \(modelName) model, not SCBASSET")
    }
    let state = try SCVIModel.tensors(root["model_state_dict"], file: file)
    let config = try SCBassetCheckpoint.inferConfig(state, sequenceLength: try sequenceLength(state))
    let network = try SCBassetCheckpoint.network(from: state, config: config)
    network.eval()
    let batchKey = registry?["setup_args"]?["batch_key"]?.string
    let batches = batchKey == nil ? [] : registry?["field_registries"]?["batch"]?["state_registry"]?["categorical_mapping"]?.stringArray ?? []
    let setup = SCBassetSetup(dnaCodeKey: registry?["setup_args"]?["dna_code_key"]?.string ?? "dna_code",
                              layer: registry?["setup_args"]?["layer"]?.string, batchKey: batchKey)
    return SCBASSET(network: network, setup: setup, cellNames: cells, batchCategories: batches)
  }

  /// scvi-tools' scBasset pools by 3 in the stem and by 2 in each tower block, so the
  /// bottleneck sees length / (3 · 2^blocks) positions of the last convolution's channels.
  private static func sequenceLength(_ raw: StateDict) throws -> Int {
    let state = try SCBassetCheckpoint.normalized(raw)
    var layers = 0
    while state["model.encoder.layers.\(layers).conv.weight"] != nil { layers += 1 }
    guard layers >= 2, let last = state["model.encoder.layers.\(layers - 1).conv.weight"],
      let dense = state["model.encoder.bottleneck.dense.weight"], last.size(0) > 0
    else { throw SCBassetError.checkpoint("the weights lack the convolutions or the bottleneck of scBasset") }
    let positions = dense.size(1) / last.size(0)
    return positions * 3 * (1 << (layers - 2))
  }
}
