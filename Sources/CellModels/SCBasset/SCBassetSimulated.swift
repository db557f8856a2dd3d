import CellData
import Genomics

extension SimulatedATAC {
  /// The simulated set as a cells × peaks AnnData: binary CSR X (float32), obs `cell_type`,
  /// var `chr`/`start`/`end` (names `chr:start-end`) and varm[`dna_code`] (uint8 codes of each
  /// peak's window with the planted motifs, N kept as 4), ready for `transposed()` and SCBASSET.
  public func annData(dnaCodeKey: String = "dna_code") throws -> AnnData {
    let x = try SparseMatrix(format: .csr, nRows: cellCount, nCols: peakCount,
                             data: .float32([Float](repeating: 1, count: indices.count)),
                             indices: indices, indptr: indptr)
    var obs = DataFrame(index: (0..<cellCount).map { "cell\($0)" })
    try obs.set("cell_type", .categorical(Categorical(cellTypes.map { cellTypeNames[$0] })))
    var peakFrame = DataFrame(index: peaks.map(\.name))
    try peakFrame.set("chr", .dense(DenseArray(.string(peaks.map(\.chrom)))))
    try peakFrame.set("start", .dense(DenseArray(.int64(peaks.map { Int64($0.start) }))))
    try peakFrame.set("end", .dense(DenseArray(.int64(peaks.map { Int64($0.end) }))))
    var adata = try AnnData(X: .sparse(x), obs: obs, var: peakFrame)
    let codes = sequences.flatMap { DNACode.encode($0) }
    adata.varm[dnaCodeKey] = .dense(try DenseArray(shape: [peakCount, configuration.seqLen], data: .uint8(codes)))
    return adata
  }
}
