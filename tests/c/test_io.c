/* test_io.c: the file formats: IDX (plain and gzip), safetensors (round trip,
 * exact bytes, malformed files), PNG out / images in, resize, grids, drawing.
 * Expected bytes and pixels are built by hand in the tests, never by the code
 * under test. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include "lgt.h"
#include "lg_idx.h"
#include "lg_safetensors.h"
#include "lg_image.h"
#include "lga_draw.h"
#include "lg_atomic.h"

/* an int-returning call that must fail with a message containing substr */
#define FAILS_RC(expr, substr) lgt_fails((expr) != 0, #expr, substr, __FILE__, __LINE__)

static void put_gz(const char *path, const void *data, size_t n)
{
  gzFile g = gzopen(path, "wb");
  CHECK(g != NULL);
  CHECK(gzwrite(g, data, (unsigned)n) == (int)n);
  gzclose(g);
}

/* "the error mentions the file" */
static void check_names_file(const char *path)
{
  if (!strstr(lg_last_error(), path)) {
    lgt_failed_checks++;
    fprintf(stderr, "error '%s' does not name the file %s\n", lg_last_error(), path);
  }
}

/* How many entries of directory d start with prefix. */
static int count_prefix(const char *d, const char *prefix)
{
  DIR *dd = opendir(d);
  if (!dd) return -1;
  int k = 0;
  struct dirent *e;
  while ((e = readdir(dd)) != NULL) k += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  closedir(dd);
  return k;
}

static void be32(unsigned char *p, uint32_t v)
{
  p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

/* A ubyte IDX of shape (3,4,5) with value (i*7+3) % 256 at flat index i. */
static size_t make_idx_u8(unsigned char *buf)
{
  buf[0] = buf[1] = 0; buf[2] = 0x08; buf[3] = 3;
  be32(buf + 4, 3); be32(buf + 8, 4); be32(buf + 12, 5);
  for (int i = 0; i < 60; i++) buf[16 + i] = (unsigned char)((i * 7 + 3) % 256);
  return 16 + 60;
}

/* ---- IDX ------------------------------------------------------------------------ */
static void check_idx_u8(lg_tensor *t)
{
  CHECK(t->ndim == 3 && t->shape[0] == 3 && t->shape[1] == 4 && t->shape[2] == 5);
  int bad = 0;
  for (int i = 0; i < 60; i++) bad += lg_data(t)[i] != (float)((i * 7 + 3) % 256);
  CHECK(bad == 0);
}

static void test_idx_read_plain_and_gz(void)
{
  unsigned char b[128];
  size_t n = make_idx_u8(b);
  lgt_put_file(lgt_tmp("a.idx"), b, n);
  put_gz(lgt_tmp("a.idx.gz"), b, n);
  put_gz(lgt_tmp("a-gz-without-suffix"), b, n);   /* detected by magic, not by name */
  lg_tensor *t = OK(lg_idx_read(lgt_tmp("a.idx")));
  check_idx_u8(t);
  lg_release(t);
  t = OK(lg_idx_read(lgt_tmp("a.idx.gz")));
  check_idx_u8(t);
  lg_release(t);
  t = OK(lg_idx_read(lgt_tmp("a-gz-without-suffix")));
  check_idx_u8(t);
  lg_release(t);
}

static void test_idx_other_types(void)
{
  /* int16 (-2, 300), float32 (1.5, -0.25), float64 (3.25), sbyte (-1) */
  unsigned char b[64];
  b[0] = b[1] = 0; b[2] = 0x0B; b[3] = 1; be32(b + 4, 2);
  b[8] = 0xFF; b[9] = 0xFE; b[10] = 0x01; b[11] = 0x2C;
  lgt_put_file(lgt_tmp("i16.idx"), b, 12);
  lg_tensor *t = OK(lg_idx_read(lgt_tmp("i16.idx")));
  CHECK(lg_data(t)[0] == -2 && lg_data(t)[1] == 300);
  lg_release(t);

  b[2] = 0x0D; be32(b + 4, 2);
  b[8] = 0x3F; b[9] = 0xC0; b[10] = 0; b[11] = 0;        /* 1.5f */
  b[12] = 0xBE; b[13] = 0x80; b[14] = 0; b[15] = 0;      /* -0.25f */
  lgt_put_file(lgt_tmp("f32.idx"), b, 16);
  t = OK(lg_idx_read(lgt_tmp("f32.idx")));
  CHECK(lg_data(t)[0] == 1.5f && lg_data(t)[1] == -0.25f);
  lg_release(t);

  b[2] = 0x0E; be32(b + 4, 1);
  memset(b + 8, 0, 8); b[8] = 0x40; b[9] = 0x0A;          /* 3.25 */
  lgt_put_file(lgt_tmp("f64.idx"), b, 16);
  t = OK(lg_idx_read(lgt_tmp("f64.idx")));
  CHECK(lg_data(t)[0] == 3.25f);
  lg_release(t);

  b[2] = 0x09; be32(b + 4, 1); b[8] = 0xFF;
  lgt_put_file(lgt_tmp("s8.idx"), b, 9);
  t = OK(lg_idx_read(lgt_tmp("s8.idx")));
  CHECK(lg_data(t)[0] == -1);
  lg_release(t);
}

static void test_idx_bad_files(void)
{
  unsigned char b[128];
  size_t n = make_idx_u8(b);
  const char *p;

  p = lgt_tmp("trunc.idx");
  lgt_put_file(p, b, n - 10);
  FAILS(lg_idx_read(p), "truncated: header says 3x4x5 ubyte = 60 bytes, file has 50");
  check_names_file(p);
  p = lgt_tmp("trunc.idx.gz");
  put_gz(p, b, n - 10);
  FAILS(lg_idx_read(p), "truncated: header says 3x4x5 ubyte = 60 bytes, file has 50");
  check_names_file(p);
  p = lgt_tmp("trunc-header.idx");
  lgt_put_file(p, b, 10);
  FAILS(lg_idx_read(p), "truncated: header says 3 dims");
  p = lgt_tmp("tiny.idx");
  lgt_put_file(p, b, 3);
  FAILS(lg_idx_read(p), "truncated");

  unsigned char big[200];
  memcpy(big, b, n);
  memset(big + n, 0, sizeof big - n);
  p = lgt_tmp("trailing.idx");
  lgt_put_file(p, big, n + 5);
  FAILS(lg_idx_read(p), "trailing data");
  p = lgt_tmp("trailing.idx.gz");
  put_gz(p, big, n + 5);
  FAILS(lg_idx_read(p), "trailing data");

  unsigned char c[128];
  memcpy(c, b, n);
  c[0] = 0x12;
  p = lgt_tmp("magic.idx");
  lgt_put_file(p, c, n);
  FAILS(lg_idx_read(p), "bad magic number");
  check_names_file(p);
  memcpy(c, b, n);
  c[2] = 0x07;
  lgt_put_file(p, c, n);
  FAILS(lg_idx_read(p), "unknown data type 0x07");
  memcpy(c, b, n);
  c[3] = 0;
  lgt_put_file(p, c, n);
  FAILS(lg_idx_read(p), "dim count 0");
  c[3] = 9;
  lgt_put_file(p, c, n);
  FAILS(lg_idx_read(p), "dim count 9");

  /* a gzip magic followed by garbage */
  unsigned char g[64] = {0x1f, 0x8b, 0x08, 0x00};
  for (int i = 4; i < 64; i++) g[i] = (unsigned char)(i * 37);
  p = lgt_tmp("corrupt.gz");
  lgt_put_file(p, g, sizeof g);
  CHECK(lg_idx_read(p) == NULL);
  check_names_file(p);

  p = lgt_tmp("does-not-exist.idx");
  FAILS(lg_idx_read(p), "cannot open");
  check_names_file(p);
  FAILS(lg_idx_read(lgt_tmpdir), "not a regular file");
}

static void test_idx_write(void)
{
  lg_gen g;
  lg_gen_seed(&g, 7);
  int64_t s[3] = {4, 3, 5};
  lg_tensor *x = lgt_randn(&g, 3, s);
  lg_tensor *xt = OK(lg_transpose(x, 0, 2));     /* non-contiguous view (5,3,4) */
  CHECK(lg_idx_write(lgt_tmp("w.idx"), xt, LG_IDX_F32) == 0);
  lg_tensor *y = OK(lg_idx_read(lgt_tmp("w.idx")));
  CHECK_CLOSE(y, xt, 0);
  lg_release(y);
  CHECK(lg_idx_write(lgt_tmp("w.idx.gz"), xt, LG_IDX_F32) == 0);
  size_t n;
  unsigned char *raw = lgt_get_file(lgt_tmp("w.idx.gz"), &n);
  CHECK(raw && n > 2 && raw[0] == 0x1f && raw[1] == 0x8b);   /* really compressed */
  free(raw);
  y = OK(lg_idx_read(lgt_tmp("w.idx.gz")));
  CHECK_CLOSE(y, xt, 0);
  lg_release(y);

  /* ubyte: compare with bytes made by hand */
  unsigned char want[128];
  size_t wn = make_idx_u8(want);
  int64_t su[3] = {3, 4, 5};
  lg_tensor *u = OK(lg_empty(3, su));
  for (int i = 0; i < 60; i++) lg_data(u)[i] = (float)((i * 7 + 3) % 256) + (i % 3 - 1) * 0.2f;
  CHECK(lg_idx_write(lgt_tmp("u.idx"), u, LG_IDX_UBYTE) == 0);
  raw = lgt_get_file(lgt_tmp("u.idx"), &n);
  CHECK(raw && n == wn && memcmp(raw, want, wn) == 0);
  free(raw);
  CHECK(access(lgt_tmp("u.idx.tmp"), F_OK) != 0);

  lg_data(u)[7] = 256;
  FAILS_RC(lg_idx_write(lgt_tmp("u2.idx"), u, LG_IDX_UBYTE), "outside 0..255");
  CHECK(access(lgt_tmp("u2.idx"), F_OK) != 0);                  /* nothing left behind */
  lg_data(u)[7] = NAN;
  FAILS_RC(lg_idx_write(lgt_tmp("u2.idx"), u, LG_IDX_UBYTE), "outside 0..255");
  FAILS_RC(lg_idx_write(lgt_tmp("u2.idx"), u, 0x0C), "cannot write data type");
  lg_tensor *sc = OK(lg_scalar(1));
  FAILS_RC(lg_idx_write(lgt_tmp("u2.idx"), sc, LG_IDX_F32), "0-dim");
  FAILS_RC(lg_idx_write(lgt_tmp("no/such/dir/u.idx"), x, LG_IDX_F32), "cannot create");
  lg_release(sc);
  lg_release(u);
  lg_release(xt);
  lg_release(x);
}

/* ---- safetensors ------------------------------------------------------------------- */
static void test_st_round_trip(void)
{
  lg_gen g;
  lg_gen_seed(&g, 11);
  int64_t s1[2] = {3, 4}, s2[4] = {2, 1, 3, 2}, s0[2] = {0, 5};
  lg_tensor *a = lgt_randn(&g, 2, s1);
  lg_tensor *at = OK(lg_transpose(a, 0, 1));   /* (4,3) non-contiguous */
  lg_tensor *b = lgt_randn(&g, 4, s2);
  lg_tensor *c = OK(lg_scalar(-2.5f));
  lg_tensor *e = OK(lg_empty(2, s0));
  const char *names[4] = {"G.0.weight", "D.1.bias \"q\"", "step", "empty"};
  lg_tensor *ts[4] = {at, b, c, e};
  const char *keys[3] = {"seed", "note", "ünï"};
  const char *vals[3] = {"42", "line1\nline2 \"quoted\" \\ tab\t\x01", "{\"json\": [1, 2]}"};
  const char *p = lgt_tmp("rt.safetensors");
  CHECK(lg_st_write(p, 4, names, ts, 3, keys, vals) == 0);
  lg_st *st = lg_st_read(p);
  CHECK(st != NULL);
  if (!st) { fprintf(stderr, "%s\n", lg_last_error()); return; }
  CHECK(st->n == 4 && st->nmeta == 3);
  /* names come back sorted */
  const char *sorted[4] = {"D.1.bias \"q\"", "G.0.weight", "empty", "step"};
  lg_tensor *want[4] = {b, at, e, c};
  for (int i = 0; i < st->n && i < 4; i++) {
    CHECK(strcmp(st->names[i], sorted[i]) == 0);
    CHECK_CLOSE(st->tensors[i], want[i], 0);
    CHECK(lg_is_contiguous(st->tensors[i]));
  }
  const char *skeys[3] = {"note", "seed", "ünï"}, *svals[3] = {vals[1], vals[0], vals[2]};
  for (int i = 0; i < st->nmeta && i < 3; i++) {
    CHECK(strcmp(st->keys[i], skeys[i]) == 0);
    CHECK(strcmp(st->vals[i], svals[i]) == 0);
  }
  lg_st_free(st);

  /* an empty file (no tensors, no metadata) is valid */
  CHECK(lg_st_write(lgt_tmp("empty.safetensors"), 0, NULL, NULL, 0, NULL, NULL) == 0);
  st = lg_st_read(lgt_tmp("empty.safetensors"));
  CHECK(st && st->n == 0 && st->nmeta == 0);
  lg_st_free(st);
  lg_release(a); lg_release(at); lg_release(b); lg_release(c); lg_release(e);
}

/* The exact bytes of a small file, spelled out by hand: what other tools read. */
static void test_st_exact_bytes(void)
{
  float av[2] = {1.0f, -2.0f}, bv[1] = {0.5f};
  int64_t s2[1] = {2}, s11[2] = {1, 1};
  lg_tensor *a = OK(lg_from_data(1, s2, av)), *b = OK(lg_from_data(2, s11, bv));
  const char *names[2] = {"z", "a"};
  lg_tensor *ts[2] = {a, b};
  const char *k[1] = {"format"}, *v[1] = {"pt"};
  CHECK(lg_st_write(lgt_tmp("x.safetensors"), 2, names, ts, 1, k, v) == 0);
  const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
                     "\"z\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
  size_t jl = strlen(json), hl = jl;
  while ((8 + hl) % 8) hl++;
  unsigned char want[512];
  for (int i = 0; i < 8; i++) want[i] = (unsigned char)(hl >> (8 * i));
  memcpy(want + 8, json, jl);
  memset(want + 8 + jl, ' ', hl - jl);
  /* little-endian floats: 0.5 = 0x3F000000, 1.0 = 0x3F800000, -2.0 = 0xC0000000 */
  unsigned char data[12] = {0, 0, 0, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0};
  memcpy(want + 8 + hl, data, 12);
  size_t n;
  unsigned char *got = lgt_get_file(lgt_tmp("x.safetensors"), &n);
  CHECK(got && n == 8 + hl + 12 && memcmp(got, want, n) == 0);
  if (got && memcmp(got, want, 8 + hl + 12 < n ? 8 + hl + 12 : n))
    fprintf(stderr, "got header: %.*s\n", (int)(n > 8 ? n - 8 : 0), got + 8);
  free(got);
  lg_release(a);
  lg_release(b);
}

static void test_st_atomic(void)
{
  float av[2] = {1, 2};
  int64_t s2[1] = {2};
  lg_tensor *a = OK(lg_from_data(1, s2, av));
  const char *p = lgt_tmp("keep.safetensors");
  const char *n1[1] = {"w"};
  CHECK(lg_st_write(p, 1, n1, &a, 0, NULL, NULL) == 0);
  size_t n0, n2;
  unsigned char *before = lgt_get_file(p, &n0);
  /* a failing write (duplicate names) keeps the old file and leaves no temp */
  const char *dup[2] = {"w", "w"};
  lg_tensor *ts[2] = {a, a};
  FAILS_RC(lg_st_write(p, 2, dup, ts, 0, NULL, NULL), "appears twice");
  const char *res[1] = {"__metadata__"};
  FAILS_RC(lg_st_write(p, 1, res, &a, 0, NULL, NULL), "reserved");
  const char *badutf[1] = {"\xff\xfe"};
  FAILS_RC(lg_st_write(p, 1, badutf, &a, 0, NULL, NULL), "UTF-8");
  unsigned char *after = lgt_get_file(p, &n2);
  CHECK(n0 == n2 && before && after && memcmp(before, after, n0) == 0);
  free(before);
  free(after);
  CHECK(count_prefix(lgt_tmpdir, "keep.safetensors.tmp.") == 0);
  FAILS_RC(lg_st_write(lgt_tmp("nodir/x.safetensors"), 1, n1, &a, 0, NULL, NULL), "cannot create");
  lg_release(a);
}

/* ---- lg_atomic: exclusive temporaries, checked writes, stale temps ------------- */
/* A pid that no process has: a child that has exited and been reaped. */
static long dead_pid(void)
{
  pid_t c = fork();
  if (c == 0) _exit(0);
  int st;
  waitpid(c, &st, 0);
  return (long)c;
}

/* A symlink planted at the name the writer used to pick ("<path>.tmp.<pid>")
 * must not be followed: the file it points at stays as it was. */
static void test_atomic_no_symlink(void)
{
  char victim[520], p[520];               /* lgt_tmp() reuses its buffers */
  snprintf(victim, sizeof victim, "%s", lgt_tmp("victim.txt"));
  snprintf(p, sizeof p, "%s", lgt_tmp("sym.safetensors"));
  lgt_put_file(victim, "precious", 8);
  char link[600];
  snprintf(link, sizeof link, "%s.tmp.%ld", p, (long)getpid());
  CHECK(symlink(victim, link) == 0);
  float av[2] = {1, 2};
  int64_t s2[1] = {2};
  lg_tensor *a = OK(lg_from_data(1, s2, av));
  const char *n1[1] = {"w"};
  CHECK(lg_st_write(p, 1, n1, &a, 0, NULL, NULL) == 0);
  CHECK(lg_atomic_write_file(lgt_tmp("plain.txt"), "x", 1, "test") == 0);
  snprintf(link, sizeof link, "%s.tmp.%ld", lgt_tmp("plain.txt"), (long)getpid());
  CHECK(symlink(victim, link) == 0);
  CHECK(lg_atomic_write_file(lgt_tmp("plain.txt"), "new\0bytes", 9, "test") == 0);
  size_t n;
  unsigned char *v = lgt_get_file(victim, &n);
  CHECK(v && n == 8 && memcmp(v, "precious", 8) == 0);
  free(v);
  v = lgt_get_file(lgt_tmp("plain.txt"), &n);
  CHECK(v && n == 9 && memcmp(v, "new\0bytes", 9) == 0);
  free(v);
  struct stat st;
  CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));    /* not ours to remove */
  lg_st *r = lg_st_read(p);
  CHECK(r && r->n == 1);
  lg_st_free(r);
  /* the new file has the mode of any new file: 0666 minus the umask */
  mode_t old = umask(022);
  CHECK(lg_atomic_write_file(lgt_tmp("mode.txt"), "m", 1, "test") == 0);
  CHECK(stat(lgt_tmp("mode.txt"), &st) == 0 && (st.st_mode & 0777) == 0644);
  umask(027);
  CHECK(lg_atomic_write_file(lgt_tmp("mode.txt"), "m", 1, "test") == 0);
  CHECK(stat(lgt_tmp("mode.txt"), &st) == 0 && (st.st_mode & 0777) == 0640);
  umask(old);
  lg_release(a);
}

/* /dev/full: every write fails with ENOSPC; the error names the file and
 * the OS error. */
static void test_atomic_errors(void)
{
  if (access("/dev/full", W_OK) != 0) {
    fprintf(stderr, "  (skipped the /dev/full checks: no writable /dev/full)\n");
  } else {
    FAILS_RC(lg_append_file("/dev/full", "record\n", 7, "append"), "/dev/full");
    CHECK(strstr(lg_last_error(), "No space left on device") != NULL);
  }
  /* a failed replace keeps the old file and leaves no temporary */
  const char *p = lgt_tmp("errs.txt");
  CHECK(lg_atomic_write_file(p, "old", 3, "test") == 0);
  CHECK(chmod(lgt_tmpdir, 0500) == 0);
  if (geteuid() != 0) {     /* root writes anyway */
    FAILS_RC(lg_atomic_write_file(p, "new", 3, "test"), "cannot create a temporary");
    check_names_file(p);
  }
  CHECK(chmod(lgt_tmpdir, 0700) == 0);
  size_t n;
  unsigned char *b = lgt_get_file(p, &n);
  CHECK(b && n == 3 && memcmp(b, "old", 3) == 0);
  free(b);
  FAILS_RC(lg_atomic_write_file(lgt_tmp("no/dir/x"), "x", 1, "test"), "No such file or directory");
  CHECK(lg_append_file(lgt_tmp("log.txt"), "a\n", 2, "append") == 0);
  CHECK(lg_append_file(lgt_tmp("log.txt"), "b\n", 2, "append") == 0);
  b = lgt_get_file(lgt_tmp("log.txt"), &n);
  CHECK(b && n == 4 && memcmp(b, "a\nb\n", 4) == 0);
  free(b);
  FAILS_RC(lg_append_file(lgt_tmp("no/dir/log"), "x", 1, "append"), "cannot open for appending");
  CHECK(count_prefix(lgt_tmpdir, "errs.txt.tmp.") == 0);
}

/* lg_atomic_clean removes exactly the temporaries of the named files whose
 * writer is gone: not a live pid's, not a locked one's, not a symlink, not
 * other names. */
static void test_atomic_clean(void)
{
  char sub[300], name[400];
  snprintf(sub, sizeof sub, "%s/clean", lgt_tmpdir);
  CHECK(mkdir(sub, 0700) == 0);
  long dead = dead_pid(), live = (long)getppid();
  const char *gone[] = {"ck.safetensors.tmp.%ld.AbC123", "ck.safetensors.tmp.%ld",
                        "samples_00010.png.tmp.%ld.Q1w2E3"};
  const char *kept_dead[] = {"ck.safetensors.tmp.%ld.abc", "ck.safetensors.tmp.%ld.toolong7",
                             "other.bin.tmp.%ld.AbC123", "ck.safetensors.tmp.%ldx",
                             "samples_1.jpg.tmp.%ld.AbC123", "ck.safetensors.tmpx%ld"};
  for (int i = 0; i < 3; i++) {
    snprintf(name, sizeof name, "%s/", sub);
    snprintf(name + strlen(name), 100, gone[i], dead);
    lgt_put_file(name, "stale", 5);
  }
  for (int i = 0; i < 6; i++) {
    snprintf(name, sizeof name, "%s/", sub);
    snprintf(name + strlen(name), 100, kept_dead[i], dead);
    lgt_put_file(name, "keep", 4);
  }
  snprintf(name, sizeof name, "%s/ck.safetensors.tmp.%ld.LiVe01", sub, live);
  lgt_put_file(name, "live writer", 11);
  snprintf(name, sizeof name, "%s/ck.safetensors.tmp.%ld.LoCk01", sub, dead);
  lgt_put_file(name, "locked", 6);
  int lfd = open(name, O_RDONLY);               /* a writer elsewhere holding its lock */
  CHECK(lfd >= 0 && flock(lfd, LOCK_EX) == 0);
  snprintf(name, sizeof name, "%s/ck.safetensors.tmp.%ld.SyM123", sub, dead);
  CHECK(symlink(lgt_tmp("victim2.txt"), name) == 0);
  lgt_put_file(lgt_tmp("victim2.txt"), "v", 1);
  snprintf(name, sizeof name, "%s/ck.safetensors", sub);
  lgt_put_file(name, "the checkpoint", 14);

  const char *targets[] = {"ck.safetensors", "samples_*.png", "metrics.jsonl"};
  CHECK(lg_atomic_clean(sub, 3, targets, "clean") == 3);
  CHECK(count_prefix(sub, "ck.safetensors") == 1 + 4 + 3);  /* ck + kept_dead's 4 + live, locked, link */
  CHECK(count_prefix(sub, "samples_00010") == 0);
  CHECK(count_prefix(sub, "samples_1.jpg") == 1);
  CHECK(count_prefix(sub, "other.bin") == 1);
  close(lfd);                                   /* the lock holder is gone too: now stale */
  CHECK(lg_atomic_clean(sub, 3, targets, "clean") == 1);
  size_t n;
  unsigned char *v = lgt_get_file(lgt_tmp("victim2.txt"), &n);
  CHECK(v && n == 1 && v[0] == 'v');
  free(v);
  FAILS_RC(lg_atomic_clean(lgt_tmp("no/such/dir"), 3, targets, "clean") < 0, "cannot list");
}

/* Write a file with header text `json`, claimed header length hlen
 * (or strlen(json) when 0) and ndata bytes of data. */
static void put_st(const char *path, const char *json, uint64_t hlen, size_t ndata)
{
  size_t jl = strlen(json);
  if (!hlen) hlen = jl;
  unsigned char *b = calloc(1, 8 + jl + ndata);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen >> (8 * i));
  memcpy(b + 8, json, jl);
  lgt_put_file(path, b, 8 + jl + ndata);
  free(b);
}

#define T1(sh, o) "{\"w\":{\"dtype\":\"F32\",\"shape\":" sh ",\"data_offsets\":" o "}}"

static void test_st_malformed(void)
{
  const char *p = lgt_tmp("bad.safetensors");
  lg_st *st;

  /* the well-formed base case reads */
  put_st(p, T1("[2]", "[0,8]"), 0, 8);
  st = lg_st_read(p);
  CHECK(st && st->n == 1 && st->tensors[0]->shape[0] == 2);
  lg_st_free(st);

  lgt_put_file(p, "abc", 3);
  FAILS(lg_st_read(p), "truncated");
  check_names_file(p);
  put_st(p, T1("[2]", "[0,8]"), 1000, 8);
  FAILS(lg_st_read(p), "header length 1000 exceeds the file size");
  check_names_file(p);
  put_st(p, " " T1("[2]", "[0,8]"), 0, 8);
  FAILS(lg_st_read(p), "must start with '{'");
  put_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 0, 8);
  FAILS(lg_st_read(p), "expected ',' or '}'");
  put_st(p, "{\"w\" 1}", 0, 0);
  FAILS(lg_st_read(p), "expected ':'");
  put_st(p, T1("[2]", "[0,8]") "x", 0, 8);
  FAILS(lg_st_read(p), "after the header object");
  put_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],}}", 0, 8);
  FAILS(lg_st_read(p), "expected a string");
  put_st(p, "{\"w\\q\":{}}", 0, 0);
  FAILS(lg_st_read(p), "bad escape");
  put_st(p, "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 0, 4);
  FAILS(lg_st_read(p), "tensor 'w'");
  FAILS(lg_st_read(p), "dtype F16 not supported (only F32)");
  check_names_file(p);
  put_st(p, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 0, 8);
  FAILS(lg_st_read(p), "unknown field 'x'");
  put_st(p, "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 0, 8);
  FAILS(lg_st_read(p), "missing 'shape'");
  put_st(p, T1("[-2]", "[0,8]"), 0, 8);
  FAILS(lg_st_read(p), "negative number");
  put_st(p, T1("[2.0]", "[0,8]"), 0, 8);
  FAILS(lg_st_read(p), "fraction");
  put_st(p, T1("[\"2\"]", "[0,8]"), 0, 8);
  FAILS(lg_st_read(p), "shape[1]: expected a non-negative integer");
  put_st(p, T1("[1,1,1,1,1,1,1,1,1]", "[0,4]"), 0, 4);
  FAILS(lg_st_read(p), "more than 8 entries");
  put_st(p, T1("[99999999999999999999]", "[0,8]"), 0, 8);
  FAILS(lg_st_read(p), "too large");
  put_st(p, T1("[2]", "[0,8,9]"), 0, 8);
  FAILS(lg_st_read(p), "more than 2 entries");
  put_st(p, T1("[2]", "[0]"), 0, 8);
  FAILS(lg_st_read(p), "needs 2 entries");
  put_st(p, T1("[2]", "[0,8]"), 0, 4);
  FAILS(lg_st_read(p), "outside the data region of 4 bytes");
  put_st(p, T1("[2]", "[8,0]"), 0, 8);
  FAILS(lg_st_read(p), "end before begin");
  put_st(p, T1("[2]", "[0,4]"), 0, 4);
  FAILS(lg_st_read(p), "span 4 bytes, shape 2 F32 needs 8");
  put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 12);
  FAILS(lg_st_read(p), "overlap");
  put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 0, 12);
  FAILS(lg_st_read(p), "gap");
  put_st(p, T1("[2]", "[0,8]"), 0, 12);
  FAILS(lg_st_read(p), "tensors cover 8");
  put_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8);
  FAILS(lg_st_read(p), "appears twice");
  put_st(p, "{\"__metadata__\":{\"k\":1}}", 0, 0);
  FAILS(lg_st_read(p), "metadata values must be strings");
  put_st(p, "{\"__metadata__\":{\"k\":\"v\"}}", 0, 0);   /* metadata only: fine */
  st = lg_st_read(p);
  CHECK(st && st->nmeta == 1 && strcmp(st->vals[0], "v") == 0);
  lg_st_free(st);
  put_st(p, "{\"\\ud800\":{}}", 0, 0);
  FAILS(lg_st_read(p), "surrogate");
  put_st(p, "{\"\xc3\x28\":{}}", 0, 0);
  FAILS(lg_st_read(p), "UTF-8");
  put_st(p, "{\"w\":[1,2]}", 0, 0);
  FAILS(lg_st_read(p), "expected '{'");
  FAILS(lg_st_read(lgt_tmp("missing.safetensors")), "cannot open");
  check_names_file(lgt_tmp("missing.safetensors"));
  /* a \u escape decoding to a name */
  put_st(p, "{\"\\u0041\\u00e9\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 0, 4);
  st = lg_st_read(p);
  CHECK(st && st->n == 1 && strcmp(st->names[0], "A\xc3\xa9") == 0 && st->tensors[0]->ndim == 0);
  lg_st_free(st);
}

/* ---- images ------------------------------------------------------------------------- */
static void test_png_round_trip(void)
{
  /* RGB 3x5x7 with values k/255 so the mapping to bytes is exact */
  int64_t s[3] = {3, 5, 7};
  lg_tensor *t = OK(lg_empty(3, s));
  for (int i = 0; i < 105; i++) lg_data(t)[i] = (float)((i * 37 + 11) % 256) / 255.0f;
  CHECK(lg_png_write(lgt_tmp("rgb.png"), t, 0, 1) == 0);
  int w, h, c;
  unsigned char *px = stbi_load(lgt_tmp("rgb.png"), &w, &h, &c, 0);
  CHECK(px && w == 7 && h == 5 && c == 3);
  int bad = 0;
  for (int k = 0; px && k < 3; k++)
    for (int i = 0; i < 35; i++) bad += px[i * 3 + k] != ((k * 35 + i) * 37 + 11) % 256;
  CHECK(bad == 0);
  stbi_image_free(px);

  /* lg_image_read gives (C,H,W) in [0,255] */
  lg_tensor *r = OK(lg_image_read(lgt_tmp("rgb.png"), 0));
  lg_tensor *t255 = OK(lg_empty(3, s));
  for (int i = 0; i < 105; i++) lg_data(t255)[i] = (float)((i * 37 + 11) % 256);
  CHECK_CLOSE(r, t255, 1e-4);
  lg_release(r);
  r = OK(lg_image_read(lgt_tmp("rgb.png"), 4));   /* alpha added */
  CHECK(r->shape[0] == 4 && lg_data(r)[3 * 35] == 255);
  lg_release(r);

  /* gray (H,W) with a value range, clamping and NaN */
  int64_t s2[2] = {2, 3};
  float gv[6] = {-1, 0, 1, 2, -5, NAN};
  lg_tensor *gimg = OK(lg_from_data(2, s2, gv));
  CHECK(lg_png_write(lgt_tmp("gray.png"), gimg, -1, 1) == 0);
  px = stbi_load(lgt_tmp("gray.png"), &w, &h, &c, 0);
  unsigned char wantg[6] = {0, 128, 255, 255, 0, 0};   /* (v+1)/2*255 rounded, clamped */
  CHECK(px && w == 3 && h == 2 && c == 1 && memcmp(px, wantg, 6) == 0);
  stbi_image_free(px);

  FAILS_RC(lg_png_write(lgt_tmp("bad.png"), t255, 1, 1), "range");
  int64_t s5[3] = {5, 2, 2};
  lg_tensor *five = OK(lg_zeros(3, s5));
  FAILS_RC(lg_png_write(lgt_tmp("bad.png"), five, 0, 1), "5 channels");
  CHECK(access(lgt_tmp("bad.png"), F_OK) != 0);
  FAILS(lg_image_read(lgt_tmp("nope.png"), 0), "cannot open");
  lgt_put_file(lgt_tmp("junk.png"), "not an image at all", 19);
  FAILS(lg_image_read(lgt_tmp("junk.png"), 0), "cannot decode");
  check_names_file(lgt_tmp("junk.png"));

  /* JPEG in: a flat colour survives compression within a few levels */
  unsigned char flat[8 * 8 * 3];
  for (int i = 0; i < 64; i++) { flat[3 * i] = 200; flat[3 * i + 1] = 100; flat[3 * i + 2] = 50; }
  CHECK(stbi_write_jpg(lgt_tmp("flat.jpg"), 8, 8, 3, flat, 95));
  r = OK(lg_image_read(lgt_tmp("flat.jpg"), 0));
  CHECK(r->shape[0] == 3 && r->shape[1] == 8 && r->shape[2] == 8);
  CHECK(fabsf(lg_data(r)[0] - 200) <= 4 && fabsf(lg_data(r)[64] - 100) <= 4 &&
        fabsf(lg_data(r)[128] - 50) <= 4);
  lg_release(r);
  lg_release(five); lg_release(gimg); lg_release(t255); lg_release(t);
}

/* PyTorch's bilinear, align_corners=False, written the other way round:
 * source coordinate (i+0.5)*in/out - 0.5, clamped at 0, two neighbours. */
static float naive_bilinear(const float *s, int64_t H, int64_t W, int64_t oh, int64_t ow,
                            int64_t i, int64_t j)
{
  double sy = (i + 0.5) * H / oh - 0.5, sx = (j + 0.5) * W / ow - 0.5;
  if (sy < 0) sy = 0;
  if (sx < 0) sx = 0;
  int64_t y0 = (int64_t)sy, x0 = (int64_t)sx;
  int64_t y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
  double fy = sy - y0, fx = sx - x0;
  return (float)((1 - fy) * ((1 - fx) * s[y0 * W + x0] + fx * s[y0 * W + x1]) +
                 fy * ((1 - fx) * s[y1 * W + x0] + fx * s[y1 * W + x1]));
}

static void test_resize(void)
{
  lg_gen g;
  lg_gen_seed(&g, 3);
  int64_t s[4] = {2, 3, 5, 6};
  lg_tensor *x = lgt_randn(&g, 4, s);
  /* same size: identity */
  lg_tensor *y = OK(lg_resize_bilinear(x, 5, 6));
  CHECK_CLOSE(y, x, 1e-6);
  lg_release(y);
  /* upsampling = PyTorch bilinear (also from a non-contiguous view) */
  lg_tensor *xt = OK(lg_transpose(x, 2, 3));    /* (2,3,6,5) */
  y = OK(lg_resize_bilinear(xt, 13, 11));
  CHECK(y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 13 && y->shape[3] == 11);
  lg_tensor *xc = OK(lg_contiguous(xt));
  double md = 0;
  for (int p = 0; p < 6; p++)
    for (int i = 0; i < 13; i++)
      for (int j = 0; j < 11; j++) {
        float want = naive_bilinear(lg_data(xc) + p * 30, 6, 5, 13, 11, i, j);
        double d = fabs(lg_data(y)[(p * 13 + i) * 11 + j] - want);
        if (d > md) md = d;
      }
  CHECK(md < 1e-5);
  lg_release(y);
  /* halving: triangle filter of width 2, taps 1/8 3/8 3/8 1/8 (clipped and
   * renormalised at the borders) */
  int64_t s1[2] = {1, 8};
  float v[8] = {1, 2, 4, 8, 16, 32, 64, 128};
  lg_tensor *row = OK(lg_from_data(2, s1, v));
  y = OK(lg_resize_bilinear(row, 1, 4));
  float want[4] = {(3 * 1 + 3 * 2 + 1 * 4) / 7.0f, (1 * 2 + 3 * 4 + 3 * 8 + 1 * 16) / 8.0f,
                   (1 * 8 + 3 * 16 + 3 * 32 + 1 * 64) / 8.0f, (1 * 32 + 3 * 64 + 3 * 128) / 7.0f};
  for (int j = 0; j < 4; j++) CHECK_NEAR(lg_data(y)[j], want[j], 1e-5);
  lg_release(y);
  /* constants stay constant under any factor */
  int64_t sc[3] = {1, 37, 23};
  lg_tensor *k = OK(lg_full(3, sc, 0.25f));
  y = OK(lg_resize_bilinear(k, 5, 64));
  double mx = 0;
  for (int i = 0; i < 5 * 64; i++) mx = fmax(mx, fabs(lg_data(y)[i] - 0.25));
  CHECK(mx < 1e-6);
  lg_release(y);
  FAILS(lg_resize_bilinear(k, 0, 3), "must be positive");
  int64_t s5[5] = {1, 1, 1, 2, 2};
  lg_tensor *five = OK(lg_zeros(5, s5));
  FAILS(lg_resize_bilinear(five, 3, 3), "expected (H,W)");
  lg_release(five); lg_release(k); lg_release(row); lg_release(xc); lg_release(xt); lg_release(x);
}

static void test_grid(void)
{
  /* 5 images 1x2x3 in [-1,1], nrow 2, padding 1 -> 3 rows x 2 cols */
  int64_t s[4] = {5, 1, 2, 3};
  lg_tensor *x = OK(lg_empty(4, s));
  for (int i = 0; i < 30; i++) lg_data(x)[i] = (i % 7) / 3.0f - 1;   /* some > 1 */
  lg_tensor *gr = OK(lg_image_grid(x, 2, 1, -1, 1, 0.5f));
  int64_t GH = 3 * 3 + 1, GW = 2 * 4 + 1;
  CHECK(gr->ndim == 3 && gr->shape[0] == 1 && gr->shape[1] == GH && gr->shape[2] == GW);
  int bad = 0;
  for (int64_t y = 0; y < GH; y++)
    for (int64_t xx = 0; xx < GW; xx++) {
      float want = 0.5f;
      int64_t r = (y - 1) / 3, c = (xx - 1) / 4, iy = (y - 1) % 3, ix = (xx - 1) % 4;
      if (y >= 1 && xx >= 1 && iy < 2 && ix < 3 && r * 2 + c < 5) {
        float v = ((((r * 2 + c) * 6 + iy * 3 + ix) % 7) / 3.0f - 1 + 1) / 2;
        want = v > 1 ? 1 : v;
      }
      bad += fabsf(lg_data(gr)[y * GW + xx] - want) > 1e-6;
    }
  CHECK(bad == 0);
  lg_release(gr);
  FAILS(lg_image_grid(x, 0, 1, -1, 1, 0), "nrow");
  lg_tensor *x3 = OK(lg_select(x, 1, 0));
  FAILS(lg_image_grid(x3, 2, 1, -1, 1, 0), "expected images (N,C,H,W)");
  lg_release(x3);
  lg_release(x);
}

static void test_draw(void)
{
  int64_t s[3] = {3, 10, 12};
  lg_tensor *img = OK(lg_zeros(3, s));
  float red[3] = {1, 0, 0}, white[3] = {1, 1, 1}, blue[3] = {0, 0, 1};
  float pv[4] = {2.5f, 3.5f, -100, 5};   /* second point is off the canvas */
  int64_t sp[2] = {2, 2};
  lg_tensor *pts = OK(lg_from_data(2, sp, pv));
  CHECK(lga_draw_points(img, pts, 0.5f, red, 1) == 0);
  float *d = lg_data(img);
  int lit = 0;
  for (int i = 0; i < 120; i++) lit += d[i] != 0;
  CHECK(lit == 1 && d[3 * 12 + 2] == 1);       /* pixel (row 3, col 2) of channel 0 */
  /* half-transparent blend */
  CHECK(lga_draw_points(img, pts, 0.5f, blue, 0.5f) == 0);
  CHECK_NEAR(d[3 * 12 + 2], 0.5, 1e-6);
  CHECK_NEAR(d[2 * 120 + 3 * 12 + 2], 0.5, 1e-6);
  /* a horizontal line along row 8 from col 1 to col 10 */
  CHECK(lga_draw_line(img, 1.5f, 8.5f, 10.5f, 8.5f, 1, white) == 0);
  int row = 0, other = 0;
  for (int i = 0; i < 10; i++)
    for (int j = 0; j < 12; j++) {
      int on = d[120 + i * 12 + j] == 1;
      if (i == 8 && j >= 1 && j <= 10) row += on;
      else other += on;
    }
  CHECK(row == 10 && other == 0);
  CHECK(lga_draw_rect(img, 0, 0, 2, 1, blue) == 0);
  CHECK(d[240] == 1 && d[241] == 1 && d[242] == 0 && d[240 + 12] == 0);
  /* text puts some pixels down, inside its width */
  int64_t st[3] = {1, 20, 60};
  lg_tensor *canvas = OK(lg_zeros(3, st));
  int w = 0;
  float one[1] = {1};
  CHECK(lga_draw_text(canvas, 1, 1, "0.5e-3", 1, one, &w) == 0);
  CHECK(w == lga_text_width("0.5e-3") && w > 10 && w < 50);
  int on = 0, outside = 0;
  for (int i = 0; i < 20; i++)
    for (int j = 0; j < 60; j++) {
      on += lg_data(canvas)[i * 60 + j] != 0;
      outside += lg_data(canvas)[i * 60 + j] != 0 && j > 1 + w;
    }
  CHECK(on > 10 && outside == 0);
  CHECK(lga_draw_text(canvas, 1, 1, "\x01\xff", 2, one, NULL) == 0);   /* non-ASCII: no crash */
  FAILS_RC(lga_draw_points(canvas, img, 1, one, 1), "expected points (N,2)");
  FAILS_RC(lga_draw_line(pts, 0, 0, 1, 1, 1, one), "expected an image (C,H,W)");
  lg_release(canvas); lg_release(pts); lg_release(img);
}

int main(void)
{
  if (lgt_tmpdir_make("test_io") != 0) return 1;
  LGT_RUN(test_idx_read_plain_and_gz);
  LGT_RUN(test_idx_other_types);
  LGT_RUN(test_idx_bad_files);
  LGT_RUN(test_idx_write);
  LGT_RUN(test_st_round_trip);
  LGT_RUN(test_st_exact_bytes);
  LGT_RUN(test_st_atomic);
  LGT_RUN(test_atomic_no_symlink);
  LGT_RUN(test_atomic_errors);
  LGT_RUN(test_atomic_clean);
  LGT_RUN(test_st_malformed);
  LGT_RUN(test_png_round_trip);
  LGT_RUN(test_resize);
  LGT_RUN(test_grid);
  LGT_RUN(test_draw);
  lgt_tmpdir_remove();
  return lgt_finish();
}
