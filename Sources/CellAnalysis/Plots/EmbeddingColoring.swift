import CellData

/// How the points of an embedding plot are coloured.
public enum EmbeddingColoring: Equatable, Sendable {
  /// No colour key: every point in scanpy's `na_color` (light grey).
  case uniform
  /// A categorical key: code per cell (-1 = missing), categories and one colour each.
  case categorical(codes: [Int], categories: [String], colors: [RGBColor])
  /// A continuous key (NaN = missing), mapped linearly from `min`...`max` onto the colour map.
  case continuous(values: [Double], min: Double, max: Double)

  /// Resolves `key` on `adata` as scanpy does: an obs column first (categorical, string and
  /// bool columns are categories; numeric ones continuous), then a gene of `raw` (when present
  /// and `useRaw` is not false) or of X.
  static func resolve(key: String, adata: AnnData, palette: [RGBColor]?, useRaw: Bool?) throws -> EmbeddingColoring {
    if let column = adata.obs[key] {
      return try fromColumn(column, key: key, uns: adata.uns, palette: palette)
    }
    if useRaw != false, let raw = adata.raw, let j = raw.var.index.firstIndex(of: key), let x = raw.X {
      return try continuous(x.columns([j]).denseDoubles(), key: key)
    }
    if useRaw == true {
      throw PlotError("unknown colour key '\(key)': not an obs column or a gene of raw")
    }
    if let j = adata.var.index.firstIndex(of: key) {
      guard let x = adata.X else { throw PlotError("colour key '\(key)' is a gene but the AnnData has no X") }
      return try continuous(x.columns([j]).denseDoubles(), key: key)
    }
    let columns = adata.obs.columnNames.prefix(20).joined(separator: ", ")
    throw PlotError("unknown colour key '\(key)': not an obs column (\(columns.isEmpty ? "none" : columns)) or a gene in var_names")
  }

  private static func fromColumn(_ column: Element, key: String, uns: [String: Element], palette: [RGBColor]?) throws -> EmbeddingColoring {
    let codes: [Int], categories: [String]
    switch column {
    case .categorical(let c):
      codes = c.codes
      categories = (0..<c.categories.count).map { c.categories.text(at: $0) }
    case .dense(let d) where d.data.isString:
      let labels = (0..<d.data.count).map { d.data.text(at: $0) }
      (codes, categories) = codesAndCategories(labels)
    case .dense(let d):
      if case .bool(let flags) = d.data {
        (codes, categories) = codesAndCategories(flags.map { $0 ? "True" : "False" })
      } else {
        guard let values = d.data.doubles else { throw PlotError("obs column '\(key)' cannot be plotted") }
        return try continuous(values, key: key)
      }
    case .nullable(let n) where n.kind == .integer:
      let values = n.values.doubles ?? []
      return try continuous(zip(values, n.mask).map { $1 ? .nan : $0 }, key: key)
    case .nullable(let n):
      let labels: [String?] = (0..<n.mask.count).map { n.mask[$0] ? nil : n.values.text(at: $0) }
      (codes, categories) = codesAndCategories(labels)
    default:
      throw PlotError("obs column '\(key)' (\(column.typeDescription)) cannot be plotted")
    }
    var colors = palette ?? Palette.colors(forKey: key, categoryCount: categories.count, uns: uns)
    if colors.count < categories.count {
      guard !colors.isEmpty else { throw PlotError("empty palette for '\(key)'") }
      colors = (0..<categories.count).map { colors[$0 % colors.count] }
    }
    return .categorical(codes: codes, categories: categories, colors: Array(colors.prefix(categories.count)))
  }

  /// Sorted categories, as pandas' `astype("category")`; nil labels get code -1.
  private static func codesAndCategories(_ labels: [String?]) -> ([Int], [String]) {
    let categories = Array(Set(labels.compactMap { $0 })).sorted()
    let lookup = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
    return (labels.map { $0.flatMap { lookup[$0] } ?? -1 }, categories)
  }

  private static func continuous(_ values: [Double], key: String) throws -> EmbeddingColoring {
    let finite = values.filter(\.isFinite)
    guard let lo = finite.min(), let hi = finite.max() else {
      throw PlotError("colour key '\(key)' has no finite values")
    }
    return .continuous(values: values, min: lo, max: hi)
  }

  /// The colour of each cell, in data order.
  func colors(count n: Int, colormap: Colormap) -> [RGBColor] {
    switch self {
    case .uniform:
      return Array(repeating: .lightGray, count: n)
    case .categorical(let codes, _, let colors):
      return codes.map { $0 < 0 ? .lightGray : colors[$0] }
    case .continuous(let values, let lo, let hi):
      return values.map { v in
        guard v.isFinite else { return .lightGray }
        return colormap.color(at: hi > lo ? (v - lo) / (hi - lo) : 0)
      }
    }
  }

  /// scanpy's draw order (`sort_order=True`): missing values at the bottom; for continuous
  /// keys higher values on top; otherwise data order.
  func drawOrder(count n: Int) -> [Int] {
    switch self {
    case .uniform:
      return Array(0..<n)
    case .categorical(let codes, _, _):
      return codes.indices.filter { codes[$0] < 0 } + codes.indices.filter { codes[$0] >= 0 }
    case .continuous(let values, _, _):
      // np.argsort(-v, kind="stable")[::-1], NaN sorting last before the reversal.
      let ascending = values.indices.sorted { a, b in
        let va = values[a], vb = values[b]
        if va.isNaN || vb.isNaN { return va.isNaN == vb.isNaN ? a < b : vb.isNaN }
        return va != vb ? -va < -vb : a < b
      }
      return Array(ascending.reversed())
    }
  }
}
