import Foundation
import Torch

/// SCBASSET.train's arguments, with scvi-tools' defaults.
public struct SCBassetTrainingOptions {
  public var maxEpochs = 1000
  /// Adam with betas (0.95, 0.9995), as scvi-tools (and calico's Keras Adam).
  public var learningRate = 0.01
  public var batchSize = 128
  /// Fraction of regions to train on (nil: scvi-tools' 0.9, the rest validation).
  public var trainSize: Double?
  public var validationSize: Double?
  /// Seed of the region split (numpy's RandomState, as scvi-tools' `settings.seed`).
  public var splitSeed: UInt32 = 0
  /// Seeds libtorch (shuffling, augmentation, dropout) when set.
  public var seed: UInt64?
  /// scvi-tools: stop when `auroc_train` has not risen by 1e-6 for `patience` epochs.
  public var earlyStopping = true
  public var earlyStoppingMonitor = "auroc_train"
  public var patience = 45
  public var minDelta = 1e-6
  public var device: Device = .cpu
  public var progress = false
  /// Where the last good state goes if training diverges.
  public var checkpoint: URL?
  /// Data-parallel training over this group (docs/distributed.md), as scVI's: each rank trains
  /// on its DistributedSampler shard of the training regions, DDP averages the gradients, and
  /// the epoch's metrics (loss, AUROC) are region-weighted means over every rank's minibatches.
  /// Rank 0 writes the last good state.
  public var processGroup: ProcessGroup?

  public init(maxEpochs: Int = 1000) { self.maxEpochs = maxEpochs }
}

extension SCBASSET {
  /// Trains on minibatches of regions; returns the history (`train_loss`, `auroc_train`,
  /// `validation_loss`, `auroc_validation` per epoch; AUROCs are minibatch means weighted by
  /// size, as scvi-tools logs them; `epoch_seconds` is the wall time of the epoch).
  @discardableResult
  public func train(_ options: SCBassetTrainingOptions = SCBassetTrainingOptions()) throws -> TrainingHistory {
    let data = try requireData("training")
    guard options.batchSize > 0, options.learningRate > 0 else {
      throw SCBassetError.invalidInput("batch size and learning rate must be positive")
    }
    if let seed = options.seed { Runtime.seed(seed) }
    let split = try DataSplit.random(count: data.regionCount, trainSize: options.trainSize,
                                     validationSize: options.validationSize, batchSize: options.batchSize,
                                     seed: options.splitSeed)
    self.split = split
    device = options.device
    network.to(device)
    let group = options.processGroup, rank = group?.rank ?? 0
    let shards = try DataParallelShards(group: group, streamed: false, split: split, batchSize: options.batchSize,
                                        seed: options.seed ?? UInt64(options.splitSeed), streaming: StreamingLoader.Options())
    let ddp = try group.map { try DistributedDataParallel(network, group: $0, findUnusedParameters: true) }
    let optimizer = Adam(network.parameters, learningRate: options.learningRate, betas: (0.95, 0.9995))
    let stopping = options.earlyStopping
      ? EarlyStopping(monitor: options.earlyStoppingMonitor, mode: options.earlyStoppingMonitor.contains("loss") ? .min : .max,
                      patience: options.patience, minDelta: options.minDelta)
      : nil
    let label = group.map { "scbasset (\($0.worldSize) ranks)" } ?? "scbasset"
    let trainer = try Trainer(options: .init(maxEpochs: options.maxEpochs, earlyStopping: stopping,
                                             checkpoint: rank == 0 ? options.checkpoint : nil,
                                             progress: options.progress && rank == 0, label: label))
    let trained = try trainer.fit(network) { epoch in
      let start = Date()
      let shard = shards.trainingCells(epoch: epoch)  // already shuffled by the sampler
      let train = try withTorchErrors {
        try trainEpoch(data, regions: shard ?? split.train, shuffle: shard == nil, optimizer: optimizer, ddp: ddp,
                       batchSize: options.batchSize)
      }.reduced(over: group)
      var metrics: EpochMetrics = ["train_loss": train.loss, "auroc_train": train.auroc]
      if !split.validation.isEmpty {
        let validation = try withTorchErrors { evaluateLoss(data, regions: shards.validation, batchSize: options.batchSize) }
          .reduced(over: group)
        metrics["validation_loss"] = validation.loss
        metrics["auroc_validation"] = validation.auroc
      }
      metrics["epoch_seconds"] = Date().timeIntervalSince(start)
      return metrics
    }
    history = TrainingHistory(epochs: history.epochs + trained.epochs)
    network.eval()
    replicaDifference = try ddp?.maxParameterDifference()
    return trained
  }

  private func trainEpoch(_ data: SCBassetData, regions: [Int], shuffle: Bool, optimizer: Adam, ddp: DistributedDataParallel?,
                          batchSize: Int) throws -> SCBassetEpochMetrics {
    network.train()
    var metrics = SCBassetEpochMetrics()
    for batch in minibatchPositions(regions, batchSize: batchSize, shuffle: shuffle) {
      let (codes, target) = data.batch(batch, device: device)
      try ddp?.prepareForward()
      let logits = network(codes: codes)
      let loss = network.loss(logits: logits, target: target)
      optimizer.zeroGrad()
      if let ddp { try ddp.backward(loss) } else { loss.backward() }
      optimizer.step()
      metrics.add(loss: loss.item(), logits: logits, target: target, size: batch.count)
    }
    return metrics
  }

  private func evaluateLoss(_ data: SCBassetData, regions: [Int], batchSize: Int) -> SCBassetEpochMetrics {
    network.eval()
    defer { network.train() }
    return withNoGrad {
      var metrics = SCBassetEpochMetrics()
      for batch in minibatchPositions(regions, batchSize: batchSize, shuffle: false) {
        let (codes, target) = data.batch(batch, device: device)
        let logits = network(codes: codes)
        metrics.add(loss: network.loss(logits: logits, target: target).item(), logits: logits, target: target,
                    size: batch.count)
      }
      return metrics
    }
  }
}
