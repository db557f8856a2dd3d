import ArgumentParser
import SingleCell

/// `singlecell umap IN.h5ad -o OUT.h5ad`: `sc.tl.umap` on the neighbours graph of the file.
struct UMAPCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "umap",
    abstract: "UMAP layout of the neighbours graph (sc.tl.umap); writes obsm['X_umap'].",
    discussion: "Needs obsp['connectivities'] from `singlecell neighbors`. The output is written atomically.")

  @OptionGroup var global: GlobalOptions

  @Argument(help: "Input .h5ad file with a neighbours graph.") var input: String
  @Option(name: [.short, .customLong("output")], help: "Output .h5ad file.") var output: String
  @Option(help: "Minimum distance between embedded points (scanpy: 0.5).") var minDist: Double = 0.5
  @Option(help: "Scale of embedded points.") var spread: Double = 1
  @Option(help: "Dimensions of the layout.") var nComponents: Int = 2
  @Option(help: "Epochs (default: 500 up to 10,000 cells, else 200).") var nEpochs: Int?
  @Option(help: "Initial learning rate.") var learningRate: Double = 1
  @Option(help: "Negative samples per positive sample.") var negativeSampleRate: Int = 5
  @Option(help: "Initialisation: spectral or random.") var initPos: String = "spectral"
  @Option(help: "uns key of the neighbours to use.") var neighborsKey: String = "neighbors"

  func validate() throws {
    guard ["spectral", "random"].contains(initPos) else { throw ValidationError("--init-pos must be spectral or random") }
  }

  func run() throws {
    _ = try global.apply()
    var adata = try AnnData.read(h5ad: input)
    let options = UMAP.Options(nComponents: nComponents, minDist: minDist, spread: spread, nEpochs: nEpochs,
                               learningRate: learningRate, negativeSampleRate: negativeSampleRate,
                               initialization: initPos == "random" ? .random : .spectral)
    try adata.umap(options: options, neighborsKey: neighborsKey, seed: global.seed)
    try adata.write(h5ad: output)
    print("wrote \(output): X_umap of \(adata.nObs) cells")
  }
}
