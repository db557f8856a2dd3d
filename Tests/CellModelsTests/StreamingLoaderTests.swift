import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// `StreamingLoader`: each selected cell exactly once per pass, the same order for the same
/// seed, rows and covariates that match the source, read errors that reach the caller; and
/// scVI trained from a streamed source.
final class StreamingLoaderTests: XCTestCase {
  /// 1,000 cells × 7 genes: cell r holds r + 1 in gene r % 7 and 1 in gene (r + 3) % 7.
  static let source: InMemoryRows = {
    var rows = CSRRows(nCols: 7)
    for r in 0..<1_000 {
      let cells = [(r % 7, Float(r + 1)), ((r + 3) % 7, 1)].sorted { $0.0 < $1.0 }
      for (c, v) in cells {
        rows.columns.append(Int32(c))
        rows.values.append(v)
      }
      rows.rowStarts.append(rows.values.count)
    }
    return try! InMemoryRows(rows.matrix())
  }()

  /// The cells of one pass, checking each minibatch's rows and codes against the source.
  func passCells(_ loader: StreamingLoader, epoch: Int = 0, codes: [Int]? = nil, file: StaticString = #filePath,
                 line: UInt = #line) throws -> [[Int]] {
    var batches: [[Int]] = []
    try loader.forEachBatch(epoch: epoch) { batch in
      let x = batch.x.toArray(Float.self)
      for (i, cell) in batch.indices.enumerated() {
        XCTAssertEqual(Array(x[(i * 7)..<(i * 7 + 7)]), Self.source.storage.denseRow(cell), "cell \(cell)", file: file, line: line)
      }
      if let codes {
        XCTAssertEqual(batch.batchIndex?.toArray(Int64.self), batch.indices.map { Int64(codes[$0]) }, file: file, line: line)
      }
      batches.append(batch.indices)
    }
    return batches
  }

  func testEveryCellExactlyOncePerPassAndTheSameOrderForTheSameSeed() throws {
    let codes = (0..<1_000).map { $0 % 3 }
    let subset = (0..<1_000).filter { $0 % 5 != 2 }
    for (cells, blockRows, bufferBlocks, batchSize, readAhead) in [
      (nil, 64, 4, 128, true), (subset, 37, 3, 50, true), (subset, 1_000, 1, 128, false), (Array(0..<10), 7, 2, 3, true),
      (subset, 5, 100, 128, false),
    ] as [([Int]?, Int, Int, Int, Bool)] {
      let options = StreamingLoader.Options(batchSize: batchSize, blockRows: blockRows, bufferBlocks: bufferBlocks,
                                            seed: 42, readAhead: readAhead)
      let loader = try StreamingLoader(source: Self.source, cells: cells, batchCodes: codes, options: options)
      let expected = cells ?? Array(0..<1_000)
      XCTAssertEqual(loader.cellCount, expected.count)
      let first = try passCells(loader, codes: codes)
      let label = "blocks \(blockRows) × \(bufferBlocks), batch \(batchSize)"
      XCTAssertEqual(first.flatMap { $0 }.sorted(), expected, label)
      XCTAssertEqual(first.count, loader.batchCount, label)
      XCTAssertTrue(first.dropLast().allSatisfy { $0.count == batchSize }, "only the last minibatch is partial: \(label)")
      XCTAssertEqual(try passCells(loader), first, "same seed and epoch, same order: \(label)")
      let again = try StreamingLoader(source: Self.source, cells: cells, batchCodes: codes, options: options)
      XCTAssertEqual(try passCells(again), first, "a new loader with the same seed: \(label)")
      if expected.count > 20 {
        XCTAssertNotEqual(first.flatMap { $0 }, expected, "shuffled: \(label)")
        XCTAssertNotEqual(try passCells(loader, epoch: 1), first, "another epoch, another order: \(label)")
        var reseeded = options
        reseeded.seed = 43
        XCTAssertNotEqual(try passCells(StreamingLoader(source: Self.source, cells: cells, options: reseeded)), first, label)
      }
    }
  }

  func testRanksShareTheBlocksAndTakeEqualSteps() throws {
    let subset = (0..<1_000).filter { $0 % 5 != 2 }
    for (worldSize, blockRows, batchSize) in [(2, 37, 50), (3, 64, 32), (2, 1_000, 64), (4, 100, 128)] {
      let label = "\(worldSize) ranks, blocks \(blockRows), batch \(batchSize)"
      func loader(_ rank: Int, equalize: Bool, shuffle: Bool = true) throws -> StreamingLoader {
        try StreamingLoader(source: Self.source, cells: subset, options: StreamingLoader.Options(
          batchSize: batchSize, blockRows: blockRows, bufferBlocks: 2, shuffle: shuffle, seed: 7,
          shard: .init(rank: rank, worldSize: worldSize, equalize: equalize)))
      }
      for epoch in 0..<2 {
        // Training: the same number of equal-sized steps on every rank; each rank reads whole
        // blocks, and only padded blocks are read by two ranks.
        let passes = try (0..<worldSize).map { try passCells(loader($0, equalize: true), epoch: epoch) }
        XCTAssertEqual(Set(passes.map { $0.map(\.count) }).count, 1, "equal minibatch sizes: \(label)")
        XCTAssertFalse(passes[0].isEmpty || passes[0].last!.count == 1, label)
        let blocksRead = passes.map { Set($0.flatMap { $0 }.map { $0 / blockRows }) }
        let shared = (0..<worldSize).flatMap { a in (0..<a).map { blocksRead[a].intersection(blocksRead[$0]).count } }.reduce(0, +)
        XCTAssertLessThan(shared, worldSize, "only padding repeats a block: \(label)")
        let seen = Set(passes.flatMap { $0.flatMap { $0 } })
        XCTAssertGreaterThanOrEqual(seen.count, subset.count - worldSize * blockRows, "few cells left out: \(label)")
        // Evaluation: every cell exactly once over the ranks.
        let evaluation = try (0..<worldSize).flatMap { try passCells(loader($0, equalize: false, shuffle: false), epoch: epoch) }
        XCTAssertEqual(evaluation.flatMap { $0 }.sorted(), subset, label)
      }
      // Another epoch deals the blocks out differently.
      XCTAssertNotEqual(try passCells(loader(0, equalize: true), epoch: 0), try passCells(loader(0, equalize: true), epoch: 1), label)
    }
    XCTAssertThrowsError(try StreamingLoader(source: Self.source, options: .init(shard: .init(rank: 2, worldSize: 2))))
  }

  func testInOrderWithoutShufflingAndDropLast() throws {
    let cells = Array(stride(from: 3, to: 1_000, by: 4))
    let ordered = try StreamingLoader(
      source: Self.source, cells: cells.reversed(), options: .init(batchSize: 32, blockRows: 50, bufferBlocks: 3, shuffle: false))
    XCTAssertEqual(try passCells(ordered).flatMap { $0 }, cells)
    let dropping = try StreamingLoader(
      source: Self.source, cells: cells, options: .init(batchSize: 32, blockRows: 50, bufferBlocks: 3, dropLast: true))
    let batches = try passCells(dropping)
    XCTAssertEqual(batches.count, 250 / 32)
    XCTAssertTrue(batches.allSatisfy { $0.count == 32 })
    XCTAssertEqual(dropping.cellCount, 250 / 32 * 32)
  }

  func testBadSelectionsAreRefused() throws {
    XCTAssertThrowsError(try StreamingLoader(source: Self.source, cells: [1, 1_000]))
    XCTAssertThrowsError(try StreamingLoader(source: Self.source, cells: [4, 4]))
    XCTAssertThrowsError(try StreamingLoader(source: Self.source, batchCodes: [0, 1]))
    XCTAssertThrowsError(try StreamingLoader(source: Self.source, options: .init(blockRows: 0)))
  }

  /// A source whose rows from 600 on cannot be read.
  final class FailingSource: RowBlockSource, @unchecked Sendable {
    var nRows: Int { 1_000 }
    var nCols: Int { 7 }
    var sourceDescription: String { "failing.h5ad" }
    func rows(_ range: Range<Int>) throws -> CSRRows {
      if range.upperBound > 600 { throw CellDataError("failing.h5ad: cannot read rows \(range)") }
      return try StreamingLoaderTests.source.rows(range)
    }
  }

  func testAReadErrorEndsThePassWithTheSourcesMessage() throws {
    for readAhead in [true, false] {
      let loader = try StreamingLoader(source: FailingSource(), options: .init(blockRows: 100, bufferBlocks: 2, readAhead: readAhead))
      XCTAssertThrowsError(try passCells(loader)) { error in
        XCTAssertTrue("\(error)".contains("failing.h5ad: cannot read rows"), "\(error)")
      }
    }
    // A pass left after one minibatch stops its read-ahead thread; the next pass starts afresh.
    let loader = try StreamingLoader(source: Self.source, options: .init(blockRows: 10, bufferBlocks: 2))
    do {
      let stream = try loader.pass(epoch: 0)
      XCTAssertNotNil(try stream.next())
    }
    XCTAssertEqual(try passCells(loader).flatMap { $0 }.count, 1_000)
  }

  // MARK: - scVI from a streamed source

  static let pbmc = SCVIModelTests.pbmc

  func streamedModel(_ adata: AnnData, kind: SCVIModel.Kind = .scvi) throws -> SCVIModel {
    var metadata = adata
    metadata.X = nil
    let setup = try SCVISetup(metadata: metadata, batchKey: "half")
    return try SCVIModel(streaming: InMemoryRows(adata.X!), metadata: metadata, setup: setup, kind: kind,
                         architecture: .init(nHidden: 32, nLatent: 5), blockRows: 100)
  }

  func testStreamedSCVITrainsAndGivesTheInMemoryOutputsForTheSameWeights() throws {
    let adata = Self.pbmc
    Runtime.seed(5)
    let streamed = try streamedModel(adata)
    XCTAssertTrue(streamed.isStreaming)
    var options = SCVIModel.TrainingOptions(maxEpochs: 3, seed: 1)
    options.streaming = StreamingLoader.Options(blockRows: 64, bufferBlocks: 4)
    let history = try streamed.train(options)
    XCTAssertEqual(history.epochs.count, 3)
    let elbo = history.values("elbo_validation").map { $0! }
    XCTAssertTrue(elbo.allSatisfy(\.isFinite), "\(elbo)")
    XCTAssertEqual(streamed.split?.validation.count, 70)
    XCTAssertEqual(streamed.trainedCells, 3 * 630)

    let memory = try SCVIModel(adata, setup: SCVISetup(adata, batchKey: "half"), architecture: .init(nHidden: 32, nLatent: 5))
    try memory.module.loadStateDict(streamed.module.stateDict())
    let streamedLatent = try streamed.latentRepresentation()
    XCTAssertEqual(streamedLatent.shape, [700, 5])
    XCTAssertEqual(streamedLatent.toArray(Float.self), try memory.latentRepresentation().toArray(Float.self))
    // More than 256 minibatches: the outputs are joined in chunks on the way (other batch
    // sizes round matrix products differently).
    assertClose(try streamed.latentRepresentation(batchSize: 2), streamedLatent, rtol: 1e-4, atol: 1e-5)
    XCTAssertThrowsError(try streamed.differentialExpression(groupby: "half", group1: "first")) { error in
      XCTAssertTrue("\(error)".contains("stream"), "\(error)")
    }

    // Same seed, same training.
    Runtime.seed(5)
    let again = try streamedModel(adata)
    try again.train(options)
    XCTAssertEqual(again.history.values("elbo_train"), streamed.history.values("elbo_train"))
  }

  func testStreamedLDVAEPriorAndMaxSteps() throws {
    let model = try streamedModel(Self.pbmc, kind: .ldvae)
    var options = SCVIModel.TrainingOptions(maxEpochs: 5, seed: 2)
    options.maxSteps = 7
    try model.train(options)
    XCTAssertEqual(model.history.epochs.count, 2, "5 steps in epoch 1, 2 in epoch 2")
    XCTAssertEqual(model.stopReason, "max_steps")
    XCTAssertEqual(model.trainedCells, 630 + 2 * 128)
    XCTAssertEqual(try model.loadings().shape, [765, 5])
  }

  func testStreamedCountsAreCheckedAsTheyAreRead() throws {
    var adata = Self.pbmc
    guard case .sparse(var x) = adata.X!, case .float32(var values) = x.data else { return XCTFail("expected float32 CSR") }
    values[values.count - 5] = 2.5
    x.data = .float32(values)
    adata.X = .sparse(x)
    let model = try streamedModel(adata)
    XCTAssertThrowsError(try model.train(SCVIModel.TrainingOptions(maxEpochs: 1))) { error in
      XCTAssertTrue("\(error)".contains("is not an integer (2.5)") && "\(error)".contains(adata.obsNames[699]), "\(error)")
    }
  }
}
