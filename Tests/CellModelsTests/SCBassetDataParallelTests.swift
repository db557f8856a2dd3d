import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// scBasset trained data-parallel: two ranks as threads of this process, Gloo on loopback.
final class SCBassetDataParallelTests: XCTestCase {
  /// Both ranks train on their shards of the regions, see the same (all-reduced) metrics every
  /// epoch, and end with identical weights, which differ from their start.
  func testTwoRanksEndWithIdenticalWeightsAndMetrics() throws {
    let regions = try SCBassetTrainedFixture.simulation(cells: 40, peaks: 160).annData().transposed()
    let port = try freePort()
    let runs = runRanks(2) { rank -> (history: TrainingHistory, difference: Double?, moved: Double) in
      let group = try ProcessGroup(gloo: DistributedOptions(rank: rank, worldSize: 2, masterAddress: "127.0.0.1",
                                                            masterPort: port, timeout: 30))
      let model = try SCBASSET(adata: regions, config: SCBassetTrainedFixture.smallConfig(cells: 40))
      let start = model.network.parameters.map { $0.detach().clone() }
      var options = SCBassetTrainingOptions(maxEpochs: 2)
      options.batchSize = 16
      options.earlyStopping = false
      options.seed = 0
      options.processGroup = group
      let history = try model.train(options)
      let moved = zip(model.network.parameters, start).map { ($0.detach() - $1).abs().max().to(.float64).item() }.max() ?? 0
      return (history, model.replicaDifference, moved)
    }
    let ranks = try runs.map { try $0.get() }
    for run in ranks {
      XCTAssertEqual(run.difference, 0, "both ranks hold the same weights")
      XCTAssertGreaterThan(run.moved, 0, "training changed the weights")
      XCTAssertEqual(run.history.epochs.count, 2)
    }
    for (a, b) in zip(ranks[0].history.epochs, ranks[1].history.epochs) {
      for key in ["train_loss", "auroc_train", "validation_loss", "auroc_validation"] {
        let value = try XCTUnwrap(a[key], key)
        XCTAssertTrue(value.isFinite, key)
        XCTAssertEqual(value, b[key], "\(key): every rank sees the all-reduced metric")
      }
    }
  }
}
