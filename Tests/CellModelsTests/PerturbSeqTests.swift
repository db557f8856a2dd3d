import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// Perturb-seq data (GEARS layout), the GEARS-style metrics, the simulation and the scGPT
/// perturbation model on synthetic controls.
final class PerturbSeqTests: XCTestCase {
  func testConditionsParseAsGEARSWritesThem() throws {
    XCTAssertEqual(try PerturbSeqData.parse("ctrl"), [])
    XCTAssertEqual(try PerturbSeqData.parse("KLF1+ctrl"), ["KLF1"])
    XCTAssertEqual(try PerturbSeqData.parse("ctrl+KLF1"), ["KLF1"])
    XCTAssertEqual(try PerturbSeqData.parse("MAP2K6+KLF1"), ["MAP2K6", "KLF1"])
    XCTAssertEqual(PerturbSeqData.canonical(["MAP2K6", "KLF1"]), "KLF1+MAP2K6")
    XCTAssertEqual(PerturbSeqData.canonical(["KLF1"]), "KLF1+ctrl")
    for bad in ["", "+", "A+", "+ctrl", "ctrl+ctrl", "A+A"] {
      XCTAssertThrowsError(try PerturbSeqData.parse(bad), bad)
    }
  }

  func testDataRejectsUnknownGenesAndMissingControls() throws {
    let genes = ["a", "b", "c"]
    XCTAssertThrowsError(try PerturbSeqData(genes: genes, expression: [Float](repeating: 1, count: 6), conditions: ["ctrl", "d+ctrl"])) {
      XCTAssertTrue("\($0)".contains("perturbs 'd'"), "\($0)")
    }
    XCTAssertThrowsError(try PerturbSeqData(genes: genes, expression: [Float](repeating: 1, count: 3), conditions: ["a+ctrl"])) {
      XCTAssertTrue("\($0)".contains("no control cells"), "\($0)")
    }
    let data = try PerturbSeqData(genes: genes, expression: [1, 2, 3, 1, 2, 3, 5, 2, 3, 6, 2, 3], conditions: ["ctrl", "ctrl", "a+ctrl", "ctrl+a"])
    XCTAssertEqual(data.perturbationConditions, ["a+ctrl"])
    XCTAssertEqual(data.perturbed[3], [0])
    XCTAssertEqual(data.differentiallyExpressedGenes(top: 1)["a+ctrl"], [0])
  }

  func testMetricsAreOneForAPerfectPredictionAndNaNForNoChange() throws {
    let control = [1.0, 2, 3, 4]
    let observed = ["x": [2.0, 2, 1, 5]]
    let perfect = try PerturbationMetrics(predicted: observed, observed: observed, control: control, deGenes: ["x": [0, 2, 3]])
    for v in perfect.mean.values { XCTAssertEqual(v, 1, accuracy: 1e-12) }
    let none = try PerturbationMetrics(predicted: ["x": control], observed: observed, control: control, deGenes: ["x": [0, 2, 3]])
    XCTAssertTrue(none.conditions[0].scores.pearsonDelta.isNaN, "a constant change has no correlation")
    XCTAssertEqual(pearsonCorrelation([1, 2, 3], [2, 4, 7]), 0.9933992677987828, accuracy: 1e-12)
    XCTAssertTrue(perfect.csv().hasPrefix("condition,pearson,pearson_delta,pearson_de,pearson_de_delta\nx,1,1,1,1\n"))
    XCTAssertThrowsError(try PerturbationMetrics(predicted: [:], observed: observed, control: control, deGenes: [:]))
  }

  /// Synthetic controls with two co-expression modules; training on some conditions and
  /// predicting a held-out double from its seen singles beats no change.
  func testModelLearnsSimulatedPerturbations() throws {
    Runtime.seed(0)
    var random = ScGPTRandom(seed: 3)
    let g = 24, n = 120
    var controls: [Float] = []
    for _ in 0..<n {
      let m1 = random.uniform() * 2, m2 = random.uniform() * 2
      for j in 0..<g { controls.append(Float(max(0, (j < 12 ? m1 : m2) + random.uniform() - 0.5))) }
    }
    var sim = PerturbSeqSimulation.Options()
    sim.perturbedGenes = 4
    sim.doubles = 2
    sim.cellsPerCondition = 15
    sim.programSize = 5
    let adata = try PerturbSeqSimulation.simulate(controls: controls, genes: (0..<g).map { "g\($0)" }, options: sim)
    let data = try PerturbSeqData(adata)
    XCTAssertEqual(data.perturbationConditions.count, 6)
    let double = try XCTUnwrap(data.perturbationConditions.first { !$0.hasSuffix("+ctrl") })
    var options = ScGPTPerturbationOptions()
    options.testConditions = [double]
    options.training.epochs = 8
    options.training.batchSize = 16
    options.training.learningRate = 2e-3
    options.architecture.dModel = 32
    options.architecture.nHead = 2
    options.architecture.dHid = 32
    options.architecture.nLayers = 1
    let model = try ScGPTPerturbation.train(data, options: options)
    XCTAssertEqual(model.testConditions, [double])
    XCTAssertEqual(model.trainConditions.count, 5)
    let losses = model.result.history.values("train_loss").compactMap { $0 }
    XCTAssertLessThan(losses.last!, losses.first!, "training lowers the loss")
    let evaluation = try ScGPTPerturbation.evaluate(model, data: data)
    XCTAssertGreaterThan(evaluation.model.mean.pearsonDEDelta, evaluation.baselines["no change"]!.mean.pearsonDEDelta)
    XCTAssertGreaterThan(evaluation.model.mean.pearsonDEDelta, 0.5)

    // Predictions need known genes and a perturbation model.
    XCTAssertThrowsError(try ScGPTPerturbation.predictConditions(folder: model.folder, data: data, conditions: ["zz+ctrl"])) {
      XCTAssertTrue("\($0)".contains("unknown perturbation gene 'zz'"), "\($0)")
    }
    let profiles = try ScGPTPerturbation.predictConditions(folder: model.folder, data: data, conditions: ["g0+ctrl"], pool: 10)
    XCTAssertEqual(profiles["g0+ctrl"]?.count, g)
    // bf16 autocast (the CLI's default on CUDA) learns the same way.
    var bf16 = options
    bf16.training.precision = .bfloat16
    Runtime.seed(0)
    let half = try ScGPTPerturbation.train(data, options: bf16)
    let halfLosses = half.result.history.values("train_loss").compactMap { $0 }
    XCTAssertTrue(halfLosses.allSatisfy(\.isFinite))
    XCTAssertLessThan(halfLosses.last!, halfLosses.first!, "training under bf16 lowers the loss")
    XCTAssertNotEqual(halfLosses, losses, "bf16 really ran")
    XCTAssertGreaterThan(try ScGPTPerturbation.evaluate(half, data: data, precision: .bfloat16).model.mean.pearsonDEDelta, 0.5)

    var options2 = options
    options2.testConditions = ["g99+ctrl"]
    XCTAssertThrowsError(try ScGPTPerturbation.train(data, options: options2)) { XCTAssertTrue("\($0)".contains("no cells"), "\($0)") }
  }
}
