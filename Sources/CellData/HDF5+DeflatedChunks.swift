import CHDF5
import CHDF5Deflate
import CHDF5Safe
import Dispatch
import Foundation

/// A gzip-compressed 1-D array of numbers (what anndata writes with `compression="gzip"`: the
/// data, indices and indptr of a sparse matrix, obs and var columns), read as its stored chunks
/// (libhdf5's H5Dread_chunk) and inflated on every core, each chunk straight into its place in
/// the result, by libdeflate (zlib where libdeflate is not in use: `hdf5GzipImplementation`).
/// libhdf5 inflates one chunk at a time into its chunk cache and then copies it out.
///
/// For a sparse matrix's data and indices, crash isolation's child makes the same libhdf5 calls
/// (`read(into: nil)`: every chunk looked up and read as stored) but inflates nothing.
/// Inflating is libdeflate's (or zlib's) work on bytes in our own buffers, bounded by the chunk's
/// size and safe on any input, so a damaged chunk is found by the caller's read, which fails
/// with an error naming it.
struct DeflatedChunks {
  let dataset: H5Dataset
  /// Elements in the array, and in each chunk.
  let count: Int
  let chunk: Int
  let elementSize: Int

  /// nil unless the dataset is such an array of `count` elements (the caller's, checked against
  /// the file's storage), stored in `memoryType` (no conversion needed): the caller then reads
  /// through libhdf5.
  init?(_ dataset: H5Dataset, memoryType: hid_t, count: Int) {
    let memoryClass = H5Tget_class(memoryType)
    var fault: Int32 = 0
    var chunk: hsize_t = 0
    guard memoryClass == H5T_INTEGER || memoryClass == H5T_FLOAT, count > 0,
          chdf5_safe_deflate_chunks(dataset.id, &chunk, &fault) == 1, (try? dataset.shape) == [count]
    else { return nil }
    let fileType = chdf5_safe_dataset_type(dataset.id, &fault)
    guard fileType >= 0 else { return nil }
    defer { _ = H5Tclose(fileType) }
    let elementSize = H5Tget_size(memoryType)
    // libhdf5 refuses chunks of 4 GiB or more.
    guard H5Tequal(fileType, memoryType) > 0, elementSize > 0, chunk < hsize_t(UInt32.max) / hsize_t(elementSize)
    else { return nil }
    self.dataset = dataset
    self.count = count
    self.chunk = Int(chunk)
    self.elementSize = elementSize
  }

  /// Reads every stored chunk and inflates it into `destination` (`count` elements), or only
  /// reads them when `destination` is nil. False where a chunk has no storage or libhdf5 cannot
  /// read one: the caller then reads through libhdf5 (which fills a chunk never written, or
  /// reports the error). Throws when a chunk does not inflate to a whole chunk. Stored chunks
  /// are read `roundBytes` at a time (more when one chunk is larger), then inflated together.
  func read(into destination: UnsafeMutableRawPointer?, roundBytes: Int = 8 << 20) throws -> Bool {
    let chunks = (count + chunk - 1) / chunk
    var fault: Int32 = 0
    let storedBytes = Int(clamping: chdf5_safe_dataset_storage_size(dataset.id, &fault))  // all chunks together
    var stored = UnsafeMutableRawBufferPointer.allocate(byteCount: Swift.max(Swift.min(roundBytes, storedBytes), 1), alignment: 16)
    defer { stored.deallocate() }
    var first = 0
    while first < chunks {
      let wanted = Swift.min(chunks - first, 4096)
      var sizes = [Int](repeating: 0, count: wanted)
      var masks = [UInt32](repeating: 0, count: wanted)
      let n = chdf5_safe_read_raw_chunks(
        dataset.id, hsize_t(chunk), hsize_t(first), wanted, stored.baseAddress, stored.count, &sizes, &masks, &fault)
      if n < 0 { return false }
      if n == 0 {  // the next chunk is larger than the buffer
        guard sizes[0] > stored.count, sizes[0] <= CrashIsolation.fileBytes(dataset.file) else { return false }
        stored.deallocate()
        stored = .allocate(byteCount: sizes[0], alignment: 16)
        continue
      }
      if let destination {
        try inflate(from: UnsafeRawPointer(stored.baseAddress!), sizes: sizes[..<n], masks: masks, first: first,
                    into: destination)
      }
      first += n
    }
    return true
  }

  /// Inflates the stored chunks first, first + 1, … (back to back in `source`) on every core; a
  /// single chunk on this thread (waking the pool costs more than a small chunk's inflating).
  private func inflate(from source: UnsafeRawPointer, sizes: ArraySlice<Int>, masks: [UInt32], first: Int,
                       into destination: UnsafeMutableRawPointer) throws {
    var starts = [Int](repeating: 0, count: sizes.count)
    for j in 1..<Swift.max(sizes.count, 1) { starts[j] = starts[j - 1] + sizes[j - 1] }
    let failed = UnsafeMutableBufferPointer<Bool>.allocate(capacity: sizes.count)
    failed.initialize(repeating: false)
    defer { failed.deallocate() }
    let round = Round(
      source: source, starts: starts, sizes: Array(sizes), masks: masks, destination: destination, failed: failed,
      first: first, chunk: chunk, count: count, elementSize: elementSize)
    if CrashIsolation.isChild || sizes.count == 1 {
      for j in 0..<sizes.count { round.inflate(j) }
    } else {
      DispatchQueue.concurrentPerform(iterations: sizes.count) { round.inflate($0) }
    }
    if let j = failed.firstIndex(of: true) {
      throw CellDataError(
        "\(dataset.file): \(dataset.path): corrupt chunk at element \((first + j) * chunk): not a zlib stream of \(chunk * elementSize) bytes")
    }
  }

  /// One round of chunks to inflate, shared by the threads: each writes only its chunk's bytes
  /// of `destination` and its entry of `failed`.
  private struct Round: @unchecked Sendable {
    let source: UnsafeRawPointer
    let starts, sizes: [Int]
    let masks: [UInt32]
    let destination: UnsafeMutableRawPointer
    let failed: UnsafeMutableBufferPointer<Bool>
    let first, chunk, count, elementSize: Int

    func inflate(_ j: Int) {
      let chunkBytes = chunk * elementSize
      let index = first + j
      let bytes = Swift.min(chunk, count - index * chunk) * elementSize  // the last chunk may be partial
      let input = source + starts[j]
      let output = destination + index * chunkBytes
      if masks[j] & 1 != 0 {  // stored without gzip (an optional filter that failed when written)
        failed[j] = sizes[j] != chunkBytes
        if !failed[j] { output.copyMemory(from: input, byteCount: bytes) }
      } else if bytes == chunkBytes {
        failed[j] = chdf5_inflate_exact(input, sizes[j], output, chunkBytes) != 0
      } else {  // HDF5 stores a partial chunk whole
        let whole = UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 16)
        defer { whole.deallocate() }
        failed[j] = chdf5_inflate_exact(input, sizes[j], whole, chunkBytes) != 0
        if !failed[j] { output.copyMemory(from: whole, byteCount: bytes) }
      }
    }
  }
}
