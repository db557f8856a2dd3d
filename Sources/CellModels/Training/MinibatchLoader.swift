import CellData
import Torch

/// One minibatch: the cells' positions in the matrix, their counts and covariate codes.
public struct Minibatch {
  public let indices: [Int]
  /// Counts, float32 [B, nGenes].
  public let x: Tensor
  /// Batch codes, int64 [B, 1]; nil when the loader has none.
  public let batchIndex: Tensor?
  /// Label codes, int64 [B, 1]; nil when the loader has none.
  public let labels: Tensor?
}

/// Minibatches over (a subset of) the rows of a `CountMatrix`, as scvi-tools'
/// `AnnDataLoader`: batch size 128, in order unless `shuffle`, last partial batch kept
/// unless `dropLast`. Shuffling draws a permutation from libtorch's generator at each
/// iteration (each epoch), so `Runtime.seed` makes it reproducible.
public struct MinibatchLoader: Sequence {
  public let counts: CountMatrix
  /// The rows iterated over (e.g. the training split).
  public let cells: [Int]
  public let batchCodes: [Int64]?
  public let labelCodes: [Int64]?
  public let batchSize: Int
  public let shuffle: Bool
  public let dropLast: Bool

  /// - Parameters:
  ///   - cells: rows to iterate (all when nil).
  ///   - batchCodes, labelCodes: one integer code per row of `counts` (not per selected cell).
  public init(counts: CountMatrix, cells: [Int]? = nil, batchCodes: [Int]? = nil, labelCodes: [Int]? = nil,
              batchSize: Int = 128, shuffle: Bool = false, dropLast: Bool = false) throws {
    guard batchSize > 0 else { throw CellDataError("batch size must be positive, got \(batchSize)") }
    let cells = cells ?? Array(0..<counts.nRows)
    if let bad = cells.first(where: { $0 < 0 || $0 >= counts.nRows }) {
      throw CellDataError("cell \(bad) is outside the matrix's \(counts.nRows) rows")
    }
    for (name, codes) in [("batch", batchCodes), ("label", labelCodes)] {
      if let codes, codes.count != counts.nRows {
        throw CellDataError("\(codes.count) \(name) codes for \(counts.nRows) cells")
      }
    }
    self.counts = counts
    self.cells = cells
    self.batchCodes = batchCodes?.map(Int64.init)
    self.labelCodes = labelCodes?.map(Int64.init)
    self.batchSize = batchSize
    self.shuffle = shuffle
    self.dropLast = dropLast
  }

  /// Number of minibatches per pass.
  public var batchCount: Int { dropLast ? cells.count / batchSize : (cells.count + batchSize - 1) / batchSize }

  public func makeIterator() -> AnyIterator<Minibatch> {
    var batches = minibatchPositions(cells, batchSize: batchSize, shuffle: shuffle, dropLast: dropLast).makeIterator()
    return AnyIterator { batches.next().map(minibatch) }
  }

  /// The minibatch of the given rows.
  public func minibatch(_ indices: [Int]) -> Minibatch {
    func codes(_ all: [Int64]?) -> Tensor? {
      all.map { all in Tensor(indices.map { all[$0] }, shape: [indices.count, 1]) }
    }
    return Minibatch(indices: indices, x: counts.rows(indices), batchIndex: codes(batchCodes), labels: codes(labelCodes))
  }
}

/// `items` cut into minibatches of `batchSize`, in order or shuffled by a permutation from
/// libtorch's generator (so `Runtime.seed` reproduces it); the last partial batch is kept
/// unless `dropLast`.
public func minibatchPositions(_ items: [Int], batchSize: Int, shuffle: Bool, dropLast: Bool = false) -> [[Int]] {
  var order = items
  if shuffle && items.count > 1 {
    order = Tensor.randperm(items.count).toArray(Int64.self).map { items[Int($0)] }
  }
  let count = dropLast ? order.count / batchSize : (order.count + batchSize - 1) / batchSize
  return (0..<count).map { Array(order[($0 * batchSize)..<Swift.min(($0 + 1) * batchSize, order.count)]) }
}
