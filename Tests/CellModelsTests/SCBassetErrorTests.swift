import CellData
import Foundation
import Genomics
import XCTest

@testable import CellModels
import Torch

/// Tiny data and networks for fast tests.
enum SCBassetTiny {
  /// A tiny regions × cells AnnData: `regions` random 64-bp sequences, `cells` cells, X from `value`.
  static func data(regions: Int = 12, cells: Int = 5, length: Int = 64, value: (Int, Int) -> Float = { ($0 + $1) % 3 == 0 ? 1 : 0 })
    throws -> AnnData
  {
    var generator = SeededGenerator(seed: 3)
    let x = (0..<regions).flatMap { r in (0..<cells).map { value(r, $0) } }
    var adata = try AnnData(X: .dense(try DenseArray(rows: regions, cols: cells, values: x)),
                            obs: DataFrame(index: (0..<regions).map { "chr1:\($0 * 100)-\($0 * 100 + 50)" }),
                            var: DataFrame(index: (0..<cells).map { "cell\($0)" }))
    let codes = (0..<(regions * length)).map { _ in UInt8(generator.uniformInt(below: 4)) }
    adata.obsm["dna_code"] = .dense(try DenseArray(shape: [regions, length], data: .uint8(codes)))
    return adata
  }

  /// A small network: two tower blocks of `channels` filters; the defaults are the tiniest.
  static func config(cells: Int = 5, length: Int = 64, channels: Int = 4, stemKernel: Int = 5, pointwise: Int = 3,
                     bottleneck: Int = 4) -> SCBassetConfig {
    var c = SCBassetConfig(numLabels: cells)
    c.vocabSize = 4
    c.sequenceLength = length
    c.stemChannels = channels
    c.stemKernelSize = stemKernel
    c.towerChannels = [channels, channels]
    c.pointwiseChannels = pointwise
    c.bottleneckSize = bottleneck
    return c
  }
}

/// Bad input to scBasset: each is a thrown error with a message that says what is wrong.
final class SCBassetErrorTests: XCTestCase {
  func assertThrows(_ expression: @autoclosure () throws -> Any, containing text: String, file: StaticString = #filePath,
                    line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
      XCTAssertTrue("\(error)".contains(text), "\(error) should mention \(text)", file: file, line: line)
    }
  }

  func testPeaksOutsideTheFasta() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("scbasset-err-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let fasta = folder.appendingPathComponent("g.fa").path
    try FastaRecords.write([.init(name: "chr1", sequence: String(repeating: "ACGT", count: 100))], to: fasta)
    var cells = try AnnData(X: .dense(try DenseArray(rows: 1, cols: 2, values: [1, 0] as [Float])),
                            var: DataFrame(index: ["chr1:10-60", "chr2:10-60"]))
    assertThrows(try SCBASSET.addDNASequence(to: &cells, fasta: try FastaFile(path: fasta), seqLen: 64), containing: "chr2")
    cells.var.index = ["chr1:10-60", "chr1:390-450"]
    assertThrows(try SCBASSET.addDNASequence(to: &cells, fasta: try FastaFile(path: fasta), seqLen: 64), containing: "chr1:390-450")
    cells.var.index = ["chr1:10-60", "chr1:300-350"]
    try SCBASSET.addDNASequence(to: &cells, fasta: try FastaFile(path: fasta), seqLen: 64)
    guard case .dense(let codes) = cells.varm["dna_code"] else { return XCTFail("no dna_code") }
    XCTAssertEqual(codes.shape, [2, 64])
  }

  func testNonBinaryXIsRefusedOrBinarizedWithAWarning() throws {
    let counts = try SCBassetTiny.data { r, c in Float((r * c) % 4) }
    assertThrows(try SCBASSET(adata: counts, config: SCBassetTiny.config()), containing: "not binary")
    let warnings = WarningLog()
    let model = try SCBASSET(adata: counts, setup: SCBassetSetup(nonBinary: .binarize), config: SCBassetTiny.config(),
                             warn: { warnings.append($0) })
    XCTAssertEqual(warnings.messages.count, 1)
    XCTAssertTrue(warnings.messages[0].contains("positive value is taken as 1"))
    XCTAssertEqual(model.data!.accessibility.rows([2]).toArray(Float.self), [0, 1, 0, 1, 0])
    let negative = try SCBassetTiny.data { r, c in r == 3 && c == 1 ? -1 : 0 }
    assertThrows(try SCBASSET(adata: negative, setup: SCBassetSetup(nonBinary: .binarize), config: SCBassetTiny.config()), containing: "negative")
    let nan = try SCBassetTiny.data { r, c in r == 3 && c == 1 ? .nan : 0 }
    assertThrows(try SCBASSET(adata: nan, config: SCBassetTiny.config()), containing: "non-finite")
  }

  func testMissingOrBadDNACodes() throws {
    var adata = try SCBassetTiny.data()
    adata.obsm["dna_code"] = nil
    assertThrows(try SCBASSET(adata: adata, config: SCBassetTiny.config()), containing: "obsm['dna_code']")
    adata.obsm["dna_code"] = .dense(try DenseArray(shape: [12, 64], data: .int64([Int64](repeating: 7, count: 12 * 64))))
    assertThrows(try SCBASSET(adata: adata, config: SCBassetTiny.config()), containing: "holds 7")
  }

  func testSequenceLengthMismatch() throws {
    let adata = try SCBassetTiny.data()
    assertThrows(try SCBASSET(adata: adata, config: SCBassetTiny.config(length: 96)), containing: "96 bp")
    let model = try SCBASSET(adata: adata, config: SCBassetTiny.config())
    assertThrows(try model.predict(sequences: [String(repeating: "A", count: 63)]), containing: "63 bases")
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("scbasset-err-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    try model.save(to: folder)
    let longer = try SCBassetTiny.data(length: 80)
    assertThrows(try SCBASSET.load(from: folder, adata: longer), containing: "80")
    // A state dict alone: the bottleneck width fixes the length.
    assertThrows(try SCBassetCheckpoint.inferConfig(model.network.stateDict(), sequenceLength: 200), containing: "sequence length")
    XCTAssertEqual(try SCBassetCheckpoint.inferConfig(model.network.stateDict(), sequenceLength: 64).towerChannels, [4, 4])
  }

  func testCheckpointCellCountMismatch() throws {
    let model = try SCBASSET(adata: try SCBassetTiny.data(), config: SCBassetTiny.config())
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("scbasset-err-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    try model.save(to: folder)
    assertThrows(try SCBASSET.load(from: folder, adata: try SCBassetTiny.data(cells: 7)), containing: "5 cells")
    assertThrows(try SCBassetCheckpoint.network(from: model.network.stateDict(), config: SCBassetTiny.config(cells: 6)), containing: "5 cells")
    assertThrows(try SCBASSET(adata: try SCBassetTiny.data(cells: 7), config: SCBassetTiny.config(cells: 5)), containing: "5 cells")
  }

  func testBadConfig() {
    var c = SCBassetTiny.config()
    c.vocabSize = 6
    assertThrows(try SCBassetNetwork(c), containing: "vocab_size")
    c = SCBassetTiny.config()
    c.stemKernelSize = 4
    assertThrows(try SCBassetNetwork(c), containing: "odd")
    c = SCBassetTiny.config()
    c.nBatch = 2
    assertThrows(try SCBassetNetwork(c, batchIDs: [0, 1, 2, 0, 1]), containing: "batch ids")
  }

  /// Augmentation: the reverse complement and N-padded shifts on codes.
  func testReverseComplementAndShift() {
    let codes = Tensor([0, 1, 2, 3, 4, 0] as [Int64], shape: [1, 6])
    XCTAssertEqual(SCBassetInput.reverseComplement(codes).toArray(Int64.self), [3, 4, 0, 1, 2, 3])
    XCTAssertEqual(SCBassetInput.shifted(codes, by: 2).toArray(Int64.self), [4, 4, 0, 1, 2, 3])
    XCTAssertEqual(SCBassetInput.shifted(codes, by: -1).toArray(Int64.self), [1, 2, 3, 4, 0, 4])
    var c = SCBassetTiny.config()
    let oneHot = SCBassetInput.oneHot(Tensor([0, 4] as [Int64], shape: [1, 2]), config: c)
    XCTAssertEqual(oneHot.toArray(Float.self), [1, 0.25, 0, 0.25, 0, 0.25, 0, 0.25])
    c.vocabSize = 5
    XCTAssertEqual(SCBassetInput.oneHot(Tensor([0, 4] as [Int64], shape: [1, 2]), config: c).toArray(Float.self),
                   [1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
  }
}

final class WarningLog: @unchecked Sendable {
  private(set) var messages: [String] = []
  func append(_ m: String) { messages.append(m) }
}
