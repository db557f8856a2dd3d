/// torch.nn.TransformerEncoderLayer: self-attention and a feed-forward block, each with a
/// residual connection, post-norm (default) or pre-norm (`normFirst`). Same child names:
/// self_attn, linear1, linear2, norm1, norm2. `attentionDropout` (default: `dropout`, as torch)
/// sets the attention-probability dropout alone.
public final class TransformerEncoderLayer: Module {
  public enum Activation: Sendable { case relu, gelu }

  public let selfAttention: MultiheadAttention
  public let linear1: Linear
  public let linear2: Linear
  public let norm1: LayerNorm
  public let norm2: LayerNorm
  public let dropout: Dropout
  public let dropout1: Dropout
  public let dropout2: Dropout
  public let activation: Activation
  public let normFirst: Bool

  public init(dModel: Int, nHead: Int, dimFeedforward: Int = 2048, dropout: Double = 0.1,
              activation: Activation = .relu, layerNormEps: Double = 1e-5, batchFirst: Bool = false,
              normFirst: Bool = false, bias: Bool = true, attentionDropout: Double? = nil) {
    selfAttention = MultiheadAttention(embedDim: dModel, numHeads: nHead, dropout: attentionDropout ?? dropout, bias: bias,
                                       batchFirst: batchFirst)
    linear1 = Linear(dModel, dimFeedforward, bias: bias)
    linear2 = Linear(dimFeedforward, dModel, bias: bias)
    norm1 = LayerNorm([dModel], eps: layerNormEps, bias: bias)
    norm2 = LayerNorm([dModel], eps: layerNormEps, bias: bias)
    self.dropout = Dropout(dropout)
    dropout1 = Dropout(dropout)
    dropout2 = Dropout(dropout)
    self.activation = activation
    self.normFirst = normFirst
    super.init()
    registerModule("self_attn", selfAttention)
    registerModule("linear1", linear1)
    registerModule("dropout", self.dropout)
    registerModule("linear2", linear2)
    registerModule("norm1", norm1)
    registerModule("norm2", norm2)
    registerModule("dropout1", dropout1)
    registerModule("dropout2", dropout2)
  }

  /// `srcMask` [L, L] and `srcKeyPaddingMask` [N, L] follow MultiheadAttention's conventions.
  public func callAsFunction(_ src: Tensor, srcMask: Tensor? = nil, srcKeyPaddingMask: Tensor? = nil,
                             isCausal: Bool = false) -> Tensor {
    func attend(_ x: Tensor) -> Tensor {
      dropout1(selfAttention(x, x, x, keyPaddingMask: srcKeyPaddingMask, attnMask: srcMask, isCausal: isCausal))
    }
    func feedForward(_ x: Tensor) -> Tensor {
      let hidden = linear1(x)
      let activated = activation == .relu ? hidden.relu() : hidden.gelu()
      return dropout2(linear2(dropout(activated)))
    }
    if normFirst {
      let x = src + attend(norm1(src))
      return x + feedForward(norm2(x))
    }
    let x = norm1(src + attend(src))
    return norm2(x + feedForward(x))
  }
}
