// A simulated single-cell ATAC data set on a real genome with real motifs, with its ground truth.
import Foundation

/// Generator of a SIMULATED scATAC-seq data set (cells × peaks, binary), for tests, demos and
/// benchmarks of sequence models such as scBasset. Nothing here is measured data: the genome
/// sequence and the motifs are real, the peaks, planted motif sites and accessibility are drawn.
///
/// Model:
/// - Peaks: non-overlapping intervals of `peakWidth` at random places of the genome, whose
///   `seqLen` window (scvi-tools centring) has no N.
/// - Planted motifs: each TF of the programs is assigned to a random `peakFractionPerTF` of the
///   peaks; into each of them `sitesPerPeak` instances are written, sampled from the TF's PWM,
///   on a random strand, at random non-overlapping places within `plantRadius` bases of the peak
///   midpoint. The genome is modified in place, so any window read from `genome` sees them.
/// - Accessibility: cell i of type c opens peak p with probability
///   `sigmoid(baseline[p] + effect × (number of c's TFs planted in p) + offset[i])`, where
///   `baseline[p] ~ Normal(0, baselineSD)` and `offset[i]` is solved so that cell i's expected open
///   fraction equals its target, drawn log-uniformly in `openFractionRange` (library-size variation).
public struct SimulatedATAC: Sendable {
  public struct Configuration: Sendable {
    public var cellCount = 600
    public var peakCount = 800
    /// 300 bp: random placement with a gap of one width between peaks fits about 1,100 such peaks
    /// on the shipped 1-Mb genome piece, but only about 670 of 500 bp (fewer than the default 800).
    public var peakWidth = 300
    public var seqLen = 1344
    /// Cell type → the TFs (motif names) active in it. A TF may appear in several types.
    public var programs: [(cellType: String, tfs: [String])] = [
      ("B cell", ["PAX5", "EBF1", "CTCF"]),
      ("T cell", ["TCF7", "RUNX3", "CTCF"]),
      ("Monocyte", ["SPI1", "CEBPB", "CTCF"]),
      ("Erythroid", ["GATA1", "KLF1", "CTCF"]),
    ]
    public var peakFractionPerTF = 0.12
    public var sitesPerPeak = 2
    public var plantRadius = 60
    /// Log-odds added per active planted TF.
    public var effect = 3.0
    public var baselineSD = 1.0
    public var openFractionRange: ClosedRange<Double> = 0.02...0.10
    public var seed: UInt64 = 0

    public init() {}

    /// The default small set (600 cells × 800 peaks of 300 bp), fit for CI on the shipped 1-Mb genome piece.
    public static var small: Configuration { Configuration() }

    /// A larger set for benchmarks: 5,000 cells × 20,000 peaks of 300 bp, which needs about 10 Mb
    /// of N-free genome (more than the shipped piece; pass any larger FASTA).
    public static var benchmark: Configuration {
      var configuration = Configuration()
      configuration.cellCount = 5000
      configuration.peakCount = 20_000
      configuration.peakWidth = 300
      return configuration
    }
  }

  /// One planted motif instance.
  public struct Site: Equatable, Sendable {
    public var peak: Int
    public var tf: String
    /// 0-based position of the instance's first base on the chromosome.
    public var position: Int
    public var reverseStrand: Bool
    public var sequence: String
  }

  public let configuration: Configuration
  /// The genome with the planted motifs: (chromosome name, bases) in input order.
  public let genome: [(name: String, bases: [UInt8])]
  public let peaks: [Peak]
  /// The `seqLen` window of each peak (scvi-tools centring), upper case, read from `genome`.
  public let sequences: [String]
  public let cellTypeNames: [String]
  /// Index into `cellTypeNames` for each cell.
  public let cellTypes: [Int]
  /// Cells × peaks binary matrix in CSR form: the open peaks of cell i are
  /// `indices[indptr[i] ..< indptr[i + 1]]`, sorted; every stored value is 1.
  public let indptr: [Int]
  public let indices: [Int32]
  /// Ground truth: cell type → its TFs, TF → peaks it was planted in, the planted sites,
  /// per-peak baseline log-odds, per-cell offsets and target open fractions.
  public let programs: [String: [String]]
  public let peaksOfTF: [String: [Int]]
  public let sites: [Site]
  public let peakBaselines: [Double]
  public let cellOffsets: [Double]
  public let targetOpenFractions: [Double]

  public var cellCount: Int { cellTypes.count }
  public var peakCount: Int { peaks.count }

  /// Generates the data set on `genome` (e.g. from `FastaFile`, see `loadGenome`) with `motifs`
  /// (matched to program TFs by `Motif.name`, case-insensitively; the first match is used).
  public init(genome input: [(name: String, bases: [UInt8])], motifs: [Motif], configuration: Configuration = .small) throws {
    let config = configuration
    guard config.cellCount > 0, config.peakCount > 0, config.peakWidth > 0, config.seqLen > 0, !config.programs.isEmpty else {
      throw GenomicsError.invalidArgument("SimulatedATAC needs positive cell, peak, width and seqLen counts and at least one program")
    }
    guard config.openFractionRange.lowerBound > 0, config.openFractionRange.upperBound < 1 else {
      throw GenomicsError.invalidArgument("openFractionRange must lie inside (0, 1), got \(config.openFractionRange)")
    }
    var generator = SeededGenerator(seed: config.seed)
    var genome = input.map { (name: $0.name, bases: $0.bases.map { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 }) }

    // TFs and their motifs.
    var tfs: [String] = []
    for program in config.programs { for tf in program.tfs where !tfs.contains(tf) { tfs.append(tf) } }
    var motifOf: [String: Motif] = [:]
    for tf in tfs {
      guard let motif = motifs.first(where: { $0.name.caseInsensitiveCompare(tf) == .orderedSame }) else {
        throw GenomicsError.invalidArgument(
          "no motif named '\(tf)' among \(motifs.count) motifs (\(motifs.prefix(12).map(\.name).joined(separator: ", ")))")
      }
      guard 2 * config.plantRadius >= config.sitesPerPeak * motif.width, 2 * config.plantRadius <= config.seqLen else {
        throw GenomicsError.invalidArgument("plantRadius \(config.plantRadius) cannot hold \(config.sitesPerPeak) sites of \(tf) (\(motif.width) bp) inside the window")
      }
      motifOf[tf] = motif
    }

    // Peaks: random non-overlapping intervals whose windows are free of N.
    let peaks = try SimulatedATAC.placePeaks(genome: genome, configuration: config, using: &generator)

    // Plant motifs.
    var peaksOfTF: [String: [Int]] = [:]
    var tfsOfPeak = [[String]](repeating: [], count: peaks.count)
    var sites: [Site] = []
    let chromIndex = Dictionary(uniqueKeysWithValues: genome.enumerated().map { ($1.name, $0) })
    let perTF = max(1, Int((config.peakFractionPerTF * Double(peaks.count)).rounded()))
    var occupied = [Set<Int>](repeating: [], count: peaks.count)  // planted positions per peak
    for tf in tfs {
      var order = Array(peaks.indices)
      generator.shuffle(&order)
      let chosen = order.prefix(perTF).sorted()
      peaksOfTF[tf] = chosen
      let motif = motifOf[tf]!
      for p in chosen {
        tfsOfPeak[p].append(tf)
        let mid = floorDivide(peaks[p].start + peaks[p].end, 2)
        for _ in 0..<config.sitesPerPeak {
          // Try a few places that do not overwrite an earlier site in this peak.
          var start = 0
          var placed = false
          for _ in 0..<50 {
            start = mid - config.plantRadius + generator.uniformInt(below: 2 * config.plantRadius - motif.width + 1)
            if !(start..<(start + motif.width)).contains(where: occupied[p].contains) { placed = true; break }
          }
          if !placed { continue }
          occupied[p].formUnion(start..<(start + motif.width))
          var instance = motif.sampleInstances(count: 1, using: &generator)[0]
          let reverse = generator.uniformInt(below: 2) == 1
          if reverse { instance = DNA.reverseComplement(instance) }
          let letters = instance.map(DNACode.letter(of:))
          let c = chromIndex[peaks[p].chrom]!
          genome[c].bases.replaceSubrange(start..<(start + motif.width), with: letters)
          sites.append(Site(peak: p, tf: tf, position: start, reverseStrand: reverse, sequence: String(decoding: letters, as: UTF8.self)))
        }
      }
    }

    // Windows as scvi-tools cuts them.
    let sequences = peaks.map { peak -> String in
      let (start, end) = WindowCentering.scviTools.window(for: peak, seqLen: config.seqLen)
      let bases = genome[chromIndex[peak.chrom]!].bases
      return String(decoding: (start..<end).map { $0 >= 0 && $0 < bases.count ? bases[$0] : UInt8(ascii: "N") }, as: UTF8.self)
    }

    // Cells, baselines, offsets, accessibility.
    let typeNames = config.programs.map(\.cellType)
    let cellTypes = (0..<config.cellCount).map { _ in generator.uniformInt(below: typeNames.count) }
    let baselines = (0..<peaks.count).map { _ in config.baselineSD * SimulatedATAC.standardNormal(&generator) }
    let activeCount: [[Double]] = config.programs.map { program in
      tfsOfPeak.map { peakTFs in Double(peakTFs.filter(program.tfs.contains).count) }
    }
    let typeLogits: [[Double]] = activeCount.map { counts in zip(baselines, counts).map { $0 + config.effect * $1 } }
    let low = log(config.openFractionRange.lowerBound)
    let high = log(config.openFractionRange.upperBound)
    var targets: [Double] = []
    var offsets: [Double] = []
    var indptr = [0]
    var indices: [Int32] = []
    for cell in 0..<config.cellCount {
      let target = exp(low + (high - low) * generator.uniformDouble())
      let logits = typeLogits[cellTypes[cell]]
      let offset = SimulatedATAC.solveOffset(logits: logits, meanProbability: target)
      targets.append(target)
      offsets.append(offset)
      for (p, logit) in logits.enumerated() where generator.uniformDouble() < sigmoid(logit + offset) {
        indices.append(Int32(p))
      }
      indptr.append(indices.count)
    }

    self.configuration = config
    self.genome = genome
    self.peaks = peaks
    self.sequences = sequences
    self.cellTypeNames = typeNames
    self.cellTypes = cellTypes
    self.indptr = indptr
    self.indices = indices
    self.programs = Dictionary(config.programs.map { ($0.cellType, $0.tfs) }, uniquingKeysWith: { a, _ in a })
    self.peaksOfTF = peaksOfTF
    self.sites = sites
    self.peakBaselines = baselines
    self.cellOffsets = offsets
    self.targetOpenFractions = targets
  }

  /// Reads every record of a FASTA into memory (for small genomes such as data/atac/hg19_chr22_20-21Mb.fa).
  public static func loadGenome(_ fasta: FastaFile) throws -> [(name: String, bases: [UInt8])] {
    try fasta.index.entries.map { ($0.name, try fasta.sequence(chrom: $0.name, start: 0, end: $0.length)) }
  }

  /// Writes the genome with its planted motifs as a FASTA (60 bases a line), atomically.
  public func writeGenome(to path: String) throws {
    try FastaRecords.write(
      genome.map { FastaRecords.Record(name: $0.name, sequence: String(decoding: $0.bases, as: UTF8.self)) }, to: path, lineWidth: 60)
  }

  /// The dense 0/1 row of one cell (for small sets and tests).
  public func denseRow(cell: Int) -> [UInt8] {
    var row = [UInt8](repeating: 0, count: peakCount)
    for k in indptr[cell]..<indptr[cell + 1] { row[Int(indices[k])] = 1 }
    return row
  }

  // MARK: helpers

  private static func placePeaks(
    genome: [(name: String, bases: [UInt8])], configuration config: Configuration, using generator: inout SeededGenerator
  ) throws -> [Peak] {
    // Prefix counts of N per chromosome, to test a window in O(1).
    let nPrefix: [[Int32]] = genome.map { chrom in
      var prefix = [Int32](repeating: 0, count: chrom.bases.count + 1)
      for (i, base) in chrom.bases.enumerated() { prefix[i + 1] = prefix[i] + (DNACode.code(of: base) == DNACode.n ? 1 : 0) }
      return prefix
    }
    let lengths = genome.map(\.bases.count)
    let total = lengths.reduce(0, +)
    guard total > config.seqLen else { throw GenomicsError.invalidArgument("genome of \(total) bases is shorter than one window") }
    // Sorted peak starts per chromosome; all peaks have the same width w, and a new peak keeps a gap
    // of w to every other (called peaks rarely touch): starts must differ by at least 2w.
    var starts = [[Int]](repeating: [], count: genome.count)
    let spacing = 2 * config.peakWidth
    var peaks: [Peak] = []
    var attempts = 0
    while peaks.count < config.peakCount {
      attempts += 1
      if attempts > 50 * config.peakCount {
        throw GenomicsError.invalidArgument(
          "could place only \(peaks.count) of \(config.peakCount) peaks of \(config.peakWidth) bp in \(total) bases; use a larger genome or fewer peaks")
      }
      var offset = generator.uniformInt(below: total)
      var c = 0
      while offset >= lengths[c] { offset -= lengths[c]; c += 1 }
      let peak = Peak(chrom: genome[c].name, start: offset, end: offset + config.peakWidth)
      let (windowStart, windowEnd) = WindowCentering.scviTools.window(for: peak, seqLen: config.seqLen)
      guard windowStart >= 0, windowEnd <= lengths[c], nPrefix[c][windowEnd] == nPrefix[c][windowStart] else { continue }
      let slot = firstIndex(in: starts[c], greaterThan: offset - spacing)
      guard slot == starts[c].count || starts[c][slot] >= offset + spacing else { continue }
      starts[c].insert(offset, at: slot)
      peaks.append(peak)
    }
    let order = Dictionary(uniqueKeysWithValues: genome.enumerated().map { ($1.name, $0) })
    return peaks.sorted { (order[$0.chrom]!, $0.start) < (order[$1.chrom]!, $1.start) }
  }

  /// The first index of sorted `values` whose value is > `bound` (values.count if none).
  private static func firstIndex(in values: [Int], greaterThan bound: Int) -> Int {
    var low = 0
    var high = values.count
    while low < high {
      let mid = (low + high) / 2
      if values[mid] > bound { high = mid } else { low = mid + 1 }
    }
    return low
  }

  /// The offset o with mean(sigmoid(logits + o)) = target, by bisection (the mean is increasing in o).
  static func solveOffset(logits: [Double], meanProbability target: Double) -> Double {
    var low = -40.0
    var high = 40.0
    for _ in 0..<60 {
      let mid = (low + high) / 2
      let mean = logits.reduce(0) { $0 + sigmoid($1 + mid) } / Double(logits.count)
      if mean < target { low = mid } else { high = mid }
    }
    return (low + high) / 2
  }

  /// A standard normal draw (Box–Muller).
  static func standardNormal(_ generator: inout SeededGenerator) -> Double {
    let u1 = 1 - generator.uniformDouble()  // (0, 1]
    let u2 = generator.uniformDouble()
    return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
  }
}

@inline(__always)
func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }
