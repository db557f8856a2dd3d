import CKernels
import CTorch

/// Fused CPU kernel for scvi-tools' negative-binomial log-likelihoods (`log_nb_positive` and
/// `log_zinb_positive`, eps 1e-8): the autograd glue around CKernels' `count_likelihood.c`.
/// Forward computes the value and, when a gradient is needed, the partial derivatives in one
/// pass; backward only scales them by the incoming gradient. Both run on libtorch's threads.
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
                               &output, 1, 4))
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
    var thetaLogGamma = [Double](repeating: 0, count: thetaPerGene ? genes : 0)
    var thetaDigamma = [Double](repeating: 0, count: thetaPerGene && gradients ? genes : 0)
    withExtendedLifetime((mu, theta, x, ziLogits, value, partials)) {
      if thetaPerGene {
        thetaDigamma.withUnsafeMutableBufferPointer { digamma in
          sck_count_likelihood_gene_terms(theta.floatPointer, Int64(genes), &thetaLogGamma,
                                          gradients ? digamma.baseAddress : nil)
        }
      }
      thetaLogGamma.withUnsafeBufferPointer { logGammaTheta in
        thetaDigamma.withUnsafeBufferPointer { digammaTheta in
          var kernel = SCKCountLikelihood(
            x: x.floatPointer, mu: mu.floatPointer, theta: theta.floatPointer,
            zi_logits: ziLogits.map(\.floatPointer),
            value: value.floatPointer, d_mu: partials.isEmpty ? nil : partials[0].floatPointer,
            d_theta: partials.isEmpty ? nil : partials[1].floatPointer,
            d_zi_logits: partials.count == 3 ? partials[2].floatPointer : nil,
            genes: Int64(genes), theta_per_gene: thetaPerGene ? 1 : 0,
            theta_log_gamma: logGammaTheta.baseAddress, theta_digamma: digammaTheta.baseAddress)
          // On libtorch's intra-op threads, 8 rows at least per chunk.
          check(ct_parallel_for(0, Int64(rows), 8, { begin, end, context in
            sck_count_likelihood_rows(context!.assumingMemoryBound(to: SCKCountLikelihood.self), begin, end)
          }, &kernel))
        }
      }
    }
    return (value, partials)
  }

  /// The gradients of (mu, theta, [ziLogits]) from the output's gradient and the saved partials;
  /// a per-gene theta's gradient is summed over rows.
  static func inputGradients(gradOutput: Tensor, partials: [Tensor], thetaShape: [Int]) -> [Tensor] {
    let shape = partials[0].shape
    let genes = shape.last!, rows = genes == 0 ? 0 : partials[0].count / genes
    let gradOutput = gradOutput.contiguous()  // often a row gradient expanded over genes
    let gradients = [uninitialized(shape), uninitialized(thetaShape)]
      + (partials.count == 3 ? [uninitialized(shape)] : [])
    withExtendedLifetime((gradOutput, partials, gradients)) {
      var kernel = SCKCountLikelihoodBackward(
        grad_output: gradOutput.floatPointer, d_mu: partials[0].floatPointer, d_theta: partials[1].floatPointer,
        d_zi_logits: partials.count == 3 ? partials[2].floatPointer : nil,
        grad_mu: gradients[0].floatPointer, grad_theta: gradients[1].floatPointer,
        grad_zi_logits: partials.count == 3 ? gradients[2].floatPointer : nil,
        rows: Int64(rows), genes: Int64(genes), theta_per_gene: thetaShape == shape ? 0 : 1)
      check(ct_parallel_for(0, Int64(genes), 64, { begin, end, context in
        sck_count_likelihood_backward_genes(
          context!.assumingMemoryBound(to: SCKCountLikelihoodBackward.self), begin, end)
      }, &kernel))
    }
    return gradients
  }

  private static func uninitialized(_ shape: [Int]) -> Tensor {
    let dims = shape.map(Int64.init)
    return wrap(ct_empty(dims, Int32(dims.count), Int32(CT_FLOAT32), Int32(CT_CPU), -1))
  }
}

// The autograd callbacks. Inputs are (mu, theta, [ziLogits,] x); the saved tensors are the
// partial derivatives in input order, then theta (for its shape), so backward only scales the
// partials by the output's gradient.
private let forwardCallback: CTForwardCallback = { inputs, nInputs, outputs, _, saved, _, nSaved, needsGrad in
  let tensors = (0..<Int(nInputs)).map { Tensor(handle: inputs![$0]!) }
  let result = FusedCountLikelihood.evaluate(
    mu: tensors[0], theta: tensors[1], ziLogits: nInputs == 4 ? tensors[2] : nil, x: tensors.last!,
    gradients: needsGrad != 0)
  outputs![0] = result.value.detachHandle()
  guard needsGrad != 0 else {
    nSaved!.pointee = 0
    return 0
  }
  for (i, partial) in result.partials.enumerated() { saved![i] = partial.detachHandle() }
  saved![result.partials.count] = tensors[1].withHandle { ct_alias($0) }
  nSaved!.pointee = Int32(result.partials.count + 1)
  return 0
}

private let backwardCallback: CTBackwardCallback = { saved, nSaved, gradOutputs, _, gradInputs, nInputs in
  guard Int(nSaved) == Int(nInputs) else { return 1 }
  let partials = (0..<Int(nSaved) - 1).map { Tensor(handle: saved![$0]!) }
  let theta = Tensor(handle: saved![Int(nSaved) - 1]!)
  let gradients = FusedCountLikelihood.inputGradients(
    gradOutput: Tensor(handle: gradOutputs![0]!), partials: partials, thetaShape: theta.shape)
  for (i, gradient) in gradients.enumerated() { gradInputs![i] = gradient.detachHandle() }
  return 0
}
