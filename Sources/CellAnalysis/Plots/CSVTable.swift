import Foundation

/// A small CSV table (RFC 4180 quoting; comma separated) with a header row.
struct CSVTable {
  var header: [String]
  var rows: [[String]]

  init(url: URL, what: String) throws {
    let text: String
    do {
      text = try String(contentsOf: url, encoding: .utf8)
    } catch {
      throw PlotError("cannot read \(what) \(url.path): \(error.localizedDescription)")
    }
    try self.init(text: text, name: "\(what) \(url.lastPathComponent)")
  }

  init(text: String, name: String) throws {
    var records = try Self.parse(text, name: name)
    records.removeAll { $0.count == 1 && $0[0].trimmingCharacters(in: .whitespaces).isEmpty }
    guard let header = records.first else { throw PlotError("\(name) is empty") }
    self.header = header.map { $0.trimmingCharacters(in: .whitespaces) }
    self.rows = Array(records.dropFirst())
    for (i, row) in rows.enumerated() where row.count != header.count {
      throw PlotError("\(name): line \(i + 2) has \(row.count) fields, the header has \(header.count)")
    }
  }

  /// Parses a number cell; empty, "nan" and "NaN" are NaN.
  static func number(_ cell: String) -> Double? {
    let s = cell.trimmingCharacters(in: .whitespaces)
    if s.isEmpty || s.lowercased() == "nan" { return .nan }
    return Double(s)
  }

  private static func parse(_ text: String, name: String) throws -> [[String]] {
    var records: [[String]] = []
    var record: [String] = [], field = ""
    var inQuotes = false, afterQuote = false
    var chars = Array(text.unicodeScalars)[...]
    if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
    var i = chars.startIndex
    while i < chars.endIndex {
      let c = chars[i]
      if inQuotes {
        if c == "\"" {
          if i + 1 < chars.endIndex && chars[i + 1] == "\"" {
            field.unicodeScalars.append("\"")
            i += 1
          } else {
            inQuotes = false
            afterQuote = true
          }
        } else {
          field.unicodeScalars.append(c)
        }
      } else if c == "\"" && field.isEmpty && !afterQuote {
        inQuotes = true
      } else if c == "," {
        record.append(field)
        field = ""
        afterQuote = false
      } else if c == "\n" || c == "\r" {
        if c == "\r" && i + 1 < chars.endIndex && chars[i + 1] == "\n" { i += 1 }
        record.append(field)
        records.append(record)
        record = []
        field = ""
        afterQuote = false
      } else {
        field.unicodeScalars.append(c)
      }
      i += 1
    }
    if inQuotes { throw PlotError("\(name): unterminated quoted field") }
    if !field.isEmpty || !record.isEmpty {
      record.append(field)
      records.append(record)
    }
    return records
  }
}
