/* lg_idx.c: IDX reader and writer (see lg_idx.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "lg_idx.h"
#include "lg_atomic.h"

#define LG_IDX_CHUNK (1 << 20)   /* values converted per read: bounded scratch memory */

/* ---- a byte source that is either a plain FILE or a gzip stream -------- */
typedef struct {
  FILE *f;
  gzFile gz;
  const char *path;
} lg_idx_src;

/* Read up to n bytes; returns the count read (short at end of file) or -1
 * with the error set. */
static int64_t lg_idx_get(lg_idx_src *s, void *buf, size_t n)
{
  if (s->f) {
    size_t k = fread(buf, 1, n, s->f);
    if (k < n && ferror(s->f)) {
      lg_error("idx: %s: read error: %s", s->path, strerror(errno));
      return -1;
    }
    return (int64_t)k;
  }
  size_t got = 0;
  while (got < n) {   /* gzread takes an unsigned int count */
    unsigned want = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int k = gzread(s->gz, (char *)buf + got, want);
    if (k < 0) {
      int code;
      const char *msg = gzerror(s->gz, &code);
      lg_error("idx: %s: corrupt gzip data: %s", s->path, msg ? msg : "unknown zlib error");
      return -1;
    }
    if (k == 0) break;
    got += (size_t)k;
  }
  return (int64_t)got;
}

static void lg_idx_close(lg_idx_src *s)
{
  if (s->f) fclose(s->f);
  if (s->gz) gzclose(s->gz);
  s->f = NULL;
  s->gz = NULL;
}

static const char *lg_idx_type_name(int code)
{
  switch (code) {
  case LG_IDX_UBYTE: return "ubyte";
  case LG_IDX_SBYTE: return "sbyte";
  case LG_IDX_I16: return "int16";
  case LG_IDX_I32: return "int32";
  case LG_IDX_F32: return "float32";
  case LG_IDX_F64: return "float64";
  default: return NULL;
  }
}

static int lg_idx_elsize(int code)
{
  switch (code) {
  case LG_IDX_UBYTE: case LG_IDX_SBYTE: return 1;
  case LG_IDX_I16: return 2;
  case LG_IDX_I32: case LG_IDX_F32: return 4;
  case LG_IDX_F64: return 8;
  default: return 0;
  }
}

static uint32_t lg_be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t lg_be64(const unsigned char *p)
{
  return (uint64_t)lg_be32(p) << 32 | lg_be32(p + 4);
}

/* Convert n big-endian values of type code at src into floats. */
static void lg_idx_convert(int code, const unsigned char *src, float *dst, size_t n)
{
  switch (code) {
  case LG_IDX_UBYTE: for (size_t i = 0; i < n; i++) dst[i] = src[i]; break;
  case LG_IDX_SBYTE: for (size_t i = 0; i < n; i++) dst[i] = (int8_t)src[i]; break;
  case LG_IDX_I16:
    for (size_t i = 0; i < n; i++)
      dst[i] = (int16_t)(uint16_t)(src[2 * i] << 8 | src[2 * i + 1]);
    break;
  case LG_IDX_I32:
    for (size_t i = 0; i < n; i++) dst[i] = (float)(int32_t)lg_be32(src + 4 * i);
    break;
  case LG_IDX_F32:
    for (size_t i = 0; i < n; i++) {
      uint32_t u = lg_be32(src + 4 * i);
      memcpy(&dst[i], &u, 4);
    }
    break;
  case LG_IDX_F64:
    for (size_t i = 0; i < n; i++) {
      uint64_t u = lg_be64(src + 8 * i);
      double d;
      memcpy(&d, &u, 8);
      dst[i] = (float)d;
    }
    break;
  }
}

/* deflate's largest expansion (zlib's technical notes: 1032:1) */
#define LG_DEFLATE_MAX_RATIO 1032

/* An opened IDX file whose header has been read and checked. */
typedef struct {
  lg_idx_src s;
  int code, ndim, es, is_gz;
  int64_t shape[LG_MAXDIM], numel, need;
  char sbuf[160];
  const char *kind;   /* " (after gunzip)" for gzip files, for the messages */
} lg_idx_head;

/* Open path and read its header into h. 0, or -1 with the error set and
 * everything closed. */
static int lg_idx_open(const char *path, lg_idx_head *h)
{
  unsigned char magic[4];
  struct stat st;
  memset(h, 0, sizeof *h);
  h->s.path = path;
  lg_idx_src *s = &h->s;

  FILE *f = fopen(path, "rb");
  if (!f) { lg_error("idx: %s: cannot open: %s", path, strerror(errno)); return -1; }
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    lg_error("idx: %s: not a regular file", path);
    return -1;
  }
  size_t k = fread(magic, 1, 2, f);
  int is_gz = k == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (is_gz) {
    fclose(f);
    s->gz = gzopen(path, "rb");
    if (!s->gz) { lg_error("idx: %s: cannot open gzip stream: %s", path, strerror(errno)); return -1; }
    gzbuffer(s->gz, 1 << 17);
  } else {
    rewind(f);
    s->f = f;
  }
  h->is_gz = is_gz;
  const char *kind = h->kind = is_gz ? " (after gunzip)" : "";

  /* magic: 0x00 0x00 type ndim */
  int64_t got = lg_idx_get(s, magic, 4);
  if (got < 0) goto fail;
  if (got < 4) {
    lg_error("idx: %s: truncated: file has %lld bytes%s, the magic number needs 4", path,
             (long long)got, kind);
    goto fail;
  }
  if (magic[0] != 0 || magic[1] != 0) {
    lg_error("idx: %s: bad magic number 0x%02x%02x%02x%02x (expected two zero bytes, a type "
             "code and a dim count): not an IDX file", path, magic[0], magic[1], magic[2], magic[3]);
    goto fail;
  }
  int code = h->code = magic[2], ndim = h->ndim = magic[3];
  if (!lg_idx_type_name(code)) {
    lg_error("idx: %s: unknown data type 0x%02x in the magic number (expected 0x08 ubyte, "
             "0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32 or 0x0E float64)", path, code);
    goto fail;
  }
  if (ndim < 1 || ndim > LG_MAXDIM) {
    lg_error("idx: %s: dim count %d in the magic number (supported: 1..%d)", path, ndim, LG_MAXDIM);
    goto fail;
  }

  unsigned char dims[4 * LG_MAXDIM];
  got = lg_idx_get(s, dims, 4 * (size_t)ndim);
  if (got < 0) goto fail;
  if (got < 4 * ndim) {
    lg_error("idx: %s: truncated: header says %d dims (%d bytes of sizes), file has %lld%s",
             path, ndim, 4 * ndim, (long long)got, kind);
    goto fail;
  }
  for (int d = 0; d < ndim; d++) h->shape[d] = lg_be32(dims + 4 * d);
  char op[512];
  lg_shape_str_raw(ndim, h->shape, h->sbuf, sizeof h->sbuf);
  /* zero sizes too: 0 x 2^32-1 x 2^32-1 holds no data but no tensor either */
  snprintf(op, sizeof op, "idx: %s", path);
  if (lg_shape_check(op, ndim, h->shape, &h->numel)) goto fail;
  h->es = lg_idx_elsize(code);
  int64_t header = 4 + 4 * (int64_t)ndim, need = h->need = h->numel * h->es;

  if (!is_gz) {   /* plain file: check the length before allocating anything */
    int64_t have = (int64_t)st.st_size - header;
    if (have != need) {
      lg_error("idx: %s: %s: header says %s %s = %lld bytes, file has %lld after the %lld-byte "
               "header", path, have < need ? "truncated" : "trailing data", h->sbuf,
               lg_idx_type_name(code), (long long)need, (long long)have, (long long)header);
      goto fail;
    }
  }

  else if (need / LG_DEFLATE_MAX_RATIO > (int64_t)st.st_size) {
    /* gzip: the length is known only at the end, but deflate expands at most
     * 1032:1, so a header claiming more than that could ever hold is refused
     * before the allocation (a 26-byte file must not allocate 16 GB) */
    lg_error("idx: %s: truncated: header says %s %s = %lld bytes, more than the %lld-byte gzip "
             "file can hold", path, h->sbuf, lg_idx_type_name(code), (long long)need,
             (long long)st.st_size);
    goto fail;
  }
  return 0;

fail:
  lg_idx_close(s);
  return -1;
}

/* The error for a payload that ended after `have` bytes. */
static void lg_idx_short(const lg_idx_head *h, int64_t have)
{
  lg_error("idx: %s: truncated: header says %s %s = %lld bytes, file has %lld%s", h->s.path,
           h->sbuf, lg_idx_type_name(h->code), (long long)h->need, (long long)have, h->kind);
}

/* A gzip stream must end right after the payload. 0, or -1 with error. */
static int lg_idx_check_end(lg_idx_head *h)
{
  if (!h->is_gz) return 0;
  unsigned char extra[256];
  int64_t got = lg_idx_get(&h->s, extra, sizeof extra);
  if (got < 0) return -1;
  if (got == 0) return 0;
  int64_t more = got;
  while ((got = lg_idx_get(&h->s, extra, sizeof extra)) > 0) more += got;
  lg_error("idx: %s: trailing data: header says %s %s = %lld bytes, file has %lld%s", h->s.path,
           h->sbuf, lg_idx_type_name(h->code), (long long)h->need, (long long)(h->need + more),
           h->kind);
  return -1;
}

lg_tensor *lg_idx_read(const char *path)
{
  lg_idx_head h;
  if (lg_idx_open(path, &h) != 0) return NULL;
  int es = h.es;
  int64_t numel = h.numel, got;
  lg_tensor *t = lg_empty(h.ndim, h.shape);
  if (!t) goto fail;
  unsigned char *raw = malloc((size_t)LG_IDX_CHUNK * es);
  if (!raw) { lg_release(t); lg_error("idx: %s: out of memory", path); goto fail; }
  float *dst = lg_data(t);
  int64_t done = 0;
  while (done < numel) {
    int64_t n = numel - done < LG_IDX_CHUNK ? numel - done : LG_IDX_CHUNK;
    got = lg_idx_get(&h.s, raw, (size_t)n * es);
    if (got < 0) { free(raw); lg_release(t); goto fail; }
    if (got < n * es) {
      lg_idx_short(&h, done * es + got);
      free(raw); lg_release(t); goto fail;
    }
    lg_idx_convert(h.code, raw, dst + done, (size_t)n);
    done += n;
  }
  free(raw);
  if (lg_idx_check_end(&h) != 0) { lg_release(t); goto fail; }
  lg_idx_close(&h.s);
  return t;

fail:
  lg_idx_close(&h.s);
  return NULL;
}

int lg_idx_read_bytes(const char *path, int64_t limit, int *ndim, int64_t shape[LG_MAXDIM],
                      int64_t *rows_in_file, unsigned char **out)
{
  lg_idx_head h;
  *out = NULL;
  if (lg_idx_open(path, &h) != 0) return -1;
  if (h.code != LG_IDX_UBYTE) {
    lg_error("idx: %s: data type %s, expected ubyte (0x08) to keep as bytes; load it with "
             "load_idx", path, lg_idx_type_name(h.code));
    lg_idx_close(&h.s);
    return -1;
  }
  int64_t rows = h.shape[0], row_bytes = rows ? h.numel / rows : 0;
  int partial = limit >= 0 && limit < rows;
  if (partial) rows = limit;
  int64_t nbytes = rows * row_bytes;
  unsigned char *buf = malloc(nbytes ? (size_t)nbytes : 1);
  if (!buf) { lg_error("idx: %s: out of memory (%lld bytes)", path, (long long)nbytes); goto fail; }
  int64_t got = lg_idx_get(&h.s, buf, (size_t)nbytes);
  if (got < 0) goto fail;
  if (got < nbytes) { lg_idx_short(&h, got); goto fail; }
  /* a partial read stops here: the rest of the gzip stream is never inflated */
  if (!partial && lg_idx_check_end(&h) != 0) goto fail;
  lg_idx_close(&h.s);
  *ndim = h.ndim;
  *rows_in_file = h.shape[0];
  memcpy(shape, h.shape, sizeof(int64_t) * (size_t)h.ndim);
  shape[0] = rows;
  *out = buf;
  return 0;

fail:
  free(buf);
  lg_idx_close(&h.s);
  return -1;
}

/* ---- writing ----------------------------------------------------------- */
static int lg_ends_with(const char *s, const char *suffix)
{
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

int lg_idx_write(const char *path, const lg_tensor *t, int type)
{
  char sbuf[160];
  if (type != LG_IDX_F32 && type != LG_IDX_UBYTE) {
    lg_error("idx: %s: cannot write data type 0x%02x (supported: 0x08 ubyte, 0x0D float32)",
             path, type);
    return -1;
  }
  if (t->ndim < 1) {
    lg_error("idx: %s: cannot write a 0-dim tensor (IDX needs 1..%d dims)", path, LG_MAXDIM);
    return -1;
  }
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] > UINT32_MAX) {
      lg_error("idx: %s: size %lld of dim %d does not fit the header's uint32 (shape %s)", path,
               (long long)t->shape[d], d + 1, lg_shape_str(t, sbuf, sizeof sbuf));
      return -1;
    }
  int64_t numel = lg_numel(t);
  float *vals = malloc(sizeof(float) * (numel ? numel : 1));
  if (!vals) { lg_error("idx: %s: out of memory", path); return -1; }
  lg_read(t, vals);

  int es = type == LG_IDX_F32 ? 4 : 1;
  size_t header = 4 + 4 * (size_t)t->ndim, nbytes = header + (size_t)numel * es;
  unsigned char *buf = malloc(nbytes);
  if (!buf) { free(vals); lg_error("idx: %s: out of memory", path); return -1; }
  buf[0] = buf[1] = 0;
  buf[2] = (unsigned char)type;
  buf[3] = (unsigned char)t->ndim;
  for (int d = 0; d < t->ndim; d++) {
    uint32_t v = (uint32_t)t->shape[d];
    unsigned char *p = buf + 4 + 4 * d;
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
  }
  unsigned char *p = buf + header;
  for (int64_t i = 0; i < numel; i++) {
    if (type == LG_IDX_UBYTE) {
      float r = nearbyintf(vals[i]);
      if (!(r >= 0 && r <= 255)) {   /* also catches NaN */
        lg_error("idx: %s: value %g at flat index %lld is outside 0..255 (ubyte); scale or "
                 "clamp first, or write float32", path, vals[i], (long long)i);
        free(vals); free(buf);
        return -1;
      }
      p[i] = (unsigned char)r;
    } else {
      uint32_t u;
      memcpy(&u, &vals[i], 4);
      p[4 * i] = u >> 24; p[4 * i + 1] = u >> 16; p[4 * i + 2] = u >> 8; p[4 * i + 3] = u;
    }
  }
  free(vals);

  lg_afile a;
  if (lg_atomic_open(&a, path, "idx") != 0) { free(buf); return -1; }
  int ok;
  if (lg_ends_with(path, ".gz")) {
    int fd = dup(fileno(a.f));
    gzFile gz = fd >= 0 ? gzdopen(fd, "wb") : NULL;
    if (!gz && fd >= 0) close(fd);
    ok = gz != NULL;
    size_t off = 0;
    while (ok && off < nbytes) {
      unsigned n = nbytes - off > (1u << 30) ? (1u << 30) : (unsigned)(nbytes - off);
      ok = gzwrite(gz, buf + off, n) == (int)n;
      off += n;
    }
    if (gz && gzclose(gz) != Z_OK) ok = 0;
  } else {
    ok = fwrite(buf, 1, nbytes, a.f) == nbytes;
  }
  free(buf);
  if (!ok) {
    lg_error("idx: %s: write failed: %s", path, strerror(errno));
    lg_atomic_abort(&a);
    return -1;
  }
  return lg_atomic_commit(&a);
}
