import Foundation

/// Writes an .h5ad whose X grows by appended blocks of rows, so that a matrix larger than
/// memory can be written (the scale generator writes a million cells this way). X's datasets
/// are chunked and extendable, optionally gzip-compressed; obs, var and uns are written at
/// `finish` by `H5ADWriter`. The file appears at `path` only when `finish` succeeds (it is
/// written to a temporary file beside it and renamed).
public final class H5ADBlockWriter {
  public enum Layout: String, Sendable, CaseIterable { case csr, dense }

  public struct Options: Sendable {
    public var layout: Layout
    /// dtype of X's values; libhdf5 converts the float32 values given (integer types for counts).
    public var valueType: StoredNumberType
    /// dtype of CSR column indices: uint16 (at most 65,536 columns), int32 or int64.
    public var indexType: StoredNumberType
    /// dtype of CSR indptr: int32 or int64.
    public var indptrType: StoredNumberType
    /// gzip level 1–9, or nil for none.
    public var gzipLevel: Int?
    /// Values per chunk (CSR data and indices); dense chunks hold about this many values in whole rows.
    public var chunkValues: Int

    /// anndata's choices for a CSR float32 matrix: int32 indices, int64 indptr (anndata ≥ 0.10
    /// writes int32 indptr for small matrices; both read the same), no compression.
    public init(layout: Layout = .csr, valueType: StoredNumberType = .float32, indexType: StoredNumberType = .int32,
                indptrType: StoredNumberType = .int64, gzipLevel: Int? = nil, chunkValues: Int = 1 << 16) {
      self.layout = layout
      self.valueType = valueType
      self.indexType = indexType
      self.indptrType = indptrType
      self.gzipLevel = gzipLevel
      self.chunkValues = chunkValues
    }
  }

  public let path: String
  public let nCols: Int
  public let options: Options
  public private(set) var nRows = 0
  public private(set) var nnz = 0

  private let temporary: String
  private var root: H5Group?
  private var matrix: H5Group?
  private var values: H5Dataset?
  private var indices: H5Dataset?
  private var indptr: H5Dataset?
  private var finished = false

  public init(path: String, nCols: Int, options: Options = Options()) throws {
    guard nCols >= 0 else { throw CellDataError("\(path): negative column count \(nCols)") }
    guard options.chunkValues > 0 else { throw CellDataError("\(path): chunkValues must be positive") }
    if options.layout == .csr {
      guard [.uint16, .int32, .int64].contains(options.indexType), [.int32, .int64].contains(options.indptrType) else {
        throw CellDataError("\(path): indices must be uint16, int32 or int64 and indptr int32 or int64")
      }
      if options.indexType == .uint16 && nCols > 65_536 {
        throw CellDataError("\(path): uint16 indices hold at most 65,536 columns, not \(nCols)")
      }
    }
    self.path = path
    self.nCols = nCols
    self.options = options
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    guard FileManager.default.fileExists(atPath: directory) else {
      throw CellDataError("\(path): directory \(directory) does not exist")
    }
    temporary = "\(directory)/.\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).\(UInt32.random(in: 0...UInt32.max)).tmp"
    do {
      let root = try H5Group.createFile(temporary)
      try root.attributes.setEncoding("anndata", version: "0.1.0")
      self.root = root
      switch options.layout {
      case .csr:
        let group = try root.createGroup("X")
        try group.attributes.setEncoding("csr_matrix", version: "0.1.0")
        matrix = group
        values = try group.createExtendable("data", type: options.valueType, chunkRows: options.chunkValues,
                                            gzipLevel: options.gzipLevel)
        indices = try group.createExtendable("indices", type: options.indexType, chunkRows: options.chunkValues,
                                             gzipLevel: options.gzipLevel)
        let pointers = try group.createExtendable(
          "indptr", type: options.indptrType, chunkRows: min(1 << 14, max(options.chunkValues, 1_024)),
          gzipLevel: options.gzipLevel)
        try pointers.append([Int64(0)], rows: 1)
        indptr = pointers
      case .dense:
        let rowsPerChunk = Swift.max(1, options.chunkValues / Swift.max(nCols, 1))
        let dataset = try root.createExtendable("X", type: options.valueType, columns: nCols, chunkRows: rowsPerChunk,
                                                gzipLevel: options.gzipLevel)
        try dataset.attributes.setEncoding("array", version: "0.2.0")
        values = dataset
      }
    } catch {
      closeHandles()
      try? FileManager.default.removeItem(atPath: temporary)
      throw error
    }
  }

  deinit {
    if !finished {
      closeHandles()
      try? FileManager.default.removeItem(atPath: temporary)
    }
  }

  private func closeHandles() {
    values = nil
    indices = nil
    indptr = nil
    matrix = nil
    root = nil
  }

  /// Appends rows (with `nCols` columns).
  public func append(_ block: CSRRows) throws {
    guard !finished, let values else { throw CellDataError("\(path): the writer is finished") }
    guard block.nCols == nCols else {
      throw CellDataError("\(path): a block of \(block.nCols) columns for a matrix of \(nCols)")
    }
    guard block.nRows > 0 else { return }
    switch options.layout {
    case .dense:
      var dense = [Float](repeating: 0, count: block.nRows * nCols)
      for r in 0..<block.nRows {
        for k in block.rowStarts[r]..<block.rowStarts[r + 1] { dense[r * nCols + Int(block.columns[k])] += block.values[k] }
      }
      try values.append(dense, rows: block.nRows)
    case .csr:
      let total = nnz + block.nnz
      if options.indptrType == .int32 && total > Int(Int32.max) {
        throw CellDataError("\(path): \(total) nonzeros do not fit int32 indptr; use int64")
      }
      try values.append(block.values, rows: block.nnz)
      try indices!.append(block.columns, rows: block.nnz)
      try indptr!.append(block.rowStarts.dropFirst().map { Int64(nnz + $0) }, rows: block.nRows)
    }
    nRows += block.nRows
    nnz += block.nnz
  }

  /// Writes obs (one row per appended row), var (one per column) and uns, closes the file and
  /// moves it to `path`.
  public func finish(obs: DataFrame? = nil, `var` variables: DataFrame? = nil, uns: [String: Element] = [:]) throws {
    guard !finished, let root else { throw CellDataError("\(path): the writer is finished") }
    let obs = obs ?? DataFrame(index: (0..<nRows).map(String.init))
    let variables = variables ?? DataFrame(index: (0..<nCols).map(String.init))
    guard obs.nRows == nRows, variables.nRows == nCols else {
      throw CellDataError("\(path): obs has \(obs.nRows) rows and var \(variables.nRows) for a \(nRows) × \(nCols) matrix")
    }
    do {
      if let matrix { try matrix.attributes.write("shape", integers: [nRows, nCols]) }
      let writer = H5ADWriter()
      try writer.write(frame: obs, in: root, "obs")
      try writer.write(frame: variables, in: root, "var")
      for name in ["obsm", "varm", "obsp", "varp", "layers"] { try writer.write(dict: [:], in: root, name) }
      try writer.write(dict: uns, in: root, "uns")
      try root.flush()
      closeHandles()
      guard rename(temporary, path) == 0 else {
        throw CellDataError("\(path): cannot move the written file into place: \(String(cString: strerror(errno)))")
      }
      finished = true
    } catch {
      closeHandles()
      try? FileManager.default.removeItem(atPath: temporary)
      finished = true
      throw error
    }
  }
}
