import CellData
import Foundation
import Torch

/// Outputs on the setup data (adata nil) or on new cells with the same genes and known
/// batches. All run the network in eval mode without gradients, in minibatches.
extension SCVIModel {
  /// The registered cells of `adata`, or of the setup data.
  func registered(_ adata: AnnData?) throws -> RegisteredCells {
    guard let adata else {
      if let streamed {
        throw SCVIModelError.setup("the model's cells stream from \(streamed.source.sourceDescription); pass the cells as an AnnData for this output")
      }
      if let setupCellsUnavailable { throw SCVIModelError.setup(setupCellsUnavailable) }
      return cells
    }
    return try RegisteredCells(adata, setup: setup, config: config)
  }

  /// Runs `body` on each minibatch of the selected cells and concatenates its outputs by row.
  func mapBatches(_ adata: AnnData?, indices: [Int]?, batchSize: Int = 128, _ body: (Minibatch) throws -> Tensor)
    throws -> Tensor
  {
    let loader: MinibatchSource = adata == nil && streamed != nil
      ? try setupMinibatches(indices, batchSize: batchSize, shuffle: false)
      : try registered(adata).loader(indices, batchSize: batchSize)
    module.eval()
    return try withNoGrad {
      // Thousands of small tensors (a million cells) fragment the heap: join every 256.
      var chunks: [Tensor] = [], parts: [Tensor] = []
      try loader.forEachBatch { batch in
        parts.append(try body(batch.to(device)).to(.cpu))
        if parts.count == 256 {
          chunks.append(Tensor.cat(parts, dim: 0))
          parts = []
        }
      }
      if !parts.isEmpty { chunks.append(Tensor.cat(parts, dim: 0)) }
      parts = chunks
      guard !parts.isEmpty else { throw SCVIModelError.setup("no cells selected") }
      return Tensor.cat(parts, dim: 0)
    }
  }

  /// One posterior draw for a minibatch: q(z|x) (and l), then p(x|z, l), optionally decoded
  /// as if from batch `transformBatch`.
  private func posteriorDraw(_ batch: Minibatch, transformBatch: Int? = nil) throws
    -> (inference: VAEInferenceOutput, generative: VAEGenerativeOutput)
  {
    let inferred = try module.inference(batch.vaeInput, checkInput: false)
    let generated = try module.generative(
      z: inferred.z, library: inferred.library, batchIndex: batch.batchIndex, labels: batch.labels,
      transformBatch: transformBatch, checkInput: false)
    return (inferred, generated)
  }

  /// The latent representation [cells, nLatent]: the posterior mean (for the logistic normal,
  /// the mean of softmax over `mcSamples` draws, as scvi-tools), or one draw.
  public func latentRepresentation(_ adata: AnnData? = nil, indices: [Int]? = nil, giveMean: Bool = true,
                                   mcSamples: Int = 5000, batchSize: Int = 128) throws -> Tensor {
    try mapBatches(adata, indices: indices, batchSize: batchSize) { batch in
      let inferred = try module.inference(batch.vaeInput, sampling: giveMean ? .mean : .sample, checkInput: false)
      guard giveMean, config.latentDistribution == .logisticNormal else { return inferred.z }
      let shape = [mcSamples] + inferred.qzMean.shape
      let draws = Normal(loc: inferred.qzMean.unsqueeze(dim: 0).expand(shape),
                         scale: inferred.qzVariance.sqrt().unsqueeze(dim: 0).expand(shape)).sample()
      return draws.softmax(dim: -1).mean(dim: 0)
    }
  }

  /// Decoded expression [cells, genes]: the normalized scale (rows sum to 1) times
  /// `libraryScale` when given (scvi-tools' `library_size`), averaged over `nSamples`
  /// posterior draws and over `transformBatches` (decode every cell as if from those batches;
  /// empty: each cell's own batch).
  public func normalizedExpression(_ adata: AnnData? = nil, indices: [Int]? = nil, libraryScale: Double? = nil,
                                   transformBatches: [String] = [], nSamples: Int = 1, batchSize: Int = 128) throws -> Tensor {
    guard nSamples >= 1 else { throw SCVIModelError.setup("nSamples must be at least 1") }
    let batchCodes: [Int?] = try transformBatches.isEmpty ? [nil] : transformBatches.map { name in
      guard let code = setup.batchCategories.firstIndex(of: name) else {
        throw SCVIModelError.setup("transform batch '\(name)' is not one of the model's batches \(setup.batchCategories)")
      }
      return code
    }
    return try mapBatches(adata, indices: indices, batchSize: batchSize) { batch in
      var total: Tensor?
      for code in batchCodes {
        for _ in 0..<nSamples {
          let scale = try posteriorDraw(batch, transformBatch: code).generative.pxScale
          total = total.map { $0 + scale } ?? scale
        }
      }
      let mean = total! / Double(batchCodes.count * nSamples)
      return libraryScale.map { mean * $0 } ?? mean
    }
  }

  /// Per-cell loss terms [cells, 3]: reconstruction, KL(z), KL(l), with one posterior draw
  /// each, as scvi-tools' evaluation.
  func lossTerms(_ adata: AnnData?, indices: [Int]?, batchSize: Int) throws -> Tensor {
    try mapBatches(adata, indices: indices, batchSize: batchSize) { batch in
      let loss = try module.forward(batch.vaeInput, checkInput: false).loss
      return Tensor.stack([loss.reconstructionLoss, loss.klZ, loss.klL], dim: 1)
    }
  }

  /// scvi-tools' `get_elbo`: minus the mean over cells of reconstruction + KL (higher is better).
  public func elbo(_ adata: AnnData? = nil, indices: [Int]? = nil, batchSize: Int = 128) throws -> Double {
    -(try lossTerms(adata, indices: indices, batchSize: batchSize).sum(dim: 1).mean().item())
  }

  /// scvi-tools' `get_reconstruction_error`: the mean over cells of −log p(x | z, l).
  public func reconstructionError(_ adata: AnnData? = nil, indices: [Int]? = nil, batchSize: Int = 128) throws -> Double {
    try lossTerms(adata, indices: indices, batchSize: batchSize).select(dim: 1, index: 0).mean().item()
  }

  /// scvi-tools' `get_marginal_ll`: the importance-sampled log p(x), averaged over cells, with
  /// `nMCSamples` draws from the posterior per cell (higher is better).
  public func marginalLogLikelihood(_ adata: AnnData? = nil, indices: [Int]? = nil, nMCSamples: Int = 1000,
                                    batchSize: Int = 128) throws -> Double {
    guard nMCSamples >= 1 else { throw SCVIModelError.setup("nMCSamples must be at least 1") }
    let perCell = try mapBatches(adata, indices: indices, batchSize: batchSize) { batch in
      var logWeights: [Tensor] = []
      for _ in 0..<nMCSamples {
        let (inferred, generated) = try posteriorDraw(batch)
        let qz = Normal(loc: inferred.qzMean, scale: inferred.qzVariance.sqrt())
        let mean = inferred.qzMean
        let standard = Normal(loc: Tensor.zeros(mean.shape, dtype: mean.dtype, device: mean.device),
                              scale: Tensor.ones(mean.shape, dtype: mean.dtype, device: mean.device))
        var logWeight = generated.logProb(batch.x).sum(dim: -1) + standard.logProb(inferred.z).sum(dim: -1)
          - qz.logProb(inferred.z).sum(dim: -1)
        if let qlMean = inferred.qlMean, let qlVariance = inferred.qlVariance,
          let plMean = generated.plMean, let plVariance = generated.plVariance
        {
          logWeight = logWeight + Normal(loc: plMean, scale: plVariance.sqrt()).logProb(inferred.library).sum(dim: -1)
            - Normal(loc: qlMean, scale: qlVariance.sqrt()).logProb(inferred.library).sum(dim: -1)
        }
        logWeights.append(logWeight)
      }
      return Tensor.stack(logWeights, dim: 0).logsumexp(dim: 0) - Foundation.log(Double(nMCSamples))
    }
    return perCell.mean().item()
  }

  /// Counts drawn from the posterior predictive p(x | z, l), [cells, genes] for one sample or
  /// [cells, genes, nSamples].
  public func posteriorPredictiveSample(_ adata: AnnData? = nil, indices: [Int]? = nil, nSamples: Int = 1,
                                        batchSize: Int = 128) throws -> Tensor {
    guard nSamples >= 1 else { throw SCVIModelError.setup("nSamples must be at least 1") }
    let samples = try mapBatches(adata, indices: indices, batchSize: batchSize) { batch in
      var draws: [Tensor] = []
      for _ in 0..<nSamples {
        draws.append(try posteriorDraw(batch).generative.sample())
      }
      return Tensor.stack(draws, dim: 2)
    }
    return nSamples == 1 ? samples.squeeze(dim: 2) : samples
  }

  /// LDVAE's loadings, genes × latent factors (the linear decoder's weights with its batch
  /// norm folded in, batch columns dropped), as scvi-tools' `get_loadings`.
  public func loadings() throws -> Tensor { try module.loadings() }
}

extension VAEGenerativeOutput {
  /// One draw of counts from p(x | z, l).
  public func sample() -> Tensor {
    let theta = pxR.expand(pxRate.shape)
    switch likelihood {
    case .poisson: return Poisson(rate: pxRate).sample()
    case .nb: return NegativeBinomial(mu: pxRate, theta: theta).sample()
    case .zinb: return ZeroInflatedNegativeBinomial(mu: pxRate, theta: theta, ziLogits: pxDropout).sample()
    }
  }
}
