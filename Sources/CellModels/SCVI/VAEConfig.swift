/// The likelihood of the counts given the decoder's output (scvi-tools' `gene_likelihood`).
public enum GeneLikelihood: String, Sendable, Codable, CaseIterable {
  case zinb, nb, poisson
}

/// How the negative-binomial inverse dispersion θ is shared (scvi-tools' `dispersion`).
public enum Dispersion: String, Sendable, Codable, CaseIterable {
  /// One θ per gene.
  case gene
  /// One θ per gene and batch.
  case geneBatch = "gene-batch"
  /// One θ per gene and label.
  case geneLabel = "gene-label"
  /// θ decoded per gene and cell.
  case geneCell = "gene-cell"
}

/// The posterior family of z (scvi-tools' `latent_distribution`): a normal, or a logistic
/// normal ("ln": z = softmax of a normal draw).
public enum LatentDistribution: String, Sendable, Codable, CaseIterable {
  case normal
  case logisticNormal = "ln"
}

/// Where a normalisation layer is used (scvi-tools' `use_batch_norm` / `use_layer_norm`).
public enum NormPlacement: String, Sendable, Codable, CaseIterable {
  case encoder, decoder, none, both
  var inEncoder: Bool { self == .encoder || self == .both }
  var inDecoder: Bool { self == .decoder || self == .both }
}

/// The decoder architecture: scVI's nonlinear `DecoderSCVI` or LDVAE's `LinearDecoderSCVI`.
public enum DecoderKind: Sendable, Codable, Equatable {
  case nonlinear
  /// A linear map from z (and batch one-hot) to genes; `batchNorm` on its output, `bias` in it.
  case linear(batchNorm: Bool, bias: Bool)
}

/// Hyperparameters of the VAE network, named as scvi-tools' `VAE` (in Swift style) and
/// with its defaults. Continuous/extra categorical covariates, batch embeddings, size
/// factors and the `normal` likelihood are not supported.
public struct VAEConfig: Sendable, Codable, Equatable {
  public var nInput: Int
  public var nBatch: Int = 0
  public var nLabels: Int = 0
  public var nHidden: Int = 128
  public var nLatent: Int = 10
  public var nLayers: Int = 1
  public var dropoutRate: Double = 0.1
  public var dispersion: Dispersion = .gene
  /// Encode log1p(x) instead of x.
  public var logVariational: Bool = true
  public var geneLikelihood: GeneLikelihood = .zinb
  public var latentDistribution: LatentDistribution = .normal
  /// Feed the batch one-hot to the encoders too.
  public var encodeCovariates: Bool = false
  /// Inject covariates into every hidden layer, not only the first.
  public var deeplyInjectCovariates: Bool = true
  public var useBatchNorm: NormPlacement = .both
  public var useLayerNorm: NormPlacement = .none
  /// Use log(Σx) as the library; otherwise encode it, with a per-batch log-normal prior.
  public var useObservedLibSize: Bool = true
  public var decoder: DecoderKind = .nonlinear

  public init(nInput: Int, nBatch: Int = 0, nLabels: Int = 0, nHidden: Int = 128, nLatent: Int = 10,
              nLayers: Int = 1, dropoutRate: Double = 0.1, dispersion: Dispersion = .gene,
              logVariational: Bool = true, geneLikelihood: GeneLikelihood = .zinb,
              latentDistribution: LatentDistribution = .normal, encodeCovariates: Bool = false,
              deeplyInjectCovariates: Bool = true, useBatchNorm: NormPlacement = .both,
              useLayerNorm: NormPlacement = .none, useObservedLibSize: Bool = true,
              decoder: DecoderKind = .nonlinear) {
    self.nInput = nInput
    self.nBatch = nBatch
    self.nLabels = nLabels
    self.nHidden = nHidden
    self.nLatent = nLatent
    self.nLayers = nLayers
    self.dropoutRate = dropoutRate
    self.dispersion = dispersion
    self.logVariational = logVariational
    self.geneLikelihood = geneLikelihood
    self.latentDistribution = latentDistribution
    self.encodeCovariates = encodeCovariates
    self.deeplyInjectCovariates = deeplyInjectCovariates
    self.useBatchNorm = useBatchNorm
    self.useLayerNorm = useLayerNorm
    self.useObservedLibSize = useObservedLibSize
    self.decoder = decoder
  }

  /// LinearSCVI's (LDVAE's) network: nb likelihood, latent library, encoders with batch
  /// norm and no covariates, a linear decoder without bias with batch norm.
  public static func ldvae(nInput: Int, nBatch: Int = 0, nLabels: Int = 0, nHidden: Int = 128,
                           nLatent: Int = 10, nLayers: Int = 1, dropoutRate: Double = 0.1,
                           dispersion: Dispersion = .gene, geneLikelihood: GeneLikelihood = .nb,
                           latentDistribution: LatentDistribution = .normal,
                           useObservedLibSize: Bool = false, decoderBatchNorm: Bool = true,
                           decoderBias: Bool = false) -> VAEConfig {
    VAEConfig(nInput: nInput, nBatch: nBatch, nLabels: nLabels, nHidden: nHidden, nLatent: nLatent,
              nLayers: nLayers, dropoutRate: dropoutRate, dispersion: dispersion, geneLikelihood: geneLikelihood,
              latentDistribution: latentDistribution, encodeCovariates: false, useBatchNorm: .both,
              useLayerNorm: .none, useObservedLibSize: useObservedLibSize,
              decoder: .linear(batchNorm: decoderBatchNorm, bias: decoderBias))
  }

  /// Checks the combination before any tensor is made.
  func validate() throws {
    func bad(_ message: String) -> VAEError { .invalidConfig(message) }
    guard nInput > 0 else { throw bad("nInput must be positive, got \(nInput)") }
    guard nHidden > 0, nLatent > 0, nLayers > 0 else {
      throw bad("nHidden, nLatent and nLayers must be positive (got \(nHidden), \(nLatent), \(nLayers))")
    }
    guard nBatch >= 0, nLabels >= 0 else { throw bad("nBatch and nLabels must not be negative") }
    guard dropoutRate >= 0, dropoutRate < 1 else { throw bad("dropoutRate must be in [0, 1), got \(dropoutRate)") }
    if dispersion == .geneBatch && nBatch < 1 { throw bad("dispersion gene-batch needs nBatch ≥ 1") }
    if dispersion == .geneLabel && nLabels < 1 { throw bad("dispersion gene-label needs nLabels ≥ 1") }
    if case .linear = decoder, dispersion == .geneCell {
      throw bad("the linear (LDVAE) decoder has no gene-cell dispersion")
    }
  }
}
