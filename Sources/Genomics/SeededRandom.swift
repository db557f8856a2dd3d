// A small, seedable, platform-independent random number generator.

/// xoshiro256** (Blackman & Vigna, 2018) seeded through SplitMix64, so any 64-bit seed,
/// including 0, gives a well-mixed state. Same seed, same stream, on every platform.
///
/// The helpers `uniformInt(below:)` and `uniformDouble()` are defined here rather than through
/// the standard library's `Int.random(in:using:)`, whose algorithm may change between Swift releases.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
  private var state: (UInt64, UInt64, UInt64, UInt64)

  public init(seed: UInt64) {
    var splitMix = seed
    func nextSplitMix() -> UInt64 {
      splitMix &+= 0x9E37_79B9_7F4A_7C15
      var z = splitMix
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    state = (nextSplitMix(), nextSplitMix(), nextSplitMix(), nextSplitMix())
  }

  public mutating func next() -> UInt64 {
    let result = rotateLeft(state.1 &* 5, 7) &* 9
    let t = state.1 << 17
    state.2 ^= state.0
    state.3 ^= state.1
    state.1 ^= state.2
    state.0 ^= state.3
    state.2 ^= t
    state.3 = rotateLeft(state.3, 45)
    return result
  }

  /// A uniform integer in `0..<bound` (Lemire's unbiased multiply-and-reject method).
  public mutating func uniformInt(below bound: Int) -> Int {
    precondition(bound > 0, "uniformInt(below:) needs a positive bound")
    let range = UInt64(bound)
    var product = next().multipliedFullWidth(by: range)
    if product.low < range {
      let threshold = (0 &- range) % range
      while product.low < threshold {
        product = next().multipliedFullWidth(by: range)
      }
    }
    return Int(product.high)
  }

  /// A uniform double in [0, 1) with 53 random bits.
  public mutating func uniformDouble() -> Double {
    Double(next() >> 11) * 0x1.0p-53
  }

  /// Fisher–Yates shuffle of `array` in place.
  public mutating func shuffle<T>(_ array: inout [T]) {
    guard array.count > 1 else { return }
    for i in stride(from: array.count - 1, to: 0, by: -1) {
      let j = uniformInt(below: i + 1)
      if i != j { array.swapAt(i, j) }
    }
  }

  private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 {
    (x << k) | (x >> (64 - k))
  }
}
