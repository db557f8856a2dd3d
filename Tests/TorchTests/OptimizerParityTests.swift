import XCTest

import Torch

/// Adam/AdamW trajectories, grad clipping and LR schedules match PyTorch 2.11.
final class OptimizerParityTests: XCTestCase {
  var fixture: Fixture!

  override func setUpWithError() throws { fixture = try Fixture("optim.safetensors") }

  /// Ten steps on loss = ‖A·p − b‖², compared with torch after every step.
  func checkTrajectory(_ name: String, clip: Double? = nil, file: StaticString = #filePath, line: UInt = #line,
                       makeOptimizer: ([Tensor]) -> any Optimizer) {
    let a = fixture["problem.a"], b = fixture["problem.b"]
    let p = fixture["problem.p0"].clone().requiringGrad()
    let optimizer = makeOptimizer([p])
    let expected = fixture["\(name).trajectory"]
    for step in 0..<10 {
      optimizer.zeroGrad()
      (a.matmul(p) - b).square().sum().backward()
      if let clip { clipGradNorm([p], maxNorm: clip) }
      optimizer.step()
      assertClose(p, expected[step], "\(name) step \(step + 1)", file: file, line: line)
    }
  }

  func testAdamDefaults() { checkTrajectory("adam") { Adam($0, learningRate: 1e-2) } }
  func testAdamWithScviToolsSettings() {
    checkTrajectory("adam_scvi") { Adam($0, learningRate: 1e-3, eps: 0.01, weightDecay: 1e-6) }
  }
  func testAdamWDefaults() { checkTrajectory("adamw") { AdamW($0, learningRate: 1e-2) } }
  func testAdamAMSGrad() { checkTrajectory("adam_amsgrad") { Adam($0, learningRate: 5e-2, amsgrad: true) } }
  /// The fused CPU update's baseline x86-64 build (for CPUs without AVX2) follows torch too.
  func testAdamBaselineBuild() {
    let avx2 = Runtime.avx2Kernels
    Runtime.avx2Kernels = false
    defer { Runtime.avx2Kernels = avx2 }
    testAdamWithScviToolsSettings()
    testAdamWDefaults()
    testAdamAMSGrad()
  }
  func testGradNormClipping() { checkTrajectory("adam_clip", clip: 0.5) { Adam($0, learningRate: 1e-2) } }

  func testStepLR() {
    let optimizer = Adam([Tensor.zeros([1]).requiringGrad()], learningRate: 1)
    let schedule = StepLR(optimizer, stepSize: 3, gamma: 0.5)
    var rates: [Double] = []
    for _ in 0..<10 {
      schedule.step()
      rates.append(optimizer.learningRate)
    }
    XCTAssertEqual(rates, fixture["steplr.lrs"].toArray(Double.self))
  }

  func testReduceLROnPlateau() {
    let optimizer = Adam([Tensor.zeros([1]).requiringGrad()], learningRate: 1)
    let schedule = ReduceLROnPlateau(optimizer, factor: 0.6, patience: 2, threshold: 0, cooldown: 1,
                                     minLearningRate: 0.1)
    var rates: [Double] = []
    for metric in fixture["plateau.metrics"].toArray(Double.self) {
      schedule.step(metric)
      rates.append(optimizer.learningRate)
    }
    let expected = fixture["plateau.lrs"].toArray(Double.self)
    XCTAssertEqual(rates.count, expected.count)
    for (r, e) in zip(rates, expected) { XCTAssertEqual(r, e, accuracy: 1e-12) }
    XCTAssertLessThan(rates.last!, 1, "the schedule must have reduced the rate at least once")
  }

  func testFrozenParameterIsNotUpdated() {
    let frozen = Tensor([1, 2, 3] as [Float]).requiringGrad()
    let trained = Tensor([1, 2, 3] as [Float]).requiringGrad()
    let optimizer = Adam([frozen, trained], learningRate: 0.1)
    (trained * 2).sum().backward()
    optimizer.step()
    XCTAssertEqual(frozen.toArray(Float.self), [1, 2, 3])
    XCTAssertNotEqual(trained.toArray(Float.self), [1, 2, 3])
  }
}
