import Foundation

extension AnnData {
  /// Joins a CSV or TSV table (first row: header; first column: cell names) into obs.
  /// Columns whose values all parse as numbers become float64; others become categoricals.
  /// Every cell of the AnnData must appear in the table; extra rows are ignored.
  public mutating func joinObsMetadata(csv path: String, separator: Character? = nil) throws {
    let rows = lines(try readText(path))
    guard let header = rows.first else { throw CellDataError("\(path): empty file") }
    let sep: Character = separator ?? ((path.hasSuffix(".tsv") || path.hasSuffix(".tsv.gz") || path.hasSuffix(".txt")) ? "\t" : ",")
    let names = header.split(separator: sep, omittingEmptySubsequences: false).map(String.init)
    guard names.count >= 2 else { throw CellDataError("\(path): needs a name column and at least one more column") }
    var table: [String: [String]] = [:]
    for (k, row) in rows.dropFirst().enumerated() {
      let fields = row.split(separator: sep, omittingEmptySubsequences: false).map(String.init)
      guard fields.count == names.count else {
        throw CellDataError("\(path): line \(k + 2) has \(fields.count) fields; the header has \(names.count)")
      }
      table[fields[0]] = Array(fields.dropFirst())
    }
    let missing = obsNames.filter { table[$0] == nil }
    guard missing.isEmpty else {
      throw CellDataError("\(path): \(missing.count) cells are not in the table (first: \(missing[0]))")
    }
    for (c, name) in names.dropFirst().enumerated() {
      let values = obsNames.map { table[$0]![c] }
      let numbers = values.map { Double($0) }
      if numbers.allSatisfy({ $0 != nil }) {
        try obs.set(name, .array(.float64(numbers.map { $0! })))
      } else {
        try obs.set(name, .categorical(Categorical(values)))
      }
    }
  }
}
