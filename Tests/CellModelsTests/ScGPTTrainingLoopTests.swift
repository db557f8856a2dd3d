import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// The fine-tuning loop's schedule, step checkpoints and exact resume, and token counting.
final class ScGPTTrainingLoopTests: XCTestCase {
  private var scratch: URL!

  override func setUpWithError() throws {
    scratch = FileManager.default.temporaryDirectory.appendingPathComponent("scgpt-loop-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: scratch) }

  func testCosineScheduleWarmsUpLinearlyThenDecaysToZero() {
    let cosine = ScGPTSchedule.cosine(warmup: 0.1)
    func lr(_ step: Int) -> Double { cosine.learningRate(base: 2, gamma: 0.9, step: step, epoch: 0, total: 100) }
    XCTAssertEqual(lr(0), 0, "the first step has rate 0, as transformers' schedule")
    XCTAssertEqual(lr(5), 1, accuracy: 1e-12)
    XCTAssertEqual(lr(10), 2, accuracy: 1e-12, "the base rate at the end of the warm-up")
    XCTAssertEqual(lr(55), 1, accuracy: 1e-12, "half-way down the cosine")
    XCTAssertEqual(lr(100), 0, accuracy: 1e-12)
    XCTAssertEqual(ScGPTSchedule.cosine(warmup: 20).learningRate(base: 1, gamma: 1, step: 10, epoch: 0, total: 100), 0.5,
                   "a warm-up of 1 or more is a number of steps")
    XCTAssertEqual(ScGPTSchedule.stepPerEpoch.learningRate(base: 1, gamma: 0.9, step: 99, epoch: 2, total: 100), 0.81, accuracy: 1e-12)
  }

  private func options(epochs: Int = 3) -> ScGPTTaskOptions {
    var options = ScGPTFineTuningTests.smallOptions(.integration, epochs: epochs)
    options.training.batchSize = 8
    options.training.learningRate = 3e-3
    options.training.schedule = .cosine(warmup: 0.2)
    options.training.secondPassAfter = 4
    return options
  }

  func testRunResumedFromAStepCheckpointRepeatsTheUninterruptedRun() throws {
    let adata = try ScGPTFineTuningTests.synthetic()
    // 54 training cells in minibatches of 8: 7 steps per epoch, 21 in all.
    Runtime.seed(3)
    var whole = options()
    whole.training.checkpoint = scratch.appendingPathComponent("whole.safetensors")
    let uninterrupted = try ScGPTTasks.pretrain(adata, options: whole, objective: .generativeAndMasked)
    XCTAssertEqual(uninterrupted.result.steps, 21)
    XCTAssertEqual(uninterrupted.result.history.epochs.count, 3)

    Runtime.seed(3)
    var first = options()
    first.training.maxSteps = 10  // mid-epoch 2, after the second pass has joined
    first.training.checkpoint = scratch.appendingPathComponent("part.safetensors")
    first.training.checkpointEvery = 4
    let part = try ScGPTTasks.pretrain(adata, options: first, objective: .generativeAndMasked)
    XCTAssertEqual(part.result.stopReason, "max_steps")
    XCTAssertEqual(part.result.steps, 10)
    let saved = try TrainingCheckpoint.read(first.training.checkpoint!)
    XCTAssertEqual(saved.step, 10, "the stop writes a checkpoint at its step")
    XCTAssertEqual(saved.epochs, 1)
    XCTAssertEqual(saved.info["epoch_step"], "3")

    Runtime.seed(99)  // the resumed run takes nothing from the initial weights or torch's generator
    var second = options()
    second.training.resumeFrom = first.training.checkpoint
    let resumed = try ScGPTTasks.pretrain(adata, options: second, objective: .generativeAndMasked)
    XCTAssertEqual(resumed.result.steps, 21)
    XCTAssertEqual(resumed.result.stepTokens.count, 11, "the resumed run takes the remaining steps")
    XCTAssertEqual(resumed.result.history.epochs.count, 3)
    for (epoch, (a, b)) in zip(uninterrupted.result.history.epochs, resumed.result.history.epochs).enumerated() {
      XCTAssertEqual(Set(a.keys), Set(b.keys))
      for (name, value) in a { XCTAssertEqual(b[name]!, value, accuracy: abs(value) * 1e-6, "epoch \(epoch) \(name)") }
    }
    XCTAssertEqual(resumed.result.bestEpoch, uninterrupted.result.bestEpoch)
    let weights = uninterrupted.folder.network.stateDict(), again = resumed.folder.network.stateDict()
    for (key, value) in weights {
      XCTAssertLessThanOrEqual((value - again[key]!).abs().max().item(), 1e-5, key)
    }
    // The end-of-run checkpoint of the uninterrupted run holds the best weights for a later run.
    let end = try TrainingCheckpoint.read(whole.training.checkpoint!)
    XCTAssertEqual(end.step, 21)
    XCTAssertEqual(end.info["epoch_step"], "0")
    XCTAssertEqual(end.info["best_epoch"], String(uninterrupted.result.bestEpoch))
    XCTAssertFalse(end.extra.keys.isEmpty)

    var otherSeed = options()
    otherSeed.training.resumeFrom = first.training.checkpoint
    otherSeed.training.seed = 5
    XCTAssertThrowsError(try ScGPTTasks.pretrain(adata, options: otherSeed, objective: .generativeAndMasked)) {
      XCTAssertTrue("\($0)".contains("seed"), "\($0)")
    }
    var otherObjective = options()
    otherObjective.training.resumeFrom = first.training.checkpoint
    XCTAssertThrowsError(try ScGPTTasks.pretrain(adata, options: otherObjective, objective: .pretraining)) {
      XCTAssertTrue("\($0)".contains("objective"), "\($0)")
    }
  }

  func testStepsCountEveryTrainingCellsTokensOncePerEpoch() throws {
    let adata = try ScGPTFineTuningTests.synthetic()
    Runtime.seed(0)
    let model = try ScGPTTasks.pretrain(adata, options: options(epochs: 2), objective: .generative)
    let result = model.result
    XCTAssertEqual(result.stepTokens.count, 14)
    XCTAssertEqual(result.stepSeconds.count, 14)
    let perEpoch = result.trainingCells.reduce(0) { $0 + model.tokens.ids[$1].count }
    XCTAssertEqual(result.stepTokens.prefix(7).reduce(0, +), perEpoch)
    XCTAssertEqual(result.stepTokens.suffix(7).reduce(0, +), perEpoch)
    XCTAssertGreaterThan(result.tokensPerSecond, 0)
    let rates = result.history.values("learning_rate").compactMap { $0 }
    XCTAssertEqual(rates.count, 2)
    // The rate of each epoch's last step: warm-up 2 of 14 steps, then the cosine.
    XCTAssertEqual(rates[0], 3e-3 * 0.5 * (1 + cos(Double.pi * 4 / 12)), accuracy: 1e-12)
    XCTAssertEqual(rates[1], 3e-3 * 0.5 * (1 + cos(Double.pi * 11 / 12)), accuracy: 1e-12)
  }

  /// CCE in masked pretraining (the pretraining branch's loop, weight 10): a second pass with
  /// other dropout masks, each cell's two embeddings pulled together against the minibatch's.
  func testContrastiveCellEmbeddingLossJoinsMaskedPretrainingAndFalls() throws {
    let adata = try ScGPTFineTuningTests.synthetic()
    var options = options(epochs: 4)
    options.training.cceWeight = 10
    Runtime.seed(0)
    let history = try ScGPTTasks.pretrain(adata, options: options, objective: .pretraining).result.history
    let cce = history.values("train_cce").compactMap { $0 }
    XCTAssertEqual(cce.count, 4)
    XCTAssertLessThan(cce.last!, cce.first!, "\(cce)")
    // Below chance (10 · ln 8 for minibatches of 8): a cell's two passes are nearer than other cells'.
    XCTAssertLessThan(cce.first!, 10 * log(8.0) + 1)
    options.training.cceWeight = 0
    XCTAssertTrue(try ScGPTTasks.pretrain(adata, options: options, objective: .pretraining).result.history
      .values("train_cce").compactMap { $0 }.isEmpty, "off by default")
  }
}
