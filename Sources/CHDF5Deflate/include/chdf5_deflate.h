// HDF5's gzip (deflate) filter through libdeflate where the system has it (deflate.c).
#ifndef CHDF5_DEFLATE_H
#define CHDF5_DEFLATE_H

#include <stddef.h>

/// Installs the libdeflate filter for HDF5 filter id 1; returns 1 when it is in use, 0 when
/// libhdf5's zlib filter stays (no libdeflate.so.0, SINGLECELL_ZLIB=1, or libhdf5 does not
/// export H5Z_register). Call once, before any file is opened.
int chdf5_register_libdeflate(void);

/// Inflates one zlib stream (an HDF5 gzip chunk) of `in_bytes` into exactly `out_bytes`, with
/// libdeflate where it is in use, else zlib: 0 on success; -1 when the stream is damaged or does
/// not inflate to exactly `out_bytes`. Safe on any input and from any thread.
int chdf5_inflate_exact(const void *in, size_t in_bytes, void *out, size_t out_bytes);

#endif
