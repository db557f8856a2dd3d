import Foundation

/// A genes × factors loadings matrix (e.g. LDVAE's `get_loadings()`), read from a CSV with
/// a header row (first cell: the index name or empty, then factor names) and one row per gene.
public struct LoadingsTable: Equatable, Sendable {
  public let genes: [String]
  public let factors: [String]
  /// values[gene][factor]
  public let values: [[Double]]

  public init(genes: [String], factors: [String], values: [[Double]]) throws {
    guard !genes.isEmpty, !factors.isEmpty else { throw PlotError("loadings need at least one gene and one factor") }
    guard values.count == genes.count, values.allSatisfy({ $0.count == factors.count }) else {
      throw PlotError("loadings: expected \(genes.count) rows of \(factors.count) values")
    }
    self.genes = genes
    self.factors = factors
    self.values = values
  }

  public init(csv url: URL) throws {
    let name = "loadings \(url.lastPathComponent)"
    let table = try CSVTable(url: url, what: "loadings")
    guard table.header.count >= 2 else { throw PlotError("\(name): needs a gene column and at least one factor column") }
    guard !table.rows.isEmpty else { throw PlotError("\(name) has a header but no rows") }
    let values = try table.rows.enumerated().map { i, row in
      try row.dropFirst().enumerated().map { j, cell -> Double in
        guard let v = CSVTable.number(cell), v.isFinite else {
          throw PlotError("\(name): line \(i + 2), column '\(table.header[j + 1])': '\(cell)' is not a finite number")
        }
        return v
      }
    }
    try self.init(genes: table.rows.map { $0[0] }, factors: Array(table.header.dropFirst()), values: values)
  }

  /// The column of `factor`: a factor name, or a zero-based index when no factor has that name.
  public func factorIndex(_ factor: String) throws -> Int {
    if let j = factors.firstIndex(of: factor) { return j }
    if let j = Int(factor), factors.indices.contains(j) { return j }
    throw PlotError("unknown factor '\(factor)' (factors: \(factors.prefix(20).joined(separator: ", ")))")
  }
}

/// Horizontal bars of the top-N positive and top-N negative genes of one factor, most
/// positive at the top.
public struct LoadingsPlot {
  public let factor: String
  /// The genes shown, top to bottom, and their loadings.
  public let genes: [String]
  public let values: [Double]
  public var title: String
  public var figureSize: FigureSize

  public init(table: LoadingsTable, factor: String? = nil, topN: Int = 10) throws {
    guard topN > 0 else { throw PlotError("topN must be positive, got \(topN)") }
    let j = try factor.map(table.factorIndex) ?? 0
    let column = table.values.map { $0[j] }
    let byValue = column.indices.sorted { column[$0] != column[$1] ? column[$0] > column[$1] : $0 < $1 }
    let positive = byValue.filter { column[$0] > 0 }.prefix(topN)
    let negative = byValue.filter { column[$0] < 0 }.suffix(topN)
    let chosen = Array(positive) + Array(negative)
    guard !chosen.isEmpty else { throw PlotError("factor '\(table.factors[j])' has no nonzero loadings") }
    self.factor = table.factors[j]
    self.genes = chosen.map { table.genes[$0] }
    self.values = chosen.map { column[$0] }
    self.title = "loadings: \(table.factors[j])"
    self.figureSize = FigureSize(width: 6, height: Swift.max(3, 1 + 0.2 * Double(chosen.count)), dpi: 100)
  }

  public init(loadingsCSV url: URL, factor: String? = nil, topN: Int = 10) throws {
    try self.init(table: LoadingsTable(csv: url), factor: factor, topN: topN)
  }

  public func svg() -> String { scene().svg() }
  public func png() throws -> Data { try scene().png(dpi: figureSize.dpi) }
  /// Writes .svg or .png (by extension), atomically.
  public func write(to url: URL) throws { try scene().write(to: url, dpi: figureSize.dpi) }

  public func scene() -> Scene {
    let width = figureSize.width * 72, height = figureSize.height * 72
    var scene = Scene(width: width, height: height)
    let labelWidth = genes.map { TextMetrics.width($0, size: PlotStyle.tickSize) }.max() ?? 0
    let left = labelWidth + 12, top = 28.0, bottom = 40.0, right = 16.0
    let extent = paddedRange(values + [0])
    let frame = AxesFrame(x: left, y: top, width: Swift.max(width - left - right, 20), height: Swift.max(height - top - bottom, 20),
                          xRange: extent, yRange: 0...Double(genes.count))
    let rowHeight = frame.height / Double(genes.count)
    var bars: [SceneItem] = [], labels: [SceneItem] = []
    for (i, (gene, value)) in zip(genes, values).enumerated() {
      let y = frame.y + (Double(i) + 0.15) * rowHeight
      let x0 = frame.point(0, 0).x, x1 = frame.point(value, 0).x
      bars.append(.rect(x: Swift.min(x0, x1), y: y, width: abs(x1 - x0), height: rowHeight * 0.7,
                        fill: value >= 0 ? Palette.tab10[3] : Palette.tab10[0]))
      labels.append(.text(gene, at: ScenePoint(frame.x - 5, y + rowHeight * 0.35), size: PlotStyle.tickSize,
                          anchor: .end, baseline: .middle))
    }
    scene.add(.group("bars", bars))
    scene.add(.group("genes", labels))
    let zero = frame.point(0, 0).x
    scene.add(.line(from: ScenePoint(zero, frame.y), to: ScenePoint(zero, frame.y + frame.height), stroke: .black, width: 0.8))
    scene.add(axisTicks(frame, xTicks: niceTicks(extent), yTicks: []))
    scene.add(frame.border)
    scene.add(.group("labels", [
      .text(title, at: ScenePoint(frame.x + frame.width / 2, frame.y - 8), size: PlotStyle.titleSize, anchor: .middle),
      .text("loading", at: ScenePoint(frame.x + frame.width / 2, frame.y + frame.height + 30), size: PlotStyle.labelSize, anchor: .middle),
    ]))
    return scene
  }
}
