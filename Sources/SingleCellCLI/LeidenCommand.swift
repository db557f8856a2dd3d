import ArgumentParser
import SingleCell

/// `singlecell leiden IN.h5ad --resolution R -o OUT.h5ad`: `sc.tl.leiden(flavor="igraph")`
/// (or Louvain) on the neighbours graph of the file.
struct LeidenCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "leiden",
    abstract: "Leiden (or Louvain) clustering of the neighbours graph with igraph; writes obs['leiden'].",
    discussion: """
      Needs obsp['connectivities'] from `singlecell neighbors`. Clusters are named "0", "1", …
      from the largest. The output is written atomically.
      """)

  @OptionGroup var global: GlobalOptions

  @Argument(help: "Input .h5ad file with a neighbours graph.") var input: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad file.") var output: String
  @Option(help: "Resolution: higher gives more clusters.") var resolution: Double = 1
  @Option(help: "Leiden iterations (negative: until stable; scanpy's igraph flavor uses 2).") var nIterations: Int = 2
  @Option(help: "Algorithm: leiden or louvain.") var algorithm: String = "leiden"
  @Option(help: "obs column to write (default: the algorithm's name).") var keyAdded: String?
  @Option(help: "uns key of the neighbours to use.") var neighborsKey: String = "neighbors"
  @Flag(help: "Ignore edge weights.") var unweighted = false

  func validate() throws {
    guard ["leiden", "louvain"].contains(algorithm) else { throw ValidationError("--algorithm must be leiden or louvain") }
  }

  func run() throws {
    _ = try global.apply()
    var adata = try AnnData.read(h5ad: input)
    let key = keyAdded ?? algorithm
    let labels: [Int]
    if algorithm == "louvain" {
      labels = try adata.louvain(resolution: resolution, neighborsKey: neighborsKey, useWeights: !unweighted,
                                 keyAdded: key, seed: global.seed)
    } else {
      labels = try adata.leiden(resolution: resolution, nIterations: nIterations, neighborsKey: neighborsKey,
                                useWeights: !unweighted, keyAdded: key, seed: global.seed)
    }
    try adata.write(h5ad: output)
    print("wrote \(output): \(Set(labels).count) \(algorithm) clusters in obs['\(key)']")
  }
}
