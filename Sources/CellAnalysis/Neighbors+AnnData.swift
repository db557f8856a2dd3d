import CellData

extension AnnData {
  /// `sc.pp.neighbors` with the UMAP connectivities: writes obsp["distances"] (the
  /// `nNeighbors` − 1 nearest other cells of each cell), obsp["connectivities"] (the fuzzy
  /// simplicial set) and uns["neighbors"] with scanpy's keys and params.
  ///
  /// `nNeighbors` counts the cell itself, as in scanpy. The representation is
  /// obsm[`useRep`] (first `nPCs` columns when given), or X_pca / X when `useRep` is nil.
  /// The exact search gives scanpy's result for `transformer="sklearn"` (and its default
  /// below 4,096 cells); `.nnDescent` is approximate.
  @discardableResult
  public mutating func neighbors(nNeighbors: Int = 15, useRep: String? = nil, nPCs: Int? = nil,
                                 metric: Neighbors.Metric = .euclidean, method: Neighbors.Method = .exact,
                                 seed: UInt64 = 0, keyAdded: String? = nil) throws -> Neighbors.KNN {
    let data = try representation(useRep: useRep, nPCs: nPCs)
    let knn = try Neighbors.knn(data, k: nNeighbors, metric: metric, method: method, seed: seed)
    let distancesKey = keyAdded.map { "\($0)_distances" } ?? "distances"
    let connectivitiesKey = keyAdded.map { "\($0)_connectivities" } ?? "connectivities"
    obsp[distancesKey] = .sparse(knn.distanceMatrix())
    obsp[connectivitiesKey] = .sparse(FuzzySimplicialSet.connectivities(knn))
    var params: [String: Element] = [
      "n_neighbors": .integer(nNeighbors), "method": .string("umap"), "metric": .string(metric.rawValue),
      "random_state": .integer(Int(seed)), "knn_method": .string(method.name),
    ]
    if let useRep { params["use_rep"] = .string(useRep) }
    if let nPCs { params["n_pcs"] = .integer(nPCs) }
    uns[keyAdded ?? "neighbors"] = .dict([
      "connectivities_key": .string(connectivitiesKey), "distances_key": .string(distancesKey), "params": .dict(params),
    ])
    return knn
  }

  /// The graph written by `neighbors`: obsp[uns[key]["connectivities_key"]].
  public func neighborsGraph(key: String = "neighbors", which: String = "connectivities_key") throws -> SparseMatrix {
    var obspKey = which == "connectivities_key" ? "connectivities" : "distances"
    if case .dict(let info)? = uns[key], let stored = info[which]?.scalarString {
      obspKey = stored
    } else if key != "neighbors" {
      throw CellDataError("no uns['\(key)']: run neighbors first")
    }
    switch obsp[obspKey] {
    case .sparse(let s)?: return s.format == .csc ? s.switchedFormat() : s
    case .dense(let d)?: return try SparseMatrix.csr(from: d)
    case nil: throw CellDataError("no obsp['\(obspKey)']: run neighbors first (singlecell neighbors)")
    }
  }

  /// Neighbour parameters stored by `neighbors` (scanpy's uns["neighbors"]["params"]).
  func neighborsParams(key: String = "neighbors") -> [String: Element] {
    if case .dict(let info)? = uns[key], case .dict(let params)? = info["params"] { return params }
    return [:]
  }
}

extension Element {
  /// A scalar's value as text (strings) or number, for reading uns parameters.
  var scalarString: String? {
    if case .dense(let d) = self, d.data.count == 1, case .string(let s) = d.data { return s[0] }
    return nil
  }
  var scalarDouble: Double? {
    if case .dense(let d) = self, d.data.count == 1, let v = d.data.doubles { return v[0] }
    return nil
  }
}
