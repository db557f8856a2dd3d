import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// The scAtlasVAE facade on the bundled PBMC data: training with two batch keys and a label
/// key, outputs, save/load, transfer, and the reference's failure modes done right.
final class ScAtlasVAETests: XCTestCase {
  /// 700 PBMCs × 765 genes (integer counts); batch keys "half" and "lane" (both made up);
  /// label key "bulk_labels" with every fifth cell "undefined".
  static let pbmc: AnnData = {
    var adata = try! AnnData.read(h5ad: repositoryFile("data/pbmc68k_reduced.h5ad").path)
    try! adata.obs.set("half", .categorical(Categorical((0..<adata.nObs).map { $0 < 350 ? "first" : "second" })))
    try! adata.obs.set("lane", .categorical(Categorical((0..<adata.nObs).map { ["a", "b", "c"][$0 % 3] })))
    let labels = try! adata.obs.labels("bulk_labels")
    try! adata.obs.set("cell_type", .categorical(Categorical(labels.enumerated().map { $0 % 5 == 0 ? "undefined" : $1! })))
    return adata
  }()

  static func smallConfig(_ nInput: Int) -> ScAtlasVAEConfig {
    ScAtlasVAEConfig(nInput: nInput, hiddenStacks: [64], nLatent: 8)
  }

  static func options(epochs: Int, seed: UInt64 = 3) -> ScAtlasVAE.TrainingOptions {
    var options = ScAtlasVAE.TrainingOptions(maxEpochs: epochs, learningRate: 3e-3, seed: seed)
    options.klWarmupEpochs = 5
    return options
  }

  private func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atlas-\(UUID())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
  }

  func testSetupEncodesSeveralBatchKeysAndLeavesOutUnlabelledCells() throws {
    let setup = try ScAtlasVAESetup(Self.pbmc, batchKeys: ["half", "lane"], labelKeys: ["cell_type"])
    XCTAssertEqual(setup.batchKey, "half")
    XCTAssertEqual(setup.additionalBatchKeys, ["lane"])
    XCTAssertEqual(setup.batchCategories, ["first", "second"])
    XCTAssertEqual(setup.labelCategories[0].count, 10)
    XCTAssertFalse(setup.labelCategories[0].contains("undefined"))
    let config = setup.config(Self.smallConfig(0))
    XCTAssertEqual(config.nAdditionalBatch, [3])
    XCTAssertEqual(config.decoderCovariates, [.batch, .additionalBatch(0)])
    let network = try ScAtlasVAENetwork(config: config)
    let keys = Set(network.stateDict().keys)
    for key in ["encoder.layers.0._fclayer.0.weight", "encoder.layers.0._fclayer.1.running_var", "z_mean_fc.weight",
                "z_var_fc.bias", "decoder.cat_embedding.0.weight", "decoder.cat_embedding.1.weight",
                "decoder._fclayer.0.weight", "decoder._fclayer.1.weight", "px_rna_scale_decoder.0.weight",
                "px_rna_rate_decoder.weight", "px_rna_dropout_decoder.weight", "fc.0.weight"] {
      XCTAssertTrue(keys.contains(key), key)
    }
    XCTAssertEqual(network.stateDict()["decoder._fclayer.0.weight"]!.shape, [64, 8 + 2 * 8])
    XCTAssertEqual(network.stateDict()["px_rna_dropout_decoder.weight"]!.abs().sum().item(), 0, "'final' init: zero gate logits")
  }

  func testTrainingLowersTheHeldOutLossPredictsLabelsAndRoundTrips() throws {
    let adata = Self.pbmc
    let setup = try ScAtlasVAESetup(adata, batchKeys: ["half", "lane"], labelKeys: ["cell_type"])
    let model = try ScAtlasVAE(adata, setup: setup, architecture: Self.smallConfig(adata.nVars))
    var options = Self.options(epochs: 30)
    options.predictionLastEpochs = 15
    let history = try model.train(options)
    XCTAssertEqual(history.epochs.count, 30)
    XCTAssertEqual(model.split?.validation.count, 140)
    let elbo = history.values("elbo_validation").map { $0! }
    XCTAssertLessThan(elbo.last!, elbo.first! * 0.9, "held-out ELBO: \(elbo)")
    XCTAssertEqual(history.epochs[0]["prediction_loss_train"].map { $0 > 0 }, true)
    for name in ["reconstruction_loss_train", "kl_loss_validation", "gate_loss_train", "train_loss", "validation_loss", "kl_weight"] {
      XCTAssertNotNil(history.last(name), name)
    }

    let latent = try model.latent()
    XCTAssertEqual(latent.shape, [700, 8])
    let predictions = try model.predictLabels()
    XCTAssertEqual(predictions.count, 1)
    let truth = try adata.obs.labels("bulk_labels")
    let correct = zip(predictions[0].labels, truth).filter { $0 == $1 }.count
    XCTAssertGreaterThan(Double(correct) / 700, 0.5, "label accuracy (chance ≈ 0.1–0.3)")
    XCTAssertEqual(predictions[0].probabilities.count, 700 * 10)

    // Predictions follow the AnnData's cell order, whatever it is.
    let reversed = try adata.subset(obs: Array((0..<700).reversed()))
    XCTAssertEqual(try model.predictLabels(reversed)[0].labels, predictions[0].labels.reversed())
    // Deterministic inference from q_mu.
    XCTAssertEqual(try model.latent().toArray(Float.self), latent.toArray(Float.self))

    let dir = try temporaryDirectory()
    try model.save(to: dir)
    let loaded = try ScAtlasVAE.load(from: dir, adata: adata)
    XCTAssertEqual(loaded.history, model.history)
    XCTAssertEqual(try loaded.latent().toArray(Float.self), latent.toArray(Float.self))
    XCTAssertEqual(try loaded.reconstructedExpression().shape, [700, 765])
  }

  func testAResumedRunIsTheUninterruptedRun() throws {
    let adata = try Self.pbmc.subset(obs: Array(0..<300))
    let setup = try ScAtlasVAESetup(adata, batchKeys: ["half", "lane"], labelKeys: ["cell_type"])
    let dir = try temporaryDirectory()
    // Warm-up and label window the same whether the run is cut at epoch 3 or not.
    func run(epochs: Int, checkpoint: String, resume: String? = nil) throws -> ScAtlasVAE {
      Runtime.seed(3)  // the initial weights
      let model = try ScAtlasVAE(adata, setup: setup, architecture: Self.smallConfig(adata.nVars))
      var options = Self.options(epochs: epochs)
      options.klWarmupEpochs = 2
      options.predictionLastEpochs = 6
      options.periodicCheckpoint = (dir.appendingPathComponent(checkpoint), 2)
      options.resume = try resume.map { try TrainingCheckpoint.read(dir.appendingPathComponent($0)) }
      try model.train(options)
      return model
    }
    let whole = try run(epochs: 6, checkpoint: "whole.safetensors")
    _ = try run(epochs: 3, checkpoint: "cut.safetensors")
    XCTAssertEqual(try TrainingCheckpoint.read(dir.appendingPathComponent("cut.safetensors")).epochs, 3, "written after the last epoch")
    let resumed = try run(epochs: 6, checkpoint: "resumed.safetensors", resume: "cut.safetensors")
    XCTAssertEqual(resumed.history, whole.history)
    XCTAssertEqual(resumed.history.epochs.count, 6)
    for (key, value) in whole.module.stateDict() {
      XCTAssertEqual(resumed.module.stateDict()[key]!.to(.float64).toArray(Double.self), value.to(.float64).toArray(Double.self), key)
    }
    let other = try ScAtlasVAE(adata, setup: setup, architecture: Self.smallConfig(adata.nVars))
    var options = Self.options(epochs: 6, seed: 4)
    options.resume = try TrainingCheckpoint.read(dir.appendingPathComponent("cut.safetensors"))
    XCTAssertThrowsError(try other.train(options)) { XCTAssertTrue("\($0)".contains("seed 3"), "\($0)") }
  }

  func testTransferKeepsTheReferenceRowsAndPlacesQueryCellsByType() throws {
    let adata = Self.pbmc
    let reference = try adata.subset(obs: Array(0..<500))
    var query = try adata.subset(obs: Array(500..<700))
    try query.obs.set("half", .categorical(Categorical(Array(repeating: "query", count: 200))))
    let setup = try ScAtlasVAESetup(reference, batchKeys: ["half"], labelKeys: ["cell_type"])
    let model = try ScAtlasVAE(reference, setup: setup, architecture: Self.smallConfig(adata.nVars))
    try model.train(Self.options(epochs: 20))
    let before = model.module.stateDict()["decoder.cat_embedding.0.weight"]!.clone()

    let transferred = try ScAtlasVAE.transfer(reference: model, query: query,
                                              options: .init(training: Self.options(epochs: 5)))
    XCTAssertEqual(transferred.setup.batchCategories, ["first", "second", "query"])
    let after = transferred.module.stateDict()["decoder.cat_embedding.0.weight"]!
    XCTAssertEqual(after.shape, [3, 8])
    XCTAssertEqual(after.narrow(dim: 0, start: 0, length: 2).toArray(Float.self), before.toArray(Float.self))
    // The frozen encoder gives the reference's latent for the query.
    XCTAssertEqual(try transferred.latent().toArray(Float.self), try model.latent(query).toArray(Float.self))

    // Query cells land near reference cells of the same type.
    let truth = try adata.obs.labels("bulk_labels")
    let vote = try ScAtlasVAE.knnVote(reference: try model.latent(), labels: Array(truth[0..<500]),
                                      query: try transferred.latent(), k: 15)
    let accuracy = Double(zip(vote.labels, truth[500...]).filter { $0 == $1 }.count) / 200
    XCTAssertGreaterThan(accuracy, 0.5)
    let placed = try ScAtlasVAE.knnPlacement(reference: try model.latent(), referenceUMAP: (0..<500).map { [Double($0), 1] },
                                             query: try transferred.latent(), k: 3)
    XCTAssertEqual(placed.count, 200)
    XCTAssertEqual(placed[0][1], 1)
  }

  func testQueryGenesAreAlignedByNameWithMissingGenesCounted() throws {
    let adata = Self.pbmc
    let genes = adata.varNames
    let shuffled = try adata.subset(vars: Array((10..<765).reversed()))
    let (aligned, missing) = try AnnData.aligned(shuffled, toGenes: genes)
    XCTAssertEqual(missing, 10)
    XCTAssertEqual(aligned.varNames, genes)
    let original = try adata.X!.denseDoubles(), result = try aligned.X!.denseDoubles()
    XCTAssertEqual(result[765 * 3 + 20], original[765 * 3 + 20])
    XCTAssertEqual(result[765 * 3 + 5], 0)
    var other = adata
    other.var = DataFrame(index: genes.map { "other-\($0)" })
    XCTAssertThrowsError(try AnnData.aligned(other, toGenes: genes)) { XCTAssertTrue("\($0)".contains("shares none"), "\($0)") }
  }

  // MARK: - The reference's failure modes

  func testNoLabelledCellGivesZeroNotNaNAndEmptyClassesGetNoInfiniteWeight() throws {
    let logits = Tensor([0.1, 0.2, 0.3, 0.4] as [Float], shape: [2, 2])
    let none = AtlasPenalties.weightedCrossEntropy(logits, labels: Tensor([-1, -1] as [Int64]), classWeights: Tensor([1, 1] as [Float]))
    XCTAssertEqual(none.item(), 0)
    let some = AtlasPenalties.weightedCrossEntropy(logits, labels: Tensor([1, -1] as [Int64]), classWeights: Tensor([1, 2] as [Float]))
    // One labelled cell: 2 · −log softmax(0.1, 0.2)[1].
    XCTAssertEqual(some.item(), 2 * -log(exp(0.2) / (exp(0.1) + exp(0.2))), accuracy: 1e-6)

    var adata = Self.pbmc
    // A categorical with a category no cell has, and a label name sorting after "undefined".
    let labels = try adata.obs.labels("cell_type").map { $0 == "Dendritic" ? "zeta" : $0! }
    try adata.obs.set("cell_type", .categorical(try Categorical(
      codes: labels.map { name in Set(labels).sorted().firstIndex(of: name)! },
      categories: .string(Set(labels).sorted() + ["empty"]))))
    let setup = try ScAtlasVAESetup(adata, labelKeys: ["cell_type"])
    XCTAssertEqual(setup.labelCategories[0].last, "zeta")
    XCTAssertFalse(setup.labelCategories[0].contains("empty"))
    let cells = try AtlasCells(adata, setup: setup, reconstruction: .zinb)
    let weights = cells.classWeights(config: setup.config()).first!.toArray(Float.self)
    XCTAssertTrue(weights.allSatisfy { $0.isFinite && $0 > 0 }, "\(weights)")
    let zeta = setup.labelCategories[0].firstIndex(of: "zeta")!
    XCTAssertEqual(cells.labelCodes[0].filter { $0 == zeta }.count, labels.filter { $0 == "zeta" }.count)
  }

  func testNegativeBinomialUsesTheLogOfTheMeanAndEmptyCellsStayFinite() throws {
    var config = ScAtlasVAEConfig(nInput: 3, hiddenStacks: [4], nLatent: 2)
    config.reconstruction = .nb
    let x = Tensor([0, 2, 5, 0, 0, 0] as [Float], shape: [2, 3])
    let mean = Tensor([0.5, 1.5, 4, 0, 0, 0] as [Float], shape: [2, 3])
    let decoding = AtlasDecoding(hidden: x, scale: mean, mean: mean, logDispersion: Tensor([0, 0.5, 1] as [Float]),
                                 dropoutLogits: Tensor.zeros([2, 3]))
    let nll = AtlasLikelihood.negativeLogLikelihood(x, decoding: decoding, config: config).toArray(Float.self)
    // NB(x; mu, θ) = Γ(x+θ)/(Γ(θ) x!) (θ/(θ+mu))^θ (mu/(θ+mu))^x
    func nb(_ x: Double, _ mu: Double, _ theta: Double) -> Double {
      lgamma(x + theta) - lgamma(theta) - lgamma(x + 1) + theta * log(theta / (theta + mu)) + x * log(mu / (theta + mu))
    }
    let thetas = [1.0, exp(0.5), exp(1.0)]
    XCTAssertEqual(Double(nll[0]), -(nb(0, 0.5, thetas[0]) + nb(2, 1.5, thetas[1]) + nb(5, 4, thetas[2])), accuracy: 1e-4)
    XCTAssertTrue(nll[1].isFinite, "a cell without counts (mean 0) gives a finite loss")
    config.reconstruction = .zinb
    let zinb = AtlasLikelihood.negativeLogLikelihood(x, decoding: decoding, config: config).toArray(Float.self)
    XCTAssertTrue(zinb.allSatisfy(\.isFinite))
  }

  // MARK: - Bad input

  func testBadInputGetsClearErrors() throws {
    let adata = Self.pbmc
    func message(_ body: () throws -> Void) -> String {
      do { try body() } catch { return "\(error)" }
      return "no error"
    }
    XCTAssertTrue(message { _ = try ScAtlasVAESetup(adata, batchKeys: ["nope"]) }.contains("no obs column 'nope'"))
    XCTAssertTrue(message { _ = try ScAtlasVAESetup(adata, labelKeys: ["missing_labels"]) }.contains("missing_labels"))
    var allUnlabelled = adata
    try allUnlabelled.obs.set("cell_type", .categorical(Categorical(Array(repeating: "undefined", count: 700))))
    XCTAssertTrue(message { _ = try ScAtlasVAESetup(allUnlabelled, labelKeys: ["cell_type"]) }.contains("no labelled cell"))

    // A categorical batch column with a category no cell has: the category is left out (the
    // reference counts present values but keeps the codes, which then overflow its embedding).
    var unused = adata
    let halves = try adata.obs.labels("half").map { $0 == "first" ? 0 : 2 }
    try unused.obs.set("half", .categorical(try Categorical(codes: halves, categories: .string(["first", "unused", "second"]))))
    XCTAssertEqual(try ScAtlasVAESetup(unused, batchKeys: ["half"]).batchCategories, ["first", "second"])

    let setup = try ScAtlasVAESetup(adata, batchKeys: ["half"])
    var empty = adata
    var values = try empty.X!.denseDoubles()
    for j in 0..<765 { values[j] = 0 }
    empty.X = .dense(try DenseArray(rows: 700, cols: 765, values: values))
    XCTAssertTrue(message { _ = try ScAtlasVAE(empty, setup: setup) }.contains("has no counts"))
    var fractional = adata
    values = try adata.X!.denseDoubles()
    values[3] = 0.5
    fractional.X = .dense(try DenseArray(rows: 700, cols: 765, values: values))
    XCTAssertTrue(message { _ = try ScAtlasVAE(fractional, setup: setup) }.contains("not an integer"))
    var unknownBatch = adata
    try unknownBatch.obs.set("half", .categorical(Categorical(Array(repeating: "third", count: 700))))
    let model = try ScAtlasVAE(adata, setup: setup, architecture: Self.smallConfig(765))
    XCTAssertTrue(message { _ = try model.reconstructedExpression(unknownBatch) }.contains("third"))
    // Embedding needs no batch column: the encoder is batch-invariant.
    XCTAssertEqual(try model.latent(unknownBatch).shape, [700, 8])
  }
}
