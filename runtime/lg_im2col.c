/* lg_im2col.c: im2col and its adjoint col2im on raw pointers.
 *
 * im2col unrolls every receptive field of a 2-D convolution into a column,
 * so the convolution becomes one matrix product (lg_conv.c):
 *
 *   x: (C,H,W) -> col: (C*KH*KW, OH*OW),  row (c,kh,kw), column (oh,ow):
 *   col[(c*KH+kh)*KW+kw][oh*OW+ow] = x[c][oh*sh-ph+kh*dh][ow*sw-pw+kw*dw]
 *                                    (0 outside the input: the padding)
 *
 * col2im is the adjoint (transpose) of that linear map: every column entry
 * is added back to the input cell it came from. It is the last step of the
 * conv input gradient and of the transposed convolution.
 *
 * Rows have pitch ldc >= OH*OW so a batch of samples can sit side by side
 * in one wide matrix (sample n in columns [n*OH*OW, (n+1)*OH*OW)).
 * Both kernels are serial: callers thread over (sample, channel) pairs,
 * which touch disjoint parts of col and x, so col2im's scatter never races.
 *
 * Two forms: lg_im2col/lg_col2im walk the geometry directly (any plane size;
 * the reference the fast form is tested against), and the table form
 * (lg_im2col_tab/lg_col2im_tab) used by the conv drivers: the source cell of
 * every (tap, output position) is computed once per op into an index table
 * (the padding points at a zero cell past the plane), so each plane becomes
 * KH*KW branch-free gathers of OH*OW elements. With small maps and strides
 * (a 4x4/stride-2 conv on 14x14 has 7-element rows) the direct form spends
 * its time on loop bounds; the table form runs ~10x faster there.
 */
#include <stdint.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_kernels_conv.h"

/* Output positions o in [0, n_out) whose input position o*s + off falls in
 * [0, n_in): the range [*lo, *hi). */
static void lg_valid_range(int64_t off, int64_t s, int64_t n_in, int64_t n_out, int64_t *lo,
                           int64_t *hi)
{
  int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t b = n_in - off <= 0 ? 0 : (n_in - off + s - 1) / s;
  if (b > n_out) b = n_out;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

/* x: (C,H,W) -> col: (C*KH*KW, OH*OW) with row pitch ldc */
void lg_im2col(const float *x, const lg_conv_geom *g, float *col, int64_t ldc)
{
  const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
  for (int64_t c = 0; c < g->C; c++)
    for (int64_t kh = 0; kh < g->KH; kh++)
      for (int64_t kw = 0; kw < g->KW; kw++) {
        float *dst = col + ((c * g->KH + kh) * g->KW + kw) * ldc;
        int64_t hoff = kh * g->dh - g->ph, woff = kw * g->dw - g->pw;
        int64_t oh0, oh1, ow0, ow1;
        lg_valid_range(hoff, g->sh, H, OH, &oh0, &oh1);
        lg_valid_range(woff, g->sw, W, OW, &ow0, &ow1);
        memset(dst, 0, sizeof(float) * oh0 * OW);
        for (int64_t oh = oh0; oh < oh1; oh++) {
          float *d = dst + oh * OW;
          const float *src = x + (c * H + oh * g->sh + hoff) * W;   /* input row ih */
          for (int64_t ow = 0; ow < ow0; ow++) d[ow] = 0;
          if (g->sw == 1) memcpy(d + ow0, src + ow0 + woff, sizeof(float) * (ow1 - ow0));
          else
            for (int64_t ow = ow0; ow < ow1; ow++) d[ow] = src[ow * g->sw + woff];
          for (int64_t ow = ow1; ow < OW; ow++) d[ow] = 0;
        }
        memset(dst + oh1 * OW, 0, sizeof(float) * (OH - oh1) * OW);
      }
}

/* col: (C*KH*KW, OH*OW) with row pitch ldc -> x: (C,H,W) = sum of contributions */
void lg_col2im(const float *col, const lg_conv_geom *g, int64_t ldc, float *x)
{
  const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
  memset(x, 0, sizeof(float) * g->C * H * W);
  for (int64_t c = 0; c < g->C; c++)
    for (int64_t kh = 0; kh < g->KH; kh++)
      for (int64_t kw = 0; kw < g->KW; kw++) {
        const float *srcrow = col + ((c * g->KH + kh) * g->KW + kw) * ldc;
        int64_t hoff = kh * g->dh - g->ph, woff = kw * g->dw - g->pw;
        int64_t oh0, oh1, ow0, ow1;
        lg_valid_range(hoff, g->sh, H, OH, &oh0, &oh1);
        lg_valid_range(woff, g->sw, W, OW, &ow0, &ow1);
        for (int64_t oh = oh0; oh < oh1; oh++) {
          const float *s = srcrow + oh * OW;
          float *d = x + (c * H + oh * g->sh + hoff) * W;            /* input row ih */
          if (g->sw == 1)
            for (int64_t ow = ow0; ow < ow1; ow++) d[ow + woff] += s[ow];
          else
            for (int64_t ow = ow0; ow < ow1; ow++) d[ow * g->sw + woff] += s[ow];
        }
      }
}

/* ---- the table form ---------------------------------------------------------- */
int64_t lg_im2col_table_size(const lg_conv_geom *g)
{
  int64_t HW = g->H * g->W;
  if (HW + 1 > LG_IM2COL_MAX_PLANE || HW + 1 > INT32_MAX) return 0;
  return g->KH * g->KW * g->OH * g->OW;
}

/* idx: (KH*KW, OH*OW): the offset of each tap's source cell in a (H,W)
 * plane, or H*W (a zero cell appended to the plane) for the padding. */
void lg_im2col_table(const lg_conv_geom *g, int32_t *idx)
{
  const int64_t P = g->OH * g->OW, HW = g->H * g->W;
  for (int64_t kh = 0; kh < g->KH; kh++)
    for (int64_t kw = 0; kw < g->KW; kw++) {
      int32_t *t = idx + (kh * g->KW + kw) * P;
      for (int64_t oh = 0; oh < g->OH; oh++) {
        int64_t ih = oh * g->sh - g->ph + kh * g->dh;
        for (int64_t ow = 0; ow < g->OW; ow++) {
          int64_t iw = ow * g->sw - g->pw + kw * g->dw;
          int out = ih < 0 || ih >= g->H || iw < 0 || iw >= g->W;
          t[oh * g->OW + ow] = (int32_t)(out ? HW : ih * g->W + iw);
        }
      }
    }
}

/* x: (C,H,W) -> col: (C*KH*KW, OH*OW) with row pitch ldc; idx from
 * lg_im2col_table (whose size was nonzero) */
void lg_im2col_tab(const float *x, const lg_conv_geom *g, const int32_t *idx, float *col,
                   int64_t ldc)
{
  const int64_t P = g->OH * g->OW, HW = g->H * g->W, T = g->KH * g->KW;
  float xz[LG_IM2COL_MAX_PLANE];   /* the plane and its zero cell */
  for (int64_t c = 0; c < g->C; c++) {
    memcpy(xz, x + c * HW, sizeof(float) * HW);
    xz[HW] = 0;
    for (int64_t t = 0; t < T; t++) {
      float *restrict d = col + (c * T + t) * ldc;
      const int32_t *restrict ix = idx + t * P;
      for (int64_t p = 0; p < P; p++) d[p] = xz[ix[p]];
    }
  }
}

/* The gather form of col2im: for every plane cell, the offsets (t*ldc + p)
 * of the column entries that came from it, in tap order, cells one after
 * another: cell i owns off[start[i] .. start[i+1]). Summing per cell needs
 * no scatter, so the adds form no read-modify-write chain through memory
 * (and padding entries are simply absent). 0 when it does not fit int32. */
int64_t lg_col2im_table_size(const lg_conv_geom *g, int64_t ldc)
{
  int64_t HW = g->H * g->W, T = g->KH * g->KW;
  if (!lg_im2col_table_size(g) || T * ldc > INT32_MAX) return 0;
  return HW + 1 + T * g->OH * g->OW;
}

void lg_col2im_table(const lg_conv_geom *g, int64_t ldc, int32_t *tab)
{
  const int64_t HW = g->H * g->W, P = g->OH * g->OW, T = g->KH * g->KW;
  int32_t *start = tab, *off = tab + HW + 1;
  /* the im2col table (tap, position) -> cell, built into off[] first as
   * scratch would overlap; count per cell instead, then place */
  memset(start, 0, sizeof(int32_t) * (HW + 1));
  for (int64_t kh = 0; kh < g->KH; kh++)
    for (int64_t kw = 0; kw < g->KW; kw++)
      for (int64_t oh = 0; oh < g->OH; oh++) {
        int64_t ih = oh * g->sh - g->ph + kh * g->dh;
        if (ih < 0 || ih >= g->H) continue;
        for (int64_t ow = 0; ow < g->OW; ow++) {
          int64_t iw = ow * g->sw - g->pw + kw * g->dw;
          if (iw >= 0 && iw < g->W) start[ih * g->W + iw + 1]++;
        }
      }
  for (int64_t i = 0; i < HW; i++) start[i + 1] += start[i];
  /* fill in tap order; start[i] runs ahead and is restored below */
  for (int64_t kh = 0; kh < g->KH; kh++)
    for (int64_t kw = 0; kw < g->KW; kw++)
      for (int64_t oh = 0; oh < g->OH; oh++) {
        int64_t ih = oh * g->sh - g->ph + kh * g->dh;
        if (ih < 0 || ih >= g->H) continue;
        for (int64_t ow = 0; ow < g->OW; ow++) {
          int64_t iw = ow * g->sw - g->pw + kw * g->dw;
          if (iw < 0 || iw >= g->W) continue;
          off[start[ih * g->W + iw]++] = (int32_t)((kh * g->KW + kw) * ldc + oh * g->OW + ow);
        }
      }
  for (int64_t i = HW; i > 0; i--) start[i] = start[i - 1];
  start[0] = 0;
  (void)P; (void)T;
}

/* col: (C*KH*KW, OH*OW) with row pitch ldc -> x: (C,H,W) = sum of
 * contributions; tab from lg_col2im_table(g, ldc) */
void lg_col2im_tab(const float *col, const lg_conv_geom *g, const int32_t *tab, int64_t ldc,
                   float *x)
{
  const int64_t HW = g->H * g->W, T = g->KH * g->KW;
  const int32_t *restrict start = tab, *restrict off = tab + HW + 1;
  for (int64_t c = 0; c < g->C; c++) {
    const float *restrict base = col + c * T * ldc;
    float *restrict xp = x + c * HW;
    for (int64_t i = 0; i < HW; i++) {
      float acc = 0;
      for (int32_t k = start[i]; k < start[i + 1]; k++) acc += base[off[k]];
      xp[i] = acc;
    }
  }
}
