/// Named tensors in insertion order, keyed as PyTorch keys them
/// (`encoder.fc_layers.Layer 0.0.weight`).
public struct StateDict: Sequence {
  public private(set) var keys: [String] = []
  private var values: [String: Tensor] = [:]

  public init() {}
  public init(_ entries: [(String, Tensor)]) {
    for (k, v) in entries { self[k] = v }
  }

  public subscript(key: String) -> Tensor? {
    get { values[key] }
    set {
      if let newValue {
        if values.updateValue(newValue, forKey: key) == nil { keys.append(key) }
      } else if values.removeValue(forKey: key) != nil {
        keys.removeAll { $0 == key }
      }
    }
  }

  public var count: Int { keys.count }

  public func makeIterator() -> AnyIterator<(key: String, value: Tensor)> {
    var i = 0
    return AnyIterator {
      guard i < keys.count else { return nil }
      defer { i += 1 }
      return (keys[i], values[keys[i]]!)
    }
  }

  /// Keys renamed by `transform`; keys mapped to nil are dropped.
  public func mapKeys(_ transform: (String) -> String?) -> StateDict {
    var out = StateDict()
    for (k, v) in self { if let nk = transform(k) { out[nk] = v } }
    return out
  }

  /// The entries under `prefix.`, with the prefix removed.
  public func scoped(_ prefix: String) -> StateDict {
    let p = prefix + "."
    return mapKeys { $0.hasPrefix(p) ? String($0.dropFirst(p.count)) : nil }
  }
}
