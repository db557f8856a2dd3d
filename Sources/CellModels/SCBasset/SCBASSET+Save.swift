import CellData
import Foundation
import Torch

/// What `SCBASSET.save` writes beside the weights.
struct SCBassetSavedState: Codable {
  var config: SCBassetConfig
  var setup: SCBassetSetup
  var cellNames: [String]
  var regionNames: [String]
  var batchCategories: [String]
  var history: TrainingHistory
  var trainRegions: [Int]?
  var validationRegions: [Int]?
}

extension SCBASSET {
  public static let weightsFileName = "model.safetensors"
  public static let stateFileName = "scbasset.json"

  /// Writes `model.safetensors` (multimolecule's keys; the config also in its metadata, so the
  /// file alone can be loaded for prediction) and `scbasset.json` (config, setup, cell and
  /// region names, history, split), each atomically.
  public func save(to directory: URL) throws {
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw SCBassetError.invalidInput("cannot create \(directory.path): \(error.localizedDescription)")
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let configJSON = String(decoding: try encoder.encode(config), as: UTF8.self)
    try Safetensors.write(network.stateDict(), metadata: ["scbasset_config": configJSON, "format": "pt"],
                          to: directory.appendingPathComponent(Self.weightsFileName))
    let state = SCBassetSavedState(
      config: config, setup: setup, cellNames: cellNames, regionNames: regionNames, batchCategories: batchCategories,
      history: history, trainRegions: split?.train, validationRegions: split?.validation)
    try writeAtomically(try encoder.encode(state), to: directory.appendingPathComponent(Self.stateFileName))
  }

  /// Loads a saved model. With `adata` (regions × cells) its cells and regions must be the
  /// saved ones (same names, same order), and the model can predict, evaluate and train on.
  public static func load(from directory: URL, adata: AnnData? = nil,
                          warn: WarningHandler = printWarningToStandardError) throws -> SCBASSET {
    let stateURL = directory.appendingPathComponent(stateFileName)
    let state: SCBassetSavedState
    do {
      state = try JSONDecoder().decode(SCBassetSavedState.self, from: Data(contentsOf: stateURL))
    } catch {
      throw SCBassetError.checkpoint("cannot read \(stateURL.path): \(error)")
    }
    let weightsURL = directory.appendingPathComponent(weightsFileName)
    let network: SCBassetNetwork
    do {
      network = try SCBassetCheckpoint.network(from: try Safetensors.read(weightsURL).tensors, config: state.config)
    } catch {
      throw SCBassetError.checkpoint("\(weightsURL.path) with \(stateURL.lastPathComponent)", error)
    }
    let model = SCBASSET(network: network, setup: state.setup, cellNames: state.cellNames,
                         regionNames: state.regionNames, batchCategories: state.batchCategories)
    model.history = state.history
    if let train = state.trainRegions, let validation = state.validationRegions {
      model.split = DataSplit(train: train, validation: validation)
    }
    if let adata {
      guard adata.nVars == state.cellNames.count else {
        throw SCBassetError.checkpoint("the model has \(state.cellNames.count) cells, the AnnData \(adata.nVars) (it must be regions × cells)")
      }
      guard adata.varNames == state.cellNames else {
        throw SCBassetError.checkpoint("the AnnData's cells differ from the model's (first: \(adata.varNames.first ?? "") vs \(state.cellNames.first ?? ""))")
      }
      let data = try SCBassetData(adata, setup: state.setup, warn: warn)
      guard data.sequenceLength == state.config.sequenceLength else {
        throw SCBassetError.checkpoint("the model takes \(state.config.sequenceLength) bp, the data holds \(data.sequenceLength)")
      }
      if adata.obsNames != state.regionNames { model.split = nil }
      model.data = data
    }
    network.eval()
    return model
  }
}
