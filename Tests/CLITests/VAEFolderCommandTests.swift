import CellData
import Foundation
import XCTest

/// The model-folder verbs of a scvi-tools user (embed, latent, map, normalize, sample,
/// loadings) on the bundled PBMC counts, with queries whose genes come in another order.
final class VAEFolderCommandTests: CLITestCase {
  /// A trained scVI folder (batch key "half") and the full data with the batch column.
  private func trainedModel(_ kind: String = "scvi") throws -> (model: String, data: AnnData) {
    var full = try AnnData.read(h5ad: counts)
    try full.obs.set("half", .categorical(Categorical((0..<700).map { $0 < 350 ? "first" : "second" })))
    let reference = scratch.appendingPathComponent("reference.h5ad").path
    try full.write(h5ad: reference)
    let model = scratch.appendingPathComponent(kind).path
    let train = try singlecell([kind, "train", reference, "-o", model, "--batch-key", "half", "--n-hidden", "32",
                                "--n-latent", "4", "--max-epochs", "2", "--seed", "0", "--threads", "1", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
    return (model, full)
  }

  /// `data`'s cells `cells` with the genes reversed and the first `drop` left out.
  private func query(_ data: AnnData, cells: [Int], drop: Int, name: String) throws -> String {
    let path = scratch.appendingPathComponent(name).path
    try data.subset(obs: cells, vars: Array((drop..<data.nVars).reversed())).write(h5ad: path)
    return path
  }

  func testEmbedAndLatentMatchGenesByName() throws {
    let (model, full) = try trainedModel()
    let reordered = try query(full, cells: Array(0..<100), drop: 0, name: "reordered.h5ad")
    let out = scratch.appendingPathComponent("embedded.h5ad").path
    let embed = try singlecell(["scvi", "embed", model, reordered, "-o", out])
    XCTAssertEqual(embed.status, 0, embed.stderr)
    XCTAssertFalse(embed.stderr.contains("missing"), embed.stderr)
    let embedded = try AnnData.read(h5ad: out)
    guard case .dense(let latent) = try XCTUnwrap(embedded.obsm["X_scVI"]) else { return XCTFail("X_scVI is not dense") }
    XCTAssertEqual(latent.shape, [100, 4])

    // The same cells in the model's own gene order give the same latent.
    let csv = scratch.appendingPathComponent("latent.csv").path
    let latentRun = try singlecell(["scvi", "latent", model, "-o", csv])
    XCTAssertEqual(latentRun.status, 0, latentRun.stderr)
    let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(rows.count, 701)
    XCTAssertEqual(rows[0], ",X_scVI_0,X_scVI_1,X_scVI_2,X_scVI_3")
    let first = rows[1].split(separator: ",").dropFirst().map { Double($0)! }
    let embeddedFirst = (latent.data.doubles ?? [])[0..<4]
    for (a, b) in zip(first, embeddedFirst) { XCTAssertEqual(a, b, accuracy: 1e-5) }

    let partial = try query(full, cells: Array(0..<50), drop: 12, name: "partial.h5ad")
    let warned = try singlecell(["scvi", "embed", model, partial, "-o", out])
    XCTAssertEqual(warned.status, 0, warned.stderr)
    XCTAssertTrue(warned.stderr.contains("12 of the model's 765 genes are missing"), warned.stderr)

    let badBatch = try singlecell(["scvi", "embed", model, reordered, "-o", out, "--batch", "third"])
    XCTAssertNotEqual(badBatch.status, 0)
    XCTAssertTrue(badBatch.stderr.contains("'third' is not one of the model's batches"), badBatch.stderr)
    let noBatchColumn = try singlecell(["scvi", "embed", model, counts, "-o", out])
    XCTAssertTrue(noBatchColumn.stderr.contains("--batch"), noBatchColumn.stderr)
    let withBatch = try singlecell(["scvi", "embed", model, counts, "-o", out, "--batch", "second"])
    XCTAssertEqual(withBatch.status, 0, withBatch.stderr)
    let wrongKind = try singlecell(["ldvae", "embed", model, reordered, "-o", out])
    XCTAssertTrue(wrongKind.stderr.contains("holds a scvi model"), wrongKind.stderr)
    var foreign = try full.subset(obs: Array(0..<20))
    foreign.var = DataFrame(index: full.varNames.map { "x-\($0)" })
    let foreignPath = scratch.appendingPathComponent("foreign.h5ad").path
    try foreign.write(h5ad: foreignPath)
    let noShared = try singlecell(["scvi", "embed", model, foreignPath, "-o", out])
    XCTAssertTrue(noShared.stderr.contains("shares none"), noShared.stderr)
  }

  func testMapNormalizeAndSample() throws {
    let (model, full) = try trainedModel()
    var queryData = full
    try queryData.obs.set("half", .categorical(Categorical(Array(repeating: "query", count: 700))))
    let queryPath = try query(queryData, cells: Array(600..<700), drop: 5, name: "query.h5ad")
    let mapped = scratch.appendingPathComponent("mapped").path
    let map = try singlecell(["scvi", "map", model, queryPath, "-o", mapped, "--max-epochs", "2", "--quiet"])
    XCTAssertEqual(map.status, 0, map.stderr)
    let metrics = try json("\(mapped)/metrics.json")
    XCTAssertEqual(metrics["batches"] as? [String], ["first", "second", "query"])
    XCTAssertTrue(FileManager.default.fileExists(atPath: "\(mapped)/adata.h5ad"))

    let normalizedPath = scratch.appendingPathComponent("normalized.h5ad").path
    let cells = try query(full, cells: Array(0..<30), drop: 0, name: "cells.h5ad")
    let normalize = try singlecell(["scvi", "normalize", model, cells, "-o", normalizedPath, "--library-size", "10000",
                                    "--transform-batch", "first", "--n-samples", "2"])
    XCTAssertEqual(normalize.status, 0, normalize.stderr)
    let normalized = try AnnData.read(h5ad: normalizedPath)
    XCTAssertEqual(normalized.varNames, full.varNames, "written over the model's genes")
    let values = try XCTUnwrap(normalized.layers["scvi_normalized"]).denseDoubles()
    XCTAssertEqual(values[0..<765].reduce(0, +), 10000, accuracy: 1)

    let sampledPath = scratch.appendingPathComponent("sampled.h5ad").path
    let sample = try singlecell(["scvi", "sample", model, cells, "-o", sampledPath])
    XCTAssertEqual(sample.status, 0, sample.stderr)
    let sampled = try XCTUnwrap(try AnnData.read(h5ad: sampledPath).layers["scvi_sample"]).denseDoubles()
    XCTAssertEqual(sampled.count, 30 * 765)
    XCTAssertTrue(sampled.allSatisfy { $0 >= 0 && $0.rounded() == $0 })
    let badTransform = try singlecell(["scvi", "normalize", model, cells, "-o", normalizedPath, "--transform-batch", "nope"])
    XCTAssertTrue(badTransform.stderr.contains("nope"), badTransform.stderr)
  }

  func testExportToScviToolsAndImportBackGiveTheSameLatent() throws {
    for kind in ["scvi", "ldvae"] {
      let (model, _) = try trainedModel(kind)
      let exported = scratch.appendingPathComponent("\(kind)-scvi-tools").path
      let export = try singlecell([kind, "export", model, "-o", exported, "--format", "scvi-tools"])
      XCTAssertEqual(export.status, 0, export.stderr)
      XCTAssertTrue(FileManager.default.fileExists(atPath: "\(exported)/model.pt"))
      let reimported = scratch.appendingPathComponent("\(kind)-back").path
      let noData = try singlecell([kind, "import", exported, "-o", reimported])
      XCTAssertTrue(noData.stderr.contains("--data"), noData.stderr)
      let other = kind == "scvi" ? "ldvae" : "scvi"
      let wrongKind = try singlecell([other, "import", exported, "-o", reimported, "--data", "\(model)/adata.h5ad"])
      XCTAssertTrue(wrongKind.stderr.contains("use `singlecell \(kind) import`"), wrongKind.stderr)
      let back = try singlecell([kind, "import", exported, "-o", reimported, "--data", "\(model)/adata.h5ad"])
      XCTAssertEqual(back.status, 0, back.stderr)
      var latents: [String] = []
      for folder in [model, reimported] {
        let csv = scratch.appendingPathComponent("\(UUID()).csv").path
        let run = try singlecell([kind, "latent", folder, "-o", csv])
        XCTAssertEqual(run.status, 0, run.stderr)
        latents.append(try String(contentsOfFile: csv, encoding: .utf8))
      }
      XCTAssertEqual(latents[0], latents[1], "\(kind): same weights, same latent")
    }
    let bad = try singlecell(["scvi", "export", scratch.path, "-o", scratch.appendingPathComponent("x").path])
    XCTAssertNotEqual(bad.status, 0)
  }

  func testLDVAELoadingsCSV() throws {
    let (model, _) = try trainedModel("ldvae")
    let csv = scratch.appendingPathComponent("loadings.csv").path
    let run = try singlecell(["ldvae", "loadings", model, "-o", csv])
    XCTAssertEqual(run.status, 0, run.stderr)
    let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(rows.count, 766)
    XCTAssertEqual(rows[0], ",Z_0,Z_1,Z_2,Z_3")
  }
}
