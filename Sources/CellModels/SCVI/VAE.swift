import Torch

/// scvi-tools' `VAE` module (scVI), and with `VAEConfig.ldvae` its `LDVAE` (LinearSCVI).
///
/// State-dict keys are scvi-tools' (`px_r`, `library_log_means`, `z_encoder.…`,
/// `l_encoder.…`, `decoder.…`), so `loadStateDict` takes an scvi-tools module's
/// `state_dict()` as is.
public final class VAE: Module {
  public let config: VAEConfig
  /// θ before exp: [nInput] (gene), [nInput, nBatch] (gene-batch), [nInput, nLabels]
  /// (gene-label); nil for gene-cell, where the decoder produces it.
  public let pxR: Tensor?
  /// Per-batch mean and variance of the log library size [1, max(nBatch, 1)], the prior of
  /// a latent library; nil with the observed library size.
  public let libraryLogMeans: Tensor?
  public let libraryLogVars: Tensor?
  let zEncoder: Encoder
  let lEncoder: Encoder
  let decoder: any VAEDecoder

  /// - Parameters:
  ///   - libraryLogMeans, libraryLogVars: one value per batch (`libraryLogPrior` computes
  ///     them as scvi-tools does); required without the observed library size, as there.
  public init(config: VAEConfig, libraryLogMeans: [Float]? = nil, libraryLogVars: [Float]? = nil) throws {
    try config.validate()
    self.config = config
    let nPriorBatches = Swift.max(config.nBatch, 1)
    if config.useObservedLibSize {
      self.libraryLogMeans = nil
      self.libraryLogVars = nil
    } else {
      guard let libraryLogMeans, let libraryLogVars else {
        throw VAEError.invalidConfig("a latent library size (useObservedLibSize false) needs libraryLogMeans and libraryLogVars")
      }
      guard libraryLogMeans.count == nPriorBatches, libraryLogVars.count == nPriorBatches else {
        throw VAEError.invalidConfig(
          "libraryLogMeans/libraryLogVars need \(nPriorBatches) values (one per batch), got \(libraryLogMeans.count) and \(libraryLogVars.count)")
      }
      self.libraryLogMeans = Tensor(libraryLogMeans, shape: [1, nPriorBatches])
      self.libraryLogVars = Tensor(libraryLogVars, shape: [1, nPriorBatches])
    }
    switch config.dispersion {
    case .gene: pxR = Tensor.randn([config.nInput])
    case .geneBatch: pxR = Tensor.randn([config.nInput, config.nBatch])
    case .geneLabel: pxR = Tensor.randn([config.nInput, config.nLabels])
    case .geneCell: pxR = nil
    }

    let encoderCategories = config.encodeCovariates ? [config.nBatch] : []
    zEncoder = Encoder(
      nInput: config.nInput, nOutput: config.nLatent, categoryCounts: encoderCategories, nLayers: config.nLayers,
      nHidden: config.nHidden, dropoutRate: config.dropoutRate, distribution: config.latentDistribution,
      injectCovariates: config.deeplyInjectCovariates, useBatchNorm: config.useBatchNorm.inEncoder,
      useLayerNorm: config.useLayerNorm.inEncoder)
    lEncoder = Encoder(
      nInput: config.nInput, nOutput: 1, categoryCounts: encoderCategories, nLayers: 1, nHidden: config.nHidden,
      dropoutRate: config.dropoutRate, injectCovariates: config.deeplyInjectCovariates,
      useBatchNorm: config.useBatchNorm.inEncoder, useLayerNorm: config.useLayerNorm.inEncoder)
    switch config.decoder {
    case .nonlinear:
      decoder = DecoderSCVI(
        nInput: config.nLatent, nOutput: config.nInput, categoryCounts: [config.nBatch], nLayers: config.nLayers,
        nHidden: config.nHidden, injectCovariates: config.deeplyInjectCovariates,
        useBatchNorm: config.useBatchNorm.inDecoder, useLayerNorm: config.useLayerNorm.inDecoder)
    case .linear(let batchNorm, let bias):
      decoder = LinearDecoderSCVI(
        nInput: config.nLatent, nOutput: config.nInput, categoryCounts: [config.nBatch], useBatchNorm: batchNorm,
        bias: bias)
    }
    super.init()
    if let pxR { registerParameter("px_r", pxR) }
    if let libraryLogMeans = self.libraryLogMeans, let libraryLogVars = self.libraryLogVars {
      registerBuffer("library_log_means", libraryLogMeans)
      registerBuffer("library_log_vars", libraryLogVars)
    }
    registerModule("z_encoder", zEncoder)
    registerModule("l_encoder", lEncoder)
    registerModule("decoder", decoder)
  }

  // MARK: - Inference

  /// Encodes the cells: q(z|x), and q(l|x) or the observed log library size.
  /// `checkInput: false` skips the per-call count and index checks, for data validated once
  /// up front (the model facade's training and evaluation loops).
  public func inference(_ input: VAEInput, sampling: LatentSampling = .sample, checkInput: Bool = true) throws
    -> VAEInferenceOutput
  {
    let batch = checkInput ? try validate(input) : (input.batchIndex.map { $0.rank == 1 ? $0.unsqueeze(dim: 1) : $0 }
      ?? Tensor.zeros([input.x.size(0), 1], dtype: .int64, device: input.x.device))
    return try withTorchErrors {
      let x = input.x
      let encoderInput = config.logVariational ? x.log1p() : x
      let categories = config.encodeCovariates ? [batch] : []
      let qz = zEncoder(encoderInput, categories: categories)
      let draw = sampling == .mean ? qz.mean : Normal(loc: qz.mean, scale: qz.variance.sqrt()).rsample()
      var output = VAEInferenceOutput(
        qzMean: qz.mean, qzVariance: qz.variance, z: zEncoder.transform(draw), qlMean: nil, qlVariance: nil,
        library: Tensor.zeros([0], device: x.device))
      if config.useObservedLibSize {
        output.library = x.sum(dim: 1).log().unsqueeze(dim: 1)
      } else {
        let ql = lEncoder(encoderInput, categories: categories)
        output.qlMean = ql.mean
        output.qlVariance = ql.variance
        output.library = sampling == .mean ? ql.mean : Normal(loc: ql.mean, scale: ql.variance.sqrt()).rsample()
      }
      return output
    }
  }

  // MARK: - Generative model

  /// Decodes z and the log library into p(x|z, l), with the library prior p(l).
  /// `transformBatch` decodes every cell as if it came from that batch.
  public func generative(z: Tensor, library: Tensor, batchIndex: Tensor? = nil, labels: Tensor? = nil,
                         transformBatch: Int? = nil, checkInput: Bool = true) throws -> VAEGenerativeOutput {
    func indices(_ index: Tensor?, name: String, count: Int, required: Bool = false) throws -> Tensor {
      if !checkInput, let index { return index.rank == 1 ? index.unsqueeze(dim: 1) : index }
      return try checkedIndices(index, name: name, count: count, cells: z.size(0), required: required, device: z.device)
    }
    var batch = try indices(batchIndex, name: "batchIndex", count: Swift.max(config.nBatch, 1))
    if let transformBatch {
      guard transformBatch >= 0 && transformBatch < Swift.max(config.nBatch, 1) else {
        throw VAEError.invalidInput("transformBatch \(transformBatch) is not a batch of this model (\(config.nBatch) batches)")
      }
      batch = Tensor.full(batch.shape, Double(transformBatch), dtype: .int64, device: batch.device)
    }
    let label = config.dispersion == .geneLabel
      ? try indices(labels, name: "labels", count: config.nLabels, required: true) : nil
    return try withTorchErrors {
      let decoded = decoder.decode(z, library: library, categories: [batch], dispersion: config.dispersion)
      let rawR: Tensor
      switch config.dispersion {
      case .gene: rawR = pxR!
      case .geneBatch: rawR = Functional.linear(oneHot(batch, config.nBatch, like: z), weight: pxR!)
      case .geneLabel: rawR = Functional.linear(oneHot(label!, config.nLabels, like: z), weight: pxR!)
      case .geneCell: rawR = decoded.cellDispersion!
      }
      var output = VAEGenerativeOutput(
        likelihood: config.geneLikelihood, pxScale: decoded.scale, pxRate: decoded.rate, pxR: rawR.exp(),
        pxDropout: decoded.dropoutLogits, plMean: nil, plVariance: nil)
      if let libraryLogMeans, let libraryLogVars {
        let batchOneHot = oneHot(batch, libraryLogMeans.size(1), like: z)
        output.plMean = Functional.linear(batchOneHot, weight: libraryLogMeans)
        output.plVariance = Functional.linear(batchOneHot, weight: libraryLogVars)
      }
      return output
    }
  }

  // MARK: - Loss

  /// scvi-tools' loss: per cell −log p(x|z, l), KL(z) and KL(l), and
  /// mean(reconstruction + klWeight · KL(z) + KL(l)).
  public func loss(_ input: VAEInput, inference: VAEInferenceOutput, generative: VAEGenerativeOutput,
                   klWeight: Double = 1) throws -> VAELossOutput {
    try withTorchErrors {
      let qz = Normal(loc: inference.qzMean, scale: inference.qzVariance.sqrt())
      let prior = Normal(loc: Tensor.zeros(inference.qzMean.shape, dtype: inference.qzMean.dtype, device: inference.qzMean.device),
                         scale: Tensor.ones(inference.qzMean.shape, dtype: inference.qzMean.dtype, device: inference.qzMean.device))
      let klZ = qz.klDivergence(to: prior).sum(dim: -1)
      let klL: Tensor
      if let qlMean = inference.qlMean, let qlVariance = inference.qlVariance,
        let plMean = generative.plMean, let plVariance = generative.plVariance
      {
        klL = Normal(loc: qlMean, scale: qlVariance.sqrt())
          .klDivergence(to: Normal(loc: plMean, scale: plVariance.sqrt())).sum(dim: 1)
      } else {
        klL = Tensor.zeros(klZ.shape, dtype: klZ.dtype, device: klZ.device)
      }
      let reconstruction = -generative.logProb(input.x).sum(dim: -1)
      let loss = (reconstruction + klWeight * klZ + klL).mean()
      return VAELossOutput(loss: loss, reconstructionLoss: reconstruction, klZ: klZ, klL: klL)
    }
  }

  /// inference → generative → loss on one minibatch.
  public func forward(_ input: VAEInput, sampling: LatentSampling = .sample, klWeight: Double = 1,
                      checkInput: Bool = true) throws
    -> (inference: VAEInferenceOutput, generative: VAEGenerativeOutput, loss: VAELossOutput)
  {
    let inferred = try inference(input, sampling: sampling, checkInput: checkInput)
    let generated = try generative(z: inferred.z, library: inferred.library, batchIndex: input.batchIndex,
                                   labels: input.labels, checkInput: checkInput)
    return (inferred, generated, try loss(input, inference: inferred, generative: generated, klWeight: klWeight))
  }

  /// LDVAE's gene × latent loadings (scvi-tools' `get_loadings`).
  public func loadings() throws -> Tensor {
    guard let linear = decoder as? LinearDecoderSCVI else {
      throw VAEError.invalidConfig("loadings exist only for the linear (LDVAE) decoder")
    }
    return linear.loadings()
  }

  private func oneHot(_ index: Tensor, _ count: Int, like z: Tensor) -> Tensor {
    index.squeeze(dim: -1).oneHot(count).to(z.dtype)
  }
}
