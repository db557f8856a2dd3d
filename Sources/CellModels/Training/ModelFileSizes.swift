import Torch

/// Sizes read from a model file (model.json, a pickled config) may describe a network far
/// larger than the weights the file holds: a corrupt or hostile size field must not make a
/// loader allocate without bound, nor trap on an overflow. `blocks` are the network's weight
/// blocks as the sizes imply them, each a list of factors (rows, columns, kernel, …). They fit
/// when every factor is in 0...2^32 and the blocks' total, computed without overflow, is at most
/// 4 × the values `weights` holds + 65,536.
func impliedWeightsFit(_ blocks: [[Int]], weights: StateDict) -> Bool {
  let stored = weights.reduce(0) { $0 &+ $1.value.count }
  let limit = stored.multipliedReportingOverflow(by: 4).partialValue &+ 65_536
  var total = 0
  for factors in blocks {
    var product = 1
    for factor in factors {
      guard (0...(1 << 32)).contains(factor) else { return false }
      let (next, overflow) = product.multipliedReportingOverflow(by: factor)
      guard !overflow else { return false }
      product = next
    }
    let (sum, overflow) = total.addingReportingOverflow(product)
    guard !overflow, sum <= limit else { return false }
    total = sum
  }
  return true
}
