import CHDF5
import CHDF5Deflate
import CHDF5Safe
import Dispatch
import Foundation

/// A compressed array of numbers (what anndata writes with `compression="gzip"` or `"lzf"`: the
/// data, indices and indptr of a sparse matrix, obs and var columns, a dense X, layers and obsm;
/// Cell Ranger's matrices, shuffled first), read as its stored chunks (libhdf5's H5Dread_chunk)
/// and decoded on every core, each chunk straight into its place in the result (through a
/// chunk-sized buffer where the chunk's rows are not contiguous there, or it is shuffled or
/// converted). gzip is inflated by libdeflate (zlib where libdeflate is not in
/// use: `hdf5GzipImplementation`), LZF by our decoder (`chdf5_lzf_decode`). libhdf5 decodes one
/// chunk at a time into its chunk cache and then copies it out.
///
/// Crash isolation's child makes the same libhdf5 calls (`read(into: nil)`: every chunk looked up
/// and read as stored) but decodes nothing. Decoding is libdeflate's (or zlib's, or our
/// bounds-checked LZF decoder's) work on bytes in our own buffers, bounded by the chunk's size
/// and safe on any input, so a damaged chunk is found by the caller's read, which fails with an
/// error naming it.
struct CompressedChunks {
  /// The filters decoded here: HDF5's deflate (gzip) and h5py's LZF.
  enum Codec: Int32 {
    case gzip = 1  // H5Z_FILTER_DEFLATE
    case lzf = 32000  // CHDF5_LZF_FILTER_ID

    var streamName: String { self == .gzip ? "a zlib stream" : "an LZF block" }

    /// Decodes `input` into exactly `outputBytes` bytes at `output`; false when it does not.
    func decode(_ input: UnsafeRawPointer, _ inputBytes: Int, into output: UnsafeMutableRawPointer, _ outputBytes: Int) -> Bool {
      switch self {
      case .gzip: return chdf5_inflate_exact(input, inputBytes, output, outputBytes) == 0
      case .lzf:
        return chdf5_lzf_decode(input.assumingMemoryBound(to: UInt8.self), inputBytes,
                                output.assumingMemoryBound(to: UInt8.self), outputBytes) == outputBytes
      }
    }
  }

  let dataset: H5Dataset
  let codec: Codec
  /// The chunks went through HDF5's byte shuffle before the codec (Cell Ranger's and h5py's
  /// `shuffle=True`): element bytes grouped by position, undone after decoding.
  let shuffled: Bool
  /// Elements along each dimension, of the array and of a chunk (HDF5 stores edge chunks whole).
  let shape: [Int]
  let chunkShape: [Int]
  /// Bytes per element in the result and as stored; `conversion` between them where they differ.
  let elementSize: Int
  let storedSize: Int
  let conversion: Conversion?
  /// Chunks along each dimension.
  let grid: [Int]
  var chunkElements: Int { chunkShape.reduce(1, *) }
  var chunkCount: Int { grid.reduce(1, *) }

  /// Ranks beyond this go through libhdf5 (anndata writes one and two dimensions).
  static let maxRank = 8
  /// Larger chunks go through libhdf5, in crash isolation's child first (h5py's own chunks are
  /// at most 1 MiB): a damaged file's chunk shape must not make the caller allocate gigabytes.
  static let maxChunkBytes = 64 << 20

  /// nil unless the dataset is such an array of `count` elements (the caller's, checked against
  /// the file's storage), stored in `memoryType` or as integers that `integerConversion` converts
  /// to it: the caller then reads through libhdf5.
  init?(_ dataset: H5Dataset, memoryType: hid_t, count: Int) {
    let memoryClass = H5Tget_class(memoryType)
    var fault: Int32 = 0
    var dims = [hsize_t](repeating: 0, count: Self.maxRank)
    var filter: Int32 = -1, shuffled: Int32 = 0
    guard memoryClass == H5T_INTEGER || memoryClass == H5T_FLOAT, count > 0 else { return nil }
    let rank = Int(chdf5_safe_compressed_chunks(dataset.id, Int32(Self.maxRank), &dims, &filter, &shuffled, &fault))
    // `count` is the product of the checked shape (no overflow); the stored shape must give it.
    guard rank >= 1, let codec = Codec(rawValue: filter), let shape = try? dataset.shape, shape.count == rank,
          shape.reduce(1, *) == count
    else { return nil }
    let fileType = chdf5_safe_dataset_type(dataset.id, &fault)
    guard fileType >= 0 else { return nil }
    defer { _ = H5Tclose(fileType) }
    let elementSize = H5Tget_size(memoryType), storedSize = H5Tget_size(fileType)
    var chunkBytes = Swift.max(elementSize, storedSize)
    for d in dims.prefix(rank) {
      guard chunkBytes <= Self.maxChunkBytes, d <= hsize_t(Self.maxChunkBytes) else { return nil }
      chunkBytes *= Int(d)
    }
    guard elementSize > 0, storedSize > 0, chunkBytes <= Self.maxChunkBytes else { return nil }
    if H5Tequal(fileType, memoryType) > 0 {
      conversion = nil
    } else {
      guard let integers = Self.integerConversion(from: fileType, to: memoryType) else { return nil }
      conversion = integers
    }
    self.dataset = dataset
    self.codec = codec
    self.shuffled = shuffled != 0
    self.shape = shape
    self.chunkShape = dims.prefix(rank).map { Int($0) }
    self.elementSize = elementSize
    self.storedSize = storedSize
    grid = zip(shape, chunkShape).map { ($0 + $1 - 1) / $1 }
  }

  /// Reads every stored chunk and decodes it into `destination` (the whole array, row-major),
  /// or only reads them when `destination` is nil. False where a chunk has no storage or libhdf5
  /// cannot read one: the caller then reads through libhdf5 (which fills a chunk never written,
  /// or reports the error). Throws when a chunk does not decode to a whole chunk. Stored chunks
  /// are read `roundBytes` at a time (more when one chunk is larger), then decoded together.
  func read(into destination: UnsafeMutableRawPointer?, roundBytes: Int = 8 << 20) throws -> Bool {
    var fault: Int32 = 0
    let storedBytes = Int(clamping: chdf5_safe_dataset_storage_size(dataset.id, &fault))  // all chunks together
    var stored = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(Swift.min(roundBytes, storedBytes), 1), alignment: 16)
    defer { stored.deallocate() }
    var first = 0
    while first < chunkCount {
      let wanted = Swift.min(chunkCount - first, 4096)
      let offsets = (first..<(first + wanted)).flatMap { origin(ofChunk: $0).map { hsize_t($0) } }
      var sizes = [Int](repeating: 0, count: wanted)
      var masks = [UInt32](repeating: 0, count: wanted)
      let n = chdf5_safe_read_raw_chunks(
        dataset.id, Int32(shape.count), offsets, wanted, stored.baseAddress, stored.count, &sizes, &masks, &fault)
      if n < 0 { return false }
      if n == 0 {  // the next chunk is larger than the buffer
        guard sizes[0] > stored.count, sizes[0] <= CrashIsolation.fileBytes(dataset.file) else { return false }
        stored.deallocate()
        stored = .allocate(byteCount: sizes[0], alignment: 16)
        continue
      }
      if let destination {
        try decode(from: UnsafeRawPointer(stored.baseAddress!), sizes: sizes[..<n], masks: masks, first: first,
                   into: destination)
      }
      first += n
    }
    return true
  }

  /// The coordinates of chunk `index`'s first element (chunks counted row-major over the grid).
  func origin(ofChunk index: Int) -> [Int] {
    var rest = index
    var origin = [Int](repeating: 0, count: shape.count)
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
      origin[d] = rest % grid[d] * chunkShape[d]
      rest /= grid[d]
    }
    return origin
  }

  /// Decodes the stored chunks first, first + 1, … (back to back in `source`) on every core; a
  /// single chunk on this thread (waking the pool costs more than a small chunk's decoding).
  private func decode(from source: UnsafeRawPointer, sizes: ArraySlice<Int>, masks: [UInt32], first: Int,
                       into destination: UnsafeMutableRawPointer) throws {
    var starts = [Int](repeating: 0, count: sizes.count)
    for j in 1..<Swift.max(sizes.count, 1) { starts[j] = starts[j - 1] + sizes[j - 1] }
    let failed = UnsafeMutableBufferPointer<Bool>.allocate(capacity: sizes.count)
    failed.initialize(repeating: false)
    defer { failed.deallocate() }
    let round = Round(array: self, source: source, starts: starts, sizes: Array(sizes), masks: masks,
                      destination: destination, failed: failed, first: first)
    if CrashIsolation.isChild || sizes.count == 1 {
      for j in 0..<sizes.count { round.decode(j) }
    } else {
      DispatchQueue.concurrentPerform(iterations: sizes.count) { round.decode($0) }
    }
    if let j = failed.firstIndex(of: true) {
      let at = origin(ofChunk: first + j)
      let element = at.count == 1 ? "element \(at[0])" : "element \(at)"
      throw CellDataError(
        "\(dataset.file): \(dataset.path): corrupt chunk at \(element): not \(codec.streamName) of \(chunkElements * storedSize) bytes")
    }
  }

  /// One round of chunks to decode, shared by the threads: each writes only its chunk's bytes
  /// of `destination` and its entry of `failed`.
  private struct Round: @unchecked Sendable {
    let array: CompressedChunks
    let source: UnsafeRawPointer
    let starts, sizes: [Int]
    let masks: [UInt32]
    let destination: UnsafeMutableRawPointer
    let failed: UnsafeMutableBufferPointer<Bool>
    let first: Int

    func decode(_ j: Int) {
      let chunkBytes = array.chunkElements * array.storedSize
      let input = UnsafeRawPointer(source + starts[j])
      let origin = array.origin(ofChunk: first + j)
      let extent = (0..<origin.count).map { Swift.min(array.chunkShape[$0], array.shape[$0] - origin[$0]) }
      // The chunk lands as it is in the result when it is whole, needs no conversion, and spans
      // every dimension but the first (its rows are then back to back there).
      let inPlace = array.conversion == nil && extent[0] == array.chunkShape[0]
        && (1..<origin.count).allSatisfy { array.chunkShape[$0] == array.shape[$0] }
      let target = destination + origin[0] * array.shape.dropFirst().reduce(1, *) * array.elementSize
      // Filter-mask bits: a filter the writer skipped (an optional one that failed) left the bytes as they were.
      let decodes = masks[j] & (array.shuffled ? 2 : 1) == 0
      let unshuffles = array.shuffled && masks[j] & 1 == 0
      var buffers: [UnsafeMutableRawPointer] = []
      defer { buffers.forEach { $0.deallocate() } }
      func buffer() -> UnsafeMutableRawPointer {
        buffers.append(.allocate(byteCount: chunkBytes, alignment: 16))
        return buffers.last!
      }
      var bytes = input
      if decodes {
        let output = inPlace && !unshuffles ? target : buffer()
        guard array.codec.decode(input, sizes[j], into: output, chunkBytes) else {
          failed[j] = true
          return
        }
        if output == target { return }
        bytes = UnsafeRawPointer(output)
      } else if sizes[j] != chunkBytes {
        failed[j] = true
        return
      }
      if unshuffles {
        let output = inPlace ? target : buffer()
        Self.unshuffle(bytes, into: output, elements: array.chunkElements, size: array.storedSize)
        if output == target { return }
        bytes = UnsafeRawPointer(output)
      }
      place(bytes, origin: origin, extent: extent)
    }

    /// Undoes HDF5's shuffle filter: byte b of element i was stored at b × elements + i.
    static func unshuffle(_ source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer, elements: Int, size: Int) {
      let from = source.assumingMemoryBound(to: UInt8.self), to = destination.assumingMemoryBound(to: UInt8.self)
      for b in 0..<size {
        let plane = from + b * elements
        for i in 0..<elements { to[i * size + b] = plane[i] }
      }
    }

    /// Copies (or converts) the `extent` part of a whole chunk into the result at `origin`: one
    /// run of the last dimension at a time, over every index of the dimensions before it.
    private func place(_ chunk: UnsafeRawPointer, origin: [Int], extent: [Int]) {
      let rank = origin.count, run = extent[rank - 1]
      var index = [Int](repeating: 0, count: rank)  // within the chunk; the last stays 0
      while true {
        var from = 0, to = 0
        for d in 0..<rank {
          from = from * array.chunkShape[d] + index[d]
          to = to * array.shape[d] + origin[d] + index[d]
        }
        let source = chunk + from * array.storedSize, target = destination + to * array.elementSize
        if let convert = array.conversion {
          convert(source, target, run)
        } else {
          target.copyMemory(from: source, byteCount: run * array.elementSize)
        }
        var d = rank - 2
        while d >= 0 {
          index[d] += 1
          if index[d] < extent[d] { break }
          index[d] = 0
          d -= 1
        }
        if d < 0 { return }
      }
    }
  }
}

extension CompressedChunks {
  /// Converts `count` stored elements at the first pointer into the result's type at the second.
  typealias Conversion = (UnsafeRawPointer, UnsafeMutableRawPointer, Int) -> Void

  /// Stored integers (any width and sign, the host's byte order) into float32 or float64
  /// (rounded to nearest) or int32 or int64 (saturated), as libhdf5 converts them: 10x
  /// Genomics files store their counts as int32 and indices as int64, read as float32 and int32.
  /// nil for any other pair (the caller's read then goes through libhdf5).
  static func integerConversion(from fileType: hid_t, to memoryType: hid_t) -> Conversion? {
    guard H5Tget_class(fileType) == H5T_INTEGER, H5Tget_order(fileType) == H5Tget_order(chdf5_native_int32()) else { return nil }
    func from<S: FixedWidthInteger>(_: S.Type) -> Conversion? {
      switch (H5Tget_class(memoryType), H5Tget_size(memoryType), H5Tget_sign(memoryType)) {
      case (H5T_FLOAT, 4, _): return rounded(S.self, Float.self)
      case (H5T_FLOAT, 8, _): return rounded(S.self, Double.self)
      case (H5T_INTEGER, 4, H5T_SGN_2): return saturated(S.self, Int32.self)
      case (H5T_INTEGER, 8, H5T_SGN_2): return saturated(S.self, Int64.self)
      default: return nil
      }
    }
    switch (H5Tget_size(fileType), H5Tget_sign(fileType) == H5T_SGN_2) {
    case (1, true): return from(Int8.self)
    case (2, true): return from(Int16.self)
    case (4, true): return from(Int32.self)
    case (8, true): return from(Int64.self)
    case (1, false): return from(UInt8.self)
    case (2, false): return from(UInt16.self)
    case (4, false): return from(UInt32.self)
    case (8, false): return from(UInt64.self)
    default: return nil
    }
  }

  private static func rounded<S: FixedWidthInteger, D: BinaryFloatingPoint>(_: S.Type, _: D.Type) -> Conversion {
    { source, destination, count in
      let from = source.assumingMemoryBound(to: S.self), to = destination.assumingMemoryBound(to: D.self)
      for i in 0..<count { to[i] = D(from[i]) }
    }
  }

  private static func saturated<S: FixedWidthInteger, D: FixedWidthInteger>(_: S.Type, _: D.Type) -> Conversion {
    { source, destination, count in
      let from = source.assumingMemoryBound(to: S.self), to = destination.assumingMemoryBound(to: D.self)
      for i in 0..<count { to[i] = D(clamping: from[i]) }
    }
  }
}
