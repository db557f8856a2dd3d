import Foundation
import XCTest

import Torch

/// The repository's tests/fixtures/<name> folder.
func fixtureURL(_ folder: String, _ file: String) -> URL {
  URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("tests/fixtures/\(folder)/\(file)")
}

/// Tensors of one fixture file, looked up by key with a clear failure when absent.
struct Fixture {
  let tensors: StateDict

  init(_ file: String) throws {
    tensors = try Safetensors.read(fixtureURL("torch", file)).tensors
  }

  subscript(_ key: String) -> Tensor {
    guard let t = tensors[key] else { fatalError("fixture key \(key) missing") }
    return t
  }
  func has(_ key: String) -> Bool { tensors[key] != nil }
}

/// Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise (as torch.allclose).
func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Double = 1e-5, atol: Double = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
  XCTAssertEqual(actual.shape, expected.shape, "shape \(message)", file: file, line: line)
  guard actual.shape == expected.shape else { return }
  let a = actual.detach().to(.float64).toArray(Double.self)
  let e = expected.detach().to(.float64).toArray(Double.self)
  var worst = 0.0, worstIndex = -1
  for i in a.indices {
    if a[i].isNaN && e[i].isNaN { continue }
    if a[i] == e[i] { continue }  // equal infinities
    let excess = Swift.abs(a[i] - e[i]) - (atol + rtol * Swift.abs(e[i]))
    if !(excess <= 0) && (worstIndex < 0 || excess > worst || excess.isNaN) { worst = excess; worstIndex = i }
  }
  if worstIndex >= 0 {
    XCTFail("\(message): element \(worstIndex) is \(a[worstIndex]), expected \(e[worstIndex]) (rtol \(rtol), atol \(atol))",
            file: file, line: line)
  }
}
