import Foundation

/// One-dimensional local quadratic regression (loess) as computed by the netlib `dloess`
/// code that scikit-misc wraps (and that scanpy's seurat_v3 flavor calls with span 0.3,
/// degree 2): tricube weights over the ⌊n·span⌋ nearest points, a fit at the vertices of a
/// k-d tree whose cells hold at most ⌊n·span·cell⌋ points (cell = 0.2), and cubic Hermite
/// interpolation of the vertex values and slopes ("interpolate" surface).
struct Loess1D {
  let x: [Double]
  let y: [Double]
  let span: Double
  var cell = 0.2

  private struct Node {
    var low: Double
    var high: Double
    var split: Double?
    var lo = -1
    var hi = -1
  }

  /// Fitted values at the data points.
  func fittedValues() throws -> [Double] {
    let n = x.count
    guard n == y.count, n > 0 else { throw CellDataError("loess: x and y must be non-empty and of equal length") }
    guard span > 0 else { throw CellDataError("loess: span must be positive") }
    let nf = min(n, Int((Double(n) * span).rounded(.down)))
    guard nf >= 3 else { throw CellDataError("loess: span \(span) leaves \(nf) points per fit; need at least 3") }
    let fc = Int((Double(n) * span * cell).rounded(.down))

    // Bounding box, widened by 0.5 % of the range.
    let alpha = x.min()!, beta = x.max()!
    let margin = 0.005 * max(beta - alpha, 1e-10 * max(abs(alpha), abs(beta)) + 1e-30)
    let sorted = x.sorted()
    var nodes = [Node(low: alpha - margin, high: beta + margin)]
    var ranges = [(0, n - 1)]
    var p = 0
    while p < nodes.count {
      let (l, u) = ranges[p]
      var leaf = (u - l + 1) <= fc || nodes[p].high - nodes[p].low <= 0
      var m = 0
      if !leaf {
        // Median split in 1-based positions, moved to the nearest place between distinct values.
        m = (l + 1 + u + 1) / 2 - 1
        var offset = 0
        while m + offset < u && m + offset >= l {
          if sorted[m + offset] == sorted[m + offset + 1] {
            offset = -offset
            if offset >= 0 { offset += 1 }
          } else {
            m += offset
            break
          }
        }
        leaf = nodes[p].low == sorted[m] || nodes[p].high == sorted[m]
      }
      if !leaf {
        let split = sorted[m]
        nodes[p].split = split
        nodes[p].lo = nodes.count
        nodes.append(Node(low: nodes[p].low, high: split))
        ranges.append((l, m))
        nodes[p].hi = nodes.count
        nodes.append(Node(low: split, high: nodes[p].high))
        ranges.append((m + 1, u))
      }
      p += 1
    }

    // Value and slope of the local fit at every vertex.
    var vertexFit: [Double: (Double, Double)] = [:]
    for node in nodes {
      for v in [node.low, node.high] where vertexFit[v] == nil {
        vertexFit[v] = try localFit(at: v, nf: nf)
      }
    }

    return x.map { z in
      var j = 0
      while let split = nodes[j].split { j = z <= split ? nodes[j].lo : nodes[j].hi }
      let (a, b) = (nodes[j].low, nodes[j].high)
      let (g0, d0) = vertexFit[a]!, (g1, d1) = vertexFit[b]!
      let h = (z - a) / (b - a)
      let phi0 = (1 - h) * (1 - h) * (1 + 2 * h)
      let phi1 = h * h * (3 - 2 * h)
      let psi0 = h * (1 - h) * (1 - h)
      let psi1 = h * h * (h - 1)
      return phi0 * g0 + phi1 * g1 + (psi0 * d0 + psi1 * d1) * (b - a)
    }
  }

  /// Weighted quadratic fit around q: returns (value, slope) at q.
  private func localFit(at q: Double, nf: Int) throws -> (Double, Double) {
    let distances = x.map { ($0 - q) * ($0 - q) }
    let rho = distances.sorted()[nf - 1] * max(1, span)
    guard rho > 0 else { throw CellDataError("loess: all neighbours of \(q) coincide; the fit is undefined") }
    // Normal equations of the weighted least squares in the basis 1, (x - q), (x - q)².
    var a = [[Double]](repeating: [0, 0, 0], count: 3)
    var b = [0.0, 0.0, 0.0]
    for i in x.indices where distances[i] < rho {
      let r = (distances[i] / rho).squareRoot()
      let t = 1 - r * r * r
      let w = t * t * t
      let dx = x[i] - q
      let phi = [1, dx, dx * dx]
      for j in 0..<3 {
        b[j] += w * phi[j] * y[i]
        for k in 0..<3 { a[j][k] += w * phi[j] * phi[k] }
      }
    }
    let coefficients = try solve3(a, b)
    return (coefficients[0], coefficients[1])
  }
}

/// Solves a 3×3 linear system by Gaussian elimination with partial pivoting, after scaling
/// the columns to unit diagonal (as the Fortran code equilibrates its design matrix).
func solve3(_ matrix: [[Double]], _ rhs: [Double]) throws -> [Double] {
  let scale = (0..<3).map { matrix[$0][$0] > 0 ? 1 / matrix[$0][$0].squareRoot() : 1 }
  var a = (0..<3).map { i in (0..<3).map { j in matrix[i][j] * scale[i] * scale[j] } }
  var b = (0..<3).map { rhs[$0] * scale[$0] }
  for col in 0..<3 {
    let pivot = (col..<3).max { abs(a[$0][col]) < abs(a[$1][col]) }!
    guard abs(a[pivot][col]) > 1e-13 else { throw CellDataError("loess: singular local fit") }
    a.swapAt(col, pivot)
    b.swapAt(col, pivot)
    for row in (col + 1)..<3 {
      let factor = a[row][col] / a[col][col]
      for k in col..<3 { a[row][k] -= factor * a[col][k] }
      b[row] -= factor * b[col]
    }
  }
  var out = [0.0, 0.0, 0.0]
  for row in stride(from: 2, through: 0, by: -1) {
    var s = b[row]
    for k in (row + 1)..<3 { s -= a[row][k] * out[k] }
    out[row] = s / a[row][row]
  }
  return (0..<3).map { out[$0] * scale[$0] }
}
