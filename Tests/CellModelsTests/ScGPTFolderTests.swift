import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// Vocabularies, saving model folders, and bad input (clear errors, nothing half-written).
final class ScGPTFolderTests: XCTestCase {
  private var scratch: URL!

  override func setUpWithError() throws {
    Runtime.seed(0)
    scratch = FileManager.default.temporaryDirectory.appendingPathComponent("scgpt-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

  /// A copy of the fixture folder with `edit` applied to its args.json / vocab.json text.
  private func folderCopy(args: ((inout [String: Any]) -> Void)? = nil, vocab: String? = nil) throws -> URL {
    let dir = scratch.appendingPathComponent("folder-\(UUID().uuidString)")
    try FileManager.default.copyItem(at: ScGPTFixtures.url("model_folder"), to: dir)
    if let args {
      let url = dir.appendingPathComponent("args.json")
      var object = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
      args(&object)
      try JSONSerialization.data(withJSONObject: object).write(to: url)
    }
    if let vocab { try Data(vocab.utf8).write(to: dir.appendingPathComponent("vocab.json")) }
    return dir
  }

  private func assertThrows(_ expected: String, _ body: () throws -> Void, line: UInt = #line) {
    XCTAssertThrowsError(try body(), line: line) { error in
      XCTAssertTrue("\(error)".contains(expected), "message '\(error)' lacks '\(expected)'", line: line)
    }
  }

  func testShippedCensusVocabularyLoads() throws {
    var vocab = try GeneVocab(contentsOf: ScGPTFixtures.url("default_census_vocab.json"))
    XCTAssertEqual(vocab.count, 60_694)
    XCTAssertNil(vocab.defaultId, "the shipped vocabulary has no specials")
    XCTAssertEqual(vocab.appendMissingSpecials(), ["<pad>", "<cls>", "<eoc>"])
    XCTAssertEqual(vocab["<pad>"], 60_694)
    XCTAssertEqual(vocab.appendMissingSpecials(), [], "appended only when missing")
    let genes = try GeneVocab(contentsOf: ScGPTFixtures.url("default_gene_vocab.json"))
    XCTAssertEqual(genes.count, 48_292)
  }

  func testVocabularyRoundTripAndUnknownGenes() throws {
    let vocab = try GeneVocab(genes: ["CD3E", "ACTB", "CD3E", "MS4A1", "ACTB", "B2M"], specials: ["<pad>", "<cls>"])
    XCTAssertEqual(vocab.tokens, ["<pad>", "<cls>", "ACTB", "CD3E", "B2M", "MS4A1"], "specials, then by count, ties by name")
    let url = scratch.appendingPathComponent("vocab.json")
    try vocab.write(to: url)
    XCTAssertEqual(try GeneVocab(contentsOf: url), vocab)
    let match = try vocab.match(["B2M", "NOPE", "CD3E", "ALSO_NOT"])
    XCTAssertEqual(match.ids, [4, 0, 3, 0], "unknown genes map to <pad>'s id")
    XCTAssertEqual(match.unknownGenes, ["NOPE", "ALSO_NOT"])
    XCTAssertTrue(match.summary.contains("2 of 4 genes"))
    assertThrows("none of the 2 genes") { _ = try vocab.match(["X1", "X2"]) }
    let noPad = try GeneVocab(tokens: ["A", "B"])
    assertThrows("has no <pad>") { _ = try noPad.match(["A", "C"]) }
  }

  func testBadVocabularyFilesAreRefused() throws {
    assertThrows("consecutive") { _ = try GeneVocab(json: Data(#"{"A": 0, "B": 2}"#.utf8)) }
    assertThrows("share id 0") { _ = try GeneVocab(json: Data(#"{"A": 0, "B": 0}"#.utf8)) }
    assertThrows("integer id") { _ = try GeneVocab(json: Data(#"{"A": 0, "B": 1.5}"#.utf8)) }
    assertThrows("integer id") { _ = try GeneVocab(json: Data(#"["A", "B"]"#.utf8)) }
    assertThrows("consecutive") { _ = try GeneVocab(json: Data(#"{"A": -1}"#.utf8)) }
    let folder = try folderCopy(vocab: #"{"<pad>": 0, "<cls>": 5}"#)
    assertThrows("consecutive") { _ = try ScGPTModelFolder.load(folder) }
  }

  func testArgsThatDoNotMatchTheWeightsAreRefused() throws {
    assertThrows("'encoder.embedding.weight' is [203, 64]") {
      _ = try ScGPTModelFolder.load(try self.folderCopy { $0["embsize"] = 32; $0["nheads"] = 4 })
    }
    assertThrows("'transformer_encoder.layers.0.linear1.weight' is [64, 64]") {
      _ = try ScGPTModelFolder.load(try self.folderCopy { $0["d_hid"] = 128 })
    }
    assertThrows("nlayers is 3 but best_model.pt has 2") {
      _ = try ScGPTModelFolder.load(try self.folderCopy { $0["nlayers"] = 3 })
    }
    assertThrows("has no 'embsize'") { _ = try ScGPTModelFolder.load(try self.folderCopy { $0["embsize"] = nil }) }
    assertThrows("not divisible") { _ = try ScGPTModelFolder.load(try self.folderCopy { $0["nheads"] = 5 }) }
    let extraToken = try folderCopy(vocab: #"{"<pad>": 0, "<cls>": 1, "<eoc>": 2, "A": 3}"#)
    assertThrows("the model built from them") { _ = try ScGPTModelFolder.load(extraToken) }
    let noWeights = try folderCopy()
    try FileManager.default.removeItem(at: noWeights.appendingPathComponent("best_model.pt"))
    assertThrows("has no best_model.pt") { _ = try ScGPTModelFolder.load(noWeights) }
  }

  /// save → load gives the same weights and outputs; the folder has the reference's layout plus
  /// safetensors, and args.json records the heads.
  func testSavedFolderReloadsIdentically() throws {
    let folder = try ScGPTFixtures.model()
    let out = scratch.appendingPathComponent("saved")
    try folder.save(to: out)
    for file in ["best_model.pt", "args.json", "vocab.json", "model.safetensors"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), file)
    }
    let args = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("args.json"))) as! [String: Any]
    XCTAssertEqual(args["explicit_zero_prob"] as? Bool, true)
    XCTAssertEqual(args["embsize"] as? Int, 64)
    let reloaded = try ScGPTModelFolder.load(out)
    var expected = folder.network.config
    expected.ecsThreshold = 0.8  // the network's threshold, saved as ecs_threshold
    XCTAssertEqual(reloaded.network.config, expected)
    XCTAssertEqual(reloaded.report.missing, [])
    XCTAssertEqual(reloaded.network.ecsThreshold, 0.8)
    let original = try TorchFile.loadStateDict(ScGPTFixtures.url("model_folder/best_model.pt"))
    let saved = try Safetensors.read(out.appendingPathComponent("model.safetensors")).tensors
    for (key, value) in original {
      XCTAssertEqual(saved[key]!.to(.float64).toArray(Double.self), value.to(.float64).toArray(Double.self), key)
    }
    reloaded.network.eval()
    let a = try withNoGrad { try reloaded.network.forward(ScGPTFixtures.batch()).mlmOutput }
    assertClose(a, ScGPTFixtures.io("out.mlm_output"), "reloaded prediction")
  }

  func testBadModelInputIsRefused() throws {
    let network = try ScGPTFixtures.model().network
    let batch = ScGPTFixtures.batch()
    assertThrows("needs one batch label per cell") {
      _ = try network.forward(ScGPTBatch(geneIds: batch.geneIds, values: batch.values, paddingMask: batch.paddingMask))
    }
    assertThrows("outside the model's 2 batches") {
      _ = try network.forward(ScGPTBatch(geneIds: batch.geneIds, values: batch.values, paddingMask: batch.paddingMask,
                                         batchLabels: Tensor([Int64](repeating: 2, count: 16))))
    }
    assertThrows("outside the vocabulary of 203") {
      _ = try network.forward(ScGPTBatch(geneIds: (batch.geneIds + 10).to(.int64), values: batch.values, paddingMask: batch.paddingMask,
                                         batchLabels: batch.batchLabels))
    }
    assertThrows("must be the same") {
      _ = try network.forward(ScGPTBatch(geneIds: batch.geneIds, values: batch.values.narrow(dim: 1, start: 0, length: 5),
                                         paddingMask: batch.paddingMask, batchLabels: batch.batchLabels))
    }
  }

  func testCellWithoutExpressedGenesIsRefused() throws {
    var adata = try AnnData(X: .dense(try DenseArray(rows: 3, cols: 4, values: [1, 2, 0, 3, 0, 0, 0, 0, 4, 0, 1, 1] as [Float])))
    var random = ScGPTRandom(seed: 0)
    let preprocessor = ScGPTPreprocessor(normalizeTotal: 1e4, log1p: true, binning: 51)
    assertThrows("has no expressed genes") { try preprocessor(&adata, random: &random) }
    XCTAssertTrue(adata.layers.isEmpty, "nothing written")
    var allowing = preprocessor
    allowing.allowEmptyCells = true
    try allowing(&adata, random: &random)
    XCTAssertEqual(try adata.matrix(layer: "X_binned").denseDoubles()[4..<8], [0, 0, 0, 0])
  }
}
