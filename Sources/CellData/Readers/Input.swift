import Foundation

extension AnnData {
  /// Reads a data set named as a user names it on the command line, by its name as scanpy's
  /// readers are chosen: a directory is a 10x Genomics Matrix Market directory
  /// (`read10xMTX`), a `.h5` file a 10x Genomics HDF5 matrix (`read10xH5`, scanpy's
  /// `read_10x_h5`), anything else an .h5ad file. With `requireX`, an .h5ad without X is an
  /// error (10x matrices always have one).
  public static func read(input path: String, requireX: Bool = false) throws -> AnnData {
    if isMatrixMarketDirectory(path) { return try read10xMTX(directory: path) }
    if isTenXH5(path) { return try read10xH5(path) }
    return try read(h5ad: path, requireX: requireX)
  }

  /// Whether `read(input:)` reads `path` as a 10x Genomics matrix: its counts are then X, with
  /// no layers.
  public static func isTenXInput(_ path: String) -> Bool { isMatrixMarketDirectory(path) || isTenXH5(path) }

  private static func isMatrixMarketDirectory(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
  }

  private static func isTenXH5(_ path: String) -> Bool { URL(fileURLWithPath: path).pathExtension.lowercased() == "h5" }
}
