import Foundation

/// Writing files that Python's `torch.load` reads: the zip layout of `torch.save` with a
/// protocol-2 pickle (torch.save's own protocol). Tensors become storages under `data/`; other Python objects are
/// written as `PickleValue.object` reductions (a global called with arguments, then BUILD
/// with its state), so numpy arrays and the like can be described by value.
extension TorchFile {
  /// Writes `value` to `url` atomically (temp file + rename).
  public static func save(_ value: PickleValue, to url: URL) throws {
    var pickler = Pickler()
    try pickler.write(value)
    let archive = url.deletingPathExtension().lastPathComponent
    var zip = ZipWriter()
    zip.add("\(archive)/data.pkl", pickler.bytes)
    zip.add("\(archive)/byteorder", Array("little".utf8))
    for (i, storage) in pickler.storages.enumerated() { zip.add("\(archive)/data/\(i)", storage) }
    zip.add("\(archive)/version", Array("3\n".utf8))
    zip.add("\(archive)/.data/version", Array("3\n".utf8))
    let bytes = zip.finish()
    guard bytes.count < Int(UInt32.max) else { throw TorchError.io("torch.save: archives over 4 GiB (zip64) are not written") }
    try writeAtomically(Data(bytes), to: url)
  }

  /// A state dict as `torch.save(module.state_dict())` writes it (an OrderedDict of tensors).
  public static func save(stateDict: StateDict, to url: URL) throws {
    try save(orderedDict(stateDict.map { (PickleValue.string($0.key), PickleValue.tensor($0.value)) }), to: url)
  }

  /// `collections.OrderedDict(pairs)`.
  public static func orderedDict(_ pairs: [(PickleValue, PickleValue)]) -> PickleValue {
    let object = PickleObject(callable: .global(module: "collections", name: "OrderedDict"), arguments: [])
    for pair in pairs { object.items.entries.append((key: pair.0, value: pair.1)) }
    return .object(object)
  }
}

/// Emits pickle protocol 2, the opcodes Python's own pickler uses for these values.
struct Pickler {
  private(set) var bytes: [UInt8] = [0x80, 2]  // PROTO 2
  /// Raw little-endian bytes of each tensor, in the order their persistent ids were written.
  private(set) var storages: [[UInt8]] = []
  private var depth = 0

  mutating func write(_ value: PickleValue) throws {
    try emit(value)
    bytes.append(0x2E)  // STOP
  }

  private mutating func emit(_ value: PickleValue) throws {
    depth += 1
    defer { depth -= 1 }
    guard depth < 1000 else { throw TorchError.io("torch.save: nesting deeper than 1000 levels") }
    switch value {
    case .none: bytes.append(0x4E)
    case .bool(let b): bytes.append(b ? 0x88 : 0x89)
    case .int(let i): integer(i)
    case .float(let d):
      bytes.append(0x47)  // BINFLOAT, big-endian
      bytes += withUnsafeBytes(of: d.bitPattern.bigEndian, Array.init)
    case .string(let s):
      let utf8 = Array(s.utf8)
      bytes.append(0x58)  // BINUNICODE
      bytes += withUnsafeBytes(of: UInt32(utf8.count).littleEndian, Array.init)
      bytes += utf8
    case .bytes(let b):
      // Protocol 2 has no bytes opcode: Python writes _codecs.encode(latin-1 text, 'latin1').
      global("_codecs", "encode")
      let latin1 = String(String.UnicodeScalarView(b.map { Unicode.Scalar($0) }))
      try emit(.tuple([.string(latin1), .string("latin1")]))
      bytes.append(0x52)
    case .tuple(let items):
      if items.isEmpty {
        bytes.append(0x29)
      } else {
        bytes.append(0x28)
        for item in items { try emit(item) }
        bytes.append(0x74)
      }
    case .list(let list):
      bytes.append(0x5D)  // EMPTY_LIST
      if !list.items.isEmpty {
        bytes.append(0x28)
        for item in list.items { try emit(item) }
        bytes.append(0x65)  // APPENDS
      }
    case .dict(let dict):
      bytes.append(0x7D)  // EMPTY_DICT
      try setItems(dict.entries)
    case .global(let module, let name): global(module, name)
    case .object(let object):
      try emit(object.callable)
      try emit(.tuple(object.arguments))
      bytes.append(0x52)  // REDUCE
      if !object.listItems.items.isEmpty {
        bytes.append(0x28)
        for item in object.listItems.items { try emit(item) }
        bytes.append(0x65)
      }
      try setItems(object.items.entries)
      if case .none = object.state {} else {
        try emit(object.state)
        bytes.append(0x62)  // BUILD
      }
    case .tensor(let tensor): try emitTensor(tensor)
    case .storage: throw TorchError.io("torch.save: a bare storage cannot be written; save the tensor")
    }
  }

  private mutating func setItems(_ entries: [(key: PickleValue, value: PickleValue)]) throws {
    guard !entries.isEmpty else { return }
    bytes.append(0x28)
    for (key, value) in entries {
      try emit(key)
      try emit(value)
    }
    bytes.append(0x75)  // SETITEMS
  }

  private mutating func integer(_ i: Int) {
    if i >= 0 && i < 256 {
      bytes += [0x4B, UInt8(i)]  // BININT1
    } else if i >= Int(Int32.min) && i <= Int(Int32.max) {
      bytes.append(0x4A)  // BININT
      bytes += withUnsafeBytes(of: Int32(i).littleEndian, Array.init)
    } else {
      bytes += [0x8A, 8]  // LONG1, 8 bytes two's complement
      bytes += withUnsafeBytes(of: Int64(i).littleEndian, Array.init)
    }
  }

  private mutating func global(_ module: String, _ name: String) {
    bytes.append(0x63)  // GLOBAL
    bytes += Array("\(module)\n\(name)\n".utf8)
  }

  /// `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`, the
  /// storage a persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel).
  private mutating func emitTensor(_ tensor: Tensor) throws {
    let t = tensor.detach().to(.cpu).contiguous()
    guard let typeName = TorchFile.storageTypes.first(where: { $0.value == t.dtype })?.key else {
      throw TorchError.io("torch.save: tensors of \(t.dtype) are not supported")
    }
    let key = storages.count
    storages.append(t.rawBytes())
    global("torch._utils", "_rebuild_tensor_v2")
    bytes.append(0x28)  // MARK of the argument tuple
    bytes.append(0x28)  // MARK of the persistent id tuple
    try emit(.string("storage"))
    global("torch", typeName)
    try emit(.string(String(key)))
    try emit(.string("cpu"))
    integer(t.count)
    bytes.append(0x74)  // TUPLE
    bytes.append(0x51)  // BINPERSID
    integer(0)
    try emit(.tuple(t.shape.map { .int($0) }))
    var strides: [Int] = []
    var stride = 1
    for size in t.shape.reversed() {
      strides.insert(stride, at: 0)
      stride *= Swift.max(size, 1)
    }
    try emit(.tuple(strides.map { .int($0) }))
    bytes.append(0x89)  // requires_grad False
    global("collections", "OrderedDict")
    bytes.append(0x29)
    bytes.append(0x52)
    bytes.append(0x74)  // TUPLE of the arguments
    bytes.append(0x52)  // REDUCE
  }
}

/// A zip archive of stored (uncompressed) entries with CRC-32, as torch.save writes.
struct ZipWriter {
  private var output: [UInt8] = []
  private var central: [UInt8] = []
  private var count = 0

  mutating func add(_ name: String, _ data: [UInt8]) {
    let nameBytes = Array(name.utf8)
    let crc = Self.crc32(data)
    let offset = output.count
    // Pad the local header's extra field so the data starts on a 64-byte boundary (torch's layout).
    let headerEnd = offset + 30 + nameBytes.count
    let padding = (64 - (headerEnd + 4) % 64) % 64
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
    let extra = u16(0x4654) + u16(padding) + [UInt8](repeating: 0x5A, count: padding)  // "FT" padding field
    output += u32(0x0403_4B50) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(Int(crc)) + u32(data.count)
      + u32(data.count) + u16(nameBytes.count) + u16(extra.count) + nameBytes + extra + data
    central += u32(0x0201_4B50) + u16(20) + u16(20) + u16(0) + u16(0) + u16(0) + u16(0) + u32(Int(crc))
      + u32(data.count) + u32(data.count) + u16(nameBytes.count) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0)
      + u32(offset) + nameBytes
    count += 1
  }

  mutating func finish() -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
    func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16 & 0xFFFF) }
    let directoryOffset = output.count
    output += central
    output += u32(0x0605_4B50) + u16(0) + u16(0) + u16(count) + u16(count) + u32(central.count) + u32(directoryOffset) + u16(0)
    return output
  }

  private static let crcTable: [UInt32] = (0..<256).map { n in
    (0..<8).reduce(UInt32(n)) { c, _ in c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
  }

  static func crc32(_ data: [UInt8]) -> UInt32 {
    ~data.reduce(~UInt32(0)) { crcTable[Int(($0 ^ UInt32($1)) & 0xFF)] ^ ($0 >> 8) }
  }
}
