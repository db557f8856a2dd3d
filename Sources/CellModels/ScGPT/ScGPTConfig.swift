/// The architecture of scGPT's `TransformerModel`, with the reference's defaults.
public struct ScGPTConfig: Equatable, Sendable {
  public enum InputEmbeddingStyle: String, Sendable, CaseIterable {
    /// Values through Linear(1, d) → ReLU → Linear(d, d) → LayerNorm (clamped at 512).
    case continuous
    /// Integer values (bins) through an Embedding over `nInputBins`.
    case category
    /// Gene embedding multiplied by the value.
    case scaling
  }
  public enum CellEmbeddingStyle: String, Sendable, CaseIterable {
    case cls
    /// Mean over all positions, padding included (as the reference).
    case avgPool = "avg-pool"
    /// Sum weighted by the input values, L2-normalised (as the reference).
    case wPool = "w-pool"
  }
  public enum MVCStyle: String, Sendable, CaseIterable {
    case innerProduct = "inner product"
    case innerProductDetach = "inner product, detach"
    case concatQuery = "concat query"
    case sumQuery = "sum query"
  }
  /// Normalisation of the input embeddings before the transformer.
  public enum BatchNormalization: String, Sendable, CaseIterable {
    case none
    /// One affine-free BatchNorm1d per batch label (`dsbn.bns.{i}`); the minibatch's first
    /// cell picks the one used for the whole minibatch, as the reference.
    case domainSpecific = "dsbn"
    /// One affine BatchNorm1d (`bn`).
    case single = "batchnorm"
  }

  /// Vocabulary size.
  public var ntoken: Int
  /// Embedding size (`embsize` in args.json).
  public var dModel: Int
  public var nHead: Int
  /// Feed-forward width.
  public var dHid: Int
  public var nLayers: Int
  /// Layers of the classification head (its last is the output layer).
  public var nLayersCls = 3
  public var nCls = 1
  public var dropout = 0.5
  /// Dropout on the attention probabilities; nil: `dropout`, as torch's TransformerEncoderLayer.
  /// On CPU libtorch's fused (memory-efficient) attention takes no dropout, so training with a
  /// non-zero value computes full score matrices; 0 keeps attention fused while training.
  public var attentionDropout: Double?
  /// The id of `<pad>` (the gene embedding's padding index).
  public var padTokenId: Int
  public var padValue: Double = 0
  public var doMVC = false
  public var doDAB = false
  public var useBatchLabels = false
  public var numBatchLabels: Int?
  public var batchNormalization: BatchNormalization = .none
  public var inputEmbeddingStyle: InputEmbeddingStyle = .continuous
  /// Number of value embeddings for `category` input (n_bins + 2 in the tutorials).
  public var nInputBins: Int?
  public var cellEmbeddingStyle: CellEmbeddingStyle = .cls
  public var mvcDecoderStyle: MVCStyle = .innerProduct
  public var ecsThreshold = 0.3
  public var explicitZeroProb = false
  /// Modality tokens (the multi-omic model's `use_mod`): this many modality types, embedded per
  /// token (`mod_encoder`) and added to the batch embedding before the decoders; nil: none.
  public var numModalities: Int?
  /// The modality vocabulary's `<pad>` id (the modality embedding's padding index).
  public var modalityPadId = 0
  /// Pre-norm layers, as torch's `norm_first` (x + attn(norm1(x))). The reference's torch path
  /// ignores `pre_norm` (always post-norm); its flash layers honour it differently, normalising
  /// the residual stream itself (x = norm1(x); x = x + attn(x)), so a pre-norm checkpoint trained
  /// with flash-attention does not give the reference's outputs here. Official checkpoints are
  /// post-norm.
  public var preNorm = false
  /// The perturbation model (the reference's `TransformerGenerator`): a perturbation-flag
  /// embedding (`pert_encoder`, 3 flags: 0 not perturbed, 1 perturbed, this id the padding) added
  /// to the gene and value embeddings, and the affine expression decoder; nil: the plain model.
  public var perturbationPadId: Int?
  /// Generative pretraining (the reference's pretraining branch, `use_generative_training`): a
  /// flag embedding `flag_encoder` (2 rows; row 1 marks genes to generate).
  public var generative = false
  /// The affine decoder's activation on its coefficient and bias (`decoder_activation`).
  public var decoderActivation: DecoderActivation?
  /// The affine decoder's bias scaled by the mean non-zero input value of the cell.
  public var decoderAdaptiveBias = false

  public enum DecoderActivation: String, Sendable, CaseIterable {
    case relu = "ReLU"
    case sigmoid = "Sigmoid"
    case tanh = "Tanh"
    case softplus = "Softplus"
  }

  public init(ntoken: Int, dModel: Int, nHead: Int, dHid: Int, nLayers: Int, padTokenId: Int) {
    self.ntoken = ntoken
    self.dModel = dModel
    self.nHead = nHead
    self.dHid = dHid
    self.nLayers = nLayers
    self.padTokenId = padTokenId
  }

  /// Whether the model needs batch labels in its input (the single BatchNorm does not use them,
  /// although the reference asks for them).
  public var needsBatchLabels: Bool { useBatchLabels || batchNormalization == .domainSpecific }

  /// Whether the decoders get a second d-wide input (the batch and/or modality embedding).
  public var conditionedDecoders: Bool { useBatchLabels || numModalities != nil }

  public func validate() throws {
    func fail(_ m: String) -> ScGPTError { .invalidConfig(m) }
    guard ntoken > 0, dModel > 0, nHead > 0, dHid > 0, nLayers >= 0 else {
      throw fail("sizes must be positive (ntoken \(ntoken), d_model \(dModel), nhead \(nHead), d_hid \(dHid), nlayers \(nLayers))")
    }
    guard dModel % nHead == 0 else { throw fail("d_model \(dModel) is not divisible by nhead \(nHead)") }
    guard (0..<ntoken).contains(padTokenId) else { throw fail("pad token id \(padTokenId) is outside the vocabulary of \(ntoken)") }
    guard (0..<1).contains(dropout), (0..<1).contains(attentionDropout ?? 0) else { throw fail("dropout must lie in [0, 1)") }
    guard nLayersCls >= 1, nCls >= 1 else { throw fail("nlayers_cls and n_cls must be at least 1") }
    if useBatchLabels || batchNormalization == .domainSpecific || doDAB {
      guard let n = numBatchLabels, n >= 1 else {
        throw fail("batch labels, DSBN and the batch discriminator need num_batch_labels >= 1")
      }
    }
    if let n = numModalities {
      guard n >= 1, (0..<n).contains(modalityPadId) else {
        throw fail("ntokens_mod must be at least 1 and the modality pad id (\(modalityPadId)) within it")
      }
    }
    if inputEmbeddingStyle == .category {
      guard let n = nInputBins, n > 0 else { throw fail("input_emb_style category needs n_input_bins") }
      // The pad value is the value embedding's padding row, negative from the end (torch's
      // padding_idx, which refuses one outside the table).
      guard padValue == padValue.rounded(), padValue >= -Double(n), padValue < Double(n) else {
        throw fail("input_emb_style category: pad_value \(padValue) must be a whole number in [-\(n), \(n)), a row of the value embedding of n_input_bins \(n)")
      }
    }
    if let id = perturbationPadId {
      guard (0..<3).contains(id) else { throw fail("pert_pad_id must be 0, 1 or 2 (the flag embedding has 3 rows), got \(id)") }
      guard inputEmbeddingStyle == .continuous, !needsBatchLabels, !doDAB, numModalities == nil, batchNormalization == .none else {
        throw fail("the perturbation model takes continuous values only, without batch labels, batch norm, a discriminator or modalities (as the reference's TransformerGenerator)")
      }
    }
    if explicitZeroProb && (mvcDecoderStyle == .concatQuery || mvcDecoderStyle == .sumQuery) && doMVC {
      throw fail("the MVC decoder '\(mvcDecoderStyle.rawValue)' has no explicit zero probability (the reference raises NotImplementedError)")
    }
  }
}
