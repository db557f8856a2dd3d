import Torch

/// What a VAE decoder produces for a batch of cells.
struct DecodedParameters {
  /// Normalised expression (rows sum to 1 with softmax).
  var scale: Tensor
  /// Per-cell θ before exp, only for gene-cell dispersion.
  var cellDispersion: Tensor?
  /// exp(library) · scale.
  var rate: Tensor
  /// Zero-inflation logits.
  var dropoutLogits: Tensor
}

protocol VAEDecoder: Module {
  func decode(_ z: Tensor, library: Tensor, categories: [Tensor], dispersion: Dispersion) -> DecodedParameters
}

/// scvi-tools' `DecoderSCVI`: FCLayers (no dropout) then heads for the softmax scale,
/// the gene-cell dispersion and the zero-inflation logits. Children: px_decoder,
/// px_scale_decoder (Sequential(Linear, Softmax)), px_r_decoder, px_dropout_decoder.
final class DecoderSCVI: Module, VAEDecoder {
  let pxDecoder: FCLayers
  let pxScaleDecoder: Sequential
  let pxRDecoder: Linear
  let pxDropoutDecoder: Linear

  init(nInput: Int, nOutput: Int, categoryCounts: [Int], nLayers: Int, nHidden: Int, injectCovariates: Bool,
       useBatchNorm: Bool, useLayerNorm: Bool) {
    pxDecoder = FCLayers(nIn: nInput, nOut: nHidden, categoryCounts: categoryCounts, nLayers: nLayers,
                         nHidden: nHidden, dropoutRate: 0, useBatchNorm: useBatchNorm, useLayerNorm: useLayerNorm,
                         injectCovariates: injectCovariates)
    pxScaleDecoder = Sequential(Linear(nHidden, nOutput), SoftmaxLayer())
    pxRDecoder = Linear(nHidden, nOutput)
    pxDropoutDecoder = Linear(nHidden, nOutput)
    super.init()
    registerModule("px_decoder", pxDecoder)
    registerModule("px_scale_decoder", pxScaleDecoder)
    registerModule("px_r_decoder", pxRDecoder)
    registerModule("px_dropout_decoder", pxDropoutDecoder)
  }

  func decode(_ z: Tensor, library: Tensor, categories: [Tensor], dispersion: Dispersion) -> DecodedParameters {
    let hidden = pxDecoder(z, categories: categories)
    let scale = pxScaleDecoder(hidden)
    return DecodedParameters(
      scale: scale, cellDispersion: dispersion == .geneCell ? pxRDecoder(hidden) : nil,
      rate: library.exp() * scale, dropoutLogits: pxDropoutDecoder(hidden))
  }
}

/// scvi-tools' `LinearDecoderSCVI` (LDVAE): two single-layer FCLayers without activation or
/// dropout, `factor_regressor` (softmax → scale) and `px_dropout_decoder` (zero-inflation).
final class LinearDecoderSCVI: Module, VAEDecoder {
  let factorRegressor: FCLayers
  let pxDropoutDecoder: FCLayers
  let nBatchColumns: Int

  init(nInput: Int, nOutput: Int, categoryCounts: [Int], useBatchNorm: Bool, bias: Bool) {
    func make() -> FCLayers {
      FCLayers(nIn: nInput, nOut: nOutput, categoryCounts: categoryCounts, nLayers: 1, dropoutRate: 0,
               useBatchNorm: useBatchNorm, useLayerNorm: false, useActivation: false, bias: bias)
    }
    factorRegressor = make()
    pxDropoutDecoder = make()
    nBatchColumns = factorRegressor.categoryCounts.reduce(0, +)
    super.init()
    registerModule("factor_regressor", factorRegressor)
    registerModule("px_dropout_decoder", pxDropoutDecoder)
  }

  func decode(_ z: Tensor, library: Tensor, categories: [Tensor], dispersion: Dispersion) -> DecodedParameters {
    let scale = factorRegressor(z, categories: categories).softmax(dim: -1)
    return DecodedParameters(
      scale: scale, cellDispersion: nil, rate: library.exp() * scale,
      dropoutLogits: pxDropoutDecoder(z, categories: categories))
  }

  /// The gene × latent loadings as scvi-tools' `get_loadings`: the linear weight scaled per
  /// gene by γ / √(running_var + eps) when batch norm is used, batch columns dropped.
  func loadings() -> Tensor {
    withNoGrad {
      var weight = factorRegressor.linears[0].weight.detach()
      if let norm = factorRegressor.blocks[0].layers[1] as? BatchNorm1d,
        let gamma = norm.weight, let runningVar = norm.runningVar
      {
        weight = (gamma / (runningVar + norm.eps).sqrt()).unsqueeze(dim: 1) * weight
      }
      let nLatent = weight.size(1) - nBatchColumns
      return weight.narrow(dim: 1, start: 0, length: nLatent).contiguous()
    }
  }
}
