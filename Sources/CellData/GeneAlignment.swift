/// Gene alignment of a query to a model's gene list.
extension AnnData {
  /// This AnnData restricted and reordered to `genes`, absent genes as zero columns of the
  /// counts (X or `layer`; other layers are dropped). Throws when no gene is shared. A name that
  /// occurs several times (10x matrices read without making names unique have such) is matched
  /// occurrence by occurrence: the model's second `RBP7` takes the query's second `RBP7`, and is
  /// absent where the query has only one.
  public static func aligned(_ adata: AnnData, toGenes genes: [String], layer: String? = nil) throws
    -> (adata: AnnData, missing: Int)
  {
    if adata.varNames == genes { return (adata, 0) }
    var positions: [String: [Int]] = [:]
    for (i, name) in adata.varNames.enumerated() { positions[name, default: []].append(i) }
    var occurrence: [String: Int] = [:]
    let sources = genes.map { name -> Int? in
      let k = occurrence[name, default: 0]
      occurrence[name] = k + 1
      guard let found = positions[name], k < found.count else { return nil }
      return found[k]
    }
    let shared = sources.compactMap { $0 }.count
    guard shared > 0 else {
      throw CellDataError(
        "the query shares none of the model's \(genes.count) genes (model genes e.g. \(genes.prefix(3).joined(separator: ", ")); query genes e.g. \(adata.varNames.prefix(3).joined(separator: ", ")))")
    }
    let matrix: Matrix
    if let layer {
      guard let m = adata.layers[layer] else { throw CellDataError("the query has no layer '\(layer)'") }
      matrix = m
    } else {
      guard let m = adata.X else { throw CellDataError("the query has no X") }
      matrix = m
    }
    let csr: SparseMatrix
    switch matrix {
    case .dense(let dense): csr = try SparseMatrix.csr(from: dense)
    case .sparse(let sparse): csr = sparse.format == .csr ? sparse : sparse.switchedFormat()
    }
    var indptr = [0], indices = [Int32](), values = [Double]()
    let column = Dictionary(uniqueKeysWithValues: sources.enumerated().compactMap { target, source in source.map { ($0, target) } })
    guard let data = csr.data.doubles else { throw CellDataError("the query's counts are not numeric") }
    for row in 0..<csr.nRows {
      var entries: [(Int, Double)] = []
      for k in csr.indptr[row]..<csr.indptr[row + 1] {
        if let target = column[Int(csr.indices[k])] { entries.append((target, data[k])) }
      }
      entries.sort { $0.0 < $1.0 }
      indices += entries.map { Int32($0.0) }
      values += entries.map(\.1)
      indptr.append(indices.count)
    }
    let aligned = try SparseMatrix(format: .csr, nRows: csr.nRows, nCols: genes.count, data: .float32(values.map { Float($0) }),
                                   indices: indices, indptr: indptr)
    var result = try AnnData(X: layer == nil ? .sparse(aligned) : nil, obs: adata.obs, var: DataFrame(index: genes))
    if let layer {
      result.X = nil
      result.layers[layer] = .sparse(aligned)
    }
    result.obsm = adata.obsm
    result.uns = adata.uns
    return (result, genes.count - shared)
  }
}
