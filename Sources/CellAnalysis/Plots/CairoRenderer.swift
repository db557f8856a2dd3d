import CCairo
import Foundation

extension Scene {
  /// The scene rasterised by cairo into PNG bytes; the image is width × dpi / 72 pixels wide.
  public func png(dpi: Double = 100) throws -> Data {
    let scale = dpi / 72
    let pixelWidth = Int((width * scale).rounded()), pixelHeight = Int((height * scale).rounded())
    guard dpi > 0, pixelWidth > 0, pixelHeight > 0, pixelWidth <= 20000, pixelHeight <= 20000 else {
      throw PlotError("cannot rasterise a \(pixelWidth)×\(pixelHeight) pixel image (dpi \(dpi))")
    }
    let surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, Int32(pixelWidth), Int32(pixelHeight))
    defer { cairo_surface_destroy(surface) }
    try CairoCheck.surface(surface)
    let cr = cairo_create(surface)
    defer { cairo_destroy(cr) }
    cairo_scale(cr, Double(pixelWidth) / width, Double(pixelHeight) / height)
    CairoPainter.setColor(cr, background)
    cairo_paint(cr)
    for item in items { CairoPainter.draw(item, cr) }
    cairo_surface_flush(surface)
    try CairoCheck.status(cairo_status(cr))
    return try CairoCheck.pngBytes(surface)
  }
}

enum CairoPainter {
  static let fontFamily = "DejaVu Sans"

  static func setColor(_ cr: OpaquePointer?, _ c: RGBColor) {
    cairo_set_source_rgba(cr, Double(c.red) / 255, Double(c.green) / 255, Double(c.blue) / 255, c.opacity)
  }

  static func setFont(_ cr: OpaquePointer?, size: Double, bold: Bool) {
    cairo_select_font_face(cr, fontFamily, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
    cairo_set_font_size(cr, size)
  }

  static func draw(_ item: SceneItem, _ cr: OpaquePointer?) {
    switch item {
    case .circle(let c, let r, let fill):
      cairo_new_path(cr)
      cairo_arc(cr, c.x, c.y, r, 0, 2 * Double.pi)
      setColor(cr, fill)
      cairo_fill(cr)
    case .rect(let x, let y, let w, let h, let fill, let stroke, let lineWidth):
      cairo_new_path(cr)
      cairo_rectangle(cr, x, y, w, h)
      if let fill {
        setColor(cr, fill)
        stroke == nil ? cairo_fill(cr) : cairo_fill_preserve(cr)
      }
      if let stroke {
        setColor(cr, stroke)
        cairo_set_line_width(cr, lineWidth)
        cairo_stroke(cr)
      }
      cairo_new_path(cr)
    case .line(let a, let b, let stroke, let width):
      cairo_new_path(cr)
      cairo_move_to(cr, a.x, a.y)
      cairo_line_to(cr, b.x, b.y)
      setColor(cr, stroke)
      cairo_set_line_width(cr, width)
      cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT)
      cairo_stroke(cr)
    case .polyline(let points, let stroke, let width):
      guard let first = points.first else { return }
      cairo_new_path(cr)
      cairo_move_to(cr, first.x, first.y)
      for p in points.dropFirst() { cairo_line_to(cr, p.x, p.y) }
      setColor(cr, stroke)
      cairo_set_line_width(cr, width)
      cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND)
      cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND)
      cairo_stroke(cr)
    case .text(let string, let at, let size, let color, let anchor, let baseline, let rotation, let bold):
      guard !string.isEmpty else { return }
      cairo_save(cr)
      setFont(cr, size: size, bold: bold)
      var extents = cairo_text_extents_t()
      cairo_text_extents(cr, string, &extents)
      cairo_translate(cr, at.x, at.y)
      if rotation != 0 { cairo_rotate(cr, rotation * Double.pi / 180) }
      let dx = anchor == .start ? 0 : anchor == .middle ? -extents.x_advance / 2 : -extents.x_advance
      cairo_move_to(cr, dx, Scene.baselineShift(baseline, size: size))
      setColor(cr, color)
      cairo_show_text(cr, string)
      cairo_new_path(cr)
      cairo_restore(cr)
    case .verticalGradient(let x, let y, let w, let h, let colors):
      guard let pattern = cairo_pattern_create_linear(0, y + h, 0, y) else { return }
      defer { cairo_pattern_destroy(pattern) }
      for (k, c) in colors.enumerated() {
        let offset = colors.count > 1 ? Double(k) / Double(colors.count - 1) : 0
        cairo_pattern_add_color_stop_rgba(pattern, offset, Double(c.red) / 255, Double(c.green) / 255,
                                          Double(c.blue) / 255, c.opacity)
      }
      cairo_new_path(cr)
      cairo_rectangle(cr, x, y, w, h)
      cairo_set_source(cr, pattern)
      cairo_fill(cr)
    case .group(_, let children):
      for child in children { draw(child, cr) }
    }
  }
}

/// Text widths measured with cairo's font (the same face the PNG uses), for layout.
enum TextMetrics {
  static func width(_ text: String, size: Double, bold: Bool = false) -> Double {
    guard !text.isEmpty else { return 0 }
    let surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1)
    defer { cairo_surface_destroy(surface) }
    let cr = cairo_create(surface)
    defer { cairo_destroy(cr) }
    CairoPainter.setFont(cr, size: size, bold: bold)
    var extents = cairo_text_extents_t()
    cairo_text_extents(cr, text, &extents)
    let measured = extents.x_advance
    // Fall back to an average glyph width when no font could be loaded.
    return measured.isFinite && measured > 0 ? measured : 0.6 * size * Double(text.count)
  }
}

enum CairoCheck {
  static func status(_ status: cairo_status_t) throws {
    guard status == CAIRO_STATUS_SUCCESS else {
      throw PlotError("cairo: \(String(cString: cairo_status_to_string(status)))")
    }
  }

  static func surface(_ surface: OpaquePointer?) throws {
    try status(cairo_surface_status(surface))
  }

  /// Encodes an image surface as PNG in memory.
  static func pngBytes(_ surface: OpaquePointer?) throws -> Data {
    final class Sink { var data = Data() }
    let sink = Sink()
    let status = withExtendedLifetime(sink) {
      cairo_surface_write_to_png_stream(surface, { closure, bytes, length in
        let sink = Unmanaged<Sink>.fromOpaque(closure!).takeUnretainedValue()
        if let bytes { sink.data.append(bytes, count: Int(length)) }
        return CAIRO_STATUS_SUCCESS
      }, Unmanaged.passUnretained(sink).toOpaque())
    }
    try CairoCheck.status(status)
    return sink.data
  }
}
