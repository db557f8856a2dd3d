import Foundation

/// A rectangle of the figure (points) that maps a data range onto itself, y up.
struct AxesFrame {
  var x: Double
  var y: Double
  var width: Double
  var height: Double
  var xRange: ClosedRange<Double>
  var yRange: ClosedRange<Double>

  func point(_ dataX: Double, _ dataY: Double) -> ScenePoint {
    let fx = (dataX - xRange.lowerBound) / Swift.max(xRange.upperBound - xRange.lowerBound, .leastNonzeroMagnitude)
    let fy = (dataY - yRange.lowerBound) / Swift.max(yRange.upperBound - yRange.lowerBound, .leastNonzeroMagnitude)
    return ScenePoint(x + fx * width, y + height - fy * height)
  }

  var border: SceneItem {
    .rect(x: x, y: y, width: width, height: height, fill: nil, stroke: .black, lineWidth: 0.8)
  }
}

enum PlotStyle {
  static let titleSize = 12.0
  static let labelSize = 10.0
  static let tickSize = 9.0
  static let legendSize = 9.0
  static let margin = 10.0
}

/// Range with matplotlib's default 5 % margin on each side (a flat range widens by ±0.5).
func paddedRange(_ values: [Double], margin: Double = 0.05) -> ClosedRange<Double> {
  let finite = values.filter(\.isFinite)
  guard let lo = finite.min(), let hi = finite.max() else { return 0...1 }
  if hi == lo { return (lo - 0.5)...(hi + 0.5) }
  let pad = (hi - lo) * margin
  return (lo - pad)...(hi + pad)
}

/// About `target` round tick values (1, 2, 2.5, 5 × 10^k) inside `range`.
func niceTicks(_ range: ClosedRange<Double>, target: Int = 5) -> [Double] {
  let span = range.upperBound - range.lowerBound
  guard span > 0, span.isFinite else { return [range.lowerBound] }
  let rough = span / Double(Swift.max(target, 1))
  let magnitude = pow(10, (log10(rough)).rounded(.down))
  let step = [1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
  var ticks: [Double] = []
  var t = (range.lowerBound / step).rounded(.up) * step
  while t <= range.upperBound + step * 1e-9 {
    ticks.append(abs(t) < step * 1e-9 ? 0 : t)
    t += step
  }
  return ticks
}

/// A tick label: integers without decimals, otherwise up to 4 significant digits.
func tickLabel(_ value: Double) -> String {
  if value == value.rounded(), abs(value) < 1e7 { return String(Int(value)) }
  let magnitude = abs(value)
  if magnitude >= 1e-3 && magnitude < 1e7 {
    var s = String(format: "%.4g", value)
    if s.contains("e") { s = String(format: "%.3f", value) }
    return s
  }
  return String(format: "%.2e", value)
}

/// One legend row: a marker (a dot or a line) and a label.
struct LegendEntry {
  enum Marker { case dot, line }
  var label: String
  var color: RGBColor
  var marker: Marker
}

enum Legend {
  static let rowHeight = 14.0
  static let markerWidth = 16.0

  /// Columns as scanpy's right-margin legend: 1 up to 14 entries, 2 up to 30, 3 beyond.
  static func columnCount(_ n: Int) -> Int { n <= 14 ? 1 : n <= 30 ? 2 : 3 }

  static func columnWidth(_ entries: [LegendEntry]) -> Double {
    let widest = entries.map { TextMetrics.width($0.label, size: PlotStyle.legendSize) }.max() ?? 0
    return markerWidth + 4 + widest + 8
  }

  /// Width of the whole legend block in points.
  static func width(_ entries: [LegendEntry]) -> Double {
    guard !entries.isEmpty else { return 0 }
    return Double(columnCount(entries.count)) * columnWidth(entries)
  }

  /// Draws the entries column by column from (x, top), vertically centred on `centerY` when given.
  static func items(_ entries: [LegendEntry], x: Double, centerY: Double) -> SceneItem {
    let columns = columnCount(entries.count)
    let perColumn = (entries.count + columns - 1) / columns
    let colWidth = columnWidth(entries)
    let top = centerY - Double(perColumn) * rowHeight / 2
    var items: [SceneItem] = []
    for (i, entry) in entries.enumerated() {
      let cx = x + Double(i / perColumn) * colWidth
      let cy = top + (Double(i % perColumn) + 0.5) * rowHeight
      switch entry.marker {
      case .dot:
        items.append(.circle(center: ScenePoint(cx + markerWidth / 2, cy), radius: 4.5, fill: entry.color))
      case .line:
        items.append(.line(from: ScenePoint(cx, cy), to: ScenePoint(cx + markerWidth, cy), stroke: entry.color, width: 2))
      }
      items.append(.text(entry.label, at: ScenePoint(cx + markerWidth + 4, cy), size: PlotStyle.legendSize,
                         baseline: .middle))
    }
    return .group("legend", items)
  }
}
