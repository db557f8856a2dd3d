import ArgumentParser
import Foundation
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

  /// ArgumentParser's `main`, except that an error's message goes to stderr in one write
  /// (ArgumentParser writes it a byte at a time, which ranks started by --nproc, sharing one
  /// terminal, would interleave), and that the command runs under `profiled`.
  static func main() {
    do {
      var command = try parseAsRoot()
      try profiled { try command.run() }
    } catch {
      let code = exitCode(for: error)
      if code == .success { exit(withError: error) }  // --help, --version: to stdout as usual
      let message = fullMessage(for: error)
      if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
      Foundation.exit(code.rawValue)
    }
  }
}

/// Runs `body`, under libtorch's profiler when SINGLECELL_PROFILE=TRACE.json is set (its
/// operators, and CUDA kernels where CUDA is present), writing a Chrome trace (README, "The
/// command line"); each rank of a data-parallel job writes its own, TRACE.rankR.json.
private func profiled(_ body: () throws -> Void) throws {
  let environment = ProcessInfo.processInfo.environment
  guard var trace = environment["SINGLECELL_PROFILE"], !trace.isEmpty else { return try body() }
  if let rank = environment["RANK"] {
    let file = URL(fileURLWithPath: trace)
    trace = file.deletingPathExtension().appendingPathExtension("rank\(rank)")
      .appendingPathExtension(file.pathExtension.isEmpty ? "json" : file.pathExtension).path
  }
  let cuda = Runtime.cudaAvailable
  if !cuda { setenv("KINETO_LOG_LEVEL", "5", 0) }  // Kineto's complaint that it finds no GPU
  try Runtime.startProfiler(cuda: cuda)
  defer {
    do { try Runtime.stopProfiler(writingTo: trace) } catch { warn("no profile written to \(trace): \(error)") }
  }
  try body()
}

enum SingleCellVersion {
  static let string = "0.1.0 (libtorch \(Runtime.libtorchVersion))"
}
