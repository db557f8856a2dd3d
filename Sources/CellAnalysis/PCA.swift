import CellData
import Torch

/// Principal component analysis with scanpy's semantics (`sc.pp.pca`), computed with
/// libtorch in float64.
public enum PCA {
  public enum Solver: Sendable, Equatable {
    /// Exact: `covarianceEigh` when there are no more variables than observations; otherwise the
    /// eigendecomposition of the observations' n × n Gram matrix of the dense, centred values.
    case exact
    /// The eigendecomposition of the variables' d × d covariance (scanpy's "covariance_eigh"),
    /// accumulated in float64 from blocks of rows: no dense copy of the matrix, memory d² plus a
    /// block. Exact up to float error.
    case covarianceEigh
    /// A full thin SVD (LAPACK) of the dense matrix.
    case fullSVD
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
  public static func fit(values: [Double], rows: Int, cols: Int, nComponents: Int, zeroCenter: Bool = true,
                         solver: Solver = .exact, seed: UInt64 = 0) throws -> Result {
    guard values.count == rows * cols else { throw CellDataError("PCA: \(values.count) values for \(rows) × \(cols)") }
    return try fit(.dense(try DenseArray(rows: rows, cols: cols, values: values)), nComponents: nComponents,
                   zeroCenter: zeroCenter, solver: solver, seed: seed)
  }

  /// PCA of a matrix (cells × variables).
  ///
  /// Signs follow scikit-learn's `svd_flip(u_based_decision=False)`: the largest-magnitude
  /// loading of each component is positive. Without `zeroCenter` this is a truncated SVD
  /// of the raw values (scanpy's `zero_center=False`).
  public static func fit(_ matrix: Matrix, nComponents: Int, zeroCenter: Bool = true, solver: Solver = .exact,
                         seed: UInt64 = 0) throws -> Result {
    let rows = matrix.nRows, cols = matrix.nCols
    guard rows > 1, cols > 0 else { throw CellDataError("PCA needs at least 2 observations and 1 variable") }
    guard nComponents >= 1, nComponents <= Swift.min(rows, cols) else {
      throw CellDataError("PCA: nComponents must be in 1...\(Swift.min(rows, cols)), got \(nComponents)")
    }
    guard matrix.data.firstNumber(where: { !$0.isFinite }) == nil else {
      throw CellDataError("PCA: the matrix contains NaN or infinite values")
    }
    let useCovariance = solver == .covarianceEigh || (solver == .exact && cols <= rows)
    return try withTorchErrors {
      try withNoGrad {
        useCovariance
          ? try covarianceFit(matrix, k: nComponents, zeroCenter: zeroCenter)
          : try denseFit(Tensor(try matrix.denseDoubles(), shape: [rows, cols]), k: nComponents, zeroCenter: zeroCenter,
                         solver: solver, seed: seed)
      }
    }
  }

  private static func denseFit(_ x: Tensor, k: Int, zeroCenter: Bool, solver: Solver, seed: UInt64) throws -> Result {
    let rows = x.size(0)
    let centered = zeroCenter ? x - x.mean(dim: 0, keepDim: true) : x
    let (u, s, vh) = try decompose(centered, k: k, solver: solver, seed: seed)
    let signs = flipSigns(vh)
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

  /// The top k eigenvectors of XᵀX − n·μμᵀ (or XᵀX without centring), X read in row blocks.
  private static func covarianceFit(_ matrix: Matrix, k: Int, zeroCenter: Bool) throws -> Result {
    let n = matrix.nRows, d = matrix.nCols
    var byRows = matrix  // CSR once: row blocks of a CSC matrix would each scan all of it
    if case .sparse(let s) = matrix, s.format == .csc { byRows = .sparse(s.switchedFormat()) }
    let mean = Tensor(try byRows.columnSums().map { $0 / Double(n) }, shape: [1, d])
    var gram = Tensor.zeros([d, d], dtype: .float64), squares = Tensor.zeros([d], dtype: .float64)
    try forEachRowBlock(byRows) { block in
      gram = gram + block.T.matmul(block)
      squares = squares + block.square().sum(dim: 0)
    }
    let scatter = zeroCenter ? gram - mean.T.matmul(mean) * Double(n) : gram
    let (values, vectors) = scatter.eigh()  // ascending
    let top = Tensor((0..<k).map { Int64(d - 1 - $0) }, shape: [k])
    let eigenvalues = values.indexSelect(dim: 0, index: top).clamp(min: 0)
    let vh = vectors.indexSelect(dim: 1, index: top).T.contiguous()
    let components = vh * flipSigns(vh)
    let shift = zeroCenter ? mean.matmul(components.T) : nil
    var parts: [Tensor] = []
    try forEachRowBlock(byRows) { block in
      let e = block.matmul(components.T)
      parts.append(shift.map { e - $0 } ?? e)
    }
    let embedding = Tensor.cat(parts, dim: 0)
    // The total of the column variances (ddof 1): Σx² − n·μ² per column.
    let total = ((squares - mean.square().squeeze(dim: 0) * Double(n)) / Double(n - 1)).sum()
    let variance = zeroCenter ? eigenvalues / Double(n - 1) : embedding.variance([0])
    return Result(embedding: rowsOf(embedding), loadings: rowsOf(components.T.contiguous()),
                  variance: variance.toArray(Double.self), varianceRatio: (variance / total).toArray(Double.self))
  }

  /// svd_flip on Vh rows: the sign that makes the largest |loading| of each component positive.
  private static func flipSigns(_ vh: Tensor) -> Tensor {
    vh.gather(dim: 1, index: vh.abs().argmax(dim: 1, keepDim: true)).sign()
  }

  /// Calls `body` with consecutive blocks of rows as dense float64 tensors (about 64 MB each).
  private static func forEachRowBlock(_ matrix: Matrix, _ body: (Tensor) throws -> Void) throws {
    let n = matrix.nRows, d = matrix.nCols
    let blockRows = Swift.max(1, Swift.min(n, (8 << 20) / Swift.max(d, 1)))
    for start in stride(from: 0, to: n, by: blockRows) {
      let rows = Array(start..<Swift.min(start + blockRows, n))
      try body(Tensor(try matrix.rows(rows).denseDoubles(), shape: [rows.count, d]))
    }
  }

  /// The first k singular triplets (U [n,k], S [k], Vh [k,d]).
  private static func decompose(_ x: Tensor, k: Int, solver: Solver, seed: UInt64) throws -> (Tensor, Tensor, Tensor) {
    switch solver {
    case .exact:
      // X Xᵀ = U S² Uᵀ, so Vh = S⁻¹ Uᵀ X: n² memory, no d × n factor. Directions without variance
      // (S ≈ 0, beyond the data's rank) get a floor so they stay finite; their loadings are arbitrary.
      let (values, vectors) = x.matmul(x.T).eigh()  // ascending
      let top = Tensor((0..<k).map { Int64(x.size(0) - 1 - $0) }, shape: [k])
      let s = values.indexSelect(dim: 0, index: top).clamp(min: 0).sqrt()
      let u = vectors.indexSelect(dim: 1, index: top)
      let floor = Swift.max(s.max().item() * 1e-12, Double.leastNormalMagnitude)
      return (u, s, u.T.matmul(x) / s.clamp(min: floor).unsqueeze(dim: 1))
    case .fullSVD, .covarianceEigh:
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
    let result = try PCA.fit(matrix, nComponents: k, zeroCenter: zeroCenter, solver: solver, seed: seed)
    obsm["X_pca"] = .dense(try DenseArray(rows: nObs, cols: k, values: result.embedding.flatMap { $0.map(Float.init) }))
    varm["PCs"] = .dense(try DenseArray(rows: nVars, cols: k, values: result.loadings.flatMap { $0 }))
    uns["pca"] = .dict([
      "variance": .array(.float64(result.variance)), "variance_ratio": .array(.float64(result.varianceRatio)),
      "params": .dict(["zero_center": .scalar(.bool([zeroCenter]))]),
    ])
  }
}
