import CTorch

// MARK: - Elementwise

extension Tensor {
  func unary(_ op: Int) -> Tensor { withHandle { wrap(ct_unary(Int32(op), $0)) } }
  func binary(_ op: Int, _ other: Tensor) -> Tensor {
    withExtendedLifetime((self, other)) { wrap(ct_binary(Int32(op), handle, other.handle)) }
  }
  func binary(_ op: Int, _ scalar: Double) -> Tensor {
    withHandle { wrap(ct_binary_scalar(Int32(op), $0, scalar)) }
  }
  static func binary(_ op: Int, _ scalar: Double, _ t: Tensor) -> Tensor {
    t.withHandle { wrap(ct_scalar_binary(Int32(op), scalar, $0)) }
  }

  public func neg() -> Tensor { unary(CT_NEG) }
  public func abs() -> Tensor { unary(CT_ABS) }
  public func exp() -> Tensor { unary(CT_EXP) }
  public func log() -> Tensor { unary(CT_LOG) }
  public func log1p() -> Tensor { unary(CT_LOG1P) }
  public func expm1() -> Tensor { unary(CT_EXPM1) }
  public func sqrt() -> Tensor { unary(CT_SQRT) }
  public func rsqrt() -> Tensor { unary(CT_RSQRT) }
  public func square() -> Tensor { unary(CT_SQUARE) }
  public func reciprocal() -> Tensor { unary(CT_RECIPROCAL) }
  public func sin() -> Tensor { unary(CT_SIN) }
  public func cos() -> Tensor { unary(CT_COS) }
  public func tanh() -> Tensor { unary(CT_TANH) }
  public func sigmoid() -> Tensor { unary(CT_SIGMOID) }
  public func logSigmoid() -> Tensor { unary(CT_LOG_SIGMOID) }
  public func relu() -> Tensor { unary(CT_RELU) }
  public func lgamma() -> Tensor { unary(CT_LGAMMA) }
  public func digamma() -> Tensor { unary(CT_DIGAMMA) }
  public func erf() -> Tensor { unary(CT_ERF) }
  public func floor() -> Tensor { unary(CT_FLOOR) }
  public func ceil() -> Tensor { unary(CT_CEIL) }
  public func round() -> Tensor { unary(CT_ROUND) }
  public func trunc() -> Tensor { unary(CT_TRUNC) }
  public func sign() -> Tensor { unary(CT_SIGN) }
  public func isnan() -> Tensor { unary(CT_ISNAN) }
  public func isinf() -> Tensor { unary(CT_ISINF) }
  public func isfinite() -> Tensor { unary(CT_ISFINITE) }
  public func logicalNot() -> Tensor { unary(CT_LOGICAL_NOT) }

  /// log(1 + exp(beta·x)) / beta, linear above `threshold` (torch's defaults).
  public func softplus(beta: Double = 1, threshold: Double = 20) -> Tensor {
    withHandle { wrap(ct_softplus($0, beta, threshold)) }
  }
  /// GELU; `tanhApproximation` selects torch's approximate="tanh".
  public func gelu(tanhApproximation: Bool = false) -> Tensor {
    withHandle { wrap(ct_gelu($0, tanhApproximation ? 1 : 0)) }
  }
  public func leakyRelu(_ negativeSlope: Double = 0.01) -> Tensor {
    withHandle { wrap(ct_leaky_relu($0, negativeSlope)) }
  }
  public func clamp(min: Double? = nil, max: Double? = nil) -> Tensor {
    withHandle { wrap(ct_clamp($0, min ?? 0, max ?? 0, min == nil ? 0 : 1, max == nil ? 0 : 1)) }
  }
  public func nanToNum(nan: Double = 0, posinf: Double = .greatestFiniteMagnitude,
                       neginf: Double = -.greatestFiniteMagnitude) -> Tensor {
    withHandle { wrap(ct_nan_to_num($0, nan, posinf, neginf)) }
  }
  public func pow(_ exponent: Double) -> Tensor { binary(CT_POW, exponent) }
  public func pow(_ exponent: Tensor) -> Tensor { binary(CT_POW, exponent) }
  public func maximum(_ other: Tensor) -> Tensor { binary(CT_MAXIMUM, other) }
  public func minimum(_ other: Tensor) -> Tensor { binary(CT_MINIMUM, other) }
  public func remainder(_ other: Double) -> Tensor { binary(CT_REMAINDER, other) }
  public func floorDivide(_ other: Double) -> Tensor { binary(CT_FLOOR_DIVIDE, other) }
  /// x · log(y), 0 where x == 0.
  public func xlogy(_ y: Tensor) -> Tensor { binary(CT_XLOGY, y) }

  public func eq(_ o: Tensor) -> Tensor { binary(CT_EQ, o) }
  public func eq(_ o: Double) -> Tensor { binary(CT_EQ, o) }
  public func ne(_ o: Tensor) -> Tensor { binary(CT_NE, o) }
  public func ne(_ o: Double) -> Tensor { binary(CT_NE, o) }
  public func lt(_ o: Tensor) -> Tensor { binary(CT_LT, o) }
  public func lt(_ o: Double) -> Tensor { binary(CT_LT, o) }
  public func le(_ o: Tensor) -> Tensor { binary(CT_LE, o) }
  public func le(_ o: Double) -> Tensor { binary(CT_LE, o) }
  public func gt(_ o: Tensor) -> Tensor { binary(CT_GT, o) }
  public func gt(_ o: Double) -> Tensor { binary(CT_GT, o) }
  public func ge(_ o: Tensor) -> Tensor { binary(CT_GE, o) }
  public func ge(_ o: Double) -> Tensor { binary(CT_GE, o) }
  public func logicalAnd(_ o: Tensor) -> Tensor { binary(CT_LOGICAL_AND, o) }
  public func logicalOr(_ o: Tensor) -> Tensor { binary(CT_LOGICAL_OR, o) }

  /// Elementwise choice: `condition ? a : b`.
  public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    withExtendedLifetime((condition, a, b)) { wrap(ct_where(condition.handle, a.handle, b.handle)) }
  }

  public static prefix func - (x: Tensor) -> Tensor { x.neg() }
  public static func + (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_ADD, b) }
  public static func - (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_SUB, b) }
  public static func * (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_MUL, b) }
  public static func / (a: Tensor, b: Tensor) -> Tensor { a.binary(CT_DIV, b) }
  public static func + (a: Tensor, b: Double) -> Tensor { a.binary(CT_ADD, b) }
  public static func - (a: Tensor, b: Double) -> Tensor { a.binary(CT_SUB, b) }
  public static func * (a: Tensor, b: Double) -> Tensor { a.binary(CT_MUL, b) }
  public static func / (a: Tensor, b: Double) -> Tensor { a.binary(CT_DIV, b) }
  public static func + (a: Double, b: Tensor) -> Tensor { binary(CT_ADD, a, b) }
  public static func - (a: Double, b: Tensor) -> Tensor { binary(CT_SUB, a, b) }
  public static func * (a: Double, b: Tensor) -> Tensor { binary(CT_MUL, a, b) }
  public static func / (a: Double, b: Tensor) -> Tensor { binary(CT_DIV, a, b) }
}

// MARK: - Reductions

extension Tensor {
  func reduce(_ op: Int, _ dims: [Int], keepDim: Bool) -> Tensor {
    let d = dims.map(Int64.init)
    return withHandle { wrap(ct_reduce(Int32(op), $0, d, Int32(d.count), keepDim ? 1 : 0)) }
  }

  /// Sum over `dims` (all dimensions when empty).
  public func sum(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_SUM, dims, keepDim: keepDim) }
  public func sum(dim: Int, keepDim: Bool = false) -> Tensor { sum([dim], keepDim: keepDim) }
  public func mean(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_MEAN, dims, keepDim: keepDim) }
  public func mean(dim: Int, keepDim: Bool = false) -> Tensor { mean([dim], keepDim: keepDim) }
  public func prod(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
    reduce(CT_PROD, dim.map { [$0] } ?? [], keepDim: keepDim)
  }
  public func max(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_AMAX, dims, keepDim: keepDim) }
  public func max(dim: Int, keepDim: Bool = false) -> Tensor { max([dim], keepDim: keepDim) }
  public func min(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_AMIN, dims, keepDim: keepDim) }
  public func min(dim: Int, keepDim: Bool = false) -> Tensor { min([dim], keepDim: keepDim) }
  public func logsumexp(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor {
    reduce(CT_LOGSUMEXP, dims, keepDim: keepDim)
  }
  public func logsumexp(dim: Int, keepDim: Bool = false) -> Tensor { logsumexp([dim], keepDim: keepDim) }
  public func argmax(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
    reduce(CT_ARGMAX, dim.map { [$0] } ?? [], keepDim: keepDim)
  }
  public func argmin(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
    reduce(CT_ARGMIN, dim.map { [$0] } ?? [], keepDim: keepDim)
  }
  public func any(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
    reduce(CT_ANY, dim.map { [$0] } ?? [], keepDim: keepDim)
  }
  public func all(dim: Int? = nil, keepDim: Bool = false) -> Tensor {
    reduce(CT_ALL, dim.map { [$0] } ?? [], keepDim: keepDim)
  }
  /// Euclidean norm over `dims` (all when empty).
  public func norm(_ dims: [Int] = [], keepDim: Bool = false) -> Tensor { reduce(CT_NORM2, dims, keepDim: keepDim) }
  public func countNonzero(_ dims: [Int] = []) -> Tensor { reduce(CT_COUNT_NONZERO, dims, keepDim: false) }

  /// Variance with Bessel's `correction` (torch's default 1).
  public func variance(_ dims: [Int] = [], correction: Double = 1, keepDim: Bool = false) -> Tensor {
    let d = dims.map(Int64.init)
    return withHandle { wrap(ct_var($0, d, Int32(d.count), correction, keepDim ? 1 : 0)) }
  }
  public func std(_ dims: [Int] = [], correction: Double = 1, keepDim: Bool = false) -> Tensor {
    variance(dims, correction: correction, keepDim: keepDim).sqrt()
  }
  public func cumsum(dim: Int) -> Tensor { withHandle { wrap(ct_cumsum($0, Int64(dim))) } }

  public func topk(_ k: Int, dim: Int = -1, largest: Bool = true) -> (values: Tensor, indices: Tensor) {
    var v: OpaquePointer?, i: OpaquePointer?
    withHandle { check(ct_topk($0, Int64(k), Int64(dim), largest ? 1 : 0, &v, &i)) }
    return (wrap(v), wrap(i))
  }
  public func sort(dim: Int = -1, descending: Bool = false) -> (values: Tensor, indices: Tensor) {
    var v: OpaquePointer?, i: OpaquePointer?
    withHandle { check(ct_sort($0, Int64(dim), descending ? 1 : 0, &v, &i)) }
    return (wrap(v), wrap(i))
  }
}

// MARK: - Linear algebra

extension Tensor {
  public func matmul(_ other: Tensor) -> Tensor {
    withExtendedLifetime((self, other)) { wrap(ct_matmul(handle, other.handle)) }
  }
  public func bmm(_ other: Tensor) -> Tensor {
    withExtendedLifetime((self, other)) { wrap(ct_bmm(handle, other.handle)) }
  }
  /// Reduced (or full) SVD: self = U · diag(S) · Vh.
  public func svd(fullMatrices: Bool = false) -> (u: Tensor, s: Tensor, vh: Tensor) {
    var u: OpaquePointer?, s: OpaquePointer?, vh: OpaquePointer?
    withHandle { check(ct_svd($0, fullMatrices ? 1 : 0, &u, &s, &vh)) }
    return (wrap(u), wrap(s), wrap(vh))
  }
  /// Eigen-decomposition of a symmetric matrix, eigenvalues ascending.
  public func eigh() -> (values: Tensor, vectors: Tensor) {
    var w: OpaquePointer?, v: OpaquePointer?
    withHandle { check(ct_eigh($0, &w, &v)) }
    return (wrap(w), wrap(v))
  }
  public func qr() -> (q: Tensor, r: Tensor) {
    var q: OpaquePointer?, r: OpaquePointer?
    withHandle { check(ct_qr($0, &q, &r)) }
    return (wrap(q), wrap(r))
  }
}
