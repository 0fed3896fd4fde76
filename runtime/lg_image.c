/* lg_image.c: PNG out, images in, resize and grids (see lg_image.h); drawing
 * for plots is application code, in apps/lga_draw.c.
 *
 * Images are read with libpng and libjpeg-turbo, the maintained libraries
 * (Debian security support, continuous fuzzing upstream), not stb_image:
 * Debian 12's stb_image 2.27 writes past a Huffman table on a JPEG whose DHT
 * counts exceed 256 (CVE-2022-28042) and carries other JPEG decoder bugs
 * fixed only in 2.28 (CVE-2022-28041, stb issue #1178), and its
 * TGA/GIF/PSD/... decoders are attack surface nobody asked for. The two libraries are as fast or faster
 * (docs/images.md has the measurements). Only PNG and JPEG are read.
 *
 * Debian's libstb ships stb_image_write compiled into libstb.so, so only
 * its header is included here (defining STB_IMAGE_WRITE_IMPLEMENTATION would
 * duplicate the symbols). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <png.h>
#include <jpeglib.h>
#include "stb_image_write.h"
#include "lg_image.h"
#include "lg_atomic.h"

/* malloc size for n items, never 0 (malloc(0) may return NULL) */
static size_t lg_nz(int64_t n) { return n > 0 ? (size_t)n : 1; }

/* ---- PNG out ------------------------------------------------------------------ */
static void lg_png_sink(void *ctx, void *data, int size)
{
  lg_afile *a = ctx;
  if (fwrite(data, 1, (size_t)size, a->f) != (size_t)size) { /* ferror checked at commit */ }
}

static unsigned char lg_to_u8(float v, float lo, float scale)
{
  float s = (v - lo) * scale;
  if (!(s > 0)) return 0;          /* also NaN */
  if (s >= 255) return 255;
  return (unsigned char)(s + 0.5f);
}

int lg_png_write(const char *path, const lg_tensor *t, float lo, float hi)
{
  char sb[128];
  int64_t C, H, W;
  if (t->ndim == 2) { C = 1; H = t->shape[0]; W = t->shape[1]; }
  else if (t->ndim == 3) { C = t->shape[0]; H = t->shape[1]; W = t->shape[2]; }
  else {
    lg_error("write_png: %s: expected an image (C,H,W) or (H,W), got shape %s", path,
             lg_shape_str(t, sb, sizeof sb));
    return -1;
  }
  if (C < 1 || C > 4) {
    lg_error("write_png: %s: %lld channels in shape %s (expected 1 gray, 2 gray+alpha, 3 RGB "
             "or 4 RGBA)", path, (long long)C, lg_shape_str(t, sb, sizeof sb));
    return -1;
  }
  if (H < 1 || W < 1 || H > (1 << 24) || W > (1 << 24)) {
    lg_error("write_png: %s: cannot write an image of shape %s", path, lg_shape_str(t, sb, sizeof sb));
    return -1;
  }
  if (!(hi > lo)) {
    lg_error("write_png: %s: value range [%g, %g] is empty", path, lo, hi);
    return -1;
  }
  int64_t n = C * H * W;
  float *v = malloc(sizeof(float) * n);
  unsigned char *px = malloc((size_t)n);
  if (!v || !px) { free(v); free(px); lg_error("write_png: %s: out of memory", path); return -1; }
  lg_read(t, v);
  float scale = 255.0f / (hi - lo);
  for (int64_t c = 0; c < C; c++)       /* planar CHW -> interleaved HWC */
    for (int64_t i = 0; i < H * W; i++) px[i * C + c] = lg_to_u8(v[c * H * W + i], lo, scale);
  free(v);

  lg_afile a;
  if (lg_atomic_open(&a, path, "write_png") != 0) { free(px); return -1; }
  int ok = stbi_write_png_to_func(lg_png_sink, &a, (int)W, (int)H, (int)C, px, (int)(W * C));
  free(px);
  if (!ok) {
    lg_error("write_png: %s: PNG encoder failed", path);
    lg_atomic_abort(&a);
    return -1;
  }
  return lg_atomic_commit(&a);
}

/* ---- images in ---------------------------------------------------------------- */
/* A decoded image: 8-bit samples, interleaved, c channels as stored (1 gray,
 * 2 gray+alpha, 3 RGB, 4 RGBA). */
typedef struct { unsigned char *px; int64_t w, h; int c; } lg_raw;

int64_t lg_image_max_pixels(void)
{
  const char *e = getenv("LUAGAN_MAX_IMAGE_PIXELS");
  if (!e || !*e) return LG_IMAGE_MAX_PIXELS;
  char *end;
  errno = 0;
  long long v = strtoll(e, &end, 10);
  if (errno || *end || v < 1 || v > LG_IMAGE_PIXELS_CAP) {
    lg_error("read_image: LUAGAN_MAX_IMAGE_PIXELS = '%.40s' is not an integer in 1..%lld", e,
             (long long)LG_IMAGE_PIXELS_CAP);
    return -1;
  }
  return v;
}

/* The header's size against the limit, before anything is decoded: a few
 * bytes of header can announce gigabytes of pixels. */
static int lg_image_fits(const char *path, int64_t w, int64_t h, int64_t max_pixels)
{
  int64_t n;
  if (w >= 1 && h >= 1 && lg_size_mul(w, h, &n) == 0 && n <= max_pixels) return 0;
  lg_error("read_image: %s: %lldx%lld pixels is over the limit of %lld (option max_pixels or "
           "LUAGAN_MAX_IMAGE_PIXELS raise it; see docs/images.md)", path, (long long)w,
           (long long)h, (long long)max_pixels);
  return -1;
}

/* PNG through libpng's simplified API (it keeps its setjmp inside). */
static int lg_png_decode(FILE *f, const char *path, int64_t max_pixels, lg_raw *r)
{
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_stdio(&im, f)) {
    lg_error("read_image: %s: cannot decode PNG: %s", path, im.message);
    return -1;
  }
  if (lg_image_fits(path, im.width, im.height, max_pixels)) { png_image_free(&im); return -1; }
  /* the stored channels, 8 bits each; 16-bit samples taken as sRGB like
   * 8-bit ones (rescaled, not put through a linear-to-sRGB curve) */
  int alpha = (im.format & PNG_FORMAT_FLAG_ALPHA) != 0, color = (im.format & PNG_FORMAT_FLAG_COLOR) != 0;
  im.format = (color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0);
  im.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  r->w = im.width;
  r->h = im.height;
  r->c = (color ? 3 : 1) + alpha;
  /* not PNG_IMAGE_SIZE, which multiplies in 32 bits (libpng itself refuses
   * buffers past 4 GiB, i.e. a max_pixels raised beyond ~2^30) */
  r->px = malloc((size_t)r->w * r->h * r->c);
  if (!r->px) {
    png_image_free(&im);
    lg_error("read_image: %s: out of memory for %lldx%lld pixels", path, (long long)r->w, (long long)r->h);
    return -1;
  }
  if (!png_image_finish_read(&im, NULL, r->px, 0, NULL)) {
    lg_error("read_image: %s: cannot decode PNG: %s", path, im.message);
    free(r->px);
    r->px = NULL;
    return -1;
  }
  return 0;
}

/* libjpeg reports errors through error_exit, which must not return: it
 * longjmps back to lg_jpeg_decode. Warnings (corrupt or truncated data,
 * which libjpeg would paper over with gray) are errors here too, and so is a
 * progressive file with absurdly many scans (each rescans the whole image:
 * a small file could take minutes). */
#define LG_JPEG_MAX_SCANS 1000
typedef struct {
  struct jpeg_error_mgr err;
  struct jpeg_progress_mgr progress;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
} lg_jpeg_ctx;

static void lg_jpeg_fail(j_common_ptr cinfo)
{
  lg_jpeg_ctx *c = (lg_jpeg_ctx *)cinfo->err;
  c->err.format_message(cinfo, c->msg);
  longjmp(c->jb, 1);
}

static void lg_jpeg_message(j_common_ptr cinfo, int level)
{
  if (level < 0) lg_jpeg_fail(cinfo);   /* a warning: corrupt data */
}

static void lg_jpeg_progress(j_common_ptr cinfo)
{
  lg_jpeg_ctx *c = (lg_jpeg_ctx *)cinfo->err;
  if (((j_decompress_ptr)cinfo)->input_scan_number > LG_JPEG_MAX_SCANS) {
    snprintf(c->msg, sizeof c->msg, "more than %d progressive scans", LG_JPEG_MAX_SCANS);
    longjmp(c->jb, 1);
  }
}

static int lg_jpeg_decode(FILE *f, const char *path, int64_t max_pixels, lg_raw *r)
{
  struct jpeg_decompress_struct d;
  lg_jpeg_ctx c;
  memset(&c, 0, sizeof c);
  d.err = jpeg_std_error(&c.err);
  c.err.error_exit = lg_jpeg_fail;
  c.err.emit_message = lg_jpeg_message;
  c.progress.progress_monitor = lg_jpeg_progress;
  unsigned char *volatile px = NULL;   /* volatile: read after longjmp */
  if (setjmp(c.jb)) {
    jpeg_destroy_decompress(&d);
    free(px);
    lg_error("read_image: %s: cannot decode JPEG: %s", path, c.msg);
    return -1;
  }
  jpeg_create_decompress(&d);
  d.progress = &c.progress;
  jpeg_stdio_src(&d, f);
  jpeg_read_header(&d, TRUE);
  if (lg_image_fits(path, d.image_width, d.image_height, max_pixels)) {
    jpeg_destroy_decompress(&d);
    return -1;
  }
  int gray = d.num_components == 1;
  d.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;   /* libjpeg refuses what it cannot convert */
  jpeg_start_decompress(&d);
  size_t row = (size_t)d.output_width * d.output_components;
  px = malloc(row * d.output_height);
  if (!px) {
    snprintf(c.msg, sizeof c.msg, "out of memory for %ux%u pixels", d.output_width, d.output_height);
    longjmp(c.jb, 1);
  }
  while (d.output_scanline < d.output_height) {
    JSAMPROW rows[1] = {px + row * d.output_scanline};
    jpeg_read_scanlines(&d, rows, 1);
  }
  jpeg_finish_decompress(&d);
  r->w = d.output_width;
  r->h = d.output_height;
  r->c = d.output_components;
  r->px = px;
  jpeg_destroy_decompress(&d);
  return 0;
}

/* Sample k (0..C-1) of pixel p converted from r->c stored channels to C,
 * as stb_image converted: gray = (77 R + 150 G + 29 B) >> 8, a missing
 * alpha is 255, a gray value fills R, G and B. */
static unsigned char lg_sample(const lg_raw *r, const unsigned char *p, int C, int k)
{
  int has_alpha = r->c == 2 || r->c == 4, colored = r->c >= 3;
  if ((C == 2 || C == 4) && k == C - 1) return has_alpha ? p[r->c - 1] : 255;
  if (C >= 3 && colored) return p[k];
  if (C >= 3 || !colored) return p[0];
  return (unsigned char)((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8);
}

lg_tensor *lg_image_read(const char *path, int channels)
{
  return lg_image_read_max(path, channels, 0);
}

lg_tensor *lg_image_read_max(const char *path, int channels, int64_t max_pixels)
{
  if (channels < 0 || channels > 4)
    return lg_error("read_image: %s: channels = %d (expected 0 = as stored, or 1..4)", path, channels);
  if (max_pixels == 0 && (max_pixels = lg_image_max_pixels()) < 0) return NULL;
  if (max_pixels < 1 || max_pixels > LG_IMAGE_PIXELS_CAP)
    return lg_error("read_image: %s: max_pixels = %lld (expected 1..%lld)", path,
                    (long long)max_pixels, (long long)LG_IMAGE_PIXELS_CAP);
  FILE *f = fopen(path, "rb");
  if (!f) return lg_error("read_image: %s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return lg_error("read_image: %s: not a regular file", path);
  }
  lg_tensor *t = lg_image_read_stream(f, path, channels, max_pixels);
  fclose(f);
  return t;
}

lg_tensor *lg_image_read_stream(FILE *f, const char *path, int channels, int64_t max_pixels)
{
  if (channels < 0 || channels > 4)
    return lg_error("read_image: %s: channels = %d (expected 0 = as stored, or 1..4)", path, channels);
  if (max_pixels < 1 || max_pixels > LG_IMAGE_PIXELS_CAP)
    return lg_error("read_image: %s: max_pixels = %lld (expected 1..%lld)", path,
                    (long long)max_pixels, (long long)LG_IMAGE_PIXELS_CAP);
  unsigned char sig[8] = {0};
  rewind(f);
  size_t got = fread(sig, 1, sizeof sig, f);
  rewind(f);
  lg_raw r = {0};
  int rc;
  if (got == 8 && png_sig_cmp(sig, 0, 8) == 0) rc = lg_png_decode(f, path, max_pixels, &r);
  else if (got >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF)
    rc = lg_jpeg_decode(f, path, max_pixels, &r);
  else rc = -1, lg_error("read_image: %s: cannot decode: not a PNG or JPEG file (the formats "
                         "read; see docs/images.md)", path);
  if (rc) return NULL;
  int C = channels ? channels : r.c;
  int64_t shape[3] = {C, r.h, r.w};
  lg_tensor *t = lg_empty_op("read_image", 3, shape);
  if (!t) { free(r.px); return NULL; }
  float *d = lg_data(t);
  int64_t hw = r.h * r.w;
  for (int64_t i = 0; i < hw; i++)
    for (int k = 0; k < C; k++) d[k * hw + i] = lg_sample(&r, r.px + i * r.c, C, k);
  free(r.px);
  return t;
}

/* ---- resize ---------------------------------------------------------------------- */
/* Triangle-filter weights for one axis: output i reads input [first[i],
 * first[i]+len[i]) with weights w[i*K + j]; K = the widest window. */
typedef struct { int64_t *first; int *len; float *w; int K; } lg_taps;

static int lg_taps_make(lg_taps *tp, int64_t in, int64_t out)
{
  double scale = (double)in / out, fs = scale > 1 ? scale : 1, support = fs;
  int K = (int)ceil(support) * 2 + 2;
  tp->K = K;
  tp->first = malloc(sizeof(int64_t) * out);
  tp->len = malloc(sizeof(int) * out);
  tp->w = malloc(sizeof(float) * out * K);
  if (!tp->first || !tp->len || !tp->w) return -1;
  for (int64_t i = 0; i < out; i++) {
    double center = (i + 0.5) * scale;           /* in input pixel units, edges at integers */
    int64_t lo = (int64_t)floor(center - support), hi = (int64_t)ceil(center + support);
    if (lo < 0) lo = 0;
    if (hi > in) hi = in;
    if (hi - lo > K) hi = lo + K;
    float *wt = tp->w + i * K;
    double sum = 0;
    for (int j = 0; j < K; j++) wt[j] = 0;
    for (int64_t j = lo; j < hi; j++) {
      double d = fabs((j + 0.5 - center) / fs);  /* distance of pixel centre j */
      wt[j - lo] = (float)(d < 1 ? 1 - d : 0);
      sum += wt[j - lo];
    }
    if (sum <= 0) {   /* cannot happen for in >= 1; keep the nearest pixel */
      int64_t nn = (int64_t)center;
      lo = nn < in ? nn : in - 1;
      hi = lo + 1;
      wt[0] = 1;
      sum = 1;
    }
    tp->first[i] = lo;
    tp->len[i] = (int)(hi - lo);
    for (int j = 0; j < K; j++) wt[j] = (float)(wt[j] / sum);
  }
  return 0;
}

static void lg_taps_free(lg_taps *tp) { free(tp->first); free(tp->len); free(tp->w); }

lg_tensor *lg_resize_bilinear(const lg_tensor *x, int64_t oh, int64_t ow)
{
  char sb[128];
  if (x->ndim < 2 || x->ndim > 4)
    return lg_error("resize: expected (H,W), (C,H,W) or (N,C,H,W), got shape %s",
                    lg_shape_str(x, sb, sizeof sb));
  int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
  if (oh < 1 || ow < 1)
    return lg_error("resize: output size %lldx%lld must be positive", (long long)oh, (long long)ow);
  if (H < 1 || W < 1)
    return lg_error("resize: cannot resize an empty image of shape %s", lg_shape_str(x, sb, sizeof sb));
  int64_t planes = 1;
  for (int d = 0; d < x->ndim - 2; d++) planes *= x->shape[d];
  int64_t shape[4];
  memcpy(shape, x->shape, sizeof(int64_t) * x->ndim);
  shape[x->ndim - 2] = oh;
  shape[x->ndim - 1] = ow;
  lg_tensor *out = lg_empty_op("resize", x->ndim, shape);
  if (!out) return NULL;
  /* the rows pass keeps H x ow: input rows times output columns, a product
   * no tensor has checked (an expanded input can be tall) */
  int64_t hw;
  if (lg_size_mul(H, ow, &hw)) {
    lg_release(out);
    return lg_error("resize: %s to %lldx%lld needs %lld x %lld intermediate values, more than 2^40",
                    lg_shape_str(x, sb, sizeof sb), (long long)oh, (long long)ow, (long long)H,
                    (long long)ow);
  }
  float *src = malloc(sizeof(float) * lg_nz(planes * H * W));
  float *mid = malloc(sizeof(float) * lg_nz(hw));
  lg_taps tx = {0}, ty = {0};
  if (!src || !mid || lg_taps_make(&tx, W, ow) || lg_taps_make(&ty, H, oh)) {
    free(src); free(mid); lg_taps_free(&tx); lg_taps_free(&ty); lg_release(out);
    return lg_error("resize: out of memory");
  }
  lg_read(x, src);
  float *dst = lg_data(out);
  for (int64_t p = 0; p < planes; p++) {
    const float *s = src + p * H * W;
    for (int64_t i = 0; i < H; i++)          /* rows: W -> ow */
      for (int64_t j = 0; j < ow; j++) {
        const float *w = tx.w + j * tx.K, *r = s + i * W + tx.first[j];
        float acc = 0;
        for (int k = 0; k < tx.len[j]; k++) acc += w[k] * r[k];
        mid[i * ow + j] = acc;
      }
    float *o = dst + p * oh * ow;
    for (int64_t i = 0; i < oh; i++) {       /* columns: H -> oh */
      const float *w = ty.w + i * ty.K;
      for (int64_t j = 0; j < ow; j++) o[i * ow + j] = 0;
      for (int k = 0; k < ty.len[i]; k++) {
        const float *r = mid + (ty.first[i] + k) * ow;
        for (int64_t j = 0; j < ow; j++) o[i * ow + j] += w[k] * r[j];
      }
    }
  }
  free(src); free(mid); lg_taps_free(&tx); lg_taps_free(&ty);
  return out;
}

/* ---- grids ------------------------------------------------------------------------ */
lg_tensor *lg_image_grid(const lg_tensor *x, int nrow, int padding, float lo, float hi,
                         float pad_value)
{
  char sb[128];
  if (x->ndim != 4)
    return lg_error("image_grid: expected images (N,C,H,W), got shape %s", lg_shape_str(x, sb, sizeof sb));
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (N < 1) return lg_error("image_grid: no images (shape %s)", lg_shape_str(x, sb, sizeof sb));
  if (nrow < 1) return lg_error("image_grid: nrow = %d must be at least 1", nrow);
  if (padding < 0) return lg_error("image_grid: padding = %d must be >= 0", padding);
  if (!(hi > lo)) return lg_error("image_grid: value range [%g, %g] is empty", lo, hi);
  int64_t cols = nrow < N ? nrow : N, rows = (N + cols - 1) / cols;
  int64_t GH, GW;   /* rows * (H + padding) + padding, checked: N may be an expanded 2^40 */
  if (lg_size_mul(rows, H + padding, &GH) || lg_size_mul(cols, W + padding, &GW))
    return lg_error("image_grid: a grid of %lld x %lld images of %s with padding %d is too large",
                    (long long)rows, (long long)cols, lg_shape_str(x, sb, sizeof sb), padding);
  GH += padding;
  GW += padding;
  int64_t shape[3] = {C, GH, GW};
  lg_tensor *g = lg_empty_op("image_grid", 3, shape);
  if (!g) return NULL;
  float *src = malloc(sizeof(float) * lg_nz(N * C * H * W));
  if (!src) { lg_release(g); return lg_error("image_grid: out of memory"); }
  lg_read(x, src);
  float *d = lg_data(g), inv = 1.0f / (hi - lo);
  for (int64_t i = 0; i < C * GH * GW; i++) d[i] = pad_value;
  for (int64_t n = 0; n < N; n++) {
    int64_t r = n / cols, c = n % cols;
    int64_t y0 = padding + r * (H + padding), x0 = padding + c * (W + padding);
    for (int64_t k = 0; k < C; k++)
      for (int64_t i = 0; i < H; i++) {
        const float *s = src + ((n * C + k) * H + i) * W;
        float *o = d + (k * GH + y0 + i) * GW + x0;
        for (int64_t j = 0; j < W; j++) {
          float v = (s[j] - lo) * inv;
          o[j] = v > 1 ? 1 : v > 0 ? v : 0;     /* NaN -> 0 */
        }
      }
  }
  free(src);
  return g;
}
