/* lg_bytes.h: a data set kept as bytes (uint8 rows, e.g. the pixels of an
 * IDX file) and converted to float one batch at a time.
 *
 * Tensors are float32 only, so an image data set held as a tensor costs 4
 * bytes a pixel, and scaling it makes further full-size copies. Keeping the
 * bytes and converting only the rows a batch draws costs 1 byte a pixel and
 * a batch-sized float buffer. The conversion goes through a 256-entry table
 * (lut[b] is the float for byte value b), computed by the caller with the
 * very tensor ops the full-float path used, so a batch is bit-identical to
 * the same rows of the old scaled tensor. */
#ifndef LG_BYTES_H
#define LG_BYTES_H

#include "lg_tensor.h"

typedef struct {
  unsigned char *data;           /* shape[0] rows of row_bytes bytes, row-major; malloc'd */
  int ndim;
  int64_t shape[LG_MAXDIM];      /* rows first */
  int64_t row_bytes;             /* product of shape[1..] */
} lg_bytes;

/* Take ownership of data (malloc'd, shape[0] * prod(shape[1..]) bytes).
 * NULL with error (data freed) when out of memory. */
lg_bytes *lg_bytes_wrap(unsigned char *data, int ndim, const int64_t *shape);
void lg_bytes_free(lg_bytes *b);

/* The (n, shape[1..]) float tensor a gather of n rows fills (uninitialised). */
lg_tensor *lg_bytes_batch(const lg_bytes *b, int64_t n);

/* rows: (n) 0-based row numbers. lut: (256) floats. dst: (n, shape[1..]).
 * dst[i] = lut[row rows[i]] elementwise, in one pass. 0, or -1 with error
 * (nothing written) for a row out of range. */
int lg_bytes_gather(const lg_bytes *b, const int64_t *rows, int64_t n, const float *lut,
                    float *dst);

/* rows start .. start+n-1 (0-based) into a new (n, shape[1..]) tensor, the
 * same conversion; NULL with error when out of range. */
lg_tensor *lg_bytes_range(const lg_bytes *b, int64_t start, int64_t n, const float *lut);

#endif
