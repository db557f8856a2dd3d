import Foundation
import XCTest

@testable import Genomics

final class MotifTests: XCTestCase {
  /// counts / column sums computed with numpy from pyjaspar's JASPAR2026 database (make_fixtures.py).
  func expectedMotifs() throws -> [String: (name: String, probabilities: [[Double]])] {
    let json = try XCTUnwrap(Fixtures.json("expected_motifs.json") as? [String: [String: Any]])
    return json.mapValues { ($0["name"] as! String, $0["probabilities"] as! [[Double]]) }
  }

  func assertMatches(_ motifs: [Motif], tolerance: Double, file: StaticString = #filePath, line: UInt = #line) throws {
    let expected = try expectedMotifs()
    for motif in motifs {
      let truth = try XCTUnwrap(expected[motif.id], "unexpected motif \(motif.id)", file: file, line: line)
      XCTAssertEqual(motif.name, truth.name, file: file, line: line)
      XCTAssertEqual(motif.width, truth.probabilities.count, motif.id, file: file, line: line)
      for (row, expectedRow) in zip(motif.probabilities, truth.probabilities) {
        for (p, q) in zip(row, expectedRow) { XCTAssertEqual(p, q, accuracy: tolerance, motif.id, file: file, line: line) }
        XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-12, file: file, line: line)
      }
    }
  }

  func testJASPARFile() throws {
    let motifs = try MotifReader.read(path: Fixtures.path("jaspar2026_subset.jaspar"))
    XCTAssertEqual(motifs.map(\.id), ["MA0139.1", "MA0080.4", "MA0035.4", "MA0466.2", "MA0014.3", "MA0099.3"])
    XCTAssertEqual(motifs.map(\.name), ["CTCF", "SPI1", "GATA1", "CEBPB", "PAX5", "FOS::JUN"])
    try assertMatches(motifs, tolerance: 1e-12)
  }

  func testMEMEFile() throws {
    let motifs = try MotifReader.read(path: Fixtures.path("jaspar2026_subset.meme"))
    XCTAssertEqual(motifs.count, 6)
    XCTAssertEqual(motifs[0].id, "MA0139.1")
    XCTAssertEqual(motifs[0].name, "CTCF")
    XCTAssertEqual(motifs[0].width, 19)
    try assertMatches(motifs, tolerance: 2e-6)  // printed with 6 decimals
    XCTAssertEqual(motifs[0].consensus, "TGGCCACCAGGGGGCGCTA")
  }

  func testPlainPFMAndGimmemotifsFiles() throws {
    let ctcf = try MotifReader.read(path: Fixtures.path("MA0139.1.pfm"))
    XCTAssertEqual(ctcf.count, 1)
    XCTAssertEqual(ctcf[0].id, "MA0139.1")  // from the file name
    XCTAssertEqual(ctcf[0].probabilities, try MotifReader.read(path: Fixtures.path("jaspar2026_subset.jaspar"))[0].probabilities)

    let fosJun = try MotifReader.read(path: Fixtures.path("gimmemotifs_MA0099.3.jaspar"))
    XCTAssertEqual(fosJun.map(\.name), ["FOS::JUN"])
    XCTAssertEqual(fosJun[0].probabilities[0][0], 592.0 / 1000.0, accuracy: 1e-12)
    XCTAssertEqual(fosJun[0].consensus, "ATGAGTCATC")

    // gimmemotifs' own .pfm: one row of 4 frequencies per position.
    let gimme = try MotifReader.read(path: Fixtures.path("gimmemotifs_example.pfm"))
    XCTAssertEqual(gimme.map(\.id), ["AP1", "CTCF"])
    XCTAssertEqual(gimme[0].width, 9)
    XCTAssertEqual(gimme[0].consensus, "ATGAGTCAT")
    XCTAssertEqual(gimme[0].probabilities[0][1], 0.1469 / (0.5558 + 0.1469 + 0.2734 + 0.0240), accuracy: 1e-12)
  }

  func testFourByFourPFMOrientation() throws {
    // Columns (positions) have equal sums: JASPAR layout, bases × positions.
    let baseRows = try MotifReader.parse("10 0 0 5\n0 10 0 5\n0 0 10 0\n0 0 0 0\n", format: .pfm)
    XCTAssertEqual(baseRows[0].consensus, "ACGA")
    // Rows have equal sums: gimmemotifs layout, positions × bases.
    let positionRows = try MotifReader.parse(">m\n1 0 0 0\n0 0 0.5 0.5\n0 1 0 0\n0.2 0.2 0.2 0.4\n", format: .pfm)
    XCTAssertEqual(positionRows[0].consensus, "AGCT")
  }

  func testMalformedMotifFilesNameTheRecord() {
    let badWidth = "MEME version 4\n\nMOTIF M1 alt\nletter-probability matrix: alength= 4 w= 3\n0.25 0.25 0.25 0.25\n0.5 0.5 0 0\n"
    XCTAssertThrowsGenomicsError(try MotifReader.parse(badWidth, source: "m.meme"), messageContains: ["m.meme", "'M1'", "w= 3"])
    let protein = "MEME version 4\nALPHABET= ACDEFGHIKLMNPQRSTVWY\nMOTIF P1\n"
    XCTAssertThrowsGenomicsError(try MotifReader.parse(protein), messageContains: ["not DNA"])
    let badRow = "MEME version 4\nMOTIF M2\nletter-probability matrix: alength= 4 w= 1\n0.5 0.5 0\n"
    XCTAssertThrowsGenomicsError(try MotifReader.parse(badRow), messageContains: ["'M2'", "3 values"])
    let missingBase = ">MA1 X\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 2 ]\n"
    XCTAssertThrowsGenomicsError(try MotifReader.parse(missingBase, source: "x.jaspar"), messageContains: ["x.jaspar", "'MA1'", "base T"])
    let ragged = ">MA2 Y\nA [ 1 2 ]\nC [ 1 2 ]\nG [ 1 2 ]\nT [ 1 ]\n"
    XCTAssertThrowsGenomicsError(try MotifReader.parse(ragged), messageContains: ["'MA2'", "lengths"])
    let zero = ">MA3 Z\nA [ 0 1 ]\nC [ 0 1 ]\nG [ 0 1 ]\nT [ 0 1 ]\n"
    XCTAssertThrowsGenomicsError(try MotifReader.parse(zero), messageContains: ["'MA3'", "position 1 sums to 0"])
    XCTAssertThrowsGenomicsError(try MotifReader.parse("MEME version 4\n"), messageContains: ["no motifs"])
    XCTAssertThrowsGenomicsError(try MotifReader.read(path: "/nonexistent/motifs.meme"), messageContains: ["/nonexistent/motifs.meme"])
  }

  func testReverseComplementAndTFName() throws {
    let motif = Motif(id: "X", name: "(Foxa2)_Homo_sapiens", probabilities: [[1, 0, 0, 0], [0, 0, 0.5, 0.5]])
    XCTAssertEqual(motif.reverseComplement().probabilities, [[0.5, 0.5, 0, 0], [0, 0, 0, 1]])
    XCTAssertEqual(motif.tfName, "Foxa2")
    XCTAssertEqual(Motif(id: "MA0099.3", name: "FOS::JUN", probabilities: [[1, 0, 0, 0]]).tfName, "FOS::JUN")
  }
}
