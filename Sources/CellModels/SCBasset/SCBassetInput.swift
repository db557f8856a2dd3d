import Genomics
import Torch

/// DNA codes to network input, and the training-time augmentation, on tensors (any device).
public enum SCBassetInput {
  /// One-hot [N, C, L] float32 of int64 codes [N, L]: 4 channels with N = `config.nFill`
  /// everywhere, or 5 channels A, C, G, T, N.
  public static func oneHot(_ codes: Tensor, config: SCBassetConfig) -> Tensor {
    let table: [Float]
    if config.vocabSize == 5 {
      table = (0..<25).map { $0 / 5 == $0 % 5 ? 1 : 0 }
    } else {
      table = (0..<16).map { $0 / 4 == $0 % 4 ? 1 : 0 } + [Float](repeating: config.nFill, count: 4)
    }
    let lookup = Tensor(table, shape: [5, config.vocabSize]).to(codes.device)
    return Functional.embedding(codes, weight: lookup).transpose(1, 2).contiguous()
  }

  /// The reverse complement of codes [N, L]: reversed, A↔T, C↔G, N kept.
  public static func reverseComplement(_ codes: Tensor) -> Tensor {
    let complement = Tensor([3, 2, 1, 0, 4] as [Int64]).to(codes.device)
    return complement.indexSelect(dim: 0, index: codes.flip([1]).flatten()).reshape(codes.shape)
  }

  /// Codes [N, L] moved by `shift` positions (positive: right), padded with N (calico's
  /// `shift_sequence`; the pad becomes 0.25 in every channel of a 4-channel one-hot).
  public static func shifted(_ codes: Tensor, by shift: Int) -> Tensor {
    let (n, length) = (codes.size(0), codes.size(1))
    guard shift != 0 else { return codes }
    let width = min(abs(shift), length)
    let pad = Tensor.full([n, width], Double(DNACode.n), dtype: .int64, device: codes.device)
    if width == length { return pad }
    return shift > 0
      ? Tensor.cat([pad, codes.narrow(dim: 1, start: 0, length: length - width)], dim: 1)
      : Tensor.cat([codes.narrow(dim: 1, start: width, length: length - width), pad], dim: 1)
  }

  /// scvi-tools' / calico's augmentation, one draw per minibatch from libtorch's generator:
  /// reverse complement with probability 1/2, then a shift uniform in −maxShift…maxShift.
  static func augment(_ codes: Tensor, config: SCBassetConfig) -> Tensor {
    var out = codes
    if config.reverseComplement, Tensor.randint(0, 2, [1]).item() == 1 { out = reverseComplement(out) }
    if config.maxShift > 0 {
      let shift = Int(Tensor.randint(0, 2 * config.maxShift + 1, [1]).item()) - config.maxShift
      out = shifted(out, by: shift)
    }
    return out
  }

  /// Codes of equal-length sequences as an int64 tensor [N, L] (ACGT = 0…3, anything else 4).
  public static func codes(of sequences: [String], length: Int) throws -> Tensor {
    var values: [Int64] = []
    values.reserveCapacity(sequences.count * length)
    for (i, s) in sequences.enumerated() {
      let c = DNACode.encode(s)
      guard c.count == length else {
        throw SCBassetError.invalidInput("sequence \(i) has \(c.count) bases, the model takes \(length)")
      }
      values += c.map(Int64.init)
    }
    return Tensor(values, shape: [sequences.count, length])
  }
}
