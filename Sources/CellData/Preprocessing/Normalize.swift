import Foundation

extension AnnData {
  /// scanpy's `pp.normalize_total`: scales each cell so that its counts sum to `targetSum`
  /// (default: the median of the cells' totals, as scanpy computes it for CSR input).
  /// With `excludeHighlyExpressed`, genes that make up more than `maxFraction` of some cell's
  /// total are left out of every cell's total. Float32 input is computed in float32 like
  /// scanpy; integer input becomes float32 as in scanpy. Cells with zero counts stay zero.
  public mutating func normalizeTotal(
    targetSum: Double? = nil, excludeHighlyExpressed: Bool = false, maxFraction: Double = 0.05,
    layer: String? = nil
  ) throws {
    var m = try matrix(layer: layer)
    try m.requireFinite(layer.map { "layer '\($0)'" } ?? "X")
    if m.data.isInteger || m.data.dtypeName == "bool" {
      let n = m.data.count
      m = m.withData(.float32(m.data.withNumberReader { value in (0..<n).map { Float(value($0)) } }!))
    }
    if let targetSum, !(targetSum > 0 && targetSum.isFinite) {
      throw CellDataError("normalize_total: target sum must be positive and finite, got \(targetSum)")
    }
    guard (0...1).contains(maxFraction) else {
      throw CellDataError("normalize_total: max fraction must lie in [0, 1], got \(maxFraction)")
    }
    let isFloat32 = m.data.dtypeName == "float32"
    let round: (Double) -> Double = { isFloat32 ? Double(Float($0)) : $0 }
    var totals = try m.rowSums().map(round)
    if excludeHighlyExpressed {
      var highly = [Bool](repeating: false, count: m.nCols)
      try m.forEachStored { i, j, v in if v > maxFraction * totals[i] { highly[j] = true } }
      totals = [Double](repeating: 0, count: m.nRows)
      try m.forEachStored { i, j, v in if !highly[j] { totals[i] += v } }
      totals = totals.map(round)
    }
    let target: Double
    if let targetSum {
      target = targetSum
    } else {
      // scanpy: the median over all cells for CSR input, over cells with counts otherwise.
      var isCSR = false
      if case .sparse(let s) = m, s.format == .csr { isCSR = true }
      let pool = isCSR ? totals : totals.filter { $0 > 0 }
      target = median(pool)
    }
    if isFloat32 {
      let t = Float(target)
      let factors = totals.map { Float($0) / t }
      m = try m.mapValuesByRow(f32: { i, v in factors[i] == 0 ? v : v / factors[i] }, f64: { _, v in v })
    } else {
      let factors = totals.map { $0 / target }
      m = try m.mapValuesByRow(f32: { _, v in v }, f64: { i, v in factors[i] == 0 ? v : v / factors[i] })
    }
    setMatrix(m, layer: layer)
  }

  /// scanpy's `pp.log1p`: X = log(1 + X) (natural log). Negative values below -1 or NaN are
  /// an error. Records `uns["log1p"]` as scanpy does.
  public mutating func log1p(layer: String? = nil) throws {
    let m = try matrix(layer: layer)
    try m.requireFinite(layer.map { "layer '\($0)'" } ?? "X")
    if let (_, bad) = m.data.firstNumber(where: { $0 <= -1 }) {
      throw CellDataError("log1p: value \(bad) <= -1 has no logarithm")
    }
    setMatrix(try m.mapValues(f32: { Foundation.log1p($0) }, f64: { Foundation.log1p($0) }), layer: layer)
    uns["log1p"] = .dict([:])
  }
}

/// The median (the mean of the two middle values for an even count); NaN when empty.
func median(_ values: [Double]) -> Double {
  guard !values.isEmpty else { return .nan }
  let s = values.sorted()
  let n = s.count
  return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}
