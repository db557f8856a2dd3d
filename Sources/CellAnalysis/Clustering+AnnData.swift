import CellData

extension AnnData {
  /// `sc.tl.leiden(flavor="igraph")` on obsp[connectivities]: writes obs[`keyAdded`] as a
  /// categorical of "0", "1", … (cluster 0 the largest) and uns[`keyAdded`]["params"].
  @discardableResult
  public mutating func leiden(resolution: Double = 1, nIterations: Int = 2, neighborsKey: String = "neighbors",
                              useWeights: Bool = true, keyAdded: String = "leiden", seed: UInt64 = 0) throws -> [Int] {
    let graph = try WeightedGraph(neighborsGraph(key: neighborsKey))
    let labels = try Clustering.leiden(graph, resolution: resolution, nIterations: nIterations, useWeights: useWeights,
                                       seed: seed)
    try storeClusters(labels, key: keyAdded, params: [
      "resolution": .number(resolution), "random_state": .integer(Int(seed)), "n_iterations": .integer(nIterations),
    ])
    return labels
  }

  /// `sc.tl.louvain` through igraph's multilevel algorithm; obs[`keyAdded`] as for `leiden`.
  @discardableResult
  public mutating func louvain(resolution: Double = 1, neighborsKey: String = "neighbors", useWeights: Bool = true,
                               keyAdded: String = "louvain", seed: UInt64 = 0) throws -> [Int] {
    let graph = try WeightedGraph(neighborsGraph(key: neighborsKey))
    let labels = try Clustering.louvain(graph, resolution: resolution, useWeights: useWeights, seed: seed)
    try storeClusters(labels, key: keyAdded, params: [
      "resolution": .number(resolution), "random_state": .integer(Int(seed)),
    ])
    return labels
  }

  private mutating func storeClusters(_ labels: [Int], key: String, params: [String: Element]) throws {
    let count = (labels.max() ?? -1) + 1
    let categorical = try Categorical(codes: labels, categories: .string((0..<count).map(String.init)))
    try obs.set(key, .categorical(categorical))
    uns[key] = .dict(["params": .dict(params)])
  }
}
