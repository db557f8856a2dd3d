import CellData
import Torch

/// A cells × genes matrix held for fast minibatch gathering: dense Float rows, or CSR
/// (CSC is converted once). `rows(_:)` writes the selected rows straight into a new
/// float32 tensor, so a sparse matrix is never densified as a whole.
public struct CountMatrix: Sendable {
  enum Storage: Sendable {
    case dense([Float])
    case csr(values: [Float], columns: [Int32], rowStarts: [Int])
  }

  public let nRows: Int
  public let nCols: Int
  let storage: Storage

  public init(_ matrix: Matrix) throws {
    nRows = matrix.nRows
    nCols = matrix.nCols
    switch matrix {
    case .dense(let dense):
      guard dense.shape.count == 2 else {
        throw CellDataError("count matrix: expected 2 dimensions, got shape \(dense.shape)")
      }
      storage = .dense(try Self.floats(dense.data))
    case .sparse(let sparse):
      let csr = sparse.format == .csr ? sparse : sparse.switchedFormat()
      storage = .csr(values: try Self.floats(csr.data), columns: csr.indices, rowStarts: csr.indptr)
    }
  }

  /// X of `adata`, or the layer `layer`.
  public init(_ adata: AnnData, layer: String? = nil) throws {
    if let layer {
      guard let matrix = adata.layers[layer] else {
        throw CellDataError("no layer '\(layer)' (layers: \(adata.layers.keys.sorted().joined(separator: ", ")))")
      }
      try self.init(matrix)
    } else {
      guard let matrix = adata.X else { throw CellDataError("the AnnData has no X") }
      try self.init(matrix)
    }
  }

  private static func floats(_ data: ArrayData) throws -> [Float] {
    if case .float32(let values) = data { return values }
    guard let values = data.doubles else { throw CellDataError("count matrix holds \(data.dtypeName), not numbers") }
    return values.map { Float($0) }
  }

  /// The selected rows as a float32 tensor [selection.count, nCols], in selection order.
  public func rows(_ selection: [Int]) -> Tensor {
    let width = nCols
    return Tensor.filled([selection.count, width], Float.self) { out in
      switch storage {
      case .dense(let values):
        values.withUnsafeBufferPointer { source in
          for (i, row) in selection.enumerated() {
            let destination = UnsafeMutableBufferPointer(rebasing: out[(i * width)..<((i + 1) * width)])
            _ = destination.initialize(from: source[(row * width)..<((row + 1) * width)])
          }
        }
      case .csr(let values, let columns, let rowStarts):
        out.initialize(repeating: 0)
        for (i, row) in selection.enumerated() {
          let base = i * width
          for k in rowStarts[row]..<rowStarts[row + 1] { out[base + Int(columns[k])] += values[k] }
        }
      }
    }
  }

  /// The sum of each row (library sizes), in Double.
  public func rowSums() -> [Double] {
    switch storage {
    case .dense(let values):
      return (0..<nRows).map { r in values[(r * nCols)..<((r + 1) * nCols)].reduce(0.0) { $0 + Double($1) } }
    case .csr(let values, _, let rowStarts):
      return (0..<nRows).map { r in values[rowStarts[r]..<rowStarts[r + 1]].reduce(0.0) { $0 + Double($1) } }
    }
  }
}

extension CountMatrix {
  /// The first stored value that is not a valid count: NaN or infinite, negative, or (with
  /// `integers`) fractional. Returns its row, column and value, or nil if all are valid.
  public func firstInvalidCount(integers: Bool) -> (row: Int, column: Int, value: Float)? {
    func invalid(_ v: Float) -> Bool { !v.isFinite || v < 0 || (integers && v.rounded() != v) }
    switch storage {
    case .dense(let values):
      guard let k = values.firstIndex(where: invalid) else { return nil }
      return (k / nCols, k % nCols, values[k])
    case .csr(let values, let columns, let rowStarts):
      guard let k = values.firstIndex(where: invalid) else { return nil }
      var row = 0
      while rowStarts[row + 1] <= k { row += 1 }
      return (row, Int(columns[k]), values[k])
    }
  }
}
