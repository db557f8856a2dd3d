import CHDF5
import CHDF5Deflate
import CHDF5Safe
import Foundation

// A small Swift layer over libhdf5: files, groups, datasets and attributes, with every failure
// turned into a CellDataError that names the file and the element.

/// Once per process, before any file is opened: errors become Swift errors instead of printed
/// stacks, h5py's LZF filter (which libhdf5 lacks) is registered for reading, and gzip goes
/// through libdeflate where the system has it.
private let silenceOnce: Void = {
  chdf5_safe_init()
  chdf5_silence_errors()
  _ = chdf5_register_lzf()
  _ = chdf5_register_vlen_ref_conv()
  usesLibdeflate = chdf5_register_libdeflate() == 1
}()

private nonisolated(unsafe) var usesLibdeflate = false

/// What decodes and encodes gzip (HDF5's deflate filter) in this process: "libdeflate" (3.5×
/// faster inflate, loaded at run time where installed) or "zlib" (libhdf5's own filter; also
/// with SINGLECELL_ZLIB=1 in the environment).
public var hdf5GzipImplementation: String {
  _ = silenceOnce
  return usesLibdeflate ? "libdeflate" : "zlib"
}

/// The last libhdf5 error stack as one line.
func hdf5ErrorMessage() -> String {
  if chdf5_safe_poisoned() != 0 {
    return "libhdf5 crashed decoding a corrupt file (the fault was caught); HDF5 cannot be used again in this process"
  }
  var buffer = [CChar](repeating: 0, count: 2048)
  let n = chdf5_last_error(&buffer, buffer.count)
  if n == 0 { return "unknown HDF5 error" }
  return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// An open HDF5 object (file, group, dataset, attribute, type or space) that closes itself.
final class H5Handle {
  let id: hid_t
  private let close: (hid_t) -> herr_t
  init(_ id: hid_t, close: @escaping (hid_t) -> herr_t) {
    self.id = id
    self.close = close
  }
  deinit { _ = close(id) }
}

enum H5ObjectKind { case group, dataset, other }

/// A group of an open file (the root group of a file is one too). `path` is the element path
/// inside the file, used in messages.
final class H5Group {
  let handle: H5Handle
  let file: String
  let path: String
  var id: hid_t { handle.id }

  init(handle: H5Handle, file: String, path: String) {
    self.handle = handle
    self.file = file
    self.path = path
  }

  func childPath(_ name: String) -> String { path == "/" ? "/\(name)" : "\(path)/\(name)" }

  func error(_ what: String, _ element: String? = nil) -> CellDataError {
    CellDataError("\(file): \(element ?? path): \(what): \(hdf5ErrorMessage())")
  }

  /// Opens a file for reading. A missing, non-HDF5 or truncated file is a clear error.
  static func openFile(_ file: String) throws -> H5Group {
    _ = silenceOnce
    guard FileManager.default.fileExists(atPath: file) else {
      throw CellDataError("\(file): no such file")
    }
    var fault: Int32 = 0
    let isHDF5 = chdf5_safe_is_hdf5(file, &fault)
    if isHDF5 == 0 {
      throw CellDataError("\(file): not an HDF5 file (no HDF5 signature; is it corrupt or of another format?)")
    }
    let fid = isHDF5 < 0 ? -1 : chdf5_safe_fopen(file, chdf5_acc_rdonly(), &fault)
    if isHDF5 < 0 || fid < 0 {
      throw CellDataError("\(file): cannot open as HDF5 (corrupt or truncated file?): \(hdf5ErrorMessage())")
    }
    let root = chdf5_safe_gopen(fid, "/", &fault)
    _ = chdf5_safe_close(fid)  // the root group keeps the file open
    guard root >= 0 else { throw CellDataError("\(file): cannot open the root group: \(hdf5ErrorMessage())") }
    return H5Group(handle: H5Handle(root, close: chdf5_safe_close), file: file, path: "/")
  }

  /// Creates (truncates) a file for writing.
  static func createFile(_ file: String) throws -> H5Group {
    _ = silenceOnce
    guard chdf5_safe_poisoned() == 0 else { throw CellDataError("\(file): cannot create: \(hdf5ErrorMessage())") }
    let fid = H5Fcreate(file, chdf5_acc_trunc(), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
    guard fid >= 0 else { throw CellDataError("\(file): cannot create: \(hdf5ErrorMessage())") }
    let root = H5Gopen2(fid, "/", hid_t(H5P_DEFAULT))
    _ = H5Fclose(fid)
    guard root >= 0 else { throw CellDataError("\(file): cannot open the root group: \(hdf5ErrorMessage())") }
    return H5Group(handle: H5Handle(root, close: chdf5_safe_close), file: file, path: "/")
  }

  /// Flushes the whole file to disk.
  func flush() throws {
    guard H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0 else { throw error("cannot flush") }
  }

  func contains(_ name: String) -> Bool {
    var fault: Int32 = 0
    return chdf5_safe_lexists(id, name, &fault) > 0
  }

  /// Child link names, in creation order when the file tracks it, else sorted by name.
  func children() throws -> [String] {
    final class Box { var names: [String] = [] }
    let box = Box()
    var fault: Int32 = 0
    let status = withExtendedLifetime(box) {
      chdf5_safe_list_links(id, { name, context in
        let box = Unmanaged<Box>.fromOpaque(context!).takeUnretainedValue()
        box.names.append(String(cString: name!))
      }, Unmanaged.passUnretained(box).toOpaque(), &fault)
    }
    guard status >= 0 else { throw error("cannot list members") }
    return box.names
  }

  func kind(of name: String) throws -> H5ObjectKind {
    var fault: Int32 = 0
    let oid = chdf5_safe_oopen(id, name, &fault)
    guard oid >= 0 else { throw error("cannot open", childPath(name)) }
    defer { _ = chdf5_safe_close(oid) }
    switch H5Iget_type(oid) {
    case H5I_GROUP: return .group
    case H5I_DATASET: return .dataset
    default: return .other
    }
  }

  func group(_ name: String) throws -> H5Group {
    var fault: Int32 = 0
    let gid = chdf5_safe_gopen(id, name, &fault)
    guard gid >= 0 else { throw error("cannot open group", childPath(name)) }
    return H5Group(handle: H5Handle(gid, close: chdf5_safe_close), file: file, path: childPath(name))
  }

  func dataset(_ name: String) throws -> H5Dataset {
    var fault: Int32 = 0
    let did = chdf5_safe_dopen(id, name, &fault)
    return try opened(dataset: did, name)
  }

  /// Wraps a dataset `chdf5_safe_dopen*` returned; refuses one whose chunk layout is damaged
  /// before libhdf5 reads it.
  func opened(dataset did: hid_t, _ name: String) throws -> H5Dataset {
    guard did >= 0 else { throw error("cannot open dataset", childPath(name)) }
    let dataset = H5Dataset(handle: H5Handle(did, close: chdf5_safe_close), file: file, path: childPath(name))
    var fault: Int32 = 0
    guard chdf5_safe_chunk_layout_valid(did, &fault) == 1 else {
      throw CellDataError("\(file): \(childPath(name)): the dataset's chunk layout is damaged (its chunks do not match its dimensions)")
    }
    return dataset
  }

  func createGroup(_ name: String) throws -> H5Group {
    let gid = H5Gcreate2(id, name, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
    guard gid >= 0 else { throw error("cannot create group", childPath(name)) }
    return H5Group(handle: H5Handle(gid, close: chdf5_safe_close), file: file, path: childPath(name))
  }

  /// Writes a dataset of `shape` (an empty shape writes a scalar).
  @discardableResult
  func write(_ name: String, _ data: ArrayData, shape: [Int]) throws -> H5Dataset {
    let did = try writeDataset(location: id, name: name, data: data, shape: shape, elementPath: childPath(name), file: file)
    return H5Dataset(handle: H5Handle(did, close: chdf5_safe_close), file: file, path: childPath(name))
  }

  var attributes: H5Attributes { H5Attributes(owner: handle, file: file, path: path) }
}

/// An open dataset.
final class H5Dataset {
  let handle: H5Handle
  let file: String
  let path: String
  var id: hid_t { handle.id }

  init(handle: H5Handle, file: String, path: String) {
    self.handle = handle
    self.file = file
    self.path = path
  }

  var attributes: H5Attributes { H5Attributes(owner: handle, file: file, path: path) }

  func error(_ what: String) -> CellDataError {
    CellDataError("\(file): \(path): \(what): \(hdf5ErrorMessage())")
  }

  var shape: [Int] {
    get throws {
      var fault: Int32 = 0
      let space = chdf5_safe_dataset_space(id, &fault)
      guard space >= 0 else { throw error("cannot get the data space") }
      defer { _ = H5Sclose(space) }
      return try spaceShape(space, file: file, path: path)
    }
  }

  /// Reads the whole dataset.
  func read() throws -> ArrayData {
    var fault: Int32 = 0
    let type = chdf5_safe_dataset_type(id, &fault)
    guard type >= 0 else { throw error("cannot get the data type") }
    defer { _ = H5Tclose(type) }
    let stored = chdf5_safe_dataset_storage_size(id, &fault)
    guard fault == 0 else { throw error("cannot get the storage size") }
    let count = try checkedCount(try shape, type: type, storedBytes: stored, file: file, path: path)
    let raw = stored >= hsize_t(count) * hsize_t(H5Tget_size(type))
    return try readTyped(object: id, fileType: type, count: count, file: file, path: path, hugePages: raw) { memType, buffer in
      try readWhole(count: count, as: memType, into: buffer)
    }
  }

  /// Reads all `count` elements into `buffer` as `memoryType`: a gzip or LZF array through
  /// `CompressedChunks` (which throws on a damaged chunk), the rest through libhdf5. libhdf5's status.
  func readWhole(count: Int, as memoryType: hid_t, into buffer: UnsafeMutableRawPointer) throws -> herr_t {
    if let chunks = CompressedChunks(self, memoryType: memoryType, count: count) {
      adviseHugePages(buffer, bytes: count * chunks.elementSize)
      if try chunks.read(into: buffer) { return 0 }
    }
    var fault: Int32 = 0
    return chdf5_safe_dread(id, memoryType, buffer, &fault)
  }
}

/// The attributes of one object (which it keeps open).
struct H5Attributes {
  let owner: H5Handle
  let file: String
  let path: String
  var objectID: hid_t { owner.id }

  func contains(_ name: String) -> Bool {
    var fault: Int32 = 0
    return chdf5_safe_aexists(objectID, name, &fault) > 0
  }

  /// Reads an attribute of any supported type.
  func read(_ name: String) throws -> ArrayData {
    var fault: Int32 = 0
    let aid = chdf5_safe_aopen(objectID, name, &fault)
    guard aid >= 0 else { throw CellDataError("\(file): \(path): cannot open attribute '\(name)': \(hdf5ErrorMessage())") }
    defer { _ = chdf5_safe_close(aid) }
    let type = H5Aget_type(aid)
    let space = H5Aget_space(aid)
    defer { _ = H5Tclose(type); _ = H5Sclose(space) }
    let element = "\(path) attribute \(name)"
    guard type >= 0, space >= 0 else { throw CellDataError("\(file): \(element): cannot read its type or shape: \(hdf5ErrorMessage())") }
    let count = try checkedCount(try spaceShape(space, file: file, path: element), type: type,
                                 storedBytes: H5Aget_storage_size(aid), file: file, path: element)
    return try readTyped(object: aid, fileType: type, count: count, file: file, path: element) { memType, buffer in
      chdf5_safe_aread(aid, memType, buffer, &fault)
    }
  }

  /// A string attribute (`encoding-type`, `_index`); nil when absent.
  func string(_ name: String) throws -> String? {
    guard contains(name) else { return nil }
    guard case .string(let values) = try read(name), let first = values.first else {
      throw CellDataError("\(file): \(path): attribute '\(name)' is not a string")
    }
    return first
  }

  /// A string-array attribute (`column-order`). An empty array of any dtype is an empty list
  /// (h5py stores an empty Python list as an empty float64 array).
  func strings(_ name: String) throws -> [String]? {
    guard contains(name) else { return nil }
    let value = try read(name)
    if value.count == 0 { return [] }
    guard case .string(let values) = value else {
      throw CellDataError("\(file): \(path): attribute '\(name)' is not a string array")
    }
    return values
  }

  func bool(_ name: String) throws -> Bool? {
    guard contains(name) else { return nil }
    let value = try read(name)
    guard let ints = value.integers, let first = ints.first else {
      throw CellDataError("\(file): \(path): attribute '\(name)' is not a boolean")
    }
    return first != 0
  }

  func integers(_ name: String) throws -> [Int]? {
    guard contains(name) else { return nil }
    guard let ints = try read(name).integers else {
      throw CellDataError("\(file): \(path): attribute '\(name)' is not an integer array")
    }
    return ints
  }

  /// Writes an attribute; `scalar` writes a single value as an HDF5 scalar (as h5py does for
  /// a Python str, bool or number), otherwise a one-dimensional array.
  func write(_ name: String, _ data: ArrayData, scalar: Bool) throws {
    if H5Aexists(objectID, name) > 0 { _ = H5Adelete(objectID, name) }
    let shape = scalar ? [] : [data.count]
    let space = try makeSpace(shape, file: file, path: path)
    defer { _ = H5Sclose(space) }
    try withFileAndMemoryTypes(data, file: file, path: path) { fileType, memType in
      let aid = H5Acreate2(objectID, name, fileType, space, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
      guard aid >= 0 else { throw CellDataError("\(file): \(path): cannot create attribute '\(name)': \(hdf5ErrorMessage())") }
      defer { _ = H5Aclose(aid) }
      let status = try withRawBuffer(data) { H5Awrite(aid, memType, $0) }
      guard status >= 0 else { throw CellDataError("\(file): \(path): cannot write attribute '\(name)': \(hdf5ErrorMessage())") }
    }
  }

  func write(_ name: String, string: String) throws { try write(name, .string([string]), scalar: true) }
  func write(_ name: String, strings: [String]) throws { try write(name, .string(strings), scalar: false) }
  func write(_ name: String, bool: Bool) throws { try write(name, .bool([bool]), scalar: true) }
  func write(_ name: String, integers: [Int]) throws { try write(name, .int64(integers.map(Int64.init)), scalar: false) }

  /// Sets the anndata `encoding-type` and `encoding-version` attributes.
  func setEncoding(_ type: String, version: String) throws {
    try write("encoding-type", string: type)
    try write("encoding-version", string: version)
  }
}

// MARK: - Typed reading and writing

private func spaceShape(_ space: hid_t, file: String, path: String) throws -> [Int] {
  let rank = H5Sget_simple_extent_ndims(space)
  guard rank >= 0, rank <= 32 else { throw CellDataError("\(file): \(path): cannot read the shape: \(hdf5ErrorMessage())") }
  if H5Sget_simple_extent_type(space) == H5S_NULL { return [0] }
  var dims = [hsize_t](repeating: 0, count: Int(rank))
  guard H5Sget_simple_extent_dims(space, &dims, nil) >= 0 else {
    throw CellDataError("\(file): \(path): cannot read the shape: \(hdf5ErrorMessage())")
  }
  guard dims.allSatisfy({ $0 <= hsize_t(Int.max) }) else {
    throw CellDataError("\(file): \(path): shape \(dims) is out of range (corrupt file?)")
  }
  return dims.map { Int($0) }
}

/// The element count of `shape`, checked before anything is allocated: the product must not
/// overflow, and the bytes it implies must be what the file can hold. An element stores its
/// values in at most `storedBytes` bytes of the file; compression (gzip, LZF) expands that by at
/// most about a thousandfold, and an element with no storage allocated may hold fill values only
/// up to a small size. A shape beyond that comes from a damaged header, not from data.
func checkedCount(_ shape: [Int], type: hid_t, storedBytes: hsize_t, file: String, path: String) throws -> Int {
  var count = 1
  for d in shape {
    let (product, overflow) = count.multipliedReportingOverflow(by: d)
    guard d >= 0, !overflow else {
      throw CellDataError("\(file): \(path): shape \(shape) is out of range (corrupt file?)")
    }
    count = product
  }
  let elementSize = Swift.max(H5Tget_size(type), 1)
  let (bytes, overflow) = count.multipliedReportingOverflow(by: Swift.max(elementSize, 8))
  var status = stat()
  let fileBytes = stat(file, &status) == 0 ? Int(status.st_size) : Int.max / 2048
  let stored = Swift.min(Int(clamping: storedBytes), fileBytes)
  let limit = stored.multipliedReportingOverflow(by: 1100).partialValue &+ (1 << 20)
  guard !overflow, bytes <= limit else {
    throw CellDataError("\(file): \(path): shape \(shape) of \(elementSize)-byte values needs \(overflow ? "more than Int.max" : "\(bytes)") bytes, but the file stores \(storedBytes) bytes for it (corrupt file?)")
  }
  return count
}

private func makeSpace(_ shape: [Int], file: String, path: String) throws -> hid_t {
  let space: hid_t
  if shape.isEmpty {
    space = H5Screate(H5S_SCALAR)
  } else {
    let dims = shape.map { hsize_t($0) }
    space = H5Screate_simple(Int32(dims.count), dims, nil)
  }
  guard space >= 0 else { throw CellDataError("\(file): \(path): cannot create a data space: \(hdf5ErrorMessage())") }
  return space
}

/// Reads `count` elements whose file type is `fileType` through `read(memType, buffer)`.
/// `hugePages`: the values are stored uncompressed (see `adviseHugePages`).
private func readTyped(
  object: hid_t, fileType: hid_t, count: Int, file: String, path: String, hugePages: Bool = false,
  _ read: (hid_t, UnsafeMutableRawPointer) throws -> herr_t
) throws -> ArrayData {
  func fail() -> CellDataError { CellDataError("\(file): \(path): cannot read: \(hdf5ErrorMessage())") }

  func numeric<T>(_: T.Type, _ memType: hid_t) throws -> [T] {
    var failed = false
    let values = try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
      if count > 0 {
        if hugePages { adviseHugePages(UnsafeMutableRawPointer(buffer.baseAddress!), bytes: count * MemoryLayout<T>.stride) }
        if try read(memType, UnsafeMutableRawPointer(buffer.baseAddress!)) < 0 { failed = true }
      }
      initialized = count
    }
    if failed { throw fail() }
    return values
  }

  let size = H5Tget_size(fileType)
  switch H5Tget_class(fileType) {
  case H5T_INTEGER:
    let signed = H5Tget_sign(fileType) == H5T_SGN_2
    switch (size, signed) {
    case (1, true): return .int8(try numeric(Int8.self, chdf5_native_int8()))
    case (2, true): return .int16(try numeric(Int16.self, chdf5_native_int16()))
    case (4, true): return .int32(try numeric(Int32.self, chdf5_native_int32()))
    case (8, true): return .int64(try numeric(Int64.self, chdf5_native_int64()))
    case (1, false): return .uint8(try numeric(UInt8.self, chdf5_native_uint8()))
    case (2, false): return .uint16(try numeric(UInt16.self, chdf5_native_uint16()))
    case (4, false): return .uint32(try numeric(UInt32.self, chdf5_native_uint32()))
    case (8, false): return .uint64(try numeric(UInt64.self, chdf5_native_uint64()))
    default: throw CellDataError("\(file): \(path): unsupported integer size \(size)")
    }
  case H5T_FLOAT:
    if size == 8 { return .float64(try numeric(Double.self, chdf5_native_double())) }
    if size <= 4 { return .float32(try numeric(Float.self, chdf5_native_float())) }
    throw CellDataError("\(file): \(path): unsupported float size \(size)")
  case H5T_ENUM:
    // numpy bool is stored by h5py as an int8 enum {FALSE = 0, TRUE = 1}.
    guard size == 1, H5Tget_nmembers(fileType) == 2 else {
      throw CellDataError("\(file): \(path): unsupported enum type (only h5py booleans are read)")
    }
    let memType = H5Tcopy(fileType)
    defer { _ = H5Tclose(memType) }
    let bytes = try numeric(UInt8.self, memType)
    return .bool(bytes.map { $0 != 0 })
  case H5T_STRING:
    if H5Tis_variable_str(fileType) > 0 {
      return .string(try readVariableStrings(object: object, count: count, file: file, path: path, fail: fail, read))
    }
    // A damaged type can claim width 0: libhdf5 then keeps a 1-byte memory type and would write
    // `count` bytes into an empty buffer (here, Swift's shared empty-array storage).
    let width = H5Tget_size(fileType)
    guard width > 0 else { throw CellDataError("\(file): \(path): a fixed-length string type of width 0 (a damaged data type)") }
    return .string(try readStrings(fileType: fileType, width: width, count: count, fail: fail, read))
  default:
    throw CellDataError("\(file): \(path): unsupported HDF5 data type class")
  }
}

private func readStrings(
  fileType: hid_t, width: Int, count: Int, fail: () -> CellDataError,
  _ read: (hid_t, UnsafeMutableRawPointer) throws -> herr_t
) throws -> [String] {
  let memType = H5Tcopy(chdf5_c_s1())
  defer { _ = H5Tclose(memType) }
  guard H5Tset_size(memType, width) >= 0, H5Tget_size(memType) == width else { throw fail() }
  _ = H5Tset_strpad(memType, H5T_STR_NULLPAD)
  _ = H5Tset_cset(memType, H5Tget_cset(fileType))
  var bytes = [UInt8](repeating: 0, count: count * width)
  if count > 0 {
    let status = try bytes.withUnsafeMutableBytes { try read(memType, $0.baseAddress!) }
    guard status >= 0 else { throw fail() }
  }
  return (0..<count).map { i in
    let slice = bytes[(i * width)..<((i + 1) * width)]
    let end = slice.firstIndex(of: 0) ?? slice.endIndex
    return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
  }
}

/// Calls `body(fileType, memoryType)` with the HDF5 types for `data`'s dtype: little-endian
/// standard types on disk, the h5py boolean enum for bools, UTF-8 variable-length strings.
private func withFileAndMemoryTypes(
  _ data: ArrayData, file: String, path: String, _ body: (hid_t, hid_t) throws -> Void
) throws {
  switch data {
  case .bool:
    let type = H5Tenum_create(chdf5_native_int8())
    defer { _ = H5Tclose(type) }
    var f: Int8 = 0, t: Int8 = 1
    _ = H5Tenum_insert(type, "FALSE", &f)
    _ = H5Tenum_insert(type, "TRUE", &t)
    try body(type, type)
  case .int8: try body(chdf5_std_i8le(), chdf5_native_int8())
  case .int16: try body(chdf5_std_i16le(), chdf5_native_int16())
  case .int32: try body(chdf5_std_i32le(), chdf5_native_int32())
  case .int64: try body(chdf5_std_i64le(), chdf5_native_int64())
  case .uint8: try body(chdf5_std_u8le(), chdf5_native_uint8())
  case .uint16: try body(chdf5_std_u16le(), chdf5_native_uint16())
  case .uint32: try body(chdf5_std_u32le(), chdf5_native_uint32())
  case .uint64: try body(chdf5_std_u64le(), chdf5_native_uint64())
  case .float32: try body(chdf5_ieee_f32le(), chdf5_native_float())
  case .float64: try body(chdf5_ieee_f64le(), chdf5_native_double())
  case .string:
    let type = H5Tcopy(chdf5_c_s1())
    defer { _ = H5Tclose(type) }
    _ = H5Tset_size(type, chdf5_variable())
    _ = H5Tset_cset(type, H5T_CSET_UTF8)
    try body(type, type)
  }
}

/// Calls `body` with a pointer to `data`'s elements in their memory layout (bools as bytes,
/// strings as C string pointers).
private func withRawBuffer<R>(_ data: ArrayData, _ body: (UnsafeRawPointer) throws -> R) throws -> R {
  func raw<T>(_ a: [T]) throws -> R {
    try a.withUnsafeBytes { try body($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!) }
  }
  switch data {
  case .bool(let a): return try raw(a.map { $0 ? Int8(1) : Int8(0) })
  case .int8(let a): return try raw(a)
  case .int16(let a): return try raw(a)
  case .int32(let a): return try raw(a)
  case .int64(let a): return try raw(a)
  case .uint8(let a): return try raw(a)
  case .uint16(let a): return try raw(a)
  case .uint32(let a): return try raw(a)
  case .uint64(let a): return try raw(a)
  case .float32(let a): return try raw(a)
  case .float64(let a): return try raw(a)
  case .string(let a):
    let pointers: [UnsafeMutablePointer<CChar>?] = a.map { strdup($0) }
    defer { for p in pointers { free(p) } }
    return try raw(pointers)
  }
}

private func writeDataset(
  location: hid_t, name: String, data: ArrayData, shape: [Int], elementPath: String, file: String
) throws -> hid_t {
  guard shape.reduce(1, *) == data.count else {
    throw CellDataError("\(file): \(elementPath): shape \(shape) does not hold \(data.count) values")
  }
  let space = try makeSpace(shape, file: file, path: elementPath)
  defer { _ = H5Sclose(space) }
  var did: hid_t = -1
  try withFileAndMemoryTypes(data, file: file, path: elementPath) { fileType, memType in
    did = H5Dcreate2(location, name, fileType, space, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
    guard did >= 0 else { throw CellDataError("\(file): \(elementPath): cannot create dataset: \(hdf5ErrorMessage())") }
    if data.count > 0 {
      let status = try withRawBuffer(data) {
        H5Dwrite(did, memType, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), $0)
      }
      guard status >= 0 else {
        _ = H5Dclose(did)
        throw CellDataError("\(file): \(elementPath): cannot write dataset: \(hdf5ErrorMessage())")
      }
    }
  }
  return did
}
