import Foundation
import Torch

/// How max-pooling handles a length that the pool size does not divide.
public enum SCBassetPooling: String, Sendable, Codable {
  /// Keras `MaxPool1D(padding="same")` as multimolecule ports calico: ⌈L / p⌉ outputs, the last
  /// window cut short on the right.
  case keras
  /// scvi-tools: `nn.MaxPool1d(p, padding=(p - 1) / 2)`, ⌊(L + 2·pad − p) / p⌋ + 1 outputs
  /// (for p = 3 the windows start one base earlier than Keras').
  case scviTools = "scvi-tools"
}

/// The order in which the [C, L] output of the last convolution is flattened for the bottleneck.
public enum SCBassetFlatten: String, Sendable, Codable {
  /// Keras channels-last: position-major (calico, multimolecule).
  case lengthMajor = "length-major"
  /// `view(N, -1)` of [N, C, L]: channel-major (scvi-tools).
  case channelMajor = "channel-major"
}

/// Hyperparameters of the scBasset network, with multimolecule `ScBassetConfig`'s names (as
/// JSON keys too) and defaults: the calico architecture for 1344-bp peaks.
public struct SCBassetConfig: Sendable, Codable, Equatable {
  /// Input channels: 4 (A, C, G, T, as calico and scvi-tools) or 5 (A, C, G, T, N, multimolecule).
  public var vocabSize: Int = 5
  public var sequenceLength: Int = 1344
  public var stemChannels: Int = 288
  public var stemKernelSize: Int = 17
  public var stemPoolSize: Int = 3
  /// calico's `conv_tower(288, 1.122, 6)`: round(288 · 1.122^i).
  public var towerChannels: [Int] = SCBassetConfig.calicoTower(filtersInit: 288, filtersMult: 1.122, repeat: 6)
  public var towerKernelSize: Int = 5
  public var towerPoolSize: Int = 2
  public var pointwiseChannels: Int = 256
  public var bottleneckSize: Int = 32
  public var hiddenDropout: Double = 0.2
  public var batchNormEps: Double = 1e-3
  public var batchNormMomentum: Double = 0.1
  /// The number of cells (the width of the cell-embedding layer).
  public var numLabels: Int = 2034
  /// Batches of a batch embedding added to the cell embedding (scvi-tools); 0 for none.
  public var nBatch: Int = 0
  public var pooling: SCBassetPooling = .keras
  public var flatten: SCBassetFlatten = .lengthMajor
  /// With 4 channels, the value an N (code 4) gets in every channel: 0.25 as calico's uniform N
  /// and the shift padding of calico and scvi-tools; multimolecule's 4-channel input gives 0.
  public var nFill: Float = 0.25
  /// Training-time augmentation: reverse complement with probability 1/2 and a shift drawn
  /// uniformly in −maxShift…maxShift, one draw per minibatch (calico, scvi-tools: 3).
  public var maxShift: Int = 3
  public var reverseComplement: Bool = true
  /// Weight of the mean squared cell embedding added to the loss (scvi-tools' `l2_reg_cell_embedding`).
  public var l2RegCellEmbedding: Double = 0

  enum CodingKeys: String, CodingKey {
    case vocabSize = "vocab_size", sequenceLength = "sequence_length", stemChannels = "stem_channels"
    case stemKernelSize = "stem_kernel_size", stemPoolSize = "stem_pool_size", towerChannels = "tower_channels"
    case towerKernelSize = "tower_kernel_size", towerPoolSize = "tower_pool_size"
    case pointwiseChannels = "pointwise_channels", bottleneckSize = "bottleneck_size"
    case hiddenDropout = "hidden_dropout", batchNormEps = "batch_norm_eps"
    case batchNormMomentum = "batch_norm_momentum", numLabels = "num_labels", nBatch = "n_batch"
    case pooling, flatten, nFill = "n_fill", maxShift = "max_shift", reverseComplement = "reverse_complement"
    case l2RegCellEmbedding = "l2_reg_cell_embedding"
  }

  public init(numLabels: Int = 2034) { self.numLabels = numLabels }

  /// Reads a config; keys it lacks keep their defaults (so a multimolecule config.json loads).
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
      try c.decodeIfPresent(T.self, forKey: key) ?? fallback
    }
    let d = SCBassetConfig()
    vocabSize = try value(.vocabSize, d.vocabSize)
    sequenceLength = try value(.sequenceLength, d.sequenceLength)
    stemChannels = try value(.stemChannels, d.stemChannels)
    stemKernelSize = try value(.stemKernelSize, d.stemKernelSize)
    stemPoolSize = try value(.stemPoolSize, d.stemPoolSize)
    towerChannels = try value(.towerChannels, d.towerChannels)
    towerKernelSize = try value(.towerKernelSize, d.towerKernelSize)
    towerPoolSize = try value(.towerPoolSize, d.towerPoolSize)
    pointwiseChannels = try value(.pointwiseChannels, d.pointwiseChannels)
    bottleneckSize = try value(.bottleneckSize, d.bottleneckSize)
    hiddenDropout = try value(.hiddenDropout, d.hiddenDropout)
    batchNormEps = try value(.batchNormEps, d.batchNormEps)
    batchNormMomentum = try value(.batchNormMomentum, d.batchNormMomentum)
    numLabels = try value(.numLabels, d.numLabels)
    nBatch = try value(.nBatch, d.nBatch)
    pooling = try value(.pooling, d.pooling)
    flatten = try value(.flatten, d.flatten)
    nFill = try value(.nFill, d.nFill)
    maxShift = try value(.maxShift, d.maxShift)
    reverseComplement = try value(.reverseComplement, d.reverseComplement)
    l2RegCellEmbedding = try value(.l2RegCellEmbedding, d.l2RegCellEmbedding)
  }

  /// calico's tower widths: round(filtersInit · filtersMult^i), i = 0..<repeat.
  public static func calicoTower(filtersInit: Int, filtersMult: Double, repeat count: Int) -> [Int] {
    (0..<count).map { i in Int((Double(filtersInit) * pow(filtersMult, Double(i))).rounded(.toNearestOrEven)) }
  }

  /// scvi-tools' tower widths: the first is `filtersInit`, each next is round(previous · filtersMult)
  /// (it rounds step by step, so 288 gives 288, 323, 362, 406, 456, 512 rather than calico's 363, 407).
  public static func scviToolsTower(filtersInit: Int, filtersMult: Double, repeat count: Int) -> [Int] {
    var widths: [Int] = []
    var current = filtersInit
    for i in 0..<count {
      if i > 0 { current = Int((Double(current) * filtersMult).rounded(.toNearestOrEven)) }
      widths.append(current)
    }
    return widths
  }

  /// scvi-tools' `ScBassetModule` network for `nCells` cells (4 channels, its pooling and
  /// flatten order, 1344 bp: its bottleneck assumes 7 positions).
  public static func scviTools(nCells: Int, nBatch: Int = 0, filtersInit: Int = 288, repeatBlocks: Int = 6,
                               filtersMult: Double = 1.122, preBottleneck: Int = 256, bottleneck: Int = 32,
                               l2RegCellEmbedding: Double = 0) -> SCBassetConfig {
    var c = SCBassetConfig(numLabels: nCells)
    c.vocabSize = 4
    c.stemChannels = filtersInit
    c.towerChannels = scviToolsTower(filtersInit: filtersInit, filtersMult: filtersMult, repeat: repeatBlocks)
    c.pointwiseChannels = preBottleneck
    c.bottleneckSize = bottleneck
    c.nBatch = nBatch
    c.pooling = .scviTools
    c.flatten = .channelMajor
    c.l2RegCellEmbedding = l2RegCellEmbedding
    return c
  }

  /// The length after one pooling of size `pool`.
  func pooledLength(_ length: Int, pool: Int) -> Int {
    guard pool > 1 else { return length }
    switch pooling {
    case .keras: return (length + pool - 1) / pool
    case .scviTools: return (length + 2 * ((pool - 1) / 2) - pool) / pool + 1
    }
  }

  /// Positions left after the stem and the tower.
  public var convOutputLength: Int {
    var length = pooledLength(sequenceLength, pool: stemPoolSize)
    for _ in towerChannels { length = pooledLength(length, pool: towerPoolSize) }
    return length
  }

  /// The bottleneck's input width: positions × pointwise channels (1792 for the defaults).
  public var bottleneckInputSize: Int { convOutputLength * pointwiseChannels }

  /// Checks a config that came with `weights` (from a file) before the network is built: sizes
  /// in range, valid, and no more weights implied than `weights` hold (`impliedWeightsFit`; the
  /// blocks are the network's convolutions and dense layers).
  func check(against weights: StateDict) throws {
    try validate()
    let channels = [stemChannels] + towerChannels
    let fits = impliedWeightsFit(sizes: sizes, blocks: {
      [[stemChannels, vocabSize, stemKernelSize], [pointwiseChannels, channels.last!],
       [bottleneckSize, convOutputLength, pointwiseChannels], [numLabels + nBatch, bottleneckSize]]
        + zip(channels, towerChannels).map { [$0, $1, towerKernelSize] }
    }, weights: weights)
    guard fits else {
      throw SCBassetError.checkpoint("the config (\(sequenceLength) bp, \(channels.count) convolutions, \(numLabels) cells) implies more weights than the file holds (\(weights.valueCount) values)")
    }
  }

  /// The sizes of the config, each at most `maxModelDimension` in a valid one.
  private var sizes: [Int] {
    [vocabSize, sequenceLength, stemChannels, stemKernelSize, stemPoolSize, towerKernelSize, towerPoolSize,
     pointwiseChannels, bottleneckSize, numLabels, nBatch] + towerChannels
  }

  func validate() throws {
    func bad(_ m: String) -> SCBassetError { .invalidConfig(m) }
    // First, so that the lengths below cannot overflow.
    guard sizes.allSatisfy({ $0 <= maxModelDimension }) else { throw bad("a size of the config is beyond \(maxModelDimension)") }
    guard vocabSize == 4 || vocabSize == 5 else { throw bad("vocab_size must be 4 (ACGT) or 5 (ACGTN), got \(vocabSize)") }
    guard sequenceLength > 0 else { throw bad("sequence_length must be positive, got \(sequenceLength)") }
    let widths = [stemChannels, pointwiseChannels, bottleneckSize, numLabels] + towerChannels
    guard widths.allSatisfy({ $0 > 0 }) else { throw bad("channel counts, bottleneck_size and num_labels must be positive") }
    for (name, k) in [("stem_kernel_size", stemKernelSize), ("tower_kernel_size", towerKernelSize)] {
      guard k > 0, k % 2 == 1 else { throw bad("\(name) must be odd and positive (\"same\" padding), got \(k)") }
    }
    guard stemPoolSize > 0, towerPoolSize > 0 else { throw bad("pool sizes must be positive") }
    guard hiddenDropout >= 0, hiddenDropout < 1 else { throw bad("hidden_dropout must be in [0, 1), got \(hiddenDropout)") }
    guard nBatch >= 0, maxShift >= 0, l2RegCellEmbedding >= 0 else {
      throw bad("n_batch, max_shift and l2_reg_cell_embedding must not be negative")
    }
    guard convOutputLength > 0 else { throw bad("sequence_length \(sequenceLength) is too short for the pooling") }
  }
}
