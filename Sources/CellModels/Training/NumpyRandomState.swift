import CellAnalysis

/// numpy's legacy `np.random.RandomState(seed)` (MT19937) as far as scvi-tools uses it:
/// `permutation(n)`. Reproducing it gives the same train/validation split as scvi-tools
/// for the same seed (`scvi.settings.seed`, default 0).
struct NumpyRandomState {
  private var twister: MersenneTwister

  init(seed: UInt32) { twister = MersenneTwister(seed: seed) }

  /// MT19937's next 32-bit output (genrand_int32).
  mutating func nextUInt32() -> UInt32 { twister.next() }

  /// A uniform integer in 0...max by masked rejection (numpy's `random_interval`).
  mutating func interval(_ max: Int) -> Int {
    precondition(max >= 0 && max <= Int(UInt32.max), "interval bound out of range")
    if max == 0 { return 0 }
    var mask = UInt32(max)
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16
    while true {
      let value = nextUInt32() & mask
      if value <= UInt32(max) { return Int(value) }
    }
  }

  /// `RandomState.permutation(n)`: a Fisher–Yates shuffle of 0..<n from the last element down.
  mutating func permutation(_ n: Int) -> [Int] {
    var values = Array(0..<n)
    if n > 1 {
      for i in stride(from: n - 1, through: 1, by: -1) { values.swapAt(i, interval(i)) }
    }
    return values
  }
}
