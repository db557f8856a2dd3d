import CellAnalysis

/// The random draws of scGPT's data preparation (subsampling long cells, masking values,
/// breaking binning ties), with the same stream as numpy's legacy global generator after
/// `np.random.seed(seed)`: the same seed gives the reference's choices exactly.
public struct ScGPTRandom: Sendable {
  private var twister: MersenneTwister

  public init(seed: UInt32) { twister = MersenneTwister(seed: seed) }

  /// `np.random.rand()`: a double in [0, 1).
  public mutating func uniform() -> Double { twister.nextDouble() }

  /// numpy's `random_interval(max)`: uniform in 0...max by masked rejection.
  mutating func interval(_ max: Int) -> Int {
    if max == 0 { return 0 }
    var mask = UInt32(max)
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16
    while true {
      let value = twister.next() & mask
      if value <= UInt32(max) { return Int(value) }
    }
  }

  /// `np.random.permutation(n)`: Fisher–Yates from the last element down.
  public mutating func permutation(_ n: Int) -> [Int] {
    var values = Array(0..<n)
    if n > 1 { for i in stride(from: n - 1, through: 1, by: -1) { values.swapAt(i, interval(i)) } }
    return values
  }

  /// `np.random.choice(n, size, replace=False)`: the first `size` entries of a permutation of
  /// 0..<n, in that (random) order. Draws a whole permutation even for size 0, as numpy does.
  public mutating func choiceWithoutReplacement(_ n: Int, size: Int) -> [Int] {
    precondition(size <= n, "cannot take \(size) of \(n) without replacement")
    return Array(permutation(n).prefix(size))
  }
}
