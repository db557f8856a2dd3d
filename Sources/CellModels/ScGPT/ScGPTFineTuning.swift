import Foundation
import Torch

/// What a fine-tuning run optimises, as the reference tutorials.
public enum ScGPTObjective: String, Sendable {
  /// Tutorial_Annotation: cross-entropy of the classifier on the cell embedding (no masking).
  case annotation
  /// Tutorial_Integration: masked-value MSE (GEP) and, with explicit zero probabilities, their
  /// Bernoulli NLL; the same from the cell embedding (GEPC, with MVC); 10 · ECS; and the batch
  /// discriminator's cross-entropy behind gradient reversal (DAB).
  case integration
  /// Masked-value pretraining of a new model: GEP and, with MVC, GEPC (no batches, no extra
  /// losses), so that `embed` has a model when no pretrained weights are at hand.
  case pretraining
  /// Generative pretraining (the pretraining branch): each minibatch splits its cells' genes
  /// into known genes and genes to generate (a ratio drawn from {0.25, 0.5, 0.75}); MSE of the
  /// generated values and, with MVC, of GEPC on them; after `secondPassAfter` steps also the
  /// MSE of a second pass with the detached cell embedding in place of `<cls>`.
  case generative
  /// `generative` plus the masked-value GEP (and GEPC) of `pretraining` on the same minibatch.
  case generativeAndMasked = "both"
}

/// Settings of `ScGPTFineTuner`, with the tutorials' values.
public struct ScGPTTrainingOptions: Sendable {
  public var epochs = 10
  public var batchSize = 32
  public var learningRate = 1e-4
  /// StepLR's factor, applied after every epoch.
  public var scheduleGamma = 0.9
  /// `clip_grad_norm_` bound.
  public var maxGradNorm = 1.0
  /// Share of the cells held out for validation (the best epoch by validation loss is kept).
  public var validationFraction = 0.1
  /// Share of each cell's values masked (annotation 0, integration 0.4).
  public var maskRatio = 0.0
  public var maskValue: Float = -1
  public var ecsWeight = 10.0
  public var dabWeight = 1.0
  /// Seeds the split, the minibatch order and the masks (torch's own generator, for dropout
  /// and initial weights, is seeded by the caller).
  public var seed: UInt32 = 0
  /// Cells of similar length share minibatches (windows of 50 minibatches sorted by length), so
  /// less is padded; minibatch order stays random. Off: the reference's plain shuffle.
  public var lengthBuckets = true
  /// Generative objectives: optimiser steps before the second pass joins (the reference: 1000).
  public var secondPassAfter = 1000
  public var progress = false

  public init() {}

  /// Tutorial_Annotation: batch 32, no masking.
  public static var annotation: ScGPTTrainingOptions { ScGPTTrainingOptions() }

  /// Tutorial_Integration: batch 64, 40 % masked.
  public static var integration: ScGPTTrainingOptions {
    var o = ScGPTTrainingOptions()
    o.batchSize = 64
    o.maskRatio = 0.4
    return o
  }

  func validate() throws {
    func fail(_ m: String) -> ScGPTError { .invalidConfig(m) }
    guard epochs > 0, batchSize > 0 else { throw fail("epochs and batch size must be positive") }
    guard learningRate > 0, scheduleGamma > 0, maxGradNorm > 0 else { throw fail("learning rate, schedule factor and gradient bound must be positive") }
    guard (0..<1).contains(validationFraction), (0..<1).contains(maskRatio) else { throw fail("validation fraction and mask ratio must lie in [0, 1)") }
    guard ecsWeight >= 0, dabWeight >= 0 else { throw fail("loss weights must not be negative") }
  }
}

/// What `ScGPTFineTuner.fit` did.
public struct ScGPTTrainingResult {
  /// Per-epoch metrics: `train_loss`, `validation_loss` (the selection metric: the classifier's
  /// cross-entropy for annotation, GEP for integration, as the reference's `evaluate`) and each
  /// term (`train_gep`, `validation_dab`, …).
  public var history: TrainingHistory
  public var epochSeconds: [Double]
  /// The epoch (0-based) whose weights the model holds at the end.
  public var bestEpoch: Int
  public var trainingCells: [Int]
  public var validationCells: [Int]
}

/// Fine-tunes an `ScGPTNetwork` as the reference tutorials' loops: Adam (eps 1e-8: no mixed
/// precision on CPU), StepLR per epoch, gradient clipping, a held-out validation share, the best
/// epoch kept. Minibatches are padded to their own longest cell; with domain-specific batch norm
/// every minibatch comes from one batch (the reference's `per_seq_batch_sample`), in training
/// and in evaluation.
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
    if objective == .generative || objective == .generativeAndMasked {
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

  /// Trains on `cells` (default all) of `tokens`. `cellTypes` (class indices) are needed for
  /// annotation, `batches` (batch indices) whenever the model takes batch labels.
  @discardableResult
  public func fit(_ tokens: ScGPTCellTokens, cells: [Int]? = nil, cellTypes: [Int]? = nil, batches: [Int]? = nil) throws
    -> ScGPTTrainingResult
  {
    let cells = cells ?? Array(0..<tokens.count)
    try checkLabels(tokens, cells: cells, cellTypes: cellTypes, batches: batches)
    var random = ScGPTRandom(seed: options.seed)
    let order = random.permutation(cells.count).map { cells[$0] }
    let nValidation = Int((Double(cells.count) * options.validationFraction).rounded(.up))
    let validation = Array(order.prefix(nValidation)), training = Array(order.dropFirst(nValidation))
    guard !training.isEmpty else { throw ScGPTError.invalidInput("no cells left to train on (\(cells.count) cells)") }

    let parameters = network.parameters
    let optimizer = Adam(parameters, learningRate: options.learningRate, eps: 1e-8)
    let trainer = try Trainer(options: Trainer.Options(
      maxEpochs: options.epochs, schedule: .step(StepLR(optimizer, stepSize: 1, gamma: options.scheduleGamma)),
      progress: options.progress, label: "scGPT \(objective.rawValue)"))
    var best: (epoch: Int, loss: Double, state: StateDict)?
    var step = 0

    try trainer.fit(network) { epoch in
      network.train()
      let lengths = options.lengthBuckets ? tokens.lengths : nil
      let minibatches = groupsMatter
        ? ScGPTSampling.perGroup(training, groups: batches!, batchSize: options.batchSize, lengths: lengths, random: &random)
        : ScGPTSampling.shuffled(training, batchSize: options.batchSize, lengths: lengths, random: &random)
      var sums = Sums()
      for rows in minibatches {
        let terms = try losses(tokens, rows, cellTypes: cellTypes, batches: batches, step: step, random: &random)
        step += 1
        let total = terms.values.dropFirst().reduce(terms.values[0], +)
        optimizer.zeroGrad()
        try withTorchErrors { total.backward() }
        _ = clipGradNorm(parameters, maxNorm: options.maxGradNorm)
        optimizer.step()
        sums.add(terms, total: total, cells: rows.count)
      }
      var metrics = sums.metrics(prefix: "train")
      if !validation.isEmpty {
        network.eval()
        var validationSums = Sums()
        try withNoGrad {
          for rows in ScGPTSampling.inOrder(validation, groups: groupsMatter ? batches : nil, batchSize: options.batchSize,
                                            lengths: tokens.lengths) {
            let terms = try losses(tokens, rows, cellTypes: cellTypes, batches: batches, step: step, random: &random)
            validationSums.add(terms, total: terms.values.dropFirst().reduce(terms.values[0], +), cells: rows.count)
          }
        }
        metrics.merge(validationSums.metrics(prefix: "validation")) { $1 }
        metrics["validation_loss"] = metrics[
          objective == .annotation ? "validation_cls" : objective == .generative || objective == .generativeAndMasked ? "validation_gen" : "validation_gep"]
      }
      let score = metrics["validation_loss"] ?? metrics["train_loss"]!
      if score.isFinite, score < (best?.loss ?? .infinity) {
        best = (epoch, score, StateDict(network.stateDict().map { ($0.key, $0.value.detach().clone()) }))
      }
      return metrics
    }
    if let best { try network.loadStateDict(best.state) }
    network.eval()
    return ScGPTTrainingResult(
      history: trainer.history, epochSeconds: trainer.epochSeconds, bestEpoch: best?.epoch ?? options.epochs - 1,
      trainingCells: training, validationCells: validation)
  }

  /// The objective's loss terms on one minibatch, in a fixed order (names without prefix).
  private func losses(_ tokens: ScGPTCellTokens, _ rows: [Int], cellTypes: [Int]?, batches: [Int]?, step: Int,
                      random: inout ScGPTRandom) throws -> (names: [String], values: [Tensor]) {
    let cells = tokens.padded(rows)
    let device = network.parameters.first?.device ?? .cpu
    let batchLabels = network.config.needsBatchLabels ? batches.map { b in rows.map { b[$0] } } : nil
    var names: [String] = [], values: [Tensor] = []
    func add(_ name: String, _ value: Tensor) {
      names.append(name)
      values.append(value)
    }
    switch objective {
    case .annotation:
      let batch = try ScGPTBatch(cells, batchLabels: batchLabels).to(device)
      let out = try network.forward(batch, heads: [.cls])
      let labels = Tensor(rows.map { Int64(cellTypes![$0]) }).to(device)
      add("cls", ScGPTLosses.crossEntropy(out.clsOutput!, labels))
    case .generative, .generativeAndMasked:
      let split = ScGPTGenerativeSplit(tokens, rows: rows, random: &random)
      let (pcpt, gen) = (split.pcpt.to(device), split.gen.to(device))
      let out = try network.generativeForward(pcptGenes: pcpt.geneIds, pcptValues: pcpt.values, pcptPadding: pcpt.paddingMask,
                                              genGenes: gen.geneIds, genPadding: gen.paddingMask)
      let valid = gen.paddingMask.logicalNot()
      add("gen", ScGPTLosses.maskedMSE(out.genPreds, gen.values, mask: valid))
      if let mvc = out.mvcOutput {
        add("gen_gepc", ScGPTLosses.maskedMSE(mvc.narrow(dim: 1, start: pcpt.geneIds.size(1), length: gen.geneIds.size(1)), gen.values, mask: valid))
      }
      if step >= options.secondPassAfter {
        let again = try network.generativeForward(pcptGenes: pcpt.geneIds, pcptValues: pcpt.values, pcptPadding: pcpt.paddingMask,
                                                  genGenes: gen.geneIds, genPadding: gen.paddingMask,
                                                  inputCellEmbedding: out.cellEmbedding.detach(), mvc: false)
        add("gen_second", ScGPTLosses.maskedMSE(again.genPreds, gen.values, mask: valid))
      }
      if objective == .generativeAndMasked {
        let cells = tokens.padded(rows)
        let masked = ScGPTTokenizer.randomMaskValue(
          cells.values, maskRatio: options.maskRatio, maskValue: options.maskValue, padValue: tokens.padValue, random: &random)
        let batch = try ScGPTBatch(cells, values: masked).to(device)
        let out = try network.forward(batch, heads: network.mvcDecoder != nil ? [.mvc] : [])
        let target = cells.valueTensor.to(device), positions = batch.values.eq(Double(options.maskValue))
        add("gep", ScGPTLosses.maskedMSE(out.mlmOutput, target, mask: positions))
        if let mvc = out.mvcOutput { add("gepc", ScGPTLosses.maskedMSE(mvc, target, mask: positions)) }
      }
    case .integration, .pretraining:
      let masked = ScGPTTokenizer.randomMaskValue(
        cells.values, maskRatio: options.maskRatio, maskValue: options.maskValue, padValue: tokens.padValue, random: &random)
      let batch = try ScGPTBatch(cells, values: masked, batchLabels: batchLabels).to(device)
      var heads: ScGPTHeads = []
      if network.mvcDecoder != nil { heads.insert(.mvc) }
      if objective == .integration && options.ecsWeight > 0 { heads.insert(.ecs) }
      let out = try network.forward(batch, heads: heads)
      let target = cells.valueTensor.to(device)
      let positions = batch.values.eq(Double(options.maskValue))
      add("gep", ScGPTLosses.maskedMSE(out.mlmOutput, target, mask: positions))
      if let p = out.mlmZeroProbs { add("gep_zero", ScGPTLosses.negLogBernoulli(p, target, mask: positions)) }
      if let mvc = out.mvcOutput {
        add("gepc", ScGPTLosses.maskedMSE(mvc, target, mask: positions))
        if let p = out.mvcZeroProbs { add("gepc_zero", ScGPTLosses.negLogBernoulli(p, target, mask: positions)) }
      }
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
  /// cell's batch for a whole minibatch).
  public func cellEmbeddings(_ tokens: ScGPTCellTokens, batches: [Int]? = nil, batchSize: Int = 64) throws -> Tensor {
    try perCell(tokens, batches: batches, batchSize: batchSize, heads: []) { l2Normalized($0.cellEmbedding) }
  }

  /// Class probabilities [cells, n_cls] from the classifier head (eval mode).
  public func classProbabilities(_ tokens: ScGPTCellTokens, batches: [Int]? = nil, batchSize: Int = 64) throws -> Tensor {
    try perCell(tokens, batches: batches, batchSize: batchSize, heads: [.cls]) { $0.clsOutput!.softmax(dim: 1) }
  }

  private func perCell(_ tokens: ScGPTCellTokens, batches: [Int]?, batchSize: Int, heads: ScGPTHeads,
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
        parts.append(read(try forward(batch, heads: heads)).to(.cpu))
        order += rows
      }
    }
    var inverse = [Int64](repeating: 0, count: order.count)
    for (position, cell) in order.enumerated() { inverse[cell] = Int64(position) }
    return Tensor.cat(parts, dim: 0).indexSelect(dim: 0, index: Tensor(inverse))
  }
}

/// Cell-weighted sums of loss terms over an epoch.
private struct Sums {
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
}

extension ScGPTBatch {
  /// The batch on `device`.
  public func to(_ device: Device) -> ScGPTBatch {
    guard device != .cpu else { return self }
    return ScGPTBatch(geneIds: geneIds.to(device), values: values.to(device), paddingMask: paddingMask.to(device),
                      batchLabels: batchLabels?.to(device), modalityTypes: modalityTypes?.to(device),
                      perturbationFlags: perturbationFlags?.to(device))
  }
}
