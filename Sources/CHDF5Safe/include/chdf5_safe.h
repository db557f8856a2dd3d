// Fault-guarded entry points into libhdf5 for reading files that may be corrupt.
//
// libhdf5 1.10 (Debian's) decodes object headers, layouts, B-trees and heaps of a damaged file
// with too few checks: some inputs make it divide by zero or read through a wild pointer (found
// by `make fuzz`: a chunk dimension of 0 in a layout message). Each function here calls one
// libhdf5 function with SIGSEGV, SIGBUS and SIGFPE caught: a fault inside the call returns the
// function's failure value and sets *fault to the signal number instead of killing the process.
// After a fault libhdf5's internal state cannot be trusted, so the library is marked poisoned:
// every later call here fails at once (fault = -1) and the process should report the error and
// move on without HDF5 (the CLI exits with the error). Only libhdf5's frames are unwound by the
// jump: each guard is a C function called directly from Swift, with no Swift frame in between.
#ifndef CHDF5_SAFE_H
#define CHDF5_SAFE_H

#include <hdf5.h>
#include <stdint.h>

/// Nonzero once a fault inside libhdf5 was caught in this process.
int chdf5_safe_poisoned(void);

/// Prepares the guards: libhdf5 must not run its own atexit clean-up over a poisoned state, so it
/// is told not to register one, and an exit handler here closes the library unless poisoned.
/// Call once, before any other libhdf5 function.
void chdf5_safe_init(void);

htri_t chdf5_safe_is_hdf5(const char *name, int *fault);
hid_t chdf5_safe_fopen(const char *name, unsigned flags, int *fault);
hid_t chdf5_safe_gopen(hid_t location, const char *name, int *fault);
hid_t chdf5_safe_dopen(hid_t location, const char *name, int *fault);
hid_t chdf5_safe_oopen(hid_t location, const char *name, int *fault);
hid_t chdf5_safe_aopen(hid_t object, const char *name, int *fault);
htri_t chdf5_safe_lexists(hid_t location, const char *name, int *fault);
htri_t chdf5_safe_aexists(hid_t object, const char *name, int *fault);
herr_t chdf5_safe_dread(hid_t dataset, hid_t memory_type, void *buffer, int *fault);
herr_t chdf5_safe_aread(hid_t attribute, hid_t memory_type, void *buffer, int *fault);
hsize_t chdf5_safe_dataset_storage_size(hid_t dataset, int *fault);
hid_t chdf5_safe_dataset_space(hid_t dataset, int *fault);
hid_t chdf5_safe_dataset_type(hid_t dataset, int *fault);
/// chdf5_list_links (shim.h) under the guard.
herr_t chdf5_safe_list_links(hid_t group, void (*callback)(const char *name, void *context), void *context, int *fault);
/// chdf5_object_address (shim.h) under the guard.
herr_t chdf5_safe_object_address(hid_t location, const char *name, uint64_t *address, int *fault);
/// Opens a dataset with a chunk cache of `cache_bytes` (H5Pset_chunk_cache, `slots` hash slots,
/// fully read chunks evicted first), so that a compressed chunk read in part by two consecutive
/// block reads is decompressed once.
hid_t chdf5_safe_dopen_cached(hid_t location, const char *name, size_t slots, size_t cache_bytes, int *fault);
/// Reads the hyperslab [start, start + count) of a `rank`-dimensional dataset (rank 1 or 2) into
/// `buffer`, converted to `memory_type`.
herr_t chdf5_safe_dread_block(hid_t dataset, hid_t memory_type, int rank, const hsize_t *start, const hsize_t *count,
                              void *buffer, int *fault);
/// 1 when `dataset` is not chunked, or its chunks have the dataset's rank and no dimension of 0;
/// 0 when its chunk layout is damaged (libhdf5 1.10 reads such a dataset by allocating
/// selections until memory runs out; later versions refuse to open it).
int chdf5_safe_chunk_layout_valid(hid_t dataset, int *fault);
/// The rank (1 to `max_rank`) when `dataset` is stored in chunks through one filter, or through
/// the byte shuffle and then one filter (what h5py writes for compression="gzip" or "lzf",
/// with shuffle=True), with the chunk's shape in `chunk_dims`, the filter's id in `filter`, and
/// whether the shuffle comes first in `shuffled`; 0 otherwise.
int chdf5_safe_compressed_chunks(hid_t dataset, int max_rank, hsize_t *chunk_dims, int *filter, int *shuffled,
                                 int *fault);
/// Reads the chunks at `offsets` (`count` × `rank` element coordinates) of such a dataset as
/// stored (H5Dread_chunk: still compressed) back to back into `buffer`, each one's stored bytes
/// in `sizes` and filter mask in `masks`, until the next does not fit in `capacity` bytes.
/// Returns how many it read (0 with sizes[0] set when the first does not fit), or -1 when a
/// chunk has no storage or libhdf5 fails.
long chdf5_safe_read_raw_chunks(hid_t dataset, int rank, const hsize_t *offsets, long count, void *buffer,
                                size_t capacity, size_t *sizes, uint32_t *masks, int *fault);
/// Closes any identifier (file, group, dataset, attribute, type, space, object) unless poisoned.
herr_t chdf5_safe_close(hid_t id);

#endif
