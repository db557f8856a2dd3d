/// An annotated data matrix, as in Python's anndata: `X` is observations (cells) × variables
/// (genes), with per-observation and per-variable annotations.
public struct AnnData: Equatable, Sendable {
  public var X: Matrix?
  public var obs: DataFrame
  public var `var`: DataFrame
  public var layers: [String: Matrix] = [:]
  public var obsm: [String: Element] = [:]
  public var varm: [String: Element] = [:]
  public var obsp: [String: Matrix] = [:]
  public var varp: [String: Matrix] = [:]
  public var uns: [String: Element] = [:]
  public var raw: Raw?

  /// The frozen copy of an earlier state of the variables (anndata's `.raw`).
  public struct Raw: Equatable, Sendable {
    public var X: Matrix?
    public var `var`: DataFrame
    public var varm: [String: Element] = [:]

    public init(X: Matrix?, `var` variables: DataFrame, varm: [String: Element] = [:]) {
      self.X = X
      self.var = variables
      self.varm = varm
    }
  }

  /// An AnnData with `X` and default obs/var names ("0", "1", ...) unless given.
  public init(X: Matrix?, obs: DataFrame? = nil, `var` variables: DataFrame? = nil) throws {
    let nObs = obs?.nRows ?? X?.nRows ?? 0
    let nVars = variables?.nRows ?? X?.nCols ?? 0
    self.X = X
    self.obs = obs ?? DataFrame(index: (0..<nObs).map(String.init))
    self.var = variables ?? DataFrame(index: (0..<nVars).map(String.init))
    try validate()
  }

  public var nObs: Int { obs.nRows }
  public var nVars: Int { self.var.nRows }
  public var obsNames: [String] { obs.index }
  public var varNames: [String] { self.var.index }

  /// Checks that every part has the shape that obs and var imply.
  public func validate() throws {
    func check(_ what: String, _ rows: Int, _ cols: Int?, _ m: Matrix) throws {
      guard m.nRows == rows, cols == nil || m.nCols == cols! else {
        throw CellDataError("\(what) has shape (\(m.nRows), \(m.nCols)); expected (\(rows), \(cols.map(String.init) ?? "any"))")
      }
    }
    if let X { try check("X", nObs, nVars, X) }
    for (k, m) in layers { try check("layers['\(k)']", nObs, nVars, m) }
    for (k, m) in obsp { try check("obsp['\(k)']", nObs, nObs, m) }
    for (k, m) in varp { try check("varp['\(k)']", nVars, nVars, m) }
    for (k, e) in obsm where e.length != nObs {
      throw CellDataError("obsm['\(k)'] has \(e.length ?? 0) rows; expected \(nObs)")
    }
    for (k, e) in varm where e.length != nVars {
      throw CellDataError("varm['\(k)'] has \(e.length ?? 0) rows; expected \(nVars)")
    }
    if let raw, let rx = raw.X {
      try check("raw.X", nObs, raw.var.nRows, rx)
    }
  }

  // MARK: - Subsetting

  /// Observations at `obs` and variables at `vars` (nil keeps all), in the given order.
  /// `raw` keeps all its variables, as in anndata.
  public func subset(obs obsSelection: [Int]? = nil, vars varSelection: [Int]? = nil) throws -> AnnData {
    if let s = obsSelection, let bad = s.first(where: { $0 < 0 || $0 >= nObs }) {
      throw CellDataError("observation index \(bad) out of range 0..<\(nObs)")
    }
    if let s = varSelection, let bad = s.first(where: { $0 < 0 || $0 >= nVars }) {
      throw CellDataError("variable index \(bad) out of range 0..<\(nVars)")
    }
    var out = self
    if let s = obsSelection {
      out.X = out.X?.rows(s)
      out.layers = out.layers.mapValues { $0.rows(s) }
      out.obs = out.obs.rows(s)
      out.obsm = try out.obsm.mapValues { try $0.rows(s) }
      out.obsp = out.obsp.mapValues { $0.rows(s).columns(s) }
      if var raw = out.raw {
        raw.X = raw.X?.rows(s)
        out.raw = raw
      }
    }
    if let s = varSelection {
      out.X = out.X?.columns(s)
      out.layers = out.layers.mapValues { $0.columns(s) }
      out.var = out.var.rows(s)
      out.varm = try out.varm.mapValues { try $0.rows(s) }
      out.varp = out.varp.mapValues { $0.rows(s).columns(s) }
    }
    return out
  }

  /// Observations where `mask` is true.
  public func subset(obsMask mask: [Bool]) throws -> AnnData {
    guard mask.count == nObs else { throw CellDataError("observation mask has \(mask.count) entries; expected \(nObs)") }
    return try subset(obs: mask.indices.filter { mask[$0] })
  }

  /// Variables where `mask` is true.
  public func subset(varMask mask: [Bool]) throws -> AnnData {
    guard mask.count == nVars else { throw CellDataError("variable mask has \(mask.count) entries; expected \(nVars)") }
    return try subset(vars: mask.indices.filter { mask[$0] })
  }

  /// Observations and variables by name.
  public func subset(obsNames: [String]? = nil, varNames: [String]? = nil) throws -> AnnData {
    try subset(obs: obsNames.map { try obs.positions(of: $0) }, vars: varNames.map { try self.var.positions(of: $0) })
  }

  /// Variables as observations and vice versa. `raw` is dropped, as anndata does.
  public func transposed() -> AnnData {
    var out = self
    out.X = X?.transposed()
    out.layers = layers.mapValues { $0.transposed() }
    out.obs = self.var
    out.var = obs
    out.obsm = varm
    out.varm = obsm
    out.obsp = varp
    out.varp = obsp
    out.raw = nil
    return out
  }

  /// Makes variable names unique by appending "-1", "-2", ... to repeats, as anndata's
  /// `var_names_make_unique` does.
  public mutating func varNamesMakeUnique(joiner: String = "-") {
    self.var.index = makeUnique(self.var.index, joiner: joiner)
  }

  public mutating func obsNamesMakeUnique(joiner: String = "-") {
    obs.index = makeUnique(obs.index, joiner: joiner)
  }
}

/// anndata's `make_index_unique`: the first occurrence keeps its name, later ones get
/// `name-1`, `name-2`, ... skipping names that already exist.
func makeUnique(_ names: [String], joiner: String) -> [String] {
  var taken = Set(names)
  guard taken.count < names.count else { return names }
  var firstSeen = Set<String>()
  var counter: [String: Int] = [:]
  var out = names
  for (i, name) in names.enumerated() {
    if firstSeen.insert(name).inserted { continue }
    while true {
      counter[name, default: 0] += 1
      let candidate = "\(name)\(joiner)\(counter[name]!)"
      if taken.insert(candidate).inserted {
        out[i] = candidate
        break
      }
    }
  }
  return out
}
