import Foundation
import XCTest

@testable import Genomics

final class FastaTests: XCTestCase {
  /// Written by hand from tiny.fa: headers are 28 bytes, chr1 is 60+60+10 bases on 61-byte lines, ...
  let handWrittenIndex = [
    FastaIndexEntry(name: "chr1", length: 130, offset: 28, lineBases: 60, lineWidth: 61),
    FastaIndexEntry(name: "chr2", length: 45, offset: 189, lineBases: 20, lineWidth: 21),
    FastaIndexEntry(name: "chrUn_KI270742v1", length: 60, offset: 277, lineBases: 60, lineWidth: 61),
  ]

  func testBuiltIndexMatchesHandWrittenAndSamtoolsFormat() throws {
    let fasta = try Fixtures.tinyFastaCopy(self)
    let built = try FastaIndex.build(fastaPath: fasta)
    XCTAssertEqual(built.entries, handWrittenIndex)
    // Byte-identical to the .fai pyfaidx (samtools format) wrote for the same file.
    let expected = try String(contentsOfFile: Fixtures.path("tiny.fa.fai.expected"), encoding: .utf8)
    XCTAssertEqual(built.serialized(), expected)
  }

  func testOpeningWithoutIndexBuildsAndWritesIt() throws {
    let fasta = try Fixtures.tinyFastaCopy(self)
    let file = try FastaFile(path: fasta)
    XCTAssertEqual(file.indexSource, .built(path: fasta + ".fai"))
    XCTAssertEqual(try FastaIndex.read(from: fasta + ".fai").entries, handWrittenIndex)
    // A second open reads the index it wrote.
    XCTAssertEqual(try FastaFile(path: fasta).indexSource, .read(path: fasta + ".fai"))
  }

  func testIndexKeptInMemoryWhenNotWritten() throws {
    let fasta = try Fixtures.tinyFastaCopy(self)
    let file = try FastaFile(path: fasta, writeIndex: false)
    XCTAssertEqual(file.indexSource, .builtInMemory)
    XCTAssertFalse(FileManager.default.fileExists(atPath: fasta + ".fai"))
    XCTAssertEqual(file.index.entries, handWrittenIndex)
  }

  func testIndexKeptInMemoryWhenItCannotBeWritten() throws {
    let fasta = try Fixtures.tinyFastaCopy(self)
    let unwritable = (fasta as NSString).deletingLastPathComponent + "/no-such-folder/tiny.fa.fai"
    let file = try FastaFile(path: fasta, indexPath: unwritable)
    XCTAssertEqual(file.indexSource, .builtInMemory)
    XCTAssertEqual(file.index.entries, handWrittenIndex)
    XCTAssertEqual(try file.string(chrom: "chr2", start: 0, end: 6), "NNNNNC")
  }

  func testIndexKeptInMemoryWhenFolderIsReadOnly() throws {
    try XCTSkipIf(geteuid() == 0, "root can write into read-only folders")
    let fasta = try Fixtures.tinyFastaCopy(self)
    let folder = (fasta as NSString).deletingLastPathComponent
    try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: folder)
    defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder) }
    XCTAssertEqual(try FastaFile(path: fasta).indexSource, .builtInMemory)
  }

  func testReadsAHandWrittenIndex() throws {
    let fasta = try Fixtures.tinyFastaCopy(self)
    let text = "chr1\t130\t28\t60\t61\nchr2\t45\t189\t20\t21\nchrUn_KI270742v1\t60\t277\t60\t61\n"
    try text.write(toFile: fasta + ".fai", atomically: true, encoding: .utf8)
    let file = try FastaFile(path: fasta)
    XCTAssertEqual(file.indexSource, .read(path: fasta + ".fai"))
    XCTAssertEqual(file.index.entries, handWrittenIndex)
  }

  func testRandomAccessMatchesTheSequences() throws {
    let truth = try Fixtures.tinySequences()
    let file = try FastaFile(path: try Fixtures.tinyFastaCopy(self))
    var generator = SeededGenerator(seed: 7)
    for _ in 0..<500 {
      let name = file.chromosomeNames[generator.uniformInt(below: 3)]
      let sequence = Array(truth[name]!.utf8)
      let start = generator.uniformInt(below: sequence.count + 1)
      let end = start + generator.uniformInt(below: sequence.count - start + 1)
      XCTAssertEqual(try file.sequence(chrom: name, start: start, end: end), Array(sequence[start..<end]), "\(name):\(start)-\(end)")
    }
    XCTAssertEqual(try file.string(chrom: "chr2", start: 3, end: 9), "NNCtGT")  // case kept
    XCTAssertEqual(try file.string(chrom: "chr1", start: 58, end: 62), "GACC")  // across a line break
  }

  func testPaddingPastChromosomeEnds() throws {
    let truth = try Fixtures.tinySequences()
    let file = try FastaFile(path: try Fixtures.tinyFastaCopy(self))
    let chr1 = truth["chr1"]!
    let right = String(decoding: try file.paddedSequence(chrom: "chr1", start: 125, end: 135), as: UTF8.self)
    XCTAssertEqual(right, String(chr1.suffix(5)) + "NNNNN")
    let left = String(decoding: try file.paddedSequence(chrom: "chr1", start: -3, end: 4), as: UTF8.self)
    XCTAssertEqual(left, "NNN" + String(chr1.prefix(4)))
    let outside = String(decoding: try file.paddedSequence(chrom: "chr1", start: 200, end: 204), as: UTF8.self)
    XCTAssertEqual(outside, "NNNN")
    // The strict reader refuses the same range.
    XCTAssertThrowsGenomicsError(try file.sequence(chrom: "chr1", start: 125, end: 135), messageContains: ["chr1:125-135", "130"])
    XCTAssertThrowsGenomicsError(try file.sequence(chrom: "chr1", start: 5, end: 4), messageContains: ["chr1:5-4"])
  }

  func testGzipFastaGivesClearError() throws {
    let folder = try Fixtures.temporaryFolder(self)
    let path = (folder as NSString).appendingPathComponent("genome.fa.gz")
    try Data([0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: path))
    XCTAssertThrowsGenomicsError(try FastaFile(path: path), messageContains: [path, "gzip", "1f 8b"])
    XCTAssertThrowsGenomicsError(try FastaIndex.build(fastaPath: path), messageContains: ["gzip"])
  }

  func testMissingChromosomeAndMissingFile() throws {
    let fasta = try Fixtures.tinyFastaCopy(self)
    let file = try FastaFile(path: fasta)
    XCTAssertThrowsGenomicsError(try file.sequence(chrom: "chrX", start: 0, end: 1), messageContains: ["chrX", fasta])
    XCTAssertThrowsGenomicsError(try file.paddedSequence(chrom: "chrX", start: 0, end: 1), messageContains: ["chrX"])
    XCTAssertThrowsGenomicsError(try FastaFile(path: fasta + ".missing"), messageContains: [fasta + ".missing"])
  }

  func testMalformedFastaNamesTheRecord() throws {
    let folder = try Fixtures.temporaryFolder(self)
    let path = (folder as NSString).appendingPathComponent("bad.fa")
    try ">ok\nACGT\nAC\n>bad one\nACGT\nAC\nACGT\n".write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsGenomicsError(try FastaFile(path: path), messageContains: [path, "'bad'"])
    try ">bad\nACGT\nACGTA\n".write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsGenomicsError(try FastaIndex.build(fastaPath: path), messageContains: ["'bad'", "longer"])
    try "ACGT\n>late\nAC\n".write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsGenomicsError(try FastaIndex.build(fastaPath: path), messageContains: ["before the first"])
    try ">a\nAC\n>a\nAC\n".write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertThrowsGenomicsError(try FastaIndex.build(fastaPath: path), messageContains: ["'a' appears twice"])
  }

  func testMalformedIndexNamesTheLine() throws {
    XCTAssertThrowsGenomicsError(
      try FastaIndex.parse("chr1\t10\t5\t10\t11\nchr2\tten\t5\t10\t11\n", path: "x.fai"), messageContains: ["x.fai", "line 2", "ten"])
  }

  func testCRLFAndUnterminatedLastLine() throws {
    let folder = try Fixtures.temporaryFolder(self)
    let path = (folder as NSString).appendingPathComponent("crlf.fa")
    try ">a desc\r\nACGTA\r\nCCGTT\r\nGG\r\n>b\r\nTTTT".write(toFile: path, atomically: true, encoding: .utf8)
    let file = try FastaFile(path: path)
    XCTAssertEqual(
      file.index.entries,
      [
        FastaIndexEntry(name: "a", length: 12, offset: 9, lineBases: 5, lineWidth: 7),
        FastaIndexEntry(name: "b", length: 4, offset: 31, lineBases: 4, lineWidth: 5),
      ])
    XCTAssertEqual(try file.string(chrom: "a", start: 3, end: 12), "TACCGTTGG")
    XCTAssertEqual(try file.string(chrom: "b", start: 0, end: 4), "TTTT")
  }

  func testStaleIndexIsDetected() throws {
    let fasta = try Fixtures.tinyFastaCopy(self)
    try "chr1\t130\t20\t60\t61\n".write(toFile: fasta + ".fai", atomically: true, encoding: .utf8)
    let file = try FastaFile(path: fasta)
    XCTAssertThrowsGenomicsError(try file.sequence(chrom: "chr1", start: 0, end: 20), messageContains: ["stale"])
  }

  func testMultiRecordReadWriteRoundTrip() throws {
    let folder = try Fixtures.temporaryFolder(self)
    let path = (folder as NSString).appendingPathComponent("out.fa")
    let records = [
      FastaRecords.Record(name: "s1", header: "s1 first", sequence: String(repeating: "ACGT", count: 30)),
      FastaRecords.Record(name: "s2", sequence: "GG"),
    ]
    try FastaRecords.write(records, to: path, lineWidth: 50)
    XCTAssertEqual(try FastaRecords.read(from: path), records)
    XCTAssertEqual(try FastaIndex.build(fastaPath: path).entries.map(\.lineBases), [50, 2])
  }
}
