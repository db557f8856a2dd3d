// See include/chdf5_safe.h.
#include "chdf5_safe.h"

#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "../CHDF5/shim.h"

static volatile sig_atomic_t poisoned = 0;
static __thread sigjmp_buf *active_jump = NULL;
static const int guarded_signals[] = {SIGSEGV, SIGBUS, SIGFPE};
#define GUARDED_COUNT 3

static void fault_handler(int signal_number) {
  if (active_jump != NULL) siglongjmp(*active_jump, signal_number);
  // Not inside a guard: back to the default action, which the faulting instruction re-raises.
  struct sigaction fallback;
  memset(&fallback, 0, sizeof fallback);
  fallback.sa_handler = SIG_DFL;
  sigaction(signal_number, &fallback, NULL);
}

int chdf5_safe_poisoned(void) { return poisoned; }

static void close_library_at_exit(void) {
  if (!poisoned) H5close();
}

void chdf5_safe_init(void) {
  H5dont_atexit();
  atexit(close_library_at_exit);
}

// GUARD(type, failure, call): runs `call` with the fault handler installed for the three signals
// (on the alternate signal stack when there is one), then restores the previous handlers.
#define GUARD(type, failure, call)                                                   \
  do {                                                                               \
    *fault = 0;                                                                      \
    if (poisoned) {                                                                  \
      *fault = -1;                                                                   \
      return (failure);                                                              \
    }                                                                                \
    struct sigaction handler, previous[GUARDED_COUNT];                               \
    memset(&handler, 0, sizeof handler);                                             \
    handler.sa_handler = fault_handler;                                              \
    handler.sa_flags = SA_ONSTACK | SA_NODEFER;                                      \
    sigemptyset(&handler.sa_mask);                                                   \
    for (int i = 0; i < GUARDED_COUNT; i++) sigaction(guarded_signals[i], &handler, &previous[i]); \
    sigjmp_buf jump;                                                                 \
    type volatile result = (failure);                                                \
    int signal_number = sigsetjmp(jump, 1);                                          \
    if (signal_number == 0) {                                                        \
      active_jump = &jump;                                                           \
      result = (call);                                                               \
    } else {                                                                         \
      poisoned = 1;                                                                  \
      *fault = signal_number;                                                        \
      result = (failure);                                                            \
    }                                                                                \
    active_jump = NULL;                                                              \
    for (int i = 0; i < GUARDED_COUNT; i++) sigaction(guarded_signals[i], &previous[i], NULL); \
    return result;                                                                   \
  } while (0)

htri_t chdf5_safe_is_hdf5(const char *name, int *fault) { GUARD(htri_t, -1, H5Fis_hdf5(name)); }
hid_t chdf5_safe_fopen(const char *name, unsigned flags, int *fault) {
  GUARD(hid_t, -1, H5Fopen(name, flags, H5P_DEFAULT));
}
hid_t chdf5_safe_gopen(hid_t location, const char *name, int *fault) {
  GUARD(hid_t, -1, H5Gopen2(location, name, H5P_DEFAULT));
}
hid_t chdf5_safe_dopen(hid_t location, const char *name, int *fault) {
  GUARD(hid_t, -1, H5Dopen2(location, name, H5P_DEFAULT));
}
hid_t chdf5_safe_oopen(hid_t location, const char *name, int *fault) {
  GUARD(hid_t, -1, H5Oopen(location, name, H5P_DEFAULT));
}
hid_t chdf5_safe_aopen(hid_t object, const char *name, int *fault) {
  GUARD(hid_t, -1, H5Aopen(object, name, H5P_DEFAULT));
}
htri_t chdf5_safe_lexists(hid_t location, const char *name, int *fault) {
  GUARD(htri_t, -1, H5Lexists(location, name, H5P_DEFAULT));
}
htri_t chdf5_safe_aexists(hid_t object, const char *name, int *fault) { GUARD(htri_t, -1, H5Aexists(object, name)); }
herr_t chdf5_safe_dread(hid_t dataset, hid_t memory_type, void *buffer, int *fault) {
  GUARD(herr_t, -1, H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer));
}
herr_t chdf5_safe_aread(hid_t attribute, hid_t memory_type, void *buffer, int *fault) {
  GUARD(herr_t, -1, H5Aread(attribute, memory_type, buffer));
}
hsize_t chdf5_safe_dataset_storage_size(hid_t dataset, int *fault) { GUARD(hsize_t, 0, H5Dget_storage_size(dataset)); }
hid_t chdf5_safe_dataset_space(hid_t dataset, int *fault) { GUARD(hid_t, -1, H5Dget_space(dataset)); }
hid_t chdf5_safe_dataset_type(hid_t dataset, int *fault) { GUARD(hid_t, -1, H5Dget_type(dataset)); }
herr_t chdf5_safe_list_links(hid_t group, void (*callback)(const char *name, void *context), void *context, int *fault) {
  GUARD(herr_t, -1, chdf5_list_links(group, callback, context));
}
herr_t chdf5_safe_object_address(hid_t location, const char *name, uint64_t *address, int *fault) {
  GUARD(herr_t, -1, chdf5_object_address(location, name, address));
}

static hid_t open_with_chunk_cache(hid_t location, const char *name, size_t slots, size_t cache_bytes) {
  hid_t access = H5Pcreate(H5P_DATASET_ACCESS);
  if (access < 0) return -1;
  hid_t dataset = -1;
  if (H5Pset_chunk_cache(access, slots, cache_bytes, 1.0) >= 0) dataset = H5Dopen2(location, name, access);
  hid_t errors = dataset < 0 ? H5Eget_current_stack() : -1;  // H5Pclose would empty the stack
  H5Pclose(access);
  if (errors >= 0) H5Eset_current_stack(errors);
  return dataset;
}

hid_t chdf5_safe_dopen_cached(hid_t location, const char *name, size_t slots, size_t cache_bytes, int *fault) {
  GUARD(hid_t, -1, open_with_chunk_cache(location, name, slots, cache_bytes));
}

static herr_t read_block(hid_t dataset, hid_t memory_type, int rank, const hsize_t *start, const hsize_t *count, void *buffer) {
  hid_t file_space = H5Dget_space(dataset);
  if (file_space < 0) return -1;
  herr_t status = -1;
  hid_t errors = -1;  // closing is an API call, which empties the error stack: keep the read's errors
  if (H5Sget_simple_extent_ndims(file_space) == rank &&
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL) >= 0) {
    hid_t memory_space = H5Screate_simple(rank, count, NULL);
    if (memory_space >= 0) {
      status = H5Dread(dataset, memory_type, memory_space, file_space, H5P_DEFAULT, buffer);
      if (status < 0) errors = H5Eget_current_stack();
      H5Sclose(memory_space);
    }
  }
  H5Sclose(file_space);
  if (errors >= 0) H5Eset_current_stack(errors);
  return status;
}

herr_t chdf5_safe_dread_block(hid_t dataset, hid_t memory_type, int rank, const hsize_t *start, const hsize_t *count,
                              void *buffer, int *fault) {
  GUARD(herr_t, -1, read_block(dataset, memory_type, rank, start, count, buffer));
}

static int chunk_layout_valid(hid_t dataset) {
  hid_t plist = H5Dget_create_plist(dataset);
  hid_t space = H5Dget_space(dataset);
  int valid = 0;
  if (plist >= 0 && space >= 0) {
    H5D_layout_t layout = H5Pget_layout(plist);
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t chunk_dims[H5S_MAX_RANK];
    if (layout != H5D_CHUNKED) {
      valid = layout >= 0;
    } else if (rank >= 1 && rank <= H5S_MAX_RANK && H5Pget_chunk(plist, H5S_MAX_RANK, chunk_dims) == rank) {
      valid = 1;
      for (int d = 0; d < rank; d++) valid = valid && chunk_dims[d] > 0;
    }
  }
  if (space >= 0) H5Sclose(space);
  if (plist >= 0) H5Pclose(plist);
  H5Eclear2(H5E_DEFAULT);
  return valid;
}

int chdf5_safe_chunk_layout_valid(hid_t dataset, int *fault) { GUARD(int, 0, chunk_layout_valid(dataset)); }

static int compressed_chunks(hid_t dataset, int max_rank, hsize_t *chunk_dims, int *filter, int *shuffled) {
  hid_t plist = H5Dget_create_plist(dataset);
  if (plist < 0) return 0;
  unsigned options = 1, flags = 0;
  size_t values = 0;
  int rank = H5Pget_layout(plist) == H5D_CHUNKED ? H5Pget_chunk(plist, max_rank, chunk_dims) : 0;
  int filters = H5Pget_nfilters(plist);
  int eligible = rank >= 1 && rank <= max_rank && H5Pget_chunk_opts(plist, &options) >= 0 && options == 0 &&
                 (filters == 1 || filters == 2);
  if (eligible) {
    int first = H5Pget_filter2(plist, 0, &flags, &values, NULL, 0, NULL, NULL);
    *shuffled = filters == 2 && first == H5Z_FILTER_SHUFFLE;
    values = 0;  // no client data wanted (a count above 0 would have libhdf5 write into NULL)
    *filter = filters == 1 ? first : *shuffled ? H5Pget_filter2(plist, 1, &flags, &values, NULL, 0, NULL, NULL) : -1;
  }
  for (int d = 0; eligible && d < rank; d++) eligible = chunk_dims[d] > 0;
  H5Pclose(plist);
  H5Eclear2(H5E_DEFAULT);
  return eligible && *filter >= 0 ? rank : 0;
}

int chdf5_safe_compressed_chunks(hid_t dataset, int max_rank, hsize_t *chunk_dims, int *filter, int *shuffled,
                                 int *fault) {
  GUARD(int, 0, compressed_chunks(dataset, max_rank, chunk_dims, filter, shuffled));
}

static long read_raw_chunks(hid_t dataset, int rank, const hsize_t *offsets, long count, unsigned char *buffer,
                            size_t capacity, size_t *sizes, uint32_t *masks) {
  size_t used = 0;
  for (long i = 0; i < count; i++) {
    const hsize_t *offset = offsets + i * rank;
    hsize_t stored = 0;
    if (H5Dget_chunk_storage_size(dataset, offset, &stored) < 0 || stored == 0) return -1;
    if (stored > capacity - used) {
      if (i == 0) sizes[0] = (size_t)stored;
      return i;
    }
    uint32_t mask = 0;
    if (H5Dread_chunk(dataset, H5P_DEFAULT, offset, &mask, buffer + used) < 0) return -1;
    sizes[i] = (size_t)stored;
    masks[i] = mask;
    used += (size_t)stored;
  }
  return count;
}

long chdf5_safe_read_raw_chunks(hid_t dataset, int rank, const hsize_t *offsets, long count, void *buffer,
                                size_t capacity, size_t *sizes, uint32_t *masks, int *fault) {
  GUARD(long, -1, read_raw_chunks(dataset, rank, offsets, count, buffer, capacity, sizes, masks));
}

herr_t chdf5_safe_close(hid_t id) {
  if (poisoned) return 0;
  switch (H5Iget_type(id)) {
    case H5I_FILE: return H5Fclose(id);
    case H5I_GROUP: return H5Gclose(id);
    case H5I_DATASET: return H5Dclose(id);
    case H5I_ATTR: return H5Aclose(id);
    case H5I_DATATYPE: return H5Tclose(id);
    case H5I_DATASPACE: return H5Sclose(id);
    default: return H5Oclose(id);
  }
}
