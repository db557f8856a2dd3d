import ArgumentParser
import Foundation
import SingleCell

/// `singlecell info FILE`: a summary of an .h5ad file.
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Print the shape, X type, obs/var columns, layers and obsm keys of an .h5ad file (or a 10x Genomics matrix).")

  @Argument(help: "An .h5ad file, a 10x Genomics .h5 file or a 10x Matrix Market directory.") var file: String

  @Option(help: ArgumentHelp("Time N reads of the file in this process and print the median (for bench/h5ad_read).", visibility: .hidden))
  var timeReads: Int?

  func run() throws {
    if let n = timeReads {
      var seconds: [Double] = []
      for _ in 0..<max(n, 1) {
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try AnnData.read(input: file)
        seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
      }
      seconds.sort()
      print("median_read_seconds \(seconds[seconds.count / 2])")
      return
    }
    let adata = try AnnData.read(input: file)
    print("AnnData \(adata.nObs) obs × \(adata.nVars) vars  (\(file))")
    print("X: \(adata.X?.summary ?? "none")")
    printFrame("obs", adata.obs)
    printFrame("var", adata.var)
    printKeys("layers", adata.layers.mapValues(\.summary))
    printKeys("obsm", adata.obsm.mapValues(\.typeDescription))
    printKeys("varm", adata.varm.mapValues(\.typeDescription))
    printKeys("obsp", adata.obsp.mapValues(\.summary))
    printKeys("varp", adata.varp.mapValues(\.summary))
    printKeys("uns", adata.uns.mapValues(\.typeDescription))
    if let raw = adata.raw {
      print("raw: \(raw.var.nRows) vars, X: \(raw.X?.summary ?? "none")")
    }
  }

  private func printFrame(_ name: String, _ frame: DataFrame) {
    print("\(name): \(frame.nRows) rows, \(frame.columnNames.count) columns (first names: \(frame.index.prefix(3).joined(separator: ", ")))")
    for column in frame.columnNames {
      print("  \(column): \(frame[column]!.typeDescription)")
    }
  }

  private func printKeys(_ name: String, _ entries: [String: String]) {
    guard !entries.isEmpty else { return }
    print("\(name):")
    for key in entries.keys.sorted() { print("  \(key): \(entries[key]!)") }
  }
}
