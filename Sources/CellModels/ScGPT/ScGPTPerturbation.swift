import CellData
import Foundation
import Torch

/// Settings of `ScGPTPerturbation.train`, with the perturbation tutorial's values (Adam 1e-4,
/// StepLR 0.9 per epoch, clipping 1.0, batch 64, 15 epochs, dropout 0, up to 1,536 genes per
/// minibatch).
public struct ScGPTPerturbationOptions: Sendable {
  public var training: ScGPTTrainingOptions
  /// Used when `pretrained` is nil.
  public var architecture: ScGPTArchitecture
  /// Genes per training minibatch (all when fewer). The reference samples them at random and
  /// may drop a perturbed gene, losing its flag; here the minibatch's perturbed genes are always
  /// in, and the rest are sampled. Prediction uses all genes, as the reference's `pred_perturb`.
  public var maxLength = 1536
  /// Conditions held out of training and evaluated (canonical names); nil: `testFraction` of
  /// the perturbation conditions at random (seeded).
  public var testConditions: [String]?
  public var testFraction = 0.2
  /// A model folder to start from (shapes that fit are loaded; the flag embedding and the affine
  /// decoder start new), as the tutorial's `load_pretrained`.
  public var pretrained: URL?
  public var device: Device = .cpu

  public init() {
    training = ScGPTTrainingOptions()
    training.epochs = 15
    training.batchSize = 64
    architecture = ScGPTArchitecture()
    architecture.dropout = 0
  }
}

/// A trained perturbation model and what it was trained and tested on.
public struct ScGPTPerturbationModel {
  /// args.json records `task` "perturbation", `genes`, `train_conditions`, `test_conditions`.
  public var folder: ScGPTModelFolder
  public var result: ScGPTTrainingResult
  public var trainConditions: [String]
  public var testConditions: [String]
  /// Genes of the data that the vocabulary lacks (they enter as `<pad>`, as the tutorial).
  public var unknownGenes: Int
}

/// Evaluation of held-out conditions: the model and the baselines, GEARS-style.
public struct ScGPTPerturbationEvaluation {
  public var model: PerturbationMetrics
  /// "no change" (each test cell predicted as its paired control cell) and "mean perturbed"
  /// (the mean of all training perturbed cells, for every condition).
  public var baselines: [String: PerturbationMetrics]
  /// Mean predicted / observed profiles per test condition, and the mean control profile.
  public var predicted: [String: [Double]]
  public var observed: [String: [Double]]
  public var control: [Double]
  public var deGenes: [String: [Int]]
}

/// scGPT's perturbation prediction (Tutorial_Perturbation): the `TransformerGenerator` reads a
/// control cell's expression (all genes, log-normalised, no `<cls>`) with flags on the perturbed
/// genes and is trained with MSE on all genes against a perturbed cell of that condition. Each
/// perturbed cell is paired with a control cell drawn once (seeded), control cells with
/// themselves, as GEARS's data loader.
public enum ScGPTPerturbation {
  public static func train(_ data: PerturbSeqData, options: ScGPTPerturbationOptions) throws -> ScGPTPerturbationModel {
    try options.training.validate()
    guard options.maxLength >= 1, (0..<1).contains(options.testFraction) else {
      throw ScGPTError.invalidConfig("max length must be positive and the test fraction in [0, 1)")
    }
    var random = ScGPTRandom(seed: options.training.seed)
    let all = data.perturbationConditions
    guard !all.isEmpty else { throw ScGPTError.invalidInput("no perturbed cells: every cell is a control") }
    let test: [String]
    if let given = options.testConditions {
      test = try given.map { try PerturbSeqData.canonical(PerturbSeqData.parse($0)) }
      if let unknown = test.first(where: { !all.contains($0) }) {
        throw ScGPTError.invalidInput("test condition '\(unknown)' has no cells in the data")
      }
    } else {
      let n = Int((Double(all.count) * options.testFraction).rounded())
      test = random.choiceWithoutReplacement(all.count, size: min(n, all.count - 1)).map { all[$0] }.sorted()
    }
    let testSet = Set(test)
    let train = all.filter { !testSet.contains($0) }
    guard !train.isEmpty else { throw ScGPTError.invalidInput("every perturbation condition is held out: nothing to train on") }

    // The model: new (vocabulary = specials + the data's genes) or from a pretrained folder.
    var folder: ScGPTModelFolder
    if let url = options.pretrained {
      folder = try ScGPTModelFolder.load(url, skipMismatchedShapes: true) { config in
        config.perturbationPadId = 2
        config.useBatchLabels = false
        config.batchNormalization = .none
        config.doDAB = false
        config.numModalities = nil
        config.explicitZeroProb = false
        config.inputEmbeddingStyle = .continuous
        config.nInputBins = nil
        config.padValue = 0
      }
    } else {
      let vocab = try GeneVocab(tokens: data.genes.uniqued() + GeneVocab.specialTokens.filter { !data.genes.contains($0) })
      var config = options.architecture.config(vocab: vocab)
      config.perturbationPadId = 2
      folder = ScGPTModelFolder(network: try ScGPTNetwork(config), vocab: vocab)
    }
    let padId = folder.network.config.padTokenId
    let ids = data.genes.map { folder.vocab[$0] ?? padId }
    let network = folder.network
    network.to(options.device)

    // Pairs (input control cell, target cell) of the training conditions and the controls.
    let trainSet = Set(train)
    let targets = data.conditions.indices.filter { data.conditions[$0] == PerturbSeqData.control || trainSet.contains(data.conditions[$0]) }
    let pairs = pairedControls(data, random: &random)
    let order = random.permutation(targets.count).map { targets[$0] }
    let nValidation = Int((Double(targets.count) * options.training.validationFraction).rounded(.up))
    let validation = Array(order.prefix(nValidation)), training = Array(order.dropFirst(nValidation))
    guard !training.isEmpty else { throw ScGPTError.invalidInput("no cells left to train on") }

    let parameters = network.parameters
    let optimizer = Adam(parameters, learningRate: options.training.learningRate, eps: 1e-8)
    // Data-parallel: every rank shuffles alike (`random` advances the same on each) and takes
    // every world-size-th minibatch; its genes and dropout come from its own streams.
    let group = options.training.processGroup, rank = group?.rank ?? 0, worldSize = group?.worldSize ?? 1
    let seed = options.training.seed
    let ddp = try group.map { try DistributedDataParallel(network, group: $0, parameters: parameters, findUnusedParameters: true) }
    if group != nil { Runtime.seed(ScGPTRandom.derivedSeed(seed, stream: .step, index: -1 - rank)) }
    let trainer = try Trainer(options: Trainer.Options(
      maxEpochs: options.training.epochs, schedule: .step(StepLR(optimizer, stepSize: 1, gamma: options.training.scheduleGamma)),
      progress: options.training.progress && rank == 0,
      label: "scGPT perturbation" + (group.map { " (\($0.worldSize) ranks)" } ?? "")))
    var best: (epoch: Int, loss: Double, state: StateDict)?
    let batchSize = options.training.batchSize
    var step = 0
    try trainer.fit(network) { epoch in
      network.train()
      var sums = [0.0, 0.0]  // loss × cells, cells
      let shuffled = training.shuffledBy(&random)
      for rows in DistributedSampler.strided(ScGPTSampling.chunks(shuffled, batchSize), rank: rank, worldSize: worldSize, padded: true) {
        let genes: [Int]
        if group == nil {
          genes = genesFor(rows, data: data, maxLength: options.maxLength, random: &random)
        } else {
          var own = ScGPTRandom.derived(seed, stream: .step, index: step * worldSize + rank)
          genes = genesFor(rows, data: data, maxLength: options.maxLength, random: &own)
        }
        step += 1
        let (batch, target) = try minibatch(data, rows: rows, inputs: rows.map { pairs[$0] }, genes: genes, ids: ids, device: options.device)
        try ddp?.prepareForward()
        let loss = try withTorchErrors {
          let output = try Autocast.run(on: options.device, dtype: options.training.precision) { try network.forward(batch).mlmOutput }
          return Functional.mseLoss(output.fullPrecision, target!)
        }
        optimizer.zeroGrad()
        if let ddp { try ddp.backward(loss) } else { try withTorchErrors { loss.backward() } }
        _ = clipGradNorm(parameters, maxNorm: options.training.maxGradNorm)
        optimizer.step()
        sums[0] += loss.item() * Double(rows.count)
        sums[1] += Double(rows.count)
      }
      if let group { sums = try group.allReduce(sums, .sum) }
      var metrics: EpochMetrics = ["train_loss": sums[0] / sums[1]]
      if !validation.isEmpty {
        network.eval()
        var held = [0.0, 0.0]
        try withNoGrad {
          for rows in DistributedSampler.strided(ScGPTSampling.chunks(validation, batchSize), rank: rank, worldSize: worldSize, padded: false) {
            let (batch, target) = try minibatch(data, rows: rows, inputs: rows.map { pairs[$0] }, genes: Array(0..<data.geneCount),
                                                ids: ids, device: options.device)
            let output = try Autocast.run(on: options.device, dtype: options.training.precision) { try network.forward(batch).mlmOutput }
            held[0] += Functional.mseLoss(output.fullPrecision, target!).item() * Double(rows.count)
            held[1] += Double(rows.count)
          }
        }
        if let group { held = try group.allReduce(held, .sum) }
        metrics["validation_loss"] = held[0] / held[1]
      }
      let score = metrics["validation_loss"] ?? metrics["train_loss"]!
      if score.isFinite, score < (best?.loss ?? .infinity) {
        best = (epoch, score, StateDict(network.stateDict().map { ($0.key, $0.value.detach().clone()) }))
      }
      return metrics
    }
    if let best { try network.loadStateDict(best.state) }
    network.eval()
    let replicaDifference = try ddp?.maxParameterDifference()
    folder.args["task"] = "perturbation"
    folder.args["genes"] = data.genes
    folder.args["train_conditions"] = train
    folder.args["test_conditions"] = test
    folder.args["max_length"] = options.maxLength
    var result = ScGPTTrainingResult(
      history: trainer.history, epochSeconds: trainer.epochSeconds, bestEpoch: best?.epoch ?? options.training.epochs - 1,
      trainingCells: training, validationCells: validation)
    result.replicaDifference = replicaDifference
    result.ranks = group?.worldSize
    return ScGPTPerturbationModel(folder: folder, result: result, trainConditions: train, testConditions: test,
                                  unknownGenes: ids.filter { $0 == padId }.count)
  }

  /// Predicted expression [cells, genes] of control cells `inputs` under `perturbations` (gene
  /// names per cell; all of the data's genes as input), eval mode; `.bfloat16`: under autocast.
  public static func predict(folder: ScGPTModelFolder, data: PerturbSeqData, inputs: [Int], perturbations: [[String]],
                             batchSize: Int = 64, precision: DType = .float32) throws -> [[Float]] {
    guard folder.network.config.perturbationPadId != nil else {
      throw ScGPTError.invalidInput("this model folder is not a perturbation model (no perturbation-flag embedding)")
    }
    guard inputs.count == perturbations.count, batchSize > 0 else { throw ScGPTError.invalidInput("one perturbation per input cell") }
    if let known = folder.args["genes"] as? [String], known != data.genes {
      throw ScGPTError.invalidInput("the data's genes differ from the \(known.count) genes the model was trained on")
    }
    var index: [String: Int] = [:]
    for (i, g) in data.genes.enumerated() where index[g] == nil { index[g] = i }
    let flagged = try perturbations.map { genes in
      try genes.map { gene -> Int in
        guard let i = index[gene] else {
          throw ScGPTError.invalidInput("unknown perturbation gene '\(gene)': it is not among the \(data.geneCount) genes of the model")
        }
        return i
      }
    }
    let network = folder.network
    network.eval()
    let device = network.parameters.first?.device ?? .cpu
    let ids = data.genes.map { folder.vocab[$0] ?? network.config.padTokenId }
    var out: [[Float]] = []
    try withNoGrad {
      for start in stride(from: 0, to: inputs.count, by: batchSize) {
        let range = start..<min(start + batchSize, inputs.count)
        let (batch, _) = try minibatch(data, rows: nil, inputs: Array(inputs[range]), flagged: Array(flagged[range]),
                                       genes: Array(0..<data.geneCount), ids: ids, device: device)
        let output = try Autocast.run(on: device, dtype: precision) { try network.forward(batch).mlmOutput }
        let pred = output.to(.cpu).contiguous().toArray(Float.self)
        for r in 0..<range.count { out.append(Array(pred[(r * data.geneCount)..<((r + 1) * data.geneCount)])) }
      }
    }
    return out
  }

  /// Mean predicted profile of each condition over `pool` control cells (default: up to 300
  /// drawn with `seed`), as the tutorial's `predict`.
  public static func predictConditions(folder: ScGPTModelFolder, data: PerturbSeqData, conditions: [String], pool: Int = 300,
                                       seed: UInt32 = 0, precision: DType = .float32) throws -> [String: [Double]] {
    var random = ScGPTRandom(seed: seed)
    let controls = random.choiceWithoutReplacement(data.controlCells.count, size: min(pool, data.controlCells.count))
      .map { data.controlCells[$0] }
    var out: [String: [Double]] = [:]
    for condition in conditions {
      let genes = try PerturbSeqData.parse(condition)
      let rows = try predict(folder: folder, data: data, inputs: controls, perturbations: Array(repeating: genes, count: controls.count),
                             precision: precision)
      out[PerturbSeqData.canonical(genes)] = meanRows(rows)
    }
    return out
  }

  /// The held-out conditions: each test cell predicted from its paired control cell (as GEARS's
  /// `eval_perturb`), GEARS-style metrics on the condition means against the mean control
  /// profile and the top-20 DE genes, and the two baselines on the same cells.
  public static func evaluate(_ model: ScGPTPerturbationModel, data: PerturbSeqData, seed: UInt32 = 0, topDE: Int = 20,
                              precision: DType = .float32) throws -> ScGPTPerturbationEvaluation
  {
    var random = ScGPTRandom(seed: seed)
    let pairs = pairedControls(data, random: &random)
    let byCondition = data.cellsByCondition()
    let control = data.mean(data.controlCells)
    let de = data.differentiallyExpressedGenes(top: topDE)
    let trainPerturbed = model.trainConditions.flatMap { byCondition[$0] ?? [] }
    let meanPerturbed = data.mean(trainPerturbed)
    var predicted: [String: [Double]] = [:], observed: [String: [Double]] = [:], unchanged: [String: [Double]] = [:]
    for condition in model.testConditions {
      guard let cells = byCondition[condition] else { throw ScGPTError.invalidInput("test condition '\(condition)' has no cells") }
      let inputs = cells.map { pairs[$0] }
      let rows = try predict(folder: model.folder, data: data, inputs: inputs,
                             perturbations: Array(repeating: try PerturbSeqData.parse(condition), count: cells.count),
                             precision: precision)
      predicted[condition] = meanRows(rows)
      observed[condition] = data.mean(cells)
      unchanged[condition] = data.mean(inputs)
    }
    let constant = Dictionary(uniqueKeysWithValues: model.testConditions.map { ($0, meanPerturbed) })
    return ScGPTPerturbationEvaluation(
      model: try PerturbationMetrics(predicted: predicted, observed: observed, control: control, deGenes: de),
      baselines: ["no change": try PerturbationMetrics(predicted: unchanged, observed: observed, control: control, deGenes: de),
                  "mean perturbed": try PerturbationMetrics(predicted: constant, observed: observed, control: control, deGenes: de)],
      predicted: predicted, observed: observed, control: control, deGenes: de)
  }

  // MARK: - Minibatches

  /// For every cell, the control cell it is predicted from: a random control for perturbed
  /// cells, itself for controls.
  static func pairedControls(_ data: PerturbSeqData, random: inout ScGPTRandom) -> [Int] {
    data.conditions.indices.map { cell in
      data.perturbed[cell].isEmpty ? cell : data.controlCells[Int(random.uniform() * Double(data.controlCells.count))]
    }
  }

  /// All genes when they fit; otherwise the rows' perturbed genes and random others, sorted.
  static func genesFor(_ rows: [Int], data: PerturbSeqData, maxLength: Int, random: inout ScGPTRandom) -> [Int] {
    guard data.geneCount > maxLength else { return Array(0..<data.geneCount) }
    var chosen = Set(rows.flatMap { data.perturbed[$0] })
    for g in random.permutation(data.geneCount) where chosen.count < maxLength { chosen.insert(g) }
    return chosen.sorted()
  }

  /// The model's input (vocabulary ids, the input cells' values, flags 1 at each row's
  /// perturbed genes) on `genes`, and the target rows' values there (when `rows` is given).
  static func minibatch(_ data: PerturbSeqData, rows: [Int]?, inputs: [Int], flagged: [[Int]]? = nil, genes: [Int], ids: [Int],
                        device: Device) throws -> (ScGPTBatch, Tensor?) {
    let b = inputs.count, l = genes.count
    var values = [Float](), flags = [Int64](repeating: 0, count: b * l), target = [Float]()
    values.reserveCapacity(b * l)
    var position = [Int: Int]()
    for (k, g) in genes.enumerated() { position[g] = k }
    for (r, input) in inputs.enumerated() {
      let x = data.row(input)
      values += genes.map { x[x.startIndex + $0] }
      for g in flagged?[r] ?? data.perturbed[rows![r]] { if let k = position[g] { flags[r * l + k] = 1 } }
      if let rows {
        let y = data.row(rows[r])
        target += genes.map { y[y.startIndex + $0] }
      }
    }
    let geneIds = Tensor(Array(Array(repeating: genes.map { Int64(ids[$0]) }, count: b).joined()), shape: [b, l])
    let batch = ScGPTBatch(geneIds: geneIds, values: Tensor(values, shape: [b, l]), paddingMask: Tensor.zeros([b, l], dtype: .bool),
                           perturbationFlags: Tensor(flags, shape: [b, l]))
    return (batch.to(device), rows == nil ? nil : Tensor(target, shape: [b, l]).to(device))
  }

  static func meanRows(_ rows: [[Float]]) -> [Double] {
    guard let width = rows.first?.count else { return [] }
    var sum = [Double](repeating: 0, count: width)
    for row in rows { for (j, v) in row.enumerated() { sum[j] += Double(v) } }
    return sum.map { $0 / Double(rows.count) }
  }
}

extension Array {
  /// A seeded shuffle (numpy's permutation order).
  func shuffledBy(_ random: inout ScGPTRandom) -> [Element] { random.permutation(count).map { self[$0] } }
}

extension Array where Element: Hashable {
  /// The elements in order, each once.
  func uniqued() -> [Element] {
    var seen = Set<Element>()
    return filter { seen.insert($0).inserted }
  }
}
