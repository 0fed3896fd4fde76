/* test_bytes.c: byte data sets (runtime/lg_bytes.c) against a naive
 * reference, reading only the first rows of an IDX file (lg_idx_read_bytes),
 * and the allocator's cache cap that follows the live set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "lgt.h"
#include "lg_bytes.h"
#include "lg_idx.h"

/* The conversion the full-float path ran: float, times scale, plus offset,
 * clamped (separate roundings, as separate tensor ops do them). */
static float naive_pixel(unsigned char b, float scale, float offset, float lo, float hi)
{
  volatile float v = (float)b;
  v = v * scale;
  v = v + offset;
  return v < lo ? lo : v > hi ? hi : v;
}

static void tanh_lut(float lut[256])
{
  for (int i = 0; i < 256; i++) lut[i] = naive_pixel((unsigned char)i, 2.0f / 255, -1, -1, 1);
}

/* 37 rows of 3x5 bytes */
static lg_bytes *some_bytes(void)
{
  int64_t shape[3] = {37, 3, 5};
  unsigned char *d = malloc(37 * 15);
  for (int i = 0; i < 37 * 15; i++) d[i] = (unsigned char)((i * 97 + 13) % 256);
  return lg_bytes_wrap(d, 3, shape);
}

static void test_gather_matches_naive(void)
{
  lg_bytes *b = some_bytes();
  float lut[256];
  tanh_lut(lut);
  int64_t rows[9] = {36, 0, 5, 5, 17, 1, 36, 2, 30};   /* repeats and both ends */
  lg_tensor *t = OK(lg_bytes_batch(b, 9));
  CHECK(t->ndim == 3 && t->shape[0] == 9 && t->shape[1] == 3 && t->shape[2] == 5);
  CHECK(lg_bytes_gather(b, rows, 9, lut, lg_data(t)) == 0);
  int bad = 0;
  for (int i = 0; i < 9; i++)
    for (int j = 0; j < 15; j++) {
      float want = naive_pixel(b->data[rows[i] * 15 + j], 2.0f / 255, -1, -1, 1);
      if (memcmp(&lg_data(t)[i * 15 + j], &want, 4) != 0) bad++;   /* bit for bit */
    }
  CHECK(bad == 0);
  lg_release(t);
  /* a range is the gather of consecutive rows */
  lg_tensor *r = OK(lg_bytes_range(b, 4, 6, lut));
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 15; j++)
      if (lg_data(r)[i * 15 + j] != naive_pixel(b->data[(4 + i) * 15 + j], 2.0f / 255, -1, -1, 1))
        bad++;
  CHECK(bad == 0);
  lg_release(r);
  lg_bytes_free(b);
}

static void test_rows_out_of_range_are_errors(void)
{
  lg_bytes *b = some_bytes();
  float lut[256], dst[3 * 15] = {0};
  tanh_lut(lut);
  int64_t rows[3] = {1, 37, 2};
  CHECK(lg_bytes_gather(b, rows, 3, lut, dst) == -1);
  CHECK(strstr(lg_last_error(), "row 38 at position 2 is outside 1..37") != NULL);
  CHECK(dst[0] == 0);                          /* nothing written */
  rows[1] = -1;
  CHECK(lg_bytes_gather(b, rows, 3, lut, dst) == -1);
  FAILS(lg_bytes_range(b, 30, 8, lut), "rows 31..38 are outside 1..37");
  FAILS(lg_bytes_range(b, -1, 2, lut), "outside");
  lg_bytes_free(b);
}

/* An IDX ubyte file, gzip, whose header says `rows` rows of 4 bytes but which
 * holds only `have` of them. */
static void write_gz(const char *path, int rows, int have)
{
  gzFile gz = gzopen(path, "wb");
  unsigned char h[12] = {0, 0, 8, 2, 0, 0, 0, (unsigned char)rows, 0, 0, 0, 4};
  gzwrite(gz, h, 12);
  for (int i = 0; i < have * 4; i++) {
    unsigned char v = (unsigned char)(i % 251);
    gzwrite(gz, &v, 1);
  }
  gzclose(gz);
}

static void test_idx_bytes_reads_only_the_rows_asked(void)
{
  char path[64];
  snprintf(path, sizeof path, "/tmp/lg_test_bytes_%d.idx.gz", (int)getpid());
  write_gz(path, 50, 50);
  int nd;
  int64_t shape[LG_MAXDIM], in_file;
  unsigned char *d;
  CHECK(lg_idx_read_bytes(path, 7, &nd, shape, &in_file, &d) == 0);
  CHECK(nd == 2 && shape[0] == 7 && shape[1] == 4 && in_file == 50);
  int bad = 0;
  for (int i = 0; i < 28; i++) if (d[i] != i % 251) bad++;
  CHECK(bad == 0);
  free(d);
  CHECK(lg_idx_read_bytes(path, -1, &nd, shape, &in_file, &d) == 0);   /* all */
  CHECK(shape[0] == 50 && d[199] == 199 % 251);
  free(d);
  CHECK(lg_idx_read_bytes(path, 80, &nd, shape, &in_file, &d) == 0);   /* more than there are */
  CHECK(shape[0] == 50);
  free(d);
  /* the stream breaks off after 10 rows: the first 10 still read; past them,
   * or the whole file, is the truncation error */
  write_gz(path, 50, 10);
  CHECK(lg_idx_read_bytes(path, 10, &nd, shape, &in_file, &d) == 0);
  free(d);
  CHECK(lg_idx_read_bytes(path, 11, &nd, shape, &in_file, &d) == -1);
  CHECK(strstr(lg_last_error(), "truncated: header says 50x4 ubyte = 200 bytes, file has 40") != NULL);
  CHECK(lg_idx_read_bytes(path, -1, &nd, shape, &in_file, &d) == -1);
  CHECK(d == NULL);
  /* float files are not byte data sets */
  int64_t s2[2] = {2, 2};
  lg_tensor *f = OK(lg_zeros(2, s2));
  CHECK(lg_idx_write(path, f, LG_IDX_F32) == 0);
  CHECK(lg_idx_read_bytes(path, -1, &nd, shape, &in_file, &d) == -1);
  CHECK(strstr(lg_last_error(), "expected ubyte") != NULL);
  lg_release(f);
  remove(path);
}

/* The cache holds no more than the live bytes (or 64 MiB): a big block freed
 * while little else is alive goes back to the system; a loop whose
 * temporaries are smaller than its live set still allocates nothing. */
static void test_cache_follows_the_live_set(void)
{
  lg_mem_trim();
  size_t live0 = lg_mem_live_bytes();
  int64_t big[1] = {(int64_t)100 << 18};      /* 100 MiB of floats */
  lg_tensor *t = OK(lg_empty(1, big));
  lg_release(t);
  CHECK(lg_mem_cached_bytes() == 0);          /* one-off: not kept */
  lg_tensor *keep = OK(lg_empty(1, big));     /* 100 MiB alive */
  int64_t tmp[1] = {(int64_t)40 << 18};       /* 40 MiB temporaries */
  lg_release(OK(lg_empty(1, tmp)));
  CHECK(lg_mem_cached_bytes() >= ((size_t)40 << 20));
  uint64_t sys0 = lg_mem_sys_allocs();
  for (int i = 0; i < 3; i++) lg_release(OK(lg_empty(1, tmp)));
  CHECK(lg_mem_sys_allocs() == sys0);
  lg_release(keep);
  lg_mem_trim();
  CHECK(lg_mem_live_bytes() == live0);
}

int main(void)
{
  LGT_RUN(test_gather_matches_naive);
  LGT_RUN(test_rows_out_of_range_are_errors);
  LGT_RUN(test_idx_bytes_reads_only_the_rows_asked);
  LGT_RUN(test_cache_follows_the_live_set);
  return lgt_finish();
}
