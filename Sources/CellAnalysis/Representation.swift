import CellData

/// A dense row-major matrix of cell coordinates: a representation (an obsm embedding such as X_pca or X_scVI),
/// checked to be finite.
public struct Representation: Sendable, Equatable {
  public let rows: Int
  public let cols: Int
  /// Row-major values, `rows × cols`.
  public let values: [Double]
  /// The values are float32 numbers (the matrix was stored as float32, as scanpy's X_pca is).
  /// scikit-learn then computes cosine distances in float32, and exact cosine kNN repeats that
  /// arithmetic (see `Neighbors.exactKNN`).
  public let singlePrecision: Bool

  /// Validates shape and values; NaN or infinity is an error naming `what`. `singlePrecision`
  /// says that the values came from float32 storage.
  public init(rows: Int, cols: Int, values: [Double], what: String = "embedding", singlePrecision: Bool = false) throws {
    guard rows >= 0, cols >= 1, values.count == rows * cols else {
      throw CellDataError("\(what): \(values.count) values do not fill \(rows) × \(cols)")
    }
    if let bad = values.firstIndex(where: { !$0.isFinite }) {
      throw CellDataError("\(what) contains NaN or infinite values (first at row \(bad / cols), column \(bad % cols))")
    }
    self.rows = rows
    self.cols = cols
    self.values = values
    self.singlePrecision = singlePrecision
  }

  /// Row `i` as a slice.
  public func row(_ i: Int) -> ArraySlice<Double> { values[(i * cols)..<((i + 1) * cols)] }

  /// The first `n` columns.
  public func leadingColumns(_ n: Int) throws -> Representation {
    guard n >= 1, n <= cols else { throw CellDataError("cannot take \(n) of \(cols) columns") }
    if n == cols { return self }
    var out: [Double] = []
    out.reserveCapacity(rows * n)
    for i in 0..<rows { out += values[(i * cols)..<(i * cols + n)] }
    return try Representation(rows: rows, cols: n, values: out, singlePrecision: singlePrecision)
  }

  /// The rows at `selection`.
  public func subset(_ selection: [Int]) -> Representation {
    var out: [Double] = []
    out.reserveCapacity(selection.count * cols)
    for i in selection { out += row(i) }
    return try! Representation(rows: selection.count, cols: cols, values: out, singlePrecision: singlePrecision)
  }
}

extension AnnData {
  /// The representation scanpy's `_choose_representation` would use: obsm[`useRep`] ("X"
  /// for the data matrix), optionally its first `nPCs` columns. Without `useRep`, X_pca
  /// when present, else X.
  public func representation(useRep: String? = nil, nPCs: Int? = nil) throws -> Representation {
    let key = useRep ?? (obsm["X_pca"] != nil ? "X_pca" : "X")
    let full: Representation
    if key == "X" {
      guard let X else { throw CellDataError("the AnnData has no X to use as representation") }
      full = try Representation(rows: nObs, cols: nVars, values: try X.denseDoubles(), what: "X",
                                singlePrecision: X.isSinglePrecision)
    } else {
      guard let element = obsm[key] else {
        let available = obsm.keys.sorted().joined(separator: ", ")
        throw CellDataError("no obsm['\(key)'] (obsm has: \(available.isEmpty ? "nothing" : available))")
      }
      full = try Self.embedding(element, key: key, nObs: nObs)
    }
    guard let nPCs else { return full }
    guard nPCs >= 1, nPCs <= full.cols else {
      throw CellDataError("n_pcs \(nPCs) is out of range for '\(key)' with \(full.cols) columns")
    }
    return try full.leadingColumns(nPCs)
  }

  static func embedding(_ element: Element, key: String, nObs: Int) throws -> Representation {
    switch element {
    case .dense(let d) where d.shape.count == 2:
      guard let values = d.data.doubles else { throw CellDataError("obsm['\(key)'] is not numeric") }
      return try Representation(rows: d.shape[0], cols: d.shape[1], values: values, what: "obsm['\(key)']",
                                singlePrecision: d.data.dtypeName == "float32")
    case .sparse(let s):
      return try Representation(rows: s.nRows, cols: s.nCols, values: s.denseDoubles(), what: "obsm['\(key)']",
                                singlePrecision: s.data.dtypeName == "float32")
    default:
      throw CellDataError("obsm['\(key)'] is not a matrix (\(element.typeDescription))")
    }
  }

  /// An obs column as labels for metrics; missing values are an error.
  public func obsLabels(_ key: String) throws -> [String] {
    guard obs[key] != nil else {
      throw CellDataError("no obs column '\(key)' (obs has: \(obs.columnNames.joined(separator: ", ")))")
    }
    let labels = try obs.labels(key)
    if let missing = labels.firstIndex(where: { $0 == nil }) {
      throw CellDataError("obs['\(key)'] has a missing value at row \(missing)")
    }
    return labels.map { $0! }
  }
}

extension Matrix {
  /// Whether the stored values are float32.
  var isSinglePrecision: Bool {
    switch self {
    case .dense(let d): return d.data.dtypeName == "float32"
    case .sparse(let s): return s.data.dtypeName == "float32"
    }
  }
}
