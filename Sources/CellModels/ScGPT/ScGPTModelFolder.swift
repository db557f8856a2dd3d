import Foundation
import Torch

/// What a checkpoint load did with the weights' keys.
public struct ScGPTLoadReport: Equatable, Sendable {
  /// Model keys filled from the checkpoint.
  public var used: [String] = []
  /// Model keys the checkpoint lacks (they keep their initial values).
  public var missing: [String] = []
  /// Checkpoint keys the model has no place for (ignored).
  public var unexpected: [String] = []
  /// Checkpoint keys skipped because their shape differs from the model's (only with
  /// `skipMismatchedShapes`, as the reference's `load_pretrained`).
  public var mismatched: [String] = []
  /// Flash-attention keys (`self_attn.Wqkv.*`) renamed to `self_attn.in_proj_*`.
  public var renamedWqkv = 0
  /// Specials appended to the vocabulary because vocab.json lacked them.
  public var appendedSpecials: [String] = []

  public var summary: String {
    var s = "\(used.count) weights loaded, \(missing.count) missing, \(unexpected.count) unexpected"
    if !missing.isEmpty { s += "; missing: \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", …" : "")" }
    if !unexpected.isEmpty { s += "; unexpected: \(unexpected.prefix(5).joined(separator: ", "))\(unexpected.count > 5 ? ", …" : "")" }
    return s
  }
}

/// An scGPT model folder: `best_model.pt` (a `torch.save`d state dict), `args.json` (the
/// training arguments: embsize, nheads, d_hid, nlayers, n_layers_cls, dropout, pad_token,
/// pad_value, n_bins, input_emb_style, MVC, …) and `vocab.json`.
///
/// The architecture comes from args.json; what official args.json files do not record (the
/// heads a fine-tuned model has: explicit zero probabilities, batch labels, DSBN, the batch
/// discriminator, the number of classes, the MVC style) is read from the weights, unless
/// args.json names it with the constructor's keyword (`explicit_zero_prob`, `do_dab`, …).
public struct ScGPTModelFolder {
  public static let weightsFile = "best_model.pt"
  public static let argsFile = "args.json"
  public static let vocabFile = "vocab.json"
  public static let safetensorsFile = "model.safetensors"

  public var network: ScGPTNetwork
  public var vocab: GeneVocab
  /// args.json as read (written back, with the architecture's keys updated, by `save`).
  public var args: [String: Any]
  public var report: ScGPTLoadReport

  public init(network: ScGPTNetwork, vocab: GeneVocab, args: [String: Any] = [:]) {
    self.network = network
    self.vocab = vocab
    self.args = args
    report = ScGPTLoadReport()
  }

  /// Loads a folder. `configure` may change the configuration before the model is built (for
  /// example drop heads as the reference's `embed_data` does: their weights then count as
  /// unexpected). Shapes that disagree with args.json/vocab.json are an error naming the first,
  /// unless `skipMismatchedShapes` (for a configuration changed on purpose): then those weights
  /// are left out and listed in the report, as the reference's `load_pretrained` skips them.
  public static func load(_ directory: URL, skipMismatchedShapes: Bool = false,
                          configure: ((inout ScGPTConfig) -> Void)? = nil) throws -> ScGPTModelFolder {
    for file in [weightsFile, argsFile, vocabFile] where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path) {
      throw ScGPTError.checkpoint("\(directory.path) has no \(file) (a model folder holds \(weightsFile), \(argsFile) and \(vocabFile))")
    }
    var vocab = try GeneVocab(contentsOf: directory.appendingPathComponent(vocabFile))
    var report = ScGPTLoadReport()
    report.appendedSpecials = vocab.appendMissingSpecials()
    let args = try readArgs(directory.appendingPathComponent(argsFile))
    let raw: StateDict
    do { raw = try TorchFile.loadStateDict(directory.appendingPathComponent(weightsFile)) } catch {
      throw ScGPTError.checkpoint("cannot read \(weightsFile): \(error)")
    }
    var state = StateDict()
    for (key, value) in raw {
      if key.contains(".Wqkv.") { report.renamedWqkv += 1 }
      state[key.replacingOccurrences(of: ".Wqkv.", with: ".in_proj_")] = value
    }
    var config = try configuration(args: args, vocab: vocab, weights: state)
    configure?(&config)
    try preflight(state, config: config, anchors: !skipMismatchedShapes)
    let network = try ScGPTNetwork(config)
    let own = network.stateDict()
    if skipMismatchedShapes {
      report.mismatched = own.keys.filter { key in state[key].map { $0.shape != own[key]!.shape } ?? false }
      for key in report.mismatched { state[key] = nil }
    }
    try checkShapes(state, against: network, config: config)
    let (missing, unexpected) = try network.loadStateDict(state, strict: false)
    report.missing = missing
    report.unexpected = unexpected
    report.missing = missing.filter { !report.mismatched.contains($0) }
    report.used = own.keys.filter { state[$0] != nil }
    var folder = ScGPTModelFolder(network: network, vocab: vocab, args: args)
    folder.report = report
    if let table = args["token_modalities"] as? [Int], folder.network.config.numModalities != nil {
      guard table.count == vocab.count, table.allSatisfy({ (0..<folder.network.config.numModalities!).contains($0) }) else {
        throw ScGPTError.checkpoint("\(argsFile): token_modalities must give each of the \(vocab.count) tokens a modality")
      }
      folder.network.tokenModalities = Tensor(table.map(Int64.init))
    }
    return folder
  }

  /// Writes `best_model.pt` (readable by `torch.load`), `args.json`, `vocab.json` and, with
  /// `safetensors`, `model.safetensors`; each file atomically.
  public func save(to directory: URL, safetensors: Bool = true) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let state = network.stateDict()
    try TorchFile.save(stateDict: state, to: directory.appendingPathComponent(Self.weightsFile))
    if safetensors { try Safetensors.write(state, to: directory.appendingPathComponent(Self.safetensorsFile)) }
    let argsData = try JSONSerialization.data(withJSONObject: savedArgs(), options: [.prettyPrinted, .sortedKeys])
    try writeAtomically(argsData, to: directory.appendingPathComponent(Self.argsFile))
    try vocab.write(to: directory.appendingPathComponent(Self.vocabFile))
  }

  /// args.json with this model's architecture: the training script's keys and the constructor's.
  public func savedArgs() -> [String: Any] {
    let c = network.config
    var out = args
    let padToken = vocab.tokens.indices.contains(c.padTokenId) ? vocab.tokens[c.padTokenId] : "<pad>"
    let values: [String: Any] = [
      "embsize": c.dModel, "nheads": c.nHead, "d_hid": c.dHid, "nlayers": c.nLayers, "n_layers_cls": c.nLayersCls,
      "dropout": c.dropout, "pad_token": padToken, "pad_value": c.padValue, "input_emb_style": c.inputEmbeddingStyle.rawValue,
      "MVC": c.doMVC, "n_cls": c.nCls, "do_mvc": c.doMVC, "do_dab": c.doDAB, "use_batch_labels": c.useBatchLabels,
      "domain_spec_batchnorm": c.batchNormalization == .domainSpecific ? true : c.batchNormalization == .single ? "batchnorm" : false,
      "cell_emb_style": c.cellEmbeddingStyle.rawValue, "mvc_decoder_style": c.mvcDecoderStyle.rawValue,
      "ecs_threshold": network.ecsThreshold, "explicit_zero_prob": c.explicitZeroProb, "pre_norm": c.preNorm,
    ]
    out.merge(values) { $1 }
    if let n = c.numBatchLabels { out["num_batch_labels"] = n }
    if let n = c.nInputBins { out["n_input_bins"] = n }
    if let a = c.attentionDropout { out["attention_dropout"] = a }
    if c.generative { out["use_generative_training"] = true }
    if let id = c.perturbationPadId {
      out["pert_pad_id"] = id
      out["decoder_adaptive_bias"] = c.decoderAdaptiveBias
      out["decoder_activation"] = c.decoderActivation?.rawValue ?? NSNull()
    }
    if let n = c.numModalities {
      out["use_mod"] = true
      out["ntokens_mod"] = n
      out["mod_pad_id"] = c.modalityPadId
    }
    return out
  }

  // MARK: - Configuration

  public static func readArgs(_ url: URL) throws -> [String: Any] {
    let data: Data
    do { data = try Data(contentsOf: url) } catch { throw ScGPTError.checkpoint("cannot read \(argsFile): \(error.localizedDescription)") }
    guard let object = try? JSONSerialization.jsonObject(with: data), let args = object as? [String: Any] else {
      throw ScGPTError.checkpoint("\(argsFile) must hold one JSON object")
    }
    return args
  }

  /// The configuration from args.json, the vocabulary and (for the heads args.json does not
  /// record) the weights' keys and shapes.
  public static func configuration(args: [String: Any], vocab: GeneVocab, weights: StateDict) throws -> ScGPTConfig {
    func int(_ key: String) throws -> Int? {
      guard let v = args[key], !(v is NSNull) else { return nil }
      guard let n = (v as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }) else {
        throw ScGPTError.checkpoint("\(argsFile): '\(key)' must be an integer, got \(v)")
      }
      return n
    }
    func required(_ key: String) throws -> Int {
      guard let n = try int(key) else { throw ScGPTError.checkpoint("\(argsFile) has no '\(key)'") }
      return n
    }
    func double(_ key: String) throws -> Double? {
      guard let v = args[key], !(v is NSNull) else { return nil }
      guard let n = v as? NSNumber else { throw ScGPTError.checkpoint("\(argsFile): '\(key)' must be a number, got \(v)") }
      return n.doubleValue
    }
    func bool(_ key: String) -> Bool? { (args[key] as? NSNumber)?.boolValue }
    func string(_ key: String) -> String? { args[key] as? String }
    func rows(_ key: String) -> Int? { weights[key].map { $0.shape.first ?? 0 } }

    let padToken = string("pad_token") ?? "<pad>"
    guard let padId = vocab[padToken] else { throw ScGPTError.checkpoint("pad token '\(padToken)' is not in \(vocabFile)") }
    var c = ScGPTConfig(
      ntoken: vocab.count, dModel: try required("embsize"), nHead: try required("nheads"), dHid: try required("d_hid"),
      nLayers: try required("nlayers"), padTokenId: padId)
    c.nLayersCls = try int("n_layers_cls") ?? int("nlayers_cls") ?? 3
    c.dropout = try double("dropout") ?? 0.5
    c.attentionDropout = try double("attention_dropout")
    c.padValue = try double("pad_value") ?? 0
    if let style = string("input_emb_style") {
      guard let s = ScGPTConfig.InputEmbeddingStyle(rawValue: style) else {
        throw ScGPTError.checkpoint("\(argsFile): unknown input_emb_style '\(style)'")
      }
      c.inputEmbeddingStyle = s
    }
    if c.inputEmbeddingStyle == .category {
      c.nInputBins = try int("n_input_bins") ?? rows("value_encoder.embedding.weight") ?? int("n_bins").map { $0 + 2 }
    }
    c.nCls = try int("n_cls") ?? rows("cls_decoder.out_layer.weight") ?? 1
    c.explicitZeroProb = bool("explicit_zero_prob")
      ?? (weights["decoder.zero_logit.0.weight"] != nil || weights["decoder.coeff_decoder.zero_logit.0.weight"] != nil)
    c.generative = bool("use_generative_training") ?? (weights["flag_encoder.weight"] != nil)
    if args["pert_pad_id"] != nil || weights["pert_encoder.weight"] != nil {
      c.perturbationPadId = try int("pert_pad_id") ?? 2
      c.decoderAdaptiveBias = bool("decoder_adaptive_bias") ?? false
      if let name = string("decoder_activation") {
        guard let a = ScGPTConfig.DecoderActivation(rawValue: name) else {
          throw ScGPTError.checkpoint("\(argsFile): decoder_activation '\(name)' is not supported (\(ScGPTConfig.DecoderActivation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        c.decoderActivation = a
      }
    }
    c.doMVC = bool("do_mvc") ?? bool("MVC") ?? (weights["mvc_decoder.gene2query.weight"] != nil)
    c.doDAB = bool("do_dab") ?? (weights["grad_reverse_discriminator.out_layer.weight"] != nil)
    c.useBatchLabels = bool("use_batch_labels") ?? (weights["batch_encoder.embedding.weight"] != nil)
    let dsbnDomains = Set(weights.keys.compactMap { key -> Int? in
      guard key.hasPrefix("dsbn.bns.") else { return nil }
      return Int(key.split(separator: ".")[2])
    }).count
    if let v = args["domain_spec_batchnorm"] {
      if let b = v as? Bool ?? (v as? NSNumber)?.boolValue, !(v is String) {
        c.batchNormalization = b ? .domainSpecific : .none
      } else if let s = v as? String {
        switch s {
        case "dsbn": c.batchNormalization = .domainSpecific
        case "batchnorm": c.batchNormalization = .single
        default: throw ScGPTError.checkpoint("\(argsFile): domain_spec_batchnorm '\(s)' is not supported (true, \"dsbn\", \"batchnorm\" or false)")
        }
      }
    } else {
      c.batchNormalization = dsbnDomains > 0 ? .domainSpecific : weights["bn.running_mean"] != nil ? .single : .none
    }
    c.numBatchLabels = try int("num_batch_labels") ?? rows("batch_encoder.embedding.weight")
      ?? rows("grad_reverse_discriminator.out_layer.weight") ?? (dsbnDomains > 0 ? dsbnDomains : nil)
    if let style = string("cell_emb_style") {
      guard let s = ScGPTConfig.CellEmbeddingStyle(rawValue: style) else { throw ScGPTError.checkpoint("\(argsFile): unknown cell_emb_style '\(style)'") }
      c.cellEmbeddingStyle = s
    }
    if let style = string("mvc_decoder_style") {
      guard let s = ScGPTConfig.MVCStyle(rawValue: style) else { throw ScGPTError.checkpoint("\(argsFile): unknown mvc_decoder_style '\(style)'") }
      c.mvcDecoderStyle = s
    } else if weights["mvc_decoder.fc1.weight"] != nil {
      c.mvcDecoderStyle = rows("mvc_decoder.gene2query.weight") == 64 && c.dModel != 64 ? .concatQuery : .sumQuery
    }
    c.ecsThreshold = try double("ecs_threshold") ?? double("ecs_thres") ?? 0.3
    c.preNorm = bool("pre_norm") ?? false
    if bool("use_mod") ?? (weights["mod_encoder.embedding.weight"] != nil) {
      guard let n = try int("ntokens_mod") ?? rows("mod_encoder.embedding.weight") else {
        throw ScGPTError.checkpoint("\(argsFile): use_mod without ntokens_mod")
      }
      c.numModalities = n
      c.modalityPadId = try int("mod_pad_id") ?? 0
    }
    do { try c.validate() } catch let ScGPTError.invalidConfig(m) { throw ScGPTError.checkpoint("\(argsFile): \(m)") }
    return c
  }

  /// Checks before anything is allocated: the layer count, the gene embedding and first
  /// feed-forward shapes (`anchors`), and a model no larger than a few times the weights (so a
  /// corrupt args.json cannot make the model allocate without bound).
  static func preflight(_ state: StateDict, config c: ScGPTConfig, anchors: Bool) throws {
    let layers = Set(state.keys.compactMap { key -> Int? in
      guard key.hasPrefix("transformer_encoder.layers.") else { return nil }
      return Int(key.split(separator: ".")[2])
    })
    if !layers.isEmpty, layers.count != c.nLayers {
      throw ScGPTError.checkpoint(
        "\(argsFile) does not match the weights: nlayers is \(c.nLayers) but \(weightsFile) has \(layers.count) transformer layers")
    }
    if anchors {
      for (key, expected) in [("encoder.embedding.weight", [c.ntoken, c.dModel]),
                              ("transformer_encoder.layers.0.linear1.weight", [c.dHid, c.dModel])] {
        if let shape = state[key]?.shape, shape != expected {
          throw ScGPTError.checkpoint(
            "\(argsFile)/\(vocabFile) do not match the weights: '\(key)' is \(shape) in \(weightsFile) but the model built from them (embsize \(c.dModel), d_hid \(c.dHid), \(c.ntoken) tokens) has \(expected)")
        }
      }
    }
    let d = Double(c.dModel), hid = Double(c.dHid)
    let heads = Double(c.nCls + (c.numBatchLabels ?? 0) + (c.nInputBins ?? 0) + 8 * c.nLayersCls + 16) * d * (d + 1)
    let estimate = Double(c.ntoken) * d + Double(c.nLayers) * (4 * d * d + 2 * d * hid) + heads
    let available = Double(state.reduce(0) { $0 + $1.value.count })
    guard estimate <= max(4 * available, 1e7) else {
      throw ScGPTError.checkpoint(
        "\(argsFile) describes a model of about \(Int(estimate)) parameters, far more than the \(Int(available)) in \(weightsFile)")
    }
  }

  /// Refuses weights whose shapes disagree with the model built from the configuration.
  static func checkShapes(_ state: StateDict, against network: ScGPTNetwork, config: ScGPTConfig) throws {
    for (key, own) in network.stateDict() {
      guard let theirs = state[key], theirs.shape != own.shape else { continue }
      throw ScGPTError.checkpoint(
        "\(argsFile)/\(vocabFile) do not match the weights: '\(key)' is \(theirs.shape) in \(weightsFile) but the model built from them (embsize \(config.dModel), d_hid \(config.dHid), \(config.ntoken) tokens) has \(own.shape)")
    }
  }
}
