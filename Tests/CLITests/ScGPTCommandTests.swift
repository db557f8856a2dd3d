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
    let embedding = try denseObsm(out, "X_scGPT")
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
    let embedding = try denseObsm(out, "X_scGPT")
    XCTAssertEqual(embedding.shape, [700, 32])
  }

  /// Streamed generative pretraining on a two-file collection: stopped at a step, resumed from
  /// its checkpoint, it ends where the uninterrupted run ends; the folder embeds.
  func testBackedPretrainingStopsResumesExactlyAndEmbeds() throws {
    // 1,400 cells, 1,260 in training: 20 minibatches of 64 per epoch, 40 steps.
    let common = ["--backed", "--objective", "generative", "--schedule", "cosine", "--warmup", "0.1", "--epochs", "2",
                  "--batch-size", "64", "--d-model", "16", "--nheads", "2", "--d-hid", "16", "--nlayers", "1",
                  "--max-length", "64", "--lr", "1e-3", "--second-pass-after", "10", "--block-rows", "50", "--buffer-blocks", "4"]
    func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }
    let whole = try singlecell(["scgpt", "pretrain", counts, counts, "-o", path("whole")] + common)
    XCTAssertEqual(whole.status, 0, whole.stderr)
    let stopped = try singlecell(["scgpt", "pretrain", counts, counts, "-o", path("first"), "--max-steps", "27",
                                  "--checkpoint", path("run.safetensors"), "--checkpoint-every", "5"] + common)
    XCTAssertEqual(stopped.status, 0, stopped.stderr)
    let first = try json(path("first") + "/metrics.json")
    XCTAssertEqual(first["stop_reason"] as? String, "max_steps")
    XCTAssertEqual(first["steps"] as? Int, 27)
    XCTAssertEqual(first["n_train"] as? Int, 1260)
    let tokens = try XCTUnwrap(first["tokens"] as? Int)
    XCTAssertLessThanOrEqual(tokens, 27 * 64 * 64, "at most --max-length tokens per cell")
    XCTAssertGreaterThan(tokens, 27 * 64 * 32, "most of these cells express more than 64 genes")
    XCTAssertGreaterThan(try XCTUnwrap(first["tokens_per_second"] as? Double), 0)

    let resumed = try singlecell(["scgpt", "pretrain", counts, counts, "-o", path("resumed"), "--resume", path("run.safetensors")] + common)
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    func history(_ folder: String) throws -> [[Double]] {
      try String(contentsOfFile: path(folder) + "/history.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        .map { $0.split(separator: ",").map { Double($0)! } }
    }
    let expected = try history("whole"), got = try history("resumed")
    XCTAssertEqual(expected.count, 2)
    XCTAssertEqual(got.count, 2)
    for (a, b) in zip(expected.joined(), got.joined()) { XCTAssertEqual(a, b, accuracy: abs(a) * 1e-6) }
    XCTAssertEqual(try json(path("resumed") + "/metrics.json")["steps"] as? Int, 40)

    let out = path("embedded.h5ad")
    let embedded = try singlecell(["scgpt", "embed", path("resumed"), counts, "-o", out])
    XCTAssertEqual(embedded.status, 0, embedded.stderr)
    let embedding = try denseObsm(out, "X_scGPT")
    XCTAssertEqual(embedding.shape, [700, 16])

    let otherSeed = try singlecell(["scgpt", "pretrain", counts, counts, "-o", path("other"), "--resume", path("run.safetensors"),
                                    "--seed", "7"] + common)
    XCTAssertNotEqual(otherSeed.status, 0)
    XCTAssertTrue(otherSeed.stderr.contains("seed"), otherSeed.stderr)
    let noPath = try singlecell(["scgpt", "pretrain", counts, "-o", path("x"), "--checkpoint-every", "5"])
    XCTAssertNotEqual(noPath.status, 0)
    XCTAssertTrue(noPath.stderr.contains("--checkpoint PATH"), noPath.stderr)
    let cce = try singlecell(["scgpt", "pretrain", counts, "-o", path("y"), "--objective", "generative", "--cce-weight", "10"])
    XCTAssertNotEqual(cce.status, 0)
    XCTAssertTrue(cce.stderr.contains("--cce-weight is for --objective masked"), cce.stderr)
  }
}
