import Foundation

/// Several backed files read as one matrix (as scvi-tools' / lamindb's `MappedCollection`):
/// their rows one after another, their genes aligned by name to one gene list (a gene a file
/// lacks reads as zero; a file sharing no gene with the list is an error naming it).
public final class BackedCollection: RowBlockSource, @unchecked Sendable {
  public let files: [BackedH5AD]
  /// The columns of every block, in this order.
  public let genes: [String]
  /// Row offsets: file i holds rows offsets[i]..<offsets[i + 1].
  public let offsets: [Int]
  /// Per file, how many of `genes` it lacks.
  public let missingGenes: [Int]
  /// obs of every file stacked (columns all files share, as `AnnData.concatenate`), plus a
  /// categorical `sourceKey` column naming each cell's file; var is `genes`.
  public let metadata: AnnData
  /// Per file, the target column of each of its columns (-1: not in `genes`); nil when the file
  /// has exactly `genes`.
  private let columnMaps: [[Int32]?]

  public var nRows: Int { offsets.last! }
  public var nCols: Int { genes.count }
  public var sourceDescription: String { "collection of \(files.count) files (\(files.map(\.path).joined(separator: ", ")))" }

  /// - Parameters:
  ///   - genes: the gene list (default: the first file's var names).
  ///   - sourceKey: the obs column naming each cell's file (its path's last component).
  public init(_ files: [BackedH5AD], genes: [String]? = nil, sourceKey: String = "source_file") throws {
    guard let first = files.first else { throw CellDataError("backed collection: no files given") }
    let genes = genes ?? first.varNames
    guard !genes.isEmpty else { throw CellDataError("backed collection: the gene list is empty") }
    self.files = files
    self.genes = genes
    var offsets = [0], maps: [[Int32]?] = [], missing: [Int] = []
    for file in files {
      offsets.append(offsets.last! + file.nRows)
      if file.varNames == genes {
        maps.append(nil)
        missing.append(0)
        continue
      }
      var target: [String: Int32] = [:]
      for (i, gene) in genes.enumerated() where target[gene] == nil { target[gene] = Int32(i) }
      var used = Set<Int32>()
      let map = file.varNames.map { name -> Int32 in
        guard let t = target[name], used.insert(t).inserted else { return -1 }
        return t
      }
      guard !used.isEmpty else {
        throw CellDataError(
          "\(file.path): shares none of the \(genes.count) genes of the collection (genes e.g. \(genes.prefix(3).joined(separator: ", ")); the file's e.g. \(file.varNames.prefix(3).joined(separator: ", ")))")
      }
      maps.append(map)
      missing.append(genes.count - used.count)
    }
    self.offsets = offsets
    columnMaps = maps
    missingGenes = missing
    let names = files.map { ($0.path as NSString).lastPathComponent }
    var labels = Set(names).count == names.count ? names : files.map(\.path)
    if Set(labels).count != labels.count { labels = labels.enumerated().map { "\($1) (\($0 + 1))" } }  // a file given twice
    let parts = try files.map { file in try AnnData(X: nil, obs: file.obs, var: DataFrame(index: genes)) }
    metadata = try AnnData.concatenate(parts, batchKey: sourceKey, batchCategories: labels)
  }

  /// Opens each path as a `BackedH5AD` (matrix `element`) and collects them.
  public convenience init(paths: [String], genes: [String]? = nil, element: String = "X",
                          sourceKey: String = "source_file") throws {
    try self.init(paths.map { try BackedH5AD.open($0, element: element) }, genes: genes, sourceKey: sourceKey)
  }

  /// The file holding global row `row`, and the row within it.
  public func location(ofRow row: Int) -> (file: Int, row: Int) {
    var low = 0, high = files.count - 1
    while low < high {
      let mid = (low + high + 1) / 2
      if offsets[mid] <= row { low = mid } else { high = mid - 1 }
    }
    return (low, row - offsets[low])
  }

  public func rows(_ range: Range<Int>) throws -> CSRRows {
    try checkRange(range)
    var out = CSRRows(nCols: nCols)
    for (i, file) in files.enumerated() {
      let low = Swift.max(range.lowerBound, offsets[i]), high = Swift.min(range.upperBound, offsets[i + 1])
      guard low < high else { continue }
      let block = try file.rows((low - offsets[i])..<(high - offsets[i]))
      out.append(columnMaps[i].map { block.remapped($0, width: nCols) } ?? block)
    }
    return out
  }
}
