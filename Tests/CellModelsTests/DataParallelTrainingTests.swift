import Foundation
import XCTest

@testable import CellModels
import Torch

/// The pieces of data-parallel and resumable training that need no second process: the
/// DistributedSampler split, Adam's state dict, checkpoints and the Trainer resuming a run.
final class DataParallelTrainingTests: XCTestCase {

  func testDistributedSamplerPadsShardsToEqualSizeAndCoversEveryItem() throws {
    let samplers = try (0..<3).map { try DistributedSampler(count: 10, rank: $0, worldSize: 3, seed: 4) }
    XCTAssertEqual(samplers[0].shardSize, 4)
    for epoch in 0..<3 {
      let shards = samplers.map { $0.shard(epoch: epoch) }
      XCTAssertEqual(shards.map(\.count), [4, 4, 4], "equal shards, so every rank runs the same steps")
      let all = shards.flatMap { $0 }
      XCTAssertEqual(Set(all), Set(0..<10), "every item is seen")
      XCTAssertEqual(all.count - Set(all).count, 2, "two items repeated as padding")
      XCTAssertEqual(shards, samplers.map { $0.shard(epoch: epoch) }, "the same split for the same seed and epoch")
    }
    XCTAssertNotEqual(samplers[0].shard(epoch: 0), samplers[0].shard(epoch: 1), "reshuffled each epoch")
    let ordered = try DistributedSampler(count: 10, rank: 1, worldSize: 3, shuffle: false)
    XCTAssertEqual(ordered.shard(epoch: 5), [1, 4, 7, 0], "rank::worldSize of the items padded with the first")
    XCTAssertEqual((0..<3).flatMap { DistributedSampler.evaluationShard(count: 10, rank: $0, worldSize: 3) }.sorted(),
                   Array(0..<10), "held-out shards count each item once")
    XCTAssertThrowsError(try DistributedSampler(count: 10, rank: 3, worldSize: 3))
    XCTAssertThrowsError(try DistributedSampler(count: 0, rank: 0, worldSize: 1))
  }

  func testTinyLastBatchIsDroppedFromAShard() {
    XCTAssertEqual(DataParallelShards.withoutTinyLastBatch(Array(0..<11), batchSize: 4), Array(0..<11), "a last batch of 3 stays")
    XCTAssertEqual(DataParallelShards.withoutTinyLastBatch(Array(0..<10), batchSize: 4), Array(0..<8))
    XCTAssertEqual(DataParallelShards.withoutTinyLastBatch(Array(0..<9), batchSize: 4), Array(0..<8))
    XCTAssertEqual(DataParallelShards.withoutTinyLastBatch(Array(0..<8), batchSize: 4), Array(0..<8))
    XCTAssertEqual(DataParallelShards.withoutTinyLastBatch(Array(0..<2), batchSize: 4), Array(0..<2), "a single batch stays")
  }

  func testAdamStateDictResumesTheSameTrajectory() throws {
    func problem() -> (Tensor, () -> Tensor) {
      let p = Tensor([Float(1), -2, 3]).requiringGrad()
      return (p, { (p * p * Tensor([Float(1), 2, 3])).sum() })
    }
    let (p1, loss1) = problem()
    let first = Adam([p1], learningRate: 0.1, eps: 0.01, weightDecay: 1e-3, amsgrad: true)
    for _ in 0..<3 { first.zeroGrad(); loss1().backward(); first.step() }
    let state = first.stateDict()
    XCTAssertEqual(state["state.0.step"]?.item(), 3)

    let (p2, loss2) = problem()
    withNoGrad { p2.copy_(p1) }
    let second = Adam([p2], learningRate: 0.5, eps: 0.01, weightDecay: 1e-3, amsgrad: true)
    try second.loadStateDict(state)
    XCTAssertEqual(second.learningRate, 0.1)
    for (optimizer, loss) in [(first, loss1), (second, loss2)] { optimizer.zeroGrad(); loss().backward(); optimizer.step() }
    XCTAssertEqual(p1.toArray(Float.self), p2.toArray(Float.self))

    let other = Adam([Tensor([Float(1)]).requiringGrad()])
    XCTAssertThrowsError(try other.loadStateDict(state), "shapes differ")
  }

  func testCheckpointRoundTripAndBadFile() throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("checkpoint-\(UUID()).safetensors")
    defer { try? FileManager.default.removeItem(at: url) }
    let history = TrainingHistory(epochs: [["train_loss": 2.5], ["train_loss": 2.0]])
    try TrainingCheckpoint(epochs: 2, step: 14, history: history, model: StateDict([("w", Tensor([Float(1), 2]))]),
                           optimizer: StateDict([("state.0.step", Tensor(scalar: Float(14)))]), info: ["seed": "3"]).write(to: url)
    let read = try TrainingCheckpoint.read(url)
    XCTAssertEqual(read.epochs, 2)
    XCTAssertEqual(read.step, 14)
    XCTAssertEqual(read.history, history)
    XCTAssertEqual(read.model["w"]?.toArray(Float.self), [1, 2])
    XCTAssertEqual(read.optimizer["state.0.step"]?.item(), 14)
    XCTAssertEqual(read.info, ["seed": "3"])

    try Safetensors.write(StateDict([("w", Tensor([Float(1)]))]), to: url)
    XCTAssertThrowsError(try TrainingCheckpoint.read(url)) { error in
      XCTAssertTrue("\(error)".contains("not a training checkpoint"), "\(error)")
    }
  }

  func testTrainerResumesAfterThePriorEpochsWithItsEarlyStoppingState() throws {
    let losses: [Double] = [5, 4, 3, 3.5, 3.2, 3.1, 2, 1]
    let prior = TrainingHistory(epochs: losses.prefix(4).map { ["validation_loss": $0] })
    let trainer = try Trainer(options: .init(maxEpochs: losses.count, earlyStopping: EarlyStopping(monitor: "validation_loss", patience: 3)))
    var ran: [Int] = []
    let history = try trainer.fit(Scalar(), resuming: prior) { epoch in
      ran.append(epoch)
      return ["validation_loss": losses[epoch]]
    }
    XCTAssertEqual(ran, [4, 5], "epochs 0–3 are done; two more without improvement reach the patience of 3")
    XCTAssertEqual(history.epochs.count, 2)
    XCTAssertEqual(trainer.stopReason, "early_stopping")
  }

  private final class Scalar: Module {
    let value = Tensor([Float(0)], shape: [1])
    override init() { super.init(); registerParameter("value", value) }
  }
}
