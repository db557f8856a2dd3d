extension AnnData {
  /// scanpy's `pp.filter_cells`: keeps cells with at least `minCounts` total counts and at
  /// least `minGenes` expressed genes (and at most the max values), computed on X. Adds
  /// obs["n_counts"] and/or obs["n_genes"] for the criteria given, as scanpy does.
  public mutating func filterCells(
    minCounts: Double? = nil, minGenes: Int? = nil, maxCounts: Double? = nil, maxGenes: Int? = nil
  ) throws {
    let m = try matrix(layer: nil)
    try m.requireFinite("X")
    let counts = try m.rowSums()
    let genes = try m.rowPositiveCounts()
    let keep = (0..<nObs).map { i in
      (minCounts.map { counts[i] >= $0 } ?? true) && (maxCounts.map { counts[i] <= $0 } ?? true)
        && (minGenes.map { genes[i] >= $0 } ?? true) && (maxGenes.map { genes[i] <= $0 } ?? true)
    }
    if minCounts != nil || maxCounts != nil {
      try obs.set("n_counts", .array(ArrayData.floating(counts, like: m.data)))
    }
    if minGenes != nil || maxGenes != nil {
      try obs.set("n_genes", .array(.int64(genes.map(Int64.init))))
    }
    self = try subset(obsMask: keep)
  }

  /// scanpy's `pp.filter_genes`: keeps genes with at least `minCounts` total counts and
  /// expressed in at least `minCells` cells (and at most the max values). Adds var["n_counts"]
  /// and/or var["n_cells"] for the criteria given.
  public mutating func filterGenes(
    minCounts: Double? = nil, minCells: Int? = nil, maxCounts: Double? = nil, maxCells: Int? = nil
  ) throws {
    let m = try matrix(layer: nil)
    try m.requireFinite("X")
    let counts = try m.columnSums()
    let cells = try m.columnPositiveCounts()
    let keep = (0..<nVars).map { j in
      (minCounts.map { counts[j] >= $0 } ?? true) && (maxCounts.map { counts[j] <= $0 } ?? true)
        && (minCells.map { cells[j] >= $0 } ?? true) && (maxCells.map { cells[j] <= $0 } ?? true)
    }
    if minCounts != nil || maxCounts != nil {
      try self.var.set("n_counts", .array(ArrayData.floating(counts, like: m.data)))
    }
    if minCells != nil || maxCells != nil {
      try self.var.set("n_cells", .array(.int64(cells.map(Int64.init))))
    }
    self = try subset(varMask: keep)
  }
}
