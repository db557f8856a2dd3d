import Torch

/// Gene tokens → LayerNorm(Embedding) (`encoder`: `embedding`, `enc_norm`). Also the batch-label
/// encoder (`batch_encoder`), which has the same layout without a padding index.
public final class ScGPTTokenEncoder: Module, UnaryLayer {
  public let embedding: Embedding
  public let norm: LayerNorm

  public init(_ count: Int, _ dModel: Int, paddingIndex: Int? = nil) {
    embedding = Embedding(count, dModel, paddingIndex: paddingIndex)
    norm = LayerNorm(dModel)
    super.init()
    registerModule("embedding", embedding)
    registerModule("enc_norm", norm)
  }

  public func callAsFunction(_ ids: Tensor) -> Tensor { norm(embedding(ids)) }
}

/// Values → Linear(1, d) → ReLU → Linear(d, d) → LayerNorm → Dropout, the input clamped at
/// `maxValue` from above only (so −1 masks and −2 pads pass as they are).
public final class ContinuousValueEncoder: Module, UnaryLayer {
  public let linear1: Linear
  public let linear2: Linear
  public let norm: LayerNorm
  public let dropout: Dropout
  public let maxValue: Double

  public init(_ dModel: Int, dropout: Double, maxValue: Double = 512) {
    linear1 = Linear(1, dModel)
    linear2 = Linear(dModel, dModel)
    norm = LayerNorm(dModel)
    self.dropout = Dropout(dropout)
    self.maxValue = maxValue
    super.init()
    registerModule("dropout", self.dropout)
    registerModule("linear1", linear1)
    registerModule("linear2", linear2)
    registerModule("norm", norm)
  }

  /// [B, L] → [B, L, d].
  public func callAsFunction(_ values: Tensor) -> Tensor {
    let x = values.unsqueeze(dim: -1).clamp(max: maxValue)
    return dropout(norm(linear2(linear1(x).relu())))
  }
}

/// Integer values (bins) → LayerNorm(Embedding) (`embedding`, `enc_norm`); a negative padding
/// index counts from the end, as torch's (`ScGPTConfig.validate` refuses one outside the table).
public final class CategoryValueEncoder: Module, UnaryLayer {
  public let embedding: Embedding
  public let norm: LayerNorm

  public init(_ nBins: Int, _ dModel: Int, paddingIndex: Int?) {
    let index = paddingIndex.map { $0 < 0 ? $0 + nBins : $0 }
    embedding = Embedding(nBins, dModel, paddingIndex: index.flatMap { (0..<nBins).contains($0) ? $0 : nil })
    norm = LayerNorm(dModel)
    super.init()
    registerModule("embedding", embedding)
    registerModule("enc_norm", norm)
  }

  public func callAsFunction(_ values: Tensor) -> Tensor { norm(embedding(values.to(.int64))) }
}

/// One affine-free BatchNorm1d per batch label (`bns.{i}`, eps 6.1e-5, momentum 0.1).
public final class DomainSpecificBatchNorm1d: Module {
  public let bns: ModuleList<BatchNorm1d>

  public init(_ numFeatures: Int, numDomains: Int, eps: Double = 6.1e-5, momentum: Double = 0.1, affine: Bool = false) {
    bns = ModuleList((0..<numDomains).map { _ in BatchNorm1d(numFeatures, eps: eps, momentum: momentum, affine: affine) })
    super.init()
    registerModule("bns", bns)
  }

  /// x [N, C, L] normalised by domain `domain`'s BatchNorm.
  public func callAsFunction(_ x: Tensor, domain: Int) throws -> Tensor {
    guard (0..<bns.count).contains(domain) else {
      throw ScGPTError.invalidInput("batch label \(domain) is outside the \(bns.count) domains of the DSBN layer")
    }
    return bns[domain](x)
  }
}
