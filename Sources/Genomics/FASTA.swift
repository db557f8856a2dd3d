// Random access into an indexed FASTA file.
import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A plain-text FASTA file with a samtools faidx index, read by 0-based half-open ranges.
///
/// Coordinates: `start` is the 0-based position of the first base, `end` is one past the last
/// (BED / pysam `fetch` convention), so `sequence(chrom: "chr1", start: 0, end: 10)` is the first
/// ten bases, what `samtools faidx ref.fa chr1:1-10` prints.
///
/// Bases are returned as stored (soft-masked lower case kept); `DNACode` maps both cases.
public final class FastaFile: @unchecked Sendable {
  /// Where the index came from.
  public enum IndexSource: Equatable, Sendable {
    /// Read from an existing .fai.
    case read(path: String)
    /// Built from the FASTA and written atomically to this path.
    case built(path: String)
    /// Built from the FASTA and kept in memory only (the folder was not writable, or writing was not asked for).
    case builtInMemory
  }

  public let path: String
  public let index: FastaIndex
  public let indexSource: IndexSource
  private let descriptor: Int32

  /// Opens `path`, reading `path + ".fai"` (or `indexPath`) when it exists and building the index
  /// otherwise. A built index is written next to the FASTA when `writeIndex` is true and the folder
  /// is writable, else kept in memory. A gzip/bgzip FASTA (bytes 1f 8b) is refused with a clear error.
  public init(path: String, indexPath: String? = nil, writeIndex: Bool = true) throws {
    self.path = path
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
      throw GenomicsError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
    }
    var magic: [UInt8] = [0, 0]
    let got = pread(fd, &magic, 2, 0)
    if got == 2 && magic == [0x1F, 0x8B] {
      close(fd)
      throw GenomicsError.compressedFasta(path: path)
    }
    descriptor = fd
    let faiPath = indexPath ?? path + ".fai"
    do {
      if FileManager.default.fileExists(atPath: faiPath) {
        index = try FastaIndex.read(from: faiPath)
        indexSource = .read(path: faiPath)
      } else {
        index = try FastaIndex.build(fastaPath: path)
        if writeIndex, (try? index.write(to: faiPath)) != nil {
          indexSource = .built(path: faiPath)
        } else {
          indexSource = .builtInMemory
        }
      }
    } catch {
      close(fd)
      throw error
    }
  }

  deinit { close(descriptor) }

  public var chromosomeNames: [String] { index.names }

  public func length(of chrom: String) throws -> Int {
    try entry(chrom).length
  }

  /// The bases of `chrom` in [start, end). Throws for an unknown chromosome or a range that is
  /// reversed or not inside the chromosome.
  public func sequence(chrom: String, start: Int, end: Int) throws -> [UInt8] {
    let record = try entry(chrom)
    guard start >= 0, end >= start, end <= record.length else {
      throw GenomicsError.outOfRange(chrom: chrom, start: start, end: end, length: record.length)
    }
    return try read(record, start: start, end: end)
  }

  /// The bases of `chrom` in [start, end), where the parts of the range before position 0 or
  /// past the chromosome end are filled with `N`. The chromosome must exist and `end >= start`.
  public func paddedSequence(chrom: String, start: Int, end: Int) throws -> [UInt8] {
    let record = try entry(chrom)
    guard end >= start else {
      throw GenomicsError.outOfRange(chrom: chrom, start: start, end: end, length: record.length)
    }
    let inside = max(start, 0)..<max(min(end, record.length), max(start, 0))
    var result = [UInt8](repeating: UInt8(ascii: "N"), count: end - start)
    if !inside.isEmpty {
      let bases = try read(record, start: inside.lowerBound, end: inside.upperBound)
      result.replaceSubrange((inside.lowerBound - start)..<(inside.upperBound - start), with: bases)
    }
    return result
  }

  /// `sequence(chrom:start:end:)` as a String.
  public func string(chrom: String, start: Int, end: Int) throws -> String {
    String(decoding: try sequence(chrom: chrom, start: start, end: end), as: UTF8.self)
  }

  private func entry(_ chrom: String) throws -> FastaIndexEntry {
    guard let record = index[chrom] else {
      throw GenomicsError.unknownChromosome(name: chrom, path: path)
    }
    return record
  }

  private func read(_ record: FastaIndexEntry, start: Int, end: Int) throws -> [UInt8] {
    if start == end { return [] }
    let first = record.byteOffset(ofBase: start)
    let last = record.byteOffset(ofBase: end - 1)
    // Offsets come from the index: a range beyond the file is a stale or damaged .fai, found
    // before a buffer of that size is allocated.
    var status = stat()
    guard fstat(descriptor, &status) == 0, first >= 0, last >= first, last < Int(status.st_size) else {
      throw GenomicsError.malformedFasta(
        path: path,
        reason: "the index places '\(record.name)' beyond the end of the file (stale .fai?); delete the .fai to rebuild it")
    }
    var raw = [UInt8](repeating: 0, count: last - first + 1)
    var filled = 0
    while filled < raw.count {
      let n = raw.withUnsafeMutableBytes { buffer in
        pread(descriptor, buffer.baseAddress! + filled, buffer.count - filled, off_t(first + filled))
      }
      if n < 0 {
        throw GenomicsError.unreadableFile(path: path, reason: String(cString: strerror(errno)))
      }
      if n == 0 { break }
      filled += n
    }
    var bases = [UInt8]()
    bases.reserveCapacity(end - start)
    for byte in raw[0..<filled] where byte != UInt8(ascii: "\n") && byte != UInt8(ascii: "\r") {
      bases.append(byte)
    }
    guard bases.count == end - start, !bases.contains(UInt8(ascii: ">")) else {
      throw GenomicsError.malformedFasta(
        path: path,
        reason: "the index does not match the file for '\(record.name)' (stale .fai?); delete the .fai to rebuild it")
    }
    return bases
  }
}

/// Whole-file FASTA reading and writing, for small multi-record files such as motif libraries.
public enum FastaRecords {
  public struct Record: Equatable, Sendable {
    /// The header up to the first whitespace.
    public var name: String
    /// The full header line after `>`.
    public var header: String
    public var sequence: String

    public init(name: String, header: String? = nil, sequence: String) {
      self.name = name
      self.header = header ?? name
      self.sequence = sequence
    }
  }

  public static func read(from path: String) throws -> [Record] {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw GenomicsError.unreadableFile(path: path, reason: error.localizedDescription)
    }
    if data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B {
      throw GenomicsError.compressedFasta(path: path)
    }
    var records: [Record] = []
    var sequence = ""
    var header: String?
    for rawLine in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
      let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
      if line.hasPrefix(">") {
        if let header { records.append(makeRecord(header, sequence)) }
        header = String(line.dropFirst())
        sequence = ""
      } else if !line.isEmpty {
        guard header != nil else {
          throw GenomicsError.malformedFasta(path: path, reason: "sequence data before the first '>' header")
        }
        sequence += line
      }
    }
    if let header { records.append(makeRecord(header, sequence)) }
    return records
  }

  /// Writes records atomically; `lineWidth` 0 writes each sequence on one line (as fasta_ushuffle needs).
  public static func write(_ records: [Record], to path: String, lineWidth: Int = 0) throws {
    var text = ""
    for record in records {
      text += ">\(record.header)\n"
      if lineWidth <= 0 || record.sequence.count <= lineWidth {
        text += record.sequence + "\n"
      } else {
        var rest = Substring(record.sequence)
        while !rest.isEmpty {
          text += rest.prefix(lineWidth) + "\n"
          rest = rest.dropFirst(lineWidth)
        }
      }
    }
    do {
      try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw GenomicsError.unwritableFile(path: path, reason: error.localizedDescription)
    }
  }

  private static func makeRecord(_ header: String, _ sequence: String) -> Record {
    let name = header.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) ?? ""
    return Record(name: name, header: header, sequence: sequence)
  }
}
