import Foundation
import XCTest

@testable import CellModels
import Torch

/// Generative pretraining's attention against the scGPT pretraining branch (dev-temp,
/// TransformerModel with use_generative_training; tests/fixtures/scgpt/generative, flash-attn
/// replaced by plain torch on CPU): 3 cells, 7 known and 5 generated genes with padding in both.
final class ScGPTGenerativeParityTests: XCTestCase {
  func fixture(preNorm: Bool = false) throws -> (ScGPTNetwork, StateDict) {
    let all = try Safetensors.read(ScGPTFixtures.url("generative/generative.safetensors")).tensors
    var config = ScGPTConfig(ntoken: 30, dModel: 32, nHead: 4, dHid: 64, nLayers: 2, padTokenId: 27)
    config.preNorm = preNorm
    config.padValue = -2
    config.dropout = 0
    config.doMVC = true
    config.generative = true
    let network = try ScGPTNetwork(config)
    var weights = StateDict()
    for (key, value) in all where !key.contains("in.") && !key.hasPrefix("out") && !key.hasPrefix("alt.") {
      weights[key.replacingOccurrences(of: ".Wqkv.", with: ".in_proj_")] = value
    }
    let (missing, unexpected) = try network.loadStateDict(weights, strict: false)
    XCTAssertEqual(unexpected, [])
    XCTAssertTrue(missing.allSatisfy { $0.hasPrefix("cls_decoder.") }, "\(missing)")
    network.eval()
    return (network, all)
  }

  func testForwardMatchesTheReferenceAndGeneratedGenesDoNotSeeEachOther() throws {
    let (network, io) = try fixture()
    let pcptPadding = io["in.pcpt_key_padding_mask"]!.to(.bool), genPadding = io["in.gen_key_padding_mask"]!.to(.bool)
    func run(_ genes: Tensor, cell: Tensor? = nil, predictKnown: Bool = true) throws -> ScGPTGenerativeOutput {
      try withNoGrad {
        try network.generativeForward(pcptGenes: io["in.pcpt_genes"]!, pcptValues: io["in.pcpt_values"]!, pcptPadding: pcptPadding,
                                      genGenes: genes, genPadding: genPadding, inputCellEmbedding: cell, predictKnown: predictKnown)
      }
    }
    let out = try run(io["in.gen_genes"]!)
    try assertTrainingOutputsUnchanged(try run(io["in.gen_genes"]!, predictKnown: false), out)
    // Known genes: compared where they are not padding (flash-attn zeroes padded rows' context).
    let valid = pcptPadding.logicalNot().unsqueeze(dim: 2).to(.float32)
    assertClose(out.pcptOutput * valid, io["out.pcpt_output"]! * valid, "known-gene output")
    assertClose(out.genOutput, io["out.gen_output"]!, "generated-gene output")
    assertClose(out.pcptPreds! * valid.squeeze(dim: 2), io["out.pcpt_preds"]! * valid.squeeze(dim: 2), "known-gene predictions")
    assertClose(out.genPreds, io["out.gen_preds"]!, "generated-gene predictions")
    assertClose(out.cellEmbedding, io["out.cell_emb"]!, "cell embedding")
    assertClose(try XCTUnwrap(out.mvcOutput), io["out.mvc_output"]!, "GEPC")

    // The second pass: the cell embedding in place of <cls>.
    let second = try run(io["in.gen_genes"]!, cell: out.cellEmbedding)
    assertClose(second.genOutput, io["out2.gen_output"]!, "second pass, generated")
    assertClose(second.genPreds, io["out2.gen_preds"]!, "second pass, predictions")
    assertClose(second.cellEmbedding, io["out2.cell_emb"]!, "second pass, cell embedding")

    // Changing one generated gene changes its own output only.
    let alt = try run(io["in.gen_genes_alt"]!)
    assertClose(alt.genOutput, io["alt.gen_output"]!, "changed input, generated")
    let changed = (alt.genOutput - out.genOutput).abs().max([2])  // [B, G]
    let values = changed.toArray(Float.self)
    for (i, v) in values.enumerated() {
      if i == 0 * 5 + 2 { XCTAssertGreaterThan(v, 0.1) } else { XCTAssertEqual(v, 0, "generated gene \(i) changed") }
    }
    XCTAssertEqual((alt.pcptOutput - out.pcptOutput).abs().max().item(), 0)
    XCTAssertEqual((alt.cellEmbedding - out.cellEmbedding).abs().max().item(), 0)

    XCTAssertThrowsError(try network.generativeForward(pcptGenes: io["in.pcpt_genes"]!, pcptValues: io["in.pcpt_values"]!,
                                                       pcptPadding: pcptPadding, genGenes: io["in.gen_genes"]! + 40,
                                                       genPadding: genPadding)) { XCTAssertTrue("\($0)".contains("vocabulary"), "\($0)") }
  }

  /// Pre-norm (no reference fixture: the same weights with norm_scheme "pre"): the known genes
  /// go through the plain pre-norm encoder; each generated gene follows the reference's pre-norm
  /// branch (residual from the normalised input, norm before the feed-forward) over attention to
  /// the known genes and itself, written out here with an explicit mask over [known; generated].
  func testPreNormKnownGenesAreThePlainEncoderAndGeneratedGenesFollowTheReferenceBranch() throws {
    let (network, io) = try fixture(preNorm: true)
    let pcptPadding = io["in.pcpt_key_padding_mask"]!.to(.bool), genPadding = io["in.gen_key_padding_mask"]!.to(.bool)
    let (pcptGenes, pcptValues, genGenes) = (io["in.pcpt_genes"]!, io["in.pcpt_values"]!, io["in.gen_genes"]!)
    try withNoGrad {
      let out = try network.generativeForward(pcptGenes: pcptGenes, pcptValues: pcptValues, pcptPadding: pcptPadding,
                                              genGenes: genGenes, genPadding: genPadding)
      var pcpt = network.encoder(pcptGenes) + network.continuousValueEncoder!(pcptValues)
      var gen = network.encoder(genGenes) + network.generativeFlag!.weight.select(dim: 0, index: 1)
      let (b, p, g) = (pcpt.size(0), pcpt.size(1), gen.size(1))
      // Keys of generated gene j: the unpadded known genes and j itself (unless padded).
      var allowed = [Bool]()
      for cell in 0..<b {
        let known = pcptPadding.select(dim: 0, index: cell).to(.int64).toArray(Int64.self).map { $0 != 0 }
        let padded = genPadding.select(dim: 0, index: cell).to(.int64).toArray(Int64.self).map { $0 != 0 }
        for j in 0..<g { allowed += known.map { !$0 } + (0..<g).map { $0 == j && !padded[j] } }
      }
      let mask = Tensor(bools: allowed, shape: [b, 1, g, p + g])
      for layer in network.transformerEncoder.layers.modules {
        let a = layer.selfAttention, d = 32, h = 4
        let normed = layer.norm1(Tensor.cat([pcpt, gen], dim: 1))
        let qkv = Functional.linear(normed, weight: a.inProjWeight, bias: a.inProjBias)
        func heads(_ x: Tensor) -> Tensor { x.reshape([b, x.size(1), h, d / h]).transpose(1, 2) }
        let q = heads(qkv.narrow(dim: 1, start: p, length: g).narrow(dim: 2, start: 0, length: d))
        let k = heads(qkv.narrow(dim: 2, start: d, length: d)), v = heads(qkv.narrow(dim: 2, start: 2 * d, length: d))
        let attended = Functional.scaledDotProductAttention(q, k, v, mask: mask).transpose(1, 2).reshape([b, g, d])
        let x = layer.norm2(normed.narrow(dim: 1, start: p, length: g) + attended)
        let nextGen = x + layer.linear2(layer.linear1(x).relu())
        pcpt = layer(pcpt, srcKeyPaddingMask: pcptPadding)
        gen = nextGen
      }
      let valid = pcptPadding.logicalNot().unsqueeze(dim: 2).to(.float32)
      assertClose(out.pcptOutput * valid, pcpt * valid, "known genes: the plain pre-norm encoder")
      assertClose(out.genOutput, gen, "generated genes: the reference's pre-norm branch")
      try assertTrainingOutputsUnchanged(
        try network.generativeForward(pcptGenes: pcptGenes, pcptValues: pcptValues, pcptPadding: pcptPadding, genGenes: genGenes,
                                      genPadding: genPadding, predictKnown: false), out)
    }
  }

  /// Without the known genes' predictions the last layer computes the known genes at `<cls>`
  /// only and GEPC covers the generated genes; what the losses read is unchanged.
  private func assertTrainingOutputsUnchanged(_ lean: ScGPTGenerativeOutput, _ full: ScGPTGenerativeOutput) throws {
    XCTAssertNil(lean.pcptPreds)
    XCTAssertEqual(lean.pcptOutput.shape, [full.pcptOutput.size(0), 1, full.pcptOutput.size(2)])
    assertClose(lean.pcptOutput, full.pcptOutput.narrow(dim: 1, start: 0, length: 1), "<cls> output", tolerance: 1e-5)
    assertClose(lean.genOutput, full.genOutput, "generated output", tolerance: 1e-5)
    assertClose(lean.genPreds, full.genPreds, "generated predictions", tolerance: 1e-5)
    let generated = full.genOutput.size(1)
    assertClose(try XCTUnwrap(lean.mvcOutput), try XCTUnwrap(full.mvcOutput).narrow(dim: 1, start: full.pcptOutput.size(1), length: generated),
                "GEPC of the generated genes", tolerance: 1e-5)
  }
}
