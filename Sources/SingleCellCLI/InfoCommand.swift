import ArgumentParser
import SingleCell

/// `singlecell info FILE`: a summary of an .h5ad file (filled in by the data layer).
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info", abstract: "Print the shape, X type, obs/var columns, layers and obsm keys of an .h5ad file.")

  @Argument(help: "An .h5ad file.") var file: String

  func run() throws {
    throw ValidationError("info: reading .h5ad files is not implemented yet")
  }
}
