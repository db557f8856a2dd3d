import Foundation
import XCTest

@testable import CellModels
import Torch

/// The multi-omic model (modality tokens) against scgpt 0.2.4's MultiOmicTransformerModel
/// (tests/fixtures/scgpt/make_multiomic_fixture.py: random weights, 6 cells of genes and
/// proteins, two of them padded), in eval mode.
final class ScGPTMultiomicTests: XCTestCase {
  func testForwardMatchesTheReference() throws {
    let folder = try ScGPTModelFolder.load(ScGPTFixtures.url("multiomic"))
    XCTAssertEqual(folder.report.missing, [])
    XCTAssertEqual(folder.report.unexpected, [])
    let config = folder.network.config
    XCTAssertEqual(config.numModalities, 5)
    XCTAssertTrue(config.useBatchLabels && config.doMVC && config.doDAB && config.explicitZeroProb)
    folder.network.ecsThreshold = 0.8
    folder.network.eval()
    let io = try Safetensors.read(ScGPTFixtures.url("multiomic/io.safetensors")).tensors
    let batch = ScGPTBatch(geneIds: io["in.gene_ids"]!, values: io["in.values"]!, paddingMask: io["in.padding_mask"]!.to(.bool),
                           batchLabels: io["in.batch_labels"]!, modalityTypes: io["in.mod_types"]!)
    // The fixture ran under no_grad in eval mode: torch's fast path, zeros at padded positions.
    let out = try withNoGrad { try folder.network.forward(batch, heads: [.cls, .mvc, .ecs], zeroPaddedOutputs: true) }
    assertClose(out.cellEmbedding, io["out.cell_emb"]!, "cell embedding")
    assertClose(out.mlmOutput, io["out.mlm_output"]!, "expression decoder")
    assertClose(try XCTUnwrap(out.mlmZeroProbs), io["out.mlm_zero_probs"]!, "zero probabilities")
    assertClose(try XCTUnwrap(out.mvcOutput), io["out.mvc_output"]!, "MVC")
    assertClose(try XCTUnwrap(out.mvcZeroProbs), io["out.mvc_zero_probs"]!, "MVC zero probabilities")
    assertClose(try XCTUnwrap(out.clsOutput), io["out.cls_output"]!, "classifier")
    assertClose(try XCTUnwrap(out.dabOutput), io["out.dab_output"]!, "discriminator")
    assertClose(try XCTUnwrap(out.lossECS).reshape([1]), io["out.loss_ecs"]!, "ECS")
    let target = io["in.target"]!, positions = batch.values.eq(-1)
    assertClose(ScGPTLosses.maskedMSE(out.mlmOutput, target, mask: positions).reshape([1]), io["out.loss_gep"]!, "GEP")
    assertClose(ScGPTLosses.maskedMSE(out.mvcOutput!, target, mask: positions).reshape([1]), io["out.loss_gepc"]!, "GEPC")
    assertClose(ScGPTLosses.negLogBernoulli(out.mlmZeroProbs!, target, mask: positions).reshape([1]), io["out.loss_gep_zero"]!, "NLL")

    // The modality tokens are required, and must be in range.
    var missing = batch
    missing.modalityTypes = nil
    XCTAssertThrowsError(try folder.network.forward(missing)) { XCTAssertTrue("\($0)".contains("modality type per token"), "\($0)") }
    var outside = batch
    outside.modalityTypes = batch.modalityTypes! + 5
    XCTAssertThrowsError(try folder.network.forward(outside)) { XCTAssertTrue("\($0)".contains("outside the model's 5"), "\($0)") }

    // Saved and loaded again, the same model.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scgpt-multiomic-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    try folder.save(to: dir)
    let again = try ScGPTModelFolder.load(dir)
    again.network.eval()
    assertClose(try withNoGrad { try again.network.forward(batch, zeroPaddedOutputs: true) }.mlmOutput, io["out.mlm_output"]!, "reloaded")
  }
}
