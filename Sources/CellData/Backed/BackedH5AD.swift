import Foundation

/// An .h5ad file opened without reading its matrix (anndata's `backed="r"`): obs, var and uns
/// are read into memory as `AnnData.read` reads them; rows of X (or of a layer) are read on
/// demand by contiguous blocks through HDF5 hyperslabs.
///
/// A CSR block [r0, r1) is the indptr window [r0, r1], then one contiguous slice of `data` and
/// one of `indices`; a dense matrix is read by blocks of rows. libhdf5 converts the stored
/// dtypes (values of any integer or float type to float32, indices to int32, indptr to int64).
/// CSC cannot be read by rows and is refused with how to convert it.
///
/// Damaged files: every length is checked against what the file stores before anything is
/// allocated, each indptr window must be non-decreasing and inside `data`, and each index
/// inside the columns; failures are `CellDataError`s naming the file. Opening runs the metadata
/// read (everything but the `data` and `indices` values) first in a forked child
/// (`CrashIsolation`), as `AnnData.read` does for the whole file; the block reads themselves
/// run in this process under CHDF5Safe's fault guard, because reading the whole matrix in a
/// child first would cost a full pass over a file that backed mode exists not to read at once.
public final class BackedH5AD: RowBlockSource, @unchecked Sendable {
  public enum Layout: String, Sendable { case csr, dense }

  public let path: String
  /// The matrix read: "X" or "layers/<name>".
  public let element: String
  public let obs: DataFrame
  public let `var`: DataFrame
  public let uns: [String: Element]
  public let layout: Layout
  public let nRows: Int
  public let nCols: Int
  /// Stored values (nonzeros for CSR, rows × columns for dense).
  public let storedValues: Int
  /// Stored dtypes, e.g. "data float32, indices uint16, indptr int64".
  public let storedTypes: String

  /// libhdf5's chunk cache per dataset (its default, 1 MiB, is smaller than many gzip chunks).
  public static let defaultChunkCacheBytes = 16 << 20

  private let root: H5Group
  private let values: H5Dataset
  private let indices: H5Dataset?
  private let indptr: H5Dataset?
  private let lock = NSLock()

  public var sourceDescription: String { path }
  public var obsNames: [String] { obs.index }
  public var varNames: [String] { self.var.index }

  /// obs, var and uns as an AnnData without X, for code that sets up a model from an AnnData.
  public var metadata: AnnData {
    var adata = AnnData(unvalidatedX: nil, obs: obs, var: self.var)
    adata.uns = uns
    return adata
  }

  /// Opens `path`, reading the matrix `element` ("X" or "layers/<name>") by rows later.
  /// `isolated` (default) first reads the metadata in a forked child (see the type's notes).
  public static func open(_ path: String, element: String = "X", chunkCacheBytes: Int = defaultChunkCacheBytes,
                          isolated: Bool = true, warn: @escaping WarningHandler = printWarningToStandardError) throws -> BackedH5AD {
    if isolated {
      try CrashIsolation.check(file: path) {
        let file = try BackedH5AD(path: path, element: element, chunkCacheBytes: 0, warn: { _ in })
        if file.nRows > 0 {
          _ = try file.rows(0..<1)
          _ = try file.rows((file.nRows - 1)..<file.nRows)
        }
      }
    }
    return try BackedH5AD(path: path, element: element, chunkCacheBytes: chunkCacheBytes, warn: warn)
  }

  private init(path: String, element: String, chunkCacheBytes: Int, warn: @escaping WarningHandler) throws {
    self.path = path
    self.element = element
    root = try H5Group.openFile(path)
    let encoding = try root.attributes.string("encoding-type")
    if let encoding, encoding != "anndata" {
      throw CellDataError("\(path): not an AnnData file (root encoding-type is '\(encoding)')")
    }
    let parts = element.split(separator: "/").map(String.init)
    guard !parts.isEmpty else { throw CellDataError("\(path): no matrix element named") }
    var parent = root
    for (i, name) in parts.enumerated() {
      guard parent.contains(name) else {
        let available = (try? parent.children().joined(separator: ", ")) ?? ""
        throw CellDataError("\(path): no \(parts[0...i].joined(separator: "/")) element (\(parent.path) holds: \(available))")
      }
      if i < parts.count - 1 { parent = try parent.group(name) }
    }
    let name = parts.last!
    let elementPath = parent.childPath(name)

    switch try parent.kind(of: name) {
    case .dataset:
      let dataset = try parent.dataset(name, chunkCacheBytes: chunkCacheBytes)
      let shape = try dataset.checkedShape()
      guard shape.count == 2 else { throw CellDataError("\(path): \(elementPath) has shape \(shape), not a matrix") }
      let kind = try dataset.numberKind()
      layout = .dense
      (nRows, nCols) = (shape[0], shape[1])
      storedValues = nRows * nCols
      storedTypes = "dense \(kind)"
      values = dataset
      indices = nil
      indptr = nil
    case .group:
      let group = try parent.group(name)
      let attributes = group.attributes
      let format = try attributes.string("encoding-type") ?? attributes.string("h5sparse_format").map { "\($0)_matrix" }
      switch format {
      case "csr_matrix": break
      case "csc_matrix":
        throw CellDataError("""
          \(path): \(elementPath) is stored as CSC (csc_matrix), which cannot be read by rows. \
          Convert it to CSR first: in Python `adata.\(element == "X" ? "X" : "layers['\(parts.last!)']") = \
          adata.\(element == "X" ? "X" : "layers['\(parts.last!)']").tocsr(); adata.write_h5ad(...)`, \
          or, if the file fits in memory, `singlecell preprocess IN -o OUT --to-csr`
          """)
      default:
        throw CellDataError("\(path): \(elementPath) is not a matrix (encoding '\(format ?? "none")')")
      }
      let shapeName = attributes.contains("shape") ? "shape" : "h5sparse_shape"
      guard let shape = try attributes.integers(shapeName), shape.count == 2, shape[0] >= 0, shape[1] >= 0,
        shape[1] <= Int(Int32.max)
      else {
        throw CellDataError("\(path): \(elementPath): sparse matrix without a valid two-entry '\(shapeName)' attribute")
      }
      (nRows, nCols) = (shape[0], shape[1])
      for member in ["data", "indices", "indptr"] where !group.contains(member) {
        throw CellDataError("\(path): \(elementPath): sparse matrix without '\(member)'")
      }
      values = try group.dataset("data", chunkCacheBytes: chunkCacheBytes)
      let indices = try group.dataset("indices", chunkCacheBytes: chunkCacheBytes)
      let indptr = try group.dataset("indptr", chunkCacheBytes: chunkCacheBytes)
      let lengths = try [values, indices, indptr].map { dataset -> Int in
        let shape = try dataset.checkedShape()
        guard shape.count == 1 else { throw CellDataError("\(path): \(dataset.path) has shape \(shape), expected one dimension") }
        return shape[0]
      }
      guard lengths[0] == lengths[1] else {
        throw CellDataError("\(path): \(elementPath): \(lengths[0]) values but \(lengths[1]) indices")
      }
      guard lengths[2] == nRows + 1 else {
        throw CellDataError("\(path): \(elementPath): indptr has \(lengths[2]) entries for \(nRows) rows (expected \(nRows + 1))")
      }
      let kinds = try [values, indices, indptr].map { try $0.numberKind() }
      guard kinds[1].isInteger, kinds[2].isInteger else {
        throw CellDataError("\(path): \(elementPath): indices (\(kinds[1])) and indptr (\(kinds[2])) must be integers")
      }
      layout = .csr
      storedValues = lengths[0]
      storedTypes = "data \(kinds[0]), indices \(kinds[1]), indptr \(kinds[2])"
      self.indices = indices
      self.indptr = indptr
      let first = try indptr.readBlock(Int64.self, start: [0], count: [1])[0]
      let last = try indptr.readBlock(Int64.self, start: [nRows], count: [1])[0]
      guard first == 0, last >= 0, last <= Int64(storedValues) else {
        throw CellDataError("\(path): \(elementPath): indptr runs from \(first) to \(last), but there are \(storedValues) values (corrupt file?)")
      }
    case .other:
      throw CellDataError("\(path): \(elementPath) is neither a group nor a dataset")
    }

    let reader = H5ADReader(warn: warn)
    obs = try reader.frameOrDefault(root, "obs", count: nRows)
    self.var = try reader.frameOrDefault(root, "var", count: nCols)
    guard obs.nRows == nRows, self.var.nRows == nCols else {
      throw CellDataError("\(path): inconsistent shapes: \(elementPath) is \(nRows) × \(nCols), obs has \(obs.nRows) rows and var \(self.var.nRows)")
    }
    uns = try reader.elements(root, "uns")
  }

  /// Rows `range` of the matrix, values as float32.
  public func rows(_ range: Range<Int>) throws -> CSRRows {
    try checkRange(range)
    lock.lock()
    defer { lock.unlock() }
    guard !range.isEmpty else { return CSRRows(nCols: nCols) }
    switch layout {
    case .dense:
      let block = try values.readBlock(Float.self, start: [range.lowerBound, 0], count: [range.count, nCols])
      return CSRRows(dense: block, nRows: range.count, nCols: nCols)
    case .csr:
      let pointers = try indptr!.readBlock(Int64.self, start: [range.lowerBound], count: [range.count + 1])
      let start = pointers[0], end = pointers[range.count]
      for i in 0..<range.count where pointers[i] > pointers[i + 1] {
        throw CellDataError("\(path): \(element)/indptr decreases at row \(range.lowerBound + i) (corrupt file?)")
      }
      guard start >= 0, end <= Int64(storedValues) else {
        throw CellDataError("\(path): \(element)/indptr points to values \(start)..<\(end) of \(storedValues) at rows \(range) (corrupt file?)")
      }
      let count = Int(end - start)
      let blockValues = try values.readBlock(Float.self, start: [Int(start)], count: [count])
      let columns = try indices!.readBlock(Int32.self, start: [Int(start)], count: [count])
      let width = Int32(nCols)
      if let bad = columns.first(where: { $0 < 0 || $0 >= width }) {
        throw CellDataError("\(path): \(element)/indices holds column \(bad) outside 0..<\(nCols) at rows \(range) (corrupt file?)")
      }
      return CSRRows(nCols: nCols, values: blockValues, columns: columns,
                     rowStarts: pointers.map { Int($0 - start) })
    }
  }
}
