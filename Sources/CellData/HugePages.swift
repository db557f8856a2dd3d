import Foundation

/// Asks Linux to back a large buffer that an uncompressed read, or `CompressedChunks`' decoding,
/// is about to fill with transparent huge pages (2 MiB), where the system leaves them to
/// `madvise`: a 400 MB read then takes hundreds of page faults instead of a hundred thousand
/// (0.48 → 0.29 s for a 100,000-cell h5ad; a 160 MB gzip dense X 0.165 → 0.12 s, BENCHMARKS.md).
/// Not for what libhdf5 decompresses: its one-chunk-at-a-time decoding through its cache got
/// slower. A hint; it changes no value.
func adviseHugePages(_ start: UnsafeMutableRawPointer, bytes: Int) {
  #if os(Linux)
  let huge = 2 << 20
  guard bytes >= 4 * huge else { return }
  let first = (Int(bitPattern: start) + huge - 1) & ~(huge - 1)
  let end = (Int(bitPattern: start) + bytes) & ~(huge - 1)
  guard end > first, let aligned = UnsafeMutableRawPointer(bitPattern: first) else { return }
  _ = madvise(aligned, end - first, MADV_HUGEPAGE)
  #endif
}
