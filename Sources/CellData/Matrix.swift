/// A two-dimensional matrix: dense or sparse (X, layers, obsp, varp).
public enum Matrix: Equatable, Sendable {
  case dense(DenseArray)
  case sparse(SparseMatrix)

  public var nRows: Int {
    switch self {
    case .dense(let d): return d.shape[0]
    case .sparse(let s): return s.nRows
    }
  }

  public var nCols: Int {
    switch self {
    case .dense(let d): return d.shape.count > 1 ? d.shape[1] : 1
    case .sparse(let s): return s.nCols
    }
  }

  /// The value storage (its dtype is the matrix dtype).
  public var data: ArrayData {
    switch self {
    case .dense(let d): return d.data
    case .sparse(let s): return s.data
    }
  }

  /// A short description: `sparse csr_matrix float32 (700 × 765), 123 nonzeros`.
  public var summary: String {
    switch self {
    case .dense(let d): return "dense \(d.data.dtypeName) (\(nRows) × \(nCols))"
    case .sparse(let s): return "sparse \(s.format.rawValue)_matrix \(s.data.dtypeName) (\(nRows) × \(nCols)), \(s.nnz) nonzeros"
    }
  }

  public func rows(_ selection: [Int]) -> Matrix {
    switch self {
    case .dense(let d): return .dense(d.rows(selection))
    case .sparse(let s): return .sparse(s.rows(selection))
    }
  }

  public func columns(_ selection: [Int]) -> Matrix {
    switch self {
    case .dense(let d): return .dense(d.columns(selection))
    case .sparse(let s): return .sparse(s.columns(selection))
    }
  }

  public func transposed() -> Matrix {
    switch self {
    case .dense(let d): return .dense(d.transposed())
    case .sparse(let s): return .sparse(s.transposed())
    }
  }

  /// A dense row-major copy as Doubles (throws for string data).
  public func denseDoubles() throws -> [Double] {
    switch self {
    case .dense(let d):
      guard let values = d.data.doubles else { throw CellDataError("matrix holds strings, not numbers") }
      return values
    case .sparse(let s): return s.denseDoubles()
    }
  }

  /// Stacks matrices vertically; sparse wins when the parts mix kinds.
  public static func vstack(_ parts: [Matrix]) throws -> Matrix {
    if parts.allSatisfy({ if case .dense = $0 { return true } else { return false } }) {
      return .dense(try DenseArray.stacked(parts.map { if case .dense(let d) = $0 { return d } else { fatalError() } }))
    }
    let sparse = try parts.map { part -> SparseMatrix in
      switch part {
      case .sparse(let s): return s
      case .dense(let d): return try SparseMatrix.csr(from: d)
      }
    }
    return .sparse(try SparseMatrix.vstack(sparse))
  }
}
