import ArgumentParser
import Foundation
import SingleCell

/// `singlecell atlas …`: scAtlasVAE atlas integration, label prediction and query mapping.
struct AtlasCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "atlas", abstract: "scAtlasVAE: atlas integration with several batch keys, cell-type heads and query transfer.",
    subcommands: [AtlasTrain.self, AtlasMap.self, AtlasPredict.self, EmbedCommand<AtlasKind>.self,
                  LatentCommand<AtlasKind>.self, AtlasImport.self])
}

/// scAtlasVAE for the generic model-folder verbs (embed, latent).
enum AtlasKind: FolderModelKind {
  static let name = "atlas"
  static let title = "scAtlasVAE"
  static let latentKey = ScAtlasVAE.latentKey

  static func open(_ dir: URL, device: Device) throws -> ScAtlasVAE {
    try openWithReference(dir, device: device, requireBatches: false).model
  }

  /// The model and its reference cells (adata.h5ad; for a model trained with --backed, its
  /// counts are read again from the files it streamed from).
  static func openWithReference(_ dir: URL, device: Device, requireBatches: Bool) throws -> (reference: AnnData, model: ScAtlasVAE) {
    let reference = try AnnData.read(h5ad: dir.appendingPathComponent("adata.h5ad").path)
    let model: ScAtlasVAE
    if reference.X == nil, let streamed = try BackedInputs.reopen(reference) {
      model = try ScAtlasVAE.load(from: dir, streaming: streamed.source, metadata: reference, requireBatches: requireBatches)
    } else {
      model = try ScAtlasVAE.load(from: dir, adata: reference, requireBatches: requireBatches)
    }
    try model.to(device)
    return (reference, model)
  }

  static func genes(_ model: ScAtlasVAE) -> [String] { model.setup.geneNames }
  static func layer(_ model: ScAtlasVAE) -> String? { model.setup.layer }

  /// The encoder is batch-invariant: `batch` changes nothing.
  static func latent(_ model: ScAtlasVAE, _ cells: AnnData, batch: String?) throws -> Tensor { try model.latent(cells) }
}

// MARK: - train

struct AtlasTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Train scAtlasVAE on the counts of a reference .h5ad.",
    discussion: """
      Writes OUTDIR/model.safetensors and model.json (the model), adata.h5ad (the input with \
      obsm['X_scAtlasVAE'], obsm['X_umap'] and obs['predicted_<label key>'] / '<label key>_confidence'), \
      history.csv, metrics.json, umap_<key>.png per batch and label key and report.html. The first \
      --batch-key is the main batch; more are the reference's additional batch keys. Cells whose label \
      is --unlabeled (or missing) train without a label loss. Defaults are the reference's (lr 5e-5, \
      batch 128, 20 % validation, KL warm-up 400 epochs, labels in the last 10 epochs). With --backed \
      the counts stream from disk by row blocks (several inputs train as one collection, genes aligned \
      by name to the first file's); adata.h5ad then keeps obs, var, the latent and the predictions, \
      not the counts, and no UMAP is computed (run `singlecell umap` on it). A failed run leaves \
      OUTDIR as it was. --checkpoint PATH is written every --checkpoint-every epochs and at the end; \
      --resume PATH continues such a run exactly (same input, options and --seed).
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Reference .h5ad with raw counts in X or in --layer (with --backed, several files train as one collection).")
  var inputs: [String]
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "Layer holding the counts (default X).") var layer: String?
  @Option(help: "obs column of batches (repeat for additional batch keys).") var batchKey: [String] = []
  @Option(help: "obs column of cell labels (repeat for more label heads).") var labelKey: [String] = []
  @Option(help: "The label of unlabelled cells.") var unlabeled = "undefined"
  @Option(help: "Hidden units of the encoder's layers (repeat for more layers).") var hidden: [Int] = [128]
  @Option(help: "Latent dimensions.") var nLatent = 10
  @Option(help: "zinb, nb, zg or mse.") var likelihood = "zinb"
  @Option(help: "gene-cell, gene or gene-batch.") var dispersion = "gene-cell"
  @Option(help: "embedding or onehot.") var batchEmbedding = "embedding"
  @Option(help: "Embedding size per batch key.") var batchHiddenDim = 8
  @Option(help: "MMD between batches on q_mu: batch, additional_batch or both.") var mmdKey: String?
  @Flag(help: "Normalise each cell to 1e4 counts before the encoder's log1p.") var totalVariational = false
  @Flag(help: "Give the encoder the log library size too.") var encodeLibsize = false
  @Option(help: "Epochs (default: min(round(20000 / cells · 400), 400)).") var maxEpochs: Int?
  @Option(help: "AdamW learning rate.") var lr = 5e-5
  @Option(help: "Minibatch size.") var batchSize = 128
  @Option(help: "Fraction of cells held out for validation.") var validationFraction = 0.2
  @Option(help: "KL warm-up epochs (0 for none).") var klWarmupEpochs = 400
  @Option(help: "Train the label heads in the last N epochs.") var predLastNEpochs = 10
  @Flag(help: "Reduce the learning rate when the validation loss plateaus.") var lrSchedule = false
  @Flag(help: "No progress line.") var quiet = false
  @Option(help: "Write a resumable checkpoint (safetensors) here every --checkpoint-every epochs and after the last.")
  var checkpoint: String?
  @Option(help: "Epochs between checkpoints.") var checkpointEvery = 10
  @Option(help: "Continue the run saved in this checkpoint (same input, options and --seed).") var resume: String?
  @OptionGroup var disk: BackedArguments
  @OptionGroup(title: "Data-parallel training (docs/distributed.md)") var distributed: DistributedArguments

  func validate() throws {
    try disk.check(inputs: inputs)
    if checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be positive") }
    if resume != nil && lrSchedule { throw ValidationError("--resume cannot continue an --lr-schedule run (its plateau counters are not saved)") }
  }

  func run() throws {
    guard let (device, group) = try distributed.start(global) else { return }
    let rank = group?.rank ?? 0
    let opened = disk.backed ? try BackedInputs.open(inputs, layer: layer) : nil
    let adata = try opened?.metadata ?? AnnData.read(h5ad: inputs[0])
    var architecture = ScAtlasVAEConfig(nInput: adata.nVars, hiddenStacks: hidden, nLatent: nLatent)
    architecture.reconstruction = try parseChoice(likelihood, "--likelihood")
    architecture.dispersion = try parseChoice(dispersion, "--dispersion")
    architecture.covariateEncoding = try parseChoice(batchEmbedding, "--batch-embedding")
    architecture.batchHiddenDim = batchHiddenDim
    architecture.mmdKey = try mmdKey.map { try parseChoice($0, "--mmd-key") }
    architecture.totalVariational = totalVariational
    architecture.encodeLibsize = encodeLibsize
    let setup: ScAtlasVAESetup
    let model: ScAtlasVAE
    if let opened {
      setup = try ScAtlasVAESetup(metadata: adata, layer: layer, batchKeys: batchKey, labelKeys: labelKey, unlabeled: unlabeled)
      model = try ScAtlasVAE(streaming: opened.source, metadata: adata, setup: setup, architecture: architecture)
    } else {
      setup = try ScAtlasVAESetup(adata, layer: layer, batchKeys: batchKey, labelKeys: labelKey, unlabeled: unlabeled)
      model = try ScAtlasVAE(adata, setup: setup, architecture: architecture)
    }
    try model.to(device)
    var options = ScAtlasVAE.TrainingOptions(maxEpochs: maxEpochs, learningRate: lr, batchSize: batchSize, seed: global.seed,
                                             progress: !quiet && rank == 0)
    options.validationFraction = validationFraction
    options.klWarmupEpochs = klWarmupEpochs > 0 ? klWarmupEpochs : nil
    options.predictionLastEpochs = predLastNEpochs
    options.reduceLROnPlateau = lrSchedule
    options.streaming = disk.loaderOptions
    options.periodicCheckpoint = checkpoint.map { (URL(fileURLWithPath: $0), checkpointEvery) }
    options.resume = try resume.map { try TrainingCheckpoint.read(URL(fileURLWithPath: $0), group: group) }
    options.processGroup = group
    guard rank == 0 else {  // only rank 0 writes outputs
      try model.train(options)
      return
    }
    let outdir = URL(fileURLWithPath: output)
    try writeFolderAtomically(outdir) { staging in
      options.checkpoint = staging.appendingPathComponent("last-good.safetensors")
      try model.train(options)
      try model.save(to: staging)
      var result = adata
      let latent = try model.latent()  // one pass over the cells (streamed with --backed)
      result.obsm[ScAtlasVAE.latentKey] = try latent.floatElement()
      if !setup.labelKeys.isEmpty { try addPredictions(try model.predictLabels(fromLatent: latent), to: &result) }
      if !disk.backed {
        try result.neighbors(useRep: ScAtlasVAE.latentKey, seed: global.seed)
        try result.umap(seed: global.seed)
      }
      try result.write(h5ad: staging.appendingPathComponent("adata.h5ad").path)
      try writeAtomically(Data(model.history.csv().utf8), to: staging.appendingPathComponent("history.csv"))
      var metrics = try trainingMetrics(model, adata: result)
      metrics["backed"] = disk.backed
      metrics.merge(dataParallelMetrics(ranks: group?.worldSize, replicaDifference: model.replicaDifference)) { $1 }
      try writeJSON(metrics, to: staging.appendingPathComponent("metrics.json"))
      if !disk.backed {
        for key in setup.batchKeys + setup.labelKeys + setup.labelKeys.map({ "predicted_\($0)" }) {
          try EmbeddingPlot(adata: result, basis: "umap", color: key).write(to: staging.appendingPathComponent("umap_\(safeName(key)).png"))
        }
      }
      try RunReport(directory: staging).write()
    }
    print("wrote \(outdir.path): \(model.history.epochs.count) epochs in \(String(format: "%.1f", model.trainSeconds)) s")
  }

  private func trainingMetrics(_ model: ScAtlasVAE, adata: AnnData) throws -> [String: Any] {
    let epochs = model.history.epochs.count
    var metrics: [String: Any] = [
      "model": "scatlasvae", "train_seconds": model.trainSeconds, "epochs": epochs,
      "seconds_per_epoch": model.trainSeconds / Double(max(epochs, 1)), "epoch_seconds": model.epochSeconds,
      "n_cells": adata.nObs, "n_genes": adata.nVars,
    ]
    for key in ["train_loss", "validation_loss", "elbo_validation", "reconstruction_loss_validation", "kl_loss_validation",
                "prediction_loss_validation"] {
      if let value = model.history.last(key) { metrics[key] = value }
    }
    // Training-set label accuracy over the labelled cells, per label key.
    let unlabeled = model.setup.unlabeled
    for key in model.setup.labelKeys {
      let truth = try adata.obs.labels(key), predicted = try adata.obs.labels("predicted_\(key)")
      let pairs = zip(truth, predicted).filter { $0.0 != nil && $0.0 != unlabeled }.map { ($0.0!, $0.1 ?? "") }
      if !pairs.isEmpty {
        metrics["accuracy_\(key)"] = try accuracy(truth: pairs.map(\.0), predicted: pairs.map(\.1))
        metrics["macro_f1_\(key)"] = try macroF1(truth: pairs.map(\.0), predicted: pairs.map(\.1))
      }
    }
    return metrics
  }
}

// MARK: - map

struct AtlasMap: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "map", abstract: "Map a query onto a trained atlas: embed, predict labels, place on the reference UMAP.",
    discussion: """
      Genes are matched by name (missing genes zero-filled, with a warning that counts them). \
      Writes OUT/query.h5ad with obsm['X_scAtlasVAE'], obsm['X_umap'] (the mean UMAP position of the \
      k nearest reference cells), obs['predicted_<label key>'] from the classifier and \
      obs['knn_<label key>'] from a k-nearest-reference vote, with confidences; OUT/metrics.json \
      (accuracy and macro-F1 where the query has the label column) and OUT/umap_query.png. With \
      --fine-tune-epochs the decoder learns the query's batches first (reference rows kept, encoder \
      frozen unless --train-encoder) and the model is saved to OUT/model.
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Model folder written by atlas train (with its adata.h5ad).") var modelDir: String
  @Argument(help: "Query: \(countsInputHelp).") var query: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "The query's obs column of batches (default: the model's batch key).") var batchKey: String?
  @Option(help: "Fine-tune on the query for this many epochs (0: no training).") var fineTuneEpochs = 0
  @Option(help: "AdamW learning rate for fine-tuning.") var lr = 5e-5
  @Flag(help: "Let fine-tuning change the encoder.") var trainEncoder = false
  @Option(name: .customShort("k"), help: "Reference neighbours for the kNN vote and UMAP placement.") var k = 15

  func run() throws {
    let device = try global.apply()
    var (reference, model) = try AtlasKind.openWithReference(URL(fileURLWithPath: modelDir), device: device, requireBatches: true)
    let referenceModel = model
    var (_, aligned, missing) = try AtlasKind.alignedData(model, query)
    let outdir = URL(fileURLWithPath: output)
    try writeFolderAtomically(outdir) { staging in
      if fineTuneEpochs > 0 {
        var training = ScAtlasVAE.TrainingOptions(maxEpochs: fineTuneEpochs, learningRate: lr, seed: global.seed, progress: true)
        training.klWarmupEpochs = nil
        model = try ScAtlasVAE.transfer(reference: model, query: aligned, options: .init(
          batchKey: batchKey, freezeEncoder: !trainEncoder, training: training))
        try model.save(to: staging.appendingPathComponent("model"))
      }
      let latent = try model.latent(aligned)
      aligned.obsm[ScAtlasVAE.latentKey] = try latent.floatElement()
      let referenceLatent = try model.latent(cellsOf: referenceModel)
      if let umap = reference.obsm["X_umap"] {
        let coordinates = try umapRows(umap, cells: reference.nObs)
        let placed = try ScAtlasVAE.knnPlacement(reference: referenceLatent, referenceUMAP: coordinates, query: latent, k: k)
        aligned.obsm["X_umap"] = try Tensor(placed.flatMap { $0.map { Float($0) } }, shape: [placed.count, 2]).floatElement()
      }
      var metrics: [String: Any] = ["n_cells": aligned.nObs, "missing_genes": missing]
      if !model.setup.labelKeys.isEmpty {
        // The classifier of a fine-tuned model is the reference's: same categories.
        try addPredictions(try model.predictLabels(fromLatent: latent), to: &aligned)
        for key in model.setup.labelKeys {
          let vote = try ScAtlasVAE.knnVote(reference: referenceLatent, labels: try reference.obs.labels(key).map {
            $0 == model.setup.unlabeled ? nil : $0 }, query: latent, k: k)
          try aligned.obs.set("knn_\(key)", .categorical(Categorical(vote.labels)))
          try aligned.obs.set("knn_\(key)_confidence", .array(.float64(vote.confidence)))
          if aligned.obs.columnNames.contains(key) {
            let truth = try aligned.obs.labels(key)
            for (method, column) in [("classifier", "predicted_\(key)"), ("knn", "knn_\(key)")] {
              let predicted = try aligned.obs.labels(column)
              let pairs = zip(truth, predicted).compactMap { t, p in t.map { ($0, p ?? "") } }
              metrics["accuracy_\(method)_\(key)"] = try accuracy(truth: pairs.map(\.0), predicted: pairs.map(\.1))
              metrics["macro_f1_\(method)_\(key)"] = try macroF1(truth: pairs.map(\.0), predicted: pairs.map(\.1))
            }
          }
        }
      }
      try aligned.write(h5ad: staging.appendingPathComponent("query.h5ad").path)
      try writeJSON(metrics, to: staging.appendingPathComponent("metrics.json"))
      if aligned.obsm["X_umap"] != nil {
        let color = model.setup.labelKeys.first.map { "predicted_\($0)" }
        try EmbeddingPlot(adata: aligned, basis: "umap", color: color).write(to: staging.appendingPathComponent("umap_query.png"))
      }
    }
    print("wrote \(outdir.path): \(aligned.nObs) query cells mapped")
  }

  private func umapRows(_ element: Element, cells: Int) throws -> [[Double]] {
    guard case .dense(let array) = element, array.shape.count == 2, array.shape[0] == cells, array.shape[1] >= 2,
      let values = array.data.doubles
    else { throw ValidationError("the reference's obsm['X_umap'] is not a [cells, 2] array") }
    return (0..<cells).map { Array(values[($0 * array.shape[1])..<($0 * array.shape[1] + 2)]) }
  }
}

// MARK: - predict

struct AtlasPredict: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict", abstract: "Embed cells and predict their labels with a trained atlas.",
    discussion: "Writes the data with obsm['X_scAtlasVAE'] and obs['predicted_<label key>'] / '<label key>_confidence'; genes are matched by name.")

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Model folder written by atlas train.") var modelDir: String
  @Argument(help: "\(countsInputHelp).") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String

  func run() throws {
    let model = try AtlasKind.open(URL(fileURLWithPath: modelDir), device: try global.apply())
    var (result, aligned, _) = try AtlasKind.alignedData(model, data)
    let latent = try model.latent(aligned)
    result.obsm[ScAtlasVAE.latentKey] = try latent.floatElement()
    if !model.setup.labelKeys.isEmpty { try addPredictions(try model.predictLabels(fromLatent: latent), to: &result) }
    try result.write(h5ad: output)
    print("wrote \(output): \(result.nObs) cells")
  }
}

// MARK: - import

struct AtlasImport: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import", abstract: "Open a file written by scAtlasVAE's save_to_disk as an atlas model folder.",
    discussion: """
      Genes, batch and label keys, categories, settings and weights come from the file (its pandas \
      objects are read by value, never executed; CUDA tensors load on the CPU). The reference does \
      not save total_variational: pass --total-variational if the model used it. DATA (the \
      reference cells, matched to the model's genes by name) becomes OUTDIR/adata.h5ad.
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "The .pt file from save_to_disk.") var file: String
  @Option(help: "The reference cells (.h5ad with raw counts).") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output model folder.") var output: String
  @Flag(help: "The model normalised each cell to 1e4 counts before its encoder.") var totalVariational = false

  func run() throws {
    _ = try global.apply()
    let url = URL(fileURLWithPath: file)
    let (setup, _) = try ScAtlasVAE.readReferenceFile(url, totalVariational: totalVariational)
    let (aligned, missing) = try AnnData.aligned(try AnnData.read(h5ad: data), toGenes: setup.geneNames, layer: setup.layer)
    if missing > 0 { warn("\(missing) of the model's \(setup.geneNames.count) genes are missing from \(data) and were set to zero") }
    let model = try ScAtlasVAE.loadReferenceFile(url, adata: aligned, totalVariational: totalVariational)
    try writeFolderAtomically(URL(fileURLWithPath: output)) { staging in
      try model.save(to: staging)
      var result = aligned
      result.obsm[ScAtlasVAE.latentKey] = try model.latent().floatElement()
      try result.write(h5ad: staging.appendingPathComponent("adata.h5ad").path)
    }
    print("wrote \(output): scAtlasVAE over \(setup.geneNames.count) genes, batch keys \(setup.batchKeys), label keys \(setup.labelKeys)")
  }
}

// MARK: - helpers

/// obs['predicted_<key>'] and obs['<key>_confidence'] for each label key.
private func addPredictions(_ predictions: [AtlasLabelPrediction], to adata: inout AnnData) throws {
  for prediction in predictions {
    try adata.obs.set("predicted_\(prediction.key)", .categorical(Categorical(prediction.labels)))
    try adata.obs.set("\(prediction.key)_confidence", .array(.float64(prediction.confidence.map(Double.init))))
  }
}

private func safeName(_ key: String) -> String {
  String(key.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" })
}

func warn(_ message: String) {
  FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}

/// Builds a folder in a staging folder beside `url`, then puts it in place: a failed run
/// leaves `url` as it was.
func writeFolderAtomically(_ url: URL, _ body: (URL) throws -> Void) throws {
  let parent = url.deletingLastPathComponent()
  try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
  let staging = parent.appendingPathComponent(".\(url.lastPathComponent).partial-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
  do {
    try body(staging)
  } catch {
    try? FileManager.default.removeItem(at: staging)
    throw error
  }
  if FileManager.default.fileExists(atPath: url.path) {
    let old = parent.appendingPathComponent(".\(url.lastPathComponent).old-\(UUID().uuidString)")
    try FileManager.default.moveItem(at: url, to: old)
    try FileManager.default.moveItem(at: staging, to: url)
    try? FileManager.default.removeItem(at: old)
  } else {
    try FileManager.default.moveItem(at: staging, to: url)
  }
}
