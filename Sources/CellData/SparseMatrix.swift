/// A compressed sparse matrix (scipy's csr_matrix or csc_matrix). For CSR, `indptr` has
/// rows + 1 entries and `indices` holds column numbers; for CSC the roles of rows and columns
/// swap. Values keep their dtype. Indices are `Int32` in memory (a minor index is below 2^31,
/// as scipy's are; half the bytes of `Int`); `indexType` remembers their on-disk width.
public struct SparseMatrix: Equatable, Sendable {
  public enum Format: String, Sendable { case csr, csc }
  public enum IndexType: Sendable { case int32, int64 }

  public var format: Format
  public var nRows: Int
  public var nCols: Int
  public var data: ArrayData
  public var indices: [Int32]
  public var indptr: [Int]
  public var indexType: IndexType

  /// Checks the structure: indptr length and monotonicity, index bounds, value count.
  public init(
    format: Format, nRows: Int, nCols: Int, data: ArrayData, indices: [Int32], indptr: [Int],
    indexType: IndexType = .int32
  ) throws {
    let major = format == .csr ? nRows : nCols
    let minor = format == .csr ? nCols : nRows
    guard nRows >= 0, nCols >= 0 else { throw CellDataError("sparse matrix: negative shape (\(nRows), \(nCols))") }
    guard minor <= Int(Int32.max) + 1 else {
      throw CellDataError("sparse \(format.rawValue) matrix: \(minor) \(format == .csr ? "columns" : "rows"); at most 2^31 are supported")
    }
    guard indptr.count - 1 == major else {
      throw CellDataError("sparse \(format.rawValue) matrix: indptr has \(indptr.count) entries, expected \(major) + 1")
    }
    guard data.count == indices.count, indptr.first == 0, indptr.last == indices.count else {
      throw CellDataError("sparse \(format.rawValue) matrix: \(data.count) values, \(indices.count) indices and indptr ending at \(indptr.last ?? -1) disagree")
    }
    for i in 0..<major where indptr[i] > indptr[i + 1] {
      throw CellDataError("sparse \(format.rawValue) matrix: indptr decreases at \(i)")
    }
    var (low, high) = (Int32.max, Int32.min)  // a min/max pass vectorises; the search runs on failure only
    for index in indices {
      low = Swift.min(low, index)
      high = Swift.max(high, index)
    }
    if low < 0 || Int(high) >= minor, let bad = indices.first(where: { $0 < 0 || Int($0) >= minor }) {
      throw CellDataError("sparse \(format.rawValue) matrix: index \(bad) out of range 0..<\(minor)")
    }
    if data.isString { throw CellDataError("sparse matrix: string values are not supported") }
    self.init(unchecked: format, nRows: nRows, nCols: nCols, data: data, indices: indices, indptr: indptr,
              indexType: indexType)
  }

  /// Skips validation; for results built by this module's own algorithms.
  init(unchecked format: Format, nRows: Int, nCols: Int, data: ArrayData, indices: [Int32], indptr: [Int], indexType: IndexType) {
    self.format = format
    self.nRows = nRows
    self.nCols = nCols
    self.data = data
    self.indices = indices
    self.indptr = indptr
    self.indexType = indexType
  }

  public var nnz: Int { indices.count }

  /// Builds a CSR matrix from a dense row-major matrix, keeping nonzeros.
  public static func csr(from dense: DenseArray) throws -> SparseMatrix {
    guard dense.shape.count == 2, let values = dense.data.doubles else {
      throw CellDataError("sparse matrix: needs a numeric matrix")
    }
    let (r, c) = (dense.shape[0], dense.shape[1])
    var keep: [Int] = [], indices: [Int32] = [], indptr = [0]
    for i in 0..<r {
      for j in 0..<c where values[i * c + j] != 0 {
        keep.append(i * c + j)
        indices.append(Int32(j))
      }
      indptr.append(indices.count)
    }
    return SparseMatrix(unchecked: .csr, nRows: r, nCols: c, data: dense.data.gathered(keep), indices: indices, indptr: indptr, indexType: .int32)
  }

  /// The same matrix in the other compressed format (CSR ⇄ CSC); a stable counting sort.
  public func switchedFormat() -> SparseMatrix {
    let major = format == .csr ? nRows : nCols
    let minor = format == .csr ? nCols : nRows
    var counts = [Int](repeating: 0, count: minor + 1)
    for j in indices { counts[Int(j) + 1] += 1 }
    for j in 0..<minor { counts[j + 1] += counts[j] }
    var next = counts
    var order = [Int](repeating: 0, count: nnz)
    var newIndices = [Int32](repeating: 0, count: nnz)
    for i in 0..<major {
      for k in indptr[i]..<indptr[i + 1] {
        let j = Int(indices[k])
        order[next[j]] = k
        newIndices[next[j]] = Int32(i)
        next[j] += 1
      }
    }
    return SparseMatrix(
      unchecked: format == .csr ? .csc : .csr, nRows: nRows, nCols: nCols,
      data: data.gathered(order), indices: newIndices, indptr: counts, indexType: indexType)
  }

  /// The transpose: CSR of shape (r, c) becomes CSC of shape (c, r) with the same arrays.
  public func transposed() -> SparseMatrix {
    SparseMatrix(unchecked: format == .csr ? .csc : .csr, nRows: nCols, nCols: nRows, data: data, indices: indices, indptr: indptr, indexType: indexType)
  }

  /// Selects along the major axis (rows of CSR, columns of CSC).
  func selectingMajor(_ selection: [Int]) -> SparseMatrix {
    var keep: [Int] = [], newIndptr = [0]
    keep.reserveCapacity(nnz)
    for i in selection {
      keep += indptr[i]..<indptr[i + 1]
      newIndptr.append(keep.count)
    }
    var out = self
    out.data = data.gathered(keep)
    out.indices = keep.map { indices[$0] }
    out.indptr = newIndptr
    if format == .csr { out.nRows = selection.count } else { out.nCols = selection.count }
    return out
  }

  /// Selects along the minor axis; a minor index chosen twice is duplicated.
  func selectingMinor(_ selection: [Int]) -> SparseMatrix {
    let minor = format == .csr ? nCols : nRows
    var targets = [[Int]](repeating: [], count: minor)
    for (newIndex, old) in selection.enumerated() { targets[old].append(newIndex) }
    let major = format == .csr ? nRows : nCols
    var keep: [Int] = [], newIndices: [Int32] = [], newIndptr = [0]
    for i in 0..<major {
      var row: [(Int, Int)] = []
      for k in indptr[i]..<indptr[i + 1] { for t in targets[Int(indices[k])] { row.append((t, k)) } }
      row.sort { $0.0 < $1.0 }
      for (t, k) in row { keep.append(k); newIndices.append(Int32(t)) }
      newIndptr.append(keep.count)
    }
    var out = self
    out.data = data.gathered(keep)
    out.indices = newIndices
    out.indptr = newIndptr
    if format == .csr { out.nCols = selection.count } else { out.nRows = selection.count }
    return out
  }

  public func rows(_ selection: [Int]) -> SparseMatrix {
    format == .csr ? selectingMajor(selection) : selectingMinor(selection)
  }

  public func columns(_ selection: [Int]) -> SparseMatrix {
    format == .csc ? selectingMajor(selection) : selectingMinor(selection)
  }

  /// A dense row-major copy with Double values.
  public func denseDoubles() -> [Double] {
    let values = data.doubles ?? []
    var out = [Double](repeating: 0, count: nRows * nCols)
    let major = format == .csr ? nRows : nCols
    for i in 0..<major {
      for k in indptr[i]..<indptr[i + 1] {
        let (r, c) = format == .csr ? (i, Int(indices[k])) : (Int(indices[k]), i)
        out[r * nCols + c] += values[k]
      }
    }
    return out
  }

  /// Stacks CSR matrices vertically (all must have the same number of columns).
  public static func vstack(_ parts: [SparseMatrix]) throws -> SparseMatrix {
    guard let first = parts.first else { throw CellDataError("cannot stack zero matrices") }
    let csr = parts.map { $0.format == .csr ? $0 : $0.switchedFormat() }
    guard csr.allSatisfy({ $0.nCols == first.nCols }) else {
      throw CellDataError("cannot stack sparse matrices with different column counts")
    }
    var indices: [Int32] = [], indptr = [0]
    for p in csr {
      indices += p.indices
      let base = indptr.last!
      indptr += p.indptr.dropFirst().map { $0 + base }
    }
    let data = try ArrayData.concatenated(csr.map(\.data))
    let wide = csr.contains { $0.indexType == .int64 } || indices.count > Int(Int32.max)
    return SparseMatrix(unchecked: .csr, nRows: csr.reduce(0) { $0 + $1.nRows }, nCols: first.nCols, data: data, indices: indices, indptr: indptr, indexType: wide ? .int64 : .int32)
  }
}
