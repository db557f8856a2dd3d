import CellData
import Torch

/// Cells as token sequences: gene ids and values, `<cls>` first, right-padded to one length.
public struct TokenizedCells: Equatable, Sendable {
  /// [cells][length] vocabulary ids.
  public var geneIds: [[Int]]
  /// [cells][length] values (float32 as the reference).
  public var values: [[Float]]
  public var padId: Int

  public var count: Int { geneIds.count }
  public var length: Int { geneIds.first?.count ?? 0 }

  /// Gene ids as an int64 tensor [cells, length].
  public var geneIdTensor: Tensor { Tensor(geneIds.joined().map(Int64.init), shape: [count, length]) }
  /// Values as a float32 tensor [cells, length].
  public var valueTensor: Tensor { Tensor(Array(values.joined()), shape: [count, length]) }
  /// The key-padding mask [cells, length]: true at `<pad>` (the reference's `ids == pad id`).
  public var paddingMask: Tensor {
    Tensor(bools: geneIds.joined().map { $0 == padId }, shape: [count, length])
  }
}

/// scGPT's `tokenize_and_pad_batch`, `random_mask_value` and their options.
public enum ScGPTTokenizer {
  /// Tokenises each row of `data` (cells × genes, row-major; `geneIds[j]` is column j's id):
  /// all genes (`includeZeroGene`) or the non-zero ones in column order, `<cls>` (value 0)
  /// first when `appendCls`. The length is min(`maxLength`, the longest cell); a longer cell is
  /// subsampled (cls kept at 0, the others a random sample of length − 1 in random order, drawn
  /// as numpy's `choice`), a shorter one padded with `<pad>`'s id and `padValue`.
  public static func tokenizeAndPad(
    _ data: [Float], nGenes: Int, geneIds: [Int], maxLength: Int, vocab: GeneVocab,
    padToken: String = "<pad>", padValue: Float, appendCls: Bool = true, includeZeroGene: Bool = false,
    clsToken: String = "<cls>", random: inout ScGPTRandom
  ) throws -> TokenizedCells {
    guard geneIds.count == nGenes, nGenes > 0, data.count % nGenes == 0 else {
      throw ScGPTError.invalidInput("\(geneIds.count) gene ids for \(nGenes) genes (data of \(data.count) values)")
    }
    guard maxLength > (appendCls ? 1 : 0) else { throw ScGPTError.invalidInput("max length \(maxLength) is too short") }
    guard let padId = vocab[padToken] else { throw ScGPTError.vocabulary("pad token '\(padToken)' is not in the vocabulary") }
    let clsId = vocab[clsToken] ?? -1
    if appendCls && clsId < 0 { throw ScGPTError.vocabulary("cls token '\(clsToken)' is not in the vocabulary") }
    let nCells = data.count / nGenes

    var cells: [(ids: [Int], values: [Float])] = []
    cells.reserveCapacity(nCells)
    for i in 0..<nCells {
      var ids: [Int] = appendCls ? [clsId] : []
      var values: [Float] = appendCls ? [0] : []
      for j in 0..<nGenes {
        let v = data[i * nGenes + j]
        if includeZeroGene || v != 0 {
          ids.append(geneIds[j])
          values.append(v)
        }
      }
      cells.append((ids, values))
    }
    let length = min(maxLength, cells.map(\.ids.count).max() ?? 0)
    var out = TokenizedCells(geneIds: [], values: [], padId: padId)
    for (ids, values) in cells {
      var ids = ids, values = values
      if ids.count > length {
        let keep: [Int]
        if appendCls {
          keep = [0] + random.choiceWithoutReplacement(ids.count - 1, size: length - 1).map { $0 + 1 }
        } else {
          keep = random.choiceWithoutReplacement(ids.count, size: length)
        }
        ids = keep.map { ids[$0] }
        values = keep.map { values[$0] }
      }
      ids += [Int](repeating: padId, count: length - ids.count)
      values += [Float](repeating: padValue, count: length - values.count)
      out.geneIds.append(ids)
      out.values.append(values)
    }
    return out
  }

  /// `tokenizeAndPad` of the rows `cells` of a matrix (an AnnData's X or layer, dense or sparse).
  public static func tokenizeAndPad(
    _ matrix: Matrix, cells: [Int], geneIds: [Int], maxLength: Int, vocab: GeneVocab, padToken: String = "<pad>",
    padValue: Float, appendCls: Bool = true, includeZeroGene: Bool = false, clsToken: String = "<cls>",
    random: inout ScGPTRandom
  ) throws -> TokenizedCells {
    guard let bad = cells.first(where: { !(0..<matrix.nRows).contains($0) }) else {
      let rows = try matrix.rows(cells).denseDoubles().map { Float($0) }
      return try tokenizeAndPad(
        rows, nGenes: matrix.nCols, geneIds: geneIds, maxLength: maxLength, vocab: vocab, padToken: padToken,
        padValue: padValue, appendCls: appendCls, includeZeroGene: includeZeroGene, clsToken: clsToken, random: &random)
    }
    throw ScGPTError.invalidInput("cell index \(bad) is outside the \(matrix.nRows) cells")
  }

  /// `random_mask_value`: in each row, `Int(n · maskRatio)` of the n positions whose value is
  /// not `padValue` are set to `maskValue` (numpy's `choice` order). As in the reference,
  /// `<cls>` (value 0) can be masked when `padValue` is not 0.
  public static func randomMaskValue(
    _ values: [[Float]], maskRatio: Double = 0.15, maskValue: Float = -1, padValue: Float = 0,
    random: inout ScGPTRandom
  ) -> [[Float]] {
    values.map { row in
      var row = row
      let candidates = row.indices.filter { row[$0] - padValue != 0 }
      let nMask = Int(Double(candidates.count) * maskRatio)
      for k in random.choiceWithoutReplacement(candidates.count, size: nMask) { row[candidates[k]] = maskValue }
      return row
    }
  }
}
