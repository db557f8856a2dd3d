import Foundation
import XCTest

@testable import Genomics

final class PeakTests: XCTestCase {
  func testThreeNameForms() throws {
    for name in ["chr1:100-200", "chr1-100-200", "chr1_100_200"] {
      XCTAssertEqual(try Peak(name: name), Peak(chrom: "chr1", start: 100, end: 200), name)
    }
    XCTAssertEqual(try Peak(name: "chrUn_KI270742v1_5_60"), Peak(chrom: "chrUn_KI270742v1", start: 5, end: 60))
    XCTAssertEqual(try Peak(name: "HLA-A*01:01-10-20"), Peak(chrom: "HLA-A*01:01", start: 10, end: 20))
    XCTAssertEqual(try Peak(name: "GL000194.1:0-1000").name, "GL000194.1:0-1000")
  }

  func testUnparsableNamesAreNamedInTheError() {
    for name in ["chr1", "chr1:100", "chr1:100_200", "chr1_100-200", ":100-200", "chr1:a-200", "chr1:-5-10", ""] {
      XCTAssertThrowsGenomicsError(try Peak(name: name), messageContains: ["'\(name)'"])
    }
    XCTAssertThrowsGenomicsError(try Peak(name: "chr1:300-200"), messageContains: ["chr1:300-200", "after end"])
    XCTAssertThrowsGenomicsError(
      try PeakCoordinates.peaks(names: ["chr1:1-2", "chr2:3-4", "peak_x"]), messageContains: ["'peak_x'"])
  }

  func testPeaksFromColumns() throws {
    let peaks = try PeakCoordinates.peaks(chroms: ["chr1", "chr2"], starts: [10, 0], ends: [20, 5])
    XCTAssertEqual(peaks, [Peak(chrom: "chr1", start: 10, end: 20), Peak(chrom: "chr2", start: 0, end: 5)])
    XCTAssertThrowsGenomicsError(
      try PeakCoordinates.peaks(chroms: ["chr1"], starts: [1, 2], ends: [3]), messageContains: ["differ in length"])
    XCTAssertThrowsGenomicsError(
      try PeakCoordinates.peaks(chroms: ["chr1", "chr1"], starts: [1, 9], ends: [3, 4]), messageContains: ["row 1"])
  }
}

final class DNAEncodingTests: XCTestCase {
  func testCodes() {
    XCTAssertEqual(DNACode.encode("ACGTacgtNnRX-"), [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4, 4])
    XCTAssertEqual(DNACode.decode([0, 1, 2, 3, 4, 9]), "ACGTNN")
  }

  func testRandomBaseReplacementIsSeededAndUniform() {
    let sequence = [UInt8](repeating: UInt8(ascii: "N"), count: 40_000) + Array("ACGT".utf8)
    var g1 = SeededGenerator(seed: 3)
    var g2 = SeededGenerator(seed: 3)
    let codes = DNACode.encode(sequence, unknown: .randomBase, using: &g1)
    XCTAssertEqual(codes, DNACode.encode(sequence, unknown: .randomBase, using: &g2))
    XCTAssertEqual(Array(codes.suffix(4)), [0, 1, 2, 3])  // real bases untouched
    var counts = [Int](repeating: 0, count: 5)
    for code in codes.prefix(40_000) { counts[Int(code)] += 1 }
    XCTAssertEqual(counts[4], 0)
    // Each base 10,000 ± 4 sigma (sigma = sqrt(40000 * 0.25 * 0.75) ≈ 87); T included, unlike scvi-tools' randint(0, 3).
    for base in 0..<4 { XCTAssertEqual(Double(counts[base]), 10_000, accuracy: 4 * 87, "base \(base)") }
  }

  func testOneHotLayouts() {
    let codes: [UInt8] = [0, 3, 4, 2]
    XCTAssertEqual(
      DNA.oneHot(codes),
      [1, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 1,  0, 1, 0, 0].map(Float.init))  // channels A, C, G, T; N column all 0
    XCTAssertEqual(
      DNA.oneHot(codes, layout: .acgt(nFill: 0.25)),
      [1, 0, 0.25, 0,  0, 0, 0.25, 0,  0, 0, 0.25, 1,  0, 1, 0.25, 0])
    XCTAssertEqual(
      DNA.oneHot(codes, layout: .acgtn),
      [1, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 1,  0, 1, 0, 0,  0, 0, 1, 0].map(Float.init))
    let matrix = DNA.oneHot(matrix: codes + [1, 1, 1, 1], length: 4)
    XCTAssertEqual(matrix.count, 2 * 4 * 4)
    XCTAssertEqual(Array(matrix[16..<32]), [0, 0, 0, 0,  1, 1, 1, 1,  0, 0, 0, 0,  0, 0, 0, 0])
  }

  func testReverseComplementAndShift() {
    XCTAssertEqual(DNA.reverseComplement([0, 0, 1, 2, 4, 3]), [0, 4, 1, 2, 3, 3])
    XCTAssertEqual(DNA.reverseComplement("AACGnT"), "AnCGTT")
    XCTAssertEqual(DNA.reverseComplement(DNA.reverseComplement([0, 1, 2, 3, 4])), [0, 1, 2, 3, 4])
    XCTAssertEqual(DNA.shifted([0, 1, 2, 3], by: 1), [4, 0, 1, 2])
    XCTAssertEqual(DNA.shifted([0, 1, 2, 3], by: -2), [2, 3, 4, 4])
    XCTAssertEqual(DNA.shifted([0, 1, 2, 3], by: 0), [0, 1, 2, 3])
    XCTAssertEqual(DNA.shifted([0, 1, 2, 3], by: 9), [4, 4, 4, 4])
  }

  /// Windows cut exactly as scvi-tools' add_dna_sequence (genomepy/pyfaidx get_seq, 1-based closed)
  /// and calico's make_bed_seqs (pysam, 0-based), recorded by make_fixtures.py.
  func testWindowsMatchScviToolsAndCalico() throws {
    let expected = try XCTUnwrap(Fixtures.json("expected_windows.json") as? [String: Any])
    let seqLen = try XCTUnwrap(expected["seq_len"] as? Int)
    let rows = try XCTUnwrap(expected["windows"] as? [[String: Any]])
    let peaks = rows.map { Peak(chrom: $0["chrom"] as! String, start: $0["start"] as! Int, end: $0["end"] as! Int) }
    let fasta = try FastaFile(path: try Fixtures.tinyFastaCopy(self))
    for (centering, key) in [(WindowCentering.scviTools, "scvi_tools"), (.calico, "calico")] {
      let windows = try DNAWindows.extract(
        peaks: peaks, fasta: fasta, seqLen: seqLen, centering: centering, unknown: .keepAsN, keepSequences: true)
      XCTAssertEqual(windows.sequences, rows.map { $0[key] as! String }, key)
      XCTAssertEqual(windows.codes, rows.flatMap { DNACode.encode($0[key] as! String) }, key)
    }
    // The two rules differ by exactly one base.
    XCTAssertEqual(WindowCentering.scviTools.window(for: Peak(chrom: "c", start: 1000, end: 1501), seqLen: 1344).start, 1250 - 672 - 1)
    XCTAssertEqual(WindowCentering.calico.window(for: Peak(chrom: "c", start: 1000, end: 1501), seqLen: 1344).start, 1250 - 672)
  }

  func testWindowsArePaddedAtChromosomeEndsAndNReplaced() throws {
    let truth = try Fixtures.tinySequences()
    let fasta = try FastaFile(path: try Fixtures.tinyFastaCopy(self))
    let peaks = [Peak(chrom: "chr1", start: 0, end: 2), Peak(chrom: "chr1", start: 128, end: 130)]
    let kept = try DNAWindows.extract(peaks: peaks, fasta: fasta, seqLen: 10, centering: .calico, unknown: .keepAsN, keepSequences: true)
    let chr1 = truth["chr1"]!
    XCTAssertEqual(kept.sequences, ["NNNN" + chr1.prefix(6), chr1.suffix(6) + "NNNN"])
    XCTAssertEqual(kept.windows, [Peak(chrom: "chr1", start: -4, end: 6), Peak(chrom: "chr1", start: 124, end: 134)])
    let random = try DNAWindows.extract(peaks: peaks, fasta: fasta, seqLen: 10, centering: .calico, unknown: .randomBase, seed: 5)
    XCTAssertTrue(random.codes.allSatisfy { $0 < 4 })
    XCTAssertEqual(Array(random.row(0).suffix(6)), DNACode.encode(String(chr1.prefix(6))))
    let again = try DNAWindows.extract(peaks: peaks, fasta: fasta, seqLen: 10, centering: .calico, unknown: .randomBase, seed: 5)
    XCTAssertEqual(random.codes, again.codes)
    // Soft-masked (lower-case) bases are coded like upper case; the strings are upper-cased.
    let masked = try DNAWindows.extract(
      peaks: [Peak(chrom: "chr2", start: 5, end: 15)], fasta: fasta, seqLen: 10, centering: .calico, unknown: .keepAsN,
      keepSequences: true)
    XCTAssertEqual(masked.sequences, [truth["chr2"]!.uppercased().dropFirst(5).prefix(10).description])
  }

  func testPeaksNotInTheFastaAreErrors() throws {
    let fasta = try FastaFile(path: try Fixtures.tinyFastaCopy(self))
    XCTAssertThrowsGenomicsError(
      try DNAWindows.extract(peaks: [Peak(chrom: "chr1", start: 1, end: 5), Peak(chrom: "chr9", start: 1, end: 5)], fasta: fasta),
      messageContains: ["peak 1", "chr9:1-5", "'chr9'"])
    XCTAssertThrowsGenomicsError(
      try DNAWindows.extract(peaks: [Peak(chrom: "chr2", start: 40, end: 50)], fasta: fasta),
      messageContains: ["peak 0", "chr2:40-50", "length 45"])
  }
}
