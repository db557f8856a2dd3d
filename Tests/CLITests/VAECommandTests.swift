import Foundation
import XCTest

/// `singlecell scvi|ldvae train/evaluate/de` end to end on the bundled PBMC counts (700 cells ×
/// 765 genes): the files and JSON the commands promise, the same model for the same seed, and
/// clear errors that leave an existing model folder as it was.
final class VAECommandTests: CLITestCase {

  func testSCVITrainEvaluateAndDifferentialExpression() throws {
    let out = scratch.appendingPathComponent("scvi").path
    let train = try singlecell(["scvi", "train", counts, "-o", out, "--labels-key", "bulk_labels", "--n-latent", "5",
                                "--n-hidden", "32", "--max-epochs", "3", "--seed", "0", "--threads", "1", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
    for name in ["model.safetensors", "model.json", "adata.h5ad", "history.csv", "metrics.json"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(name)"), "missing \(name)")
    }
    let metrics = try json("\(out)/metrics.json")
    XCTAssertEqual(metrics["epochs"] as? Int, 3)
    for key in ["train_seconds", "train_loss", "validation_loss"] {
      XCTAssertNotNil(metrics[key] as? Double, "metrics.json lacks \(key)")
    }
    let history = try String(contentsOfFile: "\(out)/history.csv", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(history.count, 4, "a header and one row per epoch")
    XCTAssertTrue(history[0].contains("reconstruction_loss_validation"))

    let info = try singlecell(["info", "\(out)/adata.h5ad"])
    XCTAssertTrue(info.stdout.contains("X_scVI: array float32 [700, 5]"), info.stdout)

    let evaluation = try singlecell(["scvi", "evaluate", out])
    XCTAssertEqual(evaluation.status, 0, evaluation.stderr)
    let scores = try JSONSerialization.jsonObject(with: Data(evaluation.stdout.utf8)) as? [String: Any] ?? [:]
    let reconstruction = try XCTUnwrap(scores["reconstruction_loss"] as? Double)
    let elbo = try XCTUnwrap(scores["elbo"] as? Double)
    XCTAssertGreaterThan(reconstruction, 0, "positive NLL")
    XCTAssertLessThan(elbo, 0, "scvi-tools' sign")
    XCTAssertEqual(scores["n_cells"] as? Int, 700)

    let table = "\(out)/de.csv"
    let de = try singlecell(["scvi", "de", out, "--groupby", "bulk_labels", "--group1", "CD19+ B", "-o", table])
    XCTAssertEqual(de.status, 0, de.stderr)
    let rows = try String(contentsOfFile: table, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(rows.count, 766, "a header and one row per gene")
    for column in ["gene", "bayes_factor", "lfc_mean", "is_de_fdr_0.05"] {
      XCTAssertTrue(rows[0].split(separator: ",").contains(Substring(column)), "DE table lacks \(column)")
    }
  }

  func testLDVAEWritesLoadings() throws {
    let out = scratch.appendingPathComponent("ldvae").path
    let train = try singlecell(["ldvae", "train", counts, "-o", out, "--n-latent", "4", "--max-epochs", "2",
                                "--seed", "0", "--threads", "1", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
    let loadings = try String(contentsOfFile: "\(out)/loadings.csv", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(loadings.count, 766, "a header and one row per gene")
    XCTAssertEqual(loadings[0].split(separator: ",", omittingEmptySubsequences: false), ["", "Z_0", "Z_1", "Z_2", "Z_3"],
                   "the gene column, then the four factors")
    let info = try singlecell(["info", "\(out)/adata.h5ad"])
    XCTAssertTrue(info.stdout.contains("X_ldvae: array float32 [700, 4]"), info.stdout)
    XCTAssertTrue(info.stdout.contains("ldvae_loadings"), info.stdout)
  }

  func testSameSeedSameModel() throws {
    func train(_ name: String) throws -> Data {
      let out = scratch.appendingPathComponent(name).path
      let run = try singlecell(["scvi", "train", counts, "-o", out, "--n-hidden", "32", "--max-epochs", "2",
                                "--seed", "7", "--threads", "1", "--quiet"])
      XCTAssertEqual(run.status, 0, run.stderr)
      return try Data(contentsOf: URL(fileURLWithPath: "\(out)/model.safetensors"))
    }
    XCTAssertEqual(try train("first"), try train("second"))
  }

  func testBadInputGivesClearErrorsAndKeepsTheModel() throws {
    let out = scratch.appendingPathComponent("model").path
    let train = try singlecell(["scvi", "train", counts, "-o", out, "--n-hidden", "32", "--max-epochs", "1",
                                "--seed", "0", "--threads", "1", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
    let model = try Data(contentsOf: URL(fileURLWithPath: "\(out)/model.safetensors"))

    let unknownKey = try singlecell(["scvi", "train", counts, "-o", out, "--batch-key", "no_such_column",
                                     "--max-epochs", "1", "--quiet"])
    XCTAssertNotEqual(unknownKey.status, 0)
    XCTAssertTrue(unknownKey.stderr.contains("no_such_column"), unknownKey.stderr)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(out)/model.safetensors")), model,
                   "a failed run must leave the existing model alone")

    let wrongGenes = try singlecell(["scvi", "evaluate", out, try SharedData.path("pbmc_two_batch.h5ad")])
    XCTAssertNotEqual(wrongGenes.status, 0)
    XCTAssertTrue(wrongGenes.stderr.lowercased().contains("gene"), wrongGenes.stderr)

    let missing = try singlecell(["scvi", "train", scratch.appendingPathComponent("absent.h5ad").path, "-o", out])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.stderr.contains("absent.h5ad"), missing.stderr)
  }

  func testSingleCellProfileWritesAChromeTraceOfTheRun() throws {
    let out = scratch.appendingPathComponent("profiled").path, trace = scratch.appendingPathComponent("trace.json").path
    let run = try singlecell(["scvi", "train", counts, "-o", out, "--n-hidden", "16", "--max-epochs", "1", "--quiet"],
                             environment: ["SINGLECELL_PROFILE": trace])
    XCTAssertEqual(run.status, 0, run.stderr)
    let events = try XCTUnwrap(try json(trace)["traceEvents"] as? [[String: Any]])
    let operators = Set(events.filter { $0["cat"] as? String == "cpu_op" }.compactMap { $0["name"] as? String })
    for name in ["aten::addmm", "aten::batch_norm", "aten::softmax", "AddmmBackward0"] { XCTAssertTrue(operators.contains(name), "\(name) in \(operators.sorted())") }
    // A rank of a data-parallel job writes its own trace.
    let ranked = try singlecell(["runtime"], environment: ["SINGLECELL_PROFILE": trace, "RANK": "1"])
    XCTAssertEqual(ranked.status, 0, ranked.stderr)
    XCTAssertTrue(FileManager.default.fileExists(atPath: scratch.appendingPathComponent("trace.rank1.json").path))
  }

  /// `runtime` reports the kernels chosen for attention and gzip, and the variables that switch them.
  func testRuntimeReportsAttentionAndGzipKernelsAndTheirSwitches() throws {
    let plain = try singlecell(["runtime"])
    XCTAssertEqual(plain.status, 0, plain.stderr)
    XCTAssertTrue(plain.stdout.contains("cudnn attention off") && plain.stdout.contains("hdf5 gzip libdeflate"), plain.stdout)
    let switched = try singlecell(["runtime"], environment: ["SINGLECELL_CUDNN_ATTENTION": "1", "SINGLECELL_ZLIB": "1"])
    XCTAssertEqual(switched.status, 0, switched.stderr)
    XCTAssertTrue(switched.stdout.contains("cudnn attention on") && switched.stdout.contains("hdf5 gzip zlib"), switched.stdout)
  }
}
