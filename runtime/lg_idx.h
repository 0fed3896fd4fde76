/* lg_idx.h: the IDX file format of MNIST / Fashion-MNIST (LeCun et al.).
 *
 * Layout: two zero bytes, a type code, a dim count, then one big-endian
 * uint32 per dim and the values, big-endian, row-major. Files may be
 * gzip-compressed (detected by the gzip magic, not by the name).
 * Reading gives a float tensor of the raw values (no scaling: a ubyte pixel
 * 255 reads as 255.0). Errors name the file and the field at fault:
 *   "idx: /p/x.gz: truncated: header says 60000x28x28 = 47040000 bytes, file has 1000"
 */
#ifndef LG_IDX_H
#define LG_IDX_H

#include "lg_tensor.h"

/* IDX type codes */
#define LG_IDX_UBYTE 0x08
#define LG_IDX_SBYTE 0x09
#define LG_IDX_I16   0x0B
#define LG_IDX_I32   0x0C
#define LG_IDX_F32   0x0D
#define LG_IDX_F64   0x0E

/* -> tensor with the file's dims (1..LG_MAXDIM), or NULL with error. */
lg_tensor *lg_idx_read(const char *path);

/* The raw payload of a ubyte IDX file, kept as bytes: the first `limit`
 * rows along dim 1 (limit < 0: all), read without converting anything and,
 * for gzip, without inflating the rows after them. The header is checked as
 * lg_idx_read checks it (a plain file's length must match the header even
 * when fewer rows are read). *out is malloc'd (free it), shape[0] is the
 * number of rows read, *rows_in_file the header's. 0, or -1 with error (other data types are refused:
 * they are read as floats by lg_idx_read). */
int lg_idx_read_bytes(const char *path, int64_t limit, int *ndim, int64_t shape[LG_MAXDIM],
                      int64_t *rows_in_file, unsigned char **out);

/* Write t (any shape with 1..LG_MAXDIM dims, any strides) as IDX of type
 * LG_IDX_F32 or LG_IDX_UBYTE (values must round to integers 0..255; an
 * out-of-range value is an error, not silently clamped). A path ending in
 * ".gz" is written gzip-compressed. Written atomically (temp + rename).
 * 0, or -1 with error. */
int lg_idx_write(const char *path, const lg_tensor *t, int type);

#endif
