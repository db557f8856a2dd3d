import CHDF5
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

// Variable-length strings, read without trusting the file. libhdf5 1.10 resolves a string's
// global-heap reference with no check that the object exists (a damaged heap gives a NULL source
// to memcpy) nor that it holds the string's length. Here libhdf5 only hands over the raw
// references (see chdf5_vlen_ref_conv), and the heap collections they point to are parsed with
// every offset and length checked against the collection and the file.
//
// Global heap collection, version 1 (HDF5 file format specification, "Global Heap"):
//   "GCOL", version 1, 3 reserved bytes, collection size (sizeof_size bytes, header included);
//   then objects: index (2 bytes; 0 is the free space), reference count (2), reserved (4),
//   object size (sizeof_size), the object's bytes padded to a multiple of 8.

/// Reads `count` variable-length strings of a dataset or attribute through `read`.
func readVariableStrings(
  object: hid_t, count: Int, file: String, path: String, fail: () -> CellDataError,
  _ read: (hid_t, UnsafeMutableRawPointer) throws -> herr_t
) throws -> [String] {
  let memType = chdf5_vlen_ref_type()
  guard memType >= 0 else { throw fail() }
  defer { _ = H5Tclose(memType) }
  let width = Int(CHDF5_VLEN_REF_SIZE)
  var raw = [UInt8](repeating: 0, count: count * width)
  if count > 0 {
    let status = try raw.withUnsafeMutableBytes { try read(memType, $0.baseAddress!) }
    guard status >= 0 else { throw fail() }
  }
  var sizeofAddress = 0, sizeofSize = 0
  var userBlock: hsize_t = 0
  guard chdf5_file_layout(object, &sizeofAddress, &sizeofSize, &userBlock) >= 0 else { throw fail() }
  guard (2...8).contains(sizeofAddress), (2...8).contains(sizeofSize), 4 + sizeofAddress + 4 <= width else {
    throw CellDataError("\(file): \(path): unsupported address/length sizes \(sizeofAddress)/\(sizeofSize)")
  }
  let heap = try GlobalHeap(file: file, element: path, base: UInt64(userBlock), sizeofAddress: sizeofAddress, sizeofSize: sizeofSize)
  var strings: [String] = []
  strings.reserveCapacity(count)
  for i in 0..<count {
    let at = i * width
    let length = littleEndian(raw, at, 4)
    let address = littleEndian(raw, at + 4, sizeofAddress)
    let index = littleEndian(raw, at + 4 + sizeofAddress, 4)
    if address == 0 {  // a null string
      strings.append("")
      continue
    }
    strings.append(try heap.string(collection: address, index: index, length: length, element: i))
  }
  return strings
}

private func littleEndian(_ bytes: [UInt8], _ at: Int, _ width: Int) -> UInt64 {
  var value: UInt64 = 0
  for k in stride(from: width - 1, through: 0, by: -1) { value = value << 8 | UInt64(bytes[at + k]) }
  return value
}

/// One parsed heap collection: its bytes, and the data range of each object by index.
private final class HeapCollection {
  let bytes: [UInt8]
  /// In index order. libhdf5 numbers a collection's objects 1, 2, 3, … as it stores them, so
  /// object k is usually at k − 1; other layouts are found by binary search.
  private let indices: [UInt64]
  private let ranges: [Range<Int>]

  init(bytes: [UInt8], objects: [(index: UInt64, range: Range<Int>)]) {
    self.bytes = bytes
    let ordered = zip(objects, objects.dropFirst()).allSatisfy { $0.index < $1.index }
      ? objects : objects.sorted { $0.index < $1.index }
    indices = ordered.map(\.index)
    ranges = ordered.map(\.range)
  }

  func range(of index: UInt64) -> Range<Int>? {
    if index >= 1, index <= UInt64(indices.count), indices[Int(index - 1)] == index { return ranges[Int(index - 1)] }
    var low = 0, high = indices.count
    while low < high {
      let middle = (low + high) / 2
      if indices[middle] < index { low = middle + 1 } else { high = middle }
    }
    return low < indices.count && indices[low] == index ? ranges[low] : nil
  }
}

/// The global heap collections of one file, parsed on first use.
private final class GlobalHeap {
  let file: String
  let element: String
  let base: UInt64
  let sizeofAddress: Int
  let sizeofSize: Int
  let descriptor: Int32
  let fileSize: UInt64
  /// Per collection address, parsed; the last one used is kept apart, as consecutive strings
  /// mostly share a collection.
  var collections: [UInt64: HeapCollection] = [:]
  var last: (address: UInt64, collection: HeapCollection)?

  init(file: String, element: String, base: UInt64, sizeofAddress: Int, sizeofSize: Int) throws {
    self.file = file
    self.element = element
    self.base = base
    self.sizeofAddress = sizeofAddress
    self.sizeofSize = sizeofSize
    descriptor = open(file, O_RDONLY)
    guard descriptor >= 0 else { throw CellDataError("\(file): cannot open to read strings: \(String(cString: strerror(errno)))") }
    var status = stat()
    fileSize = fstat(descriptor, &status) == 0 ? UInt64(status.st_size) : 0
  }

  deinit { close(descriptor) }

  func corrupt(_ what: String) -> CellDataError {
    CellDataError("\(file): \(element): corrupt variable-length string data: \(what)")
  }

  func string(collection address: UInt64, index: UInt64, length: UInt64, element i: Int) throws -> String {
    let heap = try self.collection(address)
    guard index > 0, let range = heap.range(of: index) else {
      throw corrupt("string \(i) refers to object \(index) of the heap at \(address), which has no such object")
    }
    guard length <= UInt64(range.count) else {
      throw corrupt("string \(i) has length \(length), but its heap object holds \(range.count) bytes")
    }
    let bytes = heap.bytes[range.lowerBound..<(range.lowerBound + Int(length))]
    let end = bytes.firstIndex(of: 0) ?? bytes.endIndex  // C-string semantics, as libhdf5 gives them
    return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
  }

  private func readBytes(at offset: UInt64, count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var filled = 0
    while filled < count {
      let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled)) }
      guard n > 0 else { throw corrupt("the heap collection at \(offset) runs past the end of the file") }
      filled += n
    }
    return bytes
  }

  private func collection(_ address: UInt64) throws -> HeapCollection {
    if let last, last.address == address { return last.collection }
    let collection = try collections[address] ?? parse(address)
    collections[address] = collection
    last = (address, collection)
    return collection
  }

  private func parse(_ address: UInt64) throws -> HeapCollection {
    let (start, overflow) = base.addingReportingOverflow(address)
    let header = 8 + sizeofSize
    guard !overflow, start < fileSize, fileSize - start >= UInt64(header) else {
      throw corrupt("heap collection address \(address) lies outside the file (\(fileSize) bytes)")
    }
    let head = try readBytes(at: start, count: header)
    guard head[0..<4] == [0x47, 0x43, 0x4F, 0x4C], head[4] == 1 else {  // "GCOL", version 1
      throw corrupt("no global heap collection at \(address)")
    }
    let size = littleEndian(head, 8, sizeofSize)
    guard size >= UInt64(header), size <= fileSize - start else {
      throw corrupt("the heap collection at \(address) claims \(size) bytes; the file has \(fileSize - start) from there")
    }
    let bytes = try readBytes(at: start, count: Int(size))
    var objects: [(index: UInt64, range: Range<Int>)] = []
    let objectHeader = 8 + sizeofSize
    var p = header
    while p + objectHeader <= bytes.count {
      let index = littleEndian(bytes, p, 2)
      let objectSize = littleEndian(bytes, p + 8, sizeofSize)
      if index == 0 { break }  // the free space ends the objects
      let dataStart = p + objectHeader
      guard objectSize <= UInt64(bytes.count - dataStart) else {
        throw corrupt("object \(index) of the heap collection at \(address) runs past the collection")
      }
      let padded = (Int(objectSize) + 7) & ~7
      objects.append((index, dataStart..<(dataStart + Int(objectSize))))
      p = dataStart + padded
    }
    return HeapCollection(bytes: bytes, objects: objects)
  }
}
