import CellData
import Foundation
import Torch

/// scVI or LDVAE over an AnnData, as scvi-tools' `SCVI` / `LinearSCVI` models: set up the
/// data, train, then read latent representations, normalized expression, likelihoods,
/// samples and differential expression.
///
///     let setup = try SCVISetup(adata, layer: "counts", batchKey: "batch")
///     let model = try SCVIModel(adata, setup: setup)
///     try model.train()
///     let latent = try model.latentRepresentation()
public final class SCVIModel {
  public enum Kind: String, Codable, Sendable, CaseIterable {
    case scvi, ldvae
    /// scvi-tools' obsm key for the latent representation in tutorials.
    public var latentKey: String { self == .scvi ? "X_scVI" : "X_ldvae" }
  }

  /// Network size and likelihood; nil fields take the kind's default (scVI: zinb with the
  /// observed library size; LDVAE: nb with a latent library size).
  public struct Architecture: Sendable {
    public var nHidden = 128
    public var nLatent = 10
    public var nLayers = 1
    public var dropoutRate = 0.1
    public var dispersion: Dispersion = .gene
    public var geneLikelihood: GeneLikelihood?
    public var latentDistribution: LatentDistribution = .normal
    public var useObservedLibSize: Bool?

    public init(nHidden: Int = 128, nLatent: Int = 10, nLayers: Int = 1, dropoutRate: Double = 0.1,
                dispersion: Dispersion = .gene, geneLikelihood: GeneLikelihood? = nil,
                latentDistribution: LatentDistribution = .normal, useObservedLibSize: Bool? = nil) {
      self.nHidden = nHidden
      self.nLatent = nLatent
      self.nLayers = nLayers
      self.dropoutRate = dropoutRate
      self.dispersion = dispersion
      self.geneLikelihood = geneLikelihood
      self.latentDistribution = latentDistribution
      self.useObservedLibSize = useObservedLibSize
    }

    func config(kind: Kind, nInput: Int, nBatch: Int, nLabels: Int) -> VAEConfig {
      switch kind {
      case .scvi:
        return VAEConfig(
          nInput: nInput, nBatch: nBatch, nLabels: nLabels, nHidden: nHidden, nLatent: nLatent, nLayers: nLayers,
          dropoutRate: dropoutRate, dispersion: dispersion, geneLikelihood: geneLikelihood ?? .zinb,
          latentDistribution: latentDistribution, useObservedLibSize: useObservedLibSize ?? true)
      case .ldvae:
        return VAEConfig.ldvae(
          nInput: nInput, nBatch: nBatch, nLabels: nLabels, nHidden: nHidden, nLatent: nLatent, nLayers: nLayers,
          dropoutRate: dropoutRate, dispersion: dispersion, geneLikelihood: geneLikelihood ?? .nb,
          latentDistribution: latentDistribution, useObservedLibSize: useObservedLibSize ?? false)
      }
    }
  }

  public let kind: Kind
  public internal(set) var setup: SCVISetup
  public internal(set) var module: VAE
  public internal(set) var history = TrainingHistory()
  /// Seconds spent in `train`, and how training ended.
  public internal(set) var trainSeconds = 0.0
  /// Seconds of each epoch of the last `train` call.
  public internal(set) var epochSeconds: [Double] = []
  public internal(set) var stopReason: String?
  /// Cells seen by optimizer steps in all `train` calls (a cell counts once per epoch).
  public internal(set) var trainedCells = 0
  /// Why outputs on the setup cells are unavailable (a folder of a model trained with
  /// streaming keeps no counts); nil when they are available.
  var setupCellsUnavailable: String?
  /// After data-parallel training: the largest difference between any rank's parameters and
  /// rank 0's (0 when the replicas stayed identical); nil otherwise.
  public internal(set) var replicaDifference: Double?
  /// The cells `train` held out for validation (positions in the setup AnnData).
  public internal(set) var split: DataSplit?
  /// The registered AnnData's cells (none when they stream from disk).
  var cells: RegisteredCells
  /// The setup cells when they stream from a backed file (`init(streaming:…)`).
  var streamed: StreamedCells?
  /// Parameters training leaves unchanged (query mapping freezes the reference's weights).
  var gradientMasks: [(Tensor, Tensor)] = []

  /// Where the network runs; minibatches are moved there.
  public private(set) var device: Device = .cpu

  public var config: VAEConfig { module.config }

  /// Moves the network to `device`.
  public func to(_ device: Device) throws {
    try withTorchErrors { module.to(device) }
    self.device = device
  }
  public var isTrained: Bool { !history.epochs.isEmpty }

  public init(_ adata: AnnData, setup: SCVISetup, kind: Kind = .scvi, architecture: Architecture = Architecture()) throws {
    let config = architecture.config(
      kind: kind, nInput: setup.geneNames.count, nBatch: setup.batchCategories.count, nLabels: setup.labelCategories.count)
    let cells = try RegisteredCells(adata, setup: setup, config: config)
    var prior: (means: [Float], vars: [Float])?
    if !config.useObservedLibSize {
      prior = try VAE.libraryLogPrior(librarySizes: cells.counts.rowSums(), batchIndices: cells.batchCodes,
                                      nBatch: config.nBatch)
    }
    self.kind = kind
    self.setup = setup
    self.cells = cells
    module = try VAE(config: config, libraryLogMeans: prior?.means, libraryLogVars: prior?.vars)
  }

  /// A model around an existing network (loading, query mapping).
  init(kind: Kind, setup: SCVISetup, module: VAE, cells: RegisteredCells) {
    self.kind = kind
    self.setup = setup
    self.module = module
    self.cells = cells
  }

  // MARK: - Training

  public struct TrainingOptions {
    /// nil: scvi-tools' heuristic min(round(20000 / n_cells · 400), 400).
    public var maxEpochs: Int?
    public var learningRate = 1e-3
    public var weightDecay = 1e-6
    public var eps = 0.01
    public var batchSize = 128
    /// nil: 0.9, with scvi-tools' rule that moves a 1–2 cell last batch to validation.
    public var trainSize: Double?
    public var validationSize: Double?
    public var earlyStopping = false
    public var earlyStoppingPatience = 45
    public var earlyStoppingMonitor = "elbo_validation"
    /// Epochs of linear KL warm-up (scvi-tools' n_epochs_kl_warmup, default 400); nil for none.
    public var klWarmupEpochs: Int? = 400
    public var reduceLROnPlateau = false
    public var lrFactor = 0.6
    public var lrPatience = 30
    public var lrThreshold = 0.0
    public var lrMin = 0.0
    /// Seeds libtorch and the train/validation split (scvi-tools' `settings.seed`).
    public var seed: UInt64 = 0
    public var progress = false
    /// Where the last good state goes if training diverges.
    public var checkpoint: URL?
    /// Stop after this many optimizer steps in all (Lightning's max_steps); the epoch it ends
    /// in is recorded with the minibatches it had.
    public var maxSteps: Int?
    /// Block and buffer sizes and read-ahead of a streamed model's loader (its batch size,
    /// shuffling and seed come from these options).
    public var streaming = StreamingLoader.Options()
    /// Data-parallel training over this group (torch DDP semantics): each rank trains on its
    /// DistributedSampler shard of the training cells with `batchSize` cells per step, gradients
    /// are averaged by DDP's Reducer, and the metrics are summed over the ranks.
    public var processGroup: ProcessGroup?
    /// Write a resumable checkpoint here every `every` epochs and after the last (rank 0 only).
    public var periodicCheckpoint: (url: URL, every: Int)?
    /// Continue the run saved in this checkpoint (same data, kind, architecture and seed).
    public var resume: TrainingCheckpoint?

    public init(maxEpochs: Int? = nil, learningRate: Double = 1e-3, batchSize: Int = 128, trainSize: Double? = nil,
                earlyStopping: Bool = false, klWarmupEpochs: Int? = 400, seed: UInt64 = 0, progress: Bool = false) {
      self.maxEpochs = maxEpochs
      self.learningRate = learningRate
      self.batchSize = batchSize
      self.trainSize = trainSize
      self.earlyStopping = earlyStopping
      self.klWarmupEpochs = klWarmupEpochs
      self.seed = seed
      self.progress = progress
    }
  }

  /// scvi-tools' default number of epochs for `n` cells.
  public static func defaultMaxEpochs(cells n: Int) -> Int {
    Swift.min(Int((20_000.0 / Double(n) * 400).rounded()), 400)
  }

  /// Trains with Adam (scvi-tools' TrainingPlan: lr 1e-3, eps 0.01, weight decay 1e-6),
  /// validating each epoch on the held-out cells. Metrics per epoch: train_loss,
  /// elbo_train, reconstruction_loss_train, kl_local_train, kl_weight, and the same with
  /// `_validation` when cells are held out.
  @discardableResult
  public func train(_ options: TrainingOptions = TrainingOptions()) throws -> TrainingHistory {
    Runtime.seed(options.seed)
    if let maxSteps = options.maxSteps, maxSteps < 1 { throw TrainingError.invalidOptions("maxSteps must be positive") }
    let split = try DataSplit.random(count: cellCount, trainSize: options.trainSize, validationSize: options.validationSize,
                                     batchSize: options.batchSize, seed: UInt32(truncatingIfNeeded: options.seed))
    let maxEpochs = options.maxEpochs ?? Self.defaultMaxEpochs(cells: cellCount)
    let group = options.processGroup
    let shards = try DataParallelShards(group: group, streamed: isStreaming, split: split, batchSize: options.batchSize,
                                        seed: options.seed, streaming: options.streaming)
    let trainLoader = try setupMinibatches(split.train, batchSize: options.batchSize, shuffle: true, seed: options.seed,
                                           streaming: shards.trainStreaming)
    let validationLoader = split.validation.isEmpty ? nil
      : try setupMinibatches(shards.validation, batchSize: options.batchSize, shuffle: false, streaming: shards.validationStreaming)
    if options.earlyStopping && validationLoader == nil && !options.earlyStoppingMonitor.hasSuffix("_train") {
      throw TrainingError.invalidOptions("early stopping on \(options.earlyStoppingMonitor) needs validation cells (trainSize < 1)")
    }
    let parameters = module.parameters.filter { !isFrozen($0) }
    let optimizer = Adam(parameters, learningRate: options.learningRate, eps: options.eps, weightDecay: options.weightDecay)
    var step = 0
    if let resume = options.resume {
      try resume.checkResumable(model: kind.rawValue, seed: options.seed)
      try resume.restore(module, optimizer: optimizer, seed: options.seed)
      step = resume.step
      history = resume.history
    }
    // Wraps the network after it was moved and loaded: every rank starts from rank 0's state.
    // Some parameters get no gradient in some settings (l_encoder with the observed library
    // size), so unused ones are searched for, as scvi-tools' DDP strategy does.
    let ddp = try group.map { try DistributedDataParallel(module, group: $0, parameters: parameters, findUnusedParameters: true) }
    var schedule: LearningRateSchedule?
    if options.reduceLROnPlateau {
      schedule = .plateau(
        ReduceLROnPlateau(optimizer, mode: .min, factor: options.lrFactor, patience: options.lrPatience,
                          threshold: options.lrThreshold, thresholdMode: .absolute, minLearningRate: options.lrMin),
        monitor: validationLoader == nil ? "elbo_train" : "elbo_validation")
    }
    var trainerOptions = Trainer.Options(
      maxEpochs: maxEpochs,
      earlyStopping: options.earlyStopping ? EarlyStopping(monitor: options.earlyStoppingMonitor, patience: options.earlyStoppingPatience) : nil,
      schedule: schedule, checkpoint: (group?.rank ?? 0) == 0 ? options.checkpoint : nil, progress: options.progress,
      label: group.map { "\(kind.rawValue) (\($0.worldSize) ranks)" } ?? kind.rawValue)
    let prior = history
    if let (url, every) = options.periodicCheckpoint, (group?.rank ?? 0) == 0 {
      trainerOptions.onEpochEnd = try TrainingCheckpoint.periodicWriter(to: url, every: every, maxEpochs: maxEpochs) {
        [unowned self] epoch, history in
        TrainingCheckpoint(
          epochs: epoch + 1, step: step, history: history, model: module.stateDict(), optimizer: optimizer.stateDict(),
          info: checkpointInfo(options), random: Runtime.randomState())
      }
    }
    let trainer = try Trainer(options: trainerOptions)
    let warmup = KLWarmup(epochs: options.klWarmupEpochs)
    defer { module.eval() }
    try trainer.fit(module, resuming: prior) { epoch in
      module.train()
      var totals = EpochTotals()
      let source: MinibatchSource = try shards.trainingCells(epoch: epoch).map { try cells.loader($0, batchSize: options.batchSize) }
        ?? trainLoader
      let batches = try source.pass(epoch: epoch)
      while let batch = try batches.next() {
        let klWeight = warmup.weight(epoch: epoch, step: step)
        try ddp?.prepareForward()
        let loss = try module.forward(batch.vaeInput.to(device), klWeight: klWeight, checkInput: false).loss
        optimizer.zeroGrad()
        if let ddp { try ddp.backward(loss.loss) } else { loss.loss.backward() }
        applyGradientMasks()
        optimizer.step()
        step += 1
        totals.add(loss, cells: batch.indices.count)
        trainedCells += batch.indices.count
        if let maxSteps = options.maxSteps, step >= maxSteps {
          trainer.stopAfterCurrentEpoch(reason: "max_steps")
          break
        }
      }
      var metrics = try totals.metrics(suffix: "train", over: group)
      metrics["train_loss"] = metrics.removeValue(forKey: "loss_train")
      let klWeight = warmup.weight(epoch: epoch, step: step)
      metrics["kl_weight"] = klWeight
      if let validationLoader {
        module.eval()
        var validation = EpochTotals()
        try withNoGrad {
          try validationLoader.forEachBatch(epoch: epoch) { batch in
            validation.add(try module.forward(batch.vaeInput.to(device), klWeight: klWeight, checkInput: false).loss,
                           cells: batch.indices.count)
          }
        }
        var held = try validation.metrics(suffix: "validation", over: group)
        held["validation_loss"] = held.removeValue(forKey: "loss_validation")
        metrics.merge(held) { $1 }
      }
      return metrics
    }
    replicaDifference = try ddp?.maxParameterDifference()
    history = TrainingHistory(epochs: history.epochs + trainer.history.epochs)
    trainSeconds += trainer.seconds
    epochSeconds = trainer.epochSeconds
    stopReason = trainer.stopReason
    self.split = split
    return trainer.history
  }

  /// Sums of the loss terms over an epoch's minibatches, read once at the end.
  private struct EpochTotals {
    var weightedLoss: Tensor?
    var reconstruction: Tensor?
    var klLocal: Tensor?
    var cells = 0

    mutating func add(_ loss: VAELossOutput, cells n: Int) {
      let batchLoss = loss.loss.detach() * Double(n)
      let rec = loss.reconstructionLoss.detach().sum()
      let kl = (loss.klZ + loss.klL).detach().sum()
      weightedLoss = weightedLoss.map { $0 + batchLoss } ?? batchLoss
      reconstruction = reconstruction.map { $0 + rec } ?? rec
      klLocal = klLocal.map { $0 + kl } ?? kl
      cells += n
    }

    /// Per-cell means, as scvi-tools logs them (elbo = reconstruction + KL local; no global KL);
    /// with a process group, of the sums over every rank.
    func metrics(suffix: String, over group: ProcessGroup? = nil) throws -> EpochMetrics {
      var sums = [weightedLoss?.item() ?? 0, reconstruction?.item() ?? 0, klLocal?.item() ?? 0, Double(cells)]
      if let group { sums = try group.allReduce(sums, .sum) }
      guard sums[3] > 0 else { return [:] }
      let n = sums[3]
      let rec = sums[1] / n, kl = sums[2] / n
      return ["loss_\(suffix)": sums[0] / n, "elbo_\(suffix)": rec + kl,
              "reconstruction_loss_\(suffix)": rec, "kl_local_\(suffix)": kl]
    }
  }

  private func checkpointInfo(_ options: TrainingOptions) -> [String: String] {
    ["model": kind.rawValue, "seed": String(options.seed), "batch_size": String(options.batchSize),
     "world_size": String(options.processGroup?.worldSize ?? 1)]
  }

  private func isFrozen(_ parameter: Tensor) -> Bool {
    gradientMasks.contains { $0.0 === parameter && $0.1.sum().item() == 0 }
  }

  private func applyGradientMasks() {
    withNoGrad {
      for (parameter, mask) in gradientMasks { if let grad = parameter.grad { grad.mul_(mask) } }
    }
  }
}
