import Foundation

/// Writes .h5ad files in the anndata ≥ 0.8 on-disk encoding (the encodings anndata 0.12
/// writes), so that anndata and scanpy read them back unchanged.
struct H5ADWriter {
  func writeAnnData(_ adata: AnnData, to root: H5Group) throws {
    try root.attributes.setEncoding("anndata", version: "0.1.0")
    if let X = adata.X { try write(matrix: X, in: root, "X") }
    try write(frame: adata.obs, in: root, "obs")
    try write(frame: adata.var, in: root, "var")
    try write(dict: adata.obsm, in: root, "obsm")
    try write(dict: adata.varm, in: root, "varm")
    try write(dict: adata.obsp.mapValues(Element.init), in: root, "obsp")
    try write(dict: adata.varp.mapValues(Element.init), in: root, "varp")
    try write(dict: adata.layers.mapValues(Element.init), in: root, "layers")
    try write(dict: adata.uns, in: root, "uns")
    if let raw = adata.raw {
      let g = try root.createGroup("raw")
      try g.attributes.setEncoding("raw", version: "0.1.0")
      if let X = raw.X { try write(matrix: X, in: g, "X") }
      try write(frame: raw.var, in: g, "var")
      try write(dict: raw.varm, in: g, "varm")
    }
  }

  func write(matrix: Matrix, in parent: H5Group, _ name: String) throws {
    try write(element: Element(matrix), in: parent, name)
  }

  func write(element: Element, in parent: H5Group, _ name: String) throws {
    guard !name.isEmpty, !name.contains("/"), name != "." else {
      throw CellDataError("\(parent.file): \(parent.path): '\(name)' is not a valid element name")
    }
    switch element {
    case .dense(let d):
      let ds = try parent.write(name, d.data, shape: d.shape)
      switch (d.isScalar, d.data.isString) {
      case (false, false): try ds.attributes.setEncoding("array", version: "0.2.0")
      case (false, true): try ds.attributes.setEncoding("string-array", version: "0.2.0")
      case (true, false): try ds.attributes.setEncoding("numeric-scalar", version: "0.2.0")
      case (true, true): try ds.attributes.setEncoding("string", version: "0.2.0")
      }
    case .sparse(let s):
      let g = try parent.createGroup(name)
      try g.attributes.setEncoding(s.format == .csr ? "csr_matrix" : "csc_matrix", version: "0.1.0")
      try g.attributes.write("shape", integers: [s.nRows, s.nCols])
      try g.write("data", s.data, shape: [s.data.count])
      let wide = s.indexType == .int64 || s.nnz > Int(Int32.max)
      let indices: ArrayData = wide ? .int64(s.indices.map(Int64.init)) : .int32(s.indices)
      let indptr: ArrayData = wide ? .int64(s.indptr.map(Int64.init)) : .int32(s.indptr.map(Int32.init))
      try g.write("indices", indices, shape: [s.nnz])
      try g.write("indptr", indptr, shape: [s.indptr.count])
    case .categorical(let c):
      let g = try parent.createGroup(name)
      try g.attributes.setEncoding("categorical", version: "0.2.0")
      try g.attributes.write("ordered", bool: c.ordered)
      // pandas keeps codes in the smallest signed integer type that holds the categories.
      let codes: ArrayData
      switch c.categories.count {
      case ..<Int(Int8.max): codes = .int8(c.codes.map { Int8($0) })
      case ..<Int(Int16.max): codes = .int16(c.codes.map { Int16($0) })
      default: codes = .int32(c.codes.map { Int32($0) })
      }
      try write(element: .array(codes), in: g, "codes")
      try write(element: .array(c.categories), in: g, "categories")
    case .nullable(let n):
      let g = try parent.createGroup(name)
      try g.attributes.setEncoding(n.kind.rawValue, version: "0.1.0")
      try write(element: .array(n.values), in: g, "values")
      try write(element: .array(.bool(n.mask)), in: g, "mask")
    case .dataFrame(let f):
      try write(frame: f, in: parent, name)
    case .dict(let d):
      try write(dict: d, in: parent, name)
    }
  }

  func write(dict: [String: Element], in parent: H5Group, _ name: String) throws {
    let g = try parent.createGroup(name)
    try g.attributes.setEncoding("dict", version: "0.1.0")
    for key in dict.keys.sorted() { try write(element: dict[key]!, in: g, key) }
  }

  func write(frame: DataFrame, in parent: H5Group, _ name: String) throws {
    guard !frame.columnNames.contains("_index") else {
      throw CellDataError("\(parent.file): \(parent.childPath(name)): '_index' is a reserved column name")
    }
    if frame.columnNames.contains(frame.indexName) {
      throw CellDataError("\(parent.file): \(parent.childPath(name)): index name '\(frame.indexName)' is also a column")
    }
    let g = try parent.createGroup(name)
    try g.attributes.setEncoding("dataframe", version: "0.2.0")
    try g.attributes.write("_index", string: frame.indexName)
    try g.attributes.write("column-order", strings: frame.columnNames)
    try write(element: .array(.string(frame.index)), in: g, frame.indexName)
    for column in frame.columnNames { try write(element: frame[column]!, in: g, column) }
  }
}

extension Element {
  init(_ matrix: Matrix) {
    switch matrix {
    case .dense(let d): self = .dense(d)
    case .sparse(let s): self = .sparse(s)
    }
  }
}

/// Writes to a temporary file next to `path` and renames it into place, so that a failed
/// write leaves no partial file (and an existing file at `path` unchanged).
func writeAtomically(_ path: String, _ body: (String) throws -> Void) throws {
  let url = URL(fileURLWithPath: path)
  let directory = url.deletingLastPathComponent().path
  guard FileManager.default.fileExists(atPath: directory) else {
    throw CellDataError("\(path): directory \(directory) does not exist")
  }
  let temporary = "\(directory)/.\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).\(UInt32.random(in: 0...UInt32.max)).tmp"
  do {
    try body(temporary)
    guard rename(temporary, path) == 0 else {
      throw CellDataError("\(path): cannot move the written file into place: \(String(cString: strerror(errno)))")
    }
  } catch {
    try? FileManager.default.removeItem(atPath: temporary)
    throw error
  }
}

extension AnnData {
  /// Writes an .h5ad file that anndata ≥ 0.8 reads. The write is atomic: on failure no
  /// file is left at `path` (an existing one stays as it was).
  public func write(h5ad path: String) throws {
    try validate()
    try writeAtomically(path) { temporary in
      // The file closes when the last handle goes, at the end of this closure.
      let root = try H5Group.createFile(temporary)
      try H5ADWriter().writeAnnData(self, to: root)
      try root.flush()
    }
  }
}
