import CellData
import Foundation

/// A Perturb-seq experiment in the GEARS/Norman layout: obs `condition` names the perturbed
/// genes joined by `+`, with `ctrl` standing for "no gene" (`GENE1+ctrl`, `ctrl+GENE1`,
/// `GENE1+GENE2`, and `ctrl` for control cells); X holds log-normalised expression (GEARS's
/// `normalize_total` + `log1p`); gene names are the var index or a var column (GEARS:
/// `gene_name`). Perturbed genes must be among the measured genes.
public struct PerturbSeqData: Sendable {
  public let genes: [String]
  /// Cells × genes, row-major, log-normalised.
  public let expression: [Float]
  /// Each cell's condition in canonical form (genes sorted, `+ctrl` for single ones).
  public let conditions: [String]
  /// Each cell's perturbed genes (gene indices; empty for control cells).
  public let perturbed: [[Int]]
  public let controlCells: [Int]

  public var cellCount: Int { conditions.count }
  public var geneCount: Int { genes.count }

  /// The distinct non-control conditions, sorted.
  public var perturbationConditions: [String] { Array(Set(conditions.filter { $0 != Self.control })).sorted() }

  public static let control = "ctrl"

  /// Reads `adata`: conditions from obs `conditionKey`, gene names from var `geneColumn`
  /// (default: `gene_name` when present, else the var index), expression from `layer` or X.
  /// `normalize` applies normalize_total(1e4) + log1p first (for raw counts).
  public init(_ adata: AnnData, conditionKey: String = "condition", geneColumn: String? = nil, layer: String? = nil,
              normalize: Bool = false) throws {
    guard adata.obs[conditionKey] != nil else {
      throw ScGPTError.invalidInput("no condition column '\(conditionKey)' in obs (obs has: \(adata.obs.columnNames.joined(separator: ", ")))")
    }
    let column = geneColumn ?? (adata.var["gene_name"] != nil ? "gene_name" : nil)
    let names: [String]
    if let column {
      guard adata.var[column] != nil else {
        throw ScGPTError.invalidInput("no var column '\(column)' of gene names (var columns: \(adata.var.columnNames.joined(separator: ", ")))")
      }
      names = try adata.var.labels(column).enumerated().map { $1 ?? adata.varNames[$0] }
    } else {
      names = adata.varNames
    }
    var data = adata
    if let layer {
      guard let m = adata.layers[layer] else { throw ScGPTError.invalidInput("no layer '\(layer)'") }
      data.X = m
    }
    guard data.X != nil else { throw ScGPTError.invalidInput("the data have no expression matrix (X)") }
    if normalize {
      try data.normalizeTotal(targetSum: 1e4)
      try data.log1p()
    }
    let values = try data.X!.denseDoubles()
    if let bad = values.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
      throw ScGPTError.invalidInput(
        "cell '\(data.obsNames[bad / max(data.nVars, 1)])' has the value \(values[bad]): expression must be finite and non-negative")
    }
    try self.init(genes: names, expression: values.map(Float.init), conditions: try adata.obs.labels(conditionKey).enumerated().map {
      guard let c = $1 else { throw ScGPTError.invalidInput("cell '\(adata.obsNames[$0])' has no condition in obs['\(conditionKey)']") }
      return c
    })
  }

  /// From parts: `expression` is conditions.count × genes.count, row-major.
  public init(genes: [String], expression: [Float], conditions rawConditions: [String]) throws {
    guard !genes.isEmpty, !rawConditions.isEmpty, expression.count == genes.count * rawConditions.count else {
      throw ScGPTError.invalidInput("expression must be \(rawConditions.count) cells × \(genes.count) genes")
    }
    var index: [String: Int] = [:]
    for (i, g) in genes.enumerated() where index[g] == nil { index[g] = i }
    var canonical: [String: (String, [Int])] = [:]
    var conditions: [String] = [], perturbed: [[Int]] = []
    for raw in rawConditions {
      if canonical[raw] == nil {
        let parts = try Self.parse(raw)
        let ids = try parts.map { gene -> Int in
          guard let i = index[gene] else {
            throw ScGPTError.invalidInput("condition '\(raw)' perturbs '\(gene)', which is not among the \(genes.count) measured genes")
          }
          return i
        }
        canonical[raw] = (Self.canonical(parts), ids)
      }
      conditions.append(canonical[raw]!.0)
      perturbed.append(canonical[raw]!.1)
    }
    let controls = conditions.indices.filter { perturbed[$0].isEmpty }
    guard !controls.isEmpty else { throw ScGPTError.invalidInput("no control cells (condition '\(Self.control)')") }
    self.genes = genes
    self.expression = expression
    self.conditions = conditions
    self.perturbed = perturbed
    controlCells = controls
  }

  /// The genes of a condition string: `ctrl` → [], `A+ctrl` / `ctrl+A` / `A` → [A], `A+B` →
  /// [A, B]. Empty parts, a gene named twice and `ctrl+ctrl` are errors.
  public static func parse(_ condition: String) throws -> [String] {
    let trimmed = condition.trimmingCharacters(in: .whitespaces)
    let parts = trimmed.split(separator: "+", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard !trimmed.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else {
      throw ScGPTError.invalidInput("condition '\(condition)' does not parse: expected 'ctrl', 'GENE+ctrl' or 'GENE1+GENE2'")
    }
    let genes = parts.filter { $0 != control }
    guard Set(genes).count == genes.count else { throw ScGPTError.invalidInput("condition '\(condition)' names a gene twice") }
    guard !(genes.isEmpty && parts.count > 1) else {
      throw ScGPTError.invalidInput("condition '\(condition)' does not parse: controls are written 'ctrl'")
    }
    return genes
  }

  /// `ctrl`, `A+ctrl` or `A+B` with the genes sorted.
  public static func canonical(_ genes: [String]) -> String {
    switch genes.count {
    case 0: return control
    case 1: return genes[0] + "+" + control
    default: return genes.sorted().joined(separator: "+")
    }
  }

  /// Row `cell` of the expression.
  public func row(_ cell: Int) -> ArraySlice<Float> { expression[(cell * geneCount)..<((cell + 1) * geneCount)] }

  /// Mean expression over `cells` [genes].
  public func mean(_ cells: [Int]) -> [Double] {
    var sum = [Double](repeating: 0, count: geneCount)
    for c in cells { for (j, v) in row(c).enumerated() { sum[j] += Double(v) } }
    return sum.map { $0 / Double(max(cells.count, 1)) }
  }

  /// The cells of each condition.
  public func cellsByCondition() -> [String: [Int]] {
    Dictionary(grouping: conditions.indices, by: { conditions[$0] })
  }

  /// The top `n` differentially expressed genes of each perturbation condition against the
  /// control cells, as GEARS's `rank_genes_groups_cov_all` (scanpy's t-test, Welch's t with
  /// the variances over n − 1, ranked by |t|). GEARS ranks within covariate groups; this data
  /// has one. Genes constant in both groups have t = 0.
  public func differentiallyExpressedGenes(top n: Int = 20) -> [String: [Int]] {
    let controls = meanVariance(controlCells)
    var out: [String: [Int]] = [:]
    for (condition, cells) in cellsByCondition() where condition != Self.control {
      let group = meanVariance(cells)
      let t = (0..<geneCount).map { j -> Double in
        let se = (group.variance[j] / Double(cells.count) + controls.variance[j] / Double(controlCells.count)).squareRoot()
        let d = group.mean[j] - controls.mean[j]
        return se > 0 ? d / se : 0
      }
      out[condition] = Array(t.indices.sorted { abs(t[$0]) != abs(t[$1]) ? abs(t[$0]) > abs(t[$1]) : $0 < $1 }.prefix(n))
    }
    return out
  }

  private func meanVariance(_ cells: [Int]) -> (mean: [Double], variance: [Double]) {
    let mean = self.mean(cells)
    var ss = [Double](repeating: 0, count: geneCount)
    for c in cells { for (j, v) in row(c).enumerated() { ss[j] += (Double(v) - mean[j]) * (Double(v) - mean[j]) } }
    return (mean, ss.map { $0 / Double(max(cells.count - 1, 1)) })
  }
}
