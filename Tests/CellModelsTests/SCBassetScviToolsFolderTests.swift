import Foundation
import XCTest

@testable import CellModels
import Torch

/// scvi-tools 1.4.2 SCBASSET folders (tests/fixtures/scvi_folders/scbasset*, a tiny network on
/// 84 bp regions) open as an SCBASSET with the same cell embedding, cell bias and logits.
final class SCBassetScviToolsFolderTests: XCTestCase {
  func check(_ name: String, batches: [String]) throws {
    let model = try SCBASSET.importScviTools(fixtureURL("scvi_folders", name))
    let expected = try Safetensors.read(fixtureURL("scvi_folders", "\(name).expected.safetensors")).tensors
    XCTAssertEqual(model.cellNames.count, 40)
    XCTAssertEqual(model.config.sequenceLength, 84)
    XCTAssertEqual(model.batchCategories, batches)
    let latent = Tensor(model.latentRepresentation().flatMap { $0 }, shape: [40, 8])
    assertClose(latent, expected["latent"]!, rtol: 1e-5, atol: 1e-6, "\(name) cell embedding")
    assertClose(Tensor(model.cellBias()), expected["cell_bias"]!, rtol: 1e-5, atol: 1e-6, "\(name) cell bias")
    let logits = withNoGrad { model.network(codes: expected["dna_code"]!.to(.int64)) }
    assertClose(logits, expected["reconstruction_logits"]!, rtol: 1e-4, atol: 1e-5, "\(name) logits")
  }

  func testWithoutAndWithBatches() throws {
    try check("scbasset", batches: [])
    // common.make_scbasset_adata: var['batch'] is b0 for the first half of the cells, b1 after.
    try check("scbasset_batch", batches: ["b0", "b1"])
    XCTAssertThrowsError(try SCBASSET.importScviTools(fixtureURL("scvi_folders", "scvi"))) { error in
      XCTAssertTrue("\(error)".contains("SCVI"), "\(error)")
    }
  }
}

extension SCBassetScviToolsFolderTests {
  /// Exported again, the folder reads back with the same weights and setup (scvi-tools itself
  /// opens it: tests/fixtures/scvi_folders/swift_export_scbasset*.json).
  func testExportReadsBack() throws {
    for name in ["scbasset", "scbasset_batch"] {
      let model = try SCBASSET.importScviTools(fixtureURL("scvi_folders", name))
      let out = FileManager.default.temporaryDirectory.appendingPathComponent("scbasset-export-\(UUID())")
      defer { try? FileManager.default.removeItem(at: out) }
      try model.exportScviTools(to: out)
      let back = try SCBASSET.importScviTools(out)
      XCTAssertEqual(back.cellNames, model.cellNames)
      XCTAssertEqual(back.batchCategories, model.batchCategories)
      XCTAssertEqual(back.latentRepresentation(), model.latentRepresentation())
      XCTAssertEqual(back.cellBias(), model.cellBias())
    }
    XCTAssertEqual(try SCBASSET.growthFactor(288, [288, 323, 362, 406, 456, 512]), 1.122)  // scvi-tools' defaults
    XCTAssertThrowsError(try SCBASSET.growthFactor(16, [16, 40, 18]))
  }
}
