import Foundation

/// A Python object read from a pickle. Containers are reference boxes, so objects shared
/// through the pickle memo stay shared.
public enum PickleValue {
  case none
  case bool(Bool)
  case int(Int)
  case float(Double)
  case string(String)
  case bytes([UInt8])
  case tuple([PickleValue])
  case list(PickleList)
  case dict(PickleDict)
  /// A reference to a Python global, e.g. `numpy.dtype`.
  case global(module: String, name: String)
  /// An object built by calling a global (REDUCE/NEWOBJ) and then given a state (BUILD).
  case object(PickleObject)
  case tensor(Tensor)
  case storage(PickleStorage)

  public var string: String? { if case .string(let s) = self { return s } else { return nil } }
  public var int: Int? { if case .int(let i) = self { return i } else { return nil } }
  public var tensor: Tensor? { if case .tensor(let t) = self { return t } else { return nil } }
  /// A dict, or the items of a dict subclass (collections.defaultdict and the like).
  public var dict: PickleDict? {
    switch self {
    case .dict(let d): return d
    case .object(let o) where !o.items.entries.isEmpty || o.isDefaultDict: return o.items
    default: return nil
    }
  }

  /// The entries of a dict (or an OrderedDict) keyed by string.
  public subscript(key: String) -> PickleValue? { dict?.value(forKey: key) }
}

public final class PickleList {
  public var items: [PickleValue] = []
  public init(_ items: [PickleValue] = []) { self.items = items }
}

public final class PickleDict {
  public var entries: [(key: PickleValue, value: PickleValue)] = []
  public init(_ entries: [(key: PickleValue, value: PickleValue)] = []) { self.entries = entries }
  public func value(forKey key: String) -> PickleValue? {
    entries.last { $0.key.string == key }?.value
  }
}

public final class PickleObject {
  public let callable: PickleValue
  public let arguments: [PickleValue]
  public var state: PickleValue = .none
  /// Items set on the object by SETITEMS/APPENDS (dict or list subclasses).
  public let items = PickleDict()
  public let listItems = PickleList()
  var isDefaultDict: Bool {
    if case .global("collections", "defaultdict") = callable { return true }
    return false
  }
  public init(callable: PickleValue, arguments: [PickleValue]) {
    self.callable = callable
    self.arguments = arguments
  }
}

/// A torch storage referenced by a persistent id: its dtype and raw bytes.
public final class PickleStorage {
  public let dtype: DType
  public let bytes: Data
  lazy var tensor: Tensor = bytes.withUnsafeBytes {
    Tensor(rawBytes: $0, shape: [bytes.count / dtype.byteSize], dtype: dtype)
  }
  init(dtype: DType, bytes: Data) {
    self.dtype = dtype
    self.bytes = bytes
  }
}

/// A pickle virtual machine for the subset of opcodes that Python's pickler emits for
/// protocols 0–5 (torch.save uses 2). Torch storages come from `persistentLoad`; tensors are
/// rebuilt from `torch._utils._rebuild_tensor_v2`. Other globals become `PickleObject`s.
struct Unpickler {
  private let bytes: [UInt8]
  private var position = 0
  private var stack: [PickleValue] = []
  private var marks: [Int] = []
  private var memo: [Int: PickleValue] = [:]
  private let name: String
  private let persistentLoad: (PickleValue) throws -> PickleValue

  init(_ data: Data, name: String, persistentLoad: @escaping (PickleValue) throws -> PickleValue) {
    bytes = [UInt8](data)
    self.name = name
    self.persistentLoad = persistentLoad
  }

  private func corrupt(_ why: String) -> TorchError { .io("\(name): unreadable pickle: \(why)") }

  private mutating func read(_ n: Int) throws -> ArraySlice<UInt8> {
    guard n >= 0, n <= bytes.count - position else { throw corrupt("unexpected end of data (truncated?)") }
    defer { position += n }
    return bytes[position..<(position + n)]
  }
  private mutating func readUInt(_ n: Int) throws -> Int {
    try read(n).reversed().reduce(0) { $0 << 8 | Int($1) }
  }
  private mutating func readLine() throws -> String {
    guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw corrupt("unterminated line") }
    defer { position = end + 1 }
    return String(decoding: bytes[position..<end], as: UTF8.self)
  }
  private mutating func pop() throws -> PickleValue {
    guard let v = stack.popLast() else { throw corrupt("stack underflow") }
    return v
  }
  private mutating func popMark() throws -> [PickleValue] {
    guard let mark = marks.popLast(), mark <= stack.count else { throw corrupt("missing MARK") }
    defer { stack.removeSubrange(mark...) }
    return Array(stack[mark...])
  }
  private mutating func top() throws -> PickleValue {
    guard let v = stack.last else { throw corrupt("stack underflow") }
    return v
  }

  /// Runs the pickle and checks what it built: nesting at most `maxDepth` deep, no container
  /// that contains itself, so code that walks the result recursively cannot overflow the stack.
  /// On failure, what was built is taken apart without recursion before it is released (a
  /// chain nested a million deep would otherwise overflow the stack while being freed).
  mutating func load() throws -> PickleValue {
    var result: PickleValue = .none
    defer {
      stack.removeAll()
      memo.removeAll()
    }
    do {
      result = try run()
      // The memo may hold values the result no longer reaches; they are released too.
      try PickleValue.checkShape(.tuple([result] + stack + Array(memo.values)), maxDepth: Self.maxDepth,
                                 maxVisits: 64 * bytes.count + 1_000_000, name: name)
    } catch {
      PickleValue.dismantle([result] + stack + Array(memo.values))
      throw error
    }
    return result
  }

  static let maxDepth = 512

  private mutating func run() throws -> PickleValue {
    while true {
      let op = try read(1).first!
      switch op {
      case 0x80: _ = try read(1)  // PROTO
      case 0x95: _ = try read(8)  // FRAME
      case 0x28: marks.append(stack.count)  // MARK
      case 0x2E: return try pop()  // STOP
      case 0x4E: stack.append(.none)
      case 0x88: stack.append(.bool(true))
      case 0x89: stack.append(.bool(false))
      case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try readUInt(4)))))  // BININT
      case 0x4B: stack.append(.int(try readUInt(1)))  // BININT1
      case 0x4D: stack.append(.int(try readUInt(2)))  // BININT2
      case 0x8A, 0x8B:  // LONG1, LONG4
        let n = try readUInt(op == 0x8A ? 1 : 4)
        guard n <= 8 else { throw corrupt("integer wider than 64 bits") }
        let raw = try read(n)
        var value = raw.reversed().reduce(0) { $0 << 8 | Int($1) }
        if n > 0 && n < 8 && raw.last! & 0x80 != 0 { value -= 1 << (8 * n) }
        stack.append(.int(value))
      case 0x49:  // INT (text)
        let line = try readLine()
        stack.append(line == "01" ? .bool(true) : line == "00" ? .bool(false) : .int(Int(line) ?? 0))
      case 0x4C: stack.append(.int(Int(try readLine().dropLast()) ?? 0))  // LONG (text)
      case 0x47: stack.append(.float(Double(bitPattern: try readUInt64BigEndian())))  // BINFLOAT
      case 0x46: stack.append(.float(Double(try readLine()) ?? .nan))  // FLOAT (text)
      case 0x58, 0x8C, 0x8D:  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        let n = try readUInt(op == 0x58 ? 4 : op == 0x8C ? 1 : 8)
        stack.append(.string(String(decoding: try read(n), as: UTF8.self)))
      case 0x54, 0x55:  // BINSTRING, SHORT_BINSTRING
        let n = try readUInt(op == 0x54 ? 4 : 1)
        stack.append(.string(String(try read(n).map { Character(Unicode.Scalar($0)) })))
      case 0x42, 0x43, 0x8E, 0x96:  // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
        let n = try readUInt(op == 0x42 ? 4 : op == 0x43 ? 1 : 8)
        stack.append(.bytes(Array(try read(n))))
      case 0x5D: stack.append(.list(PickleList()))  // EMPTY_LIST
      case 0x7D: stack.append(.dict(PickleDict()))  // EMPTY_DICT
      case 0x29: stack.append(.tuple([]))  // EMPTY_TUPLE
      case 0x8F: stack.append(.list(PickleList()))  // EMPTY_SET (as a list)
      case 0x6C:  // LIST
        let list = PickleList()
        list.items = try popMark()
        stack.append(.list(list))
      case 0x74: stack.append(.tuple(try popMark()))  // TUPLE
      case 0x85: stack.append(.tuple([try pop()]))
      case 0x86:
        let b = try pop(), a = try pop()
        stack.append(.tuple([a, b]))
      case 0x87:
        let c = try pop(), b = try pop(), a = try pop()
        stack.append(.tuple([a, b, c]))
      case 0x64:  // DICT
        let items = try popMark()
        let dict = PickleDict()
        for i in stride(from: 0, to: items.count - 1, by: 2) { dict.entries.append((items[i], items[i + 1])) }
        stack.append(.dict(dict))
      case 0x61:  // APPEND
        let v = try pop()
        try append([v], to: try top())
      case 0x65, 0x90:  // APPENDS, ADDITEMS
        let items = try popMark()
        try append(items, to: try top())
      case 0x91:  // FROZENSET
        let list = PickleList()
        list.items = try popMark()
        stack.append(.list(list))
      case 0x73:  // SETITEM
        let v = try pop(), k = try pop()
        try setItems([k, v], on: try top())
      case 0x75:  // SETITEMS
        let items = try popMark()
        try setItems(items, on: try top())
      case 0x63:  // GLOBAL
        let module = try readLine(), name = try readLine()
        stack.append(.global(module: module, name: name))
      case 0x93:  // STACK_GLOBAL
        let name = try pop(), module = try pop()
        guard let m = module.string, let n = name.string else { throw corrupt("STACK_GLOBAL needs strings") }
        stack.append(.global(module: m, name: n))
      case 0x52:  // REDUCE
        let args = try pop(), callable = try pop()
        guard case .tuple(let arguments) = args else { throw corrupt("REDUCE arguments are not a tuple") }
        stack.append(try call(callable, arguments))
      case 0x81:  // NEWOBJ
        let args = try pop(), cls = try pop()
        guard case .tuple(let arguments) = args else { throw corrupt("NEWOBJ arguments are not a tuple") }
        stack.append(try call(cls, arguments))
      case 0x92:  // NEWOBJ_EX
        _ = try pop()
        let args = try pop(), cls = try pop()
        guard case .tuple(let arguments) = args else { throw corrupt("NEWOBJ_EX arguments are not a tuple") }
        stack.append(try call(cls, arguments))
      case 0x62:  // BUILD
        let state = try pop()
        if case .object(let object) = try top() { object.state = state }
      case 0x51: stack.append(try persistentLoad(try pop()))  // BINPERSID
      case 0x50: stack.append(try persistentLoad(.string(try readLine())))  // PERSID
      case 0x71: memo[try readUInt(1)] = try top()  // BINPUT
      case 0x72: memo[try readUInt(4)] = try top()  // LONG_BINPUT
      case 0x70: memo[Int(try readLine()) ?? -1] = try top()  // PUT
      case 0x94: memo[memo.count] = try top()  // MEMOIZE
      case 0x68, 0x6A, 0x67:  // BINGET, LONG_BINGET, GET
        let key = op == 0x68 ? try readUInt(1) : op == 0x6A ? try readUInt(4) : Int(try readLine()) ?? -1
        guard let v = memo[key] else { throw corrupt("memo key \(key) missing") }
        stack.append(v)
      case 0x30: _ = try pop()  // POP
      case 0x31: _ = try popMark()  // POP_MARK
      case 0x32: stack.append(try top())  // DUP
      default:
        throw corrupt(String(format: "unsupported opcode 0x%02x at byte %d", op, position - 1))
      }
    }
  }

  /// Eight bytes, big-endian (a negative double has the top bit set: not an Int).
  private mutating func readUInt64BigEndian() throws -> UInt64 {
    try read(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
  }

  private func append(_ items: [PickleValue], to target: PickleValue) throws {
    switch target {
    case .list(let list): list.items += items
    case .object(let object): object.listItems.items += items
    default: throw corrupt("APPEND to a non-list")
    }
  }

  private func setItems(_ items: [PickleValue], on target: PickleValue) throws {
    let dict: PickleDict
    switch target {
    case .dict(let d): dict = d
    case .object(let object): dict = object.items
    default: throw corrupt("SETITEM on a non-dict")
    }
    for i in stride(from: 0, to: items.count - 1, by: 2) { dict.entries.append((items[i], items[i + 1])) }
  }

  /// Calls a global: the few that matter become values, the rest opaque objects.
  private func call(_ callable: PickleValue, _ args: [PickleValue]) throws -> PickleValue {
    guard case .global(let module, let name) = callable else {
      return .object(PickleObject(callable: callable, arguments: args))
    }
    switch (module, name) {
    case ("collections", "OrderedDict"):
      let dict = PickleDict()
      if case .list(let pairs)? = args.first {
        for case .tuple(let kv) in pairs.items where kv.count == 2 { dict.entries.append((kv[0], kv[1])) }
      }
      return .dict(dict)
    case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"):
      return .tensor(try rebuildTensor(args))
    case ("_codecs", "encode"):
      // Protocol 2's bytes: the latin-1 code points of a text.
      guard args.count == 2, let text = args[0].string, args[1].string == "latin1" else {
        return .object(PickleObject(callable: callable, arguments: args))
      }
      let scalars = text.unicodeScalars.map(\.value)
      guard scalars.allSatisfy({ $0 < 256 }) else { throw corrupt("_codecs.encode: text is not latin-1") }
      return .bytes(scalars.map { UInt8($0) })
    case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
      guard let data = args.first else { throw corrupt("_rebuild_parameter without data") }
      return data
    default:
      return .object(PickleObject(callable: callable, arguments: args))
    }
  }

  /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks, …)`.
  private func rebuildTensor(_ args: [PickleValue]) throws -> Tensor {
    guard args.count >= 4, case .storage(let storage) = args[0], let offset = args[1].int,
      case .tuple(let sizeValues) = args[2], case .tuple(let strideValues) = args[3]
    else { throw corrupt("unexpected _rebuild_tensor_v2 arguments") }
    let size = sizeValues.compactMap(\.int), stride = strideValues.compactMap(\.int)
    guard size.count == sizeValues.count, stride.count == size.count, size.count <= 64 else { throw corrupt("bad tensor size/stride") }
    guard offset >= 0, size.allSatisfy({ $0 >= 0 }), stride.allSatisfy({ $0 >= 0 }) else {
      throw corrupt("tensor with a negative size, stride or offset (\(size), \(stride), \(offset))")
    }
    let elements = storage.bytes.count / storage.dtype.byteSize
    // Sizes and strides come from the file: every product is checked, and the tensor may not
    // hold more elements than its storage (a zero stride repeats values; that stays bounded too).
    var extent = offset, count = 1, overflow = false
    for (n, s) in zip(size, stride) where n > 0 {
      let (span, o1) = (n - 1).multipliedReportingOverflow(by: s)
      let (sum, o2) = extent.addingReportingOverflow(span)
      let (product, o3) = count.multipliedReportingOverflow(by: n)
      overflow = overflow || o1 || o2 || o3
      (extent, count) = (sum, product)
    }
    guard size.contains(0) || (!overflow && extent < elements && count <= Swift.max(elements, 1) * 64) else {
      throw corrupt("tensor of size \(size) and stride \(stride) does not fit its storage of \(elements) elements")
    }
    return try withTorchErrors { storage.tensor.asStrided(size, stride: stride, offset: offset).contiguous() }
  }
}

extension PickleValue {
  /// Walks the object graph without recursion: nesting deeper than `maxDepth`, a container that
  /// contains itself, or more than `maxVisits` visits (values shared many times over) is an error.
  static func checkShape(_ root: PickleValue, maxDepth: Int, maxVisits: Int, name: String) throws {
    func fail(_ why: String) -> TorchError { .io("\(name): unreadable pickle: \(why)") }
    func identity(_ value: PickleValue) -> ObjectIdentifier? {
      switch value {
      case .list(let l): return ObjectIdentifier(l)
      case .dict(let d): return ObjectIdentifier(d)
      case .object(let o): return ObjectIdentifier(o)
      default: return nil
      }
    }
    func children(_ value: PickleValue) -> [PickleValue] {
      switch value {
      case .tuple(let items): return items
      case .list(let l): return l.items
      case .dict(let d): return d.entries.flatMap { [$0.key, $0.value] }
      case .object(let o):
        return [o.callable] + o.arguments + [o.state] + o.listItems.items + o.items.entries.flatMap { [$0.key, $0.value] }
      default: return []
      }
    }
    // Depth-first with an explicit stack; a frame is (value, next child index, its children).
    var stack: [(value: PickleValue, next: Int, children: [PickleValue])] = [(root, 0, children(root))]
    var onPath = Set<ObjectIdentifier>(), done = Set<ObjectIdentifier>()
    if let id = identity(root) { onPath.insert(id) }
    var visits = 0
    while !stack.isEmpty {
      let top = stack.count - 1
      if stack[top].next == stack[top].children.count {
        if let id = identity(stack[top].value) { onPath.remove(id); done.insert(id) }
        stack.removeLast()
        continue
      }
      let child = stack[top].children[stack[top].next]
      stack[top].next += 1
      visits += 1
      guard visits <= maxVisits else { throw fail("too many shared values (over \(maxVisits) visits)") }
      if let id = identity(child) {
        if onPath.contains(id) { throw fail("a container that contains itself") }
        if done.contains(id) { continue }
        onPath.insert(id)
      }
      guard stack.count < maxDepth else { throw fail("nesting deeper than \(maxDepth) levels") }
      stack.append((child, 0, children(child)))
    }
  }

  /// Empties every container reachable from `values`, iteratively: each child is held by the
  /// work list before its parent lets go of it, so no release recurses (and cycles are broken).
  static func dismantle(_ values: [PickleValue]) {
    var work = values
    while let value = work.popLast() {
      switch value {
      case .tuple(let items): work += items
      case .list(let l):
        work += l.items
        l.items = []
      case .dict(let d):
        work += d.entries.flatMap { [$0.key, $0.value] }
        d.entries = []
      case .object(let o):
        work += o.arguments + [o.callable, o.state] + o.listItems.items + o.items.entries.flatMap { [$0.key, $0.value] }
        o.state = .none
        o.listItems.items = []
        o.items.entries = []
      default: break
      }
    }
  }
}
