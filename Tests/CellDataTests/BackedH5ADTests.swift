import Foundation
import XCTest

@testable import CellData

/// Backed reading (`BackedH5AD`, `BackedCollection`) against the in-memory reader, on small
/// files the block writer makes with every stored dtype it offers, and damaged files.
final class BackedH5ADTests: XCTestCase {
  var directory: String!

  override func setUpWithError() throws { directory = try Fixtures.temporaryDirectory(removedAfter: self) }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

  /// A cells × genes count matrix with about 15 % nonzeros, some empty rows, in CSR form.
  func randomCounts(rows: Int, cols: Int, seed: UInt64) -> CSRRows {
    var rng = SplitMixRandom(seed: seed)
    var out = CSRRows(nCols: cols)
    for r in 0..<rows {
      if r % 17 == 5 {  // an empty row now and then
        out.rowStarts.append(out.values.count)
        continue
      }
      for c in 0..<cols where rng.uniform() < 0.15 {
        out.values.append(Float(1 + rng.below(40)))
        out.columns.append(Int32(c))
      }
      out.rowStarts.append(out.values.count)
    }
    return out
  }

  /// Writes `counts` by uneven blocks with `options`; obs and var get names.
  @discardableResult
  func write(_ counts: CSRRows, _ name: String, _ options: H5ADBlockWriter.Options) throws -> String {
    let path = "\(directory!)/\(name).h5ad"
    let writer = try H5ADBlockWriter(path: path, nCols: counts.nCols, options: options)
    var start = 0, step = 1
    while start < counts.nRows {
      let end = min(start + step, counts.nRows)
      try writer.append(counts.selecting(start..<end))
      start = end
      step = step * 3 % 23 + 1
    }
    try writer.finish(obs: DataFrame(index: (0..<counts.nRows).map { "cell\($0)" }),
                      var: DataFrame(index: (0..<counts.nCols).map { "gene\($0)" }))
    return path
  }

  /// Random windows of the backed file equal the same rows of the whole file read in memory.
  func assertWindowsMatch(_ path: String, rows: Int, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
    let backed = try BackedH5AD.open(path)
    let memory = try AnnData.read(h5ad: path)
    XCTAssertEqual(backed.nRows, memory.nObs, file: file, line: line)
    XCTAssertEqual(backed.varNames, memory.varNames, file: file, line: line)
    XCTAssertEqual(backed.obsNames, memory.obsNames, file: file, line: line)
    let all = try memory.X!.denseDoubles().map { Float($0) }
    let width = memory.nVars
    var rng = SplitMixRandom(seed: seed)
    var windows = [0..<rows, 0..<0, (rows - 1)..<rows, 0..<1]
    for _ in 0..<25 {
      let a = rng.below(rows + 1), b = rng.below(rows + 1)
      windows.append(min(a, b)..<max(a, b))
    }
    for window in windows {
      let block = try backed.rows(window)
      XCTAssertEqual(block.nRows, window.count, file: file, line: line)
      let dense = (0..<block.nRows).flatMap { block.denseRow($0) }
      XCTAssertEqual(dense, Array(all[(window.lowerBound * width)..<(window.upperBound * width)]),
                     "rows \(window) of \(path)", file: file, line: line)
    }
  }

  func testCSRBlocksEqualInMemoryRowsForEveryStoredDtype() throws {
    let counts = randomCounts(rows: 157, cols: 300, seed: 1)
    let combinations: [(StoredNumberType, StoredNumberType, StoredNumberType, Int?)] = [
      (.float32, .int32, .int32, nil), (.float32, .int32, .int64, 4), (.float64, .int64, .int64, nil),
      (.int32, .uint16, .int64, 6), (.int64, .uint16, .int32, nil), (.float32, .int64, .int32, 1),
    ]
    for (i, (values, indices, indptr, gzip)) in combinations.enumerated() {
      let options = H5ADBlockWriter.Options(valueType: values, indexType: indices, indptrType: indptr, gzipLevel: gzip,
                                            chunkValues: 97)
      let path = try write(counts, "csr\(i)", options)
      let backed = try BackedH5AD.open(path)
      XCTAssertEqual(backed.layout, .csr)
      XCTAssertEqual(backed.storedTypes, "data \(values.rawValue), indices \(indices.rawValue), indptr \(indptr.rawValue)")
      XCTAssertEqual(backed.storedValues, counts.nnz)
      try assertWindowsMatch(path, rows: counts.nRows, seed: UInt64(i))
    }
  }

  func testDenseBlocksEqualInMemoryRows() throws {
    let counts = randomCounts(rows: 61, cols: 40, seed: 2)
    for (i, (type, gzip)) in [(StoredNumberType.float32, nil), (.int32, 4), (.float64, nil)].enumerated() {
      let path = try write(counts, "dense\(i)", H5ADBlockWriter.Options(layout: .dense, valueType: type, gzipLevel: gzip,
                                                                       chunkValues: 200))
      let backed = try BackedH5AD.open(path)
      XCTAssertEqual(backed.layout, .dense)
      XCTAssertEqual(backed.storedTypes, "dense \(type.rawValue)")
      try assertWindowsMatch(path, rows: counts.nRows, seed: UInt64(i))
    }
  }

  func testALayerOfAFileTheInMemoryWriterWrote() throws {
    let counts = randomCounts(rows: 30, cols: 12, seed: 3)
    var adata = try AnnData(X: .dense(DenseArray(rows: 30, cols: 12, values: [Float](repeating: 1, count: 360))))
    adata.layers["counts"] = try counts.matrix()
    let path = "\(directory!)/layer.h5ad"
    try adata.write(h5ad: path)
    let backed = try BackedH5AD.open(path, element: "layers/counts")
    XCTAssertEqual(try backed.rows(3..<17), counts.selecting(3..<17))
    XCTAssertThrowsError(try BackedH5AD.open(path, element: "layers/missing")) { error in
      XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("layers/missing"), "\(error)")
    }
  }

  func testCSCIsRefusedWithHowToConvert() throws {
    let counts = try randomCounts(rows: 10, cols: 8, seed: 4).matrix()
    guard case .sparse(let csr) = counts else { return XCTFail() }
    let path = "\(directory!)/csc.h5ad"
    try AnnData(X: .sparse(csr.switchedFormat())).write(h5ad: path)
    XCTAssertThrowsError(try BackedH5AD.open(path)) { error in
      let message = "\(error)"
      XCTAssertTrue(error is CellDataError)
      XCTAssertTrue(message.contains(path) && message.contains("CSC") && message.contains("tocsr()")
                    && message.contains("--to-csr"), message)
    }
  }

  func testTruncatedFileIsAnErrorNamingIt() throws {
    let counts = randomCounts(rows: 400, cols: 200, seed: 5)
    let path = try write(counts, "whole", H5ADBlockWriter.Options(gzipLevel: 4, chunkValues: 256))
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    for fraction in [0.3, 0.6, 0.95] {
      let cut = "\(directory!)/truncated-\(fraction).h5ad"
      try bytes.prefix(Int(Double(bytes.count) * fraction)).write(to: URL(fileURLWithPath: cut))
      XCTAssertThrowsError(try {
        let backed = try BackedH5AD.open(cut)
        _ = try backed.rows(0..<backed.nRows)
      }()) { error in
        XCTAssertTrue(error is CellDataError, "\(error)")
        XCTAssertTrue("\(error)".contains(cut), "\(error)")
      }
    }
  }

  /// A file whose X structure lies: decreasing indptr, indptr beyond the values, indices
  /// beyond the columns. Each read is an error naming the file, never a crash.
  func testDamagedStructureIsAnErrorNamingTheFile() throws {
    let cases: [(String, [Int], [Int32], String)] = [
      ("decreasing", [0, 3, 1, 4], [0, 1, 2, 0], "decreases"),
      ("beyond", [0, 2, 4, 9], [0, 1, 2, 0], "indptr"),
      ("column", [0, 2, 3, 4], [0, 7, 2, 0], "column 7"),
    ]
    for (name, indptr, indices, expected) in cases {
      let matrix = SparseMatrix(unchecked: .csr, nRows: 3, nCols: 4, data: .float32([1, 2, 3, 4]), indices: indices,
                                indptr: indptr, indexType: .int32)
      let path = "\(directory!)/\(name).h5ad"
      try AnnData(X: .sparse(matrix)).write(h5ad: path)
      XCTAssertThrowsError(try {
        let backed = try BackedH5AD.open(path, isolated: false)
        for r in 0..<3 { _ = try backed.rows(r..<(r + 1)) }
        _ = try backed.rows(0..<3)
      }(), name) { error in
        XCTAssertTrue(error is CellDataError, "\(error)")
        XCTAssertTrue("\(error)".contains(path) && "\(error)".contains(expected), "\(name): \(error)")
      }
    }
  }

  func testRowsOutsideTheFileAreAnError() throws {
    let path = try write(randomCounts(rows: 5, cols: 3, seed: 6), "small", H5ADBlockWriter.Options())
    let backed = try BackedH5AD.open(path)
    XCTAssertThrowsError(try backed.rows(3..<6)) { XCTAssertTrue("\($0)".contains("outside 0..<5"), "\($0)") }
  }

  // MARK: - Collections

  func testCollectionAlignsGenesByNameAndStacksRows() throws {
    let a = randomCounts(rows: 20, cols: 6, seed: 7), b = randomCounts(rows: 13, cols: 5, seed: 8)
    let pathA = try write(a, "a", H5ADBlockWriter.Options())
    let pathB = "\(directory!)/b.h5ad"
    // b's genes: gene4, gene2, other, gene0, gene9 (two of them unknown to the list)
    let writer = try H5ADBlockWriter(path: pathB, nCols: 5, options: H5ADBlockWriter.Options(gzipLevel: 2))
    try writer.append(b)
    try writer.finish(obs: DataFrame(index: (0..<13).map { "b\($0)" }),
                      var: DataFrame(index: ["gene4", "gene2", "other", "gene0", "gene9"]))
    let genes = ["gene0", "gene1", "gene2", "gene3", "gene4", "gene5"]
    let collection = try BackedCollection(paths: [pathA, pathB], genes: genes)
    XCTAssertEqual(collection.nRows, 33)
    XCTAssertEqual(collection.missingGenes, [0, 3])
    XCTAssertEqual(collection.metadata.obsNames.count, 33)
    XCTAssertEqual(try collection.metadata.obs.labels("source_file").compactMap { $0 }.suffix(1), ["b.h5ad"])

    let memoryB = try AnnData.aligned(try AnnData.read(h5ad: pathB), toGenes: genes).adata
    let expected = try Matrix.vstack([try AnnData.read(h5ad: pathA).X!, memoryB.X!]).denseDoubles().map { Float($0) }
    for window in [0..<33, 15..<25, 20..<33, 19..<21, 0..<20, 25..<30, 3..<9, 33..<33] {
      let block = try collection.rows(window)
      XCTAssertEqual((0..<block.nRows).flatMap { block.denseRow($0) }, Array(expected[(window.lowerBound * 6)..<(window.upperBound * 6)]),
                     "rows \(window)")
      XCTAssertEqual(try block.matrix().nRows, window.count)
    }
    XCTAssertEqual(collection.location(ofRow: 19).file, 0)
    XCTAssertEqual(collection.location(ofRow: 20).file, 1)
    XCTAssertEqual(collection.location(ofRow: 32).row, 12)
  }

  func testCollectionFileSharingNoGeneIsAnErrorNamingIt() throws {
    let path = try write(randomCounts(rows: 4, cols: 3, seed: 9), "disjoint", H5ADBlockWriter.Options())
    XCTAssertThrowsError(try BackedCollection(paths: [path], genes: ["CD3E", "MS4A1"])) { error in
      XCTAssertTrue(error is CellDataError)
      XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("shares none"), "\(error)")
    }
  }

  // MARK: - Writer and generator

  func testBlockWriterRejectsWhatItCannotStore() throws {
    XCTAssertThrowsError(try H5ADBlockWriter(path: "\(directory!)/x.h5ad", nCols: 70_000,
                                             options: H5ADBlockWriter.Options(indexType: .uint16)))
    XCTAssertThrowsError(try H5ADBlockWriter(path: "\(directory!)/no/such/dir/x.h5ad", nCols: 3))
    do {
      let writer = try H5ADBlockWriter(path: "\(directory!)/unfinished.h5ad", nCols: 3)
      try writer.append(randomCounts(rows: 4, cols: 3, seed: 10))
      XCTAssertThrowsError(try writer.append(randomCounts(rows: 4, cols: 5, seed: 10)))
      XCTAssertThrowsError(try writer.finish(obs: DataFrame(index: ["only one"])))
    }  // a writer dropped unfinished removes its temporary file
    XCTAssertFalse(FileManager.default.fileExists(atPath: "\(directory!)/unfinished.h5ad"), "no partial file")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".tmp") }, [])
  }

  func testSyntheticAtlasIsDeterministicAndReadable() throws {
    let profiles = try AnnData(
      X: randomCounts(rows: 50, cols: 30, seed: 11).matrix(), var: DataFrame(index: (0..<30).map { "g\($0)" }))
    var options = SyntheticAtlas.Options(cells: 2_345, genes: 20, batches: 3, seed: 5, blockRows: 1_000)
    options.writer.gzipLevel = 3
    let first = "\(directory!)/atlas1.h5ad", second = "\(directory!)/atlas2.h5ad"
    var progress: [Int] = []
    let nnz = try SyntheticAtlas.write(from: profiles, to: first, options: options) { progress.append($0) }
    try SyntheticAtlas.write(from: profiles, to: second, options: options)
    XCTAssertEqual(progress, [1_000, 2_000, 2_345])
    let a = try AnnData.read(h5ad: first), b = try AnnData.read(h5ad: second)
    XCTAssertEqual(a, b, "same seed, same atlas")
    XCTAssertEqual(a.nObs, 2_345)
    XCTAssertEqual(a.nVars, 20)
    XCTAssertEqual(a.X.map { if case .sparse(let s) = $0 { return s.nnz } else { return -1 } }, nnz)
    XCTAssertEqual(Set(try a.obs.labels("batch").compactMap { $0 }), ["batch_0", "batch_1", "batch_2"])
    XCTAssertTrue(a.varNames.allSatisfy { $0.hasPrefix("g") })
    XCTAssertGreaterThan(nnz, 0)
    var fewer = options
    fewer.cells = 700
    try SyntheticAtlas.write(from: profiles, to: second, options: fewer)
    XCTAssertEqual(try AnnData.read(h5ad: second).X, a.X!.rows(Array(0..<700)), "an atlas's first cells are the smaller atlas")
    options.seed = 6
    try SyntheticAtlas.write(from: profiles, to: second, options: options)
    XCTAssertNotEqual(try AnnData.read(h5ad: second).X, a.X, "another seed, other counts")
  }
}

extension CSRRows {
  /// Rows `range` (a test helper).
  func selecting(_ range: Range<Int>) -> CSRRows {
    let start = rowStarts[range.lowerBound], end = rowStarts[range.upperBound]
    return CSRRows(nCols: nCols, values: Array(values[start..<end]), columns: Array(columns[start..<end]),
                   rowStarts: rowStarts[range.lowerBound...range.upperBound].map { $0 - start })
  }
}
