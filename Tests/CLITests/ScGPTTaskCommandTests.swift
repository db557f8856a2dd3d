import CellData
import Foundation
import XCTest

/// `singlecell scgpt annotate | integrate | predict` on real data (../shared/data), with small
/// models trained from scratch: floors well above chance, the outputs, and bad input.
final class ScGPTTaskCommandTests: CLITestCase {
  /// The bead-sorted PBMCs (the only labelled ones): split "train" and split "test".
  func sortedPBMCSplit() throws -> (train: String, test: String) {
    let all = try AnnData.read(h5ad: try SharedData.path("pbmc_frozen_sorted_5k.h5ad"))
    let labels = try all.obs.labels("cell_type"), split = try all.obs.labels("split")
    var paths: [String] = []
    for part in ["train", "test"] {
      let cells = labels.indices.filter { labels[$0] != nil && split[$0] == part }
      let path = scratch.appendingPathComponent("sorted_\(part).h5ad").path
      try all.subset(obs: cells).write(h5ad: path)
      paths.append(path)
    }
    return (paths[0], paths[1])
  }

  let small = ["--d-model", "32", "--nheads", "2", "--d-hid", "32", "--nlayers", "1", "--lr", "1e-3", "--threads", "2"]

  func testAnnotateSortedPBMCsThenPredictMapAndFindGenePrograms() throws {
    let (train, test) = try sortedPBMCSplit()
    let out = scratch.appendingPathComponent("annotate").path
    let run = try singlecell(["scgpt", "annotate", train, "--label-key", "cell_type", "--query", test, "-o", out,
                              "--n-hvg", "300", "--epochs", "4"] + small)
    XCTAssertEqual(run.status, 0, run.stderr)
    let metrics = try json(out + "/metrics.json")
    let accuracy = try XCTUnwrap(metrics["accuracy"] as? Double), f1 = try XCTUnwrap(metrics["macro_f1"] as? Double)
    // 9 sorted populations; the largest is 36 % of the cells.
    XCTAssertGreaterThan(accuracy, 0.6, "held-out accuracy")
    XCTAssertGreaterThan(f1, 0.3, "held-out macro-F1")
    XCTAssertEqual(metrics["n_query_labelled"] as? Int, 214)
    XCTAssertNotNil(metrics["macro_precision"] as? Double)
    XCTAssertNotNil(metrics["macro_recall"] as? Double)
    let confusion = try String(contentsOfFile: out + "/confusion_matrix.csv", encoding: .utf8).split(separator: "\n")
    let counted = confusion.dropFirst().map { $0.split(separator: ",").dropFirst().reduce(0) { $0 + Int($1)! } }.reduce(0, +)
    XCTAssertEqual(counted, 214, "every labelled query cell once")
    for file in ["best_model.pt", "args.json", "vocab.json", "history.csv", "query.h5ad", "confusion_matrix.png"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(file)"), file)
    }
    let query = try AnnData.read(h5ad: out + "/query.h5ad")
    XCTAssertEqual(try query.obs.labels("scgpt_prediction").compactMap { $0 }.count, 214)
    let probabilities = try query.obs.columnNames.filter { $0.hasPrefix("scgpt_probability_") }.map { try query.obs.doubles($0) }
    XCTAssertEqual(probabilities.count, 9)
    XCTAssertEqual((0..<9).reduce(0) { $0 + probabilities[$1][0] }, 1, accuracy: 1e-5, "probabilities of a cell sum to 1")

    // The folder labels the same cells again through `predict`.
    let predicted = scratch.appendingPathComponent("predicted.h5ad").path
    let again = try singlecell(["scgpt", "predict", out, test, "-o", predicted, "--label-key", "cell_type"])
    XCTAssertEqual(again.status, 0, again.stderr)
    XCTAssertTrue(again.stdout.contains(String(format: "accuracy %.4f", accuracy)), again.stdout)
    XCTAssertEqual(try AnnData.read(h5ad: predicted).obs.labels("scgpt_prediction"), try query.obs.labels("scgpt_prediction"))

    // Reference mapping with the same model: a 10-nearest-neighbour vote of the training cells.
    let mapped = scratch.appendingPathComponent("mapped.h5ad").path
    let map = try singlecell(["scgpt", "map", out, train, test, "--label-key", "cell_type", "-o", mapped])
    XCTAssertEqual(map.status, 0, map.stderr)
    let mapAccuracy = try XCTUnwrap(map.stdout.split(separator: " ").dropFirst().first.flatMap { Double($0.dropLast()) }, map.stdout)
    XCTAssertGreaterThan(mapAccuracy, 0.6, "mapped-label accuracy of the held-out cells")
    let confidence = try XCTUnwrap(try AnnData.read(h5ad: mapped).obs["scgpt_mapped_confidence"])
    XCTAssertEqual(confidence.length, 214)
    let noReferenceLabel = try singlecell(["scgpt", "map", out, test, test, "--label-key", "celltype", "-o", scratch.appendingPathComponent("x.h5ad").path])
    XCTAssertNotEqual(noReferenceLabel.status, 0)
    XCTAssertTrue(noReferenceLabel.stderr.contains("has no obs column 'celltype'"), noReferenceLabel.stderr)

    // Gene programs and networks of the model's genes, with the activity per cell type.
    let grn = scratch.appendingPathComponent("grn").path
    let programsRun = try singlecell(["scgpt", "grn", out, test, "-o", grn, "--resolution", "10", "--attention", "--max-cells", "50",
                                      "--top", "5", "--label-key", "cell_type"])
    XCTAssertEqual(programsRun.status, 0, programsRun.stderr)
    let modelGenes = Set(try json(out + "/args.json")["genes"] as? [String] ?? [])
    let rows = try String(contentsOfFile: grn + "/programs.csv", encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",") }
    var sizes: [Substring: Int] = [:]
    for row in rows {
      XCTAssertTrue(modelGenes.contains(String(row[1])), "\(row)")
      sizes[row[0], default: 0] += 1
    }
    XCTAssertFalse(sizes.isEmpty)
    XCTAssertTrue(sizes.values.allSatisfy { $0 >= 5 }, "programs have at least 5 genes: \(sizes)")
    XCTAssertEqual(Set(rows.map { $0[1] }).count, rows.count, "a gene is in one program")
    let edges = try String(contentsOfFile: grn + "/similarity_network.csv", encoding: .utf8).split(separator: "\n").dropFirst()
    XCTAssertTrue(edges.allSatisfy { Double($0.split(separator: ",")[2])! >= 0.5 })
    let attentionRows = try String(contentsOfFile: grn + "/attention_network.csv", encoding: .utf8).split(separator: "\n").count
    XCTAssertEqual(attentionRows, 1 + 5 * modelGenes.count, "5 targets per gene")
    let activityHeader = try String(contentsOfFile: grn + "/program_activity.csv", encoding: .utf8).split(separator: "\n")[0]
    XCTAssertEqual(activityHeader.split(separator: ",").count, 1 + 9, "one column per cell type")
    XCTAssertTrue(FileManager.default.fileExists(atPath: grn + "/program_activity.png"))
    let badGenes = scratch.appendingPathComponent("genes.txt")
    try "NOT_A_GENE\nALSO_NOT\n".write(to: badGenes, atomically: true, encoding: .utf8)
    let noGenes = try singlecell(["scgpt", "grn", out, test, "-o", scratch.appendingPathComponent("g2").path, "--genes", badGenes.path])
    XCTAssertNotEqual(noGenes.status, 0)
    XCTAssertTrue(noGenes.stderr.contains("none of the 2 genes is in the vocabulary"), noGenes.stderr)

    // Bad input: a label column the query lacks, a model that is not an annotation model.
    let none = scratch.appendingPathComponent("none.h5ad").path
    let noLabel = try singlecell(["scgpt", "predict", out, test, "-o", none, "--label-key", "celltype"])
    XCTAssertNotEqual(noLabel.status, 0)
    XCTAssertTrue(noLabel.stderr.contains("no obs column 'celltype'"), noLabel.stderr)
    let fixture = CLITestCase.repository.appendingPathComponent("tests/fixtures/scgpt/model_folder").path
    let wrongKind = try singlecell(["scgpt", "predict", fixture, test, "-o", none])
    XCTAssertNotEqual(wrongKind.status, 0)
    XCTAssertTrue(wrongKind.stderr.contains("not an annotation model"), wrongKind.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: none))
  }

  func testIntegrateCITESubsetWritesEmbeddingAndScores() throws {
    let data = try SharedData.path("neurips2021_bmmc_cite_subset.h5ad")
    let out = scratch.appendingPathComponent("integrate").path
    let run = try singlecell(["scgpt", "integrate", data, "--batch-key", "batch", "--label-key", "cell_type", "-o", out,
                              "--epochs", "4", "--max-length", "300"] + small)
    XCTAssertEqual(run.status, 0, run.stderr)
    let metrics = try json(out + "/metrics.json")
    let scib = try XCTUnwrap(metrics["scib"] as? [String: Double])
    // A random embedding of these 600 cells (41 types) scores ARI 0.001.
    XCTAssertGreaterThan(try XCTUnwrap(scib["leiden_ari"]), 0.05, "Leiden clusters follow the cell types")
    XCTAssertNotNil(metrics["bio_conservation"])
    XCTAssertNotNil(metrics["batch_correction"])
    let history = try String(contentsOfFile: out + "/history.csv", encoding: .utf8)
    XCTAssertTrue(history.hasPrefix("epoch,learning_rate,train_dab,train_ecs,train_gep,train_gep_zero,train_gepc,train_gepc_zero,train_loss"), history)
    let embedding = try denseObsm(out + "/embedded.h5ad", "X_scGPT")
    XCTAssertEqual(embedding.shape, [600, 32])
    for key in ["batch", "cell_type"] { XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/umap_\(key).png"), key) }
    XCTAssertEqual(try json(out + "/args.json")["include_zero_gene"] as? Bool, true, "the integration tutorial's tokens")

    // Bad input leaves no output: an absent batch column, a label column that is absent.
    let failed = scratch.appendingPathComponent("failed").path
    let noBatch = try singlecell(["scgpt", "integrate", data, "--batch-key", "donor", "-o", failed, "--epochs", "1"] + small)
    XCTAssertNotEqual(noBatch.status, 0)
    XCTAssertTrue(noBatch.stderr.contains("no batch column 'donor'"), noBatch.stderr)
    let noLabel = try singlecell(["scgpt", "integrate", data, "--batch-key", "batch", "--label-key", "celltype", "-o", failed] + small)
    XCTAssertNotEqual(noLabel.status, 0)
    XCTAssertTrue(noLabel.stderr.contains("no obs column 'celltype'"), noLabel.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: failed))
  }

  func testMultiomicCITESubsetScoresJointAndRNAEmbeddings() throws {
    let data = try SharedData.path("neurips2021_bmmc_cite_subset.h5ad")
    let out = scratch.appendingPathComponent("multiomic").path
    let run = try singlecell(["scgpt", "multiomic", data, "--batch-key", "batch", "--feature-key", "protein_counts",
                              "--label-key", "cell_type", "--compare-rna", "-o", out, "--epochs", "1", "--max-length", "120"] + small)
    XCTAssertEqual(run.status, 0, run.stderr)
    XCTAssertTrue(run.stdout.contains("RNA + Protein: bio conservation"), run.stdout)
    XCTAssertTrue(run.stdout.contains("RNA alone: bio conservation"), run.stdout)
    let metrics = try json(out + "/metrics.json")
    XCTAssertNotNil(metrics["bio_conservation"] as? Double)
    let rna = try XCTUnwrap(metrics["rna_only"] as? [String: Any])
    XCTAssertNotNil(rna["batch_correction"] as? Double)
    let args = try json(out + "/args.json")
    XCTAssertEqual((args["features"] as? [String])?.count, 134, "every antibody is a token")
    XCTAssertEqual(args["modalities"] as? [String], ["Protein", "RNA", "<pad>", "<cls>", "<eoc>"])
    XCTAssertEqual(args["use_mod"] as? Bool, true)
    let embedding = try denseObsm(out + "/embedded.h5ad", "X_scGPT")
    XCTAssertEqual(embedding.shape, [600, 32])

    // Bad input: an absent feature table; new cells without their proteins.
    let failed = scratch.appendingPathComponent("failed").path
    let noFeatures = try singlecell(["scgpt", "multiomic", data, "--batch-key", "batch", "--feature-key", "adt", "-o", failed] + small)
    XCTAssertNotEqual(noFeatures.status, 0)
    XCTAssertTrue(noFeatures.stderr.contains("no obsm['adt'] (obsm has: protein_counts)"), noFeatures.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: failed))
    let embed = try singlecell(["scgpt", "embed", out, data, "-o", scratch.appendingPathComponent("e.h5ad").path])
    XCTAssertNotEqual(embed.status, 0)
    XCTAssertTrue(embed.stderr.contains("a multi-omic model needs each cell's RNA and second modality together"), embed.stderr)
  }
}
