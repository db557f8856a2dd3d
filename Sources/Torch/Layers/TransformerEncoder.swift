/// torch.nn.TransformerEncoder: `layers.{i}` applied in order, then an optional final `norm`.
public final class TransformerEncoder: Module {
  public let layers: ModuleList<TransformerEncoderLayer>
  public let norm: LayerNorm?

  public init(_ layers: [TransformerEncoderLayer], norm: LayerNorm? = nil) {
    self.layers = ModuleList(layers)
    self.norm = norm
    super.init()
    registerModule("layers", self.layers)
    if let norm { registerModule("norm", norm) }
  }

  /// torch.nn.TransformerEncoder(layer, count): `count` copies of one layer, so that every layer
  /// starts from the same weights (torch deep-copies the layer it is given).
  public convenience init(copiesOf makeLayer: () -> TransformerEncoderLayer, count: Int, norm: LayerNorm? = nil) throws {
    let layers = (0..<count).map { _ in makeLayer() }
    if let first = layers.first {
      let weights = first.stateDict()
      for layer in layers.dropFirst() { try layer.loadStateDict(weights) }
    }
    self.init(layers, norm: norm)
  }

  /// `srcKeyPaddingMask` [N, L]: true at positions that may not be attended (padding).
  public func callAsFunction(_ src: Tensor, mask: Tensor? = nil, srcKeyPaddingMask: Tensor? = nil) -> Tensor {
    var x = src
    for layer in layers.modules { x = layer(x, srcMask: mask, srcKeyPaddingMask: srcKeyPaddingMask) }
    return norm.map { $0(x) } ?? x
  }
}
