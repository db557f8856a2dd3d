import Foundation
import XCTest

/// `info`, `preprocess` and `scvi`/`ldvae train` take a 10x Genomics matrix as scanpy users have
/// it (the .h5 file or the Matrix Market directory) as well as an .h5ad, chosen by its name.
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
}
