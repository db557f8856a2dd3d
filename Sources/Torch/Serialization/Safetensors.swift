import Foundation
import CTorch

/// Reading and writing the safetensors format: an 8-byte little-endian header length,
/// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {…}}, then the data.
public enum Safetensors {
  static let dtypeNames: [DType: String] = [
    .float32: "F32", .float64: "F64", .bfloat16: "BF16", .float16: "F16", .int64: "I64", .int32: "I32",
    .bool: "BOOL", .uint8: "U8",
  ]

  /// Reads every tensor of a .safetensors file (CPU, original dtype) and its metadata.
  public static func read(_ url: URL) throws -> (tensors: StateDict, metadata: [String: String]) {
    let data: Data
    do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
      throw TorchError.io("cannot read \(url.path): \(error.localizedDescription)")
    }
    return try decode(data, name: url.lastPathComponent)
  }

  public static func decode(_ data: Data, name: String = "safetensors data") throws
    -> (tensors: StateDict, metadata: [String: String])
  {
    func corrupt(_ why: String) -> TorchError { .io("\(name) is not a valid safetensors file: \(why)") }
    guard data.count >= 8 else { throw corrupt("shorter than its 8-byte header length") }
    let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard headerLength <= UInt64(data.count - 8) else {
      throw corrupt("header length \(headerLength) exceeds the file (\(data.count) bytes); truncated?")
    }
    let headerData = data.subdata(in: 8..<(8 + Int(headerLength)))
    guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
      throw corrupt("header is not a JSON object")
    }
    let bodyStart = 8 + Int(headerLength)
    let bodyLength = data.count - bodyStart
    var metadata: [String: String] = [:]
    var entries: [(name: String, start: Int, tensor: Tensor)] = []
    for (key, value) in header {
      if key == "__metadata__" {
        metadata = (value as? [String: String]) ?? [:]
        continue
      }
      guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
        let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
      else { throw corrupt("bad entry for '\(key)'") }
      guard let dtype = dtypeNames.first(where: { $0.value == dtypeName })?.key else {
        throw corrupt("unsupported dtype \(dtypeName) for '\(key)'")
      }
      let (start, end) = (offsets[0], offsets[1])
      guard start >= 0, start <= end, end <= bodyLength else {
        throw corrupt("data offsets of '\(key)' lie outside the data (truncated?)")
      }
      // The element count is multiplied with overflow checks: a shape never allocates beyond the data.
      let elements = shape.reduce((value: 1, overflow: false)) { acc, d in
        let (v, o) = acc.value.multipliedReportingOverflow(by: d)
        return (v, acc.overflow || o || d < 0)
      }
      let (byteCount, overflow) = elements.value.multipliedReportingOverflow(by: dtype.byteSize)
      guard !elements.overflow, !overflow, shape.count <= 64, byteCount == end - start else {
        throw corrupt("'\(key)' has \(end - start) bytes, which does not match shape \(shape) of \(dtypeName)")
      }
      let tensor = data.withUnsafeBytes { raw in
        Tensor(rawBytes: UnsafeRawBufferPointer(rebasing: raw[(bodyStart + start)..<(bodyStart + end)]),
               shape: shape, dtype: dtype)
      }
      entries.append((key, start, tensor))
    }
    // Keep the file's data order, which is the order the writer gave.
    var dict = StateDict()
    for e in entries.sorted(by: { ($0.start, $0.name) < ($1.start, $1.name) }) { dict[e.name] = e.tensor }
    return (dict, metadata)
  }

  /// Writes `tensors` atomically (temporary file, then rename).
  public static func write(_ tensors: StateDict, metadata: [String: String] = [:], to url: URL) throws {
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var chunks: [[UInt8]] = []
    var offset = 0
    for (name, tensor) in tensors {
      let cpu = tensor.detach().to(.cpu).contiguous()
      guard let dtypeName = dtypeNames[cpu.dtype] else { throw TorchError.invalidArgument("cannot store \(cpu.dtype)") }
      let bytes = cpu.rawBytes()
      header[name] = ["dtype": dtypeName, "shape": cpu.shape, "data_offsets": [offset, offset + bytes.count]]
      chunks.append(bytes)
      offset += bytes.count
    }
    var headerBytes = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
    while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
    var out = Data(capacity: 8 + headerBytes.count + offset)
    withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: headerBytes)
    for chunk in chunks { out.append(contentsOf: chunk) }
    try writeAtomically(out, to: url)
  }
}

/// Writes `data` to a temporary file beside `url`, then renames it into place.
public func writeAtomically(_ data: Data, to url: URL) throws {
  let temporary = url.deletingLastPathComponent()
    .appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
  do {
    try data.write(to: temporary)
    // rename(2) replaces an existing file atomically (Foundation's replaceItemAt on Linux can
    // fail after removing the original).
    guard rename(temporary.path, url.path) == 0 else {
      throw TorchError.io(String(cString: strerror(errno)))
    }
  } catch {
    try? FileManager.default.removeItem(at: temporary)
    throw TorchError.io("cannot write \(url.path): \(error.localizedDescription)")
  }
}

extension Tensor {
  /// A CPU tensor holding a copy of raw little-endian element bytes.
  convenience init(rawBytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) {
    let dims = shape.map(Int64.init)
    // Empty buffers may have a nil base address; the shim copies nothing then.
    var placeholder: UInt8 = 0
    let h = withUnsafeMutablePointer(to: &placeholder) { fallback in
      ct_from_data(rawBytes.baseAddress ?? UnsafeRawPointer(fallback), dims, Int32(dims.count), dtype.code)
    }
    self.init(handle: wrap(h).detachHandle())
  }

  /// The elements' raw bytes (row-major, CPU copy).
  func rawBytes() -> [UInt8] {
    let n = count * dtype.byteSize
    guard n > 0 else { return [] }
    return [UInt8](unsafeUninitializedCapacity: n) { buffer, initialized in
      withHandle { check(ct_copy_to_buffer($0, buffer.baseAddress, Int64(n))) }
      initialized = n
    }
  }
}
