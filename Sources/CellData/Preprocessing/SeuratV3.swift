import Foundation

/// scanpy's seurat_v3 flavor: per batch, regress log10 variance on log10 mean with loess,
/// standardise counts with the fitted deviation, clip at √n, and rank genes by the variance
/// of the clipped values; genes are ranked by median rank over batches, ties broken by the
/// number of batches in which they rank in the top `nTopGenes`.
func seuratV3HVG(_ m: Matrix, nTopGenes: Int, span: Double, batches: [[Int]], varNames: [String]) throws -> HVGResult {
  let nGenes = m.nCols
  let (means, variances) = try m.columnMeanVariance()
  var normVars: [[Double]] = []
  for cells in batches {
    let batch = cells.elementsEqual(0..<m.nRows) ? m : m.rows(cells)  // no copy of a single batch
    let (mean, variance) = try batch.columnMeanVariance()
    let notConst = (0..<nGenes).filter { variance[$0] > 0 }
    var estimate = [Double](repeating: 0, count: nGenes)
    if !notConst.isEmpty {
      let fitted = try Loess1D(
        x: notConst.map { log10(mean[$0]) }, y: notConst.map { log10(variance[$0]) }, span: span
      ).fittedValues()
      for (k, j) in notConst.enumerated() { estimate[j] = fitted[k] }
    }
    let regStd = estimate.map { pow(10, $0).squareRoot() }
    let n = Double(cells.count)
    let clip = (0..<nGenes).map { regStd[$0] * n.squareRoot() + mean[$0] }
    var sums = [Double](repeating: 0, count: nGenes)
    var squares = [Double](repeating: 0, count: nGenes)
    switch batch {
    case .sparse:
      try batch.forEachStored { _, j, v in
        let e = min(v, clip[j])
        sums[j] += e
        squares[j] += e * e
      }
    case .dense:
      try batch.forEachStored { _, j, v in
        let e = v > clip[j] ? clip[j] : v
        sums[j] += e
        squares[j] += e * e
      }
    }
    normVars.append((0..<nGenes).map { j in
      (1 / ((n - 1) * regStd[j] * regStd[j])) * (n * mean[j] * mean[j] + squares[j] - 2 * sums[j] * mean[j])
    })
  }

  // Rank within each batch (0 = most variable); ranks at or beyond nTopGenes become NaN.
  var ranks = [[Double]](repeating: [Double](repeating: .nan, count: nGenes), count: batches.count)
  for (b, norm) in normVars.enumerated() {
    let order = (0..<nGenes).sorted { norm[$0] > norm[$1] || (norm[$0] == norm[$1] && $0 < $1) }
    for (rank, j) in order.enumerated() where rank < nTopGenes { ranks[b][j] = Double(rank) }
  }
  let nBatches = (0..<nGenes).map { j in ranks.filter { !$0[j].isNaN }.count }
  let medianRank = (0..<nGenes).map { j -> Double in
    let values = ranks.map { $0[j] }.filter { !$0.isNaN }
    return values.isEmpty ? .nan : median(values)
  }
  let variancesNorm = (0..<nGenes).map { j in normVars.map { $0[j] }.reduce(0, +) / Double(normVars.count) }

  let order = (0..<nGenes).sorted { a, b in
    let (x, y) = (medianRank[a], medianRank[b])
    if x.isNaN != y.isNaN { return !x.isNaN }
    if !x.isNaN && x != y { return x < y }
    if nBatches[a] != nBatches[b] { return nBatches[a] > nBatches[b] }
    return a < b
  }
  var selected = [Bool](repeating: false, count: nGenes)
  for j in order.prefix(nTopGenes) { selected[j] = true }
  return HVGResult(
    highlyVariable: selected, means: means, variances: variances, variancesNorm: variancesNorm,
    rank: medianRank, nBatches: nBatches)
}
