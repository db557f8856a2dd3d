// A motif-injection library in calico scBasset's layout, built from any genome and motif file.
import Foundation

/// The folder `tfActivity` reads: `shuffled_peaks.fasta` (dinucleotide-shuffled peak sequences)
/// and `shuffled_peaks_motifs/{TF}.fasta` (the same backgrounds with one sampled motif instance
/// inserted at the centre of each), as calico's `make_fasta.R` builds `Homo_sapiens_motif_fasta`.
public enum MotifLibrary {
  public static let backgroundFileName = "shuffled_peaks.fasta"
  public static let motifFolderName = "shuffled_peaks_motifs"

  public struct Summary: Sendable {
    public var backgroundCount: Int
    /// The TF names written, in motif-file order.
    public var tfNames: [String]
    /// Motifs not written because an earlier motif already had their TF name (calico's loop would
    /// overwrite the file; we keep the first).
    public var skippedDuplicates: [String]
  }

  /// Up to `count` peaks drawn without replacement (seeded), each read as a `seqLen` window
  /// centred on the peak (`WindowCentering.calico`, N-padded at chromosome ends), upper-cased and
  /// dinucleotide-shuffled once: the backgrounds of calico's library (1000 peaks, 1344 bp,
  /// `fasta_ushuffle -k 2`).
  public static func shuffledBackgrounds(
    peaks: [Peak], fasta: FastaFile, count: Int = 1000, seqLen: Int = 1344, seed: UInt64 = 0
  ) throws -> [FastaRecords.Record] {
    guard !peaks.isEmpty else { throw GenomicsError.invalidArgument("no peaks to build backgrounds from") }
    var generator = SeededGenerator(seed: seed)
    var order = Array(peaks.indices)
    generator.shuffle(&order)
    let chosen = order.prefix(min(count, peaks.count)).map { peaks[$0] }
    let windows = try DNAWindows.extract(
      peaks: chosen, fasta: fasta, seqLen: seqLen, centering: .calico, unknown: .keepAsN, seed: seed, keepSequences: true)
    return zip(windows.windows, windows.sequences!).map { window, sequence in
      FastaRecords.Record(name: window.name, sequence: DinucleotideShuffle.shuffle(sequence, using: &generator))
    }
  }

  /// Writes the library folder. Each motif's instances are drawn with `SeededGenerator(seed:)`
  /// afresh (calico calls `set.seed(10)` before each motif), instance k going into background k.
  @discardableResult
  public static func write(
    backgrounds: [FastaRecords.Record], motifs: [Motif], to directory: String, seed: UInt64 = 0
  ) throws -> Summary {
    guard !backgrounds.isEmpty else { throw GenomicsError.invalidArgument("no background sequences") }
    let motifFolder = (directory as NSString).appendingPathComponent(motifFolderName)
    do {
      try FileManager.default.createDirectory(atPath: motifFolder, withIntermediateDirectories: true)
    } catch {
      throw GenomicsError.unwritableFile(path: motifFolder, reason: error.localizedDescription)
    }
    try FastaRecords.write(backgrounds, to: (directory as NSString).appendingPathComponent(backgroundFileName))
    var written: [String] = []
    var skipped: [String] = []
    for motif in motifs {
      let tf = motif.tfName
      guard !tf.isEmpty, !written.contains(tf) else {
        skipped.append("\(motif.id) \(motif.name)")
        continue
      }
      var generator = SeededGenerator(seed: seed)
      let instances = motif.sampleInstanceStrings(count: backgrounds.count, using: &generator)
      let records = try zip(backgrounds, instances).map { background, instance in
        FastaRecords.Record(
          name: background.name, sequence: try MotifInsertion.insertAtCentre(instance, into: background.sequence))
      }
      try FastaRecords.write(records, to: (motifFolder as NSString).appendingPathComponent("\(tf).fasta"))
      written.append(tf)
    }
    return Summary(backgroundCount: backgrounds.count, tfNames: written, skippedDuplicates: skipped)
  }
}
