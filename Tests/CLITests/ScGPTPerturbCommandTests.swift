import CellData
import Foundation
import XCTest

/// `singlecell simulate perturbseq` on real control profiles, then `singlecell scgpt perturb`
/// with a small model: it must beat the "no change" and "mean perturbed profile" baselines on
/// held-out conditions (Pearson-delta on the top-20 DE genes), and write its outputs.
final class ScGPTPerturbCommandTests: CLITestCase {
  func testSimulatedPerturbSeqBeatsTheBaselines() throws {
    let sim = scratch.appendingPathComponent("sim.h5ad").path
    let made = try singlecell(["simulate", "perturbseq", "--profiles", try SharedData.path("pbmc_frozen_sorted_5k.h5ad"),
                               "--cells", "300", "--genes", "120", "--perturbed", "12", "--doubles", "10",
                               "--cells-per-condition", "20", "-o", sim])
    XCTAssertEqual(made.status, 0, made.stderr)
    let data = try AnnData.read(h5ad: sim)
    XCTAssertEqual(data.nObs, 300 + 22 * 20)
    XCTAssertEqual(data.nVars, 120)
    let conditions = try data.obs.labels("condition")
    XCTAssertEqual(conditions.filter { $0 == "ctrl" }.count, 300)
    XCTAssertEqual(Set(conditions.compactMap { $0 }.filter { $0.hasSuffix("+ctrl") }).count, 12)

    let genes = data.varNames
    let out = scratch.appendingPathComponent("perturb").path
    let run = try singlecell(["scgpt", "perturb", sim, "-o", out, "--epochs", "6", "--d-model", "64", "--nheads", "4", "--d-hid", "64",
                              "--nlayers", "2", "--lr", "1e-3", "--batch-size", "32", "--test-fraction", "0.3", "--threads", "2",
                              "--predict", "\(genes[0])+\(genes[1])"])
    XCTAssertEqual(run.status, 0, run.stderr)
    let metrics = try json(out + "/metrics.json")
    func score(_ who: String) throws -> Double {
      try XCTUnwrap((metrics[who] as? [String: Any])?["pearson_de_delta"] as? Double, who)
    }
    let model = try score("scgpt"), unchanged = try score("no_change"), mean = try score("mean_perturbed")
    XCTAssertGreaterThan(model, mean, "scGPT against the mean perturbed profile")
    XCTAssertGreaterThan(model, unchanged, "scGPT against no change")
    XCTAssertGreaterThan(model, 0.4)
    let tested = try XCTUnwrap(metrics["test_conditions"] as? [String])
    XCTAssertEqual(tested.count, 7, "30 % of 22 conditions")
    let rows = try String(contentsOfFile: out + "/metrics.csv", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(rows.count, 1 + 7 + 1, "header, one row per test condition, mean")
    let predictions = try String(contentsOfFile: out + "/predictions.csv", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(predictions.count, 2)
    XCTAssertEqual(predictions[1].split(separator: ",").count, 1 + 120)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/perturbation.png"))
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model/best_model.pt"))

    // Data-parallel: two ranks, each its own gene subsets (120 genes, 64 per minibatch).
    let ranks = scratch.appendingPathComponent("perturb-ddp").path
    let parallel = try singlecell(["scgpt", "perturb", sim, "-o", ranks, "--epochs", "2", "--d-model", "16", "--nheads", "2",
                                   "--d-hid", "16", "--nlayers", "1", "--batch-size", "32", "--max-length", "64", "--threads", "1",
                                   "--nproc", "2"])
    XCTAssertEqual(parallel.status, 0, parallel.stderr)
    let ddp = try json(ranks + "/metrics.json")
    XCTAssertEqual(ddp["ranks"] as? Int, 2)
    XCTAssertEqual(ddp["max_weight_difference_across_ranks"] as? Double, 0, "both ranks hold the same weights")
    XCTAssertEqual(parallel.stdout.components(separatedBy: "wrote ").count - 1, 1, "only rank 0 writes: \(parallel.stdout)")

    // Bad input: an unknown gene, a condition that does not parse; the output folder is left alone.
    for (bad, message) in [("NOTAGENE+ctrl", "unknown perturbation gene 'NOTAGENE'"), ("\(genes[0])++", "does not parse")] {
      let failed = try singlecell(["scgpt", "perturb", sim, "-o", out, "--epochs", "1", "--d-model", "16", "--nheads", "2",
                                   "--d-hid", "16", "--nlayers", "1", "--predict", bad])
      XCTAssertNotEqual(failed.status, 0)
      XCTAssertTrue(failed.stderr.contains(message), failed.stderr)
    }
    XCTAssertEqual(try json(out + "/metrics.json")["test_conditions"] as? [String], tested, "the earlier output is intact")
    let missing = try singlecell(["scgpt", "perturb", sim, "-o", out + "2", "--condition-key", "perturbation"])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.stderr.contains("no condition column 'perturbation'"), missing.stderr)
  }
}
