import Torch

/// One minibatch for the scAtlasVAE network.
public struct AtlasInput {
  /// Counts, float32 [N, nInput].
  public var x: Tensor
  /// Main batch codes, int64 [N] (nil without a batch key).
  public var batch: Tensor?
  /// Codes of each additional batch key, int64 [N].
  public var additionalBatches: [Tensor] = []
  /// Codes of each label key, int64 [N]; −1 marks an unlabelled cell.
  public var labels: [Tensor] = []
  /// Target embedding for the latent constraint [N, nLatent]; rows of zeros are ignored.
  public var latentTarget: Tensor?

  public init(x: Tensor, batch: Tensor? = nil, additionalBatches: [Tensor] = [], labels: [Tensor] = [],
              latentTarget: Tensor? = nil) {
    self.x = x
    self.batch = batch
    self.additionalBatches = additionalBatches
    self.labels = labels
    self.latentTarget = latentTarget
  }

  func to(_ device: Device) -> AtlasInput {
    guard device != .cpu else { return self }
    return AtlasInput(x: x.to(device), batch: batch?.to(device), additionalBatches: additionalBatches.map { $0.to(device) },
                      labels: labels.map { $0.to(device) }, latentTarget: latentTarget?.to(device))
  }
}

/// q(z|x): the encoder's last hidden layer, mean and variance, and the latent used downstream.
public struct AtlasEncoding {
  public var hidden: Tensor
  public var qMu: Tensor
  public var qVar: Tensor
  public var z: Tensor
}

/// p(x|z): the decoder's hidden layer and the likelihood parameters.
public struct AtlasDecoding {
  public var hidden: Tensor
  /// Softmax over genes, before the library size.
  public var scale: Tensor
  /// The likelihood's mean: scale × library (zinb, nb, zg), log(scale · 1e4 + 1) (mse).
  public var mean: Tensor
  /// log θ (zinb, nb) or log σ (zg): [N, G], [G] or [N, G] by dispersion.
  public var logDispersion: Tensor
  /// Zero-inflation logits [N, G] or [N, 1].
  public var dropoutLogits: Tensor
}

/// The loss terms of one minibatch, per cell where they are per cell.
public struct AtlasLosses {
  /// −log p(x|z) per cell [N].
  public var reconstruction: Tensor
  /// KL(q(z|x) ‖ N(0, I)) per cell [N].
  public var kl: Tensor
  /// Weighted cross-entropy of each label head (0 when no labelled cell).
  public var prediction: [Tensor]
  public var mmd: Tensor
  public var latentConstraint: Tensor
  /// Mean over cells of the summed zero-inflation probabilities (the reference's gate penalty).
  public var gate: Tensor
}

/// scAtlasVAE's network (WanluLiuLab/scAtlasVAE `scAtlasVAE`), with the reference's
/// state-dict keys: `encoder.layers.{2i}._fclayer.*`, `z_mean_fc`, `z_var_fc`,
/// `decoder.cat_embedding.{k}`, `decoder._fclayer.*`, `px_rna_scale_decoder.0`,
/// `px_rna_rate_decoder`, `px_rna_dropout_decoder`, `fc.0`, `additional_fc.{k}`, `px_rate`.
public final class ScAtlasVAENetwork: Module {
  public let config: ScAtlasVAEConfig
  let encoderBlocks: [Sequential]
  let zMean: Linear
  let zVar: Linear
  let covariateEmbeddings: [Embedding]
  let decoderBlock: Sequential
  let rateDecoder: Linear
  let scaleDecoder: Linear
  let dropoutDecoder: Linear
  /// One linear head per label key.
  let labelHeads: [Linear]
  /// log θ per gene [G] or per gene and batch [G, nBatch]; nil for gene-cell dispersion.
  public let pxRate: Tensor?

  public init(config: ScAtlasVAEConfig) throws {
    try config.validate()
    self.config = config
    func block(_ nIn: Int, _ nOut: Int, layerNorm: Bool, dropout: Double) -> Sequential {
      // BatchNorm momentum 0.01 and eps 1e-3, as the reference's FCLayer.
      let layers: [(any UnaryLayer)?] = [
        Linear(nIn, nOut), BatchNorm1d(nOut, eps: 1e-3, momentum: 0.01),
        layerNorm ? LayerNorm(nOut, elementwiseAffine: false) : nil, ReLU(), dropout > 0 ? Dropout(dropout) : nil,
      ]
      return Sequential(layers.compactMap { $0 })
    }
    let encoderInput = config.nInput + (config.encodeLibsize ? 1 : 0)
    let dims = [encoderInput] + config.hiddenStacks
    encoderBlocks = config.hiddenStacks.indices.map {
      block(dims[$0], dims[$0 + 1], layerNorm: config.useLayerNorm, dropout: config.dropoutRate)
    }
    let nHidden = config.hiddenStacks.last!
    zMean = Linear(nHidden, config.nLatent)
    zVar = Linear(nHidden, config.nLatent)
    let covariates = config.decoderCovariates
    let covariateWidth: Int
    if config.covariateEncoding == .embedding {
      covariateEmbeddings = covariates.map { Embedding(config.categoryCount($0), config.embeddingDim) }
      covariateWidth = covariates.count * config.embeddingDim
    } else {
      covariateEmbeddings = []
      covariateWidth = covariates.map(config.categoryCount).reduce(0, +)
    }
    decoderBlock = block(config.nLatent + covariateWidth, nHidden, layerNorm: false, dropout: 0)
    rateDecoder = Linear(nHidden, config.nInput)
    scaleDecoder = Linear(nHidden, config.nInput)
    // The reference's init 'final': weights and bias zero, so training starts without zero inflation.
    let dropoutDecoder = Linear(nHidden, config.rnaDropout == .gene ? config.nInput : 1)
    withNoGrad {
      dropoutDecoder.weight.zero_()
      dropoutDecoder.bias?.zero_()
    }
    self.dropoutDecoder = dropoutDecoder
    labelHeads = config.nLabels.map { Linear(config.nLatent, $0) }
    switch config.dispersion {
    case .gene: pxRate = Tensor.randn([config.nInput])
    case .geneBatch: pxRate = Tensor.randn([config.nInput, config.nBatch])
    case .geneCell: pxRate = nil
    }
    super.init()
    if let pxRate { registerParameter("px_rate", pxRate) }
    // The reference's encoder is an encode-only stacked autoencoder: its ModuleList holds
    // (encoder, decoder) pairs with the decoders absent, so encoder layer i is entry 2i.
    let layers = Module()
    for (i, block) in encoderBlocks.enumerated() { layers.registerModule(String(2 * i), FCLayerWrapper(block)) }
    let encoder = Module()
    encoder.registerModule("layers", layers)
    registerModule("encoder", encoder)
    registerModule("z_mean_fc", zMean)
    registerModule("z_var_fc", zVar)
    let decoder = FCLayerWrapper(decoderBlock)
    if !covariateEmbeddings.isEmpty {
      let embeddings = Module()
      for (k, embedding) in covariateEmbeddings.enumerated() { embeddings.registerModule(String(k), embedding) }
      decoder.registerModule("cat_embedding", embeddings)
    }
    registerModule("decoder", decoder)
    registerModule("px_rna_rate_decoder", rateDecoder)
    registerModule("px_rna_scale_decoder", Sequential(scaleDecoder, SoftmaxLayer()))
    registerModule("px_rna_dropout_decoder", dropoutDecoder)
    if let main = labelHeads.first { registerModule("fc", Sequential(main)) }
    if labelHeads.count > 1 {
      let heads = Module()
      for (k, head) in labelHeads.dropFirst().enumerated() { heads.registerModule(String(k), head) }
      registerModule("additional_fc", heads)
    }
  }

  // MARK: - Encoder

  /// The encoder's input: log1p of the (optionally 1e4-normalised) counts for zinb and nb,
  /// the raw counts for zg and mse (as the reference), then the log library size if asked.
  func encoderInput(_ x: Tensor) -> Tensor {
    var h = x
    if config.reconstruction == .zinb || config.reconstruction == .nb {
      if config.totalVariational { h = Self.normalizedTotal(x, target: 1e4) }
      if config.logVariational { h = h.log1p() }
    }
    if config.encodeLibsize { h = Tensor.cat([h, x.sum(dim: 1, keepDim: true).log()], dim: 1) }
    return h
  }

  /// q(z|x). With `sample` z is a reparameterised draw, otherwise q_mu.
  public func encode(_ x: Tensor, sample: Bool) -> AtlasEncoding {
    var h = encoderInput(x)
    for block in encoderBlocks { h = block(h) }
    let qMu = zMean(h)
    let qVar = zVar(h).exp() + 1e-4
    let z = sample ? Normal(loc: qMu, scale: qVar.sqrt()).rsample() : qMu
    return AtlasEncoding(hidden: h, qMu: qMu, qVar: qVar, z: z)
  }

  // MARK: - Decoder

  /// p(x|z) for cells with library sizes `library` [N] (sums of counts).
  public func decode(_ z: Tensor, library: Tensor, input: AtlasInput) throws -> AtlasDecoding {
    let codes = try config.decoderCovariates.map { covariate -> Tensor in
      switch covariate {
      case .batch: return try required(input.batch, "the batch")
      case .label:
        let labels = try required(input.labels.first, "the label")
        if labels.lt(0).any().item() != 0 { throw VAEError.invalidInput("label injection needs every cell labelled") }
        return labels
      case .additionalBatch(let k):
        guard k < input.additionalBatches.count else { throw VAEError.invalidInput("missing additional batch key \(k + 1)") }
        return input.additionalBatches[k]
      }
    }
    var parts = [z]
    if config.covariateEncoding == .embedding {
      parts += zip(covariateEmbeddings, codes).map { $0(flat($1)) }
    } else {
      parts += zip(config.decoderCovariates, codes).map { flat($1).oneHot(config.categoryCount($0)).to(z.dtype) }
    }
    let hidden = decoderBlock(parts.count == 1 ? z : Tensor.cat(parts, dim: 1))
    let scale = scaleDecoder(hidden).softmax(dim: -1)
    let mean: Tensor
    if config.reconstruction == .mse {
      mean = (scale * 1e4 + 1).log()
    } else {
      mean = config.decodeLibsize ? scale * library.unsqueeze(dim: 1) : scale
    }
    let logDispersion: Tensor
    switch config.dispersion {
    case .geneCell: logDispersion = rateDecoder(hidden)
    case .gene: logDispersion = pxRate!
    case .geneBatch:
      let batch = try required(input.batch, "the batch (gene-batch dispersion)")
      logDispersion = Functional.linear(flat(batch).oneHot(config.nBatch).to(z.dtype), weight: pxRate!)
    }
    return AtlasDecoding(hidden: hidden, scale: scale, mean: mean, logDispersion: logDispersion,
                         dropoutLogits: dropoutDecoder(hidden))
  }

  /// The logits of each label head on `z`.
  public func labelLogits(_ z: Tensor) -> [Tensor] { labelHeads.map { $0(z) } }

  // MARK: - Loss

  /// Every loss term on one minibatch. `sample` draws z (training); otherwise z = q_mu.
  /// `classWeights[k]` weighs the classes of label key k (N / count, 0 for an empty class).
  public func losses(_ input: AtlasInput, sample: Bool, classWeights: [Tensor], computeMMD: Bool)
    throws -> (encoding: AtlasEncoding, decoding: AtlasDecoding, losses: AtlasLosses)
  {
    try withTorchErrors {
      let x = input.x
      let encoding = encode(x, sample: sample)
      let library = x.sum(dim: 1)
      let decoding = try decode(encoding.z, library: library, input: input)
      let shape = encoding.qMu.shape, dtype = encoding.qMu.dtype, device = encoding.qMu.device
      let prior = Normal(loc: Tensor.zeros(shape, dtype: dtype, device: device), scale: Tensor.ones(shape, dtype: dtype, device: device))
      let kl = Normal(loc: encoding.qMu, scale: encoding.qVar.sqrt()).klDivergence(to: prior).sum(dim: 1)
      let reconstruction = AtlasLikelihood.negativeLogLikelihood(x, decoding: decoding, config: config)
      var prediction: [Tensor] = []
      if !labelHeads.isEmpty {
        let logits = labelLogits(encoding.z)
        for k in labelHeads.indices {
          guard k < input.labels.count, k < classWeights.count else {
            throw VAEError.invalidInput("label key \(k + 1) has no codes or class weights")
          }
          prediction.append(AtlasPenalties.weightedCrossEntropy(logits[k], labels: flat(input.labels[k]),
                                                                 classWeights: classWeights[k]))
        }
      }
      var mmd = Tensor.zeros([], dtype: x.dtype, device: x.device)
      if computeMMD, let key = config.mmdKey {
        mmd = AtlasPenalties.mmd(encoding.qMu, key: key, batch: input.batch.map(flat), additional: input.additionalBatches.map(flat))
      }
      var constraint = Tensor.zeros([], dtype: x.dtype, device: x.device)
      if let method = config.latentConstraint, let target = input.latentTarget {
        constraint = AtlasPenalties.latentConstraint(encoding, target: target, method: method)
      }
      let gate = decoding.dropoutLogits.sigmoid().sum(dim: 1).mean()
      return (encoding, decoding, AtlasLosses(reconstruction: reconstruction, kl: kl, prediction: prediction, mmd: mmd,
                                              latentConstraint: constraint, gate: gate))
    }
  }

  // MARK: - Helpers

  /// Each cell scaled to `target` total counts (cells without counts are left at zero).
  static func normalizedTotal(_ x: Tensor, target: Double) -> Tensor {
    let totals = x.sum(dim: 1, keepDim: true)
    return x / (totals + totals.eq(0).to(x.dtype)) * target
  }

  private func required(_ tensor: Tensor?, _ what: String) throws -> Tensor {
    guard let tensor else { throw VAEError.invalidInput("the decoder needs \(what) codes") }
    return tensor
  }

  private func flat(_ codes: Tensor) -> Tensor { codes.rank == 2 ? codes.squeeze(dim: -1) : codes }
}

/// The reference's `FCLayer`: its Sequential is named `_fclayer` (and the decoder's
/// embeddings `cat_embedding` beside it).
final class FCLayerWrapper: Module {
  init(_ block: Sequential) {
    super.init()
    registerModule("_fclayer", block)
  }
}
