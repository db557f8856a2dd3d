import XCTest

@testable import CellModels
import Torch

/// Bad configurations and inputs are thrown as `VAEError` with a clear message, before libtorch.
final class VAEInputErrorTests: XCTestCase {
  var vae: VAE!
  var counts: Tensor!

  override func setUpWithError() throws {
    vae = try VAE(config: VAEConfig(nInput: 5, nBatch: 2, nHidden: 8, nLatent: 3))
    counts = Tensor([1, 0, 3, 2, 5, 0, 1, 1, 4, 2] as [Float], shape: [2, 5])
  }

  func assertInputError(_ input: VAEInput, mentions text: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try vae.forward(input), file: file, line: line) { error in
      guard case VAEError.invalidInput(let message) = error else {
        return XCTFail("expected invalidInput, got \(error)", file: file, line: line)
      }
      XCTAssertTrue(message.contains(text), "'\(message)' should mention '\(text)'", file: file, line: line)
    }
  }

  func testValidInputRuns() throws {
    let out = try vae.forward(VAEInput(x: counts, batchIndex: Tensor([0, 1] as [Int64])))
    XCTAssertEqual(out.loss.reconstructionLoss.shape, [2])
    XCTAssertEqual(out.generative.pxRate.shape, [2, 5])
  }

  func testWrongGeneCount() {
    assertInputError(VAEInput(x: Tensor.ones([2, 4])), mentions: "4 genes, the model was built for 5")
  }

  func testNaNAndInfinity() {
    let nan = Tensor([1, .nan, 3, 2, 5, 0, 1, 1, 4, 2] as [Float], shape: [2, 5])
    assertInputError(VAEInput(x: nan), mentions: "NaN")
    let inf = Tensor([1, 1, 3, 2, 5, 0, 1, .infinity, 4, 2] as [Float], shape: [2, 5])
    assertInputError(VAEInput(x: inf), mentions: "infinite")
  }

  func testNegativeCountsAndNonMatrixInput() {
    assertInputError(VAEInput(x: counts * -1), mentions: "negative")
    assertInputError(VAEInput(x: Tensor.ones([5])), mentions: "cells × genes")
    assertInputError(VAEInput(x: Tensor.ones([2, 5], dtype: .int64)), mentions: "floating point")
  }

  func testEmptyCellWithObservedLibrary() {
    let x = Tensor([1, 0, 3, 2, 5, 0, 0, 0, 0, 0] as [Float], shape: [2, 5])
    assertInputError(VAEInput(x: x), mentions: "cell 1 has no counts")
  }

  func testBatchIndices() {
    assertInputError(VAEInput(x: counts, batchIndex: Tensor([0, 2] as [Int64])), mentions: "0..<2")
    assertInputError(VAEInput(x: counts, batchIndex: Tensor([0] as [Int64])), mentions: "shape [2]")
    assertInputError(VAEInput(x: counts, batchIndex: Tensor([0, 1] as [Float])), mentions: "integer")
  }

  func testGeneLabelDispersionNeedsLabels() throws {
    vae = try VAE(config: VAEConfig(nInput: 5, nLabels: 3, nHidden: 8, nLatent: 3, dispersion: .geneLabel))
    assertInputError(VAEInput(x: counts), mentions: "labels are needed")
    XCTAssertNoThrow(try vae.forward(VAEInput(x: counts, labels: Tensor([2, 0] as [Int64]))))
  }

  func testConfigurationErrors() {
    func assertConfigError(_ make: @autoclosure () throws -> VAE, _ text: String, line: UInt = #line) {
      XCTAssertThrowsError(try make(), line: line) { error in
        guard case VAEError.invalidConfig(let message) = error else { return XCTFail("got \(error)", line: line) }
        XCTAssertTrue(message.contains(text), "'\(message)' should mention '\(text)'", line: line)
      }
    }
    assertConfigError(try VAE(config: VAEConfig(nInput: 5, useObservedLibSize: false)), "libraryLogMeans")
    assertConfigError(try VAE(config: VAEConfig(nInput: 5, nBatch: 2, useObservedLibSize: false),
                              libraryLogMeans: [0], libraryLogVars: [1]), "2 values")
    assertConfigError(try VAE(config: VAEConfig(nInput: 5, dispersion: .geneBatch)), "gene-batch")
    assertConfigError(try VAE(config: VAEConfig(nInput: 0)), "nInput")
    assertConfigError(try VAE(config: VAEConfig(nInput: 5, dropoutRate: 1)), "dropoutRate")
    assertConfigError(try VAE(config: VAEConfig.ldvae(nInput: 5, dispersion: .geneCell), libraryLogMeans: [0],
                              libraryLogVars: [1]), "gene-cell")
    XCTAssertThrowsError(try vae.loadings())
  }

  func testDefaultsAreScviTools() throws {
    let scvi = VAEConfig(nInput: 10)
    XCTAssertEqual([scvi.nHidden, scvi.nLatent, scvi.nLayers], [128, 10, 1])
    XCTAssertEqual(scvi.dropoutRate, 0.1)
    XCTAssertEqual(scvi.geneLikelihood, .zinb)
    XCTAssertEqual(scvi.dispersion, .gene)
    XCTAssertEqual(scvi.useBatchNorm, .both)
    XCTAssertEqual(scvi.useLayerNorm, NormPlacement.none)
    XCTAssertTrue(scvi.useObservedLibSize && scvi.logVariational && scvi.deeplyInjectCovariates)
    XCTAssertFalse(scvi.encodeCovariates)
    let ldvae = VAEConfig.ldvae(nInput: 10)
    XCTAssertEqual(ldvae.geneLikelihood, .nb)
    XCTAssertFalse(ldvae.useObservedLibSize)
    XCTAssertEqual(ldvae.decoder, .linear(batchNorm: true, bias: false))
    // the encoders' batch norm: momentum 0.01, eps 1e-3
    let model = try VAE(config: scvi)
    let norm = try XCTUnwrap(model.zEncoder.encoder.blocks[0].layers[1] as? BatchNorm1d)
    XCTAssertEqual(norm.momentum, 0.01)
    XCTAssertEqual(norm.eps, 1e-3)
  }
}
