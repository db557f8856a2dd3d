import CKernels
import Foundation

/// The generator of CPU dropout masks under `Runtime.dropoutMasks = .fast` (xoshiro256**, in
/// CKernels), one per process like libtorch's default generator, seeded with it by `Runtime.seed`.
enum DropoutRandom {
  private static let lock = NSLock()
  nonisolated(unsafe) static var fast = false

  /// Whether `x`'s dropout uses these masks.
  static func applies(_ x: Tensor) -> Bool { fast && x.device == .cpu && x.dtype == .float32 }

  nonisolated(unsafe) private static var state: [UInt64] = {
    var s = [UInt64](repeating: 0, count: 4)
    sck_random_seed(&s, 67_280_421_310_721)  // libtorch's default seed
    return s
  }()

  static func seed(_ seed: UInt64) {
    lock.lock()
    defer { lock.unlock() }
    sck_random_seed(&state, seed)
  }

  /// The generator's four words (to save with a checkpoint), and back.
  static var words: [UInt64] {
    get { lock.lock(); defer { lock.unlock() }; return state }
    set { lock.lock(); defer { lock.unlock() }; state = newValue }
  }

  /// A float32 CPU tensor of `shape`: 1 / keep with probability `keep`, else 0.
  static func mask(_ shape: [Int], keep: Double) -> Tensor {
    let threshold = UInt32(min((keep * 65_536).rounded(), 65_536))  // keep rounded to a multiple of 2^-16
    let scale = Float(1 / keep)
    return Tensor.filled(shape, Float.self) { out in
      lock.lock()
      defer { lock.unlock() }
      sck_dropout_mask(&state, out.baseAddress, Int64(out.count), threshold, scale)
    }
  }
}
