extension AnnData {
  /// Concatenates AnnData objects along observations (anndata's `concat` with an inner join
  /// on variables): keeps the variables all parts share, in the first part's order; X and the
  /// layers present in every part are stacked; obs keeps the columns every part has with the
  /// same kind, plus a categorical `batchKey` column naming each cell's part. With
  /// `indexUnique`, obs names get "<sep><batch>" appended. raw, obsm, obsp and uns are dropped.
  public static func concatenate(
    _ parts: [AnnData], batchKey: String = "batch", batchCategories: [String]? = nil,
    indexUnique: String? = nil
  ) throws -> AnnData {
    guard !parts.isEmpty else { throw CellDataError("concatenate: no AnnData given") }
    let labels = batchCategories ?? parts.indices.map(String.init)
    guard labels.count == parts.count, Set(labels).count == labels.count else {
      throw CellDataError("concatenate: need \(parts.count) distinct batch categories")
    }
    let shared = Set(parts.dropFirst().reduce(into: Set(parts[0].varNames)) { $0.formIntersection($1.varNames) })
    let genes = parts[0].varNames.filter { shared.contains($0) }
    let aligned = try parts.map { try $0.subset(varNames: genes) }

    var obsNames: [String] = []
    var codes: [Int] = []
    for (b, part) in aligned.enumerated() {
      obsNames += part.obsNames.map { name in indexUnique.map { "\(name)\($0)\(labels[b])" } ?? name }
      codes += Array(repeating: b, count: part.nObs)
    }
    var obs = DataFrame(index: obsNames, indexName: parts[0].obs.indexName)
    for name in parts[0].obs.columnNames where name != batchKey {
      let columns = aligned.compactMap { $0.obs[name] }
      guard columns.count == aligned.count, let merged = try? mergeColumns(columns) else { continue }
      try obs.set(name, merged)
    }
    try obs.set(batchKey, .categorical(try Categorical(codes: codes, categories: .string(labels))))

    let X: Matrix? = aligned.allSatisfy({ $0.X != nil }) ? try Matrix.vstack(aligned.map { $0.X! }) : nil
    var out = try AnnData(X: X, obs: obs, var: aligned[0].var)
    let layerNames = aligned.dropFirst().reduce(into: Set(aligned[0].layers.keys)) { $0.formIntersection($1.layers.keys) }
    for name in layerNames { out.layers[name] = try Matrix.vstack(aligned.map { $0.layers[name]! }) }
    return out
  }
}

/// Joins one obs column across parts: arrays of compatible dtypes, or categoricals (with the
/// union of their categories, in order of first appearance).
private func mergeColumns(_ columns: [Element]) throws -> Element {
  if case .categorical = columns[0] {
    var categories: [String] = []
    var seen = Set<String>()
    var labels: [String?] = []
    for column in columns {
      guard case .categorical(let c) = column else { throw CellDataError("mixed column kinds") }
      for k in 0..<c.categories.count where seen.insert(c.categories.text(at: k)).inserted {
        categories.append(c.categories.text(at: k))
      }
      labels += c.labels
    }
    let lookup = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
    return .categorical(try Categorical(codes: labels.map { $0.map { lookup[$0]! } ?? -1 }, categories: .string(categories)))
  }
  let arrays = try columns.map { column -> ArrayData in
    guard case .dense(let d) = column, d.shape.count == 1 else { throw CellDataError("unsupported column kind") }
    return d.data
  }
  return .array(try ArrayData.concatenated(arrays))
}
