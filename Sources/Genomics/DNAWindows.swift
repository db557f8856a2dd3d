// Fixed-length DNA windows centred on peaks, as integer codes: the data behind varm["dna_code"].

/// Where a window of `seqLen` bases sits around a peak [start, end).
///
/// Both rules take `mid = (start + end) / 2` rounded down (Python's `//`) and
/// `left = mid - seqLen / 2` (also rounded down); they differ by one base:
public enum WindowCentering: Sendable, Equatable {
  /// scvi-tools `add_dna_sequence`: it passes `left` and `left + seqLen - 1` to genomepy's
  /// `get_seq`, which is 1-based and closed, so the 0-based window is [left - 1, left - 1 + seqLen).
  case scviTools
  /// calico scBasset `make_bed_seqs`: pysam `fetch(chrom, left, left + seqLen)`, 0-based,
  /// so the window is [left, left + seqLen).
  case calico

  /// The 0-based half-open window for `peak`.
  public func window(for peak: Peak, seqLen: Int) -> (start: Int, end: Int) {
    let mid = floorDivide(peak.start + peak.end, 2)
    var left = mid - seqLen / 2
    if self == .scviTools { left -= 1 }
    return (left, left + seqLen)
  }
}

@inline(__always)
func floorDivide(_ a: Int, _ b: Int) -> Int {
  let q = a / b
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

/// An [nPeaks × seqLen] matrix of DNA codes (row-major), with the window of each row.
public struct DNAWindows: Sendable {
  public let seqLen: Int
  /// Row-major codes: row `i` is `codes[i * seqLen ..< (i + 1) * seqLen]`, values 0...3 (4 only with `.keepAsN`).
  public let codes: [UInt8]
  /// The 0-based half-open window of each row (may reach outside the chromosome; those bases are N).
  public let windows: [Peak]
  /// The upper-case letters of each window as read (before N replacement), when asked for.
  public let sequences: [String]?

  public var count: Int { windows.count }

  public func row(_ i: Int) -> ArraySlice<UInt8> {
    codes[(i * seqLen)..<((i + 1) * seqLen)]
  }

  /// Reads the window of every peak from `fasta` and codes it.
  ///
  /// - Each peak must lie on a chromosome of the FASTA with 0 <= start <= end <= length; otherwise
  ///   the error names the peak. Window parts outside the chromosome are padded with N.
  ///   (scvi-tools differs at the edges: genomepy raises for a window starting before the
  ///   chromosome and truncates one running past its end, the missing bases then becoming random codes.)
  /// - N and other letters are handled by `unknown`; `.randomBase` draws from a `SeededGenerator(seed:)`
  ///   in row order, so the same seed gives the same matrix.
  public static func extract(
    peaks: [Peak], fasta: FastaFile, seqLen: Int = 1344, centering: WindowCentering = .scviTools,
    unknown: UnknownBaseHandling = .randomBase, seed: UInt64 = 0, keepSequences: Bool = false
  ) throws -> DNAWindows {
    guard seqLen > 0 else { throw GenomicsError.invalidArgument("seqLen must be positive, got \(seqLen)") }
    var generator = SeededGenerator(seed: seed)
    var codes = [UInt8]()
    codes.reserveCapacity(peaks.count * seqLen)
    var windows: [Peak] = []
    windows.reserveCapacity(peaks.count)
    var sequences: [String] = []
    for (i, peak) in peaks.enumerated() {
      guard let entry = fasta.index[peak.chrom] else {
        throw GenomicsError.invalidPeak(
          description: "peak \(i) (\(peak.name)): chromosome '\(peak.chrom)' is not in \(fasta.path)")
      }
      guard peak.start >= 0, peak.start <= peak.end, peak.end <= entry.length else {
        throw GenomicsError.invalidPeak(
          description: "peak \(i) (\(peak.name)) is outside \(peak.chrom) (length \(entry.length)) in \(fasta.path)")
      }
      let (start, end) = centering.window(for: peak, seqLen: seqLen)
      let bases = try fasta.paddedSequence(chrom: peak.chrom, start: start, end: end)
      codes += DNACode.encode(bases, unknown: unknown, using: &generator)
      windows.append(Peak(chrom: peak.chrom, start: start, end: end))
      if keepSequences {
        sequences.append(String(decoding: bases.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }, as: UTF8.self))
      }
    }
    return DNAWindows(seqLen: seqLen, codes: codes, windows: windows, sequences: keepSequences ? sequences : nil)
  }
}
