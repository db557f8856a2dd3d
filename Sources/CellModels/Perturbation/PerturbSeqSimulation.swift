import CellData
import Foundation

/// A simulated Perturb-seq experiment built on real control profiles, for testing perturbation
/// models where no public screen can be read (documented in docs/scgpt.md).
///
/// - Perturbable genes: `perturbedGenes` drawn among the better-expressed half of the genes.
/// - Each perturbed gene g has a regulatory program: g itself moves by `selfEffect` (log units,
///   CRISPRa-like: up), and its `programSize` genes most correlated with g across the control
///   cells move by `programStrength · a_g · r(g, t) / max |r(g, ·)|`, with a_g ∈ [0.5, 1.5]
///   drawn per gene; so the program follows the genes' co-expression in the controls.
/// - Double perturbations A+B: the sum of both effects, scaled by an interaction factor drawn
///   per pair from {0.6 (buffering), 1 (additive), 1.6 (synergy)}.
/// - A perturbed cell is a control profile drawn at random plus the effect plus Gaussian noise
///   (sd `noise`), clipped at 0. Control cells are kept as they are.
public enum PerturbSeqSimulation {
  public struct Options: Sendable {
    public var perturbedGenes = 16
    public var doubles = 12
    public var cellsPerCondition = 30
    public var programSize = 20
    public var selfEffect = 2.0
    public var programStrength = 1.0
    public var noise = 0.1
    public var seed: UInt32 = 0
    public init() {}
  }

  /// The simulated experiment: control cells first (condition `ctrl`), then each condition's
  /// cells; obs `condition`, `control` (1/0), `interaction` (the factor; 1 for singles); var
  /// `gene_name`. X is dense log-normalised expression.
  public static func simulate(controls: [Float], genes: [String], options: Options) throws -> AnnData {
    let g = genes.count
    guard g >= 2, !controls.isEmpty, controls.count % g == 0 else {
      throw ScGPTError.invalidInput("control profiles must be cells × \(g) genes")
    }
    let n = controls.count / g
    guard n >= 2 else { throw ScGPTError.invalidInput("at least 2 control cells are needed") }
    guard options.perturbedGenes >= 2, options.perturbedGenes <= g / 2, options.cellsPerCondition >= 1, options.programSize >= 1,
          options.doubles >= 0, options.doubles <= options.perturbedGenes * (options.perturbedGenes - 1) / 2
    else {
      throw ScGPTError.invalidInput("perturbed genes must lie in 2…\(g / 2), doubles in 0…pairs of them, cells and program size ≥ 1")
    }
    var random = ScGPTRandom(seed: options.seed)
    let (mean, sd) = columnMeanSD(controls, genes: g)
    let expressed = mean.indices.sorted { mean[$0] > mean[$1] }.prefix(g / 2).sorted()
    let chosen = random.choiceWithoutReplacement(expressed.count, size: options.perturbedGenes).map { expressed[$0] }.sorted()

    var effects: [Int: [Double]] = [:]
    for p in chosen {
      let r = (0..<g).map { t -> Double in t == p || sd[t] == 0 || sd[p] == 0 ? 0 : correlation(controls, genes: g, p, t, mean, sd) }
      let targets = r.indices.filter { $0 != p }.sorted { abs(r[$0]) > abs(r[$1]) }.prefix(options.programSize)
      let scale = targets.map { abs(r[$0]) }.max() ?? 0
      let a = 0.5 + random.uniform()
      var effect = [Double](repeating: 0, count: g)
      if scale > 0 { for t in targets { effect[t] = options.programStrength * a * r[t] / scale } }
      effect[p] = options.selfEffect
      effects[p] = effect
    }

    var conditions: [(genes: [Int], interaction: Double)] = chosen.map { ([$0], 1) }
    var pairs: [(Int, Int)] = []
    for i in chosen.indices { for j in chosen.indices where j > i { pairs.append((chosen[i], chosen[j])) } }
    for k in random.choiceWithoutReplacement(pairs.count, size: options.doubles) {
      conditions.append(([pairs[k].0, pairs[k].1], [0.6, 1.0, 1.6][Int(random.uniform() * 3)]))
    }

    var values = controls, labels = [String](repeating: PerturbSeqData.control, count: n), factors = [Double](repeating: 1, count: n)
    for (perturbed, factor) in conditions {
      var effect = [Double](repeating: 0, count: g)
      for p in perturbed { for t in 0..<g { effect[t] += effects[p]![t] } }
      let name = PerturbSeqData.canonical(perturbed.map { genes[$0] })
      for _ in 0..<options.cellsPerCondition {
        let base = Int(random.uniform() * Double(n)) * g
        for t in 0..<g {
          let v = Double(controls[base + t]) + factor * effect[t] + options.noise * gaussian(&random)
          values.append(Float(max(v, 0)))
        }
        labels.append(name)
        factors.append(factor)
      }
    }
    let cells = labels.count
    var obs = DataFrame(index: (0..<cells).map { "cell\($0)" })
    try obs.set("condition", .categorical(Categorical(labels)))
    try obs.set("control", .dense(try DenseArray(shape: [cells], data: .int64(labels.map { $0 == PerturbSeqData.control ? 1 : 0 }))))
    try obs.set("interaction", .dense(try DenseArray(shape: [cells], data: .float64(factors))))
    var variables = DataFrame(index: genes)
    try variables.set("gene_name", .categorical(Categorical(genes)))
    return try AnnData(X: .dense(try DenseArray(rows: cells, cols: g, values: values)), obs: obs, var: variables)
  }

  private static func columnMeanSD(_ x: [Float], genes g: Int) -> (mean: [Double], sd: [Double]) {
    let n = x.count / g
    var mean = [Double](repeating: 0, count: g), ss = [Double](repeating: 0, count: g)
    for i in 0..<n { for j in 0..<g { mean[j] += Double(x[i * g + j]) } }
    mean = mean.map { $0 / Double(n) }
    for i in 0..<n { for j in 0..<g { ss[j] += (Double(x[i * g + j]) - mean[j]) * (Double(x[i * g + j]) - mean[j]) } }
    return (mean, ss.map { ($0 / Double(n)).squareRoot() })
  }

  private static func correlation(_ x: [Float], genes g: Int, _ a: Int, _ b: Int, _ mean: [Double], _ sd: [Double]) -> Double {
    let n = x.count / g
    var s = 0.0
    for i in 0..<n { s += (Double(x[i * g + a]) - mean[a]) * (Double(x[i * g + b]) - mean[b]) }
    return s / Double(n) / (sd[a] * sd[b])
  }

  /// A standard normal draw (Box–Muller).
  private static func gaussian(_ random: inout ScGPTRandom) -> Double {
    let u = max(random.uniform(), 1e-300), v = random.uniform()
    return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
  }
}
