import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// The SCVIModel facade on the bundled PBMC data: training, outputs, save/load, bad input.
final class SCVIModelTests: XCTestCase {
  /// 700 PBMCs × 765 genes with integer counts and a made-up two-batch split.
  static let pbmc: AnnData = {
    var adata = try! AnnData.read(h5ad: repositoryFile("data/pbmc68k_reduced.h5ad").path)
    let halves = (0..<adata.nObs).map { $0 < 350 ? "first" : "second" }
    try! adata.obs.set("half", .categorical(Categorical(halves)))
    return adata
  }()

  private func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scvi-model-\(UUID())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
  }

  func testTrainingImprovesTheHeldOutELBOAndSavesAndLoads() throws {
    let adata = Self.pbmc
    let model = try SCVIModel(adata, setup: SCVISetup(adata, batchKey: "half"),
                              architecture: .init(nHidden: 32, nLatent: 5))
    var options = SCVIModel.TrainingOptions(maxEpochs: 8, seed: 1)
    options.klWarmupEpochs = nil
    let history = try model.train(options)
    XCTAssertEqual(history.epochs.count, 8)
    let elbo = history.values("elbo_validation").map { $0! }
    XCTAssertLessThan(elbo.last!, elbo.first! - 10, "held-out ELBO after 8 epochs: \(elbo)")
    XCTAssertEqual(model.split?.validation.count, 70)
    XCTAssertEqual(history.last("kl_weight"), 1)

    let latent = try model.latentRepresentation()
    XCTAssertEqual(latent.shape, [700, 5])
    let expression = try model.normalizedExpression(indices: Array(0..<10))
    XCTAssertEqual(expression.shape, [10, 765])
    XCTAssertEqual(expression.sum(dim: 1).toArray(Float.self).map { Double($0) }, Array(repeating: 1, count: 10), accuracy: 1e-4)
    let rec = try model.reconstructionError()
    let elboValue = try model.elbo()
    XCTAssertGreaterThan(rec, 0)
    XCTAssertLessThan(elboValue, -rec, "ELBO = −(reconstruction + KL) with KL > 0")
    let samples = try model.posteriorPredictiveSample(indices: [0, 1, 2], nSamples: 4)
    XCTAssertEqual(samples.shape, [3, 765, 4])
    XCTAssertEqual(samples.toArray(Float.self).filter { $0 < 0 || $0.rounded() != $0 }.count, 0)

    let dir = try temporaryDirectory()
    try model.save(to: dir)
    let loaded = try SCVIModel.load(from: dir, adata: adata)
    XCTAssertEqual(loaded.history, model.history)
    XCTAssertEqual(try loaded.latentRepresentation().toArray(Float.self), latent.toArray(Float.self))

    let fewerGenes = try adata.subset(vars: Array(0..<700))
    XCTAssertThrowsError(try SCVIModel.load(from: dir, adata: fewerGenes)) { error in
      XCTAssertTrue("\(error)".contains("765"), "\(error)")
    }
    XCTAssertThrowsError(try SCVIModel.load(from: dir.appendingPathComponent("missing"), adata: adata))
  }

  func testLDVAELoadingsAndMarginalLikelihood() throws {
    let adata = Self.pbmc
    let model = try SCVIModel(adata, setup: SCVISetup(adata), kind: .ldvae, architecture: .init(nHidden: 32, nLatent: 4))
    try model.train(.init(maxEpochs: 3))
    XCTAssertEqual(model.config.geneLikelihood, .nb)
    XCTAssertFalse(model.config.useObservedLibSize)
    XCTAssertEqual(try model.loadings().shape, [765, 4])
    let marginal = try model.marginalLogLikelihood(indices: Array(0..<50), nMCSamples: 20)
    let elbo = try model.elbo(indices: Array(0..<50))
    XCTAssertTrue(marginal.isFinite)
    XCTAssertGreaterThan(marginal, elbo - 5, "log p(x) ≥ ELBO up to Monte Carlo noise")
  }

  /// B cells against the rest: change-mode DE ranks genes whose observed expression differs,
  /// and the posterior LFC follows the observed normalized-mean ratio.
  func testDifferentialExpressionFollowsTheData() throws {
    let adata = Self.pbmc
    let model = try SCVIModel(adata, setup: SCVISetup(adata), architecture: .init(nHidden: 64))
    var options = SCVIModel.TrainingOptions(maxEpochs: 20, seed: 2)
    options.klWarmupEpochs = 10
    try model.train(options)
    let table = try model.differentialExpression(groupby: "bulk_labels", group1: "CD19+ B", mode: .change, nSamples: 600)
    XCTAssertEqual(table.genes.count, 765)
    XCTAssertEqual(table.group2, "Rest")
    let proba = table["proba_de"]!
    XCTAssertEqual(proba, proba.sorted(by: >), "sorted by proba_de")
    let lfc = table["lfc_mean"]!
    let observed = zip(table["raw_normalized_mean1"]!, table["raw_normalized_mean2"]!).map { log2(($0 + 0.1) / ($1 + 0.1)) }
    let correlation = pearson(lfc, observed)
    XCTAssertGreaterThan(correlation, 0.6, "posterior LFC against observed log ratio")
    let markers = ["CD79A", "CD79B", "MS4A1"]
    for marker in markers {
      let row = table.genes.firstIndex(of: marker)!
      XCTAssertGreaterThan(lfc[row], 1, "\(marker) is up in B cells")
      XCTAssertLessThan(row, 100, "\(marker) ranks among the top 100 of 765 genes")
    }
    XCTAssertEqual(table["is_de_fdr_0.05"]!.filter { $0 == 1 }.count, table["is_de_fdr_0.05"]!.prefix { $0 == 1 }.count,
                   "the FDR set is a prefix of the ranking")
    XCTAssertTrue(table.csv().hasPrefix("gene,proba_de,proba_not_de,bayes_factor,scale1,scale2"))
    let vanilla = try model.differentialExpression(groupby: "bulk_labels", group1: "CD19+ B", group2: "CD14+ Monocyte", nSamples: 500)
    XCTAssertEqual(vanilla["bayes_factor"]!, vanilla["bayes_factor"]!.sorted(by: >))
    XCTAssertThrowsError(try model.differentialExpression(groupby: "bulk_labels", group1: "no such type"))
    XCTAssertThrowsError(try model.differentialExpression(groupby: "nope", group1: "CD19+ B"))
  }

  /// scArches mapping: a query batch is added; the encoder and the decoder's expression
  /// weights stay as trained on the reference, the new batch's columns learn.
  func testQueryMappingTrainsOnlyTheNewBatchColumns() throws {
    var adata = Self.pbmc
    try adata.obs.set("lab", .categorical(Categorical((0..<adata.nObs).map { ["a", "b", "c"][$0 % 3] })))
    let labels = try adata.obs.labels("lab")
    let referenceData = try adata.subset(obs: labels.indices.filter { labels[$0] != "c" })
    let queryData = try adata.subset(obs: labels.indices.filter { labels[$0] == "c" })
    let reference = try SCVIModel(referenceData, setup: SCVISetup(referenceData, batchKey: "lab"),
                                  architecture: .init(nHidden: 32, nLatent: 4))
    try reference.train(.init(maxEpochs: 3))

    let query = try SCVIModel.loadQueryData(queryData, reference: reference)
    XCTAssertEqual(query.setup.batchCategories, ["a", "b", "c"])
    XCTAssertEqual(query.config.nBatch, 3)
    let before = query.module.stateDict()
    let snapshot = Dictionary(uniqueKeysWithValues: before.map { ($0.key, $0.value.clone()) })
    try query.train(.init(maxEpochs: 3))
    let after = query.module.stateDict()
    func changed(_ key: String) -> Bool { (after[key]! - snapshot[key]!).abs().max().item() > 0 }

    XCTAssertFalse(changed("px_r"))
    XCTAssertFalse(changed("decoder.px_scale_decoder.0.weight"))
    XCTAssertFalse(changed("z_encoder.encoder.fc_layers.Layer 0.0.weight"))
    XCTAssertFalse(changed("z_encoder.encoder.fc_layers.Layer 0.1.running_mean"), "encoder batch-norm statistics frozen")
    XCTAssertTrue(changed("decoder.px_decoder.fc_layers.Layer 0.1.weight"), "decoder batch norm trains")
    let decoderWeight = "decoder.px_decoder.fc_layers.Layer 0.0.weight"
    XCTAssertEqual(after[decoderWeight]!.shape, [32, 4 + 3])
    let delta = (after[decoderWeight]! - snapshot[decoderWeight]!).abs().max(dim: 0).toArray(Float.self)
    // Only Adam's weight decay (1e-6) reaches the frozen columns, as in scvi-tools.
    XCTAssertLessThan(delta.prefix(4).max()!, 1e-6, "latent columns frozen")
    XCTAssertGreaterThan(delta[6], 0, "the new batch's column learns")
    XCTAssertEqual(try query.latentRepresentation(referenceData).toArray(Float.self),
                   try reference.latentRepresentation(referenceData).toArray(Float.self),
                   "the reference encoder is unchanged")
    XCTAssertThrowsError(try SCVIModel.loadQueryData(try adata.subset(vars: Array(0..<10)), reference: reference))
  }

  func testBadCountsAndCovariatesGiveClearErrors() throws {
    func adata(_ values: [Float], obs: DataFrame? = nil) throws -> AnnData {
      try AnnData(X: .dense(DenseArray(shape: [2, 3], data: .float32(values))), obs: obs)
    }
    func message(_ body: () throws -> Void) -> String {
      do { try body(); return "no error" } catch { return "\(error)" }
    }
    let nan = try adata([1, .nan, 2, 3, 4, 5])
    XCTAssertTrue(message { _ = try SCVIModel(nan, setup: SCVISetup(nan)) }.contains("nan"))
    let negative = try adata([1, -2, 2, 3, 4, 5])
    XCTAssertTrue(message { _ = try SCVIModel(negative, setup: SCVISetup(negative)) }.contains("negative"))
    let fractional = try adata([1, 2.5, 2, 3, 4, 5])
    XCTAssertTrue(message { _ = try SCVIModel(fractional, setup: SCVISetup(fractional)) }.contains("not an integer"))
    XCTAssertEqual(message {
      _ = try SCVIModel(fractional, setup: SCVISetup(fractional), architecture: .init(geneLikelihood: .poisson))
    }, "no error", "poisson accepts non-integer values")
    let empty = try adata([0, 0, 0, 3, 4, 5])
    XCTAssertTrue(message { _ = try SCVIModel(empty, setup: SCVISetup(empty)) }.contains("no counts"))
    XCTAssertEqual(message { _ = try SCVIModel(empty, setup: SCVISetup(empty), kind: .ldvae) }, "no error",
                   "a latent library size handles empty cells")
    XCTAssertTrue(message { _ = try SCVISetup(nan, batchKey: "batch") }.contains("no obs column 'batch'"))
    // A categorical batch column with a missing value (pandas' NaN, code -1) names the cell.
    var obs = DataFrame(index: ["c0", "c1"])
    try obs.set("batch", .categorical(try Categorical(codes: [0, -1], categories: .string(["a"]))))
    let unbatched = try adata([1, 2, 2, 3, 4, 5], obs: obs)
    let missing = message { _ = try SCVIModel(unbatched, setup: SCVISetup(unbatched, batchKey: "batch")) }
    XCTAssertTrue(missing.contains("obs column 'batch' has a missing value at cell 1 ('c1')"), missing)
  }

  func testUnknownBatchOnNewDataIsRefused() throws {
    let adata = Self.pbmc
    let model = try SCVIModel(adata, setup: SCVISetup(adata, batchKey: "half"), architecture: .init(nHidden: 16))
    var query = try adata.subset(obs: Array(0..<20))
    try query.obs.set("half", .categorical(Categorical(Array(repeating: "third", count: 20))))
    XCTAssertThrowsError(try model.latentRepresentation(query)) { error in
      XCTAssertTrue("\(error)".contains("third"), "\(error)")
    }
  }
}

private func pearson(_ a: [Double], _ b: [Double]) -> Double {
  let n = Double(a.count), ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
  let cov = zip(a, b).reduce(0) { $0 + ($1.0 - ma) * ($1.1 - mb) }
  let va = a.reduce(0) { $0 + ($1 - ma) * ($1 - ma) }, vb = b.reduce(0) { $0 + ($1 - mb) * ($1 - mb) }
  return cov / (va * vb).squareRoot()
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
  XCTAssertEqual(a.count, b.count, file: file, line: line)
  for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, file: file, line: line) }
}
