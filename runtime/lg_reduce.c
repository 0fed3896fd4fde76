/* lg_reduce.c: reductions over all or given dims (sum mean var std amax amin
 * argmax argmin logsumexp norm prod), sum_to, and their backward formulas.
 *
 * The input's dims are split into kept dims (the output, row-major) and
 * reduced dims, dropping size-1 dims and merging neighbours whose strides
 * chain. Then one of two walks, both on the strided data (no copy):
 *  - rows: each output reduces runs along the innermost reduced dim (the
 *    contiguous inner-dim case: a row per output, several accumulators);
 *  - cols: when the innermost kept dim has unit stride (reducing over outer
 *    dims, e.g. a batch), each output block accumulates whole rows of
 *    contiguous columns at once, which vectorises.
 * Accumulators are double. Large reductions thread over independent outputs,
 * or, when there are few outputs, over fixed-size slices of the reduced
 * elements whose partial results are combined in order afterwards, so a
 * result does not depend on the number of threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_kernels_pointwise.h"
#include "lg_simd.h"

#define LG_OMP_MIN 32768   /* below this, threads cost more than they save */
#define LG_CHUNK 16384     /* row runs are split in pieces of at most this size */
#define LG_COLS 256        /* columns per block of the cols walk */

/* ---- what is accumulated ------------------------------------------------------ */
enum {
  LG_R_SUM,      /* x */
  LG_R_SUMSQ,    /* x^2 */
  LG_R_SQDEV,    /* (x - s)^2, s = the output's mean */
  LG_R_SUMEXP,   /* exp(x - s), s = the output's max */
  LG_R_SUMABS,   /* |x| */
  LG_R_SUMPOW,   /* |x|^p */
  LG_R_PROD,     /* product */
  LG_R_MAX, LG_R_MIN, LG_R_MAXABS
};

static inline double lg_r_init(int kind)
{
  return kind == LG_R_PROD ? 1 : kind == LG_R_MAX ? -INFINITY : kind == LG_R_MIN ? INFINITY : 0;
}

/* Combine two partial results; max/min propagate NaN. */
static inline double lg_r_comb(int kind, double acc, double v)
{
  switch (kind) {
  case LG_R_PROD: return acc * v;
  case LG_R_MAX: case LG_R_MAXABS: return (acc > v || acc != acc) ? acc : v;
  case LG_R_MIN: return (acc < v || acc != acc) ? acc : v;
  default: return acc + v;
  }
}

/* One run x[0], x[st], ..., n elements -> its partial result. Sums use four
 * accumulators on unit stride so the loop is not one long dependency chain. */
static double lg_row(int kind, const float *x, int64_t st, int64_t n, double s, double p)
{
#define SUMROW(E) { \
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0; \
    int64_t i = 0; \
    if (st == 1) \
      for (; i + 4 <= n; i += 4) { \
        double v; \
        v = x[i]; a0 += (E); v = x[i + 1]; a1 += (E); \
        v = x[i + 2]; a2 += (E); v = x[i + 3]; a3 += (E); \
      } \
    for (; i < n; i++) { double v = x[i * st]; a0 += (E); } \
    return (a0 + a1) + (a2 + a3); }
  switch (kind) {
  case LG_R_SUM: SUMROW(v)
  case LG_R_SUMSQ: SUMROW(v * v)
  case LG_R_SQDEV: SUMROW((v - s) * (v - s))
  case LG_R_SUMEXP: SUMROW(exp(v - s))
  case LG_R_SUMABS: SUMROW(fabs(v))
  case LG_R_SUMPOW: SUMROW(pow(fabs(v), p))
  default: {
    double a = lg_r_init(kind);
    for (int64_t i = 0; i < n; i++) {
      double v = x[i * st];
      if (kind == LG_R_MAXABS) v = fabs(v);
      a = lg_r_comb(kind, a, v);
    }
    return a;
  }
  }
#undef SUMROW
}

/* acc[i] (+)= f(x[i]) for n contiguous columns; s: per-column parameter. */
static void lg_cols(int kind, const float *restrict x, int64_t n, double *restrict acc,
                    const double *restrict s, double p)
{
  switch (kind) {
  case LG_R_SUM: for (int64_t i = 0; i < n; i++) acc[i] += x[i]; break;
  case LG_R_SUMSQ: for (int64_t i = 0; i < n; i++) acc[i] += (double)x[i] * x[i]; break;
  case LG_R_SQDEV:
    for (int64_t i = 0; i < n; i++) { double d = x[i] - s[i]; acc[i] += d * d; }
    break;
  case LG_R_SUMEXP: for (int64_t i = 0; i < n; i++) acc[i] += exp(x[i] - s[i]); break;
  case LG_R_SUMABS: for (int64_t i = 0; i < n; i++) acc[i] += fabs((double)x[i]); break;
  case LG_R_SUMPOW: for (int64_t i = 0; i < n; i++) acc[i] += pow(fabs((double)x[i]), p); break;
  case LG_R_PROD: for (int64_t i = 0; i < n; i++) acc[i] *= x[i]; break;
  default:
    for (int64_t i = 0; i < n; i++) {
      double v = kind == LG_R_MAXABS ? fabs((double)x[i]) : x[i];
      acc[i] = lg_r_comb(kind, acc[i], v);
    }
  }
}

/* ---- geometry ---------------------------------------------------------------------- */
typedef struct {
  const float *x;
  int nk, nr;
  int64_t ks[LG_MAXDIM], kst[LG_MAXDIM];   /* kept dims (sizes, input strides) */
  int64_t rs[LG_MAXDIM], rst[LG_MAXDIM];   /* reduced dims */
  int64_t nout, rcount;                    /* outputs, elements reduced per output */
  int64_t len, lst, np, items;             /* rows walk: run length and stride, pieces per
                                            * run, pieces per output */
} lg_rg;

static void lg_rg_push(int *n, int64_t *sz, int64_t *st, int64_t size, int64_t stride)
{
  if (*n > 0 && st[*n - 1] == size * stride) {   /* chains with the previous dim: merge */
    sz[*n - 1] *= size;
    st[*n - 1] = stride;
    return;
  }
  sz[*n] = size;
  st[*n] = stride;
  (*n)++;
}

/* t: any shape; mask: bit d set = reduce dim d */
static void lg_rg_init(lg_rg *g, const lg_tensor *t, unsigned mask)
{
  g->x = lg_data(t);
  g->nk = g->nr = 0;
  g->nout = g->rcount = 1;
  for (int d = 0; d < t->ndim; d++) {
    int64_t sz = t->shape[d];
    if (mask >> d & 1) {
      g->rcount *= sz;
      if (sz != 1) lg_rg_push(&g->nr, g->rs, g->rst, sz, t->stride[d]);
    } else {
      g->nout *= sz;
      if (sz != 1) lg_rg_push(&g->nk, g->ks, g->kst, sz, t->stride[d]);
    }
  }
  g->len = g->nr ? g->rs[g->nr - 1] : 1;
  g->lst = g->nr ? g->rst[g->nr - 1] : 0;
  g->np = g->len ? (g->len + LG_CHUNK - 1) / LG_CHUNK : 0;
  g->items = g->len ? g->rcount / g->len * g->np : 0;
}

/* Offset of row-major index j over n dims of sizes sz and strides st. */
static inline int64_t lg_off(const int64_t *sz, const int64_t *st, int n, int64_t j)
{
  int64_t off = 0;
  for (int d = n - 1; d >= 0; d--) {
    off += (j % sz[d]) * st[d];
    j /= sz[d];
  }
  return off;
}

/* Offset of piece w's run within an output's elements (rows walk): the run
 * index r = w / np past the innermost reduced dim, and lo into the run. The
 * common shapes (one outer reduced dim, runs of one piece) need no division. */
static inline int64_t lg_piece_off(const lg_rg *g, int64_t w)
{
  int nouter = g->nr > 0 ? g->nr - 1 : 0;
  if (g->np == 1)
    return nouter == 1 ? w * g->rst[0] : lg_off(g->rs, g->rst, nouter, w);
  int64_t r = w / g->np, lo = (w % g->np) * LG_CHUNK;
  return lg_off(g->rs, g->rst, nouter, r) + lo * g->lst;
}

/* LG_R_SUM over unit-stride runs: every element added in double as the
 * generic walk does, but 16 lanes wide (two vectors of doubles) carried
 * across all the pieces, one horizontal sum at the end. The bias gradient
 * of a conv (sum over N, H, W of (N,C,7,7): 64 runs of 49 per output)
 * spent most of its time on per-run setup and scalar conversions. */
#define LG_SUM_AHEAD 4
typedef float lg_v8u __attribute__((vector_size(32), aligned(4)));   /* unaligned */
typedef double lg_v8d __attribute__((vector_size(64)));

LG_CLONES
static double lg_rg_sum_unit(const lg_rg *g, int64_t j, int64_t w0, int64_t w1)
{
  const float *base = g->x + lg_off(g->ks, g->kst, g->nk, j);
  lg_v8d a0 = {0}, a1 = {0};   /* two vectors, not one of 16: those went through memory */
  double tail = 0;
  /* short runs far apart (a channel of (N,C,H,W)): the prefetcher does not
   * follow, so ask for the run LG_SUM_AHEAD on */
  int ahead = g->np == 1 && g->len <= 1024;
  for (int64_t w = w0; w < w1; w++) {
    if (ahead && w + LG_SUM_AHEAD < w1) {
      const float *nx = base + lg_piece_off(g, w + LG_SUM_AHEAD);
      for (int64_t i = 0; i < g->len; i += 16) __builtin_prefetch(nx + i);
    }
    const float *x = base + lg_piece_off(g, w);
    int64_t lo = g->np == 1 ? 0 : (w % g->np) * LG_CHUNK;
    int64_t n = g->len - lo < LG_CHUNK ? g->len - lo : LG_CHUNK, i = 0;
    for (; i + 16 <= n; i += 16) {
      a0 += __builtin_convertvector(*(const lg_v8u *)(x + i), lg_v8d);
      a1 += __builtin_convertvector(*(const lg_v8u *)(x + i + 8), lg_v8d);
    }
    for (; i < n; i++) tail += x[i];
  }
  double t = 0;
  for (int k = 0; k < 8; k++) t += a0[k] + a1[k];
  return t + tail;
}

/* Pieces [w0, w1) of output j's reduced elements (rows walk). */
static double lg_rg_range(const lg_rg *g, int kind, int64_t j, const double *s, double p,
                          int64_t w0, int64_t w1)
{
  if (kind == LG_R_SUM && g->lst == 1) return lg_rg_sum_unit(g, j, w0, w1);
  const float *base = g->x + lg_off(g->ks, g->kst, g->nk, j);
  double sj = s ? s[j] : 0, acc = lg_r_init(kind);
  int nouter = g->nr > 0 ? g->nr - 1 : 0;
  for (int64_t w = w0; w < w1; w++) {
    int64_t r = w / g->np, lo = (w % g->np) * LG_CHUNK;
    int64_t n = g->len - lo < LG_CHUNK ? g->len - lo : LG_CHUNK;
    const float *x = base + lg_off(g->rs, g->rst, nouter, r) + lo * g->lst;
    acc = lg_r_comb(kind, acc, lg_row(kind, x, g->lst, n, sj, p));
  }
  return acc;
}

static int lg_rows(const lg_rg *g, int kind, const double *s, double p, double *res, int par)
{
  int64_t nout = g->nout, per = g->len < LG_CHUNK ? g->len : LG_CHUNK;
  int64_t gsz = LG_CHUNK / per > 1 ? LG_CHUNK / per : 1;   /* pieces per slice */
  /* Few outputs over many elements: slice each output's pieces so that
   * threads share one output; the slicing depends on the shape only. */
  int64_t ngr = par && nout < 16 ? (g->items + gsz - 1) / gsz : 1;
  if (ngr <= 1) {
    if (!par) {
      for (int64_t j = 0; j < nout; j++) res[j] = lg_rg_range(g, kind, j, s, p, 0, g->items);
      return 0;
    }
    #pragma omp parallel for
    for (int64_t j = 0; j < nout; j++) res[j] = lg_rg_range(g, kind, j, s, p, 0, g->items);
    return 0;
  }
  double *part = malloc(sizeof(double) * nout * ngr);
  if (!part) return lg_error("reduce: out of memory"), -1;
  #pragma omp parallel for
  for (int64_t w = 0; w < nout * ngr; w++) {
    int64_t j = w / ngr, lo = (w % ngr) * gsz, hi = lo + gsz < g->items ? lo + gsz : g->items;
    part[w] = lg_rg_range(g, kind, j, s, p, lo, hi);
  }
  for (int64_t j = 0; j < nout; j++) {
    double acc = lg_r_init(kind);
    for (int64_t q = 0; q < ngr; q++) acc = lg_r_comb(kind, acc, part[j * ngr + q]);
    res[j] = acc;
  }
  free(part);
  return 0;
}

/* Cols walk, one work item: column block `it` (of A x nb) over reduced rows [r0, r1). */
static void lg_cols_item(const lg_rg *g, int kind, const double *s, double p, int64_t it,
                         int64_t r0, int64_t r1, double *dst)
{
  int64_t B = g->ks[g->nk - 1], nb = (B + LG_COLS - 1) / LG_COLS;
  int64_t a = it / nb, c0 = (it % nb) * LG_COLS, bl = B - c0 < LG_COLS ? B - c0 : LG_COLS;
  double acc[LG_COLS];
  for (int64_t c = 0; c < bl; c++) acc[c] = lg_r_init(kind);
  const float *base = g->x + lg_off(g->ks, g->kst, g->nk - 1, a) + c0;
  const double *sa = s ? s + a * B + c0 : NULL;
  for (int64_t r = r0; r < r1; r++)
    lg_cols(kind, base + lg_off(g->rs, g->rst, g->nr, r), bl, acc, sa, p);
  memcpy(dst, acc, sizeof(double) * bl);
}

static int lg_colsw(const lg_rg *g, int kind, const double *s, double p, double *res, int par)
{
  int64_t B = g->ks[g->nk - 1], A = g->nout / B, nb = (B + LG_COLS - 1) / LG_COLS;
  int64_t items = A * nb, nrow = g->rcount;
  /* Few column blocks over many rows: slice the rows too (partials combined
   * in order afterwards). */
  int64_t rgr = 1;
  if (par && items < 8) {
    rgr = nrow / 64;
    if (rgr > 16) rgr = 16;
    if (rgr < 1) rgr = 1;
  }
  if (rgr == 1) {
    if (!par) {
      for (int64_t it = 0; it < items; it++)
        lg_cols_item(g, kind, s, p, it, 0, nrow, res + it / nb * B + it % nb * LG_COLS);
      return 0;
    }
    #pragma omp parallel for
    for (int64_t it = 0; it < items; it++)
      lg_cols_item(g, kind, s, p, it, 0, nrow, res + it / nb * B + it % nb * LG_COLS);
    return 0;
  }
  double *part = malloc(sizeof(double) * items * rgr * LG_COLS);
  if (!part) return lg_error("reduce: out of memory"), -1;
  #pragma omp parallel for
  for (int64_t w = 0; w < items * rgr; w++) {
    int64_t it = w / rgr, q = w % rgr;
    lg_cols_item(g, kind, s, p, it, nrow * q / rgr, nrow * (q + 1) / rgr, part + w * LG_COLS);
  }
  for (int64_t it = 0; it < items; it++) {
    int64_t c0 = it % nb * LG_COLS, bl = B - c0 < LG_COLS ? B - c0 : LG_COLS;
    double *dst = res + it / nb * B + c0;
    for (int64_t c = 0; c < bl; c++) {
      double acc = lg_r_init(kind);
      for (int64_t q = 0; q < rgr; q++) acc = lg_r_comb(kind, acc, part[(it * rgr + q) * LG_COLS + c]);
      dst[c] = acc;
    }
  }
  free(part);
  return 0;
}

/* res[j] = the reduction of kind over output j's elements (s: per-output
 * parameter of SQDEV/SUMEXP, p: exponent of SUMPOW). 0 or -1 with error. */
static int lg_rg_run(const lg_rg *g, int kind, const double *s, double p, double *res)
{
  if (g->nout == 0) return 0;
  if (g->rcount == 0) {
    for (int64_t j = 0; j < g->nout; j++) res[j] = lg_r_init(kind);
    return 0;
  }
  int par = g->nout * g->rcount > LG_OMP_MIN;
  if (g->nk >= 1 && g->kst[g->nk - 1] == 1 && g->ks[g->nk - 1] >= 16 && g->nr >= 1)
    return lg_colsw(g, kind, s, p, res, par);
  return lg_rows(g, kind, s, p, res, par);
}

/* ---- dims, output shape, recording ------------------------------------------------------- */
typedef struct {
  unsigned mask;                /* reduced dims of the input */
  int keepdim, ndim;
  int64_t shape[LG_MAXDIM];     /* output shape */
  lg_rg g;
  lg_tensor *out;               /* fresh contiguous output */
  double *res;                  /* nout doubles */
} lg_red;

/* Check dims (nd == 0: all), build the geometry, allocate the output and a
 * result buffer. A 0-dim input accepts dim 0 / -1 and reduces nothing. */
static int lg_red_begin(lg_red *R, const char *op, const lg_tensor *t, int nd, const int *dims,
                        int keepdim)
{
  char buf[128];
  unsigned mask = 0;
  memset(R, 0, sizeof *R);
  if (nd < 0 || nd > LG_MAXDIM) {
    lg_error("%s: %d dims given (input %s)", op, nd, lg_shape_str(t, buf, sizeof buf));
    return -1;
  }
  if (nd == 0) mask = (1u << t->ndim) - 1;
  for (int k = 0; k < nd; k++) {
    int lim = t->ndim ? t->ndim : 1;
    int d = dims[k] < 0 ? dims[k] + lim : dims[k];
    if (d < 0 || d >= lim) {
      lg_error("%s: dim %d out of range for input %s", op, dims[k], lg_shape_str(t, buf, sizeof buf));
      return -1;
    }
    if (mask >> d & 1) {
      lg_error("%s: dim %d given twice (input %s)", op, dims[k], lg_shape_str(t, buf, sizeof buf));
      return -1;
    }
    mask |= 1u << d;
  }
  if (t->ndim == 0) mask = 0;
  R->mask = mask;
  R->keepdim = keepdim ? 1 : 0;
  for (int d = 0; d < t->ndim; d++) {
    if (!(mask >> d & 1)) R->shape[R->ndim++] = t->shape[d];
    else if (keepdim) R->shape[R->ndim++] = 1;
  }
  lg_rg_init(&R->g, t, mask);
  if (!(R->out = lg_empty(R->ndim, R->shape))) return -1;
  R->res = malloc(sizeof(double) * (R->g.nout ? R->g.nout : 1));
  if (!R->res) {
    lg_release(R->out);
    lg_error("%s: out of memory", op);
    return -1;
  }
  return 0;
}

/* Write res (after f, when given) to the output; returns the output. */
static lg_tensor *lg_red_finish(lg_red *R)
{
  float *o = lg_data(R->out);
  for (int64_t j = 0; j < R->g.nout; j++) o[j] = (float)R->res[j];
  free(R->res);
  return R->out;
}

static void lg_red_fail(lg_red *R)
{
  free(R->res);
  lg_release(R->out);
}

/* A reduction node's parameters: the mask of reduced dims, keepdim, var's and
 * std's correction, norm's p; its saved slots, the input x and output y. */
typedef struct { int64_t mask, keepdim, correction; double p; } lg_red_params;
enum { LG_SV_X, LG_SV_Y };

/* Record a reduction node (input t) saving the input (save_in) and, after
 * it, the output (save_out), with var's correction and norm's p. */
static lg_tensor *lg_red_record_p(int op, lg_tensor *out, lg_tensor *t, const lg_red *R,
                                  int save_in, int save_out, int correction, double p)
{
  if (!out || !lg_should_record(1, &t)) return out;
  lg_node *nd = lg_record(op, out, 1, &t, save_in + save_out);
  if (!nd) { lg_release(out); return NULL; }
  if (save_in) lg_save(nd, LG_SV_X, t);
  if (save_out) lg_save_output(nd, LG_SV_Y, out);
  lg_red_params rp = {R->mask, R->keepdim, correction, p};
  lg_params_put(nd, rp);
  return out;
}
static lg_tensor *lg_red_record(int op, lg_tensor *out, lg_tensor *t, const lg_red *R,
                                int save_in, int save_out)
{
  return lg_red_record_p(op, out, t, R, save_in, save_out, 0, 0);
}

/* ---- the ops ---------------------------------------------------------------------------------- */
/* t: any shape -> the reduced shape (reduced dims dropped, or 1 with keepdim) */
lg_tensor *lg_sum(lg_tensor *t, int nd, const int *dims, int keepdim)
{
  lg_red R;
  if (lg_red_begin(&R, "sum", t, nd, dims, keepdim)) return NULL;
  if (lg_rg_run(&R.g, LG_R_SUM, NULL, 0, R.res)) { lg_red_fail(&R); return NULL; }
  return lg_red_record(LG_OP_SUM, lg_red_finish(&R), t, &R, 0, 0);
}

lg_tensor *lg_mean(lg_tensor *t, int nd, const int *dims, int keepdim)
{
  lg_red R;
  if (lg_red_begin(&R, "mean", t, nd, dims, keepdim)) return NULL;
  if (lg_rg_run(&R.g, LG_R_SUM, NULL, 0, R.res)) { lg_red_fail(&R); return NULL; }
  for (int64_t j = 0; j < R.g.nout; j++) R.res[j] /= (double)R.g.rcount;   /* empty: NaN */
  return lg_red_record(LG_OP_MEAN, lg_red_finish(&R), t, &R, 0, 0);
}

/* Two passes in double: the mean, then squared deviations from it, divided
 * by N - correction (0 or less gives inf/NaN, like PyTorch). */
static lg_tensor *lg_var_op(const char *op, int opid, lg_tensor *t, int nd, const int *dims,
                            int correction, int keepdim, int take_sqrt)
{
  lg_red R;
  if (lg_red_begin(&R, op, t, nd, dims, keepdim)) return NULL;
  double *mean = malloc(sizeof(double) * (R.g.nout ? R.g.nout : 1));
  if (!mean) { lg_red_fail(&R); return lg_error("%s: out of memory", op); }
  if (lg_rg_run(&R.g, LG_R_SUM, NULL, 0, mean)) goto fail;
  for (int64_t j = 0; j < R.g.nout; j++) mean[j] /= (double)R.g.rcount;
  if (lg_rg_run(&R.g, LG_R_SQDEV, mean, 0, R.res)) goto fail;
  double den = (double)R.g.rcount - correction;
  if (den < 0) den = 0;
  for (int64_t j = 0; j < R.g.nout; j++) {
    R.res[j] = R.g.rcount ? R.res[j] / den : NAN;
    if (take_sqrt) R.res[j] = sqrt(R.res[j]);
  }
  free(mean);
  return lg_red_record_p(opid, lg_red_finish(&R), t, &R, 1, take_sqrt, correction, 0);
fail:
  free(mean);
  lg_red_fail(&R);
  return NULL;
}

lg_tensor *lg_var(lg_tensor *t, int nd, const int *dims, int correction, int keepdim)
{
  return lg_var_op("var", LG_OP_VAR, t, nd, dims, correction, keepdim, 0);
}

lg_tensor *lg_std(lg_tensor *t, int nd, const int *dims, int correction, int keepdim)
{
  return lg_var_op("std", LG_OP_STD, t, nd, dims, correction, keepdim, 1);
}

static lg_tensor *lg_minmax(const char *op, int opid, int kind, lg_tensor *t, int nd,
                            const int *dims, int keepdim)
{
  char buf[128];
  lg_red R;
  if (lg_red_begin(&R, op, t, nd, dims, keepdim)) return NULL;
  if (R.g.rcount == 0) {
    lg_red_fail(&R);
    return lg_error("%s: cannot reduce over an empty dim (input %s)", op,
                    lg_shape_str(t, buf, sizeof buf));
  }
  if (lg_rg_run(&R.g, kind, NULL, 0, R.res)) { lg_red_fail(&R); return NULL; }
  return lg_red_record(opid, lg_red_finish(&R), t, &R, 1, 1);
}

lg_tensor *lg_amax(lg_tensor *t, int nd, const int *dims, int keepdim)
{
  return lg_minmax("amax", LG_OP_AMAX, LG_R_MAX, t, nd, dims, keepdim);
}

lg_tensor *lg_amin(lg_tensor *t, int nd, const int *dims, int keepdim)
{
  return lg_minmax("amin", LG_OP_AMIN, LG_R_MIN, t, nd, dims, keepdim);
}

/* log(sum(exp(x))) = m + log(sum(exp(x - m))) with m the max: no overflow.
 * An infinite max is left out of the shift (all -inf gives -inf, +inf gives
 * +inf); an empty reduction gives -inf. */
lg_tensor *lg_logsumexp(lg_tensor *t, int nd, const int *dims, int keepdim)
{
  lg_red R;
  if (lg_red_begin(&R, "logsumexp", t, nd, dims, keepdim)) return NULL;
  double *m = malloc(sizeof(double) * (R.g.nout ? R.g.nout : 1));
  if (!m) { lg_red_fail(&R); return lg_error("logsumexp: out of memory"); }
  if (lg_rg_run(&R.g, LG_R_MAX, NULL, 0, m)) goto fail;
  for (int64_t j = 0; j < R.g.nout; j++) if (!isfinite(m[j])) m[j] = 0;
  if (lg_rg_run(&R.g, LG_R_SUMEXP, m, 0, R.res)) goto fail;
  for (int64_t j = 0; j < R.g.nout; j++) R.res[j] = m[j] + log(R.res[j]);
  free(m);
  return lg_red_record(LG_OP_LOGSUMEXP, lg_red_finish(&R), t, &R, 1, 1);
fail:
  free(m);
  lg_red_fail(&R);
  return NULL;
}

/* (sum |x|^p)^(1/p); p = 2, 1 and inf take direct paths. */
lg_tensor *lg_norm(lg_tensor *t, double p, int nd, const int *dims, int keepdim)
{
  char buf[128];
  if (!(p > 0))
    return lg_error("norm: p must be > 0, got %g (input %s)", p, lg_shape_str(t, buf, sizeof buf));
  lg_red R;
  if (lg_red_begin(&R, "norm", t, nd, dims, keepdim)) return NULL;
  int kind = p == 2 ? LG_R_SUMSQ : p == 1 ? LG_R_SUMABS : isinf(p) ? LG_R_MAXABS : LG_R_SUMPOW;
  if (lg_rg_run(&R.g, kind, NULL, p, R.res)) { lg_red_fail(&R); return NULL; }
  for (int64_t j = 0; j < R.g.nout; j++)
    R.res[j] = kind == LG_R_SUMSQ ? sqrt(R.res[j]) : kind == LG_R_SUMPOW ? pow(R.res[j], 1 / p) : R.res[j];
  return lg_red_record_p(LG_OP_NORM, lg_red_finish(&R), t, &R, 1, 1, 0, p);
}

lg_tensor *lg_prod(lg_tensor *t, int nd, const int *dims, int keepdim)
{
  lg_red R;
  if (lg_red_begin(&R, "prod", t, nd, dims, keepdim)) return NULL;
  if (lg_rg_run(&R.g, LG_R_PROD, NULL, 0, R.res)) { lg_red_fail(&R); return NULL; }
  return lg_red_record(LG_OP_PROD, lg_red_finish(&R), t, &R, 1, 1);
}

/* Index of the first max (min) along one dim; a NaN counts as the max (min)
 * and its first index wins, like PyTorch. */
static lg_tensor *lg_arg(const char *op, const lg_tensor *t, int dim, int keepdim, int is_max)
{
  char buf[128];
  lg_red R;
  if (lg_red_begin(&R, op, t, 1, &dim, keepdim)) return NULL;
  free(R.res);
  if (R.g.rcount == 0) {
    lg_release(R.out);
    return lg_error("%s: cannot take the %s of an empty dim (input %s)", op, op,
                    lg_shape_str(t, buf, sizeof buf));
  }
  const lg_rg *g = &R.g;
  float *o = lg_data(R.out);
  #pragma omp parallel for if (g->nout * g->rcount > LG_OMP_MIN)
  for (int64_t j = 0; j < g->nout; j++) {
    const float *x = g->x + lg_off(g->ks, g->kst, g->nk, j);
    int64_t bi = 0;
    float bv = x[0];
    if (bv == bv)
      for (int64_t i = 1; i < g->len; i++) {
        float v = x[i * g->lst];
        if (v != v) { bi = i; break; }
        if (is_max ? v > bv : v < bv) { bv = v; bi = i; }
      }
    o[j] = (float)bi;
  }
  return R.out;
}

lg_tensor *lg_argmax(const lg_tensor *t, int dim, int keepdim) { return lg_arg("argmax", t, dim, keepdim, 1); }
lg_tensor *lg_argmin(const lg_tensor *t, int dim, int keepdim) { return lg_arg("argmin", t, dim, keepdim, 0); }

/* t: a shape that `shape` broadcasts to -> shape: leading dims summed away,
 * dims where shape has 1 summed with keepdim. */
lg_tensor *lg_sum_to(lg_tensor *t, int ndim, const int64_t *shape)
{
  char b1[128], b2[128];
  int ok = ndim >= 0 && ndim <= t->ndim;
  int lead = t->ndim - ndim;
  unsigned mask = 0;
  for (int d = 0; ok && d < t->ndim; d++) {
    if (d < lead) { mask |= 1u << d; continue; }
    int64_t want = shape[d - lead], have = t->shape[d];
    if (want == have) continue;
    if (want != 1) ok = 0;
    else mask |= 1u << d;
  }
  if (!ok)
    return lg_error("sum_to: cannot sum %s to shape %s (the shape must broadcast to the input)",
                    lg_shape_str(t, b1, sizeof b1),
                    ndim >= 0 && ndim <= LG_MAXDIM ? lg_shape_str_raw(ndim, shape, b2, sizeof b2) : "?");
  if (mask == 0 && ndim == t->ndim) return lg_retain(t);   /* already that shape */
  lg_rg g;
  lg_rg_init(&g, t, mask);
  lg_tensor *out = lg_empty(ndim, shape);
  double *res = out ? malloc(sizeof(double) * (g.nout ? g.nout : 1)) : NULL;
  if (!res || lg_rg_run(&g, LG_R_SUM, NULL, 0, res)) {
    if (out && !res) lg_error("sum_to: out of memory");
    free(res);
    lg_release(out);
    return NULL;
  }
  float *o = lg_data(out);
  for (int64_t j = 0; j < g.nout; j++) o[j] = (float)res[j];
  free(res);
  if (lg_should_record(1, &t) && !lg_record(LG_OP_SUM_TO, out, 1, &t, 0)) {
    lg_release(out);
    return NULL;
  }
  return out;
}

/* ---- backward formulas ----------------------------------------------------------------------
 * lg_red_params on the node. g has the output's shape; fx_keep gives it the
 * input's rank (1 on reduced dims) so that it broadcasts against the input. */
static lg_tensor *fx_keep(lg_fx *s, const lg_node *n, lg_tensor *g)
{
  if (!g) return NULL;
  const lg_red_params *P = lg_params_get(n, lg_red_params);
  if (P->keepdim) return fx(s, lg_retain(g));
  int64_t sh[LG_MAXDIM];
  unsigned m = (unsigned)P->mask;
  for (int d = 0; d < n->in_ndim[0]; d++) sh[d] = (m >> d & 1) ? 1 : n->in_shape[0][d];
  return fx(s, lg_reshape(g, n->in_ndim[0], sh));
}

static lg_tensor *fx_expand_in(lg_fx *s, const lg_node *n, lg_tensor *a)
{
  return a ? fx(s, lg_expand(a, n->in_ndim[0], n->in_shape[0])) : NULL;
}

/* Elements reduced into each output. */
static int64_t lg_bw_count(const lg_node *n)
{
  int64_t c = 1;
  for (int d = 0; d < n->in_ndim[0]; d++)
    if (lg_params_get(n, lg_red_params)->mask >> d & 1) c *= n->in_shape[0][d];
  return c;
}

/* The node's reduced dims as a list for lg_sum/lg_mean (with keepdim). */
static lg_tensor *fx_sum_keep(lg_fx *s, const lg_node *n, lg_tensor *a, int mean)
{
  int dims[LG_MAXDIM], nd = 0;
  if (!a) return NULL;
  for (int d = 0; d < n->in_ndim[0]; d++)
    if (lg_params_get(n, lg_red_params)->mask >> d & 1) dims[nd++] = d;
  if (nd == 0) return fx(s, lg_retain(a));   /* nothing reduced */
  return fx(s, mean ? lg_mean(a, nd, dims, 1) : lg_sum(a, nd, dims, 1));
}

static int lg_bw_finish(lg_fx *s, lg_tensor *r, lg_tensor **gin)
{
  gin[0] = fx_out(r);
  fx_free(s);
  return gin[0] ? 0 : -1;
}

int lg_bw_sum(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  return lg_bw_finish(&s, fx_expand_in(&s, n, fx_keep(&s, n, g)), gin);
}

int lg_bw_sum_to(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (n->needs[0] && !(gin[0] = lg_expand(g, n->in_ndim[0], n->in_shape[0]))) return -1;
  return 0;
}

int lg_bw_mean(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  float inv = (float)(1.0 / (double)lg_bw_count(n));
  return lg_bw_finish(&s, fx_expand_in(&s, n, fx_muls(&s, fx_keep(&s, n, g), inv)), gin);
}

/* var: g * 2(x - mean)/(N - c) */
int lg_bw_var(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  lg_tensor *x = fx(&s, lg_saved(n, LG_SV_X));
  double den = (double)lg_bw_count(n) - lg_params_get(n, lg_red_params)->correction;
  lg_tensor *d = fx_sub(&s, x, fx_sum_keep(&s, n, x, 1));
  return lg_bw_finish(&s, fx_mul(&s, fx_keep(&s, n, g), fx_muls(&s, d, (float)(2 / den))), gin);
}

/* std: g * (x - mean)/((N - c) y), 0 where y == 0 (the masked entries divide
 * by 1 so that nothing infinite hides behind the mask) */
int lg_bw_std(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  lg_tensor *x = fx(&s, lg_saved(n, LG_SV_X)), *yk = fx_keep(&s, n, fx(&s, lg_saved(n, LG_SV_Y)));
  double den = (double)lg_bw_count(n) - lg_params_get(n, lg_red_params)->correction;
  lg_tensor *z = fx_eqs(&s, yk, 0), *ys = fx_where(&s, z, fx_scalar(&s, 1), yk);
  lg_tensor *w = fx_div(&s, fx_keep(&s, n, g), fx_muls(&s, ys, (float)den));
  w = fx_where(&s, z, fx_scalar(&s, 0), w);
  lg_tensor *d = fx_sub(&s, x, fx_sum_keep(&s, n, x, 1));
  return lg_bw_finish(&s, fx_mul(&s, d, w), gin);
}

/* amax/amin: g shared equally among the elements equal to the result */
static int lg_bw_minmax(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  lg_tensor *x = fx(&s, lg_saved(n, LG_SV_X)), *yk = fx_keep(&s, n, fx(&s, lg_saved(n, LG_SV_Y)));
  lg_tensor *mask = fx_eq(&s, x, yk);   /* masks record nothing */
  lg_tensor *w = fx_div(&s, mask, fx_sum_keep(&s, n, mask, 0));
  return lg_bw_finish(&s, fx_mul(&s, fx_keep(&s, n, g), w), gin);
}
int lg_bw_amax(lg_node *n, lg_tensor *g, lg_tensor **gin) { return lg_bw_minmax(n, g, gin); }
int lg_bw_amin(lg_node *n, lg_tensor *g, lg_tensor **gin) { return lg_bw_minmax(n, g, gin); }

/* logsumexp: g * exp(x - y) (the softmax) */
int lg_bw_logsumexp(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  lg_tensor *x = fx(&s, lg_saved(n, LG_SV_X)), *yk = fx_keep(&s, n, fx(&s, lg_saved(n, LG_SV_Y)));
  return lg_bw_finish(&s, fx_mul(&s, fx_keep(&s, n, g), fx_exp(&s, fx_sub(&s, x, yk))), gin);
}

/* norm: g * sign(x) |x|^(p-1) / y^(p-1), 0 where y == 0; p = 2 is g*x/y,
 * p = 1 is g*sign(x), p = inf shares g among the largest |x| like amax. */
int lg_bw_norm(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  double p = lg_params_get(n, lg_red_params)->p;
  lg_tensor *x = fx(&s, lg_saved(n, LG_SV_X)), *yk = fx_keep(&s, n, fx(&s, lg_saved(n, LG_SV_Y)));
  lg_tensor *gk = fx_keep(&s, n, g), *r;
  if (p == 1) {
    r = fx_mul(&s, gk, fx_sign(&s, x));
  } else if (isinf(p)) {
    lg_tensor *ax = x ? fx(&s, lg_pw_unary(LG_U_ABS, x, 0, 0)) : NULL;   /* mask only */
    lg_tensor *mask = fx_eq(&s, ax, yk);
    lg_tensor *w = fx_div(&s, fx_mul(&s, mask, fx_sign(&s, x)), fx_sum_keep(&s, n, mask, 0));
    r = fx_mul(&s, gk, w);
  } else {
    lg_tensor *one = fx_scalar(&s, 1), *zero = fx_scalar(&s, 0);
    lg_tensor *zy = fx_eqs(&s, yk, 0), *ysafe = fx_where(&s, zy, one, yk);
    if (p == 2) {
      lg_tensor *w = fx_where(&s, zy, zero, fx_div(&s, gk, ysafe));
      r = fx_mul(&s, x, w);
    } else {
      /* |x|^(p-1) from 1 where x == 0: sign(x) = 0 there, and no inf for p < 1 */
      lg_tensor *axs = fx_where(&s, fx_eqs(&s, x, 0), one, fx_abs(&s, x));
      lg_tensor *num = fx_mul(&s, fx_sign(&s, x), fx_pows(&s, axs, (float)(p - 1)));
      lg_tensor *w = fx_where(&s, zy, zero, fx_div(&s, gk, fx_pows(&s, ysafe, (float)(p - 1))));
      r = fx_mul(&s, num, w);
    }
  }
  return lg_bw_finish(&s, r, gin);
}

/* prod: g * y / x. Assumes no zero in x: a zero entry gives inf/NaN here
 * (PyTorch's zero-aware formula is not reproduced). */
int lg_bw_prod(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  lg_tensor *x = fx(&s, lg_saved(n, LG_SV_X)), *yk = fx_keep(&s, n, fx(&s, lg_saved(n, LG_SV_Y)));
  return lg_bw_finish(&s, fx_div(&s, fx_mul(&s, fx_keep(&s, n, g), yk), x), gin);
}
