/* lg_pool.c: max and average pooling (upsampling is lg_upsample.c).
 *
 * Every op here is linear in its input once the pattern is fixed, so the ops
 * come in adjoint pairs that are each other's backward formula:
 *   pool_gather  (x -> x at indices)        <-> pool_scatter (g added at indices)
 *   avg_pool2d                              <-> avg_pool2d_backward
 * Max pooling picks its indices (argmax per window) and then is a
 * pool_gather node; nearest upsampling (lg_upsample.c) is a pool_gather
 * with one (OH,OW) index map shared by every plane.
 *
 * All kernels work on planes: x (N,C,H,W) is N*C planes of H*W, threaded
 * over planes (scatters stay inside one plane, so they never race). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_ops_private.h"

#define LG_OMP_MIN LG_PAR_MIN   /* lg_tensor.h: shorter loops run on one thread */

/* Node parameters: the plane size H, W a pool_gather / pool_scatter goes back
 * to; the window and input size of avg_pool2d (and its adjoint). Saved slot
 * of pool_gather / pool_scatter: the index map. */
typedef struct { int64_t H, W; } lg_gather_params;
typedef struct { int kh, kw, sh, sw, ph, pw; int64_t H, W; } lg_avg_params;
enum { LG_SV_IDX };

int lg_check_4d(const char *op, const lg_tensor *x)
{
  char b1[128];
  if (x->ndim != 4)
    return lg_error("%s: input %s: expected a 4-D input (N,C,H,W)", op,
                    lg_shape_str(x, b1, sizeof b1)), -1;
  return 0;
}

/* Window size / stride / padding checks shared by both poolings of an
 * (N,C,H,W) input described by xs; sets *OH, *OW. */
static int lg_pool_geom(const char *op, const char *xs, int64_t H, int64_t W, int kh, int kw,
                        int sh, int sw, int ph, int pw, int64_t *OH, int64_t *OW)
{
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1)
    return lg_error("%s: input %s: kernel %dx%d and stride %dx%d must be >= 1", op, xs, kh, kw,
                    sh, sw), -1;
  if (ph < 0 || pw < 0 || 2 * ph > kh || 2 * pw > kw)
    return lg_error("%s: input %s: padding %dx%d must be >= 0 and at most half the kernel "
                    "%dx%d", op, xs, ph, pw, kh, kw), -1;
  int64_t h = H + 2 * (int64_t)ph - kh, w = W + 2 * (int64_t)pw - kw;
  if (h < 0 || w < 0)
    return lg_error("%s: input %s: kernel %dx%d is larger than the padded input", op, xs, kh,
                    kw), -1;
  *OH = h / sh + 1;
  *OW = w / sw + 1;
  return 0;
}

/* ---- kernels ------------------------------------------------------------------- */
/* x: P planes (H,W) -> y, idx: P planes (OH,OW); idx = flat argmax h*W+w (NaN wins) */
static void lg_max_pool_kernel(const float *x, float *y, float *idx, int64_t P, int64_t H,
                               int64_t W, int64_t OH, int64_t OW, int kh, int kw, int sh,
                               int sw, int ph, int pw)
{
  #pragma omp parallel for if (P * OH * OW * kh * kw > LG_OMP_MIN)
  for (int64_t p = 0; p < P; p++) {
    const float *xp = x + p * H * W;
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t h0 = oh * sh - ph, w0 = ow * sw - pw, best = -1;
        float m = -INFINITY;
        for (int64_t i = h0 < 0 ? 0 : h0; i < h0 + kh && i < H; i++)
          for (int64_t j = w0 < 0 ? 0 : w0; j < w0 + kw && j < W; j++) {
            float v = xp[i * W + j];
            if (best < 0 || v > m || isnan(v)) { m = v; best = i * W + j; }
            if (isnan(v)) goto found;
          }
      found:
        y[(p * OH + oh) * OW + ow] = m;
        idx[(p * OH + oh) * OW + ow] = (float)best;
      }
  }
}

/* x: P planes of HW; idx: P planes of Q (or one shared plane) -> y: P planes of Q */
static void lg_gather_kernel(const float *x, const float *idx, int shared, float *y, int64_t P,
                             int64_t HW, int64_t Q)
{
  #pragma omp parallel for if (P * Q > LG_OMP_MIN)
  for (int64_t p = 0; p < P; p++) {
    const float *ip = shared ? idx : idx + p * Q;
    const float *xp = x + p * HW;
    float *yp = y + p * Q;
    for (int64_t q = 0; q < Q; q++) yp[q] = xp[(int64_t)ip[q]];
  }
}

/* g: P planes of Q; idx as above -> x: P planes of HW = zeros + g added at idx */
static void lg_scatter_kernel(const float *g, const float *idx, int shared, float *x, int64_t P,
                              int64_t HW, int64_t Q)
{
  #pragma omp parallel for if (P * (Q + HW) > LG_OMP_MIN)
  for (int64_t p = 0; p < P; p++) {
    const float *ip = shared ? idx : idx + p * Q;
    const float *gp = g + p * Q;
    float *xp = x + p * HW;
    memset(xp, 0, sizeof(float) * HW);
    for (int64_t q = 0; q < Q; q++) xp[(int64_t)ip[q]] += gp[q];
  }
}

/* avg pooling (count_include_pad): x (P,H,W) -> y (P,OH,OW), or its adjoint
 * (adj: y is the gradient, x receives it, zeroed first) */
static void lg_avg_pool_kernel(float *x, float *y, int adj, int64_t P, int64_t H, int64_t W,
                               int64_t OH, int64_t OW, int kh, int kw, int sh, int sw, int ph,
                               int pw)
{
  const float inv = 1.0f / (kh * kw);
  #pragma omp parallel for if (P * OH * OW * kh * kw > LG_OMP_MIN)
  for (int64_t p = 0; p < P; p++) {
    float *xp = x + p * H * W, *yp = y + p * OH * OW;
    if (adj) memset(xp, 0, sizeof(float) * H * W);
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t h0 = oh * sh - ph, w0 = ow * sw - pw;
        int64_t ha = h0 < 0 ? 0 : h0, hb = h0 + kh < H ? h0 + kh : H;
        int64_t wa = w0 < 0 ? 0 : w0, wb = w0 + kw < W ? w0 + kw : W;
        if (adj) {
          float v = yp[oh * OW + ow] * inv;
          for (int64_t i = ha; i < hb; i++)
            for (int64_t j = wa; j < wb; j++) xp[i * W + j] += v;
        } else {
          float s = 0;
          for (int64_t i = ha; i < hb; i++)
            for (int64_t j = wa; j < wb; j++) s += xp[i * W + j];
          yp[oh * OW + ow] = s * inv;
        }
      }
  }
}


/* ---- gather / scatter ----------------------------------------------------------- */
/* idx must be (N,C,OH,OW) matching planes (N,C), or (OH,OW); values integral
 * in [0, HW). Sets *shared; returns 0 or -1 with error. */
static int lg_check_idx(const char *op, const lg_tensor *t, const lg_tensor *idx, int64_t HW,
                        int *shared, const float *iv)
{
  char b1[128], b2[128];
  int sh = idx->ndim == 2;
  if (!(idx->ndim == 2 || (idx->ndim == 4 && idx->shape[0] == t->shape[0] &&
                           idx->shape[1] == t->shape[1])))
    return lg_error("%s: input %s, index %s: expected an (N,C,OH,OW) or (OH,OW) index", op,
                    lg_shape_str(t, b1, sizeof b1), lg_shape_str(idx, b2, sizeof b2)), -1;
  int64_t n = lg_numel(idx);
  for (int64_t i = 0; i < n; i++)
    if (!(iv[i] >= 0 && iv[i] < (float)HW) || iv[i] != floorf(iv[i]))
      return lg_error("%s: index %g is not a position in a plane of %lld cells", op, iv[i],
                      (long long)HW), -1;
  *shared = sh;
  return 0;
}

static lg_tensor *lg_gather_op(lg_tensor *x, const lg_tensor *idx, int scatter, int64_t H,
                               int64_t W)
{
  const char *op = scatter ? "pool_scatter" : "pool_gather";
  char b1[128], b2[128];
  if (lg_check_4d(op, x)) return NULL;
  if (!scatter) { H = x->shape[2]; W = x->shape[3]; }
  if (H < 0 || W < 0 || H * W > (1 << 24))
    return lg_error("%s: planes of %lldx%lld cells are not supported", op, (long long)H,
                    (long long)W);
  lg_tensor *id = lg_dense(idx), *xd = lg_dense(x), *out = NULL;
  if (!id || !xd) goto done;
  int shared;
  if (lg_check_idx(op, x, idx, H * W, &shared, lg_data(id))) goto done;
  int64_t OH = idx->shape[idx->ndim - 2], OW = idx->shape[idx->ndim - 1];
  if (scatter && (x->shape[2] != OH || x->shape[3] != OW)) {
    lg_error("%s: grad %s and index %s differ in size", op, lg_shape_str(x, b1, sizeof b1),
             lg_shape_str(idx, b2, sizeof b2));
    goto done;
  }
  int64_t P = x->shape[0] * x->shape[1];
  int64_t osh[4] = {x->shape[0], x->shape[1], scatter ? H : OH, scatter ? W : OW};
  if (!(out = lg_empty(4, osh))) goto done;
  if (scatter) lg_scatter_kernel(lg_data(xd), lg_data(id), shared, lg_data(out), P, H * W, OH * OW);
  else lg_gather_kernel(lg_data(xd), lg_data(id), shared, lg_data(out), P, H * W, OH * OW);
  if (lg_should_record(1, &x)) {
    lg_node *nd = lg_record(scatter ? LG_OP_POOL_SCATTER : LG_OP_POOL_GATHER, out, 1, &x, 1);
    if (!nd) { lg_release(out); out = NULL; goto done; }
    lg_save(nd, LG_SV_IDX, idx);
    lg_gather_params p = {H, W};
    lg_params_put(nd, p);
  }
done:
  lg_release(id);
  lg_release(xd);
  return out;
}

lg_tensor *lg_pool_gather(lg_tensor *x, const lg_tensor *idx)
{
  return lg_gather_op(x, idx, 0, 0, 0);
}

lg_tensor *lg_pool_scatter(lg_tensor *g, const lg_tensor *idx, int64_t H, int64_t W)
{
  return lg_gather_op(g, idx, 1, H, W);
}

int lg_bw_pool_gather(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_tensor *idx = lg_saved(n, LG_SV_IDX);
  if (!idx) return -1;
  const lg_gather_params *p = lg_params_get(n, lg_gather_params);
  gin[0] = lg_pool_scatter(g, idx, p->H, p->W);
  lg_release(idx);
  return gin[0] ? 0 : -1;
}

int lg_bw_pool_scatter(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_tensor *idx = lg_saved(n, LG_SV_IDX);
  if (!idx) return -1;
  gin[0] = lg_pool_gather(g, idx);
  lg_release(idx);
  return gin[0] ? 0 : -1;
}

/* ---- max pooling ------------------------------------------------------------------ */
lg_tensor *lg_max_pool2d(lg_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
  char xs[128];
  int64_t OH, OW;
  if (lg_check_4d("max_pool2d", x) ||
      lg_pool_geom("max_pool2d", lg_shape_str(x, xs, sizeof xs), x->shape[2], x->shape[3], kh,
                   kw, sh, sw, ph, pw, &OH, &OW))
    return NULL;
  int64_t H = x->shape[2], W = x->shape[3], P = x->shape[0] * x->shape[1];
  if (H * W > (1 << 24))
    return lg_error("max_pool2d: planes of %lldx%lld cells are not supported", (long long)H,
                    (long long)W);
  int64_t osh[4] = {x->shape[0], x->shape[1], OH, OW};
  lg_tensor *xd = lg_dense(x), *out = lg_empty(4, osh), *idx = lg_empty(4, osh);
  if (!xd || !out || !idx) { lg_release(out); out = NULL; goto done; }
  lg_max_pool_kernel(lg_data(xd), lg_data(out), lg_data(idx), P, H, W, OH, OW, kh, kw, sh, sw,
                     ph, pw);
  if (lg_should_record(1, &x)) {   /* y = pool_gather(x, argmax) */
    lg_node *nd = lg_record(LG_OP_POOL_GATHER, out, 1, &x, 1);
    if (!nd) { lg_release(out); out = NULL; goto done; }
    lg_save(nd, LG_SV_IDX, idx);
    lg_gather_params p = {H, W};
    lg_params_put(nd, p);
  }
done:
  lg_release(xd);
  lg_release(idx);
  return out;
}

/* ---- average pooling ---------------------------------------------------------------- */
static lg_tensor *lg_avg_op(lg_tensor *x, int adj, int64_t H, int64_t W, int kh, int kw, int sh,
                            int sw, int ph, int pw)
{
  const char *op = adj ? "avg_pool2d_backward" : "avg_pool2d";
  char b1[128];
  int64_t OH, OW;
  if (lg_check_4d(op, x)) return NULL;
  lg_shape_str(x, b1, sizeof b1);
  if (adj) {
    char b2[64];
    snprintf(b2, sizeof b2, "%lldx%lld", (long long)H, (long long)W);
    if (H < 0 || W < 0) return lg_error("%s: negative input size %s", op, b2);
    if (lg_pool_geom(op, b2, H, W, kh, kw, sh, sw, ph, pw, &OH, &OW)) return NULL;
    if (OH != x->shape[2] || OW != x->shape[3])
      return lg_error("%s: grad %s does not match pooling a %lldx%lld input (%lldx%lld)", op,
                      lg_shape_str(x, b1, sizeof b1), (long long)H, (long long)W,
                      (long long)OH, (long long)OW);
  } else {
    H = x->shape[2];
    W = x->shape[3];
    if (lg_pool_geom(op, b1, H, W, kh, kw, sh, sw, ph, pw, &OH, &OW)) return NULL;
  }
  int64_t P = x->shape[0] * x->shape[1];
  int64_t osh[4] = {x->shape[0], x->shape[1], adj ? H : OH, adj ? W : OW};
  lg_tensor *xd = lg_dense(x), *out = lg_empty(4, osh);
  if (!xd || !out) { lg_release(xd); lg_release(out); return NULL; }
  if (adj) lg_avg_pool_kernel(lg_data(out), lg_data(xd), 1, P, H, W, OH, OW, kh, kw, sh, sw, ph, pw);
  else lg_avg_pool_kernel(lg_data(xd), lg_data(out), 0, P, H, W, OH, OW, kh, kw, sh, sw, ph, pw);
  lg_release(xd);
  if (lg_should_record(1, &x)) {
    lg_node *nd = lg_record(adj ? LG_OP_AVG_POOL2D_BACKWARD : LG_OP_AVG_POOL2D, out, 1, &x, 0);
    if (!nd) { lg_release(out); return NULL; }
    lg_avg_params p = {kh, kw, sh, sw, ph, pw, H, W};
    lg_params_put(nd, p);
  }
  return out;
}

lg_tensor *lg_avg_pool2d(lg_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
  return lg_avg_op(x, 0, 0, 0, kh, kw, sh, sw, ph, pw);
}

lg_tensor *lg_avg_pool2d_backward(lg_tensor *g, int64_t H, int64_t W, int kh, int kw, int sh,
                                  int sw, int ph, int pw)
{
  return lg_avg_op(g, 1, H, W, kh, kw, sh, sw, ph, pw);
}

int lg_bw_avg_pool2d(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_avg_params *p = lg_params_get(n, lg_avg_params);
  gin[0] = lg_avg_pool2d_backward(g, p->H, p->W, p->kh, p->kw, p->sh, p->sw, p->ph, p->pw);
  return gin[0] ? 0 : -1;
}

int lg_bw_avg_pool2d_backward(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_avg_params *p = lg_params_get(n, lg_avg_params);
  gin[0] = lg_avg_pool2d(g, p->kh, p->kw, p->sh, p->sw, p->ph, p->pw);
  return gin[0] ? 0 : -1;
}
