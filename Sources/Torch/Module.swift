/// A network component with PyTorch-named parameters, buffers and children.
///
/// Subclasses register their tensors and children under the names PyTorch uses, so
/// `stateDict()` keys match the reference implementation's and checkpoints load by name.
open class Module {
  public private(set) var isTraining = true
  private var parameterEntries: [(String, Tensor)] = []
  private var bufferEntries: [(String, Tensor)] = []
  private var childEntries: [(String, Module)] = []

  public init() {}

  /// Registers a trainable tensor (requires grad).
  @discardableResult
  public func registerParameter(_ name: String, _ tensor: Tensor) -> Tensor {
    tensor.requiresGrad = true
    parameterEntries.append((name, tensor))
    return tensor
  }

  /// Registers a non-trainable tensor saved in the state dict (running statistics, counters).
  @discardableResult
  public func registerBuffer(_ name: String, _ tensor: Tensor) -> Tensor {
    bufferEntries.append((name, tensor))
    return tensor
  }

  @discardableResult
  public func registerModule<M: Module>(_ name: String, _ module: M) -> M {
    childEntries.append((name, module))
    return module
  }

  public var children: [(name: String, module: Module)] { childEntries.map { ($0.0, $0.1) } }

  /// Every parameter with its full dotted name, in PyTorch's order.
  public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
    var out = parameterEntries.map { (prefix + $0.0, $0.1) }
    for (name, child) in childEntries { out += child.namedParameters(prefix: prefix + name + ".") }
    return out
  }
  public var parameters: [Tensor] { namedParameters().map { $0.1 } }

  public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
    var out = bufferEntries.map { (prefix + $0.0, $0.1) }
    for (name, child) in childEntries { out += child.namedBuffers(prefix: prefix + name + ".") }
    return out
  }

  /// Parameters and buffers, keyed and ordered as PyTorch's `state_dict()`.
  public func stateDict() -> StateDict {
    var dict = StateDict()
    collectState(prefix: "", into: &dict)
    return dict
  }
  private func collectState(prefix: String, into dict: inout StateDict) {
    for (name, t) in parameterEntries { dict[prefix + name] = t }
    for (name, t) in bufferEntries { dict[prefix + name] = t }
    for (name, child) in childEntries { child.collectState(prefix: prefix + name + ".", into: &dict) }
  }

  /// Copies values from `source` into this module's tensors by key.
  ///
  /// `remapKey` renames incoming keys first (nil drops one). Shapes must match exactly.
  /// With `strict`, any missing or unexpected key is an error. Nothing is modified unless
  /// the whole load is valid.
  @discardableResult
  public func loadStateDict(_ source: StateDict, strict: Bool = true, remapKey: ((String) -> String?)? = nil)
    throws -> (missing: [String], unexpected: [String])
  {
    let incoming = remapKey.map { source.mapKeys($0) } ?? source
    let own = stateDict()
    let missing = own.keys.filter { incoming[$0] == nil }
    let unexpected = incoming.keys.filter { own[$0] == nil }
    if strict && (!missing.isEmpty || !unexpected.isEmpty) {
      throw TorchError.stateDict(
        "missing keys \(missing.prefix(10))\(missing.count > 10 ? "…" : ""), unexpected keys \(unexpected.prefix(10))\(unexpected.count > 10 ? "…" : "")")
    }
    for (key, target) in own {
      guard let value = incoming[key] else { continue }
      guard value.shape == target.shape else {
        throw TorchError.stateDict("shape mismatch for '\(key)': checkpoint \(value.shape), model \(target.shape)")
      }
    }
    try withTorchErrors {
      withNoGrad {
        for (key, target) in own { if let value = incoming[key] { target.copy_(value) } }
      }
    }
    return (missing, unexpected)
  }

  /// Sets training mode here and in every child (dropout, batch-norm statistics).
  public func train(_ on: Bool = true) {
    isTraining = on
    for (_, child) in childEntries { child.train(on) }
  }
  public func eval() { train(false) }

  /// Moves every parameter and buffer to `device` (and floating tensors to `dtype`), in place.
  public func to(_ device: Device, dtype: DType? = nil) {
    withNoGrad {
      for (_, t) in namedParameters() {
        let moved = t.to(device)
        let converted = dtype.map { moved.to($0) } ?? moved
        t.assign(converted.detach())
        t.requiresGrad = true
      }
      for (_, t) in namedBuffers() {
        var moved = t.to(device)
        if let dtype, t.dtype.isFloatingPoint { moved = moved.to(dtype) }
        t.assign(moved)
      }
    }
  }

  /// Clears every parameter's gradient.
  public func zeroGrad() { for p in parameters { p.zeroGrad() } }

  /// Total number of parameter elements.
  public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
}

/// A module with one tensor in and one out; `Sequential` chains these.
public protocol UnaryLayer: Module {
  func callAsFunction(_ x: Tensor) -> Tensor
}
