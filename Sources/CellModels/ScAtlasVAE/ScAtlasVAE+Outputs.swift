import CellData
import Foundation
import Torch

/// Predicted labels of one label key.
public struct AtlasLabelPrediction: Sendable {
  public let key: String
  public let categories: [String]
  /// Softmax of the head, row-major [cells, categories].
  public let probabilities: [Float]
  /// The most probable category of each cell.
  public let labels: [String]
  /// Its probability.
  public let confidence: [Float]
}

extension ScAtlasVAE {
  /// Cells of `adata` registered for embedding and prediction: the model's genes in its
  /// order (see `alignGenes`), batches not needed (the encoder is batch-invariant).
  func embeddingCells(_ adata: AnnData?) throws -> AtlasCells {
    guard let adata else { return cells }
    return try AtlasCells(adata, setup: setup, reconstruction: config.reconstruction, requireBatches: false,
                          allowEmptyCells: !config.encodeLibsize)
  }

  func mapBatches(_ data: AtlasCells, batchSize: Int = 256, _ body: (AtlasInput) throws -> Tensor) throws -> Tensor {
    module.eval()
    return try withNoGrad {
      var parts: [Tensor] = []
      try data.forEachMinibatch(Array(0..<data.count), batchSize: batchSize, shuffle: false) { batch in
        parts.append(try body(batch.to(device)).to(.cpu))
      }
      guard !parts.isEmpty else { throw SCVIModelError.setup("no cells") }
      return Tensor.cat(parts, dim: 0)
    }
  }

  /// The latent representation [cells, nLatent]: q_mu (default), or one draw of q(z|x).
  /// Cells come out in the AnnData's order.
  public func latent(_ adata: AnnData? = nil, sample: Bool = false) throws -> Tensor {
    try mapBatches(try embeddingCells(adata)) { module.encode($0.x, sample: sample).z }
  }

  /// The latent of `other`'s registered cells under this model's encoder (a query-mapped
  /// model's view of the reference it was mapped from; streamed cells stream).
  public func latent(cellsOf other: ScAtlasVAE) throws -> Tensor {
    guard other.setup.geneNames == setup.geneNames else {
      throw SCVIModelError.genesMismatch("the two models have different genes")
    }
    return try mapBatches(other.cells) { module.encode($0.x, sample: false).z }
  }

  /// Label probabilities and argmax names per label key, from q_mu (deterministic; the
  /// reference predicts from a sampled z), in the AnnData's cell order (the reference
  /// returns a query's predictions in its internal shuffled order).
  public func predictLabels(_ adata: AnnData? = nil) throws -> [AtlasLabelPrediction] {
    try predictLabels(fromLatent: try latent(adata))
  }

  /// The label predictions of cells whose latent (q_mu, from `latent`) is `z`.
  public func predictLabels(fromLatent z: Tensor) throws -> [AtlasLabelPrediction] {
    guard !setup.labelKeys.isEmpty else { throw SCVIModelError.setup("the model has no label key") }
    return withNoGrad {
      let logits = module.labelLogits(z.to(device))
      return zip(zip(setup.labelKeys, setup.labelCategories), logits).map { keyed, logits in
        let probabilities = logits.softmax(dim: 1).to(.cpu)
        let best = probabilities.max(dim: 1).toArray(Float.self)
        let index = probabilities.argmax(dim: 1).toArray(Int64.self)
        return AtlasLabelPrediction(key: keyed.0, categories: keyed.1, probabilities: probabilities.toArray(Float.self),
                                    labels: index.map { keyed.1[Int($0)] }, confidence: best)
      }
    }
  }

  /// Decoded expression [cells, genes] from q_mu: the normalised scale (rows sum to 1), or
  /// with `library` the likelihood's mean for each cell's own library size. Needs the
  /// cells' batches (the decoder is batch-aware), so `adata` must carry the batch keys.
  public func reconstructedExpression(_ adata: AnnData? = nil, library: Bool = false) throws -> Tensor {
    let data = try adata.map {
      try AtlasCells($0, setup: setup, reconstruction: config.reconstruction, allowEmptyCells: true)
    } ?? cells
    return try mapBatches(data) { input in
      let z = module.encode(input.x, sample: false).z
      let decoded = try module.decode(z, library: input.x.sum(dim: 1), input: input)
      return library ? decoded.mean : decoded.scale
    }
  }

  /// `query` with exactly the model's genes in the model's order: shared genes reordered,
  /// missing ones zero-filled. Returns the aligned data and how many genes were missing;
  /// sharing no gene is an error.
  public func alignGenes(_ query: AnnData) throws -> (adata: AnnData, missing: Int) {
    try AnnData.aligned(query, toGenes: setup.geneNames, layer: setup.layer)
  }
}
