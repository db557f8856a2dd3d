import CTorch
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Fused CPU kernel for scvi-tools' negative-binomial log-likelihoods (`log_nb_positive` and
/// `log_zinb_positive`, eps 1e-8). One pass over the elements computes the value and, when a
/// gradient is needed, the partial derivatives, which backward only scales by the incoming
/// gradient. lgamma and digamma run only where the count is non-zero; in scRNA-seq most counts
/// are zero, and these two functions dominate the composite formula's cost.
///
/// Same formulas as `NegativeBinomial.logProb` / `ZeroInflatedNegativeBinomial.logProb`, which
/// remain the path on CUDA and for other dtypes. The kernel avoids the formula's float32
/// cancellations (log(theta) − log(theta+mu) becomes −log1p(mu/theta); the gamma terms run in
/// double), so it is closer to the exact values than the float32 composite formula.
enum FusedCountLikelihood {
  /// Whether the kernel takes these inputs: float32 CPU tensors, `mu`, `x` (and `ziLogits`) of
  /// one shape, `theta` of that shape or one value per entry of the last dimension (per gene).
  static func applies(mu: Tensor, theta: Tensor, ziLogits: Tensor?, x: Tensor) -> Bool {
    let tensors = [mu, theta, x] + (ziLogits.map { [$0] } ?? [])
    guard tensors.allSatisfy({ $0.device == .cpu && $0.dtype == .float32 }) else { return false }
    let shape = x.shape
    guard !shape.isEmpty, mu.shape == shape, ziLogits.map({ $0.shape == shape }) ?? true else { return false }
    return theta.shape == shape || theta.shape == [shape.last!]
  }

  /// The elementwise log-likelihood of `x`, differentiable in `mu`, `theta` and `ziLogits`.
  static func logProb(x: Tensor, mu: Tensor, theta: Tensor, ziLogits: Tensor?) -> Tensor {
    let inputs = [mu, theta] + (ziLogits.map { [$0] } ?? []) + [x]
    var handles: [OpaquePointer?] = inputs.map { $0.handle }
    var output: OpaquePointer?
    withExtendedLifetime(inputs) {
      check(ct_custom_function(&handles, Int32(handles.count), forwardCallback, backwardCallback,
                               &output, 1, 3))
    }
    return wrap(output)
  }

  /// Value and partial derivatives (d/dmu, d/dtheta elementwise, d/dziLogits).
  static func evaluate(mu: Tensor, theta: Tensor, ziLogits: Tensor?, x: Tensor,
                       gradients: Bool) -> (value: Tensor, partials: [Tensor]) {
    let shape = x.shape
    let genes = shape.last!, total = x.count, rows = genes == 0 ? 0 : total / genes
    let mu = mu.contiguous(), theta = theta.contiguous(), x = x.contiguous()
    let ziLogits = ziLogits?.contiguous()
    let thetaPerGene = theta.count == genes && shape.count > 1
    let value = Tensor.zeros(shape)
    let partials = gradients ? (0..<(ziLogits == nil ? 2 : 3)).map { _ in Tensor.zeros(shape) } : []
    withExtendedLifetime((mu, theta, x, ziLogits, value, partials)) {
      let pointers = Pointers(
        mu: floats(mu), theta: floats(theta), ziLogits: ziLogits.map(floats), x: floats(x),
        value: floats(value), dMu: partials.isEmpty ? nil : floats(partials[0]),
        dTheta: partials.isEmpty ? nil : floats(partials[1]),
        dZiLogits: partials.count == 3 ? floats(partials[2]) : nil,
        genes: genes, thetaPerGene: thetaPerGene)
      let workers = max(1, min(Runtime.threads, rows / 16))
      let run = { @Sendable (worker: Int) in
        let first = rows * worker / workers, last = rows * (worker + 1) / workers
        pointers.compute(elements: first * genes..<last * genes)
      }
      if workers == 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: run) }
    }
    return (value, partials)
  }

  private static func floats(_ t: Tensor) -> UnsafeMutablePointer<Float> {
    ct_data_ptr(t.handle)!.assumingMemoryBound(to: Float.self)
  }

  private struct Pointers: @unchecked Sendable {
    let mu: UnsafeMutablePointer<Float>, theta: UnsafeMutablePointer<Float>
    let ziLogits: UnsafeMutablePointer<Float>?, x: UnsafeMutablePointer<Float>
    let value: UnsafeMutablePointer<Float>
    let dMu: UnsafeMutablePointer<Float>?, dTheta: UnsafeMutablePointer<Float>?
    let dZiLogits: UnsafeMutablePointer<Float>?
    let genes: Int, thetaPerGene: Bool

    func compute(elements: Range<Int>) {
      for i in elements {
        let x = self.x[i], mu = self.mu[i], theta = self.theta[thetaPerGene ? i % genes : i]
        let pi = ziLogits?[i] ?? 0
        let (v, dM, dT, dPi): (Float, Float, Float, Float)
        if x < 1e-8 {
          (v, dM, dT, dPi) = zeroCount(mu: mu, theta: theta, pi: pi)
        } else if x > 1e-8 {
          let r = positiveCount(x: Double(x), mu: Double(mu), theta: Double(theta), pi: Double(pi))
          (v, dM, dT, dPi) = (Float(r.0), Float(r.1), Float(r.2), Float(r.3))
        } else {
          (v, dM, dT, dPi) = (0, 0, 0, 0)  // x == eps (or NaN): both of the formula's cases are off
        }
        value[i] = v
        if let dMu, let dTheta {
          dMu[i] = dM
          dTheta[i] = dT
          dZiLogits?[i] = dPi
        }
      }
    }

    /// Value, d/dmu, d/dtheta, d/dpi at x = 0, in float: NB gives theta·log(theta/(theta+mu)),
    /// written as −theta·log1p(mu/theta) to avoid the cancellation of two logs.
    @inline(__always) func zeroCount(mu: Float, theta: Float, pi: Float) -> (Float, Float, Float, Float) {
      let eps: Float = 1e-8
      let thetaEps = theta + eps, thetaMuEps = theta + mu + eps
      let logRatio = -fastLog1p(mu / thetaEps)
      let thetaTerm = theta * logRatio
      let dTheta = logRatio + theta * mu / (thetaEps * thetaMuEps), dMu = -theta / thetaMuEps
      guard ziLogits != nil else { return (thetaTerm, dMu, dTheta, 0) }
      let (softplusMinusPi, sigmoidMinusPi) = softplusAndSigmoid(-pi)
      let (softplusT, sigmoidT) = softplusAndSigmoid(-pi + thetaTerm)
      return (softplusT - softplusMinusPi, sigmoidT * dMu, sigmoidT * dTheta, sigmoidMinusPi - sigmoidT)
    }

    /// The same at x > 0, in double: the gamma terms are large and nearly cancel.
    func positiveCount(x: Double, mu: Double, theta: Double, pi: Double) -> (Double, Double, Double, Double) {
      let eps = 1e-8
      let thetaEps = theta + eps, thetaMuEps = theta + mu + eps, muEps = mu + eps
      let logRatio = -log1p(mu / thetaEps)
      let nb = theta * logRatio + x * (log(muEps) - log(thetaMuEps))
        + logGamma(x + theta) - logGamma(theta) - logGamma(x + 1)
      var dMu = 0.0, dTheta = 0.0
      if self.dMu != nil {
        dMu = theta * (x - muEps) / (muEps * thetaMuEps)
        dTheta = logRatio + theta * mu / (thetaEps * thetaMuEps) - x / thetaMuEps + digamma(x + theta) - digamma(theta)
      }
      guard ziLogits != nil else { return (nb, dMu, dTheta, 0) }
      let softplusMinusPi = pi < -20 ? -pi : log1p(exp(-pi)), sigmoidMinusPi = 1 / (1 + exp(pi))
      return (nb - pi - softplusMinusPi, dMu, dTheta, sigmoidMinusPi - 1)
    }
  }
}

/// softplus(v) (torch's, threshold 20) and sigmoid(v), sharing one exponential.
@inline(__always) private func softplusAndSigmoid(_ v: Float) -> (Float, Float) {
  let e = expf(-abs(v))
  return (v > 20 ? v : max(v, 0) + fastLog1p(e), v >= 0 ? 1 / (1 + e) : e / (1 + e))
}

/// log1p(y) for y ≥ 0 from logf, a few ulp accurate (Goldberg's correction of the rounding
/// in 1 + y); glibc's log1pf is several times slower than its logf.
@inline(__always) private func fastLog1p(_ y: Float) -> Float {
  let u = 1 + y
  return u == 1 ? y : logf(u) * (y / (u - 1))
}

@inline(__always) private func logGamma(_ v: Double) -> Double {
  var sign: Int32 = 0
  return lgamma_r(v, &sign)
}

/// ψ(v) for v > 0: recurrence up to 6, then the asymptotic series.
private func digamma(_ v: Double) -> Double {
  guard v > 0 else { return v == 0 ? -.infinity : .nan }
  var v = v, shift = 0.0
  while v < 6 {
    shift -= 1 / v
    v += 1
  }
  let f = 1 / (v * v)
  let series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))))
  return shift + log(v) - 0.5 / v - series
}

// The autograd callbacks. Inputs are (mu, theta, [ziLogits,] x); the saved tensors are the
// partial derivatives in input order, so backward scales each by the output's gradient (the
// engine sums a per-gene theta's gradient over rows).
private let forwardCallback: CTForwardCallback = { inputs, nInputs, outputs, _, saved, _, nSaved, needsGrad in
  let tensors = (0..<Int(nInputs)).map { Tensor(handle: inputs![$0]!) }
  let result = FusedCountLikelihood.evaluate(
    mu: tensors[0], theta: tensors[1], ziLogits: nInputs == 4 ? tensors[2] : nil, x: tensors.last!,
    gradients: needsGrad != 0)
  outputs![0] = result.value.detachHandle()
  for (i, partial) in result.partials.enumerated() { saved![i] = partial.detachHandle() }
  nSaved!.pointee = Int32(result.partials.count)
  return 0
}

private let backwardCallback: CTBackwardCallback = { saved, nSaved, gradOutputs, _, gradInputs, nInputs in
  guard Int(nSaved) == Int(nInputs) - 1 else { return 1 }
  let gradOutput = Tensor(handle: gradOutputs![0]!)
  for i in 0..<Int(nSaved) {
    gradInputs![i] = (gradOutput * Tensor(handle: saved![i]!)).detachHandle()
  }
  return 0
}
