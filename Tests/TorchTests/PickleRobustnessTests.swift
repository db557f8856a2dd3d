import Foundation
import XCTest

@testable import Torch

/// Values and shapes that crashed the pickle reader (see docs/robustness.md); the inputs are
/// under tests/fixtures/fuzz/pickle (make_crafted.py).
final class PickleRobustnessTests: XCTestCase {
  func testNegativeDoublesRead() throws {
    // BINFLOAT with the sign bit set trapped converting a negative Int to UInt64.
    let value = try PickleFile.load(fixtureURL("fuzz/pickle", "negative-float.pkl"))
    guard case .float(let x)? = value["x"], case .list(let y)? = value["y"] else { return XCTFail("\(value)") }
    XCTAssertEqual(x, -1.5)
    guard case .float(let a) = y.items[0], case .float(let b) = y.items[1] else { return XCTFail("\(y.items)") }
    XCTAssertEqual(a.sign, .minus)
    XCTAssertEqual(b, -2e300)
  }

  func testDeepAndCyclicPicklesAreErrors() throws {
    for (file, message) in [
      ("deep-nesting-through-memo.pkl", "nesting deeper than"), ("deep-nesting-on-stack.pkl", "nesting deeper than"),
      ("self-containing-list.pkl", "contains itself"), ("huge-unicode8-length.pkl", "unexpected end of data"),
      ("tensor-size-overflow.pkl", "does not fit its storage"),
    ] {
      XCTAssertThrowsError(try PickleFile.load(fixtureURL("fuzz/pickle", file), skippingPersistentIDs: true), file) { error in
        XCTAssertTrue("\(error)".contains(message), "\(file): \(error)")
        XCTAssertTrue("\(error)".contains(file), "\(file): \(error)")
      }
    }
  }

  /// A legitimately nested pickle (within the depth bound) still reads.
  func testModerateNestingReads() throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("nested-\(UUID().uuidString).pkl")
    defer { try? FileManager.default.removeItem(at: url) }
    let depth = 400
    try Data([0x80, 0x02] + [UInt8](repeating: 0x5D, count: depth) + [UInt8](repeating: 0x61, count: depth - 1) + [0x2E]).write(to: url)
    var value = try PickleFile.load(url)
    var levels = 1
    while case .list(let l) = value, let first = l.items.first {
      value = first
      levels += 1
    }
    XCTAssertEqual(levels, depth)
  }
}
