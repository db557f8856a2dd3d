import Foundation

/// MT19937, the generator behind Python's `random.Random` and numpy's legacy
/// `np.random.RandomState`, with both libraries' seeding and draws, so that igraph can be fed
/// the same random stream that python-igraph feeds it (see `Clustering.RandomStream`).
public struct MersenneTwister: Sendable {
  private var state = [UInt32](repeating: 0, count: 624)
  private var index = 624

  /// `init_genrand(seed)`: numpy's `RandomState(seed)` for an integer seed.
  public init(seed: UInt32) {
    state[0] = seed
    for i in 1..<624 { state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i) }
  }

  /// `init_by_array(key)`, the reference algorithm.
  public init(key: [UInt32]) {
    self.init(seed: 19_650_218)
    let n = 624, length = Swift.max(key.count, 1)
    let key = key.isEmpty ? [0] : key
    var i = 1, j = 0
    for _ in 0..<Swift.max(n, length) {
      state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1_664_525)) &+ key[j] &+ UInt32(j)
      i += 1
      j += 1
      if i >= n { state[0] = state[n - 1]; i = 1 }
      if j >= length { j = 0 }
    }
    for _ in 0..<(n - 1) {
      state[i] = (state[i] ^ ((state[i - 1] ^ (state[i - 1] >> 30)) &* 1_566_083_941)) &- UInt32(i)
      i += 1
      if i >= n { state[0] = state[n - 1]; i = 1 }
    }
    state[0] = 0x8000_0000
  }

  /// CPython's `random.Random(seed)` for an integer seed: `init_by_array` over the 32-bit
  /// words of |seed|, least significant first (one zero word for 0).
  public init<Seed: BinaryInteger>(pythonSeed seed: Seed) {
    var magnitude = seed.magnitude
    var key: [UInt32] = []
    repeat {
      key.append(UInt32(truncatingIfNeeded: magnitude))
      magnitude >>= 32
    } while magnitude > 0
    self.init(key: key)
  }

  /// The next 32-bit output (`genrand_uint32`).
  public mutating func next() -> UInt32 {
    if index >= 624 { twist() }
    var y = state[index]
    index += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C_5680
    y ^= (y << 15) & 0xEFC6_0000
    y ^= y >> 18
    return y
  }

  /// A double in [0, 1) from 53 random bits, as both `random.random()` and numpy's
  /// `random_sample()` make it: (a >> 5, b >> 6) of two draws.
  public mutating func nextDouble() -> Double {
    let a = Double(next() >> 5), b = Double(next() >> 6)
    return (a * 67_108_864 + b) * (1 / 9_007_199_254_740_992)
  }

  private mutating func twist() {
    for i in 0..<624 {
      let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
      state[i] = state[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) == 0 ? 0 : 0x9908_B0DF)
    }
    index = 0
  }
}
