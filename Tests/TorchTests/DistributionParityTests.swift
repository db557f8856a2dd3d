import XCTest

import Torch

/// NB / ZINB log-likelihoods match scvi-tools' `log_nb_positive` / `log_zinb_positive`,
/// Poisson and Normal match torch.distributions, values and gradients, over grids with
/// counts 0…1e5, means 1e-3…9e4 and theta 1e-4…1e4.
final class DistributionParityTests: XCTestCase {
  var fixture: Fixture!

  override func setUpWithError() throws { fixture = try Fixture("distributions.safetensors") }

  func testNegativeBinomial() {
    let mu = fixture["grid.mu"].clone().requiringGrad(), theta = fixture["grid.theta"].clone().requiringGrad()
    let logp = NegativeBinomial(mu: mu, theta: theta).logProb(fixture["grid.x"])
    assertClose(logp, fixture["nb.logp"], "NB log-likelihood")
    (logp * fixture["nb.upstream"]).sum().backward()
    assertClose(mu.grad!, fixture["nb.grad.mu"], "NB d/dmu")
    assertClose(theta.grad!, fixture["nb.grad.theta"], "NB d/dtheta")
  }

  func testZeroInflatedNegativeBinomial() {
    let mu = fixture["grid4.mu"].clone().requiringGrad(), theta = fixture["grid4.theta"].clone().requiringGrad()
    let pi = fixture["grid4.pi"].clone().requiringGrad()
    let logp = ZeroInflatedNegativeBinomial(mu: mu, theta: theta, ziLogits: pi).logProb(fixture["grid4.x"])
    assertClose(logp, fixture["zinb.logp"], "ZINB log-likelihood")
    (logp * fixture["zinb.upstream"]).sum().backward()
    assertClose(mu.grad!, fixture["zinb.grad.mu"], "ZINB d/dmu")
    assertClose(theta.grad!, fixture["zinb.grad.theta"], "ZINB d/dtheta")
    assertClose(pi.grad!, fixture["zinb.grad.pi"], "ZINB d/dlogits")
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
