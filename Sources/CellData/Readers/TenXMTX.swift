import Foundation

extension AnnData {
  /// Reads a 10x Genomics Matrix Market directory (Cell Ranger's `filtered_feature_bc_matrix/`
  /// or the v2 `filtered_gene_bc_matrices/<genome>/`): `matrix.mtx[.gz]` (genes × cells),
  /// `features.tsv[.gz]` or `genes.tsv[.gz]`, and `barcodes.tsv[.gz]`. As scanpy's
  /// `read_10x_mtx`: cells × genes CSR float32, var names are gene symbols (made unique),
  /// var["gene_ids"] and, for v3, var["feature_types"].
  public static func read10xMTX(directory: String) throws -> AnnData {
    guard let matrixPath = findFile(in: directory, ["matrix.mtx"]) else {
      throw CellDataError("\(directory): no matrix.mtx or matrix.mtx.gz")
    }
    guard let featuresPath = findFile(in: directory, ["features.tsv", "genes.tsv"]) else {
      throw CellDataError("\(directory): no features.tsv[.gz] or genes.tsv")
    }
    guard let barcodesPath = findFile(in: directory, ["barcodes.tsv"]) else {
      throw CellDataError("\(directory): no barcodes.tsv[.gz]")
    }
    let barcodes = lines(try readText(barcodesPath)).map { String($0.split(separator: "\t").first ?? "") }
    let features = lines(try readText(featuresPath)).map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    for (i, f) in features.enumerated() where f.count < 2 {
      throw CellDataError("\(featuresPath): line \(i + 1) needs an id and a name")
    }
    // The expected shape is checked before anything of the size the file claims is allocated.
    let genesByCells = try readMatrixMarket(matrixPath, expectedShape: (features.count, barcodes.count))
    var variables = DataFrame(index: makeUnique(features.map { $0[1] }, joiner: "-"))
    try variables.set("gene_ids", .array(.string(features.map { $0[0] })))
    if features.allSatisfy({ $0.count >= 3 }) {
      try variables.set("feature_types", .categorical(Categorical(features.map { $0[2] })))
    }
    return try AnnData(X: .sparse(genesByCells.transposed()), obs: DataFrame(index: barcodes), var: variables)
  }
}

/// Reads a Matrix Market coordinate file (integer or real, general) as CSC float32, the
/// layout whose transpose is the cells × genes CSR matrix.
func readMatrixMarket(_ path: String, expectedShape: (rows: Int, cols: Int)? = nil) throws -> SparseMatrix {
  let all = lines(try readText(path))
  guard let header = all.first, header.lowercased().hasPrefix("%%matrixmarket matrix coordinate") else {
    throw CellDataError("\(path): not a Matrix Market coordinate file")
  }
  if header.lowercased().contains("symmetric") || header.lowercased().contains("complex") {
    throw CellDataError("\(path): only general real/integer matrices are supported")
  }
  var body = all.dropFirst().drop { $0.hasPrefix("%") }
  guard let sizeLine = body.first else { throw CellDataError("\(path): missing the size line") }
  body = body.dropFirst()
  let size = sizeLine.split(separator: " ").compactMap { Int($0) }
  guard size.count == 3 else { throw CellDataError("\(path): bad size line '\(sizeLine)'") }
  let (rows, cols, nnz) = (size[0], size[1], size[2])
  guard rows >= 0, cols >= 0, nnz >= 0 else { throw CellDataError("\(path): negative size in '\(sizeLine)'") }
  guard rows <= Int(Int32.max) else { throw CellDataError("\(path): \(rows) rows in '\(sizeLine)': at most 2^31 - 1 are supported") }
  if let expectedShape, (rows, cols) != expectedShape {
    throw CellDataError("\(path): shape (\(rows), \(cols)) does not match \(expectedShape.rows) features × \(expectedShape.cols) barcodes")
  }
  // Without an expected shape, a column count far beyond the entries is a damaged size line.
  guard cols <= Swift.max(nnz, all.count) * 64 + 1_000_000 else {
    throw CellDataError("\(path): \(cols) columns for \(nnz) entries in the size line (corrupt file?)")
  }
  guard body.count == nnz else { throw CellDataError("\(path): \(body.count) entries, header says \(nnz) (truncated?)") }
  var perColumn = [[(Int, Float)]](repeating: [], count: cols)
  for (k, line) in body.enumerated() {
    let parts = line.split(separator: " ", omittingEmptySubsequences: true)
    guard parts.count >= 3, let i = Int(parts[0]), let j = Int(parts[1]), let v = Float(parts[2]),
      i >= 1, i <= rows, j >= 1, j <= cols
    else { throw CellDataError("\(path): bad entry on data line \(k + 1): '\(line)'") }
    perColumn[j - 1].append((i - 1, v))
  }
  var indices: [Int32] = [], values: [Float] = [], indptr = [0]
  indices.reserveCapacity(nnz)
  values.reserveCapacity(nnz)
  for column in perColumn {
    for (i, v) in column.sorted(by: { $0.0 < $1.0 }) {
      indices.append(Int32(i))
      values.append(v)
    }
    indptr.append(indices.count)
  }
  return try SparseMatrix(format: .csc, nRows: rows, nCols: cols, data: .float32(values), indices: indices, indptr: indptr)
}
