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
/// remain the path on CUDA and for other dtypes. Each element is evaluated in double precision
/// and rounded once to float32, so the results are closer to the exact values than the
/// float32 composite formula's.
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
      let eps = 1e-8
      for i in elements {
        let x = Double(self.x[i]), mu = Double(self.mu[i])
        let theta = Double(self.theta[thetaPerGene ? i % genes : i])
        let logThetaEps = log(theta + eps), logThetaMuEps = log(theta + mu + eps)
        let isZero = x < eps, isNonZero = x > eps
        // theta·(log(theta+eps) − log(theta+mu+eps)) and its derivatives.
        let thetaTerm = theta * (logThetaEps - logThetaMuEps)
        let dThetaTermDTheta = logThetaEps - logThetaMuEps + theta / (theta + eps) - theta / (theta + mu + eps)
        let dThetaTermDMu = -theta / (theta + mu + eps)
        // The terms that vanish at x = 0.
        var countTerm = 0.0, dCountTermDTheta = 0.0, dCountTermDMu = 0.0
        if isNonZero {
          countTerm = x * (log(mu + eps) - logThetaMuEps) + logGamma(x + theta) - logGamma(theta) - logGamma(x + 1)
          if dMu != nil {
            dCountTermDTheta = -x / (theta + mu + eps) + digamma(x + theta) - digamma(theta)
            dCountTermDMu = x / (mu + eps) - x / (theta + mu + eps)
          }
        }
        let active = isZero || isNonZero  // false only at x == eps (and NaN), where both cases are 0
        guard let ziLogits else {
          value[i] = active ? Float(thetaTerm + countTerm) : 0
          if let dMu, let dTheta {
            dMu[i] = active ? Float(dThetaTermDMu + dCountTermDMu) : 0
            dTheta[i] = active ? Float(dThetaTermDTheta + dCountTermDTheta) : 0
          }
          continue
        }
        let pi = Double(ziLogits[i])
        let softplusMinusPi = softplus(-pi), piThetaLog = -pi + thetaTerm
        var v = 0.0, dPi = 0.0, dT = 0.0, dM = 0.0
        if isZero {
          let s = sigmoid(piThetaLog)
          v = softplus(piThetaLog) - softplusMinusPi
          (dPi, dT, dM) = (sigmoid(-pi) - s, s * dThetaTermDTheta, s * dThetaTermDMu)
        } else if isNonZero {
          v = -softplusMinusPi + piThetaLog + countTerm
          (dPi, dT, dM) = (sigmoid(-pi) - 1, dThetaTermDTheta + dCountTermDTheta, dThetaTermDMu + dCountTermDMu)
        }
        value[i] = Float(v)
        if let dMu, let dTheta, let dZiLogits { (dMu[i], dTheta[i], dZiLogits[i]) = (Float(dM), Float(dT), Float(dPi)) }
      }
    }
  }
}

/// torch's softplus (beta 1, threshold 20).
@inline(__always) private func softplus(_ v: Double) -> Double { v > 20 ? v : log1p(exp(v)) }

@inline(__always) private func sigmoid(_ v: Double) -> Double {
  let e = exp(-abs(v))
  return v >= 0 ? 1 / (1 + e) : e / (1 + e)
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
