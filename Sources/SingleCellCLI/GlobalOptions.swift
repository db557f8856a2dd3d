import ArgumentParser
import SingleCell

/// Options every subcommand accepts: threads, seed and device.
struct GlobalOptions: ParsableArguments {
  @Option(help: "Intra-op CPU threads for libtorch (default: libtorch's choice).")
  var threads: Int?

  @Option(help: "Random seed; the same seed on the same machine gives the same result.")
  var seed: UInt64 = 0

  @Option(help: "Compute device: cpu or cuda[:index].")
  var device: String = "cpu"

  /// Applies threads and seed, and resolves the device (a clear error when CUDA is missing).
  func apply() throws -> Device {
    // libtorch allocates with malloc: keep large freed blocks for the next step (Runtime docs).
    Runtime.retainFreedMemory()
    if let threads {
      guard threads > 0 else { throw ValidationError("--threads must be positive") }
      Runtime.setThreads(threads)
    }
    Runtime.seed(seed)
    return try Device(parsing: device)
  }
}

/// `singlecell runtime`: what this build of libtorch can use.
struct RuntimeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "runtime", abstract: "Show libtorch's version, threads, CUDA availability and the kernels chosen for attention and gzip.")

  @OptionGroup var global: GlobalOptions

  func run() throws {
    let device = try global.apply()
    print("libtorch \(Runtime.libtorchVersion)")
    print("threads \(Runtime.threads)")
    print("cuda \(Runtime.cudaAvailable ? "available (\(Runtime.cudaDeviceCount) devices)" : "unavailable")")
    print("device \(device)")
    print("cudnn attention \(Runtime.cudnnAttention ? "on" : "off (SINGLECELL_CUDNN_ATTENTION=1 turns it on)")")
    print("hdf5 gzip \(hdf5GzipImplementation)")
  }
}

/// `--precision` of the models that can run under autocast (scGPT).
struct PrecisionArguments: ParsableArguments {
  enum Choice: String, ExpressibleByArgument, CaseIterable { case auto, fp32, bf16 }

  @Option(help: "Arithmetic of forward passes: bf16 (autocast; weights and optimiser stay float32), fp32, or auto (fp32: on an H200 bf16 measured 2-13x slower at scGPT's sizes, docs/scgpt.md; cuDNN attention, the likely cause, is now off).")
  var precision: Choice = .auto

  var dtype: DType { precision == .bf16 ? .bfloat16 : .float32 }
}

/// The help of a cells argument read through `AnnData.read(input:)`.
let countsInputHelp = ".h5ad with raw counts, a 10x Genomics .h5 file or a Matrix Market directory"
