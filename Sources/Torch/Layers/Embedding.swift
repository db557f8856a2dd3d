/// A lookup table [numEmbeddings, dim], initialised N(0, 1) with the padding row zeroed.
public final class Embedding: Module {
  public let weight: Tensor
  public let paddingIndex: Int?

  public init(_ numEmbeddings: Int, _ embeddingDim: Int, paddingIndex: Int? = nil) {
    self.paddingIndex = paddingIndex
    weight = Tensor.randn([numEmbeddings, embeddingDim])
    if let paddingIndex { weight[paddingIndex].zero_() }
    super.init()
    registerParameter("weight", weight)
  }

  /// int64 indices of any shape → embeddings with one more trailing dimension.
  public func callAsFunction(_ indices: Tensor) -> Tensor {
    Functional.embedding(indices, weight: weight, paddingIndex: paddingIndex)
  }
}
