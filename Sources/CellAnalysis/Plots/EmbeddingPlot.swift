import CellData
import Foundation

/// A scatter of an embedding (`obsm` key such as X_umap, X_pca, X_scVI) coloured by an obs
/// column or a gene, with scanpy's defaults (`sc.pl.embedding`): point size 120000 / n_cells
/// points², palettes and `uns["{key}_colors"]`, viridis for continuous keys, missing values
/// in light grey at the bottom, data order otherwise, axis labels like UMAP1/UMAP2 and the
/// colour key as title.
///
/// ```swift
/// try EmbeddingPlot(adata: adata, basis: "umap", color: "bulk_labels").write(to: url)
/// ```
public struct EmbeddingPlot {
  /// The obsm key plotted (e.g. "X_umap").
  public let basisKey: String
  public let xLabel: String
  public let yLabel: String
  /// The two plotted dimensions of each cell, in data order.
  public let xs: [Double]
  public let ys: [Double]
  public let colorKey: String?
  public let coloring: EmbeddingColoring
  public var title: String
  /// Marker area in points² (matplotlib's `s`).
  public var pointSize: Double
  public var colormap: Colormap = .viridis
  /// Figure size; nil sizes the figure to the plot plus its legend (4.8 in tall).
  public var figureSize: FigureSize?
  /// PNG resolution when `figureSize` is nil.
  public var dpi: Double = 100

  /// - Parameters:
  ///   - basis: an obsm key, or its name without "X_" ("umap" finds "X_umap").
  ///   - color: an obs column or a gene (var name); nil plots all cells in grey.
  ///   - components: the two zero-based dimensions to plot.
  ///   - pointSize: marker area in points²; scanpy's default is 120000 / n_cells.
  ///   - palette: colours for the categories, in category order (overrides uns and defaults).
  ///   - useRaw: genes from `raw` when present (scanpy's default); false reads X.
  public init(adata: AnnData, basis: String, color: String? = nil, components: (Int, Int) = (0, 1),
              pointSize: Double? = nil, title: String? = nil, palette: [RGBColor]? = nil, useRaw: Bool? = nil,
              figureSize: FigureSize? = nil) throws {
    let key = try Self.basisKey(basis, in: adata)
    guard case .dense(let array) = adata.obsm[key]!, array.shape.count == 2, let values = array.data.doubles else {
      throw PlotError("obsm['\(key)'] is not a numeric two-dimensional array")
    }
    let (rows, cols) = (array.shape[0], array.shape[1])
    guard rows == adata.nObs else { throw PlotError("obsm['\(key)'] has \(rows) rows for \(adata.nObs) cells") }
    guard rows > 0 else { throw PlotError("cannot plot an embedding of 0 cells") }
    let (dx, dy) = components
    guard dx >= 0, dy >= 0, dx < cols, dy < cols, dx != dy else {
      throw PlotError("obsm['\(key)'] has \(cols) dimensions; cannot plot components \(dx + 1) and \(dy + 1)")
    }
    self.basisKey = key
    let name = Self.axisName(key)
    self.xLabel = "\(name)\(dx + 1)"
    self.yLabel = "\(name)\(dy + 1)"
    self.xs = (0..<rows).map { values[$0 * cols + dx] }
    self.ys = (0..<rows).map { values[$0 * cols + dy] }
    self.colorKey = color
    self.coloring = try color.map { try EmbeddingColoring.resolve(key: $0, adata: adata, palette: palette, useRaw: useRaw) } ?? .uniform
    self.title = title ?? color ?? ""
    self.pointSize = pointSize ?? 120_000 / Double(rows)
    self.figureSize = try figureSize?.validated()
  }

  /// The obsm key for `basis`: itself when present, else "X_" + basis.
  static func basisKey(_ basis: String, in adata: AnnData) throws -> String {
    if adata.obsm[basis] != nil { return basis }
    if adata.obsm["X_" + basis] != nil { return "X_" + basis }
    let available = adata.obsm.keys.sorted().joined(separator: ", ")
    throw PlotError("unknown basis '\(basis)': no obsm['\(basis)'] or obsm['X_\(basis)'] (obsm has: \(available.isEmpty ? "nothing" : available))")
  }

  /// scanpy's `_basis2name`: PC, UMAP, tSNE, DC, FA…; other keys keep their name (scVI1).
  static func axisName(_ key: String) -> String {
    let basis = key.hasPrefix("X_") ? String(key.dropFirst(2)) : key
    switch basis {
    case "pca": return "PC"
    case "umap": return "UMAP"
    case "tsne": return "tSNE"
    case "diffmap": return "DC"
    default:
      if basis.hasPrefix("draw_graph_") { return String(basis.dropFirst("draw_graph_".count)).uppercased() }
      return basis
    }
  }

  /// The colour of each cell, in data order.
  public var pointColors: [RGBColor] { coloring.colors(count: xs.count, colormap: colormap) }
  /// The order cells are drawn in (last on top).
  public var drawOrder: [Int] { coloring.drawOrder(count: xs.count) }
  /// Marker radius in points.
  public var pointRadius: Double { pointSize.squareRoot() / 2 }

  public func svg() -> String { scene().svg() }
  public func png() throws -> Data { try scene().png(dpi: resolvedSize.dpi) }
  /// Writes .svg or .png (by extension), atomically.
  public func write(to url: URL) throws { try scene().write(to: url, dpi: resolvedSize.dpi) }

  // MARK: layout

  private static let left = 30.0, bottom = 28.0, top = 28.0, gap = 12.0
  private static let colorbarWidth = 12.0

  private var legendEntries: [LegendEntry] {
    guard case .categorical(let codes, let categories, let colors) = coloring else { return [] }
    var entries = zip(categories, colors).map { LegendEntry(label: $0, color: $1, marker: .dot) }
    if codes.contains(where: { $0 < 0 }) { entries.append(LegendEntry(label: "NA", color: .lightGray, marker: .dot)) }
    return entries
  }

  /// Width taken right of the axes by the legend or colour bar.
  private var sidePanelWidth: Double {
    switch coloring {
    case .uniform: return PlotStyle.margin
    case .categorical: return Self.gap + Legend.width(legendEntries) + PlotStyle.margin
    case .continuous(_, let lo, let hi):
      let labels = niceTicks(lo...hi).map { TextMetrics.width(tickLabel($0), size: PlotStyle.tickSize) }
      return Self.gap + Self.colorbarWidth + 4 + (labels.max() ?? 0) + PlotStyle.margin
    }
  }

  /// The figure size used: the requested one, or 4.96 in of axes plus the side panel, 4.8 in tall.
  public var resolvedSize: FigureSize {
    if let figureSize { return figureSize }
    let width = (Self.left + 4.96 * 72 + sidePanelWidth) / 72
    return FigureSize(width: width, height: 4.8, dpi: dpi)
  }

  private var frame: AxesFrame {
    let size = resolvedSize
    let width = Swift.max(size.widthPoints - Self.left - sidePanelWidth, 20)
    let height = Swift.max(size.heightPoints - Self.top - Self.bottom, 20)
    return AxesFrame(x: Self.left, y: Self.top, width: width, height: height,
                     xRange: paddedRange(xs), yRange: paddedRange(ys))
  }

  /// Where each cell's marker is centred in the figure (points), in data order.
  public func pointCenters() -> [ScenePoint] {
    let frame = self.frame
    return zip(xs, ys).map { frame.point($0, $1) }
  }

  /// The figure as drawing primitives.
  public func scene() -> Scene {
    let size = resolvedSize, frame = self.frame
    var scene = Scene(width: size.widthPoints, height: size.heightPoints)
    let colors = pointColors, centers = pointCenters(), radius = pointRadius
    var points: [SceneItem] = []
    points.reserveCapacity(xs.count)
    for i in drawOrder where xs[i].isFinite && ys[i].isFinite {
      points.append(.circle(center: centers[i], radius: radius, fill: colors[i]))
    }
    scene.add(.group("points", points))
    scene.add(frame.border)
    let midX = frame.x + frame.width / 2, midY = frame.y + frame.height / 2
    scene.add(.group("labels", [
      .text(title, at: ScenePoint(midX, frame.y - 8), size: PlotStyle.titleSize, anchor: .middle),
      .text(xLabel, at: ScenePoint(midX, frame.y + frame.height + 6), size: PlotStyle.labelSize, anchor: .middle, baseline: .top),
      .text(yLabel, at: ScenePoint(frame.x - 8, midY), size: PlotStyle.labelSize, anchor: .middle, rotation: -90),
    ]))
    let sideX = frame.x + frame.width + Self.gap
    switch coloring {
    case .uniform: break
    case .categorical: scene.add(Legend.items(legendEntries, x: sideX, centerY: midY))
    case .continuous(_, let lo, let hi): scene.add(colorbar(x: sideX, frame: frame, lo: lo, hi: hi))
    }
    return scene
  }

  private func colorbar(x: Double, frame: AxesFrame, lo: Double, hi: Double) -> SceneItem {
    let height = frame.height * 0.9, top = frame.y + frame.height * 0.05
    var items: [SceneItem] = [.verticalGradient(x: x, y: top, width: Self.colorbarWidth, height: height, colors: colormap.colors)]
    items.append(.rect(x: x, y: top, width: Self.colorbarWidth, height: height, fill: nil, stroke: .black, lineWidth: 0.6))
    for tick in niceTicks(lo...hi) where hi > lo {
      let y = top + height - (tick - lo) / (hi - lo) * height
      items.append(.line(from: ScenePoint(x + Self.colorbarWidth, y), to: ScenePoint(x + Self.colorbarWidth + 3, y),
                         stroke: .black, width: 0.6))
      items.append(.text(tickLabel(tick), at: ScenePoint(x + Self.colorbarWidth + 5, y), size: PlotStyle.tickSize,
                         baseline: .middle))
    }
    return .group("colorbar", items)
  }
}
