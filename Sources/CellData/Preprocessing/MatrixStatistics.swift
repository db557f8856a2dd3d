import Foundation

/// Per-row and per-column statistics and element-wise maps on X-like matrices, with the
/// conventions scanpy uses (sums accumulated in Double; squares of float32 values taken in
/// float32, as scanpy's numba kernels do).
extension Matrix {
  /// Visits every stored value as (row, column, value); dense matrices visit every entry.
  func forEachStored(_ body: (Int, Int, Double) -> Void) throws {
    let visited: Void? = data.withNumberReader { value in forEachPosition { k, i, j in body(i, j, value(k)) } }
    guard visited != nil else { throw CellDataError("matrix holds strings, not numbers") }
  }

  /// Calls `body(k, row, column)` for each stored entry, k its position in storage order.
  func forEachPosition(_ body: (Int, Int, Int) -> Void) {
    switch self {
    case .dense:
      let cols = nCols
      for i in 0..<nRows { for j in 0..<cols { body(i * cols + j, i, j) } }
    case .sparse(let s):
      let major = s.format == .csr ? s.nRows : s.nCols
      for m in 0..<major {
        for k in s.indptr[m]..<s.indptr[m + 1] {
          let minor = Int(s.indices[k])
          if s.format == .csr { body(k, m, minor) } else { body(k, minor, m) }
        }
      }
    }
  }

  /// Sum of each row.
  public func rowSums() throws -> [Double] {
    var out = [Double](repeating: 0, count: nRows)
    try forEachStored { i, _, v in out[i] += v }
    return out
  }

  /// Sum of each column.
  public func columnSums() throws -> [Double] {
    var out = [Double](repeating: 0, count: nCols)
    try forEachStored { _, j, v in out[j] += v }
    return out
  }

  /// Number of entries > 0 in each row.
  public func rowPositiveCounts() throws -> [Int] {
    var out = [Int](repeating: 0, count: nRows)
    try forEachStored { i, _, v in if v > 0 { out[i] += 1 } }
    return out
  }

  /// Number of entries > 0 in each column.
  public func columnPositiveCounts() throws -> [Int] {
    var out = [Int](repeating: 0, count: nCols)
    try forEachStored { _, j, v in if v > 0 { out[j] += 1 } }
    return out
  }

  /// Column means and unbiased variances (scanpy's `_get_mean_var` along axis 0).
  public func columnMeanVariance() throws -> (mean: [Double], variance: [Double]) {
    let squareInFloat32 = data.dtypeName == "float32"
    var sums = [Double](repeating: 0, count: nCols)
    var squares = [Double](repeating: 0, count: nCols)
    try forEachStored { _, j, v in
      sums[j] += v
      squares[j] += squareInFloat32 ? Double(Float(v) * Float(v)) : v * v
    }
    let n = Double(nRows)
    var mean = sums, variance = squares
    for j in 0..<nCols {
      mean[j] = sums[j] / n
      variance[j] = squares[j] / n - mean[j] * mean[j]
      if nRows != 1 { variance[j] *= n / (n - 1) }
    }
    return (mean, variance)
  }

  /// Applies `f` to every stored value (f(0) must be 0 for sparse matrices to stay exact).
  /// Float32 matrices stay float32: `f32` computes in Float; other dtypes become float64
  /// (integers too, as scanpy converts them).
  func mapValues(f32: (Float) -> Float, f64: (Double) -> Double) throws -> Matrix {
    let n = data.count
    switch data {
    case .float32(let a): return withData(.float32(a.map(f32)))
    case .string: throw CellDataError("matrix holds strings, not numbers")
    default: return withData(.float64(data.withNumberReader { value in (0..<n).map { f64(value($0)) } }!))
    }
  }

  /// Maps values with knowledge of their row (for per-cell scaling).
  func mapValuesByRow(f32: (Int, Float) -> Float, f64: (Int, Double) -> Double) throws -> Matrix {
    let mapped: ArrayData
    switch data {
    case .float32(let a):
      var out = [Float](repeating: 0, count: a.count)
      out.withUnsafeMutableBufferPointer { o in
        a.withUnsafeBufferPointer { values in forEachPosition { k, i, _ in o[k] = f32(i, values[k]) } }
      }
      mapped = .float32(out)
    case .string: throw CellDataError("matrix holds strings, not numbers")
    default:
      var out = [Double](repeating: 0, count: data.count)
      out.withUnsafeMutableBufferPointer { o in
        _ = data.withNumberReader { value in forEachPosition { k, i, _ in o[k] = f64(i, value(k)) } }
      }
      mapped = .float64(out)
    }
    return withData(mapped)
  }

  /// The same structure with other values (in storage order).
  func withData(_ values: ArrayData) -> Matrix {
    switch self {
    case .dense(var d):
      d.data = values
      return .dense(d)
    case .sparse(var s):
      s.data = values
      return .sparse(s)
    }
  }

  /// Throws when any value is NaN or infinite.
  public func requireFinite(_ what: String) throws {
    guard !data.isString else { throw CellDataError("\(what) holds strings, not numbers") }
    if let (i, value) = data.firstNumber(where: { !$0.isFinite }) {
      throw CellDataError("\(what) contains a non-finite value (\(value)) at storage position \(i)")
    }
  }

  /// Throws unless every value is a non-negative integer (counts).
  public func requireCounts(_ what: String) throws {
    guard !data.isString else { throw CellDataError("\(what) holds strings, not numbers") }
    if let (i, value) = data.firstNumber(where: { !$0.isFinite || $0 < 0 || $0.rounded() != $0 }) {
      throw CellDataError("\(what) must hold non-negative integer counts; found \(value) at storage position \(i)")
    }
  }
}

extension AnnData {
  /// X, or the layer `layer`, with a clear error when absent.
  public func matrix(layer: String?) throws -> Matrix {
    if let layer {
      guard let m = layers[layer] else {
        throw CellDataError("no layer '\(layer)' (layers: \(layers.keys.sorted().joined(separator: ", ")))")
      }
      return m
    }
    guard let X else { throw CellDataError("the AnnData has no X matrix") }
    return X
  }

  mutating func setMatrix(_ m: Matrix, layer: String?) {
    if let layer { layers[layer] = m } else { X = m }
  }
}
