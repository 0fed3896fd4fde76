/* lg_nnmisc.c: dropout, embedding, padding (constant and reflection),
 * softmax and log_softmax.
 *
 *   dropout      = x * mask, mask drawn from lg_gen (mul carries the gradient)
 *   embedding    = index_select(weight, 0, idx) reshaped (index_select's formula)
 *   pad constant : backward narrows g back to the input
 *   pad reflect  <-> reflect_pad_backward (adjoints, each other's formula)
 *   softmax      : gx = y * (g - sum(g * y))      (y the saved output)
 *   log_softmax  : gx = g - exp(y) * sum(g)
 */
#include <math.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_ops_private.h"

#define LG_OMP_MIN 32768

/* Node parameters: the padding (pad, reflect_pad and its adjoint), the dim of
 * softmax (-1 for a 0-dim input); softmax's saved slot, its output. */
typedef struct { int l, r, t, b; } lg_pad_params;
typedef struct { int dim; } lg_softmax_params;
enum { LG_SV_Y };

/* ---- dropout ----------------------------------------------------------------------- */
lg_tensor *lg_dropout(lg_gen *gen, lg_tensor *x, float p, int training)
{
  if (!(p >= 0 && p <= 1)) return lg_error("dropout: probability %g is not in [0, 1]", p);
  if (!training || p == 0) return lg_retain(x);
  lg_tensor *mask = lg_empty(x->ndim, x->shape);
  if (!mask) return NULL;
  if (!gen) gen = lg_default_gen();
  /* keep with probability 1-p, scaled so the expectation is x */
  float *m = lg_data(mask), scale = p < 1 ? 1.0f / (1.0f - p) : 0.0f;
  double keep = 1.0 - p;
  int64_t n = lg_numel(mask);
  for (int64_t i = 0; i < n; i++) m[i] = lg_gen_uniform(gen) < keep ? scale : 0.0f;
  lg_tensor *out = lg_mul(x, mask);
  lg_release(mask);
  return out;
}

/* ---- embedding ------------------------------------------------------------------------ */
lg_tensor *lg_embedding(const lg_tensor *idx, lg_tensor *weight)
{
  char b1[128], b2[128];
  if (weight->ndim != 2)
    return lg_error("embedding: weight %s should be 2-D (num_embeddings, dim)",
                    lg_shape_str(weight, b1, sizeof b1));
  if (idx->ndim + 1 > LG_MAXDIM)
    return lg_error("embedding: index %s has too many dims", lg_shape_str(idx, b1, sizeof b1));
  int64_t n = lg_numel(idx), V = weight->shape[0];
  lg_tensor *flat = lg_empty(1, &n), *rows = NULL, *out = NULL;
  if (!flat) return NULL;
  float *f = lg_data(flat);
  lg_read(idx, f);
  for (int64_t i = 0; i < n; i++)
    if (!(f[i] >= 0 && f[i] < (float)V) || f[i] != floorf(f[i])) {
      /* 0-based, the runtime's convention; the Lua binding checks 1-based first */
      lg_error("embedding: index %g is not in [0, %lld) (0-based; index %s, weight %s)", f[i],
               (long long)V, lg_shape_str(idx, b1, sizeof b1),
               lg_shape_str(weight, b2, sizeof b2));
      lg_release(flat);
      return NULL;
    }
  rows = lg_index_select(weight, 0, flat);     /* (n, D), differentiable in weight */
  lg_release(flat);
  if (!rows) return NULL;
  int64_t sh[LG_MAXDIM];
  memcpy(sh, idx->shape, sizeof(int64_t) * idx->ndim);
  sh[idx->ndim] = weight->shape[1];
  out = lg_reshape(rows, idx->ndim + 1, sh);
  lg_release(rows);
  return out;
}

/* ---- padding ---------------------------------------------------------------------------- */
static int64_t lg_reflect(int64_t i, int64_t n)
{
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

/* x: P planes (H,W) <-> y: P planes (H+t+b, W+l+r) by reflection; adj: y -> x (zeroed first) */
static void lg_reflect_kernel(float *x, float *y, int adj, int64_t P, int64_t H, int64_t W,
                              int l, int r, int t, int b)
{
  const int64_t OH = H + t + b, OW = W + l + r;
  #pragma omp parallel for if (P * OH * OW > LG_OMP_MIN)
  for (int64_t p = 0; p < P; p++) {
    float *xp = x + p * H * W, *yp = y + p * OH * OW;
    if (adj) memset(xp, 0, sizeof(float) * H * W);
    for (int64_t oh = 0; oh < OH; oh++) {
      const int64_t ih = lg_reflect(oh - t, H);
      for (int64_t ow = 0; ow < OW; ow++) {
        const int64_t iw = lg_reflect(ow - l, W);
        if (adj) xp[ih * W + iw] += yp[oh * OW + ow];
        else yp[oh * OW + ow] = xp[ih * W + iw];
      }
    }
  }
}

static lg_tensor *lg_reflect_op(lg_tensor *x, int adj, int l, int r, int t, int b)
{
  const char *op = adj ? "reflect_pad_backward" : "pad";
  char b1[128];
  lg_shape_str(x, b1, sizeof b1);
  int nd = x->ndim;
  int64_t H = x->shape[nd - 2] - (adj ? t + b : 0), W = x->shape[nd - 1] - (adj ? l + r : 0);
  if (l >= W || r >= W || t >= H || b >= H)
    return lg_error("%s: input %s: reflection padding %d,%d,%d,%d must be smaller than the "
                    "padded dims (%lldx%lld)", op, b1, l, r, t, b, (long long)H, (long long)W);
  int64_t sh[LG_MAXDIM];
  memcpy(sh, x->shape, sizeof(int64_t) * nd);
  sh[nd - 2] = adj ? H : H + t + b;
  sh[nd - 1] = adj ? W : W + l + r;
  lg_tensor *xd = lg_dense(x), *out = lg_empty(nd, sh);
  if (!xd || !out) { lg_release(xd); lg_release(out); return NULL; }
  int64_t P = H * W > 0 ? lg_numel(x) / (adj ? (H + t + b) * (W + l + r) : H * W) : 0;
  if (adj) lg_reflect_kernel(lg_data(out), lg_data(xd), 1, P, H, W, l, r, t, b);
  else lg_reflect_kernel(lg_data(xd), lg_data(out), 0, P, H, W, l, r, t, b);
  lg_release(xd);
  if (lg_should_record(1, &x)) {
    lg_node *nd_ = lg_record(adj ? LG_OP_REFLECT_PAD_BACKWARD : LG_OP_REFLECT_PAD, out, 1, &x, 0);
    if (!nd_) { lg_release(out); return NULL; }
    lg_pad_params p = {l, r, t, b};
    lg_params_put(nd_, p);
  }
  return out;
}

lg_tensor *lg_pad(lg_tensor *x, int l, int r, int t, int b, int mode, float value)
{
  char b1[128];
  lg_shape_str(x, b1, sizeof b1);
  if (x->ndim < 2)
    return lg_error("pad: input %s: expected at least 2 dims (pads the last two)", b1);
  if (l < 0 || r < 0 || t < 0 || b < 0)
    return lg_error("pad: input %s: padding %d,%d,%d,%d must be >= 0", b1, l, r, t, b);
  if (mode == 1) return lg_reflect_op(x, 0, l, r, t, b);
  if (mode != 0) return lg_error("pad: unknown mode %d (0 constant, 1 reflect)", mode);
  int nd = x->ndim;
  int64_t H = x->shape[nd - 2], W = x->shape[nd - 1], sh[LG_MAXDIM];
  memcpy(sh, x->shape, sizeof(int64_t) * nd);
  sh[nd - 2] = H + t + b;
  sh[nd - 1] = W + l + r;
  lg_tensor *out = lg_full(nd, sh, value);
  if (!out) return NULL;
  /* the interior is a strided view of out; copy_ writes x into it */
  lg_tensor *in = lg_alias(out, nd, x->shape, out->stride, out->offset + t * out->stride[nd - 2] +
                                                            l * out->stride[nd - 1]);
  int rc = in ? lg_copy_(in, x) : -1;
  lg_release(in);
  if (rc) { lg_release(out); return NULL; }
  if (lg_should_record(1, &x)) {
    lg_node *nd_ = lg_record(LG_OP_PAD, out, 1, &x, 0);
    if (!nd_) { lg_release(out); return NULL; }
    lg_pad_params p = {l, r, t, b};
    lg_params_put(nd_, p);
  }
  return out;
}

lg_tensor *lg_reflect_pad_backward(lg_tensor *g, int l, int r, int t, int b)
{
  char b1[128];
  if (g->ndim < 2 || l < 0 || r < 0 || t < 0 || b < 0)
    return lg_error("reflect_pad_backward: grad %s, padding %d,%d,%d,%d: bad arguments",
                    lg_shape_str(g, b1, sizeof b1), l, r, t, b);
  return lg_reflect_op(g, 1, l, r, t, b);
}

/* constant pad: gx = g without the border */
int lg_bw_pad(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  int nd = n->in_ndim[0];
  const lg_pad_params *p = lg_params_get(n, lg_pad_params);
  lg_tensor *a = lg_narrow(g, nd - 1, p->l, n->in_shape[0][nd - 1]);
  if (!a) return -1;
  gin[0] = lg_narrow(a, nd - 2, p->t, n->in_shape[0][nd - 2]);
  lg_release(a);
  return gin[0] ? 0 : -1;
}

int lg_bw_reflect_pad(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_pad_params *p = lg_params_get(n, lg_pad_params);
  gin[0] = lg_reflect_pad_backward(g, p->l, p->r, p->t, p->b);
  return gin[0] ? 0 : -1;
}

int lg_bw_reflect_pad_backward(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_pad_params *p = lg_params_get(n, lg_pad_params);
  gin[0] = lg_pad(g, p->l, p->r, p->t, p->b, 1, 0);
  return gin[0] ? 0 : -1;
}

/* ---- softmax / log_softmax -------------------------------------------------------------- */
/* x viewed as (O, D, I), normalised along D; islog: log_softmax */
static void lg_softmax_kernel(const float *x, float *y, int64_t O, int64_t D, int64_t I, int islog)
{
  #pragma omp parallel for if (O * D * I > LG_OMP_MIN)
  for (int64_t r = 0; r < O * I; r++) {
    int64_t o = r / I, i = r % I;
    const float *xp = x + o * D * I + i;
    float *yp = y + o * D * I + i;
    float m = -INFINITY;
    for (int64_t d = 0; d < D; d++) if (xp[d * I] > m) m = xp[d * I];
    if (m == -INFINITY) m = 0;        /* all -inf: keep exp finite (gives nan like torch) */
    double s = 0;
    for (int64_t d = 0; d < D; d++) s += exp((double)xp[d * I] - m);
    if (islog) {
      float ls = (float)(log(s) + m);
      for (int64_t d = 0; d < D; d++) yp[d * I] = xp[d * I] - ls;
    } else {
      double inv = 1.0 / s;
      for (int64_t d = 0; d < D; d++) yp[d * I] = (float)(exp((double)xp[d * I] - m) * inv);
    }
  }
}

static lg_tensor *lg_softmax_op(lg_tensor *x, int dim, int log)
{
  const char *op = log ? "log_softmax" : "softmax";
  int d = lg_wrap_dim(op, dim, x->ndim ? x->ndim : 1);
  if (d < 0) return NULL;
  int64_t O = 1, D = x->ndim ? x->shape[d] : 1, I = 1;
  for (int k = 0; k < d; k++) O *= x->shape[k];
  for (int k = d + 1; k < x->ndim; k++) I *= x->shape[k];
  lg_tensor *xd = lg_dense(x), *out = lg_empty(x->ndim, x->shape);
  if (!xd || !out) { lg_release(xd); lg_release(out); return NULL; }
  lg_softmax_kernel(lg_data(xd), lg_data(out), O, D, I, log);
  lg_release(xd);
  if (lg_should_record(1, &x)) {
    lg_node *nd = lg_record(log ? LG_OP_LOG_SOFTMAX : LG_OP_SOFTMAX, out, 1, &x, 1);
    if (!nd) { lg_release(out); return NULL; }
    lg_save_output(nd, LG_SV_Y, out);
    lg_softmax_params p = {x->ndim ? d : -1};
    lg_params_put(nd, p);
  }
  return out;
}

lg_tensor *lg_softmax(lg_tensor *x, int dim) { return lg_softmax_op(x, dim, 0); }
lg_tensor *lg_log_softmax(lg_tensor *x, int dim) { return lg_softmax_op(x, dim, 1); }

/* sum of t along the node's dim, kept (all of a 0-dim tensor) */
static lg_tensor *lg_sum_dim(lg_node *n, lg_tensor *t)
{
  int d = lg_params_get(n, lg_softmax_params)->dim;
  return d < 0 ? lg_sum(t, 0, NULL, 1) : lg_sum(t, 1, &d, 1);
}

int lg_bw_softmax(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_tensor *y = lg_saved(n, LG_SV_Y), *gy = NULL, *s = NULL, *d = NULL;
  if (y && (gy = lg_mul(g, y)) && (s = lg_sum_dim(n, gy)) && (d = lg_sub(g, s)))
    gin[0] = lg_mul(y, d);
  lg_release(y); lg_release(gy); lg_release(s); lg_release(d);
  return gin[0] ? 0 : -1;
}

int lg_bw_log_softmax(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_tensor *y = lg_saved(n, LG_SV_Y), *p = NULL, *s = NULL, *ps = NULL;
  if (y && (p = lg_exp(y)) && (s = lg_sum_dim(n, g)) && (ps = lg_mul(p, s)))
    gin[0] = lg_sub(g, ps);
  lg_release(y); lg_release(p); lg_release(s); lg_release(ps);
  return gin[0] ? 0 : -1;
}
