import CellAnalysis
import Torch

/// scBasset's AUROCs on tensors: the sort runs in libtorch, the rank statistic is
/// CellAnalysis' `auroc(scores:labels:)` (ties counted half, as sklearn's `roc_auc_score`).
enum SCBassetMetrics {
  /// AUROC of `scores` against 0/1 `labels` (same shape, any device); NaN without both classes.
  static func auroc(scores: Tensor, labels: Tensor) -> Double {
    let (sorted, order) = scores.detach().flatten().to(.float32).sort()
    let sortedLabels = labels.detach().flatten().to(.float32).indexSelect(dim: 0, index: order)
    let positives = sortedLabels.to(.cpu).toArray(Float.self).map { $0 > 0.5 }
    return (try? CellAnalysis.auroc(scores: sorted.to(.cpu).toArray(Float.self), labels: positives)) ?? .nan
  }

  /// Per-column AUROC of a [regions, cells] score matrix (calico's per-cell AUROC); NaN for a
  /// cell whose regions are all open or all closed.
  static func perColumnAUROC(scores: Tensor, labels: Tensor) -> [Double] {
    let s = scores.detach().to(.cpu).to(.float32).transpose(0, 1).contiguous()
    let l = labels.detach().to(.cpu).to(.float32).transpose(0, 1).contiguous()
    return (0..<s.size(0)).map { auroc(scores: s[$0], labels: l[$0]) }
  }
}

/// Minibatch-size-weighted means of the loss and of the per-minibatch AUROC over an epoch
/// (minibatches with one class only are left out of the AUROC mean; 0.5 when none is left).
struct SCBassetEpochMetrics {
  private var lossSum = 0.0, aurocSum = 0.0, aurocWeight = 0.0, count = 0.0

  mutating func add(loss: Double, logits: Tensor, target: Tensor, size: Int) {
    lossSum += loss * Double(size)
    count += Double(size)
    let auc = SCBassetMetrics.auroc(scores: logits, labels: target)
    if !auc.isNaN {
      aurocSum += auc * Double(size)
      aurocWeight += Double(size)
    }
  }

  var loss: Double { lossSum / count }
  var auroc: Double { aurocWeight > 0 ? aurocSum / aurocWeight : 0.5 }

  /// The sums over every rank of `group` (collective).
  func reduced(over group: ProcessGroup?) throws -> SCBassetEpochMetrics {
    guard let group, group.worldSize > 1 else { return self }
    let sums = try group.allReduce([lossSum, aurocSum, aurocWeight, count], .sum)
    return SCBassetEpochMetrics(lossSum: sums[0], aurocSum: sums[1], aurocWeight: sums[2], count: sums[3])
  }
}
