import CellData
import Foundation

/// Approximate k-nearest neighbours by NN-descent (Dong, Charikar & Li 2011, as in
/// pynndescent): start from random neighbours, then repeatedly compare the neighbours of
/// each point's neighbours ("local join") until few lists change. Seeded, single-threaded,
/// deterministic.
public enum NNDescent {
  public struct Options: Sendable, Equatable {
    /// Rounds of local joins; nil for pynndescent's max(5, round(log2 n)).
    public var iterations: Int?
    /// Most new (and old) candidates per point and round (pynndescent: 60).
    public var maxCandidates: Int
    /// Stop when fewer than delta · n · k lists entries change in a round (pynndescent: 0.001).
    public var delta: Double

    public init(iterations: Int? = nil, maxCandidates: Int = 60, delta: Double = 0.001) {
      self.iterations = iterations
      self.maxCandidates = maxCandidates
      self.delta = delta
    }
  }

  /// One bounded max-heap of (distance, index, isNew) per point, stored flat.
  struct Heaps {
    let size: Int
    var distances: [Double]
    var indices: [Int]
    var isNew: [Bool]

    init(points: Int, size: Int) {
      self.size = size
      distances = [Double](repeating: .infinity, count: points * size)
      indices = [Int](repeating: -1, count: points * size)
      isNew = [Bool](repeating: false, count: points * size)
    }

    /// Inserts j into i's heap if closer than its farthest and not already there.
    mutating func push(_ i: Int, _ j: Int, _ d: Double) -> Bool {
      let base = i * size
      guard d < distances[base] else { return false }
      for t in 0..<size where indices[base + t] == j { return false }
      // Replace the root and sift down.
      var pos = 0
      while true {
        let left = 2 * pos + 1, right = left + 1
        var largest = pos
        var largestDistance = d
        if left < size, distances[base + left] > largestDistance { largest = left; largestDistance = distances[base + left] }
        if right < size, distances[base + right] > largestDistance { largest = right }
        if largest == pos { break }
        distances[base + pos] = distances[base + largest]
        indices[base + pos] = indices[base + largest]
        isNew[base + pos] = isNew[base + largest]
        pos = largest
      }
      distances[base + pos] = d
      indices[base + pos] = j
      isNew[base + pos] = true
      return true
    }
  }

  static func knn(_ data: Representation, k: Int, metric: Neighbors.Metric, options: Options, seed: UInt64) throws -> Neighbors.KNN {
    let n = data.rows, d = data.cols, size = k - 1
    let points = metric == .cosine ? Neighbors.normalizedRows(data) : data.values
    var rng = SplitMix64(seed: seed)
    var heaps = Heaps(points: n, size: size)
    let iterations = options.iterations ?? Swift.max(5, Int(log2Rounded(n)))
    let maxCandidates = Swift.max(1, Swift.min(options.maxCandidates, size))
    points.withUnsafeBufferPointer { p in
      func dist(_ a: Int, _ b: Int) -> Double {
        var s = 0.0
        if metric == .euclidean {
          for t in 0..<d {
            let diff = p[a * d + t] - p[b * d + t]
            s += diff * diff
          }
          return s
        }
        for t in 0..<d { s += p[a * d + t] * p[b * d + t] }
        return 1 - s
      }
      for i in 0..<n {
        var added = 0
        while added < size {
          let j = Int(rng.next() % UInt64(n))
          if j != i, heaps.push(i, j, dist(i, j)) { added += 1 }
        }
      }
      var newCandidates = [[Int]](repeating: [], count: n)
      var oldCandidates = [[Int]](repeating: [], count: n)
      for _ in 0..<iterations {
        for i in 0..<n {
          newCandidates[i].removeAll(keepingCapacity: true)
          oldCandidates[i].removeAll(keepingCapacity: true)
        }
        // Forward and reverse candidates, each list capped at maxCandidates by reservoir sampling.
        var newSeen = [Int](repeating: 0, count: n), oldSeen = [Int](repeating: 0, count: n)
        func offer(_ list: inout [[Int]], _ seen: inout [Int], _ owner: Int, _ value: Int) {
          seen[owner] += 1
          if list[owner].count < maxCandidates {
            list[owner].append(value)
          } else {
            let r = Int(rng.next() % UInt64(seen[owner]))
            if r < maxCandidates { list[owner][r] = value }
          }
        }
        for i in 0..<n {
          for t in 0..<size {
            let j = heaps.indices[i * size + t]
            guard j >= 0 else { continue }
            if heaps.isNew[i * size + t] {
              offer(&newCandidates, &newSeen, i, j)
              offer(&newCandidates, &newSeen, j, i)
            } else {
              offer(&oldCandidates, &oldSeen, i, j)
              offer(&oldCandidates, &oldSeen, j, i)
            }
          }
        }
        // Sampled new entries become old.
        for i in 0..<n {
          let sampled = Set(newCandidates[i])
          for t in 0..<size where heaps.isNew[i * size + t] && sampled.contains(heaps.indices[i * size + t]) {
            heaps.isNew[i * size + t] = false
          }
        }
        var updates = 0
        for i in 0..<n {
          let fresh = newCandidates[i], old = oldCandidates[i]
          for a in 0..<fresh.count {
            let u = fresh[a]
            for b in (a + 1)..<Swift.max(a + 1, fresh.count) {
              let v = fresh[b]
              guard u != v else { continue }
              let duv = dist(u, v)
              if heaps.push(u, v, duv) { updates += 1 }
              if heaps.push(v, u, duv) { updates += 1 }
            }
            for v in old where v != u {
              let duv = dist(u, v)
              if heaps.push(u, v, duv) { updates += 1 }
              if heaps.push(v, u, duv) { updates += 1 }
            }
          }
        }
        if Double(updates) <= options.delta * Double(n * size) { break }
      }
    }
    var indices = [Int](repeating: 0, count: n * k)
    var distances = [Double](repeating: 0, count: n * k)
    for i in 0..<n {
      var row = (0..<size).map { (heaps.distances[i * size + $0], heaps.indices[i * size + $0]) }
      row.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
      indices[i * k] = i
      for m in 1..<k {
        indices[i * k + m] = row[m - 1].1
        let raw = row[m - 1].0
        distances[i * k + m] = metric == .euclidean ? raw.squareRoot() : Swift.max(0, Swift.min(2, raw))
      }
    }
    return Neighbors.KNN(n: n, k: k, indices: indices, distances: distances)
  }

  static func log2Rounded(_ n: Int) -> Double { log2(Double(n)).rounded() }
}

/// A small seeded generator (SplitMix64), stable across platforms.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  /// Uniform in [0, 1).
  mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
  /// Standard normal (Box–Muller).
  mutating func nextNormal() -> Double {
    let u1 = Swift.max(nextUnit(), 1e-300), u2 = nextUnit()
    return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
  }
}
