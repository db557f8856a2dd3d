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
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("tests/fixtures/fuzz/h5ad/libhdf5-unbounded-allocation.h5ad").path
    let start = Date()
    XCTAssertThrowsError(try AnnData.read(h5ad: path)) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains(path), message)
      XCTAssertTrue(message.contains("GiB of memory") || message.contains("not an AnnData file"), message)
    }
    XCTAssertLessThan(Date().timeIntervalSince(start), 30)
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
