import CellData
import Foundation
import XCTest

/// `info`, `preprocess`, `scvi`/`ldvae train` and the commands that apply a trained model to new
/// cells take a 10x Genomics matrix as scanpy users have it (the .h5 file or the Matrix Market
/// directory) as well as an .h5ad, chosen by its name.
final class InputCommandTests: CLITestCase {
  func testInfoAndPreprocessRead10xMatrices() throws {
    let fixtures = Self.repository.appendingPathComponent("tests/fixtures/celldata").path
    for input in ["\(fixtures)/tenx_v3.h5", "\(fixtures)/tenx_v3_mtx", "\(fixtures)/tenx_v2.h5"] {
      let info = try singlecell(["info", input])
      XCTAssertEqual(info.status, 0, info.stderr)
      XCTAssertTrue(info.stdout.contains("AnnData 20 obs × 30 vars"), info.stdout)
      XCTAssertTrue(info.stdout.contains("gene_ids"), info.stdout)
      let output = scratch.appendingPathComponent("out.h5ad").path
      let preprocess = try singlecell(["preprocess", input, "-o", output, "--normalize-total", "1e4", "--log1p"])
      XCTAssertEqual(preprocess.status, 0, preprocess.stderr)
      let written = try singlecell(["info", output])
      XCTAssertTrue(written.stdout.contains("AnnData 20 obs × 30 vars"), written.stdout)
      XCTAssertTrue(written.stdout.contains("counts"), written.stdout)  // the raw counts, kept as a layer
    }
    // A .h5 that is not a 10x matrix is an error naming the file.
    let notTenX = scratch.appendingPathComponent("model.h5").path
    try Data("not HDF5".utf8).write(to: URL(fileURLWithPath: notTenX))
    let refused = try singlecell(["info", notTenX])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.stderr.contains(notTenX), refused.stderr)
  }

  /// scvi-tools' tutorials train on a 10x matrix read with `read_10x_h5`; `scvi train` takes the
  /// file itself, and writes the embedding and the genes' 10x annotation into adata.h5ad.
  func testSCVITrainsOnA10xMatrix() throws {
    let fixtures = Self.repository.appendingPathComponent("tests/fixtures/celldata").path
    for input in ["\(fixtures)/tenx_v3.h5", "\(fixtures)/tenx_v3_mtx"] {
      let outdir = scratch.appendingPathComponent("scvi-\(URL(fileURLWithPath: input).lastPathComponent)").path
      let train = try singlecell(["scvi", "train", input, "-o", outdir, "--max-epochs", "2", "--n-latent", "3", "--quiet"])
      XCTAssertEqual(train.status, 0, train.stderr)
      let info = try singlecell(["info", "\(outdir)/adata.h5ad"])
      XCTAssertTrue(info.stdout.contains("AnnData 20 obs × 30 vars"), info.stdout)
      XCTAssertTrue(info.stdout.contains("X_scVI"), info.stdout)
      XCTAssertTrue(info.stdout.contains("gene_ids"), info.stdout)
    }
  }

  /// A model trained on an .h5ad with its raw counts in a layer embeds the same cells given as a
  /// 10x matrix (counts in X) to the same latent.
  func testTrainedModelsEmbedA10xMatrix() throws {
    let fixtures = Self.repository.appendingPathComponent("tests/fixtures/celldata").path
    let preprocessed = scratch.appendingPathComponent("pp.h5ad").path
    let preprocess = try singlecell(["preprocess", "\(fixtures)/tenx_v3.h5", "-o", preprocessed, "--normalize-total", "1e4", "--log1p"])
    XCTAssertEqual(preprocess.status, 0, preprocess.stderr)
    let model = scratch.appendingPathComponent("scvi").path
    let train = try singlecell(["scvi", "train", preprocessed, "--layer", "counts", "-o", model, "--max-epochs", "2",
                                "--n-latent", "3", "--quiet"])
    XCTAssertEqual(train.status, 0, train.stderr)
    var latents: [String] = [], warnings: [String] = []
    for (n, input) in [preprocessed, "\(fixtures)/tenx_v3.h5", "\(fixtures)/tenx_v3_mtx"].enumerated() {
      let csv = scratch.appendingPathComponent("latent\(n).csv").path
      let latent = try singlecell(["scvi", "latent", model, input, "-o", csv])
      XCTAssertEqual(latent.status, 0, latent.stderr)
      latents.append(try String(contentsOfFile: csv, encoding: .utf8))
      warnings.append(latent.stderr)
    }
    XCTAssertEqual(latents[0].split(separator: "\n").count, 21)
    XCTAssertEqual(latents[1], latents[0])
    // The fixture names two genes RBP7. The Matrix Market reader makes names unique (RBP7-1),
    // as scanpy's read_10x_mtx does, so the model's second RBP7 is missing there.
    XCTAssertTrue(warnings[2].contains("1 of the model's 30 genes are missing"), warnings[2])
    XCTAssertNotEqual(latents[2], latents[0])
    XCTAssertEqual(latents[2].split(separator: "\n").count, 21)
  }

  /// scGPT embeds the cells of a Matrix Market directory as it embeds the same cells' .h5ad.
  func testScGPTEmbedsA10xMatrix() throws {
    let cells = try AnnData.read(h5ad: counts)
    let directory = scratch.appendingPathComponent("mtx")
    try writeMatrixMarket(cells, to: directory)
    let model = Self.repository.appendingPathComponent("tests/fixtures/scgpt/model_folder").path
    var embeddings: [[Double]] = []
    for (n, input) in [counts, directory.path].enumerated() {
      let out = scratch.appendingPathComponent("scgpt\(n).h5ad").path
      let embed = try singlecell(["scgpt", "embed", model, input, "-o", out])
      XCTAssertEqual(embed.status, 0, embed.stderr)
      XCTAssertTrue(embed.stderr.contains("200 of 765 genes are in the vocabulary"), embed.stderr)
      let array = try denseObsm(out, "X_scGPT")
      XCTAssertEqual(array.shape, [700, 64])
      embeddings.append(try XCTUnwrap(array.data.doubles))
    }
    XCTAssertLessThan(zip(embeddings[0], embeddings[1]).map { abs($0 - $1) }.max()!, 1e-6)
  }

  /// `adata` as Cell Ranger's Matrix Market directory (genes × cells, integer counts).
  private func writeMatrixMarket(_ adata: AnnData, to directory: URL) throws {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let values = try XCTUnwrap(adata.X).denseDoubles()
    var entries: [String] = []
    for cell in 0..<adata.nObs {
      for gene in 0..<adata.nVars where values[cell * adata.nVars + gene] != 0 {
        entries.append("\(gene + 1) \(cell + 1) \(Int(values[cell * adata.nVars + gene]))")
      }
    }
    let header = ["%%MatrixMarket matrix coordinate integer general", "\(adata.nVars) \(adata.nObs) \(entries.count)"]
    let files = [
      "matrix.mtx": header + entries,
      "features.tsv": adata.varNames.map { "\($0)\t\($0)\tGene Expression" },
      "barcodes.tsv": adata.obsNames,
    ]
    for (name, lines) in files {
      try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: directory.appendingPathComponent(name))
    }
  }
}
