import ArgumentParser
import Foundation
import SingleCell

/// `singlecell plot`: embedding scatters, training curves and loadings charts as SVG or PNG.
struct PlotCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plot",
    abstract: "Plot an embedding, training curves or factor loadings to .svg or .png.",
    discussion: """
      Embedding:  singlecell plot IN.h5ad --basis umap --color bulk_labels [--color leiden …] -o umap.png
      Curves:     singlecell plot --history history.csv [--metric train_loss …] -o curves.svg
      Loadings:   singlecell plot --loadings loadings.csv [--factor NAME|INDEX] [--top 10] -o loadings.png

      The format follows the extension of -o. With several --color, one file per key is written
      next to -o, named STEM_KEY.EXT (umap_bulk_labels.png, umap_leiden.png); with one, exactly -o.
      Colours, point size and draw order follow scanpy's sc.pl.embedding defaults.
      """)

  @OptionGroup var global: GlobalOptions

  @Argument(help: "An .h5ad file (embedding mode).") var input: String?
  @Option(help: "obsm key or its name without X_ (umap, pca, X_scVI).") var basis: String = "umap"
  @Option(help: "obs column or gene to colour by; repeat for several plots.") var color: [String] = []
  @Option(help: "Zero-based embedding dimensions to plot, e.g. 0,1.") var components: String = "0,1"
  @Option(help: "Marker area in points² (default scanpy's 120000 / n_cells).") var pointSize: Double?
  @Option(help: "A training history CSV (curves mode).") var history: String?
  @Option(help: "Metric column of the history to plot; repeat for several (default: all).") var metric: [String] = []
  @Option(help: "A genes × factors loadings CSV (loadings mode).") var loadings: String?
  @Option(help: "Factor name or zero-based index (default: the first).") var factor: String?
  @Option(help: "Genes shown per sign in loadings mode.") var top: Int = 10
  @Option(help: "Figure width in inches (default: per plot kind).") var width: Double?
  @Option(help: "Figure height in inches (default: per plot kind).") var height: Double?
  @Option(help: "PNG resolution.") var dpi: Double = 100
  @Option(name: [.short, .customLong("output")], help: "Output .svg or .png file.") var output: String

  func validate() throws {
    let modes = [input != nil, history != nil, loadings != nil].filter { $0 }.count
    guard modes == 1 else { throw ValidationError("give exactly one of IN.h5ad, --history FILE or --loadings FILE") }
    guard ["svg", "png"].contains(URL(fileURLWithPath: output).pathExtension.lowercased()) else {
      throw ValidationError("-o must end in .svg or .png")
    }
    if (width == nil) != (height == nil) { throw ValidationError("give --width and --height together") }
    guard dpi > 0 else { throw ValidationError("--dpi must be positive") }
  }

  func run() throws {
    _ = try global.apply()
    let out = URL(fileURLWithPath: output)
    let size = width.map { FigureSize(width: $0, height: height!, dpi: dpi) }
    if let history {
      var plot = try TrainingCurvePlot(historyCSV: URL(fileURLWithPath: history), metrics: metric.isEmpty ? nil : metric)
      plot.figureSize = size ?? FigureSize(width: plot.figureSize.width, height: plot.figureSize.height, dpi: dpi)
      try plot.write(to: out)
      print("wrote \(output)")
    } else if let loadings {
      var plot = try LoadingsPlot(loadingsCSV: URL(fileURLWithPath: loadings), factor: factor, topN: top)
      plot.figureSize = size ?? FigureSize(width: plot.figureSize.width, height: plot.figureSize.height, dpi: dpi)
      try plot.write(to: out)
      print("wrote \(output)")
    } else if let input {
      try plotEmbedding(input, out: out, size: size)
    }
  }

  private func plotEmbedding(_ input: String, out: URL, size: FigureSize?) throws {
    let dims = components.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard dims.count == 2 else { throw ValidationError("--components takes two indices, e.g. 0,1") }
    let adata = try AnnData.read(h5ad: input)
    let keys: [String?] = color.isEmpty ? [nil] : color
    for key in keys {
      var plot = try EmbeddingPlot(adata: adata, basis: basis, color: key, components: (dims[0], dims[1]),
                                   pointSize: pointSize, figureSize: size)
      plot.dpi = dpi
      let target = keys.count == 1 ? out : Self.panelURL(out, key: key!)
      try plot.write(to: target)
      print("wrote \(target.path)")
    }
  }

  /// STEM_KEY.EXT next to `out`, with characters unsafe in file names replaced by "_".
  static func panelURL(_ out: URL, key: String) -> URL {
    let safe = String(key.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" })
    let stem = out.deletingPathExtension().lastPathComponent
    return out.deletingLastPathComponent().appendingPathComponent("\(stem)_\(safe).\(out.pathExtension)")
  }
}
