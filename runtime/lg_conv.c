/* lg_conv.c: conv2d, conv_transpose2d and conv2d_dw (the weight gradient),
 * three ops that are each other's derivatives, and their sgemm drivers.
 *
 *   conv2d:            y  = W   @ im2col(x)            per sample, W: (Co, C*KH*KW)
 *   input gradient:    gx = col2im(W^T @ gy)           (= conv_transpose2d forward)
 *   weight gradient:   gW = sum_n gy[n] @ im2col(x[n])^T
 *
 * Samples are batched side by side in one wide column matrix, a chunk of
 * lg_conv_chunk samples per sgemm, so small feature maps still give sgemm a
 * long N dimension. A chunk's columns are sized to stay in a core's L2
 * (LG_CONV_COL_BUDGET): im2col writes them, sgemm packs them and col2im
 * reads them from cache instead of from memory. The Co x (nb*OH*OW)
 * products are then permuted to (nb, Co, OH*OW).
 *
 * Threads: with an OpenMP (or serial) OpenBLAS, the OpenMP threads each run
 * whole chunks (im2col, a serial sgemm, the copies) and need not meet until
 * the op ends; forward and input gradient hand chunks out dynamically, so a
 * thread the OS delays takes fewer. The weight gradient sums over chunks:
 * each thread accumulates its fixed range of chunks into its own buffer and
 * the buffers are added in thread order, so results do not depend on timing.
 * With a pthread OpenBLAS (its own threads) the chunks run one by one, sgemm
 * threads itself and im2col/col2im/copies run in OpenMP loops. */
#include <limits.h>
#include <string.h>
#include <omp.h>
#include <cblas.h>
#include "lg_ops.h"
#include "lg_kernels_conv.h"

#define LG_OMP_MIN LG_PAR_MIN   /* lg_tensor.h: shorter loops run on one thread */
#define LG_CONV_COL_BUDGET ((int64_t)1 << 19)   /* floats in a chunk's columns (2 MiB) */
#define LG_CONV_TEAM_MIN LG_BLAS_PAR_MIN         /* multiply-adds worth a thread team */

/* ---- threads and chunks ------------------------------------------------------------ */
int openblas_get_parallel(void);   /* 0 serial, 1 pthreads, 2 OpenMP (OpenBLAS) */

/* Threads that may run whole chunks: 1 means chunks run one after another
 * (and sgemm threads itself). */
static int lg_conv_threads(void)
{
  if (omp_in_parallel() || openblas_get_parallel() == 1) return 1;
  return omp_get_max_threads();
}

/* The team for a conv of `macs` multiply-adds (small ones are not worth one). */
static int lg_conv_team(int64_t macs)
{
  return macs < LG_CONV_TEAM_MIN ? 1 : lg_conv_threads();
}

/* a * b, or INT64_MAX when it overflows: for the cost estimates below, which
 * only compare against budgets (expanded tensors make huge products cheap) */
static int64_t lg_mul_sat(int64_t a, int64_t b)
{
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

static int64_t lg_conv_macs(const lg_conv_geom *g, int64_t N, int64_t Co)
{
  int64_t m = N;
  const int64_t f[6] = {Co, g->C, g->KH, g->KW, g->OH, g->OW};
  for (int i = 0; i < 6; i++) m = lg_mul_sat(m, f[i]);
  return m;
}

/* Samples per chunk: a cache's worth of columns, and a chunk count that is
 * a multiple of the team (a whole number of chunks per thread). */
static int64_t lg_conv_nb(const lg_conv_geom *g, int64_t N, int nt)
{
  int64_t per = lg_mul_sat(lg_mul_sat(g->C * g->KH * g->KW, g->OH), g->OW);
  if (N < 1) return 1;
  if (per <= 0) return N;
  int64_t nb = LG_CONV_COL_BUDGET / per;
  if (nb < 1) nb = 1;
  if (nb > N) nb = N;
  int64_t nch = (N + nb - 1) / nb;
  if (nt > 1) {
    nch = (nch + nt - 1) / nt * nt;
    if (nch > N) nch = N;
    nb = (N + nch - 1) / nch;
  }
  return nb;
}

int64_t lg_conv_chunk(const lg_conv_geom *g, int64_t N)
{
  return lg_conv_nb(g, N, lg_conv_threads());
}

/* Scratch layout (in floats): room for the index tables (the im2col table,
 * or the col2im tables for the full and the last chunk's pitch), then one
 * slot per team thread: columns (K, nb*P), products (Co, nb*P) and a
 * weight-gradient partial (Co, K). */
typedef struct { int nt; int64_t nb, nch, slot, room; } lg_conv_plan;

static lg_conv_plan lg_conv_plan_for(const lg_conv_geom *g, int64_t N, int64_t Co)
{
  lg_conv_plan pl;
  const int64_t K = g->C * g->KH * g->KW, P = g->OH * g->OW;
  pl.nb = lg_conv_chunk(g, N);     /* independent of Co: lg_conv_chunk tells the truth */
  pl.nch = N > 0 ? (N + pl.nb - 1) / pl.nb : 0;
  pl.nt = pl.nch < 2 ? 1 : lg_conv_team(lg_conv_macs(g, N, Co));
  pl.slot = K * pl.nb * P + Co * pl.nb * P + Co * K;
  int64_t a = lg_im2col_table_size(g), b = 2 * lg_col2im_table_size(g, pl.nb * P);
  pl.room = a > b ? a : b;
  return pl;
}

int64_t lg_conv_scratch_size(const lg_conv_geom *g, int64_t N, int64_t Co)
{
  lg_conv_plan pl = lg_conv_plan_for(g, N, Co);
  return pl.room + pl.nt * pl.slot;
}

static float *lg_conv_slot(const lg_conv_plan *pl, float *scratch, int t)
{
  return scratch + pl->room + (int64_t)t * pl->slot;
}

/* Samples [n0, n0+m) of x: (N,C,H,W) -> col: (C*KH*KW, m*P); par: may thread */
static void lg_im2col_batch(const float *x, int64_t n0, int64_t m, const lg_conv_geom *g,
                            const int32_t *idx, float *col, int par)
{
  const int64_t C = g->C, P = g->OH * g->OW, KK = g->KH * g->KW, HW = g->H * g->W;
  lg_conv_geom g1 = *g;
  g1.C = 1;
  if (lg_im2col_perm_ok(&g1)) {   /* small maps: in-register permutes, all m samples */
    #pragma omp parallel for if (par && m * C * KK * P > LG_OMP_MIN)
    for (int64_t c = 0; c < C; c++)
      lg_im2col_perm(x + (n0 * C + c) * HW, C * HW, m, &g1, col + c * KK * m * P, m * P);
    return;
  }
  /* channel outer: the KK rows of a channel are then written front to back
   * across the samples, KK sequential streams instead of scattered blocks */
  #pragma omp parallel for collapse(2) if (par && m * C * KK * P > LG_OMP_MIN)
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
                           float *buf, int par)
{
  #pragma omp parallel for collapse(2) if (par && m * Co * P > LG_OMP_MIN)
  for (int64_t n = 0; n < m; n++)
    for (int64_t o = 0; o < Co; o++)
      memcpy(buf + o * m * P + n * P, t + ((n0 + n) * Co + o) * P, sizeof(float) * P);
}

/* ---- conv2d forward ------------------------------------------------------------------- */
/* Chunk [n0, n0+m): y[n0..]: (m,Co,P) = w: (Co,K) @ im2col(x[n0..]) + b */
static void lg_conv_fwd_chunk(const float *x, const float *w, const float *b, float *y,
                              int64_t n0, int64_t m, int64_t Co, const lg_conv_geom *g,
                              const int32_t *idx, float *slot, int par)
{
  const int64_t K = g->C * g->KH * g->KW, P = g->OH * g->OW;
  float *col = slot, *tmp = slot + K * m * P;
  lg_im2col_batch(x, n0, m, g, idx, col, par);
  if (m == 1) {
    /* y[n0]: (Co, P) = w: (Co, K) @ col: (K, P) */
    float *yn = y + n0 * Co * P;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)P, (int)K, 1.0f, w,
                (int)K, col, (int)P, 0.0f, yn, (int)P);
    if (b)
      for (int64_t o = 0; o < Co; o++)
        for (int64_t p = 0; p < P; p++) yn[o * P + p] += b[o];
    return;
  }
  /* tmp: (Co, m*P) = w: (Co, K) @ col: (K, m*P), then permuted into y */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)(m * P), (int)K, 1.0f, w,
              (int)K, col, (int)(m * P), 0.0f, tmp, (int)(m * P));
  #pragma omp parallel for collapse(2) if (par && m * Co * P > LG_OMP_MIN)
  for (int64_t n = 0; n < m; n++)
    for (int64_t o = 0; o < Co; o++) {
      const float *s = tmp + o * m * P + n * P;
      float *d = y + ((n0 + n) * Co + o) * P, bo = b ? b[o] : 0;
      for (int64_t p = 0; p < P; p++) d[p] = s[p] + bo;
    }
}

/* x: (N,C,H,W), w: (Co,C,KH,KW), b: (Co) or NULL -> y: (N,Co,OH,OW) */
void lg_conv2d_forward(const float *x, const float *w, const float *b, float *y, int64_t N,
                       int64_t Co, const lg_conv_geom *g, float *scratch)
{
  const int64_t K = g->C * g->KH * g->KW, P = g->OH * g->OW;
  if (N == 0 || Co == 0 || P == 0) return;
  if (K == 0) {                       /* no input channels: the bias alone */
    for (int64_t i = 0; i < N * Co; i++)
      for (int64_t p = 0; p < P; p++) y[i * P + p] = b ? b[i % Co] : 0;
    return;
  }
  lg_conv_plan pl = lg_conv_plan_for(g, N, Co);
  int32_t *idx = NULL;
  if (lg_im2col_table_size(g)) lg_im2col_table(g, idx = (int32_t *)scratch);
  if (pl.nt > 1) {
    #pragma omp parallel for schedule(dynamic, 1) num_threads(pl.nt)
    for (int64_t ch = 0; ch < pl.nch; ch++) {
      int64_t n0 = ch * pl.nb, m = N - n0 < pl.nb ? N - n0 : pl.nb;
      lg_conv_fwd_chunk(x, w, b, y, n0, m, Co, g, idx,
                        lg_conv_slot(&pl, scratch, omp_get_thread_num()), 0);
    }
    return;
  }
  int tok = lg_blas_serial_begin(lg_conv_macs(g, N, Co));
  for (int64_t n0 = 0; n0 < N; n0 += pl.nb) {
    int64_t m = N - n0 < pl.nb ? N - n0 : pl.nb;
    lg_conv_fwd_chunk(x, w, b, y, n0, m, Co, g, idx, lg_conv_slot(&pl, scratch, 0), 1);
  }
  lg_blas_serial_end(tok);
}

/* ---- input gradient ------------------------------------------------------------------- */
/* Chunk [n0, n0+m): gx[n0..] = col2im(w^T @ gy[n0..]); tab for pitch m*P or NULL */
static void lg_conv_bwdx_chunk(const float *gy, const float *w, float *gx, int64_t n0, int64_t m,
                               int64_t Co, const lg_conv_geom *g, const int32_t *tab,
                               float *slot, int par)
{
  const int64_t C = g->C, K = C * g->KH * g->KW, KK = g->KH * g->KW, P = g->OH * g->OW;
  const int64_t HW = g->H * g->W;
  float *col = slot, *buf = slot + K * m * P;
  lg_conv_geom g1 = *g;
  g1.C = 1;
  const float *B = gy + n0 * Co * P;                   /* (Co, m*P) */
  if (m > 1) { lg_gather_rows(gy, n0, m, Co, P, buf, par); B = buf; }
  /* col: (K, m*P) = w^T: (K, Co) @ B: (Co, m*P) */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)(m * P), (int)Co, 1.0f, w,
              (int)K, B, (int)(m * P), 0.0f, col, (int)(m * P));
  if (lg_col2im_perm_ok(&g1)) {
    #pragma omp parallel for if (par && m * K * P > LG_OMP_MIN)
    for (int64_t c = 0; c < C; c++)
      lg_col2im_perm(col + c * KK * m * P, m, &g1, m * P, gx + (n0 * C + c) * HW, C * HW);
    return;
  }
  #pragma omp parallel for collapse(2) if (par && m * K * P > LG_OMP_MIN)
  for (int64_t c = 0; c < C; c++)         /* channel outer, as in lg_im2col_batch */
    for (int64_t n = 0; n < m; n++) {
      const float *cp = col + c * KK * m * P + n * P;
      float *xp = gx + ((n0 + n) * C + c) * HW;
      if (tab) lg_col2im_tab(cp, &g1, tab, m * P, xp);
      else lg_col2im(cp, &g1, m * P, xp);
    }
}

/* gy: (N,Co,OH,OW), w: (Co,C,KH,KW) -> gx: (N,C,H,W) */
void lg_conv2d_backward_input(const float *gy, const float *w, float *gx, int64_t N,
                              int64_t Co, const lg_conv_geom *g, float *scratch)
{
  const int64_t C = g->C, K = C * g->KH * g->KW, P = g->OH * g->OW, HW = g->H * g->W;
  if (N == 0 || K == 0 || HW == 0) return;
  if (Co == 0 || P == 0) { memset(gx, 0, sizeof(float) * N * C * HW); return; }
  lg_conv_plan pl = lg_conv_plan_for(g, N, Co);
  /* col2im tables for the full chunks' pitch and the last chunk's */
  int64_t last = N - (pl.nch - 1) * pl.nb, ts = lg_col2im_table_size(g, pl.nb * P);
  int32_t *tab_full = NULL, *tab_last = NULL;
  if (ts) {
    lg_col2im_table(g, pl.nb * P, tab_full = (int32_t *)scratch);
    if (last == pl.nb) tab_last = tab_full;
    else lg_col2im_table(g, last * P, tab_last = (int32_t *)scratch + ts);
  }
  if (pl.nt > 1) {
    #pragma omp parallel for schedule(dynamic, 1) num_threads(pl.nt)
    for (int64_t ch = 0; ch < pl.nch; ch++) {
      int64_t n0 = ch * pl.nb, m = N - n0 < pl.nb ? N - n0 : pl.nb;
      lg_conv_bwdx_chunk(gy, w, gx, n0, m, Co, g, m == pl.nb ? tab_full : tab_last,
                         lg_conv_slot(&pl, scratch, omp_get_thread_num()), 0);
    }
    return;
  }
  int tok = lg_blas_serial_begin(lg_conv_macs(g, N, Co));
  for (int64_t n0 = 0; n0 < N; n0 += pl.nb) {
    int64_t m = N - n0 < pl.nb ? N - n0 : pl.nb;
    lg_conv_bwdx_chunk(gy, w, gx, n0, m, Co, g, m == pl.nb ? tab_full : tab_last,
                       lg_conv_slot(&pl, scratch, 0), 1);
  }
  lg_blas_serial_end(tok);
}

/* ---- weight gradient ------------------------------------------------------------------ */
/* Chunks [c0, c1) of pl: acc: (Co, K) = (beta) acc + sum gy[chunk] @ im2col(x[chunk])^T */
static void lg_conv_bwdw_range(const float *x, const float *gy, float *acc, float beta,
                               int64_t c0, int64_t c1, int64_t N, int64_t Co,
                               const lg_conv_geom *g, const lg_conv_plan *pl,
                               const int32_t *idx, float *slot, int par)
{
  const int64_t K = g->C * g->KH * g->KW, P = g->OH * g->OW;
  for (int64_t ch = c0; ch < c1; ch++) {
    int64_t n0 = ch * pl->nb, m = N - n0 < pl->nb ? N - n0 : pl->nb;
    float *col = slot, *buf = slot + K * m * P;
    lg_im2col_batch(x, n0, m, g, idx, col, par);
    const float *B = gy + n0 * Co * P;
    if (m > 1) { lg_gather_rows(gy, n0, m, Co, P, buf, par); B = buf; }
    /* acc: (Co, K) (+)= B: (Co, m*P) @ col^T: (m*P, K) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Co, (int)K, (int)(m * P), 1.0f, B,
                (int)(m * P), col, (int)(m * P), ch == c0 ? beta : 1.0f, acc, (int)K);
  }
}

/* gw[0..n) = the sum of the `used` threads' partials (at part_off in their
 * slots), added in thread order. Blocks of a few thousand, each partial's
 * pointer taken once: the element-wise form (a slot address per element and
 * thread) did not vectorise, and ran on one thread while the others waited
 * (docs/perf_notes.md, section 8, has the measurement). */
#define LG_CONV_SUM_BLK 4096

static void lg_conv_sum_partials(float *gw, const lg_conv_plan *pl, float *scratch,
                                 int64_t part_off, int used, int64_t n)
{
  const int64_t nblk = (n + LG_CONV_SUM_BLK - 1) / LG_CONV_SUM_BLK;
  #pragma omp parallel for if (n > LG_OMP_MIN)
  for (int64_t k = 0; k < nblk; k++) {
    int64_t lo = k * LG_CONV_SUM_BLK, len = n - lo < LG_CONV_SUM_BLK ? n - lo : LG_CONV_SUM_BLK;
    float *restrict d = gw + lo;
    memcpy(d, lg_conv_slot(pl, scratch, 0) + part_off + lo, sizeof(float) * len);
    for (int t = 1; t < used; t++) {
      const float *restrict p = lg_conv_slot(pl, scratch, t) + part_off + lo;
      for (int64_t i = 0; i < len; i++) d[i] += p[i];
    }
  }
}

/* x: (N,C,H,W), gy: (N,Co,OH,OW) -> gw: (Co,C,KH,KW) */
void lg_conv2d_backward_weight(const float *x, const float *gy, float *gw, int64_t N,
                               int64_t Co, const lg_conv_geom *g, float *scratch)
{
  const int64_t K = g->C * g->KH * g->KW, P = g->OH * g->OW;
  if (Co == 0 || K == 0) return;
  if (N == 0 || P == 0) { memset(gw, 0, sizeof(float) * Co * K); return; }
  lg_conv_plan pl = lg_conv_plan_for(g, N, Co);
  int32_t *idx = NULL;
  if (lg_im2col_table_size(g)) lg_im2col_table(g, idx = (int32_t *)scratch);
  if (pl.nt == 1) {
    int tok = lg_blas_serial_begin(lg_conv_macs(g, N, Co));
    lg_conv_bwdw_range(x, gy, gw, 0.0f, 0, pl.nch, N, Co, g, &pl, idx,
                       lg_conv_slot(&pl, scratch, 0), 1);
    lg_blas_serial_end(tok);
    return;
  }
  /* Thread t sums its fixed chunk range into its slot's partial; the
   * partials are then added in thread order (deterministic). */
  const int64_t part_off = pl.slot - Co * K;
  int used = 1;
  #pragma omp parallel num_threads(pl.nt)
  {
    int t = omp_get_thread_num(), nth = omp_get_num_threads();
    int64_t c0 = pl.nch * t / nth, c1 = pl.nch * (t + 1) / nth;
    float *slot = lg_conv_slot(&pl, scratch, t), *part = slot + part_off;
    if (c1 > c0) lg_conv_bwdw_range(x, gy, part, 0.0f, c0, c1, N, Co, g, &pl, idx, slot, 0);
    else memset(part, 0, sizeof(float) * Co * K);
    #pragma omp single
    used = nth;
  }
  lg_conv_sum_partials(gw, &pl, scratch, part_off, used, Co * K);
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
  int64_t dk;   /* d * (k - 1), checked: an expanded weight can be 2^40 tall */
  if (k < 1 || lg_size_mul(d, k - 1, &dk)) return -1;
  int64_t span = in + 2 * (int64_t)p - dk - 1;
  return span < 0 ? -1 : span / s + 1;
}

/* (in - 1) * s + d * (k - 1) for a transposed conv, checked; -1 past 2^40
 * (0 for in or k < 1, which the caller reports). */
static int64_t lg_convt_span(int64_t in, int64_t k, int s, int d)
{
  int64_t a, b;
  if (in < 1 || k < 1) return 0;
  if (lg_size_mul(in - 1, s, &a) || lg_size_mul(d, k - 1, &b)) return -1;
  return a + b;
}

/* sgemm takes int sizes. */
static int lg_conv_fits_blas(const char *op, const lg_conv_geom *g, int64_t Co)
{
  int64_t K = g->C * g->KH * g->KW, P;
  /* OH * OW, checked first: a padded or transposed output of a 2^40-tall
   * (expanded) input can overflow it, and every later product uses it */
  if (lg_size_mul(g->OH, g->OW, &P) || K > INT_MAX || Co > INT_MAX ||
      P * lg_conv_chunk(g, 1 << 30) > INT_MAX)
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
  int64_t OH = lg_convt_span(x->shape[2], KH, sh, dh), OW = lg_convt_span(x->shape[3], KW, sw, dw);
  if (OH < 0 || OW < 0)
    return lg_error("%s: input %s, weight %s: stride %dx%d and dilation %dx%d give an output "
                    "side of more than 2^40", op, xs, ws, sh, sw, dh, dw);
  OH += oph + 1 - 2 * (int64_t)ph;
  OW += opw + 1 - 2 * (int64_t)pw;
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
