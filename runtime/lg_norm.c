/* lg_norm.c: batch_norm, layer_norm and instance_norm.
 *
 * Batch norm in training mode is one fused op: statistics, normalisation
 * and the running-statistics update in one pass per channel, and a fused
 * backward kernel when no graph of the gradient is wanted. With
 * create_graph on, the formula is instead written with public ops (mean,
 * rsqrt, mul, ...) recomputing the statistics from x, so gradients of
 * gradients flow through them. Eval mode is a per-channel affine map built
 * from ops. Layer norm has a fused forward and an ops backward; instance
 * norm is batch norm on the (1, N*C, rest) view plus an affine map.
 *
 * Shapes: x (N,C,...) viewed as (N,C,S) with S the product of the rest. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_ops_private.h"
#include "lg_simd.h"

#define LG_OMP_MIN LG_PAR_MIN   /* lg_tensor.h: shorter loops run on one thread */

/* A norm node's parameters (eps; layer_norm's number k of normalised
 * dims; whether there is a weight) and saved slots (the input, the weight,
 * and batch_norm's per-channel mean and 1/std). */
typedef struct { float eps; int k, has_weight; } lg_norm_params;
enum { LG_SV_X, LG_SV_W, LG_SV_MEAN, LG_SV_INV };

/* ---- kernels -------------------------------------------------------------------- */
/* Row sums with 16 float lanes, so the loops vectorise without reassociation
 * flags (a single double accumulator is one long dependency chain). The
 * lanes of each row are added into 16 double lanes that run over all the
 * rows of a channel, reduced once per channel: with short rows (7x7 maps,
 * 49 floats) a per-row horizontal sum in double cost more than the row. */
#define LG_LANES 16
/* GCC vector types (lowered to what the target has): the lanes stay in
 * registers, where arrays of lanes did not */
typedef float lg_v16 __attribute__((vector_size(4 * LG_LANES)));
typedef float lg_v16u __attribute__((vector_size(4 * LG_LANES), aligned(4)));   /* unaligned */
typedef double lg_v16d __attribute__((vector_size(8 * LG_LANES)));

/* *acc += the lanes of the sum of p[0..n) by 16s; returns the sum of the
 * tail past the last whole 16 */
static inline double lg_fsum(const float *restrict p, int64_t n, lg_v16d *acc)
{
  lg_v16 a = {0};
  int64_t i = 0;
  for (; i + LG_LANES <= n; i += LG_LANES) a += *(const lg_v16u *)(p + i);
  *acc += __builtin_convertvector(a, lg_v16d);
  double s = 0;
  for (; i < n; i++) s += p[i];
  return s;
}

/* as lg_fsum for (p[i] - m)^2 */
static inline double lg_fsqdev(const float *restrict p, int64_t n, float m, lg_v16d *acc)
{
  lg_v16 a = {0};
  int64_t i = 0;
  for (; i + LG_LANES <= n; i += LG_LANES) {
    lg_v16 d = *(const lg_v16u *)(p + i) - m;
    a += d * d;
  }
  *acc += __builtin_convertvector(a, lg_v16d);
  double s = 0;
  for (; i < n; i++) { double d = p[i] - m; s += d * d; }
  return s;
}

/* as lg_fsum for g[i] (into ag, *sg) and g[i] * (x[i] - m) (into ad, *sgd) */
static inline void lg_fsum_gdev(const float *restrict g, const float *restrict x, int64_t n,
                                float m, lg_v16d *ag, lg_v16d *ad, double *sg, double *sgd)
{
  lg_v16 a = {0}, b = {0};
  int64_t i = 0;
  for (; i + LG_LANES <= n; i += LG_LANES) {
    lg_v16 gv = *(const lg_v16u *)(g + i);
    a += gv;
    b += gv * (*(const lg_v16u *)(x + i) - m);
  }
  *ag += __builtin_convertvector(a, lg_v16d);
  *ad += __builtin_convertvector(b, lg_v16d);
  for (; i < n; i++) { *sg += g[i]; *sgd += (double)g[i] * (x[i] - m); }
}

static inline double lg_lanes_total(lg_v16d acc, double tail)
{
  double s = 0;
  for (int j = 0; j < LG_LANES; j++) s += acc[j];
  return s + tail;
}

/* The rows of one channel lie C*S floats apart, a stride the hardware
 * prefetcher does not follow across pages: the first pass over a channel
 * asks for the row LG_BN_AHEAD rows on, or every row waits for memory. */
#define LG_BN_AHEAD 4

static inline void lg_prefetch_row(const float *p, int64_t n)
{
  for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i);
}

/* The per-channel (and per-block) kernels are LG_CLONES (lg_simd.h). */

/* Channel c of lg_bn_forward. */
LG_CLONES
static void lg_bn_forward_chan(const float *x, const float *w, const float *b, float *y,
                               float *mean, float *invstd, double *var, int64_t N, int64_t C,
                               int64_t S, float eps, int64_t c)
{
  const double M = (double)N * S;
  lg_v16d acc = {0};
  double t = 0;
  for (int64_t n = 0; n < N; n++) {
    if (n + LG_BN_AHEAD < N) lg_prefetch_row(x + ((n + LG_BN_AHEAD) * C + c) * S, S);
    t += lg_fsum(x + (n * C + c) * S, S, &acc);
  }
  double mu = lg_lanes_total(acc, t) / M;
  const float m = (float)mu;
  lg_v16d qacc = {0};
  double qt = 0;
  for (int64_t n = 0; n < N; n++)   /* second pass: no cancellation */
    qt += lg_fsqdev(x + (n * C + c) * S, S, m, &qacc);
  double q = lg_lanes_total(qacc, qt);
  /* the deviations were taken from the float mean: correct for its rounding */
  double dm = mu - m;
  double v = q / M - dm * dm, is = 1.0 / sqrt((v > 0 ? v : 0) + eps);
  if (v < 0) v = 0;
  mean[c] = m;
  invstd[c] = (float)is;
  var[c] = v;
  /* (x - mean) * scale + b: subtracting first keeps the digits that
   * x * scale + (b - mean * scale) loses when |mean| >> std */
  float sc = (float)is * (w ? w[c] : 1), sh = b ? b[c] : 0;
  for (int64_t n = 0; n < N; n++) {
    const float *p = x + (n * C + c) * S;
    float *o = y + (n * C + c) * S;
    for (int64_t i = 0; i < S; i++) o[i] = (p[i] - m) * sc + sh;
  }
}

/* x: (N,C,S) -> y: (N,C,S), mean, invstd, var (biased): (C). w, b: (C) or NULL. */
static void lg_bn_forward(const float *x, const float *w, const float *b, float *y, float *mean,
                          float *invstd, double *var, int64_t N, int64_t C, int64_t S, float eps)
{
  #pragma omp parallel for if (N * C * S > LG_OMP_MIN)
  for (int64_t c = 0; c < C; c++)
    lg_bn_forward_chan(x, w, b, y, mean, invstd, var, N, C, S, eps, c);
}

/* Channel c of lg_bn_backward. */
LG_CLONES
static void lg_bn_backward_chan(const float *g, const float *x, const float *mean,
                                const float *invstd, const float *w, float *gx, float *gw,
                                float *gb, int64_t N, int64_t C, int64_t S, int64_t c)
{
  const double M = (double)N * S;
  lg_v16d ag = {0}, ad = {0};
  double tg = 0, td = 0;
  const float mu = mean[c], is = invstd[c];
  for (int64_t n = 0; n < N; n++) {
    if (n + LG_BN_AHEAD < N) {
      lg_prefetch_row(g + ((n + LG_BN_AHEAD) * C + c) * S, S);
      lg_prefetch_row(x + ((n + LG_BN_AHEAD) * C + c) * S, S);
    }
    lg_fsum_gdev(g + (n * C + c) * S, x + (n * C + c) * S, S, mu, &ag, &ad, &tg, &td);
  }
  double sg = lg_lanes_total(ag, tg), sgd = lg_lanes_total(ad, td);
  double sgx = sgd * is;
  if (gw) gw[c] = (float)sgx;
  if (gb) gb[c] = (float)sg;
  if (!gx) return;
  float k = is * (w ? w[c] : 1), mg = (float)(sg / M), mgx = (float)(sgx / M);
  for (int64_t n = 0; n < N; n++) {
    const float *gp = g + (n * C + c) * S, *xp = x + (n * C + c) * S;
    float *o = gx + (n * C + c) * S;
    for (int64_t i = 0; i < S; i++) o[i] = k * (gp[i] - mg - (xp[i] - mu) * is * mgx);
  }
}

/* g, x: (N,C,S); mean, invstd, w: (C) -> gx (N,C,S) or NULL, gw, gb (C) or NULL:
 * gx = w*invstd * (g - mean(g) - xhat * mean(g*xhat)), gw = sum g*xhat, gb = sum g */
static void lg_bn_backward(const float *g, const float *x, const float *mean,
                           const float *invstd, const float *w, float *gx, float *gw, float *gb,
                           int64_t N, int64_t C, int64_t S)
{
  #pragma omp parallel for if (N * C * S > LG_OMP_MIN)
  for (int64_t c = 0; c < C; c++)
    lg_bn_backward_chan(g, x, mean, invstd, w, gx, gw, gb, N, C, S, c);
}

/* The S == 1 case (BatchNorm1d on (N,C)): channels are the contiguous dim,
 * so the per-channel loops above would walk columns (one cache line per
 * element). These walk rows instead, over blocks of LG_BN_CB channels
 * (threads take blocks), with the same two-pass double statistics. */
#define LG_BN_CB 256

/* Channel block k of lg_bn_forward_rows. */
LG_CLONES
static void lg_bn_forward_blk(const float *x, const float *w, const float *b, float *y,
                              float *mean, float *invstd, double *var, int64_t N, int64_t C,
                              float eps, int64_t k)
{
  const int64_t c0 = k * LG_BN_CB, cb = C - c0 < LG_BN_CB ? C - c0 : LG_BN_CB;
  double s[LG_BN_CB], q[LG_BN_CB];
  float mu[LG_BN_CB], sc[LG_BN_CB], sh[LG_BN_CB];
  for (int64_t j = 0; j < cb; j++) s[j] = q[j] = 0;
  for (int64_t n = 0; n < N; n++) {
    const float *p = x + n * C + c0;
    for (int64_t j = 0; j < cb; j++) s[j] += p[j];
  }
  for (int64_t j = 0; j < cb; j++) s[j] /= (double)N;   /* now the mean */
  for (int64_t n = 0; n < N; n++) {                      /* second pass: no cancellation */
    const float *p = x + n * C + c0;
    for (int64_t j = 0; j < cb; j++) { double d = p[j] - s[j]; q[j] += d * d; }
  }
  for (int64_t j = 0; j < cb; j++) {
    double v = q[j] / (double)N, is = 1.0 / sqrt(v + eps);
    int64_t c = c0 + j;
    mean[c] = mu[j] = (float)s[j];
    invstd[c] = (float)is;
    var[c] = v;
    sc[j] = (float)is * (w ? w[c] : 1);
    sh[j] = b ? b[c] : 0;   /* (x - mean) * scale + b, as lg_bn_forward */
  }
  for (int64_t n = 0; n < N; n++) {
    const float *p = x + n * C + c0;
    float *o = y + n * C + c0;
    for (int64_t j = 0; j < cb; j++) o[j] = (p[j] - mu[j]) * sc[j] + sh[j];
  }
}

/* x: (N,C) -> y: (N,C), mean, invstd, var (biased): (C). w, b: (C) or NULL. */
static void lg_bn_forward_rows(const float *x, const float *w, const float *b, float *y,
                               float *mean, float *invstd, double *var, int64_t N, int64_t C,
                               float eps)
{
  const int64_t nblk = (C + LG_BN_CB - 1) / LG_BN_CB;
  #pragma omp parallel for if (N * C > LG_OMP_MIN && nblk > 1)
  for (int64_t k = 0; k < nblk; k++) lg_bn_forward_blk(x, w, b, y, mean, invstd, var, N, C, eps, k);
}

/* Channel block k of lg_bn_backward_rows. */
LG_CLONES
static void lg_bn_backward_blk(const float *g, const float *x, const float *mean,
                               const float *invstd, const float *w, float *gx, float *gw,
                               float *gb, int64_t N, int64_t C, int64_t k)
{
  const int64_t c0 = k * LG_BN_CB, cb = C - c0 < LG_BN_CB ? C - c0 : LG_BN_CB;
  double sg[LG_BN_CB], sgx[LG_BN_CB];
  float kk[LG_BN_CB], mg[LG_BN_CB], mgx[LG_BN_CB];
  const float *mu = mean + c0, *is = invstd + c0;
  for (int64_t j = 0; j < cb; j++) sg[j] = sgx[j] = 0;
  for (int64_t n = 0; n < N; n++) {
    const float *gp = g + n * C + c0, *xp = x + n * C + c0;
    for (int64_t j = 0; j < cb; j++) {
      sg[j] += gp[j];
      sgx[j] += gp[j] * ((xp[j] - mu[j]) * is[j]);
    }
  }
  for (int64_t j = 0; j < cb; j++) {
    if (gw) gw[c0 + j] = (float)sgx[j];
    if (gb) gb[c0 + j] = (float)sg[j];
    kk[j] = is[j] * (w ? w[c0 + j] : 1);
    mg[j] = (float)(sg[j] / (double)N);
    mgx[j] = (float)(sgx[j] / (double)N);
  }
  if (!gx) return;
  for (int64_t n = 0; n < N; n++) {
    const float *gp = g + n * C + c0, *xp = x + n * C + c0;
    float *o = gx + n * C + c0;
    for (int64_t j = 0; j < cb; j++)
      o[j] = kk[j] * (gp[j] - mg[j] - (xp[j] - mu[j]) * is[j] * mgx[j]);
  }
}

/* g, x: (N,C); mean, invstd, w: (C) -> gx (N,C) or NULL, gw, gb (C) or NULL,
 * as lg_bn_backward with S == 1 */
static void lg_bn_backward_rows(const float *g, const float *x, const float *mean,
                                const float *invstd, const float *w, float *gx, float *gw,
                                float *gb, int64_t N, int64_t C)
{
  const int64_t nblk = (C + LG_BN_CB - 1) / LG_BN_CB;
  #pragma omp parallel for if (N * C > LG_OMP_MIN && nblk > 1)
  for (int64_t k = 0; k < nblk; k++)
    lg_bn_backward_blk(g, x, mean, invstd, w, gx, gw, gb, N, C, k);
}

/* x: (R,D) -> y: (R,D) normalised per row, then * w + b (w, b: (D) or NULL) */
static void lg_ln_forward(const float *x, const float *w, const float *b, float *y, int64_t R,
                          int64_t D, float eps)
{
  #pragma omp parallel for if (R * D > LG_OMP_MIN)
  for (int64_t r = 0; r < R; r++) {
    const float *p = x + r * D;
    float *o = y + r * D;
    double s = 0, q = 0;
    for (int64_t i = 0; i < D; i++) s += p[i];
    double mu = s / D;
    for (int64_t i = 0; i < D; i++) { double d = p[i] - mu; q += d * d; }
    float is = (float)(1.0 / sqrt(q / D + eps)), m = (float)mu;
    for (int64_t i = 0; i < D; i++)
      o[i] = (p[i] - m) * is * (w ? w[i] : 1) + (b ? b[i] : 0);
  }
}

/* ---- shared pieces of the ops formulas ------------------------------------------------- */
/* A (C) tensor viewed as (1,C,1,...) with ndim dims, for broadcasting. */
static lg_tensor *lg_chan_view(lg_tensor *v, int ndim)
{
  int64_t sh[LG_MAXDIM];
  for (int d = 0; d < ndim; d++) sh[d] = 1;
  sh[1] = v->shape[0];
  return lg_view(v, ndim, sh);
}

/* Gradients of y = xhat * w + b, xhat = (x - mean) * rsqrt(var + eps), the
 * statistics taken over dims (nd of them), written with ops so they are
 * differentiable. w is already broadcastable to x (or NULL). Fills gx, gw
 * (xhat*g reduced by red_w), gb (g reduced by red_w) where wanted. */
typedef lg_tensor *(*lg_reduce_fn)(lg_tensor *t, void *ctx);

static int lg_norm_bw_ops(lg_tensor *x, lg_tensor *w, lg_tensor *g, int nd, const int *dims,
                          float eps, int want_x, int want_w, int want_b, lg_reduce_fn red,
                          void *ctx, lg_tensor **gx, lg_tensor **gw, lg_tensor **gb)
{
  lg_tensor *mu = NULL, *xc = NULL, *sq = NULL, *var = NULL, *ve = NULL, *inv = NULL;
  lg_tensor *xhat = NULL, *gxh = NULL, *m1 = NULL, *t1 = NULL, *m2 = NULL, *t2 = NULL;
  lg_tensor *t3 = NULL, *t4 = NULL, *gxx = NULL;
  int rc = -1;
  if (want_b && !(*gb = red(g, ctx))) goto done;
  if (!want_x && !want_w) { rc = 0; goto done; }
  if (!(mu = lg_mean(x, nd, dims, 1)) || !(xc = lg_sub(x, mu)) || !(sq = lg_mul(xc, xc)) ||
      !(var = lg_mean(sq, nd, dims, 1)) || !(ve = lg_add_scalar(var, eps)) ||
      !(inv = lg_rsqrt(ve)) || !(xhat = lg_mul(xc, inv)))
    goto done;
  if (want_w) {
    if (!(t1 = lg_mul(g, xhat)) || !(*gw = red(t1, ctx))) goto done;
    lg_release(t1);
    t1 = NULL;
  }
  if (want_x) {
    gxh = w ? lg_mul(g, w) : lg_retain(g);
    if (!gxh || !(m1 = lg_mean(gxh, nd, dims, 1)) || !(t1 = lg_sub(gxh, m1)) ||
        !(t2 = lg_mul(gxh, xhat)) || !(m2 = lg_mean(t2, nd, dims, 1)) ||
        !(t3 = lg_mul(xhat, m2)) || !(t4 = lg_sub(t1, t3)) || !(gxx = lg_mul(t4, inv)))
      goto done;
    *gx = gxx;
    gxx = NULL;
  }
  rc = 0;
done:
  lg_release(mu); lg_release(xc); lg_release(sq); lg_release(var); lg_release(ve);
  lg_release(inv); lg_release(xhat); lg_release(gxh); lg_release(m1); lg_release(t1);
  lg_release(m2); lg_release(t2); lg_release(t3); lg_release(t4); lg_release(gxx);
  return rc;
}

/* ---- batch norm ------------------------------------------------------------------------ */
static int lg_check_chan(const char *op, const char *what, const lg_tensor *v, int64_t C,
                         const char *xs)
{
  char b1[128];
  if (v && (v->ndim != 1 || v->shape[0] != C))
    return lg_error("%s: input %s: %s %s should have shape %lld (one per channel)", op, xs,
                    what, lg_shape_str(v, b1, sizeof b1), (long long)C), -1;
  return 0;
}

/* Eval mode: y = x * scale + shift, scale = w * rsqrt(rv + eps), shift = b - rm * scale. */
static lg_tensor *lg_bn_eval(lg_tensor *x, lg_tensor *rm, lg_tensor *rv, lg_tensor *w,
                             lg_tensor *b, float eps)
{
  lg_tensor *ve = NULL, *inv = NULL, *sc = NULL, *ms = NULL, *sh = NULL, *scv = NULL;
  lg_tensor *shv = NULL, *xs = NULL, *out = NULL;
  if (!(ve = lg_add_scalar(rv, eps)) || !(inv = lg_rsqrt(ve))) goto done;
  sc = w ? lg_mul(w, inv) : lg_retain(inv);
  if (!sc || !(ms = lg_mul(rm, sc))) goto done;
  sh = b ? lg_sub(b, ms) : lg_neg(ms);
  if (!sh || !(scv = lg_chan_view(sc, x->ndim)) || !(shv = lg_chan_view(sh, x->ndim)) ||
      !(xs = lg_mul(x, scv)))
    goto done;
  out = lg_add(xs, shv);
done:
  lg_release(ve); lg_release(inv); lg_release(sc); lg_release(ms); lg_release(sh);
  lg_release(scv); lg_release(shv); lg_release(xs);
  return out;
}

/* running = (1 - m) running + m v, on a 1-D (possibly strided) buffer */
static void lg_running_update(lg_tensor *r, const float *v, const double *vd, double scale,
                              float m, int64_t C)
{
  float *p = lg_data(r);
  for (int64_t c = 0; c < C; c++) {
    float *q = p + c * r->stride[0];
    double val = vd ? vd[c] * scale : v[c];
    *q = (float)((1.0 - m) * *q + m * val);
  }
  lg_bump_version(r);
}

lg_tensor *lg_batch_norm(lg_tensor *x, lg_tensor *running_mean, lg_tensor *running_var,
                         lg_tensor *weight, lg_tensor *bias, int training, float momentum,
                         float eps)
{
  char xs[128];
  const char *op = "batch_norm";
  lg_shape_str(x, xs, sizeof xs);
  if (x->ndim < 2)
    return lg_error("%s: input %s: expected (N,C) or (N,C,...) with at least 2 dims", op, xs);
  int64_t N = x->shape[0], C = x->shape[1], S = 1;
  for (int d = 2; d < x->ndim; d++) S *= x->shape[d];
  if (lg_check_chan(op, "running_mean", running_mean, C, xs) ||
      lg_check_chan(op, "running_var", running_var, C, xs) ||
      lg_check_chan(op, "weight", weight, C, xs) || lg_check_chan(op, "bias", bias, C, xs))
    return NULL;
  if (!!running_mean != !!running_var)
    return lg_error("%s: give both running_mean and running_var, or neither", op);
  if (!(eps > 0)) return lg_error("%s: eps %g must be > 0", op, eps);
  if (!training) {
    if (!running_mean)
      return lg_error("%s: input %s: eval mode needs running statistics (or training=true)",
                      op, xs);
    return lg_bn_eval(x, running_mean, running_var, weight, bias, eps);
  }
  if (N * S <= 1)
    return lg_error("%s: input %s: expected more than 1 value per channel when training", op, xs);
  lg_tensor *xd = lg_dense(x), *wd = lg_dense(weight), *bd = lg_dense(bias);
  int64_t cs[1] = {C};
  lg_tensor *out = lg_empty(x->ndim, x->shape), *mean = lg_empty(1, cs), *inv = lg_empty(1, cs);
  double *var = malloc(sizeof(double) * (C ? C : 1));
  if (!xd || (weight && !wd) || (bias && !bd) || !out || !mean || !inv || !var) {
    if (!var) lg_error("%s: out of memory", op);
    lg_release(out);
    out = NULL;
    goto done;
  }
  if (S == 1)
    lg_bn_forward_rows(lg_data(xd), wd ? lg_data(wd) : NULL, bd ? lg_data(bd) : NULL,
                       lg_data(out), lg_data(mean), lg_data(inv), var, N, C, eps);
  else
    lg_bn_forward(lg_data(xd), wd ? lg_data(wd) : NULL, bd ? lg_data(bd) : NULL, lg_data(out),
                  lg_data(mean), lg_data(inv), var, N, C, S, eps);
  if (running_mean) {
    double M = (double)N * S;
    lg_running_update(running_mean, lg_data(mean), NULL, 1, momentum, C);
    lg_running_update(running_var, NULL, var, M / (M - 1), momentum, C);
  }
  lg_tensor *in[3] = {x, weight, bias};
  if (lg_should_record(3, in)) {
    lg_node *nd = lg_record(LG_OP_BATCH_NORM, out, 3, in, 4);
    if (!nd) { lg_release(out); out = NULL; goto done; }
    lg_save(nd, LG_SV_X, x);
    if (weight) lg_save(nd, LG_SV_W, weight);
    lg_save(nd, LG_SV_MEAN, mean);
    lg_save(nd, LG_SV_INV, inv);
    lg_norm_params p = {eps, 0, weight != NULL};
    lg_params_put(nd, p);
  }
done:
  free(var);
  lg_release(xd); lg_release(wd); lg_release(bd); lg_release(mean); lg_release(inv);
  return out;
}

static lg_tensor *lg_red_chan(lg_tensor *t, void *ctx)
{
  int nd = *(int *)ctx, dims[LG_MAXDIM];
  for (int d = 0, k = 0; d < nd; d++)
    if (d != 1) dims[k++] = d;
  return lg_sum(t, nd - 1, dims, 0);
}

/* Fused when no graph of the gradient is wanted; ops otherwise (see top). */
int lg_bw_batch_norm(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_norm_params *p = lg_params_get(n, lg_norm_params);
  int has_w = p->has_weight, nd = n->in_ndim[0], rc = -1;
  lg_tensor *x = lg_saved(n, LG_SV_X), *w = has_w ? lg_saved(n, LG_SV_W) : NULL;
  lg_tensor *mean = NULL, *inv = NULL, *gd = NULL, *xd = NULL, *wv = NULL;
  if (!x || (has_w && !w)) goto done;
  if (lg_grad_enabled()) {
    int dims[LG_MAXDIM];
    for (int d = 0, k = 0; d < nd; d++)
      if (d != 1) dims[k++] = d;
    if (w && !(wv = lg_chan_view(w, nd))) goto done;
    rc = lg_norm_bw_ops(x, wv, g, nd - 1, dims, p->eps, n->needs[0], n->needs[1] && w,
                        n->needs[2], lg_red_chan, &nd, &gin[0], &gin[1], &gin[2]);
    goto done;
  }
  int64_t N = x->shape[0], C = x->shape[1], S = lg_numel(x) / (N * C > 0 ? N * C : 1);
  int64_t cs[1] = {C};
  if (!(mean = lg_saved(n, LG_SV_MEAN)) || !(inv = lg_saved(n, LG_SV_INV)) || !(gd = lg_dense(g)) ||
      !(xd = lg_dense(x)))
    goto done;
  if (n->needs[0] && !(gin[0] = lg_empty(x->ndim, x->shape))) goto done;
  if (n->needs[1] && !(gin[1] = lg_empty(1, cs))) goto done;
  if (n->needs[2] && !(gin[2] = lg_empty(1, cs))) goto done;
  lg_tensor *wd = w ? lg_dense(w) : NULL;
  if (w && !wd) goto done;
  float *pgx = gin[0] ? lg_data(gin[0]) : NULL, *pgw = gin[1] ? lg_data(gin[1]) : NULL;
  float *pgb = gin[2] ? lg_data(gin[2]) : NULL;
  if (S == 1)
    lg_bn_backward_rows(lg_data(gd), lg_data(xd), lg_data(mean), lg_data(inv),
                        wd ? lg_data(wd) : NULL, pgx, pgw, pgb, N, C);
  else
    lg_bn_backward(lg_data(gd), lg_data(xd), lg_data(mean), lg_data(inv),
                   wd ? lg_data(wd) : NULL, pgx, pgw, pgb, N, C, S);
  lg_release(wd);
  rc = 0;
done:
  lg_release(x); lg_release(w); lg_release(mean); lg_release(inv); lg_release(gd);
  lg_release(xd); lg_release(wv);
  return rc;
}

/* ---- layer norm ------------------------------------------------------------------------- */
lg_tensor *lg_layer_norm(lg_tensor *x, int k, lg_tensor *weight, lg_tensor *bias, float eps)
{
  char xs[128], b1[128];
  const char *op = "layer_norm";
  lg_shape_str(x, xs, sizeof xs);
  if (k < 1 || k > x->ndim)
    return lg_error("%s: input %s: cannot normalise over the last %d dims", op, xs, k);
  if (!(eps > 0)) return lg_error("%s: eps %g must be > 0", op, eps);
  const int64_t *ns = x->shape + (x->ndim - k);
  lg_tensor *pv[2] = {weight, bias};
  for (int j = 0; j < 2; j++)
    if (pv[j] && (pv[j]->ndim != k || memcmp(pv[j]->shape, ns, sizeof(int64_t) * k)))
      return lg_error("%s: input %s: %s %s should have shape %s", op, xs,
                      j ? "bias" : "weight", lg_shape_str(pv[j], b1, sizeof b1),
                      lg_shape_str_raw(k, ns, (char[128]){0}, 128));
  int64_t D = 1;
  for (int d = 0; d < k; d++) D *= ns[d];
  int64_t R = D ? lg_numel(x) / D : 0;
  lg_tensor *xd = lg_dense(x), *wd = lg_dense(weight), *bd = lg_dense(bias);
  lg_tensor *out = lg_empty(x->ndim, x->shape);
  if (!xd || (weight && !wd) || (bias && !bd) || !out) {
    lg_release(out);
    out = NULL;
    goto done;
  }
  lg_ln_forward(lg_data(xd), wd ? lg_data(wd) : NULL, bd ? lg_data(bd) : NULL, lg_data(out), R,
                D, eps);
  lg_tensor *in[3] = {x, weight, bias};
  if (lg_should_record(3, in)) {
    lg_node *nd = lg_record(LG_OP_LAYER_NORM, out, 3, in, 2);
    if (!nd) { lg_release(out); out = NULL; goto done; }
    lg_save(nd, LG_SV_X, x);
    if (weight) lg_save(nd, LG_SV_W, weight);
    lg_norm_params p = {eps, k, weight != NULL};
    lg_params_put(nd, p);
  }
done:
  lg_release(xd); lg_release(wd); lg_release(bd);
  return out;
}

static lg_tensor *lg_red_to(lg_tensor *t, void *ctx)
{
  lg_node *n = ctx;   /* reduce to the weight's shape: the last k dims of x */
  int k = lg_params_get(n, lg_norm_params)->k;
  return lg_sum_to(t, k, n->in_shape[0] + (n->in_ndim[0] - k));
}

int lg_bw_layer_norm(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_norm_params *p = lg_params_get(n, lg_norm_params);
  int k = p->k, has_w = p->has_weight, nd = n->in_ndim[0], dims[LG_MAXDIM];
  for (int d = 0; d < k; d++) dims[d] = nd - k + d;
  lg_tensor *x = lg_saved(n, LG_SV_X), *w = has_w ? lg_saved(n, LG_SV_W) : NULL;
  int rc = -1;
  if (x && (!has_w || w))
    rc = lg_norm_bw_ops(x, w, g, k, dims, p->eps, n->needs[0], n->needs[1] && w,
                        n->needs[2], lg_red_to, n, &gin[0], &gin[1], &gin[2]);
  lg_release(x);
  lg_release(w);
  return rc;
}

/* ---- instance norm ------------------------------------------------------------------------ */
lg_tensor *lg_instance_norm(lg_tensor *x, lg_tensor *weight, lg_tensor *bias, float eps)
{
  char xs[128];
  const char *op = "instance_norm";
  lg_shape_str(x, xs, sizeof xs);
  if (x->ndim < 3)
    return lg_error("%s: input %s: expected (N,C,H,W) or (N,C,...) with at least 3 dims", op, xs);
  int64_t C = x->shape[1];
  if (lg_check_chan(op, "weight", weight, C, xs) || lg_check_chan(op, "bias", bias, C, xs))
    return NULL;
  int64_t sh[3] = {1, x->shape[0] * C, -1};
  if (lg_numel(x) == 0)
    return lg_error("%s: input %s: expected a non-empty input", op, xs);
  lg_tensor *v = lg_reshape(x, 3, sh), *y = NULL, *ys = NULL, *wv = NULL, *bv = NULL, *t = NULL;
  if (!v) return NULL;
  if (v->shape[2] <= 1) {
    lg_release(v);
    return lg_error("%s: input %s: expected more than 1 value per channel", op, xs);
  }
  if (!(y = lg_batch_norm(v, NULL, NULL, NULL, NULL, 1, 0, eps)) ||
      !(ys = lg_reshape(y, x->ndim, x->shape)))
    goto fail;
  lg_release(v);
  lg_release(y);
  v = y = NULL;
  if (weight) {
    if (!(wv = lg_chan_view(weight, x->ndim)) || !(t = lg_mul(ys, wv))) goto fail;
    lg_release(ys);
    ys = t;
    t = NULL;
  }
  if (bias) {
    if (!(bv = lg_chan_view(bias, x->ndim)) || !(t = lg_add(ys, bv))) goto fail;
    lg_release(ys);
    ys = t;
    t = NULL;
  }
  lg_release(wv);
  lg_release(bv);
  return ys;
fail:
  lg_release(v); lg_release(y); lg_release(ys); lg_release(wv); lg_release(bv); lg_release(t);
  return NULL;
}
