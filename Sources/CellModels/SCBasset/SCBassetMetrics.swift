import Torch

/// Area under the ROC curve, ties counted half (Mann–Whitney; the value of sklearn's
/// `roc_auc_score` and torchmetrics' binary AUROC). Private to scBasset until a shared one lands.
enum SCBassetMetrics {
  /// AUROC of `scores` against 0/1 `labels` (same shape, any device); NaN without both classes.
  /// The sort runs in libtorch, the rank sums in one pass here.
  static func auroc(scores: Tensor, labels: Tensor) -> Double {
    let (sorted, order) = scores.detach().flatten().to(.float32).sort()
    let sortedLabels = labels.detach().flatten().to(.float32).indexSelect(dim: 0, index: order)
    return aurocOfSorted(sorted.to(.cpu).toArray(Float.self), sortedLabels.to(.cpu).toArray(Float.self))
  }

  static func auroc(scores: [Float], labels: [Bool]) -> Double {
    let order = scores.indices.sorted { scores[$0] < scores[$1] }
    return aurocOfSorted(order.map { scores[$0] }, order.map { labels[$0] ? 1 : 0 })
  }

  /// Scores ascending, labels in the same order.
  private static func aurocOfSorted(_ scores: [Float], _ labels: [Float]) -> Double {
    let n = scores.count
    var positives = 0.0
    var rankSum = 0.0
    var i = 0
    while i < n {
      var j = i
      var tiePositives = 0.0
      while j < n && scores[j] == scores[i] {
        tiePositives += Double(labels[j])
        j += 1
      }
      // ranks i+1 … j share their mean
      rankSum += tiePositives * Double(i + 1 + j) / 2
      positives += tiePositives
      i = j
    }
    let negatives = Double(n) - positives
    guard positives > 0, negatives > 0 else { return .nan }
    return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
  }

  /// Per-column AUROC of a [regions, cells] score matrix (calico's per-cell AUROC); NaN for a
  /// cell whose regions are all open or all closed.
  static func perColumnAUROC(scores: Tensor, labels: Tensor) -> [Double] {
    let s = scores.detach().to(.cpu).to(.float32).transpose(0, 1).contiguous()
    let l = labels.detach().to(.cpu).to(.float32).transpose(0, 1).contiguous()
    return (0..<s.size(0)).map { auroc(scores: s[$0], labels: l[$0]) }
  }
}
