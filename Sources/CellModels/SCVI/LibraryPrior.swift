import Foundation

extension VAE {
  /// The per-batch mean and (population) variance of log library sizes, the prior of a
  /// latent library, as scvi-tools' `_init_library_size`: an empty cell counts as log 0 = 0,
  /// a batch without cells gets mean 0 and variance 1.
  public static func libraryLogPrior(librarySizes: [Double], batchIndices: [Int], nBatch: Int) throws
    -> (means: [Float], vars: [Float])
  {
    guard librarySizes.count == batchIndices.count else {
      throw VAEError.invalidInput("\(librarySizes.count) library sizes but \(batchIndices.count) batch indices")
    }
    let count = Swift.max(nBatch, 1)
    var logs = [[Double]](repeating: [], count: count)
    for (size, batch) in zip(librarySizes, batchIndices) {
      guard batch >= 0 && batch < count else {
        throw VAEError.invalidInput("batch index \(batch) is outside 0..<\(count)")
      }
      logs[batch].append(size > 0 ? Foundation.log(size) : 0)
    }
    var means = [Float](repeating: 0, count: count), vars = [Float](repeating: 1, count: count)
    for (batch, values) in logs.enumerated() where !values.isEmpty {
      let mean = values.reduce(0, +) / Double(values.count)
      means[batch] = Float(mean)
      vars[batch] = Float(values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count))
    }
    return (means, vars)
  }
}
