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
 */
#include <string.h>
#include "lg_ops.h"

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
