import Torch

/// One minibatch of tokenised cells.
public struct ScGPTBatch {
  /// int64 [B, L] vocabulary ids, `<cls>` first.
  public var geneIds: Tensor
  /// float32 [B, L] (masked) values.
  public var values: Tensor
  /// bool [B, L], true at `<pad>`.
  public var paddingMask: Tensor
  /// int64 [B] batch labels (needed with batch labels or DSBN).
  public var batchLabels: Tensor?
  /// int64 [B, L] modality of each token (needed by a multi-omic model).
  public var modalityTypes: Tensor?
  /// int64 [B, L] perturbation flags: 0 not perturbed, 1 perturbed, the pad id (2) at padding
  /// (needed by the perturbation model).
  public var perturbationFlags: Tensor?
  /// In training, batch norm (DSBN or BN) takes its statistics as if every cell were padded to
  /// this many tokens: the reference pads each cell to the data set's longest and its batch norm
  /// counts the padding, which changes what it removes (scGPT integration's batch correction
  /// after 3 epochs: 0.24 padded to the longest, 0.14 to the minibatch's longest). The extra
  /// `<pad>` tokens are embedded and normalised, then dropped before the transformer, which would
  /// mask them. nil: the minibatch's own padding.
  public var normalizationLength: Int?

  public init(geneIds: Tensor, values: Tensor, paddingMask: Tensor, batchLabels: Tensor? = nil, modalityTypes: Tensor? = nil,
              perturbationFlags: Tensor? = nil) {
    self.geneIds = geneIds
    self.values = values
    self.paddingMask = paddingMask
    self.batchLabels = batchLabels
    self.modalityTypes = modalityTypes
    self.perturbationFlags = perturbationFlags
  }

  /// A batch from tokenised cells (mask = ids == `<pad>`'s id); `values` replaces their values
  /// (e.g. masked ones) and must have their shape.
  public init(_ cells: TokenizedCells, values: [[Float]]? = nil, batchLabels: [Int]? = nil, modalityTypes: [[Int]]? = nil) throws {
    if let values, values.count != cells.count || values.contains(where: { $0.count != cells.length }) {
      throw ScGPTError.invalidInput("values must be \(cells.count) rows of \(cells.length), like the tokens")
    }
    if let batchLabels, batchLabels.count != cells.count {
      throw ScGPTError.invalidInput("\(batchLabels.count) batch labels for \(cells.count) cells")
    }
    if let modalityTypes, modalityTypes.count != cells.count || modalityTypes.contains(where: { $0.count != cells.length }) {
      throw ScGPTError.invalidInput("modality types must be \(cells.count) rows of \(cells.length), like the tokens")
    }
    let v = values.map { Tensor(Array($0.joined()), shape: [cells.count, cells.length]) } ?? cells.valueTensor
    self.init(geneIds: cells.geneIdTensor, values: v, paddingMask: cells.paddingMask,
              batchLabels: batchLabels.map { Tensor($0.map(Int64.init)) },
              modalityTypes: modalityTypes.map { Tensor($0.joined().map(Int64.init), shape: [cells.count, cells.length]) })
  }
}

/// Which heads a forward pass runs besides the expression decoder (always) and the batch
/// discriminator (whenever the model has one), as the reference's forward flags.
public struct ScGPTHeads: OptionSet, Sendable {
  public let rawValue: Int
  public init(rawValue: Int) { self.rawValue = rawValue }
  /// Cell-type classification (`cls_output`).
  public static let cls = ScGPTHeads(rawValue: 1)
  /// Contrastive cell embedding loss (a second encoder pass; temperature 0.5).
  public static let cce = ScGPTHeads(rawValue: 2)
  /// Masked value prediction from the cell embedding (GEPC).
  public static let mvc = ScGPTHeads(rawValue: 4)
  /// Elastic cell similarity loss.
  public static let ecs = ScGPTHeads(rawValue: 8)
  /// With explicit zero probabilities: outputs = Bernoulli(zero probs) draw × prediction.
  public static let sample = ScGPTHeads(rawValue: 16)
}

/// The outputs of `ScGPTNetwork.forward` (the reference's dict keys in the comments).
public struct ScGPTOutput {
  /// Gene-token embeddings [B, L, d] (the MVC decoder's queries).
  public var geneEmbeddings: Tensor
  /// Transformer output [B, L, d].
  public var transformerOutput: Tensor
  public var cellEmbedding: Tensor  // cell_emb
  public var mlmOutput: Tensor  // mlm_output
  public var mlmZeroProbs: Tensor?  // mlm_zero_probs
  public var clsOutput: Tensor?  // cls_output
  public var lossCCE: Tensor?  // loss_cce
  public var mvcOutput: Tensor?  // mvc_output
  public var mvcZeroProbs: Tensor?  // mvc_zero_probs
  public var lossECS: Tensor?  // loss_ecs
  public var dabOutput: Tensor?  // dab_output
}

/// scGPT's `TransformerModel` (scgpt 0.2.4) with its state-dict keys: gene and value encoders,
/// optional batch encoder and (domain-specific) batch norm, a post-norm transformer encoder with
/// a key-padding mask on libtorch's fused attention, and the expression, classification, MVC and
/// batch-discriminator heads. With `config.perturbationPadId` it is the perturbation model
/// (`TransformerGenerator`): flag embedding `pert_encoder` and the affine expression decoder.
public final class ScGPTNetwork: Module {
  public let config: ScGPTConfig
  public let encoder: ScGPTTokenEncoder
  public let continuousValueEncoder: ContinuousValueEncoder?
  public let categoryValueEncoder: CategoryValueEncoder?
  public let batchEncoder: ScGPTTokenEncoder?
  /// The multi-omic model's modality embedding (`mod_encoder`).
  public let modalityEncoder: ScGPTTokenEncoder?
  /// The generative model's flag embedding (`flag_encoder`).
  public let generativeFlag: Embedding?
  /// The perturbation model's flag embedding (`pert_encoder`).
  public let perturbationEncoder: Embedding?
  public let dsbn: DomainSpecificBatchNorm1d?
  public let bn: BatchNorm1d?
  public let transformerEncoder: TransformerEncoder
  public let decoder: any ExpressionDecoding
  public let clsDecoder: ScGPTClassifier
  public let mvcDecoder: MVCDecoder?
  public let discriminator: ScGPTClassifier?
  /// The ECS loss's similarity threshold (not part of the weights).
  public var ecsThreshold: Double
  /// A multi-omic model's modality of each vocabulary token (int64 [ntoken]): when a batch
  /// brings no modality types, they are looked up from its gene ids.
  public var tokenModalities: Tensor?

  public init(_ config: ScGPTConfig) throws {
    try config.validate()
    self.config = config
    let d = config.dModel
    let geneEncoder = ScGPTTokenEncoder(config.ntoken, d, paddingIndex: config.padTokenId)
    // The reference's init_weights: the whole gene embedding, padding row included, U(-0.1, 0.1).
    withNoGrad { geneEncoder.embedding.weight.copy_(Tensor.rand([config.ntoken, d]) * 0.2 - 0.1) }
    encoder = geneEncoder
    switch config.inputEmbeddingStyle {
    case .continuous:
      continuousValueEncoder = ContinuousValueEncoder(d, dropout: config.dropout)
      categoryValueEncoder = nil
    case .category:
      continuousValueEncoder = nil
      categoryValueEncoder = CategoryValueEncoder(config.nInputBins!, d, paddingIndex: Int(config.padValue))
    case .scaling:
      continuousValueEncoder = nil
      categoryValueEncoder = nil
    }
    batchEncoder = config.useBatchLabels ? ScGPTTokenEncoder(config.numBatchLabels!, d) : nil
    modalityEncoder = config.numModalities.map { ScGPTTokenEncoder($0, d, paddingIndex: config.modalityPadId) }
    perturbationEncoder = config.perturbationPadId.map { Embedding(3, d, paddingIndex: $0) }
    generativeFlag = config.generative ? Embedding(2, d) : nil
    dsbn = config.batchNormalization == .domainSpecific
      ? DomainSpecificBatchNorm1d(d, numDomains: config.numBatchLabels!) : nil
    bn = config.batchNormalization == .single ? BatchNorm1d(d, eps: 6.1e-5) : nil
    // As the reference (torch's TransformerEncoder deep-copies one layer): all layers start equal.
    transformerEncoder = try TransformerEncoder(copiesOf: {
      TransformerEncoderLayer(
        dModel: d, nHead: config.nHead, dimFeedforward: config.dHid, dropout: config.dropout, batchFirst: true,
        normFirst: config.preNorm, attentionDropout: config.attentionDropout)
    }, count: config.nLayers)
    decoder = config.perturbationPadId != nil
      ? AffineExprDecoder(d, explicitZeroProb: config.explicitZeroProb, activation: config.decoderActivation,
                          adaptiveBias: config.decoderAdaptiveBias)
      : ExprDecoder(d, explicitZeroProb: config.explicitZeroProb, useBatchLabels: config.conditionedDecoders)
    clsDecoder = ScGPTClassifier(d, nClasses: config.nCls, nLayers: config.nLayersCls)
    mvcDecoder = config.doMVC
      ? MVCDecoder(d, style: config.mvcDecoderStyle, explicitZeroProb: config.explicitZeroProb,
                   useBatchLabels: config.useBatchLabels, modalities: config.numModalities != nil) : nil
    discriminator = config.doDAB
      ? ScGPTClassifier(d, nClasses: config.numBatchLabels!, nLayers: 3, leaky: true, reverseGradient: true) : nil
    ecsThreshold = config.ecsThreshold
    super.init()
    registerModule("encoder", encoder)
    if let continuousValueEncoder { registerModule("value_encoder", continuousValueEncoder) }
    if let categoryValueEncoder { registerModule("value_encoder", categoryValueEncoder) }
    if let batchEncoder { registerModule("batch_encoder", batchEncoder) }
    if let modalityEncoder { registerModule("mod_encoder", modalityEncoder) }
    if let perturbationEncoder { registerModule("pert_encoder", perturbationEncoder) }
    if let generativeFlag { registerModule("flag_encoder", generativeFlag) }
    if let dsbn { registerModule("dsbn", dsbn) }
    if let bn { registerModule("bn", bn) }
    registerModule("transformer_encoder", transformerEncoder)
    registerModule("decoder", decoder)
    registerModule("cls_decoder", clsDecoder)
    if let mvcDecoder { registerModule("mvc_decoder", mvcDecoder) }
    if let discriminator { registerModule("grad_reverse_discriminator", discriminator) }
  }

  // MARK: - Encoding

  /// Gene embeddings and values combined: gene + value embedding (or gene × value for scaling),
  /// plus the perturbation-flag embedding of the perturbation model, [B, L, d], before batch
  /// normalisation.
  public func inputEmbeddings(_ batch: ScGPTBatch) -> (genes: Tensor, total: Tensor) {
    let genes = encoder(batch.geneIds)
    if let continuousValueEncoder {
      let total = genes + continuousValueEncoder(batch.values)
      return (genes, perturbationEncoder.map { total + $0(batch.perturbationFlags!) } ?? total)
    }
    if let categoryValueEncoder { return (genes, genes + categoryValueEncoder(batch.values)) }
    return (genes, genes * batch.values.unsqueeze(dim: 2))
  }

  /// Input embeddings [B, count, d] of `count` `<pad>` tokens per cell.
  private func paddingEmbeddings(cells: Int, count: Int, device: Device) -> Tensor {
    let shape = [cells, count]
    let ids = Tensor.full(shape, Double(config.padTokenId), dtype: .int64, device: device)
    let pads = ScGPTBatch(geneIds: ids, values: Tensor.full(shape, config.padValue, device: device),
                          paddingMask: Tensor.ones(shape, dtype: .bool, device: device),
                          perturbationFlags: config.perturbationPadId.map { Tensor.full(shape, Double($0), dtype: .int64, device: device) })
    return inputEmbeddings(pads).total
  }

  /// Batch normalisation (if any) and the transformer over input embeddings [B, L, d].
  /// `zeroPaddedOutputs` sets the outputs at padded positions to 0, as torch's own transformer
  /// does on its inference fast path (eval mode under no_grad; the reference's `embed_data`).
  /// `throughLayers` stops after that many transformer layers (default: all).
  public func transform(_ total: Tensor, _ batch: ScGPTBatch, zeroPaddedOutputs: Bool = false, throughLayers: Int? = nil) throws -> Tensor {
    var x = total
    let length = x.size(1)
    if isTraining, dsbn != nil || bn != nil, let n = batch.normalizationLength, n > length {
      x = Tensor.cat([x, paddingEmbeddings(cells: x.size(0), count: n - length, device: x.device)], dim: 1)
    }
    if let dsbn {
      // As the reference: the first cell's label picks the BatchNorm for the whole minibatch.
      let domain = Int(batch.batchLabels![0].item())
      x = try dsbn(x.permute([0, 2, 1]), domain: domain).permute([0, 2, 1])
    } else if let bn {
      x = bn(x.permute([0, 2, 1])).permute([0, 2, 1])
    }
    if x.size(1) > length { x = x.narrow(dim: 1, start: 0, length: length) }
    var output = x
    if let n = throughLayers {
      for layer in transformerEncoder.layers.modules.prefix(n) { output = layer(output, srcKeyPaddingMask: batch.paddingMask) }
    } else {
      output = transformerEncoder(x, srcKeyPaddingMask: batch.paddingMask)
    }
    return zeroPaddedOutputs ? output.maskedFill(batch.paddingMask.unsqueeze(dim: 2), 0) : output
  }

  /// The reference's `_encode`: transformer output [B, L, d].
  public func encode(_ batch: ScGPTBatch, zeroPaddedOutputs: Bool = false) throws -> Tensor {
    try check(batch)
    return try withTorchErrors { try transform(inputEmbeddings(batch).total, batch, zeroPaddedOutputs: zeroPaddedOutputs) }
  }

  /// The cell embedding [B, d] of a transformer output in `style` (default: the config's);
  /// `weights` [B, L] are w-pool's (the reference passes the input values).
  public func cellEmbedding(_ output: Tensor, weights: Tensor? = nil, style: ScGPTConfig.CellEmbeddingStyle? = nil) throws -> Tensor {
    switch style ?? config.cellEmbeddingStyle {
    case .cls: return output.select(dim: 1, index: 0)
    case .avgPool: return output.mean(dim: 1)
    case .wPool:
      guard let weights else { throw ScGPTError.invalidInput("w-pool cell embeddings need weights") }
      return l2Normalized((output * weights.unsqueeze(dim: 2)).sum(dim: 1))
    }
  }

  // MARK: - Forward

  /// The reference's `forward(src, values, src_key_padding_mask, batch_labels, CLS, CCE, MVC, ECS,
  /// do_sample)`. `inputHook` sees the input embeddings (gene + value, before batch norm) and
  /// returns what the transformer gets (a test adds a zero leaf to read its gradient).
  /// `zeroPaddedOutputs`: see `transform`.
  public func forward(_ batch: ScGPTBatch, heads: ScGPTHeads = [], zeroPaddedOutputs: Bool = false,
                      inputHook: ((Tensor) -> Tensor)? = nil) throws -> ScGPTOutput
  {
    var batch = batch
    if batch.modalityTypes == nil, let table = tokenModalities, config.numModalities != nil {
      guard table.shape == [config.ntoken] else {
        throw ScGPTError.invalidInput("the token modality table has \(table.shape) entries for \(config.ntoken) tokens")
      }
      // Clamped so that the lookup cannot fail; `check` then rejects ids outside the vocabulary.
      let ids = batch.geneIds.clamp(min: 0, max: Double(config.ntoken - 1)).to(.int64).flatten()
      batch.modalityTypes = table.to(batch.geneIds.device).indexSelect(dim: 0, index: ids).reshape(batch.geneIds.shape)
    }
    try check(batch)
    if heads.contains(.mvc) && mvcDecoder == nil { throw ScGPTError.invalidInput("MVC asked for, but the model has no MVC decoder") }
    return try withTorchErrors {
      let (genes, total) = inputEmbeddings(batch)
      let output = try transform(inputHook.map { $0(total) } ?? total, batch, zeroPaddedOutputs: zeroPaddedOutputs)
      let batchEmbedding = batchEncoder.map { $0(batch.batchLabels!) }
      let modalityEmbedding = modalityEncoder.map { $0(batch.modalityTypes!) }

      // Per token: the batch embedding (repeated) plus the modality embedding, either alone.
      var condition = batchEmbedding.map { $0.unsqueeze(dim: 1).expand([output.size(0), output.size(1), $0.size(1)]) }
      if let modalityEmbedding { condition = condition.map { $0 + modalityEmbedding } ?? modalityEmbedding }
      let mlm = decoder.decode(condition.map { Tensor.cat([output, $0], dim: 2) } ?? output, values: batch.values)
      let cell = try cellEmbedding(output, weights: batch.values)
      var result = ScGPTOutput(
        geneEmbeddings: genes, transformerOutput: output, cellEmbedding: cell,
        mlmOutput: sampled(mlm, heads), mlmZeroProbs: mlm.zeroProbs)

      if heads.contains(.cls) { result.clsOutput = clsDecoder(cell) }
      if heads.contains(.cce) {
        let second = try cellEmbedding(
          transform(inputEmbeddings(batch).total, batch, zeroPaddedOutputs: zeroPaddedOutputs), weights: batch.values)
        result.lossCCE = ScGPTLosses.contrastive(cell, second, temperature: 0.5)
      }
      if heads.contains(.mvc), let mvcDecoder {
        // The cell embedding with the batch embedding plus the modality embedding at the cell
        // position (either alone); with modalities the gene embeddings get `condition` too.
        var cellCondition = batchEmbedding
        if let modalityEmbedding {
          let pooled = try cellEmbedding(modalityEmbedding, weights: batch.values)
          cellCondition = cellCondition.map { $0 + pooled } ?? pooled
        }
        let query = cellCondition.map { Tensor.cat([cell, $0], dim: 1) } ?? cell
        let keys = modalityEmbedding != nil ? Tensor.cat([genes, condition!], dim: 2) : genes
        let mvc = mvcDecoder(cellEmbedding: query, geneEmbeddings: keys)
        result.mvcOutput = sampled(mvc, heads)
        result.mvcZeroProbs = mvc.zeroProbs
      }
      if heads.contains(.ecs) { result.lossECS = ScGPTLosses.elasticCellSimilarity(cell, threshold: ecsThreshold) }
      if let discriminator { result.dabOutput = discriminator(cell) }
      return result
    }
  }

  private func sampled(_ decoded: (pred: Tensor, zeroProbs: Tensor?), _ heads: ScGPTHeads) -> Tensor {
    guard heads.contains(.sample), let p = decoded.zeroProbs else { return decoded.pred }
    return p.detach().bernoulli() * decoded.pred
  }

  private func check(_ batch: ScGPTBatch) throws {
    let shape = batch.geneIds.shape
    guard shape.count == 2, batch.values.shape == shape, batch.paddingMask.shape == shape else {
      throw ScGPTError.invalidInput(
        "gene ids \(shape), values \(batch.values.shape) and padding mask \(batch.paddingMask.shape) must be the same [cells, length]")
    }
    guard batch.geneIds.dtype == .int64, batch.paddingMask.dtype == .bool else {
      throw ScGPTError.invalidInput("gene ids must be int64 and the padding mask bool")
    }
    guard shape[0] > 0, shape[1] > 0 else { throw ScGPTError.invalidInput("empty batch \(shape)") }
    let low = Int(batch.geneIds.min().item()), high = Int(batch.geneIds.max().item())
    guard low >= 0, high < config.ntoken else {
      throw ScGPTError.invalidInput("gene ids span \(low)…\(high), outside the vocabulary of \(config.ntoken)")
    }
    if let n = config.numModalities {
      guard let types = batch.modalityTypes, types.shape == shape else {
        throw ScGPTError.invalidInput("this multi-omic model needs a modality type per token [\(shape[0]), \(shape[1])]")
      }
      let low = Int(types.min().item()), high = Int(types.max().item())
      guard low >= 0, high < n else { throw ScGPTError.invalidInput("modality types span \(low)…\(high), outside the model's \(n)") }
    }
    if config.perturbationPadId != nil {
      guard let flags = batch.perturbationFlags, flags.shape == shape, flags.dtype == .int64 else {
        throw ScGPTError.invalidInput("the perturbation model needs an int64 perturbation flag per token [\(shape[0]), \(shape[1])]")
      }
      let low = Int(flags.min().item()), high = Int(flags.max().item())
      guard low >= 0, high < 3 else { throw ScGPTError.invalidInput("perturbation flags span \(low)…\(high), outside 0…2") }
    }
    if config.needsBatchLabels {
      guard let labels = batch.batchLabels, labels.shape == [shape[0]] else {
        throw ScGPTError.invalidInput("this model needs one batch label per cell (\(shape[0]))")
      }
      let top = Int(labels.max().item()), bottom = Int(labels.min().item())
      guard bottom >= 0, top < config.numBatchLabels! else {
        throw ScGPTError.invalidInput("batch labels span \(bottom)…\(top), outside the model's \(config.numBatchLabels!) batches")
      }
    }
  }
}

/// x / max(‖x‖₂, eps) along dim 1 (torch's F.normalize).
func l2Normalized(_ x: Tensor, eps: Double = 1e-12) -> Tensor {
  x / x.norm([1], keepDim: true).clamp(min: eps)
}
