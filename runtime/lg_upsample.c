/* lg_upsample.c: nearest and bilinear upsampling by integer scales.
 *
 * Nearest upsampling is a pool_gather (lg_pool.c) with one (OH,OW) index map
 * shared by every plane; bilinear upsampling is linear in its input, so it
 * and its adjoint are each other's backward formula:
 *   upsample bilinear  <->  upsample_bilinear_backward
 * Kernels work on planes: x (N,C,H,W) is N*C planes of H*W, threaded over
 * planes (the adjoint's scatter stays inside one plane, so it never races). */
#include <string.h>
#include "lg_ops.h"
#include "lg_ops_private.h"

#define LG_OMP_MIN LG_PAR_MIN   /* lg_tensor.h: shorter loops run on one thread */

/* Node parameters of both bilinear ops: the scale and the small side's size. */
typedef struct { int sh, sw; int64_t H, W; } lg_upsample_params;

/* Source taps of output position o for bilinear resampling by an integer
 * scale (align_corners=false): (1-l) * in[i0] + l * in[i1]. */
static void lg_lin_taps(int64_t o, int s, int64_t n, int64_t *i0, int64_t *i1, float *l)
{
  float src = ((float)o + 0.5f) / (float)s - 0.5f;
  if (src < 0) src = 0;
  int64_t a = (int64_t)src;
  if (a > n - 1) a = n - 1;
  *i0 = a;
  *i1 = a < n - 1 ? a + 1 : a;
  *l = src - (float)a;
}

/* x (P,H,W) -> y (P,H*sh,W*sw) bilinear, or its adjoint (adj: y -> x, x zeroed first) */
static void lg_bilinear_kernel(float *x, float *y, int adj, int64_t P, int64_t H, int64_t W,
                               int sh, int sw)
{
  const int64_t OH = H * sh, OW = W * sw;
  #pragma omp parallel for if (P * OH * OW > LG_OMP_MIN)
  for (int64_t p = 0; p < P; p++) {
    float *xp = x + p * H * W, *yp = y + p * OH * OW;
    if (adj) memset(xp, 0, sizeof(float) * H * W);
    for (int64_t oh = 0; oh < OH; oh++) {
      int64_t h0, h1;
      float lh;
      lg_lin_taps(oh, sh, H, &h0, &h1, &lh);
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t w0, w1;
        float lw;
        lg_lin_taps(ow, sw, W, &w0, &w1, &lw);
        float c00 = (1 - lh) * (1 - lw), c01 = (1 - lh) * lw, c10 = lh * (1 - lw), c11 = lh * lw;
        if (adj) {
          float v = yp[oh * OW + ow];
          xp[h0 * W + w0] += c00 * v;
          xp[h0 * W + w1] += c01 * v;
          xp[h1 * W + w0] += c10 * v;
          xp[h1 * W + w1] += c11 * v;
        } else {
          yp[oh * OW + ow] = c00 * xp[h0 * W + w0] + c01 * xp[h0 * W + w1] +
                             c10 * xp[h1 * W + w0] + c11 * xp[h1 * W + w1];
        }
      }
    }
  }
}

static lg_tensor *lg_bilinear_op(lg_tensor *x, int adj, int64_t H, int64_t W, int sh, int sw)
{
  const char *op = adj ? "upsample_bilinear_backward" : "upsample";
  char b1[128];
  if (lg_check_4d(op, x)) return NULL;
  if (!adj) { H = x->shape[2]; W = x->shape[3]; }
  int64_t P = x->shape[0] * x->shape[1], UH, UW;   /* the upsampled size, checked: H may be 2^40 */
  if (lg_size_mul(H, sh, &UH) || lg_size_mul(W, sw, &UW))
    return lg_error("%s: %lldx%lld upsampled by %dx%d is too large", op, (long long)H,
                    (long long)W, sh, sw);
  if (adj && (x->shape[2] != UH || x->shape[3] != UW))
    return lg_error("%s: grad %s does not match upsampling %lldx%lld by %dx%d", op,
                    lg_shape_str(x, b1, sizeof b1), (long long)H, (long long)W, sh, sw);
  int64_t osh[4] = {x->shape[0], x->shape[1], adj ? H : UH, adj ? W : UW};
  lg_tensor *xd = lg_dense(x), *out = lg_empty(4, osh);
  if (!xd || !out) { lg_release(xd); lg_release(out); return NULL; }
  if (H > 0 && W > 0) {
    if (adj) lg_bilinear_kernel(lg_data(out), lg_data(xd), 1, P, H, W, sh, sw);
    else lg_bilinear_kernel(lg_data(xd), lg_data(out), 0, P, H, W, sh, sw);
  }
  lg_release(xd);
  if (lg_should_record(1, &x)) {
    lg_node *nd = lg_record(adj ? LG_OP_UPSAMPLE_BILINEAR_BACKWARD : LG_OP_UPSAMPLE_BILINEAR,
                            out, 1, &x, 0);
    if (!nd) { lg_release(out); return NULL; }
    lg_upsample_params p = {sh, sw, H, W};
    lg_params_put(nd, p);
  }
  return out;
}

lg_tensor *lg_upsample(lg_tensor *x, int sh, int sw, int mode)
{
  char b1[128];
  if (lg_check_4d("upsample", x)) return NULL;
  if (sh < 1 || sw < 1)
    return lg_error("upsample: input %s: scale %dx%d must be a whole number >= 1",
                    lg_shape_str(x, b1, sizeof b1), sh, sw);
  if (mode == 1) return lg_bilinear_op(x, 0, 0, 0, sh, sw);
  if (mode != 0) return lg_error("upsample: unknown mode %d (0 nearest, 1 bilinear)", mode);
  /* nearest: a gather with one index map shared by every plane */
  int64_t H = x->shape[2], W = x->shape[3], ish[2];
  if (H * W > (1 << 24))
    return lg_error("upsample: planes of %lldx%lld cells are not supported", (long long)H,
                    (long long)W);
  if (lg_size_mul(H, sh, &ish[0]) || lg_size_mul(W, sw, &ish[1]))
    return lg_error("upsample: input %s upsampled by %dx%d is too large",
                    lg_shape_str(x, b1, sizeof b1), sh, sw);
  lg_tensor *idx = lg_empty(2, ish);
  if (!idx) return NULL;
  float *ip = lg_data(idx);
  for (int64_t oh = 0; oh < ish[0]; oh++)
    for (int64_t ow = 0; ow < ish[1]; ow++) ip[oh * ish[1] + ow] = (float)((oh / sh) * W + ow / sw);
  lg_tensor *out = lg_pool_gather(x, idx);
  lg_release(idx);
  return out;
}

lg_tensor *lg_upsample_bilinear_backward(lg_tensor *g, int64_t H, int64_t W, int sh, int sw)
{
  if (sh < 1 || sw < 1 || H < 0 || W < 0)
    return lg_error("upsample_bilinear_backward: bad size %lldx%lld or scale %dx%d",
                    (long long)H, (long long)W, sh, sw);
  return lg_bilinear_op(g, 1, H, W, sh, sw);
}

int lg_bw_upsample_bilinear(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_upsample_params *p = lg_params_get(n, lg_upsample_params);
  gin[0] = lg_upsample_bilinear_backward(g, p->H, p->W, p->sh, p->sw);
  return gin[0] ? 0 : -1;
}

int lg_bw_upsample_bilinear_backward(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_upsample_params *p = lg_params_get(n, lg_upsample_params);
  gin[0] = lg_upsample(g, p->sh, p->sw, 1);
  return gin[0] ? 0 : -1;
}
