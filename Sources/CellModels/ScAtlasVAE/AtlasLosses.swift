import Foundation
import Torch

/// The reconstruction terms of scAtlasVAE (the reference's `LossFunction`), per cell.
enum AtlasLikelihood {
  /// −log p(x | decoding), summed over genes: [N].
  static func negativeLogLikelihood(_ x: Tensor, decoding: AtlasDecoding, config: ScAtlasVAEConfig) -> Tensor {
    let shape = x.shape
    switch config.reconstruction {
    case .zinb:
      // The reference's ZINB (NB with logits log(mu/θ) and total count θ + 1e-6, gate logits
      // as extra-zero logits) equals scvi-tools' log_zinb_positive up to those epsilons; the
      // fused kernel computes it with eps 1e-8 inside the logs, so a cell without counts gives
      // a finite value instead of the reference's log(0).
      let gate = decoding.dropoutLogits.expand(shape)
      return -ZeroInflatedNegativeBinomial(mu: decoding.mean, theta: decoding.logDispersion.exp(), ziLogits: gate)
        .logProb(x).sum(dim: 1)
    case .nb:
      return -NegativeBinomial(mu: decoding.mean, theta: decoding.logDispersion.exp()).logProb(x).sum(dim: 1)
    case .zg:
      return -zeroInflatedGaussianLogProb(x, mean: decoding.mean, scale: decoding.logDispersion.exp(),
                                          gateLogits: decoding.dropoutLogits.expand(shape)).sum(dim: 1)
    case .mse:
      let target = (ScAtlasVAENetwork.normalizedTotal(x, target: 1e4) + 1).log()
      return (target - decoding.mean).square().sum(dim: 1)
    }
  }

  /// Pyro's zero-inflated distribution over Normal(mean, scale): extra zeros with
  /// probability sigmoid(gate logits).
  static func zeroInflatedGaussianLogProb(_ x: Tensor, mean: Tensor, scale: Tensor, gateLogits: Tensor) -> Tensor {
    let base = Normal(loc: mean, scale: scale).logProb(x)
    let logGate = -(-gateLogits).softplus()
    let minusGate = base - gateLogits
    let nonZero = minusGate + logGate
    let zero = minusGate.softplus() + logGate
    return Tensor.where(x.eq(0), zero, nonZero)
  }
}

/// The penalties of scAtlasVAE: label cross-entropy, MMD between batches, latent constraint.
enum AtlasPenalties {
  /// Class-weighted cross-entropy over the labelled cells (label ≥ 0), averaged over them,
  /// as the reference's `CrossEntropyLoss(weight)` on one-hot targets (which divides by the
  /// number of cells, not by the summed weights). No labelled cell gives 0, where the
  /// reference's mean over an empty minibatch gives NaN.
  static func weightedCrossEntropy(_ logits: Tensor, labels: Tensor, classWeights: Tensor) -> Tensor {
    let labelled = labels.ge(0).nonzero().squeeze(dim: 1)
    guard labelled.size(0) > 0 else { return Tensor.zeros([], dtype: logits.dtype, device: logits.device) }
    let targets = labels.indexSelect(dim: 0, index: labelled)
    let logProbabilities = logits.indexSelect(dim: 0, index: labelled).logSoftmax(dim: 1)
    let nll = -logProbabilities.gather(dim: 1, index: targets.unsqueeze(dim: 1)).squeeze(dim: 1)
    return (classWeights.to(logits.dtype).indexSelect(dim: 0, index: targets) * nll).mean()
  }

  /// The MMD penalty on q_mu for `key` (the reference's `mmd_loss` and `hierarchical_mmd_loss_2`
  /// with the trVAE kernel; groups of two cells or fewer are skipped).
  static func mmd(_ z: Tensor, key: AtlasMMDKey, batch: Tensor?, additional: [Tensor]) -> Tensor {
    var total = Tensor.zeros([], dtype: z.dtype, device: z.device)
    let batchCodes = batch?.toArray(Int64.self)
    if key == .batch || key == .both, let batchCodes {
      total = total + pairwise(z, groups: groups(batchCodes, within: nil))
    }
    for codes in additional.map({ $0.toArray(Int64.self) }) {
      if key == .additionalBatch {
        total = total + pairwise(z, groups: groups(codes, within: nil))
      } else if key == .both, let batchCodes {
        let mains = groups(batchCodes, within: nil)
        for main in mains {
          let sub = groups(codes, within: main)
          let divisor = Double(sub.count * mains.count)
          total = total + pairwise(z, groups: sub) / divisor
        }
      }
    }
    return total
  }

  /// Cell positions per category, categories in ascending order; only cells in `within` when given.
  private static func groups(_ codes: [Int64], within: [Int]?) -> [[Int]] {
    var byCode: [Int64: [Int]] = [:]
    for cell in within ?? Array(codes.indices) { byCode[codes[cell], default: []].append(cell) }
    return byCode.keys.sorted().map { byCode[$0]! }
  }

  private static func pairwise(_ z: Tensor, groups: [[Int]]) -> Tensor {
    var total = Tensor.zeros([], dtype: z.dtype, device: z.device)
    let members = groups.map { $0.count > 2 ? z.indexSelect(dim: 0, index: Tensor($0.map(Int64.init)).to(z.device)) : nil }
    for i in members.indices {
      for j in (i + 1)..<members.count {
        if let a = members[i], let b = members[j] { total = total + trVAEMMD(a, b) }
      }
    }
    return total
  }

  /// trVAE's multi-scale RBF MMD: mean K(x,x) + mean K(y,y) − 2 mean K(x,y), with
  /// K = Σ_α exp(−‖a−b‖² / 2α) over its 19 bandwidths.
  static func trVAEMMD(_ x: Tensor, _ y: Tensor) -> Tensor {
    let alphas: [Float] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 5, 10, 15, 20, 25, 30, 35, 100, 1e3, 1e4, 1e5, 1e6]
    let beta = Tensor(alphas.map { 1 / (2 * $0) }, shape: [alphas.count, 1, 1]).to(x.device).to(x.dtype)
    func kernel(_ a: Tensor, _ b: Tensor) -> Tensor {
      let distances = (a.unsqueeze(dim: 1) - b.unsqueeze(dim: 0)).square().sum(dim: 2)
      return (-(beta * distances.unsqueeze(dim: 0))).exp().sum(dim: 0)
    }
    return kernel(x, x).mean() + kernel(y, y).mean() - 2 * kernel(x, y).mean()
  }

  /// The reference's latent constraint toward `target` over the cells whose target row is
  /// not all zero (mean ≠ 0), averaged over them; 0 when there are none (the reference divides by zero).
  static func latentConstraint(_ encoding: AtlasEncoding, target: Tensor, method: AtlasLatentConstraint) -> Tensor {
    let mask = target.mean(dim: 1).ne(0).to(target.dtype)
    let count = mask.sum().item()
    guard count > 0 else { return Tensor.zeros([], dtype: target.dtype, device: target.device) }
    let perCell: Tensor
    switch method {
    case .mse: perCell = (target - encoding.qMu).square().sum(dim: 1)
    case .normal:
      perCell = Normal(loc: encoding.qMu, scale: encoding.qVar.sqrt())
        .klDivergence(to: Normal(loc: target, scale: Tensor.ones(target.shape, dtype: target.dtype, device: target.device)))
        .sum(dim: 1)
    }
    return (perCell * mask).sum() / count
  }
}
