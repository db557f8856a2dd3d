/// Applies its layers in order. Children are keyed "0", "1", … like torch.nn.Sequential,
/// or by the given names; a nil entry keeps its index but does nothing (as PyTorch's None).
public final class Sequential: Module, UnaryLayer {
  public let layers: [(any UnaryLayer)?]

  public init(_ layers: [(any UnaryLayer)?]) {
    self.layers = layers
    super.init()
    for (i, layer) in layers.enumerated() { if let layer { registerModule(String(i), layer) } }
  }
  public convenience init(_ layers: any UnaryLayer...) { self.init(layers.map { $0 }) }

  public init(named: [(String, any UnaryLayer)]) {
    layers = named.map { $0.1 }
    super.init()
    for (name, layer) in named { registerModule(name, layer) }
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    layers.reduce(x) { y, layer in layer.map { $0(y) } ?? y }
  }
}
