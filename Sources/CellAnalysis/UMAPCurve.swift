import CellData
import Foundation

extension UMAP {
  /// umap-learn's `find_ab_params`: least-squares fit of 1 / (1 + a·x^(2b)) to the target
  /// curve (1 below `minDist`, exp(−(x − minDist)/spread) above) on 300 points of
  /// [0, 3·spread], by Levenberg–Marquardt from (1, 1) as scipy's `curve_fit`.
  public static func findABParams(spread: Double = 1, minDist: Double = 0.5) throws -> (a: Double, b: Double) {
    guard spread > 0, minDist >= 0, minDist <= spread * 3 else {
      throw CellDataError("UMAP: need spread > 0 and 0 ≤ min_dist ≤ 3·spread (got spread \(spread), min_dist \(minDist))")
    }
    let count = 300
    let xs = (0..<count).map { spread * 3 * Double($0) / Double(count - 1) }
    let ys = xs.map { $0 < minDist ? 1 : exp(-($0 - minDist) / spread) }

    func residualsAndJacobian(_ a: Double, _ b: Double) -> (r: [Double], ja: [Double], jb: [Double]) {
      var r = [Double](repeating: 0, count: count), ja = r, jb = r
      for (t, x) in xs.enumerated() {
        guard x > 0 else {
          r[t] = 1 - ys[t]
          continue
        }
        let power = pow(x, 2 * b)
        let denominator = 1 + a * power
        let f = 1 / denominator
        r[t] = f - ys[t]
        let dfdDenominator = -f * f
        ja[t] = dfdDenominator * power
        jb[t] = dfdDenominator * a * power * 2 * log(x)
      }
      return (r, ja, jb)
    }
    func cost(_ r: [Double]) -> Double { r.reduce(0) { $0 + $1 * $1 } }

    var a = 1.0, b = 1.0, lambda = 1e-3
    var (r, ja, jb) = residualsAndJacobian(a, b)
    var current = cost(r)
    for _ in 0..<500 {
      // Normal equations (JᵀJ + λ·diag(JᵀJ)) δ = −Jᵀr.
      var haa = 0.0, hab = 0.0, hbb = 0.0, ga = 0.0, gb = 0.0
      for t in 0..<count {
        haa += ja[t] * ja[t]
        hab += ja[t] * jb[t]
        hbb += jb[t] * jb[t]
        ga += ja[t] * r[t]
        gb += jb[t] * r[t]
      }
      var improved = false
      for _ in 0..<50 {
        let m11 = haa * (1 + lambda), m22 = hbb * (1 + lambda)
        let det = m11 * m22 - hab * hab
        guard det != 0 else { break }
        let da = (-ga * m22 + gb * hab) / det
        let db = (-gb * m11 + ga * hab) / det
        let trial = residualsAndJacobian(a + da, b + db)
        let trialCost = cost(trial.r)
        if trialCost.isFinite, trialCost <= current {
          let step = Swift.max(Swift.abs(da) / Swift.max(Swift.abs(a), 1e-12), Swift.abs(db) / Swift.max(Swift.abs(b), 1e-12))
          a += da
          b += db
          (r, ja, jb) = trial
          let relativeDecrease = (current - trialCost) / Swift.max(current, 1e-300)
          current = trialCost
          lambda = Swift.max(lambda / 10, 1e-12)
          improved = step > 1e-14 && relativeDecrease > 1e-16
          break
        }
        lambda *= 10
      }
      if !improved { break }
    }
    return (a, b)
  }
}
