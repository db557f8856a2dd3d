import CellData
import Foundation
import XCTest

/// `singlecell scgpt embed` on the bundled cells with the fixture's scGPT model folder.
final class ScGPTCommandTests: CLITestCase {
  func testEmbedWritesUnitEmbeddingsAndCountsUnknownGenes() throws {
    let model = CLITestCase.repository.appendingPathComponent("tests/fixtures/scgpt/model_folder").path
    let out = scratch.appendingPathComponent("embedded.h5ad").path
    let run = try singlecell(["scgpt", "embed", model, counts, "-o", out, "--batch-size", "100"])
    XCTAssertEqual(run.status, 0, run.stderr)
    XCTAssertTrue(run.stderr.contains("200 of 765 genes are in the vocabulary; 565 are not"), run.stderr)
    guard case .dense(let embedding) = try XCTUnwrap(try AnnData.read(h5ad: out).obsm["X_scGPT"]) else {
      return XCTFail("X_scGPT is not a dense array")
    }
    XCTAssertEqual(embedding.shape, [700, 64])
    let values = try XCTUnwrap(embedding.data.doubles)
    let norm = values[0..<64].reduce(0) { $0 + $1 * $1 }.squareRoot()
    XCTAssertEqual(norm, 1, accuracy: 1e-5)

    var foreign = try AnnData.read(h5ad: counts)
    foreign.var = DataFrame(index: foreign.varNames.map { "x-\($0)" })
    let foreignPath = scratch.appendingPathComponent("foreign.h5ad").path
    try foreign.write(h5ad: foreignPath)
    let none = scratch.appendingPathComponent("none.h5ad").path
    let refused = try singlecell(["scgpt", "embed", model, foreignPath, "-o", none])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.stderr.contains("none of the 765 genes"), refused.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: none))
  }

  func testTrainFromScratchThenEmbed() throws {
    let model = scratch.appendingPathComponent("pretrained").path
    let run = try singlecell(["scgpt", "train", counts, "-o", model, "--n-hvg", "200", "--epochs", "3", "--d-model", "32",
                              "--nheads", "2", "--d-hid", "32", "--nlayers", "1", "--lr", "1e-3", "--max-length", "100"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let history = try String(contentsOfFile: model + "/history.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",") }
    let column = try XCTUnwrap(history[0].firstIndex(of: "train_gep"))
    XCTAssertLessThan(Double(history[3][column])!, Double(history[1][column])!, "the masked-value loss falls")
    XCTAssertNotNil(history[0].firstIndex(of: "train_gepc"))
    let out = scratch.appendingPathComponent("embedded.h5ad").path
    let embedded = try singlecell(["scgpt", "embed", model, counts, "-o", out])
    XCTAssertEqual(embedded.status, 0, embedded.stderr)
    XCTAssertTrue(embedded.stderr.contains("embedded 700 cells in"), embedded.stderr)
    guard case .dense(let embedding) = try XCTUnwrap(try AnnData.read(h5ad: out).obsm["X_scGPT"]) else {
      return XCTFail("X_scGPT is not a dense array")
    }
    XCTAssertEqual(embedding.shape, [700, 32])
  }
}
