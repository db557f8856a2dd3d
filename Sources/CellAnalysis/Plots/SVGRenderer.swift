import Foundation

extension Scene {
  /// The scene as a standalone SVG document (1 user unit = 1 point).
  public func svg() -> String {
    var out = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(svgNumber(width))pt" height="\(svgNumber(height))pt" \
      viewBox="0 0 \(svgNumber(width)) \(svgNumber(height))" font-family="DejaVu Sans, Bitstream Vera Sans, Arial, sans-serif">

      """
    out += "<rect class=\"background\" x=\"0\" y=\"0\" width=\"\(svgNumber(width))\" height=\"\(svgNumber(height))\" fill=\"\(background.hex)\"/>\n"
    var writer = SVGWriter()
    for item in items { writer.write(item, into: &out) }
    out += "</svg>\n"
    return out
  }
}

private struct SVGWriter {
  var gradientCount = 0

  mutating func write(_ item: SceneItem, into out: inout String) {
    switch item {
    case .circle(let c, let r, let fill):
      out += "<circle cx=\"\(svgNumber(c.x))\" cy=\"\(svgNumber(c.y))\" r=\"\(svgNumber(r))\" fill=\"\(fill.hex)\"\(opacity(fill, "fill"))/>\n"
    case .rect(let x, let y, let w, let h, let fill, let stroke, let lineWidth):
      out += "<rect x=\"\(svgNumber(x))\" y=\"\(svgNumber(y))\" width=\"\(svgNumber(w))\" height=\"\(svgNumber(h))\""
      out += fill.map { " fill=\"\($0.hex)\"\(opacity($0, "fill"))" } ?? " fill=\"none\""
      if let stroke { out += " stroke=\"\(stroke.hex)\" stroke-width=\"\(svgNumber(lineWidth))\"" }
      out += "/>\n"
    case .line(let a, let b, let stroke, let width):
      out += "<line x1=\"\(svgNumber(a.x))\" y1=\"\(svgNumber(a.y))\" x2=\"\(svgNumber(b.x))\" y2=\"\(svgNumber(b.y))\" "
      out += "stroke=\"\(stroke.hex)\" stroke-width=\"\(svgNumber(width))\"/>\n"
    case .polyline(let points, let stroke, let width):
      let coordinates = points.map { "\(svgNumber($0.x)),\(svgNumber($0.y))" }.joined(separator: " ")
      out += "<polyline points=\"\(coordinates)\" fill=\"none\" stroke=\"\(stroke.hex)\" "
      out += "stroke-width=\"\(svgNumber(width))\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n"
    case .text(let string, let at, let size, let color, let anchor, let baseline, let rotation, let bold):
      let y = at.y + Scene.baselineShift(baseline, size: size)
      let anchorName = anchor == .start ? "start" : anchor == .middle ? "middle" : "end"
      out += "<text x=\"\(svgNumber(at.x))\" y=\"\(svgNumber(y))\" font-size=\"\(svgNumber(size))\" fill=\"\(color.hex)\""
      if anchor != .start { out += " text-anchor=\"\(anchorName)\"" }
      if bold { out += " font-weight=\"bold\"" }
      if rotation != 0 { out += " transform=\"rotate(\(svgNumber(rotation)) \(svgNumber(at.x)) \(svgNumber(at.y)))\"" }
      out += ">\(xmlEscaped(string))</text>\n"
    case .verticalGradient(let x, let y, let w, let h, let colors):
      gradientCount += 1
      let id = "gradient\(gradientCount)"
      out += "<defs><linearGradient id=\"\(id)\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
      for (k, color) in colors.enumerated() {
        let offset = colors.count > 1 ? Double(k) / Double(colors.count - 1) : 0
        out += "<stop offset=\"\(svgNumber(offset * 100))%\" stop-color=\"\(color.hex)\"/>"
      }
      out += "</linearGradient></defs>\n"
      out += "<rect x=\"\(svgNumber(x))\" y=\"\(svgNumber(y))\" width=\"\(svgNumber(w))\" height=\"\(svgNumber(h))\" fill=\"url(#\(id))\"/>\n"
    case .group(let name, let children):
      out += "<g class=\"\(xmlEscaped(name))\">\n"
      for child in children { write(child, into: &out) }
      out += "</g>\n"
    }
  }

  func opacity(_ color: RGBColor, _ attribute: String) -> String {
    color.alpha == 255 ? "" : " \(attribute)-opacity=\"\(svgNumber(color.opacity))\""
  }
}

/// A coordinate with at most two decimals and no trailing zeros.
func svgNumber(_ value: Double) -> String {
  guard value.isFinite else { return "0" }
  guard abs(value) < 1e12 else { return String(value) }
  let scaled = (value * 100).rounded()
  if scaled == 0 { return "0" }
  let whole = Int(scaled) / 100, fraction = abs(Int(scaled) % 100)
  let sign = scaled < 0 && whole == 0 ? "-" : ""
  if fraction == 0 { return "\(sign)\(whole)" }
  let digits = fraction < 10 ? "0\(fraction)" : (fraction % 10 == 0 ? "\(fraction / 10)" : "\(fraction)")
  return "\(sign)\(whole).\(digits)"
}

/// Escapes the five XML special characters (for SVG and HTML text and attributes).
func xmlEscaped(_ text: String) -> String {
  var out = ""
  out.reserveCapacity(text.count)
  for ch in text {
    switch ch {
    case "&": out += "&amp;"
    case "<": out += "&lt;"
    case ">": out += "&gt;"
    case "\"": out += "&quot;"
    case "'": out += "&#39;"
    default: out.append(ch)
    }
  }
  return out
}
