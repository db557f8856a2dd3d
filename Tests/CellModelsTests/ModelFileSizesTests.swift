import XCTest

@testable import CellModels
import Torch

/// The size checks of model files (`impliedWeightsFit`): a genuine network's own weights always
/// pass, also with many batches or labels; a size beyond the weights is refused before anything
/// of that size is built.
final class ModelFileSizesTests: XCTestCase {
  func testAtlasWithManyBatchesPassesAndALargerHiddenLayerDoesNot() throws {
    for dispersion in [AtlasDispersion.geneCell, .geneBatch] {
      var config = ScAtlasVAEConfig(nInput: 300, hiddenStacks: [16], nLatent: 4)
      config.nBatch = 2000
      config.nLabels = [500]
      config.dispersion = dispersion
      let weights = try ScAtlasVAENetwork(config: config).stateDict()
      XCTAssertNoThrow(try config.check(against: weights, file: "model.json"), "\(dispersion)")
      var larger = config
      larger.hiddenStacks = [16 * 1000]
      XCTAssertThrowsError(try larger.check(against: weights, file: "model.json")) { error in
        XCTAssertTrue("\(error)".contains("model.json") && "\(error)".contains("imply more weights"), "\(error)")
      }
    }
  }

  func testScviAndLdvaeWithManyBatchesAndLabelsPass() throws {
    for (kind, dispersion) in [(SCVIModel.Kind.scvi, Dispersion.geneLabel), (.ldvae, .geneBatch), (.scvi, .gene)] {
      let architecture = SCVIModel.Architecture(nHidden: 8, nLatent: 3, nLayers: 2, dispersion: dispersion)
      let config = architecture.config(kind: kind, nInput: 50, nBatch: 1000, nLabels: 1000)
      let prior = [Float](repeating: 0, count: 1000)
      let weights = try VAE(config: config, libraryLogMeans: prior, libraryLogVars: prior).stateDict()
      XCTAssertNoThrow(try SCVIModel.checkSizes(config, against: weights, file: "model.pt"), "\(kind) \(dispersion)")
      var larger = config
      larger.nLayers = 2000
      XCTAssertThrowsError(try SCVIModel.checkSizes(larger, against: weights, file: "model.pt"))
    }
  }

  func testSizesOutOfRangeOrOverflowingAreRefused() {
    let weights = StateDict([("w", Tensor.zeros([10]))])
    XCTAssertTrue(impliedWeightsFit(sizes: [10], blocks: { [[10, 4]] }, weights: weights))
    XCTAssertFalse(impliedWeightsFit(sizes: [-1], blocks: { [[1]] }, weights: weights))
    XCTAssertFalse(impliedWeightsFit(sizes: [Int.max], blocks: { XCTFail("not evaluated"); return [] }, weights: weights))
    XCTAssertFalse(impliedWeightsFit(sizes: [1 << 32], blocks: { [[1 << 32, 1 << 32]] }, weights: weights), "overflow")
    XCTAssertFalse(impliedWeightsFit(sizes: [100_000], blocks: { [[100_000, 1]] }, weights: weights))
  }
}
