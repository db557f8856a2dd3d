import Foundation
import CellData

/// An opaque or translucent sRGB colour with 8-bit channels.
public struct RGBColor: Equatable, Hashable, Sendable, CustomStringConvertible {
  public var red: UInt8
  public var green: UInt8
  public var blue: UInt8
  public var alpha: UInt8

  public init(red: UInt8, green: UInt8, blue: UInt8, alpha: UInt8 = 255) {
    self.red = red
    self.green = green
    self.blue = blue
    self.alpha = alpha
  }

  /// From 0xRRGGBB.
  public init(rgb: UInt32) {
    self.init(red: UInt8((rgb >> 16) & 0xff), green: UInt8((rgb >> 8) & 0xff), blue: UInt8(rgb & 0xff))
  }

  /// Parses `#rgb`, `#rrggbb`, `#rrggbbaa` or one of a few matplotlib colour names
  /// (grey/gray, lightgray, black, white, red, green, blue); nil otherwise.
  public init?(parsing text: String) {
    let s = text.trimmingCharacters(in: .whitespaces).lowercased()
    if let named = RGBColor.named[s] {
      self = named
      return
    }
    guard s.hasPrefix("#") else { return nil }
    var hex = String(s.dropFirst())
    if hex.count == 3 { hex = hex.map { "\($0)\($0)" }.joined() }
    guard hex.count == 6 || hex.count == 8, let value = UInt64(hex, radix: 16) else { return nil }
    if hex.count == 8 {
      self.init(red: UInt8((value >> 24) & 0xff), green: UInt8((value >> 16) & 0xff),
                blue: UInt8((value >> 8) & 0xff), alpha: UInt8(value & 0xff))
    } else {
      self.init(rgb: UInt32(value))
    }
  }

  /// `#rrggbb` (the alpha channel is left out; see `opacity`).
  public var hex: String {
    let digits = [red, green, blue].map { value -> String in
      let s = String(value, radix: 16)
      return s.count == 1 ? "0" + s : s
    }
    return "#" + digits.joined()
  }

  public var opacity: Double { Double(alpha) / 255 }
  public var description: String { hex }

  public static let black = RGBColor(rgb: 0x000000)
  public static let white = RGBColor(rgb: 0xffffff)
  /// matplotlib's "lightgray", scanpy's `na_color`.
  public static let lightGray = RGBColor(rgb: 0xd3d3d3)

  private static let named: [String: RGBColor] = [
    "black": .black, "white": .white, "grey": RGBColor(rgb: 0x808080), "gray": RGBColor(rgb: 0x808080),
    "lightgray": .lightGray, "lightgrey": .lightGray, "red": RGBColor(rgb: 0xff0000),
    "green": RGBColor(rgb: 0x008000), "blue": RGBColor(rgb: 0x0000ff),
  ]
}

/// scanpy's categorical palettes (`scanpy.plotting.palettes`) and its rule for picking one.
public enum Palette {
  /// matplotlib's default colour cycle (tab10), which scanpy uses for up to 10 categories
  /// unless `sc.set_figure_params()` replaced the cycle.
  public static let tab10 = hexColors([
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  ])

  /// `palettes.default_20` (vega category20 reordered, colour-blind adjusted).
  public static let default20 = hexColors([
    "#1f77b4", "#ff7f0e", "#279e68", "#d62728", "#aa40fc", "#8c564b", "#e377c2", "#b5bd61", "#17becf", "#aec7e8",
    "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#ad494a", "#8c6d31",
  ])

  /// `palettes.default_28` (Zeileis et al. plus four).
  public static let default28 = hexColors([
    "#023fa5", "#7d87b9", "#bec1d4", "#d6bcc0", "#bb7784", "#8e063b", "#4a6fe3", "#8595e1", "#b5bbe3", "#e6afb9",
    "#e07b91", "#d33f6a", "#11c638", "#8dd593", "#c6dec7", "#ead3c6", "#f0b98d", "#ef9708", "#0fcfc0", "#9cded6",
    "#d5eae7", "#f3e1eb", "#f6c4e1", "#f79cd4", "#7f7f7f", "#c7c7c7", "#1CE6FF", "#336600",
  ])

  /// `palettes.default_102` (godsnot's 102 distinct colours, black removed).
  public static let default102 = hexColors([
    "#FFFF00", "#1CE6FF", "#FF34FF", "#FF4A46", "#008941", "#006FA6", "#A30059", "#FFDBE5", "#7A4900", "#0000A6",
    "#63FFAC", "#B79762", "#004D43", "#8FB0FF", "#997D87", "#5A0007", "#809693", "#6A3A4C", "#1B4400", "#4FC601",
    "#3B5DFF", "#4A3B53", "#FF2F80", "#61615A", "#BA0900", "#6B7900", "#00C2A0", "#FFAA92", "#FF90C9", "#B903AA",
    "#D16100", "#DDEFFF", "#000035", "#7B4F4B", "#A1C299", "#300018", "#0AA6D8", "#013349", "#00846F", "#372101",
    "#FFB500", "#C2FFED", "#A079BF", "#CC0744", "#C0B9B2", "#C2FF99", "#001E09", "#00489C", "#6F0062", "#0CBD66",
    "#EEC3FF", "#456D75", "#B77B68", "#7A87A1", "#788D66", "#885578", "#FAD09F", "#FF8A9A", "#D157A0", "#BEC459",
    "#456648", "#0086ED", "#886F4C", "#34362D", "#B4A8BD", "#00A6AA", "#452C2C", "#636375", "#A3C8C9", "#FF913F",
    "#938A81", "#575329", "#00FECF", "#B05B6F", "#8CD0FF", "#3B9700", "#04F757", "#C8A1A1", "#1E6E00", "#7900D7",
    "#A77500", "#6367A9", "#A05837", "#6B002C", "#772600", "#D790FF", "#9B9700", "#549E79", "#FFF69F", "#201625",
    "#72418F", "#BC23FF", "#99ADC0", "#3A2465", "#922329", "#5B4534", "#FDE8DC", "#404E55", "#0089A3", "#CB7E98",
    "#A4E804", "#324E72",
  ])

  /// scanpy's default colours for `n` categories (`_set_default_colors_for_categorical_obs`
  /// with matplotlib's default rcParams): tab10 up to 10, default_20 up to 20, default_28 up
  /// to 28, default_102 up to 102, grey beyond.
  public static func scanpyDefault(count n: Int) -> [RGBColor] {
    let palette: [RGBColor]
    switch n {
    case ...10: palette = tab10
    case ...20: palette = default20
    case ...28: palette = default28
    case ...default102.count: palette = default102
    default: return Array(repeating: RGBColor(rgb: 0x808080), count: n)
    }
    return Array(palette.prefix(n))
  }

  /// The colours scanpy plots `key` with: `uns["{key}_colors"]` when it holds at least one
  /// valid colour per category, the default palette otherwise.
  public static func colors(forKey key: String, categoryCount n: Int, uns: [String: Element]) -> [RGBColor] {
    if case .dense(let array)? = uns["\(key)_colors"], case .string(let names) = array.data, names.count >= n {
      let parsed = names.prefix(n).compactMap(RGBColor.init(parsing:))
      if parsed.count == n { return parsed }
    }
    return scanpyDefault(count: n)
  }

  private static func hexColors(_ values: [String]) -> [RGBColor] { values.map { RGBColor(parsing: $0)! } }
}

/// A continuous colour map with matplotlib's lookup: `N` listed colours, value `x` in [0, 1]
/// takes entry `min(Int(x * N), N - 1)`.
public struct Colormap: Sendable {
  public let name: String
  public let colors: [RGBColor]

  public static let viridis = Colormap(name: "viridis", colors: viridisTable.map(RGBColor.init(rgb:)))

  /// The colour of `x` normalised to [0, 1] (clipped).
  public func color(at x: Double) -> RGBColor {
    guard x.isFinite else { return .lightGray }
    let n = colors.count
    let index = Int((Swift.min(Swift.max(x, 0), 1) * Double(n)).rounded(.down))
    return colors[Swift.min(index, n - 1)]
  }
}
