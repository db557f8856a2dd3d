import XCTest

@testable import CellModels
import Torch

/// Training-mode behaviour of the VAE networks: sampling, batch-norm statistics, gradients,
/// and that a few optimiser steps on real counts lower the loss.
final class VAETrainingModeTests: XCTestCase {
  func testTrainModeForwardBackwardReachesEveryUsedParameter() throws {
    let fixture = try SCVICase("scvi_zinb")
    let vae = try fixture.loadedVAE(VAEConfig(nInput: 200, nBatch: 2))
    vae.train()
    let bn = try XCTUnwrap(vae.stateDict()["z_encoder.encoder.fc_layers.Layer 0.1.running_mean"])
    let meanBefore = bn.clone()
    let tracked = try XCTUnwrap(vae.stateDict()["z_encoder.encoder.fc_layers.Layer 0.1.num_batches_tracked"])
    let trackedBefore = tracked.item()

    let (_, _, loss) = try vae.forward(fixture.input)
    XCTAssertTrue(loss.loss.item().isFinite)
    loss.loss.backward()
    for (name, parameter) in vae.namedParameters() {
      // gene dispersion: the decoder's gene-cell head is built (as in scvi-tools) but unused
      if name.hasPrefix("decoder.px_r_decoder") || name.hasPrefix("l_encoder") {
        XCTAssertNil(parameter.grad, "\(name) should get no gradient with observed library and gene dispersion")
        continue
      }
      let gradient = try XCTUnwrap(parameter.grad, "no gradient for \(name)")
      XCTAssertEqual(gradient.isfinite().all().item(), 1, "non-finite gradient for \(name)")
    }
    XCTAssertEqual(tracked.item(), trackedBefore + 1, "batch norm counts the training batch")
    XCTAssertGreaterThan((bn - meanBefore).abs().max().item(), 0, "running mean moves in training mode")
  }

  func testSamplingIsRandomAndTheMeanPathDeterministic() throws {
    let fixture = try SCVICase("ldvae_nb")
    let vae = try fixture.loadedVAE(.ldvae(nInput: 200, nBatch: 2))
    let drawn = [try vae.inference(fixture.input), try vae.inference(fixture.input)]
    XCTAssertGreaterThan((drawn[0].z - drawn[1].z).abs().max().item(), 1e-4)
    XCTAssertGreaterThan((drawn[0].library - drawn[1].library).abs().max().item(), 1e-4)
    let means = [try vae.inference(fixture.input, sampling: .mean), try vae.inference(fixture.input, sampling: .mean)]
    XCTAssertEqual(means[0].z.toArray(Float.self), means[1].z.toArray(Float.self))
    XCTAssertEqual(means[0].z.toArray(Float.self), means[0].qzMean.toArray(Float.self))
  }

  func testLogisticNormalLatentLiesOnTheSimplex() throws {
    let fixture = try SCVICase("scvi_ln_poisson")
    let vae = try fixture.loadedVAE(VAEConfig(
      nInput: 200, nBatch: 2, nLabels: 10, nHidden: 32, nLayers: 2, dispersion: .geneLabel, geneLikelihood: .poisson,
      latentDistribution: .logisticNormal, deeplyInjectCovariates: false, useBatchNorm: .encoder, useLayerNorm: .decoder))
    let z = try vae.inference(fixture.input).z
    XCTAssertGreaterThanOrEqual(z.min().item(), 0)
    assertClose(z.sum(dim: 1), Tensor.ones([64]), rtol: 1e-5, "rows of z sum to 1")
  }

  func testAdamStepsLowerTheLossOnRealCounts() throws {
    Runtime.seed(7)
    let fixture = try SCVICase("scvi_zinb")
    let vae = try VAE(config: VAEConfig(nInput: 200, nBatch: 2))
    func evalLoss() throws -> Double {
      vae.eval()
      defer { vae.train() }
      return try withNoGrad { try vae.forward(fixture.input, sampling: .mean).loss.loss.item() }
    }
    let before = try evalLoss()
    // scvi-tools' optimiser settings: Adam, lr 1e-3, eps 0.01, weight decay 1e-6
    let adam = Adam(vae.parameters, learningRate: 1e-3, eps: 0.01, weightDecay: 1e-6)
    vae.train()
    for _ in 0..<40 {
      adam.zeroGrad()
      try vae.forward(fixture.input).loss.loss.backward()
      adam.step()
    }
    let after = try evalLoss()
    XCTAssertLessThan(after, before * 0.95, "loss \(before) → \(after)")
  }

  func testTransformBatchDecodesAsTheGivenBatch() throws {
    let fixture = try SCVICase("scvi_zinb")
    let vae = try fixture.loadedVAE(VAEConfig(nInput: 200, nBatch: 2))
    let inferred = try vae.inference(fixture.input, sampling: .mean)
    let asIs = try vae.generative(z: inferred.z, library: inferred.library, batchIndex: fixture["in.batch"])
    let asBatch0 = try vae.generative(z: inferred.z, library: inferred.library, batchIndex: fixture["in.batch"],
                                      transformBatch: 0)
    // rows 0..<32 are batch 0: unchanged; rows 32..<64 are batch 1: decoded differently
    assertClose(asBatch0.pxScale.narrow(dim: 0, start: 0, length: 32), asIs.pxScale.narrow(dim: 0, start: 0, length: 32),
                rtol: 0, atol: 0, "batch-0 cells")
    let moved = (asBatch0.pxScale - asIs.pxScale).narrow(dim: 0, start: 32, length: 32).abs().max().item()
    XCTAssertGreaterThan(moved, 1e-6)
    XCTAssertThrowsError(try vae.generative(z: inferred.z, library: inferred.library, transformBatch: 2))
  }
}
