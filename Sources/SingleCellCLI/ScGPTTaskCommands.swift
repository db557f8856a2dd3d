import ArgumentParser
import Foundation
import SingleCell

/// Options of the fine-tuning verbs (`annotate`, `integrate`): data, model and training.
struct ScGPTTrainingArguments: ParsableArguments {
  @Option(help: "Pretrained scGPT model folder to start from (default: a new model; none ship with this project).")
  var model: String?
  @Option(help: "Layer of raw counts (default X).") var layer: String?
  @Option(help: "var column of gene names (default: var names).") var geneCol: String?
  @Option(help: "Highly variable genes to keep (seurat_v3).") var nHvg = 1200
  @Option(help: "Tokens per cell, <cls> included (default: all of a cell's expressed genes).") var maxLength: Int?
  @Flag(inversion: .prefixedNo, help: "A token for every gene, zeros included (the reference's include_zero_gene; default: the tutorial's, off for annotate, on for integrate).")
  var includeZeroGenes: Bool?
  @Option(help: "New model: vocab.json to use (e.g. the official census vocabulary) instead of the data's genes.") var vocab: String?
  @Option(help: "Training epochs (default: the tutorial's, 10 for annotate, 15 for integrate).") var epochs: Int?
  @Option(help: "Cells per minibatch (default: the tutorial's, 32 for annotate, 64 for integrate).") var batchSize: Int?
  @Option(help: "Adam's learning rate (StepLR × 0.9 per epoch).") var lr = 1e-4
  @Option(help: "Share of the training cells held out to pick the best epoch.") var validationFraction = 0.1
  @Flag(help: "Plain shuffled minibatches, as the reference, instead of cells of similar length together.") var noLengthBuckets = false
  @Flag(help: "Break binning ties at random from --seed, as the reference (default: the lowest bin, reproducible).") var randomTies = false
  @Option(help: "New model: embedding size.") var dModel = 128
  @Option(help: "New model: attention heads.") var nheads = 4
  @Option(help: "New model: feed-forward width.") var dHid = 128
  @Option(help: "New model: transformer layers.") var nlayers = 4
  @Option(help: "New model: dropout.") var dropout = 0.2
  @Option(help: "New model: dropout on attention probabilities (0 keeps attention fused and memory-efficient on CPU; the reference uses --dropout).")
  var attentionDropout = 0.0
  @OptionGroup var arithmetic: PrecisionArguments
  @OptionGroup(title: "Data-parallel training (docs/distributed.md)") var distributed: DistributedArguments

  func options(_ training: ScGPTTrainingOptions, seed: UInt64, device: Device, group: ProcessGroup?) throws -> ScGPTTaskOptions {
    var training = training
    training.processGroup = group
    training.precision = arithmetic.dtype
    if let epochs { training.epochs = epochs }
    if let batchSize { training.batchSize = batchSize }
    training.learningRate = lr
    training.validationFraction = validationFraction
    training.lengthBuckets = !noLengthBuckets
    training.seed = UInt32(truncatingIfNeeded: seed)
    training.progress = true
    var options = ScGPTTaskOptions(training: training)
    options.device = device
    options.nHVG = nHvg
    options.tieBreak = randomTies ? .random : .lowest
    options.maxLength = maxLength
    options.includeZeroGenes = includeZeroGenes
    options.vocabulary = vocab.map { URL(fileURLWithPath: $0) }
    options.layer = layer
    options.geneColumn = geneCol
    options.pretrained = model.map { URL(fileURLWithPath: $0) }
    options.architecture.dModel = dModel
    options.architecture.nHead = nheads
    options.architecture.dHid = dHid
    options.architecture.nLayers = nlayers
    options.architecture.dropout = dropout
    options.architecture.attentionDropout = attentionDropout
    return options
  }
}

/// The files every fine-tuning run writes: the model folder, history.csv and metrics.json.
private func writeTaskOutputs(_ model: ScGPTTaskModel, to folder: URL, metrics extra: [String: Any]) throws {
  let counts: [String: Any] = ["n_genes": model.data.nVars, "skipped_cells": model.skippedCells, "unknown_genes": model.unknownGenes]
  try writeTaskOutputs(model.folder, model.result, to: folder, metrics: counts.merging(extra) { $1 })
}

private func writeTaskOutputs(_ model: ScGPTModelFolder, _ result: ScGPTTrainingResult, to folder: URL, metrics extra: [String: Any]) throws {
  try model.save(to: folder)
  try writeAtomically(Data(result.history.csv().utf8), to: folder.appendingPathComponent("history.csv"))
  // Steady-state throughput: the median step after the first three (allocator and caches warm).
  let rates = zip(result.stepTokens, result.stepSeconds).dropFirst(3).map { Double($0) / max($1, 1e-9) }.sorted()
  var metrics: [String: Any] = [
    "model": "scgpt", "task": model.args["task"] ?? "", "epochs": result.history.epochs.count,
    "epoch_seconds": result.epochSeconds, "best_epoch": result.bestEpoch + 1,
    "n_train": result.trainingCells.count, "n_validation": result.validationCells.count,
    "steps": result.steps, "stop_reason": result.stopReason, "tokens": result.stepTokens.reduce(0, +),
    "train_step_seconds": result.stepSeconds.reduce(0, +), "tokens_per_second": result.tokensPerSecond,
  ]
  if !rates.isEmpty { metrics["median_step_tokens_per_second"] = rates[rates.count / 2] }
  // Data-parallel: the tokens and rates above are rank 0's.
  metrics.merge(dataParallelMetrics(ranks: result.ranks, replicaDifference: result.replicaDifference)) { $1 }
  for key in ["train_loss", "validation_loss"] { if let v = result.history.last(key) { metrics[key] = v } }
  metrics.merge(extra) { $1 }
  try writeJSON(metrics, to: folder.appendingPathComponent("metrics.json"))
}

/// Predictions into obs `scgpt_prediction`, `scgpt_confidence` and one `scgpt_probability_<type>`
/// per type; against `labelKey`, where the cells have labels: accuracy, macro precision, recall
/// and F1, and (with `folder`) the confusion matrix as confusion_matrix.csv and .png.
private func annotatePredictions(_ adata: inout AnnData, folder: ScGPTModelFolder, labelKey: String?, layer: String?,
                                 geneColumn: String?, precision: DType, reports: URL? = nil) throws -> [String: Any] {
  let prediction = try ScGPTTasks.predict(adata, folder: folder, layer: layer, geneColumn: geneColumn, precision: precision)
  if prediction.missingGenes > 0 {
    warn("\(prediction.missingGenes) of the model's genes are absent from the data; they count as zero")
  }
  try adata.obs.set("scgpt_prediction", .categorical(Categorical(prediction.labels)))
  try adata.obs.set("scgpt_confidence", .array(.float64(prediction.confidence)))
  let types = folder.args["cell_types"] as? [String] ?? []
  let probabilities = prediction.probabilities.toArray(Float.self)
  for (t, type) in types.enumerated() {
    try adata.obs.set("scgpt_probability_\(type)", .array(.float64((0..<adata.nObs).map { Double(probabilities[$0 * types.count + t]) })))
  }
  var metrics: [String: Any] = ["n_query": adata.nObs, "missing_genes": prediction.missingGenes]
  guard let labelKey, adata.obs[labelKey] != nil else { return metrics }
  let truth = try adata.obs.labels(labelKey)
  let pairs = zip(truth, prediction.labels).filter { $0.0 != nil }.map { ($0.0!, $0.1) }
  guard !pairs.isEmpty else { return metrics }
  let confusion = try ConfusionMatrix(truth: pairs.map(\.0), predicted: pairs.map(\.1))
  let perLabel = confusion.perLabel
  metrics["accuracy"] = confusion.accuracy
  metrics["macro_precision"] = perLabel.map(\.precision).reduce(0, +) / Double(perLabel.count)
  metrics["macro_recall"] = perLabel.map(\.recall).reduce(0, +) / Double(perLabel.count)
  metrics["macro_f1"] = confusion.macroF1
  metrics["n_query_labelled"] = pairs.count
  if let reports {
    var csv = "true\\predicted," + confusion.labels.joined(separator: ",") + "\n"
    for (t, row) in confusion.counts.enumerated() { csv += confusion.labels[t] + "," + row.map(String.init).joined(separator: ",") + "\n" }
    try writeAtomically(Data(csv.utf8), to: reports.appendingPathComponent("confusion_matrix.csv"))
    // Rows normalised to the share of each true type.
    let shares = confusion.counts.map { row in row.map { Double($0) / Double(max(row.reduce(0, +), 1)) } }
    try HeatmapPlot(rows: confusion.labels, columns: confusion.labels, values: shares, title: "true (rows) vs predicted (columns)",
                    colorbarLabel: "share of row").write(to: reports.appendingPathComponent("confusion_matrix.png"))
  }
  return metrics
}

/// `singlecell scgpt annotate TRAIN.h5ad --label-key KEY -o OUTDIR [--query QUERY.h5ad]`.
struct ScGPTAnnotateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "annotate", abstract: "Fine-tune scGPT to classify cell types (Tutorial_Annotation), and label a query.",
    discussion: """
      Trains on the cells of TRAIN.h5ad that have a label in --label-key (cells without one, or \
      labelled --unlabeled, are left out), with the tutorial's loop: binned expression of the \
      non-zero genes, cross-entropy of the classifier on the <cls> embedding, Adam, StepLR, the \
      best epoch by validation loss. Writes OUTDIR: the model folder (best_model.pt, args.json, \
      vocab.json, model.safetensors), history.csv, metrics.json and, with --query, query.h5ad \
      (obs scgpt_prediction, scgpt_confidence, scgpt_probability_<type>); when the query has the \
      label column, accuracy and macro precision/recall/F1 in metrics.json and the confusion \
      matrix (confusion_matrix.csv, .png). A failed run leaves OUTDIR as it was.
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Labelled training .h5ad (raw counts).") var input: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "obs column of cell types.") var labelKey: String
  @Option(help: "A label that means 'unlabelled'.") var unlabeled: String?
  @Option(help: "obs column of batches (HVG selection only).") var batchKey: String?
  @Option(help: "Query .h5ad to label with the trained model.") var query: String?
  @OptionGroup var training: ScGPTTrainingArguments

  func run() throws {
    guard let (device, group) = try training.distributed.start(global) else { return }
    let adata = try AnnData.read(h5ad: input)
    var queryData = try query.map { try AnnData.read(h5ad: $0) }
    var options = try training.options(.annotation, seed: global.seed, device: device, group: group)
    options.batchKey = batchKey
    let outdir = URL(fileURLWithPath: output)
    let wrote = try writeFolderOnRankZero(outdir, group: group) { staging in
      let model = try ScGPTTasks.annotate(adata, labelKey: labelKey, unlabeled: unlabeled, options: options)
      guard let staging else { return }
      if model.skippedCells > 0 { warn("\(model.skippedCells) cells without a label in '\(labelKey)' were left out") }
      if model.unknownGenes > 0 { warn("\(model.unknownGenes) genes are not in the pretrained vocabulary and were left out") }
      var metrics: [String: Any] = [:]
      if var q = queryData {
        metrics = try annotatePredictions(&q, folder: model.folder, labelKey: labelKey, layer: training.layer,
                                          geneColumn: training.geneCol, precision: options.training.precision, reports: staging)
        try q.write(h5ad: staging.appendingPathComponent("query.h5ad").path)
        queryData = q
      }
      try writeTaskOutputs(model, to: staging, metrics: metrics)
      if let a = metrics["accuracy"] as? Double, let f = metrics["macro_f1"] as? Double {
        print(String(format: "query accuracy %.4f, macro-F1 %.4f", a, f))
      }
    }
    if wrote { print("wrote \(outdir.path)") }
  }
}

/// `singlecell scgpt integrate DATA.h5ad --batch-key KEY -o OUTDIR`.
struct ScGPTIntegrateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "integrate", abstract: "Fine-tune scGPT to integrate batches (Tutorial_Integration) and embed the cells.",
    discussion: """
      The tutorial's objective: masked-value prediction (40 % masked) from the gene tokens (GEP) \
      and from the cell embedding (GEPC), both with explicit zero probabilities, 10 × the elastic \
      cell similarity (threshold 0.8), and the adversarial batch discriminator (--dab-weight; 0 \
      removes it), with batch labels and one batch norm per batch; every minibatch holds cells of \
      one batch; every gene is a token (zeros included) unless --no-include-zero-genes. Writes \
      OUTDIR: the model folder, history.csv, metrics.json (with the scib metrics when --label-key \
      is given), embedded.h5ad (the input with obsm X_scGPT, L2-normalised <cls> embeddings, and \
      X_umap) and umap_<key>.png by batch and label. A failed run leaves OUTDIR as it was.
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: ".h5ad with raw counts and a batch column.") var input: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "obs column of batches.") var batchKey: String
  @Option(help: "obs column of cell types, to score the embedding (scib metrics).") var labelKey: String?
  @Option(help: "Mask ratio of the values.") var maskRatio = 0.4
  @Option(help: "Weight of the elastic cell similarity loss.") var ecsWeight = 10.0
  @Option(help: "Weight of the batch discriminator's loss (0: no discriminator).") var dabWeight = 1.0
  @OptionGroup var training: ScGPTTrainingArguments

  func run() throws {
    guard let (device, group) = try training.distributed.start(global) else { return }
    var adata = try AnnData.read(h5ad: input)
    if let labelKey { _ = try adata.obsLabels(labelKey) }
    var defaults = ScGPTTrainingOptions.integration
    defaults.epochs = 15
    defaults.maskRatio = maskRatio
    defaults.ecsWeight = ecsWeight
    defaults.dabWeight = dabWeight
    var options = try training.options(defaults, seed: global.seed, device: device, group: group)
    options.batchKey = batchKey
    let outdir = URL(fileURLWithPath: output)
    let wrote = try writeFolderOnRankZero(outdir, group: group) { staging in
      let model = try ScGPTTasks.integrate(adata, options: options, dab: dabWeight > 0)
      guard let staging else { return }
      if model.unknownGenes > 0 { warn("\(model.unknownGenes) genes are not in the pretrained vocabulary and were left out") }
      let metrics = try embedAndScore(model, into: &adata, batchKey: batchKey, labelKey: labelKey, plots: staging, seed: global.seed,
                                      precision: options.training.precision)
      try adata.write(h5ad: staging.appendingPathComponent("embedded.h5ad").path)
      try writeTaskOutputs(model, to: staging, metrics: metrics)
      if let b = metrics["bio_conservation"] as? Double, let c = metrics["batch_correction"] as? Double {
        print(String(format: "bio conservation %.4f, batch correction %.4f", b, c))
      }
    }
    if wrote { print("wrote \(outdir.path)") }
  }
}

/// The integration outputs of a trained model: obsm X_scGPT (and X_umap, umap_<key>.png in
/// `plots`), and the scib metrics with `labelKey`.
private func embedAndScore(_ model: ScGPTTaskModel, into adata: inout AnnData, batchKey: String, labelKey: String?,
                           plots: URL?, seed: UInt64, precision: DType) throws -> [String: Any] {
  let embeddings = try model.folder.network.cellEmbeddings(model.tokens, batches: model.batches, precision: precision)
  adata.obsm["X_scGPT"] = try embeddings.floatElement()
  var metrics: [String: Any] = [:]
  if let labelKey {
    let benchmark = try IntegrationBenchmark(
      embedding: adata.representation(useRep: "X_scGPT"), labels: adata.obsLabels(labelKey), batches: adata.obsLabels(batchKey))
    metrics["scib"] = benchmark.scores
    if let v = benchmark.bioConservation { metrics["bio_conservation"] = v }
    if let v = benchmark.batchCorrection { metrics["batch_correction"] = v }
    if let v = benchmark.total { metrics["total"] = v }
  }
  if let plots {
    try adata.neighbors(useRep: "X_scGPT", seed: seed)
    try adata.umap(seed: seed)
    for key in [batchKey] + (labelKey.map { [$0] } ?? []) {
      try EmbeddingPlot(adata: adata, basis: "umap", color: key).write(to: plots.appendingPathComponent("umap_\(key).png"))
    }
  }
  return metrics
}

/// `singlecell scgpt multiomic DATA.h5ad --batch-key KEY --feature-key OBSM -o OUTDIR`.
struct ScGPTMultiomicCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "multiomic", abstract: "Integrate RNA with a second modality (CITE-seq proteins) in one scGPT model (Tutorial_Multiomics).",
    discussion: """
      The RNA genes (preprocessed as `integrate`) and the features of obsm[--feature-key] (a \
      table or matrix of counts per cell, e.g. proteins) are tokens of one sequence, each binned \
      within its modality per cell, each token's modality embedded and added to the batch \
      embedding before the decoders (the reference's MultiOmicTransformerModel), trained with \
      the integration objective. A new model is trained (its vocabulary holds the features). \
      Writes OUTDIR as `integrate` does; with --label-key the scib metrics of the joint \
      embedding, and with --compare-rna also those of an RNA-only `integrate` run with the same \
      settings (metrics.json "rna_only").
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: ".h5ad with raw RNA counts, a batch column and the second modality in obsm.") var input: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "obs column of batches.") var batchKey: String
  @Option(help: "obsm key of the second modality (cells × features).") var featureKey = "protein_expression"
  @Option(help: "Name of the second modality.") var modality = "Protein"
  @Option(help: "obs column of cell types, to score the embedding (scib metrics).") var labelKey: String?
  @Flag(help: "Also train RNA alone with the same settings and report its scores.") var compareRna = false
  @Option(help: "Weight of the batch discriminator's loss (0: no discriminator).") var dabWeight = 1.0
  @OptionGroup var training: ScGPTTrainingArguments

  func run() throws {
    guard let (device, group) = try training.distributed.start(global) else { return }
    var adata = try AnnData.read(h5ad: input)
    if let labelKey { _ = try adata.obsLabels(labelKey) }
    var defaults = ScGPTTrainingOptions.integration
    defaults.epochs = 15
    defaults.dabWeight = dabWeight
    var options = try training.options(defaults, seed: global.seed, device: device, group: group)
    options.batchKey = batchKey
    let outdir = URL(fileURLWithPath: output)
    let wrote = try writeFolderOnRankZero(outdir, group: group) { staging in
      let model = try ScGPTTasks.multiomic(adata, featureKey: featureKey, modality: modality, options: options, dab: dabWeight > 0)
      var rnaOnly: ScGPTTaskModel?
      if compareRna {
        Runtime.seed(global.seed)
        rnaOnly = try ScGPTTasks.integrate(adata, options: options, dab: dabWeight > 0)
      }
      guard let staging else { return }
      var metrics = try embedAndScore(model, into: &adata, batchKey: batchKey, labelKey: labelKey, plots: staging, seed: global.seed,
                                      precision: options.training.precision)
      if let rna = rnaOnly {
        var copy = adata
        metrics["rna_only"] = try embedAndScore(rna, into: &copy, batchKey: batchKey, labelKey: labelKey, plots: nil, seed: global.seed,
                                                 precision: options.training.precision)
          .merging(["epoch_seconds": rna.result.epochSeconds]) { $1 }
      }
      try adata.write(h5ad: staging.appendingPathComponent("embedded.h5ad").path)
      try writeTaskOutputs(model, to: staging, metrics: metrics)
      if let b = metrics["bio_conservation"] as? Double, let c = metrics["batch_correction"] as? Double {
        print(String(format: "RNA + \(modality): bio conservation %.4f, batch correction %.4f", b, c))
      }
      if let rna = metrics["rna_only"] as? [String: Any], let b = rna["bio_conservation"] as? Double,
         let c = rna["batch_correction"] as? Double {
        print(String(format: "RNA alone: bio conservation %.4f, batch correction %.4f", b, c))
      }
    }
    if wrote { print("wrote \(outdir.path)") }
  }
}

/// `singlecell scgpt predict MODEL DATA.h5ad -o OUT.h5ad`: cell types from an annotate folder.
struct ScGPTPredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict", abstract: "Cell types of new cells from a model folder written by `scgpt annotate`.",
    discussion: """
      Genes are matched to the model's by name (absent ones count as zero, with a warning). \
      Writes obs scgpt_prediction and scgpt_confidence; with --label-key prints accuracy and \
      macro-F1 over the cells that have a label.
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Model folder written by `scgpt annotate`.") var model: String
  @Argument(help: "\(countsInputHelp).") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String
  @Option(help: "obs column of known cell types, to score the predictions.") var labelKey: String?
  @Option(help: "Layer of raw counts (default X).") var layer: String?
  @Option(help: "var column of gene names (default: the model's).") var geneCol: String?
  @OptionGroup var arithmetic: PrecisionArguments

  func run() throws {
    let device = try global.apply()
    let folder = try ScGPTModelFolder.load(URL(fileURLWithPath: model))
    try withTorchErrors { folder.network.to(device) }
    var adata = try AnnData.read(input: data)
    if let labelKey, adata.obs[labelKey] == nil {
      throw ValidationError("no obs column '\(labelKey)' in \(data) (obs has: \(adata.obs.columnNames.joined(separator: ", ")))")
    }
    let metrics = try annotatePredictions(&adata, folder: folder, labelKey: labelKey, layer: layer, geneColumn: geneCol,
                                          precision: arithmetic.dtype)
    if let p = metrics["macro_precision"] as? Double, let r = metrics["macro_recall"] as? Double {
      print(String(format: "macro precision %.4f, macro recall %.4f", p, r))
    }
    try adata.write(h5ad: output)
    if let a = metrics["accuracy"] as? Double, let f = metrics["macro_f1"] as? Double {
      print(String(format: "accuracy %.4f, macro-F1 %.4f over %d cells", a, f, metrics["n_query_labelled"] as? Int ?? 0))
    }
    print("wrote \(output): obs['scgpt_prediction'], obs['scgpt_confidence']")
  }
}

/// `singlecell scgpt train DATA.h5ad… -o MODEL`: pretraining from scratch (or further).
struct ScGPTTrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Pretrain a small scGPT model from scratch on any cells (masked-value or generative).",
    discussion: """
      No pretrained scGPT weights ship with this project or can be downloaded here; this trains \
      one on your cells, so that `scgpt embed`, `map` and `grn` have a model. The objective is \
      masked-value prediction from the gene tokens (GEP) and from the cell embedding (GEPC), \
      40 % of the values masked per step; otherwise the fine-tuning loop (Adam, StepLR per epoch or \
      --schedule cosine, gradient clipping at 1, the best epoch by validation loss). --objective generative \
      uses the pretraining branch's generative attention instead (genes split into known and to-generate, \
      ratio 0.25/0.5/0.75 per minibatch; MSE of the generated values and their GEPC, and after \
      --second-pass-after steps a second pass from the cell embedding); 'both' adds the masked-value terms. \
      --backed streams one or more .h5ad files by row blocks (more cells than memory; no HVG selection, \
      every gene of the vocabulary kept). --checkpoint PATH is written every --checkpoint-every steps and \
      at the end; --resume PATH continues such a run exactly (same data, options and --seed). Writes \
      OUTDIR: the model folder, history.csv, metrics.json (tokens_per_second among them). \
      Official folders (scGPT_human, …) load with `--model` to train further.
      """,
    aliases: ["pretrain"])

  @OptionGroup var global: GlobalOptions
  @Argument(help: ".h5ad with raw counts (several with --backed: read as one collection on the first file's genes).")
  var inputs: [String]
  @Option(name: [.short, .customLong("output")], help: "Output model folder.") var output: String
  @Option(help: "Mask ratio of the values.") var maskRatio = 0.4
  @Option(help: "masked, generative or both.") var objective = "masked"
  @Option(help: "Generative objectives: optimiser steps before the second pass from the cell embedding joins.") var secondPassAfter = 1000
  @Option(help: "step (StepLR × 0.9 per epoch) or cosine (linear warm-up, then cosine to 0 over all steps).") var schedule = "step"
  @Option(help: "--schedule cosine: warm-up steps (a value below 1 is a share of all steps).") var warmup = 0.1
  @Option(help: "Stop after this many optimiser steps in all (the schedule still spans --epochs).") var maxSteps: Int?
  @Option(help: "Write a resumable checkpoint (safetensors) here, at the end and every --checkpoint-every steps.") var checkpoint: String?
  @Option(help: "Steps between checkpoints (0: only at the end).") var checkpointEvery = 0
  @Option(help: "Continue the run saved in this checkpoint.") var resume: String?
  @Option(help: "Masked objective: weight of the contrastive cell-embedding loss (CCE; the reference's pretraining loop uses 10; 0: off).")
  var cceWeight = 0.0
  @OptionGroup var disk: BackedArguments
  @OptionGroup var training: ScGPTTrainingArguments

  func validate() throws {
    try disk.check(inputs: inputs)
    if checkpointEvery < 0 { throw ValidationError("--checkpoint-every must not be negative") }
    if checkpointEvery > 0 && checkpoint == nil { throw ValidationError("--checkpoint-every needs --checkpoint PATH") }
    if !["step", "cosine"].contains(schedule) { throw ValidationError("--schedule must be step or cosine, not '\(schedule)'") }
    if !(warmup >= 0 && warmup.isFinite) { throw ValidationError("--warmup must be a share in [0, 1) or a number of steps") }
    if !(cceWeight >= 0 && cceWeight.isFinite) { throw ValidationError("--cce-weight must be a finite weight, 0 or more") }
    if cceWeight > 0 && objective != "masked" { throw ValidationError("--cce-weight is for --objective masked") }
  }

  func run() throws {
    guard let (device, group) = try training.distributed.start(global) else { return }
    var defaults = ScGPTTrainingOptions.integration
    defaults.epochs = 15
    defaults.maskRatio = maskRatio
    defaults.secondPassAfter = secondPassAfter
    defaults.cceWeight = cceWeight
    defaults.schedule = schedule == "cosine" ? .cosine(warmup: warmup) : .stepPerEpoch
    defaults.maxSteps = maxSteps
    defaults.checkpoint = checkpoint.map { URL(fileURLWithPath: $0) }
    defaults.checkpointEvery = checkpointEvery
    defaults.resumeFrom = resume.map { URL(fileURLWithPath: $0) }
    let objectives: [String: ScGPTObjective] = ["masked": .pretraining, "generative": .generative, "both": .generativeAndMasked]
    guard let chosen = objectives[objective] else { throw ValidationError("--objective must be masked, generative or both, not '\(objective)'") }
    var options = try training.options(defaults, seed: global.seed, device: device, group: group)
    let outdir = URL(fileURLWithPath: output)
    let wrote: Bool
    if disk.backed {
      if inputs.count > 1 && training.geneCol != nil {
        throw ValidationError("--gene-col with several --backed inputs: the files are aligned by var names")
      }
      let opened = try BackedInputs.open(inputs, layer: training.layer)
      let source = opened.source
      let genes = try training.geneCol.map { column in
        guard opened.metadata.var[column] != nil else { throw ValidationError("no var column '\(column)' in \(inputs[0])") }
        return try opened.metadata.var.labels(column).map { $0 ?? "" }
      } ?? opened.metadata.varNames
      options.streaming = disk.loaderOptions
      wrote = try writeFolderOnRankZero(outdir, group: group) { staging in
        let run = try ScGPTTasks.pretrain(streaming: source, genes: genes, options: options, objective: chosen)
        guard let staging else { return }
        if run.unknownGenes > 0 { warn("\(run.unknownGenes) genes are not in the vocabulary and were left out") }
        if run.data.emptyCells > 0 { warn("\(run.data.emptyCells) cell passes were left out: those cells express no vocabulary gene") }
        try writeTaskOutputs(run.folder, run.result, to: staging, metrics: [
          "backed": true, "inputs": inputs, "n_cells": source.nRows, "n_genes": genes.count, "unknown_genes": run.unknownGenes,
          "empty_cell_passes": run.data.emptyCells])
      }
    } else {
      let adata = try AnnData.read(h5ad: inputs[0])
      wrote = try writeFolderOnRankZero(outdir, group: group) { staging in
        let model = try ScGPTTasks.pretrain(adata, options: options, objective: chosen)
        guard let staging else { return }
        if model.unknownGenes > 0 { warn("\(model.unknownGenes) genes are not in the vocabulary and were left out") }
        try writeTaskOutputs(model, to: staging, metrics: ["backed": false])
      }
    }
    if wrote { print("wrote \(outdir.path)") }
  }
}
