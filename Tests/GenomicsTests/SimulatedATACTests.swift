import Foundation
import XCTest

@testable import Genomics

final class SimulatedATACTests: XCTestCase {
  static let dataFolder: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("data/atac").path

  func inputs() throws -> (genome: [(name: String, bases: [UInt8])], motifs: [Motif]) {
    let folder = try Fixtures.temporaryFolder(self)
    let fastaPath = (folder as NSString).appendingPathComponent("genome.fa")
    try FileManager.default.copyItem(atPath: Self.dataFolder + "/hg19_chr22_20-21Mb.fa", toPath: fastaPath)
    let genome = try SimulatedATAC.loadGenome(try FastaFile(path: fastaPath))
    return (genome, try MotifReader.read(path: Self.dataFolder + "/motifs.jaspar"))
  }

  func smallConfiguration(seed: UInt64 = 1) -> SimulatedATAC.Configuration {
    var configuration = SimulatedATAC.Configuration.small
    configuration.cellCount = 300
    configuration.peakCount = 400
    configuration.seed = seed
    return configuration
  }

  func testShippedInputs() throws {
    let (genome, motifs) = try inputs()
    XCTAssertEqual(genome.map(\.name), ["chr22_20M"])
    XCTAssertEqual(genome[0].bases.count, 1_000_000)
    XCTAssertEqual(motifs.map(\.name), ["PAX5", "EBF1", "TCF7", "RUNX3", "SPI1", "CEBPB", "GATA1", "KLF1", "CTCF"])
    let meme = try MotifReader.read(path: Self.dataFolder + "/motifs.meme")
    for (a, b) in zip(motifs, meme) {
      XCTAssertEqual(a.id, b.id)
      for (x, y) in zip(a.probabilities.joined(), b.probabilities.joined()) { XCTAssertEqual(x, y, accuracy: 2e-6) }
    }
  }

  func testMatrixShapeSparsityAndDeterminism() throws {
    let (genome, motifs) = try inputs()
    let data = try SimulatedATAC(genome: genome, motifs: motifs, configuration: smallConfiguration())
    XCTAssertEqual(data.peakCount, 400)
    XCTAssertEqual(data.cellCount, 300)
    XCTAssertEqual(data.indptr.count, 301)
    XCTAssertEqual(data.indptr.last, data.indices.count)
    XCTAssertEqual(Set(data.cellTypes), Set(0..<4))
    for cell in 0..<data.cellCount {
      let row = data.indices[data.indptr[cell]..<data.indptr[cell + 1]]
      XCTAssertEqual(Array(row), row.sorted())
      XCTAssertTrue(row.allSatisfy { $0 >= 0 && $0 < 400 })
      // Realised open fraction = the cell's target within sampling error; targets lie in 2–10 %.
      let target = data.targetOpenFractions[cell]
      XCTAssertTrue((0.02...0.10).contains(target))
      let sigma = (target * (1 - target) / 400).squareRoot()
      XCTAssertEqual(Double(row.count) / 400, target, accuracy: 4.5 * sigma + 1.0 / 400, "cell \(cell)")
    }
    let again = try SimulatedATAC(genome: genome, motifs: motifs, configuration: smallConfiguration())
    XCTAssertEqual(again.indices, data.indices)
    XCTAssertEqual(again.sequences, data.sequences)
    let other = try SimulatedATAC(genome: genome, motifs: motifs, configuration: smallConfiguration(seed: 2))
    XCTAssertNotEqual(other.indices, data.indices)
  }

  func testPlantedSitesAreInTheGenomeAndWindows() throws {
    let (genome, motifs) = try inputs()
    let data = try SimulatedATAC(genome: genome, motifs: motifs, configuration: smallConfiguration())
    XCTAssertEqual(data.peaksOfTF.count, 9)
    XCTAssertTrue(data.peaksOfTF.values.allSatisfy { $0.count == 48 })  // 12 % of 400
    XCTAssertGreaterThan(data.sites.count, 9 * 48 * 2 * 9 / 10)
    let bases = data.genome[0].bases
    var changed = Set<Int>()
    var logOddsOfTF: [String: [Double]] = [:]
    for site in data.sites {
      let motif = motifs.first { $0.name == site.tf }!
      XCTAssertEqual(String(decoding: bases[site.position..<(site.position + motif.width)], as: UTF8.self), site.sequence)
      let window = WindowCentering.scviTools.window(for: data.peaks[site.peak], seqLen: 1344)
      let inWindow = Array(data.sequences[site.peak].utf8)[(site.position - window.start)..<(site.position - window.start + motif.width)]
      XCTAssertEqual(String(decoding: inWindow, as: UTF8.self), site.sequence)
      let codes = DNACode.encode(site.reverseStrand ? DNA.reverseComplement(site.sequence) : site.sequence)
      logOddsOfTF[site.tf, default: []].append(zip(codes, motif.probabilities).map { log(max($1[Int($0)], 1e-9) / 0.25) }.reduce(0, +))
      changed.formUnion(site.position..<(site.position + motif.width))
    }
    // Sites are PWM samples: their mean log-odds against a uniform background is near the motif's
    // information content (the expected log-odds of a sample), on the strand recorded.
    for motif in motifs {
      let scores = try XCTUnwrap(logOddsOfTF[motif.name])
      let expected = motif.probabilities.map { row in row.map { $0 > 0 ? $0 * log($0 / 0.25) : 0 }.reduce(0, +) }.reduce(0, +)
      let mean = scores.reduce(0, +) / Double(scores.count)
      XCTAssertEqual(mean, expected, accuracy: 0.2 * expected, motif.name)
    }
    // Outside the planted sites the genome is the real sequence (upper-cased).
    let original = genome[0].bases
    for i in stride(from: 0, to: original.count, by: 7) where !changed.contains(i) {
      if bases[i] != (original[i] >= 97 ? original[i] - 32 : original[i]) { return XCTFail("base \(i) changed outside a site") }
    }
    // The written genome gives the same windows through FastaFile + DNAWindows.
    let path = (try Fixtures.temporaryFolder(self) as NSString).appendingPathComponent("simulated.fa")
    try data.writeGenome(to: path)
    let windows = try DNAWindows.extract(peaks: data.peaks, fasta: try FastaFile(path: path), unknown: .keepAsN, keepSequences: true)
    XCTAssertEqual(windows.sequences, data.sequences)
  }

  func testEachCellTypeOpensThePeaksOfItsOwnTFs() throws {
    let (genome, motifs) = try inputs()
    let data = try SimulatedATAC(genome: genome, motifs: motifs, configuration: smallConfiguration())
    for (type, name) in data.cellTypeNames.enumerated() {
      for tf in data.programs[name]! where tf != "CTCF" {
        let peakSet = Set(data.peaksOfTF[tf]!)
        var open = [0.0, 0.0]
        var total = [0.0, 0.0]
        for cell in 0..<data.cellCount {
          let own = data.cellTypes[cell] == type ? 0 : 1
          let row = data.indices[data.indptr[cell]..<data.indptr[cell + 1]]
          open[own] += Double(row.filter { peakSet.contains(Int($0)) }.count)
          total[own] += Double(peakSet.count)
        }
        XCTAssertGreaterThan(open[0] / total[0], 3 * open[1] / total[1], "\(tf) in \(name)")
      }
    }
  }

  /// The documented defaults (800 peaks of 300 bp) fit on the shipped 1-Mb piece.
  func testDefaultConfigurationFitsTheShippedGenome() throws {
    let (genome, motifs) = try inputs()
    var configuration = SimulatedATAC.Configuration.small
    configuration.cellCount = 50
    let data = try SimulatedATAC(genome: genome, motifs: motifs, configuration: configuration)
    XCTAssertEqual(data.peakCount, 800)
    XCTAssertTrue(data.peaks.allSatisfy { $0.end - $0.start == 300 })
  }

  func testUnknownTFIsAnError() throws {
    let (genome, motifs) = try inputs()
    var configuration = smallConfiguration()
    configuration.programs = [("X", ["NOPE"])]
    XCTAssertThrowsGenomicsError(
      try SimulatedATAC(genome: genome, motifs: motifs, configuration: configuration), messageContains: ["'NOPE'"])
    configuration = smallConfiguration()
    configuration.peakCount = 5000
    XCTAssertThrowsGenomicsError(
      try SimulatedATAC(genome: genome, motifs: motifs, configuration: configuration), messageContains: ["of 5000 peaks"])
  }
}
