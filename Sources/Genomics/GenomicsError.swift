// Errors thrown by the Genomics target. Every message names the file, record or value at fault.

import Foundation

/// A bad input to a Genomics function: a malformed file, a missing chromosome, an unparsable peak name.
public enum GenomicsError: Error, CustomStringConvertible, Equatable {
  /// A file could not be opened or read.
  case unreadableFile(path: String, reason: String)
  /// The FASTA is gzip- or bgzip-compressed (magic bytes 1f 8b); only plain text is supported.
  case compressedFasta(path: String)
  /// The FASTA (or its .fai) breaks the samtools faidx layout rules.
  case malformedFasta(path: String, reason: String)
  case malformedIndex(path: String, line: Int, reason: String)
  /// A chromosome that is not in the FASTA index.
  case unknownChromosome(name: String, path: String)
  /// A 0-based half-open range that is empty, reversed or outside the chromosome.
  case outOfRange(chrom: String, start: Int, end: Int, length: Int)
  /// A peak name that is none of `chr:start-end`, `chr-start-end`, `chr_start_end`.
  case unparsablePeakName(String)
  case invalidPeak(description: String)
  /// A motif file that cannot be parsed.
  case malformedMotif(path: String, record: String, reason: String)
  case invalidArgument(String)
  /// An output file could not be written.
  case unwritableFile(path: String, reason: String)

  public var description: String {
    switch self {
    case .unreadableFile(let path, let reason):
      return "cannot read \(path): \(reason)"
    case .compressedFasta(let path):
      return "\(path) is gzip/bgzip-compressed (starts with bytes 1f 8b); decompress it first (gunzip -k \(path)) and pass the plain FASTA"
    case .malformedFasta(let path, let reason):
      return "malformed FASTA \(path): \(reason)"
    case .malformedIndex(let path, let line, let reason):
      return "malformed FASTA index \(path), line \(line): \(reason)"
    case .unknownChromosome(let name, let path):
      return "chromosome '\(name)' is not in \(path)"
    case .outOfRange(let chrom, let start, let end, let length):
      return "range \(chrom):\(start)-\(end) (0-based, half-open) is outside \(chrom) (length \(length))"
    case .unparsablePeakName(let name):
      return "peak name '\(name)' does not parse as chr:start-end, chr-start-end or chr_start_end"
    case .invalidPeak(let description):
      return "invalid peak: \(description)"
    case .malformedMotif(let path, let record, let reason):
      return "malformed motif file \(path), motif '\(record)': \(reason)"
    case .invalidArgument(let message):
      return message
    case .unwritableFile(let path, let reason):
      return "cannot write \(path): \(reason)"
    }
  }
}

extension GenomicsError: CustomDebugStringConvertible {
  public var debugDescription: String { description }
}

/// The contents of a UTF-8 text file; `notText` is thrown when the bytes are not UTF-8.
func readUTF8Text(_ path: String, notText: GenomicsError) throws -> String {
  let data: Data
  do {
    data = try Data(contentsOf: URL(fileURLWithPath: path))
  } catch {
    throw GenomicsError.unreadableFile(path: path, reason: error.localizedDescription)
  }
  guard let text = String(data: data, encoding: .utf8) else { throw notText }
  return text
}
