import Torch

/// A minibatch for the VAE: counts and the cells' batch and label indices.
public struct VAEInput {
  /// Counts [N, nInput], floating point.
  public var x: Tensor
  /// Batch indices, int64 [N] or [N, 1]; nil means batch 0 for every cell.
  public var batchIndex: Tensor?
  /// Label indices, int64 [N] or [N, 1]; needed for gene-label dispersion.
  public var labels: Tensor?

  public init(x: Tensor, batchIndex: Tensor? = nil, labels: Tensor? = nil) {
    self.x = x
    self.batchIndex = batchIndex
    self.labels = labels
  }
}

/// How z (and a latent library) are taken from their posteriors.
public enum LatentSampling: Sendable {
  /// A reparameterised draw (scvi-tools' forward pass, training).
  case sample
  /// The posterior means (scvi-tools' `give_mean`; deterministic evaluation).
  case mean
}

/// q(z|x), q(l|x) and the values passed to the generative model.
public struct VAEInferenceOutput {
  /// Mean and variance of the normal q(z|x) [N, nLatent] (before any softmax).
  public var qzMean: Tensor
  public var qzVariance: Tensor
  /// The latent value used [N, nLatent] (softmax of the draw for the logistic normal).
  public var z: Tensor
  /// Mean and variance of q(l|x) [N, 1]; nil with the observed library size.
  public var qlMean: Tensor?
  public var qlVariance: Tensor?
  /// Log library size [N, 1]: log Σx observed, or the latent value.
  public var library: Tensor
}

/// p(x|z, l) and the priors.
public struct VAEGenerativeOutput {
  public var likelihood: GeneLikelihood
  /// Normalised expression [N, nInput].
  public var pxScale: Tensor
  /// Mean counts exp(library) · scale [N, nInput].
  public var pxRate: Tensor
  /// Inverse dispersion θ = exp(px_r), broadcastable to [N, nInput] ([nInput] for gene).
  public var pxR: Tensor
  /// Zero-inflation logits [N, nInput] (used by zinb only).
  public var pxDropout: Tensor
  /// The per-cell prior of the log library, N(mean, variance) [N, 1]; nil with the observed one.
  public var plMean: Tensor?
  public var plVariance: Tensor?

  /// log p(x | z, l) elementwise [N, nInput], with scvi-tools' formulas.
  public func logProb(_ x: Tensor) -> Tensor {
    switch likelihood {
    case .zinb: return ZeroInflatedNegativeBinomial(mu: pxRate, theta: pxR, ziLogits: pxDropout).logProb(x)
    case .nb: return NegativeBinomial(mu: pxRate, theta: pxR).logProb(x)
    case .poisson: return Poisson(rate: pxRate).logProb(x)
    }
  }
}

/// The loss terms, per cell, and their minibatch objective.
public struct VAELossOutput {
  /// mean(reconstruction + klWeight · KL(z) + KL(l)), a scalar.
  public var loss: Tensor
  /// −log p(x | z, l) summed over genes [N].
  public var reconstructionLoss: Tensor
  /// KL(q(z|x) ‖ N(0, I)) summed over latent dimensions [N].
  public var klZ: Tensor
  /// KL(q(l|x) ‖ p(l)) [N]; zeros with the observed library size.
  public var klL: Tensor

  /// scvi-tools' per-cell ELBO term (reconstruction + KL(z) + KL(l), a positive number).
  public var elboPerCell: Tensor { reconstructionLoss + klZ + klL }
}

extension VAEInput {
  /// The input on `device`.
  public func to(_ device: Device) -> VAEInput {
    guard device != .cpu else { return self }
    return VAEInput(x: x.to(device), batchIndex: batchIndex?.to(device), labels: labels?.to(device))
  }
}

extension Minibatch {
  /// The minibatch on `device`.
  public func to(_ device: Device) -> Minibatch {
    guard device != .cpu else { return self }
    return Minibatch(indices: indices, x: x.to(device), batchIndex: batchIndex?.to(device), labels: labels?.to(device))
  }
}

extension Minibatch {
  /// The minibatch as the VAE's input.
  public var vaeInput: VAEInput { VAEInput(x: x, batchIndex: batchIndex, labels: labels) }
}
