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
 * its time on loop bounds, which the table form does not have (BENCHMARKS.md,
 * "What was changed", Convolutions, has the figure).
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

/* The gather form of col2im: each plane cell sums the column entries that
 * came from it, so there is no scatter and no read-modify-write chain
 * through memory. tab[0] = R, the most entries any cell has; then R rows of
 * H*W offsets: row r holds, for every cell, the offset (t*ldc + p) of its
 * r-th entry in tap order, or -1 when it has fewer. Summing row by row over
 * all cells is a long branch-free loop; absent entries read offset 0 and are
 * then dropped by a select, so an inf or NaN there never leaks in. */

/* Entries a cell can have along one dim: the most kernel taps k < KS with
 * (i + pad - k*d) a multiple of s giving an output o < O, over cells i < n. */
static int64_t lg_taps_max(int64_t n, int64_t KS, int64_t s, int64_t pad, int64_t d, int64_t O)
{
  int64_t best = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t r = 0;
    for (int64_t k = 0; k < KS; k++) {
      int64_t q = i + pad - k * d;
      if (q >= 0 && q % s == 0 && q / s < O) r++;
    }
    if (r > best) best = r;
  }
  return best;
}

static int64_t lg_col2im_rows(const lg_conv_geom *g)
{
  return lg_taps_max(g->H, g->KH, g->sh, g->ph, g->dh, g->OH) *
         lg_taps_max(g->W, g->KW, g->sw, g->pw, g->dw, g->OW);
}

int64_t lg_col2im_table_size(const lg_conv_geom *g, int64_t ldc)
{
  int64_t T = g->KH * g->KW;
  if (!lg_im2col_table_size(g) || T * ldc > INT32_MAX) return 0;
  return 1 + lg_col2im_rows(g) * g->H * g->W;
}

void lg_col2im_table(const lg_conv_geom *g, int64_t ldc, int32_t *tab)
{
  const int64_t HW = g->H * g->W, R = lg_col2im_rows(g);
  int32_t *off = tab + 1;
  tab[0] = (int32_t)R;
  for (int64_t ih = 0; ih < g->H; ih++)
    for (int64_t iw = 0; iw < g->W; iw++) {
      int64_t i = ih * g->W + iw, r = 0;
      for (int64_t kh = 0; kh < g->KH; kh++) {
        int64_t qh = ih + g->ph - kh * g->dh;
        if (qh < 0 || qh % g->sh || qh / g->sh >= g->OH) continue;
        for (int64_t kw = 0; kw < g->KW; kw++) {
          int64_t qw = iw + g->pw - kw * g->dw;
          if (qw < 0 || qw % g->sw || qw / g->sw >= g->OW) continue;
          off[r++ * HW + i] =
            (int32_t)((kh * g->KW + kw) * ldc + (qh / g->sh) * g->OW + qw / g->sw);
        }
      }
      for (; r < R; r++) off[r * HW + i] = -1;
    }
}

/* col: (C*KH*KW, OH*OW) with row pitch ldc -> x: (C,H,W) = sum of
 * contributions; tab from lg_col2im_table(g, ldc). The portable loop, and
 * the reference of the AVX-512 one below. */
void lg_col2im_tab_scalar(const float *col, const lg_conv_geom *g, const int32_t *tab,
                          int64_t ldc, float *x)
{
  const int64_t HW = g->H * g->W, T = g->KH * g->KW, R = tab[0];
  const int32_t *off = tab + 1;
  for (int64_t c = 0; c < g->C; c++) {
    const float *restrict base = col + c * T * ldc;
    float *restrict xp = x + c * HW;
    if (R == 0) { memset(xp, 0, sizeof(float) * HW); continue; }
    for (int64_t i = 0; i < HW; i++) {
      int32_t k = off[i];
      float v = base[k < 0 ? 0 : k];
      xp[i] = k < 0 ? 0.0f : v;
    }
    for (int64_t r = 1; r < R; r++) {
      const int32_t *restrict o = off + r * HW;
      for (int64_t i = 0; i < HW; i++) {
        int32_t k = o[i];
        float v = base[k < 0 ? 0 : k];
        xp[i] += k < 0 ? 0.0f : v;
      }
    }
  }
}

/* ---- AVX-512 col2im ----------------------------------------------------------------
 * The col2im loop 16 cells at a time with hardware gathers: faster than the
 * scalar loop on AVX-512 (BENCHMARKS.md, "What was changed", Convolutions;
 * for im2col, where each lane is a plain copy, gathers were slower than
 * scalar loads, so it has no such form). Built with
 * a target attribute and chosen at run time, so the library still runs on
 * any x86-64; masks take the row tail and the absent entries (a masked-off
 * lane loads nothing). The summation order per cell is the scalar one, so
 * both give identical results. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LG_HAVE_AVX512_FORMS 1

__attribute__((target("avx512f")))
static void lg_col2im_tab_avx512(const float *col, const lg_conv_geom *g, const int32_t *tab,
                                 int64_t ldc, float *x)
{
  const int64_t HW = g->H * g->W, T = g->KH * g->KW, R = tab[0];
  const int32_t *off = tab + 1;
  const __mmask16 tail = (__mmask16)((1u << (HW % 16)) - 1);
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t c = 0; c < g->C; c++) {
    const float *base = col + c * T * ldc;
    float *xp = x + c * HW;
    if (R == 0) { memset(xp, 0, sizeof(float) * HW); continue; }
    int64_t i = 0;
    /* entry r of 16 cells: a masked gather, absent lanes 0 (as the scalar loop) */
#define LG_ENTRY(r, k) _mm512_mask_i32gather_ps(_mm512_setzero_ps(), \
                         _mm512_cmpge_epi32_mask((k), zero), (k), base, 4)
    for (; i + 16 <= HW; i += 16) {
      __m512 acc = LG_ENTRY(0, _mm512_loadu_si512((const void *)(off + i)));
      for (int64_t r = 1; r < R; r++)
        acc = _mm512_add_ps(acc, LG_ENTRY(r, _mm512_loadu_si512((const void *)(off + r * HW + i))));
      _mm512_storeu_ps(xp + i, acc);
    }
    if (tail) {
      const __m512i none = _mm512_set1_epi32(-1);
      __m512 acc = LG_ENTRY(0, _mm512_mask_loadu_epi32(none, tail, off + i));
      for (int64_t r = 1; r < R; r++)
        acc = _mm512_add_ps(acc, LG_ENTRY(r, _mm512_mask_loadu_epi32(none, tail, off + r * HW + i)));
      _mm512_mask_storeu_ps(xp + i, tail, acc);
    }
#undef LG_ENTRY
  }
}

static int lg_use_avx512(void)
{
  static int v = -1;   /* racy but idempotent: every thread computes the same answer */
  if (v < 0) { __builtin_cpu_init(); v = __builtin_cpu_supports("avx512f") ? 1 : 0; }
  return v;
}

/* ---- AVX-512 permute forms ----------------------------------------------------------------
 * With small maps a row of the column matrix, (tap (kh,kw), output row oh),
 * is OW <= 16 elements picked from one input row of W <= 32: one in-register
 * permute (two loads, a vpermt2ps, a masked store) instead of OW gathers
 * through the table, and each input row loaded once serves its KW taps.
 * col2im the other way round: an input row ih sums, for each tap (kh,kw)
 * that reaches it, the output row oh it feeds, permuted onto the input
 * columns (absent lanes zeroed), taps in (kh,kw) order: the order of the
 * table form, so both give identical sums. The table loops were a sizeable
 * part of a 28x28 DCGAN's step (docs/perf_notes.md, baseline profile). */
#define LG_ROWS_KW 16   /* most kernel columns the lane tables hold */
#define LG_PERM_H 64    /* col2im: most input rows, */
#define LG_PERM_KH 16   /* and kernel rows, of its row tables */

int lg_im2col_perm_ok(const lg_conv_geom *g)
{
  return lg_use_avx512() && g->OW <= 16 && g->W <= 32 && g->KW <= LG_ROWS_KW;
}

int lg_col2im_perm_ok(const lg_conv_geom *g)
{
  return lg_use_avx512() && g->OW <= 16 && g->W <= 32 && g->KW <= LG_ROWS_KW &&
         g->H <= LG_PERM_H && g->KH <= LG_PERM_KH;
}

/* The address of the plane two samples after sample n (of m, planes xs
 * floats apart from x; xp = sample n's), or past the last sample the next
 * channel's (HW floats on), for a prefetch. As an integer: near the end of
 * the tensor it may point past it, which a prefetch tolerates (it never
 * faults) but C pointer arithmetic does not. */
static inline uintptr_t lg_plane_ahead(const float *x, const float *xp, int64_t n, int64_t m,
                                       int64_t xs, int64_t HW)
{
  return n + 2 < m ? (uintptr_t)xp + (uintptr_t)(8 * xs)
                   : (uintptr_t)x + (uintptr_t)(4 * (HW + (n + 2 - m) * xs));
}

/* One sample of lg_im2col_perm. Output rows go R at a time (R = 2 when two
 * input rows fit one register each and two output rows one register: a
 * 14x14 map to 7x7), each permute picking from two sources: two input
 * rows, or the two halves of one row (R = 1). A padding row is a zero
 * source. Inlined with KW = 4 as a constant, so the tap loop unrolls. */
static inline __attribute__((always_inline, target("avx512f")))
void lg_im2col_perm_one(const float *xp, const lg_conv_geom *g, int64_t KW, int64_t R,
                        const __m512i *idx, const __mmask16 *ok, __mmask16 mrow, __mmask16 mall,
                        __mmask16 mlast, float *col, int64_t ldc)
{
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t kh = 0; kh < g->KH; kh++)
    for (int64_t oh = 0; oh < g->OH; oh += R) {
      float *d = col + kh * KW * ldc + oh * g->OW;
      int64_t ih = oh * g->sh - g->ph + kh * g->dh, ih1 = ih + g->sh;
      int in0 = ih >= 0 && ih < g->H;
      __m512 s0, s1;
      if (R == 2) {
        s0 = in0 ? _mm512_maskz_loadu_ps(mrow, xp + ih * g->W) : zero;
        s1 = oh + 1 < g->OH && ih1 >= 0 && ih1 < g->H ? _mm512_maskz_loadu_ps(mrow, xp + ih1 * g->W)
                                                         : zero;
      } else {
        s0 = in0 ? _mm512_maskz_loadu_ps(mrow, xp + ih * g->W) : zero;
        s1 = in0 && g->W > 16 ? _mm512_maskz_loadu_ps((__mmask16)((1u << (g->W - 16)) - 1),
                                                      xp + ih * g->W + 16)
                              : zero;
      }
      __mmask16 mo = oh + R <= g->OH ? mall : mlast;
      for (int64_t kw = 0; kw < KW; kw++)
        _mm512_mask_storeu_ps(d + kw * ldc, mo, _mm512_maskz_permutex2var_ps(ok[kw], s0, idx[kw], s1));
    }
}

/* m samples of one channel: x: plane of sample 0, planes xs floats apart ->
 * col: the KH*KW rows of the channel, sample n in columns [n*P, (n+1)*P) */
__attribute__((target("avx512f")))
void lg_im2col_perm(const float *x, int64_t xs, int64_t m, const lg_conv_geom *g, float *col,
                    int64_t ldc)
{
  const int64_t P = g->OH * g->OW, KW = g->KW, OW = g->OW;
  const int64_t R = g->W <= 16 && 2 * OW <= 16 ? 2 : 1;
  const __mmask16 mrow = (__mmask16)((1u << (g->W < 16 ? g->W : 16)) - 1);
  const __mmask16 mall = (__mmask16)((1u << (R * OW)) - 1), mlast = (__mmask16)((1u << OW) - 1);
  __m512i idx[LG_ROWS_KW];
  __mmask16 ok[LG_ROWS_KW];   /* lanes (row r < R, ow < OW) whose input column is in the row */
  for (int64_t kw = 0; kw < KW; kw++) {
    int32_t lane[16];
    unsigned bits = 0;
    for (int64_t l = 0; l < 16; l++) {
      int64_t r = l / OW, ow = l % OW, iw = ow * g->sw - g->pw + kw * g->dw;
      int in = r < R && iw >= 0 && iw < g->W;
      lane[l] = in ? (int32_t)(16 * r + iw) : 0;   /* R = 1: iw < 32 spans both sources */
      bits |= (unsigned)in << l;
    }
    idx[kw] = _mm512_loadu_si512((const void *)lane);
    ok[kw] = (__mmask16)bits;
  }
  const int64_t HW = g->H * g->W;
  for (int64_t n = 0; n < m; n++) {
    const float *xp = x + n * xs;
    /* the planes are xs apart (a sample's other channels lie between), a
     * stride the hardware prefetcher does not follow: ask for the plane
     * two samples on, else every row load waits for memory; past the last
     * sample the next channel's first planes (callers go channel by
     * channel) */
    uintptr_t pf = lg_plane_ahead(x, xp, n, m, xs, HW);
    for (int64_t i = 0; i < HW; i += 16) _mm_prefetch((const char *)(pf + 4 * i), _MM_HINT_T0);
    if (KW == 4 && R == 2)
      lg_im2col_perm_one(xp, g, 4, 2, idx, ok, mrow, mall, mlast, col + n * P, ldc);
    else if (KW == 4)
      lg_im2col_perm_one(xp, g, 4, 1, idx, ok, mrow, mall, mlast, col + n * P, ldc);
    else
      lg_im2col_perm_one(xp, g, KW, R, idx, ok, mrow, mall, mlast, col + n * P, ldc);
  }
}

/* One sample of lg_col2im_perm: NG tap groups, TWO: rows wider than 16.
 * Inlined with NG = 2, TWO = 0 as constants for the 4x4/stride-2 case, so
 * the group loop unrolls and its tables stay in registers. */
static inline __attribute__((always_inline, target("avx512f")))
void lg_col2im_perm_one(const float *cn, float *xp, const lg_conv_geom *g, int64_t NG, int TWO,
                        const int64_t *nsrc, int64_t (*src_off)[LG_PERM_KH], const int64_t *oa,
                        const int64_t *ob, __m512i (*idx)[2], __mmask16 (*ok)[2],
                        __mmask16 msrc, __mmask16 st0, __mmask16 st1)
{
  const int64_t W = g->W;
  for (int64_t ih = 0; ih < g->H; ih++) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t r = 0; r < nsrc[ih]; r++) {
      const float *src = cn + src_off[ih][r];
      for (int64_t q = 0; q < NG; q++) {
        __m512 s0 = _mm512_maskz_loadu_ps(msrc, src + oa[q]);
        __m512 s1 = _mm512_maskz_loadu_ps(msrc, src + ob[q]);
        a0 = _mm512_add_ps(a0, _mm512_maskz_permutex2var_ps(ok[q][0], s0, idx[q][0], s1));
        if (TWO)
          a1 = _mm512_add_ps(a1, _mm512_maskz_permutex2var_ps(ok[q][1], s0, idx[q][1], s1));
      }
    }
    _mm512_mask_storeu_ps(xp + ih * W, st0, a0);
    if (TWO && st1) _mm512_mask_storeu_ps(xp + ih * W + 16, st1, a1);
  }
}

/* The adjoint: col as lg_im2col_perm writes it -> x: m planes, xs floats
 * apart. With a stride two neighbouring taps kw, kw+1 feed disjoint
 * columns of a row (a 4x4/stride-2 kernel: odd and even ones), so one
 * two-source permute serves both; a column still receives its taps in kw
 * order. The sums stay in registers (two blocks of 16 columns). */
__attribute__((target("avx512f,prfchw")))
void lg_col2im_perm(const float *col, int64_t m, const lg_conv_geom *g, int64_t ldc, float *x,
                    int64_t xs)
{
  const int64_t P = g->OH * g->OW, KW = g->KW, W = g->W;
  const __mmask16 msrc = (__mmask16)((1u << g->OW) - 1);
  const __mmask16 st0 = (__mmask16)((1u << (W < 16 ? W : 16)) - 1);
  const __mmask16 st1 = (__mmask16)(W > 16 ? (1u << (W - 16)) - 1 : 0);
  int32_t lane[LG_ROWS_KW][32];   /* source column of each row column, per tap, or -1 */
  for (int64_t kw = 0; kw < KW; kw++)
    for (int64_t iw = 0; iw < 32; iw++) {
      int64_t qw = iw + g->pw - kw * g->dw;
      int in = iw < W && qw >= 0 && qw % g->sw == 0 && qw / g->sw < g->OW;
      lane[kw][iw] = in ? (int32_t)(qw / g->sw) : -1;
    }
  /* permute groups: tap ka alone, or ka and kb = ka + 1 (lanes of kb index
   * the second source, +16) when their columns are disjoint */
  int64_t ka[LG_ROWS_KW], kb[LG_ROWS_KW], ng = 0;
  __m512i idx[LG_ROWS_KW][2];
  __mmask16 ok[LG_ROWS_KW][2];
  for (int64_t kw = 0; kw < KW; ng++) {
    int pair = kw + 1 < KW;
    for (int64_t iw = 0; pair && iw < 32; iw++)
      pair = lane[kw][iw] < 0 || lane[kw + 1][iw] < 0;
    ka[ng] = kw;
    kb[ng] = pair ? kw + 1 : kw;
    for (int j = 0; j < 2; j++) {
      int32_t v[16];
      unsigned bits = 0;
      for (int l = 0; l < 16; l++) {
        int32_t a = lane[kw][16 * j + l], b = pair ? lane[kw + 1][16 * j + l] : -1;
        v[l] = a >= 0 ? a : b >= 0 ? b + 16 : 0;
        bits |= (unsigned)(a >= 0 || b >= 0) << l;
      }
      idx[ng][j] = _mm512_loadu_si512((const void *)v);
      ok[ng][j] = (__mmask16)bits;
    }
    kw += pair ? 2 : 1;
  }
  /* the (kh, oh) rows that feed each row ih, in kh order, as offsets in
   * col (divisions here, not in the loop) */
  int64_t nsrc[LG_PERM_H], src_off[LG_PERM_H][LG_PERM_KH];
  for (int64_t ih = 0; ih < g->H; ih++) {
    nsrc[ih] = 0;
    for (int64_t kh = 0; kh < g->KH; kh++) {
      int64_t qh = ih + g->ph - kh * g->dh;
      if (qh < 0 || qh % g->sh || qh / g->sh >= g->OH) continue;
      src_off[ih][nsrc[ih]++] = kh * KW * ldc + qh / g->sh * g->OW;
    }
  }
  int64_t oa[LG_ROWS_KW], ob[LG_ROWS_KW];   /* the groups' source rows, as offsets */
  for (int64_t q = 0; q < ng; q++) { oa[q] = ka[q] * ldc; ob[q] = kb[q] * ldc; }
  const int64_t HW = g->H * W;
  for (int64_t n = 0; n < m; n++) {
    const float *cn = col + n * P;
    float *xp = x + n * xs;
    /* the output planes are xs apart, as lg_im2col_perm's inputs: fetch
     * the plane two samples on for writing (or the next channel's, as there) */
    uintptr_t pf = lg_plane_ahead(x, xp, n, m, xs, HW);
    for (int64_t i = 0; i < HW; i += 16) __builtin_prefetch((const void *)(pf + 4 * i), 1);
    if (ng == 2 && !st1)   /* a 4x4/stride-2 kernel onto rows of <= 16 */
      lg_col2im_perm_one(cn, xp, g, 2, 0, nsrc, src_off, oa, ob, idx, ok, msrc, st0, st1);
    else
      lg_col2im_perm_one(cn, xp, g, ng, 1, nsrc, src_off, oa, ob, idx, ok, msrc, st0, st1);
  }
}
#else
int lg_im2col_perm_ok(const lg_conv_geom *g) { (void)g; return 0; }
int lg_col2im_perm_ok(const lg_conv_geom *g) { (void)g; return 0; }
void lg_im2col_perm(const float *x, int64_t xs, int64_t m, const lg_conv_geom *g, float *col,
                    int64_t ldc)
{
  (void)x; (void)xs; (void)m; (void)g; (void)col; (void)ldc;
}
void lg_col2im_perm(const float *col, int64_t m, const lg_conv_geom *g, int64_t ldc, float *x,
                    int64_t xs)
{
  (void)col; (void)m; (void)g; (void)ldc; (void)x; (void)xs;
}
#endif

int lg_col2im_tab_fast(void)
{
#ifdef LG_HAVE_AVX512_FORMS
  return lg_use_avx512();
#else
  return 0;
#endif
}


void lg_col2im_tab(const float *col, const lg_conv_geom *g, const int32_t *tab, int64_t ldc,
                   float *x)
{
#ifdef LG_HAVE_AVX512_FORMS
  if (lg_use_avx512()) { lg_col2im_tab_avx512(col, g, tab, ldc, x); return; }
#endif
  lg_col2im_tab_scalar(col, g, tab, ldc, x);
}
