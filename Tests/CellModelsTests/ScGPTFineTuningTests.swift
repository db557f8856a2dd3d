import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// Fine-tuning pieces on synthetic cells: tokens, minibatch orders, the loop's losses and
/// outputs, the folder's inference on new cells, and bad input.
final class ScGPTFineTuningTests: XCTestCase {
  /// 60 cells × 40 genes of Poisson counts: two cell types (each with 10 marker genes the other
  /// barely expresses) in two batches (the second with twice the depth).
  static func synthetic(cells: Int = 60, genes: Int = 40) throws -> AnnData {
    var random = ScGPTRandom(seed: 7)
    var values: [Float] = []
    for cell in 0..<cells {
      let type = cell % 2, depth = cell < cells / 2 ? 1.0 : 2.0
      for gene in 0..<genes {
        let marker = (gene < 10 && type == 0) || (gene >= 10 && gene < 20 && type == 1)
        let rate = (marker ? 6.0 : gene < 20 ? 0.2 : 1.0) * depth
        var k = 0, p = exp(-rate), cumulative = p, u = random.uniform()
        while u > cumulative && k < 60 { k += 1; p *= rate / Double(k); cumulative += p }
        values.append(Float(k))
      }
    }
    var adata = try AnnData(X: .dense(try DenseArray(shape: [cells, genes], data: .float32(values))),
                            obs: DataFrame(index: (0..<cells).map { "cell\($0)" }),
                            var: DataFrame(index: (0..<genes).map { "G\($0)" }))
    try adata.obs.set("cell_type", .categorical(Categorical((0..<cells).map { $0 % 2 == 0 ? "alpha" : "beta" })))
    try adata.obs.set("batch", .categorical(Categorical((0..<cells).map { $0 < cells / 2 ? "b1" : "b2" })))
    return adata
  }

  static func smallOptions(_ training: ScGPTTrainingOptions, epochs: Int = 3) -> ScGPTTaskOptions {
    var training = training
    training.epochs = epochs
    training.batchSize = 16
    training.learningRate = 1e-3
    var options = ScGPTTaskOptions(training: training)
    options.nHVG = nil
    options.architecture.dModel = 16
    options.architecture.nHead = 2
    options.architecture.dHid = 16
    options.architecture.nLayers = 1
    return options
  }

  func testTokensPutClsFirstKeepNonZeroGenesAndSampleLongCells() throws {
    let vocab = try GeneVocab(genes: ["a", "b", "c", "d"], specials: GeneVocab.specialTokens)
    let binned = Matrix.dense(try DenseArray(shape: [2, 4], data: .float32([0, 3, 0, 1, 2, 1, 3, 4])))
    var random = ScGPTRandom(seed: 0)
    let tokens = try ScGPTCellTokens(binned: binned, geneIds: [3, 4, 5, 6], vocab: vocab, maxLength: 3, padValue: -2, random: &random)
    XCTAssertEqual(tokens.ids[0], [1, 4, 6], "<cls> (id 1) then the non-zero genes b, d")
    XCTAssertEqual(tokens.values[0], [0, 3, 1])
    XCTAssertEqual(tokens.ids[1].count, 3, "a longer cell is sampled to the maximum length")
    XCTAssertEqual(tokens.ids[1][0], 1, "<cls> is kept")
    XCTAssertEqual(Set(tokens.ids[1].dropFirst()).count, 2)
    let padded = tokens.padded([0, 1])
    XCTAssertEqual(padded.length, 3)
    let empty = Matrix.dense(try DenseArray(shape: [1, 4], data: .float32([0, 0, 0, 0])))
    XCTAssertThrowsError(try ScGPTCellTokens(binned: empty, geneIds: [3, 4, 5, 6], vocab: vocab, maxLength: 5, padValue: -2,
                                             cellNames: ["lonely"], random: &random)) {
      XCTAssertTrue("\($0)".contains("'lonely' expresses none"), "\($0)")
    }
  }

  func testPerGroupMinibatchesHoldOneGroupAndCoverEveryCellOnce() {
    var random = ScGPTRandom(seed: 3)
    let groups = (0..<50).map { $0 % 3 }
    let minibatches = ScGPTSampling.perGroup(Array(0..<50), groups: groups, batchSize: 8, random: &random)
    XCTAssertEqual(minibatches.flatMap { $0 }.sorted(), Array(0..<50))
    for rows in minibatches { XCTAssertEqual(Set(rows.map { groups[$0] }).count, 1, "\(rows)") }
    XCTAssertTrue(minibatches.allSatisfy { $0.count <= 8 })
    let shuffled = ScGPTSampling.shuffled(Array(0..<50), batchSize: 8, random: &random)
    XCTAssertEqual(shuffled.flatMap { $0 }.sorted(), Array(0..<50))
    XCTAssertNotEqual(shuffled.flatMap { $0 }, Array(0..<50))

    // Length buckets: every cell once, and far less padding than a plain shuffle.
    let lengths = (0..<400).map { _ in 1 + Int(random.uniform() * 500) }
    func padding(_ minibatches: [[Int]]) -> Int {
      minibatches.reduce(0) { total, rows in total + rows.count * rows.map { lengths[$0] }.max()! - rows.reduce(0) { $0 + lengths[$1] } }
    }
    let bucketed = ScGPTSampling.shuffled(Array(0..<400), batchSize: 16, lengths: lengths, random: &random)
    XCTAssertEqual(bucketed.flatMap { $0 }.sorted(), Array(0..<400))
    let plain = ScGPTSampling.shuffled(Array(0..<400), batchSize: 16, random: &random)
    XCTAssertLessThan(padding(bucketed) * 5, padding(plain), "bucketed minibatches pad at least 5× less")
    let grouped = ScGPTSampling.perGroup(Array(0..<400), groups: (0..<400).map { $0 % 2 }, batchSize: 16, lengths: lengths, random: &random)
    XCTAssertEqual(grouped.flatMap { $0 }.sorted(), Array(0..<400))
    for rows in grouped { XCTAssertEqual(Set(rows.map { $0 % 2 }).count, 1) }
  }

  func testAnnotationLearnsTheTypesAndPredictsNewCellsWithGenesInAnotherOrder() throws {
    Runtime.seed(0)
    let adata = try Self.synthetic()
    let model = try ScGPTTasks.annotate(adata, labelKey: "cell_type", options: Self.smallOptions(.annotation, epochs: 20))
    let losses = model.result.history.values("train_loss").compactMap { $0 }
    XCTAssertEqual(losses.count, 20)
    XCTAssertLessThan(losses.last!, losses.first!, "the classifier's loss falls")
    XCTAssertEqual(model.result.validationCells.count, 6, "10 % of 60 cells, rounded up, as sklearn's split")
    XCTAssertEqual(model.folder.args["cell_types"] as? [String], ["alpha", "beta"])

    // New cells: genes reversed and two dropped; predictions by name.
    var query = try adata.subset(vars: Array((2..<40).reversed()))
    query.obs.remove("cell_type")
    let prediction = try ScGPTTasks.predict(query, folder: model.folder)
    XCTAssertEqual(prediction.missingGenes, 2)
    let truth = (0..<60).map { $0 % 2 == 0 ? "alpha" : "beta" }
    let accuracy = Double(zip(prediction.labels, truth).filter { $0 == $1 }.count) / 60
    XCTAssertGreaterThan(accuracy, 0.9, "two types with distinct markers")
    XCTAssertTrue(prediction.confidence.allSatisfy { $0 >= 0.5 && $0 <= 1 })

    // The saved folder predicts the same.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scgpt-annotate-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    try model.folder.save(to: dir)
    let reloaded = try ScGPTModelFolder.load(dir)
    let again = try ScGPTTasks.predict(query, folder: reloaded)
    XCTAssertEqual(again.labels, prediction.labels)
    XCTAssertEqual(again.probabilities.toArray(Float.self), prediction.probabilities.toArray(Float.self))
  }

  func testIntegrationTrainsEveryTermAndEmbedsEachCellThroughItsOwnBatch() throws {
    Runtime.seed(0)
    let adata = try Self.synthetic()
    var options = Self.smallOptions(.integration, epochs: 3)
    options.batchKey = "batch"
    let model = try ScGPTTasks.integrate(adata, options: options)
    let last = try XCTUnwrap(model.result.history.epochs.last)
    for term in ["train_gep", "train_gep_zero", "train_gepc", "train_gepc_zero", "train_ecs", "train_dab", "validation_gep"] {
      XCTAssertNotNil(last[term], "\(term) is logged")
    }
    XCTAssertEqual(last["validation_loss"], last["validation_gep"], "the best epoch is chosen by the validation GEP, as the reference")
    XCTAssertEqual(model.folder.args["batches"] as? [String], ["b1", "b2"])
    XCTAssertEqual(model.batches, (0..<60).map { $0 < 30 ? 0 : 1 })

    let all = try model.folder.network.cellEmbeddings(model.tokens, batches: model.batches)
    XCTAssertEqual(all.shape, [60, 16])
    for norm in all.norm([1]).toArray(Float.self) { XCTAssertEqual(norm, 1, accuracy: 1e-5) }
    XCTAssertEqual(try model.folder.network.cellEmbeddings(model.tokens, batches: model.batches).toArray(Float.self),
                   all.toArray(Float.self), "inference is deterministic, bit for bit")
    // A cell's embedding does not depend on which cells share its minibatch (the reference
    // applies the first cell's batch norm to a whole mixed minibatch).
    let mixed = [45, 3, 31, 12]
    var subset = model.tokens
    subset.ids = mixed.map { model.tokens.ids[$0] }
    subset.values = mixed.map { model.tokens.values[$0] }
    let some = try model.folder.network.cellEmbeddings(subset, batches: mixed.map { model.batches![$0] }, batchSize: 4)
    assertClose(some, all.indexSelect(dim: 0, index: Tensor(mixed.map(Int64.init))), "embeddings of a mixed minibatch", tolerance: 1e-5)

    // New cells of a batch the model never saw are refused, naming the batch.
    var foreign = adata
    try foreign.obs.set("batch", .categorical(Categorical(Array(repeating: "b9", count: 60))))
    XCTAssertThrowsError(try ScGPTTasks.embed(foreign, folder: model.folder)) {
      XCTAssertTrue("\($0)".contains("batch 'b9', which the model was not trained on"), "\($0)")
    }
    let (embedded, missing) = try ScGPTTasks.embed(adata, folder: model.folder)
    XCTAssertEqual(missing, 0)
    assertClose(embedded, all, "the folder's embedding of its training cells", tolerance: 1e-5)
  }

  /// bf16 autocast (the CLI's default on CUDA) through every integration term, on CPU: the terms
  /// stay finite and float32, the loss falls, and bf16 embeddings match float32 inference of the
  /// same weights.
  func testBF16AutocastTrainsEveryTermAndEmbedsCloseToFloat32() throws {
    Runtime.seed(0)
    let adata = try Self.synthetic()
    var options = Self.smallOptions(.integration, epochs: 4)
    options.batchKey = "batch"
    options.training.precision = .bfloat16
    let model = try ScGPTTasks.integrate(adata, options: options)
    let history = model.result.history
    for term in ["train_gep", "train_gep_zero", "train_gepc", "train_ecs", "train_dab", "validation_gep"] {
      let values = history.values(term).compactMap { $0 }
      XCTAssertEqual(values.count, 4, term)
      XCTAssertTrue(values.allSatisfy(\.isFinite), "\(term): \(values)")
    }
    let gep = history.values("train_gep").compactMap { $0 }
    XCTAssertLessThan(gep.last!, gep.first!, "the masked-value loss falls under bf16")

    let network = model.folder.network
    let bf16 = try network.cellEmbeddings(model.tokens, batches: model.batches, precision: .bfloat16)
    let fp32 = try network.cellEmbeddings(model.tokens, batches: model.batches)
    XCTAssertEqual(bf16.dtype, .float32, "embeddings are returned in float32")
    let cosine = (bf16 * fp32).sum(dim: 1).toArray(Float.self)
    XCTAssertGreaterThan(cosine.min()!, 0.99, "bf16 and float32 embeddings of each cell agree")
    XCTAssertLessThan(cosine.min()!, 1, "bf16 really ran")

    options.training.precision = .float16
    XCTAssertThrowsError(try ScGPTTasks.integrate(adata, options: options)) {
      XCTAssertTrue("\($0)".contains("precision must be float32 or bfloat16"), "\($0)")
    }
  }

  func testRandomTiesFollowTheSeedAndAreRecorded() throws {
    let adata = try Self.synthetic()
    var options = Self.smallOptions(.annotation, epochs: 1)
    let lowest = try ScGPTTasks.annotate(adata, labelKey: "cell_type", options: options)
    options.tieBreak = .random
    let first = try ScGPTTasks.annotate(adata, labelKey: "cell_type", options: options)
    let second = try ScGPTTasks.annotate(adata, labelKey: "cell_type", options: options)
    XCTAssertEqual(first.folder.args["tie_break"] as? String, "random")
    XCTAssertEqual(lowest.folder.args["tie_break"] as? String, "lowest")
    XCTAssertEqual(first.tokens.values, second.tokens.values, "the same seed draws the same ties")
    XCTAssertNotEqual(first.tokens.values, lowest.tokens.values, "Poisson counts tie: random ties differ from the lowest bins")
    XCTAssertEqual(first.tokens.ids, lowest.tokens.ids)
  }

  func testBadInputIsAClearError() throws {
    let adata = try Self.synthetic()
    let options = Self.smallOptions(.annotation, epochs: 1)
    XCTAssertThrowsError(try ScGPTTasks.annotate(adata, labelKey: "celltype", options: options)) {
      XCTAssertTrue("\($0)".contains("no label column 'celltype' in obs"), "\($0)")
    }
    var one = adata
    try one.obs.set("cell_type", .categorical(Categorical(Array(repeating: "alpha", count: 60))))
    XCTAssertThrowsError(try ScGPTTasks.annotate(one, labelKey: "cell_type", options: options)) {
      XCTAssertTrue("\($0)".contains("only one cell type"), "\($0)")
    }
    XCTAssertThrowsError(try ScGPTTasks.annotate(adata, labelKey: "cell_type", unlabeled: nil, options: {
      var o = options
      o.training.maskRatio = 1.5
      return o
    }())) { XCTAssertTrue("\($0)".contains("mask ratio"), "\($0)") }
    var integration = Self.smallOptions(.integration, epochs: 1)
    integration.batchKey = "donor"
    XCTAssertThrowsError(try ScGPTTasks.integrate(adata, options: integration)) {
      XCTAssertTrue("\($0)".contains("no batch column 'donor'"), "\($0)")
    }
    var negative = adata
    negative.X = .dense(try DenseArray(shape: [60, 40], data: .float32([-1] + Array(repeating: 1, count: 2399))))
    XCTAssertThrowsError(try ScGPTTasks.annotate(negative, labelKey: "cell_type", options: options)) {
      XCTAssertTrue("\($0)".contains("raw counts must be finite and non-negative"), "\($0)")
    }
    var silent = adata
    var values = [Float](repeating: 1, count: 2400)
    for g in 0..<40 { values[5 * 40 + g] = 0 }
    silent.X = .dense(try DenseArray(shape: [60, 40], data: .float32(values)))
    XCTAssertThrowsError(try ScGPTTasks.annotate(silent, labelKey: "cell_type", options: options)) {
      XCTAssertTrue("\($0)".contains("cell5"), "\($0)")
    }
    // A folder that was not fine-tuned here cannot predict.
    let fixture = try ScGPTModelFolder.load(ScGPTFixtures.url("model_folder"))
    XCTAssertThrowsError(try ScGPTTasks.predict(adata, folder: fixture)) {
      XCTAssertTrue("\($0)".contains("not an annotation model"), "\($0)")
    }
  }

  func testReferenceMappingVotesAmongTheNearestReferenceCells() throws {
    // Reference: three cells near x (a, a, b), two near y (b, b); cosine similarity, any scale.
    let reference = Tensor([1, 0.1, 2, 0.2, 1, -0.1, 0.1, 1, 0.2, 3] as [Float], shape: [5, 2])
    let labels = ["a", "a", "b", "b", "b"]
    let query = Tensor([5, 0.2, 0, 1] as [Float], shape: [2, 2])
    let transfer = try ScGPTReferenceMapping.transfer(reference: reference, labels: labels, query: query, k: 3)
    XCTAssertEqual(transfer.labels, ["a", "b"])
    XCTAssertEqual(transfer.confidence[0], 2.0 / 3, accuracy: 1e-12)
    XCTAssertEqual(transfer.confidence[1], 2.0 / 3, accuracy: 1e-12, "two of its three nearest are b")
    XCTAssertEqual(transfer.neighbours[0].count, 3)
    XCTAssertEqual(try ScGPTReferenceMapping.transfer(reference: reference, labels: labels, query: query, k: 3, blockSize: 1).labels,
                   transfer.labels, "blocks of the query change nothing")
    XCTAssertThrowsError(try ScGPTReferenceMapping.transfer(reference: reference, labels: ["a"], query: query))
  }

  func testAttentionNetworkIsRankNormalisedAndIndependentOfMinibatches() throws {
    Runtime.seed(0)
    let adata = try Self.synthetic()
    var options = Self.smallOptions(.integration, epochs: 1)
    options.batchKey = "batch"
    let model = try ScGPTTasks.integrate(adata, options: options)
    let genes = Array(model.data.varNames.prefix(12))
    let (tokens, batches, _) = try ScGPTTasks.tokens(for: adata, folder: model.folder, genes: genes, includeZeroGenes: true)
    XCTAssertTrue(tokens.ids.allSatisfy { $0.count == 13 }, "<cls> and every gene")
    let network = try model.folder.network.attentionNetwork(tokens, batches: batches, batchSize: 7)
    XCTAssertEqual(network.shape, [12, 12])
    let values = network.toArray(Float.self)
    XCTAssertTrue(values.allSatisfy { $0 >= 0 && $0 < 1 }, "means of ranks / 13")
    assertClose(try model.folder.network.attentionNetwork(tokens, batches: batches, batchSize: 60), network,
                "the same network in one minibatch", tolerance: 1e-6)
    var ragged = tokens
    ragged.ids[0].removeLast()
    XCTAssertThrowsError(try model.folder.network.attentionNetwork(ragged, batches: batches))

    let embedding = try ScGPTGeneEmbedding(folder: model.folder, genes: model.data.varNames + ["NOT_A_GENE"])
    XCTAssertEqual(embedding.unknown, ["NOT_A_GENE"])
    XCTAssertEqual(embedding.vectors.shape, [model.data.nVars, 16])
    let programs = try embedding.programs(resolution: 2, nNeighbors: 5, minSize: 3)
    XCTAssertTrue(programs.allSatisfy { $0.count >= 3 })
    XCTAssertEqual(Set(programs.joined()).count, programs.joined().count)
    let edges = embedding.similarityNetwork(threshold: 0.2)
    XCTAssertTrue(edges.allSatisfy { $0.2 >= 0.2 && $0.0 != $0.1 })
    XCTAssertEqual(edges.map(\.2), edges.map(\.2).sorted(by: >))
  }
}
