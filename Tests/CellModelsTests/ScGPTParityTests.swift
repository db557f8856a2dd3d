import Foundation
import XCTest

@testable import CellModels
import Torch

/// The TransformerModel of scgpt 0.2.4 (2 layers, d 64, DSBN, batch labels, explicit zero
/// probabilities, MVC inner product, DAB) loaded from its model folder reproduces the
/// reference's eval-mode outputs, losses and gradients within 1e-4 relative.
final class ScGPTParityTests: XCTestCase {
  override func setUp() { Runtime.seed(0) }

  func testFolderLoadsEveryWeight() throws {
    let folder = try ScGPTFixtures.model()
    let c = folder.network.config
    XCTAssertEqual([c.ntoken, c.dModel, c.nHead, c.dHid, c.nLayers, c.nLayersCls, c.nCls], [203, 64, 4, 64, 2, 2, 5])
    XCTAssertEqual(c.batchNormalization, .domainSpecific)
    XCTAssertEqual(c.numBatchLabels, 2)
    XCTAssertTrue(c.explicitZeroProb && c.doMVC && c.doDAB && c.useBatchLabels)
    XCTAssertEqual(c.padValue, -2)
    XCTAssertEqual(folder.report.missing, [])
    XCTAssertEqual(folder.report.unexpected, [])
    XCTAssertEqual(folder.report.renamedWqkv, 0)
    let reference = try TorchFile.loadStateDict(ScGPTFixtures.url("model_folder/best_model.pt"))
    XCTAssertEqual(folder.network.stateDict().keys, reference.keys, "the reference's keys, in its order")
    XCTAssertEqual(folder.report.used.count, reference.count)
  }

  /// Case A: intermediate encodings, every head, the losses, and the gradients of
  /// GEP + GEPC + ECS with respect to the input embedding and to parameters.
  func testForwardLossesAndGradientsMatchReference() throws {
    let network = try ScGPTFixtures.model().network
    let batch = ScGPTFixtures.batch()
    var leaf: Tensor?
    let out = try network.forward(batch, heads: [.cls, .mvc, .ecs]) { total in
      // A zero leaf added to the input embedding: its gradient is the input embedding's.
      leaf = Tensor.zeros(total.shape).requiringGrad()
      return total + leaf!
    }
    let io = ScGPTFixtures.io
    assertClose(out.geneEmbeddings[0], io["out.gene_embs0"]!, "gene embeddings")
    assertClose(network.continuousValueEncoder!(batch.values)[0], io["out.value_embs0"]!, "value embeddings")
    let total = out.geneEmbeddings + network.continuousValueEncoder!(batch.values)
    let normed = try network.dsbn!(total.permute([0, 2, 1]), domain: 1).permute([0, 2, 1])
    assertClose(normed[0], io["out.dsbn_out0"]!, "DSBN output")
    assertClose(out.transformerOutput.narrow(dim: 0, start: 0, length: 8), io["out.transformer_output"]!, "transformer output")
    assertClose(out.cellEmbedding, io["out.cell_emb"]!, "cls cell embedding")
    assertClose(try network.cellEmbedding(out.transformerOutput, style: .avgPool), io["out.cell_emb_avg_pool"]!, "avg-pool")
    assertClose(try network.cellEmbedding(out.transformerOutput, weights: batch.values, style: .wPool),
                io["out.cell_emb_w_pool"]!, "w-pool")
    assertClose(out.mlmOutput, io["out.mlm_output"]!, "ExprDecoder prediction")
    assertClose(out.mlmZeroProbs!, io["out.mlm_zero_probs"]!, "ExprDecoder zero probabilities")
    assertClose(out.mvcOutput!, io["out.mvc_output"]!, "MVC prediction")
    assertClose(out.mvcZeroProbs!, io["out.mvc_zero_probs"]!, "MVC zero probabilities")
    assertClose(out.clsOutput!, io["out.cls_output"]!, "classifier logits")
    assertClose(out.dabOutput!, io["out.dab_output"]!, "discriminator logits")

    let target = io["in.target_values"]!, positions = io["in.masked_positions"]!
    let gep = ScGPTLosses.maskedMSE(out.mlmOutput, target, mask: positions)
    let gepc = ScGPTLosses.maskedMSE(out.mvcOutput!, target, mask: positions)
    let ecs = out.lossECS!
    let nzlp = ScGPTLosses.negLogBernoulli(out.mlmZeroProbs!, target, mask: positions)
    let mvcNzlp = ScGPTLosses.negLogBernoulli(out.mvcZeroProbs!, target, mask: positions)
    let dab = ScGPTLosses.crossEntropy(out.dabOutput!, batch.batchLabels!)
    let mre = ScGPTLosses.maskedRelativeError(out.mlmOutput, target, mask: positions)
    let sum = gep + gepc + ecs
    let tutorial = gep + nzlp + gepc + mvcNzlp + 10 * ecs + dab
    for (name, value) in [("gep", gep), ("gepc", gepc), ("ecs", ecs), ("nzlp", nzlp), ("mvc_nzlp", mvcNzlp), ("dab", dab),
                          ("mre", mre), ("sum", sum), ("tutorial_integration", tutorial)] {
      assertClose(value, io["loss.\(name)"]!, "loss \(name)")
    }

    sum.backward()
    assertClose(leaf!.grad!.narrow(dim: 0, start: 0, length: 8), io["grad.sum_embs"]!, "d loss / d input embedding")
    let parameters = Dictionary(uniqueKeysWithValues: network.namedParameters())
    for (key, expected) in io where key.hasPrefix("grad.param.") {
      let name = String(key.dropFirst("grad.param.".count))
      assertClose(parameters[name]!.grad!, expected, "gradient of \(name)")
    }
  }

  func testContrastiveLossMatchesReference() throws {
    let network = try ScGPTFixtures.model().network
    let out = try withNoGrad { try network.forward(ScGPTFixtures.batch(), heads: [.cce]) }
    assertClose(out.lossCCE!, ScGPTFixtures.io("loss.cce"), "CCE")
  }

  /// Parameter gradients of each term the integration adds to gep + gepc + ecs
  /// (make_term_gradients_fixture.py): the discriminator's cross-entropy through the gradient
  /// reversal, the two zero-probability NLLs, and the tutorial's whole loss.
  func testIntegrationTermGradientsMatchReference() throws {
    let expected = try Safetensors.read(ScGPTFixtures.url("term_gradients.safetensors")).tensors
    let io = ScGPTFixtures.io
    let (target, positions) = (io["in.target_values"]!, io["in.masked_positions"]!)
    for term in ["dab", "nzlp", "mvc_nzlp", "tutorial_integration"] {
      let network = try ScGPTFixtures.model().network
      let batch = ScGPTFixtures.batch(labels: "in.mixed.batch_labels")
      let out = try network.forward(batch, heads: [.mvc, .ecs])
      let parts = [
        "gep": ScGPTLosses.maskedMSE(out.mlmOutput, target, mask: positions),
        "gepc": ScGPTLosses.maskedMSE(out.mvcOutput!, target, mask: positions),
        "nzlp": ScGPTLosses.negLogBernoulli(out.mlmZeroProbs!, target, mask: positions),
        "mvc_nzlp": ScGPTLosses.negLogBernoulli(out.mvcZeroProbs!, target, mask: positions),
        "dab": ScGPTLosses.crossEntropy(out.dabOutput!, batch.batchLabels!),
      ]
      let loss = term == "tutorial_integration"
        ? parts["gep"]! + parts["nzlp"]! + parts["gepc"]! + parts["mvc_nzlp"]! + 10 * out.lossECS! + parts["dab"]!
        : parts[term]!
      assertClose(loss.reshape([1]), expected["\(term).loss"]!, "\(term) loss")
      loss.backward()
      let parameters = Dictionary(uniqueKeysWithValues: network.namedParameters())
      for (key, gradient) in expected where key.hasPrefix("\(term).") && key != "\(term).loss" {
        let name = String(key.dropFirst(term.count + 1))
        let grad = parameters[name]!.grad ?? Tensor.zeros(gradient.shape)
        if gradient.abs().max().item() == 0 {
          XCTAssertEqual(grad.abs().max().item(), 0, "\(term) must not reach \(name)")
        } else {
          assertClose(grad, gradient, "\(term): gradient of \(name)")
        }
      }
    }
  }

  /// The first cell's batch picks the DSBN layer for the whole minibatch; the batch embedding
  /// stays per cell.
  func testMixedBatchLabelsFollowReference() throws {
    let network = try ScGPTFixtures.model().network
    let batch = ScGPTFixtures.batch(labels: "in.mixed.batch_labels")
    let out = try withNoGrad { try network.forward(batch, heads: [.mvc]) }
    assertClose(out.cellEmbedding, ScGPTFixtures.io("out.mixed.cell_emb"), "cell embedding")
    assertClose(out.mlmOutput, ScGPTFixtures.io("out.mixed.mlm_output"), "prediction")
    assertClose(out.mvcOutput!, ScGPTFixtures.io("out.mixed.mvc_output"), "MVC")
  }

  /// Train mode with dropout 0: DSBN normalises with the minibatch's statistics (all B × L
  /// positions) and updates bns.1's running statistics.
  func testTrainModeBatchStatisticsMatchReference() throws {
    let network = try ScGPTFixtures.model { $0.dropout = 0 }.network
    network.train()
    let out = try withNoGrad { try network.forward(ScGPTFixtures.batch()) }
    assertClose(out.cellEmbedding, ScGPTFixtures.io("out.train.cell_emb"), "cell embedding")
    assertClose(out.mlmOutput, ScGPTFixtures.io("out.train.mlm_output"), "prediction")
    let bn = network.dsbn!.bns[1]
    assertClose(bn.runningMean!, ScGPTFixtures.io("out.train.dsbn1.running_mean"), "running mean")
    assertClose(bn.runningVar!, ScGPTFixtures.io("out.train.dsbn1.running_var"), "running var")
    XCTAssertEqual(bn.numBatchesTracked!.item(), ScGPTFixtures.io("out.train.dsbn1.num_batches_tracked").item())
  }

  /// Case B: padded cells (non-zero genes only). Grad-enabled outputs (the reference's slow path,
  /// where padded rows are ordinary transformer outputs).
  func testPaddedBatchMatchesReference() throws {
    let network = try ScGPTFixtures.model().network
    let batch = ScGPTFixtures.batch("B")
    let out = try network.forward(batch, heads: [.cls, .mvc, .ecs])
    let io = ScGPTFixtures.io
    assertClose(out.cellEmbedding, io["out.B.cell_emb"]!, "cls")
    assertClose(try network.cellEmbedding(out.transformerOutput, style: .avgPool), io["out.B.cell_emb_avg_pool"]!, "avg-pool")
    assertClose(try network.cellEmbedding(out.transformerOutput, weights: batch.values, style: .wPool), io["out.B.cell_emb_w_pool"]!, "w-pool")
    for (name, value) in [("mlm_output", out.mlmOutput), ("mlm_zero_probs", out.mlmZeroProbs!), ("mvc_output", out.mvcOutput!),
                          ("mvc_zero_probs", out.mvcZeroProbs!), ("cls_output", out.clsOutput!), ("dab_output", out.dabOutput!)] {
      assertClose(value, io["out.B.\(name)"]!, name)
    }
    let target = io["in.B.target_values"]!, positions = batch.values.eq(-1)
    assertClose(ScGPTLosses.maskedMSE(out.mlmOutput, target, mask: positions), io["loss.B.gep"]!, "gep")
    assertClose(ScGPTLosses.maskedMSE(out.mvcOutput!, target, mask: positions), io["loss.B.gepc"]!, "gepc")
    assertClose(out.lossECS!, io["loss.B.ecs"]!, "ecs")
    assertClose(ScGPTLosses.negLogBernoulli(out.mvcZeroProbs!, target, mask: positions), io["loss.B.mvc_nzlp"]!, "mvc nzlp")

    // torch's inference fast path (eval, no_grad): padded rows of the transformer output are 0.
    let fast = try withNoGrad { try network.forward(batch, zeroPaddedOutputs: true) }
    assertClose(try network.cellEmbedding(fast.transformerOutput, style: .avgPool), io["out.B.cell_emb_avg_pool_fastpath"]!, "avg-pool, fast path")
    assertClose(fast.mlmOutput, io["out.B.mlm_output_fastpath"]!, "prediction, fast path")
    assertClose(fast.cellEmbedding, io["out.B.cell_emb"]!, "cls, fast path")
  }

  /// The flash-attention naming (`self_attn.Wqkv.*`) loads to the same model.
  func testWqkvFolderGivesTheSameOutputs() throws {
    let folder = try ScGPTFixtures.model("model_folder_wqkv")
    XCTAssertEqual(folder.report.renamedWqkv, 4)
    XCTAssertEqual(folder.report.missing, [])
    XCTAssertEqual(folder.report.unexpected, [])
    let out = try withNoGrad { try folder.network.forward(ScGPTFixtures.batch(), heads: [.mvc, .ecs]) }
    let io = ScGPTFixtures.io
    assertClose(out.cellEmbedding, io["out.cell_emb"]!, "cls cell embedding")
    assertClose(try folder.network.cellEmbedding(out.transformerOutput, style: .avgPool), io["out.cell_emb_avg_pool"]!, "avg-pool")
    assertClose(out.mlmOutput, io["out.mlm_output"]!, "prediction")
    assertClose(out.mlmZeroProbs!, io["out.mlm_zero_probs"]!, "zero probabilities")
    assertClose(out.mvcOutput!, io["out.mvc_output"]!, "MVC")
    assertClose(out.dabOutput!, io["out.dab_output"]!, "discriminator")
    assertClose(out.lossECS!, io["loss.ecs"]!, "ecs")
  }

  /// embed_data's model (no batch labels, DSBN, zero probabilities or DAB: their weights are
  /// unexpected) on embed_data's recorded minibatches gives its cls outputs and embeddings.
  func testEmbedDataModelMatchesReference() throws {
    let folder = try ScGPTFixtures.model(skipMismatchedShapes: true) {
      $0.useBatchLabels = false
      $0.batchNormalization = .none
      $0.explicitZeroProb = false
      $0.doDAB = false
      $0.nCls = 1
    }
    let reference = ScGPTFixtures.cases["load_pretrained_into_embed_data_model"] as! [String: Any]
    XCTAssertEqual(Set(folder.report.used), Set(reference["kept"] as! [String]))
    XCTAssertEqual(Set(folder.report.mismatched), Set(reference["skipped_shape_mismatch"] as! [String]))
    XCTAssertTrue(folder.report.unexpected.contains("dsbn.bns.0.running_mean"))
    XCTAssertTrue(folder.report.unexpected.contains("decoder.zero_logit.0.weight"))
    var embeddings: [Tensor] = []
    for i in 0..<2 {
      let ids = ScGPTFixtures.io("emb.batch\(i).gene_ids")
      let batch = ScGPTBatch(geneIds: ids, values: ScGPTFixtures.io("emb.batch\(i).values"),
                             paddingMask: ids.eq(Double(folder.vocab["<pad>"]!)))
      let cls = try withNoGrad { try folder.network.encode(batch) }.select(dim: 1, index: 0)
      assertClose(cls, ScGPTFixtures.io("emb.batch\(i).cls_output"), "embed_data minibatch \(i)")
      embeddings.append(l2Normalized(cls))
    }
    assertClose(Tensor.cat(embeddings), ScGPTFixtures.io("emb.cell_embeddings"), "embed_data embeddings")
  }

  /// Same model, same input: the same embedding bit for bit.
  func testEmbeddingIsDeterministic() throws {
    let network = try ScGPTFixtures.model().network
    let a = try withNoGrad { try network.forward(ScGPTFixtures.batch("B")).cellEmbedding }.toArray(Float.self)
    let again = try ScGPTFixtures.model().network
    let b = try withNoGrad { try again.forward(ScGPTFixtures.batch("B")).cellEmbedding }.toArray(Float.self)
    XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
  }
}
