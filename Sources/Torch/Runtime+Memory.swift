#if canImport(Glibc)
import Glibc
#endif

extension Runtime {
  /// Keeps freed memory in the process instead of handing it back to the system (glibc:
  /// no mmap for large blocks, no trimming of the heap). libtorch's CPU allocator is plain
  /// malloc, and glibc serves every block above 32 MB with a fresh mmap that is unmapped when
  /// freed, so a training loop whose activations are hundreds of MB pays page faults and page
  /// zeroing for every tensor of every step (about a fifth of an scBasset epoch on 2 cores).
  /// With this, the memory of one step is reused by the next; the resident size stays at the
  /// peak. Same effect as `GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=…`.
  /// Returns false where it does not apply (not glibc).
  @discardableResult
  public static func retainFreedMemory() -> Bool {
    #if canImport(Glibc)
    // mallopt(3) is in <malloc.h>, which the Glibc module does not export: look it up.
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "mallopt") else { return false }
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    let trimThreshold: Int32 = -1, mmapMax: Int32 = -4  // M_TRIM_THRESHOLD, M_MMAP_MAX
    return mallopt(mmapMax, 0) == 1 && mallopt(trimThreshold, Int32.max) == 1
    #else
    return false
    #endif
  }
}
