import CellData

/// scib-metrics `graph_connectivity`: for each label, the share of its cells in the largest
/// strongly connected component of the directed kNN graph restricted to that label; the mean
/// over labels.
public enum GraphConnectivity {
  public static func score(knn: Neighbors.KNN, labels: LabelCodes) throws -> Double {
    try labels.requireCount(knn.n, "graph connectivity")
    var shares: [Double] = []
    for label in 0..<labels.nCategories {
      let members = (0..<knn.n).filter { labels.codes[$0] == label }
      var position = [Int](repeating: -1, count: knn.n)
      for (p, v) in members.enumerated() { position[v] = p }
      let adjacency = members.map { v in knn.neighbors(of: v).compactMap { position[$0] >= 0 && $0 != v ? position[$0] : nil } }
      let components = stronglyConnectedComponents(adjacency)
      var sizes = [Int](repeating: 0, count: (components.max() ?? -1) + 1)
      for c in components { sizes[c] += 1 }
      shares.append(Double(sizes.max() ?? 0) / Double(members.count))
    }
    return shares.reduce(0, +) / Double(shares.count)
  }

  /// Strongly connected components (Kosaraju, iterative): a component id per node.
  static func stronglyConnectedComponents(_ adjacency: [[Int]]) -> [Int] {
    let n = adjacency.count
    var reverse = [[Int]](repeating: [], count: n)
    for (v, targets) in adjacency.enumerated() { for w in targets { reverse[w].append(v) } }
    // Pass 1: finishing order on the graph.
    var visited = [Bool](repeating: false, count: n)
    var order: [Int] = []
    order.reserveCapacity(n)
    for start in 0..<n where !visited[start] {
      visited[start] = true
      var stack: [(node: Int, next: Int)] = [(start, 0)]
      while !stack.isEmpty {
        let (v, next) = stack[stack.count - 1]
        if next < adjacency[v].count {
          stack[stack.count - 1].next += 1
          let w = adjacency[v][next]
          if !visited[w] {
            visited[w] = true
            stack.append((w, 0))
          }
        } else {
          order.append(v)
          stack.removeLast()
        }
      }
    }
    // Pass 2: components on the reversed graph in reverse finishing order.
    var component = [Int](repeating: -1, count: n)
    var count = 0
    for start in order.reversed() where component[start] < 0 {
      component[start] = count
      var stack = [start]
      while let v = stack.popLast() {
        for w in reverse[v] where component[w] < 0 {
          component[w] = count
          stack.append(w)
        }
      }
      count += 1
    }
    return component
  }
}
