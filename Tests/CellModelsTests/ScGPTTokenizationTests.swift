import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// Preprocessing, binning, vocabulary and tokenisation against scgpt 0.2.4 on 16 pbmc68k cells
/// (tests/fixtures/scgpt/tokenize.safetensors). numpy's random stream is reproduced, so the
/// random parts (tie-breaks, masks, subsamples) match exactly for the same seeds.
final class ScGPTTokenizationTests: XCTestCase {
  static var hvgGenes: [String] { ScGPTFixtures.cases["hvg_genes_x_order"] as! [String] }
  static var binned: [Float] { ScGPTFixtures.tok("bin.binned").to(.float32).toArray(Float.self) }

  static func vocab() throws -> GeneVocab {
    try GeneVocab(genes: hvgGenes, specials: GeneVocab.specialTokens, specialFirst: false)
  }

  func testVocabularyMatchesReference() throws {
    let vocab = try Self.vocab()
    XCTAssertEqual(vocab.tokens, ScGPTFixtures.cases["vocab_itos"] as! [String], "sorted genes, then the specials")
    XCTAssertEqual(vocab["<pad>"], 200)
    XCTAssertEqual(vocab["<cls>"], 201)
    XCTAssertEqual(try GeneVocab(contentsOf: ScGPTFixtures.url("model_folder/vocab.json")), vocab)
    let match = try vocab.match(Self.hvgGenes)
    XCTAssertEqual(match.ids, intRows(ScGPTFixtures.tok("vocab.gene_ids").unsqueeze(dim: 0))[0])
    XCTAssertEqual(match.unknownCount, 0)
  }

  private func tokenize(maxLength: Int, includeZero: Bool, seed: UInt32 = 0) throws -> TokenizedCells {
    var random = ScGPTRandom(seed: seed)
    let vocab = try Self.vocab()
    return try ScGPTTokenizer.tokenizeAndPad(
      Self.binned, nGenes: 200, geneIds: try vocab.match(Self.hvgGenes).ids, maxLength: maxLength, vocab: vocab,
      padValue: -2, includeZeroGene: includeZero, random: &random)
  }

  private func mask(_ cells: TokenizedCells, seed: UInt32) -> [[Float]] {
    var random = ScGPTRandom(seed: seed)
    return ScGPTTokenizer.randomMaskValue(cells.values, maskRatio: 0.4, maskValue: -1, padValue: -2, random: &random)
  }

  /// Case A: all genes, cls first, no padding; masks as np.random.seed(1) draws them.
  func testAllGenesTokensAndMasksMatchReference() throws {
    let cells = try tokenize(maxLength: 201, includeZero: true)
    XCTAssertEqual(cells.geneIds, intRows(ScGPTFixtures.tok("tokA.genes")))
    XCTAssertEqual(cells.values, floatRows(ScGPTFixtures.tok("tokA.values")))
    let masked = mask(cells, seed: 1)
    XCTAssertEqual(masked.map { $0.filter { $0 == -1 }.count }, intRows(ScGPTFixtures.tok("tokA.n_masked").unsqueeze(dim: 0))[0])
    XCTAssertEqual(masked, floatRows(ScGPTFixtures.tok("tokA.masked_values")), "numpy's masked positions")
    // End to end: these tokens and masks through the fixture model give the reference's outputs.
    let network = try ScGPTFixtures.model().network
    let batch = try ScGPTBatch(cells, values: masked, batchLabels: [Int](repeating: 1, count: 16))
    let out = try withNoGrad { try network.forward(batch) }
    assertClose(out.mlmOutput, ScGPTFixtures.io("out.mlm_output"), "prediction from our tokens")
    let clsMasked = masked.map { $0[0] == -1 }
    XCTAssertEqual(clsMasked, ScGPTFixtures.cases["cls_masked_in_case_A"] as! [Bool], "<cls> is maskable when pad value ≠ 0, as the reference")
  }

  /// Case B: non-zero genes, right-padded to the longest cell.
  func testNonZeroGenesPaddedMatchReference() throws {
    let cells = try tokenize(maxLength: 1000, includeZero: false)
    XCTAssertEqual(cells.geneIds, intRows(ScGPTFixtures.tok("tokB.genes")))
    let sparse = Matrix.sparse(try SparseMatrix.csr(from: DenseArray(rows: 16, cols: 200, values: Self.binned)))
    var random = ScGPTRandom(seed: 0)
    let fromMatrix = try ScGPTTokenizer.tokenizeAndPad(
      sparse, cells: Array(0..<16), geneIds: try Self.vocab().match(Self.hvgGenes).ids, maxLength: 1000,
      vocab: try Self.vocab(), padValue: -2, random: &random)
    XCTAssertEqual(fromMatrix, cells, "a sparse matrix tokenises as its dense rows")
    XCTAssertEqual(cells.values, floatRows(ScGPTFixtures.tok("tokB.values")))
    XCTAssertEqual(intRows(cells.paddingMask.to(.int64)), intRows(ScGPTFixtures.io("in.B.src_key_padding_mask").to(.int64)))
    let masked = mask(cells, seed: 2)
    XCTAssertEqual(masked.map { $0.filter { $0 == -1 }.count }, intRows(ScGPTFixtures.tok("tokB.n_masked").unsqueeze(dim: 0))[0])
    XCTAssertEqual(masked, floatRows(ScGPTFixtures.tok("tokB.masked_values")))
  }

  /// Case C: cells longer than max length are subsampled (cls kept first, the rest in numpy's
  /// random order for np.random.seed(3)).
  func testSubsampledCellsMatchReference() throws {
    let cells = try tokenize(maxLength: 32, includeZero: false, seed: 3)
    XCTAssertEqual(cells.geneIds, intRows(ScGPTFixtures.tok("tokC.genes")))
    XCTAssertEqual(cells.values, floatRows(ScGPTFixtures.tok("tokC.values")))
    // Another seed: another sample, still cls first and distinct genes of the cell.
    let other = try tokenize(maxLength: 32, includeZero: false, seed: 4)
    XCTAssertNotEqual(other.geneIds, cells.geneIds)
    for row in other.geneIds {
      XCTAssertEqual(row[0], 201)
      XCTAssertEqual(Set(row).count, 32)
    }
  }

  /// The Preprocessor on pbmc68k_reduced (all 700 cells): normalisation, log1p, seurat_v3 HVGs,
  /// bin edges, and bins; with `.random` and seed 0 the tie-breaks are numpy's, with `.lowest`
  /// every tie takes its lowest candidate.
  func testPreprocessorAndBinningMatchReference() throws {
    let raw = try AnnData.read(h5ad: repositoryFile("data/pbmc68k_reduced.h5ad").path)
    let cells = intRows(ScGPTFixtures.tok("raw.cells").unsqueeze(dim: 0))[0]
    var preprocessor = ScGPTPreprocessor(normalizeTotal: 1e4, log1p: true, subsetHVG: 200, binning: 51)
    preprocessor.tieBreak = .random
    var adata = raw
    var random = ScGPTRandom(seed: 0)
    XCTAssertEqual(try preprocessor(&adata, random: &random), "X_binned")
    XCTAssertEqual(adata.varNames, Self.hvgGenes, "seurat_v3 HVGs in X order")
    func rows(_ layer: String) throws -> Tensor {
      let m = try adata.matrix(layer: layer).rows(cells)
      return Tensor(try m.denseDoubles(), shape: [cells.count, m.nCols])
    }
    // The reference's X_normed layer is the same array as X_log1p, so log1p overwrites it too
    // (pp.normed == pp.log1p); here X_normed keeps the normalised values.
    assertClose(try rows("X_normed").log1p(), ScGPTFixtures.tok("pp.normed"), "normalize_total", tolerance: 1e-6)
    assertClose(try rows("X_log1p"), ScGPTFixtures.tok("pp.log1p"), "log1p", tolerance: 1e-6)
    guard case .dense(let edges)? = adata.obsm["bin_edges"] else { return XCTFail("no dense bin_edges") }
    XCTAssertEqual(edges.shape, [700, 51])
    let edgeRows = Tensor(edges.rows(cells).data.doubles!, shape: [cells.count, 51])
    // float32 log1p may differ from numpy's by an ulp; the edges inherit that.
    assertClose(edgeRows, ScGPTFixtures.tok("bin.edges"), "bin edges", tolerance: 1e-6)
    let binned = try rows("X_binned")
    XCTAssertEqual(adata.layers["X_binned"]!.data.dtypeName, "int64")
    XCTAssertEqual(intRows(binned), intRows(ScGPTFixtures.tok("bin.binned")), "numpy's tie-breaks for seed 0")

    preprocessor.tieBreak = .lowest
    var deterministic = raw
    try preprocessor(&deterministic, random: &random)
    let lowest = try deterministic.matrix(layer: "X_binned").rows(cells).denseDoubles().map(Int.init)
    XCTAssertEqual(lowest, intRows(ScGPTFixtures.tok("bin.lo")).flatMap { $0 }, "ties to the lowest candidate bin")
  }

  /// The candidate range of each value is the reference's [lo, hi]; random tie-breaks stay in it
  /// and use its whole range.
  func testTieBreakCandidatesAndDistribution() throws {
    let log1p = floatRows(ScGPTFixtures.tok("pp.log1p")), edges = ScGPTFixtures.tok("bin.edges")
    let lo = intRows(ScGPTFixtures.tok("bin.lo")), hi = intRows(ScGPTFixtures.tok("bin.hi"))
    var random = ScGPTRandom(seed: 7)
    var tiesAboveLowest = 0, ties = 0
    for r in 0..<16 {
      let cellEdges = edges[r].toArray(Double.self)
      let ranges = ValueBinning.candidateBins(log1p[r], edges: cellEdges)
      XCTAssertEqual(ranges.map(\.lowerBound), lo[r])
      XCTAssertEqual(ranges.map(\.upperBound), hi[r])
      let (bins, binEdges) = ValueBinning(nBins: 51, tieBreak: .random).bin(log1p[r], random: &random)
      XCTAssertEqual(binEdges, cellEdges)
      for (j, range) in ranges.enumerated() {
        XCTAssertTrue(range.contains(bins[j]))
        if range.count > 1 { ties += 1; if bins[j] > range.lowerBound { tiesAboveLowest += 1 } }
      }
    }
    XCTAssertGreaterThan(ties, 50)
    XCTAssertGreaterThan(tiesAboveLowest, ties / 4, "random ties spread over their candidates")
  }
}
