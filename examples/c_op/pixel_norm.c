/* pixel_norm.c: a custom op in C, built as its own Lua C module
 * (path 3 of docs/extending.md): ProGAN's pixelwise feature normalisation
 * (Karras et al. 2018, "Progressive Growing of GANs", section 4.2).
 *
 *   local lg = require "luagan"
 *   local pn = require "pixelnorm"            -- this file, built as pixelnorm.so
 *   local y = pn.pixel_norm(x, {eps = 1e-8})  -- x (N,C,...) -> (N,C,...)
 *
 * Every sample's feature vector at every position is scaled to unit RMS over
 * the channels (dim 2 in Lua, 1 here):
 *   r = 1 / sqrt(mean_c x^2 + eps),   y = x r
 * and the gradient, for an incoming gradient g:
 *   dx = r (g - y mean_c(g y))
 *
 * The op is written against the runtime's public headers (lg_ops.h via
 * lgl.h) and links libluagan_lua.so / libluagan_runtime.so, the shared
 * libraries luagan.core itself lives in, so tensors, the allocator, the grad
 * mode and the autograd engine are the very ones Lua code uses.
 *
 * Forward is a kernel on raw floats, with its naive reference next to it (the
 * test oracle, exported as pixel_norm_reference). The backward node has a
 * fused kernel for the usual backward(); when the engine runs with
 * create_graph (grad mode on inside the backward) it builds the same formula
 * from runtime ops instead, so the gradient is itself differentiable and
 * gradients of gradients (R1, WGAN-GP through a pixel-normed G) work. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lgl.h"

/* ---- kernels -------------------------------------------------------------------
 * Raw layout: (N, C, S) contiguous, S = product of the dims after C. */

/* Naive reference: one (n, s) position at a time, sums in double. */
static void pixel_norm_naive(const float *x, float *y, int64_t N, int64_t C, int64_t S, float eps)
{
  /* x, y: (N, C, S) */
  for (int64_t n = 0; n < N; n++)
    for (int64_t s = 0; s < S; s++) {
      double ss = 0;
      for (int64_t c = 0; c < C; c++) {
        double v = x[(n * C + c) * S + s];
        ss += v * v;
      }
      double r = 1.0 / sqrt(ss / (double)C + eps);
      for (int64_t c = 0; c < C; c++) y[(n * C + c) * S + s] = (float)(x[(n * C + c) * S + s] * r);
    }
}

/* Fast forward: per sample, channel-outer / position-inner loops so the inner
 * loop runs over contiguous memory and vectorises; acc is S floats of scratch. */
static void pixel_norm_fwd(const float *x, float *y, int64_t N, int64_t C, int64_t S, float eps,
                           float *acc)
{
  /* x, y: (N, C, S); acc: (S) */
  for (int64_t n = 0; n < N; n++) {
    const float *xn = x + n * C * S;
    float *yn = y + n * C * S;
    memset(acc, 0, sizeof *acc * S);
    for (int64_t c = 0; c < C; c++)
      for (int64_t s = 0; s < S; s++) acc[s] += xn[c * S + s] * xn[c * S + s];
    for (int64_t s = 0; s < S; s++) acc[s] = 1.0f / sqrtf(acc[s] / (float)C + eps);   /* r */
    for (int64_t c = 0; c < C; c++)
      for (int64_t s = 0; s < S; s++) yn[c * S + s] = xn[c * S + s] * acc[s];
  }
}

/* Fused gradient: dx = r (g - y mean_c(g y)), y = x r, recomputing r from x.
 * r and m are S floats of scratch each. */
static void pixel_norm_bwd(const float *x, const float *g, float *dx, int64_t N, int64_t C,
                           int64_t S, float eps, float *r, float *m)
{
  /* x, g, dx: (N, C, S); r, m: (S) */
  for (int64_t n = 0; n < N; n++) {
    const float *xn = x + n * C * S, *gn = g + n * C * S;
    float *dn = dx + n * C * S;
    memset(r, 0, sizeof *r * S);
    memset(m, 0, sizeof *m * S);
    for (int64_t c = 0; c < C; c++)
      for (int64_t s = 0; s < S; s++) r[s] += xn[c * S + s] * xn[c * S + s];
    for (int64_t s = 0; s < S; s++) r[s] = 1.0f / sqrtf(r[s] / (float)C + eps);
    for (int64_t c = 0; c < C; c++)                  /* sum_c g x; times r / C below */
      for (int64_t s = 0; s < S; s++) m[s] += gn[c * S + s] * xn[c * S + s];
    for (int64_t s = 0; s < S; s++) m[s] *= r[s] / (float)C;              /* mean_c(g y) */
    for (int64_t c = 0; c < C; c++)
      for (int64_t s = 0; s < S; s++)
        dn[c * S + s] = r[s] * (gn[c * S + s] - xn[c * S + s] * r[s] * m[s]);
  }
}

/* ---- the op ------------------------------------------------------------------- */
typedef struct {
  lg_tensor *x;            /* the input as given (with its grad_fn): owned */
  uint32_t version;        /* x's storage version when saved */
  float eps;
} pn_ctx;

static void pn_ctx_free(void *p)
{
  pn_ctx *c = p;
  lg_release(c->x);
  free(c);
}

/* Split x (N,C,...) into N, C, S; -1 with an error naming the shape. */
static int pn_dims(const char *who, const lg_tensor *x, int64_t *N, int64_t *C, int64_t *S)
{
  char b[128];
  if (x->ndim < 2)
    return lg_error("%s: expected an input of shape (N,C,...), got %s", who,
                    lg_shape_str(x, b, sizeof b)), -1;
  *N = x->shape[0];
  *C = x->shape[1];
  *S = 1;
  for (int d = 2; d < x->ndim; d++) *S *= x->shape[d];
  if (*C == 0) return lg_error("%s: the input has no channels (%s)", who, lg_shape_str(x, b, sizeof b)), -1;
  return 0;
}

/* The gradient with the fused kernel: g (N,C,...) -> dx (N,C,...). */
static lg_tensor *pn_grad_kernel(lg_tensor *x, lg_tensor *g, float eps)
{
  int64_t N, C, S;
  if (pn_dims("pixel_norm backward", x, &N, &C, &S)) return NULL;
  lg_tensor *xc = lg_contiguous(x), *gc = lg_contiguous(g);
  lg_tensor *dx = xc && gc ? lg_empty(x->ndim, x->shape) : NULL;
  float *scratch = dx ? malloc(sizeof(float) * 2 * (S > 0 ? S : 1)) : NULL;
  if (scratch)
    pixel_norm_bwd(lg_data(xc), lg_data(gc), lg_data(dx), N, C, S, eps, scratch, scratch + S);
  else if (dx) { lg_release(dx); dx = lg_error("pixel_norm backward: out of memory"); }
  free(scratch);
  lg_release(xc);
  lg_release(gc);
  return dx;
}

/* The gradient from runtime ops, recorded when grad mode is on, so that it
 * can be differentiated again: r = rsqrt(mean_c x^2 + eps), y = x r,
 * dx = r (g - y mean_c(g y)). Each op returns a new reference or NULL. */
static lg_tensor *pn_grad_ops(lg_tensor *x, lg_tensor *g, float eps)
{
  const int chan[1] = {1};
  lg_tensor *x2 = lg_mul(x, x);
  lg_tensor *ms = x2 ? lg_mean(x2, 1, chan, 1) : NULL;          /* (N,1,...) */
  lg_tensor *mse = ms ? lg_add_scalar(ms, eps) : NULL;
  lg_tensor *r = mse ? lg_rsqrt(mse) : NULL;
  lg_tensor *y = r ? lg_mul(x, r) : NULL;
  lg_tensor *gy = y ? lg_mul(g, y) : NULL;
  lg_tensor *m = gy ? lg_mean(gy, 1, chan, 1) : NULL;           /* (N,1,...) */
  lg_tensor *ym = m ? lg_mul(y, m) : NULL;
  lg_tensor *d = ym ? lg_sub(g, ym) : NULL;
  lg_tensor *dx = d ? lg_mul(r, d) : NULL;
  lg_tensor *tmp[] = {x2, ms, mse, r, y, gy, m, ym, d};
  for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) lg_release(tmp[i]);
  return dx;
}

/* Backward of the pixel_norm node (lg_backward_fn): gin[0] = dL/dx. */
static int pn_backward(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  pn_ctx *c = n->ctx;
  if (n->released)
    return lg_error("pixel_norm: backward through a graph that was already freed "
                    "(use retain_graph=true to run backward twice)"), -1;
  if (c->x->storage->version != c->version)
    return lg_error("pixel_norm: its input was modified in place after the op ran"), -1;
  if (!n->needs[0]) return 0;
  /* The engine sets grad mode to create_graph while formulas run. */
  gin[0] = lg_grad_enabled() ? pn_grad_ops(c->x, g, c->eps) : pn_grad_kernel(c->x, g, c->eps);
  return gin[0] ? 0 : -1;
}

/* pixel_norm(x (N,C,...), eps) -> (N,C,...): a new reference or NULL + error. */
static lg_tensor *pixel_norm(lg_tensor *x, float eps)
{
  int64_t N, C, S;
  if (pn_dims("pixel_norm", x, &N, &C, &S)) return NULL;
  if (!(eps > 0)) return lg_error("pixel_norm: eps must be positive, got %g", (double)eps);
  /* Only raw data is wanted here: no graph for the contiguous copy. */
  int prev = lg_set_grad_enabled(0);
  lg_tensor *xc = lg_contiguous(x);
  lg_set_grad_enabled(prev);
  if (!xc) return NULL;
  lg_tensor *y = lg_empty(x->ndim, x->shape);
  float *acc = y ? malloc(sizeof(float) * (S > 0 ? S : 1)) : NULL;
  if (acc) pixel_norm_fwd(lg_data(xc), lg_data(y), N, C, S, eps, acc);
  else if (y) { lg_release(y); y = lg_error("pixel_norm: out of memory"); }
  free(acc);
  lg_release(xc);
  if (!y) return NULL;
  if (lg_should_record(1, &x)) {
    pn_ctx *c = malloc(sizeof *c);
    if (!c) { lg_release(y); return lg_error("pixel_norm: out of memory"); }
    c->x = lg_retain(x);
    c->version = x->storage->version;
    c->eps = eps;
    /* name: a string literal, the node keeps the pointer */
    if (lg_record_custom("pixel_norm", y, 1, &x, pn_backward, c, pn_ctx_free)) {  /* frees c */
      lg_release(y);
      return NULL;
    }
  }
  return y;
}

/* ---- Lua ------------------------------------------------------------------------ */
static const char *const pn_opts[] = {"eps", NULL};

/* pn.pixel_norm(x (N,C,...), {eps = 1e-8}) -> (N,C,...) */
static int l_pixel_norm(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1);
  lgl_checkopts(L, 2, pn_opts);
  return lgl_push(L, pixel_norm(x, (float)lgl_optnum(L, 2, "eps", 1e-8)));
}

/* pn.pixel_norm_reference(x (N,C,...), {eps = 1e-8}) -> (N,C,...): the naive
 * kernel, no graph (the tests' oracle). */
static int l_pixel_norm_reference(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1);
  lgl_checkopts(L, 2, pn_opts);
  float eps = (float)lgl_optnum(L, 2, "eps", 1e-8);
  int64_t N, C, S;
  if (pn_dims("pixel_norm_reference", x, &N, &C, &S)) return lgl_error(L);
  int prev = lg_set_grad_enabled(0);
  lg_tensor *xc = lg_contiguous(x);
  lg_set_grad_enabled(prev);
  lg_tensor *y = xc ? lg_empty(x->ndim, x->shape) : NULL;
  if (y) pixel_norm_naive(lg_data(xc), lg_data(y), N, C, S, eps);
  lg_release(xc);
  return lgl_push(L, y);
}

static const luaL_Reg pn_funcs[] = {
  {"pixel_norm", l_pixel_norm},
  {"pixel_norm_reference", l_pixel_norm_reference},
  {NULL, NULL},
};

/* require "pixelnorm" */
int luaopen_pixelnorm(lua_State *L)
{
  luaL_newlib(L, pn_funcs);
  return 1;
}
