// Read support for h5py's LZF filter (HDF5 filter id 32000), which libhdf5 does not ship.
// h5py and anndata write it with compression="lzf"; each chunk is one block in liblzf's
// format (Marc Lehmann's liblzf, as documented there and in h5py's lzf/ folder):
//   a control byte c < 32:  a literal run, the next c + 1 bytes are copied to the output;
//   a control byte c >= 32: a back-reference of length (c >> 5) + 2 bytes, where a length
//                           field of 7 is followed by one more byte that is added to it;
//                           then one byte b, and the copy starts ((c & 31) << 8) + b + 1
//                           bytes back in the output (it may overlap what it writes).
// This is our own decoder, decompression only; every read and write is bounds-checked so a
// corrupt chunk is an HDF5 error, never a crash.
#ifndef CHDF5_LZF_FILTER_H
#define CHDF5_LZF_FILTER_H

#include <hdf5.h>
#include <stdint.h>
#include <string.h>

#define CHDF5_LZF_FILTER_ID 32000

enum {
  CHDF5_LZF_OUTPUT_FULL = -1,    // the decoded data does not fit in the output buffer
  CHDF5_LZF_TRUNCATED = -2,      // the input ends inside a literal run or back-reference
  CHDF5_LZF_BAD_REFERENCE = -3,  // a back-reference points before the start of the output
};

/// Decodes one LZF block `in[0 ..< in_len]` into `out[0 ..< out_capacity]`. Returns the number
/// of bytes decoded, or one of the negative CHDF5_LZF_* codes.
static inline long chdf5_lzf_decode(const unsigned char *in, size_t in_len, unsigned char *out, size_t out_capacity) {
  size_t ip = 0, op = 0;
  while (ip < in_len) {
    size_t ctrl = in[ip++];
    if (ctrl < 32) {
      size_t run = ctrl + 1;
      if (run > in_len - ip) return CHDF5_LZF_TRUNCATED;
      if (run > out_capacity - op) return CHDF5_LZF_OUTPUT_FULL;
      memcpy(out + op, in + ip, run);
      ip += run;
      op += run;
    } else {
      size_t len = ctrl >> 5;
      if (len == 7) {
        if (ip >= in_len) return CHDF5_LZF_TRUNCATED;
        len += in[ip++];
      }
      if (ip >= in_len) return CHDF5_LZF_TRUNCATED;
      size_t distance = ((ctrl & 31) << 8) + in[ip++] + 1;
      len += 2;
      if (distance > op) return CHDF5_LZF_BAD_REFERENCE;
      if (len > out_capacity - op) return CHDF5_LZF_OUTPUT_FULL;
      for (size_t i = 0; i < len; i++, op++) out[op] = out[op - distance];  // byte by byte: may overlap
    }
  }
  return (long)op;
}

static inline size_t chdf5_lzf_fail(const char *what) {
  H5Epush2(H5E_DEFAULT, __FILE__, "chdf5_lzf_filter", __LINE__, H5E_ERR_CLS, H5E_PLINE, H5E_CANTFILTER,
           "LZF filter: %s", what);
  return 0;
}

/// The H5Z filter callback. h5py stores the uncompressed chunk size in cd_values[2]; without
/// it the output buffer starts at the chunk buffer's size and doubles (LZF expands at most
/// 88-fold: 3 input bytes give at most 264 output bytes).
static inline size_t chdf5_lzf_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                                      size_t nbytes, size_t *buf_size, void **buf) {
  if (!(flags & H5Z_FLAG_REVERSE)) return chdf5_lzf_fail("writing LZF is not supported (use gzip)");
  int size_known = cd_nelmts >= 3 && cd_values[2] != 0;
  size_t capacity = size_known ? cd_values[2] : (*buf_size > nbytes ? *buf_size : nbytes);
  size_t limit = size_known ? capacity : 90 * nbytes + 64;
  for (;;) {
    unsigned char *out = (unsigned char *)H5allocate_memory(capacity, 0);
    if (out == NULL) return chdf5_lzf_fail("out of memory");
    long n = chdf5_lzf_decode((const unsigned char *)*buf, nbytes, out, capacity);
    if (n > 0) {
      H5free_memory(*buf);
      *buf = out;
      *buf_size = capacity;
      return (size_t)n;
    }
    H5free_memory(out);
    if (n == CHDF5_LZF_OUTPUT_FULL && capacity < limit) {
      capacity = capacity > limit / 2 ? limit : capacity * 2;
      continue;
    }
    switch (n) {
      case CHDF5_LZF_TRUNCATED: return chdf5_lzf_fail("corrupt chunk (input ends inside a run)");
      case CHDF5_LZF_BAD_REFERENCE: return chdf5_lzf_fail("corrupt chunk (back-reference before the start of the data)");
      case CHDF5_LZF_OUTPUT_FULL: return chdf5_lzf_fail("corrupt chunk (decodes to more than the chunk size)");
      default: return chdf5_lzf_fail("corrupt chunk (empty)");
    }
  }
}

/// Registers the LZF decoder with libhdf5 (idempotent: a second call replaces the first).
static inline herr_t chdf5_register_lzf(void) {
  H5Z_class2_t lzf = {
    H5Z_CLASS_T_VERS, (H5Z_filter_t)CHDF5_LZF_FILTER_ID,
    0, 1,  // no encoder, a decoder
    "lzf (h5py; decode only)", NULL, NULL, chdf5_lzf_filter,
  };
  return H5Zregister(&lzf);
}

#endif
