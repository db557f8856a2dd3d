import Foundation

/// umap-learn's `optimize_layout_euclidean` (single-threaded, move_other): each directed
/// edge is sampled every `epochs_per_sample` epochs (max weight / weight), pulled together
/// along the gradient of log(1 / (1 + a·d^2b)), and followed by `negative_sample_rate`
/// repulsive samples of uniformly drawn points. Gradients are clipped to ±4 and the
/// learning rate decays linearly. Coordinates are float32 as in umap-learn.
struct LayoutOptimizer {
  var embedding: [Float]
  let dim: Int
  let head: [Int]
  let tail: [Int]
  let epochsPerSample: [Double]
  let nEpochs: Int
  let a: Double
  let b: Double
  let gamma: Double
  let initialAlpha: Double
  let negativeSampleRate: Double
  var states: [(Int64, Int64, Int64)]

  init(embedding: [Float], dim: Int, head: [Int], tail: [Int], weights: [Double], nEpochs: Int, a: Double, b: Double,
       gamma: Double, initialAlpha: Double, negativeSampleRate: Double, seeds: [Int64]) {
    self.embedding = embedding
    self.dim = dim
    self.head = head
    self.tail = tail
    let maxWeight = weights.max() ?? 1
    epochsPerSample = weights.map { w in
      let samples = Double(nEpochs) * (w / maxWeight)
      return samples > 0 ? Double(nEpochs) / samples : -1
    }
    self.nEpochs = nEpochs
    self.a = a
    self.b = b
    self.gamma = gamma
    self.initialAlpha = initialAlpha
    self.negativeSampleRate = negativeSampleRate
    // One generator state per vertex: the shared seeds plus the bits of its first coordinate.
    let n = embedding.count / dim
    states = (0..<n).map { i in
      let bits = Int64(bitPattern: Double(embedding[i * dim]).bitPattern)
      return (seeds[0] &+ bits, seeds[1] &+ bits, seeds[2] &+ bits)
    }
  }

  /// umap-learn's Tausworthe generator (`tau_rand_int`).
  @inline(__always)
  static func tauRandInt(_ s: inout (Int64, Int64, Int64)) -> Int64 {
    let mask: Int64 = 0xFFFF_FFFF
    s.0 = (((s.0 & 4_294_967_294) << 12) & mask) ^ ((((s.0 << 13) & mask) ^ s.0) >> 19)
    s.1 = (((s.1 & 4_294_967_288) << 4) & mask) ^ ((((s.1 << 2) & mask) ^ s.1) >> 25)
    s.2 = (((s.2 & 4_294_967_280) << 17) & mask) ^ ((((s.2 << 3) & mask) ^ s.2) >> 11)
    return s.0 ^ s.1 ^ s.2
  }

  @inline(__always)
  static func clip(_ v: Double) -> Double { v > 4 ? 4 : (v < -4 ? -4 : v) }

  mutating func run() {
    let edges = head.count
    let n = Int64(embedding.count / dim)
    let (a, b, nEpochs, initialAlpha, dim) = (self.a, self.b, self.nEpochs, self.initialAlpha, self.dim)
    let twoAB = 2 * a * b, twoGammaB = 2 * gamma * b
    // Powers of the float32 squared distance in float32 (powf is ~3× faster than pow and
    // the coordinates are float32 anyway).
    let bFloat = Float(b), bMinusOne = Float(b - 1)
    let head = self.head, tail = self.tail, perSample = epochsPerSample
    let perNegative = epochsPerSample.map { $0 / negativeSampleRate }
    // Raw buffers for the hot loop (no copy-on-write or exclusivity checks).
    let e = Self.buffer(embedding), nextSample = Self.buffer(perSample), nextNegative = Self.buffer(perNegative)
    let states = Self.buffer(self.states)
    defer {
      e.deallocate()
      nextSample.deallocate()
      nextNegative.deallocate()
      states.deallocate()
    }
    var alpha = initialAlpha
    for epoch in 0..<nEpochs {
      let now = Double(epoch)
      for i in 0..<edges where nextSample[i] <= now {
        let j = head[i], k = tail[i]
        let cj = j * dim, ck = k * dim
        var d2: Float = 0
        for d in 0..<dim {
          let diff = e[cj + d] - e[ck + d]
          d2 += diff * diff
        }
        let dist2 = Double(d2)
        var coefficient = 0.0
        if dist2 > 0 {
          let power = Double(powf(d2, bMinusOne))
          coefficient = -twoAB * power / (a * power * dist2 + 1)
        }
        for d in 0..<dim {
          let g = Self.clip(coefficient * Double(e[cj + d] - e[ck + d]))
          e[cj + d] += Float(g * alpha)
          e[ck + d] += Float(-g * alpha)
        }
        nextSample[i] += perSample[i]
        let negatives = Int((now - nextNegative[i]) / perNegative[i])
        guard negatives > 0 else { continue }
        for _ in 0..<negatives {
          let raw = Self.tauRandInt(&states[j]) % n
          let ck = Int(raw < 0 ? raw + n : raw) * dim
          var d2: Float = 0
          for d in 0..<dim {
            let diff = e[cj + d] - e[ck + d]
            d2 += diff * diff
          }
          let dist2 = Double(d2)
          guard dist2 > 0 else { continue }
          let repulsion = twoGammaB / ((0.001 + dist2) * (a * Double(powf(d2, bFloat)) + 1))
          guard repulsion > 0 else { continue }
          for d in 0..<dim {
            e[cj + d] += Float(Self.clip(repulsion * Double(e[cj + d] - e[ck + d])) * alpha)
          }
        }
        nextNegative[i] += Double(negatives) * perNegative[i]
      }
      alpha = initialAlpha * (1 - Double(epoch) / Double(nEpochs))
    }
    embedding = Array(e)
    self.states = Array(states)
  }

  private static func buffer<T>(_ values: [T]) -> UnsafeMutableBufferPointer<T> {
    let b = UnsafeMutableBufferPointer<T>.allocate(capacity: values.count)
    _ = b.initialize(from: values)
    return b
  }
}
