/// A pandas DataFrame as anndata stores it: a string index plus named one-dimensional columns
/// (numeric, bool, string, categorical or nullable), in a fixed column order.
public struct DataFrame: Equatable, Sendable {
  /// Row names (obs_names or var_names).
  public var index: [String]
  /// The name of the index column on disk (`_index` unless the index had a name).
  public var indexName: String
  public private(set) var columnNames: [String]
  public private(set) var columns: [String: Element]

  public init(index: [String], indexName: String = "_index") {
    self.index = index
    self.indexName = indexName
    self.columnNames = []
    self.columns = [:]
  }

  public var nRows: Int { index.count }

  public subscript(name: String) -> Element? { columns[name] }

  /// Sets (adds or replaces) a column; its length must equal the number of rows.
  public mutating func set(_ name: String, _ column: Element) throws {
    guard let length = column.length, length == nRows else {
      throw CellDataError("column '\(name)': length \(column.length.map(String.init) ?? "none") does not match \(nRows) rows")
    }
    if case .dict = column { throw CellDataError("column '\(name)': a dict is not a column") }
    if columns[name] == nil { columnNames.append(name) }
    columns[name] = column
  }

  public mutating func remove(_ name: String) {
    columns[name] = nil
    columnNames.removeAll { $0 == name }
  }

  /// A numeric column as Doubles (nullable values read as NaN where missing).
  public func doubles(_ name: String) throws -> [Double] {
    guard let column = columns[name] else { throw CellDataError("no column '\(name)'") }
    switch column {
    case .dense(let d):
      if let v = d.data.doubles { return v }
    case .nullable(let n):
      if let v = n.values.doubles { return zip(v, n.mask).map { $1 ? .nan : $0 } }
    default: break
    }
    throw CellDataError("column '\(name)' is not numeric")
  }

  /// A column as text labels (categorical, string or numeric); nil where missing.
  public func labels(_ name: String) throws -> [String?] {
    guard let column = columns[name] else { throw CellDataError("no column '\(name)'") }
    switch column {
    case .categorical(let c): return c.labels
    case .dense(let d): return (0..<d.data.count).map { d.data.text(at: $0) }
    case .nullable(let n): return (0..<n.mask.count).map { n.mask[$0] ? nil : n.values.text(at: $0) }
    default: throw CellDataError("column '\(name)' cannot be read as labels")
    }
  }

  /// The rows at `selection`, in that order.
  public func rows(_ selection: [Int]) -> DataFrame {
    var out = DataFrame(index: selection.map { index[$0] }, indexName: indexName)
    out.columnNames = columnNames
    out.columns = columns.mapValues { try! $0.rows(selection) }
    return out
  }

  /// Positions of `names` in the index; a missing name is an error.
  public func positions(of names: [String]) throws -> [Int] {
    var lookup: [String: Int] = [:]
    for (i, name) in index.enumerated() where lookup[name] == nil { lookup[name] = i }
    return try names.map { name in
      guard let i = lookup[name] else { throw CellDataError("'\(name)' is not in the index") }
      return i
    }
  }
}
