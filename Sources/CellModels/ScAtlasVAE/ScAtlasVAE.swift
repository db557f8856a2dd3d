import CellData
import Foundation
import Torch

/// scAtlasVAE over an AnnData (WanluLiuLab/scAtlasVAE, PyPI `scatlasvae`): atlas
/// integration with several batch keys, cell-type heads and query transfer.
///
///     let setup = try ScAtlasVAESetup(adata, batchKeys: ["sample", "study"], labelKeys: ["cell_type"])
///     let model = try ScAtlasVAE(adata, setup: setup)
///     try model.train()
///     let latent = try model.latent()                 // q_mu, [cells, 10]
///     let predicted = try model.predictLabels()       // per label key
public final class ScAtlasVAE {
  public internal(set) var setup: ScAtlasVAESetup
  public internal(set) var module: ScAtlasVAENetwork
  public internal(set) var history = TrainingHistory()
  public internal(set) var trainSeconds = 0.0
  public internal(set) var epochSeconds: [Double] = []
  /// After data-parallel training: the largest difference between any rank's parameters and
  /// rank 0's (0 when the replicas stayed identical); nil otherwise.
  public internal(set) var replicaDifference: Double?
  public internal(set) var split: DataSplit?
  var cells: AtlasCells
  /// Parameters training leaves unchanged (transfer with a frozen encoder), by identity.
  var frozen: [ObjectIdentifier] = []
  /// Parameters partly kept (transfer): after each step the values where the mask is 0 are
  /// restored from the saved copy, so neither gradients nor weight decay move them.
  var kept: [(parameter: Tensor, mask: Tensor, original: Tensor)] = []
  /// Keep the encoder in eval mode while training (frozen BatchNorm statistics, no dropout).
  var frozenEncoder = false

  public var config: ScAtlasVAEConfig { module.config }
  /// Where the network runs; minibatches are moved there.
  public var device: Device { module.parameters.first?.device ?? .cpu }

  /// Moves the network to `device`.
  public func to(_ device: Device) throws {
    try withTorchErrors { module.to(device) }
  }
  public var isTrained: Bool { !history.epochs.isEmpty }
  /// The obsm key the CLI writes the latent to.
  public static let latentKey = "X_scAtlasVAE"

  /// - Parameter architecture: every field but the category counts and nInput, which come from `setup`.
  public init(_ adata: AnnData, setup: ScAtlasVAESetup, architecture: ScAtlasVAEConfig? = nil) throws {
    let config = setup.config(architecture)
    let cells = try AtlasCells(adata, setup: setup, reconstruction: config.reconstruction)
    if config.latentConstraint != nil {
      guard let target = cells.latentTarget else {
        throw SCVIModelError.setup("a latent constraint needs setup.latentTargetKey (an obsm embedding)")
      }
      guard target.width == config.nLatent else {
        throw SCVIModelError.setup("obsm '\(setup.latentTargetKey!)' has \(target.width) columns; the latent has \(config.nLatent)")
      }
    }
    self.setup = setup
    self.cells = cells
    module = try ScAtlasVAENetwork(config: config)
  }

  /// A model on cells that stay on disk (`BackedH5AD` or `BackedCollection`), whose obs and var
  /// are `metadata`; counts stream by row blocks in training and in the outputs on these cells.
  public init(streaming source: RowBlockSource, metadata: AnnData, setup: ScAtlasVAESetup,
              architecture: ScAtlasVAEConfig? = nil) throws {
    let config = setup.config(architecture)
    guard config.latentConstraint == nil else {
      throw SCVIModelError.setup("a latent constraint needs the cells in memory (not --backed)")
    }
    cells = try AtlasCells(streaming: source, metadata: metadata, setup: setup, reconstruction: config.reconstruction)
    self.setup = setup
    module = try ScAtlasVAENetwork(config: config)
  }

  /// Whether the registered cells stream from disk.
  public var isStreaming: Bool { cells.isStreaming }

  init(setup: ScAtlasVAESetup, module: ScAtlasVAENetwork, cells: AtlasCells) {
    self.setup = setup
    self.module = module
    self.cells = cells
  }

  // MARK: - Training

  /// The reference's `fit` settings, with its defaults.
  public struct TrainingOptions {
    /// nil: the reference's heuristic min(round(20000 / n_cells · 400), 400).
    public var maxEpochs: Int?
    public var learningRate = 5e-5
    public var weightDecay = 1e-6
    public var batchSize = 128
    public var validationFraction = 0.2
    public var klWeight = 1.0
    public var predictionWeight = 1.0
    public var mmdWeight = 1.0
    public var gateWeight = 1.0
    public var constraintWeight = 1.0
    /// Epochs of linear KL warm-up (capped at maxEpochs); nil for none.
    public var klWarmupEpochs: Int? = 400
    /// The label heads are trained in the last this many epochs only.
    public var predictionLastEpochs = 10
    public var reduceLROnPlateau = false
    public var lrFactor = 0.6
    public var lrPatience = 30
    public var lrThreshold = 0.0
    public var lrMin = 1e-6
    public var seed: UInt64 = 0
    public var progress = false
    public var checkpoint: URL?
    /// Write a resumable checkpoint here every `every` epochs and after the last.
    public var periodicCheckpoint: (url: URL, every: Int)?
    /// Continue the run saved in this checkpoint (same data, architecture, options and seed).
    public var resume: TrainingCheckpoint?
    /// Block and buffer sizes when the cells stream from disk (the seed is `seed`).
    public var streaming = StreamingLoader.Options()
    /// Data-parallel training over this group, as scVI's (torch DDP semantics): each rank trains
    /// on its DistributedSampler shard of the training cells (streamed: its share of the blocks)
    /// with `batchSize` cells per step, DDP's Reducer averages the gradients, and the epoch's
    /// metrics are per-cell means over every rank's cells.
    public var processGroup: ProcessGroup?

    public init(maxEpochs: Int? = nil, learningRate: Double = 5e-5, batchSize: Int = 128, seed: UInt64 = 0,
                progress: Bool = false) {
      self.maxEpochs = maxEpochs
      self.learningRate = learningRate
      self.batchSize = batchSize
      self.seed = seed
      self.progress = progress
    }
  }

  public static func defaultMaxEpochs(cells n: Int) -> Int { SCVIModel.defaultMaxEpochs(cells: n) }

  /// Trains with AdamW on the registered cells. One validation split for the whole run
  /// (the reference redraws it every epoch, so its validation cells are trained on) and
  /// validation in eval mode (the reference validates in training mode, moving the
  /// BatchNorm statistics). History columns per epoch: `<term>_train` and
  /// `<term>_validation` for reconstruction, kl, prediction, mmd, gate and constraint
  /// losses, plus train_loss, validation_loss, elbo_validation and kl_weight.
  @discardableResult
  public func train(_ options: TrainingOptions = TrainingOptions()) throws -> TrainingHistory {
    try train(options, cells: nil)
  }

  /// Training on a subset of the registered cells (`cells`, all when nil).
  @discardableResult
  func train(_ options: TrainingOptions, cells subset: [Int]?) throws -> TrainingHistory {
    Runtime.seed(options.seed)
    guard options.batchSize > 1 else { throw TrainingError.invalidOptions("batch size must be at least 2 (BatchNorm)") }
    let pool = subset ?? Array(0..<cells.count)
    let split = try Self.split(pool, validationFraction: options.validationFraction, batchSize: options.batchSize,
                               seed: UInt32(truncatingIfNeeded: options.seed))
    let maxEpochs = options.maxEpochs ?? Self.defaultMaxEpochs(cells: pool.count)
    let weights = cells.classWeights(config: config, cells: pool)
    let group = options.processGroup
    var streaming = options.streaming
    streaming.seed = options.seed
    let shards = try DataParallelShards(group: group, streamed: cells.isStreaming, split: split, batchSize: options.batchSize,
                                        seed: options.seed, streaming: streaming)
    let parameters = module.parameters.filter { !frozen.contains(ObjectIdentifier($0)) }
    let optimizer = AdamW(parameters, learningRate: options.learningRate, weightDecay: options.weightDecay)
    var prior = TrainingHistory()
    if let resume = options.resume {
      // The plateau schedule's counters are not in the checkpoint.
      guard !options.reduceLROnPlateau else { throw TrainingError.invalidOptions("resuming a run with ReduceLROnPlateau is not supported") }
      try resume.checkResumable(model: "scatlasvae", seed: options.seed)
      try resume.restore(module, optimizer: optimizer, seed: options.seed)
      prior = resume.history
      history = resume.history
    }
    var schedule: LearningRateSchedule?
    if options.reduceLROnPlateau {
      schedule = .plateau(
        ReduceLROnPlateau(optimizer, mode: .min, factor: options.lrFactor, patience: options.lrPatience,
                          threshold: options.lrThreshold, thresholdMode: .absolute, minLearningRate: options.lrMin),
        monitor: split.validation.isEmpty ? "train_loss" : "validation_loss")
    }
    // Wraps the network after it was moved and loaded: every rank starts from rank 0's state.
    // Frozen or unused parts (a frozen encoder, the label heads before their epochs) get no
    // gradient, so unused parameters are searched for.
    let ddp = try group.map { try DistributedDataParallel(module, group: $0, parameters: parameters, findUnusedParameters: true) }
    let rank = group?.rank ?? 0
    var trainerOptions = Trainer.Options(maxEpochs: maxEpochs, schedule: schedule, checkpoint: rank == 0 ? options.checkpoint : nil,
                                         progress: options.progress, label: group.map { "atlas (\($0.worldSize) ranks)" } ?? "atlas")
    if let (url, every) = options.periodicCheckpoint, rank == 0 {
      let info = ["model": "scatlasvae", "seed": String(options.seed), "batch_size": String(options.batchSize),
                  "world_size": String(group?.worldSize ?? 1)]
      trainerOptions.onEpochEnd = try TrainingCheckpoint.periodicWriter(to: url, every: every, maxEpochs: maxEpochs) {
        [unowned self] epoch, history in
        TrainingCheckpoint(epochs: epoch + 1, step: 0, history: history, model: module.stateDict(),
                           optimizer: optimizer.stateDict(), info: info, random: Runtime.randomState())
      }
    }
    let trainer = try Trainer(options: trainerOptions)
    let warmup = KLWarmup(epochs: options.klWarmupEpochs.map { Swift.min($0, maxEpochs) }, maxWeight: options.klWeight)
    defer { module.eval() }
    try trainer.fit(module, resuming: prior) { epoch in
      let klWeight = warmup.weight(epoch: epoch, step: 0)
      let withLabels = epoch >= maxEpochs - options.predictionLastEpochs
      module.train()
      if frozenEncoder { for block in module.encoderBlocks { block.eval() } }
      var totals = AtlasEpochTotals(labelHeads: !config.nLabels.isEmpty)
      let shard = shards.trainingCells(epoch: epoch)  // already shuffled by the sampler
      try cells.forEachMinibatch(shard ?? split.train, batchSize: options.batchSize, shuffle: shard == nil, epoch: epoch,
                                 streaming: shards.trainStreaming) { batch in
        let input = batch.to(device), n = input.x.size(0)
        try ddp?.prepareForward()
        let terms = try module.losses(input, sample: true, classWeights: weights, computeMMD: options.mmdWeight > 0).losses
        let loss = objective(terms, options: options, klWeight: klWeight, withLabels: withLabels, cells: n)
        optimizer.zeroGrad()
        if let ddp { try ddp.backward(loss) } else { loss.backward() }
        optimizer.step()
        restoreKeptValues()
        totals.add(terms, loss: loss, cells: n)
      }
      var metrics = try totals.metrics(suffix: "train", over: group)
      metrics["kl_weight"] = klWeight
      if !split.validation.isEmpty {
        module.eval()
        var validation = AtlasEpochTotals(labelHeads: !config.nLabels.isEmpty)
        try withNoGrad {
          try cells.forEachMinibatch(shards.validation, batchSize: options.batchSize, shuffle: false,
                                     streaming: shards.validationStreaming) { batch in
            let n = batch.x.size(0)
            let terms = try module.losses(batch.to(device), sample: true, classWeights: weights,
                                          computeMMD: options.mmdWeight > 0).losses
            validation.add(terms, loss: objective(terms, options: options, klWeight: klWeight, withLabels: withLabels,
                                                  cells: n), cells: n)
          }
        }
        metrics.merge(try validation.metrics(suffix: "validation", over: group)) { $1 }
      }
      return metrics
    }
    replicaDifference = try ddp?.maxParameterDifference()
    history = TrainingHistory(epochs: history.epochs + trainer.history.epochs)
    trainSeconds += trainer.seconds
    epochSeconds = trainer.epochSeconds
    self.split = split
    return trainer.history
  }

  /// The reference's training objective on one minibatch, averaged over its cells (the
  /// reference divides by the nominal batch size, also for a smaller last minibatch). The
  /// label heads count in the last epochs only, averaged over the heads.
  private func objective(_ terms: AtlasLosses, options: TrainingOptions, klWeight: Double, withLabels: Bool, cells n: Int)
    -> Tensor
  {
    let count = Double(n)
    var loss = terms.reconstruction.sum() / count + terms.kl.sum() / count * klWeight
      + terms.mmd * (options.mmdWeight / count) + terms.gate * options.gateWeight
    if withLabels && !terms.prediction.isEmpty {
      loss = loss + terms.prediction.dropFirst().reduce(terms.prediction[0], +) * (options.predictionWeight / Double(terms.prediction.count))
    }
    if config.latentConstraint != nil { loss = loss + terms.latentConstraint * options.constraintWeight }
    return loss
  }

  private func restoreKeptValues() {
    guard !kept.isEmpty else { return }
    withNoGrad {
      for (parameter, mask, original) in kept {
        parameter.copy_(parameter * mask + original.to(parameter.device) * (1 - mask.to(parameter.device)))
      }
    }
  }

  /// A fixed validation split of `pool` (numpy's RandomState permutation, validation first);
  /// a 1-cell last training minibatch, which BatchNorm cannot take, moves to validation.
  static func split(_ pool: [Int], validationFraction: Double, batchSize: Int, seed: UInt32) throws -> DataSplit {
    guard validationFraction >= 0, validationFraction < 1 else {
      throw TrainingError.invalidOptions("validation fraction must be in [0, 1), got \(validationFraction)")
    }
    guard pool.count >= 2 else { throw TrainingError.invalidOptions("training needs at least 2 cells, got \(pool.count)") }
    var rng = NumpyRandomState(seed: seed)
    let order = rng.permutation(pool.count).map { pool[$0] }
    var nValidation = Int((validationFraction * Double(pool.count)).rounded(.down))
    if (pool.count - nValidation) % batchSize == 1 { nValidation += 1 }
    return DataSplit(train: Array(order[nValidation...]), validation: Array(order[..<nValidation]))
  }
}

/// Sums of the loss terms over an epoch, read once at its end.
struct AtlasEpochTotals {
  /// The terms summed, the same on every rank (a rank may have no validation cells).
  let names: [String]
  private var sums: [String: Tensor] = [:]
  private var cells = 0

  init(labelHeads: Bool) {
    names = ["constraint_loss", "gate_loss", "kl_loss", "loss", "mmd_loss", "reconstruction_loss"]
      + (labelHeads ? ["prediction_loss"] : [])
  }

  mutating func add(_ terms: AtlasLosses, loss: Tensor, cells n: Int) {
    let count = Double(n)
    var parts: [String: Tensor] = [
      "reconstruction_loss": terms.reconstruction.detach().sum(), "kl_loss": terms.kl.detach().sum(),
      "mmd_loss": terms.mmd.detach(), "gate_loss": terms.gate.detach() * count,
      "constraint_loss": terms.latentConstraint.detach() * count, "loss": loss.detach() * count,
    ]
    if !terms.prediction.isEmpty {
      parts["prediction_loss"] = terms.prediction.dropFirst().reduce(terms.prediction[0], +).detach() * count
    }
    for (name, value) in parts { sums[name] = sums[name].map { $0 + value } ?? value }
    cells += n
  }

  /// Per-cell means; `train_loss`/`validation_loss` for the objective and elbo = reconstruction + KL;
  /// with a process group, of the sums over every rank (each rank has the same terms).
  func metrics(suffix: String, over group: ProcessGroup? = nil) throws -> EpochMetrics {
    var values = names.map { sums[$0]?.item() ?? 0 } + [Double(cells)]
    if let group { values = try group.allReduce(values, .sum) }
    guard let total = values.last, total > 0 else { return [:] }
    var metrics: EpochMetrics = [:]
    for (name, sum) in zip(names, values) { metrics["\(name)_\(suffix)"] = sum / total }
    metrics["\(suffix)_loss"] = metrics.removeValue(forKey: "loss_\(suffix)")
    metrics["elbo_\(suffix)"] = (metrics["reconstruction_loss_\(suffix)"] ?? 0) + (metrics["kl_loss_\(suffix)"] ?? 0)
    return metrics
  }
}
