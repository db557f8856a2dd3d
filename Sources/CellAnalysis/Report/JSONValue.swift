import Foundation

/// A JSON value that keeps the key order of objects (reports show settings in file order).
enum JSONValue: Equatable {
  case null
  case bool(Bool)
  case number(Double)
  case string(String)
  case array([JSONValue])
  case object([(String, JSONValue)])

  static func == (a: JSONValue, b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.number(let x), .number(let y)): return x == y
    case (.string(let x), .string(let y)): return x == y
    case (.array(let x), .array(let y)): return x == y
    case (.object(let x), .object(let y)): return x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
    default: return false
    }
  }

  static func parse(_ data: Data, name: String) throws -> JSONValue {
    var parser = JSONParser(bytes: Array(data), name: name)
    let value = try parser.value()
    parser.skipSpace()
    guard parser.index == parser.bytes.count else { throw parser.error("unexpected text after the JSON value") }
    return value
  }

  /// Compact display text: numbers with up to 6 significant digits; arrays longer than 8
  /// show their first 5 items and their length; at most 300 characters.
  var displayText: String {
    let text = fullText
    return text.count > 300 ? String(text.prefix(299)) + "…" : text
  }

  private var fullText: String {
    switch self {
    case .null: return "null"
    case .bool(let b): return b ? "true" : "false"
    case .number(let x): return displayNumber(x)
    case .string(let s): return s
    case .array(let items) where items.count > 1 && items.allSatisfy({ if case .object = $0 { true } else { false } }):
      return "(\(items.count) objects)"
    case .array(let items) where items.count > 8:
      return "[" + items.prefix(5).map(\.inlineText).joined(separator: ", ") + ", …] (\(items.count) items)"
    case .array(let items): return "[" + items.map(\.inlineText).joined(separator: ", ") + "]"
    case .object(let fields): return "{" + fields.map { "\($0.0): \($0.1.inlineText)" }.joined(separator: ", ") + "}"
    }
  }

  private var inlineText: String {
    if case .string(let s) = self { return "\"\(s)\"" }
    return fullText
  }

  /// Scalars and arrays as rows; nested objects flattened with dotted keys.
  func flattened(prefix: String = "") -> [(String, JSONValue)] {
    guard case .object(let fields) = self else { return [(prefix, self)] }
    return fields.flatMap { key, value -> [(String, JSONValue)] in
      let path = prefix.isEmpty ? key : "\(prefix).\(key)"
      if case .object(let inner) = value, !inner.isEmpty { return value.flattened(prefix: path) }
      return [(path, value)]
    }
  }
}

/// Integers as integers; other values with up to 6 significant digits.
func displayNumber(_ x: Double) -> String {
  guard x.isFinite else { return x.isNaN ? "NaN" : (x > 0 ? "inf" : "-inf") }
  if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
  return String(format: "%.6g", x)
}

private struct JSONParser {
  let bytes: [UInt8]
  let name: String
  var index = 0

  init(bytes: [UInt8], name: String) {
    self.bytes = bytes
    self.name = name
  }

  func error(_ message: String) -> PlotError { PlotError("\(name): invalid JSON at byte \(index): \(message)") }

  mutating func skipSpace() {
    while index < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[index]) { index += 1 }
  }

  mutating func value() throws -> JSONValue {
    skipSpace()
    guard index < bytes.count else { throw error("unexpected end of input") }
    switch bytes[index] {
    case UInt8(ascii: "{"): return try object()
    case UInt8(ascii: "["): return try array()
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "t"): try literal("true"); return .bool(true)
    case UInt8(ascii: "f"): try literal("false"); return .bool(false)
    case UInt8(ascii: "n"): try literal("null"); return .null
    case UInt8(ascii: "N"): try literal("NaN"); return .number(.nan)  // Python's json writes NaN
    default: return .number(try number())
    }
  }

  private mutating func literal(_ word: String) throws {
    let w = Array(word.utf8)
    guard index + w.count <= bytes.count, Array(bytes[index..<index + w.count]) == w else { throw error("expected \(word)") }
    index += w.count
  }

  private mutating func number() throws -> Double {
    let start = index
    while index < bytes.count, "+-0123456789.eEInfinity".utf8.contains(bytes[index]) { index += 1 }
    let text = String(decoding: bytes[start..<index], as: UTF8.self)
    switch text {
    case "Infinity": return .infinity
    case "-Infinity": return -.infinity
    default:
      guard let v = Double(text), !text.isEmpty else { throw error("expected a value") }
      return v
    }
  }

  private mutating func string() throws -> String {
    index += 1
    var out: [UInt8] = []
    while index < bytes.count {
      let c = bytes[index]
      index += 1
      if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
      guard c == UInt8(ascii: "\\") else {
        out.append(c)
        continue
      }
      guard index < bytes.count else { break }
      let e = bytes[index]
      index += 1
      switch e {
      case UInt8(ascii: "n"): out.append(0x0a)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "r"): out.append(0x0d)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0c)
      case UInt8(ascii: "u"):
        var code = try hex4()
        if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
           bytes[index + 1] == UInt8(ascii: "u") {
          index += 2
          let low = try hex4()
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        }
        out += Array(String(Character(Unicode.Scalar(code) ?? "\u{FFFD}")).utf8)
      default: out.append(e)
      }
    }
    throw error("unterminated string")
  }

  private mutating func hex4() throws -> UInt32 {
    guard index + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16) else {
      throw error("bad \\u escape")
    }
    index += 4
    return v
  }

  private mutating func array() throws -> JSONValue {
    index += 1
    var items: [JSONValue] = []
    skipSpace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
    while true {
      items.append(try value())
      skipSpace()
      guard index < bytes.count else { throw error("unterminated array") }
      let c = bytes[index]
      index += 1
      if c == UInt8(ascii: "]") { return .array(items) }
      guard c == UInt8(ascii: ",") else { throw error("expected , or ]") }
    }
  }

  private mutating func object() throws -> JSONValue {
    index += 1
    var fields: [(String, JSONValue)] = []
    skipSpace()
    if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(fields) }
    while true {
      skipSpace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a key") }
      let key = try string()
      skipSpace()
      guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected :") }
      index += 1
      fields.append((key, try value()))
      skipSpace()
      guard index < bytes.count else { throw error("unterminated object") }
      let c = bytes[index]
      index += 1
      if c == UInt8(ascii: "}") { return .object(fields) }
      guard c == UInt8(ascii: ",") else { throw error("expected , or }") }
    }
  }
}
