/* lg_loss.c: fused losses with mean / sum / none reductions.
 *
 * The elementwise losses (target y broadcast to the input x's shape) are one
 * pass each, accumulated in double:
 *   bce_with_logits  l = max(x,0) - x*y + log1p(exp(-|x|))   (never overflows)
 *                    dl/dx = sigmoid(x) - y, dl/dy = -x
 *   mse_loss         l = (x-y)^2,  dl/dx = 2(x-y)
 *   l1_loss          l = |x-y|,    dl/dx = sign(x-y)
 * Their formulas use sigmoid/sub/sign/mul, so they are differentiable again.
 * nll_loss picks -logp[n, t[n]] through a constant one-hot mask (mul + sum),
 * cross_entropy is log_softmax then nll_loss (or -sum(p * logp) for
 * probability targets). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_ops_private.h"

#define LG_OMP_MIN LG_PAR_MIN   /* lg_tensor.h: shorter loops run on one thread */

enum { LG_L_BCE, LG_L_MSE, LG_L_L1 };

/* A loss node's parameter and saved slots: the input x and the target y. */
typedef struct { int reduction; } lg_loss_params;
enum { LG_SV_X, LG_SV_Y };

static int lg_check_reduction(const char *op, int reduction)
{
  if (reduction < LG_REDUCE_NONE || reduction > LG_REDUCE_SUM)
    return lg_error("%s: unknown reduction %d (0 none, 1 mean, 2 sum)", op, reduction), -1;
  return 0;
}

static inline float lg_loss_elem(int kind, float x, float y)
{
  if (kind == LG_L_BCE) return fmaxf(x, 0) - x * y + log1pf(expf(-fabsf(x)));
  float d = x - y;
  return kind == LG_L_MSE ? d * d : fabsf(d);
}

/* x: any shape, y: broadcasts to x -> (x's shape) or scalar */
static lg_tensor *lg_elem_loss(const char *op, int kind, int opid, lg_tensor *x, lg_tensor *y,
                               int reduction)
{
  char b1[128], b2[128];
  if (lg_check_reduction(op, reduction)) return NULL;
  int nd;
  int64_t bs[LG_MAXDIM];
  if (lg_broadcast_shape(op, y->ndim, y->shape, x->ndim, x->shape, &nd, bs) ||
      nd != x->ndim || memcmp(bs, x->shape, sizeof(int64_t) * nd))
    return lg_error("%s: target %s does not broadcast to the input shape %s", op,
                    lg_shape_str(y, b1, sizeof b1), lg_shape_str(x, b2, sizeof b2));
  lg_tensor *xd = lg_dense(x), *yd = NULL, *out = NULL;
  if (!xd) return NULL;
  if (lg_same_shape(x, y)) yd = lg_dense(y);
  else if ((yd = lg_empty(x->ndim, x->shape)) && lg_copy_(yd, y)) { lg_release(yd); yd = NULL; }
  if (!yd) goto done;
  const float *xp = lg_data(xd), *yp = lg_data(yd);
  int64_t n = lg_numel(x);
  if (reduction == LG_REDUCE_NONE) {
    if (!(out = lg_empty(x->ndim, x->shape))) goto done;
    float *o = lg_data(out);
    #pragma omp parallel for if (n > LG_OMP_MIN)
    for (int64_t i = 0; i < n; i++) o[i] = lg_loss_elem(kind, xp[i], yp[i]);
  } else {
    double acc = 0;
    #pragma omp parallel for reduction(+:acc) if (n > LG_OMP_MIN)
    for (int64_t i = 0; i < n; i++) acc += lg_loss_elem(kind, xp[i], yp[i]);
    if (reduction == LG_REDUCE_MEAN) acc = n ? acc / n : NAN;
    if (!(out = lg_scalar((float)acc))) goto done;
  }
  lg_tensor *in[2] = {x, y};
  if (lg_should_record(2, in)) {
    lg_node *nd_ = lg_record(opid, out, 2, in, 2);
    if (!nd_) { lg_release(out); out = NULL; goto done; }
    lg_save(nd_, LG_SV_X, x);
    lg_save(nd_, LG_SV_Y, y);
    lg_loss_params p = {reduction};
    lg_params_put(nd_, p);
  }
done:
  lg_release(xd);
  lg_release(yd);
  return out;
}

lg_tensor *lg_bce_with_logits(lg_tensor *x, lg_tensor *y, int reduction)
{
  return lg_elem_loss("bce_with_logits", LG_L_BCE, LG_OP_BCE_WITH_LOGITS, x, y, reduction);
}

lg_tensor *lg_mse_loss(lg_tensor *x, lg_tensor *y, int reduction)
{
  return lg_elem_loss("mse_loss", LG_L_MSE, LG_OP_MSE_LOSS, x, y, reduction);
}

lg_tensor *lg_l1_loss(lg_tensor *x, lg_tensor *y, int reduction)
{
  return lg_elem_loss("l1_loss", LG_L_L1, LG_OP_L1_LOSS, x, y, reduction);
}

/* gx = dx * g', gy = sum_to(-dyfac * g') with g' = g / numel for mean; dx and
 * dy (the derivatives dl/dx, dl/dy) made from the saved x, y by ops. */
static int lg_elem_loss_bw(lg_node *n, lg_tensor *g, lg_tensor **gin, int kind)
{
  lg_tensor *x = lg_saved(n, LG_SV_X), *y = lg_saved(n, LG_SV_Y), *gs = NULL, *d = NULL, *s = NULL;
  lg_tensor *dy = NULL, *t = NULL;
  int rc = -1;
  if (!x || !y) goto done;
  if (lg_params_get(n, lg_loss_params)->reduction == LG_REDUCE_MEAN) {
    int64_t cnt = 1;
    for (int k = 0; k < n->in_ndim[0]; k++) cnt *= n->in_shape[0][k];
    gs = lg_mul_scalar(g, cnt ? 1.0f / (float)cnt : NAN);
  } else {
    gs = lg_retain(g);
  }
  if (!gs) goto done;
  if (n->needs[0]) {
    if (kind == LG_L_BCE) {
      if (!(s = lg_sigmoid(x)) || !(d = lg_sub(s, y))) goto done;
    } else {
      if (!(s = lg_sub(x, y))) goto done;
      d = kind == LG_L_MSE ? lg_mul_scalar(s, 2.0f) : lg_sign(s);
      if (!d) goto done;
    }
    if (!(gin[0] = lg_mul(d, gs))) goto done;
  }
  if (n->needs[1]) {
    if (kind == LG_L_BCE) dy = lg_neg(x);
    else if (d) dy = lg_neg(d);
    else {
      lg_release(s);
      if (!(s = lg_sub(x, y))) goto done;
      dy = kind == LG_L_MSE ? lg_mul_scalar(s, -2.0f) : lg_sign(s);
      if (dy && kind == LG_L_L1) { t = dy; dy = lg_neg(t); }
    }
    if (!dy || !(gin[1] = lg_mul(dy, gs))) goto done;
    if (gin[1]->ndim != n->in_ndim[1] ||
        memcmp(gin[1]->shape, n->in_shape[1], sizeof(int64_t) * gin[1]->ndim)) {
      lg_tensor *r = lg_sum_to(gin[1], n->in_ndim[1], n->in_shape[1]);
      lg_release(gin[1]);
      if (!(gin[1] = r)) goto done;
    }
  }
  rc = 0;
done:
  lg_release(x); lg_release(y); lg_release(gs); lg_release(d); lg_release(s);
  lg_release(dy); lg_release(t);
  return rc;
}

int lg_bw_bce_with_logits(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  return lg_elem_loss_bw(n, g, gin, LG_L_BCE);
}

int lg_bw_mse_loss(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  return lg_elem_loss_bw(n, g, gin, LG_L_MSE);
}

int lg_bw_l1_loss(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  return lg_elem_loss_bw(n, g, gin, LG_L_L1);
}

/* ---- nll / cross entropy ----------------------------------------------------------------- */
/* Apply a reduction to per-entry losses l (consumed). */
static lg_tensor *lg_reduce_loss(lg_tensor *l, int reduction)
{
  if (reduction == LG_REDUCE_NONE) return l;
  lg_tensor *r = reduction == LG_REDUCE_MEAN ? lg_mean(l, 0, NULL, 0) : lg_sum(l, 0, NULL, 0);
  lg_release(l);
  return r;
}

/* -sum over dim 1 of a * b (b constant or not), reduced */
static lg_tensor *lg_neg_dot1(lg_tensor *a, lg_tensor *b, int reduction)
{
  int d1 = 1;
  lg_tensor *p = lg_mul(a, b), *s = p ? lg_sum(p, 1, &d1, 0) : NULL, *l = s ? lg_neg(s) : NULL;
  lg_release(p);
  lg_release(s);
  return l ? lg_reduce_loss(l, reduction) : NULL;
}

lg_tensor *lg_nll_loss(lg_tensor *logp, const lg_tensor *target, int reduction)
{
  char b1[128], b2[128], b3[128];
  const char *op = "nll_loss";
  if (lg_check_reduction(op, reduction)) return NULL;
  lg_shape_str(logp, b1, sizeof b1);
  lg_shape_str(target, b2, sizeof b2);
  if (logp->ndim < 2)
    return lg_error("%s: input %s: expected (N,C) or (N,C,...) log-probabilities", op, b1);
  int64_t ts[LG_MAXDIM];
  int tn = 0;
  for (int d = 0; d < logp->ndim; d++)
    if (d != 1) ts[tn++] = logp->shape[d];
  if (target->ndim != tn || memcmp(target->shape, ts, sizeof(int64_t) * tn))
    return lg_error("%s: input %s, target %s: expected a target of shape %s (class indices)", op,
                    b1, b2, lg_shape_str_raw(tn, ts, b3, sizeof b3));
  int64_t N = logp->shape[0], C = logp->shape[1], R = 1;
  for (int d = 2; d < logp->ndim; d++) R *= logp->shape[d];
  int64_t nt = lg_numel(target);
  float *tv = malloc(sizeof(float) * (nt ? nt : 1));
  lg_tensor *mask = lg_zeros(logp->ndim, logp->shape);
  if (!tv || !mask) {
    free(tv);
    lg_release(mask);
    return lg_error("%s: out of memory", op);
  }
  lg_read(target, tv);
  float *m = lg_data(mask);
  for (int64_t i = 0; i < nt; i++) {
    float c = tv[i];
    if (!(c >= 0 && c < (float)C) || c != floorf(c)) {
      free(tv);
      lg_release(mask);
      /* 0-based, the runtime's convention; the Lua binding checks 1-based first */
      return lg_error("%s: target %g at position %lld is not a class index in [0, %lld) "
                      "(0-based)", op, c, (long long)i, (long long)C);
    }
    int64_t n = i / R, r = i % R;       /* target (N, R) -> mask (N, C, R) */
    m[(n * C + (int64_t)c) * R + r] = 1;
  }
  (void)N;
  free(tv);
  lg_tensor *out = lg_neg_dot1(logp, mask, reduction);
  lg_release(mask);
  return out;
}

lg_tensor *lg_cross_entropy(lg_tensor *logits, lg_tensor *target, int reduction)
{
  char b1[128];
  if (lg_check_reduction("cross_entropy", reduction)) return NULL;
  if (logits->ndim < 2)
    return lg_error("cross_entropy: input %s: expected (N,C) or (N,C,...) logits",
                    lg_shape_str(logits, b1, sizeof b1));
  lg_tensor *logp = lg_log_softmax(logits, 1), *out;
  if (!logp) return NULL;
  if (lg_same_shape(target, logits)) out = lg_neg_dot1(target, logp, reduction);  /* probabilities */
  else {
    out = lg_nll_loss(logp, target, reduction);
    if (!out && strncmp(lg_last_error(), "nll_loss", 8) == 0) {
      lg_error_prefix("cross_entropy");
    }
  }
  lg_release(logp);
  return out;
}
