// C shim for libhdf5 (and zlib, which libhdf5 already links for its deflate filter).
// libhdf5's type and property-list identifiers are macros that call H5open(); Swift cannot
// import those, so each one is wrapped in a static inline function here.
#ifndef CHDF5_SHIM_H
#define CHDF5_SHIM_H

#include <hdf5.h>
#include <zlib.h>
#include <string.h>

#include "lzf_filter.h"  // h5py's LZF filter (id 32000), decode only
#include <signal.h>
#include <sys/prctl.h>

/// A forked child that reads a file for CrashIsolation dies with its parent.
static inline void chdf5_die_with_parent(void) { prctl(PR_SET_PDEATHSIG, SIGKILL); }

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
static inline unsigned chdf5_acc_rdwr(void) { return H5F_ACC_RDWR; }
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

/// Variable-length strings are read without libhdf5's conversion, which trusts the global heap
/// (libhdf5 1.10 copies from a NULL or out-of-bounds object of a damaged heap collection). A
/// soft conversion from any variable-length type to an opaque type tagged CHDF5_VLEN_REF_TAG
/// instead hands over the raw on-disk references (4-byte length, heap collection address,
/// 4-byte object index), which the caller resolves with its own bounds-checked heap parser.
#define CHDF5_VLEN_REF_TAG "swift-singlecell raw vlen reference"
#define CHDF5_VLEN_REF_SIZE 32

static inline herr_t chdf5_vlen_ref_conv(hid_t src_id, hid_t dst_id, H5T_cdata_t *cdata, size_t nelmts,
                                         size_t buf_stride, size_t bkg_stride, void *buf, void *bkg, hid_t dxpl) {
  (void)bkg_stride; (void)bkg; (void)dxpl;
  switch (cdata->command) {
    case H5T_CONV_INIT: {
      if (H5Tget_class(dst_id) != H5T_OPAQUE || H5Tget_size(dst_id) != CHDF5_VLEN_REF_SIZE) return -1;
      char *tag = H5Tget_tag(dst_id);
      int ours = tag != NULL && strcmp(tag, CHDF5_VLEN_REF_TAG) == 0;
      if (tag != NULL) H5free_memory(tag);
      if (!ours) return -1;
      cdata->need_bkg = H5T_BKG_NO;
      return 0;
    }
    case H5T_CONV_FREE:
      return 0;
    case H5T_CONV_CONV: {
      size_t src_size = H5Tget_size(src_id), dst_size = CHDF5_VLEN_REF_SIZE;
      if (src_size == 0 || src_size > dst_size) return -1;
      size_t src_stride = buf_stride ? buf_stride : src_size, dst_stride = buf_stride ? buf_stride : dst_size;
      unsigned char *bytes = (unsigned char *)buf;
      // Widening in place: from the last element back, so that nothing is overwritten unread.
      for (size_t k = nelmts; k > 0; k--) {
        size_t i = k - 1;
        unsigned char element[CHDF5_VLEN_REF_SIZE];
        memset(element, 0, sizeof element);
        memcpy(element, bytes + i * src_stride, src_size);
        memcpy(bytes + i * dst_stride, element, dst_size);
      }
      return 0;
    }
    default:
      return -1;
  }
}

/// The opaque memory type of raw variable-length references (close it with H5Tclose).
static inline hid_t chdf5_vlen_ref_type(void) {
  hid_t type = H5Tcreate(H5T_OPAQUE, CHDF5_VLEN_REF_SIZE);
  if (type >= 0) H5Tset_tag(type, CHDF5_VLEN_REF_TAG);
  return type;
}

/// Registers chdf5_vlen_ref_conv (once per process, before any read).
static inline herr_t chdf5_register_vlen_ref_conv(void) {
  hid_t src = H5Tcopy(H5T_C_S1);
  H5Tset_size(src, H5T_VARIABLE);
  hid_t dst = chdf5_vlen_ref_type();
  herr_t status = H5Tregister(H5T_PERS_SOFT, "swift-singlecell vlen references", src, dst, chdf5_vlen_ref_conv);
  H5Tclose(src);
  H5Tclose(dst);
  return status;
}

/// Sizes of file addresses and lengths and the user-block size (the base of addresses) of the
/// file holding `object`; negative on failure.
static inline herr_t chdf5_file_layout(hid_t object, size_t *sizeof_addr, size_t *sizeof_size, hsize_t *userblock) {
  hid_t file = H5Iget_file_id(object);
  if (file < 0) return -1;
  hid_t fcpl = H5Fget_create_plist(file);
  herr_t status = -1;
  if (fcpl >= 0) {
    if (H5Pget_sizes(fcpl, sizeof_addr, sizeof_size) >= 0 && H5Pget_userblock(fcpl, userblock) >= 0) status = 0;
    H5Pclose(fcpl);
  }
  unsigned intent = 0;
  if (status == 0 && H5Fget_intent(file, &intent) >= 0 && (intent & H5F_ACC_RDWR)) H5Fflush(file, H5F_SCOPE_GLOBAL);
  H5Fclose(file);
  return status;
}

/// A number that identifies the object `name` of `location` within its file (its header address),
/// to recognise an object reached twice (a hard-link cycle).
static inline herr_t chdf5_object_address(hid_t location, const char *name, uint64_t *address) {
#if H5_VERSION_GE(1, 12, 0)
  H5O_info2_t info;
  if (H5Oget_info_by_name3(location, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
  uint64_t a = 0;
  memcpy(&a, &info.token, sizeof a < sizeof info.token ? sizeof a : sizeof info.token);
  *address = a;
#else
  H5O_info_t info;
  if (H5Oget_info_by_name2(location, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
  *address = (uint64_t)info.addr;
#endif
  return 0;
}

#endif
