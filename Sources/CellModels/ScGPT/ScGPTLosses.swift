import Torch

/// scGPT's losses (`scgpt.loss` and the forward's CCE/ECS). `mask` marks the positions that count
/// (the masked inputs, value == −1); it may be bool or float. Predictions in bf16 (autocast) are
/// widened to float32 first, so that sums over many positions keep their precision.
public enum ScGPTLosses {
  /// `masked_mse_loss`: Σ((input − target)² · m) / Σ m.
  public static func maskedMSE(_ input: Tensor, _ target: Tensor, mask: Tensor) -> Tensor {
    let input = input.fullPrecision
    let m = mask.to(input.dtype)
    return ((input * m - target * m).square()).sum() / m.sum()
  }

  /// `criterion_neg_log_bernoulli`: −Σ log Bernoulli(p)(target > 0) · m / Σ m, with p clamped to
  /// [eps, 1 − eps] as torch's Bernoulli(probs).log_prob does (eps: float32's).
  public static func negLogBernoulli(_ probs: Tensor, _ target: Tensor, mask: Tensor) -> Tensor {
    let probs = probs.fullPrecision
    let m = mask.to(probs.dtype)
    let eps = Double(Float.ulpOfOne)
    let p = probs.clamp(min: eps, max: 1 - eps)
    let logits = p.log() - (-p).log1p()
    let nonZero = target.gt(0).to(probs.dtype)
    // log_prob = −BCE-with-logits(logits, value)
    let logProb = -Functional.binaryCrossEntropyWithLogits(logits, nonZero, reduction: .none)
    return -(logProb * m).sum() / m.sum()
  }

  /// `masked_relative_error` (a metric): mean |input − target| / (target + 1e-6) over the mask.
  public static func maskedRelativeError(_ input: Tensor, _ target: Tensor, mask: Tensor) -> Tensor {
    let m = mask.to(.bool)
    let i = input.maskedSelect(m), t = target.maskedSelect(m)
    return ((i - t).abs() / (t + 1e-6)).mean()
  }

  /// CCE: cross-entropy of cosine similarities / temperature between two views, targets the
  /// diagonal.
  public static func contrastive(_ first: Tensor, _ second: Tensor, temperature: Double = 0.5) -> Tensor {
    let a = l2Normalized(first, eps: 1e-8), b = l2Normalized(second, eps: 1e-8)
    let similarity = a.matmul(b.T) / temperature
    let targets = Tensor.arange(0, Double(first.size(0)), device: first.device)
    return Functional.crossEntropy(similarity, targets)
  }

  /// ECS: mean(1 − (relu(S) − threshold)²) over all B² pairs, S the cosine similarities with the
  /// diagonal set to 0.
  public static func elasticCellSimilarity(_ cellEmbedding: Tensor, threshold: Double) -> Tensor {
    let c = l2Normalized(cellEmbedding)
    let n = c.size(0)
    let index = Tensor.arange(0, Double(n), device: c.device)
    let diagonal = index.unsqueeze(dim: 1).eq(index.unsqueeze(dim: 0))
    let similarity = c.matmul(c.T).maskedFill(diagonal, 0).relu()
    return (1 - (similarity - threshold).square()).mean()
  }

  /// Cross-entropy of logits [B, C] against int64 labels [B] (cell types, or batches for DAB).
  public static func crossEntropy(_ logits: Tensor, _ labels: Tensor) -> Tensor {
    Functional.crossEntropy(logits, labels)
  }
}
