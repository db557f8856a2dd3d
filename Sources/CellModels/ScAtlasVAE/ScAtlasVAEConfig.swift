import Torch

/// The likelihood of the counts (scAtlasVAE's `reconstruction_method`).
public enum AtlasReconstruction: String, Sendable, Codable, CaseIterable {
  /// Zero-inflated negative binomial (the reference's default).
  case zinb
  /// Negative binomial. The reference passes the mean where the NB logits need its log
  /// (`logits = mu − log θ`); ours uses log(mu) − log(θ), the correct NB (docs/scatlasvae.md).
  case nb
  /// Zero-inflated Gaussian on the counts, with exp(dispersion) as the standard deviation.
  case zg
  /// Squared error between log1p of the total-normalised (1e4) counts and of the decoded scale × 1e4.
  case mse
}

/// How the decoder sees each categorical covariate (the reference's `batch_embedding`).
public enum AtlasCovariateEncoding: String, Sendable, Codable, CaseIterable {
  /// A learned embedding of `batchHiddenDim` per key (`decoder.cat_embedding.{k}`).
  case embedding
  /// One-hot codes of the categories.
  case onehot
}

/// θ of the count likelihood (the reference's `dispersion`).
public enum AtlasDispersion: String, Sendable, Codable, CaseIterable {
  case gene
  case geneBatch = "gene-batch"
  case geneCell = "gene-cell"
}

/// The zero-inflation logits (the reference's `rna_dropout`): per gene and cell, or one per cell.
public enum AtlasDropout: String, Sendable, Codable, CaseIterable {
  case gene, cell
}

/// Which batches the MMD penalty on q_mu pulls together (the reference's `mmd_key`).
public enum AtlasMMDKey: String, Sendable, Codable, CaseIterable {
  /// Every pair of main batches.
  case batch
  /// Every pair of categories of each additional batch key.
  case additionalBatch = "additional_batch"
  /// Main batches, plus additional-key categories within each main batch.
  case both
}

/// How q(z|x) is drawn toward a given embedding in obsm (the reference's `constrain_latent_method`).
public enum AtlasLatentConstraint: String, Sendable, Codable, CaseIterable {
  /// Squared distance between q_mu and the target.
  case mse
  /// KL(q(z|x) ‖ N(target, I)).
  case normal
}

/// Hyper-parameters of the scAtlasVAE network, named as the reference's constructor (Swift
/// style) and with its defaults.
public struct ScAtlasVAEConfig: Sendable, Codable, Equatable {
  public var nInput: Int
  /// Hidden units of the encoder's stacked layers; the decoder has one layer of the last size.
  public var hiddenStacks: [Int] = [128]
  public var nLatent: Int = 10
  /// Categories of the main batch key (0: none).
  public var nBatch: Int = 0
  /// Categories of each additional batch key.
  public var nAdditionalBatch: [Int] = []
  /// Classes of each label key (the unlabelled name excluded); the first is the main label.
  public var nLabels: [Int] = []
  public var dispersion: AtlasDispersion = .geneCell
  public var rnaDropout: AtlasDropout = .gene
  public var reconstruction: AtlasReconstruction = .zinb
  /// Encode log1p of the counts.
  public var logVariational: Bool = true
  /// Normalise each cell to 1e4 counts before the log (the reference's `total_variational`).
  public var totalVariational: Bool = false
  /// Append the log library size to the encoder's input.
  public var encodeLibsize: Bool = false
  /// Multiply the decoded scale by the library size (zinb, nb, zg).
  public var decodeLibsize: Bool = true
  public var useLayerNorm: Bool = false
  public var dropoutRate: Double = 0.1
  public var covariateEncoding: AtlasCovariateEncoding = .embedding
  public var batchHiddenDim: Int = 8
  public var injectBatch: Bool = true
  public var injectAdditionalBatch: Bool = true
  /// Feed the main label to the decoder too (every cell must then be labelled).
  public var injectLabel: Bool = false
  public var mmdKey: AtlasMMDKey?
  public var latentConstraint: AtlasLatentConstraint?

  public init(nInput: Int, hiddenStacks: [Int] = [128], nLatent: Int = 10, nBatch: Int = 0,
              nAdditionalBatch: [Int] = [], nLabels: [Int] = []) {
    self.nInput = nInput
    self.hiddenStacks = hiddenStacks
    self.nLatent = nLatent
    self.nBatch = nBatch
    self.nAdditionalBatch = nAdditionalBatch
    self.nLabels = nLabels
  }

  /// The categorical inputs of the decoder, in the reference's order: batch, label, additional batches.
  public var decoderCovariates: [DecoderCovariate] {
    var list: [DecoderCovariate] = []
    let batch = nBatch > 0 && injectBatch
    let label = (nLabels.first ?? 0) > 0 && injectLabel
    if batch { list.append(.batch) }
    if label { list.append(.label) }
    if injectAdditionalBatch && (batch || label) {
      list += nAdditionalBatch.indices.map { .additionalBatch($0) }
    }
    return list
  }

  public enum DecoderCovariate: Sendable, Equatable {
    case batch, label, additionalBatch(Int)
  }

  func categoryCount(_ covariate: DecoderCovariate) -> Int {
    switch covariate {
    case .batch: return nBatch
    case .label: return nLabels[0]
    case .additionalBatch(let k): return nAdditionalBatch[k]
    }
  }

  /// Checks a config read from a file against the weights read with it, before the network
  /// is built: valid sizes, and no more weights implied than the file holds (`impliedWeightsFit`;
  /// the blocks are parts of what `ScAtlasVAENetwork` builds).
  func check(against weights: StateDict, file: String) throws {
    do { try validate() } catch VAEError.invalidConfig(let message) { throw SCVIModelError.file("\(file): \(message)") }
    let sizes = [nInput, nLatent, nBatch, batchHiddenDim] + hiddenStacks + nAdditionalBatch + nLabels
    let fits = impliedWeightsFit(sizes: sizes, blocks: {
      let hidden = hiddenStacks.last!, covariates = decoderCovariates.map(categoryCount)
      return zip([nInput] + hiddenStacks, hiddenStacks).map { [$0, $1] }  // encoder
        + [[hidden, nLatent, 2], [nLatent, hidden], [hidden, nInput, 2]]  // latent heads, decoder layer, rate and scale
        + (covariateEncoding == .embedding ? covariates.map { [$0, batchHiddenDim] } : [[covariates.reduce(0, +), hidden]])
        + nLabels.map { [nLatent, $0] }  // label heads
        + [[nInput, dispersion == .geneBatch ? nBatch : 1]]  // px_rate
    }, weights: weights)
    guard fits else {
      throw SCVIModelError.file("\(file): the sizes (genes \(nInput), hidden \(hiddenStacks), latent \(nLatent), batches \(nBatch), batch embedding \(batchHiddenDim)) imply more weights than the file holds (\(weights.valueCount) values)")
    }
  }


  /// The embedding width per key: `batchHiddenDim`, or with one-hot codes the main batch
  /// count (the reference sets `batch_hidden_dim = n_batch` then).
  var embeddingDim: Int { covariateEncoding == .onehot ? nBatch : batchHiddenDim }

  func validate() throws {
    func fail(_ message: String) -> VAEError { .invalidConfig("scAtlasVAE: \(message)") }
    guard nInput > 0 else { throw fail("nInput must be positive, got \(nInput)") }
    guard !hiddenStacks.isEmpty, hiddenStacks.allSatisfy({ $0 > 0 }) else {
      throw fail("hiddenStacks must be non-empty positive sizes, got \(hiddenStacks)")
    }
    guard nLatent > 0 else { throw fail("nLatent must be positive, got \(nLatent)") }
    guard nBatch >= 0, nAdditionalBatch.allSatisfy({ $0 > 0 }), nLabels.allSatisfy({ $0 > 0 }) else {
      throw fail("category counts must be positive (batch \(nBatch), additional \(nAdditionalBatch), labels \(nLabels))")
    }
    guard dropoutRate >= 0 && dropoutRate < 1 else { throw fail("dropoutRate must be in [0, 1), got \(dropoutRate)") }
    if dispersion == .geneBatch && nBatch == 0 { throw fail("gene-batch dispersion needs a batch key") }
    if covariateEncoding == .onehot && nBatch == 0 && !decoderCovariates.isEmpty {
      throw fail("one-hot covariates need a batch key")
    }
    if let mmdKey {
      if mmdKey != .additionalBatch && nBatch == 0 { throw fail("MMD on '\(mmdKey.rawValue)' needs a batch key") }
      if mmdKey != .batch && nAdditionalBatch.isEmpty { throw fail("MMD on '\(mmdKey.rawValue)' needs additional batch keys") }
    }
  }
}
