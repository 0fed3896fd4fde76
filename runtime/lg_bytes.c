/* lg_bytes.c: byte data sets converted per batch (see lg_bytes.h). */
#include <stdlib.h>
#include <string.h>
#include "lg_bytes.h"

lg_bytes *lg_bytes_wrap(unsigned char *data, int ndim, const int64_t *shape)
{
  lg_bytes *b = calloc(1, sizeof *b);
  if (!b) { free(data); return lg_error("bytes: out of memory"); }
  b->data = data;
  b->ndim = ndim;
  memcpy(b->shape, shape, sizeof(int64_t) * (size_t)ndim);
  b->row_bytes = 1;
  for (int d = 1; d < ndim; d++) b->row_bytes *= shape[d];
  return b;
}

void lg_bytes_free(lg_bytes *b)
{
  if (!b) return;
  free(b->data);
  free(b);
}

lg_tensor *lg_bytes_batch(const lg_bytes *b, int64_t n)
{
  int64_t shape[LG_MAXDIM];
  memcpy(shape, b->shape, sizeof(int64_t) * (size_t)b->ndim);
  shape[0] = n;
  return lg_empty(b->ndim, shape);
}

/* One row: dst (row_bytes) = lut[src (row_bytes)]. */
static void lg_bytes_row(const unsigned char *src, int64_t len, const float *lut, float *dst)
{
  for (int64_t j = 0; j < len; j++) dst[j] = lut[src[j]];
}

int lg_bytes_gather(const lg_bytes *b, const int64_t *rows, int64_t n, const float *lut,
                    float *dst)
{
  for (int64_t i = 0; i < n; i++)   /* check everything before writing */
    if (rows[i] < 0 || rows[i] >= b->shape[0]) {
      lg_error("bytes: gather: row %lld at position %lld is outside 1..%lld",
               (long long)rows[i] + 1, (long long)i + 1, (long long)b->shape[0]);
      return -1;
    }
  for (int64_t i = 0; i < n; i++)
    lg_bytes_row(b->data + rows[i] * b->row_bytes, b->row_bytes, lut, dst + i * b->row_bytes);
  return 0;
}

lg_tensor *lg_bytes_range(const lg_bytes *b, int64_t start, int64_t n, const float *lut)
{
  if (start < 0 || n < 0 || start > b->shape[0] - n)
    return lg_error("bytes: rows %lld..%lld are outside 1..%lld", (long long)start + 1,
                    (long long)(start + n), (long long)b->shape[0]);
  lg_tensor *t = lg_bytes_batch(b, n);
  if (!t) return NULL;
  lg_bytes_row(b->data + start * b->row_bytes, n * b->row_bytes, lut, lg_data(t));
  return t;
}
