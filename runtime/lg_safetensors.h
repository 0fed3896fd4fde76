/* lg_safetensors.h: checkpoints in the safetensors format (Hugging Face).
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * padded with spaces so the data starts 8-byte aligned, then the raw
 * little-endian tensor bytes; offsets are relative to the data start.
 * The file is plain data: loading it can never run code (unlike pickle).
 *
 * The writer sorts tensors by name, packs them without gaps (the layout the
 * reference implementation writes and requires) and replaces the file
 * atomically (temp + fsync + rename), so a crash keeps the last good file.
 * The reader validates every field (header length vs file size, JSON syntax,
 * dtype F32 only, shapes, offsets inside the data region, end - begin ==
 * 4 * numel, no overlaps and no gaps) and rejects a bad file with an error
 * naming the file and the field:
 *   "safetensors: ck.st: header tensor 'G.0.weight' (JSON byte 31): dtype F16 not
 *    supported (only F32)"
 */
#ifndef LG_SAFETENSORS_H
#define LG_SAFETENSORS_H

#include "lg_tensor.h"

#define LG_ST_MAX_HEADER (100u << 20)   /* same cap as the reference reader */

/* A loaded file: n tensors in file (name) order and nmeta metadata pairs. */
typedef struct lg_st {
  int n;
  char **names;
  lg_tensor **tensors;       /* owned references, contiguous, requires_grad 0 */
  int nmeta;
  char **keys, **vals;       /* sorted by key */
} lg_st;

/* Read and validate; NULL with error. Free with lg_st_free. */
lg_st *lg_st_read(const char *path);
void lg_st_free(lg_st *st);   /* NULL-safe; releases the tensors */

/* Write n named tensors (any strides; values are copied) and nmeta string
 * metadata pairs. Names and keys must be valid UTF-8, unique, and names must
 * not be "__metadata__". 0, or -1 with error (the old file is kept). */
int lg_st_write(const char *path, int n, const char *const *names, lg_tensor *const *ts,
                int nmeta, const char *const *keys, const char *const *vals);

#endif
