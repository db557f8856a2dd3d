import Foundation
import XCTest

@testable import CellModels
import Torch

/// DataSplit against scvi-tools' DataSplitter, KL warm-up, and the Trainer's early stopping,
/// divergence handling and history.
final class TrainingInfrastructureTests: XCTestCase {
  private struct Fixture: Decodable {
    struct Permutation: Decodable { let seed: UInt32; let n: Int; let permutation: [Int] }
    struct Split: Decodable {
      let n: Int; let train_size: Double?; let validation_size: Double?; let seed: UInt32
      let train: [Int]; let validation: [Int]; let test: [Int]
    }
    let permutations: [Permutation]
    let splits: [Split]
  }

  private func fixture() throws -> Fixture {
    try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixtureURL("training", "splits.json")))
  }

  func testPermutationMatchesNumpyRandomState() throws {
    for case_ in try fixture().permutations {
      var rng = NumpyRandomState(seed: case_.seed)
      XCTAssertEqual(rng.permutation(case_.n), case_.permutation, "seed \(case_.seed), n \(case_.n)")
    }
  }

  func testSplitMatchesScviToolsDataSplitter() throws {
    for s in try fixture().splits {
      let split = try DataSplit.random(count: s.n, trainSize: s.train_size, validationSize: s.validation_size, seed: s.seed)
      XCTAssertEqual(split.train, s.train, "n \(s.n) train_size \(String(describing: s.train_size))")
      XCTAssertEqual(split.validation, s.validation)
      XCTAssertEqual(split.test, s.test)
    }
  }

  func testSplitRejectsBadSizes() {
    XCTAssertThrowsError(try DataSplit.random(count: 0))
    XCTAssertThrowsError(try DataSplit.random(count: 10, trainSize: 0))
    XCTAssertThrowsError(try DataSplit.random(count: 10, trainSize: 1.5))
    XCTAssertThrowsError(try DataSplit.random(count: 10, trainSize: 0.8, validationSize: 0.5))
  }

  func testKLWarmupRampsLinearly() {
    let byEpoch = KLWarmup(epochs: 4)
    XCTAssertEqual((0..<6).map { byEpoch.weight(epoch: $0, step: 0) }, [0, 0.25, 0.5, 0.75, 1, 1])
    let bySteps = KLWarmup(epochs: nil, steps: 10, minWeight: 0.5, maxWeight: 1)
    XCTAssertEqual(bySteps.weight(epoch: 0, step: 5), 0.75, accuracy: 1e-12)
    XCTAssertEqual(bySteps.weight(epoch: 0, step: 12), 1)
    XCTAssertEqual(KLWarmup(epochs: nil).weight(epoch: 0, step: 0), 1)
  }

  /// A one-parameter module trained by a scripted loss.
  private final class Scalar: Module {
    let value = Tensor([Float(0)], shape: [1])
    override init() { super.init(); registerParameter("value", value) }
  }

  func testEarlyStoppingStopsAfterPatienceEpochsWithoutImprovement() throws {
    let losses: [Double] = [5, 4, 3, 3.5, 3.2, 3.1, 2, 1]
    let trainer = try Trainer(options: .init(
      maxEpochs: losses.count, earlyStopping: EarlyStopping(monitor: "validation_loss", patience: 3)))
    let history = try trainer.fit(Scalar()) { ["validation_loss": losses[$0]] }
    XCTAssertEqual(history.epochs.count, 6, "best 3 at epoch 2, three epochs without improvement")
    XCTAssertEqual(trainer.stopReason, "early_stopping")
  }

  func testEarlyStoppingMaxModeAndUnknownMetric() throws {
    let trainer = try Trainer(options: .init(maxEpochs: 10, earlyStopping: EarlyStopping(monitor: "auroc", mode: .max, patience: 2)))
    let aurocs = [0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.95, 0.96, 0.97]
    XCTAssertEqual(try trainer.fit(Scalar()) { ["auroc": aurocs[$0]] }.epochs.count, 7)
    let wrong = try Trainer(options: .init(maxEpochs: 3, earlyStopping: EarlyStopping(monitor: "nope")))
    XCTAssertThrowsError(try wrong.fit(Scalar()) { _ in ["loss": 1] }) { error in
      XCTAssertTrue("\(error)".contains("nope"), "\(error)")
    }
  }

  func testDivergenceRestoresLastGoodStateAndSavesCheckpoint() throws {
    let module = Scalar()
    let checkpoint = FileManager.default.temporaryDirectory.appendingPathComponent("diverged-\(UUID()).safetensors")
    defer { try? FileManager.default.removeItem(at: checkpoint) }
    let trainer = try Trainer(options: .init(maxEpochs: 10, checkpoint: checkpoint))
    XCTAssertThrowsError(try trainer.fit(module) { epoch in
      withNoGrad { module.value.copy_(Tensor([Float(epoch + 1)], shape: [1])) }
      return ["train_loss": epoch == 3 ? .nan : Double(10 - epoch)]
    }) { error in
      XCTAssertEqual(error as? TrainingError, .diverged(epoch: 3, metric: "train_loss", checkpoint: checkpoint.path))
      XCTAssertTrue("\(error)".contains("epoch 4"), "\(error)")
    }
    XCTAssertEqual(module.value.item(), 3, "state after the last finite epoch (epoch index 2)")
    XCTAssertEqual(trainer.history.epochs.count, 3)
    let saved = try Safetensors.read(checkpoint).tensors
    XCTAssertEqual(saved["value"]?.item(), 3)
  }

  func testHistoryCSV() throws {
    let trainer = try Trainer(options: .init(maxEpochs: 2))
    let history = try trainer.fit(Scalar()) { ["train_loss": Double($0) + 0.5, "elbo_validation": 2] }
    XCTAssertEqual(history.csv(), "epoch,elbo_validation,train_loss\n0,2.0,0.5\n1,2.0,1.5\n")
    XCTAssertThrowsError(try Trainer(options: .init(maxEpochs: 0)))
  }
}
