import Foundation
import XCTest

@testable import CellModels
import Torch

/// The perturbation model against scgpt 0.2.4's TransformerGenerator
/// (tests/fixtures/scgpt/make_generator_fixture.py: random weights, 4 cells × 20 genes with
/// perturbation flags, one cell with pad flags), eval mode.
final class ScGPTGeneratorParityTests: XCTestCase {
  func testForwardMatchesTheReference() throws {
    let io = try Safetensors.read(ScGPTFixtures.url("generator/io.safetensors")).tensors
    let batch = ScGPTBatch(geneIds: io["in.gene_ids"]!, values: io["in.values"]!, paddingMask: io["in.padding_mask"]!.to(.bool),
                           perturbationFlags: io["in.pert_flags"]!)
    for name in ["plain", "adaptive"] {
      let folder = try ScGPTModelFolder.load(ScGPTFixtures.url("generator/\(name)"))
      XCTAssertEqual(folder.report.missing, [], name)
      XCTAssertEqual(folder.report.unexpected, [], name)
      let config = folder.network.config
      XCTAssertEqual(config.perturbationPadId, 2)
      XCTAssertEqual(config.decoderAdaptiveBias, name == "adaptive")
      XCTAssertEqual(config.decoderActivation, name == "adaptive" ? .relu : nil)
      folder.network.eval()
      let out = try withNoGrad { try folder.network.forward(batch, heads: name == "adaptive" ? [.cls, .mvc] : [.cls]) }
      assertClose(out.mlmOutput, io["\(name).mlm_output"]!, "\(name) expression")
      assertClose(try XCTUnwrap(out.clsOutput), io["\(name).cls_output"]!, "\(name) classifier")
      if name == "adaptive" { assertClose(try XCTUnwrap(out.mvcOutput), io["adaptive.mvc_output"]!, "MVC") }

      // Flags are required and bounded.
      var missing = batch
      missing.perturbationFlags = nil
      XCTAssertThrowsError(try folder.network.forward(missing)) { XCTAssertTrue("\($0)".contains("perturbation flag per token"), "\($0)") }
      var outside = batch
      outside.perturbationFlags = (batch.perturbationFlags! + 1).to(.int64)
      XCTAssertThrowsError(try folder.network.forward(outside)) { XCTAssertTrue("\($0)".contains("outside 0…2"), "\($0)") }

      // Saved and loaded again: the same model.
      let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scgpt-generator-\(UUID().uuidString)")
      defer { try? FileManager.default.removeItem(at: dir) }
      try folder.save(to: dir)
      let again = try ScGPTModelFolder.load(dir)
      again.network.eval()
      XCTAssertEqual(again.network.config, config)
      assertClose(try withNoGrad { try again.network.forward(batch) }.mlmOutput, io["\(name).mlm_output"]!, "\(name) reloaded")
    }
  }
}
