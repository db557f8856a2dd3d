import Torch

/// scvi-tools' `Encoder`: FCLayers to `nHidden`, then linear heads for the mean and the
/// variance of a diagonal normal, variance = exp(·) + 1e-4. Children: encoder,
/// mean_encoder, var_encoder.
final class Encoder: Module {
  static let varianceEpsilon = 1e-4

  let encoder: FCLayers
  let meanEncoder: Linear
  let varEncoder: Linear
  let distribution: LatentDistribution

  init(nInput: Int, nOutput: Int, categoryCounts: [Int], nLayers: Int, nHidden: Int, dropoutRate: Double,
       distribution: LatentDistribution = .normal, injectCovariates: Bool, useBatchNorm: Bool, useLayerNorm: Bool) {
    encoder = FCLayers(nIn: nInput, nOut: nHidden, categoryCounts: categoryCounts, nLayers: nLayers,
                       nHidden: nHidden, dropoutRate: dropoutRate, useBatchNorm: useBatchNorm,
                       useLayerNorm: useLayerNorm, injectCovariates: injectCovariates)
    meanEncoder = Linear(nHidden, nOutput)
    varEncoder = Linear(nHidden, nOutput)
    self.distribution = distribution
    super.init()
    registerModule("encoder", encoder)
    registerModule("mean_encoder", meanEncoder)
    registerModule("var_encoder", varEncoder)
  }

  /// The posterior q(·|x) as a Normal with scale √variance.
  func callAsFunction(_ x: Tensor, categories: [Tensor]) -> (mean: Tensor, variance: Tensor) {
    let hidden = encoder(x, categories: categories)
    return (meanEncoder(hidden), varEncoder(hidden).exp() + Self.varianceEpsilon)
  }

  /// The latent value for an untransformed draw (softmax for the logistic normal).
  func transform(_ draw: Tensor) -> Tensor {
    distribution == .logisticNormal ? draw.softmax(dim: -1) : draw
  }
}
