import XCTest

import Torch

/// `Autocast` on CPU (the same mechanism as on CUDA, where `--precision bf16` uses it).
final class AutocastTests: XCTestCase {
  func testListedOpsRunInBF16InsideAndStateIsRestoredAfter() throws {
    Runtime.seed(3)
    let linear = Linear(8, 4)
    let x = Tensor.randn([5, 8])
    let full = linear(x)
    let (inside, loss, nested) = Autocast.run(on: .cpu, dtype: .bfloat16) { () -> (Tensor, Tensor, Tensor) in
      let y = linear(x)
      let nested = Autocast.run(on: .cpu, dtype: .bfloat16) { linear(x) }
      return (y, Functional.mseLoss(y, full), nested)
    }
    XCTAssertEqual(inside.dtype, .bfloat16, "linear runs in bf16 under autocast")
    XCTAssertEqual(nested.dtype, .bfloat16)
    XCTAssertEqual(loss.dtype, .float32, "mse_loss is kept in float32")
    XCTAssertEqual(linear.weight.dtype, .float32, "parameters stay float32")
    XCTAssertEqual(linear(x).dtype, .float32, "autocast is off again after the region")
    assertClose(inside.fullPrecision, full, rtol: 0.05, atol: 0.02)
    XCTAssertGreaterThan(maxDifference(inside.fullPrecision.toArray(Float.self), full.toArray(Float.self)), 0,
                         "the region really computed in reduced precision")

    // Gradients flow back to float32 parameters through the recorded casts.
    let out = Autocast.run(on: .cpu, dtype: .bfloat16) { linear(x).sum() }
    out.backward()
    XCTAssertEqual(linear.weight.grad?.dtype, .float32)
    XCTAssertEqual(Autocast.run(on: .cpu, dtype: .float32) { linear(x) }.dtype, .float32, "float32: no autocast")
  }

  /// cuDNN's attention is off unless asked for (SINGLECELL_CUDNN_ATTENTION=1): on sm90+ libtorch
  /// would pick it for bf16 and build a plan per minibatch shape. The flag is libtorch's own.
  func testCuDNNAttentionIsOffByDefaultAndCanBeTurnedOn() {
    guard ProcessInfo.processInfo.environment["SINGLECELL_CUDNN_ATTENTION"] != "1" else { return }
    XCTAssertFalse(Runtime.cudnnAttention)
    Runtime.cudnnAttention = true
    defer { Runtime.cudnnAttention = false }
    XCTAssertTrue(Runtime.cudnnAttention)
  }
}
