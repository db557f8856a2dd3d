import ArgumentParser
import Foundation
import SingleCell

/// `singlecell scvi …` and `singlecell ldvae …`: one generic command per verb, over the model kind.
struct SCVICommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "scvi", abstract: "scVI: a VAE for scRNA-seq counts (scvi-tools' SCVI).",
    subcommands: VAEKinds.verbs(SCVIKind.self))
}

struct LDVAECommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ldvae", abstract: "LDVAE: scVI with a linear decoder and gene loadings (scvi-tools' LinearSCVI).",
    subcommands: VAEKinds.verbs(LDVAEKind.self) + [LoadingsCommand.self])
}

/// The two kinds of SCVIModel as types, so each verb is one generic command.
protocol VAEKind: FolderModelKind where Model == SCVIModel {
  static var kind: SCVIModel.Kind { get }
}

extension VAEKind {
  static var name: String { kind.rawValue }
  static var title: String { kind == .scvi ? "scVI" : "LDVAE" }
  static var latentKey: String { kind.latentKey }

  static func open(_ dir: URL, device: Device) throws -> SCVIModel {
    let adata = try AnnData.read(h5ad: dir.appendingPathComponent("adata.h5ad").path)
    let model = try SCVIModel.load(from: dir, adata: adata)
    guard model.kind == kind else {
      throw ValidationError("\(dir.path) holds a \(model.kind.rawValue) model; use `singlecell \(model.kind.rawValue) …`")
    }
    try model.to(device)
    return model
  }

  static func genes(_ model: SCVIModel) -> [String] { model.setup.geneNames }
  static func layer(_ model: SCVIModel) -> String? { model.setup.layer }

  static func latent(_ model: SCVIModel, _ cells: AnnData, batch: String?) throws -> Tensor {
    try model.latentRepresentation(try withBatch(model, cells, batch))
  }

  /// `cells` with every cell in `batch` when given; a clear error when the model has a batch
  /// key the data lacks.
  static func withBatch(_ model: SCVIModel, _ cells: AnnData, _ batch: String?) throws -> AnnData {
    guard let key = model.setup.batchKey else {
      if batch != nil { throw ValidationError("--batch: the model was trained without batches") }
      return cells
    }
    var cells = cells
    if let batch {
      guard model.setup.batchCategories.contains(batch) else {
        throw ValidationError("--batch '\(batch)' is not one of the model's batches (\(model.setup.batchCategories.joined(separator: ", ")))")
      }
      try cells.obs.set(key, .categorical(Categorical(Array(repeating: batch, count: cells.nObs))))
    } else if cells.obs[key] == nil {
      throw ValidationError("the data has no obs column '\(key)' of batches; name the batch to use with --batch")
    }
    return cells
  }
}

enum SCVIKind: VAEKind { static let kind = SCVIModel.Kind.scvi }
enum LDVAEKind: VAEKind { static let kind = SCVIModel.Kind.ldvae }

enum VAEKinds {
  static func verbs<K: VAEKind>(_: K.Type) -> [ParsableCommand.Type] {
    [VAETrain<K>.self, VAEEvaluate<K>.self, VAEDifferentialExpression<K>.self, EmbedCommand<K>.self,
     LatentCommand<K>.self, VAEMap<K>.self, VAENormalize<K>.self, VAESample<K>.self, VAEImport<K>.self,
     VAEExport<K>.self]
  }
}

struct VAETrain<K: VAEKind>: ParsableCommand {
  static var configuration: CommandConfiguration { VAETrainArguments.configuration(K.kind) }
  @OptionGroup var global: GlobalOptions
  @OptionGroup var arguments: VAETrainArguments
  func run() throws { try arguments.run(K.kind, global: global) }
}

struct VAEEvaluate<K: VAEKind>: ParsableCommand {
  static var configuration: CommandConfiguration { VAEEvaluateArguments.configuration(K.kind) }
  @OptionGroup var global: GlobalOptions
  @OptionGroup var arguments: VAEEvaluateArguments
  func run() throws { try arguments.run(K.kind, global: global) }
}

struct VAEDifferentialExpression<K: VAEKind>: ParsableCommand {
  static var configuration: CommandConfiguration { VAEDEArguments.configuration(K.kind) }
  @OptionGroup var global: GlobalOptions
  @OptionGroup var arguments: VAEDEArguments
  func run() throws { try arguments.run(K.kind, global: global) }
}

// MARK: - train

struct VAETrainArguments: ParsableArguments {
  static func configuration(_ kind: SCVIModel.Kind) -> CommandConfiguration {
    CommandConfiguration(
      commandName: "train", abstract: "Train \(kind == .scvi ? "scVI" : "LDVAE") on the counts of an .h5ad file or a 10x Genomics matrix.",
      discussion: """
        Writes OUTDIR/model.safetensors and model.json (the model), adata.h5ad (the input with \
        obsm['\(kind.latentKey)']\(kind == .ldvae ? " and varm['ldvae_loadings']" : "")), \
        history.csv, metrics.json\(kind == .ldvae ? " and loadings.csv" : ""). Defaults are scvi-tools'.
        """)
  }

  @Argument(help: "Input .h5ad with raw counts in X or in --layer, or a 10x Genomics .h5 file or Matrix Market directory (with --backed, several files train as one collection, genes aligned by name to the first file's).")
  var inputs: [String]
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "Layer holding the counts (default X).") var layer: String?
  @Option(help: "obs column of batches.") var batchKey: String?
  @Option(help: "obs column of cell labels (for gene-label dispersion).") var labelsKey: String?
  @Option(help: "Latent dimensions.") var nLatent = 10
  @Option(help: "Hidden units per layer.") var nHidden = 128
  @Option(help: "Hidden layers (encoder; and decoder for scVI).") var nLayers = 1
  @Option(help: "Dropout rate.") var dropoutRate = 0.1
  @Option(help: "zinb, nb or poisson (default: zinb for scVI, nb for LDVAE).") var geneLikelihood: String?
  @Option(help: "gene, gene-batch, gene-label or gene-cell.") var dispersion = "gene"
  @Option(help: "normal or ln.") var latentDistribution = "normal"
  @Option(help: "Epochs (default: min(round(20000 / cells · 400), 400)).") var maxEpochs: Int?
  @Option(help: "Adam learning rate.") var lr = 1e-3
  @Option(help: "Minibatch size.") var batchSize = 128
  @Option(help: "Fraction of cells for training; the rest validate.") var trainSize: Double?
  @Flag(help: "Stop when elbo_validation has not improved for --patience epochs.") var earlyStopping = false
  @Option(help: "Early-stopping patience in epochs.") var patience = 45
  @Option(help: "KL warm-up epochs (0 for none).") var klWarmupEpochs = 400
  @Flag(help: "No progress line.") var quiet = false
  @Option(help: "Stop after this many optimizer steps in all.") var maxSteps: Int?
  @OptionGroup var disk: BackedArguments
  @Option(help: "Write OUTDIR/checkpoint.safetensors every N epochs, to --resume from (default: 10 in a multi-process job, else 0: none).")
  var checkpointEvery: Int?
  @Flag(help: "Continue the run saved in OUTDIR/checkpoint.safetensors (same input, options and seed).") var resume = false
  @OptionGroup(title: "Data-parallel training (docs/distributed.md)") var distributed: DistributedArguments

  func validate() throws { try disk.check(inputs: inputs) }

  func run(_ kind: SCVIModel.Kind, global: GlobalOptions) throws {
    if let checkpointEvery, checkpointEvery < 0 { throw ValidationError("--checkpoint-every must not be negative") }
    guard let (device, group) = try distributed.start(global) else { return }
    let rank = group?.rank ?? 0
    let outdir = URL(fileURLWithPath: output)
    let architecture = SCVIModel.Architecture(
      nHidden: nHidden, nLatent: nLatent, nLayers: nLayers, dropoutRate: dropoutRate,
      dispersion: try parseChoice(dispersion, "--dispersion"), geneLikelihood: try geneLikelihood.map { try parseChoice($0, "--gene-likelihood") },
      latentDistribution: try parseChoice(latentDistribution, "--latent-distribution"))
    let adata: AnnData
    let model: SCVIModel
    if disk.backed {
      (adata, model) = try openStreaming(kind, architecture)
    } else {
      adata = try AnnData.read(input: inputs[0])
      let setup = try SCVISetup(adata, layer: layer, batchKey: batchKey, labelsKey: labelsKey)
      model = try SCVIModel(adata, setup: setup, kind: kind, architecture: architecture)
    }
    let setup = model.setup
    try model.to(device)
    var options = SCVIModel.TrainingOptions(
      maxEpochs: maxEpochs, learningRate: lr, batchSize: batchSize, trainSize: trainSize, earlyStopping: earlyStopping,
      klWarmupEpochs: klWarmupEpochs > 0 ? klWarmupEpochs : nil, seed: global.seed, progress: !quiet && rank == 0)
    options.earlyStoppingPatience = patience
    options.checkpoint = outdir.appendingPathComponent("last-good.safetensors")
    options.maxSteps = maxSteps
    options.streaming = disk.loaderOptions
    options.processGroup = group
    let checkpoint = outdir.appendingPathComponent("checkpoint.safetensors")
    let every = checkpointEvery ?? ((group?.worldSize ?? 1) > 1 ? 10 : 0)
    if every > 0 { options.periodicCheckpoint = (checkpoint, every) }
    if resume { options.resume = try TrainingCheckpoint.read(checkpoint, group: group) }
    if rank == 0 { try FileManager.default.createDirectory(at: outdir, withIntermediateDirectories: true) }
    let cpuBefore = processCPUSeconds()
    try model.train(options)
    let trainCPUSeconds = processCPUSeconds() - cpuBefore
    guard rank == 0 else { return }  // only rank 0 writes outputs
    try model.save(to: outdir)

    var result = adata
    result.obsm[kind.latentKey] = try model.latentRepresentation().floatElement()
    if kind == .ldvae {
      let loadings = try model.loadings()
      result.varm["ldvae_loadings"] = try loadings.floatElement()
      let factors = (0..<loadings.size(1)).map { "Z_\($0)" }
      try writeAtomically(Data(matrixCSV(loadings, rows: setup.geneNames, columns: factors).utf8),
                          to: outdir.appendingPathComponent("loadings.csv"))
    }
    try result.write(h5ad: outdir.appendingPathComponent("adata.h5ad").path)
    try writeAtomically(Data(model.history.csv().utf8), to: outdir.appendingPathComponent("history.csv"))
    var metrics = trainingMetrics(model, cells: adata.nObs)
    metrics["backed"] = disk.backed
    // All threads' CPU time in training (the read-ahead thread's too): a measure less moved by
    // other load on the machine than wall-clock time.
    metrics["train_cpu_seconds"] = trainCPUSeconds
    metrics["trained_cells_per_cpu_second"] = Double(model.trainedCells) / max(trainCPUSeconds, 1e-9)
    metrics.merge(dataParallelMetrics(ranks: group?.worldSize, replicaDifference: model.replicaDifference)) { $1 }
    try writeJSON(metrics, to: outdir.appendingPathComponent("metrics.json"))
    print("wrote \(outdir.path): \(model.history.epochs.count) epochs in \(String(format: "%.1f", model.trainSeconds)) s")
  }

  /// The inputs opened backed (one file, or a collection aligned to the first file's genes), and
  /// a model streaming from them; the AnnData holds obs, var and uns only.
  private func openStreaming(_ kind: SCVIModel.Kind, _ architecture: SCVIModel.Architecture) throws -> (AnnData, SCVIModel) {
    let opened = try BackedInputs.open(inputs, layer: layer)
    let setup = try SCVISetup(metadata: opened.metadata, layer: layer, batchKey: batchKey, labelsKey: labelsKey)
    let model = try SCVIModel(streaming: opened.source, metadata: opened.metadata, setup: setup, kind: kind,
                              architecture: architecture, blockRows: disk.blockRows)
    return (opened.metadata, model)
  }

  private func trainingMetrics(_ model: SCVIModel, cells: Int) -> [String: Any] {
    var metrics: [String: Any] = [
      "cells_trained": model.trainedCells,
      "trained_cells_per_second": Double(model.trainedCells) / max(model.trainSeconds, 1e-9),
      "model": model.kind.rawValue, "train_seconds": model.trainSeconds, "epochs": model.history.epochs.count,
      "seconds_per_epoch": model.trainSeconds / Double(max(model.history.epochs.count, 1)),
      "n_cells": cells, "n_genes": model.setup.geneNames.count, "stop_reason": model.stopReason ?? "",
      "epoch_seconds": model.epochSeconds,
    ]
    for key in ["train_loss", "validation_loss", "elbo_train", "elbo_validation", "reconstruction_loss_train",
                "reconstruction_loss_validation"] {
      if let value = model.history.last(key) { metrics[key] = value }
    }
    return metrics
  }
}

// MARK: - evaluate

struct VAEEvaluateArguments: ParsableArguments {
  static func configuration(_ kind: SCVIModel.Kind) -> CommandConfiguration {
    CommandConfiguration(
      commandName: "evaluate",
      abstract: "Print the mean reconstruction loss (positive NLL) and ELBO (scvi-tools' sign: higher is better) as JSON.")
  }

  @Argument(help: "Model folder written by train.") var modelDir: String
  @Argument(help: ".h5ad with the model's genes (default: the model folder's adata.h5ad).") var data: String?
  @Option(help: "Also estimate the marginal log-likelihood with this many importance samples.") var marginalLL: Int?

  func run(_ kind: SCVIModel.Kind, global: GlobalOptions) throws {
    let device = try global.apply()
    let dir = URL(fileURLWithPath: modelDir)
    let adata = try AnnData.read(h5ad: data ?? dir.appendingPathComponent("adata.h5ad").path)
    let model = try SCVIModel.load(from: dir, adata: adata)
    guard model.kind == kind else {
      throw ValidationError("\(modelDir) holds a \(model.kind.rawValue) model; use `singlecell \(model.kind.rawValue) evaluate`")
    }
    try model.to(device)
    var result: [String: Any] = [
      "n_cells": adata.nObs, "reconstruction_loss": try model.reconstructionError(), "elbo": try model.elbo(),
    ]
    if let marginalLL { result["marginal_ll"] = try model.marginalLogLikelihood(nMCSamples: marginalLL) }
    print(try jsonString(result))
  }
}

// MARK: - de

struct VAEDEArguments: ParsableArguments {
  static func configuration(_ kind: SCVIModel.Kind) -> CommandConfiguration {
    CommandConfiguration(
      commandName: "de", abstract: "Bayesian differential expression between two groups of cells (scvi-tools' differential_expression).")
  }

  @Argument(help: "Model folder written by train.") var modelDir: String
  @Option(help: ".h5ad with the cells (default: the model folder's adata.h5ad).") var data: String?
  @Option(help: "obs column defining the groups.") var groupby: String
  @Option(help: "The first group.") var group1: String
  @Option(help: "The second group (default: all other cells).") var group2: String?
  @Option(help: "vanilla or change.") var mode = "vanilla"
  @Option(help: "LFC threshold for change mode.") var delta = 0.25
  @Option(help: "Target false discovery rate.") var fdr = 0.05
  @Option(help: "Posterior samples per group.") var nSamples = 5000
  @Option(name: [.short, .customLong("output")], help: "CSV file (default: OUTDIR/de_<group1>_vs_<group2>.csv).") var output: String?

  func run(_ kind: SCVIModel.Kind, global: GlobalOptions) throws {
    let device = try global.apply()
    guard let deMode = SCVIModel.DEMode(rawValue: mode) else { throw ValidationError("--mode must be vanilla or change") }
    let dir = URL(fileURLWithPath: modelDir)
    let adata = try AnnData.read(h5ad: data ?? dir.appendingPathComponent("adata.h5ad").path)
    let model = try SCVIModel.load(from: dir, adata: adata)
    try model.to(device)
    let table = try model.differentialExpression(
      groupby: groupby, group1: group1, group2: group2, mode: deMode, delta: delta, fdrTarget: fdr,
      nSamples: nSamples, seed: global.seed)
    let safe = { (s: String) in s.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined() }
    let url = output.map { URL(fileURLWithPath: $0) }
      ?? dir.appendingPathComponent("de_\(safe(group1))_vs_\(safe(group2 ?? "rest")).csv")
    try writeAtomically(Data(table.csv().utf8), to: url)
    let significant = table.columns["is_de_fdr_\(fdr)"]!.filter { $0 != 0 }.count
    print("wrote \(url.path): \(table.genes.count) genes, \(significant) DE at FDR \(fdr)")
  }
}

// MARK: - helpers

/// User + system CPU seconds of this process so far (all threads).
func processCPUSeconds() -> Double {
  var usage = rusage()
  guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
  func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
  return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

func parseChoice<T: RawRepresentable & CaseIterable>(_ text: String, _ flag: String) throws -> T where T.RawValue == String {
  guard let value = T(rawValue: text) else {
    throw ValidationError("\(flag) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
  }
  return value
}

func jsonString(_ object: [String: Any]) throws -> String {
  String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
}

func writeJSON(_ object: [String: Any], to url: URL) throws {
  try writeAtomically(Data((try jsonString(object) + "\n").utf8), to: url)
}

extension Tensor {
  /// A 2-D float tensor as an AnnData element (float32 array).
  func floatElement() throws -> Element {
    let matrix = self.to(.cpu).to(.float32).contiguous()
    return .dense(try DenseArray(shape: matrix.shape, data: .float32(matrix.toArray(Float.self))))
  }
}
