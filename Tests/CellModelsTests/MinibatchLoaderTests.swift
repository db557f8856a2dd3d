import CellData
import XCTest

@testable import CellModels
import Torch

final class MinibatchLoaderTests: XCTestCase {
  /// 5 cells × 4 genes with zeros, as dense float32 and as CSR (int counts) and CSC.
  let values: [Float] = [0, 1, 0, 2, 3, 0, 0, 0, 0, 0, 5, 1, 4, 4, 0, 0, 0, 0, 0, 7]

  func denseMatrix() throws -> Matrix { .dense(try DenseArray(rows: 5, cols: 4, values: values)) }
  func csrMatrix() throws -> Matrix {
    var data: [Int64] = [], indices: [Int32] = [], indptr = [0]
    for r in 0..<5 {
      for c in 0..<4 where values[r * 4 + c] != 0 {
        data.append(Int64(values[r * 4 + c]))
        indices.append(Int32(c))
      }
      indptr.append(indices.count)
    }
    return .sparse(try SparseMatrix(format: .csr, nRows: 5, nCols: 4, data: .int64(data), indices: indices, indptr: indptr))
  }

  func testDenseCSRAndCSCGiveTheSameRows() throws {
    let csr = try csrMatrix()
    let csc: Matrix = { if case .sparse(let s) = csr { return .sparse(s.switchedFormat()) }; fatalError() }()
    let selection = [4, 0, 2]
    let expected = selection.flatMap { values[($0 * 4)..<($0 * 4 + 4)] }
    for matrix in [try denseMatrix(), csr, csc] {
      let rows = try CountMatrix(matrix).rows(selection)
      XCTAssertEqual(rows.shape, [3, 4])
      XCTAssertEqual(rows.dtype, .float32)
      XCTAssertEqual(rows.toArray(Float.self), expected, matrix.summary)
    }
    XCTAssertEqual(try CountMatrix(csr).rowSums(), [3, 3, 6, 8, 7])
  }

  func testInOrderBatchesCoverTheSelectedCellsWithCovariates() throws {
    let loader = try MinibatchLoader(counts: CountMatrix(csrMatrix()), cells: [1, 2, 3, 4], batchCodes: [0, 1, 0, 1, 1],
                                     labelCodes: [2, 2, 1, 0, 1], batchSize: 3)
    let batches = Array(loader)
    XCTAssertEqual(loader.batchCount, 2)
    XCTAssertEqual(batches.map(\.indices), [[1, 2, 3], [4]])
    XCTAssertEqual(batches[0].batchIndex?.shape, [3, 1])
    XCTAssertEqual(batches[0].batchIndex?.toArray(Int64.self), [1, 0, 1])
    XCTAssertEqual(batches[1].labels?.toArray(Int64.self), [1])
    XCTAssertEqual(batches[1].x.toArray(Float.self), [0, 0, 0, 7])
    let dropped = try MinibatchLoader(counts: CountMatrix(csrMatrix()), batchSize: 2, dropLast: true)
    XCTAssertEqual(Array(dropped).map(\.indices), [[0, 1], [2, 3]])
  }

  func testShuffleIsSeededAndVisitsEveryCellOnce() throws {
    let loader = try MinibatchLoader(counts: CountMatrix(denseMatrix()), batchSize: 2, shuffle: true)
    Runtime.seed(3)
    let first = Array(loader).flatMap(\.indices)
    let second = Array(loader).flatMap(\.indices)
    Runtime.seed(3)
    let again = Array(loader).flatMap(\.indices)
    XCTAssertEqual(first.sorted(), [0, 1, 2, 3, 4])
    XCTAssertEqual(first, again, "same seed, same order")
    XCTAssertEqual(second.sorted(), [0, 1, 2, 3, 4])
    XCTAssertNotEqual(first, second, "each pass draws a new order (may coincide with probability 1/120)")
  }

  func testBadArgumentsAreErrors() throws {
    let counts = try CountMatrix(denseMatrix())
    XCTAssertThrowsError(try MinibatchLoader(counts: counts, batchSize: 0))
    XCTAssertThrowsError(try MinibatchLoader(counts: counts, cells: [5]))
    XCTAssertThrowsError(try MinibatchLoader(counts: counts, batchCodes: [0, 1]))
    let strings = Matrix.dense(DenseArray(.string(["a", "b"])))
    XCTAssertThrowsError(try CountMatrix(strings))
    let adata = try AnnData(X: denseMatrix())
    XCTAssertThrowsError(try CountMatrix(adata, layer: "counts")) { error in
      XCTAssertTrue("\(error)".contains("no layer 'counts'"))
    }
  }

  /// The bundled PBMC counts (CSR) feed the VAE network minibatch by minibatch.
  func testRealCountsThroughTheVAE() throws {
    let adata = try AnnData.read(h5ad: repositoryFile("data/pbmc68k_reduced.h5ad").path)
    let counts = try CountMatrix(adata)
    XCTAssertEqual([counts.nRows, counts.nCols], [700, 765])
    let dense = try adata.X!.denseDoubles()
    let loader = try MinibatchLoader(counts: counts, batchSize: 128)
    let batches = Array(loader)
    XCTAssertEqual(batches.map { $0.indices.count }, [128, 128, 128, 128, 128, 60])
    let last = batches[5]
    XCTAssertEqual(last.x.toArray(Float.self).map(Double.init), Array(dense[(640 * 765)..<(700 * 765)]))

    Runtime.seed(0)
    let vae = try VAE(config: VAEConfig(nInput: 765, nHidden: 32, nLatent: 5))
    let out = try vae.forward(batches[0].vaeInput)
    XCTAssertEqual(out.loss.reconstructionLoss.shape, [128])
    XCTAssertTrue(out.loss.loss.item().isFinite)
  }
}
