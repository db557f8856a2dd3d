import CellData

// Classification metrics with scikit-learn's definitions (labels are the sorted union of the
// true and predicted values; an undefined ratio counts as 0, sklearn's zero_division default).

/// Counts of (true, predicted) pairs over the sorted union of labels.
public struct ConfusionMatrix<Label: Hashable & Comparable>: Sendable where Label: Sendable {
  public let labels: [Label]
  /// counts[t][p]: items of true label `labels[t]` predicted as `labels[p]`.
  public let counts: [[Int]]

  public init(truth: [Label], predicted: [Label]) throws {
    guard truth.count == predicted.count, !truth.isEmpty else {
      throw CellDataError("confusion matrix: \(truth.count) true and \(predicted.count) predicted labels")
    }
    labels = Array(Set(truth).union(predicted)).sorted()
    let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
    var counts = [[Int]](repeating: [Int](repeating: 0, count: labels.count), count: labels.count)
    for (t, p) in zip(truth, predicted) { counts[index[t]!][index[p]!] += 1 }
    self.counts = counts
  }

  public var accuracy: Double {
    let correct = labels.indices.reduce(0) { $0 + counts[$1][$1] }
    return Double(correct) / Double(counts.reduce(0) { $0 + $1.reduce(0, +) })
  }

  /// Per-label precision, recall and F1 (0 where undefined).
  public var perLabel: [(precision: Double, recall: Double, f1: Double)] {
    labels.indices.map { c in
      let tp = Double(counts[c][c])
      let predicted = Double(counts.reduce(0) { $0 + $1[c] })
      let actual = Double(counts[c].reduce(0, +))
      let precision = predicted > 0 ? tp / predicted : 0
      let recall = actual > 0 ? tp / actual : 0
      let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
      return (precision, recall, f1)
    }
  }

  public var macroPrecision: Double { mean(perLabel.map(\.precision)) }
  public var macroRecall: Double { mean(perLabel.map(\.recall)) }
  public var macroF1: Double { mean(perLabel.map(\.f1)) }

  private func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
}

/// Share of items predicted correctly.
public func accuracy<Label: Hashable & Comparable & Sendable>(truth: [Label], predicted: [Label]) throws -> Double {
  try ConfusionMatrix(truth: truth, predicted: predicted).accuracy
}

/// Macro-averaged F1 (`f1_score(average="macro")`).
public func macroF1<Label: Hashable & Comparable & Sendable>(truth: [Label], predicted: [Label]) throws -> Double {
  try ConfusionMatrix(truth: truth, predicted: predicted).macroF1
}

/// Area under the ROC curve of `scores` for the positives in `labels` (`roc_auc_score`):
/// the Mann–Whitney statistic with tied scores counted as half, which equals the trapezoidal
/// area of scikit-learn's ROC curve.
public func auroc(scores: [Double], labels: [Bool]) throws -> Double {
  try checkBinary(scores, labels, "AUROC")
  let positives = Double(labels.filter { $0 }.count), negatives = Double(labels.count) - positives
  let order = scores.indices.sorted { scores[$0] < scores[$1] }
  var rankSum = 0.0, start = 0
  while start < order.count {
    var end = start
    while end + 1 < order.count && scores[order[end + 1]] == scores[order[start]] { end += 1 }
    let averageRank = Double(start + end) / 2 + 1
    for p in start...end where labels[order[p]] { rankSum += averageRank }
    start = end + 1
  }
  return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
}

public func auroc(scores: [Float], labels: [Bool]) throws -> Double {
  try auroc(scores: scores.map(Double.init), labels: labels)
}

/// Average precision (`average_precision_score`): Σ (Rₙ − Rₙ₋₁) Pₙ over the distinct score
/// thresholds, highest first — the area under the precision–recall curve without interpolation.
public func auprc(scores: [Double], labels: [Bool]) throws -> Double {
  try checkBinary(scores, labels, "AUPRC")
  let positives = Double(labels.filter { $0 }.count)
  let order = scores.indices.sorted { scores[$0] > scores[$1] }
  var tp = 0.0, fp = 0.0, previousRecall = 0.0, area = 0.0, start = 0
  while start < order.count {
    var end = start
    while end + 1 < order.count && scores[order[end + 1]] == scores[order[start]] { end += 1 }
    for p in start...end { if labels[order[p]] { tp += 1 } else { fp += 1 } }
    let recall = tp / positives
    area += (recall - previousRecall) * tp / (tp + fp)
    previousRecall = recall
    start = end + 1
  }
  return area
}

public func auprc(scores: [Float], labels: [Bool]) throws -> Double {
  try auprc(scores: scores.map(Double.init), labels: labels)
}

private func checkBinary(_ scores: [Double], _ labels: [Bool], _ what: String) throws {
  guard scores.count == labels.count, !scores.isEmpty else {
    throw CellDataError("\(what): \(scores.count) scores for \(labels.count) labels")
  }
  guard labels.contains(true), labels.contains(false) else {
    throw CellDataError("\(what) is undefined when only one class is present")
  }
  if scores.contains(where: { $0.isNaN }) { throw CellDataError("\(what): scores contain NaN") }
}
