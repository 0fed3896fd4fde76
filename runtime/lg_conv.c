/* lg_conv.c: conv2d, conv_transpose2d and conv2d_dw (the weight gradient),
 * three ops that are each other's derivatives, and their sgemm drivers.
 *
 *   conv2d:            y  = W   @ im2col(x)            per sample, W: (Co, C*KH*KW)
 *   input gradient:    gx = col2im(W^T @ gy)           (= conv_transpose2d forward)
 *   weight gradient:   gW = sum_n gy[n] @ im2col(x[n])^T
 *
 * Samples are batched side by side in one wide column matrix (lg_conv_chunk
 * samples per sgemm) so small feature maps still give sgemm a long N
 * dimension; the chunk is bounded so the column buffer stays ~16 MB. The
 * Co x (nb*OH*OW) products are then permuted to (nb, Co, OH*OW).
 *
 * Threads: im2col/col2im and the permuting copies run in OpenMP loops over
 * (sample, channel); sgemm is always called outside them (OpenBLAS threads
 * itself), never from inside an OpenMP region. */
#include <limits.h>
#include <string.h>
#include <cblas.h>
#include "lg_ops.h"
#include "lg_kernels_conv.h"

#define LG_OMP_MIN 32768
#define LG_CONV_COL_BUDGET ((int64_t)1 << 22)   /* floats in one column buffer */

/* ---- drivers on raw pointers ------------------------------------------------------ */
int64_t lg_conv_chunk(const lg_conv_geom *g, int64_t N)
{
  int64_t per = g->C * g->KH * g->KW * g->OH * g->OW;
  if (N < 1) return 1;
  if (per <= 0) return N;
  int64_t nb = LG_CONV_COL_BUDGET / per;
  if (nb < 1) nb = 1;
  return nb < N ? nb : N;
}

/* Scratch layout (in floats): columns (K, nb*P), then the Co x (nb*P)
 * products when nb > 1, then room for the im2col or the col2im table (int32
 * entries; the col2im table's size does not depend on the pitch). */
static int64_t lg_conv_table_room(const lg_conv_geom *g, int64_t nb)
{
  int64_t a = lg_im2col_table_size(g), b = lg_col2im_table_size(g, nb * g->OH * g->OW);
  return a > b ? a : b;
}

int64_t lg_conv_scratch_size(const lg_conv_geom *g, int64_t N, int64_t Co)
{
  int64_t nb = lg_conv_chunk(g, N), P = g->OH * g->OW;
  int64_t n = g->C * g->KH * g->KW * nb * P;          /* columns */
  if (nb > 1) n += Co * nb * P;                        /* Co x (nb*P) products */
  return n + lg_conv_table_room(g, nb);
}

static int32_t *lg_conv_table_at(const lg_conv_geom *g, int64_t N, int64_t Co, float *scratch)
{
  return (int32_t *)(scratch + lg_conv_scratch_size(g, N, Co) -
                     lg_conv_table_room(g, lg_conv_chunk(g, N)));
}

/* The im2col table inside scratch (built here), or NULL for the direct form. */
static const int32_t *lg_conv_table(const lg_conv_geom *g, int64_t N, int64_t Co, float *scratch)
{
  if (!lg_im2col_table_size(g)) return NULL;
  int32_t *idx = lg_conv_table_at(g, N, Co, scratch);
  lg_im2col_table(g, idx);
  return idx;
}

/* Samples [n0, n0+m) of x: (N,C,H,W) -> col: (C*KH*KW, m*P) */
static void lg_im2col_batch(const float *x, int64_t n0, int64_t m, const lg_conv_geom *g,
                            const int32_t *idx, float *col)
{
  const int64_t C = g->C, P = g->OH * g->OW, KK = g->KH * g->KW, HW = g->H * g->W;
  lg_conv_geom g1 = *g;
  g1.C = 1;
  /* channel outer: the KK rows of a channel are then written front to back
   * across the samples, KK sequential streams instead of scattered blocks */
  #pragma omp parallel for collapse(2) if (m * C * KK * P > LG_OMP_MIN)
  for (int64_t c = 0; c < C; c++)
    for (int64_t n = 0; n < m; n++) {
      const float *xp = x + ((n0 + n) * C + c) * HW;
      float *cp = col + c * KK * m * P + n * P;
      if (idx) lg_im2col_tab(xp, &g1, idx, cp, m * P);
      else lg_im2col(xp, &g1, cp, m * P);
    }
}

/* Samples [n0, n0+m) of t: (N,Co,P) -> buf: (Co, m*P) */
static void lg_gather_rows(const float *t, int64_t n0, int64_t m, int64_t Co, int64_t P,
                           float *buf)
{
  #pragma omp parallel for collapse(2) if (m * Co * P > LG_OMP_MIN)
  for (int64_t n = 0; n < m; n++)
    for (int64_t o = 0; o < Co; o++)
      memcpy(buf + o * m * P + n * P, t + ((n0 + n) * Co + o) * P, sizeof(float) * P);
}

/* x: (N,C,H,W), w: (Co,C,KH,KW), b: (Co) or NULL -> y: (N,Co,OH,OW) */
void lg_conv2d_forward(const float *x, const float *w, const float *b, float *y, int64_t N,
                       int64_t Co, const lg_conv_geom *g, float *scratch)
{
  const int64_t K = g->C * g->KH * g->KW, P = g->OH * g->OW, nb = lg_conv_chunk(g, N);
  if (N == 0 || Co == 0 || P == 0) return;
  if (K == 0) {                       /* no input channels: the bias alone */
    for (int64_t i = 0; i < N * Co; i++)
      for (int64_t p = 0; p < P; p++) y[i * P + p] = b ? b[i % Co] : 0;
    return;
  }
  float *col = scratch, *tmp = scratch + K * nb * P;
  const int32_t *idx = lg_conv_table(g, N, Co, scratch);
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    int64_t m = N - n0 < nb ? N - n0 : nb;
    lg_im2col_batch(x, n0, m, g, idx, col);
    if (m == 1) {
      /* y[n0]: (Co, P) = w: (Co, K) @ col: (K, P) */
      float *yn = y + n0 * Co * P;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)P, (int)K, 1.0f, w,
                  (int)K, col, (int)P, 0.0f, yn, (int)P);
      if (b)
        for (int64_t o = 0; o < Co; o++)
          for (int64_t p = 0; p < P; p++) yn[o * P + p] += b[o];
      continue;
    }
    /* tmp: (Co, m*P) = w: (Co, K) @ col: (K, m*P), then permuted into y */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)(m * P), (int)K, 1.0f,
                w, (int)K, col, (int)(m * P), 0.0f, tmp, (int)(m * P));
    #pragma omp parallel for collapse(2) if (m * Co * P > LG_OMP_MIN)
    for (int64_t n = 0; n < m; n++)
      for (int64_t o = 0; o < Co; o++) {
        const float *s = tmp + o * m * P + n * P;
        float *d = y + ((n0 + n) * Co + o) * P, bo = b ? b[o] : 0;
        for (int64_t p = 0; p < P; p++) d[p] = s[p] + bo;
      }
  }
}

/* gy: (N,Co,OH,OW), w: (Co,C,KH,KW) -> gx: (N,C,H,W) */
void lg_conv2d_backward_input(const float *gy, const float *w, float *gx, int64_t N,
                              int64_t Co, const lg_conv_geom *g, float *scratch)
{
  const int64_t C = g->C, K = C * g->KH * g->KW, KK = g->KH * g->KW, P = g->OH * g->OW;
  const int64_t HW = g->H * g->W, nb = lg_conv_chunk(g, N);
  if (N == 0 || K == 0 || HW == 0) return;
  if (Co == 0 || P == 0) { memset(gx, 0, sizeof(float) * N * C * HW); return; }
  float *col = scratch, *buf = scratch + K * nb * P;
  int32_t *tab = lg_conv_table_at(g, N, Co, scratch);
  int64_t tab_ldc = 0;                                 /* the pitch tab was built for */
  lg_conv_geom g1 = *g;
  g1.C = 1;
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    int64_t m = N - n0 < nb ? N - n0 : nb;
    int use_tab = lg_col2im_table_size(g, m * P) > 0;
    if (use_tab && tab_ldc != m * P) { lg_col2im_table(g, m * P, tab); tab_ldc = m * P; }
    const float *B = gy + n0 * Co * P;                 /* (Co, m*P) */
    if (m > 1) { lg_gather_rows(gy, n0, m, Co, P, buf); B = buf; }
    /* col: (K, m*P) = w^T: (K, Co) @ B: (Co, m*P) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)(m * P), (int)Co, 1.0f, w,
                (int)K, B, (int)(m * P), 0.0f, col, (int)(m * P));
    #pragma omp parallel for collapse(2) if (m * K * P > LG_OMP_MIN)
    for (int64_t c = 0; c < C; c++)       /* channel outer, as in lg_im2col_batch */
      for (int64_t n = 0; n < m; n++) {
        const float *cp = col + c * KK * m * P + n * P;
        float *xp = gx + ((n0 + n) * C + c) * HW;
        if (use_tab) lg_col2im_tab(cp, &g1, tab, m * P, xp);
        else lg_col2im(cp, &g1, m * P, xp);
      }
  }
}

/* x: (N,C,H,W), gy: (N,Co,OH,OW) -> gw: (Co,C,KH,KW) */
void lg_conv2d_backward_weight(const float *x, const float *gy, float *gw, int64_t N,
                               int64_t Co, const lg_conv_geom *g, float *scratch)
{
  const int64_t K = g->C * g->KH * g->KW, P = g->OH * g->OW, nb = lg_conv_chunk(g, N);
  if (Co == 0 || K == 0) return;
  if (N == 0 || P == 0) { memset(gw, 0, sizeof(float) * Co * K); return; }
  float *col = scratch, *buf = scratch + K * nb * P;
  const int32_t *idx = lg_conv_table(g, N, Co, scratch);
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    int64_t m = N - n0 < nb ? N - n0 : nb;
    lg_im2col_batch(x, n0, m, g, idx, col);
    const float *B = gy + n0 * Co * P;
    if (m > 1) { lg_gather_rows(gy, n0, m, Co, P, buf); B = buf; }
    /* gw: (Co, K) (+)= B: (Co, m*P) @ col^T: (m*P, K) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Co, (int)K, (int)(m * P), 1.0f, B,
                (int)(m * P), col, (int)(m * P), n0 == 0 ? 0.0f : 1.0f, gw, (int)K);
  }
}

/* ---- ops ------------------------------------------------------------------------------ */
/* A contiguous copy of t that records nothing (t itself, retained, when dense). */
static lg_tensor *lg_dense(const lg_tensor *t)
{
  if (!t || lg_is_contiguous(t)) return lg_retain((lg_tensor *)t);
  lg_tensor *c = lg_empty(t->ndim, t->shape);
  if (c && lg_copy_(c, t)) { lg_release(c); return NULL; }
  return c;
}

/* Check stride/padding/dilation; 0 or -1 with error. */
static int lg_conv_check_params(const char *op, int sh, int sw, int ph, int pw, int dh, int dw)
{
  if (sh < 1 || sw < 1) return lg_error("%s: stride %dx%d must be >= 1", op, sh, sw), -1;
  if (ph < 0 || pw < 0) return lg_error("%s: padding %dx%d must be >= 0", op, ph, pw), -1;
  if (dh < 1 || dw < 1) return lg_error("%s: dilation %dx%d must be >= 1", op, dh, dw), -1;
  return 0;
}

/* conv2d output size along one dim, or -1 when the dilated kernel does not fit. */
static int64_t lg_conv_out(int64_t in, int64_t k, int s, int p, int d)
{
  int64_t span = in + 2 * (int64_t)p - (int64_t)d * (k - 1) - 1;
  return span < 0 ? -1 : span / s + 1;
}

/* sgemm takes int sizes. */
static int lg_conv_fits_blas(const char *op, const lg_conv_geom *g, int64_t Co)
{
  int64_t K = g->C * g->KH * g->KW, P = g->OH * g->OW, nb = lg_conv_chunk(g, 1 << 30);
  if (K > INT_MAX || Co > INT_MAX || P * nb > INT_MAX)
    return lg_error("%s: sizes exceed what BLAS can index", op), -1;
  return 0;
}

static int lg_check_bias(const char *op, const lg_tensor *b, int64_t OC, const char *xs,
                         const char *ws)
{
  char b1[128];
  if (b && (b->ndim != 1 || b->shape[0] != OC))
    return lg_error("%s: input %s, weight %s: bias %s should have shape %lld", op, xs, ws,
                    lg_shape_str(b, b1, sizeof b1), (long long)OC), -1;
  return 0;
}

/* Run fn with dense copies of a, b (c optional) and a scratch buffer. */
typedef struct { lg_tensor *a, *b, *c, *s; } lg_conv_bufs;

static int lg_conv_bufs_get(lg_conv_bufs *k, const lg_tensor *a, const lg_tensor *b,
                            const lg_tensor *c, int64_t scratch)
{
  int64_t one = scratch > 0 ? scratch : 1;
  k->a = lg_dense(a);
  k->b = lg_dense(b);
  k->c = lg_dense(c);
  k->s = lg_empty(1, &one);
  return k->a && k->b && (k->c || !c) && k->s ? 0 : -1;
}

static void lg_conv_bufs_free(lg_conv_bufs *k)
{
  lg_release(k->a); lg_release(k->b); lg_release(k->c); lg_release(k->s);
}

/* Add b: (OC) to y: (N,OC,P). */
static void lg_add_bias(float *y, const float *b, int64_t N, int64_t OC, int64_t P)
{
  #pragma omp parallel for collapse(2) if (N * OC * P > LG_OMP_MIN)
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < OC; o++) {
      float *d = y + (n * OC + o) * P;
      for (int64_t p = 0; p < P; p++) d[p] += b[o];
    }
}

lg_tensor *lg_conv2d(lg_tensor *x, lg_tensor *w, lg_tensor *b, int sh, int sw, int ph, int pw,
                     int dh, int dw)
{
  char xs[128], ws[128];
  const char *op = "conv2d";
  lg_shape_str(x, xs, sizeof xs);
  lg_shape_str(w, ws, sizeof ws);
  if (x->ndim != 4 || w->ndim != 4)
    return lg_error("%s: input %s, weight %s: expected a 4-D input (N,C,H,W) and a 4-D weight "
                    "(OC,C,KH,KW)", op, xs, ws);
  if (x->shape[1] != w->shape[1])
    return lg_error("%s: input %s, weight %s: expected input with %lld channels, got %lld", op,
                    xs, ws, (long long)w->shape[1], (long long)x->shape[1]);
  if (lg_conv_check_params(op, sh, sw, ph, pw, dh, dw)) return NULL;
  if (lg_check_bias(op, b, w->shape[0], xs, ws)) return NULL;
  lg_conv_geom g = {x->shape[1], x->shape[2], x->shape[3], w->shape[2], w->shape[3], sh, sw,
                    ph, pw, dh, dw, 0, 0};
  g.OH = lg_conv_out(g.H, g.KH, sh, ph, dh);
  g.OW = lg_conv_out(g.W, g.KW, sw, pw, dw);
  if (g.OH < 1 || g.OW < 1 || g.KH < 1 || g.KW < 1)
    return lg_error("%s: input %s, weight %s: the kernel (dilation %dx%d) does not fit in the "
                    "padded input %lldx%lld", op, xs, ws, dh, dw, (long long)(g.H + 2 * ph),
                    (long long)(g.W + 2 * pw));
  if (lg_conv_fits_blas(op, &g, w->shape[0])) return NULL;
  int64_t N = x->shape[0], OC = w->shape[0];
  int64_t osh[4] = {N, OC, g.OH, g.OW};
  lg_tensor *out = lg_empty(4, osh);
  lg_conv_bufs k = {0};
  if (!out || lg_conv_bufs_get(&k, x, w, b, lg_conv_scratch_size(&g, N, OC))) {
    lg_release(out);
    lg_conv_bufs_free(&k);
    return NULL;
  }
  lg_conv2d_forward(lg_data(k.a), lg_data(k.b), k.c ? lg_data(k.c) : NULL, lg_data(out), N, OC,
                    &g, lg_data(k.s));
  lg_conv_bufs_free(&k);
  lg_tensor *in[3] = {x, w, b};
  if (lg_should_record(3, in)) {
    lg_node *nd = lg_record(LG_OP_CONV2D, out, 3, in, 2);
    if (!nd) { lg_release(out); return NULL; }
    lg_save(nd, 0, x);
    lg_save(nd, 1, w);
    int64_t p[6] = {sh, sw, ph, pw, dh, dw};
    memcpy(nd->i, p, sizeof p);
  }
  return out;
}

lg_tensor *lg_conv_transpose2d(lg_tensor *x, lg_tensor *w, lg_tensor *b, int sh, int sw,
                               int ph, int pw, int oph, int opw, int dh, int dw)
{
  char xs[128], ws[128];
  const char *op = "conv_transpose2d";
  lg_shape_str(x, xs, sizeof xs);
  lg_shape_str(w, ws, sizeof ws);
  if (x->ndim != 4 || w->ndim != 4)
    return lg_error("%s: input %s, weight %s: expected a 4-D input (N,C,H,W) and a 4-D weight "
                    "(C,OC,KH,KW)", op, xs, ws);
  if (x->shape[1] != w->shape[0])
    return lg_error("%s: input %s, weight %s: expected input with %lld channels, got %lld", op,
                    xs, ws, (long long)w->shape[0], (long long)x->shape[1]);
  if (lg_conv_check_params(op, sh, sw, ph, pw, dh, dw)) return NULL;
  if (oph < 0 || opw < 0 || oph >= sh || opw >= sw)
    return lg_error("%s: output padding %dx%d must be >= 0 and smaller than the stride %dx%d",
                    op, oph, opw, sh, sw);
  if (lg_check_bias(op, b, w->shape[1], xs, ws)) return NULL;
  int64_t N = x->shape[0], C = x->shape[1], OC = w->shape[1], KH = w->shape[2], KW = w->shape[3];
  int64_t OH = (x->shape[2] - 1) * sh - 2 * (int64_t)ph + dh * (KH - 1) + oph + 1;
  int64_t OW = (x->shape[3] - 1) * sw - 2 * (int64_t)pw + dw * (KW - 1) + opw + 1;
  if (OH < 1 || OW < 1 || KH < 1 || KW < 1 || x->shape[2] < 1 || x->shape[3] < 1)
    return lg_error("%s: input %s, weight %s: padding %dx%d leaves an empty output (%lldx%lld)",
                    op, xs, ws, ph, pw, (long long)OH, (long long)OW);
  /* The conv2d this is the input gradient of: OC channels of OHxOW in, C out. */
  lg_conv_geom g = {OC, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, x->shape[2], x->shape[3]};
  if (lg_conv_fits_blas(op, &g, C)) return NULL;
  int64_t osh[4] = {N, OC, OH, OW};
  lg_tensor *out = lg_empty(4, osh);
  lg_conv_bufs k = {0};
  if (!out || lg_conv_bufs_get(&k, x, w, b, lg_conv_scratch_size(&g, N, C))) {
    lg_release(out);
    lg_conv_bufs_free(&k);
    return NULL;
  }
  lg_conv2d_backward_input(lg_data(k.a), lg_data(k.b), lg_data(out), N, C, &g, lg_data(k.s));
  if (k.c) lg_add_bias(lg_data(out), lg_data(k.c), N, OC, OH * OW);
  lg_conv_bufs_free(&k);
  lg_tensor *in[3] = {x, w, b};
  if (lg_should_record(3, in)) {
    lg_node *nd = lg_record(LG_OP_CONV_TRANSPOSE2D, out, 3, in, 2);
    if (!nd) { lg_release(out); return NULL; }
    lg_save(nd, 0, x);
    lg_save(nd, 1, w);
    int64_t p[8] = {sh, sw, ph, pw, oph, opw, dh, dw};
    memcpy(nd->i, p, sizeof p);
  }
  return out;
}

lg_tensor *lg_conv2d_dw(lg_tensor *x, lg_tensor *gy, int kh, int kw, int sh, int sw, int ph,
                        int pw, int dh, int dw)
{
  char xs[128], gs[128];
  const char *op = "conv2d_dw";
  lg_shape_str(x, xs, sizeof xs);
  lg_shape_str(gy, gs, sizeof gs);
  if (x->ndim != 4 || gy->ndim != 4 || x->shape[0] != gy->shape[0])
    return lg_error("%s: input %s, grad %s: expected (N,C,H,W) and (N,OC,OH,OW)", op, xs, gs);
  if (lg_conv_check_params(op, sh, sw, ph, pw, dh, dw)) return NULL;
  if (kh < 1 || kw < 1) return lg_error("%s: kernel size %dx%d must be >= 1", op, kh, kw);
  lg_conv_geom g = {x->shape[1], x->shape[2], x->shape[3], kh, kw, sh, sw, ph, pw, dh, dw, 0, 0};
  g.OH = lg_conv_out(g.H, kh, sh, ph, dh);
  g.OW = lg_conv_out(g.W, kw, sw, pw, dw);
  if (g.OH != gy->shape[2] || g.OW != gy->shape[3])
    return lg_error("%s: input %s, grad %s: a %dx%d kernel gives a %lldx%lld output here", op,
                    xs, gs, kh, kw, (long long)g.OH, (long long)g.OW);
  int64_t N = x->shape[0], OC = gy->shape[1];
  if (lg_conv_fits_blas(op, &g, OC)) return NULL;
  int64_t osh[4] = {OC, g.C, kh, kw};
  lg_tensor *out = lg_empty(4, osh);
  lg_conv_bufs k = {0};
  if (!out || lg_conv_bufs_get(&k, x, gy, NULL, lg_conv_scratch_size(&g, N, OC))) {
    lg_release(out);
    lg_conv_bufs_free(&k);
    return NULL;
  }
  lg_conv2d_backward_weight(lg_data(k.a), lg_data(k.b), lg_data(out), N, OC, &g, lg_data(k.s));
  lg_conv_bufs_free(&k);
  lg_tensor *in[2] = {x, gy};
  if (lg_should_record(2, in)) {
    lg_node *nd = lg_record(LG_OP_CONV2D_DW, out, 2, in, 2);
    if (!nd) { lg_release(out); return NULL; }
    lg_save(nd, 0, x);
    lg_save(nd, 1, gy);
    int64_t p[8] = {kh, kw, sh, sw, ph, pw, dh, dw};
    memcpy(nd->i, p, sizeof p);
  }
  return out;
}

/* ---- backward formulas -------------------------------------------------------------- */
/* The output padding that makes conv_transpose2d give back size `in` from
 * a conv2d output of size `out`. */
static int lg_outpad(int64_t in, int64_t out, int64_t k, int s, int p, int d)
{
  return (int)(in - ((out - 1) * s - 2 * (int64_t)p + (int64_t)d * (k - 1) + 1));
}

static lg_tensor *lg_bias_grad(lg_tensor *g)
{
  int dims[3] = {0, 2, 3};
  return lg_sum(g, 3, dims, 0);
}

/* y = conv2d(x, w) + b:
 *   gx = conv_transpose2d(g, w), gw = conv2d_dw(x, g), gb = sum_{n,h,w} g */
int lg_bw_conv2d(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  int sh = (int)n->i[0], sw = (int)n->i[1], ph = (int)n->i[2], pw = (int)n->i[3];
  int dh = (int)n->i[4], dw = (int)n->i[5];
  const int64_t *xs = n->in_shape[0], *ws = n->in_shape[1];
  if (n->needs[0]) {
    lg_tensor *w = lg_saved(n, 1);
    if (!w) return -1;
    gin[0] = lg_conv_transpose2d(g, w, NULL, sh, sw, ph, pw,
                                 lg_outpad(xs[2], g->shape[2], ws[2], sh, ph, dh),
                                 lg_outpad(xs[3], g->shape[3], ws[3], sw, pw, dw), dh, dw);
    lg_release(w);
    if (!gin[0]) return -1;
  }
  if (n->needs[1]) {
    lg_tensor *x = lg_saved(n, 0);
    if (!x) return -1;
    gin[1] = lg_conv2d_dw(x, g, (int)ws[2], (int)ws[3], sh, sw, ph, pw, dh, dw);
    lg_release(x);
    if (!gin[1]) return -1;
  }
  if (n->needs[2] && !(gin[2] = lg_bias_grad(g))) return -1;
  return 0;
}

/* y = conv_transpose2d(x, w) + b, the input gradient of a conv2d with weight w:
 *   gx = conv2d(g, w), gw = conv2d_dw(g, x), gb = sum_{n,h,w} g */
int lg_bw_conv_transpose2d(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  int sh = (int)n->i[0], sw = (int)n->i[1], ph = (int)n->i[2], pw = (int)n->i[3];
  int dh = (int)n->i[6], dw = (int)n->i[7];
  const int64_t *ws = n->in_shape[1];
  if (n->needs[0]) {
    lg_tensor *w = lg_saved(n, 1);
    if (!w) return -1;
    gin[0] = lg_conv2d(g, w, NULL, sh, sw, ph, pw, dh, dw);
    lg_release(w);
    if (!gin[0]) return -1;
  }
  if (n->needs[1]) {
    lg_tensor *x = lg_saved(n, 0);
    if (!x) return -1;
    gin[1] = lg_conv2d_dw(g, x, (int)ws[2], (int)ws[3], sh, sw, ph, pw, dh, dw);
    lg_release(x);
    if (!gin[1]) return -1;
  }
  if (n->needs[2] && !(gin[2] = lg_bias_grad(g))) return -1;
  return 0;
}

/* gw = conv2d_dw(x, gy) is bilinear: <G, gw> = <gy, conv2d(x, G)>, so
 *   d/dx = conv_transpose2d(gy, G), d/dgy = conv2d(x, G) */
int lg_bw_conv2d_dw(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  int kh = (int)n->i[0], kw = (int)n->i[1], sh = (int)n->i[2], sw = (int)n->i[3];
  int ph = (int)n->i[4], pw = (int)n->i[5], dh = (int)n->i[6], dw = (int)n->i[7];
  const int64_t *xs = n->in_shape[0], *gs = n->in_shape[1];
  if (n->needs[0]) {
    lg_tensor *gy = lg_saved(n, 1);
    if (!gy) return -1;
    gin[0] = lg_conv_transpose2d(gy, g, NULL, sh, sw, ph, pw,
                                 lg_outpad(xs[2], gs[2], kh, sh, ph, dh),
                                 lg_outpad(xs[3], gs[3], kw, sw, pw, dw), dh, dw);
    lg_release(gy);
    if (!gin[0]) return -1;
  }
  if (n->needs[1]) {
    lg_tensor *x = lg_saved(n, 0);
    if (!x) return -1;
    gin[1] = lg_conv2d(x, g, NULL, sh, sw, ph, pw, dh, dw);
    lg_release(x);
    if (!gin[1]) return -1;
  }
  return 0;
}
