import Torch

/// Reference mapping as the reference's tutorial (Tutorial_Reference_Mapping): query cells
/// labelled by a majority vote of their k nearest reference cells in the embedding space.
public enum ScGPTReferenceMapping {
  public struct Transfer {
    /// The winning label per query cell (ties: the label of the nearest voter among the tied).
    public var labels: [String]
    /// Share of the k votes the winner got.
    public var confidence: [Double]
    /// Reference rows of the k nearest neighbours per query cell, nearest first.
    public var neighbours: [[Int]]
  }

  /// Exact k-nearest-neighbour vote by cosine similarity (the embeddings need not be
  /// normalised), computed in blocks of query cells so memory stays at block × reference.
  public static func transfer(reference: Tensor, labels: [String], query: Tensor, k: Int = 10, blockSize: Int = 1024) throws -> Transfer {
    guard reference.shape.count == 2, query.shape.count == 2, reference.size(1) == query.size(1) else {
      throw ScGPTError.invalidInput("reference \(reference.shape) and query \(query.shape) embeddings must be matrices of the same width")
    }
    guard labels.count == reference.size(0) else {
      throw ScGPTError.invalidInput("\(labels.count) labels for \(reference.size(0)) reference cells")
    }
    guard k >= 1, reference.size(0) >= 1 else { throw ScGPTError.invalidInput("k must be at least 1 and the reference not empty") }
    let k = min(k, reference.size(0))
    let r = l2Normalized(reference.to(.float32), eps: 1e-12)
    let q = l2Normalized(query.to(.float32), eps: 1e-12)
    var out = Transfer(labels: [], confidence: [], neighbours: [])
    for start in stride(from: 0, to: q.size(0), by: blockSize) {
      let block = q.narrow(dim: 0, start: start, length: min(blockSize, q.size(0) - start))
      let nearest = block.matmul(r.T).topk(k, dim: 1).indices.toArray(Int64.self)
      for row in 0..<block.size(0) {
        let neighbours = nearest[(row * k)..<((row + 1) * k)].map(Int.init)
        var votes: [String: Int] = [:]
        for n in neighbours { votes[labels[n], default: 0] += 1 }
        let top = votes.values.max()!
        let winner = neighbours.map { labels[$0] }.first { votes[$0] == top }!
        out.labels.append(winner)
        out.confidence.append(Double(top) / Double(k))
        out.neighbours.append(neighbours)
      }
    }
    return out
  }
}
