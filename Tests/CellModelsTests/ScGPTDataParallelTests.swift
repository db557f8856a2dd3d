import Foundation
import XCTest

@testable import CellModels
import Torch

/// scGPT training data-parallel: two ranks as threads of this process, Gloo on loopback (the CLI
/// tests run them as processes).
final class ScGPTDataParallelTests: XCTestCase {
  private static var config: ScGPTConfig {
    var c = ScGPTConfig(ntoken: 30, dModel: 16, nHead: 2, dHid: 24, nLayers: 1, padTokenId: 0)
    c.padValue = -2
    c.nCls = 3
    c.dropout = 0
    return c
  }

  /// Eight cells of 3 to 9 tokens, `<cls>` (id 1) first.
  private static var tokens: ScGPTCellTokens {
    let ids = (0..<8).map { cell in [1] + (0..<(2 + cell % 4 + cell / 2)).map { 3 + (cell * 5 + $0 * 3) % 26 } }
    let values = ids.enumerated().map { cell, row in [Float(0)] + (1..<row.count).map { Float(($0 + cell) % 5 + 1) } }
    return ScGPTCellTokens(ids: ids, values: values, padId: 0, padValue: -2)
  }

  /// One annotation step, each rank on its own four cells, leaves both ranks with the gradient of
  /// the eight cells together (DDP's average; clipping sees the same norm), the same weights, and
  /// the epoch's loss as the per-cell mean over all eight.
  func testTwoRanksTakeTheStepOfTheirCellsTogether() throws {
    let tokens = Self.tokens, types = (0..<8).map { $0 % 3 }
    var options = ScGPTTrainingOptions.annotation
    options.epochs = 1
    options.validationFraction = 0
    options.learningRate = 1e-2
    let base = options
    let port = try freePort()
    let runs = runRanks(2) { rank -> RankRun in
      let group = try ProcessGroup(gloo: DistributedOptions(rank: rank, worldSize: 2, masterAddress: "127.0.0.1",
                                                            masterPort: port, timeout: 30))
      let network = try ScGPTNetwork(Self.config)  // different initial weights on each rank
      let initial = StateDict(network.stateDict().map { ($0.key, $0.value.detach().clone()) })
      var mine = base
      mine.processGroup = group
      let result = try ScGPTFineTuner(network: network, objective: .annotation, options: mine)
        .fit(FixedMinibatch(tokens: tokens, rows: Array(4 * rank..<4 * rank + 4), cellTypes: types))
      return RankRun(initial: initial, gradients: Self.gradients(network), result: result)
    }
    let ranks = try runs.map { try $0.get() }
    for run in ranks {
      XCTAssertEqual(run.result.replicaDifference, 0, "both ranks hold the same weights")
      XCTAssertEqual(run.result.ranks, 2)
    }

    let single = try ScGPTNetwork(Self.config)
    try single.loadStateDict(ranks[0].initial)  // DDP starts every rank from rank 0's weights
    let whole = try ScGPTFineTuner(network: single, objective: .annotation, options: options)
      .fit(FixedMinibatch(tokens: tokens, rows: Array(0..<8), cellTypes: types))
    let expected = Self.gradients(single)
    XCTAssertFalse(expected.isEmpty)
    for run in ranks {
      for name in Set(run.gradients.keys).union(expected.keys) {  // a parameter without a gradient counts as zeros
        let (a, b) = (expected[name] ?? [], run.gradients[name] ?? [])
        let gradient = a.isEmpty ? [Float](repeating: 0, count: b.count) : a
        let got = b.isEmpty ? [Float](repeating: 0, count: a.count) : b
        let scale = gradient.map(abs).max() ?? 0
        let difference = zip(gradient, got).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(difference, 1e-5 * max(scale, 1e-3), name)
      }
      XCTAssertEqual(run.result.history.epochs[0]["train_loss"]!, whole.history.epochs[0]["train_loss"]!, accuracy: 1e-6,
                     "the epoch's loss is the mean over both ranks' cells")
    }
  }

  /// In memory each rank takes every other minibatch of the epoch (the list padded so both take
  /// the same number) and every other validation minibatch, unpadded.
  func testRanksShareTheEpochsMinibatches() throws {
    let tokens = Self.tokens
    func data(rank: Int, worldSize: Int) -> ScGPTTokenMinibatches {
      ScGPTTokenMinibatches(tokens: tokens, trainingCells: Array(0..<5), validationCells: [5, 6, 7], cellTypes: nil,
                            batches: nil, groupByBatch: false, batchSize: 2, lengthBuckets: false, seed: 4, rank: rank,
                            worldSize: worldSize)
    }
    func training(_ d: ScGPTTokenMinibatches, epoch: Int) throws -> [[Int]] {
      var rows: [[Int]] = []
      try d.forEachTrainingMinibatch(epoch: epoch, skipping: 0) { rows.append($0.rows) }
      return rows
    }
    func validation(_ d: ScGPTTokenMinibatches) throws -> [[Int]] {
      var rows: [[Int]] = []
      try d.forEachValidationMinibatch { rows.append($0.rows) }
      return rows
    }
    let alone = data(rank: 0, worldSize: 1), first = data(rank: 0, worldSize: 2), second = data(rank: 1, worldSize: 2)
    let all = try training(alone, epoch: 1)  // 3 minibatches: 2, 2 and 1 cells
    XCTAssertEqual(all.count, 3)
    XCTAssertEqual(try training(first, epoch: 1), [all[0], all[2]])
    XCTAssertEqual(try training(second, epoch: 1), [all[1], all[0]], "padded with the first minibatch")
    XCTAssertEqual(first.stepsPerEpoch, 2)
    XCTAssertEqual(second.stepsPerEpoch, 2)
    XCTAssertEqual(Set(try training(first, epoch: 2) + training(second, epoch: 2)), Set(try training(alone, epoch: 2)))
    let held = try validation(alone)
    XCTAssertEqual(held.count, 2)
    XCTAssertEqual(try validation(first) + validation(second), held, "each validation minibatch once")
  }

  private struct RankRun {
    var initial: StateDict
    var gradients: [String: [Float]]
    var result: ScGPTTrainingResult
  }

  private static func gradients(_ network: ScGPTNetwork) -> [String: [Float]] {
    Dictionary(uniqueKeysWithValues: network.namedParameters().compactMap { name, p in p.grad.map { (name, $0.toArray(Float.self)) } })
  }
}

/// One minibatch of given cells per epoch, no validation.
private struct FixedMinibatch: ScGPTTrainingData {
  let tokens: ScGPTCellTokens
  let rows: [Int]
  let cellTypes: [Int]
  var trainingCells: [Int] { rows }
  var validationCells: [Int] { [] }
  var stepsPerEpoch: Int { 1 }

  func forEachTrainingMinibatch(epoch: Int, skipping: Int, _ body: (ScGPTMinibatch) throws -> Void) throws {
    if skipping == 0 { try body(ScGPTMinibatch(tokens: tokens, rows: rows, cellTypes: cellTypes)) }
  }

  func forEachValidationMinibatch(_ body: (ScGPTMinibatch) throws -> Void) throws {}
}
