// Peak coordinates from var columns or from peak names.

/// A genomic interval. The numbers are kept exactly as given (for BED-derived peak names such as
/// 10x's `chr1:100-200`, start is 0-based and end exclusive); `DNAWindows` only uses their midpoint.
public struct Peak: Equatable, Hashable, Sendable {
  public var chrom: String
  public var start: Int
  public var end: Int

  public init(chrom: String, start: Int, end: Int) {
    self.chrom = chrom
    self.start = start
    self.end = end
  }

  /// Parses `chr1:100-200`, `chr1-100-200` or `chr1_100_200`. The chromosome may itself contain
  /// `-`, `_` or `:` (e.g. `chrUn_KI270742v1_100_200`): the two numbers are taken from the end.
  /// Throws `GenomicsError.unparsablePeakName` naming the peak otherwise, and `.invalidPeak` when start > end.
  public init(name: String) throws {
    guard let (chrom, start, end) = Peak.split(name) else {
      throw GenomicsError.unparsablePeakName(name)
    }
    guard start <= end else {
      throw GenomicsError.invalidPeak(description: "'\(name)' has start \(start) after end \(end)")
    }
    self.init(chrom: chrom, start: start, end: end)
  }

  /// `chrom:start-end`.
  public var name: String { "\(chrom):\(start)-\(end)" }

  private static func split(_ name: String) -> (String, Int, Int)? {
    let characters = Array(name)
    // end: trailing digits, preceded by '-' or '_'.
    var i = characters.count
    while i > 0 && characters[i - 1].isASCII && characters[i - 1].isNumber { i -= 1 }
    guard i < characters.count, i > 0 else { return nil }
    let endDigits = String(characters[i...])
    let secondSeparator = characters[i - 1]
    guard secondSeparator == "-" || secondSeparator == "_" else { return nil }
    // start: the digits before that, preceded by ':' (with '-'), or by the same separator.
    var j = i - 1
    while j > 0 && characters[j - 1].isASCII && characters[j - 1].isNumber { j -= 1 }
    guard j < i - 1, j > 0 else { return nil }
    let startDigits = String(characters[j..<(i - 1)])
    let firstSeparator = characters[j - 1]
    let validForm =
      (firstSeparator == ":" && secondSeparator == "-")
      || (firstSeparator == "-" && secondSeparator == "-")
      || (firstSeparator == "_" && secondSeparator == "_")
    guard validForm, j - 1 > 0 else { return nil }
    let chrom = String(characters[..<(j - 1)])
    guard let lastOfChrom = chrom.last, !":-_".contains(lastOfChrom) else { return nil }
    guard let start = Int(startDigits), let end = Int(endDigits) else { return nil }
    return (chrom, start, end)
  }
}

public enum PeakCoordinates {
  /// Peaks from var-style columns (`chr`, `start`, `end`), validated: equal lengths, start >= 0, start <= end.
  public static func peaks(chroms: [String], starts: [Int], ends: [Int]) throws -> [Peak] {
    guard chroms.count == starts.count, starts.count == ends.count else {
      throw GenomicsError.invalidArgument(
        "peak columns differ in length: chr \(chroms.count), start \(starts.count), end \(ends.count)")
    }
    var peaks: [Peak] = []
    peaks.reserveCapacity(chroms.count)
    for i in chroms.indices {
      guard !chroms[i].isEmpty, starts[i] >= 0, starts[i] <= ends[i] else {
        throw GenomicsError.invalidPeak(
          description: "row \(i) (\(chroms[i]), \(starts[i]), \(ends[i])) needs a chromosome name and 0 <= start <= end")
      }
      peaks.append(Peak(chrom: chroms[i], start: starts[i], end: ends[i]))
    }
    return peaks
  }

  /// Peaks parsed from names; the first name that does not parse is named in the error.
  public static func peaks(names: [String]) throws -> [Peak] {
    try names.map { try Peak(name: $0) }
  }
}
