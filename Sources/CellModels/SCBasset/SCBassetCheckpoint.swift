import Foundation
import Torch

/// Reading scBasset weights: multimolecule's keys (`model.encoder.layers.0.conv.weight`, …,
/// `sequence_head.decoder.weight`) load as they are; scvi-tools' `ScBassetModule` keys
/// (`stem.*`, `tower.N.*`, `pre_bottleneck.*`, `bottleneck.*`, `cell_embedding` [bottleneck, cells],
/// `cell_bias`, `batch_emdedding.weight`, `batch_ids`) are renamed and the embedding transposed.
public enum SCBassetCheckpoint {
  public enum Layout: String, Sendable { case multimolecule, scviTools = "scvi-tools" }

  public static func layout(of state: StateDict) -> Layout {
    state["stem.conv.weight"] != nil || state["cell_embedding"] != nil ? .scviTools : .multimolecule
  }

  /// N and the rest of a scvi-tools key "tower.N.rest"; nil for another or a malformed key.
  static func towerKey(_ key: String) -> (index: Int, rest: Substring)? {
    let parts = key.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0] == "tower", let index = Int(parts[1]), (0..<maxModelDimension).contains(index) else { return nil }
    return (index, parts[2])
  }

  /// The state dict with multimolecule's (this package's) keys.
  public static func normalized(_ state: StateDict) throws -> StateDict {
    guard layout(of: state) == .scviTools else { return state }
    let towerCount = Set(state.keys.compactMap { towerKey($0)?.index }).count
    var out = StateDict()
    for (key, value) in state {
      var name = key
      if key.hasPrefix("stem.") {
        name = "model.encoder.layers.0." + key.dropFirst(5)
      } else if key.hasPrefix("tower.") {
        guard let (index, rest) = towerKey(key) else { throw SCBassetError.checkpoint("unexpected key '\(key)' (tower.N.…)") }
        name = "model.encoder.layers.\(index + 1).\(rest)"
      } else if key.hasPrefix("pre_bottleneck.") {
        name = "model.encoder.layers.\(towerCount + 1)." + key.dropFirst("pre_bottleneck.".count)
      } else if key.hasPrefix("bottleneck.") {
        name = "model.encoder." + key
      } else if key == "cell_embedding" {
        guard value.rank == 2 else { throw SCBassetError.checkpoint("cell_embedding must be 2-D, got \(value.shape)") }
        out["sequence_head.decoder.weight"] = value.transpose(0, 1).contiguous()
        continue
      } else if key == "cell_bias" {
        name = "sequence_head.decoder.bias"
      } else if key == "batch_emdedding.weight" {
        name = "batch_embedding.weight"
      } else if key == "batch_ids" {
        out[key] = value.flatten().to(.int64)
        continue
      }
      out[name] = value
    }
    return out
  }

  /// The network configuration implied by the shapes of a (normalized) state dict. The sequence
  /// length cannot be read from shapes: `sequenceLength` (default 1344) must give the bottleneck's
  /// input width, else the error says so.
  public static func inferConfig(_ raw: StateDict, sequenceLength: Int = 1344) throws -> SCBassetConfig {
    let scvi = layout(of: raw) == .scviTools
    let state = try normalized(raw)
    func shape(_ key: String, rank: Int) throws -> [Int] {
      guard let t = state[key] else { throw SCBassetError.checkpoint("missing key '\(key)'") }
      guard t.rank == rank, t.shape.allSatisfy({ $0 <= maxModelDimension }) else {
        throw SCBassetError.checkpoint("'\(key)' has shape \(t.shape), expected \(rank) dimensions of plausible size")
      }
      return t.shape
    }
    guard (1...maxModelDimension).contains(sequenceLength) else {
      throw SCBassetError.checkpoint("sequence length \(sequenceLength) is out of range")
    }
    var layerCount = 0
    while state["model.encoder.layers.\(layerCount).conv.weight"] != nil { layerCount += 1 }
    guard layerCount >= 2 else { throw SCBassetError.checkpoint("expected a stem, a tower and a pointwise convolution, found \(layerCount) conv layers") }
    let stem = try shape("model.encoder.layers.0.conv.weight", rank: 3)
    let decoder = try shape("sequence_head.decoder.weight", rank: 2)
    var c = SCBassetConfig(numLabels: decoder[0])
    c.vocabSize = stem[1]
    c.stemChannels = stem[0]
    c.stemKernelSize = stem[2]
    c.towerChannels = try (1..<(layerCount - 1)).map { try shape("model.encoder.layers.\($0).conv.weight", rank: 3)[0] }
    if layerCount > 2 { c.towerKernelSize = try shape("model.encoder.layers.1.conv.weight", rank: 3)[2] }
    c.pointwiseChannels = try shape("model.encoder.layers.\(layerCount - 1).conv.weight", rank: 3)[0]
    c.bottleneckSize = decoder[1]
    c.sequenceLength = sequenceLength
    if scvi {
      c.pooling = .scviTools
      c.flatten = .channelMajor
    }
    if state["batch_embedding.weight"] != nil { c.nBatch = try shape("batch_embedding.weight", rank: 2)[0] }
    let dense = try shape("model.encoder.bottleneck.dense.weight", rank: 2)
    // Every size is at most 2^32 here, so the pooled length cannot overflow; its product might.
    let (inputs, overflow) = c.convOutputLength.multipliedReportingOverflow(by: c.pointwiseChannels)
    guard !overflow, dense[1] == inputs else {
      throw SCBassetError.checkpoint(
        "the bottleneck takes \(dense[1]) inputs (\(dense[1] / max(c.pointwiseChannels, 1)) positions × \(c.pointwiseChannels)), but \(sequenceLength) bp give \(overflow ? "too many" : String(inputs)); give the model's sequence length")
    }
    return c
  }

  /// A network with the weights of `state` (either layout); `config` defaults to `inferConfig`.
  public static func network(from raw: StateDict, config: SCBassetConfig? = nil, sequenceLength: Int = 1344) throws
    -> SCBassetNetwork
  {
    let state = try normalized(raw)
    let config = try config ?? inferConfig(raw, sequenceLength: sequenceLength)
    try config.check(against: raw)
    let batchIDs = state["batch_ids"].map { $0.toArray(Int64.self).map(Int.init) }
    let network = try SCBassetNetwork(config, batchIDs: config.nBatch > 0 ? (batchIDs ?? []) : nil)
    if let decoder = state["sequence_head.decoder.weight"], decoder.shape.first != config.numLabels {
      throw SCBassetError.checkpoint("the checkpoint has \(decoder.shape.first ?? 0) cells, the model \(config.numLabels)")
    }
    // Checkpoints without counters (converted ones) keep ours.
    let own = network.stateDict()
    var complete = state
    for (key, value) in own where key.hasSuffix("num_batches_tracked") && complete[key] == nil { complete[key] = value }
    do {
      try network.loadStateDict(complete)
    } catch let error as TorchError {
      throw SCBassetError.checkpoint("\(error)")
    }
    return network
  }

  /// Reads a .safetensors file. Its config comes from the file's `scbasset_config` metadata (our
  /// own saves), else from a `config.json` beside it (a multimolecule model folder), else from shapes.
  public static func load(_ url: URL, sequenceLength: Int? = nil) throws -> SCBassetNetwork {
    let (state, metadata) = try Safetensors.read(url)
    var config: SCBassetConfig?
    if let json = metadata["scbasset_config"] {
      config = try JSONDecoder().decode(SCBassetConfig.self, from: Data(json.utf8))
    } else {
      let sidecar = url.deletingLastPathComponent().appendingPathComponent("config.json")
      if let data = try? Data(contentsOf: sidecar) {
        config = try? JSONDecoder().decode(SCBassetConfig.self, from: data)
        // Hugging Face configs keep the cell count in id2label; the weights say it too.
        if let cells = try normalized(state)["sequence_head.decoder.weight"]?.size(0) { config?.numLabels = cells }
        if let c = config, layout(of: state) == .scviTools { config = try inferConfig(state, sequenceLength: c.sequenceLength) }
      }
    }
    if let sequenceLength, config?.sequenceLength != sequenceLength {
      config = try inferConfig(state, sequenceLength: sequenceLength)
    }
    return try network(from: state, config: config, sequenceLength: sequenceLength ?? 1344)
  }
}
