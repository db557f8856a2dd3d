import Foundation

/// Normal(loc, scale), with torch.distributions.Normal's formulas.
public struct Normal {
  public let loc: Tensor
  public let scale: Tensor

  public init(loc: Tensor, scale: Tensor) {
    self.loc = loc
    self.scale = scale
  }

  public func logProb(_ x: Tensor) -> Tensor {
    let variance = scale.square()
    return -((x - loc).square()) / (2 * variance) - scale.log() - Foundation.log((2 * Double.pi).squareRoot())
  }

  /// Reparameterised draw: loc + scale · ε.
  public func rsample() -> Tensor {
    let epsilon = withNoGrad { Tensor.randn(loc.shape, dtype: loc.dtype, device: loc.device) }
    return loc + scale * epsilon
  }
  public func sample() -> Tensor { withNoGrad { rsample() } }

  /// KL(self ‖ other), elementwise (torch's kl_divergence for two Normals).
  public func klDivergence(to other: Normal) -> Tensor {
    let varianceRatio = (scale / other.scale).square()
    let meanTerm = ((loc - other.loc) / other.scale).square()
    return 0.5 * (varianceRatio + meanTerm - 1 - varianceRatio.log())
  }
}

/// Negative binomial with mean `mu` and inverse dispersion `theta`, as scvi-tools'
/// `NegativeBinomial` (log-likelihood `log_nb_positive`, eps = 1e-8).
public struct NegativeBinomial {
  public let mu: Tensor
  public let theta: Tensor
  public let eps: Double

  public init(mu: Tensor, theta: Tensor, eps: Double = 1e-8) {
    self.mu = mu
    self.theta = theta
    self.eps = eps
  }

  public func logProb(_ x: Tensor) -> Tensor {
    if eps == 1e-8 && FusedCountLikelihood.applies(mu: mu, theta: theta, ziLogits: nil, x: x) {
      return FusedCountLikelihood.logProb(x: x, mu: mu, theta: theta, ziLogits: nil)
    }
    let logThetaMuEps = (theta + mu + eps).log()
    return theta * ((theta + eps).log() - logThetaMuEps)
      + x * ((mu + eps).log() - logThetaMuEps)
      + (x + theta).lgamma()
      - theta.lgamma()
      - (x + 1).lgamma()
  }

  public var mean: Tensor { mu }
  public var variance: Tensor { mu + mu.square() / theta }

  /// Gamma–Poisson draw (rate clamped at 1e8, as scvi-tools).
  public func sample() -> Tensor {
    withNoGrad {
      let gammaDraw = theta.expand(mu.shape).contiguous().standardGammaSample() / (theta / mu)
      return gammaDraw.clamp(max: 1e8).poissonSample()
    }
  }
}

/// Zero-inflated negative binomial: NB(mu, theta) mixed with a point mass at zero whose
/// logit is `ziLogits` (scvi-tools' `log_zinb_positive`, eps = 1e-8).
public struct ZeroInflatedNegativeBinomial {
  public let mu: Tensor
  public let theta: Tensor
  public let ziLogits: Tensor
  public let eps: Double

  public init(mu: Tensor, theta: Tensor, ziLogits: Tensor, eps: Double = 1e-8) {
    self.mu = mu
    self.theta = theta
    self.ziLogits = ziLogits
    self.eps = eps
  }

  public func logProb(_ x: Tensor) -> Tensor {
    if eps == 1e-8 && FusedCountLikelihood.applies(mu: mu, theta: theta, ziLogits: ziLogits, x: x) {
      return FusedCountLikelihood.logProb(x: x, mu: mu, theta: theta, ziLogits: ziLogits)
    }
    let pi = ziLogits
    let softplusPi = (-pi).softplus()
    let logThetaEps = (theta + eps).log()
    let logThetaMuEps = (theta + mu + eps).log()
    let piThetaLog = -pi + theta * (logThetaEps - logThetaMuEps)
    let caseZero = piThetaLog.softplus() - softplusPi
    let caseNonZero = -softplusPi + piThetaLog
      + x * ((mu + eps).log() - logThetaMuEps)
      + (x + theta).lgamma() - theta.lgamma() - (x + 1).lgamma()
    let isZero = x.lt(eps).to(caseZero.dtype)
    let isNonZero = x.gt(eps).to(caseZero.dtype)
    return isZero * caseZero + isNonZero * caseNonZero
  }

  public var zeroProbability: Tensor { ziLogits.sigmoid() }
  public var mean: Tensor { (1 - zeroProbability) * mu }

  public func sample() -> Tensor {
    withNoGrad {
      let counts = NegativeBinomial(mu: mu, theta: theta, eps: eps).sample()
      let isZero = Tensor.rand(mu.shape, dtype: mu.dtype, device: mu.device).le(zeroProbability)
      return counts.maskedFill(isZero, 0)
    }
  }
}

/// Poisson(rate), torch.distributions.Poisson's log-probability.
public struct Poisson {
  public let rate: Tensor
  public init(rate: Tensor) { self.rate = rate }

  public func logProb(_ x: Tensor) -> Tensor { x.xlogy(rate) - rate - (x + 1).lgamma() }
  public func sample() -> Tensor { withNoGrad { rate.poissonSample() } }
}
