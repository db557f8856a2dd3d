import Torch

extension VAE {
  /// Checks counts and indices before libtorch sees them; returns the batch indices
  /// ([N, 1] int64, zeros when none were given).
  func validate(_ input: VAEInput) throws -> Tensor {
    let x = input.x
    guard x.rank == 2 else { throw VAEError.invalidInput("x must be a cells × genes matrix, got shape \(x.shape)") }
    guard x.size(1) == config.nInput else {
      throw VAEError.invalidInput("x has \(x.size(1)) genes, the model was built for \(config.nInput)")
    }
    guard x.dtype.isFloatingPoint else { throw VAEError.invalidInput("x must be floating point, got \(x.dtype)") }
    guard x.size(0) > 0 else { throw VAEError.invalidInput("x has no cells") }
    if x.isfinite().logicalNot().any().item() != 0 {
      throw VAEError.invalidInput("x contains NaN or infinite values")
    }
    if x.lt(0).any().item() != 0 { throw VAEError.invalidInput("x contains negative counts") }
    if config.useObservedLibSize {
      let empty = x.sum(dim: 1).le(0)
      if empty.any().item() != 0 {
        let first = Int(empty.to(.int64).argmax().item())
        throw VAEError.invalidInput(
          "cell \(first) has no counts: its observed library size log(0) is undefined (filter empty cells first)")
      }
    }
    return try checkedIndices(input.batchIndex, name: "batchIndex", count: Swift.max(config.nBatch, 1), cells: x.size(0),
                              device: x.device)
  }

  /// `index` as [N, 1] int64 with values in [0, count); zeros when nil and not `required`.
  func checkedIndices(_ index: Tensor?, name: String, count: Int, cells: Int, required: Bool = false,
                      device: Device = .cpu) throws -> Tensor {
    guard let index else {
      if required { throw VAEError.invalidInput("\(name) are needed by this model (dispersion \(config.dispersion.rawValue))") }
      return Tensor.zeros([cells, 1], dtype: .int64, device: device)
    }
    guard index.dtype == .int64 || index.dtype == .int32 else {
      throw VAEError.invalidInput("\(name) must be integer indices, got \(index.dtype)")
    }
    let shaped = index.rank == 1 ? index.unsqueeze(dim: 1) : index
    guard shaped.rank == 2, shaped.size(1) == 1, shaped.size(0) == cells else {
      throw VAEError.invalidInput("\(name) must have shape [\(cells)] or [\(cells), 1], got \(index.shape)")
    }
    let low = shaped.min().item(), high = shaped.max().item()
    guard low >= 0, high < Double(count) else {
      throw VAEError.invalidInput("\(name) must lie in 0..<\(count), got values in \(Int(low))...\(Int(high))")
    }
    return shaped.to(.int64)
  }
}
