import Foundation

/// A read-only view of an uncompressed ("stored") zip archive, the layout `torch.save`
/// writes. Compressed entries are reported as errors.
struct ZipArchive {
  struct Entry {
    let name: String
    let method: UInt16
    let size: Int
    let localHeaderOffset: Int
  }

  let data: Data
  let entries: [String: Entry]
  let name: String

  init(_ data: Data, name: String) throws {
    self.data = data
    self.name = name
    func corrupt(_ why: String) -> TorchError { .io("\(name) is not a readable torch.save archive: \(why)") }
    let bytes = [UInt8](data)
    // Every offset read from the file is checked before use: out of range is "truncated".
    func u16(_ at: Int) throws -> Int {
      guard at >= 0, at <= bytes.count - 2 else { throw corrupt("truncated") }
      return Int(bytes[at]) | Int(bytes[at + 1]) << 8
    }
    func u32(_ at: Int) throws -> Int {
      guard at >= 0, at <= bytes.count - 4 else { throw corrupt("truncated") }
      return try u16(at) | (try u16(at + 2)) << 16
    }
    func u64(_ at: Int) throws -> Int {
      guard at >= 0, at <= bytes.count - 8 else { throw corrupt("truncated") }
      let value = UInt64(try u32(at)) | UInt64(try u32(at + 4)) << 32
      guard value <= UInt64(bytes.count) else { throw corrupt("a 64-bit size or offset \(value) beyond the file (\(bytes.count) bytes)") }
      return Int(value)
    }

    // End of central directory: the last "PK\5\6" within 64 KiB of the end.
    var eocd = -1
    var i = bytes.count - 22
    while i >= Swift.max(0, bytes.count - 22 - 65_535) {
      if bytes[i] == 0x50 && bytes[i + 1] == 0x4B && bytes[i + 2] == 5 && bytes[i + 3] == 6 { eocd = i; break }
      i -= 1
    }
    guard eocd >= 0 else { throw corrupt("no end-of-central-directory record (truncated?)") }
    var count = try u16(eocd + 10)
    var directoryOffset = try u32(eocd + 16)
    // Zip64: the locator sits just before the classic record.
    if count == 0xFFFF || directoryOffset == 0xFFFF_FFFF, eocd >= 20, try u32(eocd - 20) == 0x0706_4B50 {
      let record = try u64(eocd - 20 + 8)
      count = try u64(record + 32)
      directoryOffset = try u64(record + 48)
    }
    var entries: [String: Entry] = [:]
    var p = directoryOffset
    // Each central directory entry takes at least 46 bytes: a count beyond that is corrupt.
    guard count >= 0, count <= bytes.count / 46 + 1 else { throw corrupt("\(count) entries cannot fit in \(bytes.count) bytes") }
    for _ in 0..<count {
      guard try u32(p) == 0x0201_4B50 else { throw corrupt("bad central directory entry") }
      let method = UInt16(try u16(p + 10))
      var size = try u32(p + 24)
      let nameLength = try u16(p + 28), extraLength = try u16(p + 30), commentLength = try u16(p + 32)
      var offset = try u32(p + 42)
      guard p <= bytes.count - 46 - nameLength else { throw corrupt("truncated") }
      let entryName = String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
      // Zip64 extra field (id 1) holds 64-bit sizes/offsets that overflowed.
      var e = p + 46 + nameLength
      while e + 4 <= p + 46 + nameLength + extraLength {
        let id = try u16(e), length = try u16(e + 2)
        if id == 1 {
          var q = e + 4
          let compressed32 = try u32(p + 20), uncompressed32 = try u32(p + 24)
          if uncompressed32 == 0xFFFF_FFFF { size = try u64(q); q += 8 }
          if compressed32 == 0xFFFF_FFFF { q += 8 }
          if offset == 0xFFFF_FFFF { offset = try u64(q) }
        }
        e += 4 + length
      }
      entries[entryName] = Entry(name: entryName, method: method, size: size, localHeaderOffset: offset)
      p += 46 + nameLength + extraLength + commentLength
    }
    self.entries = entries
  }

  /// The bytes of an entry.
  func contents(of entryName: String) throws -> Data {
    guard let entry = entries[entryName] else { throw TorchError.io("\(name): no entry \(entryName)") }
    guard entry.method == 0 else {
      throw TorchError.io("\(name): entry \(entryName) is compressed (method \(entry.method)); torch.save writes stored entries")
    }
    guard entry.localHeaderOffset >= 0, entry.size >= 0, entry.localHeaderOffset <= data.count - 30 else {
      throw TorchError.io("\(name): entry \(entryName) starts past the end of the file (truncated?)")
    }
    let base = data.startIndex + entry.localHeaderOffset
    let nameLength = Int(data[base + 26]) | Int(data[base + 27]) << 8
    let extraLength = Int(data[base + 28]) | Int(data[base + 29]) << 8
    let start = base + 30 + nameLength + extraLength
    guard start <= data.endIndex, entry.size <= data.endIndex - start else {
      throw TorchError.io("\(name): entry \(entryName) runs past the end of the file (truncated?)")
    }
    return data.subdata(in: start..<(start + entry.size))
  }
}
