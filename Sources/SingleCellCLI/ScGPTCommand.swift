import ArgumentParser
import Foundation
import SingleCell

/// `singlecell scgpt …`: the scGPT foundation model (scgpt 0.2.4's model folders).
struct ScGPTCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "scgpt", abstract: "scGPT: a transformer over gene tokens and binned expression (scgpt 0.2.4 model folders).",
    subcommands: [ScGPTEmbedCommand.self, ScGPTTrainCommand.self, ScGPTAnnotateCommand.self, ScGPTIntegrateCommand.self, ScGPTMultiomicCommand.self, ScGPTPredictCommand.self, ScGPTMapCommand.self, ScGPTGRNCommand.self, ScGPTPerturbCommand.self])
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
  @Argument(help: "\(countsInputHelp).") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String
  @OptionGroup var embedding: ScGPTEmbeddingArguments

  func run() throws {
    let device = try global.apply()
    var adata = try AnnData.read(input: data)
    let start = Date()
    let embeddings = try embedding.embed(adata, model: URL(fileURLWithPath: model), device: device, seed: global.seed)
    let seconds = Date().timeIntervalSince(start)
    FileHandle.standardError.write(Data(String(
      format: "embedded %d cells in %.2f s (%.1f cells/s)\n", adata.nObs, seconds, Double(adata.nObs) / seconds).utf8))
    adata.obsm["X_scGPT"] = try embeddings.floatElement()
    try adata.write(h5ad: output)
    print("wrote \(output): obsm['X_scGPT'] [\(embeddings.size(0)), \(embeddings.size(1))]")
  }
}

/// How `embed` and `map` turn cells into scGPT embeddings.
struct ScGPTEmbeddingArguments: ParsableArguments {
  @Option(help: "var column of gene names (default: var names).") var geneCol: String?
  @Option(help: "Layer of raw counts (default X).") var layer: String?
  @Option(help: "Tokens per cell, <cls> included (zero-shot path).") var maxLength = 1200
  @Option(help: "Cells per minibatch.") var batchSize = 64
  @Flag(help: "Break binning ties at random, as the reference (embeddings then vary with --seed).") var randomTies = false
  @Flag(help: "Embed as the reference's embed_data even a folder fine-tuned here.") var zeroShot = false
  @OptionGroup var arithmetic: PrecisionArguments

  /// L2-normalised embeddings [cells, d]: a folder fine-tuned here as it was trained (its genes
  /// and batches), any other folder (or with --zero-shot) as the reference's embed_data.
  func embed(_ adata: AnnData, model url: URL, device: Device, seed: UInt64) throws -> Tensor {
    if !zeroShot, try ScGPTModelFolder.isFineTuned(url) {
      let folder = try ScGPTModelFolder.load(url)
      try withTorchErrors { folder.network.to(device) }
      let result = try ScGPTTasks.embed(adata, folder: folder, layer: layer, geneColumn: geneCol,
                                        precision: arithmetic.dtype)
      if result.missingGenes > 0 { warn("\(result.missingGenes) of the model's genes are absent from the data; they count as zero") }
      return result.embeddings
    }
    let folder = try ScGPTModelFolder.loadForEmbedding(url)
    try withTorchErrors { folder.network.to(device) }
    var options = ScGPTModelFolder.EmbedOptions(maxLength: maxLength, batchSize: batchSize, geneColumn: geneCol, layer: layer,
                                                tieBreak: randomTies ? .random : .lowest, seed: UInt32(truncatingIfNeeded: seed))
    options.precision = arithmetic.dtype
    let (result, match) = try folder.embed(adata, options: options)
    if match.unknownCount > 0 { warn(match.summary) }
    return result
  }
}

/// `singlecell scgpt map MODEL REF.h5ad QUERY.h5ad --label-key KEY -o OUT.h5ad`.
struct ScGPTMapCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "map", abstract: "Reference mapping: label query cells by a k-nearest-neighbour vote of reference cells in scGPT's embedding.",
    discussion: """
      Both data sets are embedded with MODEL (as `scgpt embed`); each query cell gets the majority \
      label of its k nearest reference cells by cosine similarity (exact search, in blocks) and \
      the share of votes as its confidence. Writes the query with obsm X_scGPT and obs \
      scgpt_mapped_<label key> / scgpt_mapped_confidence; prints accuracy and macro-F1 when the \
      query has the label column too.
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "scGPT model folder.") var model: String
  @Argument(help: "Reference .h5ad (raw counts, labels in --label-key).") var reference: String
  @Argument(help: "Query: \(countsInputHelp).") var query: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad (the query with its labels).") var output: String
  @Option(help: "obs column of the reference's labels.") var labelKey: String
  @Option(name: .short, help: "Neighbours that vote.") var k = 10
  @OptionGroup var embedding: ScGPTEmbeddingArguments

  func run() throws {
    let device = try global.apply()
    let ref = try AnnData.read(h5ad: reference)
    guard ref.obs[labelKey] != nil else {
      throw ValidationError("the reference \(reference) has no obs column '\(labelKey)' (obs has: \(ref.obs.columnNames.joined(separator: ", ")))")
    }
    let refLabels = try ref.obs.labels(labelKey)
    let labelled = refLabels.indices.filter { refLabels[$0] != nil }
    guard !labelled.isEmpty else { throw ValidationError("no reference cell has a label in '\(labelKey)'") }
    var q = try AnnData.read(input: query)
    let url = URL(fileURLWithPath: model)
    let refEmbedding = try embedding.embed(ref, model: url, device: device, seed: global.seed)
    let queryEmbedding = try embedding.embed(q, model: url, device: device, seed: global.seed)
    let transfer = try ScGPTReferenceMapping.transfer(
      reference: refEmbedding.indexSelect(dim: 0, index: Tensor(labelled.map(Int64.init))),
      labels: labelled.map { refLabels[$0]! }, query: queryEmbedding, k: k)
    q.obsm["X_scGPT"] = try queryEmbedding.floatElement()
    try q.obs.set("scgpt_mapped_\(labelKey)", .categorical(Categorical(transfer.labels)))
    try q.obs.set("scgpt_mapped_confidence", .array(.float64(transfer.confidence)))
    if q.obs[labelKey] != nil {
      let pairs = zip(try q.obs.labels(labelKey), transfer.labels).filter { $0.0 != nil }.map { ($0.0!, $0.1) }
      if !pairs.isEmpty {
        let a = try accuracy(truth: pairs.map(\.0), predicted: pairs.map(\.1))
        let f = try macroF1(truth: pairs.map(\.0), predicted: pairs.map(\.1))
        print(String(format: "accuracy %.4f, macro-F1 %.4f over %d query cells", a, f, pairs.count))
      }
    }
    try q.write(h5ad: output)
    print("wrote \(output): obs['scgpt_mapped_\(labelKey)'], obs['scgpt_mapped_confidence'] (k = \(k), \(labelled.count) reference cells)")
  }
}
