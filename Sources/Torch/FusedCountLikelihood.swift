import CTorch
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
    let value = uninitialized(shape)
    let partials = gradients ? (0..<(ziLogits == nil ? 2 : 3)).map { _ in uninitialized(shape) } : []
    // log Γ(theta) and ψ(theta) once per gene when theta is per gene.
    let thetaValues = thetaPerGene ? theta.toArray(Float.self).map(Double.init) : []
    let thetaLogGamma = thetaValues.map(logGamma), thetaDigamma = gradients ? thetaValues.map(digamma) : []
    withExtendedLifetime((mu, theta, x, ziLogits, value, partials)) {
      thetaLogGamma.withUnsafeBufferPointer { logGammaTheta in
        thetaDigamma.withUnsafeBufferPointer { digammaTheta in
          var pointers = Pointers(
            mu: floats(mu), theta: floats(theta), ziLogits: ziLogits.map(floats), x: floats(x),
            value: floats(value), dMu: partials.isEmpty ? nil : floats(partials[0]),
            dTheta: partials.isEmpty ? nil : floats(partials[1]),
            dZiLogits: partials.count == 3 ? floats(partials[2]) : nil,
            genes: genes, thetaPerGene: thetaPerGene,
            thetaLogGamma: logGammaTheta.baseAddress, thetaDigamma: digammaTheta.baseAddress)
          // On libtorch's intra-op threads, 8 rows at least per chunk.
          check(ct_parallel_for(0, Int64(rows), 8, { begin, end, context in
            context!.assumingMemoryBound(to: Pointers.self).pointee.compute(rows: Int(begin)..<Int(end))
          }, &pointers))
        }
      }
    }
    return (value, partials)
  }

  private static func uninitialized(_ shape: [Int]) -> Tensor {
    let dims = shape.map(Int64.init)
    return wrap(ct_empty(dims, Int32(dims.count), Int32(CT_FLOAT32), Int32(CT_CPU), -1))
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
    let thetaLogGamma: UnsafePointer<Double>?, thetaDigamma: UnsafePointer<Double>?

    func compute(rows: Range<Int>) {
      for row in rows {
        let base = row * genes
        var gene = 0
        while gene + 8 <= genes {
          computeEight(at: base + gene, gene: gene)
          gene += 8
        }
        for i in (base + gene)..<(base + genes) { computeOne(at: i) }
      }
    }

    /// Eight elements at once through the zero-count formula; lanes with other counts are
    /// then redone one by one.
    @inline(__always) func computeEight(at i: Int, gene: Int) {
      let x = load(self.x, i), mu = load(self.mu, i), theta = load(self.theta, thetaPerGene ? gene : i)
      let (v, dM, dT, dPi) = zeroCount(mu: mu, theta: theta, pi: ziLogits.map { load($0, i) } ?? .zero)
      store(v, value, i)
      if let dMu, let dTheta {
        store(dM, dMu, i)
        store(dT, dTheta, i)
        if let dZiLogits { store(dPi, dZiLogits, i) }
      }
      let zero = x .< 1e-8
      if !all(zero) {
        for lane in 0..<8 where !zero[lane] { computeOne(at: i + lane) }
      }
    }

    func computeOne(at i: Int) {
      let x = self.x[i], mu = self.mu[i], theta = self.theta[thetaPerGene ? i % genes : i]
      let pi = ziLogits?[i] ?? 0
      let (v, dM, dT, dPi): (Float, Float, Float, Float)
      if x < 1e-8 {
        let r = zeroCount(mu: Vector(repeating: mu), theta: Vector(repeating: theta), pi: Vector(repeating: pi))
        (v, dM, dT, dPi) = (r.0[0], r.1[0], r.2[0], r.3[0])
      } else if x > 1e-8 {
        let r = positiveCount(x: Double(x), mu: Double(mu), theta: Double(theta), pi: Double(pi), gene: i % genes)
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

    /// Value, d/dmu, d/dtheta, d/dpi at x = 0, in float: NB gives theta·log(theta/(theta+mu)),
    /// written as −theta·log1p(mu/theta) to avoid the cancellation of two logs.
    @inline(__always) func zeroCount(mu: Vector, theta: Vector, pi: Vector) -> (Vector, Vector, Vector, Vector) {
      let eps: Float = 1e-8
      let thetaEps = theta + eps, thetaMuEps = theta + mu + eps
      let logRatio = -log1p(mu / thetaEps)
      let thetaTerm = theta * logRatio
      let dTheta = logRatio + theta * mu / (thetaEps * thetaMuEps), dMu = -theta / thetaMuEps
      guard ziLogits != nil else { return (thetaTerm, dMu, dTheta, .zero) }
      let (softplusMinusPi, sigmoidMinusPi) = softplusAndSigmoid(-pi)
      let (softplusT, sigmoidT) = softplusAndSigmoid(-pi + thetaTerm)
      return (softplusT - softplusMinusPi, sigmoidT * dMu, sigmoidT * dTheta, sigmoidMinusPi - sigmoidT)
    }

    /// The same at x > 0, in double: the gamma terms are large and nearly cancel.
    func positiveCount(x: Double, mu: Double, theta: Double, pi: Double, gene: Int) -> (Double, Double, Double, Double) {
      let eps = 1e-8
      let thetaEps = theta + eps, thetaMuEps = theta + mu + eps, muEps = mu + eps
      let logRatio = log(thetaEps / thetaMuEps)
      let logGammaTheta = thetaPerGene ? thetaLogGamma![gene] : logGamma(theta)
      let nb = theta * logRatio + x * log(muEps / thetaMuEps) + logGamma(x + theta) - logGammaTheta - logFactorial(x)
      var dMu = 0.0, dTheta = 0.0
      if self.dMu != nil {
        let digammaTheta = thetaPerGene ? thetaDigamma![gene] : digamma(theta)
        dMu = theta * (x - muEps) / (muEps * thetaMuEps)
        dTheta = logRatio + theta * mu / (thetaEps * thetaMuEps) - x / thetaMuEps + digamma(x + theta) - digammaTheta
      }
      guard ziLogits != nil else { return (nb, dMu, dTheta, 0) }
      let softplusMinusPi = pi < -20 ? -pi : log1p(exp(-pi)), sigmoidMinusPi = 1 / (1 + exp(pi))
      return (nb - pi - softplusMinusPi, dMu, dTheta, sigmoidMinusPi - 1)
    }
  }
}

private typealias Vector = SIMD8<Float>

@inline(__always) private func load(_ p: UnsafeMutablePointer<Float>, _ i: Int) -> Vector {
  UnsafeRawPointer(p + i).loadUnaligned(as: Vector.self)
}
@inline(__always) private func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
  UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: Vector.self)
}

/// softplus(v) (torch's, threshold 20) and sigmoid(v), sharing one exponential.
@inline(__always) private func softplusAndSigmoid(_ v: Vector) -> (Vector, Vector) {
  let negative = v .< 0
  let e = exp(v.replacing(with: -v, where: .!negative) )  // exp(−|v|)
  let softplus = (v.replacing(with: 0, where: negative) + log1p(e)).replacing(with: v, where: v .> 20)
  let onePlus = 1 + e
  return (softplus, (1 / onePlus).replacing(with: e / onePlus, where: negative))
}

/// log1p(y), y ≥ 0, a few ulp accurate: log(1 + y) with Goldberg's correction for the
/// rounding of 1 + y.
@inline(__always) private func log1p(_ y: Vector) -> Vector {
  let u = 1 + y
  return (log(u) * (y / (u - 1))).replacing(with: y, where: u .== 1)
}

/// 1.5·2^23: a float whose last mantissa bits hold small integers exactly (the usual
/// round-to-integer and int/float conversion trick, which generic SIMD conversions lack).
private let roundingShift: Float = 12_582_912
private let roundingShiftBits: Int32 = 0x4B40_0000

/// exp for finite inputs (Cephes' expf: range reduction by ln 2, degree-5 polynomial).
@inline(__always) private func exp(_ v: Vector) -> Vector {
  let x = v.replacing(with: -87.3, where: v .< -87.3).replacing(with: 88.3, where: v .> 88.3)
  // n = round(x / ln 2): adding 1.5·2^23 rounds to an integer, held in the low mantissa bits.
  let shifted = x * 1.44269504088896341 + roundingShift
  let n = shifted - roundingShift
  let r = x - n * 0.693359375 + n * 2.12194440e-4
  var p = Vector(repeating: 1.9875691500e-4)
  p = p * r + 1.3981999507e-3
  p = p * r + 8.3334519073e-3
  p = p * r + 4.1665795894e-2
  p = p * r + 1.6666665459e-1
  p = p * r + 5.0000001201e-1
  let y = p * (r * r) + r + 1
  let scale = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- roundingShiftBits &+ 127) &<< 23
  return y * unsafeBitCast(scale, to: Vector.self)
}

/// Natural log for positive normal inputs (Cephes' logf: mantissa in [√½, √2), degree-8
/// polynomial).
@inline(__always) private func log(_ v: Vector) -> Vector {
  let bits = unsafeBitCast(v, to: SIMD8<Int32>.self)
  var exponent = unsafeBitCast((bits &>> 23) &- 126 &+ roundingShiftBits, to: Vector.self) - roundingShift
  var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: Vector.self)  // in [0.5, 1)
  let small = m .< 0.707106781186547524
  exponent = exponent.replacing(with: exponent - 1, where: small)
  m = m.replacing(with: m + m, where: small) - 1
  let z = m * m
  var p = Vector(repeating: 7.0376836292e-2)
  p = p * m - 1.1514610310e-1
  p = p * m + 1.1676998740e-1
  p = p * m - 1.2420140846e-1
  p = p * m + 1.4249322787e-1
  p = p * m - 1.6668057665e-1
  p = p * m + 2.0000714765e-1
  p = p * m - 2.4999993993e-1
  p = p * m + 3.3333331174e-1
  var y = p * m * z
  y = y - exponent * 2.12194440e-4 - 0.5 * z
  return m + y + exponent * 0.693359375
}

@inline(__always) private func logGamma(_ v: Double) -> Double {
  var sign: Int32 = 0
  return lgamma_r(v, &sign)
}

/// log x! from a table for the small integer counts of scRNA-seq, else log Γ(x + 1).
@inline(__always) private func logFactorial(_ x: Double) -> Double {
  x < Double(logFactorials.count) && x.rounded(.down) == x ? logFactorials[Int(x)] : logGamma(x + 1)
}
private let logFactorials = (0..<4096).map { logGamma(Double($0) + 1) }

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
