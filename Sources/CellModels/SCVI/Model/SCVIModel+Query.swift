import CellData
import Foundation
import Torch

/// Reference mapping, scArches style (scvi-tools' `load_query_data` with its defaults):
/// the query's new batches are appended to the reference's, the network grows by their
/// covariate columns, and training the query model updates only what scvi-tools updates.
extension SCVIModel {
  /// A model for `query` built from `reference`: same genes (in the same order), the
  /// reference's batches plus the query's new ones. With scvi-tools' defaults
  /// (freeze_expression, freeze_decoder_first_layer, freeze_batchnorm_encoder, dropout kept),
  /// training it changes only: the covariate (batch one-hot) columns of each hidden layer's
  /// weights, the decoder's batch-norm scale and shift, and the whole library encoder.
  /// The z encoder's batch-norm running statistics stay fixed (momentum 0; the library
  /// encoder, trained fully, keeps updating its own, as in scvi-tools).
  ///
  /// One deliberate difference: parameters whose gradient is masked entirely are left out
  /// of the optimizer, so Adam's weight decay does not drift them as it does in scvi-tools.
  public static func loadQueryData(_ query: AnnData, reference: SCVIModel) throws -> SCVIModel {
    var setup = reference.setup
    try setup.checkGenes(query)
    if let batchKey = setup.batchKey {
      let queryBatches = try SCVISetup.categories(query, batchKey)
      setup.batchCategories += queryBatches.filter { !setup.batchCategories.contains($0) }
    } else if setup.batchCategories.count > 1 {
      throw SCVIModelError.setup("the reference has batches but no batch key")
    }
    var config = reference.config
    config.nBatch = setup.batchCategories.count
    let cells = try RegisteredCells(query, setup: setup, config: config)
    var prior: (means: [Float], vars: [Float])?
    if !config.useObservedLibSize {
      prior = try VAE.libraryLogPrior(librarySizes: cells.counts.rowSums(), batchIndices: cells.batchCodes, nBatch: config.nBatch)
    }
    let module = try VAE(config: config, libraryLogMeans: prior?.means, libraryLogVars: prior?.vars)
    try module.loadStateDict(try grownState(reference.module.stateDict(), into: module.stateDict()))

    let model = SCVIModel(kind: reference.kind, setup: setup, module: module, cells: cells)
    model.gradientMasks = onlineUpdateMasks(module, config: config)
    freezeEncoderBatchNormStatistics(module)
    try model.to(reference.device)
    return model
  }

  /// The reference's tensors, each widened along its last dimension with the new model's
  /// initial values where the batch count grew (scvi-tools' padding rule).
  private static func grownState(_ reference: StateDict, into fresh: StateDict) throws -> StateDict {
    var grown = StateDict()
    for (key, target) in fresh {
      guard let old = reference[key] else { throw SCVIModelError.setup("the reference has no '\(key)'") }
      if old.shape == target.shape {
        grown[key] = old
        continue
      }
      let extra = target.size(-1) - old.size(-1)
      guard old.rank == target.rank, extra > 0, Array(old.shape.dropLast()) == Array(target.shape.dropLast()) else {
        throw SCVIModelError.setup("cannot grow '\(key)' from \(old.shape) to \(target.shape)")
      }
      grown[key] = Tensor.cat([old.to(target.device), target.narrow(dim: -1, start: target.size(-1) - extra, length: extra)], dim: -1)
    }
    return grown
  }

  /// 1 where training may change a value, 0 where it may not, for every parameter.
  private static func onlineUpdateMasks(_ module: VAE, config: VAEConfig) -> [(Tensor, Tensor)] {
    let batchColumns = config.nBatch > 1 ? config.nBatch : 0
    return module.namedParameters().map { key, parameter in
      let moduleName = String(key.prefix { $0 != "." })
      let mask = Tensor.zeros(parameter.shape, dtype: parameter.dtype, device: parameter.device)
      if moduleName == "l_encoder" {
        return (parameter, mask + 1)
      }
      let isLinear = key.contains("fc_layers") && key.contains(".0.")
      let isDecoderNorm = key.contains("fc_layers") && key.contains(".1.") && moduleName == "decoder"
      if isDecoderNorm { return (parameter, mask + 1) }
      if isLinear && key.hasSuffix(".weight") {
        let covariates = moduleName == "decoder" || config.encodeCovariates ? batchColumns : 0
        if covariates > 0 {
          let columns = parameter.size(1)
          withNoGrad { mask.narrow(dim: 1, start: columns - covariates, length: covariates).fill_(1) }
        }
      }
      return (parameter, mask)
    }
  }

  private static func freezeEncoderBatchNormStatistics(_ module: Module, path: String = "") {
    for (name, child) in module.children {
      let childPath = path.isEmpty ? name : "\(path).\(name)"
      if let norm = child as? BatchNorm1d, childPath.hasPrefix("z_encoder") {
        norm.momentum = 0
      }
      freezeEncoderBatchNormStatistics(child, path: childPath)
    }
  }
}
