import ArgumentParser
import Foundation
import SingleCell

/// `singlecell scgpt perturb DATA.h5ad -o OUTDIR`: perturbation prediction (Tutorial_Perturbation).
struct ScGPTPerturbCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "perturb", abstract: "Train scGPT's perturbation model on control/perturbed pairs and predict unseen perturbations.",
    discussion: """
      DATA.h5ad is in the GEARS/Norman layout: obs 'condition' ('ctrl', 'GENE+ctrl', 'GENE1+GENE2'), X \
      log-normalised expression (or raw counts with --normalize), gene names in var 'gene_name' or the var \
      index. Each perturbed cell is paired with a random control cell; the model reads the control's \
      expression with flags on the perturbed genes and learns the perturbed cell's (MSE on all genes). \
      --test-conditions (or --test-fraction of the conditions, at random) are held out and evaluated \
      GEARS-style (Pearson and Pearson-delta on all genes and on each condition's top-20 DE genes) \
      against two baselines: 'no change' and 'mean perturbed profile'. Writes OUTDIR: model/ (the model \
      folder), history.csv, metrics.csv (per test condition), metrics.json (means, baselines), \
      predictions.csv (with --predict: mean predicted profile per condition over control cells) and \
      perturbation.png (predicted against observed change for --plot-condition, default the first test \
      condition). A failed run leaves OUTDIR as it was. See docs/scgpt.md.
      """)

  @OptionGroup var global: GlobalOptions
  @OptionGroup var arithmetic: PrecisionArguments
  @Argument(help: "Perturb-seq .h5ad (GEARS/Norman layout).") var input: String
  @Option(name: [.short, .customLong("output")], help: "Output folder.") var output: String
  @Option(help: "obs column of conditions.") var conditionKey = "condition"
  @Option(help: "var column of gene names (default: 'gene_name' when present, else var names).") var geneCol: String?
  @Option(help: "Layer of expression (default X).") var layer: String?
  @Flag(help: "X holds raw counts: normalize_total(1e4) + log1p first.") var normalize = false
  @Option(help: "Held-out conditions, comma-separated (e.g. 'A+ctrl,A+B').") var testConditions: String?
  @Option(help: "Share of the conditions held out at random when --test-conditions is not given.") var testFraction = 0.2
  @Option(help: "Conditions to predict from the control cells, comma-separated (genes must be measured).") var predict: String?
  @Option(help: "Condition of the plot (default: the first test condition).") var plotCondition: String?
  @Option(help: "Pretrained scGPT model folder to start from (default: a new model).") var model: String?
  @Option(help: "Genes per training minibatch (the tutorial's 1536).") var maxLength = 1536
  @Option(help: "Training epochs.") var epochs = 15
  @Option(help: "Cells per minibatch.") var batchSize = 64
  @Option(help: "Adam's learning rate (StepLR × 0.9 per epoch).") var lr = 1e-4
  @Option(help: "New model: embedding size.") var dModel = 128
  @Option(help: "New model: attention heads.") var nheads = 4
  @Option(help: "New model: feed-forward width.") var dHid = 128
  @Option(help: "New model: transformer layers.") var nlayers = 4
  @Option(help: "New model: dropout (the tutorial's 0).") var dropout = 0.0
  @OptionGroup(title: "Data-parallel training (docs/distributed.md)") var distributed: DistributedArguments

  func run() throws {
    guard let (device, group) = try distributed.start(global) else { return }
    let data = try PerturbSeqData(try AnnData.read(h5ad: input), conditionKey: conditionKey, geneColumn: geneCol, layer: layer,
                                  normalize: normalize)
    let requested = try list(predict).map { try PerturbSeqData.canonical(PerturbSeqData.parse($0)) }
    // Checked before training: a prediction of an unmeasured gene would fail only at the end.
    for gene in try requested.flatMap(PerturbSeqData.parse) where !data.genes.contains(gene) {
      throw ValidationError("unknown perturbation gene '\(gene)' in --predict: it is not among the \(data.geneCount) measured genes")
    }
    var options = ScGPTPerturbationOptions()
    options.training.epochs = epochs
    options.training.batchSize = batchSize
    options.training.learningRate = lr
    options.training.seed = UInt32(truncatingIfNeeded: global.seed)
    options.training.progress = true
    options.architecture.dModel = dModel
    options.architecture.nHead = nheads
    options.architecture.dHid = dHid
    options.architecture.nLayers = nlayers
    options.architecture.dropout = dropout
    options.maxLength = maxLength
    options.testFraction = testFraction
    options.testConditions = testConditions.map { list($0) }
    options.pretrained = model.map { URL(fileURLWithPath: $0) }
    options.device = device
    options.training.precision = arithmetic.dtype
    options.training.processGroup = group
    if (group?.rank ?? 0) == 0 { print("\(data.cellCount) cells (\(data.controlCells.count) controls) × \(data.geneCount) genes, \(data.perturbationConditions.count) perturbation conditions") }

    let outdir = URL(fileURLWithPath: output)
    let wrote = try writeFolderOnRankZero(outdir, group: group) { staging in
      let trained = try ScGPTPerturbation.train(data, options: options)
      guard let staging else { return }
      if trained.unknownGenes > 0 { warn("\(trained.unknownGenes) genes are not in the pretrained vocabulary (they enter as <pad>)") }
      let evaluation = try ScGPTPerturbation.evaluate(trained, data: data, seed: options.training.seed,
                                                      precision: options.training.precision)
      try trained.folder.save(to: staging.appendingPathComponent("model"))
      try writeAtomically(Data(trained.result.history.csv().utf8), to: staging.appendingPathComponent("history.csv"))
      try writeAtomically(Data(evaluation.model.csv().utf8), to: staging.appendingPathComponent("metrics.csv"))
      func means(_ m: PerturbationMetrics) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(PerturbationMetrics.Scores.names, m.mean.values))
      }
      var metrics: [String: Any] = [
        "model": "scgpt", "task": "perturbation", "epochs": trained.result.history.epochs.count, "best_epoch": trained.result.bestEpoch + 1,
        "epoch_seconds": trained.result.epochSeconds, "train_conditions": trained.trainConditions, "test_conditions": trained.testConditions,
        "scgpt": means(evaluation.model),
      ]
      metrics.merge(dataParallelMetrics(ranks: trained.result.ranks, replicaDifference: trained.result.replicaDifference)) { $1 }
      for (name, m) in evaluation.baselines { metrics[name.replacingOccurrences(of: " ", with: "_")] = means(m) }
      try writeJSON(metrics, to: staging.appendingPathComponent("metrics.json"))

      if !requested.isEmpty {
        let profiles = try ScGPTPerturbation.predictConditions(folder: trained.folder, data: data, conditions: requested,
                                                               seed: options.training.seed, precision: options.training.precision)
        var csv = "condition," + data.genes.joined(separator: ",") + "\n"
        for c in requested { csv += c + "," + profiles[c]!.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n" }
        try writeAtomically(Data(csv.utf8), to: staging.appendingPathComponent("predictions.csv"))
      }
      let shown = try plotCondition.map { try PerturbSeqData.canonical(PerturbSeqData.parse($0)) } ?? trained.testConditions.first
      if let shown {
        guard let predicted = evaluation.predicted[shown], let observed = evaluation.observed[shown] else {
          throw ValidationError("--plot-condition '\(shown)' is not a test condition (\(trained.testConditions.joined(separator: ", ")))")
        }
        let c = evaluation.control
        try ScatterPlot(x: zip(observed, c).map { $0 - $1 }, y: zip(predicted, c).map { $0 - $1 },
                        highlighted: evaluation.deGenes[shown] ?? [], labels: data.genes, title: "\(shown): change from control",
                        xLabel: "observed change", yLabel: "predicted change").write(to: staging.appendingPathComponent("perturbation.png"))
      }
      print("held-out conditions: \(trained.testConditions.count)    " + PerturbationMetrics.Scores.names.joined(separator: "  "))
      for (name, m) in [("scGPT", evaluation.model)] + evaluation.baselines.sorted(by: { $0.key < $1.key }) {
        print(name.padding(toLength: 16, withPad: " ", startingAt: 0) + m.mean.values.map { String(format: "%8.4f", $0) }.joined(separator: "  "))
      }
    }
    if wrote { print("wrote \(outdir.path)") }
  }

  private func list(_ text: String?) -> [String] {
    (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
  }
}

/// `singlecell simulate perturbseq --profiles COUNTS.h5ad -o SIM.h5ad`.
struct SimulatePerturbSeqCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "perturbseq", abstract: "A simulated Perturb-seq set (GEARS layout) built on real control profiles.",
    discussion: """
      Takes --cells cells of PROFILES (raw counts; drawn with --seed), log-normalises them (normalize_total \
      1e4, log1p) and keeps the --genes genes with the most counts; these are the control cells. Then \
      --perturbed genes get a regulatory program (the gene itself up by --self-effect, its --program-size \
      most correlated genes shifted in proportion to their correlation), and --doubles random pairs \
      combine two programs with an interaction (buffering 0.6, additive 1 or synergy 1.6). Each condition \
      has --cells-per-condition cells: a control profile plus the effect plus noise. obs 'condition' \
      ('ctrl', 'A+ctrl', 'A+B'), 'control', 'interaction'; var 'gene_name'. See docs/scgpt.md.
      """)

  @OptionGroup var global: GlobalOptions
  @Option(help: ".h5ad of real counts (e.g. ../shared/data/pbmc_frozen_sorted_5k.h5ad).") var profiles: String
  @Option(help: "Layer of counts in PROFILES (default X).") var layer: String?
  @Option(help: "Control cells to take from PROFILES.") var cells = 600
  @Option(help: "Genes to keep (those with the most counts).") var genes = 200
  @Option(help: "Perturbed genes (single perturbations).") var perturbed = 16
  @Option(help: "Double perturbations (random pairs of the perturbed genes).") var doubles = 12
  @Option(help: "Cells per perturbation condition.") var cellsPerCondition = 30
  @Option(help: "Genes in each program.") var programSize = 20
  @Option(help: "Change of the perturbed gene itself (log units).") var selfEffect = 2.0
  @Option(help: "SD of the per-cell noise (log units).") var noise = 0.1
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad.") var output: String

  func run() throws {
    _ = try global.apply()
    var source = try AnnData.read(h5ad: profiles, requireX: layer == nil)
    if let layer {
      guard let m = source.layers[layer] else { throw ValidationError("no layer '\(layer)' in \(profiles)") }
      source.X = m
    }
    guard cells >= 2, cells <= source.nObs, genes >= 4, genes <= source.nVars else {
      throw ValidationError("--cells must lie in 2…\(source.nObs) and --genes in 4…\(source.nVars)")
    }
    var random = ScGPTRandom(seed: UInt32(truncatingIfNeeded: global.seed))
    var controls = try source.subset(obs: random.choiceWithoutReplacement(source.nObs, size: cells).sorted())
    let totals = try controls.X!.columnSums()
    let kept = totals.indices.sorted { totals[$0] > totals[$1] }.prefix(genes).sorted()
    controls = try controls.subset(vars: kept)
    try controls.normalizeTotal(targetSum: 1e4)
    try controls.log1p()
    var options = PerturbSeqSimulation.Options()
    options.perturbedGenes = perturbed
    options.doubles = doubles
    options.cellsPerCondition = cellsPerCondition
    options.programSize = programSize
    options.selfEffect = selfEffect
    options.noise = noise
    options.seed = UInt32(truncatingIfNeeded: global.seed)
    let simulated = try PerturbSeqSimulation.simulate(controls: try controls.X!.denseDoubles().map(Float.init),
                                                      genes: controls.varNames, options: options)
    try simulated.write(h5ad: output)
    print("wrote \(output): \(simulated.nObs) cells (\(cells) controls, \(perturbed) single and \(doubles) double perturbations) × \(genes) genes")
  }
}
