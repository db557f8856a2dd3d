import Foundation
import XCTest

@testable import Genomics

final class DinucleotideShuffleTests: XCTestCase {
  func testKeepsDinucleotideCountsAndEndsExactly() {
    var generator = SeededGenerator(seed: 11)
    let alphabets: [[UInt8]] = [Array("ACGT".utf8), Array("AT".utf8), Array("ACGTN".utf8), Array("ACGTacgtN".utf8)]
    var changed = 0
    var long = 0
    for trial in 0..<600 {
      let alphabet = alphabets[trial % alphabets.count]
      let length = 3 + generator.uniformInt(below: trial < 500 ? 200 : 3000)
      // Skewed, position-dependent composition so that some letters are rare.
      let sequence = (0..<length).map { i -> UInt8 in
        let skew = (i / 50) % alphabet.count
        return generator.uniformInt(below: 3) == 0 ? alphabet[skew] : alphabet[generator.uniformInt(below: alphabet.count)]
      }
      let shuffled = DinucleotideShuffle.shuffle(sequence, using: &generator)
      XCTAssertEqual(shuffled.count, sequence.count)
      XCTAssertEqual(DinucleotideShuffle.dinucleotideCounts(shuffled), DinucleotideShuffle.dinucleotideCounts(sequence), "trial \(trial)")
      XCTAssertEqual(shuffled.first, sequence.first)
      XCTAssertEqual(shuffled.last, sequence.last)
      if length >= 30 {
        long += 1
        if shuffled != sequence { changed += 1 }
      }
    }
    XCTAssertEqual(changed, long, "a random sequence of 30+ letters should always come out changed")
  }

  func testDeterministicWithSeed() {
    let sequence = Array("ACGTTGCAAGGCTTACGATCGATCGGGATCCATTAGC".utf8)
    var a = SeededGenerator(seed: 42)
    var b = SeededGenerator(seed: 42)
    var c = SeededGenerator(seed: 43)
    let first = DinucleotideShuffle.shuffle(sequence, using: &a)
    XCTAssertEqual(first, DinucleotideShuffle.shuffle(sequence, using: &b))
    XCTAssertNotEqual(first, DinucleotideShuffle.shuffle(sequence, using: &c))
    XCTAssertEqual(DinucleotideShuffle.shuffle(Array("AC".utf8), using: &a), Array("AC".utf8))
    XCTAssertEqual(DinucleotideShuffle.shuffle(Array("AAAA".utf8), using: &a), Array("AAAA".utf8))
  }

  /// Every sequence with the same dinucleotide counts (and so the same first and last letter) is
  /// equally likely: enumerate them all by brute force for a short sequence and compare frequencies.
  func testUniformOverAllSequencesWithTheSameDinucleotides() {
    let original = Array("AACGTACGAT".utf8)
    let target = DinucleotideShuffle.dinucleotideCounts(original)
    var valid = Set<[UInt8]>()
    var letters = original
    letters.sort()
    repeat {
      if DinucleotideShuffle.dinucleotideCounts(letters) == target { valid.insert(letters) }
    } while nextPermutation(&letters)
    XCTAssertGreaterThan(valid.count, 5)

    var generator = SeededGenerator(seed: 2024)
    let draws = 30_000
    var counts: [[UInt8]: Int] = [:]
    for _ in 0..<draws { counts[DinucleotideShuffle.shuffle(original, using: &generator), default: 0] += 1 }
    XCTAssertEqual(Set(counts.keys), valid)
    let p = 1.0 / Double(valid.count)
    let sigma = (Double(draws) * p * (1 - p)).squareRoot()
    for (sequence, count) in counts {
      XCTAssertEqual(Double(count), Double(draws) * p, accuracy: 4.5 * sigma, String(decoding: sequence, as: UTF8.self))
    }
  }

  private func nextPermutation(_ a: inout [UInt8]) -> Bool {
    guard a.count > 1 else { return false }
    var i = a.count - 2
    while i >= 0 && a[i] >= a[i + 1] { i -= 1 }
    if i < 0 { return false }
    var j = a.count - 1
    while a[j] <= a[i] { j -= 1 }
    a.swapAt(i, j)
    a[(i + 1)...].reverse()
    return true
  }
}

final class MotifSamplingTests: XCTestCase {
  func testSampledInstancesReproduceColumnFrequencies() throws {
    let motifs = try MotifReader.read(path: Fixtures.path("jaspar2026_subset.jaspar"))
    var generator = SeededGenerator(seed: 99)
    let n = 20_000
    for motif in motifs {
      let instances = motif.sampleInstances(count: n, using: &generator)
      XCTAssertEqual(instances.count, n)
      for position in 0..<motif.width {
        var counts = [Int](repeating: 0, count: 4)
        for instance in instances { counts[Int(instance[position])] += 1 }
        for base in 0..<4 {
          let p = motif.probabilities[position][base]
          if p == 0 {
            XCTAssertEqual(counts[base], 0, "\(motif.id) position \(position) base \(base) has probability 0")
            continue
          }
          let sigma = (Double(n) * p * (1 - p)).squareRoot()
          XCTAssertEqual(
            Double(counts[base]), Double(n) * p, accuracy: max(4 * sigma, 1), "\(motif.id) position \(position) base \(base)")
        }
      }
    }
  }

  func testSamplingIsSeeded() throws {
    let motif = try MotifReader.read(path: Fixtures.path("gimmemotifs_MA0099.3.jaspar"))[0]
    var a = SeededGenerator(seed: 1)
    var b = SeededGenerator(seed: 1)
    XCTAssertEqual(motif.sampleInstanceStrings(count: 50, using: &a), motif.sampleInstanceStrings(count: 50, using: &b))
  }

  func testInsertionAtTheCentre() throws {
    // calico make_fasta.R: left_coord = 1344/2 - floor(19/2) = 663 bases kept on the left.
    XCTAssertEqual(MotifInsertion.centreStart(length: 1344, width: 19), 663)
    XCTAssertEqual(MotifInsertion.centreStart(length: 1344, width: 10), 667)
    let background = String(repeating: "A", count: 20)
    XCTAssertEqual(try MotifInsertion.insertAtCentre("CGT", into: background), "AAAAAAAAACGTAAAAAAAA")
    XCTAssertEqual(try MotifInsertion.insertAtCentre("CG", into: background), "AAAAAAAAACGAAAAAAAAA")
    XCTAssertThrowsGenomicsError(try MotifInsertion.insertAtCentre("ACGT", into: "AC"), messageContains: ["4 bases", "2 bases"])
  }

  func testMotifLibraryInCalicoLayout() throws {
    let fasta = try FastaFile(path: try Fixtures.tinyFastaCopy(self))
    let peaks = [Peak(chrom: "chr1", start: 30, end: 60), Peak(chrom: "chr1", start: 70, end: 100), Peak(chrom: "chrUn_KI270742v1", start: 20, end: 40)]
    let backgrounds = try MotifLibrary.shuffledBackgrounds(peaks: peaks, fasta: fasta, count: 10, seqLen: 40, seed: 3)
    XCTAssertEqual(backgrounds.count, 3)
    for record in backgrounds {
      let peak = try Peak(name: record.name)
      let original = try fasta.paddedSequence(chrom: peak.chrom, start: peak.start, end: peak.end).map { $0 >= 97 ? $0 - 32 : $0 }
      XCTAssertEqual(DinucleotideShuffle.dinucleotideCounts(Array(record.sequence.utf8)), DinucleotideShuffle.dinucleotideCounts(original))
    }
    let motifs = try MotifReader.read(path: Fixtures.path("jaspar2026_subset.meme"))
    let folder = try Fixtures.temporaryFolder(self)
    let summary = try MotifLibrary.write(backgrounds: backgrounds, motifs: motifs + [motifs[0]], to: folder, seed: 3)
    XCTAssertEqual(summary.tfNames, ["CTCF", "SPI1", "GATA1", "CEBPB", "PAX5", "FOS::JUN"])
    XCTAssertEqual(summary.skippedDuplicates, ["MA0139.1 CTCF"])
    XCTAssertEqual(try FastaRecords.read(from: folder + "/shuffled_peaks.fasta"), backgrounds)
    let withCTCF = try FastaRecords.read(from: folder + "/shuffled_peaks_motifs/CTCF.fasta")
    XCTAssertEqual(withCTCF.map(\.name), backgrounds.map(\.name))
    let start = MotifInsertion.centreStart(length: 40, width: 19)
    for (injected, background) in zip(withCTCF, backgrounds) {
      let a = Array(injected.sequence.utf8)
      let b = Array(background.sequence.utf8)
      XCTAssertEqual(a.count, 40)
      XCTAssertEqual(Array(a[..<start]), Array(b[..<start]))
      XCTAssertEqual(Array(a[(start + 19)...]), Array(b[(start + 19)...]))
    }
  }
}
