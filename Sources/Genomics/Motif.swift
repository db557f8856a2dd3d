// Position probability matrices read from MEME, JASPAR and plain PFM files.
import Foundation

/// A DNA motif as a position probability matrix: `probabilities[position][base]`, bases in
/// A, C, G, T order, every row summing to 1 (counts are normalised on reading).
public struct Motif: Equatable, Sendable {
  /// The motif identifier (`MA0099.3`, or MEME's first MOTIF word).
  public var id: String
  /// The alternate/TF name (`FOS::JUN`; MEME's second MOTIF word), or the id when there is none.
  public var name: String
  public var probabilities: [[Double]]

  public init(id: String, name: String? = nil, probabilities: [[Double]]) {
    self.id = id
    self.name = name ?? id
    self.probabilities = probabilities
  }

  public var width: Int { probabilities.count }

  /// The TF name used for motif-library file names, by calico's rule (`make_fasta.R`): the part of
  /// the alternate name before the first `_`, with parentheses removed; `/` becomes `-` so the name
  /// is a valid file name.
  public var tfName: String {
    let first = name.split(separator: "_", omittingEmptySubsequences: false).first.map(String.init) ?? name
    return first.filter { $0 != "(" && $0 != ")" }.replacingOccurrences(of: "/", with: "-")
  }

  /// The motif of the opposite strand: positions reversed, A↔T and C↔G.
  public func reverseComplement() -> Motif {
    Motif(id: id, name: name, probabilities: probabilities.reversed().map { Array($0.reversed()) })
  }

  /// The most likely base at each position, as upper-case letters.
  public var consensus: String {
    DNACode.decode(probabilities.map { row in UInt8(row.indices.max { row[$0] < row[$1] }!) })
  }
}

public enum MotifFormat: String, Sendable {
  /// MEME minimal motif format (`MOTIF id alt` + `letter-probability matrix:` rows of A C G T).
  case meme
  /// JASPAR: `>ID NAME` then four rows `A [ counts ]`, `C [ ... ]`, `G [ ... ]`, `T [ ... ]`.
  case jaspar
  /// Plain PFM: optional `>ID NAME` header, then either four rows of counts (A, C, G, T: JASPAR's
  /// .pfm) or one row of four numbers per position (gimmemotifs' .pfm).
  case pfm
}

public enum MotifReader {
  /// Reads every motif of a file; the format is guessed from the content when not given
  /// (`MEME version` → MEME, `[` → JASPAR, otherwise PFM).
  public static func read(path: String, format: MotifFormat? = nil) throws -> [Motif] {
    let text = try readUTF8Text(path, notText: .malformedMotif(path: path, record: "", reason: "not UTF-8 text"))
    return try parse(text, format: format, source: path)
  }

  public static func parse(_ text: String, format: MotifFormat? = nil, source: String = "<text>") throws -> [Motif] {
    let resolved = format ?? guessFormat(text)
    let motifs: [Motif]
    switch resolved {
    case .meme: motifs = try parseMEME(text, source: source)
    case .jaspar: motifs = try parseJASPAR(text, source: source)
    case .pfm: motifs = try parsePFM(text, source: source)
    }
    if motifs.isEmpty {
      throw GenomicsError.malformedMotif(path: source, record: "", reason: "no motifs found (read as \(resolved.rawValue))")
    }
    return motifs
  }

  public static func guessFormat(_ text: String) -> MotifFormat {
    if text.contains("MEME version") || text.contains("letter-probability matrix") { return .meme }
    if text.contains("[") { return .jaspar }
    return .pfm
  }

  // MARK: MEME

  static func parseMEME(_ text: String, source: String) throws -> [Motif] {
    let lines = splitLines(text)
    var motifs: [Motif] = []
    var currentID: String?
    var currentName: String?
    var i = 0
    while i < lines.count {
      let line = lines[i].trimmingCharacters(in: .whitespaces)
      i += 1
      if line.hasPrefix("ALPHABET") {
        let value = line.dropFirst("ALPHABET".count).drop { $0 == "=" || $0 == " " }
        let upper = value.uppercased()
        guard upper.hasPrefix("ACGT") || upper.contains("DNA") else {
          throw GenomicsError.malformedMotif(path: source, record: "", reason: "alphabet '\(value)' is not DNA (ACGT)")
        }
      } else if line.hasPrefix("MOTIF") {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count >= 2 else {
          throw GenomicsError.malformedMotif(path: source, record: "", reason: "MOTIF line without a name: '\(line)'")
        }
        currentID = String(words[1])
        currentName = words.count >= 3 ? String(words[2]) : nil
      } else if line.hasPrefix("letter-probability matrix") || line.hasPrefix("log-odds matrix") {
        let isProbability = line.hasPrefix("letter-probability")
        let record = currentID ?? "motif \(motifs.count + 1)"
        let fields = keyValues(line)
        if let alength = fields["alength"], alength != 4 {
          throw GenomicsError.malformedMotif(path: source, record: record, reason: "alength= \(alength), expected 4 (DNA)")
        }
        var rows: [[Double]] = []
        while i < lines.count {
          if let width = fields["w"], rows.count == width { break }
          let rowText = lines[i].trimmingCharacters(in: .whitespaces)
          if rowText.isEmpty && fields["w"] != nil && rows.isEmpty { i += 1; continue }
          guard let row = numbers(rowText), !rowText.isEmpty else { break }
          guard row.count == 4 else {
            throw GenomicsError.malformedMotif(
              path: source, record: record, reason: "matrix row \(rows.count + 1) has \(row.count) values, expected 4")
          }
          rows.append(row)
          i += 1
        }
        if let width = fields["w"], rows.count != width {
          throw GenomicsError.malformedMotif(
            path: source, record: record, reason: "w= \(width) but \(rows.count) matrix rows follow")
        }
        if isProbability {
          guard currentID != nil else {
            throw GenomicsError.malformedMotif(path: source, record: record, reason: "matrix before any MOTIF line")
          }
          motifs.append(
            Motif(id: record, name: currentName, probabilities: try normalise(rows, source: source, record: record)))
        }
      }
    }
    return motifs
  }

  // MARK: JASPAR

  static func parseJASPAR(_ text: String, source: String) throws -> [Motif] {
    var motifs: [Motif] = []
    var header: (id: String, name: String?)?
    var rowsByBase: [Character: [Double]] = [:]

    func finish() throws {
      guard let current = header else { return }
      let record = current.id
      var columns: [[Double]] = []
      for base in "ACGT" {
        guard let row = rowsByBase[base] else {
          throw GenomicsError.malformedMotif(path: source, record: record, reason: "no row for base \(base)")
        }
        columns.append(row)
      }
      guard Set(columns.map(\.count)).count == 1, columns[0].count > 0 else {
        throw GenomicsError.malformedMotif(
          path: source, record: record, reason: "rows A, C, G, T have lengths \(columns.map(\.count)); they must be equal and non-zero")
      }
      let positions = (0..<columns[0].count).map { p in columns.map { $0[p] } }
      motifs.append(Motif(id: current.id, name: current.name, probabilities: try normalise(positions, source: source, record: record)))
      header = nil
      rowsByBase = [:]
    }

    for rawLine in splitLines(text) {
      let line = rawLine.trimmingCharacters(in: .whitespaces)
      if line.isEmpty { continue }
      if line.hasPrefix(">") {
        try finish()
        header = parseHeader(line)
        continue
      }
      let record = header?.id ?? "motif \(motifs.count + 1)"
      guard header != nil else {
        throw GenomicsError.malformedMotif(path: source, record: record, reason: "matrix row before any '>' header")
      }
      guard let base = line.first.map({ Character($0.uppercased()) }), "ACGT".contains(base),
        let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]"), open < close,
        let values = numbers(String(line[line.index(after: open)..<close]))
      else {
        throw GenomicsError.malformedMotif(path: source, record: record, reason: "cannot read row '\(line)' (expected 'A [ n n ... ]')")
      }
      if rowsByBase[base] != nil {
        throw GenomicsError.malformedMotif(path: source, record: record, reason: "two rows for base \(base)")
      }
      rowsByBase[base] = values
    }
    try finish()
    return motifs
  }

  // MARK: PFM

  static func parsePFM(_ text: String, source: String) throws -> [Motif] {
    var motifs: [Motif] = []
    var header: (id: String, name: String?)?
    var rows: [[Double]] = []

    func finish() throws {
      if header == nil && rows.isEmpty { return }
      let stem = URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
      let current = header ?? (id: motifs.isEmpty ? stem : "\(stem)_\(motifs.count + 1)", name: nil)
      let record = current.id
      guard !rows.isEmpty else {
        throw GenomicsError.malformedMotif(path: source, record: record, reason: "no matrix rows")
      }
      let positions = try orientPFM(rows, source: source, record: record)
      motifs.append(Motif(id: current.id, name: current.name, probabilities: try normalise(positions, source: source, record: record)))
      header = nil
      rows = []
    }

    for rawLine in splitLines(text) {
      let line = rawLine.trimmingCharacters(in: .whitespaces)
      if line.isEmpty || line.hasPrefix("#") { continue }
      if line.hasPrefix(">") {
        try finish()
        header = parseHeader(line)
        continue
      }
      guard let values = numbers(line) else {
        throw GenomicsError.malformedMotif(
          path: source, record: header?.id ?? "motif \(motifs.count + 1)", reason: "cannot read row '\(line)' as numbers")
      }
      rows.append(values)
    }
    try finish()
    return motifs
  }

  /// Rows of a PFM as positions × 4. Four rows of equal length are bases × positions (JASPAR .pfm);
  /// rows of four numbers are positions × bases (gimmemotifs .pfm). A 4 × 4 matrix is read as
  /// positions × bases only when its rows, not its columns, have equal sums.
  private static func orientPFM(_ rows: [[Double]], source: String, record: String) throws -> [[Double]] {
    let lengths = Set(rows.map(\.count))
    guard lengths.count == 1, let length = lengths.first, length > 0 else {
      throw GenomicsError.malformedMotif(path: source, record: record, reason: "matrix rows have different lengths \(rows.map(\.count))")
    }
    let transposed = (0..<length).map { p in rows.map { $0[p] } }
    if rows.count == 4 && length != 4 { return transposed }
    if length == 4 && rows.count != 4 { return rows }
    guard rows.count == 4 else {
      throw GenomicsError.malformedMotif(
        path: source, record: record, reason: "a \(rows.count) × \(length) matrix has neither 4 rows nor 4 columns")
    }
    func equalSums(_ m: [[Double]]) -> Bool {
      let sums = m.map { $0.reduce(0, +) }
      return sums.allSatisfy { abs($0 - sums[0]) <= 1e-6 * max(1, abs(sums[0])) }
    }
    return equalSums(rows) && !equalSums(transposed) ? rows : transposed
  }

  // MARK: helpers

  private static func normalise(_ rows: [[Double]], source: String, record: String) throws -> [[Double]] {
    guard !rows.isEmpty else {
      throw GenomicsError.malformedMotif(path: source, record: record, reason: "empty matrix")
    }
    return try rows.enumerated().map { position, row in
      guard row.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
        throw GenomicsError.malformedMotif(
          path: source, record: record, reason: "position \(position + 1) has a negative or non-finite value \(row)")
      }
      let total = row.reduce(0, +)
      guard total > 0, total.isFinite else {
        throw GenomicsError.malformedMotif(
          path: source, record: record, reason: "position \(position + 1) sums to \(total), not a positive finite number")
      }
      return row.map { $0 / total }
    }
  }

  private static func splitLines(_ text: String) -> [String] {
    text.split(separator: "\n", omittingEmptySubsequences: false).map {
      $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
    }
  }

  private static func parseHeader(_ line: String) -> (id: String, name: String?) {
    let words = line.dropFirst().split(whereSeparator: { $0 == " " || $0 == "\t" })
    let id = words.first.map(String.init) ?? ""
    return (id, words.count >= 2 ? String(words[1]) : nil)
  }

  /// Whitespace-separated numbers, or nil if any word is not a number.
  private static func numbers(_ text: String) -> [Double]? {
    var values: [Double] = []
    for word in text.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
      guard let value = Double(word) else { return nil }
      values.append(value)
    }
    return values
  }

  /// `key= value` integer pairs of a MEME matrix header (`alength= 4 w= 11 nsites= 20 E= 0`).
  private static func keyValues(_ line: String) -> [String: Int] {
    let words = line.replacingOccurrences(of: "=", with: "= ").split(whereSeparator: { $0 == " " || $0 == "\t" })
    var result: [String: Int] = [:]
    for (k, word) in words.enumerated() where word.hasSuffix("=") && k + 1 < words.count {
      if let value = Int(words[k + 1]) { result[String(word.dropLast())] = value }
    }
    return result
  }
}
