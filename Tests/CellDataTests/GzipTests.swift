import CHDF5
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

    // The first chunk of X/data: where it lies in the file, from libhdf5.
    var address: haddr_t = 0, size: hsize_t = 0
    do {
      let file = H5Fopen(path, chdf5_acc_rdonly(), hid_t(H5P_DEFAULT))
      let data = H5Dopen2(file, "/X/data", hid_t(H5P_DEFAULT))
      let space = H5Dget_space(data)
      var offset: hsize_t = 0, mask: UInt32 = 0
      XCTAssertGreaterThanOrEqual(H5Dget_chunk_info(data, space, 0, &offset, &mask, &address, &size), 0)
      _ = H5Sclose(space)
      _ = H5Dclose(data)
      _ = H5Fclose(file)
    }
    guard size > 64 else { return XCTFail("no compressed chunk found (\(size) bytes)") }
    let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
    try handle.seek(toOffset: UInt64(address) + UInt64(size) / 2)
    try handle.write(contentsOf: Data(repeating: 0xA5, count: 16))
    try handle.close()

    XCTAssertThrowsMessage(try AnnData.read(h5ad: path), containing: [path, "/X/data", "corrupt chunk"])
    XCTAssertThrowsMessage(try BackedH5AD.open(path, isolated: false).rows(0..<300), containing: [path, "corrupt chunk"])
  }
}
