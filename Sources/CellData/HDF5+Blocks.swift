import CHDF5
import CHDF5Safe
import Foundation

// Block access to datasets: hyperslab reads converted by libhdf5 to a native type, and
// extendable (chunked, optionally gzip) datasets that grow by appended blocks.

/// A Swift number type with its native HDF5 memory type.
protocol H5NativeNumber {
  static var h5MemoryType: hid_t { get }
}

extension Float: H5NativeNumber { static var h5MemoryType: hid_t { chdf5_native_float() } }
extension Double: H5NativeNumber { static var h5MemoryType: hid_t { chdf5_native_double() } }
extension Int32: H5NativeNumber { static var h5MemoryType: hid_t { chdf5_native_int32() } }
extension Int64: H5NativeNumber { static var h5MemoryType: hid_t { chdf5_native_int64() } }
extension Int: H5NativeNumber { static var h5MemoryType: hid_t { MemoryLayout<Int>.size == 8 ? chdf5_native_int64() : chdf5_native_int32() } }

/// The on-disk number type of a dataset written by blocks (`H5ADBlockWriter`).
public enum StoredNumberType: String, Sendable, CaseIterable {
  case uint16, int32, int64, float32, float64

  var fileType: hid_t {
    switch self {
    case .uint16: return chdf5_std_u16le()
    case .int32: return chdf5_std_i32le()
    case .int64: return chdf5_std_i64le()
    case .float32: return chdf5_ieee_f32le()
    case .float64: return chdf5_ieee_f64le()
    }
  }
}

extension H5Group {
  /// Opens a dataset with a chunk cache of `chunkCacheBytes` (libhdf5's default is 1 MiB,
  /// smaller than many gzip chunks, which are then decompressed again on every partial read).
  func dataset(_ name: String, chunkCacheBytes: Int) throws -> H5Dataset {
    var fault: Int32 = 0
    return try opened(dataset: chdf5_safe_dopen_cached(id, name, 10_007, Swift.max(chunkCacheBytes, 0), &fault), name)
  }

  /// Creates an empty dataset that `H5Dataset.append` grows along its first dimension:
  /// `columns` nil for one dimension, else rows of `columns` values. Chunks hold `chunkRows`
  /// rows (elements in one dimension); `gzipLevel` 1–9 compresses them.
  func createExtendable(_ name: String, type: StoredNumberType, columns: Int? = nil, chunkRows: Int,
                        gzipLevel: Int? = nil) throws -> H5Dataset {
    let path = childPath(name)
    let dims: [hsize_t] = columns.map { [0, hsize_t($0)] } ?? [0]
    let maxDims: [hsize_t] = columns.map { [hsize_t.max, hsize_t($0)] } ?? [hsize_t.max]
    let chunk: [hsize_t] = columns.map { [hsize_t(Swift.max(chunkRows, 1)), hsize_t(Swift.max($0, 1))] }
      ?? [hsize_t(Swift.max(chunkRows, 1))]
    let space = H5Screate_simple(Int32(dims.count), dims, maxDims)
    guard space >= 0 else { throw error("cannot create a data space", path) }
    defer { _ = H5Sclose(space) }
    let create = H5Pcreate(chdf5_p_dataset_create())
    guard create >= 0 else { throw error("cannot create a property list", path) }
    defer { _ = H5Pclose(create) }
    guard H5Pset_chunk(create, Int32(chunk.count), chunk) >= 0 else { throw error("cannot set chunks", path) }
    if let gzipLevel {
      guard (0...9).contains(gzipLevel), H5Pset_deflate(create, UInt32(gzipLevel)) >= 0 else {
        throw CellDataError("\(file): \(path): gzip level must be 0–9, got \(gzipLevel)")
      }
    }
    let did = H5Dcreate2(id, name, type.fileType, space, hid_t(H5P_DEFAULT), create, hid_t(H5P_DEFAULT))
    guard did >= 0 else { throw error("cannot create dataset", path) }
    return H5Dataset(handle: H5Handle(did, close: chdf5_safe_close), file: file, path: path)
  }
}

/// What a numeric dataset stores, from its type: for messages and checks.
struct H5NumberKind: CustomStringConvertible {
  let isInteger: Bool
  let isFloat: Bool
  let size: Int
  let signed: Bool
  var description: String {
    isFloat ? "float\(size * 8)" : isInteger ? "\(signed ? "int" : "uint")\(size * 8)" : "non-numeric"
  }

  /// Bytes per element as `H5Dataset.read()` reads them (`readMemoryType`'s: float16 as float32).
  var readSize: Int { readMemoryType.map { H5Tget_size($0) } ?? size }

  /// The native type `H5Dataset.read()` converts this stored type to; nil where it has none.
  var readMemoryType: hid_t? {
    if isFloat { return size == 8 ? chdf5_native_double() : size <= 4 ? chdf5_native_float() : nil }
    guard isInteger else { return nil }
    switch (size, signed) {
    case (1, true): return chdf5_native_int8()
    case (2, true): return chdf5_native_int16()
    case (4, true): return chdf5_native_int32()
    case (8, true): return chdf5_native_int64()
    case (1, false): return chdf5_native_uint8()
    case (2, false): return chdf5_native_uint16()
    case (4, false): return chdf5_native_uint32()
    case (8, false): return chdf5_native_uint64()
    default: return nil
    }
  }
}

extension H5Dataset {
  /// The element type, checked to be an integer or a float.
  func numberKind() throws -> H5NumberKind {
    var fault: Int32 = 0
    let type = chdf5_safe_dataset_type(id, &fault)
    guard type >= 0 else { throw error("cannot get the data type") }
    defer { _ = H5Tclose(type) }
    let typeClass = H5Tget_class(type)
    let kind = H5NumberKind(isInteger: typeClass == H5T_INTEGER, isFloat: typeClass == H5T_FLOAT,
                            size: H5Tget_size(type), signed: H5Tget_sign(type) == H5T_SGN_2)
    guard kind.isInteger || kind.isFloat else {
      throw CellDataError("\(file): \(path): expected numbers, but the dataset holds another type")
    }
    return kind
  }

  /// The shape, checked against what the file stores for the dataset (as a whole read would
  /// be), so that no length a damaged header claims leads to a large allocation.
  func checkedShape() throws -> [Int] {
    var fault: Int32 = 0
    let type = chdf5_safe_dataset_type(id, &fault)
    guard type >= 0 else { throw error("cannot get the data type") }
    defer { _ = H5Tclose(type) }
    let stored = chdf5_safe_dataset_storage_size(id, &fault)
    guard fault == 0 else { throw error("cannot get the storage size") }
    let shape = try self.shape
    _ = try checkedCount(shape, type: type, storedBytes: stored, file: file, path: path)
    return shape
  }

  /// The whole 1-D dataset of numbers as float32, converted as it is read; nil when it does not
  /// hold numbers.
  func readFloats() throws -> [Float]? {
    guard let kind = try? numberKind() else { return nil }
    let shape = try checkedShape()
    guard shape.count == 1 else { throw error("expected a 1-D array, got shape \(shape)") }
    return try readAll(Float.self, count: shape[0], storedSize: kind.size)
  }

  /// The whole dataset as `T` (`Int` by default), converted from whichever integer type is
  /// stored, straight into the result (no stored-type copy to convert: sparse indices are the
  /// largest arrays of a file; a value beyond `T`'s range saturates); nil when it does not hold
  /// integers.
  func readIntegers<T: H5NativeNumber & FixedWidthInteger>(as _: T.Type = Int.self) throws -> [T]? {
    guard let kind = try? numberKind(), kind.isInteger else { return nil }
    return try readAll(T.self, count: try checkedShape().reduce(1, *), storedSize: kind.size)
  }

  /// All `count` elements as `T`, read by `readWhole` (so converted there or by libhdf5); an
  /// uncompressed array's buffer is advised for huge pages.
  private func readAll<T: H5NativeNumber>(_: T.Type, count: Int, storedSize: Int) throws -> [T] {
    var fault: Int32 = 0
    let raw = chdf5_safe_dataset_storage_size(id, &fault) >= hsize_t(count * storedSize)
    var failed = false
    let values = try [T](unsafeUninitializedCapacity: count) { buffer, initialized in
      guard count > 0 else { return }
      if raw { adviseHugePages(UnsafeMutableRawPointer(buffer.baseAddress!), bytes: count * MemoryLayout<T>.stride) }
      if try readWhole(count: count, as: T.h5MemoryType, into: buffer.baseAddress!) < 0 { failed = true }
      initialized = count
    }
    if failed { throw CellDataError("\(file): \(path): cannot read: \(hdf5ErrorMessage())") }
    return values
  }

  /// Reads every element through one reused buffer of `slab` elements and keeps none, converted as
  /// `read()` converts them: libhdf5 visits every chunk, filter and conversion a whole read
  /// does, in the memory of one slab (or to `memoryType`, as the caller's read will convert
  /// them). Crash isolation's child does this for the large arrays instead of holding a copy of
  /// them. A gzip or LZF array's chunks are read as stored and not decoded (the caller's read
  /// decodes them itself: `CompressedChunks`); what is neither that nor a 1-D array of numbers is
  /// read whole. The default slab (512 KiB) stays in cache; an 8 MiB one cost more in page faults and
  /// zeroing than it saved in calls (a 10,000-cell file's probe took 24 ms instead of 13).
  func readThrough(as memoryType: hid_t? = nil, slab: Int = 1 << 16) throws {
    guard let kind = try? numberKind(), let memoryType = memoryType ?? kind.readMemoryType,
          let shape = try? checkedShape()
    else {
      _ = try read()  // as the caller's read will (and failing as it will)
      return
    }
    if try CompressedChunks(self, memoryType: memoryType, count: shape.reduce(1, *))?.read(into: nil) == true { return }
    guard shape.count == 1 else {
      _ = try read()
      return
    }
    let buffer = UnsafeMutableRawBufferPointer.allocate(
      byteCount: Swift.max(1, Swift.min(slab, shape[0])) * 8, alignment: 16)
    defer { buffer.deallocate() }
    var start = 0
    while start < shape[0] {
      let n = Swift.min(buffer.count / 8, shape[0] - start)
      var fault: Int32 = 0
      let status = chdf5_safe_dread_block(id, memoryType, 1, [hsize_t(start)], [hsize_t(n)], buffer.baseAddress!, &fault)
      guard status >= 0 else { throw CellDataError("\(file): \(path): cannot read: \(hdf5ErrorMessage())") }
      start += n
    }
  }

  /// The block [start, start + count) (one entry per dimension) converted to `T` by libhdf5.
  /// The caller checks the block lies inside the dataset's checked shape.
  func readBlock<T: H5NativeNumber>(_: T.Type, start: [Int], count: [Int]) throws -> [T] {
    let total = count.reduce(1, *)
    guard total > 0 else { return [] }
    var failed = false
    let values = [T](unsafeUninitializedCapacity: total) { buffer, initialized in
      let starts = start.map { hsize_t($0) }, counts = count.map { hsize_t($0) }
      var fault: Int32 = 0
      if chdf5_safe_dread_block(id, T.h5MemoryType, Int32(count.count), starts, counts, buffer.baseAddress!, &fault) < 0 {
        failed = true
      }
      initialized = total
    }
    if failed {
      throw CellDataError("\(file): \(path): cannot read elements \(start) + \(count): \(hdf5ErrorMessage())")
    }
    return values
  }

  /// Appends rows (or elements) along the first dimension of an extendable dataset.
  func append<T: H5NativeNumber>(_ values: [T], rows: Int) throws {
    guard rows > 0 else { return }
    var fault: Int32 = 0
    let current = try shape
    var newShape = current.map { hsize_t($0) }
    newShape[0] += hsize_t(rows)
    guard H5Dset_extent(id, newShape) >= 0 else { throw error("cannot extend") }
    let space = chdf5_safe_dataset_space(id, &fault)
    guard space >= 0 else { throw error("cannot get the data space") }
    defer { _ = H5Sclose(space) }
    var start = [hsize_t](repeating: 0, count: current.count)
    start[0] = hsize_t(current[0])
    var count = newShape
    count[0] = hsize_t(rows)
    guard count.reduce(1, *) == hsize_t(values.count) else {
      throw CellDataError("\(file): \(path): \(values.count) values do not fill \(rows) rows of shape \(current)")
    }
    guard H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nil, count, nil) >= 0 else { throw error("cannot select") }
    let memory = H5Screate_simple(Int32(count.count), count, nil)
    guard memory >= 0 else { throw error("cannot create a data space") }
    defer { _ = H5Sclose(memory) }
    let status = values.withUnsafeBytes { H5Dwrite(id, T.h5MemoryType, memory, space, hid_t(H5P_DEFAULT), $0.baseAddress) }
    guard status >= 0 else { throw error("cannot write") }
  }
}
