/// A dense n-dimensional array in row-major (C) order. A shape of `[]` is a scalar.
public struct DenseArray: Equatable, Sendable {
  public var shape: [Int]
  public var data: ArrayData

  public init(shape: [Int], data: ArrayData) throws {
    let count = shape.reduce((value: 1, overflow: false)) { acc, d in
      let (v, o) = acc.value.multipliedReportingOverflow(by: d)
      return (v, acc.overflow || o)
    }
    guard shape.allSatisfy({ $0 >= 0 }), !count.overflow, count.value == data.count else {
      throw CellDataError("dense array: shape \(shape) does not hold \(data.count) values")
    }
    self.shape = shape
    self.data = data
  }

  /// The shape of an array crash isolation's child has read through without keeping it (its
  /// checks use shapes only); no values.
  init(probeShape shape: [Int]) {
    self.shape = shape
    self.data = .float32([])
  }

  /// A matrix of Doubles; `values` in row-major order.
  public init(rows: Int, cols: Int, values: [Double]) throws {
    try self.init(shape: [rows, cols], data: .float64(values))
  }

  /// A matrix of Floats; `values` in row-major order.
  public init(rows: Int, cols: Int, values: [Float]) throws {
    try self.init(shape: [rows, cols], data: .float32(values))
  }

  /// A one-dimensional array.
  public init(_ data: ArrayData) {
    self.shape = [data.count]
    self.data = data
  }

  public var isScalar: Bool { shape.isEmpty }

  /// Elements per index of the first axis.
  var rowStride: Int { shape.dropFirst().reduce(1, *) }

  /// The slices at `indices` along the first axis.
  public func rows(_ indices: [Int]) -> DenseArray {
    guard shape.count >= 1 else { return self }
    let stride = rowStride
    var flat: [Int] = []
    flat.reserveCapacity(indices.count * stride)
    for r in indices { flat += (r * stride)..<((r + 1) * stride) }
    var out = self
    out.shape[0] = indices.count
    out.data = data.gathered(flat)
    return out
  }

  /// The columns at `indices` of a two-dimensional array.
  public func columns(_ indices: [Int]) -> DenseArray {
    precondition(shape.count == 2, "columns(_:) needs a matrix")
    let cols = shape[1]
    var flat: [Int] = []
    flat.reserveCapacity(shape[0] * indices.count)
    for r in 0..<shape[0] { for c in indices { flat.append(r * cols + c) } }
    var out = self
    out.shape[1] = indices.count
    out.data = data.gathered(flat)
    return out
  }

  /// The transpose of a two-dimensional array.
  public func transposed() -> DenseArray {
    precondition(shape.count == 2, "transposed() needs a matrix")
    let (r, c) = (shape[0], shape[1])
    var flat = [Int](repeating: 0, count: r * c)
    for i in 0..<r { for j in 0..<c { flat[j * r + i] = i * c + j } }
    var out = self
    out.shape = [c, r]
    out.data = data.gathered(flat)
    return out
  }

  /// Stacks arrays along the first axis; the other axes must agree.
  public static func stacked(_ parts: [DenseArray]) throws -> DenseArray {
    guard let first = parts.first else { throw CellDataError("cannot stack zero arrays") }
    let tail = Array(first.shape.dropFirst())
    for p in parts where Array(p.shape.dropFirst()) != tail || p.shape.isEmpty {
      throw CellDataError("cannot stack arrays of shapes \(first.shape) and \(p.shape)")
    }
    let data = try ArrayData.concatenated(parts.map(\.data))
    return try DenseArray(shape: [parts.reduce(0) { $0 + $1.shape[0] }] + tail, data: data)
  }
}
