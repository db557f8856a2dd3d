/// A pandas Categorical: integer codes into `categories`, -1 for a missing value.
public struct Categorical: Equatable, Sendable {
  public var codes: [Int]
  public var categories: ArrayData
  public var ordered: Bool

  public init(codes: [Int], categories: ArrayData, ordered: Bool = false) throws {
    if let bad = codes.first(where: { $0 < -1 || $0 >= categories.count }) {
      throw CellDataError("categorical: code \(bad) out of range for \(categories.count) categories")
    }
    self.codes = codes
    self.categories = categories
    self.ordered = ordered
  }

  /// Builds a categorical from string values with sorted categories, as pandas'
  /// `astype("category")` does.
  public init(_ values: [String], ordered: Bool = false) {
    let categories = Array(Set(values)).sorted()
    let lookup = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
    self.codes = values.map { lookup[$0]! }
    self.categories = .string(categories)
    self.ordered = ordered
  }

  /// The category of each element as text; nil where missing.
  public var labels: [String?] { codes.map { $0 < 0 ? nil : categories.text(at: $0) } }
}

/// A pandas nullable array (Int64, boolean or string dtype): values and a mask that is true
/// where a value is missing.
public struct NullableArray: Equatable, Sendable {
  public enum Kind: String, Sendable {
    case integer = "nullable-integer"
    case boolean = "nullable-boolean"
    case string = "nullable-string-array"
  }

  public var kind: Kind
  public var values: ArrayData
  public var mask: [Bool]

  public init(kind: Kind, values: ArrayData, mask: [Bool]) throws {
    guard values.count == mask.count else {
      throw CellDataError("\(kind.rawValue): \(values.count) values but \(mask.count) mask entries")
    }
    self.kind = kind
    self.values = values
    self.mask = mask
  }
}

/// Any element of an AnnData's uns, obsm, varm or a data-frame column, in the anndata on-disk
/// encodings: dense arrays and scalars, sparse matrices, categoricals, nullable arrays, data
/// frames and (nested) dictionaries.
public indirect enum Element: Equatable, Sendable {
  case dense(DenseArray)
  case sparse(SparseMatrix)
  case categorical(Categorical)
  case nullable(NullableArray)
  case dataFrame(DataFrame)
  case dict([String: Element])

  /// A one-dimensional array element.
  public static func array(_ data: ArrayData) -> Element { .dense(DenseArray(data)) }

  /// A scalar (a string or a number).
  public static func scalar(_ data: ArrayData) -> Element {
    .dense(try! DenseArray(shape: [], data: data.count == 1 ? data : data.gathered([0])))
  }

  public static func string(_ value: String) -> Element { scalar(.string([value])) }
  public static func number(_ value: Double) -> Element { scalar(.float64([value])) }
  public static func integer(_ value: Int) -> Element { scalar(.int64([Int64(value)])) }

  /// The length along the first axis (rows of a matrix or frame); nil for scalars and dicts.
  public var length: Int? {
    switch self {
    case .dense(let d): return d.shape.first
    case .sparse(let s): return s.nRows
    case .categorical(let c): return c.codes.count
    case .nullable(let n): return n.mask.count
    case .dataFrame(let f): return f.nRows
    case .dict: return nil
    }
  }

  /// The entries at `selection` along the first axis.
  public func rows(_ selection: [Int]) throws -> Element {
    switch self {
    case .dense(let d) where !d.isScalar: return .dense(d.rows(selection))
    case .sparse(let s): return .sparse(s.rows(selection))
    case .categorical(var c):
      c.codes = selection.map { c.codes[$0] }
      return .categorical(c)
    case .nullable(var n):
      n.values = n.values.gathered(selection)
      n.mask = selection.map { n.mask[$0] }
      return .nullable(n)
    case .dataFrame(let f): return .dataFrame(f.rows(selection))
    default: throw CellDataError("cannot select rows of a scalar or a dict")
    }
  }

  /// A short type description for `singlecell info`.
  public var typeDescription: String {
    switch self {
    case .dense(let d): return d.isScalar ? "scalar \(d.data.dtypeName)" : "array \(d.data.dtypeName) \(d.shape)"
    case .sparse(let s): return "sparse \(s.format.rawValue) \(s.data.dtypeName) [\(s.nRows), \(s.nCols)]"
    case .categorical(let c): return "category (\(c.categories.count) categories\(c.ordered ? ", ordered" : ""))"
    case .nullable(let n):
      switch n.kind {
      case .integer: return "Int64 (nullable)"
      case .boolean: return "boolean (nullable)"
      case .string: return "string (nullable)"
      }
    case .dataFrame(let f): return "dataframe [\(f.nRows) × \(f.columnNames.count)]"
    case .dict(let d): return "dict (\(d.count) keys)"
    }
  }
}
