import Foundation
import Genomics
import Torch

extension SCBASSET {
  /// TF activity per cell by motif injection (calico's `motif_score`, scvi-tools'
  /// `get_tf_activity`): predict on the library's dinucleotide-shuffled backgrounds and on the same
  /// backgrounds with the TF's motif inserted; per cell, the mean difference of the logits
  /// (minus the cell bias when `libSizeNorm`, which cancels in the difference), z-scored across
  /// cells (population standard deviation, as numpy's `std`).
  ///
  /// - Parameter motifLibrary: a folder in calico's layout (`shuffled_peaks.fasta`,
  ///   `shuffled_peaks_motifs/{tf}.fasta`; see `MotifLibrary.write`). Sequences longer than the
  ///   model are trimmed evenly at both ends (scvi-tools); shorter ones are an error. Letters
  ///   other than ACGT become N (0.25 in each channel of a 4-channel model).
  public func tfActivity(tf: String, motifLibrary: URL, libSizeNorm: Bool = true, batchSize: Int = 256) throws -> [Double] {
    let folder = motifLibrary.appendingPathComponent(MotifLibrary.motifFolderName)
    let motifFile = folder.appendingPathComponent("\(tf).fasta")
    guard FileManager.default.fileExists(atPath: motifFile.path) else {
      let known = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
        .filter { $0.hasSuffix(".fasta") }.map { String($0.dropLast(6)) }.sorted()
      throw SCBassetError.invalidInput(
        "\(tf) is not a motif of the library \(motifLibrary.path) (\(known.count) motifs: \(known.prefix(12).joined(separator: ", "))\(known.count > 12 ? ", …" : ""))")
    }
    let motif = try FastaRecords.read(from: motifFile.path).map(\.sequence)
    let background = try FastaRecords.read(
      from: motifLibrary.appendingPathComponent(MotifLibrary.backgroundFileName).path).map(\.sequence)
    guard !motif.isEmpty, !background.isEmpty else { throw SCBassetError.invalidInput("empty motif library for \(tf)") }
    let motifLogits = predictLogits(codes: try libraryCodes(motif), batchSize: batchSize)
    let backgroundLogits = predictLogits(codes: try libraryCodes(background), batchSize: batchSize)
    var difference = motifLogits.mean(dim: 0) - backgroundLogits.mean(dim: 0)
    if libSizeNorm {
      // (motif − bias) − (background − bias): kept for the reference's arithmetic order.
      let bias = network.cellBias.detach().to(.cpu)
      difference = (motifLogits - bias).mean(dim: 0) - (backgroundLogits - bias).mean(dim: 0)
    }
    let values = difference.to(.float64).toArray(Double.self)
    let mean = values.reduce(0, +) / Double(values.count)
    let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)).squareRoot()
    return values.map { ($0 - mean) / sd }
  }

  /// Codes of library sequences, trimmed to the model's length.
  private func libraryCodes(_ sequences: [String]) throws -> Tensor {
    let length = config.sequenceLength
    let trimmed = try sequences.enumerated().map { i, s -> String in
      let bases = Array(s.utf8)
      guard bases.count >= length else {
        throw SCBassetError.invalidInput("motif library sequence \(i) has \(bases.count) bases, fewer than the model's \(length)")
      }
      let cut = (bases.count - length) / 2
      return String(decoding: bases[cut..<(cut + length)], as: UTF8.self)
    }
    return try SCBassetInput.codes(of: trimmed, length: length)
  }
}
