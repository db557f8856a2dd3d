import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// The facade with a batch key: scvi-tools' batch embedding, trained and saved.
final class SCBassetFacadeTests: XCTestCase {
  func testBatchKeyAddsABatchEmbeddingThatTrainsAndRoundTrips() throws {
    var adata = try SCBassetTiny.data(regions: 40, cells: 6)
    try adata.var.set("sample", .categorical(Categorical(["a", "b", "a", "b", "b", "a"])))
    Runtime.seed(1)
    let model = try SCBASSET(adata: adata, setup: SCBassetSetup(batchKey: "sample"), config: {
      var c = SCBassetTiny.config(cells: 6)
      c.nBatch = 2
      return c
    }())
    XCTAssertEqual(model.batchCategories, ["a", "b"])
    XCTAssertEqual(model.network.stateDict()["batch_ids"]?.toArray(Int64.self), [0, 1, 0, 1, 1, 0])
    let before = model.network.stateDict()["batch_embedding.weight"]!.clone()
    var options = SCBassetTrainingOptions(maxEpochs: 2)
    options.batchSize = 8
    options.earlyStopping = false
    try model.train(options)
    let after = model.network.stateDict()["batch_embedding.weight"]!
    XCTAssertGreaterThan((after - before).abs().max().item(), 0, "the batch embedding is trained")
    // Cells of one batch share its embedding: the effective embedding differs from the raw one by it.
    let shift = withNoGrad { model.network.effectiveCellEmbedding() - model.network.cellEmbedding }
    XCTAssertLessThan((shift[0] - shift[2]).abs().max().item(), 1e-6)
    XCTAssertGreaterThan((shift[0] - shift[1]).abs().max().item(), 1e-3)
    XCTAssertEqual(model.history.epochs.count, 2)
    XCTAssertNotNil(model.history.last("auroc_train"))

    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("scbasset-facade-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    try model.save(to: folder)
    let loaded = try SCBASSET.load(from: folder, adata: adata)
    XCTAssertEqual(loaded.config.nBatch, 2)
    XCTAssertEqual(try loaded.accessibility(regions: [0, 1]), try model.accessibility(regions: [0, 1]))
    XCTAssertEqual(loaded.split?.validation, model.split?.validation)
  }
}
