import Foundation

/// numpy arrays inside pickles, read and written by value (never executed): an array is
/// `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` given the state
/// `(version, shape, dtype, is_fortran, data)`, where data is a list of Python objects for
/// object arrays and the raw bytes otherwise.
extension PickleValue {
  /// The strings of a 1-D numpy array of objects or of fixed-width unicode ('<U…'), or of a
  /// list or tuple of strings; nil for anything else.
  public var stringArray: [String]? {
    switch self {
    case .list(let list): return strings(list.items)
    case .tuple(let items): return strings(items)
    case .object(let object):
      guard case .global(let module, let name) = object.callable, name == "_reconstruct",
        module.hasSuffix("multiarray"), case .tuple(let state) = object.state, state.count == 5
      else { return nil }
      switch state[4] {
      case .list(let list): return strings(list.items)
      case .bytes(let raw):
        guard case .object(let dtype) = state[2], let code = dtype.arguments.first?.string, code.hasPrefix("U"),
          let width = Int(code.dropFirst()), width > 0
        else { return nil }
        return Self.unicodeStrings(raw, width: width)
      default: return nil
      }
    default: return nil
    }
  }

  /// A 1-D numpy object array of strings, as numpy pickles `np.array(strings, dtype=object)`.
  public static func numpyObjectArray(_ strings: [String]) -> PickleValue {
    let dtype = PickleObject(callable: .global(module: "numpy", name: "dtype"), arguments: [.string("O8"), .bool(false), .bool(true)])
    dtype.state = .tuple([.int(3), .string("|"), .none, .none, .none, .int(-1), .int(-1), .int(63)])
    let array = PickleObject(callable: .global(module: "numpy.core.multiarray", name: "_reconstruct"),
                             arguments: [.global(module: "numpy", name: "ndarray"), .tuple([.int(0)]), .bytes(Array("b".utf8))])
    array.state = .tuple([.int(1), .tuple([.int(strings.count)]), .object(dtype), .bool(false),
                          .list(PickleList(strings.map { .string($0) }))])
    return .object(array)
  }

  /// A 1-D numpy int64 array.
  public static func numpyInt64Array(_ values: [Int]) -> PickleValue {
    let dtype = PickleObject(callable: .global(module: "numpy", name: "dtype"), arguments: [.string("i8"), .bool(false), .bool(true)])
    dtype.state = .tuple([.int(3), .string("<"), .none, .none, .none, .int(-1), .int(-1), .int(0)])
    let array = PickleObject(callable: .global(module: "numpy.core.multiarray", name: "_reconstruct"),
                             arguments: [.global(module: "numpy", name: "ndarray"), .tuple([.int(0)]), .bytes(Array("b".utf8))])
    let raw = values.flatMap { withUnsafeBytes(of: Int64($0).littleEndian, Array.init) }
    array.state = .tuple([.int(1), .tuple([.int(values.count)]), .object(dtype), .bool(false), .bytes(raw)])
    return .object(array)
  }

  /// The value of a numpy scalar (`numpy.core.multiarray.scalar(dtype, bytes)`) or a plain
  /// int, float or bool, as a Double.
  public var number: Double? {
    switch self {
    case .int(let i): return Double(i)
    case .float(let d): return d
    case .bool(let b): return b ? 1 : 0
    case .object(let object):
      guard case .global(_, "scalar") = object.callable, object.arguments.count == 2,
        case .object(let dtype) = object.arguments[0], let code = dtype.arguments.first?.string,
        case .bytes(let raw) = object.arguments[1]
      else { return nil }
      return Self.scalar(raw, code: code)
    default: return nil
    }
  }

  private func strings(_ items: [PickleValue]) -> [String]? {
    let values = items.compactMap(\.string)
    return values.count == items.count ? values : nil
  }

  /// Fixed-width UTF-32LE strings, NUL-padded.
  private static func unicodeStrings(_ raw: [UInt8], width: Int) -> [String]? {
    let stride = 4 * width
    guard raw.count % stride == 0 else { return nil }
    var result: [String] = []
    for start in Swift.stride(from: 0, to: raw.count, by: stride) {
      var scalars = String.UnicodeScalarView()
      for k in 0..<width {
        let p = start + 4 * k
        let value = UInt32(raw[p]) | UInt32(raw[p + 1]) << 8 | UInt32(raw[p + 2]) << 16 | UInt32(raw[p + 3]) << 24
        if value == 0 { break }
        guard let scalar = Unicode.Scalar(value) else { return nil }
        scalars.append(scalar)
      }
      result.append(String(scalars))
    }
    return result
  }

  private static func scalar(_ raw: [UInt8], code: String) -> Double? {
    func bits<T: FixedWidthInteger>(_: T.Type) -> T? {
      guard raw.count == MemoryLayout<T>.size else { return nil }
      return raw.reversed().reduce(T(0)) { $0 << 8 | T($1) }
    }
    switch code {
    case "f8": return bits(UInt64.self).map { Double(bitPattern: $0) }
    case "f4": return bits(UInt32.self).map { Double(Float(bitPattern: $0)) }
    case "i8": return bits(Int64.self).map(Double.init)
    case "i4": return bits(Int32.self).map(Double.init)
    case "b1": return raw.first.map { $0 != 0 ? 1 : 0 }
    default: return nil
    }
  }
}

/// Plain pickle files (Python's `pickle.dump`, e.g. scvi-tools' old `attr.pkl`), read by value.
public enum PickleFile {
  /// With `skippingPersistentIDs`, a persistent id reads as a zero-filled storage of the size it
  /// names (at most 1 MiB; anything else reads as None) instead of being an error: the pickle of a
  /// torch.save archive can be read without the archive.
  public static func load(_ url: URL, skippingPersistentIDs: Bool = false) throws -> PickleValue {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw TorchError.io("cannot read \(url.path): \(error.localizedDescription)")
    }
    var unpickler = Unpickler(data, name: url.lastPathComponent) {
      if skippingPersistentIDs {
        guard case .tuple(let parts) = $0, parts.count >= 5, case .global(_, let typeName) = parts[1],
          let dtype = TorchFile.storageTypes[typeName], let numel = parts[4].int, numel >= 0
        else { return .none }
        return .storage(PickleStorage(dtype: dtype, bytes: Data(count: Swift.min(numel, 1 << 20) * dtype.byteSize)))
      }
      throw TorchError.io("\(url.lastPathComponent): a plain pickle with persistent ids (a torch.save file?)")
    }
    return try unpickler.load()
  }
}

/// pandas objects inside pickles, read by value.
extension PickleValue {
  /// The labels of a pickled pandas Index (`_new_Index(Index, {"data": ndarray, …})`), or the
  /// categories of a pickled Categorical or CategoricalDtype; nil for anything else.
  public var pandasStrings: [String]? {
    guard case .object(let object) = self, case .global(let module, let name) = object.callable,
      module.hasPrefix("pandas")
    else { return nil }
    switch name {
    case "_new_Index":
      guard object.arguments.count >= 2 else { return nil }
      return object.arguments[1]["data"]?.stringArray
    case "CategoricalDtype":
      return object.state["categories"]?.pandasStrings
    default:
      // A Categorical: its state holds the CategoricalDtype first (pandas ≥ 1.x NDArrayBacked).
      if case .tuple(let state) = object.state, let dtype = state.first { return dtype.pandasStrings }
      if let dtype = object.state["_dtype"] { return dtype.pandasStrings }
      return nil
    }
  }
}
