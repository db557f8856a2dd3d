import Foundation

/// A rows × columns matrix as coloured cells (viridis), with row and column labels and a colour
/// bar; e.g. the mean activity of gene programs (rows) per cell type (columns).
public struct HeatmapPlot {
  public let rows: [String]
  public let columns: [String]
  /// values[row][column]; non-finite values are drawn grey.
  public let values: [[Double]]
  public var title: String
  public var colorbarLabel: String
  public var colormap = Colormap.viridis

  public init(rows: [String], columns: [String], values: [[Double]], title: String = "", colorbarLabel: String = "") throws {
    guard !rows.isEmpty, !columns.isEmpty else { throw PlotError("a heat map needs at least one row and one column") }
    guard values.count == rows.count, values.allSatisfy({ $0.count == columns.count }) else {
      throw PlotError("a heat map of \(rows.count) × \(columns.count) needs as many values")
    }
    self.rows = rows
    self.columns = columns
    self.values = values
    self.title = title
    self.colorbarLabel = colorbarLabel
  }

  public func svg() -> String { scene().svg() }
  /// Writes .svg or .png (by extension), atomically.
  public func write(to url: URL, dpi: Double = 100) throws { try scene().write(to: url, dpi: dpi) }

  public func scene() -> Scene {
    let cell = 14.0
    let rowLabels = rows.map { TextMetrics.width($0, size: PlotStyle.tickSize) }.max() ?? 0
    let columnLabels = columns.map { TextMetrics.width($0, size: PlotStyle.tickSize) }.max() ?? 0
    let left = rowLabels + 12, top = 30.0 + columnLabels, barWidth = 60.0
    let gridWidth = cell * Double(columns.count), gridHeight = cell * Double(rows.count)
    var scene = Scene(width: left + gridWidth + barWidth + 20, height: top + gridHeight + 16)
    let finite = values.joined().filter(\.isFinite)
    let low = finite.min() ?? 0, high = finite.max() ?? 1, span = high > low ? high - low : 1
    var cells: [SceneItem] = []
    for (i, row) in values.enumerated() {
      for (j, value) in row.enumerated() {
        cells.append(.rect(x: left + Double(j) * cell, y: top + Double(i) * cell, width: cell, height: cell,
                           fill: colormap.color(at: (value - low) / span)))
      }
    }
    scene.add(.group("cells", cells))
    scene.add(.group("row-labels", rows.enumerated().map { i, name in
      .text(name, at: ScenePoint(left - 4, top + (Double(i) + 0.5) * cell), size: PlotStyle.tickSize, anchor: .end, baseline: .middle)
    }))
    scene.add(.group("column-labels", columns.enumerated().map { j, name in
      .text(name, at: ScenePoint(left + (Double(j) + 0.5) * cell, top - 4), size: PlotStyle.tickSize, anchor: .start,
            baseline: .middle, rotation: -90)
    }))
    let barX = left + gridWidth + 12, barHeight = min(gridHeight, 160)
    scene.add(.group("colorbar", [
      .verticalGradient(x: barX, y: top, width: 10, height: barHeight, colors: (0...32).map { colormap.color(at: Double($0) / 32) }),
      .text(String(format: "%.3g", high), at: ScenePoint(barX + 14, top), size: PlotStyle.tickSize, baseline: .top),
      .text(String(format: "%.3g", low), at: ScenePoint(barX + 14, top + barHeight), size: PlotStyle.tickSize),
      .text(colorbarLabel, at: ScenePoint(barX + 14, top + barHeight / 2), size: PlotStyle.tickSize, baseline: .middle),
    ]))
    scene.add(.text(title, at: ScenePoint(left, 14), size: PlotStyle.titleSize, baseline: .middle))
    return scene
  }
}
