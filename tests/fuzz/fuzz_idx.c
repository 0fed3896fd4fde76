/* fuzz_idx.c: libFuzzer harness for the IDX reader (runtime/lg_idx.c,
 * lg_idx_read), both of its paths. The input is read as a file as it is
 * (plain IDX, or gzip when it starts with the gzip magic: corrupt streams,
 * bad CRCs, concatenated members); an input that is not gzip is then also
 * gzip-compressed here and read again, so that the streaming gzip path sees
 * the same header and size mutations the plain path does. The two reads must
 * agree: both fail, or both give the same shape and the same bits. */
#include "lgfuzz.h"   /* first: it defines _GNU_SOURCE */
#include <zlib.h>
#include "lg_idx.h"

static lgf_file plain, packed;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  lgf_file_open(&plain, "fuzz_idx");
  lgf_file_open(&packed, "fuzz_idx_gz");
  return 0;
}

/* data as one gzip member (the format lg_idx_write and gzip(1) write), or
 * NULL when zlib fails; the caller frees it. */
static uint8_t *gzip_bytes(const uint8_t *data, size_t size, size_t *out)
{
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
  size_t cap = deflateBound(&z, size);
  uint8_t *buf = malloc(cap ? cap : 1);
  if (!buf) { deflateEnd(&z); return NULL; }
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)size;
  z.next_out = buf;
  z.avail_out = (uInt)cap;
  int rc = deflate(&z, Z_FINISH);
  *out = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) { free(buf); return NULL; }
  return buf;
}

static int same(const lg_tensor *a, const lg_tensor *b)
{
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return memcmp(lg_data(a), lg_data(b), sizeof(float) * (size_t)lg_numel(a)) == 0;
}

static lg_tensor *read_checked(const lgf_file *f)
{
  lgf_begin_run();
  lg_tensor *t = lg_idx_read(f->path);
  if (t) { lgf_touch(t); lgf_say_loaded("lg_idx_read", t); }
  else lgf_check_error("lg_idx_read");
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  lgf_file_set(&plain, data, size);
  lg_tensor *a = read_checked(&plain);
  int is_gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  size_t zn = 0;
  uint8_t *z = is_gz || size > (1u << 24) ? NULL : gzip_bytes(data, size, &zn);
  if (z) {
    lgf_file_set(&packed, z, zn);
    free(z);
    lg_tensor *b = read_checked(&packed);
    if (!a != !b || (a && !same(a, b))) {
      fprintf(stderr, "lgfuzz: lg_idx_read: the plain file %s but its gzip copy %s\n",
              a ? "loads" : "fails", b ? (a ? "loads differently" : "loads") : "fails");
      abort();
    }
    lg_release(b);
  }
  lg_release(a);
  lgf_end_run("lg_idx_read");
  return 0;
}
