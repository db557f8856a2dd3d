import CellData
import Foundation
import XCTest

@testable import CellModels
import Torch

/// `ScGPTModelFolder.embed` against the reference's `embed_data` run of the fixture
/// (tests/fixtures/scgpt: 16 pbmc68k cells, raw counts of all 765 genes, 200 of them in the
/// vocabulary, minibatches of 8).
final class ScGPTEmbeddingTests: XCTestCase {
  /// The fixture's cells with all their genes, as embed_data got them.
  static func cells() throws -> AnnData {
    let full = try AnnData.read(h5ad: repositoryFile("data/pbmc68k_reduced.h5ad").path)
    return try full.subset(obs: ScGPTFixtures.tok("raw.cells").toArray(Int64.self).map(Int.init))
  }

  func testTokensMatchEmbedDataAndEmbeddingsAreDeterministicUnitVectors() throws {
    let folder = try ScGPTModelFolder.loadForEmbedding(ScGPTFixtures.url("model_folder"))
    let adata = try Self.cells()
    let options = ScGPTModelFolder.EmbedOptions(batchSize: 8)
    let (batches, match) = try folder.embeddingBatches(adata, options: options)
    XCTAssertEqual(match.unknownCount, 565)
    XCTAssertEqual(batches.count, 2)
    for (i, cells) in batches.enumerated() {
      XCTAssertEqual(cells.geneIdTensor.toArray(Int64.self), ScGPTFixtures.io("emb.batch\(i).gene_ids").toArray(Int64.self),
                     "minibatch \(i): <cls>, then the non-zero vocabulary genes in column order, <pad> after")
      let lo = ScGPTFixtures.io("emb.batch\(i).bin_lo").toArray(Int64.self)
      let hi = ScGPTFixtures.io("emb.batch\(i).bin_hi").toArray(Int64.self)
      let reference = ScGPTFixtures.io("emb.batch\(i).values").toArray(Float.self)
      for (k, value) in cells.values.joined().enumerated() {
        if reference[k] == -2 {
          XCTAssertEqual(value, -2, "minibatch \(i) position \(k): the pad value at <cls> and pads")
        } else {
          XCTAssertTrue(Int64(value) >= lo[k] && Int64(value) <= hi[k], "minibatch \(i) position \(k): bin \(value) outside the reference's \(lo[k])…\(hi[k])")
          XCTAssertEqual(Int64(value), lo[k], "ties go to the lowest bin")
        }
      }
    }
    let (embeddings, _) = try folder.embed(adata, options: options)
    XCTAssertEqual(embeddings.shape, [16, 64])
    for norm in embeddings.norm([1]).toArray(Float.self) { XCTAssertEqual(norm, 1, accuracy: 1e-5) }
    XCTAssertEqual(try folder.embed(adata, options: options).embeddings.toArray(Float.self), embeddings.toArray(Float.self),
                   "the same input gives the same embedding, bit for bit")
    // Every cell has tied counts (many 1s), so the bins differ from the reference's random
    // draws; with the reference's bins in our token batches, the embedding is the reference's.
    var parts: [Tensor] = []
    for (i, cells) in batches.enumerated() {
      let batch = ScGPTBatch(geneIds: cells.geneIdTensor, values: ScGPTFixtures.io("emb.batch\(i).values"), paddingMask: cells.paddingMask)
      parts.append(l2Normalized(try withNoGrad { try folder.network.encode(batch) }.select(dim: 1, index: 0)))
    }
    assertClose(Tensor.cat(parts), ScGPTFixtures.io("emb.cell_embeddings"), "embed_data's embeddings")
  }

  func testBadInputIsAClearError() throws {
    let folder = try ScGPTModelFolder.loadForEmbedding(ScGPTFixtures.url("model_folder"))
    var foreign = try Self.cells()
    foreign.var = DataFrame(index: foreign.varNames.map { "x-\($0)" })
    XCTAssertThrowsError(try folder.embed(foreign)) { XCTAssertTrue("\($0)".contains("none of the 765 genes"), "\($0)") }
    var silent = try Self.cells()
    var values = try silent.X!.denseDoubles()
    let vocabulary = Set(folder.vocab.tokens)
    for (j, gene) in silent.varNames.enumerated() where vocabulary.contains(gene) { values[j] = 0 }
    silent.X = .dense(try DenseArray(rows: 16, cols: 765, values: values))
    XCTAssertThrowsError(try folder.embed(silent)) { error in
      XCTAssertTrue("\(error)".contains("expresses none of the model's genes"), "\(error)")
    }
    XCTAssertThrowsError(try folder.embed(try Self.cells(), options: .init(geneColumn: "nope"))) {
      XCTAssertTrue("\($0)".contains("no var column 'nope'"), "\($0)")
    }
  }
}
