import CellData
import Torch

/// Principal component analysis with scanpy's semantics (`sc.pp.pca`), computed with
/// libtorch in float64.
public enum PCA {
  public enum Solver: Sendable, Equatable {
    /// A full thin SVD (LAPACK): exact, like scanpy's "arpack"/"full" up to float error.
    case exact
    /// Halko et al.'s randomized SVD with `oversamples` extra columns and `powerIterations`.
    case randomized(oversamples: Int = 10, powerIterations: Int = 4)
  }

  public struct Result {
    /// Cell coordinates [nObs, nComponents] (scanpy's obsm["X_pca"]).
    public let embedding: [[Double]]
    /// Loadings [nVars, nComponents] (scanpy's varm["PCs"]).
    public let loadings: [[Double]]
    /// Variance explained by each component (ddof 1).
    public let variance: [Double]
    public let varianceRatio: [Double]
  }

  /// PCA of a dense matrix given row-major with `rows` × `cols` values.
  ///
  /// Signs follow scikit-learn's `svd_flip(u_based_decision=False)`: the largest-magnitude
  /// loading of each component is positive. Without `zeroCenter` this is a truncated SVD
  /// of the raw values (scanpy's `zero_center=False`).
  public static func fit(values: [Double], rows: Int, cols: Int, nComponents: Int, zeroCenter: Bool = true,
                         solver: Solver = .exact, seed: UInt64 = 0) throws -> Result {
    guard rows > 1, cols > 0 else { throw CellDataError("PCA needs at least 2 observations and 1 variable") }
    guard nComponents >= 1, nComponents <= Swift.min(rows, cols) else {
      throw CellDataError("PCA: nComponents must be in 1...\(Swift.min(rows, cols)), got \(nComponents)")
    }
    guard values.allSatisfy({ $0.isFinite }) else { throw CellDataError("PCA: the matrix contains NaN or infinite values") }
    return try withTorchErrors {
      try withNoGrad {
        let x = Tensor(values, shape: [rows, cols])
        let centered = zeroCenter ? x - x.mean(dim: 0, keepDim: true) : x
        let (u, s, vh) = try decompose(centered, k: nComponents, solver: solver, seed: seed)
        // svd_flip on Vh rows: make the largest |loading| of each component positive.
        let pivot = vh.abs().argmax(dim: 1, keepDim: true)
        let signs = vh.gather(dim: 1, index: pivot).sign()
        let components = vh * signs
        let embedding = u * s.unsqueeze(dim: 0) * signs.T
        let variance: Tensor, total: Tensor
        if zeroCenter {
          variance = s.square() / Double(rows - 1)
          total = centered.variance([0]).sum()
        } else {
          variance = embedding.variance([0])
          total = x.variance([0]).sum()
        }
        return Result(embedding: rowsOf(embedding), loadings: rowsOf(components.T.contiguous()),
                      variance: variance.toArray(Double.self), varianceRatio: (variance / total).toArray(Double.self))
      }
    }
  }

  /// The first k singular triplets (U [n,k], S [k], Vh [k,d]).
  private static func decompose(_ x: Tensor, k: Int, solver: Solver, seed: UInt64) throws -> (Tensor, Tensor, Tensor) {
    switch solver {
    case .exact:
      let (u, s, vh) = x.svd()
      return (u.narrow(dim: 1, start: 0, length: k), s.narrow(dim: 0, start: 0, length: k),
              vh.narrow(dim: 0, start: 0, length: k))
    case .randomized(let oversamples, let iterations):
      Runtime.seed(seed)
      let width = Swift.min(k + oversamples, Swift.min(x.size(0), x.size(1)))
      var q = x.matmul(Tensor.randn([x.size(1), width], dtype: .float64)).qr().q
      for _ in 0..<iterations {
        q = x.T.matmul(q).qr().q
        q = x.matmul(q).qr().q
      }
      let (ub, s, vh) = q.T.matmul(x).svd()
      return (q.matmul(ub).narrow(dim: 1, start: 0, length: k), s.narrow(dim: 0, start: 0, length: k),
              vh.narrow(dim: 0, start: 0, length: k))
    }
  }

  private static func rowsOf(_ t: Tensor) -> [[Double]] {
    let flat = t.contiguous().toArray(Double.self), width = t.size(1)
    return (0..<t.size(0)).map { Array(flat[($0 * width)..<(($0 + 1) * width)]) }
  }
}

extension AnnData {
  /// `sc.pp.pca`: writes obsm["X_pca"] (float32), varm["PCs"] and uns["pca"] with
  /// variance and variance_ratio. `nComponents` defaults to scanpy's 50, capped at
  /// min(nObs, nVars) − 1.
  public mutating func pca(nComponents: Int? = nil, layer: String? = nil, zeroCenter: Bool = true,
                           solver: PCA.Solver = .exact, seed: UInt64 = 0) throws {
    guard let matrix = layer.map({ layers[$0] }) ?? X else {
      throw CellDataError(layer.map { "PCA: no layer '\($0)'" } ?? "PCA: the AnnData has no X")
    }
    let k = nComponents ?? Swift.min(50, Swift.min(nObs, nVars) - 1)
    let result = try PCA.fit(values: try matrix.denseDoubles(), rows: nObs, cols: nVars, nComponents: k,
                             zeroCenter: zeroCenter, solver: solver, seed: seed)
    obsm["X_pca"] = .dense(try DenseArray(rows: nObs, cols: k, values: result.embedding.flatMap { $0.map(Float.init) }))
    varm["PCs"] = .dense(try DenseArray(rows: nVars, cols: k, values: result.loadings.flatMap { $0 }))
    uns["pca"] = .dict([
      "variance": .array(.float64(result.variance)), "variance_ratio": .array(.float64(result.varianceRatio)),
      "params": .dict(["zero_center": .scalar(.bool([zeroCenter]))]),
    ])
  }
}
