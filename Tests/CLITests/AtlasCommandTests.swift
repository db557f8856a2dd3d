import CellData
import Foundation
import XCTest

/// `singlecell atlas train / predict / map` end to end on the bundled PBMC counts.
final class AtlasCommandTests: CLITestCase {
  func testTrainPredictAndMapAQueryWithGenesInAnotherOrder() throws {
    let out = scratch.appendingPathComponent("atlas").path
    // The bundled cells with a made-up batch column: the first and the second 350.
    var full = try AnnData.read(h5ad: counts)
    try full.obs.set("half", .categorical(Categorical((0..<700).map { $0 < 350 ? "first" : "second" })))
    let reference = scratch.appendingPathComponent("reference.h5ad").path
    try full.write(h5ad: reference)
    let train = try singlecell(["atlas", "train", reference, "-o", out, "--batch-key", "half", "--label-key", "bulk_labels",
                                "--hidden", "32", "--n-latent", "6", "--max-epochs", "6", "--pred-last-n-epochs", "6",
                                "--lr", "3e-3", "--seed", "0", "--threads", "1", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
    for name in ["model.safetensors", "model.json", "adata.h5ad", "history.csv", "metrics.json", "report.html",
                 "umap_half.png", "umap_bulk_labels.png", "umap_predicted_bulk_labels.png"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(name)"), "missing \(name)")
    }
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["epochs"] as? Int, 6)
    XCTAssertGreaterThan(try XCTUnwrap(metrics["accuracy_bulk_labels"] as? Double), 0.2)
    let info = try singlecell(["info", "\(out)/adata.h5ad"])
    XCTAssertTrue(info.stdout.contains("X_scAtlasVAE: array float32 [700, 6]"), info.stdout)
    XCTAssertTrue(info.stdout.contains("predicted_bulk_labels"), info.stdout)

    // A query of the last 200 cells with the genes reversed and 15 of them missing.
    let query = scratch.appendingPathComponent("query.h5ad").path
    try full.obs.set("half", .categorical(Categorical(Array(repeating: "query", count: 700))))
    try full.subset(obs: Array(500..<700), vars: Array((15..<765).reversed())).write(h5ad: query)

    let predicted = scratch.appendingPathComponent("predicted.h5ad").path
    let predict = try singlecell(["atlas", "predict", out, query, "-o", predicted])
    XCTAssertEqual(predict.status, 0, predict.stderr)
    XCTAssertTrue(predict.stderr.contains("15 of the model's 765 genes are missing"), predict.stderr)
    let result = try AnnData.read(h5ad: predicted)
    XCTAssertEqual(result.varNames, full.varNames[15...].reversed(), "the input's genes are kept as they were")
    XCTAssertEqual(try result.obs.labels("predicted_bulk_labels").count, 200)

    let mapped = scratch.appendingPathComponent("mapped").path
    let map = try singlecell(["atlas", "map", out, query, "-o", mapped, "-k", "10"])
    XCTAssertEqual(map.status, 0, map.stderr)
    let mapMetrics = try json("\(mapped)/metrics.json")
    XCTAssertEqual(mapMetrics["missing_genes"] as? Int, 15)
    XCTAssertGreaterThan(try XCTUnwrap(mapMetrics["accuracy_knn_bulk_labels"] as? Double), 0.2)
    XCTAssertNotNil(mapMetrics["accuracy_classifier_bulk_labels"] as? Double)
    let placed = try AnnData.read(h5ad: "\(mapped)/query.h5ad")
    XCTAssertNotNil(placed.obsm["X_umap"])
    XCTAssertTrue(FileManager.default.fileExists(atPath: "\(mapped)/umap_query.png"))

    // Fine-tuning grows the batch embedding for the query's batches and saves the model.
    let tuned = scratch.appendingPathComponent("tuned").path
    let fineTune = try singlecell(["atlas", "map", out, query, "-o", tuned, "--fine-tune-epochs", "2"])
    XCTAssertEqual(fineTune.status, 0, fineTune.stderr)
    XCTAssertTrue(FileManager.default.fileExists(atPath: "\(tuned)/model/model.safetensors"))

    // No shared gene: a clear error and no output.
    var foreign = try full.subset(obs: Array(0..<50))
    foreign.var = DataFrame(index: full.varNames.map { "x-\($0)" })
    let foreignPath = scratch.appendingPathComponent("foreign.h5ad").path
    try foreign.write(h5ad: foreignPath)
    let none = try singlecell(["atlas", "map", out, foreignPath, "-o", scratch.appendingPathComponent("none").path])
    XCTAssertNotEqual(none.status, 0)
    XCTAssertTrue(none.stderr.contains("shares none"), none.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("none").path))
  }

  /// A file from the reference's save_to_disk becomes a model folder that predicts.
  func testImportTheReferencesSaveToDiskFile() throws {
    let saved = CLITestCase.repository.appendingPathComponent("tests/fixtures/scatlasvae/reference_saved.pt").path
    let out = scratch.appendingPathComponent("imported").path
    let imported = try singlecell(["atlas", "import", saved, "--data", counts, "-o", out])
    XCTAssertEqual(imported.status, 0, imported.stderr)
    XCTAssertTrue(imported.stdout.contains("batch keys [\"half\", \"lane\"]"), imported.stdout)
    let predicted = scratch.appendingPathComponent("predicted.h5ad").path
    let predict = try singlecell(["atlas", "predict", out, counts, "-o", predicted])
    XCTAssertEqual(predict.status, 0, predict.stderr)
    XCTAssertEqual(try AnnData.read(h5ad: predicted).obs.labels("predicted_cell_type").count, 700)
    let notAFile = try singlecell(["atlas", "import", counts, "--data", counts, "-o", scratch.appendingPathComponent("bad").path])
    XCTAssertNotEqual(notAFile.status, 0)
    XCTAssertFalse(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("bad").path))
  }

  func testBadInputLeavesNoOutput() throws {
    let out = scratch.appendingPathComponent("atlas-bad").path
    let unknown = try singlecell(["atlas", "train", counts, "-o", out, "--batch-key", "nope", "--max-epochs", "1", "--quiet"])
    XCTAssertNotEqual(unknown.status, 0)
    XCTAssertTrue(unknown.stderr.contains("no obs column 'nope'"), unknown.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a failed run writes nothing")
    let noLabel = try singlecell(["atlas", "train", counts, "-o", out, "--label-key", "absent", "--max-epochs", "1", "--quiet"])
    XCTAssertTrue(noLabel.stderr.contains("absent"), noLabel.stderr)
    let contents = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.contains("atlas-bad") }
    XCTAssertEqual(contents, [], "no staging folder is left behind")
  }

  func testAResumedTrainingRunIsTheUninterruptedRun() throws {
    let common = ["atlas", "train", counts, "--label-key", "bulk_labels", "--hidden", "16", "--n-latent", "4",
                  "--kl-warmup-epochs", "2", "--pred-last-n-epochs", "4", "--threads", "1", "--quiet"]
    func path(_ name: String) -> String { scratch.appendingPathComponent(name).path }
    let whole = try singlecell(common + ["--seed", "1", "-o", path("whole"), "--max-epochs", "4"])
    XCTAssertEqual(whole.status, 0, whole.stderr)
    // Cut after 2 epochs (the warm-up and label window do not depend on where it is cut).
    let cut = try singlecell(common + ["--seed", "1", "-o", path("cut"), "--max-epochs", "2", "--checkpoint", path("ck.safetensors")])
    XCTAssertEqual(cut.status, 0, cut.stderr)
    let resumed = try singlecell(common + ["--seed", "1", "-o", path("resumed"), "--max-epochs", "4", "--resume", path("ck.safetensors")])
    XCTAssertEqual(resumed.status, 0, resumed.stderr)
    XCTAssertEqual(try String(contentsOfFile: path("resumed/history.csv"), encoding: .utf8),
                   try String(contentsOfFile: path("whole/history.csv"), encoding: .utf8))
    XCTAssertEqual(FileManager.default.contents(atPath: path("resumed/model.safetensors")),
                   FileManager.default.contents(atPath: path("whole/model.safetensors")), "the same weights, bit for bit")

    let otherSeed = try singlecell(common + ["--seed", "2", "-o", path("other"), "--max-epochs", "4",
                                             "--resume", path("ck.safetensors")])
    XCTAssertNotEqual(otherSeed.status, 0)
    XCTAssertTrue(otherSeed.stderr.contains("seed 1"), otherSeed.stderr)
    let missing = try singlecell(common + ["-o", path("missing"), "--resume", path("absent.safetensors")])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.stderr.contains("absent.safetensors"), missing.stderr)
    let plateau = try singlecell(common + ["-o", path("plateau"), "--lr-schedule", "--resume", path("ck.safetensors")])
    XCTAssertTrue(plateau.stderr.contains("--lr-schedule"), plateau.stderr)
    for name in ["other", "missing", "plateau"] { XCTAssertFalse(FileManager.default.fileExists(atPath: path(name))) }
  }
}
