import Torch

/// calico's GELU approximation, sigmoid(1.702·x)·x (transformers' "quick_gelu").
@inline(__always)
func quickGELU(_ x: Tensor) -> Tensor { x * (x * 1.702).sigmoid() }

/// A pre-activation block: GELU, Conv1d ("same" padding, no bias), BatchNorm, max-pool.
/// Keys: `conv.weight`, `batch_norm.*`.
final class SCBassetConvLayer: Module, UnaryLayer {
  let conv: Conv1d
  let batchNorm: BatchNorm1d
  let poolSize: Int
  let pooling: SCBassetPooling
  /// Run as a channels-last [N, C, 1, L] 2-D convolution, batch norm and pool on the CPU (the stem).
  let channelsLast: Bool

  init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, poolSize: Int, config: SCBassetConfig,
       channelsLast: Bool = false) {
    conv = Conv1d(inChannels, outChannels, kernelSize: kernelSize, padding: kernelSize / 2, bias: false)
    batchNorm = BatchNorm1d(outChannels, eps: config.batchNormEps, momentum: config.batchNormMomentum)
    self.poolSize = poolSize
    pooling = config.pooling
    self.channelsLast = channelsLast
    super.init()
    registerModule("conv", conv)
    registerModule("batch_norm", batchNorm)
  }

  func callAsFunction(_ x: Tensor) -> Tensor {
    if channelsLast, x.device == .cpu { return channelsLastForward(x) }
    let y = batchNorm(conv(quickGELU(x)))
    guard poolSize > 1 else { return y }
    let (n, channels, length) = (y.size(0), y.size(1), y.size(2))
    if length % poolSize == 0, pooling == .keras || poolSize % 2 == 0 {
      // Windows that tile the length (no padding, no cut-short window): the max over a
      // [N, C, L/p, p] view, the same values and gradient as max_pool1d and about 30 % faster on
      // the CPU (max_pool1d with indices runs a scalar loop per window).
      return y.reshape([n, channels, length / poolSize, poolSize]).max(dim: 3).values
    }
    switch pooling {
    case .keras:
      // ceil mode with stride = kernel: the last window starts inside and is cut short, as Keras "same".
      return Functional.maxPool1d(y, kernelSize: poolSize, ceilMode: true)
    case .scviTools:
      return Functional.maxPool1d(y, kernelSize: poolSize, padding: (poolSize - 1) / 2)
    }
  }

  /// The same block on [N, C, 1, L] in channels-last layout, back to a contiguous [N, C', L'] after
  /// the pool. For the stem (4 input channels, the longest output) libtorch's channels-last
  /// kernels (oneDNN's brgemm convolution, the vectorised batch norm and max-pool) train this
  /// block about 1.5× faster (batch 128, 1 thread) than conv1d on [N, C, L], whose 4-channel case
  /// falls to oneDNN's im2col gemm and whose pool is a scalar loop; see BENCHMARKS.md (scBasset).
  /// The tower stays on [N, C, L]: oneDNN's blocked kernels beat its channels-last ones there.
  private func channelsLastForward(_ x: Tensor) -> Tensor {
    let h = quickGELU(x.unsqueeze(dim: 2).contiguous(memoryFormat: .channelsLast))
    var y = batchNorm(Functional.conv2d(h, weight: conv.weight.unsqueeze(dim: 2), bias: conv.bias,
                                        stride: (1, conv.stride), padding: (0, conv.padding),
                                        dilation: (1, conv.dilation), groups: conv.groups))
    if poolSize > 1 {
      switch pooling {
      case .keras:
        y = Functional.maxPool2d(y, kernelSize: (1, poolSize), ceilMode: true)
      case .scviTools:
        y = Functional.maxPool2d(y, kernelSize: (1, poolSize), padding: (0, (poolSize - 1) / 2))
      }
    }
    return y.contiguous().squeeze(dim: 2)
  }
}

/// Flatten, Dense without bias, BatchNorm, dropout. Keys: `dense.weight`, `batch_norm.*`.
final class SCBassetBottleneck: Module {
  let dense: Linear
  let batchNorm: BatchNorm1d
  let dropout: Dropout
  let flatten: SCBassetFlatten

  init(_ config: SCBassetConfig) {
    dense = Linear(config.bottleneckInputSize, config.bottleneckSize, bias: false)
    batchNorm = BatchNorm1d(config.bottleneckSize, eps: config.batchNormEps, momentum: config.batchNormMomentum)
    dropout = Dropout(config.hiddenDropout)
    flatten = config.flatten
    super.init()
    registerModule("dense", dense)
    registerModule("batch_norm", batchNorm)
    registerModule("dropout", dropout)
  }

  /// x: [N, C, L] → [N, bottleneck].
  func callAsFunction(_ x: Tensor) -> Tensor {
    let flat = flatten == .lengthMajor ? x.transpose(1, 2).flatten(startDim: 1) : x.flatten(startDim: 1)
    return dropout(batchNorm(dense(flat)))
  }
}

/// The convolutional encoder: stem, tower, pointwise convolution, GELU, bottleneck, GELU.
/// Keys: `layers.N.*`, `bottleneck.*` (multimolecule's `ScBassetEncoder`).
final class SCBassetEncoder: Module {
  let layers: Sequential
  let bottleneck: SCBassetBottleneck

  init(_ config: SCBassetConfig) {
    var blocks: [any UnaryLayer] = [
      SCBassetConvLayer(config.vocabSize, config.stemChannels, kernelSize: config.stemKernelSize,
                        poolSize: config.stemPoolSize, config: config, channelsLast: true)
    ]
    var channels = config.stemChannels
    for width in config.towerChannels {
      blocks.append(SCBassetConvLayer(channels, width, kernelSize: config.towerKernelSize,
                                      poolSize: config.towerPoolSize, config: config))
      channels = width
    }
    blocks.append(SCBassetConvLayer(channels, config.pointwiseChannels, kernelSize: 1, poolSize: 1, config: config))
    layers = Sequential(blocks.map { $0 })
    bottleneck = SCBassetBottleneck(config)
    super.init()
    registerModule("layers", layers)
    registerModule("bottleneck", bottleneck)
  }

  func callAsFunction(_ x: Tensor) -> Tensor { quickGELU(bottleneck(quickGELU(layers(x)))) }
}

/// The scBasset network (Yuan & Kelley 2022) with multimolecule's state-dict keys:
/// `model.encoder.layers.N.{conv.weight, batch_norm.*}`, `model.encoder.bottleneck.*`,
/// `sequence_head.decoder.{weight, bias}` (the cell embedding [cells, bottleneck] and cell bias),
/// plus `batch_embedding.weight` and `batch_ids` when `nBatch > 0` (scvi-tools' batch embedding,
/// added to each cell's embedding). scvi-tools checkpoints load through `loadCheckpoint`.
public final class SCBassetNetwork: Module {
  public let config: SCBassetConfig
  let encoder: SCBassetEncoder
  /// [cells, bottleneck]: row i is cell i's embedding (scvi-tools' `cell_embedding` transposed).
  public let cellEmbedding: Tensor
  /// [cells]
  public let cellBias: Tensor
  let batchEmbedding: Embedding?
  /// int64 [cells]: each cell's batch, when there is a batch embedding.
  let batchIDs: Tensor?

  public init(_ config: SCBassetConfig, batchIDs: [Int]? = nil) throws {
    try config.validate()
    if config.nBatch > 0 {
      guard let batchIDs, batchIDs.count == config.numLabels else {
        throw SCBassetError.invalidConfig("n_batch \(config.nBatch) needs one batch id per cell (\(config.numLabels))")
      }
      guard batchIDs.allSatisfy({ (0..<config.nBatch).contains($0) }) else {
        throw SCBassetError.invalidConfig("batch ids must lie in 0..<\(config.nBatch)")
      }
    }
    self.config = config
    encoder = SCBassetEncoder(config)
    // scvi-tools draws the cell embedding and bias from N(0, 1).
    let decoder = Linear(config.bottleneckSize, config.numLabels)
    withNoGrad {
      decoder.weight.copy_(Tensor.randn(decoder.weight.shape))
      decoder.bias!.copy_(Tensor.randn([config.numLabels]))
    }
    cellEmbedding = decoder.weight
    cellBias = decoder.bias!
    if config.nBatch > 0, let batchIDs {
      batchEmbedding = Embedding(config.nBatch, config.bottleneckSize)
      self.batchIDs = Tensor(batchIDs.map(Int64.init))
    } else {
      batchEmbedding = nil
      self.batchIDs = nil
    }
    super.init()
    let backbone = Module()
    backbone.registerModule("encoder", encoder)
    registerModule("model", backbone)
    let head = Module()
    head.registerModule("decoder", decoder)
    registerModule("sequence_head", head)
    if let batchEmbedding, let ids = self.batchIDs {
      registerModule("batch_embedding", batchEmbedding)
      registerBuffer("batch_ids", ids)
    }
  }

  /// The region embedding [N, bottleneck] of a one-hot input [N, vocabSize, sequenceLength].
  public func regionEmbedding(oneHot x: Tensor) -> Tensor { encoder(x) }

  /// Each cell's embedding including its batch's, [cells, bottleneck].
  public func effectiveCellEmbedding() -> Tensor {
    guard let batchEmbedding, let batchIDs else { return cellEmbedding }
    return cellEmbedding + batchEmbedding(batchIDs)
  }

  /// Accessibility logits [N, cells] from region embeddings [N, bottleneck].
  public func logits(regionEmbedding h: Tensor) -> Tensor {
    Functional.linear(h, weight: effectiveCellEmbedding(), bias: cellBias)
  }

  /// Logits [N, cells] of integer codes [N, L] (int64, 0…3 = ACGT, 4 = N); in training mode
  /// with the stochastic reverse complement and shift.
  public func callAsFunction(codes: Tensor) -> Tensor {
    let input = isTraining ? SCBassetInput.augment(codes, config: config) : codes
    return logits(regionEmbedding: regionEmbedding(oneHot: SCBassetInput.oneHot(input, config: config)))
  }

  /// Mean binary cross-entropy over regions × cells, plus `l2RegCellEmbedding` × mean(cell embedding²).
  public func loss(logits: Tensor, target: Tensor) -> Tensor {
    var loss = Functional.binaryCrossEntropyWithLogits(logits, target)
    if config.l2RegCellEmbedding > 0 {
      loss = loss + cellEmbedding.square().mean() * config.l2RegCellEmbedding
    }
    return loss
  }
}
