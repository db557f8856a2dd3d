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
      L2-normalised.
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

  func run() throws {
    let device = try global.apply()
    let folder = try ScGPTModelFolder.loadForEmbedding(URL(fileURLWithPath: model))
    try withTorchErrors { folder.network.to(device) }
    var adata = try AnnData.read(h5ad: data)
    let options = ScGPTModelFolder.EmbedOptions(maxLength: maxLength, batchSize: batchSize, geneColumn: geneCol, layer: layer,
                                                tieBreak: randomTies ? .random : .lowest, seed: UInt32(truncatingIfNeeded: global.seed))
    let (embeddings, match) = try folder.embed(adata, options: options)
    if match.unknownCount > 0 { warn(match.summary) }
    adata.obsm["X_scGPT"] = try embeddings.floatElement()
    try adata.write(h5ad: output)
    print("wrote \(output): obsm['X_scGPT'] [\(embeddings.size(0)), \(embeddings.size(1))]")
  }
}
