import Foundation

/// Training curves: one line per metric of a training history against the epoch, with a
/// legend. Missing values (empty cells or NaN, e.g. validation metrics computed every few
/// epochs) are skipped and the line joins the points present.
///
/// ```swift
/// try TrainingCurvePlot(historyCSV: outdir.appendingPathComponent("history.csv")).write(to: url)
/// ```
public struct TrainingCurvePlot {
  public struct Series: Equatable, Sendable {
    public var name: String
    public var values: [Double]
    public init(name: String, values: [Double]) {
      self.name = name
      self.values = values
    }
  }

  public let epochs: [Double]
  public let series: [Series]
  public var xLabel: String
  public var yLabel = "value"
  public var title = "training history"
  /// Default: 4 in tall, 6 in wide or wider so the axes keep about 4 in beside the legend.
  public var figureSize: FigureSize

  /// - Parameters:
  ///   - epochs: the x value of each row.
  ///   - series: metrics, each with one value per row (NaN where missing).
  public init(epochs: [Double], series: [Series], xLabel: String = "epoch") throws {
    guard !epochs.isEmpty else { throw PlotError("training history has no rows") }
    guard epochs.allSatisfy(\.isFinite) else { throw PlotError("training history: epoch values must be finite numbers") }
    for s in series where s.values.count != epochs.count {
      throw PlotError("training history: metric '\(s.name)' has \(s.values.count) values for \(epochs.count) epochs")
    }
    let kept = series.filter { $0.values.contains(where: \.isFinite) }
    guard !kept.isEmpty else { throw PlotError("training history has no metric with a finite value") }
    self.epochs = epochs
    self.series = kept
    self.xLabel = xLabel
    let legend = Legend.width(kept.map { LegendEntry(label: $0.name, color: .black, marker: .line) })
    self.figureSize = FigureSize(width: Swift.max(6, (60 + 290 + 22 + legend) / 72), height: 4, dpi: 100)
  }

  /// Reads a `history.csv`: a header row, the epoch in the first column, one metric per
  /// further column. `metrics` keeps only those columns (in that order).
  public init(historyCSV url: URL, metrics: [String]? = nil) throws {
    let name = "history \(url.lastPathComponent)"
    let table = try CSVTable(url: url, what: "history")
    guard table.header.count >= 2 else {
      throw PlotError("\(name): needs an epoch column and at least one metric column, found header \(table.header)")
    }
    guard !table.rows.isEmpty else { throw PlotError("\(name) has a header but no rows") }
    func column(_ j: Int) throws -> [Double] {
      try table.rows.enumerated().map { i, row in
        guard let v = CSVTable.number(row[j]) else {
          throw PlotError("\(name): line \(i + 2), column '\(table.header[j])': '\(row[j])' is not a number")
        }
        return v
      }
    }
    var columns = Array(1..<table.header.count)
    if let metrics {
      columns = try metrics.map { metric in
        guard let j = table.header.dropFirst().firstIndex(of: metric) else {
          throw PlotError("\(name) has no metric '\(metric)' (columns: \(table.header.dropFirst().joined(separator: ", ")))")
        }
        return j
      }
    }
    let epochs = try column(0)
    guard epochs.allSatisfy(\.isFinite) else { throw PlotError("\(name): the first column (epoch) has empty or NaN values") }
    let series = try columns.map { Series(name: table.header[$0], values: try column($0)) }
    let xName = table.header[0].isEmpty ? "epoch" : table.header[0]
    try self.init(epochs: epochs, series: series, xLabel: xName)
  }

  public func svg() -> String { scene().svg() }
  public func png() throws -> Data { try scene().png(dpi: figureSize.dpi) }
  /// Writes .svg or .png (by extension), atomically.
  public func write(to url: URL) throws { try scene().write(to: url, dpi: figureSize.dpi) }

  public func scene() -> Scene {
    let width = figureSize.width * 72, height = figureSize.height * 72
    var scene = Scene(width: width, height: height)
    let colors = Palette.tab10
    let entries = series.enumerated().map { LegendEntry(label: $1.name, color: colors[$0 % colors.count], marker: .line) }
    let allValues = series.flatMap(\.values)
    let yTicks = niceTicks(paddedRange(allValues))
    let tickWidth = yTicks.map { TextMetrics.width(tickLabel($0), size: PlotStyle.tickSize) }.max() ?? 0
    let left = 22 + tickWidth + 6, top = 28.0, bottom = 40.0
    let right = 12 + Legend.width(entries) + PlotStyle.margin
    let frame = AxesFrame(x: left, y: top, width: Swift.max(width - left - right, 20),
                          height: Swift.max(height - top - bottom, 20),
                          xRange: paddedRange(epochs), yRange: paddedRange(allValues))
    scene.add(axisTicks(frame, xTicks: niceTicks(frame.xRange), yTicks: niceTicks(frame.yRange)))
    var lines: [SceneItem] = []
    for (k, s) in series.enumerated() {
      let points = zip(epochs, s.values).filter { $0.1.isFinite }.map { frame.point($0.0, $0.1) }
      lines.append(.polyline(points, stroke: colors[k % colors.count], width: 1.5))
      if points.count == 1 { lines.append(.circle(center: points[0], radius: 2.5, fill: colors[k % colors.count])) }
    }
    scene.add(.group("lines", lines))
    scene.add(frame.border)
    scene.add(.group("labels", [
      .text(title, at: ScenePoint(frame.x + frame.width / 2, frame.y - 8), size: PlotStyle.titleSize, anchor: .middle),
      .text(xLabel, at: ScenePoint(frame.x + frame.width / 2, frame.y + frame.height + 30), size: PlotStyle.labelSize, anchor: .middle),
      .text(yLabel, at: ScenePoint(12, frame.y + frame.height / 2), size: PlotStyle.labelSize, anchor: .middle, rotation: -90),
    ]))
    scene.add(Legend.items(entries, x: frame.x + frame.width + 12, centerY: frame.y + frame.height / 2))
    return scene
  }
}

/// Tick marks and labels on the bottom and left edges of `frame`.
func axisTicks(_ frame: AxesFrame, xTicks: [Double], yTicks: [Double]) -> SceneItem {
  var items: [SceneItem] = []
  let bottom = frame.y + frame.height
  for t in xTicks {
    let p = frame.point(t, frame.yRange.lowerBound)
    items.append(.line(from: ScenePoint(p.x, bottom), to: ScenePoint(p.x, bottom + 3.5), stroke: .black, width: 0.8))
    items.append(.text(tickLabel(t), at: ScenePoint(p.x, bottom + 6), size: PlotStyle.tickSize, anchor: .middle, baseline: .top))
  }
  for t in yTicks {
    let p = frame.point(frame.xRange.lowerBound, t)
    items.append(.line(from: ScenePoint(frame.x - 3.5, p.y), to: ScenePoint(frame.x, p.y), stroke: .black, width: 0.8))
    items.append(.text(tickLabel(t), at: ScenePoint(frame.x - 6, p.y), size: PlotStyle.tickSize, anchor: .end, baseline: .middle))
  }
  return .group("ticks", items)
}
