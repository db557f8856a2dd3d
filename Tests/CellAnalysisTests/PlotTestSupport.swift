import CCairo
import CellAnalysis
import CellData
import Foundation
import XCTest

/// Shared fixtures for the plot and report tests: the bundled PBMC data with a synthetic
/// X_umap (one cluster per bulk label) and X_pca, and helpers to read SVG and PNG output.
enum PlotFixtures {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  /// scanpy 1.11's `adata.uns["bulk_labels_colors"]` after `sc.pl.umap(color="bulk_labels")`
  /// (10 categories: matplotlib's default colour cycle).
  static let scanpyBulkLabelColors = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  ]

  static func pbmc() throws -> AnnData {
    var adata = try AnnData.read(h5ad: root.appendingPathComponent("data/pbmc68k_reduced.h5ad").path)
    guard case .categorical(let labels)? = adata.obs["bulk_labels"] else {
      throw PlotError("fixture: bulk_labels is not categorical")
    }
    let n = adata.nObs
    var umap: [Float] = [], pca: [Float] = []
    for i in 0..<n {
      let angle = 2 * Double.pi * Double(labels.codes[i]) / 10
      let jitter = (sin(Double(i) * 12.9898) * 43758.5453).truncatingRemainder(dividingBy: 1)
      let jitter2 = (sin(Double(i) * 78.233) * 12345.678).truncatingRemainder(dividingBy: 1)
      umap += [Float(10 * cos(angle) + 1.2 * jitter), Float(10 * sin(angle) + 1.2 * jitter2)]
      pca += [Float(jitter * 5), Float(jitter2 * 3), Float(i % 7)]
    }
    adata.obsm["X_umap"] = .dense(try DenseArray(rows: n, cols: 2, values: umap))
    adata.obsm["X_pca"] = .dense(try DenseArray(rows: n, cols: 3, values: pca))
    return adata
  }

  static func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("plots-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }

  /// The text between `<g class="NAME">` and its `</g>` (groups are not nested in our plots).
  static func group(_ name: String, in svg: String) -> String? {
    guard let start = svg.range(of: "<g class=\"\(name)\">"),
          let end = svg.range(of: "</g>", range: start.upperBound..<svg.endIndex) else { return nil }
    return String(svg[start.upperBound..<end.lowerBound])
  }

  /// Every value of `attribute` in `text`, in order.
  static func attributes(_ attribute: String, in text: String) -> [String] {
    text.components(separatedBy: " \(attribute)=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
  }

  static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

  /// The text contents of the `<text>` elements in `text`.
  static func texts(in text: String) -> [String] {
    text.components(separatedBy: "<text ").dropFirst().map { part in
      let body = part.drop { $0 != ">" }.dropFirst()
      return String(body.prefix { $0 != "<" })
    }
  }

  /// Width and height from a PNG's IHDR chunk; nil when the signature is wrong.
  static func pngSize(_ data: Data) -> (Int, Int)? {
    let bytes = [UInt8](data)
    guard bytes.count > 24, bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
          String(decoding: bytes[12..<16], as: UTF8.self) == "IHDR" else { return nil }
    func be32(_ i: Int) -> Int { bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
    return (be32(16), be32(20))
  }
}

/// A PNG decoded by cairo, for reading pixels back.
final class DecodedPNG {
  let width: Int, height: Int
  private let pixels: [UInt32]

  init(file: URL) throws {
    let surface = cairo_image_surface_create_from_png(file.path)
    defer { cairo_surface_destroy(surface) }
    guard cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS else { throw PlotError("cairo could not read \(file.path)") }
    cairo_surface_flush(surface)
    width = Int(cairo_image_surface_get_width(surface))
    height = Int(cairo_image_surface_get_height(surface))
    let stride = Int(cairo_image_surface_get_stride(surface))
    let base = cairo_image_surface_get_data(surface)!
    var out: [UInt32] = []
    out.reserveCapacity(width * height)
    for y in 0..<height {
      let row = UnsafeRawPointer(base + y * stride)
      for x in 0..<width { out.append(row.load(fromByteOffset: x * 4, as: UInt32.self)) }
    }
    pixels = out
  }

  /// The colour at pixel (x, y) (ARGB32; opaque pixels are not premultiplied-distorted).
  func color(x: Int, y: Int) -> RGBColor {
    let v = pixels[y * width + x]
    return RGBColor(red: UInt8((v >> 16) & 0xff), green: UInt8((v >> 8) & 0xff), blue: UInt8(v & 0xff),
                    alpha: UInt8(v >> 24))
  }

  var distinctColors: Set<RGBColor> { Set(pixels.map { v in RGBColor(rgb: v & 0xffffff) }) }
}
