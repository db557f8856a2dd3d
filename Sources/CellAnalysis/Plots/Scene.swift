import Foundation

/// A position in points (1/72 inch) from the top-left corner of the figure.
public struct ScenePoint: Equatable, Sendable {
  public var x: Double
  public var y: Double
  public init(_ x: Double, _ y: Double) {
    self.x = x
    self.y = y
  }
}

public enum TextAnchor: Sendable { case start, middle, end }
/// Where the given y of a text lies: on its baseline, its vertical centre or its top.
public enum TextBaseline: Sendable { case alphabetic, middle, top }

/// One drawing primitive. Sizes and positions are in points; line widths too.
public indirect enum SceneItem: Sendable {
  case circle(center: ScenePoint, radius: Double, fill: RGBColor)
  case rect(x: Double, y: Double, width: Double, height: Double, fill: RGBColor?, stroke: RGBColor? = nil, lineWidth: Double = 1)
  case line(from: ScenePoint, to: ScenePoint, stroke: RGBColor, width: Double)
  case polyline([ScenePoint], stroke: RGBColor, width: Double)
  case text(String, at: ScenePoint, size: Double, color: RGBColor = .black, anchor: TextAnchor = .start,
            baseline: TextBaseline = .alphabetic, rotation: Double = 0, bold: Bool = false)
  /// A rectangle filled with `colors` evenly spaced from bottom to top (a colour bar).
  case verticalGradient(x: Double, y: Double, width: Double, height: Double, colors: [RGBColor])
  /// A named group (an SVG `<g class="name">`), so a reader can find the parts of a plot.
  case group(String, [SceneItem])
}

/// A figure as a list of primitives, rendered to SVG (text) or to PNG through cairo.
public struct Scene: Sendable {
  /// Size in points.
  public var width: Double
  public var height: Double
  public var background: RGBColor = .white
  public var items: [SceneItem] = []

  public init(width: Double, height: Double) {
    self.width = width
    self.height = height
  }

  public mutating func add(_ item: SceneItem) { items.append(item) }

  /// Writes SVG or PNG, chosen by the extension of `url` (`.svg`, `.png`), atomically.
  public func write(to url: URL, dpi: Double = 100) throws {
    let data: Data
    switch url.pathExtension.lowercased() {
    case "svg": data = Data(svg().utf8)
    case "png": data = try png(dpi: dpi)
    default:
      throw PlotError("\(url.lastPathComponent): unknown plot format '\(url.pathExtension)'; use .svg or .png")
    }
    do {
      try data.write(to: url, options: .atomic)
    } catch {
      throw PlotError("cannot write \(url.path): \(error.localizedDescription)")
    }
  }

  /// The vertical offset from `baseline` to the alphabetic baseline, shared by both renderers.
  static func baselineShift(_ baseline: TextBaseline, size: Double) -> Double {
    switch baseline {
    case .alphabetic: return 0
    case .middle: return 0.36 * size
    case .top: return 0.76 * size
    }
  }
}

/// A plotting error: unknown basis or colour key, bad input file, unsupported format.
public struct PlotError: Error, CustomStringConvertible, LocalizedError, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
  public var errorDescription: String? { message }
}

/// Figure size in inches and the resolution of PNG output.
public struct FigureSize: Equatable, Sendable {
  public var width: Double
  public var height: Double
  public var dpi: Double

  public init(width: Double, height: Double, dpi: Double = 100) {
    self.width = width
    self.height = height
    self.dpi = dpi
  }

  /// Pixel size of a PNG at this size.
  public var pixelWidth: Int { Int((width * dpi).rounded()) }
  public var pixelHeight: Int { Int((height * dpi).rounded()) }
  var widthPoints: Double { width * 72 }
  var heightPoints: Double { height * 72 }

  func validated() throws -> FigureSize {
    guard width > 0, height > 0, dpi > 0, width.isFinite, height.isFinite, dpi.isFinite else {
      throw PlotError("figure size and dpi must be positive, got \(width)×\(height) in at \(dpi) dpi")
    }
    guard pixelWidth <= 20000, pixelHeight <= 20000 else {
      throw PlotError("figure of \(pixelWidth)×\(pixelHeight) pixels is too large (at most 20000 per side)")
    }
    return self
  }
}
