// HDF5's gzip (deflate) filter through libdeflate where the system has it (deflate.c).
#ifndef CHDF5_DEFLATE_H
#define CHDF5_DEFLATE_H

/// Installs the libdeflate filter for HDF5 filter id 1; returns 1 when it is in use, 0 when
/// libhdf5's zlib filter stays (no libdeflate.so.0, SINGLECELL_ZLIB=1, or libhdf5 does not
/// export H5Z_register). Call once, before any file is opened.
int chdf5_register_libdeflate(void);

#endif
