import CellData
import Foundation
import Genomics
import Torch

/// A differential-expression table: one row per gene, sorted as scvi-tools sorts it
/// (by proba_de in change mode, by bayes_factor in vanilla mode), with named numeric
/// columns.
public struct DifferentialExpressionTable: Sendable {
  public let genes: [String]
  public let columnNames: [String]
  public let columns: [String: [Double]]
  public let group1: String
  public let group2: String

  public subscript(_ name: String) -> [Double]? { columns[name] }

  /// CSV with the gene in the first column, then every numeric column, then the comparison.
  public func csv() -> String {
    var lines = [(["gene"] + columnNames + ["comparison", "group1", "group2"]).joined(separator: ",")]
    for (row, gene) in genes.enumerated() {
      let values = columnNames.map { name -> String in
        let value = columns[name]![row]
        return name.hasPrefix("is_de_fdr") ? (value != 0 ? "True" : "False") : "\(value)"
      }
      lines.append(([csvField(gene)] + values + [csvField("\(group1) vs \(group2)"), csvField(group1), csvField(group2)])
        .joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
  }

  private func csvField(_ text: String) -> String {
    text.contains(",") || text.contains("\"") ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
  }
}

extension SCVIModel {
  public enum DEMode: String, Sendable, CaseIterable {
    /// P(scale1 > scale2) and its Bayes factor.
    case vanilla
    /// P(|LFC| ≥ delta) with the log-fold-change distribution (scvi-tools' "change").
    case change
  }

  /// scvi-tools' `differential_expression` with its defaults (observed batches, uniform
  /// weights, 5000 posterior samples per group, pseudocounts estimated from genes without
  /// counts, three-way test): cells of `group1` against `group2` (or all other cells).
  ///
  /// Columns: change mode: proba_de, proba_not_de, bayes_factor, scale1, scale2,
  /// pseudocounts, delta, lfc_mean/median/std/min/max, raw_mean1/2,
  /// non_zeros_proportion1/2, raw_normalized_mean1/2, is_de_fdr_<target>. Vanilla mode:
  /// proba_m1, proba_m2, bayes_factor, scale1, scale2, the LFC summaries and the raw
  /// statistics; its FDR column uses max(proba_m1, proba_m2) (an addition: scvi-tools adds
  /// the FDR column in change mode only).
  public func differentialExpression(_ adata: AnnData? = nil, groupby: String, group1: String, group2: String? = nil,
                                     mode: DEMode = .vanilla, delta: Double = 0.25, fdrTarget: Double = 0.05,
                                     nSamples: Int = 5000, seed: UInt64 = 0) throws -> DifferentialExpressionTable {
    let obs = try adata?.obs ?? registered(nil).obs
    guard obs[groupby] != nil else {
      throw SCVIModelError.setup("no obs column '\(groupby)' (obs columns: \(obs.columnNames.joined(separator: ", ")))")
    }
    let labels = try obs.labels(groupby)
    let cells1 = labels.indices.filter { labels[$0] == group1 }
    let cells2 = labels.indices.filter { group2 == nil ? labels[$0] != group1 : labels[$0] == group2 }
    guard !cells1.isEmpty else { throw SCVIModelError.setup("no cells with \(groupby) = '\(group1)'") }
    guard !cells2.isEmpty else { throw SCVIModelError.setup("no cells with \(groupby) = '\(group2 ?? "not \(group1)")'") }
    guard nSamples >= 2 else { throw SCVIModelError.setup("nSamples must be at least 2") }

    var random = SeededGenerator(seed: seed)
    Runtime.seed(seed)
    func sampledScales(_ cells: [Int]) throws -> Tensor {
      let drawn = (0..<nSamples).map { _ in cells[random.uniformInt(below: cells.count)] }
      return try normalizedExpression(adata, indices: drawn)
    }
    let scales1 = try sampledScales(cells1).to(.float64)
    let scales2 = try sampledScales(cells2).to(.float64)
    let eps = 1e-8
    let counts = try registered(adata).counts
    var columns: [(String, [Double])] = []

    let pseudocounts = estimatePseudocounts(scales1, scales2, counts: counts, cells1: cells1, cells2: cells2)
    func lfc(_ offset: Double) -> Tensor { ((scales1 + offset).log() - (scales2 + offset).log()) / Foundation.log(2.0) }
    let probaDE: [Double]
    switch mode {
    case .vanilla:
      let m1 = scales1.gt(scales2).to(.float64).mean(dim: 0).toArray(Double.self)
      let m2 = m1.map { 1 - $0 }
      columns += [("proba_m1", m1), ("proba_m2", m2),
                  ("bayes_factor", zip(m1, m2).map { Foundation.log($0 + eps) - Foundation.log($1 + eps) })]
      probaDE = zip(m1, m2).map { Swift.max($0, $1) }
    case .change:
      let change = lfc(pseudocounts)
      let plus = change.ge(delta).to(.float64).mean(dim: 0).toArray(Double.self)
      let minus = change.lt(-delta).to(.float64).mean(dim: 0).toArray(Double.self)
      probaDE = zip(plus, minus).map { Swift.max($0, $1) }
      columns += [("proba_de", probaDE), ("proba_not_de", probaDE.map { 1 - $0 }),
                  ("bayes_factor", probaDE.map { Foundation.log($0 + eps) - Foundation.log(1 - $0 + eps) })]
    }
    let nGenes = setup.geneNames.count
    columns += [("scale1", scales1.mean(dim: 0).toArray(Double.self)), ("scale2", scales2.mean(dim: 0).toArray(Double.self))]
    if mode == .change {
      columns += [("pseudocounts", Array(repeating: pseudocounts, count: nGenes)), ("delta", Array(repeating: delta, count: nGenes))]
    }
    // LFC summaries with the pseudocount reduced 1000-fold, as scvi-tools reports them.
    let change = lfc(1e-3 * pseudocounts)
    columns += [("lfc_mean", change.mean(dim: 0).toArray(Double.self)),
                ("lfc_median", columnMedians(change)),
                ("lfc_std", change.std([0], correction: 0).toArray(Double.self)),
                ("lfc_min", change.min(dim: 0).toArray(Double.self)),
                ("lfc_max", change.max(dim: 0).toArray(Double.self))]
    columns += rawStatistics(counts, cells1: cells1, cells2: cells2)

    let order = (0..<nGenes).sorted {
      let key = mode == .change ? probaDE : columns[2].1
      return key[$0] > key[$1]
    }
    columns.append(("is_de_fdr_\(fdrTarget)", fdrPrediction(probaDE, target: fdrTarget)))
    return DifferentialExpressionTable(
      genes: order.map { setup.geneNames[$0] }, columnNames: columns.map(\.0),
      columns: Dictionary(uniqueKeysWithValues: columns.map { column in (column.0, order.map { column.1[$0] }) }),
      group1: group1, group2: group2 ?? "Rest")
  }

  /// scvi-tools' `estimate_pseudocounts_offset`: the 0.9 quantile of the largest sampled scale
  /// of genes with (almost) no counts in a group, over the number of genes.
  private func estimatePseudocounts(_ scales1: Tensor, _ scales2: Tensor, counts: CountMatrix, cells1: [Int],
                                    cells2: [Int], threshold: Double = 0.01) -> Double {
    func offset(_ scales: Tensor, _ cells: [Int]) -> Double {
      let maxima = scales.max(dim: 0).toArray(Double.self)
      let means = counts.columnMeans(cells)
      let artefacts = zip(maxima, means).filter { $0.1 < threshold }.map(\.0).sorted()
      guard !artefacts.isEmpty else { return 1e-10 }
      return quantile(artefacts, 0.9)
    }
    let nGenes = Double(scales1.size(1))
    return Swift.max(1e-10, Swift.max(offset(scales1, cells1), offset(scales2, cells2)) / nGenes)
  }

  /// numpy's median of each column of a [samples, genes] float64 tensor.
  private func columnMedians(_ samples: Tensor) -> [Double] {
    let values = samples.contiguous().toArray(Double.self)
    let rows = samples.size(0), columns = samples.size(1)
    return (0..<columns).map { column in
      quantile((0..<rows).map { values[$0 * columns + column] }.sorted(), 0.5)
    }
  }

  /// numpy's default (linear) quantile of sorted values.
  private func quantile(_ sorted: [Double], _ q: Double) -> Double {
    let position = q * Double(sorted.count - 1)
    let low = Int(position.rounded(.down)), high = Swift.min(low + 1, sorted.count - 1)
    return sorted[low] + (sorted[high] - sorted[low]) * (position - Double(low))
  }

  /// scvi-tools' `scrna_raw_counts_properties`: per group, mean counts, the fraction of cells
  /// with counts, and the mean of counts normalized to 1e4 per cell.
  private func rawStatistics(_ counts: CountMatrix, cells1: [Int], cells2: [Int]) -> [(String, [Double])] {
    var out: [(String, [Double])] = []
    for (name, cells) in [("1", cells1), ("2", cells2)] {
      out.append(("raw_mean\(name)", counts.columnMeans(cells)))
      out.append(("non_zeros_proportion\(name)", counts.columnMeans(cells, transform: { $0 > 0 ? 1 : 0 })))
      out.append(("raw_normalized_mean\(name)", counts.columnMeans(cells, normalizeTo: 1e4)))
    }
    return out
  }

  /// scvi-tools' `_fdr_de_prediction`: the largest set of genes, by decreasing posterior
  /// probability, whose estimated FDR (mean of 1 − p) stays at or below `target`.
  private func fdrPrediction(_ probabilities: [Double], target: Double) -> [Double] {
    let order = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }
    var cumulative = 0.0, accepted = 0
    for (rank, gene) in order.enumerated() {
      cumulative += 1 - probabilities[gene]
      if cumulative / Double(rank + 1) <= target { accepted = rank + 1 }
    }
    var flags = Array(repeating: 0.0, count: probabilities.count)
    for gene in order.prefix(accepted) { flags[gene] = 1 }
    return flags
  }
}

extension CountMatrix {
  /// Per-gene means over `cells` of transform(count), or of counts scaled so each cell sums
  /// to `normalizeTo`.
  func columnMeans(_ cells: [Int], transform: ((Float) -> Double)? = nil, normalizeTo: Double? = nil) -> [Double] {
    var sums = [Double](repeating: 0, count: nCols)
    let totals = normalizeTo != nil ? rowSums() : []
    for cell in cells {
      let scale = normalizeTo.map { totals[cell] > 0 ? $0 / totals[cell] : 0 } ?? 1
      forEachNonZero(row: cell) { column, value in
        sums[column] += transform.map { $0(value) } ?? Double(value) * scale
      }
    }
    return sums.map { $0 / Double(cells.count) }
  }

  func forEachNonZero(row: Int, _ body: (Int, Float) -> Void) {
    switch storage {
    case .dense(let values):
      for column in 0..<nCols where values[row * nCols + column] != 0 { body(column, values[row * nCols + column]) }
    case .csr(let values, let columns, let rowStarts):
      for k in rowStarts[row]..<rowStarts[row + 1] where values[k] != 0 { body(Int(columns[k]), values[k]) }
    }
  }
}
