import ArgumentParser
import Foundation
import SingleCell

/// `singlecell simulate atlas`: synthetic data for scale tests.
struct SimulateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "simulate", abstract: "Synthetic data: atlases for scale tests, Perturb-seq sets for perturbation models.", subcommands: [SimulateAtlasCommand.self, SimulatePerturbSeqCommand.self])
}

struct SimulateAtlasCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "atlas", abstract: "Write a synthetic atlas of N cells × G genes resampled from real profiles, by blocks.",
    discussion: """
      Each cell resamples a profile cell of PROFILES, gets a batch (obs 'batch') and Poisson counts around the \
      profile's counts times a per-cell library factor and a per-batch gene scale; the G genes with the most \
      counts are kept. X is CSR, written by blocks into chunked, extendable datasets (optionally gzip), so a \
      million cells never sit in memory. See docs/scale.md.
      """)

  @OptionGroup var global: GlobalOptions
  @Option(help: ".h5ad of real counts to resample (e.g. ../shared/data/pbmc_frozen_sorted_5k.h5ad).") var profiles: String
  @Option(help: "Layer of counts in PROFILES (default X).") var layer: String?
  @Option(help: "Cells to write.") var cells: Int
  @Option(help: "Genes to keep (those with the most counts).") var genes = 2000
  @Option(help: "Batches.") var batches = 4
  @Option(help: "SD of the log library-size factor per cell.") var libraryNoise = 0.3
  @Option(help: "SD of the log gene scale per batch.") var geneScaleNoise = 0.2
  @Option(help: "obs columns of PROFILES copied to each cell (comma-separated).") var copyObs: String?
  @Option(help: "Layout of X: csr or dense.") var layout = "csr"
  @Option(help: "gzip level 1–9 (default: no compression).") var gzip: Int?
  @Option(help: "Values per chunk of data and indices.") var chunkValues = 1 << 16
  @Option(help: "dtype of values: float32, float64, int32 or int64.") var valueType = "float32"
  @Option(help: "dtype of indices: uint16, int32 or int64.") var indexType = "int32"
  @Option(help: "dtype of indptr: int32 or int64.") var indptrType = "int64"
  @Option(help: "Cells generated per written block.") var blockRows = 10_000
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String

  func run() throws {
    _ = try global.apply()
    let profileData = try AnnData.read(h5ad: profiles, requireX: layer == nil)
    let writer = H5ADBlockWriter.Options(
      layout: try parseChoice(layout, "--layout"), valueType: try parseChoice(valueType, "--value-type"), indexType: try parseChoice(indexType, "--index-type"),
      indptrType: try parseChoice(indptrType, "--indptr-type"), gzipLevel: gzip, chunkValues: chunkValues)
    let options = SyntheticAtlas.Options(
      cells: cells, genes: genes, batches: batches, libraryNoise: libraryNoise, geneScaleNoise: geneScaleNoise,
      seed: global.seed, blockRows: blockRows, writer: writer,
      copiedObs: copyObs.map { $0.split(separator: ",").map(String.init) } ?? [])
    let start = Date()
    let terminal = isatty(STDERR_FILENO) != 0
    let nnz = try SyntheticAtlas.write(from: profileData, layer: layer, to: output, options: options) { written in
      if terminal {
        FileHandle.standardError.write(Data("\r\u{1B}[Ksimulate atlas: \(written)/\(cells) cells".utf8))
      }
    }
    if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    print("wrote \(output): \(cells) cells × \(genes) genes, \(nnz) nonzeros in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
  }
}
