import ArgumentParser
import Foundation
import SingleCell

/// `singlecell scgpt grn MODEL DATA.h5ad -o OUTDIR`: gene programs and gene networks.
struct ScGPTGRNCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "grn", abstract: "Gene programs and networks from scGPT's gene embeddings and attention (the reference's GRN tutorials).",
    discussion: """
      Genes: --genes (one per line), else those a folder fine-tuned here records, else the data's \
      --n-hvg seurat_v3 genes; genes outside the vocabulary are left out (counted). Writes OUTDIR/ \
      programs.csv (program, gene: Leiden clusters of a 15-neighbour graph of the gene embeddings at \
      --resolution with at least --min-size genes), similarity_network.csv (gene pairs with cosine \
      similarity ≥ --threshold), with --attention attention_network.csv (each gene's --top strongest \
      targets in the last layer's rank-normalised attention over up to --max-cells cells), and with \
      --label-key program_activity.csv and program_activity.png (mean program activity per cell type).
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "scGPT model folder.") var model: String
  @Argument(help: ".h5ad with raw counts.") var data: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "File of gene names, one per line.") var genes: String?
  @Option(help: "Highly variable genes to use when no gene list is given.") var nHvg = 1200
  @Option(help: "Leiden resolution.") var resolution = 40.0
  @Option(help: "Smallest program kept.") var minSize = 5
  @Option(help: "Cosine similarity threshold of the similarity network.") var threshold = 0.5
  @Flag(help: "Also the attention-based network (runs the model on the cells).") var attention = false
  @Option(help: "Cells the attention network averages over.") var maxCells = 500
  @Option(help: "Targets kept per gene in the attention network.") var top = 20
  @Option(help: "obs column of cell types, for the program activity heat map.") var labelKey: String?
  @Option(help: "Layer of raw counts (default X).") var layer: String?
  @Option(help: "var column of gene names (default: var names).") var geneCol: String?

  func run() throws {
    let device = try global.apply()
    let url = URL(fileURLWithPath: model)
    let folder = try ScGPTModelFolder.isFineTuned(url) ? ScGPTModelFolder.load(url) : ScGPTModelFolder.loadForEmbedding(url)
    try withTorchErrors { folder.network.to(device) }
    var adata = try AnnData.read(h5ad: data)
    if let geneCol { adata.var.index = try adata.var.labels(geneCol).map { $0 ?? "" } }
    if let layer {
      guard let counts = adata.layers[layer] else { throw ValidationError("no layer '\(layer)' in \(data)") }
      adata.X = counts
    }
    if let labelKey, adata.obs[labelKey] == nil {
      throw ValidationError("no obs column '\(labelKey)' in \(data) (obs has: \(adata.obs.columnNames.joined(separator: ", ")))")
    }
    let embedding = try ScGPTGeneEmbedding(folder: folder, genes: try geneList(adata, folder: folder))
    if !embedding.unknown.isEmpty { warn("\(embedding.unknown.count) genes are not in the model's vocabulary and were left out") }
    let programs = try embedding.programs(resolution: resolution, minSize: minSize, seed: global.seed)

    try writeFolderAtomically(URL(fileURLWithPath: output)) { staging in
      var csv = "program,gene\n"
      for (i, program) in programs.enumerated() { for gene in program { csv += "\(i),\(gene)\n" } }
      try writeAtomically(Data(csv.utf8), to: staging.appendingPathComponent("programs.csv"))
      var network = "gene1,gene2,cosine\n"
      for (a, b, s) in embedding.similarityNetwork(threshold: threshold) { network += "\(a),\(b),\(String(format: "%.6g", s))\n" }
      try writeAtomically(Data(network.utf8), to: staging.appendingPathComponent("similarity_network.csv"))
      if attention { try writeAttentionNetwork(adata, folder: folder, genes: embedding.genes, to: staging) }
      if let labelKey { try writeActivity(adata, genes: embedding.genes, programs: programs, labelKey: labelKey, to: staging) }
    }
    print("wrote \(output): \(programs.count) programs of \(embedding.genes.count) genes")
  }

  private func geneList(_ adata: AnnData, folder: ScGPTModelFolder) throws -> [String] {
    if let genes {
      let text = try String(contentsOfFile: genes, encoding: .utf8)
      return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    if let recorded = folder.args["genes"] as? [String] { return recorded }
    var hvg = adata
    var options = HVGOptions(flavor: .seuratV3, nTopGenes: min(nHvg, adata.nVars))
    options.subset = true
    try hvg.highlyVariableGenes(options)
    return hvg.varNames
  }

  private func writeAttentionNetwork(_ adata: AnnData, folder: ScGPTModelFolder, genes: [String], to staging: URL) throws {
    let cells = Array(0..<min(maxCells, adata.nObs))
    let (tokens, batches, _) = try ScGPTTasks.tokens(for: try adata.subset(obs: cells), folder: folder, genes: genes, includeZeroGenes: true)
    let scores = try folder.network.attentionNetwork(tokens, batches: batches).toArray(Float.self)
    let n = genes.count
    var csv = "source,target,score\n"
    for i in 0..<n {
      let row = (0..<n).filter { $0 != i }.sorted { scores[i * n + $0] > scores[i * n + $1] }.prefix(top)
      for j in row { csv += "\(genes[i]),\(genes[j]),\(String(format: "%.6g", scores[i * n + j]))\n" }
    }
    try writeAtomically(Data(csv.utf8), to: staging.appendingPathComponent("attention_network.csv"))
  }

  private func writeActivity(_ adata: AnnData, genes: [String], programs: [[String]], labelKey: String, to staging: URL) throws {
    guard !programs.isEmpty else { return warn("no program has \(minSize) genes: no activity heat map") }
    var cells = try AnnData.aligned(adata, toGenes: genes).adata
    try cells.normalizeTotal(targetSum: 1e4)
    try cells.log1p()
    let values = try cells.matrix(layer: nil).denseDoubles()
    let activity = ScGPTGeneEmbedding.programActivity(values, nGenes: genes.count, genes: genes, programs: programs)
    let labels = try adata.obs.labels(labelKey)
    let types = Array(Set(labels.compactMap { $0 })).sorted()
    var means = [[Double]](repeating: [Double](repeating: 0, count: types.count), count: programs.count)
    for (t, type) in types.enumerated() {
      let members = labels.indices.filter { labels[$0] == type }
      for p in programs.indices { means[p][t] = members.reduce(0) { $0 + activity[$1][p] } / Double(members.count) }
    }
    var csv = "program," + types.joined(separator: ",") + "\n"
    for (p, row) in means.enumerated() { csv += "\(p)," + row.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n" }
    try writeAtomically(Data(csv.utf8), to: staging.appendingPathComponent("program_activity.csv"))
    let names = programs.enumerated().map { "\($0.offset): \($0.element.prefix(3).joined(separator: ", "))" }
    try HeatmapPlot(rows: names, columns: types, values: means, title: "program activity by \(labelKey)",
                    colorbarLabel: "activity").write(to: staging.appendingPathComponent("program_activity.png"))
  }
}
