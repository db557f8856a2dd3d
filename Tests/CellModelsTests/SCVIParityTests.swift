import XCTest

@testable import CellModels
import Torch

/// The Swift VAE / LDVAE networks reproduce scvi-tools 1.4.2 (tests/fixtures/scvi/make_fixtures.py)
/// on real PBMC counts: scvi-tools' trained state dicts load strictly by name, and in eval mode
/// with z = qz mean the per-cell outputs, loss terms and gradients agree within 1e-4 relative.
final class SCVIParityTests: XCTestCase {
  /// pbmc68k_reduced restricted to 200 HVGs, batch key "half" (2 batches), bulk_labels (10 labels).
  let nGenes = 200

  /// Runs the deterministic forward and backward and compares everything the case recorded.
  func checkParity(_ name: String, _ config: VAEConfig, file: StaticString = #filePath, line: UInt = #line) throws {
    let fixture = try SCVICase(name)
    let vae = try fixture.loadedVAE(config)
    XCTAssertEqual(Set(vae.stateDict().keys), Set(fixture.state.keys), "state-dict keys", file: file, line: line)
    let (inference, generative, loss) = try vae.forward(fixture.input, sampling: .mean)

    func compare(_ actual: Tensor?, _ key: String, rtol: Double = 1e-4, atol: Double = 1e-6) {
      guard let actual else { return XCTFail("\(name): no value for \(key)", file: file, line: line) }
      assertClose(actual, fixture[key], rtol: rtol, atol: atol, "\(name) \(key)", file: file, line: line)
    }
    compare(inference.qzMean, "out.qz_mean")
    compare(inference.qzVariance, "out.qz_var")
    compare(inference.z, "out.z")
    compare(inference.library, "out.library")
    if fixture.io["out.ql_mean"] != nil {
      compare(inference.qlMean, "out.ql_mean")
      compare(inference.qlVariance, "out.ql_var")
    } else {
      XCTAssertNil(inference.qlMean, file: file, line: line)
    }
    // per-gene outputs were kept for rows 0..<8 (batch 0) and 32..<40 (batch 1)
    let pxRows = Tensor((Array(0..<8) + Array(32..<40)).map(Int64.init))
    func pxCells(_ t: Tensor) -> Tensor { t.indexSelect(dim: 0, index: pxRows) }
    compare(pxCells(generative.pxScale), "out.px_scale", atol: 1e-9)
    compare(pxCells(generative.pxRate), "out.px_rate", atol: 1e-7)
    if let theta = fixture.io["out.px_r"] {
      let ours = generative.pxR.rank == 1 ? generative.pxR.expand(theta.shape) : pxCells(generative.pxR)
      compare(ours, "out.px_r")
    }
    if fixture.io["out.px_dropout"] != nil { compare(pxCells(generative.pxDropout), "out.px_dropout", atol: 1e-5) }
    compare(loss.reconstructionLoss, "out.reconstruction_loss")
    compare(loss.klZ, "out.kl_z", atol: 1e-5)
    compare(loss.klL, "out.kl_l", atol: 1e-5)
    compare(loss.loss, "out.loss")

    loss.loss.backward()
    let parameters = Dictionary(uniqueKeysWithValues: vae.namedParameters())
    var checkedGradients = 0
    for (key, expected) in fixture.io where key.hasPrefix("grad.") {
      let name = String(key.dropFirst("grad.".count))
      guard let gradient = parameters[name]?.grad else {
        XCTFail("no gradient for \(name)", file: file, line: line)
        continue
      }
      assertClose(gradient, expected, rtol: 1e-3, atol: 1e-4 * (expected.abs().max().item()), "gradient of \(name)",
                  file: file, line: line)
      checkedGradients += 1
    }
    XCTAssertGreaterThanOrEqual(checkedGradients, 3, file: file, line: line)
  }

  func testSCVIZinbWithBatch() throws {
    try checkParity("scvi_zinb", VAEConfig(nInput: nGenes, nBatch: 2, dispersion: .gene, geneLikelihood: .zinb))
  }

  func testSCVILatentLibraryTwoLayersEncodedCovariates() throws {
    try checkParity("scvi_latent_library", VAEConfig(
      nInput: nGenes, nBatch: 2, nHidden: 32, nLatent: 6, nLayers: 2, dispersion: .geneBatch, geneLikelihood: .nb,
      encodeCovariates: true, useObservedLibSize: false))
  }

  func testSCVILogisticNormalPoissonGeneLabelLayerNorm() throws {
    try checkParity("scvi_ln_poisson", VAEConfig(
      nInput: nGenes, nBatch: 2, nLabels: 10, nHidden: 32, nLayers: 2, dispersion: .geneLabel,
      geneLikelihood: .poisson, latentDistribution: .logisticNormal, deeplyInjectCovariates: false,
      useBatchNorm: .encoder, useLayerNorm: .decoder))
  }

  func testSCVIGeneCellDispersionWithoutBatch() throws {
    try checkParity("scvi_gene_cell", VAEConfig(nInput: nGenes, nBatch: 1, nHidden: 32, dispersion: .geneCell))
  }

  func testLDVAEAndLoadings() throws {
    let config = VAEConfig.ldvae(nInput: nGenes, nBatch: 2)
    try checkParity("ldvae_nb", config)
    let fixture = try SCVICase("ldvae_nb")
    let loadings = try fixture.loadedVAE(config).loadings()
    XCTAssertEqual(loadings.shape, [nGenes, 10])
    assertClose(loadings, fixture["loadings"], rtol: 1e-5, atol: 1e-7, "LDVAE loadings")
  }

  func testLibraryPriorMatchesScviToolsBuffers() throws {
    for name in ["scvi_latent_library", "ldvae_nb"] {
      let fixture = try SCVICase(name)
      let prior = try VAE.libraryLogPrior(
        librarySizes: fixture["in.all_library_size"].toArray(Double.self),
        batchIndices: fixture["in.all_batch"].toArray(Int64.self).map(Int.init), nBatch: 2)
      assertClose(Tensor(prior.means, shape: [1, 2]), fixture.state["library_log_means"]!, rtol: 1e-6, "\(name) means")
      assertClose(Tensor(prior.vars, shape: [1, 2]), fixture.state["library_log_vars"]!, rtol: 1e-5, "\(name) vars")
    }
  }
}
