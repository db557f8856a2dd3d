// The samtools faidx index (.fai): read, build from a FASTA, write.
import Foundation

/// One .fai line: `name  length  offset  linebases  linewidth` (tab-separated).
public struct FastaIndexEntry: Equatable, Sendable {
  public var name: String
  /// Number of bases in the record.
  public var length: Int
  /// Byte offset of the record's first base in the FASTA file.
  public var offset: Int
  /// Bases per full line.
  public var lineBases: Int
  /// Bytes per full line, line terminator included (lineBases + 1 for `\n`, + 2 for `\r\n`).
  public var lineWidth: Int

  public init(name: String, length: Int, offset: Int, lineBases: Int, lineWidth: Int) {
    self.name = name
    self.length = length
    self.offset = offset
    self.lineBases = lineBases
    self.lineWidth = lineWidth
  }

  /// Byte offset in the file of the 0-based base `position`.
  func byteOffset(ofBase position: Int) -> Int {
    guard lineBases > 0 else { return offset }
    return offset + (position / lineBases) * lineWidth + position % lineBases
  }
}

/// A FASTA index in samtools faidx format, in file order, with lookup by name.
public struct FastaIndex: Equatable, Sendable {
  public private(set) var entries: [FastaIndexEntry]
  private var positionByName: [String: Int]

  public init(entries: [FastaIndexEntry], source: String = "<memory>") throws {
    self.entries = entries
    positionByName = [:]
    for (i, entry) in entries.enumerated() {
      if positionByName[entry.name] != nil {
        throw GenomicsError.malformedFasta(path: source, reason: "sequence name '\(entry.name)' appears twice")
      }
      positionByName[entry.name] = i
    }
  }

  public var names: [String] { entries.map(\.name) }

  public subscript(name: String) -> FastaIndexEntry? {
    positionByName[name].map { entries[$0] }
  }

  /// Parses the text of a .fai file. Extra columns (FASTQ's qualoffset) are ignored.
  public static func parse(_ text: String, path: String) throws -> FastaIndex {
    var entries: [FastaIndexEntry] = []
    for (lineNumber, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
      if line.isEmpty { continue }
      let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
      guard fields.count >= 5 else {
        throw GenomicsError.malformedIndex(
          path: path, line: lineNumber + 1, reason: "expected 5 tab-separated fields, found \(fields.count)")
      }
      var numbers: [Int] = []
      for (column, field) in fields[1...4].enumerated() {
        guard let value = Int(field), value >= 0 else {
          throw GenomicsError.malformedIndex(
            path: path, line: lineNumber + 1, reason: "field \(column + 2) '\(field)' is not a non-negative integer")
        }
        numbers.append(value)
      }
      let entry = FastaIndexEntry(
        name: String(fields[0]), length: numbers[0], offset: numbers[1], lineBases: numbers[2], lineWidth: numbers[3])
      if entry.length > 0 && (entry.lineBases == 0 || entry.lineWidth < entry.lineBases) {
        throw GenomicsError.malformedIndex(
          path: path, line: lineNumber + 1,
          reason: "linebases \(entry.lineBases) and linewidth \(entry.lineWidth) are inconsistent")
      }
      // The byte offset of the last base must be computable: (length / linebases) * linewidth
      // + offset without overflow (reads compare it with the file's size).
      if entry.length > 0 {
        let lines = (entry.length - 1) / entry.lineBases
        let (span, o1) = lines.multipliedReportingOverflow(by: entry.lineWidth)
        let (end, o2) = span.addingReportingOverflow(entry.offset)
        if o1 || o2 || end > Int.max - entry.lineBases {
          throw GenomicsError.malformedIndex(
            path: path, line: lineNumber + 1, reason: "length \(entry.length) and offset \(entry.offset) lie beyond any file")
        }
      }
      entries.append(entry)
    }
    return try FastaIndex(entries: entries, source: path)
  }

  public static func read(from path: String) throws -> FastaIndex {
    let text = try readUTF8Text(path, notText: .malformedIndex(path: path, line: 0, reason: "not UTF-8 text"))
    return try parse(text, path: path)
  }

  /// The .fai text, byte for byte what `samtools faidx` writes.
  public func serialized() -> String {
    entries.map { "\($0.name)\t\($0.length)\t\($0.offset)\t\($0.lineBases)\t\($0.lineWidth)\n" }.joined()
  }

  /// Writes the index atomically (temporary file, then rename).
  public func write(to path: String) throws {
    do {
      try Data(serialized().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw GenomicsError.unwritableFile(path: path, reason: error.localizedDescription)
    }
  }

  /// Builds the index of the FASTA at `path` by streaming through it once, applying samtools' rules:
  /// the name is the header up to the first whitespace; within a record every line but the last
  /// has the same length; blank lines may only end a record.
  public static func build(fastaPath path: String) throws -> FastaIndex {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw GenomicsError.unreadableFile(path: path, reason: "no such file or not readable")
    }
    defer { try? handle.close() }
    var builder = IndexBuilder(path: path)
    var position = 0
    while true {
      let chunk: Data
      do {
        chunk = try handle.read(upToCount: 1 << 20) ?? Data()
      } catch {
        throw GenomicsError.unreadableFile(path: path, reason: error.localizedDescription)
      }
      if chunk.isEmpty { break }
      if position == 0 && chunk.count >= 2 && chunk[chunk.startIndex] == 0x1F && chunk[chunk.startIndex + 1] == 0x8B {
        throw GenomicsError.compressedFasta(path: path)
      }
      try chunk.withUnsafeBytes { try builder.consume($0.bindMemory(to: UInt8.self), at: position) }
      position += chunk.count
    }
    try builder.finish(at: position)
    return try FastaIndex(entries: builder.entries, source: path)
  }
}

/// Line-by-line state machine behind `FastaIndex.build`.
private struct IndexBuilder {
  let path: String
  var entries: [FastaIndexEntry] = []

  // The line being read.
  var lineStart = 0
  var lineIsHeader: Bool?
  var headerBytes: [UInt8] = []
  var lineBases = 0

  // The record being read.
  var current: FastaIndexEntry?
  var sawShortLine = false
  var sawBlankLine = false
  var sequenceLineCount = 0

  init(path: String) { self.path = path }

  mutating func consume(_ bytes: UnsafeBufferPointer<UInt8>, at base: Int) throws {
    for i in 0..<bytes.count {
      let byte = bytes[i]
      if lineIsHeader == nil { lineIsHeader = (byte == UInt8(ascii: ">")) }
      if byte == UInt8(ascii: "\n") {
        try endLine(width: base + i + 1 - lineStart, nextLineStart: base + i + 1, hasTerminator: true)
      } else if lineIsHeader == true {
        headerBytes.append(byte)
      } else if byte != UInt8(ascii: "\r") {
        lineBases += 1
      }
    }
  }

  mutating func finish(at end: Int) throws {
    if lineIsHeader != nil {
      try endLine(width: end - lineStart, nextLineStart: end, hasTerminator: false)
    }
    closeRecord()
  }

  private mutating func endLine(width: Int, nextLineStart: Int, hasTerminator: Bool) throws {
    if lineIsHeader == true {
      closeRecord()
      let header = String(decoding: headerBytes.dropFirst(), as: UTF8.self)
      let name = header.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).first.map(String.init) ?? ""
      if name.isEmpty {
        throw GenomicsError.malformedFasta(path: path, reason: "header at byte \(lineStart) has no sequence name")
      }
      current = FastaIndexEntry(name: name, length: 0, offset: nextLineStart, lineBases: 0, lineWidth: 0)
    } else if var record = current {
      if lineBases == 0 {
        sawBlankLine = true
      } else {
        if sawBlankLine || sawShortLine {
          throw GenomicsError.malformedFasta(
            path: path,
            reason: "record '\(record.name)': line at byte \(lineStart) follows a \(sawBlankLine ? "blank" : "shorter") line; all lines but the last must have the same length")
        }
        if sequenceLineCount == 0 {
          record.lineBases = lineBases
          record.lineWidth = hasTerminator ? width : lineBases + 1
        } else if lineBases > record.lineBases || (lineBases == record.lineBases && hasTerminator && width != record.lineWidth) {
          throw GenomicsError.malformedFasta(
            path: path, reason: "record '\(record.name)': line at byte \(lineStart) is longer than the record's first line (\(record.lineBases) bases)")
        } else if lineBases < record.lineBases {
          sawShortLine = true
        }
        record.length += lineBases
        sequenceLineCount += 1
        current = record
      }
    } else if lineBases > 0 {
      throw GenomicsError.malformedFasta(path: path, reason: "sequence data before the first '>' header (byte \(lineStart))")
    }
    lineStart = nextLineStart
    lineIsHeader = nil
    headerBytes.removeAll(keepingCapacity: true)
    lineBases = 0
  }

  private mutating func closeRecord() {
    if let record = current { entries.append(record) }
    current = nil
    sawShortLine = false
    sawBlankLine = false
    sequenceLineCount = 0
  }
}
