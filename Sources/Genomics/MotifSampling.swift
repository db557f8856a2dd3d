// Sampling motif instances from a PWM and inserting them at the centre of a sequence.

extension Motif {
  /// `count` instances drawn independently position by position from the motif's probabilities,
  /// as codes 0...3 (A, C, G, T). Like calico's `make_fasta.R`, all instances of position 1 are drawn,
  /// then of position 2, and so on (there with R's `sample(..., prob = column)`; here with the
  /// seeded generator and the inverse of the cumulative probabilities).
  public func sampleInstances(count: Int, using generator: inout SeededGenerator) -> [[UInt8]] {
    var instances = [[UInt8]](repeating: [UInt8](repeating: 0, count: width), count: count)
    for (position, row) in probabilities.enumerated() {
      var cumulative: [Double] = []
      var total = 0.0
      for p in row {
        total += p
        cumulative.append(total)
      }
      for k in 0..<count {
        let u = generator.uniformDouble() * total
        var base = 0
        while base < 3 && u >= cumulative[base] { base += 1 }
        // Rounding can leave u past the last non-zero step: never return a zero-probability base.
        while row[base] == 0 { base -= 1 }
        instances[k][position] = UInt8(base)
      }
    }
    return instances
  }

  /// Sampled instances as upper-case letters.
  public func sampleInstanceStrings(count: Int, using generator: inout SeededGenerator) -> [String] {
    sampleInstances(count: count, using: &generator).map(DNACode.decode)
  }
}

public enum MotifInsertion {
  /// The 0-based position of the first motif base when a motif of `width` is put at the centre of
  /// a sequence of `length`: `length / 2 - width / 2`, both divisions rounded down. For calico's
  /// even 1344-bp backgrounds this is `make_fasta.R`'s `left_coord = width(seq)/2 - floor(ncol(pwm)/2)`
  /// (the motif replaces bases left_coord+1 ... left_coord+width, 1-based). For a 19-bp motif in 1344 bp: 663.
  public static func centreStart(length: Int, width: Int) -> Int {
    length / 2 - width / 2
  }

  /// `background` with its centre bases replaced by `motif` (same length as `background`).
  public static func insertAtCentre<T>(_ motif: [T], into background: [T]) throws -> [T] {
    guard motif.count <= background.count else {
      throw GenomicsError.invalidArgument(
        "motif of \(motif.count) bases does not fit in a sequence of \(background.count) bases")
    }
    let start = centreStart(length: background.count, width: motif.count)
    var result = background
    result.replaceSubrange(start..<(start + motif.count), with: motif)
    return result
  }

  public static func insertAtCentre(_ motif: String, into background: String) throws -> String {
    String(decoding: try insertAtCentre(Array(motif.utf8), into: Array(background.utf8)), as: UTF8.self)
  }
}
