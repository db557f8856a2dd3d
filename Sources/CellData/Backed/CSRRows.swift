/// Consecutive rows of a cells × genes matrix in CSR form with float32 values: what a block
/// read of a backed file returns, and what the streaming loader buffers.
public struct CSRRows: Equatable, Sendable {
  public let nCols: Int
  public var values: [Float]
  public var columns: [Int32]
  /// nRows + 1 offsets into `values`, starting at 0.
  public var rowStarts: [Int]

  public var nRows: Int { rowStarts.count - 1 }
  public var nnz: Int { values.count }

  public init(nCols: Int, values: [Float], columns: [Int32], rowStarts: [Int]) {
    self.nCols = nCols
    self.values = values
    self.columns = columns
    self.rowStarts = rowStarts
  }

  /// No rows.
  public init(nCols: Int) { self.init(nCols: nCols, values: [], columns: [], rowStarts: [0]) }

  /// The nonzeros of a dense row-major block.
  init(dense: [Float], nRows: Int, nCols: Int) {
    var values: [Float] = [], columns: [Int32] = [], starts = [0]
    starts.reserveCapacity(nRows + 1)
    for r in 0..<nRows {
      for c in 0..<nCols where dense[r * nCols + c] != 0 {
        values.append(dense[r * nCols + c])
        columns.append(Int32(c))
      }
      starts.append(values.count)
    }
    self.init(nCols: nCols, values: values, columns: columns, rowStarts: starts)
  }

  /// As a float32 CSR `Matrix` (indices as stored, which a remapped block keeps sorted).
  public func matrix() throws -> Matrix {
    .sparse(try SparseMatrix(format: .csr, nRows: nRows, nCols: nCols, data: .float32(values),
                             indices: columns, indptr: rowStarts))
  }

  /// Row `row` as dense values.
  public func denseRow(_ row: Int) -> [Float] {
    var out = [Float](repeating: 0, count: nCols)
    for k in rowStarts[row]..<rowStarts[row + 1] { out[Int(columns[k])] += values[k] }
    return out
  }

  /// The sum of each row.
  public func rowSums() -> [Double] {
    (0..<nRows).map { r in values[rowStarts[r]..<rowStarts[r + 1]].reduce(0.0) { $0 + Double($1) } }
  }

  /// Appends the rows of `other` (same width).
  public mutating func append(_ other: CSRRows) {
    precondition(other.nCols == nCols, "CSRRows.append: \(other.nCols) columns onto \(nCols)")
    let base = values.count
    values += other.values
    columns += other.columns
    rowStarts += other.rowStarts.dropFirst().map { $0 + base }
  }

  /// Columns moved to `map[column]` in a matrix of `width` columns; entries whose map is
  /// negative are dropped, and each row's columns are sorted again.
  func remapped(_ map: [Int32], width: Int) -> CSRRows {
    var out = CSRRows(nCols: width)
    out.values.reserveCapacity(values.count)
    out.columns.reserveCapacity(values.count)
    out.rowStarts.reserveCapacity(rowStarts.count)
    var row: [(Int32, Float)] = []
    for r in 0..<nRows {
      row.removeAll(keepingCapacity: true)
      for k in rowStarts[r]..<rowStarts[r + 1] {
        let target = map[Int(columns[k])]
        if target >= 0 { row.append((target, values[k])) }
      }
      row.sort { $0.0 < $1.0 }
      for (c, v) in row {
        out.columns.append(c)
        out.values.append(v)
      }
      out.rowStarts.append(out.values.count)
    }
    return out
  }
}

/// Rows readable by contiguous blocks: a backed file, a collection of backed files, or a
/// matrix in memory. Blocks may be read from a background thread (one read at a time).
public protocol RowBlockSource: AnyObject, Sendable {
  var nRows: Int { get }
  var nCols: Int { get }
  /// Rows `range` (within 0..<nRows).
  func rows(_ range: Range<Int>) throws -> CSRRows
  /// Names the source in messages (a file path, say).
  var sourceDescription: String { get }
}

extension RowBlockSource {
  func checkRange(_ range: Range<Int>) throws {
    guard range.lowerBound >= 0, range.upperBound <= nRows else {
      throw CellDataError("\(sourceDescription): rows \(range.lowerBound)..<\(range.upperBound) are outside 0..<\(nRows)")
    }
  }
}

/// A matrix in memory as a `RowBlockSource` (CSC is converted to CSR once), so that the
/// streaming loader can run on data that fits, e.g. to compare with a backed file.
public final class InMemoryRows: RowBlockSource {
  public let storage: CSRRows
  public var nRows: Int { storage.nRows }
  public var nCols: Int { storage.nCols }
  public var sourceDescription: String { "matrix in memory" }

  public init(_ matrix: Matrix) throws {
    switch matrix {
    case .dense(let d):
      guard let values = d.data.doubles else { throw CellDataError("matrix in memory: not numeric") }
      storage = CSRRows(dense: values.map { Float($0) }, nRows: d.shape[0], nCols: d.shape.count > 1 ? d.shape[1] : 1)
    case .sparse(let s):
      let csr = s.format == .csr ? s : s.switchedFormat()
      guard let values = csr.data.doubles else { throw CellDataError("matrix in memory: not numeric") }
      storage = CSRRows(nCols: csr.nCols, values: values.map { Float($0) }, columns: csr.indices,
                     rowStarts: csr.indptr)
    }
  }

  public func rows(_ range: Range<Int>) throws -> CSRRows {
    try checkRange(range)
    let start = storage.rowStarts[range.lowerBound], end = storage.rowStarts[range.upperBound]
    return CSRRows(nCols: nCols, values: Array(storage.values[start..<end]), columns: Array(storage.columns[start..<end]),
                   rowStarts: storage.rowStarts[range.lowerBound...range.upperBound].map { $0 - start })
  }
}
