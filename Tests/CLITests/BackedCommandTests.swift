import CellData
import Foundation
import XCTest

/// `singlecell simulate atlas` and `scvi|ldvae train --backed` end to end on a small synthetic
/// atlas resampled from the bundled PBMC counts.
final class BackedCommandTests: CLITestCase {
  func simulate(_ name: String, cells: Int, seed: Int = 0, extra: [String] = []) throws -> String {
    let path = scratch.appendingPathComponent(name).path
    let run = try singlecell(["simulate", "atlas", "--profiles", counts, "--cells", "\(cells)", "--genes", "200",
                              "--batches", "3", "--block-rows", "700", "--copy-obs", "bulk_labels", "--seed", "\(seed)",
                              "-o", path] + extra)
    XCTAssertEqual(run.status, 0, run.stderr)
    XCTAssertTrue(run.stdout.contains("\(cells) cells × 200 genes"), run.stdout)
    return path
  }

  func testBackedSCVITrainingWritesAModelThatEmbedsAndEvaluates() throws {
    let atlas = try simulate("atlas.h5ad", cells: 1_500, extra: ["--gzip", "4", "--index-type", "uint16", "--value-type", "int32"])
    let info = try singlecell(["info", atlas])
    XCTAssertTrue(info.stdout.contains("1500 obs × 200 vars") && info.stdout.contains("batch: category (3 categories)"), info.stdout)

    let out = scratch.appendingPathComponent("scvi").path
    let train = try singlecell(["scvi", "train", atlas, "--backed", "-o", out, "--batch-key", "batch", "--n-latent", "4",
                                "--n-hidden", "32", "--max-epochs", "2", "--block-rows", "50", "--buffer-blocks", "4",
                                "--threads", "1", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["backed"] as? Bool, true)
    XCTAssertEqual(metrics["epochs"] as? Int, 2)
    XCTAssertEqual(metrics["n_cells"] as? Int, 1_500)
    XCTAssertEqual(metrics["cells_trained"] as? Int, 2 * 1_350)
    let folder = try singlecell(["info", "\(out)/adata.h5ad"])
    XCTAssertTrue(folder.stdout.contains("X_scVI: array float32 [1500, 4]"), folder.stdout)
    XCTAssertFalse(folder.stdout.contains("X: sparse"), "the folder keeps no copy of the counts: \(folder.stdout)")

    let embedded = scratch.appendingPathComponent("embedded.h5ad").path
    let embed = try singlecell(["scvi", "embed", out, atlas, "-o", embedded])
    XCTAssertEqual(embed.status, 0, embed.stderr)
    let evaluation = try singlecell(["scvi", "evaluate", out, atlas])
    XCTAssertEqual(evaluation.status, 0, evaluation.stderr)
    let withoutData = try singlecell(["scvi", "evaluate", out])
    XCTAssertNotEqual(withoutData.status, 0)
    XCTAssertTrue(withoutData.stderr.contains("trained streaming from \(atlas)"), withoutData.stderr)

    // The same seed trains the same model.
    let again = scratch.appendingPathComponent("again").path
    _ = try singlecell(["scvi", "train", atlas, "--backed", "-o", again, "--batch-key", "batch", "--n-latent", "4",
                        "--n-hidden", "32", "--max-epochs", "2", "--block-rows", "50", "--buffer-blocks", "4",
                        "--threads", "1", "--quiet"])
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(again)/model.safetensors")),
                   try Data(contentsOf: URL(fileURLWithPath: "\(out)/model.safetensors")))
  }

  func testBackedLDVAEOnACollectionOfFiles() throws {
    let first = try simulate("first.h5ad", cells: 600, seed: 1)
    let second = try simulate("second.h5ad", cells: 400, seed: 2, extra: ["--indptr-type", "int32"])
    let out = scratch.appendingPathComponent("ldvae").path
    let train = try singlecell(["ldvae", "train", first, second, "--backed", "-o", out, "--batch-key", "source_file",
                                "--n-latent", "3", "--max-steps", "5", "--threads", "1", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["n_cells"] as? Int, 1_000)
    XCTAssertEqual(metrics["stop_reason"] as? String, "max_steps")
    XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/loadings.csv"))
    let several = try singlecell(["scvi", "train", first, second, "-o", out + "2"])
    XCTAssertNotEqual(several.status, 0)
    XCTAssertTrue(several.stderr.contains("only with --backed"), several.stderr)
  }

  private func latent(_ adata: AnnData) throws -> [Double] {
    guard case .dense(let array) = try XCTUnwrap(adata.obsm["X_scAtlasVAE"]) else {
      XCTFail("X_scAtlasVAE is not a dense array")
      return []
    }
    return try XCTUnwrap(array.data.doubles)
  }

  func testBackedAtlasOnACollectionTrainsPredictsAndMaps() throws {
    let first = try simulate("first.h5ad", cells: 600, seed: 1, extra: ["--gzip", "4"])
    let second = try simulate("second.h5ad", cells: 400, seed: 2)
    let lacking = try AnnData.read(h5ad: second)
    try lacking.subset(vars: Array(1..<lacking.nVars)).write(h5ad: second)  // one gene fewer
    let out = scratch.appendingPathComponent("atlas").path
    let arguments = ["atlas", "train", first, second, "--backed", "--batch-key", "batch", "--batch-key", "source_file",
                     "--label-key", "bulk_labels", "--hidden", "32", "--n-latent", "4", "--max-epochs", "3",
                     "--pred-last-n-epochs", "3", "--lr", "3e-3", "--block-rows", "50", "--buffer-blocks", "4",
                     "--threads", "1", "--quiet"]
    let train = try singlecell(arguments + ["-o", out])
    XCTAssertEqual(train.status, 0, train.stderr)
    XCTAssertTrue(train.stderr.contains("are missing from"), train.stderr)
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["backed"] as? Bool, true)
    XCTAssertEqual(metrics["epochs"] as? Int, 3)
    XCTAssertEqual(metrics["n_cells"] as? Int, 1_000)
    XCTAssertNotNil(metrics["accuracy_bulk_labels"] as? Double)
    let saved = try AnnData.read(h5ad: "\(out)/adata.h5ad")
    XCTAssertNil(saved.X, "the folder keeps no copy of the counts")
    let streamedLatent = try latent(saved)
    XCTAssertEqual(streamedLatent.count, 1_000 * 4)
    XCTAssertEqual(try saved.obs.labels("predicted_bulk_labels").count, 1_000)

    // The streamed output pass equals the latent of the same cells read into memory.
    let predicted = scratch.appendingPathComponent("predicted.h5ad").path
    let predict = try singlecell(["atlas", "predict", out, first, "-o", predicted])
    XCTAssertEqual(predict.status, 0, predict.stderr)
    XCTAssertFalse(predict.stderr.contains("are missing from"), "reopening the training files warns again: \(predict.stderr)")
    let inMemory = try latent(try AnnData.read(h5ad: predicted))
    XCTAssertEqual(inMemory.count, 600 * 4)
    for (a, b) in zip(inMemory, streamedLatent.prefix(600 * 4)) { XCTAssertEqual(a, b, accuracy: 1e-5) }

    // Mapping onto the streamed reference reads its counts again from the files it trained on.
    let mapped = scratch.appendingPathComponent("mapped").path
    let map = try singlecell(["atlas", "map", out, second, "-o", mapped, "-k", "10"])
    XCTAssertEqual(map.status, 0, map.stderr)
    XCTAssertNotNil(try json("\(mapped)/metrics.json")["accuracy_knn_bulk_labels"] as? Double)

    // The same seed trains the same model.
    let again = scratch.appendingPathComponent("again").path
    XCTAssertEqual(try singlecell(arguments + ["-o", again]).status, 0)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(again)/model.safetensors")),
                   try Data(contentsOf: URL(fileURLWithPath: "\(out)/model.safetensors")))

    // Once the files it streamed from are gone, the folder says so.
    try FileManager.default.removeItem(atPath: second)
    let gone = try singlecell(["atlas", "predict", out, first, "-o", predicted])
    XCTAssertNotEqual(gone.status, 0)
    XCTAssertTrue(gone.stderr.contains("trained streaming from") && gone.stderr.contains("second.h5ad"), gone.stderr)
  }

  func testBackedCSCInputIsRefusedAndPreprocessConvertsIt() throws {
    var adata = try AnnData.read(h5ad: counts)
    guard case .sparse(let csr) = adata.X! else { return XCTFail("expected sparse X") }
    adata.X = .sparse(csr.switchedFormat())
    let csc = scratch.appendingPathComponent("csc.h5ad").path
    try adata.write(h5ad: csc)
    let out = scratch.appendingPathComponent("model").path
    let refused = try singlecell(["scvi", "train", csc, "--backed", "-o", out, "--max-steps", "2", "--quiet"])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.stderr.contains("CSC") && refused.stderr.contains("--to-csr"), refused.stderr)

    let converted = scratch.appendingPathComponent("converted.h5ad").path
    let preprocess = try singlecell(["preprocess", csc, "-o", converted, "--to-csr"])
    XCTAssertEqual(preprocess.status, 0, preprocess.stderr)
    let train = try singlecell(["scvi", "train", converted, "--backed", "--layer", "counts", "-o", out, "--max-steps", "2",
                                "--threads", "1", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
  }

  /// gzip streams libdeflate writes read the same with libhdf5's zlib filter, and the other way.
  func testGzipFromLibdeflateAndFromZlibReadTheSame() throws {
    let libdeflate = try simulate("libdeflate.h5ad", cells: 300, extra: ["--gzip", "4"])
    let zlib = scratch.appendingPathComponent("zlib.h5ad").path
    let write = try singlecell(["simulate", "atlas", "--profiles", counts, "--cells", "300", "--genes", "200", "--batches", "3",
                                "--block-rows", "700", "--copy-obs", "bulk_labels", "--seed", "0", "--gzip", "4", "-o", zlib],
                               environment: ["SINGLECELL_ZLIB": "1"])
    XCTAssertEqual(write.status, 0, write.stderr)
    XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: zlib)), try Data(contentsOf: URL(fileURLWithPath: libdeflate)),
                      "the two encoders should write different streams")
    let expected = try AnnData.read(h5ad: libdeflate).X
    XCTAssertEqual(try AnnData.read(h5ad: zlib).X, expected)
    let copy = scratch.appendingPathComponent("copy.h5ad").path
    let read = try singlecell(["preprocess", libdeflate, "-o", copy], environment: ["SINGLECELL_ZLIB": "1"])
    XCTAssertEqual(read.status, 0, read.stderr)
    XCTAssertEqual(try AnnData.read(h5ad: copy).X, expected)
  }
}
