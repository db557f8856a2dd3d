import ArgumentParser
import Foundation
import SingleCell

/// `singlecell scgpt …`: the scGPT foundation model (scgpt 0.2.4's model folders).
struct ScGPTCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "scgpt", abstract: "scGPT: a transformer over gene tokens and binned expression (scgpt 0.2.4 model folders).",
    subcommands: [ScGPTEmbedCommand.self, ScGPTAnnotateCommand.self, ScGPTIntegrateCommand.self, ScGPTPredictCommand.self])
}

/// `singlecell scgpt embed MODEL_DIR DATA.h5ad -o OUT.h5ad`: zero-shot cell embeddings.
struct ScGPTEmbedCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "embed", abstract: "Zero-shot cell embeddings into obsm['X_scGPT'] (the reference's embed_data).",
    discussion: """
      MODEL_DIR is a scGPT model folder (best_model.pt, args.json, vocab.json; official \
      checkpoints load, none ship with this project). Genes are matched to the vocabulary by name \
      (--gene-col for a var column); unknown genes are dropped and counted. Each cell's non-zero raw \
      counts are binned (ties to the lowest bin, so the same input gives the same embedding; \
      --random-ties draws them as the reference does), <cls> comes first, and its output is \
      L2-normalised. A folder written by `scgpt annotate` or `scgpt integrate` embeds as it was \
      fine-tuned instead (its genes, its batch labels from the data's batch column, one batch norm \
      per batch); --zero-shot forces the embed_data path for it too.
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "scGPT model folder.") var model: String
  @Argument(help: ".h5ad with raw counts.") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String
  @Option(help: "var column of gene names (default: var names).") var geneCol: String?
  @Option(help: "Layer of raw counts (default X).") var layer: String?
  @Option(help: "Tokens per cell, <cls> included.") var maxLength = 1200
  @Option(help: "Cells per minibatch.") var batchSize = 64
  @Flag(help: "Break binning ties at random, as the reference (embeddings then vary with --seed).") var randomTies = false
  @Flag(help: "Embed as the reference's embed_data even a folder fine-tuned here.") var zeroShot = false

  func run() throws {
    let device = try global.apply()
    let url = URL(fileURLWithPath: model)
    var adata = try AnnData.read(h5ad: data)
    let start = Date()
    let embeddings: Tensor
    if !zeroShot, try ScGPTModelFolder.isFineTuned(url) {
      let folder = try ScGPTModelFolder.load(url)
      try withTorchErrors { folder.network.to(device) }
      let result = try ScGPTTasks.embed(adata, folder: folder, layer: layer, geneColumn: geneCol)
      if result.missingGenes > 0 { warn("\(result.missingGenes) of the model's genes are absent from the data; they count as zero") }
      embeddings = result.embeddings
    } else {
      let folder = try ScGPTModelFolder.loadForEmbedding(url)
      try withTorchErrors { folder.network.to(device) }
      let options = ScGPTModelFolder.EmbedOptions(maxLength: maxLength, batchSize: batchSize, geneColumn: geneCol, layer: layer,
                                                  tieBreak: randomTies ? .random : .lowest, seed: UInt32(truncatingIfNeeded: global.seed))
      let (result, match) = try folder.embed(adata, options: options)
      if match.unknownCount > 0 { warn(match.summary) }
      embeddings = result
    }
    let seconds = Date().timeIntervalSince(start)
    FileHandle.standardError.write(Data(String(
      format: "embedded %d cells in %.2f s (%.1f cells/s)\n", adata.nObs, seconds, Double(adata.nObs) / seconds).utf8))
    adata.obsm["X_scGPT"] = try embeddings.floatElement()
    try adata.write(h5ad: output)
    print("wrote \(output): obsm['X_scGPT'] [\(embeddings.size(0)), \(embeddings.size(1))]")
  }
}
