/// A one-dimensional typed array: the element storage of every dense array, sparse matrix value
/// vector and data-frame column. The case keeps the on-disk dtype, so a file read and written
/// back has the same dtypes.
public enum ArrayData: Equatable, Sendable {
  case bool([Bool])
  case int8([Int8])
  case int16([Int16])
  case int32([Int32])
  case int64([Int64])
  case uint8([UInt8])
  case uint16([UInt16])
  case uint32([UInt32])
  case uint64([UInt64])
  case float32([Float])
  case float64([Double])
  case string([String])

  public var count: Int {
    switch self {
    case .bool(let a): return a.count
    case .int8(let a): return a.count
    case .int16(let a): return a.count
    case .int32(let a): return a.count
    case .int64(let a): return a.count
    case .uint8(let a): return a.count
    case .uint16(let a): return a.count
    case .uint32(let a): return a.count
    case .uint64(let a): return a.count
    case .float32(let a): return a.count
    case .float64(let a): return a.count
    case .string(let a): return a.count
    }
  }

  /// The numpy name of the dtype (`float32`, `int64`, `bool`, `str`).
  public var dtypeName: String {
    switch self {
    case .bool: return "bool"
    case .int8: return "int8"
    case .int16: return "int16"
    case .int32: return "int32"
    case .int64: return "int64"
    case .uint8: return "uint8"
    case .uint16: return "uint16"
    case .uint32: return "uint32"
    case .uint64: return "uint64"
    case .float32: return "float32"
    case .float64: return "float64"
    case .string: return "str"
    }
  }

  public var isString: Bool { if case .string = self { return true } else { return false } }
  public var isFloatingPoint: Bool {
    switch self {
    case .float32, .float64: return true
    default: return false
    }
  }
  public var isInteger: Bool {
    switch self {
    case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64: return true
    default: return false
    }
  }

  /// The values as Double (bools as 0/1); nil for strings.
  public var doubles: [Double]? {
    switch self {
    case .bool(let a): return a.map { $0 ? 1 : 0 }
    case .int8(let a): return a.map(Double.init)
    case .int16(let a): return a.map(Double.init)
    case .int32(let a): return a.map(Double.init)
    case .int64(let a): return a.map(Double.init)
    case .uint8(let a): return a.map(Double.init)
    case .uint16(let a): return a.map(Double.init)
    case .uint32(let a): return a.map(Double.init)
    case .uint64(let a): return a.map(Double.init)
    case .float32(let a): return a.map(Double.init)
    case .float64(let a): return a
    case .string: return nil
    }
  }

  /// Calls `body` with a reader of the value at a storage position, as Double (bools as 0/1),
  /// read in place; nil for strings. Passes over a large matrix's values go through it:
  /// `doubles` would copy them (400 MB for 50 M float32 values).
  public func withNumberReader<R>(_ body: ((Int) -> Double) -> R) -> R? {
    func integers<T: BinaryInteger>(_ values: [T]) -> R { values.withUnsafeBufferPointer { b in body { Double(b[$0]) } } }
    func floats<T: BinaryFloatingPoint>(_ values: [T]) -> R { values.withUnsafeBufferPointer { b in body { Double(b[$0]) } } }
    switch self {
    case .bool(let a): return a.withUnsafeBufferPointer { b in body { b[$0] ? 1 : 0 } }
    case .int8(let a): return integers(a)
    case .int16(let a): return integers(a)
    case .int32(let a): return integers(a)
    case .int64(let a): return integers(a)
    case .uint8(let a): return integers(a)
    case .uint16(let a): return integers(a)
    case .uint32(let a): return integers(a)
    case .uint64(let a): return integers(a)
    case .float32(let a): return floats(a)
    case .float64(let a): return floats(a)
    case .string: return nil
    }
  }

  /// The position and value (as Double; bools as 0/1) of the first number for which `predicate`
  /// holds; nil when none does, or for strings. Scans in place (`withNumberReader`).
  public func firstNumber(where predicate: (Double) -> Bool) -> (index: Int, value: Double)? {
    let n = count
    return withNumberReader { value -> (index: Int, value: Double)? in
      for i in 0..<n where predicate(value(i)) { return (i, value(i)) }
      return nil
    } ?? nil
  }

  /// The values as Int when the dtype is an integer or bool; nil otherwise.
  public var integers: [Int]? {
    switch self {
    case .bool(let a): return a.map { $0 ? 1 : 0 }
    case .int8(let a): return a.map(Int.init)
    case .int16(let a): return a.map(Int.init)
    case .int32(let a): return a.map(Int.init)
    case .int64(let a): return a.map(Int.init)
    case .uint8(let a): return a.map(Int.init)
    case .uint16(let a): return a.map(Int.init)
    case .uint32(let a): return a.map(Int.init)
    case .uint64(let a): return a.map { Int(truncatingIfNeeded: $0) }
    default: return nil
    }
  }

  /// The element at `i` rendered as text (for display and for joining on names).
  public func text(at i: Int) -> String {
    switch self {
    case .bool(let a): return a[i] ? "True" : "False"
    case .int8(let a): return String(a[i])
    case .int16(let a): return String(a[i])
    case .int32(let a): return String(a[i])
    case .int64(let a): return String(a[i])
    case .uint8(let a): return String(a[i])
    case .uint16(let a): return String(a[i])
    case .uint32(let a): return String(a[i])
    case .uint64(let a): return String(a[i])
    case .float32(let a): return String(a[i])
    case .float64(let a): return String(a[i])
    case .string(let a): return a[i]
    }
  }

  /// Applies the same shape-only transformation (gather, slice, concatenation) to any case.
  func transformed(_ t: some ArrayTransform) -> ArrayData {
    switch self {
    case .bool(let a): return .bool(t.apply(a))
    case .int8(let a): return .int8(t.apply(a))
    case .int16(let a): return .int16(t.apply(a))
    case .int32(let a): return .int32(t.apply(a))
    case .int64(let a): return .int64(t.apply(a))
    case .uint8(let a): return .uint8(t.apply(a))
    case .uint16(let a): return .uint16(t.apply(a))
    case .uint32(let a): return .uint32(t.apply(a))
    case .uint64(let a): return .uint64(t.apply(a))
    case .float32(let a): return .float32(t.apply(a))
    case .float64(let a): return .float64(t.apply(a))
    case .string(let a): return .string(t.apply(a))
    }
  }

  /// The elements at `indices`, in that order.
  public func gathered(_ indices: [Int]) -> ArrayData { transformed(Gather(indices: indices)) }

  /// An array of the same dtype with `n` default values (zero, false or the empty string).
  public func emptyLike(count n: Int) -> ArrayData {
    switch self {
    case .bool: return .bool(Array(repeating: false, count: n))
    case .int8: return .int8(Array(repeating: 0, count: n))
    case .int16: return .int16(Array(repeating: 0, count: n))
    case .int32: return .int32(Array(repeating: 0, count: n))
    case .int64: return .int64(Array(repeating: 0, count: n))
    case .uint8: return .uint8(Array(repeating: 0, count: n))
    case .uint16: return .uint16(Array(repeating: 0, count: n))
    case .uint32: return .uint32(Array(repeating: 0, count: n))
    case .uint64: return .uint64(Array(repeating: 0, count: n))
    case .float32: return .float32(Array(repeating: 0, count: n))
    case .float64: return .float64(Array(repeating: 0, count: n))
    case .string: return .string(Array(repeating: "", count: n))
    }
  }

  /// Joins arrays end to end. Arrays of one dtype keep it; numeric arrays of different dtypes
  /// become float64; mixing strings with numbers is an error.
  public static func concatenated(_ parts: [ArrayData]) throws -> ArrayData {
    guard let first = parts.first else { return .float64([]) }
    if parts.allSatisfy({ $0.dtypeName == first.dtypeName }) {
      return first.transformed(Concatenate(parts: parts))
    }
    var all: [Double] = []
    for part in parts {
      guard let d = part.doubles else {
        throw CellDataError("cannot concatenate string and numeric arrays")
      }
      all += d
    }
    return .float64(all)
  }

  /// Float32 values become Float, any other numeric dtype becomes Double: the dtype that
  /// scanpy computes with for this input.
  public static func floating(_ values: [Double], like template: ArrayData) -> ArrayData {
    if case .float32 = template { return .float32(values.map { Float($0) }) }
    return .float64(values)
  }
}

protocol ArrayTransform {
  func apply<T>(_ a: [T]) -> [T]
}

struct Gather: ArrayTransform {
  let indices: [Int]
  func apply<T>(_ a: [T]) -> [T] { indices.map { a[$0] } }
}

/// Concatenates the arrays of `parts`, which all have the receiver's case.
struct Concatenate: ArrayTransform {
  let parts: [ArrayData]
  func apply<T>(_ a: [T]) -> [T] {
    var out: [T] = []
    out.reserveCapacity(parts.reduce(0) { $0 + $1.count })
    for part in parts { out += part.typedArray(T.self) ?? [] }
    return out
  }
}

extension ArrayData {
  /// The stored array when its element type is `T`.
  func typedArray<T>(_: T.Type) -> [T]? {
    switch self {
    case .bool(let a): return a as? [T]
    case .int8(let a): return a as? [T]
    case .int16(let a): return a as? [T]
    case .int32(let a): return a as? [T]
    case .int64(let a): return a as? [T]
    case .uint8(let a): return a as? [T]
    case .uint16(let a): return a as? [T]
    case .uint32(let a): return a as? [T]
    case .uint64(let a): return a as? [T]
    case .float32(let a): return a as? [T]
    case .float64(let a): return a as? [T]
    case .string(let a): return a as? [T]
    }
  }
}
