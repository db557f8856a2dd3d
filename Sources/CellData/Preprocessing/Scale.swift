import Foundation

extension AnnData {
  /// scanpy's `pp.scale`: per gene, subtract the mean (when `zeroCenter`) and divide by the
  /// standard deviation (unbiased; a zero deviation counts as 1), then clip to `maxValue`
  /// (to ±maxValue when zero-centred). Sparse input becomes dense when zero-centred.
  /// Stores var["mean"] and var["std"] as scanpy does.
  public mutating func scale(zeroCenter: Bool = true, maxValue: Double? = nil, layer: String? = nil) throws {
    let m = try matrix(layer: layer)
    try m.requireFinite(layer.map { "layer '\($0)'" } ?? "X")
    if let maxValue, !(maxValue > 0) { throw CellDataError("scale: max value must be positive, got \(maxValue)") }
    let (mean, variance) = try m.columnMeanVariance()
    let std = variance.map { $0 > 0 ? $0.squareRoot() : 1 }
    func transform(_ j: Int, _ v: Double) -> Double {
      var x = (zeroCenter ? v - mean[j] : v) / std[j]
      if let maxValue {
        x = min(x, maxValue)
        if zeroCenter { x = max(x, -maxValue) }
      }
      return x
    }
    let result: Matrix
    if zeroCenter || { if case .dense = m { return true } else { return false } }() {
      // Written straight in the result's dtype: a float32 matrix needs no dense Double copy.
      let cols = m.nCols
      func scaled<T: BinaryFloatingPoint>(_: T.Type) throws -> [T] {
        var out = [T](repeating: 0, count: m.nRows * cols)
        try m.forEachStored { i, j, v in out[i * cols + j] = T(v) }
        for k in out.indices { out[k] = T(transform(k % cols, Double(out[k]))) }
        return out
      }
      let data: ArrayData
      if case .float32 = m.data { data = .float32(try scaled(Float.self)) } else { data = .float64(try scaled(Double.self)) }
      result = .dense(try DenseArray(shape: [m.nRows, cols], data: data))
    } else {
      guard case .sparse(var s) = m else { fatalError("unreachable") }
      var values = [Double](repeating: 0, count: s.data.count)
      _ = s.data.withNumberReader { value in m.forEachPosition { k, _, j in values[k] = transform(j, value(k)) } }
      s.data = ArrayData.floating(values, like: s.data)
      result = .sparse(s)
    }
    setMatrix(result, layer: layer)
    try self.var.set("mean", .array(.float64(mean)))
    try self.var.set("std", .array(.float64(std)))
  }
}
