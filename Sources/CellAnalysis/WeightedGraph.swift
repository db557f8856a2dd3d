import CellData

/// A square sparse graph in CSR form with Double weights: the working form of obsp graphs
/// for UMAP, clustering and the graph metrics.
public struct WeightedGraph: Sendable, Equatable {
  public let n: Int
  public let indptr: [Int]
  public let indices: [Int]
  public let weights: [Double]

  public init(n: Int, indptr: [Int], indices: [Int], weights: [Double]) {
    precondition(indptr.count == n + 1 && indices.count == weights.count, "WeightedGraph: inconsistent CSR arrays")
    self.n = n
    self.indptr = indptr
    self.indices = indices
    self.weights = weights
  }

  /// From a square CSR or CSC matrix (CSC is converted); explicit zeros are kept.
  public init(_ matrix: SparseMatrix) throws {
    guard matrix.nRows == matrix.nCols else {
      throw CellDataError("graph must be square, got \(matrix.nRows) × \(matrix.nCols)")
    }
    let csr = matrix.format == .csr ? matrix : matrix.switchedFormat()
    guard let values = csr.data.doubles else { throw CellDataError("graph weights are not numeric") }
    if let bad = values.first(where: { !$0.isFinite }) { throw CellDataError("graph has a non-finite weight (\(bad))") }
    self.init(n: csr.nRows, indptr: csr.indptr, indices: csr.indices.map(Int.init), weights: values)
  }

  public var edgeCount: Int { indices.count }

  /// The transpose (rows of the result are sorted by column).
  public func transposed() -> WeightedGraph {
    var counts = [Int](repeating: 0, count: n + 1)
    for j in indices { counts[j + 1] += 1 }
    for i in 0..<n { counts[i + 1] += counts[i] }
    var next = counts
    var newIndices = [Int](repeating: 0, count: indices.count)
    var newWeights = [Double](repeating: 0, count: indices.count)
    for i in 0..<n {
      for p in indptr[i]..<indptr[i + 1] {
        let j = indices[p]
        newIndices[next[j]] = i
        newWeights[next[j]] = weights[p]
        next[j] += 1
      }
    }
    return WeightedGraph(n: n, indptr: counts, indices: newIndices, weights: newWeights)
  }

  /// Connected components, treating edges as undirected (scipy's connection="weak" on the
  /// stored structure): a label per node, numbered by first appearance.
  public func weakComponents() -> (count: Int, labels: [Int]) {
    let reverse = transposed()
    var labels = [Int](repeating: -1, count: n)
    var count = 0
    var stack: [Int] = []
    for start in 0..<n where labels[start] < 0 {
      labels[start] = count
      stack.append(start)
      while let v = stack.popLast() {
        for p in indptr[v]..<indptr[v + 1] where labels[indices[p]] < 0 {
          labels[indices[p]] = count
          stack.append(indices[p])
        }
        for p in reverse.indptr[v]..<reverse.indptr[v + 1] where labels[reverse.indices[p]] < 0 {
          labels[reverse.indices[p]] = count
          stack.append(reverse.indices[p])
        }
      }
      count += 1
    }
    return (count, labels)
  }

  /// The subgraph on `nodes` (in that order).
  public func subgraph(_ nodes: [Int]) -> WeightedGraph {
    var position = [Int](repeating: -1, count: n)
    for (p, v) in nodes.enumerated() { position[v] = p }
    var newIndptr = [0], newIndices: [Int] = [], newWeights: [Double] = []
    for v in nodes {
      for p in indptr[v]..<indptr[v + 1] where position[indices[p]] >= 0 {
        newIndices.append(position[indices[p]])
        newWeights.append(weights[p])
      }
      newIndptr.append(newIndices.count)
    }
    return WeightedGraph(n: nodes.count, indptr: newIndptr, indices: newIndices, weights: newWeights)
  }
}
