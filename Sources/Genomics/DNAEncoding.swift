// Integer codes, one-hot encoding, reverse complement and shifts for DNA.

/// Integer codes A=0, C=1, G=2, T=3 (either case); N and every other letter are "unknown",
/// code 4 when kept (`UnknownBaseHandling.keepAsN`).
public enum DNACode {
  public static let a: UInt8 = 0
  public static let c: UInt8 = 1
  public static let g: UInt8 = 2
  public static let t: UInt8 = 3
  public static let n: UInt8 = 4

  private static let table: [UInt8] = {
    var table = [UInt8](repeating: n, count: 256)
    for (letter, code) in [("A", a), ("C", c), ("G", g), ("T", t)] {
      table[Int(UInt8(ascii: letter.unicodeScalars.first!))] = code
      table[Int(UInt8(ascii: letter.lowercased().unicodeScalars.first!))] = code
    }
    return table
  }()

  private static let letters: [UInt8] = Array("ACGTN".utf8)

  /// The code of one base byte: 0...3 for ACGT/acgt, 4 for anything else.
  @inline(__always)
  public static func code(of base: UInt8) -> UInt8 { table[Int(base)] }

  /// The upper-case letter of a code (4 and above give `N`).
  public static func letter(of code: UInt8) -> UInt8 { letters[Int(min(code, 4))] }

  /// Codes for `bases`; unknown letters become 4 or a random base, see `UnknownBaseHandling`.
  public static func encode(
    _ bases: some Sequence<UInt8>, unknown: UnknownBaseHandling = .keepAsN, using generator: inout SeededGenerator
  ) -> [UInt8] {
    bases.map { base in
      let value = code(of: base)
      if value == n, case .randomBase = unknown { return UInt8(generator.uniformInt(below: 4)) }
      return value
    }
  }

  /// Codes for `bases`, unknown letters kept as 4 (no randomness needed).
  public static func encode(_ bases: some Sequence<UInt8>) -> [UInt8] {
    bases.map(code(of:))
  }

  public static func encode(_ sequence: String) -> [UInt8] { encode(sequence.utf8) }

  /// The sequence of upper-case letters for `codes`.
  public static func decode(_ codes: some Sequence<UInt8>) -> String {
    String(decoding: codes.map(letter(of:)), as: UTF8.self)
  }
}

/// What to do with N and other non-ACGT letters when coding a sequence.
public enum UnknownBaseHandling: Sendable, Equatable {
  /// Replace each with a uniformly random base (0...3) from the seeded generator. This is what
  /// calico scBasset's `dna_1hot` does (`random.randint(0, 3)`, inclusive). scvi-tools'
  /// `_dna_to_code` calls `np.random.randint(0, 3)`, whose upper bound is exclusive, so it never
  /// draws T; we do not copy that quirk.
  case randomBase
  /// Keep code 4, for the 5-channel (A, C, G, T, N) one-hot of multimolecule checkpoints,
  /// or for a 4-channel one-hot with a fill value.
  case keepAsN
}

/// One-hot layouts, channels first (C × L, the layout of a PyTorch Conv1d input).
public enum OneHotLayout: Sendable, Equatable {
  /// Four channels A, C, G, T; a code-4 position gets `nFill` in every channel
  /// (0 gives an all-zero column; 0.25 is calico's `n_uniform` and shift padding).
  case acgt(nFill: Float = 0)
  /// Five channels A, C, G, T, N (multimolecule's scBasset input).
  case acgtn

  public var channels: Int {
    switch self {
    case .acgt: return 4
    case .acgtn: return 5
    }
  }
}

public enum DNA {
  /// One-hot of `codes`, channels first: element `[channel * L + position]`.
  public static func oneHot(_ codes: [UInt8], layout: OneHotLayout = .acgt()) -> [Float] {
    var out = [Float](repeating: 0, count: layout.channels * codes.count)
    oneHot(codes[...], layout: layout, into: &out, at: 0)
    return out
  }

  /// One-hot of an [n × L] row-major code matrix into an [n × C × L] array.
  public static func oneHot(matrix codes: [UInt8], length: Int, layout: OneHotLayout = .acgt()) -> [Float] {
    precondition(length > 0 && codes.count % length == 0, "code matrix size \(codes.count) is not a multiple of \(length)")
    let rows = codes.count / length
    var out = [Float](repeating: 0, count: rows * layout.channels * length)
    for row in 0..<rows {
      oneHot(codes[(row * length)..<((row + 1) * length)], layout: layout, into: &out, at: row * layout.channels * length)
    }
    return out
  }

  private static func oneHot(_ codes: ArraySlice<UInt8>, layout: OneHotLayout, into out: inout [Float], at base: Int) {
    let length = codes.count
    for (position, code) in codes.enumerated() {
      if code < 4 {
        out[base + Int(code) * length + position] = 1
      } else {
        switch layout {
        case .acgt(let nFill):
          if nFill != 0 { for channel in 0..<4 { out[base + channel * length + position] = nFill } }
        case .acgtn:
          out[base + 4 * length + position] = 1
        }
      }
    }
  }

  /// Reverse complement of codes: reversed, with 0↔3 (A↔T) and 1↔2 (C↔G); 4 (N) stays 4.
  public static func reverseComplement(_ codes: [UInt8]) -> [UInt8] {
    codes.reversed().map { $0 < 4 ? 3 - $0 : $0 }
  }

  /// Reverse complement of a sequence of letters; case is kept, letters other than ACGT become N/n.
  public static func reverseComplement(_ sequence: String) -> String {
    let complemented: [UInt8] = sequence.utf8.reversed().map { base in
      switch base {
      case UInt8(ascii: "A"): return UInt8(ascii: "T")
      case UInt8(ascii: "C"): return UInt8(ascii: "G")
      case UInt8(ascii: "G"): return UInt8(ascii: "C")
      case UInt8(ascii: "T"): return UInt8(ascii: "A")
      case UInt8(ascii: "a"): return UInt8(ascii: "t")
      case UInt8(ascii: "c"): return UInt8(ascii: "g")
      case UInt8(ascii: "g"): return UInt8(ascii: "c")
      case UInt8(ascii: "t"): return UInt8(ascii: "a")
      case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt8(ascii: "n")
      default: return UInt8(ascii: "N")
      }
    }
    return String(decoding: complemented, as: UTF8.self)
  }

  /// The sequence moved by `shift` positions, length kept, as calico's `shift_sequence`:
  /// a positive shift moves bases right (toward higher positions) and pads on the left;
  /// a negative shift moves them left and pads on the right. Padding is `fill` (default N = 4;
  /// calico pads its one-hot with 0.25, which `OneHotLayout.acgt(nFill: 0.25)` reproduces).
  public static func shifted(_ codes: [UInt8], by shift: Int, fill: UInt8 = DNACode.n) -> [UInt8] {
    let length = codes.count
    guard shift != 0 else { return codes }
    guard abs(shift) < length else { return [UInt8](repeating: fill, count: length) }
    if shift > 0 {
      return [UInt8](repeating: fill, count: shift) + codes[0..<(length - shift)]
    } else {
      return Array(codes[(-shift)...]) + [UInt8](repeating: fill, count: -shift)
    }
  }
}
