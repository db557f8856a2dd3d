import Torch

/// The largest size one dimension read from a model file may have (sizes, category counts).
let maxModelDimension = 1 << 32

extension StateDict {
  /// The number of values all tensors hold.
  var valueCount: Int { reduce(0) { $0 &+ $1.value.count } }
}

/// Sizes read from a model file (model.json, a pickled config) may describe a network far
/// larger than the weights the file holds: a corrupt or hostile size field must not make a
/// loader allocate without bound, nor trap on an overflow. `sizes` are the file's size fields;
/// `blocks` the weight blocks they imply, each a list of factors (rows, columns, kernel, …), as
/// lower bounds of what the network builds, so a genuine file always fits. They fit when every
/// size is in 0...maxModelDimension (so sums of a few stay far from overflowing) and the blocks'
/// total, computed without overflow, is at most 4 × the values `weights` holds + 65,536.
func impliedWeightsFit(sizes: [Int], blocks: () -> [[Int]], weights: StateDict) -> Bool {
  guard sizes.allSatisfy({ (0...maxModelDimension).contains($0) }) else { return false }
  let limit = weights.valueCount.multipliedReportingOverflow(by: 4).partialValue &+ 65_536
  var total = 0
  for factors in blocks() {
    var product = 1
    for factor in factors {
      let (next, overflow) = product.multipliedReportingOverflow(by: Swift.max(factor, 0))
      guard !overflow else { return false }
      product = next
    }
    let (sum, overflow) = total.addingReportingOverflow(product)
    guard !overflow, sum <= limit else { return false }
    total = sum
  }
  return true
}
