import Foundation

/// A scatter of y against x with the line y = x, highlighted points drawn on top in another
/// colour and labelled; e.g. predicted against observed expression changes of a perturbation,
/// its top DE genes highlighted.
public struct ScatterPlot {
  public let x: [Double]
  public let y: [Double]
  /// Indices drawn highlighted, with `labels` (when given) beside them.
  public let highlighted: [Int]
  public let labels: [String]?
  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var figureSize = FigureSize(width: 5, height: 5, dpi: 100)

  public init(x: [Double], y: [Double], highlighted: [Int] = [], labels: [String]? = nil, title: String = "", xLabel: String = "x",
              yLabel: String = "y") throws {
    guard x.count == y.count, !x.isEmpty else { throw PlotError("a scatter plot needs as many y as x values, at least one") }
    guard highlighted.allSatisfy({ x.indices.contains($0) }) else { throw PlotError("highlighted points outside the \(x.count) values") }
    guard labels.map({ $0.count == x.count }) ?? true else { throw PlotError("\(labels!.count) labels for \(x.count) points") }
    self.x = x
    self.y = y
    self.highlighted = highlighted
    self.labels = labels
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
  }

  public func svg() -> String { scene().svg() }
  /// Writes .svg or .png (by extension), atomically.
  public func write(to url: URL) throws { try scene().write(to: url, dpi: figureSize.dpi) }

  public func scene() -> Scene {
    let width = figureSize.width * 72, height = figureSize.height * 72
    var scene = Scene(width: width, height: height)
    let range = paddedRange(x + y)
    let ticks = niceTicks(range)
    let tickWidth = ticks.map { TextMetrics.width(tickLabel($0), size: PlotStyle.tickSize) }.max() ?? 0
    let left = 22 + tickWidth + 6, top = 28.0, bottom = 40.0, right = 16.0
    let frame = AxesFrame(x: left, y: top, width: Swift.max(width - left - right, 20), height: Swift.max(height - top - bottom, 20),
                          xRange: range, yRange: range)
    scene.add(axisTicks(frame, xTicks: ticks, yTicks: ticks))
    scene.add(.group("diagonal", [.line(from: frame.point(range.lowerBound, range.lowerBound),
                                        to: frame.point(range.upperBound, range.upperBound), stroke: RGBColor(rgb: 0xAAAAAA), width: 0.8)]))
    let marked = Set(highlighted)
    scene.add(.group("points", x.indices.filter { !marked.contains($0) && x[$0].isFinite && y[$0].isFinite }.map {
      .circle(center: frame.point(x[$0], y[$0]), radius: 1.8, fill: RGBColor(rgb: 0x7F7F7F))
    }))
    let accent = Palette.tab10[3]
    var items: [SceneItem] = []
    for i in highlighted where x[i].isFinite && y[i].isFinite {
      let p = frame.point(x[i], y[i])
      items.append(.circle(center: p, radius: 2.8, fill: accent))
      if let labels { items.append(.text(labels[i], at: ScenePoint(p.x + 4, p.y - 3), size: PlotStyle.tickSize - 1, color: accent)) }
    }
    scene.add(.group("highlighted", items))
    scene.add(frame.border)
    scene.add(.group("labels", [
      .text(title, at: ScenePoint(frame.x + frame.width / 2, frame.y - 8), size: PlotStyle.titleSize, anchor: .middle),
      .text(xLabel, at: ScenePoint(frame.x + frame.width / 2, frame.y + frame.height + 30), size: PlotStyle.labelSize, anchor: .middle),
      .text(yLabel, at: ScenePoint(12, frame.y + frame.height / 2), size: PlotStyle.labelSize, anchor: .middle, rotation: -90),
    ]))
    return scene
  }
}
