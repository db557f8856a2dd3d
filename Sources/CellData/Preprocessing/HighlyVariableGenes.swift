import Foundation

/// The flavors of scanpy's `pp.highly_variable_genes`.
public enum HVGFlavor: String, CaseIterable, Sendable {
  /// Dispersion of expm1(log data), normalised within 20 equal-width bins of log mean.
  case seurat
  /// Dispersion of the log data, normalised by median and MAD within mean percentile bins.
  case cellRanger = "cell_ranger"
  /// Variance of clipped standardised counts against a loess fit of log variance on log mean.
  case seuratV3 = "seurat_v3"
}

/// Options of `highlyVariableGenes`, with scanpy's defaults.
public struct HVGOptions: Sendable {
  public var flavor: HVGFlavor = .seurat
  /// Select this many genes; when nil (seurat and cell_ranger only) use the cutoffs below.
  public var nTopGenes: Int?
  public var minMean = 0.0125
  public var maxMean = 3.0
  public var minDisp = 0.5
  public var maxDisp = Double.infinity
  public var nBins = 20
  /// The loess span of seurat_v3.
  public var span = 0.3
  /// Compute on this layer instead of X (seurat_v3 wants counts).
  public var layer: String?
  /// Select within each category of this obs column and merge.
  public var batchKey: String?
  /// Keep only the selected genes.
  public var subset = false

  public init(flavor: HVGFlavor = .seurat, nTopGenes: Int? = nil) {
    self.flavor = flavor
    self.nTopGenes = nTopGenes
  }
}

/// Per-gene results, in var order. Fields a flavor does not compute are nil.
public struct HVGResult: Sendable {
  public var highlyVariable: [Bool]
  public var means: [Double]
  public var dispersions: [Double]?
  public var dispersionsNorm: [Double]?
  public var variances: [Double]?
  public var variancesNorm: [Double]?
  public var rank: [Double]?
  public var nBatches: [Int]?
}

extension AnnData {
  /// scanpy's `pp.highly_variable_genes`. Writes var["highly_variable"], var["means"] and the
  /// flavor's statistics (dispersions, dispersions_norm or variances, variances_norm,
  /// highly_variable_rank; highly_variable_nbatches with a batch key) and uns["hvg"].
  @discardableResult
  public mutating func highlyVariableGenes(_ options: HVGOptions) throws -> HVGResult {
    let m = try matrix(layer: options.layer)
    try m.requireFinite(options.layer.map { "layer '\($0)'" } ?? "X")
    if let n = options.nTopGenes, n <= 0 { throw CellDataError("highly_variable_genes: n_top_genes must be positive") }
    guard options.nBins > 0 else { throw CellDataError("highly_variable_genes: n_bins must be positive") }
    let batches = try batchIndices(options.batchKey)

    let result: HVGResult
    switch options.flavor {
    case .seuratV3:
      guard let n = options.nTopGenes else {
        throw CellDataError("highly_variable_genes: flavor seurat_v3 needs n_top_genes")
      }
      if m.data.firstNumber(where: { $0 < 0 }) != nil {
        throw CellDataError("highly_variable_genes: flavor seurat_v3 expects counts, found negative values")
      }
      result = try seuratV3HVG(m, nTopGenes: n, span: options.span, batches: batches, varNames: varNames)
    case .seurat, .cellRanger:
      if batches.count == 1 {
        result = try dispersionHVG(m, options: options, filterUnexpressed: false)
      } else {
        result = try batchedDispersionHVG(m, options: options, batches: batches, varNames: varNames)
      }
    }
    try storeHVG(result, flavor: options.flavor, batched: options.batchKey != nil)
    if options.subset {
      self = try subset(varMask: result.highlyVariable)
    }
    return result
  }

  /// Cell indices per category of the batch column (one group of all cells without a key).
  func batchIndices(_ key: String?) throws -> [[Int]] {
    guard let key else { return [Array(0..<nObs)] }
    guard obs[key] != nil else { throw CellDataError("batch key '\(key)' is not an obs column") }
    let labels = try obs.labels(key)
    var order: [String] = []
    var groups: [String: [Int]] = [:]
    for (i, label) in labels.enumerated() {
      guard let label else { throw CellDataError("batch key '\(key)': cell \(obsNames[i]) has no value") }
      if groups[label] == nil { order.append(label) }
      groups[label, default: []].append(i)
    }
    // Categories in category order (as scanpy iterates them), else sorted.
    if case .categorical(let c)? = obs[key] {
      order = (0..<c.categories.count).map { c.categories.text(at: $0) }.filter { groups[$0] != nil }
    } else {
      order.sort()
    }
    return order.map { groups[$0]! }
  }

  private mutating func storeHVG(_ r: HVGResult, flavor: HVGFlavor, batched: Bool) throws {
    try self.var.set("highly_variable", .array(.bool(r.highlyVariable)))
    try self.var.set("means", .array(.float64(r.means)))
    if let d = r.dispersions { try self.var.set("dispersions", .array(.float64(d))) }
    if let d = r.dispersionsNorm { try self.var.set("dispersions_norm", .array(.float64(d))) }
    if let v = r.rank { try self.var.set("highly_variable_rank", .array(.float32(v.map { Float($0) }))) }
    if let v = r.variances { try self.var.set("variances", .array(.float64(v))) }
    if let v = r.variancesNorm { try self.var.set("variances_norm", .array(.float64(v))) }
    if batched, let n = r.nBatches { try self.var.set("highly_variable_nbatches", .array(.int64(n.map(Int64.init)))) }
    uns["hvg"] = .dict(["flavor": .string(flavor.rawValue)])
  }
}

// MARK: - seurat and cell_ranger

/// One batch of the dispersion-based flavors (scanpy's `_highly_variable_genes_single_batch`).
func dispersionHVG(_ input: Matrix, options: HVGOptions, filterUnexpressed: Bool) throws -> HVGResult {
  var m = input
  let nGenes = m.nCols
  var kept = Array(0..<nGenes)
  if filterUnexpressed {
    let cells = try m.columnPositiveCounts()
    kept = kept.filter { cells[$0] >= 1 }
    if kept.count < nGenes { m = m.columns(kept) }
  }
  if options.flavor == .seurat {
    m = try m.mapValues(f32: { Foundation.expm1($0) }, f64: { Foundation.expm1($0) })
  }
  var (mean, variance) = try m.columnMeanVariance()
  for j in mean.indices where mean[j] == 0 { mean[j] = 1e-12 }
  var dispersion = zip(variance, mean).map { $0 / $1 }
  if options.flavor == .seurat {
    dispersion = dispersion.map { $0 == 0 ? .nan : Foundation.log($0) }
    mean = mean.map { Foundation.log1p($0) }
  }

  let bins = options.flavor == .seurat
    ? equalWidthBins(mean, count: options.nBins) : percentileBins(mean)
  let normalized = try normalizeDispersions(dispersion, bins: bins, flavor: options.flavor)

  let selected: [Bool]
  if let n = options.nTopGenes {
    let finite = normalized.filter { !$0.isNaN }.sorted(by: >)
    let cutoff = finite.isEmpty ? Double.infinity : finite[min(n, finite.count) - 1]
    selected = normalized.map { ($0.isNaN ? -Double.infinity : $0) >= cutoff }
  } else {
    selected = zip(mean, normalized).map { mu, d in
      let dn = d.isNaN ? 0 : d
      return mu > options.minMean && mu < options.maxMean && dn > options.minDisp && dn < options.maxDisp
    }
  }

  // Genes not expressed in the batch get zeros, as in scanpy.
  var result = HVGResult(
    highlyVariable: Array(repeating: false, count: nGenes), means: Array(repeating: 0, count: nGenes),
    dispersions: Array(repeating: 0, count: nGenes), dispersionsNorm: Array(repeating: 0, count: nGenes))
  for (k, j) in kept.enumerated() {
    result.highlyVariable[j] = selected[k]
    result.means[j] = mean[k]
    result.dispersions![j] = dispersion[k]
    result.dispersionsNorm![j] = normalized[k]
  }
  return result
}

/// pandas `cut(x, n)`: n equal-width bins over [min, max], the lowest edge moved down by
/// 0.1 % of the range, intervals closed on the right. Returns each value's bin (nil for NaN).
func equalWidthBins(_ x: [Double], count n: Int) -> [Int?] {
  let finite = x.filter { !$0.isNaN }
  guard let lo = finite.min(), let hi = finite.max() else { return x.map { _ in nil } }
  var edges: [Double]
  if lo == hi {
    // pandas widens a zero range by 0.1 % on both sides.
    let adj = lo == 0 ? 0.001 : abs(lo) * 0.001
    edges = linspace(lo - adj, hi + adj, n + 1)
  } else {
    edges = linspace(lo, hi, n + 1)
    edges[0] -= (hi - lo) * 0.001
  }
  return x.map { binIndex($0, edges: edges) }
}

/// numpy `linspace(a, b, n)` (the last point is exactly b).
func linspace(_ a: Double, _ b: Double, _ n: Int) -> [Double] {
  guard n > 1 else { return [a] }
  let step = (b - a) / Double(n - 1)
  var out = (0..<n).map { a + Double($0) * step }
  out[n - 1] = b
  return out
}

/// The bin of `value` among right-closed intervals (edges[k], edges[k+1]].
func binIndex(_ value: Double, edges: [Double]) -> Int? {
  if value.isNaN { return nil }
  // searchsorted(edges, value, side="left") - 1
  var lo = 0, hi = edges.count
  while lo < hi {
    let mid = (lo + hi) / 2
    if edges[mid] < value { lo = mid + 1 } else { hi = mid }
  }
  let k = lo - 1
  return (k >= 0 && k < edges.count - 1) ? k : nil
}

/// cell_ranger's bins: edges -inf, the 10th, 15th, ..., 100th percentiles of the means, +inf.
func percentileBins(_ mean: [Double]) -> [Int?] {
  let sorted = mean.sorted()
  var edges = [-Double.infinity]
  for p in stride(from: 10, through: 100, by: 5) { edges.append(percentile(sorted, Double(p))) }
  edges.append(.infinity)
  return mean.map { binIndex($0, edges: edges) }
}

/// numpy `percentile` with linear interpolation, on sorted values.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
  let position = p / 100 * Double(sorted.count - 1)
  let lower = Int(position.rounded(.down))
  let upper = min(lower + 1, sorted.count - 1)
  let fraction = position - Double(lower)
  // numpy's lerp: a + (b - a) * t, computed as b - (b - a) * (1 - t) when t >= 0.5.
  let a = sorted[lower], b = sorted[upper]
  let diff = b - a
  return fraction >= 0.5 ? b - diff * (1 - fraction) : a + diff * fraction
}

/// Per-bin normalisation of dispersions: (d - mean) / std for seurat (a bin whose std is
/// undefined divides by its mean instead), (d - median) / MAD for cell_ranger.
func normalizeDispersions(_ dispersion: [Double], bins: [Int?], flavor: HVGFlavor) throws -> [Double] {
  var members: [Int: [Double]] = [:]
  for (d, b) in zip(dispersion, bins) { if let b { members[b, default: []].append(d) } }
  var center: [Int: Double] = [:], spread: [Int: Double] = [:]
  for (b, values) in members {
    let finite = values.filter { !$0.isNaN }
    switch flavor {
    case .seurat:
      let n = Double(finite.count)
      let avg = finite.isEmpty ? Double.nan : finite.reduce(0, +) / n
      let dev = finite.count < 2 ? Double.nan : (finite.map { ($0 - avg) * ($0 - avg) }.reduce(0, +) / (n - 1)).squareRoot()
      if dev.isNaN {
        center[b] = 0
        spread[b] = avg
      } else {
        center[b] = avg
        spread[b] = dev
      }
    case .cellRanger:
      // statsmodels' mad: median(|x - median(x)|) / Φ⁻¹(3/4); NaN propagates.
      if values.contains(where: \.isNaN) {
        center[b] = finite.isEmpty ? .nan : median(finite)
        spread[b] = .nan
      } else {
        let med = median(values)
        center[b] = med
        spread[b] = median(values.map { abs($0 - med) }) / 0.6744897501960817
      }
    case .seuratV3:
      throw CellDataError("internal: seurat_v3 does not bin dispersions")
    }
  }
  return zip(dispersion, bins).map { d, b in
    guard let b else { return .nan }
    return (d - center[b]!) / spread[b]!
  }
}

/// Dispersion flavors with a batch key (scanpy's `_highly_variable_genes_batched`): each
/// batch selects on its own expressed genes; statistics are averaged over batches, and with
/// n_top_genes the genes are ranked by (number of batches selecting them, mean normalised
/// dispersion), ties by gene name as pandas' groupby leaves them.
func batchedDispersionHVG(_ m: Matrix, options: HVGOptions, batches: [[Int]], varNames: [String]) throws -> HVGResult {
  let nGenes = m.nCols
  let perBatch = try batches.map { try dispersionHVG(m.rows($0), options: options, filterUnexpressed: true) }
  func average(_ pick: (HVGResult) -> [Double]) -> [Double] {
    (0..<nGenes).map { j in
      let values = perBatch.map { pick($0)[j] }.filter { !$0.isNaN }
      return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }
  }
  let means = average(\.means)
  let dispersions = average { $0.dispersions! }
  var norm = average { $0.dispersionsNorm! }
  let nBatches = (0..<nGenes).map { j in perBatch.filter { $0.highlyVariable[j] }.count }
  var selected: [Bool]
  if let n = options.nTopGenes {
    let order = (0..<nGenes).sorted { a, b in
      if nBatches[a] != nBatches[b] { return nBatches[a] > nBatches[b] }
      let (x, y) = (norm[a], norm[b])
      if x.isNaN != y.isNaN { return !x.isNaN }
      if !x.isNaN && x != y { return x > y }
      return varNames[a] < varNames[b]
    }
    selected = Array(repeating: false, count: nGenes)
    for j in order.prefix(n) { selected[j] = true }
  } else {
    norm = norm.map { $0.isNaN ? 0 : $0 }
    selected = (0..<nGenes).map { j in
      means[j] > options.minMean && means[j] < options.maxMean && norm[j] > options.minDisp && norm[j] < options.maxDisp
    }
  }
  return HVGResult(highlyVariable: selected, means: means, dispersions: dispersions, dispersionsNorm: norm, nBatches: nBatches)
}
