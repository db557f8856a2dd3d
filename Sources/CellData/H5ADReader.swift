import CHDF5
import CHDF5Safe
import Foundation

/// Reads .h5ad files (the anndata on-disk format, versions written by anndata 0.7 to 0.12).
///
/// Every element is decoded by its `encoding-type` attribute; elements written before
/// encodings existed (anndata ≤ 0.7) are recognised by their layout. An element with an
/// encoding this reader does not know is skipped and reported through `warn`.
struct H5ADReader {
  let warn: WarningHandler
  /// Set in crash isolation's child: sparse matrices and arrays of numbers of two or more
  /// dimensions (a dense X, layers, obsm) are read through (`readThrough`), not kept, and the
  /// memory the caller's read will give them is counted here.
  var probe: CrashIsolation.Budget?
  /// Elements nest at most this deep (anndata's own go three or four levels down).
  static let maxDepth = 100
  private let visits = Visits()

  /// What the read has reached so far: a file whose links form a cycle, or that links one group
  /// many times over, would otherwise recurse without end or read the same data again and again.
  private final class Visits {
    var depth = 0
    var objects = Set<UInt64>()
  }

  func readAnnData(_ root: H5Group, requireX: Bool) throws -> AnnData {
    let encoding = try root.attributes.string("encoding-type")
    if let encoding, encoding != "anndata", encoding != "raw" {
      throw CellDataError("\(root.file): not an AnnData file (root encoding-type is '\(encoding)')")
    }
    guard root.contains("obs") || root.contains("var") || root.contains("X") else {
      throw CellDataError("\(root.file): not an AnnData file: it has no X, obs or var")
    }

    let X = try matrixIfPresent(root, "X")
    if X == nil && requireX {
      throw CellDataError("\(root.file): no X matrix (the file has no /X element)")
    }
    let obs = try frameOrDefault(root, "obs", count: X?.nRows)
    let variables = try frameOrDefault(root, "var", count: X?.nCols)
    var adata = AnnData(unvalidatedX: X, obs: obs, var: variables)
    adata.layers = try matrices(root, "layers")
    adata.obsm = try elements(root, "obsm")
    adata.varm = try elements(root, "varm")
    adata.obsp = try matrices(root, "obsp")
    adata.varp = try matrices(root, "varp")
    adata.uns = try elements(root, "uns")
    adata.raw = try readRaw(root)
    do {
      try adata.validate()
    } catch let error as CellDataError {
      throw CellDataError("\(root.file): inconsistent shapes: \(error.message)")
    }
    return adata
  }

  // MARK: - Containers

  func frameOrDefault(_ parent: H5Group, _ name: String, count: Int?) throws -> DataFrame {
    if parent.contains(name) {
      guard case .dataFrame(let frame)? = try element(parent, name) else {
        throw CellDataError("\(parent.file): \(parent.childPath(name)) is not a data frame")
      }
      return frame
    }
    return DataFrame(index: (0..<(count ?? 0)).map(String.init))
  }

  private func matrixIfPresent(_ parent: H5Group, _ name: String) throws -> Matrix? {
    guard parent.contains(name) else { return nil }
    guard let e = try element(parent, name) else { return nil }
    switch e {
    case .dense(let d) where d.shape.count == 2: return .dense(d)
    case .sparse(let s): return .sparse(s)
    default:
      throw CellDataError("\(parent.file): \(parent.childPath(name)) is not a matrix (\(e.typeDescription))")
    }
  }

  private func matrices(_ parent: H5Group, _ name: String) throws -> [String: Matrix] {
    guard parent.contains(name) else { return [:] }
    let group = try parent.group(name)
    var out: [String: Matrix] = [:]
    for key in try group.children() {
      if let m = try matrixIfPresent(group, key) { out[key] = m }
    }
    return out
  }

  func elements(_ parent: H5Group, _ name: String) throws -> [String: Element] {
    guard parent.contains(name) else { return [:] }
    guard case .dict(let d)? = try element(parent, name) else {
      throw CellDataError("\(parent.file): \(parent.childPath(name)) is not a group of elements")
    }
    return d
  }

  private func readRaw(_ root: H5Group) throws -> AnnData.Raw? {
    if root.contains("raw") {
      let g = try root.group("raw")
      let X = try matrixIfPresent(g, "X")
      let variables = try frameOrDefault(g, "var", count: X?.nCols)
      return AnnData.Raw(X: X, var: variables, varm: try elements(g, "varm"))
    }
    // anndata ≤ 0.6 stored raw as raw.X, raw.var and raw.varm at the root.
    if root.contains("raw.X") {
      let X = try matrixIfPresent(root, "raw.X")
      let variables = try frameOrDefault(root, "raw.var", count: X?.nCols)
      return AnnData.Raw(X: X, var: variables, varm: try elements(root, "raw.varm"))
    }
    return nil
  }

  // MARK: - Elements

  /// Reads the element `name` of `parent`; nil when it is skipped (unknown encoding or null).
  func element(_ parent: H5Group, _ name: String) throws -> Element? {
    let path = parent.childPath(name)
    var address: UInt64 = 0
    var fault: Int32 = 0
    guard chdf5_safe_object_address(parent.id, name, &address, &fault) >= 0 else {
      throw CellDataError("\(parent.file): \(path): cannot open: \(hdf5ErrorMessage())")
    }
    guard visits.objects.insert(address).inserted else {
      throw CellDataError("\(parent.file): \(path): the same object is reached through a second link (a link cycle?); anndata never writes such files")
    }
    guard visits.depth < Self.maxDepth else {
      throw CellDataError("\(parent.file): \(path): elements nested more than \(Self.maxDepth) deep")
    }
    visits.depth += 1
    defer { visits.depth -= 1 }
    switch try parent.kind(of: name) {
    case .dataset:
      let ds = try parent.dataset(name)
      let encoding = try ds.attributes.string("encoding-type")
      switch encoding {
      case nil, "array", "string-array", "numeric-scalar", "string":
        if let probe, let shape = try? ds.checkedShape(), shape.count >= 2, let kind = try? ds.numberKind() {
          try probe.readThrough(ds, bytesPerElement: kind.readSize)
          return .dense(DenseArray(probeShape: shape))
        }
        return .dense(try DenseArray(shape: ds.shape, data: ds.read()))
      case "null":
        return nil
      default:
        return skip(parent, path, encoding!, try ds.attributes.string("encoding-version"))
      }
    case .group:
      let g = try parent.group(name)
      let attrs = g.attributes
      let encoding = try attrs.string("encoding-type")
      switch encoding {
      case "csr_matrix", "csc_matrix":
        // anndata 0.7 wrote h5sparse_shape next to the encoding attributes.
        let shapeAttribute = attrs.contains("shape") ? "shape" : "h5sparse_shape"
        return .sparse(try sparse(g, format: encoding == "csr_matrix" ? .csr : .csc, shapeAttribute: shapeAttribute))
      case "dataframe":
        return .dataFrame(try dataFrame(g))
      case "dict":
        return .dict(try dict(g))
      case "categorical":
        return .categorical(try categorical(g))
      case "nullable-integer", "nullable-boolean", "nullable-string-array":
        return .nullable(try nullable(g, kind: NullableArray.Kind(rawValue: encoding!)!))
      case nil:
        // anndata ≤ 0.7: sparse groups carry h5sparse_format, data frames carry _index.
        if let format = try attrs.string("h5sparse_format") {
          guard let f = SparseMatrix.Format(rawValue: format) else {
            return skip(parent, path, "h5sparse \(format)", nil)
          }
          return .sparse(try sparse(g, format: f, shapeAttribute: "h5sparse_shape"))
        }
        if attrs.contains("_index") { return .dataFrame(try dataFrame(g)) }
        return .dict(try dict(g))
      default:
        return skip(parent, path, encoding!, try attrs.string("encoding-version"))
      }
    case .other:
      return skip(parent, path, "non-group, non-dataset object", nil)
    }
  }

  private func skip(_ parent: H5Group, _ path: String, _ encoding: String, _ version: String?) -> Element? {
    let v = version.map { " (version \($0))" } ?? ""
    warn("\(parent.file): \(path): unsupported encoding '\(encoding)'\(v); element skipped")
    return nil
  }

  private func dict(_ g: H5Group) throws -> [String: Element] {
    var out: [String: Element] = [:]
    for key in try g.children() {
      if let e = try element(g, key) { out[key] = e }
    }
    return out
  }

  private func integers(_ g: H5Group, _ name: String) throws -> [Int] {
    guard g.contains(name) else { throw CellDataError("\(g.file): \(g.path): missing '\(name)'") }
    let ds = try g.dataset(name)
    guard let values = try ds.readIntegers() else {
      throw CellDataError("\(g.file): \(ds.path): expected integers")
    }
    return values
  }

  private func sparse(_ g: H5Group, format: SparseMatrix.Format, shapeAttribute: String) throws -> SparseMatrix {
    guard let shape = try g.attributes.integers(shapeAttribute), shape.count == 2 else {
      throw CellDataError("\(g.file): \(g.path): sparse matrix without a two-entry '\(shapeAttribute)' attribute")
    }
    guard g.contains("data") else { throw CellDataError("\(g.file): \(g.path): sparse matrix without 'data'") }
    func matrix(_ data: ArrayData, _ indices: [Int32], _ indptr: [Int], _ indexType: SparseMatrix.IndexType) throws -> SparseMatrix {
      do {
        return try SparseMatrix(format: format, nRows: shape[0], nCols: shape[1], data: data, indices: indices, indptr: indptr,
                                indexType: indexType)
      } catch let error as CellDataError {
        throw CellDataError("\(g.file): \(g.path): \(error.message)")
      }
    }
    if let probe {
      let indptr = try integers(g, "indptr")
      let major = format == .csr ? shape[0] : shape[1]
      if shape[0] >= 0, shape[1] >= 0, indptr.count == major + 1 {
        try probe.readThrough(g.dataset("indices"), as: chdf5_native_int32())
        try probe.readThrough(g.dataset("data"))
        return try matrix(.float32([]), [], [Int](repeating: 0, count: indptr.count), .int32)
      }  // else the whole read below fails as the caller's will
    }
    let indicesDataset = try g.dataset("indices")
    guard let indices = try indicesDataset.readIntegers(as: Int32.self) else {
      throw CellDataError("\(g.file): \(indicesDataset.path): expected integers")
    }
    let stored = try indicesDataset.numberKind()
    let wide = stored.size > 4 || (stored.size == 4 && !stored.signed)  // int64, uint64, uint32
    let indptr = try integers(g, "indptr")
    let data = try g.dataset("data").read()
    return try matrix(data, indices, indptr, wide ? .int64 : .int32)
  }

  private func categorical(_ g: H5Group) throws -> Categorical {
    let codes = try integers(g, "codes")
    guard g.contains("categories") else { throw CellDataError("\(g.file): \(g.path): categorical without 'categories'") }
    let categories = try g.dataset("categories").read()
    let ordered = try g.attributes.bool("ordered") ?? false
    do {
      return try Categorical(codes: codes, categories: categories, ordered: ordered)
    } catch let error as CellDataError {
      throw CellDataError("\(g.file): \(g.path): \(error.message)")
    }
  }

  private func nullable(_ g: H5Group, kind: NullableArray.Kind) throws -> NullableArray {
    guard g.contains("values"), g.contains("mask") else {
      throw CellDataError("\(g.file): \(g.path): \(kind.rawValue) needs 'values' and 'mask'")
    }
    let values = try g.dataset("values").read()
    guard case .bool(let mask) = try g.dataset("mask").read() else {
      throw CellDataError("\(g.file): \(g.path)/mask: expected booleans")
    }
    do {
      return try NullableArray(kind: kind, values: values, mask: mask)
    } catch let error as CellDataError {
      throw CellDataError("\(g.file): \(g.path): \(error.message)")
    }
  }

  private func dataFrame(_ g: H5Group) throws -> DataFrame {
    guard let indexName = try g.attributes.string("_index") else {
      throw CellDataError("\(g.file): \(g.path): data frame without an '_index' attribute")
    }
    guard g.contains(indexName) else {
      throw CellDataError("\(g.file): \(g.path): data frame index '\(indexName)' is missing")
    }
    let indexData = try g.dataset(indexName).read()
    let index = (0..<indexData.count).map { indexData.text(at: $0) }
    var frame = DataFrame(index: index, indexName: indexName)
    // Old files may lack column-order; then every member but the index and __categories is a column.
    let order = try g.attributes.strings("column-order")
      ?? g.children().filter { $0 != indexName && $0 != "__categories" }
    for name in order {
      guard g.contains(name) else {
        throw CellDataError("\(g.file): \(g.childPath(name)): column listed in column-order is missing")
      }
      guard var column = try element(g, name) else { continue }
      // anndata 0.7: categorical codes whose categories sit in __categories/<name>.
      if case .dense(let d) = column, g.contains("__categories"),
        try g.dataset(name).attributes.contains("categories")
      {
        let cats = try g.group("__categories")
        guard let codes = d.data.integers, cats.contains(name) else {
          throw CellDataError("\(g.file): \(g.childPath(name)): legacy categorical without categories")
        }
        let categoriesDataset = try cats.dataset(name)
        let ordered = try categoriesDataset.attributes.bool("ordered") ?? false
        column = .categorical(try Categorical(codes: codes, categories: categoriesDataset.read(), ordered: ordered))
      }
      do {
        try frame.set(name, column)
      } catch let error as CellDataError {
        throw CellDataError("\(g.file): \(g.path): \(error.message)")
      }
    }
    return frame
  }
}

extension AnnData {
  /// Builds without shape validation; the reader validates once everything is read.
  init(unvalidatedX X: Matrix?, obs: DataFrame, `var` variables: DataFrame) {
    self.X = X
    self.obs = obs
    self.var = variables
  }

  /// Reads an .h5ad file. Elements with an unknown encoding are skipped and reported through
  /// `warn`. With `requireX`, a file without X is an error.
  public static func read(
    h5ad path: String, requireX: Bool = false, warn: @escaping WarningHandler = printWarningToStandardError
  ) throws -> AnnData {
    try CrashIsolation.check(file: path) {
      _ = try H5ADReader(warn: { _ in }, probe: .init(file: path)).readAnnData(try H5Group.openFile(path), requireX: requireX)
    }
    let root = try H5Group.openFile(path)
    return try H5ADReader(warn: warn).readAnnData(root, requireX: requireX)
  }
}
