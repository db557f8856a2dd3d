/// Multi-head attention with torch.nn.MultiheadAttention's packed parameters
/// (`in_proj_weight` [3E, E], `in_proj_bias`, `out_proj`) and mask conventions:
/// a bool `attnMask` / `keyPaddingMask` marks positions that may NOT be attended (true),
/// a float mask is added to the scores.
public final class MultiheadAttention: Module {
  public let embedDim: Int
  public let numHeads: Int
  public let dropout: Double
  /// Inputs are [N, L, E] when true, [L, N, E] (torch's default) when false.
  public let batchFirst: Bool
  public let inProjWeight: Tensor
  public let inProjBias: Tensor?
  public let outProj: Linear

  public init(embedDim: Int, numHeads: Int, dropout: Double = 0, bias: Bool = true, batchFirst: Bool = false) {
    precondition(embedDim % numHeads == 0, "MultiheadAttention: embedDim must be divisible by numHeads")
    self.embedDim = embedDim
    self.numHeads = numHeads
    self.dropout = dropout
    self.batchFirst = batchFirst
    let bound = (6.0 / Double(embedDim + 3 * embedDim)).squareRoot()  // xavier_uniform_
    inProjWeight = Tensor.uniform([3 * embedDim, embedDim], bound: bound)
    inProjBias = bias ? Tensor.zeros([3 * embedDim]) : nil
    outProj = Linear(embedDim, embedDim, bias: bias)
    if let b = outProj.bias { withNoGrad { b.zero_() } }
    super.init()
    registerParameter("in_proj_weight", inProjWeight)
    if let inProjBias { registerParameter("in_proj_bias", inProjBias) }
    registerModule("out_proj", outProj)
  }

  /// Self- or cross-attention; returns the attended values in the input layout.
  public func callAsFunction(_ query: Tensor, _ key: Tensor, _ value: Tensor, keyPaddingMask: Tensor? = nil,
                             attnMask: Tensor? = nil, isCausal: Bool = false) -> Tensor {
    let (q, k, v) = projectedHeads(query, key, value)
    let mask = mergedMask(attnMask: attnMask, keyPaddingMask: keyPaddingMask, like: q)
    let heads = Functional.scaledDotProductAttention(
      q, k, v, mask: mask, dropout: isTraining ? dropout : 0, isCausal: isCausal && mask == nil)
    return output(heads, batch: q.size(0), length: q.size(2))
  }

  /// The attention probabilities [N, L, S], averaged over heads (need_weights=True in torch).
  public func attentionWeights(_ query: Tensor, _ key: Tensor, keyPaddingMask: Tensor? = nil,
                               attnMask: Tensor? = nil) -> Tensor {
    let (q, k, _) = projectedHeads(query, key, key)
    var scores = q.matmul(k.transpose(-2, -1)) / Double(embedDim / numHeads).squareRoot()
    if let mask = mergedMask(attnMask: attnMask, keyPaddingMask: keyPaddingMask, like: q) { scores = scores + mask }
    return scores.softmax(dim: -1).mean(dim: 1)
  }

  /// The scaled dot products q·kᵀ/√(E/H) per head [N, H, L, S], before masks and softmax.
  public func attentionScores(_ query: Tensor, _ key: Tensor) -> Tensor {
    let (q, k, _) = projectedHeads(query, key, key)
    return q.matmul(k.transpose(-2, -1)) / Double(embedDim / numHeads).squareRoot()
  }

  /// q, k, v as [N, H, length, E/H].
  private func projectedHeads(_ query: Tensor, _ key: Tensor, _ value: Tensor) -> (Tensor, Tensor, Tensor) {
    let e = embedDim
    let weights = (0..<3).map { inProjWeight.narrow(dim: 0, start: $0 * e, length: e) }
    let biases = (0..<3).map { i in inProjBias.map { $0.narrow(dim: 0, start: i * e, length: e) } }
    let inputs = [query, key, value].map { batchFirst ? $0 : $0.transpose(0, 1) }
    let heads = (0..<3).map { i -> Tensor in
      let x = Functional.linear(inputs[i], weight: weights[i], bias: biases[i])
      return x.reshape([x.size(0), x.size(1), numHeads, e / numHeads]).transpose(1, 2)
    }
    return (heads[0], heads[1], heads[2])
  }

  /// One additive float mask broadcastable to [N, H, L, S], or nil.
  private func mergedMask(attnMask: Tensor?, keyPaddingMask: Tensor?, like q: Tensor) -> Tensor? {
    func additive(_ m: Tensor) -> Tensor {
      m.dtype == .bool ? Tensor.zeros(m.shape, dtype: q.dtype, device: m.device).maskedFill(m, -.infinity) : m.to(q.dtype)
    }
    var merged: Tensor? = attnMask.map(additive)
    if let kpm = keyPaddingMask {
      let padding = additive(kpm).reshape([kpm.size(0), 1, 1, kpm.size(1)])
      merged = merged.map { $0 + padding } ?? padding
    }
    return merged
  }

  private func output(_ heads: Tensor, batch: Int, length: Int) -> Tensor {
    let merged = heads.transpose(1, 2).reshape([batch, length, embedDim])
    let out = outProj(merged)
    return batchFirst ? out : out.transpose(0, 1)
  }
}
