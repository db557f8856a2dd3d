/// scGPT's per-cell value binning (`scgpt.preprocess`): the non-zero values of a cell are cut
/// at `nBins − 1` quantile edges (numpy's linear quantiles at linspace(0, 1, nBins − 1), the
/// minimum and maximum included) and each gets a bin in 1…nBins − 1; zeros stay 0.
///
/// A value equal to one or more edges (repeated quantiles, ties in the data) lies in several
/// candidate bins. The reference draws one at random (`_digitize`); `TieBreak.random` does the
/// same with numpy's stream (same seed, same bins), `TieBreak.lowest` takes the lowest candidate
/// so that the same cell always gets the same bins (the default: reproducible inference).
public struct ValueBinning: Sendable {
  public enum TieBreak: Sendable {
    /// The lowest candidate bin: deterministic.
    case lowest
    /// A uniform candidate, as the reference's `_digitize` (one `np.random.rand` draw per
    /// non-zero value of every binned cell, ties or not).
    case random
  }

  public var nBins: Int
  public var tieBreak: TieBreak

  public init(nBins: Int = 51, tieBreak: TieBreak = .lowest) {
    self.nBins = nBins
    self.tieBreak = tieBreak
  }

  /// One cell's bins and its edges `[0, q_0 … q_{nBins−2}]` (nBins values; all 0 for a cell
  /// without non-zero values). `random` is used only by `.random`.
  public func bin(_ row: [Float], random: inout ScGPTRandom) -> (bins: [Int], edges: [Double]) {
    let nonZero = row.indices.filter { row[$0] != 0 }
    guard !nonZero.isEmpty else {
      return ([Int](repeating: 0, count: row.count), [Double](repeating: 0, count: nBins))
    }
    let values = nonZero.map { row[$0] }
    let edges = Self.quantiles(values, count: nBins - 1)
    var bins = [Int](repeating: 0, count: row.count)
    for (k, j) in nonZero.enumerated() {
      let x = Double(values[k])
      let left = Self.upperBound(edges, x)  // np.digitize(x, edges): edges[i-1] <= x < edges[i]
      let right = Self.lowerBound(edges, x)  // right=True: edges[i-1] < x <= edges[i]
      switch tieBreak {
      case .lowest:
        bins[j] = right < left ? right + 1 : left
      case .random:
        let u = random.uniform()
        bins[j] = Int((u * Double(right - left) + Double(left)).rounded(.up))
      }
    }
    return (bins, [0] + edges)
  }

  /// The candidate bins of each value of a row, lowest…highest (0…0 for zeros), given its
  /// edges as `bin` returns them: which bins the reference's random tie-break can give.
  public static func candidateBins(_ row: [Float], edges: [Double]) -> [ClosedRange<Int>] {
    let cuts = Array(edges.dropFirst())
    return row.map { v in
      guard v != 0 else { return 0...0 }
      let left = upperBound(cuts, Double(v)), right = lowerBound(cuts, Double(v))
      return (right < left ? right + 1 : left)...left
    }
  }

  /// numpy's `quantile(values, linspace(0, 1, count))` with the default linear method, on
  /// float32 input: the difference of neighbours in float32, the interpolation in float64.
  static func quantiles(_ values: [Float], count: Int) -> [Double] {
    let sorted = values.sorted()
    let n = sorted.count
    let step = count > 1 ? 1.0 / Double(count - 1) : 0
    return (0..<count).map { i in
      let q = i == count - 1 ? 1.0 : Double(i) * step
      let virtual = Double(n - 1) * q
      var previous = virtual.rounded(.down), next = previous + 1
      if virtual >= Double(n - 1) { previous = -1; next = -1 }
      let gamma = virtual - previous
      let a = sorted[previous < 0 ? n - 1 : Int(previous)], b = sorted[next < 0 ? n - 1 : Int(next)]
      let diff = Double(b - a)  // float32 subtraction, as numpy's _lerp
      return gamma >= 0.5 ? Double(b) - diff * (1 - gamma) : Double(a) + diff * gamma
    }
  }

  /// Number of edges <= x.
  static func upperBound(_ edges: [Double], _ x: Double) -> Int {
    var lo = 0, hi = edges.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if edges[mid] <= x { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }

  /// Number of edges < x.
  static func lowerBound(_ edges: [Double], _ x: Double) -> Int {
    var lo = 0, hi = edges.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if edges[mid] < x { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }
}
