import CKernels
import CTorch

/// Process-wide libtorch settings: threads, seeding, CUDA.
public enum Runtime {
  public static var libtorchVersion: String { String(cString: ct_version()) }

  public static var threads: Int { Int(ct_get_num_threads()) }
  public static func setThreads(_ n: Int) { ct_set_num_threads(Int32(n)) }

  /// Whether swift-singlecell's own CPU kernels (the fused count likelihood, Adam's update) run their
  /// AVX2+FMA build; true by default where the CPU has AVX2 and FMA. Setting it false runs the
  /// baseline x86-64 build, which the tests compare against.
  public static var avx2Kernels: Bool {
    get { sck_avx2_enabled() != 0 }
    set { sck_set_avx2_enabled(newValue ? 1 : 0) }
  }

  /// Where dropout masks come from on CPU. `.libtorch` (default): torch's own, so the same seed
  /// gives PyTorch's masks. `.fast`: swift-singlecell's generator (xoshiro256**, seeded by
  /// `seed`), several times faster where libtorch's CPU bernoulli is a serial per-element loop
  /// (every non-Intel CPU); the masks differ from PyTorch's, their distribution does not.
  public enum DropoutMasks: Sendable { case libtorch, fast }
  public static var dropoutMasks: DropoutMasks {
    get { DropoutRandom.fast ? .fast : .libtorch }
    set { DropoutRandom.fast = newValue == .fast }
  }

  /// Seeds libtorch's generators (CPU and, when loaded, CUDA) and our dropout masks' generator.
  public static func seed(_ seed: UInt64) {
    ct_manual_seed(seed)
    DropoutRandom.seed(seed)
  }

  /// The state of every CPU random stream: libtorch's default generator (as
  /// `torch.get_rng_state()`, uint8) and the fast dropout masks' generator (4 words, as int64).
  /// Saved with a checkpoint and restored on resume, a continued run draws what the
  /// uninterrupted one would have. CUDA generators are not included.
  public static func randomState() -> StateDict {
    StateDict([("cpu_generator", wrap(ct_cpu_generator_state())),
               ("dropout_generator", Tensor(DropoutRandom.words.map { Int64(bitPattern: $0) }))])
  }

  public static func setRandomState(_ state: StateDict) throws {
    guard let cpu = state["cpu_generator"], let dropout = state["dropout_generator"], dropout.dtype == .int64, dropout.count == 4 else {
      throw TorchError.invalidArgument("a random state needs cpu_generator and 4 int64 words of dropout_generator")
    }
    try withTorchErrors { check(cpu.withHandle { ct_set_cpu_generator_state($0) }) }
    DropoutRandom.words = dropout.toArray(Int64.self).map { UInt64(bitPattern: $0) }
  }

  /// libtorch's own log messages at this level and above reach stderr (TORCH_CPP_LOG_LEVEL
  /// sets it at start; libtorch's default is warning).
  public enum LogLevel: Int32, Sendable { case info = 0, warning, error, fatal }
  public static func setLogLevel(_ level: LogLevel) { _ = ct_set_log_level(level.rawValue) }

  /// Starts libtorch's profiler (torch.profiler's engine) on this thread's operators, and on CUDA
  /// kernels when `cuda`; `stopProfiler` writes a Chrome trace (chrome://tracing, Perfetto).
  public static func startProfiler(cuda: Bool) throws {
    try withTorchErrors { check(ct_profiler_start(cuda ? 1 : 0)) }
  }

  public static func stopProfiler(writingTo path: String) throws {
    try withTorchErrors { check(ct_profiler_stop(path)) }
  }

  /// Loads libtorch_cuda.so on first use; false on machines without CUDA.
  public static var cudaAvailable: Bool { ct_cuda_available() != 0 }
  public static var cudaDeviceCount: Int { Int(ct_cuda_device_count()) }
  /// Whether attention may use cuDNN's kernel on CUDA. Off by default (`SINGLECELL_CUDNN_ATTENTION=1`
  /// turns it on): libtorch prefers it for bf16 on sm90+ and builds a plan for every new input
  /// shape, hundreds of milliseconds each, so variable-length minibatches ran slower in bf16
  /// than in fp32 (docs/scgpt.md). Flash and memory-efficient attention serve instead.
  public static var cudnnAttention: Bool {
    get { ct_cudnn_attention() != 0 }
    set { ct_set_cudnn_attention(newValue ? 1 : 0) }
  }
}
