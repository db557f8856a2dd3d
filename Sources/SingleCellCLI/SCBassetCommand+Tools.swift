import ArgumentParser
import Foundation
import SingleCell

/// `singlecell scbasset tf-activity OUTDIR --motif-library DIR --tf NAME`.
struct SCBassetTFActivityCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tf-activity", abstract: "Per-cell TF activity by motif injection (z-scores across cells).",
    discussion: """
      Reads the model saved by `scbasset train` in OUTDIR. Writes a CSV (cell, then one column per
      TF; default OUTDIR/tf_activity.csv) and, with --obs, adds obs['scbasset_tf_NAME'] to
      OUTDIR/adata.h5ad.
      """)

  @OptionGroup var global: GlobalOptions
  @Argument(help: "Folder written by `scbasset train`.") var modelDir: String
  @Option(help: "Motif library in calico's layout (see build-motif-library).") var motifLibrary: String
  @Option(help: "TF name (the library's shuffled_peaks_motifs/NAME.fasta); repeat for several.") var tf: [String]
  @Option(help: "CSV output (default MODELDIR/tf_activity.csv).") var csv: String?
  @Flag(help: "Also add the scores to obs of MODELDIR/adata.h5ad.") var obs = false
  @Flag(inversion: .prefixedNo, help: "Subtract the cell bias before comparing (scvi-tools' lib_size_norm).")
  var libSizeNorm = true

  func run() throws {
    let device = try global.apply()
    guard !tf.isEmpty else { throw ValidationError("give at least one --tf") }
    let dir = URL(fileURLWithPath: modelDir)
    let model = try SCBASSET.load(from: dir)
    model.to(device)
    let library = URL(fileURLWithPath: motifLibrary)
    let scores = try tf.map { try model.tfActivity(tf: $0, motifLibrary: library, libSizeNorm: libSizeNorm) }
    var lines = [(["cell"] + tf).joined(separator: ",")]
    for (i, cell) in model.cellNames.enumerated() {
      lines.append(([csvField(cell)] + scores.map { String($0[i]) }).joined(separator: ","))
    }
    let csvURL = csv.map { URL(fileURLWithPath: $0) } ?? dir.appendingPathComponent("tf_activity.csv")
    try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: csvURL)
    if obs {
      let path = dir.appendingPathComponent("adata.h5ad").path
      var adata = try AnnData.read(h5ad: path)
      guard adata.obsNames == model.cellNames else { throw ValidationError("\(path) does not hold the model's cells") }
      for (name, values) in zip(tf, scores) {
        try adata.obs.set("scbasset_tf_\(name)", .dense(DenseArray(.float64(values))))
      }
      try adata.write(h5ad: path)
    }
    print("wrote TF activity of \(tf.joined(separator: ", ")) for \(model.cellNames.count) cells to \(csvURL.path)")
  }
}

/// `singlecell scbasset build-motif-library --fasta GENOME.fa --peaks IN.h5ad --motifs FILE -o DIR`.
struct SCBassetMotifLibraryCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "build-motif-library",
    abstract: "Build calico's motif-injection library from peaks, a genome and a motif file.",
    discussion: """
      Draws --count peaks, reads their --seq-len windows, shuffles each (dinucleotide-preserving)
      into DIR/shuffled_peaks.fasta and writes DIR/shuffled_peaks_motifs/TF.fasta with one sampled
      motif instance inserted at the centre of each background. Motifs: MEME, JASPAR or PFM.
      """)

  @OptionGroup var global: GlobalOptions
  @Option(help: "Genome FASTA.") var fasta: String
  @Option(help: "Cells × peaks .h5ad whose var names or chr/start/end columns are the peaks.") var peaks: String
  @Option(help: "Motif file (MEME, JASPAR or PFM).") var motifs: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "Number of background sequences.") var count: Int = 1000
  @Option(help: "Sequence length (the model's).") var seqLen: Int = 1344

  func run() throws {
    _ = try global.apply()
    let adata = try AnnData.read(h5ad: peaks)
    let peakList: [Peak]
    if adata.var["chr"] != nil, adata.var["start"] != nil, adata.var["end"] != nil {
      peakList = try PeakCoordinates.peaks(chroms: try adata.var.labels("chr").map { $0 ?? "" },
                                           starts: try adata.var.doubles("start").map { Int($0) },
                                           ends: try adata.var.doubles("end").map { Int($0) })
    } else {
      peakList = try PeakCoordinates.peaks(names: adata.varNames)
    }
    let backgrounds = try MotifLibrary.shuffledBackgrounds(
      peaks: peakList, fasta: try FastaFile(path: fasta), count: count, seqLen: seqLen, seed: global.seed)
    let summary = try MotifLibrary.write(backgrounds: backgrounds, motifs: try MotifReader.read(path: motifs),
                                         to: output, seed: global.seed)
    print("wrote \(summary.backgroundCount) backgrounds and \(summary.tfNames.count) motifs to \(output)")
    if !summary.skippedDuplicates.isEmpty {
      print("skipped (duplicate TF names): \(summary.skippedDuplicates.joined(separator: ", "))")
    }
  }
}

/// `singlecell scbasset predict --checkpoint FILE.safetensors --fasta SEQS.fa -o logits.tsv`.
struct SCBassetPredictCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "predict", abstract: "Accessibility logits of DNA sequences in every cell of a checkpoint.",
    discussion: """
      The checkpoint is a model.safetensors written by `scbasset train`, a multimolecule scBasset
      model.safetensors (config.json beside it) or a scvi-tools ScBassetModule state dict saved as
      safetensors. Every sequence must have the model's length. Writes a TSV: a header row
      (sequence, then the cell names, or cell_0… when unknown), one row of logits per sequence.
      """)

  @OptionGroup var global: GlobalOptions
  @Option(help: "Weights (.safetensors).") var checkpoint: String
  @Option(help: "FASTA of the sequences to score.") var fasta: String
  @Option(name: [.short, .customLong("output")], help: "Output TSV.") var output: String
  @Option(help: "The model's sequence length when the checkpoint does not record it.") var sequenceLength: Int?
  @Option(help: "Sequences per forward pass.") var batchSize: Int = 256

  func run() throws {
    let device = try global.apply()
    let url = URL(fileURLWithPath: checkpoint)
    let network = try SCBassetCheckpoint.load(url, sequenceLength: sequenceLength)
    let records = try FastaRecords.read(from: fasta)
    guard !records.isEmpty else { throw ValidationError("\(fasta) holds no sequences") }
    let stateURL = url.deletingLastPathComponent().appendingPathComponent(SCBASSET.stateFileName)
    var cells = (0..<network.config.numLabels).map { "cell_\($0)" }
    if let data = try? Data(contentsOf: stateURL),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let names = object["cellNames"] as? [String], names.count == cells.count
    {
      cells = names
    }
    let model = SCBASSET(network: network, cellNames: cells)
    model.to(device)
    let logits = try model.predict(sequences: records.map(\.sequence), batchSize: batchSize)
    let values = logits.toArray(Float.self)
    var text = (["sequence"] + cells).joined(separator: "\t") + "\n"
    for (i, record) in records.enumerated() {
      let row = values[(i * cells.count)..<((i + 1) * cells.count)].map { String($0) }
      text += ([record.name] + row).joined(separator: "\t") + "\n"
    }
    try writeAtomically(Data(text.utf8), to: URL(fileURLWithPath: output))
    print("wrote logits of \(records.count) sequences × \(cells.count) cells to \(output)")
  }
}

/// `singlecell scbasset simulate -o FILE.h5ad`: the simulated scATAC set of Genomics.SimulatedATAC.
struct SCBassetSimulateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "simulate", abstract: "Write a SIMULATED scATAC set (cells × peaks, binary) on a real genome.",
    discussion: "Defaults use data/atac (hg19 chr22 20-21 Mb, JASPAR2026 motifs). Also writes the genome with the planted motifs (--genome-out).")

  @OptionGroup var global: GlobalOptions
  @Option(help: "Genome FASTA.") var genome: String = "data/atac/hg19_chr22_20-21Mb.fa"
  @Option(help: "Motif file whose names include the programs' TFs.") var motifs: String = "data/atac/motifs.jaspar"
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad (cells × peaks, varm['dna_code']).") var output: String
  @Option(help: "Write the genome with the planted motifs here.") var genomeOut: String?
  @Option var cells: Int = 600
  @Option var peaks: Int = 800
  @Option(help: "Peak width in bp (the shipped 1-Mb genome piece holds about 1,100 peaks of 300 bp, 670 of 500 bp).")
  var peakWidth: Int = 300
  @Option var seqLen: Int = 1344
  @Option(help: "Log-odds added per active planted TF.") var effect: Double = 3
  @Option(help: "Standard deviation of the per-peak baseline log-odds.") var baselineSD: Double = 1
  @Option(help: "Planted sites lie within this many bp of the peak midpoint.") var plantRadius: Int = 60
  @Option(help: "Fraction of the peaks each TF is planted in.") var peakFractionPerTF: Double = 0.12
  @Option(help: "Motif instances planted per chosen peak.") var sitesPerPeak: Int = 2
  @Option(help: "Lowest target open fraction of a cell.") var openFractionMin: Double = 0.02
  @Option(help: "Highest target open fraction of a cell.") var openFractionMax: Double = 0.10

  func run() throws {
    _ = try global.apply()
    var configuration = SimulatedATAC.Configuration.small
    configuration.cellCount = cells
    configuration.peakCount = peaks
    configuration.peakWidth = peakWidth
    configuration.seqLen = seqLen
    configuration.seed = global.seed
    configuration.effect = effect
    configuration.baselineSD = baselineSD
    configuration.plantRadius = plantRadius
    configuration.peakFractionPerTF = peakFractionPerTF
    configuration.sitesPerPeak = sitesPerPeak
    guard openFractionMin > 0, openFractionMin <= openFractionMax, openFractionMax < 1 else {
      throw ValidationError("need 0 < --open-fraction-min <= --open-fraction-max < 1")
    }
    configuration.openFractionRange = openFractionMin...openFractionMax
    let sequence = try SimulatedATAC.loadGenome(try FastaFile(path: genome, writeIndex: false))
    let simulation = try SimulatedATAC(genome: sequence, motifs: try MotifReader.read(path: motifs), configuration: configuration)
    try simulation.annData().write(h5ad: output)
    if let genomeOut { try simulation.writeGenome(to: genomeOut) }
    print("wrote \(cells) simulated cells × \(peaks) peaks to \(output)")
  }
}

/// `scbasset import DIR -o OUT` / `scbasset export MODEL -o DIR`: scvi-tools SCBASSET folders both ways.
struct SCBassetImportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import", abstract: "Open a scvi-tools SCBASSET model folder (model.save) as an scBasset model folder.")

  @Argument(help: "scvi-tools SCBASSET folder.") var folder: String
  @Option(name: [.short, .customLong("output")], help: "Output model folder.") var output: String

  func run() throws {
    let model = try SCBASSET.importScviTools(URL(fileURLWithPath: folder))
    try writeFolderAtomically(URL(fileURLWithPath: output)) { try model.save(to: $0) }
    print("wrote \(output): scBasset over \(model.cellNames.count) cells, \(model.config.sequenceLength) bp")
  }
}

struct SCBassetExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export", abstract: "Write an scBasset model folder as a scvi-tools SCBASSET folder (scvi.external.SCBASSET.load).")

  @Argument(help: "scBasset model folder.") var model: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "Output format (only scvi-tools).") var format = "scvi-tools"

  func run() throws {
    guard format == "scvi-tools" else { throw ValidationError("--format must be scvi-tools, got '\(format)'") }
    let loaded = try SCBASSET.load(from: URL(fileURLWithPath: model))
    try writeFolderAtomically(URL(fileURLWithPath: output)) { try loaded.exportScviTools(to: $0) }
    print("wrote \(output)/model.pt (scvi-tools \(SCVIModel.scviToolsLayoutVersion) layout)")
  }
}
