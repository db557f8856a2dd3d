import ArgumentParser
import Foundation
import SingleCell

/// `singlecell scbasset …`: train scBasset on scATAC peaks, score TF activity, predict.
struct SCBassetCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "scbasset",
    abstract: "scBasset: a sequence CNN for scATAC-seq whose last layer embeds the cells.",
    subcommands: [SCBassetTrainCommand.self, SCBassetImportCommand.self, SCBassetExportCommand.self, SCBassetTFActivityCommand.self, SCBassetMotifLibraryCommand.self,
                  SCBassetPredictCommand.self, SCBassetSimulateCommand.self])
}

/// `singlecell scbasset train IN.h5ad --fasta GENOME.fa -o OUTDIR`.
struct SCBassetTrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Train scBasset on a cells × peaks AnnData (binary X).",
    discussion: """
      Peaks come from var columns chr/start/end, else from var names (chr1:100-200). Each peak's
      --seq-len window is read from --fasta (scvi-tools' centring); an existing varm['dna_code'] is
      used when --fasta is not given. Writes OUTDIR/adata.h5ad (the input with obsm['X_scbasset'] and
      obs['scbasset_cell_bias']), OUTDIR/model.safetensors + scbasset.json, OUTDIR/history.csv and
      OUTDIR/metrics.json (training and held-out AUROC).
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Cells × peaks .h5ad with binary accessibility in X.") var input: String
  @Option(help: "Genome FASTA (plain, .fai built if missing).") var fasta: String?
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "obs column of the cells' batches (adds a batch embedding, as scvi-tools).") var batchKey: String?
  @Option(help: "L2 penalty on the cell embedding (scvi-tools' l2_reg_cell_embedding).") var l2CellEmbedding: Double = 0
  @Option(help: "Maximum epochs.") var maxEpochs: Int = 1000
  @Option(help: "Regions per minibatch.") var batchSize: Int = 128
  @Option(help: "Adam learning rate.") var learningRate: Double = 0.01
  @Option(help: "Early-stopping patience in epochs (monitor: training AUROC).") var patience: Int = 45
  @Flag(help: "Train all --max-epochs epochs.") var noEarlyStopping = false
  @Option(help: "Fraction of peaks to train on; the rest is held out (default 0.9, as scvi-tools).") var trainSize: Double?
  @Option(help: "Window length in bp.") var seqLen: Int = 1344
  @Option(help: "Bottleneck (cell embedding) size.") var nBottleneck: Int = 32
  @Flag(help: "Treat every positive X value as 1 (otherwise non-binary X is an error).") var binarize = false
  @Flag(help: "Print a progress line per epoch.") var progress = false
  @Option(help: ArgumentHelp("Network config JSON (multimolecule ScBassetConfig names).", visibility: .hidden))
  var networkConfig: String?
  @OptionGroup(title: "Data-parallel training (docs/distributed.md)") var distributed: DistributedArguments

  func run() throws {
    guard let (device, group) = try distributed.start(global) else { return }
    let rank = group?.rank ?? 0
    let out = URL(fileURLWithPath: output)
    var cells = try AnnData.read(h5ad: input, requireX: true)
    if let fasta {
      try SCBASSET.addDNASequence(to: &cells, fasta: try FastaFile(path: fasta), seqLen: seqLen, seed: global.seed)
    } else if cells.varm["dna_code"] == nil {
      throw ValidationError("\(input) has no varm['dna_code']: give --fasta GENOME.fa")
    }
    var config: SCBassetConfig?
    if let path = networkConfig {
      var c = try JSONDecoder().decode(SCBassetConfig.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
      c.numLabels = cells.nObs
      c.l2RegCellEmbedding = l2CellEmbedding
      if let batchKey { c.nBatch = Set(try cells.obs.labels(batchKey).compactMap { $0 }).count }
      config = c
    }
    let setup = SCBassetSetup(batchKey: batchKey, nonBinary: binarize ? .binarize : .refuse)
    let model = try SCBASSET(adata: cells.transposed(), setup: setup, config: config, nBottleneckLayer: nBottleneck,
                             l2RegCellEmbedding: l2CellEmbedding)
    var options = SCBassetTrainingOptions(maxEpochs: maxEpochs)
    options.batchSize = batchSize
    options.learningRate = learningRate
    options.patience = patience
    options.earlyStopping = !noEarlyStopping
    options.trainSize = trainSize
    options.splitSeed = UInt32(truncatingIfNeeded: global.seed)
    options.device = device
    options.progress = progress || isatty(STDERR_FILENO) != 0
    options.checkpoint = out.appendingPathComponent("diverged.safetensors")
    options.processGroup = group
    if rank == 0 { try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true) }
    let history = try model.train(options)
    guard rank == 0 else { return }  // only rank 0 writes outputs
    try model.save(to: out)

    let latent = model.latentRepresentation()
    cells.obsm["X_scbasset"] = .dense(try DenseArray(rows: latent.count, cols: latent.first?.count ?? 0, values: latent.flatMap { $0 }))
    try cells.obs.set("scbasset_cell_bias", .dense(DenseArray(.float32(model.cellBias()))))
    try cells.write(h5ad: out.appendingPathComponent("adata.h5ad").path)
    try writeAtomically(Data(history.csv().utf8), to: out.appendingPathComponent("history.csv"))

    let heldOut = model.split?.validation.isEmpty == false ? try model.auroc() : nil
    let epochSeconds = history.values("epoch_seconds").compactMap { $0 }
    var metrics: [String: Any] = [
      "epochs": history.epochs.count,
      "train_auroc": history.last("auroc_train") ?? Double.nan,
      "train_loss": history.last("train_loss") ?? Double.nan,
      "seconds_per_epoch": epochSeconds,
      "cells": cells.nObs, "peaks": cells.nVars, "sequence_length": model.config.sequenceLength,
    ]
    metrics.merge(dataParallelMetrics(ranks: group?.worldSize, replicaDifference: model.replicaDifference)) { $1 }
    if let heldOut {
      metrics["validation_auroc"] = heldOut.flat
      metrics["validation_auroc_per_cell_mean"] = heldOut.meanPerCell
      metrics["validation_peaks"] = model.split?.validation.count ?? 0
    }
    let json = try JSONSerialization.data(withJSONObject: metrics.mapValues { jsonSafe($0) }, options: [.prettyPrinted, .sortedKeys])
    try writeAtomically(json, to: out.appendingPathComponent("metrics.json"))
    let summary = heldOut.map { String(format: ", held-out AUROC %.3f (per cell %.3f)", $0.flat, $0.meanPerCell) } ?? ""
    print("trained \(history.epochs.count) epochs on \(cells.nVars) peaks × \(cells.nObs) cells\(summary); wrote \(output)")
  }
}

/// NaN is not JSON: written as null.
func jsonSafe(_ value: Any) -> Any {
  if let d = value as? Double, !d.isFinite { return NSNull() }
  return value
}
