import Torch

/// An expression head: per-token predictions [B, L] (and zero probabilities) from the
/// transformer output x [B, L, dIn] and the input values [B, L].
public protocol ExpressionDecoding: Module {
  func decode(_ x: Tensor, values: Tensor) -> (pred: Tensor, zeroProbs: Tensor?)
}

/// Per-token expression (`decoder`): `fc` = Linear(dIn, d) LeakyReLU Linear(d, d) LeakyReLU
/// Linear(d, 1); with `explicitZeroProb` a same-shaped `zero_logit` MLP whose sigmoid is the
/// probability (the reference calls it zero_probs; its Bernoulli NLL treats it as P(non-zero)).
public final class ExprDecoder: Module {
  public let fc: Sequential
  public let zeroLogit: Sequential?

  public init(_ dModel: Int, explicitZeroProb: Bool, useBatchLabels: Bool) {
    let dIn = useBatchLabels ? 2 * dModel : dModel
    func mlp() -> Sequential { Sequential(Linear(dIn, dModel), LeakyReLU(), Linear(dModel, dModel), LeakyReLU(), Linear(dModel, 1)) }
    fc = mlp()
    zeroLogit = explicitZeroProb ? mlp() : nil
    super.init()
    registerModule("fc", fc)
    if let zeroLogit { registerModule("zero_logit", zeroLogit) }
  }

  /// x [B, L, dIn] → prediction [B, L] and zero probabilities [B, L].
  public func callAsFunction(_ x: Tensor) -> (pred: Tensor, zeroProbs: Tensor?) {
    (fc(x).squeeze(dim: -1), zeroLogit.map { $0(x).squeeze(dim: -1).sigmoid() })
  }
}

extension ExprDecoder: ExpressionDecoding {
  public func decode(_ x: Tensor, values: Tensor) -> (pred: Tensor, zeroProbs: Tensor?) { self(x) }
}

/// The perturbation model's decoder (`decoder`): coefficient × input value + bias, each from its
/// own ExprDecoder (`coeff_decoder`, `bias_decoder`), optionally through an activation; with
/// `adaptiveBias` the bias is scaled by the cell's mean non-zero input value. The zero
/// probabilities are the coefficient decoder's, as the reference.
public final class AffineExprDecoder: Module, ExpressionDecoding {
  public let coeffDecoder: ExprDecoder
  public let biasDecoder: ExprDecoder
  public let activation: ScGPTConfig.DecoderActivation?
  public let adaptiveBias: Bool

  public init(_ dModel: Int, explicitZeroProb: Bool, activation: ScGPTConfig.DecoderActivation?, adaptiveBias: Bool) {
    coeffDecoder = ExprDecoder(dModel, explicitZeroProb: explicitZeroProb, useBatchLabels: false)
    biasDecoder = ExprDecoder(dModel, explicitZeroProb: explicitZeroProb, useBatchLabels: false)
    self.activation = activation
    self.adaptiveBias = adaptiveBias
    super.init()
    registerModule("coeff_decoder", coeffDecoder)
    registerModule("bias_decoder", biasDecoder)
  }

  public func decode(_ x: Tensor, values: Tensor) -> (pred: Tensor, zeroProbs: Tensor?) {
    let coeff = coeffDecoder(x)
    var a = coeff.pred, b = biasDecoder(x).pred
    if let activation {
      a = Self.apply(activation, a)
      b = Self.apply(activation, b)
    }
    if adaptiveBias {
      // The reference divides by the count of non-zero values as it is (a cell of zeros gives
      // 0/0); here at least one, so such a cell gets a zero bias instead of NaN.
      let nonZero = values.ne(0).to(values.dtype).sum(dim: 1, keepDim: true).clamp(min: 1)
      b = b * (values.sum(dim: 1, keepDim: true) / nonZero)
    }
    return (a * values + b, coeff.zeroProbs)
  }

  static func apply(_ activation: ScGPTConfig.DecoderActivation, _ x: Tensor) -> Tensor {
    switch activation {
    case .relu: return x.relu()
    case .sigmoid: return x.sigmoid()
    case .tanh: return x.tanh()
    case .softplus: return x.softplus()
    }
  }
}

/// Masked value prediction from the cell embedding (`mvc_decoder`), scGPT's four styles.
/// Inner product: q = sigmoid(gene2query(gene embeddings)), pred[b, i] = ⟨W q[b, i], c[b]⟩.
public final class MVCDecoder: Module {
  public let style: ScGPTConfig.MVCStyle
  public let gene2query: Linear
  public let w: Linear?
  public let wZeroLogit: Linear?
  public let fc1: Linear?
  public let hiddenActivation: PReLU?
  public let fc2: Linear?

  /// `dIn` is the cell-embedding width (2d with batch labels). The query styles are broken in the
  /// reference (they crash in forward); here their first layer takes `dIn`, so they also work
  /// with batch labels. With `modalities` (the multi-omic model) the gene embeddings are 2d wide
  /// too (concatenated with the batch + modality embedding), as the cell embedding.
  public init(_ dModel: Int, style: ScGPTConfig.MVCStyle, explicitZeroProb: Bool, useBatchLabels: Bool, modalities: Bool = false) {
    let dIn = useBatchLabels || modalities ? 2 * dModel : dModel
    let dModel = modalities ? 2 * dModel : dModel
    self.style = style
    switch style {
    case .innerProduct, .innerProductDetach:
      gene2query = Linear(dModel, dModel)
      w = Linear(dModel, dIn, bias: false)
      wZeroLogit = explicitZeroProb ? Linear(dModel, dIn) : nil
      fc1 = nil; hiddenActivation = nil; fc2 = nil
    case .concatQuery:
      gene2query = Linear(dModel, 64)
      fc1 = Linear(dIn + 64, 64)
      w = nil; wZeroLogit = nil
      hiddenActivation = PReLU(); fc2 = Linear(64, 1)
    case .sumQuery:
      gene2query = Linear(dModel, dIn)
      fc1 = Linear(dIn, 64)
      w = nil; wZeroLogit = nil
      hiddenActivation = PReLU(); fc2 = Linear(64, 1)
    }
    super.init()
    registerModule("gene2query", gene2query)
    if let w { registerModule("W", w) }
    if let wZeroLogit { registerModule("W_zero_logit", wZeroLogit) }
    if let fc1 { registerModule("fc1", fc1) }
    if let hiddenActivation { registerModule("hidden_activation", hiddenActivation) }
    if let fc2 { registerModule("fc2", fc2) }
  }

  /// cell [B, dIn], gene embeddings [B, L, d] → prediction [B, L] (and zero probabilities).
  public func callAsFunction(cellEmbedding cell: Tensor, geneEmbeddings: Tensor) -> (pred: Tensor, zeroProbs: Tensor?) {
    let genes = style == .innerProductDetach ? geneEmbeddings.detach() : geneEmbeddings
    let query = gene2query(genes).sigmoid()
    switch style {
    case .innerProduct, .innerProductDetach:
      let c = cell.unsqueeze(dim: 2)
      let pred = w!(query).bmm(c).squeeze(dim: 2)
      let zero = wZeroLogit.map { $0(query).bmm(c).squeeze(dim: 2).sigmoid() }
      return (pred, zero)
    case .concatQuery:
      let expanded = cell.unsqueeze(dim: 1).expand([cell.size(0), genes.size(1), cell.size(1)])
      let h = hiddenActivation!(fc1!(Tensor.cat([expanded, query], dim: 2)))
      return (fc2!(h).squeeze(dim: 2), nil)
    case .sumQuery:
      let h = hiddenActivation!(fc1!(cell.unsqueeze(dim: 1) + query))
      return (fc2!(h).squeeze(dim: 2), nil)
    }
  }
}

/// Cell-type classifier (`cls_decoder`): (nlayers − 1) × [Linear(d, d), ReLU, LayerNorm] as
/// `_decoder`, then `out_layer` Linear(d, nCls). The batch discriminator
/// (`grad_reverse_discriminator`) has the same layout with LeakyReLU, behind gradient reversal.
public final class ScGPTClassifier: Module, UnaryLayer {
  public let decoder: Sequential
  public let outLayer: Linear
  public let reverseGradient: Bool

  public init(_ dModel: Int, nClasses: Int, nLayers: Int, leaky: Bool = false, reverseGradient: Bool = false) {
    var layers: [(any UnaryLayer)?] = []
    for _ in 0..<max(nLayers - 1, 0) {
      layers += [Linear(dModel, dModel), leaky ? LeakyReLU() : ReLU(), LayerNorm(dModel)]
    }
    decoder = Sequential(layers)
    outLayer = Linear(dModel, nClasses)
    self.reverseGradient = reverseGradient
    super.init()
    registerModule("_decoder", decoder)
    registerModule("out_layer", outLayer)
  }

  /// [B, d] → logits [B, nClasses].
  public func callAsFunction(_ x: Tensor) -> Tensor {
    outLayer(decoder(reverseGradient ? x.gradientReversal(lambda: 1) : x))
  }
}
