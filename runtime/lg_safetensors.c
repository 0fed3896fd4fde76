/* lg_safetensors.c: safetensors writer and strict reader (see lg_safetensors.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "lg_safetensors.h"
#include "lg_atomic.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LG_BIG_ENDIAN 1
#else
#define LG_BIG_ENDIAN 0
#endif

static void lg_swap32(void *p, size_t n)   /* n floats, in place */
{
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++, b += 4) {
    unsigned char t0 = b[0], t1 = b[1];
    b[0] = b[3]; b[1] = b[2]; b[2] = t1; b[3] = t0;
  }
}

/* ---- UTF-8 ---------------------------------------------------------------- */
/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
static int lg_utf8_ok(const unsigned char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    int k;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    else if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
    else return 0;
    for (int j = 1; j <= k; j++) {
      if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i + j] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += k + 1;
  }
  return 1;
}

/* ---- a growable text buffer (the writer's header) ------------------------ */
typedef struct { char *s; size_t n, cap; int oom; } lg_sbuf;

static void lg_sb_add(lg_sbuf *b, const char *s, size_t n)
{
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) { b->oom = 1; return; }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static void lg_sb_str(lg_sbuf *b, const char *s) { lg_sb_add(b, s, strlen(s)); }

static void lg_sb_fmt(lg_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lg_sb_fmt(lg_sbuf *b, const char *fmt, ...)
{
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  lg_sb_add(b, tmp, (size_t)k);
}

/* A JSON string literal: escapes quotes, backslashes and control bytes. */
static void lg_sb_json(lg_sbuf *b, const char *s)
{
  lg_sb_add(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"') lg_sb_add(b, "\\\"", 2);
    else if (*p == '\\') lg_sb_add(b, "\\\\", 2);
    else if (*p == '\n') lg_sb_add(b, "\\n", 2);
    else if (*p == '\t') lg_sb_add(b, "\\t", 2);
    else if (*p == '\r') lg_sb_add(b, "\\r", 2);
    else if (*p < 0x20) lg_sb_fmt(b, "\\u%04x", *p);
    else lg_sb_add(b, (const char *)p, 1);
  }
  lg_sb_add(b, "\"", 1);
}

/* ---- writing --------------------------------------------------------------- */
static const char *const *lg_sort_keys;
static int lg_cmp_idx(const void *a, const void *b)
{
  return strcmp(lg_sort_keys[*(const int *)a], lg_sort_keys[*(const int *)b]);
}

/* Sorted order of n strings, as indices (malloc'd); NULL on OOM. Not
 * reentrant (qsort has no context argument in C11); writers run on one thread. */
static int *lg_sorted(int n, const char *const *keys)
{
  int *ix = malloc(sizeof(int) * (n ? n : 1));
  if (!ix) return NULL;
  for (int i = 0; i < n; i++) ix[i] = i;
  lg_sort_keys = keys;
  if (n > 1) qsort(ix, n, sizeof(int), lg_cmp_idx);
  return ix;
}

int lg_st_write(const char *path, int n, const char *const *names, lg_tensor *const *ts,
                int nmeta, const char *const *keys, const char *const *vals)
{
  int *order = NULL, *morder = NULL, rc = -1;
  lg_sbuf h = {0};
  lg_afile a = {0};
  int opened = 0;

  for (int i = 0; i < n; i++) {
    if (!names[i] || !ts[i]) { lg_error("safetensors: %s: tensor %d has no name or no tensor", path, i + 1); goto out; }
    if (!lg_utf8_ok((const unsigned char *)names[i], strlen(names[i]))) {
      lg_error("safetensors: %s: tensor name '%s' is not valid UTF-8", path, names[i]);
      goto out;
    }
    if (strcmp(names[i], "__metadata__") == 0) {
      lg_error("safetensors: %s: '__metadata__' is reserved and cannot name a tensor", path);
      goto out;
    }
  }
  for (int i = 0; i < nmeta; i++) {
    if (!keys[i] || !vals[i]) { lg_error("safetensors: %s: metadata entry %d is incomplete", path, i + 1); goto out; }
    if (!lg_utf8_ok((const unsigned char *)keys[i], strlen(keys[i])) ||
        !lg_utf8_ok((const unsigned char *)vals[i], strlen(vals[i]))) {
      lg_error("safetensors: %s: metadata '%s' is not valid UTF-8", path, keys[i]);
      goto out;
    }
  }
  order = lg_sorted(n, names);
  morder = lg_sorted(nmeta, keys);
  if (!order || !morder) { lg_error("safetensors: %s: out of memory", path); goto out; }
  for (int i = 1; i < n; i++)
    if (strcmp(names[order[i]], names[order[i - 1]]) == 0) {
      lg_error("safetensors: %s: tensor name '%s' appears twice", path, names[order[i]]);
      goto out;
    }
  for (int i = 1; i < nmeta; i++)
    if (strcmp(keys[morder[i]], keys[morder[i - 1]]) == 0) {
      lg_error("safetensors: %s: metadata key '%s' appears twice", path, keys[morder[i]]);
      goto out;
    }

  /* header: metadata first, then tensors packed in name order */
  lg_sb_str(&h, "{");
  int first = 1;
  if (nmeta > 0) {
    lg_sb_str(&h, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) lg_sb_str(&h, ",");
      lg_sb_json(&h, keys[morder[i]]);
      lg_sb_str(&h, ":");
      lg_sb_json(&h, vals[morder[i]]);
    }
    lg_sb_str(&h, "}");
    first = 0;
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    const lg_tensor *t = ts[order[i]];
    if (!first) lg_sb_str(&h, ",");
    first = 0;
    lg_sb_json(&h, names[order[i]]);
    lg_sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) lg_sb_fmt(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
    uint64_t end = off + 4 * (uint64_t)lg_numel(t);
    lg_sb_fmt(&h, "],\"data_offsets\":[%llu,", (unsigned long long)off);
    lg_sb_fmt(&h, "%llu]}", (unsigned long long)end);
    off = end;
  }
  lg_sb_str(&h, "}");
  while ((8 + h.n) % 8) lg_sb_str(&h, " ");   /* data starts 8-byte aligned */
  if (h.oom) { lg_error("safetensors: %s: out of memory", path); goto out; }

  if (lg_atomic_open(&a, path, "safetensors") != 0) goto out;
  opened = 1;
  unsigned char len[8];
  for (int k = 0; k < 8; k++) len[k] = (unsigned char)((uint64_t)h.n >> (8 * k));
  int ok = fwrite(len, 1, 8, a.f) == 8 && fwrite(h.s, 1, h.n, a.f) == h.n;
  for (int i = 0; ok && i < n; i++) {
    const lg_tensor *t = ts[order[i]];
    size_t cnt = (size_t)lg_numel(t);
    if (cnt == 0) continue;
    if (lg_is_contiguous(t) && !LG_BIG_ENDIAN) {
      ok = fwrite(lg_data(t), 4, cnt, a.f) == cnt;
      continue;
    }
    float *tmp = malloc(4 * cnt);
    if (!tmp) { errno = ENOMEM; ok = 0; break; }
    lg_read(t, tmp);
    if (LG_BIG_ENDIAN) lg_swap32(tmp, cnt);
    ok = fwrite(tmp, 4, cnt, a.f) == cnt;
    free(tmp);
  }
  if (!ok) {
    lg_error("safetensors: %s: write failed: %s (the previous file, if any, is unchanged)",
             path, strerror(errno));
    goto out;
  }
  opened = 0;
  rc = lg_atomic_commit(&a);

out:
  if (opened) lg_atomic_abort(&a);
  free(order);
  free(morder);
  free(h.s);
  return rc;
}

/* ---- the strict JSON header parser ----------------------------------------
 * Only what a safetensors header may hold: one object whose values are
 * tensor-info objects or the __metadata__ object of strings. Anything else
 * (other value types, duplicate or unknown keys, bad escapes, trailing
 * bytes other than spaces) is an error naming the field and the byte. */
typedef struct {
  const char *p, *beg, *end;
  const char *path;
  char field[200];     /* the field being parsed, for messages */
} lg_js;

static void *lg_js_err(lg_js *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *lg_js_err(lg_js *j, const char *fmt, ...)
{
  char msg[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lg_error("safetensors: %s: header%s%s (JSON byte %ld): %s", j->path, j->field[0] ? " " : "",
           j->field, (long)(j->p - j->beg), msg);
  return NULL;
}

static void lg_js_ws(lg_js *j)
{
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Expect character c after optional white space. */
static int lg_js_expect(lg_js *j, char c)
{
  lg_js_ws(j);
  if (j->p >= j->end) { lg_js_err(j, "expected '%c', header ended", c); return 0; }
  if (*j->p != c) { lg_js_err(j, "expected '%c', found '%c'", c, *j->p); return 0; }
  j->p++;
  return 1;
}

static int lg_hex(int c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int lg_js_hex4(lg_js *j, uint32_t *out)
{
  if (j->end - j->p < 4) return 0;
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) {
    int h = lg_hex((unsigned char)j->p[k]);
    if (h < 0) return 0;
    v = v << 4 | (uint32_t)h;
  }
  j->p += 4;
  *out = v;
  return 1;
}

/* A string literal -> malloc'd UTF-8 (NUL-free), or NULL with error. */
static char *lg_js_string(lg_js *j)
{
  lg_js_ws(j);
  if (j->p >= j->end || *j->p != '"')
    return lg_js_err(j, "expected a string");
  j->p++;
  lg_sbuf b = {0};
  lg_sb_add(&b, "", 0);
  for (;;) {
    if (j->p >= j->end) { free(b.s); return lg_js_err(j, "unterminated string"); }
    unsigned char c = (unsigned char)*j->p;
    if (c == '"') { j->p++; break; }
    if (c < 0x20) { free(b.s); return lg_js_err(j, "control byte 0x%02x inside a string", c); }
    if (c != '\\') {
      /* copy a run of plain bytes; UTF-8 validity is checked on the whole header */
      lg_sb_add(&b, j->p, 1);
      j->p++;
      continue;
    }
    j->p++;
    if (j->p >= j->end) { free(b.s); return lg_js_err(j, "unterminated escape"); }
    char e = *j->p++;
    const char *rep = NULL;
    switch (e) {
    case '"': rep = "\""; break;
    case '\\': rep = "\\"; break;
    case '/': rep = "/"; break;
    case 'b': rep = "\b"; break;
    case 'f': rep = "\f"; break;
    case 'n': rep = "\n"; break;
    case 'r': rep = "\r"; break;
    case 't': rep = "\t"; break;
    case 'u': {
      uint32_t cp, lo;
      if (!lg_js_hex4(j, &cp)) { free(b.s); return lg_js_err(j, "bad \\u escape"); }
      if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a surrogate pair */
        if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u') {
          free(b.s);
          return lg_js_err(j, "lone surrogate in \\u escape");
        }
        j->p += 2;
        if (!lg_js_hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
          free(b.s);
          return lg_js_err(j, "bad low surrogate in \\u escape");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        free(b.s);
        return lg_js_err(j, "lone surrogate in \\u escape");
      }
      if (cp == 0) { free(b.s); return lg_js_err(j, "\\u0000 is not allowed in names"); }
      char u[4];
      int k;
      if (cp < 0x80) { u[0] = (char)cp; k = 1; }
      else if (cp < 0x800) { u[0] = (char)(0xC0 | cp >> 6); u[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
      else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12); u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
      } else {
        u[0] = (char)(0xF0 | cp >> 18); u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
      }
      lg_sb_add(&b, u, (size_t)k);
      continue;
    }
    default:
      free(b.s);
      j->p--;
      return lg_js_err(j, "bad escape '\\%c'", e);
    }
    lg_sb_add(&b, rep, 1);
  }
  if (b.oom) { free(b.s); return lg_js_err(j, "out of memory"); }
  return b.s;
}

/* A non-negative integer (no sign, fraction, exponent or leading zero). */
static int lg_js_uint(lg_js *j, const char *what, uint64_t *out)
{
  lg_js_ws(j);
  if (j->p >= j->end) { lg_js_err(j, "%s: expected a non-negative integer, header ended", what); return 0; }
  if (*j->p == '-') { lg_js_err(j, "%s: negative number", what); return 0; }
  if (*j->p < '0' || *j->p > '9') {
    lg_js_err(j, "%s: expected a non-negative integer, found '%c'", what, *j->p);
    return 0;
  }
  const char *s = j->p;
  uint64_t v = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    unsigned d = (unsigned)(*j->p - '0');
    if (v > (UINT64_MAX - d) / 10) { lg_js_err(j, "%s: number too large", what); return 0; }
    v = v * 10 + d;
    j->p++;
  }
  if (j->p - s > 1 && *s == '0') { j->p = s; lg_js_err(j, "%s: leading zero in a number", what); return 0; }
  if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) {
    lg_js_err(j, "%s: expected an integer, found a fraction or exponent", what);
    return 0;
  }
  *out = v;
  return 1;
}

/* After a value inside a container: 1 if another element follows (','),
 * 0 at the closing character, -1 on error. */
static int lg_js_next(lg_js *j, char close)
{
  lg_js_ws(j);
  if (j->p >= j->end) { lg_js_err(j, "expected ',' or '%c', header ended", close); return -1; }
  if (*j->p == ',') { j->p++; return 1; }
  if (*j->p == close) { j->p++; return 0; }
  lg_js_err(j, "expected ',' or '%c', found '%c'", close, *j->p);
  return -1;
}

/* An array of non-negative integers, at most max entries. */
static int lg_js_uints(lg_js *j, const char *what, uint64_t *out, int max, int *count)
{
  if (!lg_js_expect(j, '[')) return 0;
  int n = 0;
  lg_js_ws(j);
  if (j->p < j->end && *j->p == ']') { j->p++; *count = 0; return 1; }
  for (;;) {
    char item[64];
    snprintf(item, sizeof item, "%s[%d]", what, n + 1);
    uint64_t v;
    if (!lg_js_uint(j, item, &v)) return 0;
    if (n == max) { lg_js_err(j, "%s: more than %d entries", what, max); return 0; }
    out[n++] = v;
    int k = lg_js_next(j, ']');
    if (k < 0) return 0;
    if (k == 0) break;
  }
  *count = n;
  return 1;
}

typedef struct {
  char *name;
  int ndim;
  int64_t shape[LG_MAXDIM];
  uint64_t begin, end;
} lg_st_info;

/* {"dtype": "F32", "shape": [...], "data_offsets": [b, e]} for tensor info->name */
static int lg_js_tensor(lg_js *j, lg_st_info *info)
{
  int have_dtype = 0, have_shape = 0, have_offs = 0;
  snprintf(j->field, sizeof j->field, "tensor '%.150s'", info->name);
  if (!lg_js_expect(j, '{')) return 0;
  lg_js_ws(j);
  if (j->p < j->end && *j->p == '}') { lg_js_err(j, "empty tensor entry (needs dtype, shape, data_offsets)"); return 0; }
  for (;;) {
    char *key = lg_js_string(j);
    if (!key) return 0;
    if (!lg_js_expect(j, ':')) { free(key); return 0; }
    if (strcmp(key, "dtype") == 0) {
      free(key);
      if (have_dtype++) { lg_js_err(j, "'dtype' appears twice"); return 0; }
      char *dt = lg_js_string(j);
      if (!dt) return 0;
      int f32 = strcmp(dt, "F32") == 0;
      if (!f32) lg_js_err(j, "dtype %.40s not supported (only F32)", dt);
      free(dt);
      if (!f32) return 0;
    } else if (strcmp(key, "shape") == 0) {
      free(key);
      if (have_shape++) { lg_js_err(j, "'shape' appears twice"); return 0; }
      uint64_t s[LG_MAXDIM];
      if (!lg_js_uints(j, "shape", s, LG_MAXDIM, &info->ndim)) return 0;
      for (int d = 0; d < info->ndim; d++) {
        if (s[d] > (uint64_t)LG_MAXNUMEL) { lg_js_err(j, "shape[%d] = %llu is too large", d + 1, (unsigned long long)s[d]); return 0; }
        info->shape[d] = (int64_t)s[d];
      }
    } else if (strcmp(key, "data_offsets") == 0) {
      free(key);
      if (have_offs++) { lg_js_err(j, "'data_offsets' appears twice"); return 0; }
      uint64_t o[2];
      int cnt;
      if (!lg_js_uints(j, "data_offsets", o, 2, &cnt)) return 0;
      if (cnt != 2) { lg_js_err(j, "data_offsets needs 2 entries [begin, end], got %d", cnt); return 0; }
      info->begin = o[0];
      info->end = o[1];
    } else {
      lg_js_err(j, "unknown field '%.60s' (expected dtype, shape, data_offsets)", key);
      free(key);
      return 0;
    }
    int k = lg_js_next(j, '}');
    if (k < 0) return 0;
    if (k == 0) break;
  }
  if (!have_dtype) { lg_js_err(j, "missing 'dtype'"); return 0; }
  if (!have_shape) { lg_js_err(j, "missing 'shape'"); return 0; }
  if (!have_offs) { lg_js_err(j, "missing 'data_offsets'"); return 0; }
  return 1;
}

static int lg_js_metadata(lg_js *j, lg_st *st)
{
  snprintf(j->field, sizeof j->field, "__metadata__");
  if (!lg_js_expect(j, '{')) return 0;
  lg_js_ws(j);
  if (j->p < j->end && *j->p == '}') { j->p++; return 1; }
  for (;;) {
    char *key = lg_js_string(j);
    if (!key) return 0;
    if (!lg_js_expect(j, ':')) { free(key); return 0; }
    snprintf(j->field, sizeof j->field, "__metadata__ '%.150s'", key);
    lg_js_ws(j);
    char *val = NULL;
    if (j->p < j->end && *j->p == '"') val = lg_js_string(j);
    else lg_js_err(j, "metadata values must be strings");
    if (!val) { free(key); return 0; }
    char **nk = realloc(st->keys, sizeof(char *) * (st->nmeta + 1));
    if (nk) st->keys = nk;
    char **nv = realloc(st->vals, sizeof(char *) * (st->nmeta + 1));
    if (nv) st->vals = nv;
    if (!nk || !nv) { free(key); free(val); lg_js_err(j, "out of memory"); return 0; }
    st->keys[st->nmeta] = key;
    st->vals[st->nmeta] = val;
    st->nmeta++;
    int k = lg_js_next(j, '}');
    if (k < 0) return 0;
    if (k == 0) break;
  }
  return 1;
}

/* ---- reading ------------------------------------------------------------------ */
void lg_st_free(lg_st *st)
{
  if (!st) return;
  for (int i = 0; i < st->n; i++) {
    free(st->names[i]);
    lg_release(st->tensors[i]);
  }
  for (int i = 0; i < st->nmeta; i++) { free(st->keys[i]); free(st->vals[i]); }
  free(st->names);
  free(st->tensors);
  free(st->keys);
  free(st->vals);
  free(st);
}

static int lg_cmp_begin(const void *a, const void *b)
{
  const lg_st_info *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static int lg_cmp_name(const void *a, const void *b)
{
  return strcmp(((const lg_st_info *)a)->name, ((const lg_st_info *)b)->name);
}

lg_st *lg_st_read(const char *path)
{
  FILE *f = NULL;
  char *hdr = NULL;
  lg_st_info *info = NULL;
  int ninfo = 0, capinfo = 0;
  lg_st *st = calloc(1, sizeof *st);
  if (!st) return lg_error("safetensors: %s: out of memory", path);

  f = fopen(path, "rb");
  if (!f) { lg_error("safetensors: %s: cannot open: %s", path, strerror(errno)); goto fail; }
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    lg_error("safetensors: %s: not a regular file", path);
    goto fail;
  }
  uint64_t size = (uint64_t)sb.st_size;
  unsigned char len8[8];
  if (size < 8 || fread(len8, 1, 8, f) != 8) {
    lg_error("safetensors: %s: truncated: file has %llu bytes, the header length needs 8",
             path, (unsigned long long)size);
    goto fail;
  }
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | len8[k];
  if (hlen > size - 8) {
    lg_error("safetensors: %s: header length %llu exceeds the file size %llu (truncated or "
             "not a safetensors file)", path, (unsigned long long)hlen, (unsigned long long)size);
    goto fail;
  }
  if (hlen > LG_ST_MAX_HEADER) {
    lg_error("safetensors: %s: header length %llu is over the %u-byte limit", path,
             (unsigned long long)hlen, LG_ST_MAX_HEADER);
    goto fail;
  }
  if (hlen < 2) {
    lg_error("safetensors: %s: header length %llu is too small for a JSON object", path,
             (unsigned long long)hlen);
    goto fail;
  }
  hdr = malloc(hlen);
  if (!hdr) { lg_error("safetensors: %s: out of memory", path); goto fail; }
  if (fread(hdr, 1, hlen, f) != hlen) { lg_error("safetensors: %s: read error", path); goto fail; }
  uint64_t data_len = size - 8 - hlen;
  if (!lg_utf8_ok((unsigned char *)hdr, hlen)) {
    lg_error("safetensors: %s: header is not valid UTF-8 (not a safetensors file?)", path);
    goto fail;
  }

  lg_js j = {.p = hdr, .beg = hdr, .end = hdr + hlen, .path = path};
  if (*j.p != '{') { lg_js_err(&j, "must start with '{'"); goto fail; }
  int have_meta = 0;
  if (!lg_js_expect(&j, '{')) goto fail;
  lg_js_ws(&j);
  if (j.p < j.end && *j.p == '}') j.p++;
  else for (;;) {
    j.field[0] = 0;
    char *key = lg_js_string(&j);
    if (!key) goto fail;
    if (!lg_js_expect(&j, ':')) { free(key); goto fail; }
    if (strcmp(key, "__metadata__") == 0) {
      free(key);
      if (have_meta++) { lg_js_err(&j, "'__metadata__' appears twice"); goto fail; }
      if (!lg_js_metadata(&j, st)) goto fail;
    } else {
      if (ninfo == capinfo) {
        capinfo = capinfo ? 2 * capinfo : 16;
        lg_st_info *ni = realloc(info, sizeof *info * capinfo);
        if (!ni) { free(key); lg_error("safetensors: %s: out of memory", path); goto fail; }
        info = ni;
      }
      memset(&info[ninfo], 0, sizeof *info);
      info[ninfo].name = key;
      ninfo++;
      if (!lg_js_tensor(&j, &info[ninfo - 1])) goto fail;
    }
    j.field[0] = 0;
    int k = lg_js_next(&j, '}');
    if (k < 0) goto fail;
    if (k == 0) break;
  }
  j.field[0] = 0;
  lg_js_ws(&j);
  if (j.p != j.end) { lg_js_err(&j, "unexpected '%c' after the header object", *j.p); goto fail; }

  /* duplicate names and keys */
  if (ninfo > 1) qsort(info, ninfo, sizeof *info, lg_cmp_name);
  for (int i = 1; i < ninfo; i++)
    if (strcmp(info[i].name, info[i - 1].name) == 0) {
      lg_error("safetensors: %s: tensor '%s' appears twice in the header", path, info[i].name);
      goto fail;
    }
  /* metadata sorted by key (the file's order is not meaningful in JSON) */
  if (st->nmeta > 1) {
    int *ix = malloc(sizeof(int) * st->nmeta);
    char **k2 = malloc(sizeof(char *) * st->nmeta), **v2 = malloc(sizeof(char *) * st->nmeta);
    if (!ix || !k2 || !v2) { free(ix); free(k2); free(v2); lg_error("safetensors: %s: out of memory", path); goto fail; }
    for (int i = 0; i < st->nmeta; i++) ix[i] = i;
    lg_sort_keys = (const char *const *)st->keys;
    qsort(ix, st->nmeta, sizeof(int), lg_cmp_idx);
    for (int i = 0; i < st->nmeta; i++) { k2[i] = st->keys[ix[i]]; v2[i] = st->vals[ix[i]]; }
    free(st->keys); free(st->vals); free(ix);
    st->keys = k2; st->vals = v2;
    for (int i = 1; i < st->nmeta; i++)
      if (strcmp(st->keys[i], st->keys[i - 1]) == 0) {
        lg_error("safetensors: %s: metadata key '%s' appears twice", path, st->keys[i]);
        goto fail;
      }
  }

  /* every tensor: sizes, offsets inside the data region */
  for (int i = 0; i < ninfo; i++) {
    lg_st_info *t = &info[i];
    /* zero sizes too: a (0, 2^40, 2^40) entry holds no bytes but no tensor either */
    char op[512];
    int64_t numel;
    snprintf(op, sizeof op, "safetensors: %s: tensor '%s'", path, t->name);
    if (lg_shape_check(op, t->ndim, t->shape, &numel)) goto fail;
    char sbuf[160];
    lg_shape_str_raw(t->ndim, t->shape, sbuf, sizeof sbuf);
    if (t->end < t->begin) {
      lg_error("safetensors: %s: tensor '%s': data_offsets [%llu, %llu] end before begin",
               path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
      goto fail;
    }
    if (t->end > data_len) {
      lg_error("safetensors: %s: tensor '%s': data_offsets [%llu, %llu] outside the data "
               "region of %llu bytes (truncated file?)", path, t->name,
               (unsigned long long)t->begin, (unsigned long long)t->end,
               (unsigned long long)data_len);
      goto fail;
    }
    if (t->end - t->begin != 4 * (uint64_t)numel) {
      lg_error("safetensors: %s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes, "
               "shape %s F32 needs %llu", path, t->name, (unsigned long long)t->begin,
               (unsigned long long)t->end, (unsigned long long)(t->end - t->begin), sbuf,
               (unsigned long long)(4 * (uint64_t)numel));
      goto fail;
    }
  }
  /* no overlaps, and no gaps: the tensors tile the data region exactly */
  if (ninfo > 1) qsort(info, ninfo, sizeof *info, lg_cmp_begin);
  uint64_t covered = 0;
  for (int i = 0; i < ninfo; i++) {
    if (info[i].begin < covered) {
      lg_error("safetensors: %s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' "
               "[%llu, %llu]", path, info[i].name, (unsigned long long)info[i].begin,
               (unsigned long long)info[i].end, info[i - 1].name,
               (unsigned long long)info[i - 1].begin, (unsigned long long)info[i - 1].end);
      goto fail;
    }
    if (info[i].begin > covered) {
      lg_error("safetensors: %s: tensor '%s': data_offsets begin at %llu, leaving a gap after "
               "byte %llu of the data region", path, info[i].name,
               (unsigned long long)info[i].begin, (unsigned long long)covered);
      goto fail;
    }
    covered = info[i].end;
  }
  if (covered != data_len) {
    lg_error("safetensors: %s: the data region has %llu bytes but the tensors cover %llu "
             "(trailing bytes or a wrong header length)", path, (unsigned long long)data_len,
             (unsigned long long)covered);
    goto fail;
  }

  /* load, in name order */
  if (ninfo > 1) qsort(info, ninfo, sizeof *info, lg_cmp_name);
  st->names = calloc(ninfo ? ninfo : 1, sizeof(char *));
  st->tensors = calloc(ninfo ? ninfo : 1, sizeof(lg_tensor *));
  if (!st->names || !st->tensors) { lg_error("safetensors: %s: out of memory", path); goto fail; }
  for (int i = 0; i < ninfo; i++) {
    lg_tensor *t = lg_empty(info[i].ndim, info[i].shape);
    if (!t) { lg_error_prefix("safetensors"); goto fail; }
    st->names[i] = info[i].name;
    info[i].name = NULL;
    st->tensors[i] = t;
    st->n = i + 1;
    size_t cnt = (size_t)lg_numel(t);
    if (cnt == 0) continue;
    if (fseeko(f, (off_t)(8 + hlen + info[i].begin), SEEK_SET) != 0 ||
        fread(lg_data(t), 4, cnt, f) != cnt) {
      lg_error("safetensors: %s: tensor '%s': read error (file changed while reading?)", path,
               st->names[i]);
      goto fail;
    }
    if (LG_BIG_ENDIAN) lg_swap32(lg_data(t), cnt);
  }
  for (int i = 0; i < ninfo; i++) free(info[i].name);
  free(info);
  free(hdr);
  fclose(f);
  return st;

fail:
  for (int i = 0; i < ninfo; i++) free(info[i].name);
  free(info);
  free(hdr);
  if (f) fclose(f);
  lg_st_free(st);
  return NULL;
}
