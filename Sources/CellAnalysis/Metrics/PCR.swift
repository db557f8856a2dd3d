import CellData
import Torch

/// Principal component regression (Büttner et al. 2018) as scib-metrics computes it: PCA of
/// the embedding, then for each component the R² of a least-squares fit on the (centred,
/// one-hot) batch, weighted by the component's variance.
public enum PCR {
  /// scib-metrics `principal_component_regression(categorical=True)`. With a centred one-hot
  /// design the least-squares fit of a (centred) component is its per-batch means, so R² is
  /// the between-batch share of the component's sum of squares.
  public static func regression(_ x: Representation, batches: LabelCodes, nComponents: Int? = nil) throws -> Double {
    try batches.requireCount(x.rows, "PCR")
    guard batches.nCategories > 1 else {
      throw CellDataError("PCR is undefined for a single batch: there is no variance to regress against")
    }
    let n = x.rows
    let maxComponents = Swift.min(n, x.cols)
    let k = nComponents ?? maxComponents
    guard k >= 1, k <= maxComponents else { throw CellDataError("PCR: n_components must be in 1...\(maxComponents)") }
    let (scores, variances): ([Double], [Double]) = try withTorchErrors {
      withNoGrad {
        let data = Tensor(x.values, shape: [n, x.cols])
        let centered = data - data.mean(dim: 0, keepDim: true)
        let (u, s, _) = centered.svd()
        let coordinates = (u * s.unsqueeze(dim: 0)).narrow(dim: 1, start: 0, length: k).contiguous()
        let variance = (s.square() / Double(n - 1)).narrow(dim: 0, start: 0, length: k)
        return (coordinates.toArray(Double.self), variance.toArray(Double.self))
      }
    }
    let sizes = batches.sizes.map(Double.init)
    var weighted = 0.0
    for j in 0..<k {
      var groupSums = [Double](repeating: 0, count: batches.nCategories)
      var total = 0.0, mean = 0.0
      for i in 0..<n { mean += scores[i * k + j] }
      mean /= Double(n)
      for i in 0..<n {
        let v = scores[i * k + j] - mean
        groupSums[batches.codes[i]] += v
        total += v * v
      }
      var between = 0.0
      for (g, sum) in groupSums.enumerated() where sizes[g] > 0 { between += sum * sum / sizes[g] }
      let r2 = total > 0 ? Swift.max(0, between / total) : 0
      weighted += r2 * variances[j]
    }
    let totalVariance = variances.reduce(0, +)
    return totalVariance > 0 ? weighted / totalVariance : 0
  }

  /// scib-metrics `pcr_comparison`: (PCR before − PCR after) / PCR before, clipped at 0, or
  /// after − before without `scale`.
  public static func comparison(before: Representation, after: Representation, batches: LabelCodes, scale: Bool = true,
                                nComponents: Int? = nil) throws -> Double {
    guard before.rows == after.rows else {
      throw CellDataError("PCR comparison: the embeddings have \(before.rows) and \(after.rows) rows")
    }
    let pre = try regression(before, batches: batches, nComponents: nComponents)
    let post = try regression(after, batches: batches, nComponents: nComponents)
    guard scale else { return post - pre }
    guard pre > 0 else { throw CellDataError("PCR comparison: the batch explains no variance before integration") }
    return Swift.max(0, (pre - post) / pre)
  }
}
