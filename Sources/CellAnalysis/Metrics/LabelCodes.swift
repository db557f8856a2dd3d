import CellData

/// Labels as integer codes into sorted categories (pandas' `Categorical(labels).codes`).
public struct LabelCodes: Sendable, Equatable {
  public let codes: [Int]
  public let categories: [String]

  public init(_ labels: [String]) {
    categories = Array(Set(labels)).sorted()
    let lookup = Dictionary(uniqueKeysWithValues: categories.enumerated().map { ($1, $0) })
    codes = labels.map { lookup[$0]! }
  }

  public init<T: Hashable & Comparable>(values: [T]) {
    let sorted = Array(Set(values)).sorted()
    let lookup = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1, $0) })
    codes = values.map { lookup[$0]! }
    categories = sorted.map { "\($0)" }
  }

  public var count: Int { codes.count }
  public var nCategories: Int { categories.count }

  /// Number of members of each category.
  public var sizes: [Int] {
    var out = [Int](repeating: 0, count: categories.count)
    for c in codes { out[c] += 1 }
    return out
  }

  func requireCount(_ n: Int, _ what: String) throws {
    guard codes.count == n else { throw CellDataError("\(what): \(codes.count) labels for \(n) cells") }
  }
}
