import CellAnalysis
import CellData
import Foundation
import Torch

/// Gene programs and gene networks from an scGPT model, as the reference's GRN tutorials
/// (Tutorial_GRN: gene embeddings → kNN graph → Leiden at resolution 40 → programs of ≥ 5
/// genes; Tutorial_Attention_GRN: rank-normalised attention of the last layer).
public struct ScGPTGeneEmbedding {
  public var genes: [String]
  /// [genes, d]: the gene encoder's output (Embedding then LayerNorm) in eval mode.
  public var vectors: Tensor

  /// The embeddings of the `genes` the folder's vocabulary has (the others are left out:
  /// `unknown` lists them). None known is an error.
  public init(folder: ScGPTModelFolder, genes: [String]) throws {
    let match = try folder.vocab.match(genes)
    let known = genes.indices.filter { match.known[$0] }
    guard !known.isEmpty else {
      throw ScGPTError.invalidInput("none of the \(genes.count) genes is in the model's vocabulary (e.g. \(genes.prefix(3).joined(separator: ", ")))")
    }
    self.genes = known.map { genes[$0] }
    unknown = genes.indices.filter { !match.known[$0] }.map { genes[$0] }
    let network = folder.network
    network.eval()
    let device = network.parameters.first?.device ?? .cpu
    vectors = try withNoGrad {
      try withTorchErrors { network.encoder(Tensor(known.map { Int64(match.ids[$0]) }).to(device)).to(.cpu) }
    }
  }

  /// Genes given but absent from the vocabulary.
  public private(set) var unknown: [String] = []

  /// Programs: a kNN graph of the genes (scanpy's `neighbors` on the embeddings: 15 neighbours,
  /// euclidean, UMAP connectivities), Leiden at `resolution`, clusters with at least `minSize`
  /// genes, largest first (genes in their given order).
  public func programs(resolution: Double = 40, nNeighbors: Int = 15, minSize: Int = 5, seed: UInt64 = 0) throws -> [[String]] {
    guard genes.count > nNeighbors else {
      throw ScGPTError.invalidInput("\(genes.count) genes are too few for a \(nNeighbors)-neighbour graph")
    }
    var gdata = try AnnData(X: nil, obs: DataFrame(index: genes), var: DataFrame(index: []))
    let matrix = vectors.to(.float32).contiguous()
    gdata.obsm["X_gene"] = .dense(try DenseArray(shape: matrix.shape, data: .float32(matrix.toArray(Float.self))))
    try gdata.neighbors(nNeighbors: nNeighbors, useRep: "X_gene", seed: seed)
    let clusters = try gdata.leiden(resolution: resolution, seed: seed)
    var members: [Int: [String]] = [:]
    for (gene, cluster) in zip(genes, clusters) { members[cluster, default: []].append(gene) }
    return members.values.filter { $0.count >= minSize }.sorted { ($0.count, $1.first ?? "") > ($1.count, $0.first ?? "") }
  }

  /// Pairs of genes whose embeddings' cosine similarity is at least `threshold` (each pair once,
  /// most similar first).
  public func similarityNetwork(threshold: Double) -> [(String, String, Double)] {
    let unit = l2Normalized(vectors.to(.float32))
    let similarity = unit.matmul(unit.T).toArray(Float.self)
    let n = genes.count
    var edges: [(String, String, Double)] = []
    for i in 0..<n {
      for j in (i + 1)..<n where Double(similarity[i * n + j]) >= threshold {
        edges.append((genes[i], genes[j], Double(similarity[i * n + j])))
      }
    }
    return edges.sorted { $0.2 > $1.2 }
  }
}

extension ScGPTGeneEmbedding {
  /// Per-cell activity of each program: the mean log1p(normalised) expression of its genes minus
  /// the cell's mean over all `genes` (a simple stand-in for scanpy's `score_genes`, which the
  /// reference uses). [cells × programs], from a cells × genes matrix whose columns are `genes`.
  public static func programActivity(_ logNormalized: [Double], nGenes: Int, genes: [String], programs: [[String]]) -> [[Double]] {
    let column = Dictionary(genes.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    let indices = programs.map { $0.compactMap { column[$0] } }
    return stride(from: 0, to: logNormalized.count, by: nGenes).map { start in
      let row = logNormalized[start..<(start + nGenes)]
      let mean = row.reduce(0, +) / Double(nGenes)
      return indices.map { members in
        members.isEmpty ? .nan : members.reduce(0) { $0 + row[start + $1] } / Double(members.count) - mean
      }
    }
  }
}

extension ScGPTNetwork {
  /// The reference's attention network (Tutorial_Attention_GRN) over cells whose tokens all list
  /// the same genes in the same order (`includeZeroGenes`, `<cls>` first): the last layer's
  /// attention scores per head, rank-normalised along each row and then each column, averaged
  /// over heads, summed over cells, divided by the number of cells; `<cls>` row and column
  /// dropped. [genes, genes]; entry (i, j) is how much gene i attends to gene j.
  public func attentionNetwork(_ tokens: ScGPTCellTokens, batches: [Int]? = nil, batchSize: Int = 16) throws -> Tensor {
    guard let length = tokens.ids.first?.count, tokens.ids.allSatisfy({ $0 == tokens.ids[0] }) else {
      throw ScGPTError.invalidInput("the attention network needs every cell's tokens over the same genes (include zero genes)")
    }
    guard let last = transformerEncoder.layers.modules.last else { throw ScGPTError.invalidInput("the model has no transformer layer") }
    if config.needsBatchLabels && batches?.count != tokens.count {
      throw ScGPTError.invalidInput("this model takes batch labels: give one batch index per cell")
    }
    eval()
    let device = parameters.first?.device ?? .cpu
    let groups = config.batchNormalization == .domainSpecific ? batches : nil
    var total = Tensor.zeros([length, length])
    try withNoGrad {
      for rows in ScGPTSampling.inOrder(Array(0..<tokens.count), groups: groups, batchSize: batchSize) {
        let labels = config.needsBatchLabels ? rows.map { batches![$0] } : nil
        let batch = try ScGPTBatch(tokens.padded(rows), batchLabels: labels).to(device)
        try withTorchErrors {
          var x = try transform(inputEmbeddings(batch).total, batch, throughLayers: transformerEncoder.layers.count - 1)
          if last.normFirst { x = last.norm1(x) }
          let scores = last.selfAttention.attentionScores(x, x)  // [B, H, L, L]
          let rowRanks = rankNormalized(scores)
          let colRanks = rankNormalized(rowRanks.transpose(-2, -1)).transpose(-2, -1)
          total = total + colRanks.mean(dim: 1).sum(dim: 0).to(.cpu)
        }
      }
    }
    return (total / Double(tokens.count)).narrow(dim: 0, start: 1, length: length - 1).narrow(dim: 1, start: 1, length: length - 1)
  }
}

/// Ranks along the last dimension (0 for the smallest) divided by its length.
private func rankNormalized(_ x: Tensor) -> Tensor {
  let n = x.size(-1)
  return x.sort(dim: -1).indices.sort(dim: -1).indices.to(.float32) / Double(n)
}
