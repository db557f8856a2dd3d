import ArgumentParser
import Foundation
import SingleCell

/// `singlecell report OUTDIR`: one self-contained HTML page of a run's outputs.
struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write a self-contained HTML report (settings, metrics, curves, embeddings, loadings) of a run directory.",
    discussion: """
      Reads what is present of OUTDIR/model.json, metrics.json, history.csv, adata.h5ad and
      loadings.csv; missing pieces are noted in the report. Images are inlined PNGs, so the
      page has no external references. Writes OUTDIR/report.html unless -o is given.
      """)

  @OptionGroup var global: GlobalOptions

  @Argument(help: "A run's output directory.") var outdir: String
  @Option(name: [.short, .customLong("output")], help: "Report file (default OUTDIR/report.html).") var output: String?
  @Option(help: "Colour embeddings by categorical obs columns with at most this many categories.") var maxCategories: Int = 40
  @Option(help: "Loadings charts for the first N factors.") var loadingsFactors: Int = 3
  @Option(help: "PNG resolution of the images.") var dpi: Double = 100

  func run() throws {
    _ = try global.apply()
    guard dpi > 0 else { throw ValidationError("--dpi must be positive") }
    let report = try RunReport(directory: URL(fileURLWithPath: outdir), maxCategories: maxCategories,
                               loadingsFactors: loadingsFactors, dpi: dpi)
    let url = try report.write(to: output.map { URL(fileURLWithPath: $0) })
    for note in report.notes { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
    print("wrote \(url.path) (\(report.imageCount) images)")
  }
}
