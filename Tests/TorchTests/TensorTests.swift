import XCTest

import Torch

final class TensorTests: XCTestCase {
  func testCreationShapeAndData() {
    let t = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    XCTAssertEqual(t.shape, [2, 3])
    XCTAssertEqual(t.dtype, .float32)
    XCTAssertEqual(t.toArray(Float.self), [1, 2, 3, 4, 5, 6])
    XCTAssertEqual(t.T.contiguous().toArray(Float.self), [1, 4, 2, 5, 3, 6])
    XCTAssertEqual(Tensor.arange(0, 5).toArray(Int64.self), [0, 1, 2, 3, 4])
    XCTAssertEqual(Tensor.full([2], 3, dtype: .float64).toArray(Double.self), [3, 3])
    XCTAssertEqual(t.to(.float16).to(.float32).toArray(Float.self), [1, 2, 3, 4, 5, 6])
  }

  func testBroadcastingOperatorsAndReductions() {
    let a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    let row = Tensor([10, 20] as [Float], shape: [1, 2])
    XCTAssertEqual((a + row).toArray(Float.self), [11, 22, 13, 24])
    XCTAssertEqual((2 - a).toArray(Float.self), [1, 0, -1, -2])
    XCTAssertEqual((a / 2).toArray(Float.self), [0.5, 1, 1.5, 2])
    XCTAssertEqual(a.sum(dim: 0).toArray(Float.self), [4, 6])
    XCTAssertEqual(a.mean().item(), 2.5)
    XCTAssertEqual(a.max(dim: 1).toArray(Float.self), [2, 4])
    XCTAssertEqual(a.argmax(dim: 1).toArray(Int64.self), [1, 1])
    XCTAssertEqual(a.logsumexp(dim: 1).toArray(Float.self)[0], Float(log(exp(1.0) + exp(2.0))), accuracy: 1e-6)
    XCTAssertEqual(a.variance().item(), 5.0 / 3.0, accuracy: 1e-6)
    XCTAssertEqual(Tensor.where(a.gt(2), a, Tensor.zeros([2, 2])).toArray(Float.self), [0, 0, 3, 4])
  }

  func testShapeAndIndexingOps() {
    let a = Tensor.arange(0, 6, dtype: .float32).reshape([2, 3])
    XCTAssertEqual(Tensor.cat([a, a], dim: 0).shape, [4, 3])
    XCTAssertEqual(Tensor.stack([a, a], dim: 1).shape, [2, 2, 3])
    XCTAssertEqual(a.narrow(dim: 1, start: 1, length: 2).contiguous().toArray(Float.self), [1, 2, 4, 5])
    XCTAssertEqual(a.indexSelect(dim: 1, index: Tensor([2, 0] as [Int64])).contiguous().toArray(Float.self), [2, 0, 5, 3])
    XCTAssertEqual(a.gather(dim: 1, index: Tensor([0, 2, 1, 1] as [Int64], shape: [2, 2])).toArray(Float.self), [0, 2, 4, 4])
    let summed = Tensor.zeros([3]).scatterAdd(dim: 0, index: Tensor([0, 2, 0] as [Int64]), src: Tensor([1, 2, 3] as [Float]))
    XCTAssertEqual(summed.toArray(Float.self), [4, 0, 2])
    XCTAssertEqual(a.maskedFill(a.lt(2), -1).toArray(Float.self), [-1, -1, 2, 3, 4, 5])
    XCTAssertEqual(a.roll([1], dims: [1]).contiguous().toArray(Float.self), [2, 0, 1, 5, 3, 4])
    XCTAssertEqual(a.flip([0]).contiguous().toArray(Float.self), [3, 4, 5, 0, 1, 2])
    XCTAssertEqual(a.permute([1, 0]).shape, [3, 2])
    XCTAssertEqual(Tensor([1, 0] as [Int64]).oneHot(3).toArray(Int64.self), [0, 1, 0, 1, 0, 0])
  }

  func testRandomnessIsSeeded() {
    Runtime.seed(42)
    let a = Tensor.randn([5]).toArray(Float.self)
    let p = Tensor.rand([4, 3]).bernoulli().toArray(Float.self)
    Runtime.seed(42)
    XCTAssertEqual(Tensor.randn([5]).toArray(Float.self), a)
    XCTAssertEqual(Tensor.rand([4, 3]).bernoulli().toArray(Float.self), p)
    let draws = Tensor([0, 0, 1] as [Float]).multinomial(5, replacement: true).toArray(Int64.self)
    XCTAssertEqual(draws, [2, 2, 2, 2, 2])
    XCTAssertTrue(Tensor.randint(3, 7, [100]).toArray(Int64.self).allSatisfy { (3..<7).contains($0) })
  }

  func testAutogradNoGradAndDetach() {
    let x = Tensor([1, 2, 3] as [Float]).requiringGrad()
    (x * x).sum().backward()
    XCTAssertEqual(x.grad?.toArray(Float.self), [2, 4, 6])
    x.zeroGrad()
    XCTAssertNil(x.grad)
    let y = withNoGrad { x * 3 }
    XCTAssertFalse(y.requiresGrad)
    XCTAssertTrue(isGradEnabled)
    XCTAssertFalse(x.detach().requiresGrad)
  }

  func testZeroCopyReadAndLinearAlgebra() throws {
    let a = Tensor([3, 1, 1, 3] as [Float], shape: [2, 2])
    let total = try a.withUnsafeElements(Float.self) { $0.reduce(0, +) }
    XCTAssertEqual(total, 8)
    XCTAssertThrowsError(try a.T.withUnsafeElements(Float.self) { $0.count })
    let written = Tensor.filled([2, 3], Float.self) { buffer in
      for i in buffer.indices { buffer[i] = Float(i) }
    }
    XCTAssertEqual(written.toArray(Float.self), [0, 1, 2, 3, 4, 5])
    let (values, _) = a.eigh()
    XCTAssertEqual(values.toArray(Float.self)[0], 2, accuracy: 1e-5)
    XCTAssertEqual(a.svd().s.toArray(Float.self)[0], 4, accuracy: 1e-5)
  }

  func testThreads() {
    let previous = Runtime.threads
    Runtime.setThreads(1)
    XCTAssertEqual(Runtime.threads, 1)
    Runtime.setThreads(previous)
  }
}
