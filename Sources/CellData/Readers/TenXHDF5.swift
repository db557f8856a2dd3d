import CHDF5

extension AnnData {
  /// Reads a 10x Genomics HDF5 matrix (`filtered_feature_bc_matrix.h5`): the v3 layout
  /// (`/matrix` with `features/`) or the v2 layout (`/<genome>` with `genes`, `gene_names`).
  /// As scanpy's `read_10x_h5`: cells × genes CSR float32, var names are gene symbols (kept
  /// as they are, duplicates included, as scanpy does; call `varNamesMakeUnique()`),
  /// var["gene_ids"] and, for v3, var["feature_types"] and var["genome"].
  public static func read10xH5(_ path: String, genome: String? = nil) throws -> AnnData {
    try CrashIsolation.check(file: path) { _ = try readUnchecked10xH5(path, genome: genome, probe: .init(file: path)) }
    return try readUnchecked10xH5(path, genome: genome)!
  }

  /// `probe` (crash isolation's child): the matrix's data and indices are read through a small
  /// buffer (every chunk decoded, nothing kept, their memory counted) and no AnnData is built.
  private static func readUnchecked10xH5(_ path: String, genome: String?, probe: CrashIsolation.Budget? = nil) throws
    -> AnnData?
  {
    let root = try H5Group.openFile(path)
    let group: H5Group
    var isV3 = false
    if root.contains("matrix") {
      group = try root.group("matrix")
      isV3 = true
    } else {
      let names = try root.children()
      guard let name = genome ?? names.first else { throw CellDataError("\(path): no matrix group") }
      guard root.contains(name) else { throw CellDataError("\(path): no genome '\(name)' (has \(names.joined(separator: ", ")))") }
      group = try root.group(name)
    }
    func strings(_ g: H5Group, _ name: String) throws -> [String] {
      guard g.contains(name) else { throw CellDataError("\(path): \(g.childPath(name)) is missing") }
      let data = try g.dataset(name).read()
      return (0..<data.count).map { data.text(at: $0) }
    }
    func integers<T: H5NativeNumber & FixedWidthInteger>(_ name: String, as type: T.Type = Int.self) throws -> [T] {
      guard group.contains(name), let v = try group.dataset(name).readIntegers(as: type) else {
        throw CellDataError("\(path): \(group.childPath(name)) is missing or not integer")
      }
      return v
    }
    let shape = try integers("shape")
    guard shape.count == 2 else { throw CellDataError("\(path): shape must have two entries") }
    var matrix: SparseMatrix?
    if let probe {
      for (name, type) in [("data", chdf5_native_float()), ("indices", chdf5_native_int32())] where group.contains(name) {
        try probe.readThrough(group.dataset(name), as: type)
      }
      _ = try integers("indptr")
    } else {
      guard group.contains("data") else { throw CellDataError("\(path): \(group.childPath("data")) is missing") }
      guard let values = try group.dataset("data").readFloats() else { throw CellDataError("\(path): data is not numeric") }
      // Genes × cells CSC is cells × genes CSR with the same arrays.
      let (indices, indptr) = (try integers("indices", as: Int32.self), try integers("indptr"))
      do {
        matrix = try SparseMatrix(format: .csr, nRows: shape[1], nCols: shape[0], data: .float32(values),
                                  indices: indices, indptr: indptr)
      } catch let error as CellDataError {
        throw CellDataError("\(path): \(group.path): \(error.message)")
      }
    }
    let barcodes = try strings(group, "barcodes")
    var variables: DataFrame
    if isV3 {
      let features = try group.group("features")
      variables = DataFrame(index: try strings(features, "name"))
      try variables.set("gene_ids", .array(.string(try strings(features, "id"))))
      try variables.set("feature_types", .categorical(Categorical(try strings(features, "feature_type"))))
      if features.contains("genome") {
        try variables.set("genome", .categorical(Categorical(try strings(features, "genome"))))
      }
    } else {
      variables = DataFrame(index: try strings(group, "gene_names"))
      try variables.set("gene_ids", .array(.string(try strings(group, "genes"))))
    }
    guard let matrix else { return nil }
    do {
      return try AnnData(X: .sparse(matrix), obs: DataFrame(index: barcodes), var: variables)
    } catch let error as CellDataError {
      throw CellDataError("\(path): \(error.message)")
    }
  }
}
