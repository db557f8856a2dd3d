import Torch

/// torch.utils.data.DistributedSampler's split of a data set over the ranks of a
/// data-parallel job: each epoch the items are permuted by a seed + epoch generator (the same
/// on every rank), padded by repeating the first ones to a multiple of the world size, and
/// rank r takes every world-size-th item from r. Every rank thus gets the same number of
/// items, so every rank runs the same number of steps. The permutation is numpy's
/// `RandomState(seed + epoch).permutation` (torch's draws from its own generator).
public struct DistributedSampler: Sendable, Equatable {
  public let count: Int
  public let rank: Int
  public let worldSize: Int
  public let seed: UInt64
  public let shuffle: Bool

  public init(count: Int, rank: Int, worldSize: Int, seed: UInt64 = 0, shuffle: Bool = true) throws {
    guard worldSize >= 1, rank >= 0, rank < worldSize else {
      throw TrainingError.invalidOptions("rank \(rank) is outside 0..<\(worldSize)")
    }
    guard count > 0 else { throw TrainingError.invalidOptions("cannot shard an empty data set") }
    self.count = count
    self.rank = rank
    self.worldSize = worldSize
    self.seed = seed
    self.shuffle = shuffle
  }

  /// Items per rank: ⌈count / worldSize⌉.
  public var shardSize: Int { (count + worldSize - 1) / worldSize }

  /// This rank's positions (into 0..<count) for `epoch`, in the order to visit them.
  public func shard(epoch: Int) -> [Int] {
    var order = Array(0..<count)
    if shuffle {
      var rng = NumpyRandomState(seed: UInt32(truncatingIfNeeded: seed &+ UInt64(epoch)))
      order = rng.permutation(count)
    }
    return Self.strided(order, rank: rank, worldSize: worldSize, padded: true)
  }

  /// This rank's positions of a held-out set: every world-size-th from rank, unpadded, so
  /// sums over the ranks count each item once.
  public static func evaluationShard(count: Int, rank: Int, worldSize: Int) -> [Int] {
    strided(Array(0..<count), rank: rank, worldSize: worldSize, padded: false)
  }

  /// Items rank, rank + worldSize, … of `items`. `padded`: the list is first padded to a
  /// multiple of worldSize by repeating its first items, so every rank gets ⌈count / worldSize⌉
  /// (for training: every rank runs the same number of steps).
  public static func strided<T>(_ items: [T], rank: Int, worldSize: Int, padded: Bool) -> [T] {
    var all = items
    if padded && !items.isEmpty {
      let total = (items.count + worldSize - 1) / worldSize * worldSize
      while all.count < total { all += items.prefix(total - all.count) }
    }
    return stride(from: rank, to: all.count, by: worldSize).map { all[$0] }
  }
}

/// What one rank of a data-parallel run trains and validates on, the same rule for every model:
/// in memory a DistributedSampler shard of the training cells, reshuffled per epoch, and an
/// evaluation shard of the validation cells; streamed, its share of the row blocks
/// (`StreamingLoader.Shard`). Without a group, every cell, as a single process.
struct DataParallelShards {
  /// This rank's validation cells (all of them when streamed: the loader shards the blocks).
  let validation: [Int]
  let trainStreaming: StreamingLoader.Options
  let validationStreaming: StreamingLoader.Options
  private let sampler: DistributedSampler?
  private let train: [Int]
  private let batchSize: Int

  init(group: ProcessGroup?, streamed: Bool, split: DataSplit, batchSize: Int, seed: UInt64,
       streaming: StreamingLoader.Options) throws {
    train = split.train
    self.batchSize = batchSize
    var trainStreaming = streaming, validationStreaming = streaming
    if let group, streamed {
      trainStreaming.shard = .init(rank: group.rank, worldSize: group.worldSize)
      validationStreaming.shard = .init(rank: group.rank, worldSize: group.worldSize, equalize: false)
    }
    self.trainStreaming = trainStreaming
    self.validationStreaming = validationStreaming
    sampler = try group.flatMap { g in
      streamed ? nil : try DistributedSampler(count: split.train.count, rank: g.rank, worldSize: g.worldSize, seed: seed)
    }
    validation = group.flatMap { g in
      streamed ? nil
        : DistributedSampler.evaluationShard(count: split.validation.count, rank: g.rank, worldSize: g.worldSize).map { split.validation[$0] }
    } ?? split.validation
  }

  /// This rank's training cells for `epoch`, in the sampler's order (the same permutation on
  /// every rank); nil when the rank trains on the whole training split (no group, or streamed).
  func trainingCells(epoch: Int) -> [Int]? {
    sampler.map { Self.withoutTinyLastBatch($0.shard(epoch: epoch), batchSize: batchSize).map { train[$0] } }
  }

  /// A shard without a last minibatch of 1 or 2 cells (which breaks batch norm), as DataSplit's
  /// rule does for single-process training; every rank drops the same count.
  static func withoutTinyLastBatch(_ shard: [Int], batchSize: Int) -> [Int] {
    let remainder = shard.count % batchSize
    return shard.count > batchSize && remainder > 0 && remainder < 3 ? Array(shard.dropLast(remainder)) : shard
  }
}
