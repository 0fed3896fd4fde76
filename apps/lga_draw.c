/* lga_draw.c: drawing into images for plots (scatter plots of 2D samples,
 * loss curves), so that no plotting library is needed; see lga_draw.h.
 * Application code on top of the runtime: it uses only the runtime's public
 * tensor API. stb_easy_font is all static functions and is compiled into
 * this file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-braces"   /* in the stb header */
#include "stb_easy_font.h"
#pragma GCC diagnostic pop
#include "lga_draw.h"

/* malloc size for n items, never 0 (malloc(0) may return NULL) */
static size_t lga_nz(int64_t n) { return n > 0 ? (size_t)n : 1; }

static int lga_canvas(const char *op, lg_tensor *img)
{
  char sb[128];
  if (img->ndim != 3) {
    lg_error("%s: expected an image (C,H,W), got shape %s", op, lg_shape_str(img, sb, sizeof sb));
    return -1;
  }
  if (img->requires_grad && lg_grad_enabled()) {
    lg_error("%s: cannot draw into a tensor that requires grad", op);
    return -1;
  }
  return 0;
}

/* Blend color into pixel (y,x), which the caller has clipped. */
static inline void lga_plot(lg_tensor *img, int64_t y, int64_t x, const float *color, float alpha)
{
  float *p = lg_data(img) + y * img->stride[1] + x * img->stride[2];
  for (int64_t c = 0; c < img->shape[0]; c++) {
    float *q = p + c * img->stride[0];
    *q = alpha >= 1 ? color[c] : *q + alpha * (color[c] - *q);
  }
}

/* A pixel bound: v clamped to [0, n] in double, then converted. Converting a
 * float outside the range of int64_t (1e30) is undefined behaviour, and a
 * wrapped bound would skip the clipping: clamp first, convert after. */
static int64_t lga_pix(double v, int64_t n)
{
  if (!(v > 0)) return 0;           /* also NaN */
  if (v >= (double)n) return n;
  return (int64_t)v;
}

/* Non-finite coordinates are a caller's bug (a diverged value drawn as is):
 * an error naming op and the values, rather than a silently empty plot. */
static int lga_finite4(const char *op, float a, float b, float c, float d)
{
  if (isfinite(a) && isfinite(b) && isfinite(c) && isfinite(d)) return 0;
  lg_error("%s: coordinates (%g, %g, %g, %g) must be finite", op, a, b, c, d);
  return -1;
}

static void lga_fill_disc(lg_tensor *img, float cx, float cy, float r, const float *color, float alpha)
{
  int64_t H = img->shape[1], W = img->shape[2];
  if (r < 0.5f) r = 0.5f;   /* at least the pixel under the centre */
  int64_t y0 = lga_pix(floor((double)cy - r), H), y1 = lga_pix(ceil((double)cy + r), H);
  int64_t x0 = lga_pix(floor((double)cx - r), W), x1 = lga_pix(ceil((double)cx + r), W);
  for (int64_t y = y0; y < y1; y++)
    for (int64_t x = x0; x < x1; x++) {
      double dy = y + 0.5 - cy, dx = x + 0.5 - cx;
      if (dx * dx + dy * dy <= (double)r * r) lga_plot(img, y, x, color, alpha);
    }
}

int lga_draw_points(lg_tensor *img, const lg_tensor *pts, float r, const float *color, float alpha)
{
  char sb[128];
  if (lga_canvas("draw_points", img)) return -1;
  if (pts->ndim != 2 || pts->shape[1] != 2) {
    lg_error("draw_points: expected points (N,2), got shape %s", lg_shape_str(pts, sb, sizeof sb));
    return -1;
  }
  if (!isfinite(r) || !isfinite(alpha)) {
    lg_error("draw_points: radius %g and alpha %g must be finite", r, alpha);
    return -1;
  }
  /* a disc wider than the canvas paints no more than one as wide as its
   * diagonal: keeps the work per point bounded by the canvas */
  double diag = hypot((double)img->shape[1], (double)img->shape[2]) + 1;
  if (r > diag) r = (float)diag;
  int64_t n = pts->shape[0];
  float *xy = malloc(sizeof(float) * lga_nz(2 * n));
  if (!xy) { lg_error("draw_points: out of memory"); return -1; }
  lg_read(pts, xy);
  for (int64_t i = 0; i < n; i++)
    if (isfinite(xy[2 * i]) && isfinite(xy[2 * i + 1]))
      lga_fill_disc(img, xy[2 * i], xy[2 * i + 1], r, color, alpha);
  free(xy);
  lg_bump_version(img);
  return 0;
}

/* Which sides of the box [lo, hi] point p lies beyond: bit 2a for below
 * lo[a], bit 2a+1 for above hi[a] (a = 0 for x, 1 for y). */
static int lga_outcode(const double p[2], const double lo[2], const double hi[2])
{
  return (p[0] < lo[0]) | (p[0] > hi[0]) << 1 | (p[1] < lo[1]) << 2 | (p[1] > hi[1]) << 3;
}

/* Cohen-Sutherland: clip the segment pq to the box [lo, hi]. 0 with the ends
 * moved onto the box, or -1 when none of it is inside. An end is moved by
 * setting its coordinate on the crossed edge exactly and interpolating the
 * other one: a horizontal line from x = -1e30 to 1e30 stays exactly at its y
 * (interpolating both through a parameter t would lose the box in the
 * rounding of t). */
static int lga_clip_segment(double p[2], double q[2], const double lo[2], const double hi[2])
{
  for (int pass = 0; pass < 8; pass++) {   /* each pass puts one end on one edge */
    int cp = lga_outcode(p, lo, hi), cq = lga_outcode(q, lo, hi);
    if (!(cp | cq)) return 0;
    if (cp & cq) return -1;                /* both beyond the same edge */
    double *e = cp ? p : q, *o = cp ? q : p;
    int c = cp ? cp : cq, a = (c & 3) ? 0 : 1;
    double b = (c & (1 << 2 * a)) ? lo[a] : hi[a];
    double t = (b - e[a]) / (o[a] - e[a]);   /* o is not beyond this edge: no 0/0 */
    e[1 - a] += t * (o[1 - a] - e[1 - a]);
    e[a] = b;
  }
  return lga_outcode(p, lo, hi) | lga_outcode(q, lo, hi) ? -1 : 0;
}

int lga_draw_line(lg_tensor *img, float x0, float y0, float x1, float y1, float width,
                 const float *color)
{
  if (lga_canvas("draw_line", img) || lga_finite4("draw_line", x0, y0, x1, y1)) return -1;
  if (!isfinite(width)) {
    lg_error("draw_line: width %g must be finite", width);
    return -1;
  }
  int64_t H = img->shape[1], W = img->shape[2];
  /* Every pixel whose centre lies within r of the segment: the work is bounded
   * by the canvas whatever the coordinates and the width. A wider line than
   * the canvas's diagonal paints as much as that one does. */
  double diag = hypot((double)H, (double)W) + 1, r = width > 1 ? width / 2.0 : 0.5;
  if (r > diag) r = diag;
  /* clip to the canvas grown by r, so no end point is huge (precision) */
  double p[2] = {x0, y0}, q[2] = {x1, y1};
  double lo[2] = {-r - 1, -r - 1}, hi[2] = {W + r + 1, H + r + 1};
  if (lga_clip_segment(p, q, lo, hi) == 0) {
    int64_t ya = lga_pix(floor(fmin(p[1], q[1]) - r), H), yb = lga_pix(ceil(fmax(p[1], q[1]) + r), H);
    int64_t xa = lga_pix(floor(fmin(p[0], q[0]) - r), W), xb = lga_pix(ceil(fmax(p[0], q[0]) + r), W);
    double dx = q[0] - p[0], dy = q[1] - p[1], len2 = dx * dx + dy * dy;
    for (int64_t y = ya; y < yb; y++)
      for (int64_t x = xa; x < xb; x++) {
        double ux = x + 0.5 - p[0], uy = y + 0.5 - p[1];
        double t = len2 > 0 ? (ux * dx + uy * dy) / len2 : 0;   /* nearest point's parameter */
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        double ex = ux - t * dx, ey = uy - t * dy;
        if (ex * ex + ey * ey <= r * r) lga_plot(img, y, x, color, 1);
      }
  }
  lg_bump_version(img);
  return 0;
}

int lga_draw_rect(lg_tensor *img, float x0, float y0, float x1, float y1, const float *color)
{
  if (lga_canvas("draw_rect", img) || lga_finite4("draw_rect", x0, y0, x1, y1)) return -1;
  int64_t H = img->shape[1], W = img->shape[2];
  int64_t xa = lga_pix(round(x0), W), xb = lga_pix(round(x1), W);
  int64_t ya = lga_pix(round(y0), H), yb = lga_pix(round(y1), H);
  for (int64_t y = ya; y < yb; y++)
    for (int64_t x = xa; x < xb; x++) lga_plot(img, y, x, color, 1);
  lg_bump_version(img);
  return 0;
}

/* stb_easy_font indexes a table by (char - 32): keep to printable ASCII. */
static char *lga_ascii(const char *text)
{
  size_t n = strlen(text);
  char *s = malloc(n + 1);
  if (!s) return NULL;
  for (size_t i = 0; i <= n; i++) {
    unsigned char c = (unsigned char)text[i];
    s[i] = (c == 0 || c == '\n' || (c >= 32 && c < 127)) ? (char)c : '?';
  }
  return s;
}

/* Text longer than LGA_TEXT_MAX_LEN is refused: stb_easy_font counts widths
 * and buffer sizes in int, and a label that long is a bug anyway. */
static int lga_text_check(const char *op, const char *text)
{
  size_t n = strlen(text);
  if (n <= LGA_TEXT_MAX_LEN) return 0;
  lg_error("%s: text of %zu bytes is longer than the %d supported", op, n, LGA_TEXT_MAX_LEN);
  return -1;
}

int lga_text_width(const char *text)
{
  if (lga_text_check("text_width", text)) return -1;
  char *s = lga_ascii(text);
  if (!s) { lg_error("text_width: out of memory"); return -1; }
  int w = stb_easy_font_width(s);
  free(s);
  return w;
}

int lga_draw_text(lg_tensor *img, float x, float y, const char *text, int scale,
                 const float *color, int *w)
{
  if (lga_canvas("draw_text", img) || lga_finite4("draw_text", x, y, x, y) ||
      lga_text_check("draw_text", text))
    return -1;
  if (scale < 1 || scale > LGA_TEXT_MAX_SCALE) {
    lg_error("draw_text: scale %d must be in 1..%d", scale, LGA_TEXT_MAX_SCALE);
    return -1;
  }
  char *s = lga_ascii(text);
  size_t cap = 300 * (strlen(text) + 1);   /* ~270 bytes of quads per character; < 2^25 */
  float *vb = malloc(cap);
  if (!s || !vb) { free(s); free(vb); lg_error("draw_text: out of memory"); return -1; }
  int nq = stb_easy_font_print(0, 0, s, NULL, vb, (int)cap);
  /* quad corners lie within ~2^29 of (x, y), so x + scale * ax stays finite
   * for any finite x; lga_draw_rect clamps what falls off the canvas */
  for (int q = 0; q < nq; q++) {
    const float *v = vb + q * 16;   /* 4 vertices of (x, y, z, rgba) = 4 floats each */
    float ax = v[0], ay = v[1], bx = v[8], by = v[9];   /* opposite corners */
    lga_draw_rect(img, x + scale * fminf(ax, bx), y + scale * fminf(ay, by),
                 x + scale * fmaxf(ax, bx), y + scale * fmaxf(ay, by), color);
  }
  if (w) *w = scale * stb_easy_font_width(s);   /* < 2^16 * 8 * 2^10: fits int */
  free(s);
  free(vb);
  (void)stb_easy_font_height;
  (void)stb_easy_font_spacing;
  return 0;
}
