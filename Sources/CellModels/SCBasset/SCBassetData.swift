import CellData
import Foundation
import Genomics
import Torch

/// What to do when X holds values other than 0 and 1.
public enum NonBinaryHandling: String, Sendable, Codable {
  /// Throw an error naming the first offending value (default: scBasset models open/closed).
  case refuse
  /// Treat every positive value as 1, with a warning (scvi-tools trains on the values as given,
  /// which is only meaningful for 0/1).
  case binarize
}

/// scvi-tools' `setup_anndata` arguments for SCBASSET.
public struct SCBassetSetup: Sendable, Codable, Equatable {
  /// Key of the region × position DNA codes: obsm of the regions × cells AnnData
  /// (= varm of cells × peaks).
  public var dnaCodeKey = "dna_code"
  /// A layer instead of X.
  public var layer: String?
  /// Column of the cells (var of regions × cells, obs of cells × peaks) naming each cell's batch.
  public var batchKey: String?
  public var nonBinary: NonBinaryHandling = .refuse

  public init(dnaCodeKey: String = "dna_code", layer: String? = nil, batchKey: String? = nil,
              nonBinary: NonBinaryHandling = .refuse) {
    self.dnaCodeKey = dnaCodeKey
    self.layer = layer
    self.batchKey = batchKey
    self.nonBinary = nonBinary
  }
}

/// The tensors SCBASSET trains on: region DNA codes and the binary regions × cells matrix.
struct SCBassetData {
  /// uint8 [regions, L], codes 0…4.
  let codes: Tensor
  /// regions × cells, 0/1.
  let accessibility: CountMatrix
  let batchCodes: [Int]?
  let batchCategories: [String]

  var regionCount: Int { accessibility.nRows }
  var cellCount: Int { accessibility.nCols }
  var sequenceLength: Int { codes.size(1) }

  init(_ adata: AnnData, setup: SCBassetSetup, warn: WarningHandler = printWarningToStandardError) throws {
    guard let element = adata.obsm[setup.dnaCodeKey] else {
      throw SCBassetError.invalidInput(
        "no obsm['\(setup.dnaCodeKey)'] on the regions × cells AnnData (obsm: \(adata.obsm.keys.sorted().joined(separator: ", "))); add it with SCBASSET.addDNASequence on the cells × peaks AnnData, then transpose")
    }
    guard case .dense(let array) = element, array.shape.count == 2, array.shape[0] == adata.nObs,
      let values = array.data.integers
    else {
      throw SCBassetError.invalidInput("obsm['\(setup.dnaCodeKey)'] must be an integer matrix of \(adata.nObs) regions × sequence length")
    }
    if let bad = values.first(where: { $0 < 0 || $0 > 4 }) {
      throw SCBassetError.invalidInput("obsm['\(setup.dnaCodeKey)'] holds \(bad); DNA codes are 0…3 (ACGT) or 4 (N)")
    }
    codes = Tensor(values.map { UInt8($0) }, shape: array.shape)

    var matrix: Matrix
    if let layer = setup.layer {
      guard let m = adata.layers[layer] else { throw SCBassetError.invalidInput("no layer '\(layer)'") }
      matrix = m
    } else {
      guard let m = adata.X else { throw SCBassetError.invalidInput("the AnnData has no X") }
      matrix = m
    }
    matrix = try Self.binaryChecked(matrix, handling: setup.nonBinary, warn: warn)
    accessibility = try CountMatrix(matrix)

    if let key = setup.batchKey {
      let labels = try adata.var.labels(key)
      if let missing = labels.firstIndex(where: { $0 == nil }) {
        throw SCBassetError.invalidInput("batch key '\(key)' is missing for cell \(adata.varNames[missing])")
      }
      let categories = Array(Set(labels.map { $0! })).sorted()
      let lookup = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
      batchCodes = labels.map { lookup[$0!]! }
      batchCategories = categories
    } else {
      batchCodes = nil
      batchCategories = []
    }
  }

  /// The matrix with stored values checked to be 0/1 (or made so).
  static func binaryChecked(_ matrix: Matrix, handling: NonBinaryHandling, warn: WarningHandler) throws -> Matrix {
    guard let values = matrix.data.doubles else { throw SCBassetError.invalidInput("X holds \(matrix.data.dtypeName), not numbers") }
    if let nan = values.firstIndex(where: { !$0.isFinite }) {
      throw SCBassetError.invalidInput("X holds a non-finite value (\(values[nan]))")
    }
    if let negative = values.first(where: { $0 < 0 }) {
      throw SCBassetError.invalidInput("X holds a negative value (\(negative)); scBasset needs 0/1 accessibility")
    }
    let nonBinary = values.filter { $0 != 0 && $0 != 1 }
    guard let first = nonBinary.first else { return matrix }
    switch handling {
    case .refuse:
      throw SCBassetError.invalidInput(
        "X is not binary (\(nonBinary.count) values other than 0 and 1, e.g. \(first)); binarize it first or ask for binarizing (--binarize)")
    case .binarize:
      warn("X is not binary (\(nonBinary.count) values other than 0 and 1); every positive value is taken as 1")
      let binary = ArrayData.float32(values.map { $0 > 0 ? 1 : 0 })
      switch matrix {
      case .dense(var dense):
        dense.data = binary
        return .dense(dense)
      case .sparse(var sparse):
        sparse.data = binary
        return .sparse(sparse)
      }
    }
  }

  /// int64 codes [B, L] and float targets [B, cells] of some regions, on `device`.
  func batch(_ regions: [Int], device: Device) -> (codes: Tensor, target: Tensor) {
    let index = Tensor(regions.map(Int64.init))
    let c = codes.indexSelect(dim: 0, index: index).to(.int64)
    let t = accessibility.rows(regions)
    return device == .cpu ? (c, t) : (c.to(device), t.to(device))
  }
}

extension SCBASSET {
  /// scvi-tools' `add_dna_sequence`: reads each peak's window from `fasta` and stores the codes as
  /// varm[`key`] (uint8 [peaks, seqLen], N replaced by a random base, seeded) of a cells × peaks
  /// AnnData. Peaks come from var columns `chr`/`start`/`end` when present, else from var names
  /// (`chr1:100-200`, `chr1-100-200`, `chr1_100_200`). Peaks outside the FASTA are errors.
  public static func addDNASequence(
    to adata: inout AnnData, fasta: FastaFile, seqLen: Int = 1344, key: String = "dna_code",
    chrKey: String = "chr", startKey: String = "start", endKey: String = "end", seed: UInt64 = 0
  ) throws {
    let peaks: [Peak]
    if adata.var[chrKey] != nil, adata.var[startKey] != nil, adata.var[endKey] != nil {
      peaks = try PeakCoordinates.peaks(
        chroms: try adata.var.labels(chrKey).map { $0 ?? "" },
        starts: try adata.var.doubles(startKey).map { Int($0) }, ends: try adata.var.doubles(endKey).map { Int($0) })
    } else {
      peaks = try PeakCoordinates.peaks(names: adata.varNames)
    }
    let windows = try DNAWindows.extract(peaks: peaks, fasta: fasta, seqLen: seqLen, centering: .scviTools,
                                         unknown: .randomBase, seed: seed)
    adata.varm[key] = .dense(try DenseArray(shape: [peaks.count, seqLen], data: .uint8(windows.codes)))
  }
}
