import Foundation
import XCTest

@testable import CellData

/// ../shared/data/pbmc_two_batch.h5ad, built by data/make_pbmc_two_batch.py from the
/// LZF-compressed scvi-tools test files; the numbers below are the ones that script prints.
final class PBMCTwoBatchTests: XCTestCase {
  func testShapeBatchesCountsAndProteins() throws {
    let a = try AnnData.read(h5ad: try SharedData.path("pbmc_two_batch.h5ad"), requireX: true)
    XCTAssertEqual([a.nObs, a.nVars], [400, 14520])
    XCTAssertEqual(Set(a.varNames).count, a.nVars, "unique gene names")

    guard case .categorical(let batch) = try XCTUnwrap(a.obs["batch"]) else { return XCTFail("batch is not categorical") }
    XCTAssertEqual(batch.categories, .string(["pbmc5k", "pbmc10k"]))
    XCTAssertEqual(batch.codes.filter { $0 == 0 }.count, 200)
    XCTAssertEqual(batch.codes.filter { $0 == 1 }.count, 200)
    for (name, label) in zip(a.obsNames, batch.labels) {
      XCTAssertTrue(name.hasSuffix("-\(label ?? "?")"), "\(name) vs batch \(label ?? "nil")")
    }

    guard case .sparse(let x) = try XCTUnwrap(a.X) else { return XCTFail("X is not sparse") }
    XCTAssertEqual(x.format, .csr)
    guard case .float32(let values) = x.data else { return XCTFail("X is not float32") }
    XCTAssertEqual(x.nnz, 703_993)
    XCTAssertTrue(values.allSatisfy { $0 > 0 && $0 == $0.rounded() }, "positive integer counts")
    XCTAssertEqual(values.reduce(0.0) { $0 + Double($1) }, 2_258_575)
    let rowSums = (0..<a.nObs).map { i in values[x.indptr[i]..<x.indptr[i + 1]].reduce(0.0) { $0 + Double($1) } }
    XCTAssertEqual(try a.obs.doubles("n_counts"), rowSums)
    var detected = [Bool](repeating: false, count: a.nVars)
    for j in x.indices { detected[Int(j)] = true }
    XCTAssertTrue(detected.allSatisfy { $0 }, "every gene is detected in some cell")

    guard case .dense(let proteins) = try XCTUnwrap(a.obsm["protein_expression"]) else { return XCTFail("no proteins") }
    XCTAssertEqual(proteins.shape, [400, 14])
    guard case .dense(let names) = try XCTUnwrap(a.uns["protein_names"]), case .string(let list) = names.data else {
      return XCTFail("protein_names is not a string array")
    }
    XCTAssertEqual(list.count, 14)
    XCTAssertTrue(list.contains("CD3_TotalSeqB"))
  }
}
