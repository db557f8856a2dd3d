import ArgumentParser
import Foundation
import SingleCell

/// `singlecell neighbors IN.h5ad --use-rep X_scVI -k 15 -o OUT.h5ad [--umap] [--leiden]`:
/// scanpy's `sc.pp.neighbors` (UMAP connectivities), optionally followed by UMAP and Leiden.
struct NeighborsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "neighbors",
    abstract: "kNN graph with UMAP connectivities (sc.pp.neighbors); optionally UMAP and Leiden in the same call.",
    discussion: """
      Writes obsp["distances"], obsp["connectivities"] and uns["neighbors"] as scanpy does
      (-k counts the cell itself). --umap adds obsm["X_umap"]; --leiden adds obs["leiden"].
      The output is written atomically.
      """)

  @OptionGroup var global: GlobalOptions

  @Argument(help: "Input .h5ad file.") var input: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad file.") var output: String
  @Option(help: "obsm key of the representation (default: X_pca if present, else X).") var useRep: String?
  @Option(help: "Use only the first N columns of the representation.") var nPCs: Int?
  @Option(name: [.customShort("k"), .customLong("n-neighbors")], help: "Neighbours per cell, the cell itself included.")
  var nNeighbors: Int = 15
  @Option(help: "Distance: euclidean or cosine.") var metric: String = "euclidean"
  @Option(help: "Search: exact or nndescent (approximate).") var method: String = "exact"
  @Flag(help: "Also compute UMAP (sc.tl.umap defaults).") var umap = false
  @Flag(help: "Also run Leiden clustering.") var leiden = false
  @Option(help: "Leiden resolution (with --leiden).") var resolution: Double = 1
  @Option(help: "Leiden iterations (negative: until stable).") var nIterations: Int = 2

  @Flag(help: ArgumentHelp("Print the seconds each step took (for bench/analysis).", visibility: .hidden))
  var reportTimings = false

  func validate() throws {
    guard Neighbors.Metric(rawValue: metric) != nil else { throw ValidationError("--metric must be euclidean or cosine") }
    guard ["exact", "nndescent"].contains(method) else { throw ValidationError("--method must be exact or nndescent") }
  }

  func run() throws {
    _ = try global.apply()
    var adata = try AnnData.read(h5ad: input)
    var timings = StepTimings(enabled: reportTimings)
    try timings.measure("neighbors") {
      try adata.neighbors(nNeighbors: nNeighbors, useRep: useRep, nPCs: nPCs, metric: Neighbors.Metric(rawValue: metric)!,
                          method: method == "exact" ? .exact : .nnDescent(), seed: global.seed)
    }
    if umap { try timings.measure("umap") { try adata.umap(seed: global.seed) } }
    var clusters = 0
    if leiden {
      try timings.measure("leiden") {
        clusters = Set(try adata.leiden(resolution: resolution, nIterations: nIterations, seed: global.seed)).count
      }
    }
    timings.report()
    try adata.write(h5ad: output)
    var done = "wrote \(output): \(nNeighbors)-NN graph of \(adata.nObs) cells"
    if umap { done += ", X_umap" }
    if leiden { done += ", \(clusters) Leiden clusters" }
    print(done)
  }
}

/// Wall-clock seconds of named steps, printed as `timing STEP SECONDS` lines when enabled.
struct StepTimings {
  let enabled: Bool
  private var entries: [(String, Double)] = []

  init(enabled: Bool) { self.enabled = enabled }

  mutating func measure(_ name: String, _ body: () throws -> Void) throws {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    entries.append((name, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
  }

  func report() {
    guard enabled else { return }
    for (name, seconds) in entries { print("timing \(name) \(String(format: "%.4f", seconds))") }
  }
}
