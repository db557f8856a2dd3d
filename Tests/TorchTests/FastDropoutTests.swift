import XCTest

@testable import Torch

/// `Runtime.dropoutMasks = .fast`: masks from our own generator.
final class FastDropoutTests: XCTestCase {
  override func tearDown() { Runtime.dropoutMasks = .libtorch }

  func testFastMasksKeepTheRightShareScaledAndRepeatForTheSameSeed() {
    XCTAssertEqual(Runtime.dropoutMasks, .libtorch, "torch's masks unless asked")
    Runtime.dropoutMasks = .fast
    let x = Tensor.ones([400, 501])  // an odd count: the last element has its own draw
    Runtime.seed(5)
    let first = Functional.dropout(x, p: 0.3, training: true)
    let values = first.toArray(Float.self)
    let kept = values.filter { $0 != 0 }
    XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 }, "kept values are scaled by 1 / (1 − p)")
    XCTAssertEqual(Double(kept.count) / Double(values.count), 0.7, accuracy: 0.005)
    Runtime.seed(5)
    XCTAssertEqual(Functional.dropout(x, p: 0.3, training: true).toArray(Float.self), values, "same seed, same mask")
    XCTAssertNotEqual(Functional.dropout(x, p: 0.3, training: true).toArray(Float.self), values, "the stream moves on")
    XCTAssertEqual(Functional.dropout(x, p: 0.3, training: false).toArray(Float.self), x.toArray(Float.self))

    // The gradient flows through the kept elements only, scaled.
    let w = Tensor.ones([1000]).requiringGrad()
    let y = Functional.dropout(w, p: 0.5, training: true)
    y.sum().backward()
    XCTAssertEqual(w.grad!.toArray(Float.self), y.detach().toArray(Float.self))
  }

  func testAttentionWithDropoutKeepsItsExpectation() {
    Runtime.dropoutMasks = .fast
    Runtime.seed(1)
    let q = Tensor.randn([2, 2, 5, 4]), k = Tensor.randn([2, 2, 7, 4]), v = Tensor.randn([2, 2, 7, 4])
    let allowed = Tensor(bools: (0..<35).map { $0 % 7 != 3 }, shape: [5, 7])
    let exact = Functional.scaledDotProductAttention(q, k, v, mask: allowed)
    var mean = Tensor.zeros(exact.shape)
    for _ in 0..<400 { mean = mean + Functional.scaledDotProductAttention(q, k, v, mask: allowed, dropout: 0.2) / 400 }
    XCTAssertLessThan((mean - exact).abs().max().item(), 0.15, "dropout of the probabilities leaves the output's expectation")
    Runtime.dropoutMasks = .libtorch
    let masked = v.narrow(dim: 2, start: 3, length: 1) * 1000
    let vMasked = Tensor.cat([v.narrow(dim: 2, start: 0, length: 3), masked, v.narrow(dim: 2, start: 4, length: 3)], dim: 2)
    Runtime.dropoutMasks = .fast
    XCTAssertLessThan((Functional.scaledDotProductAttention(q, k, vMasked, mask: allowed, dropout: 0.2)).abs().max().item(), 100,
                      "a masked key contributes nothing")
  }
}
