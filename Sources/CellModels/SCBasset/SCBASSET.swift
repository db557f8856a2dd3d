import CellData
import Foundation
import Genomics
import Torch

/// scBasset (Yuan & Kelley 2022) as scvi-tools' `SCBASSET`: a sequence CNN predicting each
/// region's accessibility in every cell, whose final layer is a learned cell embedding.
///
/// Set up on a **regions × cells** AnnData (a cells × peaks AnnData transposed) with binary X and
/// the regions' DNA codes in obsm[`dna_code`] (see `addDNASequence`). The network defaults to
/// calico's architecture for 4-channel input (multimolecule's layout: Keras pooling,
/// length-major flatten), sized by the data's sequence length.
public final class SCBASSET {
  public let network: SCBassetNetwork
  public var config: SCBassetConfig { network.config }
  public let setup: SCBassetSetup
  public let cellNames: [String]
  public let regionNames: [String]
  public let batchCategories: [String]
  public internal(set) var history = TrainingHistory()
  public internal(set) var split: DataSplit?
  public internal(set) var device: Device = .cpu
  /// After data-parallel training: the largest difference between a rank's weights and rank
  /// 0's (0 when the replicas stayed in sync).
  public internal(set) var replicaDifference: Double?
  /// The data set up on; nil for a model loaded without data.
  var data: SCBassetData?

  /// - Parameters:
  ///   - adata: regions × cells.
  ///   - config: the network; nil gives calico's with `nBottleneckLayer` and `l2RegCellEmbedding`.
  ///     Its `numLabels`, `sequenceLength` and `nBatch` must fit the data (they are filled in when nil).
  public init(adata: AnnData, setup: SCBassetSetup = SCBassetSetup(), config: SCBassetConfig? = nil,
              nBottleneckLayer: Int = 32, l2RegCellEmbedding: Double = 0,
              warn: WarningHandler = printWarningToStandardError) throws {
    let data = try SCBassetData(adata, setup: setup, warn: warn)
    var c: SCBassetConfig
    if let config {
      c = config
      guard c.numLabels == data.cellCount else {
        throw SCBassetError.invalidConfig("the network has \(c.numLabels) cells, the data \(data.cellCount)")
      }
      guard c.sequenceLength == data.sequenceLength else {
        throw SCBassetError.invalidConfig("the network takes \(c.sequenceLength) bp, obsm['\(setup.dnaCodeKey)'] holds \(data.sequenceLength)")
      }
      guard c.nBatch == data.batchCategories.count else {
        throw SCBassetError.invalidConfig("the network has \(c.nBatch) batches, the data \(data.batchCategories.count)")
      }
    } else {
      c = SCBassetConfig(numLabels: data.cellCount)
      c.vocabSize = 4
      c.sequenceLength = data.sequenceLength
      c.bottleneckSize = nBottleneckLayer
      c.l2RegCellEmbedding = l2RegCellEmbedding
      c.nBatch = data.batchCategories.count
    }
    network = try SCBassetNetwork(c, batchIDs: data.batchCodes)
    self.setup = setup
    self.data = data
    cellNames = adata.varNames
    regionNames = adata.obsNames
    batchCategories = data.batchCategories
  }

  /// A model around a network without data (e.g. from `SCBassetCheckpoint.load`), for prediction.
  public init(network: SCBassetNetwork, setup: SCBassetSetup = SCBassetSetup(), cellNames: [String],
              regionNames: [String] = [], batchCategories: [String] = []) {
    self.network = network
    self.setup = setup
    self.cellNames = cellNames
    self.regionNames = regionNames
    self.batchCategories = batchCategories
  }

  /// Moves the network to `device`; predictions and training then run there.
  public func to(_ device: Device) {
    network.to(device)
    self.device = device
  }

  func requireData(_ what: String) throws -> SCBassetData {
    guard let data else {
      throw SCBassetError.invalidInput("\(what) needs the data: load the model with the regions × cells AnnData")
    }
    return data
  }

  // MARK: - Getters

  /// The cells' embeddings, cells × bottleneck (scvi-tools' `get_latent_representation`:
  /// the cell embedding without the batch embedding).
  public func latentRepresentation() -> [[Float]] {
    let e = network.cellEmbedding.detach().to(.cpu)
    let values = e.toArray(Float.self)
    let width = e.size(1)
    return (0..<e.size(0)).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
  }

  /// Each cell's bias (its library-size term), scvi-tools' `get_cell_bias`.
  public func cellBias() -> [Float] { network.cellBias.detach().to(.cpu).toArray(Float.self) }

  /// Logits [N, cells] for int64 codes [N, L], in eval mode, `batchSize` regions at a time.
  func predictLogits(codes: Tensor, batchSize: Int = 256) -> Tensor {
    let wasTraining = network.isTraining
    network.eval()
    defer { network.train(wasTraining) }
    return withNoGrad {
      var parts: [Tensor] = []
      var start = 0
      while start < codes.size(0) {
        let n = min(batchSize, codes.size(0) - start)
        parts.append(network(codes: codes.narrow(dim: 0, start: start, length: n).to(device)).to(.cpu))
        start += n
      }
      return parts.isEmpty ? Tensor.zeros([0, config.numLabels]) : Tensor.cat(parts, dim: 0)
    }
  }

  /// Accessibility logits [sequences, cells] of DNA sequences of the model's length.
  public func predict(sequences: [String], batchSize: Int = 256) throws -> Tensor {
    try predictLogits(codes: SCBassetInput.codes(of: sequences, length: config.sequenceLength), batchSize: batchSize)
  }

  /// Predicted probabilities (sigmoid of the logits), regions × cells, for some regions and cells
  /// (all when nil) of the data set up on.
  public func accessibility(cells: [Int]? = nil, regions: [Int]? = nil, batchSize: Int = 256) throws -> [[Float]] {
    let data = try requireData("accessibility")
    let regionList = regions ?? Array(0..<data.regionCount)
    if let bad = regionList.first(where: { !(0..<data.regionCount).contains($0) }) {
      throw SCBassetError.invalidInput("region \(bad) is outside the \(data.regionCount) regions")
    }
    if let bad = cells?.first(where: { !(0..<data.cellCount).contains($0) }) {
      throw SCBassetError.invalidInput("cell \(bad) is outside the \(data.cellCount) cells")
    }
    let codes = data.codes.indexSelect(dim: 0, index: Tensor(regionList.map(Int64.init))).to(.int64)
    var probabilities = predictLogits(codes: codes, batchSize: batchSize).sigmoid()
    if let cells { probabilities = probabilities.indexSelect(dim: 1, index: Tensor(cells.map(Int64.init))) }
    let width = probabilities.size(1)
    let values = probabilities.contiguous().toArray(Float.self)
    return (0..<regionList.count).map { Array(values[($0 * width)..<(($0 + 1) * width)]) }
  }

  /// AUROC of the predictions on some regions (default: the validation regions of the last
  /// training): `perCell` as calico (one AUROC per cell over the regions; `meanPerCell` averages
  /// the cells that have both open and closed regions) and `flat` as scvi-tools (all
  /// region-cell pairs at once).
  public func auroc(regions: [Int]? = nil) throws -> (meanPerCell: Double, flat: Double, perCell: [Double]) {
    let data = try requireData("auroc")
    guard let list = regions ?? split?.validation, !list.isEmpty else {
      throw SCBassetError.invalidInput("no regions to evaluate: train first (validation split) or pass regions")
    }
    let (codes, target) = data.batch(list, device: .cpu)
    let logits = predictLogits(codes: codes)
    let perCell = SCBassetMetrics.perColumnAUROC(scores: logits, labels: target)
    let defined = perCell.filter { !$0.isNaN }
    let mean = defined.isEmpty ? .nan : defined.reduce(0, +) / Double(defined.count)
    return (mean, SCBassetMetrics.auroc(scores: logits, labels: target), perCell)
  }
}
