import CellData
import Foundation
import Torch

/// Query transfer: the reference's `transfer` (new batches in the decoder, fine-tuning on
/// the query) and its training-free alternatives (embed and predict, kNN label vote, UMAP
/// placement by nearest reference cells).
extension ScAtlasVAE {
  public struct TransferOptions {
    /// The query's obs column of batches (default: the model's main batch key).
    public var batchKey: String?
    /// Keep the encoder (and its BatchNorm statistics) fixed, so the reference's latent
    /// space does not move; the reference's `transfer` trains it.
    public var freezeEncoder = true
    /// Reference cells (with the model's batch and label columns) to train on with the query.
    public var referenceData: AnnData?
    /// The fraction of `referenceData`'s cells drawn for fine-tuning (the reference's
    /// `fraction_of_original`); all when nil.
    public var referenceFraction: Double?
    public var training = TrainingOptions(maxEpochs: 20)

    public init(batchKey: String? = nil, freezeEncoder: Bool = true, referenceData: AnnData? = nil,
                referenceFraction: Double? = nil, training: TrainingOptions = TrainingOptions(maxEpochs: 20)) {
      self.batchKey = batchKey
      self.freezeEncoder = freezeEncoder
      self.referenceData = referenceData
      self.referenceFraction = referenceFraction
      self.training = training
    }
  }

  /// A model for `query` grown from `reference` and fine-tuned on the query: every batch
  /// key's new categories get new embedding rows (one-hot: new decoder columns), the
  /// reference's rows, columns and all other weights are copied and the reference's rows are
  /// kept unchanged by fine-tuning. The query needs the model's genes in its order
  /// (`alignGenes`) and every additional batch column. (The reference's `transfer` rebuilds
  /// the decoder, re-initialising its BatchNorm and additional-key embeddings.)
  public static func transfer(reference: ScAtlasVAE, query: AnnData, options: TransferOptions = TransferOptions())
    throws -> ScAtlasVAE
  {
    guard !reference.config.injectLabel else { throw SCVIModelError.setup("transfer of a label-injected decoder is not supported") }
    var query = query
    var setup = reference.setup
    guard let batchKey = setup.batchKey else { throw SCVIModelError.setup("transfer needs a model with a batch key") }
    if let queryKey = options.batchKey, queryKey != batchKey {
      guard let column = query.obs[queryKey] else {
        throw SCVIModelError.setup("the query has no obs column '\(queryKey)' (obs columns: \(query.obs.columnNames.joined(separator: ", ")))")
      }
      try query.obs.set(batchKey, column)
    }
    func grow(_ known: [String], key: String) throws -> [String] {
      let found = try ScAtlasVAESetup.categories(query, key, what: "batch")
      return known + found.filter { !known.contains($0) }
    }
    setup.batchCategories = try grow(setup.batchCategories, key: batchKey)
    setup.additionalBatchCategories = try zip(setup.additionalBatchKeys, setup.additionalBatchCategories).map {
      try grow($1, key: $0)
    }
    var pool = query
    var referenceCount = 0
    if let referenceData = options.referenceData {
      var drawn = referenceData
      if let fraction = options.referenceFraction {
        guard fraction > 0, fraction <= 1 else { throw TrainingError.invalidOptions("reference fraction must be in (0, 1], got \(fraction)") }
        var rng = NumpyRandomState(seed: UInt32(truncatingIfNeeded: options.training.seed))
        let n = Swift.max(1, Int(Double(referenceData.nObs) * fraction))
        drawn = try referenceData.subset(obs: Array(rng.permutation(referenceData.nObs).prefix(n)).sorted())
      }
      referenceCount = drawn.nObs
      pool = try Self.concatenatedCells(drawn, query, setup: setup)
    }
    let config = setup.config(reference.config)
    let cells = try AtlasCells(pool, setup: setup, reconstruction: config.reconstruction)
    let module = try ScAtlasVAENetwork(config: config)
    let (state, keep) = try grownState(reference.module.stateDict(), into: module.stateDict(), old: reference.config, new: config)
    try module.loadStateDict(state)
    let model = ScAtlasVAE(setup: setup, module: module, cells: cells)
    try model.to(reference.device)
    model.kept = module.namedParameters().compactMap { key, parameter in keep[key].map { (parameter, $0, parameter.detach().clone()) } }
    if options.freezeEncoder {
      model.frozenEncoder = true
      for (key, parameter) in module.namedParameters() where key.hasPrefix("encoder.") || key.hasPrefix("z_mean_fc") || key.hasPrefix("z_var_fc") {
        model.frozen.append(ObjectIdentifier(parameter))
      }
    }
    try model.train(options.training, cells: nil)
    // The fine-tuning pool included reference cells: the model's data is the query alone.
    if referenceCount > 0 {
      model.cells = try AtlasCells(query, setup: setup, reconstruction: config.reconstruction)
    }
    return model
  }

  /// Reference and query cells in one AnnData of the model's genes and obs columns.
  private static func concatenatedCells(_ reference: AnnData, _ query: AnnData, setup: ScAtlasVAESetup) throws -> AnnData {
    func part(_ adata: AnnData, _ name: String) throws -> AnnData {
      let counts: Matrix
      if let layer = setup.layer {
        guard let m = adata.layers[layer] else { throw SCVIModelError.setup("no layer '\(layer)'") }
        counts = m
      } else {
        guard let m = adata.X else { throw SCVIModelError.setup("no X") }
        counts = m
      }
      guard adata.varNames == setup.geneNames else { throw SCVIModelError.genesMismatch("reference and query must both have the model's genes in order") }
      var obs = DataFrame(index: adata.obsNames)
      for key in setup.batchKeys + setup.labelKeys {
        if adata.obs[key] != nil {
          try obs.set(key, .categorical(Categorical(try adata.obs.labels(key).map { $0 ?? setup.unlabeled })))
        } else if setup.labelKeys.contains(key) {
          try obs.set(key, .categorical(Categorical(Array(repeating: setup.unlabeled, count: adata.nObs))))
        } else {
          throw SCVIModelError.setup("no obs column '\(key)' in the \(name) data")
        }
      }
      var result = try AnnData(X: setup.layer == nil ? counts : nil, obs: obs, var: DataFrame(index: setup.geneNames))
      if let layer = setup.layer { result.layers[layer] = counts }
      return result
    }
    return try AnnData.concatenate([part(reference, "reference"), part(query, "query")], batchKey: "_transfer_part",
                                   batchCategories: ["reference", "query"], indexUnique: "-")
  }

  /// The reference's tensors in the grown network, and for each tensor partly or wholly
  /// taken from the reference a mask (1 where fine-tuning may change a value).
  static func grownState(_ old: StateDict, into fresh: StateDict, old oldConfig: ScAtlasVAEConfig, new config: ScAtlasVAEConfig)
    throws -> (StateDict, [String: Tensor])
  {
    var state = StateDict()
    var masks: [String: Tensor] = [:]
    let covariates = config.decoderCovariates
    for (key, target) in fresh {
      guard let source = old[key] else { throw SCVIModelError.setup("the reference model has no '\(key)'") }
      if source.shape == target.shape {
        state[key] = source
        continue
      }
      var grown = target.detach().clone()
      let mask = Tensor.ones(target.shape, dtype: target.dtype)
      if key.hasPrefix("decoder.cat_embedding.") {
        let rows = source.size(0)
        withNoGrad {
          grown.narrow(dim: 0, start: 0, length: rows).copy_(source)
          mask.narrow(dim: 0, start: 0, length: rows).zero_()
        }
      } else if key == "px_rate" {
        let columns = source.size(1)
        withNoGrad {
          grown.narrow(dim: 1, start: 0, length: columns).copy_(source)
          mask.narrow(dim: 1, start: 0, length: columns).zero_()
        }
      } else if key == "decoder._fclayer.0.weight" && config.covariateEncoding == .onehot {
        // z columns, then each covariate's one-hot block: old columns copied block by block.
        var oldStart = config.nLatent, newStart = config.nLatent
        var pieces: [(Int, Int, Int)] = [(0, 0, config.nLatent)]
        for covariate in covariates {
          let oldCount = oldConfig.categoryCount(covariate), newCount = config.categoryCount(covariate)
          pieces.append((oldStart, newStart, oldCount))
          oldStart += oldCount
          newStart += newCount
        }
        withNoGrad {
          for (from, to, width) in pieces {
            grown.narrow(dim: 1, start: to, length: width).copy_(source.narrow(dim: 1, start: from, length: width))
            mask.narrow(dim: 1, start: to, length: width).zero_()
          }
        }
      } else {
        throw SCVIModelError.setup("cannot grow '\(key)' from \(source.shape) to \(target.shape)")
      }
      grown = grown.detach()
      state[key] = grown
      masks[key] = mask
    }
    return (state, masks)
  }

  // MARK: - Training-free mapping

  /// Labels by a majority vote of the `k` nearest reference cells in the latent space
  /// (the reference's `transfer_label` with a kNN classifier), with the vote's share as confidence.
  public static func knnVote(reference: Tensor, labels: [String?], query: Tensor, k: Int = 15)
    throws -> (labels: [String], confidence: [Double])
  {
    let neighbours = try nearest(reference: reference, query: query, k: k)
    var predicted: [String] = [], confidence: [Double] = []
    for row in neighbours {
      var votes: [String: Int] = [:]
      for j in row { if let label = labels[j] { votes[label, default: 0] += 1 } }
      let best = votes.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }
      predicted.append(best?.key ?? "")
      confidence.append(Double(best?.value ?? 0) / Double(row.count))
    }
    return (predicted, confidence)
  }

  /// Each query cell at the mean 2-D position of its `k` nearest reference cells in the
  /// latent space (the reference's `umap_alignment` method "knn").
  public static func knnPlacement(reference: Tensor, referenceUMAP: [[Double]], query: Tensor, k: Int = 15)
    throws -> [[Double]]
  {
    guard referenceUMAP.count == reference.size(0) else {
      throw SCVIModelError.setup("\(referenceUMAP.count) UMAP rows for \(reference.size(0)) reference cells")
    }
    return try nearest(reference: reference, query: query, k: k).map { row in
      let width = referenceUMAP[row[0]].count
      return (0..<width).map { d in row.reduce(0.0) { $0 + referenceUMAP[$1][d] } / Double(row.count) }
    }
  }

  /// Exact Euclidean k nearest reference rows of each query row.
  static func nearest(reference: Tensor, query: Tensor, k: Int) throws -> [[Int]] {
    let n = reference.size(0)
    guard n > 0 else { throw SCVIModelError.setup("no reference cells") }
    guard reference.rank == 2, query.rank == 2, reference.size(1) == query.size(1) else {
      throw SCVIModelError.setup("reference \(reference.shape) and query \(query.shape) embeddings differ in width")
    }
    let k = Swift.min(k, n)
    let ref = reference.to(.float64), refNorms = ref.square().sum(dim: 1).unsqueeze(dim: 0)
    var result: [[Int]] = []
    for start in stride(from: 0, to: query.size(0), by: 1024) {
      let q = query.narrow(dim: 0, start: start, length: Swift.min(1024, query.size(0) - start)).to(.float64)
      let distances = q.square().sum(dim: 1, keepDim: true) + refNorms - 2 * q.matmul(ref.transpose(0, 1))
      let indices = distances.topk(k, dim: 1, largest: false).indices.toArray(Int64.self)
      for r in 0..<q.size(0) { result.append(indices[(r * k)..<((r + 1) * k)].map { Int($0) }) }
    }
    return result
  }
}
