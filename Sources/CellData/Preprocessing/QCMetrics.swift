import Foundation

extension AnnData {
  /// scanpy's `pp.calculate_qc_metrics` (the main columns), on X or `layer`.
  ///
  /// obs: n_genes_by_counts, log1p_n_genes_by_counts, total_counts, log1p_total_counts and,
  /// per entry of `qcVars` (boolean var columns such as "mt"), total_counts_<qc>,
  /// log1p_total_counts_<qc>, pct_counts_<qc>.
  /// var: n_cells_by_counts, mean_counts, log1p_mean_counts, pct_dropout_by_counts,
  /// total_counts, log1p_total_counts.
  public mutating func calculateQCMetrics(qcVars: [String] = [], layer: String? = nil) throws {
    let m = try matrix(layer: layer)
    try m.requireFinite(layer.map { "layer '\($0)'" } ?? "X")
    let totals = try m.rowSums()
    let genes = try m.rowPositiveCounts()
    try obs.set("n_genes_by_counts", .array(.int64(genes.map(Int64.init))))
    try obs.set("log1p_n_genes_by_counts", .array(.float64(genes.map { Foundation.log1p(Double($0)) })))
    try obs.set("total_counts", .array(ArrayData.floating(totals, like: m.data)))
    try obs.set("log1p_total_counts", .array(.float64(totals.map { Foundation.log1p($0) })))
    for qc in qcVars {
      guard case .dense(let d)? = self.var[qc], case .bool(let mask) = d.data else {
        throw CellDataError("QC variable '\(qc)' must be a boolean var column")
      }
      var qcTotals = [Double](repeating: 0, count: nObs)
      try m.forEachStored { i, j, v in if mask[j] { qcTotals[i] += v } }
      try obs.set("total_counts_\(qc)", .array(ArrayData.floating(qcTotals, like: m.data)))
      try obs.set("log1p_total_counts_\(qc)", .array(.float64(qcTotals.map { Foundation.log1p($0) })))
      try obs.set("pct_counts_\(qc)", .array(.float64(zip(qcTotals, totals).map { $1 > 0 ? $0 / $1 * 100 : .nan })))
    }
    let cells = try m.columnPositiveCounts()
    let geneTotals = try m.columnSums()
    let n = Double(nObs)
    try self.var.set("n_cells_by_counts", .array(.int64(cells.map(Int64.init))))
    try self.var.set("mean_counts", .array(.float64(geneTotals.map { $0 / n })))
    try self.var.set("log1p_mean_counts", .array(.float64(geneTotals.map { Foundation.log1p($0 / n) })))
    try self.var.set("pct_dropout_by_counts", .array(.float64(cells.map { (1 - Double($0) / n) * 100 })))
    try self.var.set("total_counts", .array(ArrayData.floating(geneTotals, like: m.data)))
    try self.var.set("log1p_total_counts", .array(.float64(geneTotals.map { Foundation.log1p($0) })))
  }

  /// Marks genes whose name starts with `prefix` (default "MT-", human mitochondrial genes)
  /// in var[`key`], for `calculateQCMetrics(qcVars: [key])`.
  public mutating func markGenes(withPrefix prefix: String = "MT-", as key: String = "mt") throws {
    try self.var.set(key, .array(.bool(varNames.map { $0.hasPrefix(prefix) })))
  }
}
