import ArgumentParser
import SingleCell

@main
struct SingleCellCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "singlecell",
    abstract: "Deep learning for single-cell omics: scVI, LDVAE, scBasset, scAtlasVAE, scGPT.",
    version: SingleCellVersion.string,
    subcommands: [InfoCommand.self, PreprocessCommand.self, RuntimeCommand.self, PlotCommand.self, ReportCommand.self,
                  SCVICommand.self, LDVAECommand.self, SCBassetCommand.self, AtlasCommand.self, ScGPTCommand.self,
                  NeighborsCommand.self, UMAPCommand.self, LeidenCommand.self, MetricsCommand.self,
                  SimulateCommand.self]
  )
}

enum SingleCellVersion {
  static let string = "0.1.0 (libtorch \(Runtime.libtorchVersion))"
}
