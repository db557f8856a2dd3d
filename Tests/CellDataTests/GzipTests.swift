import CHDF5
import CHDF5Safe
import Foundation
import XCTest

@testable import CellData

/// gzip in HDF5 goes through libdeflate (CHDF5Deflate) where the system has it: chunks it writes
/// read back as written, from the first chunk guess through the retries of a chunk that inflates
/// far past it. Files zlib wrote (h5py's) are H5ADReadTests' gzip fixtures; zlib reading what
/// libdeflate wrote is BackedCommandTests' SINGLECELL_ZLIB=1 round trip.
final class GzipTests: XCTestCase {
  func testGzipGoesThroughLibdeflate() {
    // scripts/bootstrap installs libdeflate0; without it (or with SINGLECELL_ZLIB=1) this is "zlib".
    XCTAssertEqual(hdf5GzipImplementation, "libdeflate")
  }

  func testGzipChunksOfEveryCompressibilityReadBackAsWritten() throws {
    let directory = try Fixtures.temporaryDirectory(removedAfter: self)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    // 1,024 full rows of one value: a 4 MiB chunk that deflates about 1000-fold, so inflating it
    // starts from a guess far too small and doubles. Then rows of varied counts.
    let nCols = 1_024, full = 1_024
    var counts = CSRRows(nCols: nCols)
    var rng = SplitMixRandom(seed: 7)
    for r in 0..<(full + 200) {
      for c in 0..<nCols where r < full || rng.below(10) == 0 {
        counts.values.append(r < full ? 3 : Float(1 + rng.below(500)))
        counts.columns.append(Int32(c))
      }
      counts.rowStarts.append(counts.values.count)
    }
    for (name, chunk) in [("big", full * nCols), ("small", 1 << 12)] {
      let path = "\(directory)/\(name).h5ad"
      let writer = try H5ADBlockWriter(path: path, nCols: nCols, options: H5ADBlockWriter.Options(gzipLevel: 6, chunkValues: chunk))
      try writer.append(counts)
      try writer.finish(obs: DataFrame(index: (0..<counts.nRows).map { "cell\($0)" }),
                        var: DataFrame(index: (0..<nCols).map { "g\($0)" }))
      let read = try BackedH5AD.open(path, isolated: false).rows(0..<counts.nRows)
      XCTAssertEqual(read, counts, name)
      let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
      XCTAssertLessThan(size, 4 * counts.values.count, "\(name): \(size) bytes, not compressed")
    }
  }

  /// A gzip array read as stored is inflated here chunk by chunk (CompressedChunks) into the
  /// values libhdf5's own read gives (`readBlock`): a partial last chunk, chunks read a round at a
  /// time, a chunk larger than the round's buffer, integers and floats.
  func testGzipArraysInflateChunkByChunkToWhatLibhdf5Reads() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/chunks.h5"
    var rng = SplitMixRandom(seed: 11)
    let n = 10_000 + 37  // 4,096-element chunks: the last one is partial
    let integers = (0..<n).map { _ in Int32(rng.below(1_000)) }
    let floats = (0..<n).map { Float($0 % 97) * 0.5 }
    do {
      let file = try H5Group.createFile(path)
      try file.createExtendable("i", type: .int32, chunkRows: 4_096, gzipLevel: 4).append(integers, rows: n)
      try file.createExtendable("f", type: .float32, chunkRows: 4_096, gzipLevel: 4).append(floats, rows: n)
    }
    let file = try H5Group.openFile(path)
    XCTAssertEqual(try file.dataset("i").readIntegers(as: Int32.self), integers)
    XCTAssertEqual(try file.dataset("f").read(), .float32(floats))
    XCTAssertEqual(try file.dataset("i").readBlock(Int32.self, start: [0], count: [n]), integers)
    for (roundBytes, label) in [(1, "one chunk per round, each larger than the buffer"), (9_000, "two chunks in the first round")] {
      let chunks = try XCTUnwrap(CompressedChunks(try file.dataset("i"), memoryType: chdf5_native_int32(), count: n))
      XCTAssertEqual(chunks.chunkShape, [4_096])
      var read = [Int32](repeating: -1, count: n)
      XCTAssertTrue(try read.withUnsafeMutableBytes { try chunks.read(into: $0.baseAddress!, roundBytes: roundBytes) }, label)
      XCTAssertEqual(read, integers, label)
    }
    // Stored integers are converted here as libhdf5 converts them (to wider and narrower
    // integers, saturating, and to floats); other conversions (floats to integers) stay with it.
    XCTAssertNotNil(CompressedChunks(try file.dataset("i"), memoryType: chdf5_native_int64(), count: n))
    XCTAssertEqual(try file.dataset("i").readIntegers(as: Int.self), integers.map(Int.init))
    XCTAssertEqual(try file.dataset("i").readFloats(), integers.map(Float.init))
    XCTAssertNil(CompressedChunks(try file.dataset("f"), memoryType: chdf5_native_int32(), count: n))
    XCTAssertEqual(try file.dataset("f").readFloats(), floats)
  }

  /// Arrays of two and more dimensions (a dense X, layers, obsm) are inflated chunk by chunk into
  /// their places in the result: h5py's chunk shapes, which cut both dimensions and leave partial
  /// chunks at both edges, chunks as wide as the array (inflated in place), three dimensions;
  /// chunks read one per round and many per round.
  func testGzipArraysOfSeveralDimensionsInflateChunkByChunk() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/grid.h5"
    var rng = SplitMixRandom(seed: 5)
    let floats = (0..<(1_000 * 130)).map { _ in Float(rng.below(50)) * 0.25 }
    let integers = (0..<(1_000 * 130)).map { _ in Int32(rng.below(1_000)) - 500 }
    let doubles = (0..<(7 * 11 * 13)).map { Double($0) / 3 }
    do {
      let file = try H5Group.createFile(path)
      try createGzipArray(file.id, "edges", shape: [1_000, 130], chunks: [313, 63], values: floats, type: chdf5_native_float())
      try createGzipArray(file.id, "rows", shape: [1_000, 130], chunks: [64, 130], values: integers, type: chdf5_native_int32())
      try createGzipArray(file.id, "cube", shape: [7, 11, 13], chunks: [3, 4, 5], values: doubles, type: chdf5_native_double())
    }
    let file = try H5Group.openFile(path)
    XCTAssertEqual(try file.dataset("edges").read(), .float32(floats))
    XCTAssertEqual(try file.dataset("rows").read(), .int32(integers))
    XCTAssertEqual(try file.dataset("cube").read(), .float64(doubles))
    XCTAssertEqual(try file.dataset("edges").readBlock(Float.self, start: [0, 0], count: [1_000, 130]), floats)  // libhdf5's read
    for roundBytes in [1, 8 << 20] {
      let edges = try XCTUnwrap(CompressedChunks(try file.dataset("edges"), memoryType: chdf5_native_float(), count: floats.count))
      XCTAssertEqual(edges.chunkShape, [313, 63])
      XCTAssertEqual(edges.grid, [4, 3])
      var read = [Float](repeating: -1, count: floats.count)
      XCTAssertTrue(try read.withUnsafeMutableBytes { try edges.read(into: $0.baseAddress!, roundBytes: roundBytes) })
      XCTAssertEqual(read, floats, "\(roundBytes)-byte rounds")
    }
    XCTAssertNil(CompressedChunks(try file.dataset("edges"), memoryType: chdf5_native_float(), count: floats.count - 1))
    XCTAssertNil(CompressedChunks(try file.dataset("cube"), memoryType: chdf5_native_float(), count: doubles.count))
  }

  /// A chunk over `CompressedChunks.maxChunkBytes` (64 MiB; h5py's are at most 1 MiB) is left to
  /// libhdf5, so that a chunk shape claimed by a damaged file cannot make the caller allocate it.
  func testChunksOverTheBoundAreLeftToLibhdf5() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/big-chunk.h5"
    let values: [Float] = [1, 2, 3, 4, 5]
    do {
      let file = try H5Group.createFile(path)
      try file.createExtendable("over", type: .float32, chunkRows: CompressedChunks.maxChunkBytes / 4 + 1, gzipLevel: 1)
        .append(values, rows: values.count)
      try file.createExtendable("at", type: .float32, chunkRows: CompressedChunks.maxChunkBytes / 4, gzipLevel: 1)
        .append(values, rows: values.count)
    }
    let file = try H5Group.openFile(path)
    XCTAssertNil(CompressedChunks(try file.dataset("over"), memoryType: chdf5_native_float(), count: values.count))
    XCTAssertNotNil(CompressedChunks(try file.dataset("at"), memoryType: chdf5_native_float(), count: values.count))
    XCTAssertEqual(try file.dataset("over").read(), .float32(values))
    XCTAssertEqual(try file.dataset("at").read(), .float32(values))
  }

  /// A dense X stored with gzip reads as written through `AnnData.read`, whose crash-isolation
  /// child reads its chunks as stored without inflating or keeping them; a damaged chunk is then
  /// found by the caller's read and named by its first element's row and column.
  func testGzipDenseMatrixReadsThroughTheProbeAndNamesADamagedChunk() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/dense.h5ad"
    let (rows, cols) = (500, 90)
    var rng = SplitMixRandom(seed: 9)
    let values = (0..<(rows * cols)).map { _ in rng.below(4) == 0 ? Float(1 + rng.below(9)) : 0 }
    let obsm = (0..<(rows * 3)).map { Float($0) }
    var adata = try AnnData(X: .dense(try DenseArray(rows: rows, cols: cols, values: [Float](repeating: 0, count: rows * cols))),
                        obs: DataFrame(index: (0..<rows).map { "c\($0)" }), var: DataFrame(index: (0..<cols).map { "g\($0)" }))
    adata.obsm["X_pca"] = .dense(try DenseArray(rows: rows, cols: 3, values: obsm))
    try adata.write(h5ad: path)
    do {
      let file = H5Fopen(path, chdf5_acc_rdwr(), hid_t(H5P_DEFAULT))
      defer { _ = H5Fclose(file) }
      XCTAssertGreaterThanOrEqual(H5Ldelete(file, "X", hid_t(H5P_DEFAULT)), 0)
      try createGzipArray(file, "X", shape: [rows, cols], chunks: [64, 23], values: values, type: chdf5_native_float())
    }
    let read = try AnnData.read(h5ad: path)
    XCTAssertEqual(read.X, .dense(try DenseArray(rows: rows, cols: cols, values: values)))
    XCTAssertEqual(read.obsm["X_pca"], .dense(try DenseArray(rows: rows, cols: 3, values: obsm)))

    // Chunk (1, 2) of X: rows 64..<128, columns 46..<69.
    try damageChunk(of: "/X", at: [64, 46], in: path)
    XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, "/X", "corrupt chunk at element [64, 46]"])
  }

  /// Creates `name` in the file or group `location`: an array of `shape` stored in gzip chunks of `chunks`.
  private func createGzipArray<T>(_ location: hid_t, _ name: String, shape: [Int], chunks: [Int], values: [T], type: hid_t,
                                  shuffle: Bool = false) throws {
    let space = H5Screate_simple(Int32(shape.count), shape.map { hsize_t($0) }, nil)
    let create = H5Pcreate(chdf5_p_dataset_create())
    defer { _ = H5Sclose(space); _ = H5Pclose(create) }
    XCTAssertGreaterThanOrEqual(H5Pset_chunk(create, Int32(chunks.count), chunks.map { hsize_t($0) }), 0)
    if shuffle { XCTAssertGreaterThanOrEqual(H5Pset_shuffle(create), 0) }
    XCTAssertGreaterThanOrEqual(H5Pset_deflate(create, 4), 0)
    let dataset = H5Dcreate2(location, name, type, space, hid_t(H5P_DEFAULT), create, hid_t(H5P_DEFAULT))
    XCTAssertGreaterThanOrEqual(dataset, 0)
    defer { _ = H5Dclose(dataset) }
    XCTAssertGreaterThanOrEqual(values.withUnsafeBytes { H5Dwrite(dataset, type, 0, 0, hid_t(H5P_DEFAULT), $0.baseAddress) }, 0)
  }

  /// Integers stored in one width and read in another (10x Genomics files: int32 counts read as
  /// float32, int64 indices read as int32) are converted chunk by chunk into what libhdf5's own
  /// conversion gives: values beyond the narrower type saturate, and an N-D array's edge chunks
  /// are cut as without a conversion.
  func testStoredIntegersConvertAsLibhdf5ConvertsThem() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/widths.h5"
    let wide: [Int64] = [0, 1, -1, Int64(Int32.max), Int64(Int32.max) + 1, Int64(Int32.min) - 1, 1 << 53 + 1, -7] + (0..<1_000).map { Int64($0 * 37 % 1_001) }
    let small: [UInt16] = (0..<(30 * 17)).map { UInt16($0 * 131 % 65_536) }
    do {
      let file = try H5Group.createFile(path)
      try createGzipArray(file.id, "wide", shape: [wide.count], chunks: [100], values: wide, type: chdf5_native_int64())
      try createGzipArray(file.id, "grid", shape: [30, 17], chunks: [8, 5], values: small, type: chdf5_native_uint16())
    }
    let file = try H5Group.openFile(path)
    for (name, count) in [("wide", wide.count), ("grid", small.count)] {
      let dataset = try file.dataset(name)
      for type in [chdf5_native_float(), chdf5_native_double(), chdf5_native_int32(), chdf5_native_int64()] {
        let chunks = try XCTUnwrap(CompressedChunks(dataset, memoryType: type, count: count), name)
        var ours = [UInt8](repeating: 0xEE, count: count * H5Tget_size(type))
        var theirs = [UInt8](repeating: 0x11, count: ours.count)
        XCTAssertTrue(try ours.withUnsafeMutableBytes { try chunks.read(into: $0.baseAddress!, roundBytes: 1) }, name)
        var fault: Int32 = 0
        XCTAssertGreaterThanOrEqual(theirs.withUnsafeMutableBytes { chdf5_safe_dread(dataset.id, type, $0.baseAddress, &fault) }, 0)
        XCTAssertEqual(ours, theirs, "\(name) as a \(H5Tget_size(type))-byte \(H5Tget_class(type) == H5T_FLOAT ? "float" : "integer")")
      }
    }
    XCTAssertEqual(try file.dataset("wide").readIntegers(as: Int32.self)?.prefix(6), [0, 1, -1, Int32.max, Int32.max, Int32.min])
  }

  /// Chunks shuffled before gzip (Cell Ranger writes its matrices so: int32 counts, int64
  /// indices) are unshuffled after inflating, in place or through a buffer, converted or not,
  /// into what libhdf5 reads.
  func testShuffledChunksReadAsLibhdf5ReadsThem() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/shuffled.h5"
    var rng = SplitMixRandom(seed: 13)
    let counts = (0..<5_003).map { _ in Int32(rng.below(300)) }
    let indices = (0..<5_003).map { _ in Int64(rng.below(33_000)) }
    let grid = (0..<(50 * 21)).map { _ in Float(rng.below(1_000)) / 7 }
    do {
      let file = try H5Group.createFile(path)
      try createGzipArray(file.id, "data", shape: [counts.count], chunks: [1_000], values: counts, type: chdf5_native_int32(), shuffle: true)
      try createGzipArray(file.id, "indices", shape: [indices.count], chunks: [1_000], values: indices, type: chdf5_native_int64(), shuffle: true)
      try createGzipArray(file.id, "grid", shape: [50, 21], chunks: [16, 21], values: grid, type: chdf5_native_float(), shuffle: true)
    }
    let file = try H5Group.openFile(path)
    for (name, type) in [("data", chdf5_native_int32()), ("data", chdf5_native_float()), ("indices", chdf5_native_int32()),
                         ("indices", chdf5_native_int64()), ("grid", chdf5_native_float())] {
      let dataset = try file.dataset(name)
      let count = try dataset.checkedShape().reduce(1, *)
      let chunks = try XCTUnwrap(CompressedChunks(dataset, memoryType: type, count: count), name)
      XCTAssertTrue(chunks.shuffled, name)
      var ours = [UInt8](repeating: 0xEE, count: count * H5Tget_size(type))
      var theirs = [UInt8](repeating: 0x11, count: ours.count)
      XCTAssertTrue(try ours.withUnsafeMutableBytes { try chunks.read(into: $0.baseAddress!) }, name)
      var fault: Int32 = 0
      XCTAssertGreaterThanOrEqual(theirs.withUnsafeMutableBytes { chdf5_safe_dread(dataset.id, type, $0.baseAddress, &fault) }, 0)
      XCTAssertEqual(ours, theirs, "\(name) read as \(H5Tget_size(type)) bytes")
    }
    XCTAssertEqual(try file.dataset("data").readFloats(), counts.map(Float.init))
    XCTAssertEqual(try file.dataset("indices").readIntegers(as: Int32.self), indices.map(Int32.init))
    XCTAssertEqual(try file.dataset("grid").read(), .float32(grid))
  }

  /// A chunk stored without gzip (its filter mask says so: an optional filter that failed when
  /// the chunk was written) is taken as stored; an array with a chunk never written (fill
  /// values) is left to libhdf5. Both read as libhdf5 reads them.
  func testUnfilteredAndUnwrittenChunksReadAsLibhdf5ReadsThem() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/odd-chunks.h5"
    do {
      let file = try H5Group.createFile(path)
      for name in ["stored", "unwritten"] {
        let dataset = try file.createExtendable(name, type: .int32, chunkRows: 4, gzipLevel: 6)
        try dataset.append((1...6).map { Int32($0) }, rows: 6)  // elements 6 and 7: fill values
        // Chunk 0 rewritten as stored bytes that skip the gzip filter (mask bit 0).
        let raw = (101...104).map { Int32($0) }
        XCTAssertGreaterThanOrEqual(raw.withUnsafeBytes { H5Dwrite_chunk(dataset.id, hid_t(H5P_DEFAULT), 1, [0], 16, $0.baseAddress) }, 0)
        XCTAssertGreaterThanOrEqual(H5Dset_extent(dataset.id, [10]), 0)  // elements 8 and 9: a chunk never written
        if name == "stored" { try dataset.append([Int32](repeating: 9, count: 2), rows: 2) }
      }
    }
    let file = try H5Group.openFile(path)
    for (name, stored, expected) in [("stored", true, [101, 102, 103, 104, 5, 6, 0, 0, 0, 0, 9, 9] as [Int32]),
                                     ("unwritten", false, [101, 102, 103, 104, 5, 6, 0, 0, 0, 0])] {
      let dataset = try file.dataset(name)
      XCTAssertEqual(try dataset.readBlock(Int32.self, start: [0], count: [expected.count]), expected, name)  // libhdf5's read
      let chunks = try XCTUnwrap(CompressedChunks(dataset, memoryType: chdf5_native_int32(), count: expected.count))
      var read = [Int32](repeating: -1, count: expected.count)
      XCTAssertEqual(try read.withUnsafeMutableBytes { try chunks.read(into: $0.baseAddress!) }, stored, name)
      if stored { XCTAssertEqual(read, expected, name) }
      XCTAssertEqual(try dataset.readIntegers(as: Int32.self), expected, name)
      XCTAssertEqual(try dataset.read(), .int32(expected), name)
    }
  }

  /// A damaged gzip chunk is an error naming the file, the dataset and the chunk, in memory and
  /// backed, never a crash.
  func testCorruptGzipChunkIsAClearError() throws {
    let directory = try Fixtures.temporaryDirectory(removedAfter: self)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = "\(directory)/corrupt.h5ad"
    var counts = CSRRows(nCols: 100)
    var rng = SplitMixRandom(seed: 3)
    for _ in 0..<300 {
      for c in 0..<100 where rng.below(4) == 0 {
        counts.values.append(Float(1 + rng.below(30)))
        counts.columns.append(Int32(c))
      }
      counts.rowStarts.append(counts.values.count)
    }
    let writer = try H5ADBlockWriter(path: path, nCols: 100, options: H5ADBlockWriter.Options(gzipLevel: 4, chunkValues: 1 << 12))
    try writer.append(counts)
    try writer.finish(obs: DataFrame(index: (0..<300).map { "c\($0)" }), var: DataFrame(index: (0..<100).map { "g\($0)" }))

    try damageChunk(of: "/X/data", at: [0], in: path)
    XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, "/X/data", "corrupt chunk"])
    XCTAssertThrowsMessage(try BackedH5AD.open(path, isolated: false).rows(0..<300), containing: [path, "corrupt chunk"])
  }

  /// Overwrites 16 bytes in the middle of the stored (compressed) chunk of `dataset` that starts
  /// at element `origin`, found where libhdf5 says it lies in the file.
  private func damageChunk(of dataset: String, at origin: [hsize_t], in path: String) throws {
    var address: haddr_t = 0, size: hsize_t = 0, mask: UInt32 = 0
    do {
      let file = H5Fopen(path, chdf5_acc_rdonly(), hid_t(H5P_DEFAULT))
      let data = H5Dopen2(file, dataset, hid_t(H5P_DEFAULT))
      defer { _ = H5Dclose(data); _ = H5Fclose(file) }
      XCTAssertGreaterThanOrEqual(H5Dget_chunk_info_by_coord(data, origin, &mask, &address, &size), 0)
    }
    guard size > 64 else { throw CellDataError("\(dataset): no compressed chunk at \(origin) (\(size) bytes)") }
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
    try handle.seek(toOffset: UInt64(address) + UInt64(size) / 2)
    try handle.write(contentsOf: Data(repeating: 0xA5, count: 16))
    try handle.close()
  }
}
