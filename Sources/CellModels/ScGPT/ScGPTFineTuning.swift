import Foundation
import Torch

/// What `ScGPTFineTuner.fit` did.
public struct ScGPTTrainingResult {
  /// Per-epoch metrics: `train_loss`, `validation_loss` (the selection metric: the classifier's
  /// cross-entropy for annotation, GEP for integration, as the reference's `evaluate`) and each
  /// term (`train_gep`, `validation_dab`, …). A resumed run's history starts at epoch 0.
  public var history: TrainingHistory
  public var epochSeconds: [Double]
  /// The epoch (0-based) whose weights the model holds at the end.
  public var bestEpoch: Int
  public var trainingCells: [Int]
  public var validationCells: [Int]
  /// "max_epochs" or "max_steps".
  public var stopReason = "max_epochs"
  /// Optimiser steps taken in all (a resumed run counts those before it).
  public var steps = 0
  /// This run's steps: the non-padding tokens each fed (its cells' tokens, `<cls>` included)
  /// and its seconds (forward, backward, update; no validation).
  public var stepTokens: [Int] = []
  public var stepSeconds: [Double] = []
  /// Data-parallel: the largest difference between a rank's final weights and rank 0's (0
  /// when the replicas stayed in sync); nil for a single process.
  public var replicaDifference: Double?
  /// Data-parallel: the processes that trained; nil for a single process.
  public var ranks: Int?

  /// Tokens per second of training over this run's steps.
  public var tokensPerSecond: Double {
    Double(stepTokens.reduce(0, +)) / max(stepSeconds.reduce(0, +), 1e-9)
  }
}

/// Fine-tunes an `ScGPTNetwork` as the reference tutorials' loops: Adam (eps 1e-8, the
/// reference's without amp; bf16 autocast needs no larger eps), StepLR per epoch or a cosine
/// schedule with warm-up per step, gradient clipping, a held-out validation share, the best
/// epoch kept. Minibatches are padded to their own longest cell; with domain-specific batch
/// norm every minibatch comes from one batch (the reference's `per_seq_batch_sample`), in
/// training and in evaluation. Checkpoints taken at any step resume exactly: each step draws
/// its masks, splits and dropout from its own seeded stream, each epoch its order. With
/// `options.processGroup` it trains data-parallel (DDP): the ranks share each epoch's
/// minibatches, draw their own masks, and end with identical weights.
public final class ScGPTFineTuner {
  public let network: ScGPTNetwork
  public let objective: ScGPTObjective
  public let options: ScGPTTrainingOptions

  public init(network: ScGPTNetwork, objective: ScGPTObjective, options: ScGPTTrainingOptions) throws {
    try options.validate()
    let c = network.config
    if objective == .annotation && c.nCls < 2 {
      throw ScGPTError.invalidConfig("annotation needs a classifier with at least 2 classes (n_cls is \(c.nCls))")
    }
    if objective.isGenerative {
      guard c.generative, c.inputEmbeddingStyle == .continuous, !c.needsBatchLabels else {
        throw ScGPTError.invalidConfig("generative pretraining needs a generative model (flag_encoder), continuous values and no batch labels")
      }
    }
    if objective != .annotation && objective != .generative && options.maskRatio == 0 {
      throw ScGPTError.invalidConfig("\(objective.rawValue) learns from masked values: the mask ratio must be above 0")
    }
    self.network = network
    self.objective = objective
    self.options = options
  }

  private var groupsMatter: Bool { network.config.batchNormalization == .domainSpecific }

  /// Trains on `cells` (default all) of `tokens`, a share of them (by the seed) held out for
  /// validation. `cellTypes` (class indices) are needed for annotation, `batches` (batch
  /// indices) whenever the model takes batch labels.
  @discardableResult
  public func fit(_ tokens: ScGPTCellTokens, cells: [Int]? = nil, cellTypes: [Int]? = nil, batches: [Int]? = nil) throws
    -> ScGPTTrainingResult
  {
    let cells = cells ?? Array(0..<tokens.count)
    try checkLabels(tokens, cells: cells, cellTypes: cellTypes, batches: batches)
    var random = ScGPTRandom(seed: options.seed)
    let order = random.permutation(cells.count).map { cells[$0] }
    let nValidation = Int((Double(cells.count) * options.validationFraction).rounded(.up))
    return try fit(ScGPTTokenMinibatches(
      tokens: tokens, trainingCells: Array(order.dropFirst(nValidation)), validationCells: Array(order.prefix(nValidation)),
      cellTypes: cellTypes, batches: batches, groupByBatch: groupsMatter, batchSize: options.batchSize,
      lengthBuckets: options.lengthBuckets, seed: options.seed, rank: options.processGroup?.rank ?? 0,
      worldSize: options.processGroup?.worldSize ?? 1))
  }

  /// Trains on the minibatches of `data` (data-parallel: this rank's share of them).
  @discardableResult
  public func fit(_ data: ScGPTTrainingData) throws -> ScGPTTrainingResult {
    guard data.trainingCount > 0 else { throw ScGPTError.invalidInput("no cells left to train on") }
    let masks = Runtime.dropoutMasks
    if options.fastDropoutMasks { Runtime.dropoutMasks = .fast }
    defer { Runtime.dropoutMasks = masks }
    let parameters = network.parameters
    let device = parameters.first?.device ?? .cpu
    let optimizer = Adam(parameters, learningRate: options.learningRate, eps: 1e-8)
    let stepsPerEpoch = data.stepsPerEpoch
    // The schedule spans the epochs; max steps only stop early (so a stopped run is the start of a whole one).
    let totalSteps = options.epochs * stepsPerEpoch
    let group = options.processGroup
    let rank = group?.rank ?? 0, worldSize = group?.worldSize ?? 1
    var run = RunState()
    var prior = TrainingHistory()
    if let url = options.resumeFrom {
      (prior, run) = try resume(url, optimizer: optimizer, stepsPerEpoch: stepsPerEpoch)
      if rank != 0 { run.sums = run.sums.zeroed() }  // the saved sums are every rank's: counted once, on rank 0
    }
    // After loading: every rank starts from rank 0's weights. Heads a step leaves out get no gradient.
    let ddp = try group.map { try DistributedDataParallel(network, group: $0, parameters: parameters, findUnusedParameters: true) }
    let label = "scGPT \(objective.rawValue)" + (group.map { " (\($0.worldSize) ranks)" } ?? "")
    let trainer = try Trainer(options: Trainer.Options(maxEpochs: options.epochs, progress: options.progress && rank == 0, label: label))
    var meter = ThroughputMeter(label: label, totalSteps: totalSteps, enabled: options.progress && rank == 0)
    var result = ScGPTTrainingResult(history: TrainingHistory(), epochSeconds: [], bestEpoch: 0,
                                     trainingCells: data.trainingCells, validationCells: data.validationCells)
    func save() throws {  // collective with several ranks: each calls it at the same steps
      guard let url = options.checkpoint else { return }
      var state = run
      state.sums = try run.sums.reduced(over: group)
      guard rank == 0 else { return }
      try checkpoint(state, history: TrainingHistory(epochs: prior.epochs + trainer.history.epochs),
                     optimizer: optimizer).write(to: url)
    }

    try trainer.fit(network, resuming: prior) { epoch in
      network.train()
      if run.epochStep == 0 { run.sums = Sums() }
      var stopped = false
      do {
        try data.forEachTrainingMinibatch(epoch: epoch, skipping: run.epochStep) { batch in
          let start = Date()
          optimizer.learningRate = options.schedule.learningRate(
            base: options.learningRate, gamma: options.scheduleGamma, step: run.step, epoch: epoch, total: totalSteps)
          let stream = run.step * worldSize + rank  // each rank its own masks and dropout
          var random = ScGPTRandom.derived(options.seed, stream: .step, index: stream)
          Runtime.seed(ScGPTRandom.derivedSeed(options.seed, stream: .step, index: stream))
          try ddp?.prepareForward()
          let terms = try Autocast.run(on: device, dtype: options.precision) {
            try losses(batch, step: run.step, random: &random, device: device)
          }
          let total = terms.values.dropFirst().reduce(terms.values[0], +)
          optimizer.zeroGrad()
          if let ddp { try ddp.backward(total) } else { try withTorchErrors { total.backward() } }
          _ = clipGradNorm(parameters, maxNorm: options.maxGradNorm)
          optimizer.step()
          run.sums.add(terms, total: total, cells: batch.rows.count)
          run.step += 1
          run.epochStep += 1
          let tokens = batch.rows.reduce(0) { $0 + batch.tokens.ids[$1].count }
          result.stepTokens.append(tokens)
          result.stepSeconds.append(Date().timeIntervalSince(start))
          meter.record(items: tokens, seconds: result.stepSeconds.last!, step: run.step, epoch: epoch, of: options.epochs,
                       loss: run.sums.total / Double(max(run.sums.cells, 1)))
          let reachedMax = run.step >= options.maxSteps ?? .max
          if options.checkpointEvery > 0 && run.step % options.checkpointEvery == 0 || reachedMax { try save() }
          if reachedMax { throw StopAtMaxSteps() }
        }
      } catch is StopAtMaxSteps {
        trainer.stopAfterCurrentEpoch(reason: "max_steps")
        stopped = true
      }
      var metrics = try run.sums.reduced(over: group).metrics(prefix: "train")
      if data.validationCount > 0 {
        network.eval()
        var validation = Sums()
        var random = ScGPTRandom.derived(options.seed, stream: .validation, index: rank)
        try withNoGrad {
          try data.forEachValidationMinibatch { batch in
            let terms = try Autocast.run(on: device, dtype: options.precision) {
              try losses(batch, step: run.step, random: &random, device: device)
            }
            validation.add(terms, total: terms.values.dropFirst().reduce(terms.values[0], +), cells: batch.rows.count)
          }
        }
        metrics.merge(try validation.reduced(over: group).metrics(prefix: "validation")) { $1 }
        metrics["validation_loss"] = metrics[
          objective == .annotation ? "validation_cls" : objective.isGenerative ? "validation_gen" : "validation_gep"]
      }
      metrics["learning_rate"] = optimizer.learningRate
      if !stopped {  // a whole epoch: it can be the best, and the next starts afresh
        let score = metrics["validation_loss"] ?? metrics["train_loss"]!
        if score.isFinite, score < (run.best?.loss ?? .infinity) {
          run.best = (epoch, score, StateDict(network.stateDict().map { ($0.key, $0.value.detach().clone()) }))
        }
        run.epochStep = 0
      }
      return metrics
    }
    if trainer.stopReason != "max_steps" { try save() }
    if let best = run.best { try network.loadStateDict(best.state) }
    network.eval()
    result.replicaDifference = try ddp?.maxParameterDifference()
    result.ranks = group?.worldSize
    meter.finish()
    result.history = TrainingHistory(epochs: prior.epochs + trainer.history.epochs)
    result.epochSeconds = trainer.epochSeconds
    result.bestEpoch = run.best?.epoch ?? result.history.epochs.count - 1
    result.stopReason = trainer.stopReason
    result.steps = run.step
    return result
  }

  // MARK: - Checkpoints

  /// Where a run stands: steps taken, steps into the running epoch and its sums, the best epoch.
  private struct RunState {
    var step = 0
    var epochStep = 0
    var sums = Sums()
    var best: (epoch: Int, loss: Double, state: StateDict)?
  }

  private struct StopAtMaxSteps: Error {}

  /// Settings a resumed run must share with the checkpoint's.
  private var checkpointInfo: [String: String] {
    ["model": "scgpt", "objective": objective.rawValue, "seed": String(options.seed), "batch_size": String(options.batchSize),
     "world_size": String(options.processGroup?.worldSize ?? 1)]
  }

  /// A checkpoint of `run` (the history holds the completed epochs; the running
  /// epoch's step count and sums go in the info, the best epoch's weights in `extra`).
  private func checkpoint(_ run: RunState, history: TrainingHistory, optimizer: Adam) throws -> TrainingCheckpoint {
    var info = checkpointInfo
    info["epoch_step"] = String(run.epochStep)
    info["epoch_sums"] = String(decoding: try JSONEncoder().encode(run.sums), as: UTF8.self)
    if let best = run.best {
      info["best_epoch"] = String(best.epoch)
      info["best_loss"] = String(best.loss)
    }
    return TrainingCheckpoint(epochs: history.epochs.count, step: run.step, history: history, model: network.stateDict(),
                              optimizer: optimizer.stateDict(), info: info, extra: run.best?.state ?? StateDict())
  }

  private func resume(_ url: URL, optimizer: Adam, stepsPerEpoch: Int) throws -> (TrainingHistory, RunState) {
    let saved = try TrainingCheckpoint.read(url, group: options.processGroup)  // rank 0 reads, the others receive
    let older = ["world_size": "1"]  // what a checkpoint from before data-parallel training leaves out
    for (key, value) in checkpointInfo where (saved.info[key] ?? older[key]) != value {
      throw ScGPTError.invalidInput("\(url.path) was trained with \(key) \(saved.info[key] ?? "(none)"), this run has \(value): resume with the same settings and data")
    }
    guard let epochStep = saved.info["epoch_step"].flatMap(Int.init), let sumsJSON = saved.info["epoch_sums"],
      let sums = try? JSONDecoder().decode(Sums.self, from: Data(sumsJSON.utf8))
    else { throw ScGPTError.checkpoint("\(url.path) is not a checkpoint of an scGPT training run") }
    guard epochStep <= stepsPerEpoch else {
      throw ScGPTError.invalidInput("\(url.path) stopped at minibatch \(epochStep) of an epoch; this data has \(stepsPerEpoch) per epoch: resume with the same data")
    }
    if let maxSteps = options.maxSteps, saved.step >= maxSteps {
      throw ScGPTError.invalidInput("\(url.path) has taken \(saved.step) steps already, --max-steps is \(maxSteps)")
    }
    try network.loadStateDict(saved.model)
    try optimizer.loadStateDict(saved.optimizer)
    var run = RunState(step: saved.step, epochStep: epochStep, sums: sums)
    if let epoch = saved.info["best_epoch"].flatMap(Int.init), let loss = saved.info["best_loss"].flatMap(Double.init) {
      run.best = (epoch, loss, saved.extra)
    }
    return (saved.history, run)
  }

  /// The objective's loss terms on one minibatch, in a fixed order (names without prefix).
  private func losses(_ batch: ScGPTMinibatch, step: Int, random: inout ScGPTRandom, device: Device) throws
    -> (names: [String], values: [Tensor])
  {
    let (tokens, rows, cellTypes, batches) = (batch.tokens, batch.rows, batch.cellTypes, batch.batches)
    if objective == .annotation && cellTypes == nil || network.config.needsBatchLabels && batches == nil {
      throw ScGPTError.invalidInput("this objective and model need cell types or batches, which the training data does not have")
    }
    let cells = tokens.padded(rows)
    let batchLabels = network.config.needsBatchLabels ? batches.map { b in rows.map { b[$0] } } : nil
    let normalizationLength = batch.normalizationLength
    func networkBatch(_ values: [[Float]]? = nil, labels: [Int]? = nil) throws -> ScGPTBatch {
      var b = try ScGPTBatch(cells, values: values, batchLabels: labels).to(device)
      b.normalizationLength = normalizationLength
      return b
    }
    var names: [String] = [], values: [Tensor] = []
    func add(_ name: String, _ value: Tensor) {
      names.append(name)
      values.append(value)
    }
    switch objective {
    case .annotation:
      let out = try network.forward(networkBatch(labels: batchLabels), heads: [.cls])
      let labels = Tensor(rows.map { Int64(cellTypes![$0]) }).to(device)
      add("cls", ScGPTLosses.crossEntropy(out.clsOutput!, labels))
    case .generative, .generativeAndMasked:
      let split = ScGPTGenerativeSplit(tokens, rows: rows, random: &random)
      let (pcpt, gen) = (split.pcpt.to(device), split.gen.to(device))
      let out = try network.generativeForward(pcptGenes: pcpt.geneIds, pcptValues: pcpt.values, pcptPadding: pcpt.paddingMask,
                                              genGenes: gen.geneIds, genPadding: gen.paddingMask, predictKnown: false)
      let valid = gen.paddingMask.logicalNot()
      add("gen", ScGPTLosses.maskedMSE(out.genPreds, gen.values, mask: valid))
      if let mvc = out.mvcOutput {
        add("gen_gepc", ScGPTLosses.maskedMSE(mvc, gen.values, mask: valid))
      }
      if step >= options.secondPassAfter {
        let again = try network.generativeForward(pcptGenes: pcpt.geneIds, pcptValues: pcpt.values, pcptPadding: pcpt.paddingMask,
                                                  genGenes: gen.geneIds, genPadding: gen.paddingMask,
                                                  inputCellEmbedding: out.cellEmbedding.detach(), mvc: false, predictKnown: false)
        add("gen_second", ScGPTLosses.maskedMSE(again.genPreds, gen.values, mask: valid))
      }
      if objective == .generativeAndMasked {
        let masked = ScGPTTokenizer.randomMaskValue(
          cells.values, maskRatio: options.maskRatio, maskValue: options.maskValue, padValue: tokens.padValue, random: &random)
        let batch = try networkBatch(masked)
        let out = try network.forward(batch, heads: network.mvcDecoder != nil ? [.mvc] : [])
        let target = cells.valueTensor.to(device), positions = batch.values.eq(Double(options.maskValue))
        add("gep", ScGPTLosses.maskedMSE(out.mlmOutput, target, mask: positions))
        if let mvc = out.mvcOutput { add("gepc", ScGPTLosses.maskedMSE(mvc, target, mask: positions)) }
      }
    case .integration, .pretraining:
      let masked = ScGPTTokenizer.randomMaskValue(
        cells.values, maskRatio: options.maskRatio, maskValue: options.maskValue, padValue: tokens.padValue, random: &random)
      let batch = try networkBatch(masked, labels: batchLabels)
      var heads: ScGPTHeads = []
      if network.mvcDecoder != nil { heads.insert(.mvc) }
      if objective == .integration && options.ecsWeight > 0 { heads.insert(.ecs) }
      if options.cceWeight > 0 { heads.insert(.cce) }
      let out = try network.forward(batch, heads: heads)
      let target = cells.valueTensor.to(device)
      let positions = batch.values.eq(Double(options.maskValue))
      add("gep", ScGPTLosses.maskedMSE(out.mlmOutput, target, mask: positions))
      if let p = out.mlmZeroProbs { add("gep_zero", ScGPTLosses.negLogBernoulli(p, target, mask: positions)) }
      if let mvc = out.mvcOutput {
        add("gepc", ScGPTLosses.maskedMSE(mvc, target, mask: positions))
        if let p = out.mvcZeroProbs { add("gepc_zero", ScGPTLosses.negLogBernoulli(p, target, mask: positions)) }
      }
      if let cce = out.lossCCE { add("cce", cce * options.cceWeight) }
      if let ecs = out.lossECS { add("ecs", ecs * options.ecsWeight) }
      if let dab = out.dabOutput, options.dabWeight > 0, let labels = batch.batchLabels {
        add("dab", ScGPTLosses.crossEntropy(dab, labels) * options.dabWeight)
      }
    }
    return (names, values)
  }

  private func checkLabels(_ tokens: ScGPTCellTokens, cells: [Int], cellTypes: [Int]?, batches: [Int]?) throws {
    guard !cells.isEmpty else { throw ScGPTError.invalidInput("no cells to train on") }
    if let bad = cells.first(where: { !(0..<tokens.count).contains($0) }) {
      throw ScGPTError.invalidInput("cell index \(bad) is outside the \(tokens.count) cells")
    }
    if objective == .annotation {
      guard let cellTypes, cellTypes.count == tokens.count else {
        throw ScGPTError.invalidInput("annotation needs one cell-type index per cell")
      }
      if let bad = cells.first(where: { !(0..<network.config.nCls).contains(cellTypes[$0]) }) {
        throw ScGPTError.invalidInput("cell \(bad) has cell-type index \(cellTypes[bad]), outside the classifier's \(network.config.nCls) classes")
      }
    }
    if network.config.needsBatchLabels {
      guard let batches, batches.count == tokens.count else {
        throw ScGPTError.invalidInput("this model takes batch labels: give one batch index per cell")
      }
      if let bad = cells.first(where: { !(0..<(network.config.numBatchLabels ?? 0)).contains(batches[$0]) }) {
        throw ScGPTError.invalidInput("cell \(bad) has batch index \(batches[bad]), outside the model's \(network.config.numBatchLabels ?? 0) batches")
      }
    }
  }
}

extension ScGPTNetwork {
  /// Cell embeddings [cells, d] (the configured style; `<cls>` by default) L2-normalised, as the
  /// integration tutorial's `encode_batch` + normalisation, in eval mode. With domain-specific
  /// batch norm each cell goes through its own batch's statistics (the reference uses the first
  /// cell's batch for a whole minibatch). `precision` `.bfloat16`: under autocast; the result
  /// is float32 either way.
  public func cellEmbeddings(_ tokens: ScGPTCellTokens, batches: [Int]? = nil, batchSize: Int = 64,
                             precision: DType = .float32) throws -> Tensor {
    try perCell(tokens, batches: batches, batchSize: batchSize, heads: [], precision: precision) { l2Normalized($0.cellEmbedding) }
  }

  /// Class probabilities [cells, n_cls] from the classifier head (eval mode).
  public func classProbabilities(_ tokens: ScGPTCellTokens, batches: [Int]? = nil, batchSize: Int = 64,
                                 precision: DType = .float32) throws -> Tensor {
    try perCell(tokens, batches: batches, batchSize: batchSize, heads: [.cls], precision: precision) { $0.clsOutput!.softmax(dim: 1) }
  }

  private func perCell(_ tokens: ScGPTCellTokens, batches: [Int]?, batchSize: Int, heads: ScGPTHeads, precision: DType,
                       _ read: (ScGPTOutput) -> Tensor) throws -> Tensor {
    guard tokens.count > 0, batchSize > 0 else { throw ScGPTError.invalidInput("no cells, or a batch size below 1") }
    if config.needsBatchLabels {
      guard let batches, batches.count == tokens.count else {
        throw ScGPTError.invalidInput("this model takes batch labels: give one batch index per cell")
      }
    }
    eval()
    let device = parameters.first?.device ?? .cpu
    let groups = config.batchNormalization == .domainSpecific ? batches : nil
    var parts: [Tensor] = [], order: [Int] = []
    try withNoGrad {
      for rows in ScGPTSampling.inOrder(Array(0..<tokens.count), groups: groups, batchSize: batchSize, lengths: tokens.lengths) {
        let labels = config.needsBatchLabels ? rows.map { batches![$0] } : nil
        let batch = try ScGPTBatch(tokens.padded(rows), batchLabels: labels).to(device)
        let output = try Autocast.run(on: device, dtype: precision) { read(try forward(batch, heads: heads)) }
        parts.append(output.to(.float32).to(.cpu))
        order += rows
      }
    }
    var inverse = [Int64](repeating: 0, count: order.count)
    for (position, cell) in order.enumerated() { inverse[cell] = Int64(position) }
    return Tensor.cat(parts, dim: 0).indexSelect(dim: 0, index: Tensor(inverse))
  }
}

/// Cell-weighted sums of loss terms over an epoch.
private struct Sums: Codable {
  var terms: [String: Double] = [:]
  var total = 0.0
  var cells = 0

  mutating func add(_ losses: (names: [String], values: [Tensor]), total: Tensor, cells n: Int) {
    for (name, value) in zip(losses.names, losses.values) { terms[name, default: 0] += value.item() * Double(n) }
    self.total += total.item() * Double(n)
    cells += n
  }

  func metrics(prefix: String) -> EpochMetrics {
    var out: EpochMetrics = ["\(prefix)_loss": total / Double(max(cells, 1))]
    for (name, sum) in terms { out["\(prefix)_\(name)"] = sum / Double(max(cells, 1)) }
    return out
  }

  /// The same terms with nothing counted yet.
  func zeroed() -> Sums { Sums(terms: terms.mapValues { _ in 0 }) }

  /// The sums over every rank of `group` (collective; every rank holds the same term names).
  func reduced(over group: ProcessGroup?) throws -> Sums {
    guard let group, group.worldSize > 1 else { return self }
    let names = terms.keys.sorted()
    let values = try group.allReduce([total, Double(cells)] + names.map { terms[$0]! }, .sum)
    return Sums(terms: Dictionary(uniqueKeysWithValues: zip(names, values.dropFirst(2))), total: values[0], cells: Int(values[1]))
  }
}

extension ScGPTBatch {
  /// The batch on `device`.
  public func to(_ device: Device) -> ScGPTBatch {
    guard device != .cpu else { return self }
    var moved = ScGPTBatch(geneIds: geneIds.to(device), values: values.to(device), paddingMask: paddingMask.to(device),
                           batchLabels: batchLabels?.to(device), modalityTypes: modalityTypes?.to(device),
                           perturbationFlags: perturbationFlags?.to(device))
    moved.normalizationLength = normalizationLength
    return moved
  }
}
