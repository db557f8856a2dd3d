import Foundation
import XCTest

import Torch

final class ErrorAndMemoryTests: XCTestCase {
  func testShapeMismatchThrowsWithLibtorchMessage() {
    let a = Tensor.ones([2, 3]), b = Tensor.ones([4, 5])
    XCTAssertThrowsError(try withTorchErrors { a.matmul(b) }) { error in
      guard case TorchError.libtorch(let message) = error else { return XCTFail("unexpected \(error)") }
      XCTAssertTrue(message.contains("cannot be multiplied"), message)
    }
  }

  func testFirstErrorIsKeptAndLaterOpsOnTheFailedResultDoNotCrash() {
    XCTAssertThrowsError(try withTorchErrors { () -> Double in
      let bad = Tensor.ones([2]) + Tensor.ones([3])
      let worse = bad.exp().sum()
      return worse.item()
    }) { error in
      XCTAssertTrue("\(error)".contains("must match the size"), "\(error)")
    }
  }

  func testOtherLibtorchFailuresAreThrown() {
    XCTAssertThrowsError(try withTorchErrors { Tensor.ones([2, 2]).reshape([3]) })
    XCTAssertThrowsError(try withTorchErrors { Functional.crossEntropy(Tensor.randn([3, 4]), Tensor([0, 9, 1] as [Int64])) })
    XCTAssertThrowsError(try withTorchErrors { Tensor.ones([2]).to(.cuda(0)) })
    XCTAssertNoThrow(try withTorchErrors { Tensor.ones([2]) + 1 })
  }

  func testAskingForCUDAWithoutItIsAClearError() {
    guard !Runtime.cudaAvailable else { return }
    XCTAssertThrowsError(try Device(parsing: "cuda")) { error in
      XCTAssertTrue("\(error)".contains("CUDA is not available"), "\(error)")
    }
    XCTAssertEqual(try Device(parsing: "cpu"), .cpu)
    XCTAssertThrowsError(try Device(parsing: "tpu"))
  }

  /// Resident set size in bytes (Linux /proc).
  func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
      let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// 10,000 iterations that create, combine, backpropagate and drop tensors of 16 KiB each:
  /// a leak of one tensor per iteration would add 160 MB.
  func testTensorLoopKeepsResidentMemoryFlat() {
    func iteration() {
      let x = Tensor.randn([64, 64]).requiringGrad()
      let y = ((x * x) * 2 + 1).relu().sum()
      y.backward()
      _ = x.grad
    }
    for _ in 0..<500 { iteration() }  // warm up the allocator
    let before = residentBytes()
    for _ in 0..<10_000 { iteration() }
    let growth = residentBytes() - before
    XCTAssertLessThan(growth, 32 << 20, "resident memory grew by \(growth >> 20) MiB over 10,000 iterations")
  }
}
