/* test_image_safety.c: the image loader refuses hostile files (issue 17).
 *
 * Before: Debian's stb_image 2.27 wrote past a Huffman table on a JPEG whose
 * DHT counts add up to more than 256 (UBSan: index 257 out of bounds in
 * stbi__build_huffman), an 85-byte TGA decoded to 3 x 29545 x 8293 floats
 * (3.6 GB, 21 s), and a PNG or JPEG header could announce any size. Now PNG
 * and JPEG are read with libpng / libjpeg-turbo, other formats are refused,
 * the size in the header is checked against a limit before decoding, and
 * corrupt or truncated data is an error. Valid files decode as stb_image
 * decoded them (same channel conversions). */
#include <stdio.h>   /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <jpeglib.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include "lgt.h"
#include "lg_image.h"

/* A w x h image of c channels with varied values. */
static unsigned char *pattern(int w, int h, int c)
{
  unsigned char *p = malloc((size_t)w * h * c);
  for (int i = 0; i < w * h * c; i++) p[i] = (unsigned char)(i * 37 + (i / c) * 11);
  return p;
}

/* read_image gives exactly what stb_image gives for PNG, for every stored
 * channel count and every requested one (the conversions did not change). */
static void test_png_matches_stb(void)
{
  for (int c = 1; c <= 4; c++) {
    unsigned char *px = pattern(5, 3, c);
    CHECK(stbi_write_png(lgt_tmp("p.png"), 5, 3, c, px, 5 * c));
    free(px);
    for (int want = 0; want <= 4; want++) {
      int w, h, n;
      unsigned char *ref = stbi_load(lgt_tmp("p.png"), &w, &h, &n, want);
      lg_tensor *t = OK(lg_image_read(lgt_tmp("p.png"), want));
      if (!ref || !t) { stbi_image_free(ref); lg_release(t); continue; }
      int C = want ? want : n;
      CHECK(t->shape[0] == C && t->shape[1] == 3 && t->shape[2] == 5);
      int bad = 0;
      for (int k = 0; k < C; k++)
        for (int i = 0; i < 15; i++) bad += lg_data(t)[k * 15 + i] != ref[i * C + k];
      if (bad) fprintf(stderr, "stored %d channels, asked %d: %d samples differ\n", c, want, bad);
      CHECK(bad == 0);
      stbi_image_free(ref);
      lg_release(t);
    }
  }
}

/* JPEG decoders differ in their IDCT and upsampling: within a few levels. */
static void test_jpeg_close_to_stb(void)
{
  for (int c = 1; c <= 3; c += 2) {
    unsigned char *px = malloc(16 * 16 * c);
    for (int i = 0; i < 16 * 16 * c; i++) px[i] = (unsigned char)(40 + (i % (16 * c)) * 3);
    CHECK(stbi_write_jpg(lgt_tmp("s.jpg"), 16, 16, c, px, 95));
    free(px);
    int w, h, n;
    unsigned char *ref = stbi_load(lgt_tmp("s.jpg"), &w, &h, &n, 0);
    lg_tensor *t = OK(lg_image_read(lgt_tmp("s.jpg"), 0));
    if (ref && t) {   /* stb_image_write stores gray as YCbCr too: compare with what stb sees */
      CHECK(t->shape[0] == n && t->shape[1] == 16 && t->shape[2] == 16);
      float worst = 0;
      for (int k = 0; k < n && n == t->shape[0]; k++)
        for (int i = 0; i < 256; i++) worst = fmaxf(worst, fabsf(lg_data(t)[k * 256 + i] - ref[i * n + k]));
      CHECK(worst <= 4);
      if (worst > 4) fprintf(stderr, "%d channels: differs from stb_image by %g levels\n", c, worst);
    }
    stbi_image_free(ref);
    lg_release(t);
  }
}

/* A one-component (grayscale) JPEG, which stb_image_write cannot make. */
static void test_jpeg_gray(void)
{
  unsigned char px[8 * 8], *out = NULL;
  for (int i = 0; i < 64; i++) px[i] = (unsigned char)(100 + i);
  unsigned long size = 0;
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &out, &size);
  c.image_width = c.image_height = 8;
  c.input_components = 1;
  c.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  for (int y = 0; y < 8; y++) {
    JSAMPROW row = px + 8 * y;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  lgt_put_file(lgt_tmp("gray.jpg"), out, size);
  free(out);
  lg_tensor *t = OK(lg_image_read(lgt_tmp("gray.jpg"), 0));
  if (t) {
    CHECK(t->shape[0] == 1 && t->shape[1] == 8 && t->shape[2] == 8);
    float worst = 0;
    for (int i = 0; i < 64; i++) worst = fmaxf(worst, fabsf(lg_data(t)[i] - px[i]));
    CHECK(worst <= 2);
    lg_release(t);
  }
  t = OK(lg_image_read(lgt_tmp("gray.jpg"), 3));   /* gray fills R, G and B */
  if (t) {
    CHECK(t->shape[0] == 3 && lg_data(t)[5] == lg_data(t)[64 + 5] && lg_data(t)[5] == lg_data(t)[128 + 5]);
    lg_release(t);
  }
}

/* SOI, DQT, SOF0 8x8 gray, then a DHT whose 16 counts add up to 320. */
static void test_jpeg_bad_huffman_counts(void)
{
  unsigned char b[1024];
  size_t n = 0;
  const unsigned char head[] = {0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00};
  memcpy(b, head, sizeof head); n += sizeof head;
  memset(b + n, 1, 64); n += 64;
  const unsigned char sof[] = {0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01, 0x01, 0x11, 0x00};
  memcpy(b + n, sof, sizeof sof); n += sizeof sof;
  int len = 2 + 1 + 16 + 320;
  b[n++] = 0xFF; b[n++] = 0xC4; b[n++] = (unsigned char)(len >> 8); b[n++] = (unsigned char)len;
  b[n++] = 0x00;                                   /* DC table 0 */
  for (int i = 0; i < 16; i++) b[n++] = 20;        /* 16 x 20 = 320 codes > 256 */
  for (int i = 0; i < 320; i++) b[n++] = (unsigned char)(i % 12);
  const unsigned char sos[] = {0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00,
                               0x12, 0x34, 0x56, 0xFF, 0xD9};
  memcpy(b + n, sos, sizeof sos); n += sizeof sos;
  lgt_put_file(lgt_tmp("dht.jpg"), b, n);
  FAILS(lg_image_read(lgt_tmp("dht.jpg"), 0), "dht.jpg: cannot decode JPEG: Bogus Huffman table");
}

/* Find a marker (0xFF, m) in a JPEG; the offset of 0xFF or -1. */
static long find_marker(const unsigned char *b, size_t n, unsigned char m)
{
  for (size_t i = 0; i + 1 < n; i++)
    if (b[i] == 0xFF && b[i + 1] == m) return (long)i;
  return -1;
}

static void test_jpeg_size_and_truncation(void)
{
  unsigned char *px = pattern(16, 16, 3);
  CHECK(stbi_write_jpg(lgt_tmp("ok.jpg"), 16, 16, 3, px, 90));
  free(px);
  size_t n;
  unsigned char *b = lgt_get_file(lgt_tmp("ok.jpg"), &n);
  long sof = b ? find_marker(b, n, 0xC0) : -1;
  CHECK(sof > 0);
  if (sof > 0) {
    /* height and width 65000: 4.2e9 pixels announced by a 700-byte file */
    b[sof + 5] = b[sof + 7] = 0xFD;
    b[sof + 6] = b[sof + 8] = 0xE8;
    lgt_put_file(lgt_tmp("huge.jpg"), b, n);
    FAILS(lg_image_read(lgt_tmp("huge.jpg"), 0),
          "huge.jpg: 65000x65000 pixels is over the limit of 67108864");
  }
  /* cut in the middle of the entropy-coded data: libjpeg would fill the rest
   * with gray and warn; that is an error here */
  lgt_put_file(lgt_tmp("cut.jpg"), b, n * 3 / 4);
  lg_tensor *t = lg_image_read(lgt_tmp("cut.jpg"), 0);
  CHECK(t == NULL);
  CHECK(strstr(lg_last_error(), "cut.jpg: cannot decode JPEG") != NULL);
  lg_release(t);
  free(b);
}

/* Rewrite a PNG's IHDR size and its CRC, so libpng reads the header happily. */
static void png_set_size(unsigned char *b, uint32_t w, uint32_t h)
{
  for (int k = 0; k < 4; k++) {
    b[16 + k] = (unsigned char)(w >> (24 - 8 * k));
    b[20 + k] = (unsigned char)(h >> (24 - 8 * k));
  }
  uint32_t crc = (uint32_t)crc32(0, b + 12, 17);   /* "IHDR" + 13 bytes */
  for (int k = 0; k < 4; k++) b[29 + k] = (unsigned char)(crc >> (24 - 8 * k));
}

static void test_png_limits(void)
{
  unsigned char *px = pattern(4, 4, 3);
  CHECK(stbi_write_png(lgt_tmp("4x4.png"), 4, 4, 3, px, 12));
  free(px);
  size_t n;
  unsigned char *b = lgt_get_file(lgt_tmp("4x4.png"), &n);
  CHECK(b && n > 40 && memcmp(b + 12, "IHDR", 4) == 0);
  if (!b) return;
  png_set_size(b, 100000, 100000);
  lgt_put_file(lgt_tmp("huge.png"), b, n);
  FAILS(lg_image_read(lgt_tmp("huge.png"), 0),
        "huge.png: 100000x100000 pixels is over the limit of 67108864");
  free(b);
  /* the limit: an argument, then the environment */
  FAILS(lg_image_read_max(lgt_tmp("4x4.png"), 0, 15), "4x4.png: 4x4 pixels is over the limit of 15");
  lg_tensor *t = OK(lg_image_read_max(lgt_tmp("4x4.png"), 0, 16));
  lg_release(t);
  FAILS(lg_image_read_max(lgt_tmp("4x4.png"), 0, -5), "max_pixels = -5");
  setenv("LUAGAN_MAX_IMAGE_PIXELS", "15", 1);
  CHECK(lg_image_max_pixels() == 15);
  FAILS(lg_image_read(lgt_tmp("4x4.png"), 0), "over the limit of 15");
  t = OK(lg_image_read_max(lgt_tmp("4x4.png"), 0, 16));   /* the argument wins */
  lg_release(t);
  setenv("LUAGAN_MAX_IMAGE_PIXELS", "lots", 1);
  FAILS(lg_image_read(lgt_tmp("4x4.png"), 0), "LUAGAN_MAX_IMAGE_PIXELS = 'lots' is not an integer");
  unsetenv("LUAGAN_MAX_IMAGE_PIXELS");
  CHECK(lg_image_max_pixels() == LG_IMAGE_MAX_PIXELS);
  /* truncated and corrupted PNGs */
  b = lgt_get_file(lgt_tmp("4x4.png"), &n);
  lgt_put_file(lgt_tmp("cut.png"), b, n - 20);
  FAILS(lg_image_read(lgt_tmp("cut.png"), 0), "cut.png: cannot decode PNG");
  b[n - 30] ^= 0x55;   /* inside IDAT: the CRC no longer matches */
  lgt_put_file(lgt_tmp("crc.png"), b, n);
  FAILS(lg_image_read(lgt_tmp("crc.png"), 0), "crc.png: cannot decode PNG");
  free(b);
}

/* The 85-byte TGA of the kind: a run-length header of 29545 x 8293.
 * TGA (and BMP, GIF, PSD, ...) are not read at all any more. */
static void test_other_formats_refused(void)
{
  unsigned char tga[85] = {0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                           0x69, 0x73, 0x65, 0x20, 24, 0};   /* RLE true colour, 29545 x 8293 */
  for (int i = 18; i < 85; i++) tga[i] = 0xFF;
  lgt_put_file(lgt_tmp("bomb.tga"), tga, sizeof tga);
  FAILS(lg_image_read(lgt_tmp("bomb.tga"), 0), "bomb.tga: cannot decode: not a PNG or JPEG file");
  unsigned char bmp[64] = {'B', 'M'};
  lgt_put_file(lgt_tmp("x.bmp"), bmp, sizeof bmp);
  FAILS(lg_image_read(lgt_tmp("x.bmp"), 0), "not a PNG or JPEG file");
  lgt_put_file(lgt_tmp("empty.png"), "", 0);
  FAILS(lg_image_read(lgt_tmp("empty.png"), 0), "not a PNG or JPEG file");
  FAILS(lg_image_read(lgt_tmpdir, 0), "not a regular file");
}

/* The stream entry point decodes bytes in memory (what a fuzz harness feeds). */
static void test_stream(void)
{
  unsigned char *px = pattern(3, 2, 4);
  CHECK(stbi_write_png(lgt_tmp("m.png"), 3, 2, 4, px, 12));
  free(px);
  size_t n;
  unsigned char *b = lgt_get_file(lgt_tmp("m.png"), &n);
  FILE *f = b ? fmemopen(b, n, "rb") : NULL;
  CHECK(f != NULL);
  if (f) {
    lg_tensor *t = OK(lg_image_read_stream(f, "<memory>", 0, 100));
    if (t) { CHECK(t->shape[0] == 4 && t->shape[1] == 2 && t->shape[2] == 3); lg_release(t); }
    FAILS(lg_image_read_stream(f, "<memory>", 0, 5), "<memory>: 3x2 pixels is over the limit of 5");
    FAILS(lg_image_read_stream(f, "<memory>", 0, 0), "max_pixels = 0");
    fclose(f);
  }
  free(b);
}

/* Every prefix of a valid file, and the file with each byte inverted in
 * turn, either decodes or fails with an error; never a crash, a leak or a
 * sanitizer report (this runs under ASan + UBSan in CI). A deterministic
 * sweep of the error paths, not a fuzzer (tests/fuzz has those). */
static void sweep(const char *name)
{
  size_t n;
  unsigned char *b = lgt_get_file(lgt_tmp(name), &n);
  CHECK(b != NULL && n > 16);
  if (!b) return;
  int decoded = 0, failed = 0;
  for (size_t len = 0; len <= n; len++) {
    FILE *f = fmemopen(b, len ? len : 1, "rb");
    if (!f) continue;
    lg_tensor *t = len ? lg_image_read_stream(f, name, 0, 1 << 20) : NULL;
    fclose(f);
    if (t) decoded++; else failed++;
    lg_release(t);
  }
  CHECK(decoded >= 1 && failed >= 1);   /* the whole file decodes, short prefixes fail */
  for (size_t i = 0; i < n; i++) {
    b[i] ^= 0xFF;
    FILE *f = fmemopen(b, n, "rb");
    if (f) {
      lg_tensor *t = lg_image_read_stream(f, name, 3, 1 << 20);
      if (t) CHECK(t->shape[0] == 3 && lg_numel(t) <= 3 << 20);
      lg_release(t);
      fclose(f);
    }
    b[i] ^= 0xFF;
  }
  free(b);
}

static void test_corruption_sweep(void)
{
  unsigned char *px = pattern(9, 7, 3);
  CHECK(stbi_write_png(lgt_tmp("sw.png"), 9, 7, 3, px, 27));
  CHECK(stbi_write_jpg(lgt_tmp("sw.jpg"), 9, 7, 3, px, 80));
  free(px);
  sweep("sw.png");
  sweep("sw.jpg");
}

int main(void)
{
  if (lgt_tmpdir_make("test_image_safety") != 0) return 1;
  unsetenv("LUAGAN_MAX_IMAGE_PIXELS");
  LGT_RUN(test_png_matches_stb);
  LGT_RUN(test_jpeg_close_to_stb);
  LGT_RUN(test_jpeg_gray);
  LGT_RUN(test_jpeg_bad_huffman_counts);
  LGT_RUN(test_jpeg_size_and_truncation);
  LGT_RUN(test_png_limits);
  LGT_RUN(test_other_formats_refused);
  LGT_RUN(test_stream);
  LGT_RUN(test_corruption_sweep);
  lgt_tmpdir_remove();
  return lgt_finish();
}
