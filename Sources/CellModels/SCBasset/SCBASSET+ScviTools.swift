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
    let network: SCBassetNetwork
    do {
      let config = try SCBassetCheckpoint.inferConfig(state, sequenceLength: try sequenceLength(state))
      network = try SCBassetCheckpoint.network(from: state, config: config)
    } catch {
      throw SCBassetError.checkpoint(file.path, error)
    }
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
      let dense = state["model.encoder.bottleneck.dense.weight"], last.rank == 3, dense.rank == 2, last.size(0) > 0
    else { throw SCBassetError.checkpoint("the weights lack the convolutions or the bottleneck of scBasset") }
    let positions = dense.size(1) / last.size(0)
    let pooling = layers - 2 < 32 ? 3 << (layers - 2) : 0
    let (length, overflow) = positions.multipliedReportingOverflow(by: pooling)
    guard pooling > 0, !overflow, length <= maxModelDimension else {
      throw SCBassetError.checkpoint("\(layers) convolutions and a \(dense.size(1))-wide bottleneck give no valid sequence length")
    }
    return length
  }
}

extension SCBASSET {
  /// Writes `dir/model.pt` as scvi-tools 1.x's `SCBASSET.save(dir)` does, so that
  /// `scvi.external.SCBASSET.load(dir, adata)` opens it on a regions × cells AnnData with these
  /// cells (var) and the DNA codes in obsm. Only networks of scvi-tools' shape export: its
  /// pooling and flattening, kernels 17 and 5, tower widths from one growth factor.
  public func exportScviTools(to dir: URL) throws {
    let c = config
    guard c.pooling == .scviTools, c.flatten == .channelMajor, c.stemKernelSize == 17,
      c.towerChannels.count < 2 || c.towerKernelSize == 5
    else {
      throw SCBassetError.checkpoint("this network's layout (pooling, flattening or kernels) has no scvi-tools SCBASSET counterpart")
    }
    let mult = try Self.growthFactor(c.stemChannels, c.towerChannels)
    let towers = c.towerChannels.count
    var state: [(PickleValue, PickleValue)] = []
    for (key, value) in network.stateDict() {
      var name = key
      if key.hasPrefix("model.encoder.layers.") {
        let parts = key.split(separator: ".", maxSplits: 4)
        let layer = Int(parts[3])!, rest = String(parts[4])
        name = layer == 0 ? "stem.\(rest)" : layer <= towers ? "tower.\(layer - 1).\(rest)" : "pre_bottleneck.\(rest)"
      } else if key.hasPrefix("model.encoder.bottleneck.") {
        name = String(key.dropFirst("model.encoder.".count))
      } else if key == "sequence_head.decoder.weight" {
        state.append((.string("cell_embedding"), .tensor(value.detach().transpose(0, 1).contiguous())))
        continue
      } else if key == "sequence_head.decoder.bias" {
        name = "cell_bias"
      } else if key == "batch_embedding.weight" {
        name = "batch_emdedding.weight"  // sic, scvi-tools' spelling
      } else if key == "batch_ids" {
        state.append((.string(key), .tensor(value.detach().to(.int64).reshape([-1, 1]))))
        continue
      }
      state.append((.string(name), .tensor(value.detach())))
    }
    func dict(_ entries: [(String, PickleValue)]) -> PickleValue {
      .dict(PickleDict(entries.map { (key: PickleValue.string($0.0), value: $0.1) }))
    }
    func optional(_ text: String?) -> PickleValue { text.map { .string($0) } ?? .none }
    let positions = (0..<c.sequenceLength).map { $0 }
    let registry = dict([
      ("scvi_version", .string(SCVIModel.scviToolsLayoutVersion)), ("model_name", .string("SCBASSET")),
      ("setup_method_name", .string("setup_anndata")),
      ("setup_args", dict([("dna_code_key", .string(setup.dnaCodeKey)), ("layer", optional(setup.layer)),
                           ("batch_key", optional(setup.batchKey))])),
      ("field_registries", dict([
        ("X", dict([("state_registry", dict([("n_obs", .int(regionNames.count)), ("n_vars", .int(cellNames.count)),
                                             ("column_names", .numpyObjectArray(cellNames))]))])),
        ("dna_code", dict([("state_registry", dict([("column_names", .numpyInt64Array(positions))]))])),
        ("batch", dict([("state_registry", dict([
          ("categorical_mapping", setup.batchKey == nil ? .numpyInt64Array([0]) : .numpyObjectArray(batchCategories)),
          ("original_key", .string(setup.batchKey ?? "_scvi_batch")),
        ]))])),
      ])),
    ])
    let attributes = dict([
      ("registry_", registry),
      ("init_params_", dict([
        ("non_kwargs", dict([("n_bottleneck_layer", .int(c.bottleneckSize)), ("l2_reg_cell_embedding", .float(0))])),
        ("kwargs", dict([("model_kwargs", dict([
          ("n_filters_init", .int(c.stemChannels)), ("n_repeat_blocks_tower", .int(towers)),
          ("filters_mult", .float(mult)), ("n_filters_pre_bottleneck", .int(c.pointwiseChannels)),
        ]))])),
      ])),
      ("is_trained_", .bool(true)),
    ])
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try TorchFile.save(.dict(PickleDict([
      (.string("model_state_dict"), TorchFile.orderedDict(state)), (.string("var_names"), .numpyObjectArray(cellNames)),
      (.string("attr_dict"), attributes),
    ])), to: dir.appendingPathComponent("model.pt"))
  }

  /// The `filters_mult` that makes scvi-tools' tower widths (round(width · mult) from the
  /// second block on) these; 1.122 (its default) when one block or none.
  static func growthFactor(_ initial: Int, _ towers: [Int]) throws -> Double {
    guard towers.count >= 2 else { return 1.122 }
    guard towers[0] == initial else {
      throw SCBassetError.checkpoint("scvi-tools' first tower block keeps the stem's \(initial) channels, this one has \(towers[0])")
    }
    func widths(_ mult: Double) -> [Int] {
      var current = Double(initial), out = [initial]
      for _ in 1..<towers.count {
        current = (current * mult).rounded(.toNearestOrEven)
        out.append(Int(current))
      }
      return out
    }
    for candidate in [1.122] + stride(from: 1.0, through: 3.0, by: 0.0005).map({ $0 }) where widths(candidate) == towers {
      return candidate
    }
    throw SCBassetError.checkpoint("the tower widths \(towers) do not grow by one factor as scvi-tools' do")
  }
}
