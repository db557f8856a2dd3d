import CTorch

extension Tensor {
  public var requiresGrad: Bool {
    get { withHandle { ct_requires_grad($0) == 1 } }
    set { withHandle { check(ct_set_requires_grad($0, newValue ? 1 : 0)) } }
  }
  /// Marks the tensor as a leaf that accumulates gradients, and returns it.
  @discardableResult
  public func requiringGrad(_ flag: Bool = true) -> Tensor {
    requiresGrad = flag
    return self
  }

  /// Backpropagates from this tensor (a scalar unless `gradient` is given).
  public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) {
    withExtendedLifetime((self, gradient)) {
      check(ct_backward(handle, gradient?.handle, retainGraph ? 1 : 0))
    }
  }

  /// The accumulated gradient, or nil when there is none.
  public var grad: Tensor? {
    let g = withHandle { wrap(ct_grad($0)) }
    return g.isDefined ? g : nil
  }
  /// Clears the accumulated gradient (torch's `zero_grad(set_to_none=True)`).
  public func zeroGrad() { withHandle { check(ct_set_grad($0, nil)) } }
  public func setGrad(_ g: Tensor?) {
    withExtendedLifetime((self, g)) { check(ct_set_grad(handle, g?.handle)) }
  }

  /// Shares storage, without autograd history.
  public func detach() -> Tensor { withHandle { wrap(ct_detach($0)) } }

  /// Identity forward; the gradient is multiplied by −lambda backward (DANN's reversal layer).
  public func gradientReversal(lambda: Double = 1) -> Tensor {
    withHandle { wrap(ct_gradient_reversal($0, lambda)) }
  }
}

/// Runs `body` with gradient recording off (torch.no_grad()), restoring the previous mode.
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
  let previous = ct_set_grad_enabled(0)
  defer { _ = ct_set_grad_enabled(previous) }
  return try body()
}

/// Runs `body` with gradient recording on (torch.enable_grad()).
public func withGrad<T>(_ body: () throws -> T) rethrows -> T {
  let previous = ct_set_grad_enabled(1)
  defer { _ = ct_set_grad_enabled(previous) }
  return try body()
}

public var isGradEnabled: Bool { ct_is_grad_enabled() != 0 }
