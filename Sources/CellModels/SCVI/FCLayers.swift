import Torch

/// scvi-tools' `FCLayers`: `nLayers` blocks "Layer i" = Sequential(Linear, BatchNorm1d?,
/// LayerNorm?, ReLU?, Dropout?), absent entries keeping their index so state-dict keys
/// match (`fc_layers.Layer 0.0.weight`, `fc_layers.Layer 0.1.running_mean`).
///
/// Categorical covariates (one-hot, categories with one level ignored) are concatenated to
/// the input of the first linear layer, and of every layer when `injectCovariates`.
final class FCLayers: Module {
  /// Number of categories per covariate as used (1 becomes 0: no information).
  let categoryCounts: [Int]
  let injectCovariates: Bool
  let blocks: [Sequential]
  let linears: [Linear]

  init(nIn: Int, nOut: Int, categoryCounts: [Int] = [], nLayers: Int = 1, nHidden: Int = 128,
       dropoutRate: Double = 0.1, useBatchNorm: Bool = true, useLayerNorm: Bool = false,
       useActivation: Bool = true, bias: Bool = true, injectCovariates: Bool = true) {
    self.categoryCounts = categoryCounts.map { $0 > 1 ? $0 : 0 }
    self.injectCovariates = injectCovariates
    let nCovariates = self.categoryCounts.reduce(0, +)
    let dims = [nIn] + Array(repeating: nHidden, count: nLayers - 1) + [nOut]
    var blocks: [Sequential] = []
    var linears: [Linear] = []
    for i in 0..<nLayers {
      let injected = i == 0 || injectCovariates
      let linear = Linear(dims[i] + (injected ? nCovariates : 0), dims[i + 1], bias: bias)
      // BatchNorm's momentum 0.01 and eps 1e-3 are scvi-tools' (from the TensorFlow original).
      let layers: [(any UnaryLayer)?] = [
        linear,
        useBatchNorm ? BatchNorm1d(dims[i + 1], eps: 1e-3, momentum: 0.01) : nil,
        useLayerNorm ? LayerNorm(dims[i + 1], elementwiseAffine: false) : nil,
        useActivation ? ReLU() : nil,
        dropoutRate > 0 ? Dropout(dropoutRate) : nil,
      ]
      blocks.append(Sequential(layers))
      linears.append(linear)
    }
    self.blocks = blocks
    self.linears = linears
    super.init()
    registerModule("fc_layers", Sequential(named: blocks.enumerated().map { ("Layer \($0.offset)", $0.element) }))
  }

  /// `categories[k]`: int64 indices [N] or [N, 1] for covariate k.
  func callAsFunction(_ x: Tensor, categories: [Tensor] = []) -> Tensor {
    let oneHots = zip(categoryCounts, categories).compactMap { count, index -> Tensor? in
      guard count > 1 else { return nil }
      let flat = index.rank == 2 ? index.squeeze(dim: -1) : index
      return flat.oneHot(count).to(x.dtype)
    }
    var h = x
    for (i, block) in blocks.enumerated() {
      if !oneHots.isEmpty && (i == 0 || injectCovariates) { h = Tensor.cat([h] + oneHots, dim: -1) }
      for layer in block.layers { if let layer { h = layer(h) } }
    }
    return h
  }
}

/// Softmax over the last dimension as a parameter-free layer (torch.nn.Softmax(dim=-1)).
final class SoftmaxLayer: Module, UnaryLayer {
  override init() {}
  func callAsFunction(_ x: Tensor) -> Tensor { x.softmax(dim: -1) }
}
