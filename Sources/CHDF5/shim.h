// C shim for libhdf5 (and zlib, which libhdf5 already links for its deflate filter).
// libhdf5's type and property-list identifiers are macros that call H5open(); Swift cannot
// import those, so each one is wrapped in a static inline function here.
#ifndef CHDF5_SHIM_H
#define CHDF5_SHIM_H

#include <hdf5.h>
#include <zlib.h>
#include <string.h>

#include "lzf_filter.h"  // h5py's LZF filter (id 32000), decode only

static inline hid_t chdf5_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t chdf5_native_int16(void) { return H5T_NATIVE_INT16; }
static inline hid_t chdf5_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t chdf5_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t chdf5_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t chdf5_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t chdf5_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t chdf5_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t chdf5_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t chdf5_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t chdf5_c_s1(void) { return H5T_C_S1; }

static inline hid_t chdf5_std_i8le(void) { return H5T_STD_I8LE; }
static inline hid_t chdf5_std_i16le(void) { return H5T_STD_I16LE; }
static inline hid_t chdf5_std_i32le(void) { return H5T_STD_I32LE; }
static inline hid_t chdf5_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t chdf5_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t chdf5_std_u16le(void) { return H5T_STD_U16LE; }
static inline hid_t chdf5_std_u32le(void) { return H5T_STD_U32LE; }
static inline hid_t chdf5_std_u64le(void) { return H5T_STD_U64LE; }
static inline hid_t chdf5_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t chdf5_ieee_f64le(void) { return H5T_IEEE_F64LE; }

static inline unsigned chdf5_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned chdf5_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline hid_t chdf5_p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t chdf5_p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t chdf5_p_group_create(void) { return H5P_GROUP_CREATE; }
static inline hid_t chdf5_p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline size_t chdf5_variable(void) { return H5T_VARIABLE; }

/// Turns off libhdf5's automatic printing of its error stack; errors are read with
/// chdf5_last_error instead and become Swift errors.
static inline void chdf5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct { char *buffer; size_t capacity; size_t used; } chdf5_error_sink;

static inline herr_t chdf5_error_walker(unsigned n, const H5E_error2_t *err, void *data) {
  chdf5_error_sink *sink = (chdf5_error_sink *)data;
  if (err == NULL || err->desc == NULL || sink->used + 4 >= sink->capacity) return 0;
  const char *desc = err->desc;
  size_t len = strlen(desc);
  if (len == 0) return 0;
  if (sink->used > 0) { sink->buffer[sink->used++] = ';'; sink->buffer[sink->used++] = ' '; }
  size_t room = sink->capacity - sink->used - 1;
  if (len > room) len = room;
  memcpy(sink->buffer + sink->used, desc, len);
  sink->used += len;
  sink->buffer[sink->used] = '\0';
  return 0;
}

/// Writes the descriptions on libhdf5's current error stack, innermost last, into `buffer`
/// and clears the stack. Returns the number of bytes written.
static inline size_t chdf5_last_error(char *buffer, size_t capacity) {
  chdf5_error_sink sink = {buffer, capacity, 0};
  if (capacity > 0) buffer[0] = '\0';
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, chdf5_error_walker, &sink);
  H5Eclear2(H5E_DEFAULT);
  return sink.used;
}

/// H5Literate callback that collects link names into a caller-owned list.
typedef void (*chdf5_name_callback)(const char *name, void *context);
typedef struct { chdf5_name_callback callback; void *context; } chdf5_name_visitor;

static inline herr_t chdf5_link_visitor(hid_t group, const char *name, const H5L_info_t *info, void *data) {
  (void)group; (void)info;
  chdf5_name_visitor *visitor = (chdf5_name_visitor *)data;
  visitor->callback(name, visitor->context);
  return 0;
}

/// Lists the links of a group in creation order when the group tracks it, else by name.
static inline herr_t chdf5_list_links(hid_t group, chdf5_name_callback callback, void *context) {
  chdf5_name_visitor visitor = {callback, context};
  hsize_t idx = 0;
  hid_t gcpl = H5Gget_create_plist(group);
  unsigned flags = 0;
  if (gcpl >= 0) { H5Pget_link_creation_order(gcpl, &flags); H5Pclose(gcpl); }
  H5_index_t order = (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  return H5Literate(group, order, H5_ITER_INC, &idx, chdf5_link_visitor, &visitor);
}

#endif
