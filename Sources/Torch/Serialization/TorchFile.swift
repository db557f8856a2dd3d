import Foundation

/// Files written by Python's `torch.save` (the zip format, the default since PyTorch 1.6).
public enum TorchFile {
  static let storageTypes: [String: DType] = [
    "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
    "LongStorage": .int64, "IntStorage": .int32, "BoolStorage": .bool, "ByteStorage": .uint8,
  ]

  /// The whole pickled object: dicts, lists, tensors, and opaque Python objects.
  public static func load(_ url: URL) throws -> PickleValue {
    let data: Data
    do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
      throw TorchError.io("cannot read \(url.path): \(error.localizedDescription)")
    }
    let name = url.lastPathComponent
    guard data.count >= 4, data.prefix(2) == Data("PK".utf8) else {
      throw TorchError.io("\(name) is not a zip-format torch.save file (legacy pickle files are not supported)")
    }
    let archive = try ZipArchive(data, name: name)
    guard let pickleEntry = archive.entries.keys.filter({ $0.hasSuffix("data.pkl") }).min(by: { $0.count < $1.count })
    else { throw TorchError.io("\(name): no data.pkl in the archive") }
    let root = String(pickleEntry.dropLast("data.pkl".count))
    var storages: [String: PickleStorage] = [:]
    var unpickler = Unpickler(try archive.contents(of: pickleEntry), name: name) { pid in
      // ('storage', torch.<Type>Storage, key, location, numel)
      guard case .tuple(let parts) = pid, parts.count >= 3, parts[0].string == "storage",
        case .global(_, let typeName) = parts[1], let key = parts[2].string
      else { throw TorchError.io("\(name): unsupported persistent id") }
      guard let dtype = storageTypes[typeName] else { throw TorchError.io("\(name): unsupported storage \(typeName)") }
      if let cached = storages[key] { return .storage(cached) }
      let storage = PickleStorage(dtype: dtype, bytes: try archive.contents(of: "\(root)data/\(key)"))
      storages[key] = storage
      return .storage(storage)
    }
    return try unpickler.load()
  }

  /// The tensors of a `torch.save` file, flattened with "." keys (a state dict, or nested
  /// dicts such as scvi-tools' {"model_state_dict": …}); non-tensor values are skipped.
  public static func loadStateDict(_ url: URL) throws -> StateDict {
    var dict = StateDict()
    func flatten(_ value: PickleValue, _ prefix: String) {
      let join = { (key: String) in prefix.isEmpty ? key : "\(prefix).\(key)" }
      switch value {
      case .tensor(let t): dict[prefix] = t
      case .dict(let d):
        for (k, v) in d.entries {
          switch k {
          case .string(let s): flatten(v, join(s))
          case .int(let i): flatten(v, join(String(i)))
          default: continue
          }
        }
      case .list(let l): for (i, v) in l.items.enumerated() { flatten(v, join(String(i))) }
      case .tuple(let items): for (i, v) in items.enumerated() { flatten(v, join(String(i))) }
      default: break
      }
    }
    flatten(try load(url), "")
    return dict
  }
}
