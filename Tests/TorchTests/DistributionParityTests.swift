import XCTest

import Torch

/// NB / ZINB log-likelihoods match scvi-tools' `log_nb_positive` / `log_zinb_positive`,
/// Poisson and Normal match torch.distributions, values and gradients, over grids with
/// counts 0…1e5, means 1e-3…9e4 and theta 1e-4…1e4. Float32 NB/ZINB on the CPU go through the
/// fused kernel, which evaluates in double: it is held to scvi-tools' float64 results.
final class DistributionParityTests: XCTestCase {
  var fixture: Fixture!

  override func setUpWithError() throws { fixture = try Fixture("distributions.safetensors") }

  func testNegativeBinomial() {
    let mu = fixture["grid.mu"].clone().requiringGrad(), theta = fixture["grid.theta"].clone().requiringGrad()
    let logp = NegativeBinomial(mu: mu, theta: theta).logProb(fixture["grid.x"])
    assertClose(logp, fixture["nb64.logp"], rtol: 1e-6, atol: 1e-6, "NB log-likelihood")
    (logp * fixture["nb.upstream"]).sum().backward()
    assertClose(mu.grad!, fixture["nb64.grad.mu"], rtol: 1e-6, atol: 1e-6, "NB d/dmu")
    assertClose(theta.grad!, fixture["nb64.grad.theta"], rtol: 1e-6, atol: 1e-6, "NB d/dtheta")
  }

  /// The composite formula (the path on CUDA and for other dtypes) in float64.
  func testNegativeBinomialCompositeFloat64() {
    let mu = fixture["grid.mu"].to(.float64).requiringGrad(), theta = fixture["grid.theta"].to(.float64).requiringGrad()
    let logp = NegativeBinomial(mu: mu, theta: theta).logProb(fixture["grid.x"].to(.float64))
    assertClose(logp, fixture["nb64.logp"], rtol: 1e-9, atol: 1e-9, "NB log-likelihood (float64)")
    (logp * fixture["nb.upstream"].to(.float64)).sum().backward()
    assertClose(mu.grad!, fixture["nb64.grad.mu"], rtol: 1e-9, atol: 1e-9, "NB d/dmu (float64)")
    assertClose(theta.grad!, fixture["nb64.grad.theta"], rtol: 1e-9, atol: 1e-9, "NB d/dtheta (float64)")
  }

  func testZeroInflatedNegativeBinomial() {
    let mu = fixture["grid4.mu"].clone().requiringGrad(), theta = fixture["grid4.theta"].clone().requiringGrad()
    let pi = fixture["grid4.pi"].clone().requiringGrad()
    let logp = ZeroInflatedNegativeBinomial(mu: mu, theta: theta, ziLogits: pi).logProb(fixture["grid4.x"])
    assertClose(logp, fixture["zinb64.logp"], rtol: 1e-6, atol: 1e-6, "ZINB log-likelihood")
    (logp * fixture["zinb.upstream"]).sum().backward()
    assertClose(mu.grad!, fixture["zinb64.grad.mu"], rtol: 1e-6, atol: 1e-6, "ZINB d/dmu")
    assertClose(theta.grad!, fixture["zinb64.grad.theta"], rtol: 1e-6, atol: 1e-6, "ZINB d/dtheta")
    assertClose(pi.grad!, fixture["zinb64.grad.pi"], rtol: 1e-6, atol: 1e-6, "ZINB d/dlogits")
  }

  func testZeroInflatedNegativeBinomialCompositeFloat64() {
    let mu = fixture["grid4.mu"].to(.float64).requiringGrad(), theta = fixture["grid4.theta"].to(.float64).requiringGrad()
    let pi = fixture["grid4.pi"].to(.float64).requiringGrad()
    let logp = ZeroInflatedNegativeBinomial(mu: mu, theta: theta, ziLogits: pi).logProb(fixture["grid4.x"].to(.float64))
    assertClose(logp, fixture["zinb64.logp"], rtol: 1e-9, atol: 1e-9, "ZINB log-likelihood (float64)")
    (logp * fixture["zinb.upstream"].to(.float64)).sum().backward()
    assertClose(mu.grad!, fixture["zinb64.grad.mu"], rtol: 1e-9, atol: 1e-9, "ZINB d/dmu (float64)")
    assertClose(theta.grad!, fixture["zinb64.grad.theta"], rtol: 1e-9, atol: 1e-9, "ZINB d/dtheta (float64)")
    assertClose(pi.grad!, fixture["zinb64.grad.pi"], rtol: 1e-9, atol: 1e-9, "ZINB d/dlogits (float64)")
  }

  /// On scVI-shaped inputs (a per-gene theta broadcast over cells, sparse counts) the float32
  /// kernel agrees with the float64 composite formula, values and gradients.
  func testFusedKernelOnPerGeneTheta() {
    Runtime.seed(11)
    let cells = 64, genes = 50
    let x = (Tensor.rand([cells, genes]) * 3).exp().poissonSample() * Tensor.rand([cells, genes]).gt(0.7).to(.float32)
    let mu = (Tensor.randn([cells, genes]) * 2).exp(), theta = (Tensor.randn([genes])).exp()
    let pi = Tensor.randn([cells, genes]), upstream = Tensor.randn([cells, genes])
    func run(_ dtype: DType) -> [Tensor] {
      let m = mu.to(dtype).detach().requiringGrad(), t = theta.to(dtype).detach().requiringGrad()
      let p = pi.to(dtype).detach().requiringGrad()
      let zinb = ZeroInflatedNegativeBinomial(mu: m, theta: t, ziLogits: p).logProb(x.to(dtype))
      let nb = NegativeBinomial(mu: m, theta: t).logProb(x.to(dtype))
      ((zinb + nb) * upstream.to(dtype)).sum().backward()
      return [zinb, nb, m.grad!, t.grad!, p.grad!]
    }
    let fused = run(.float32), exact = run(.float64)
    XCTAssertEqual(fused[3].shape, [genes])
    for (name, (a, e)) in zip(["ZINB", "NB", "d/dmu", "d/dtheta", "d/dlogits"], zip(fused, exact)) {
      assertClose(a, e, rtol: 1e-5, atol: 1e-4, name)
    }
  }

  /// The kernel's baseline x86-64 build (for CPUs without AVX2) meets the same float64 targets.
  func testFusedKernelBaselineBuild() {
    let avx2 = Runtime.avx2Kernels
    Runtime.avx2Kernels = false
    defer { Runtime.avx2Kernels = avx2 }
    XCTAssertFalse(Runtime.avx2Kernels)
    testNegativeBinomial()
    testZeroInflatedNegativeBinomial()
    testFusedKernelOnPerGeneTheta()
  }

  /// Split over two threads, the kernel gives exactly the one-thread result (rows and genes
  /// cut into chunks, an odd number of each).
  func testFusedKernelIsThreadCountIndependent() {
    Runtime.seed(12)
    let cells = 203, genes = 517
    let x = (Tensor.rand([cells, genes]) * 3).exp().poissonSample() * Tensor.rand([cells, genes]).gt(0.8).to(.float32)
    let mu = (Tensor.randn([cells, genes]) * 2).exp(), theta = Tensor.randn([genes]).exp()
    let pi = Tensor.randn([cells, genes]), upstream = Tensor.randn([cells, genes])
    func run(threads: Int) -> [[Float]] {
      let saved = Runtime.threads
      Runtime.setThreads(threads)
      defer { Runtime.setThreads(saved) }
      let m = mu.clone().requiringGrad(), t = theta.clone().requiringGrad(), p = pi.clone().requiringGrad()
      let logp = ZeroInflatedNegativeBinomial(mu: m, theta: t, ziLogits: p).logProb(x)
      (logp * upstream).sum().backward()
      return [logp, m.grad!, t.grad!, p.grad!].map { $0.toArray(Float.self) }
    }
    let one = run(threads: 1), two = run(threads: 2)
    for (name, (a, b)) in zip(["log-likelihood", "d/dmu", "d/dtheta", "d/dlogits"], zip(one, two)) {
      XCTAssertEqual(a, b, name)
    }
  }

  func testPoisson() {
    let rate = fixture["poisson.rate"].clone().requiringGrad()
    let logp = Poisson(rate: rate).logProb(fixture["poisson.x"])
    assertClose(logp, fixture["poisson.logp"], "Poisson log-likelihood")
    (logp * fixture["poisson.upstream"]).sum().backward()
    assertClose(rate.grad!, fixture["poisson.grad.rate"], "Poisson d/drate")
  }

  func testNormalLogProbAndKL() {
    let loc = fixture["normal.loc"].clone().requiringGrad(), scale = fixture["normal.scale"].clone().requiringGrad()
    let q = Normal(loc: loc, scale: scale)
    let logp = q.logProb(fixture["normal.value"])
    let kl = q.klDivergence(to: Normal(loc: Tensor.zeros([4, 3]), scale: Tensor.ones([4, 3])))
    assertClose(logp, fixture["normal.logp"], "Normal log-probability")
    assertClose(kl, fixture["normal.kl"], "KL to N(0,1)")
    (logp * fixture["normal.upstream"] + kl).sum().backward()
    assertClose(loc.grad!, fixture["normal.grad.loc"], "d/dloc")
    assertClose(scale.grad!, fixture["normal.grad.scale"], "d/dscale")
  }

  func testSamplersHaveTheRightMeans() {
    Runtime.seed(3)
    let mu = Tensor.full([20000], 4), theta = Tensor.full([20000], 2)
    let nb = NegativeBinomial(mu: mu, theta: theta).sample()
    XCTAssertEqual(nb.mean().item(), 4, accuracy: 0.15)  // sd of the mean ≈ √(4+8)/√20000 ≈ 0.025
    let zinb = ZeroInflatedNegativeBinomial(mu: mu, theta: theta, ziLogits: Tensor.zeros([20000])).sample()
    XCTAssertEqual(zinb.mean().item(), 2, accuracy: 0.12)
    XCTAssertEqual(Normal(loc: Tensor.full([20000], 1), scale: Tensor.full([20000], 2)).sample().mean().item(), 1,
                   accuracy: 0.1)
  }
}
