import CellData
import Foundation

/// A self-contained HTML report of a run's output directory: settings (`model.json`),
/// metrics (`metrics.json`), training curves (`history.csv`), embedding plots of
/// `adata.h5ad` (every obsm basis, X_umap first, coloured by each categorical obs column
/// with at most `maxCategories` categories) and loadings (`loadings.csv`). Images are PNGs
/// inlined as base64 data URIs, so the file has no external references. A missing piece is
/// skipped with a note; a piece that cannot be read gets an error note instead.
///
/// ```swift
/// let url = try RunReport(directory: outdir).write()   // outdir/report.html
/// ```
public struct RunReport {
  public static let inputFiles = ["model.json", "metrics.json", "history.csv", "adata.h5ad", "loadings.csv"]

  public let directory: URL
  /// The finished document.
  public let html: String
  /// One line per skipped or unreadable piece.
  public let notes: [String]
  /// How many images the report holds.
  public let imageCount: Int

  /// - Parameters:
  ///   - maxCategories: colour by categorical obs columns with at most this many categories.
  ///   - loadingsFactors: plot the first this many factors of loadings.csv.
  public init(directory: URL, maxCategories: Int = 40, loadingsFactors: Int = 3, dpi: Double = 100) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
      throw PlotError("report: output directory \(directory.path) does not exist")
    }
    guard isDirectory.boolValue else { throw PlotError("report: \(directory.path) is not a directory") }
    let present = Self.inputFiles.filter { FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path) }
    guard !present.isEmpty else {
      throw PlotError("report: \(directory.path) has none of \(Self.inputFiles.joined(separator: ", "))")
    }
    var builder = ReportBuilder(directory: directory, dpi: dpi)
    builder.settings()
    builder.metrics()
    builder.trainingCurves()
    builder.embeddings(maxCategories: maxCategories)
    builder.loadings(factors: loadingsFactors)
    self.directory = directory
    self.html = builder.document()
    self.notes = builder.notes
    self.imageCount = builder.imageCount
  }

  /// Writes the report atomically to `url` (default `directory/report.html`) and returns where.
  @discardableResult
  public func write(to url: URL? = nil) throws -> URL {
    let target = url ?? directory.appendingPathComponent("report.html")
    do {
      try Data(html.utf8).write(to: target, options: .atomic)
    } catch {
      throw PlotError("cannot write \(target.path): \(error.localizedDescription)")
    }
    return target
  }
}

/// Collects the sections of a report.
struct ReportBuilder {
  let directory: URL
  let dpi: Double
  var sections: [String] = []
  var notes: [String] = []
  var imageCount = 0

  init(directory: URL, dpi: Double) {
    self.directory = directory
    self.dpi = dpi
  }

  private func file(_ name: String) -> URL? {
    let url = directory.appendingPathComponent(name)
    return FileManager.default.fileExists(atPath: url.path) ? url : nil
  }

  /// Adds a section, or a note when the file is missing or fails.
  private mutating func section(_ title: String, file name: String, _ body: (URL) throws -> String) {
    guard let url = file(name) else {
      note(title, "skipped: \(name) not found", error: false)
      return
    }
    do {
      sections.append("<section>\n<h2>\(xmlEscaped(title))</h2>\n\(try body(url))</section>\n")
    } catch {
      note(title, "could not read \(name): \(error)", error: true)
    }
  }

  private mutating func note(_ title: String, _ message: String, error: Bool) {
    notes.append("\(title): \(message)")
    sections.append("<section>\n<h2>\(xmlEscaped(title))</h2>\n<p class=\"\(error ? "error" : "note")\">\(xmlEscaped(message))</p>\n</section>\n")
  }

  mutating func settings() {
    section("Settings", file: "model.json") { url in
      let json = try JSONValue.parse(try Data(contentsOf: url), name: "model.json")
      guard case .object = json else { throw PlotError("model.json is not a JSON object") }
      return HTML.table(header: ["setting", "value"], rows: json.flattened().map { [$0.0, $0.1.displayText] })
    }
  }

  mutating func metrics() {
    section("Metrics", file: "metrics.json") { url in
      let json = try JSONValue.parse(try Data(contentsOf: url), name: "metrics.json")
      guard case .object = json else { throw PlotError("metrics.json is not a JSON object") }
      return HTML.table(header: ["metric", "value"], rows: json.flattened().map { [$0.0, $0.1.displayText] }, numeric: true)
    }
  }

  mutating func trainingCurves() {
    var images = 0
    let dpi = self.dpi
    section("Training curves", file: "history.csv") { url in
      let all = try TrainingCurvePlot(historyCSV: url)
      var html = "<div class=\"figures\">\n"
      for group in Self.scaleGroups(all.series) {
        var plot = try TrainingCurvePlot(epochs: all.epochs, series: group, xLabel: all.xLabel)
        plot.figureSize.dpi = dpi
        html += HTML.figure(try plot.png(), caption: group.map(\.name).joined(separator: ", "))
        images += 1
      }
      return html + "</div>\n"
    }
    imageCount += images
  }

  /// Metrics grouped so that each plot's largest |value| differ by at most 20× (a loss in the
  /// hundreds does not flatten a KL weight in [0, 1]); column order is kept within a group.
  static func scaleGroups(_ series: [TrainingCurvePlot.Series]) -> [[TrainingCurvePlot.Series]] {
    let scale = { (s: TrainingCurvePlot.Series) in s.values.filter(\.isFinite).map(abs).max() ?? 0 }
    let sorted = series.indices.sorted { scale(series[$0]) < scale(series[$1]) }
    var groups: [[Int]] = []
    var groupStart = 0.0
    for i in sorted {
      let s = scale(series[i])
      if let last = groups.indices.last, s <= max(groupStart, 1e-12) * 20 {
        groups[last].append(i)
      } else {
        groups.append([i])
        groupStart = s
      }
    }
    return groups.sorted { $0.min()! < $1.min()! }.map { $0.sorted().map { series[$0] } }
  }

  mutating func embeddings(maxCategories: Int) {
    var images = 0, skipped: [String] = []
    let dpi = self.dpi
    section("Embeddings", file: "adata.h5ad") { url in
      let adata = try AnnData.read(h5ad: url.path)
      let bases = Self.embeddingBases(adata)
      guard !bases.isEmpty else { throw PlotError("adata.h5ad has no two-dimensional embedding in obsm") }
      var colorKeys: [String] = []
      for name in adata.obs.columnNames {
        guard case .categorical(let c)? = adata.obs[name] else { continue }
        if c.categories.count <= maxCategories { colorKeys.append(name) } else { skipped.append(name) }
      }
      var html = "<p>\(adata.nObs) cells × \(adata.nVars) genes; bases: \(xmlEscaped(bases.joined(separator: ", ")))</p>\n"
      if !skipped.isEmpty {
        html += "<p class=\"note\">not coloured by \(xmlEscaped(skipped.joined(separator: ", "))) (more than \(maxCategories) categories)</p>\n"
      }
      html += "<div class=\"figures\">\n"
      for basis in bases {
        for key in colorKeys.isEmpty ? [nil] : colorKeys.map(Optional.some) {
          var plot = try EmbeddingPlot(adata: adata, basis: basis, color: key)
          plot.dpi = dpi
          html += HTML.figure(try plot.png(), caption: "\(basis) · \(key ?? "no categorical obs column")")
          images += 1
        }
      }
      return html + "</div>\n"
    }
    imageCount += images
  }

  /// Dense numeric obsm entries with at least two columns: X_umap first, then by name.
  static func embeddingBases(_ adata: AnnData) -> [String] {
    let usable = adata.obsm.compactMap { key, element -> String? in
      guard case .dense(let d) = element, d.shape.count == 2, d.shape[0] == adata.nObs, d.shape[1] >= 2,
            !d.data.isString else { return nil }
      return key
    }
    return usable.sorted { a, b in a == "X_umap" ? b != "X_umap" : (b == "X_umap" ? false : a < b) }
  }

  mutating func loadings(factors: Int) {
    var images = 0
    section("Loadings", file: "loadings.csv") { url in
      let table = try LoadingsTable(csv: url)
      var html = "<p>\(table.genes.count) genes × \(table.factors.count) factors; first \(min(factors, table.factors.count)) shown</p>\n<div class=\"figures\">\n"
      for factor in table.factors.prefix(max(factors, 1)) {
        let plot = try LoadingsPlot(table: table, factor: factor)
        html += HTML.figure(try plot.png(), caption: factor)
        images += 1
      }
      return html + "</div>\n"
    }
    imageCount += images
  }

  func document() -> String {
    """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <title>singlecell report: \(xmlEscaped(directory.lastPathComponent))</title>
    <style>\(HTML.style)</style>
    </head>
    <body>
    <h1>singlecell report</h1>
    <p class="path">\(xmlEscaped(directory.path))</p>
    \(sections.joined())
    </body>
    </html>

    """
  }
}

enum HTML {
  static let style = """
    body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1400px}
    h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
    table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:.25em .7em;text-align:left}
    th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
    .figures{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figure img{max-width:100%;border:1px solid #eee}
    figcaption{font-size:.85em;color:#555}.note{color:#777;font-style:italic}.error{color:#b00020}.path{color:#777}
    """

  static func table(header: [String], rows: [[String]], numeric: Bool = false) -> String {
    var out = "<table>\n<tr>" + header.map { "<th>\(xmlEscaped($0))</th>" }.joined() + "</tr>\n"
    for row in rows {
      out += "<tr>" + row.enumerated().map { j, cell in
        let isNumber = numeric && j > 0 && Double(cell) != nil
        return "<td\(isNumber ? " class=\"num\"" : "")>\(xmlEscaped(cell))</td>"
      }.joined() + "</tr>\n"
    }
    return out + "</table>\n"
  }

  static func figure(_ png: Data, caption: String) -> String {
    "<figure><img alt=\"\(xmlEscaped(caption))\" src=\"data:image/png;base64,\(png.base64EncodedString())\">"
      + "<figcaption>\(xmlEscaped(caption))</figcaption></figure>\n"
  }
}
