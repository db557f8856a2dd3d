import Foundation

/// GEARS-style evaluation of predicted perturbation effects, as scGPT's
/// `compute_perturbation_metrics`: per condition, the Pearson correlation over genes between
/// the mean predicted and mean observed profiles (`pearson`), between their changes from the
/// mean control profile (`pearson_delta`), and the same two on the condition's top DE genes
/// (`pearson_de`, `pearson_de_delta`); then their means over conditions.
public struct PerturbationMetrics: Sendable {
  public struct Scores: Sendable, Equatable {
    public var pearson: Double
    public var pearsonDelta: Double
    public var pearsonDE: Double
    public var pearsonDEDelta: Double

    public static let names = ["pearson", "pearson_delta", "pearson_de", "pearson_de_delta"]
    public var values: [Double] { [pearson, pearsonDelta, pearsonDE, pearsonDEDelta] }
  }

  /// Per condition, sorted by name.
  public var conditions: [(condition: String, scores: Scores)]
  /// Means over conditions of each finite score (a constant profile has no correlation: NaN,
  /// left out of the mean, where the reference's mean would be NaN).
  public var mean: Scores

  /// `predicted` and `observed`: mean profiles per condition [genes]; `control`: the mean
  /// control profile; `deGenes`: the top DE genes of each condition.
  public init(predicted: [String: [Double]], observed: [String: [Double]], control: [Double], deGenes: [String: [Int]]) throws {
    var rows: [(String, Scores)] = []
    for condition in observed.keys.sorted() {
      guard let p = predicted[condition] else { throw ScGPTError.invalidInput("no prediction for condition '\(condition)'") }
      let o = observed[condition]!
      guard p.count == control.count, o.count == control.count else {
        throw ScGPTError.invalidInput("condition '\(condition)': profiles of \(p.count) and \(o.count) genes for \(control.count) control genes")
      }
      let de = deGenes[condition] ?? []
      let dp = zip(p, control).map { $0 - $1 }, d = zip(o, control).map { $0 - $1 }
      rows.append((condition, Scores(
        pearson: pearsonCorrelation(p, o), pearsonDelta: pearsonCorrelation(dp, d),
        pearsonDE: pearsonCorrelation(de.map { p[$0] }, de.map { o[$0] }),
        pearsonDEDelta: pearsonCorrelation(de.map { dp[$0] }, de.map { d[$0] }))))
    }
    conditions = rows
    func average(_ k: KeyPath<Scores, Double>) -> Double {
      let v = rows.map { $0.1[keyPath: k] }.filter(\.isFinite)
      return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
    }
    mean = Scores(pearson: average(\.pearson), pearsonDelta: average(\.pearsonDelta), pearsonDE: average(\.pearsonDE),
                  pearsonDEDelta: average(\.pearsonDEDelta))
  }

  /// CSV: one row per condition, then `mean`.
  public func csv() -> String {
    var out = "condition," + Scores.names.joined(separator: ",") + "\n"
    func line(_ name: String, _ s: Scores) -> String { name + "," + s.values.map { String(format: "%.6g", $0) }.joined(separator: ",") + "\n" }
    for (c, s) in conditions { out += line(c, s) }
    return out + line("mean", mean)
  }
}

/// Pearson's r; NaN when either side is constant or fewer than 2 values.
public func pearsonCorrelation(_ x: [Double], _ y: [Double]) -> Double {
  precondition(x.count == y.count)
  let n = Double(x.count)
  guard x.count >= 2 else { return .nan }
  let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
  var sxy = 0.0, sxx = 0.0, syy = 0.0
  for (a, b) in zip(x, y) {
    sxy += (a - mx) * (b - my)
    sxx += (a - mx) * (a - mx)
    syy += (b - my) * (b - my)
  }
  return sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : .nan
}
