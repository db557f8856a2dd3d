import CHDF5
import Foundation
import XCTest

@testable import CellData

final class H5ADErrorTests: XCTestCase {
  func testCorruptFileNamesTheFile() {
    let path = Fixtures.path("corrupt.h5ad")
    XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, "not an HDF5 file"])
  }

  func testTruncatedFileIsAClearError() {
    let path = Fixtures.path("truncated.h5ad")
    XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, "truncated"])
  }

  /// A fuzzed 88 kB file on which libhdf5 allocates without end (it took 24 GB before the kernel
  /// killed the process): the read is bounded (CrashIsolation.readingBudget) and fails in seconds,
  /// either because the child runs out of its budget or because libhdf5, refused the memory,
  /// reports the links it was looking up as absent ("not an AnnData file").
  func testAFileThatMakesLibhdf5AllocateWithoutEndIsAnErrorInSeconds() {
    let path = Fixtures.fuzz("h5ad/libhdf5-unbounded-allocation.h5ad")
    let start = Date()
    XCTAssertThrowsError(try AnnData.read(h5ad: path)) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains(path), message)
      XCTAssertTrue(message.contains("GiB of memory") || message.contains("not an AnnData file"), message)
    }
    // 3–7 s in every run but one (35.8 s, in one full release pass on a 2-core machine; not
    // reproduced); the unbounded read took minutes, until the kernel stopped it.
    XCTAssertLessThan(Date().timeIntervalSince(start), 60)
  }

  /// A fuzzed 10x file whose `genome` strings claim a fixed width of 0: libhdf5 kept a 1-byte
  /// memory type and wrote 30 bytes into an empty buffer (Swift's shared empty-array storage),
  /// which crashed the caller later, while releasing an unrelated array.
  func testAStringTypeOfWidthZeroIsAnError() {
    let path = Fixtures.fuzz("10x-h5/string-width-zero.h5")
    XCTAssertThrowsMessage(try AnnData.read10xH5(path), containing: [path, "/matrix/features/genome", "width 0"])
  }

  /// A fuzzed 10x file whose `/matrix/data` claims chunks of rank 0: libhdf5 1.10 read it by
  /// allocating selections until the child's memory cap stopped it (6–9 s, then its allocation
  /// error). The layout is now checked when the dataset is opened, for every reader.
  func testADamagedChunkLayoutIsRefusedBeforeLibhdf5ReadsIt() {
    let path = Fixtures.fuzz("10x-h5/chunk-rank-zero.h5")
    XCTAssertThrowsMessage(try AnnData.read10xH5(path), containing: [path, "/matrix/data", "chunk layout is damaged"])
  }

  /// The crash-isolation child reads sparse arrays through a small buffer, so the memory the real
  /// read will take is counted against the same bound instead (16 bytes a stored number).
  func testTheProbeReadCountsTheMemoryOfSparseArraysAgainstTheBound() throws {
    let path = Fixtures.path("gzip.h5ad")
    let probe = CrashIsolation.Budget(file: path)
    XCTAssertEqual(probe.limit, CrashIsolation.readingBudget(fileBytes: try Data(contentsOf: URL(fileURLWithPath: path)).count))
    XCTAssertNoThrow(try probe.count(elements: probe.limit / 32))
    XCTAssertThrowsMessage(try probe.count(elements: probe.limit / 16), containing: [path, "GiB of memory", "nothing was read"])
    // And a probed read gives the shapes (not the values) of the whole read.
    let probed = try H5ADReader(warn: { _ in }, probe: .init(file: path)).readAnnData(try H5Group.openFile(path), requireX: true)
    let whole = try AnnData.read(h5ad: path)
    XCTAssertEqual(probed.X?.nRows, whole.X?.nRows)
    XCTAssertEqual(probed.X?.nCols, whole.X?.nCols)
    XCTAssertEqual(probed.obsNames, whole.obsNames)
  }

  /// The child keeps no dense array of two or more dimensions, and counts each at the size the
  /// caller will read it as (4 bytes a float32), not at a sparse matrix's 16 bytes a number: a
  /// dense layer of zeros compresses far beyond what 16 bytes a number would let a file hold.
  func testTheProbeCountsDenseArraysAtTheirReadSize() throws {
    let path = Fixtures.fuzz("seeds/dense-gzip-grid.h5ad")
    let probe = CrashIsolation.Budget(file: path)
    let probed = try H5ADReader(warn: { _ in }, probe: probe).readAnnData(try H5Group.openFile(path), requireX: true)
    XCTAssertEqual(probe.bytes, (40 * 30 + 40 * 3) * 4)
    guard case .dense(let X)? = probed.X, case .dense(let pca)? = probed.obsm["X_pca"] else { return XCTFail("dense arrays") }
    XCTAssertEqual([X.shape, pca.shape], [[40, 30], [40, 3]])
    XCTAssertEqual([X.data.count, pca.data.count], [0, 0])
    let whole = try AnnData.read(h5ad: path)
    XCTAssertEqual(whole.X?.nRows, 40)
    XCTAssertEqual(whole.obsm["X_pca"]?.length, 40)
  }

  /// The reading child's outcome reaches the caller: its message when it throws, the signal when
  /// it dies, and a death is noticed within a second or two even when another process (here a
  /// grandchild) holds a copy of the child's end of the pipe, so no end of file comes; a child
  /// that does not finish in time is stopped.
  func testTheReadingChildsEndReachesTheCaller() {
    let path = Fixtures.path("gzip.h5ad")
    XCTAssertNoThrow(try CrashIsolation.check(file: path) {})
    XCTAssertThrowsMessage(try CrashIsolation.check(file: path) { throw CellDataError("refused in the child") },
                           containing: ["refused in the child"])
    let start = Date()
    XCTAssertThrowsMessage(try CrashIsolation.check(file: path) {
      if fork() == 0 {
        sleep(20)
        _exit(0)
      }
      raise(SIGSEGV)
    }, containing: [path, "reading it crashes libhdf5 (signal \(SIGSEGV))"])
    XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    XCTAssertThrowsMessage(try CrashIsolation.check(file: path, timeout: 1) { sleep(10) },
                           containing: [path, "did not finish within 1 s"])
  }

  /// The probe reads an array slab by slab: every slab is read, so damage in the last chunk is
  /// found. Gzip level 0 stores the chunks' bytes verbatim, so the last chunk's zlib checksum
  /// (the 4 bytes after its data) can be located and broken. Read as stored (int32), the array's
  /// chunks are inflated by the caller's read, not the probe (CompressedChunks): the probe reads
  /// them as stored, and the caller's read finds the damage. Read as uint64 (a conversion that
  /// stays with libhdf5), the probe's slab reads find it.
  func testTheProbeReadsEverySlabOfAnArray() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/slabs.h5"
    do {
      let dataset = try H5Group.createFile(path).createExtendable("x", type: .int32, chunkRows: 4, gzipLevel: 0)
      try dataset.append((0..<12).map { Int32($0 < 8 ? $0 : 0x5A5A_5A00 + $0) }, rows: 12)
    }
    let converted = chdf5_native_uint64()  // a conversion CompressedChunks leaves to libhdf5
    XCTAssertNoThrow(try H5Group.openFile(path).dataset("x").readThrough(as: converted, slab: 4))
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let lastChunk = (8..<12).flatMap { withUnsafeBytes(of: Int32(0x5A5A_5A00 + $0).littleEndian, Array.init) }
    let start = try XCTUnwrap((0...(bytes.count - lastChunk.count)).first { bytes[$0..<($0 + lastChunk.count)].elementsEqual(lastChunk) })
    for i in (start + 16)..<(start + 20) { bytes[i] ^= 0xFF }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    XCTAssertNoThrow(try H5Group.openFile(path).dataset("x").readBlock(Int32.self, start: [0], count: [8]))
    for slab in [3, 4, 5, 100] {
      XCTAssertThrowsMessage(try H5Group.openFile(path).dataset("x").readThrough(as: converted, slab: slab),
                             containing: [path, "cannot read"])
    }
    XCTAssertNotNil(CompressedChunks(try H5Group.openFile(path).dataset("x"), memoryType: chdf5_native_int32(), count: 12))
    XCTAssertNoThrow(try H5Group.openFile(path).dataset("x").readThrough(slab: 4))
    XCTAssertThrowsMessage(try H5Group.openFile(path).dataset("x").read(), containing: [path, "/x", "corrupt chunk at element 8"])
  }

  /// Variable-length strings are parsed from the file's global heap here, not by libhdf5: an
  /// object is found by its index wherever the collection stores it, and an index the
  /// collection lacks is an error naming the string.
  func testHeapStringsAreFoundByTheirIndexInAnyOrder() throws {
    let path = try Fixtures.temporaryDirectory(removedAfter: self) + "/heap.h5ad"
    let names = ["cellAAAA", "cellBBBB", "cellCCCC"]
    let X = Matrix.dense(try DenseArray(rows: 3, cols: 1, values: [1, 2, 3] as [Float]))
    try AnnData(X: X, obs: DataFrame(index: names), var: DataFrame(index: ["g"])).write(h5ad: path)
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    // In front of each object's bytes: index (2 bytes), reference count (2), reserved (4), size (8).
    func objectHeader(_ name: String) throws -> Int {
      let pattern = Array(name.utf8)
      return try XCTUnwrap((0...(bytes.count - pattern.count)).first { bytes[$0..<($0 + pattern.count)].elementsEqual(pattern) }) - 16
    }
    let a = try objectHeader("cellAAAA"), b = try objectHeader("cellBBBB"), c = try objectHeader("cellCCCC")
    for k in 0..<2 { bytes.swapAt(a + k, b + k) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    XCTAssertEqual(try AnnData.read(h5ad: path).obsNames, ["cellBBBB", "cellAAAA", "cellCCCC"])
    bytes[c] = 0x7F
    bytes[c + 1] = 0
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, "string 2 refers to object", "which has no such object"])
  }

  /// Sparse indices are Int32 in memory. A stored index beyond Int32 (int64 or uint32 on disk)
  /// is an out-of-range error, not a wrapped or clamped value; so is a minor dimension beyond 2^31.
  func testIndicesBeyondInt32AreAnErrorNamingTheFile() throws {
    let dir = try Fixtures.temporaryDirectory(removedAfter: self)
    let cases: [(String, nCols: Int, ArrayData, expected: String)] = [
      ("int64", 3, .int64([0, 1 << 32 + 1]), "out of range"),
      ("uint32", 3, .uint32([0, 1 << 31]), "out of range"),
      ("wide", 3_000_000_000, .int64([0, 2_500_000_000]), "at most 2^31"),
      ("fits", 3, .int64([0, 2]), ""),
    ]
    for (name, nCols, indices, expected) in cases {
      let path = "\(dir)/\(name).h5ad"
      let root = try H5Group.createFile(path)
      let writer = H5ADWriter()
      try root.attributes.setEncoding("anndata", version: "0.1.0")
      let x = try root.createGroup("X")
      try x.attributes.setEncoding("csr_matrix", version: "0.1.0")
      try x.attributes.write("shape", integers: [2, nCols])
      try x.write("data", .float32([1, 2]), shape: [2])
      try x.write("indices", indices, shape: [2])
      try x.write("indptr", .int64([0, 1, 2]), shape: [3])
      try writer.write(frame: DataFrame(index: ["a", "b"]), in: root, "obs")
      if nCols == 3 { try writer.write(frame: DataFrame(index: ["g0", "g1", "g2"]), in: root, "var") }
      _ = root
      if expected.isEmpty {
        let read = try AnnData.read(h5ad: path)
        guard case .sparse(let m) = read.X else { return XCTFail("expected a sparse X") }
        XCTAssertEqual(m.indices, [0, 2])
        XCTAssertEqual(m.indexType, .int64)
      } else {
        XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, expected])
      }
    }
  }

  func testMissingFile() {
    XCTAssertThrowsMessage(try AnnData.read(h5ad: "/nonexistent/x.h5ad"), containing: ["/nonexistent/x.h5ad", "no such file"])
  }

  func testMissingXIsAllowedUnlessRequired() throws {
    let path = Fixtures.path("no_x.h5ad")
    let a = try AnnData.read(h5ad: path)
    XCTAssertNil(a.X)
    XCTAssertEqual(a.obsNames, ["a", "b"])
    XCTAssertEqual(a.varNames, ["g"])
    XCTAssertThrowsMessage(try AnnData.read(h5ad: path, requireX: true), containing: [path, "no X matrix"])
  }

  func testUnknownEncodingIsSkippedWithAWarning() throws {
    let log = WarningLog()
    let a = try AnnData.read(h5ad: Fixtures.path("unknown_encoding.h5ad"), warn: log.handler)
    XCTAssertNil(a.uns["mystery"])
    XCTAssertNil(a.obsm["future"])
    XCTAssertNotNil(a.obsm["X_pca"], "known elements still read")
    XCTAssertEqual(log.messages.count, 2)
    XCTAssertTrue(log.messages.contains { $0.contains("/uns/mystery") && $0.contains("awkward-array") })
    XCTAssertTrue(log.messages.contains { $0.contains("/obsm/future") && $0.contains("tensor-of-the-future") })
  }

  func testNonAnnDataHDF5File() throws {
    let dir = try Fixtures.temporaryDirectory(removedAfter: self)
    let path = dir + "/plain.h5"
    let root = try H5Group.createFile(path)
    try root.write("numbers", .int32([1, 2, 3]), shape: [3])
    _ = root
    XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, "not an AnnData file"])
  }
}
