/* test_conv.c: conv2d, conv_transpose2d, conv2d_grad_weight and im2col/col2im against
 * naive direct loops (in double) on random geometries, their gradients, and
 * gradients of gradients through conv nets (finite differences). */
#include <stdlib.h>
#include <string.h>
#include "lgt.h"

static lg_gen G;

static int64_t rnd(int64_t lo, int64_t hi) { return lo + (int64_t)lg_gen_below(&G, hi - lo + 1); }

/* A random (N,C,H,W) tensor; when `strided`, a transposed view (H and W
 * swapped in memory) so kernels see a non-contiguous input. */
static lg_tensor *rand4(int64_t n, int64_t c, int64_t h, int64_t w, int strided)
{
  if (!strided) {
    int64_t s[4] = {n, c, h, w};
    return lgt_randn(&G, 4, s);
  }
  int64_t s[4] = {n, c, w, h};
  lg_tensor *b = lgt_randn(&G, 4, s), *t = lg_transpose(b, 2, 3);
  lg_release(b);
  return t;
}

static lg_tensor *randn_shape(int nd, const int64_t *s) { return lgt_randn(&G, nd, s); }

/* Contiguous double copy of t. */
static double *dbl(const lg_tensor *t)
{
  int64_t n = lg_numel(t);
  float *f = malloc(sizeof(float) * (n ? n : 1));
  double *d = malloc(sizeof(double) * (n ? n : 1));
  lg_read(t, f);
  for (int64_t i = 0; i < n; i++) d[i] = f[i];
  free(f);
  return d;
}

static lg_tensor *from_dbl(int nd, const int64_t *s, const double *d)
{
  lg_tensor *t = lg_empty(nd, s);
  int64_t n = lg_numel(t);
  for (int64_t i = 0; i < n; i++) lg_data(t)[i] = (float)d[i];
  return t;
}

typedef struct { int sh, sw, ph, pw, dh, dw, oph, opw; } prm;

/* ---- naive references ------------------------------------------------------------- */
/* conv2d by definition: y[n,o,i,j] = b[o] + sum x[n,c,i*sh-ph+a*dh, j*sw-pw+e*dw] w[o,c,a,e] */
static lg_tensor *ref_conv2d(lg_tensor *x, lg_tensor *w, lg_tensor *b, prm p)
{
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t O = w->shape[0], KH = w->shape[2], KW = w->shape[3];
  int64_t OH = (H + 2 * p.ph - p.dh * (KH - 1) - 1) / p.sh + 1;
  int64_t OW = (W + 2 * p.pw - p.dw * (KW - 1) - 1) / p.sw + 1;
  double *xd = dbl(x), *wd = dbl(w), *bd = b ? dbl(b) : NULL;
  int64_t s[4] = {N, O, OH, OW};
  double *y = calloc(N * O * OH * OW + 1, sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < OH; i++)
        for (int64_t j = 0; j < OW; j++) {
          double acc = bd ? bd[o] : 0;
          for (int64_t c = 0; c < C; c++)
            for (int64_t a = 0; a < KH; a++)
              for (int64_t e = 0; e < KW; e++) {
                int64_t ih = i * p.sh - p.ph + a * p.dh, iw = j * p.sw - p.pw + e * p.dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += xd[((n * C + c) * H + ih) * W + iw] * wd[((o * C + c) * KH + a) * KW + e];
              }
          y[((n * O + o) * OH + i) * OW + j] = acc;
        }
  lg_tensor *r = from_dbl(4, s, y);
  free(xd); free(wd); free(bd); free(y);
  return r;
}

/* conv_transpose2d by definition (scatter): x[n,c,i,j] w[c,o,a,e] lands on
 * y[n,o,i*sh-ph+a*dh, j*sw-pw+e*dw] */
static lg_tensor *ref_convT(lg_tensor *x, lg_tensor *w, lg_tensor *b, prm p)
{
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t O = w->shape[1], KH = w->shape[2], KW = w->shape[3];
  int64_t OH = (H - 1) * p.sh - 2 * p.ph + p.dh * (KH - 1) + p.oph + 1;
  int64_t OW = (W - 1) * p.sw - 2 * p.pw + p.dw * (KW - 1) + p.opw + 1;
  double *xd = dbl(x), *wd = dbl(w), *bd = b ? dbl(b) : NULL;
  int64_t s[4] = {N, O, OH, OW};
  double *y = calloc(N * O * OH * OW + 1, sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t k = 0; k < OH * OW; k++) y[(n * O + o) * OH * OW + k] = bd ? bd[o] : 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < W; j++)
          for (int64_t o = 0; o < O; o++)
            for (int64_t a = 0; a < KH; a++)
              for (int64_t e = 0; e < KW; e++) {
                int64_t oh = i * p.sh - p.ph + a * p.dh, ow = j * p.sw - p.pw + e * p.dw;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                y[((n * O + o) * OH + oh) * OW + ow] +=
                  xd[((n * C + c) * H + i) * W + j] * wd[((c * O + o) * KH + a) * KW + e];
              }
  lg_tensor *r = from_dbl(4, s, y);
  free(xd); free(wd); free(bd); free(y);
  return r;
}

/* weight gradient: gw[o,c,a,e] = sum g[n,o,i,j] x[n,c,i*sh-ph+a*dh, j*sw-pw+e*dw] */
static lg_tensor *ref_dw(lg_tensor *x, lg_tensor *g, int64_t KH, int64_t KW, prm p)
{
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t O = g->shape[1], OH = g->shape[2], OW = g->shape[3];
  double *xd = dbl(x), *gd = dbl(g);
  int64_t s[4] = {O, C, KH, KW};
  double *r = calloc(O * C * KH * KW + 1, sizeof(double));
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t a = 0; a < KH; a++)
        for (int64_t e = 0; e < KW; e++) {
          double acc = 0;
          for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < OH; i++)
              for (int64_t j = 0; j < OW; j++) {
                int64_t ih = i * p.sh - p.ph + a * p.dh, iw = j * p.sw - p.pw + e * p.dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += gd[((n * O + o) * OH + i) * OW + j] * xd[((n * C + c) * H + ih) * W + iw];
              }
          r[((o * C + c) * KH + a) * KW + e] = acc;
        }
  lg_tensor *t = from_dbl(4, s, r);
  free(xd); free(gd); free(r);
  return t;
}

/* sum over n, h, w of g (N,O,OH,OW) -> (O) */
static lg_tensor *ref_bias_grad(lg_tensor *g)
{
  int64_t N = g->shape[0], O = g->shape[1], P = g->shape[2] * g->shape[3];
  double *gd = dbl(g), *r = calloc(O + 1, sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++)
      for (int64_t k = 0; k < P; k++) r[o] += gd[(n * O + o) * P + k];
  lg_tensor *t = from_dbl(1, &O, r);
  free(gd); free(r);
  return t;
}

static prm rand_prm(int transposed)
{
  prm p;
  p.sh = (int)rnd(1, 3); p.sw = (int)rnd(1, 3);
  p.ph = (int)rnd(0, 2); p.pw = (int)rnd(0, 2);
  p.dh = (int)rnd(1, 2); p.dw = (int)rnd(1, 2);
  p.oph = transposed ? (int)rnd(0, p.sh - 1) : 0;
  p.opw = transposed ? (int)rnd(0, p.sw - 1) : 0;
  return p;
}

/* sum(y * r) as a scalar, for driving backward with a random grad_output */
static lg_tensor *dot(lg_tensor *y, lg_tensor *r)
{
  lg_tensor *m = OK(lg_mul(y, r)), *s = OK(lg_sum(m, 0, NULL, 0));
  lg_release(m);
  return s;
}

/* ---- kernels: im2col and col2im are adjoint ---------------------------------------- */
static void test_im2col_col2im_adjoint(void)
{
  for (int it = 0; it < 40; it++) {
    prm p = rand_prm(0);
    lg_conv_geom g = {rnd(1, 3), rnd(1, 9), rnd(1, 9), rnd(1, 4), rnd(1, 4), p.sh, p.sw, p.ph,
                      p.pw, p.dh, p.dw, 0, 0};
    g.OH = (g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1);
    g.OW = (g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1);
    if (g.OH < 0 || g.OW < 0) continue;
    g.OH = g.OH / g.sh + 1;
    g.OW = g.OW / g.sw + 1;
    int64_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, ldc = P + rnd(0, 3);
    int64_t xs = g.C * g.H * g.W, cs = K * ldc;
    lg_tensor *x = OK(randn_shape(1, &xs)), *c = OK(randn_shape(1, &cs));
    lg_tensor *col = OK(lg_zeros(1, &cs)), *xb = OK(lg_empty(1, &xs));
    lg_im2col(lg_data(x), &g, lg_data(col), ldc);
    lg_col2im(lg_data(c), &g, ldc, lg_data(xb));
    /* <im2col(x), c> == <x, col2im(c)> over the P used columns of each row */
    double a = 0, b = 0;
    for (int64_t r = 0; r < K; r++)
      for (int64_t q = 0; q < P; q++) a += (double)lg_data(col)[r * ldc + q] * lg_data(c)[r * ldc + q];
    for (int64_t i = 0; i < xs; i++) b += (double)lg_data(x)[i] * lg_data(xb)[i];
    CHECK_NEAR(a, b, 1e-4);
    /* and im2col itself equals the definition */
    for (int64_t ch = 0; ch < g.C; ch++)
      for (int64_t kh = 0; kh < g.KH; kh++)
        for (int64_t kw = 0; kw < g.KW; kw++)
          for (int64_t oh = 0; oh < g.OH; oh++)
            for (int64_t ow = 0; ow < g.OW; ow++) {
              int64_t ih = oh * g.sh - g.ph + kh * g.dh, iw = ow * g.sw - g.pw + kw * g.dw;
              float e = ih < 0 || ih >= g.H || iw < 0 || iw >= g.W ? 0 :
                        lg_data(x)[(ch * g.H + ih) * g.W + iw];
              float v = lg_data(col)[((ch * g.KH + kh) * g.KW + kw) * ldc + oh * g.OW + ow];
              if (v != e) { CHECK(v == e); goto next; }
            }
  next:
    lg_release(x); lg_release(c); lg_release(col); lg_release(xb);
  }
}

/* ---- conv2d forward and backward vs the naive loops ----------------------------------- */
static void conv2d_case(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH,
                        int64_t KW, prm p, int bias, int strided)
{
  int64_t ohs = H + 2 * p.ph - p.dh * (KH - 1) - 1, ows = W + 2 * p.pw - p.dw * (KW - 1) - 1;
  if (ohs < 0 || ows < 0) return;
  lg_tensor *x = OK(rand4(N, C, H, W, strided)), *w = OK(rand4(O, C, KH, KW, 0));
  int64_t bs = O;
  lg_tensor *b = bias ? OK(randn_shape(1, &bs)) : NULL;
  lg_requires_grad_(x, 1);
  lg_requires_grad_(w, 1);
  if (b) lg_requires_grad_(b, 1);
  lg_tensor *y = OK(lg_conv2d(x, w, b, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw));
  lg_tensor *ref = ref_conv2d(x, w, b, p);
  CHECK_CLOSE(y, ref, 1e-4);
  lg_tensor *r = OK(randn_shape(4, y->shape)), *s = dot(y, r);
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  /* gx is the transposed conv of r; gw the weight gradient; gb the sum */
  prm q = p;
  q.oph = (int)(H - ((y->shape[2] - 1) * p.sh - 2 * p.ph + p.dh * (KH - 1) + 1));
  q.opw = (int)(W - ((y->shape[3] - 1) * p.sw - 2 * p.pw + p.dw * (KW - 1) + 1));
  lg_tensor *gx = ref_convT(r, w, NULL, q), *gw = ref_dw(x, r, KH, KW, p);
  CHECK(x->grad && w->grad);
  if (x->grad) CHECK_CLOSE(x->grad, gx, 1e-4);
  /* the weight gradient sums N*OH*OW float32 products: allow more rounding */
  if (w->grad) CHECK_CLOSE(w->grad, gw, 5e-4);
  if (b) {
    lg_tensor *gb = ref_bias_grad(r);
    CHECK(b->grad != NULL);
    if (b->grad) CHECK_CLOSE(b->grad, gb, 1e-4);
    lg_release(gb);
  }
  lg_release(gx); lg_release(gw); lg_release(r); lg_release(s); lg_release(ref);
  lg_release(y); lg_release(x); lg_release(w); lg_release(b);
}

static void test_conv2d_random(void)
{
  for (int it = 0; it < 60; it++) {
    prm p = rand_prm(0);
    conv2d_case(rnd(1, 3), rnd(1, 4), rnd(1, 9), rnd(1, 9), rnd(1, 4), rnd(1, 4), rnd(1, 4), p,
                (int)rnd(0, 1), (int)rnd(0, 1));
  }
  /* the DCGAN critic's layers */
  prm d = {2, 2, 1, 1, 1, 1, 0, 0};
  conv2d_case(3, 1, 28, 28, 8, 4, 4, d, 1, 0);
  conv2d_case(3, 8, 14, 14, 6, 4, 4, d, 0, 1);
  /* 1x1 kernels and a kernel covering the whole input */
  prm one = {1, 1, 0, 0, 1, 1, 0, 0};
  conv2d_case(2, 5, 3, 4, 3, 1, 1, one, 1, 0);
  conv2d_case(2, 2, 3, 4, 3, 3, 4, one, 1, 1);
}

/* Several sgemm chunks (full ones and a remainder of one sample). */
static void test_conv2d_chunks(void)
{
  /* The chunking depends on the team size, so the test pins it (an
   * OMP_NUM_THREADS=1 environment must not change what is checked). Five
   * samples fit the column budget at once; a team of two still gets two
   * chunks so both threads work. */
  const int saved = lg_get_num_threads();
  lg_conv_geom g = {3, 60, 60, 3, 3, 1, 1, 1, 1, 1, 1, 60, 60};
  prm p = {1, 1, 1, 1, 1, 1, 0, 0};
  lg_set_num_threads(2);
  int64_t nb = lg_conv_chunk(&g, 5);
  CHECK(nb >= 2 && nb < 5);
  conv2d_case(5, 3, 60, 60, 2, 3, 3, p, 1, 0);
  lg_set_num_threads(1);
  CHECK(lg_conv_chunk(&g, 5) == 5);
  conv2d_case(5, 3, 60, 60, 2, 3, 3, p, 1, 0);
  lg_set_num_threads(saved);
}

/* ---- conv_transpose2d ---------------------------------------------------------------- */
static void convT_case(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t KH,
                       int64_t KW, prm p, int bias, int strided)
{
  int64_t OH = (H - 1) * p.sh - 2 * p.ph + p.dh * (KH - 1) + p.oph + 1;
  int64_t OW = (W - 1) * p.sw - 2 * p.pw + p.dw * (KW - 1) + p.opw + 1;
  if (OH < 1 || OW < 1) return;
  lg_tensor *x = OK(rand4(N, C, H, W, strided)), *w = OK(rand4(C, O, KH, KW, strided));
  int64_t bs = O;
  lg_tensor *b = bias ? OK(randn_shape(1, &bs)) : NULL;
  lg_requires_grad_(x, 1);
  lg_requires_grad_(w, 1);
  if (b) lg_requires_grad_(b, 1);
  lg_tensor *y = OK(lg_conv_transpose2d(x, w, b, p.sh, p.sw, p.ph, p.pw, p.oph, p.opw, p.dh, p.dw));
  lg_tensor *ref = ref_convT(x, w, b, p);
  CHECK_CLOSE(y, ref, 1e-4);
  lg_tensor *r = OK(randn_shape(4, y->shape)), *s = dot(y, r);
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  lg_tensor *gx = ref_conv2d(r, w, NULL, p), *gw = ref_dw(r, x, KH, KW, p);
  if (x->grad) CHECK_CLOSE(x->grad, gx, 1e-4); else CHECK(x->grad);
  if (w->grad) CHECK_CLOSE(w->grad, gw, 1e-4); else CHECK(w->grad);
  if (b) {
    lg_tensor *gb = ref_bias_grad(r);
    if (b->grad) CHECK_CLOSE(b->grad, gb, 1e-4); else CHECK(b->grad);
    lg_release(gb);
  }
  lg_release(gx); lg_release(gw); lg_release(r); lg_release(s); lg_release(ref);
  lg_release(y); lg_release(x); lg_release(w); lg_release(b);
}

static void test_conv_transpose2d_random(void)
{
  for (int it = 0; it < 60; it++) {
    prm p = rand_prm(1);
    convT_case(rnd(1, 3), rnd(1, 4), rnd(1, 7), rnd(1, 7), rnd(1, 4), rnd(1, 4), rnd(1, 4), p,
               (int)rnd(0, 1), (int)rnd(0, 1));
  }
  prm d = {2, 2, 1, 1, 1, 1, 0, 0};
  convT_case(3, 8, 7, 7, 6, 4, 4, d, 1, 0);     /* the DCGAN generator's layers */
  convT_case(3, 6, 14, 14, 1, 4, 4, d, 1, 1);
}

/* ---- conv2d_grad_weight and its own derivatives ------------------------------------------------ */
static void test_conv2d_grad_weight_random(void)
{
  for (int it = 0; it < 40; it++) {
    prm p = rand_prm(0);
    int64_t N = rnd(1, 3), C = rnd(1, 3), H = rnd(1, 8), W = rnd(1, 8), O = rnd(1, 3);
    int64_t KH = rnd(1, 3), KW = rnd(1, 3);
    int64_t ohs = H + 2 * p.ph - p.dh * (KH - 1) - 1, ows = W + 2 * p.pw - p.dw * (KW - 1) - 1;
    if (ohs < 0 || ows < 0) continue;
    lg_tensor *x = OK(rand4(N, C, H, W, (int)rnd(0, 1)));
    lg_tensor *g = OK(rand4(N, O, ohs / p.sh + 1, ows / p.sw + 1, (int)rnd(0, 1)));
    lg_requires_grad_(x, 1);
    lg_requires_grad_(g, 1);
    lg_tensor *dw = OK(lg_conv2d_grad_weight(x, g, (int)KH, (int)KW, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw));
    lg_tensor *ref = ref_dw(x, g, KH, KW, p);
    CHECK_CLOSE(dw, ref, 1e-4);
    /* <R, dw(x, g)> = <g, conv2d(x, R)>: d/dx = convT(g, R), d/dg = conv2d(x, R) */
    lg_tensor *R = OK(randn_shape(4, dw->shape)), *s = dot(dw, R);
    CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
    prm q = p;
    q.oph = (int)(H - ((g->shape[2] - 1) * p.sh - 2 * p.ph + p.dh * (KH - 1) + 1));
    q.opw = (int)(W - ((g->shape[3] - 1) * p.sw - 2 * p.pw + p.dw * (KW - 1) + 1));
    lg_tensor *gx = ref_convT(g, R, NULL, q), *gg = ref_conv2d(x, R, NULL, p);
    if (x->grad) CHECK_CLOSE(x->grad, gx, 1e-4); else CHECK(x->grad);
    if (g->grad) CHECK_CLOSE(g->grad, gg, 1e-4); else CHECK(g->grad);
    lg_release(gx); lg_release(gg); lg_release(R); lg_release(s); lg_release(ref);
    lg_release(dw); lg_release(x); lg_release(g);
  }
}

/* ---- gradients of gradients (finite differences) ----------------------------------------- */
typedef lg_tensor *(*scalar_fn)(lg_tensor **in, void *ctx);

static double scalar_value(lg_tensor *t)
{
  float v;
  lg_read(t, &v);
  return v;
}

/* Compare lg_grad of fn at the contiguous leaves in[0..n) with central
 * differences on up to `samples` random elements of each. */
static void gradcheck(scalar_fn fn, void *ctx, int n, lg_tensor **in, double eps, double tol,
                      int samples)
{
  lg_tensor *y = OK(fn(in, ctx));
  lg_tensor *gr[8] = {0};
  if (lg_grad(1, &y, NULL, n, in, gr, 0, 0, 1)) {
    lgt_failed_checks++;
    fprintf(stderr, "gradcheck: lg_grad failed: %s\n", lg_last_error());
  }
  lg_release(y);
  for (int i = 0; i < n; i++) {
    int64_t m = lg_numel(in[i]);
    float *p = lg_data(in[i]), *ga = calloc(m ? m : 1, sizeof(float));
    if (gr[i]) lg_read(gr[i], ga);
    for (int k = 0; k < samples && k < m; k++) {
      int64_t j = m <= samples ? k : (int64_t)lg_gen_below(&G, m);
      float old = p[j];
      p[j] = old + (float)eps;
      lg_bump_version(in[i]);
      lg_tensor *a = OK(fn(in, ctx));
      p[j] = old - (float)eps;
      lg_bump_version(in[i]);
      lg_tensor *b = OK(fn(in, ctx));
      p[j] = old;
      lg_bump_version(in[i]);
      double num = (scalar_value(a) - scalar_value(b)) / (2 * eps);
      double ana = ga[j];
      if (!(fabs(num - ana) <= tol * (1 + fabs(num)))) {
        lgt_failed_checks++;
        fprintf(stderr, "gradcheck: input %d element %lld: analytic %.6g, numeric %.6g\n", i,
                (long long)j, ana, num);
      }
      lg_release(a);
      lg_release(b);
    }
    free(ga);
    lg_release(gr[i]);
  }
}

typedef struct { prm p1, p2; int transposed; lg_tensor *r; } net_ctx;

/* WGAN-GP through a conv critic: sum over samples of (|d/dx sum D(x)|^2),
 * D(x) = sum(r * conv2(tanh(conv1(x) + b1))), in = {x, w1, b1, w2}. With
 * `transposed`, the layers are conv_transpose2d (a generator's path). */
static lg_tensor *penalty(lg_tensor **in, void *vctx)
{
  net_ctx *c = vctx;
  lg_tensor *x = in[0], *w1 = in[1], *b1 = in[2], *w2 = in[3];
  prm a = c->p1, b = c->p2;
  lg_tensor *h = c->transposed
    ? lg_conv_transpose2d(x, w1, b1, a.sh, a.sw, a.ph, a.pw, a.oph, a.opw, a.dh, a.dw)
    : lg_conv2d(x, w1, b1, a.sh, a.sw, a.ph, a.pw, a.dh, a.dw);
  lg_tensor *t = lg_tanh(OK(h));
  lg_tensor *o = c->transposed
    ? lg_conv_transpose2d(OK(t), w2, NULL, b.sh, b.sw, b.ph, b.pw, b.oph, b.opw, b.dh, b.dw)
    : lg_conv2d(OK(t), w2, NULL, b.sh, b.sw, b.ph, b.pw, b.dh, b.dw);
  OK(o);
  if (!c->r) c->r = randn_shape(4, o->shape);
  lg_tensor *d = dot(o, c->r), *gx = NULL;
  CHECK(lg_grad(1, &d, NULL, 1, &x, &gx, 1, 1, 0) == 0);
  lg_tensor *sq = OK(lg_mul(gx, gx)), *pen = OK(lg_sum(sq, 0, NULL, 0));
  lg_release(h); lg_release(t); lg_release(o); lg_release(d); lg_release(gx); lg_release(sq);
  return pen;
}

static void penalty_case(int transposed, prm p1, prm p2, int64_t N, int64_t C, int64_t H,
                         int64_t W, int64_t C1, int64_t C2, int64_t K1, int64_t K2)
{
  lg_tensor *in[4];
  in[0] = rand4(N, C, H, W, 0);
  in[1] = transposed ? rand4(C, C1, K1, K1, 0) : rand4(C1, C, K1, K1, 0);
  in[2] = randn_shape(1, &C1);
  in[3] = transposed ? rand4(C1, C2, K2, K2, 0) : rand4(C2, C1, K2, K2, 0);
  for (int i = 0; i < 4; i++) {
    lg_mul_scalar_(in[i], 0.5f);
    lg_requires_grad_(in[i], 1);
  }
  net_ctx c = {p1, p2, transposed, NULL};
  gradcheck(penalty, &c, 4, in, 1e-2, 2e-2, 12);
  for (int i = 0; i < 4; i++) lg_release(in[i]);
  lg_release(c.r);
}

static void test_gradient_penalty_through_convs(void)
{
  prm s2 = {2, 2, 1, 1, 1, 1, 0, 0}, s1 = {1, 1, 0, 0, 1, 1, 0, 0};
  prm odd = {2, 1, 1, 0, 2, 1, 0, 0}, dil = {1, 2, 2, 1, 1, 2, 0, 0};
  penalty_case(0, s2, s1, 2, 2, 7, 7, 3, 2, 4, 3);    /* the DCGAN critic pattern */
  penalty_case(0, odd, dil, 2, 1, 9, 8, 2, 2, 3, 2);
  prm t1 = {2, 2, 1, 1, 1, 1, 1, 0}, t2 = {2, 1, 0, 1, 1, 2, 1, 0};
  penalty_case(1, s2, t1, 2, 2, 3, 3, 3, 1, 4, 3);     /* the generator's layers */
  penalty_case(1, t2, s1, 1, 2, 3, 4, 2, 2, 2, 3);
}

/* Third order: conv2d_grad_weight's formula (conv_transpose2d, conv2d) differentiated again. */
static lg_tensor *dw_energy(lg_tensor **in, void *vctx)
{
  prm p = *(prm *)vctx;
  lg_tensor *dw = OK(lg_conv2d_grad_weight(in[0], in[1], 2, 3, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw));
  lg_tensor *sq = OK(lg_mul(dw, dw)), *s = OK(lg_sum(sq, 0, NULL, 0)), *gx = NULL;
  CHECK(lg_grad(1, &s, NULL, 1, &in[0], &gx, 1, 1, 0) == 0);
  lg_tensor *t = OK(lg_tanh(gx)), *r = OK(lg_sum(t, 0, NULL, 0));
  lg_release(dw); lg_release(sq); lg_release(s); lg_release(gx); lg_release(t);
  return r;
}

static void test_conv2d_grad_weight_double_backward(void)
{
  prm p = {2, 1, 1, 1, 1, 2, 0, 0};
  lg_tensor *in[2] = {rand4(2, 2, 5, 6, 0), NULL};
  int64_t OH = (5 + 2 - 1 - 1) / 2 + 1, OW = (6 + 2 - 2 * 2 - 1) / 1 + 1;
  in[1] = rand4(2, 3, OH, OW, 0);
  for (int i = 0; i < 2; i++) {
    lg_mul_scalar_(in[i], 0.3f);
    lg_requires_grad_(in[i], 1);
  }
  gradcheck(dw_energy, &p, 2, in, 1e-2, 2e-2, 12);
  lg_release(in[0]);
  lg_release(in[1]);
}

/* ---- errors ------------------------------------------------------------------------------ */
static void test_conv_errors(void)
{
  int64_t xs[4] = {64, 32, 14, 14}, ws[4] = {128, 64, 4, 4}, bs = 7;
  lg_tensor *x = OK(lg_zeros(4, xs)), *w = OK(lg_zeros(4, ws)), *b = OK(lg_zeros(1, &bs));
  FAILS(lg_conv2d(x, w, NULL, 2, 2, 1, 1, 1, 1),
        "conv2d: input 64x32x14x14, weight 128x64x4x4: expected input with 64 channels, got 32");
  int64_t ws2[4] = {128, 32, 4, 4};
  lg_tensor *w2 = OK(lg_zeros(4, ws2));
  FAILS(lg_conv2d(x, w2, b, 1, 1, 0, 0, 1, 1), "bias 7 should have shape 128");
  FAILS(lg_conv2d(x, w2, NULL, 0, 1, 0, 0, 1, 1), "stride 0x1 must be >= 1");
  FAILS(lg_conv2d(x, w2, NULL, 1, 1, -1, 0, 1, 1), "padding");
  FAILS(lg_conv2d(x, w2, NULL, 1, 1, 0, 0, 5, 5), "does not fit");
  FAILS(lg_conv2d(w, x, NULL, 1, 1, 0, 0, 1, 1), "expected input with 32 channels, got 64");
  int64_t v3[3] = {32, 14, 14};
  lg_tensor *x3 = OK(lg_zeros(3, v3));
  FAILS(lg_conv2d(x3, w2, NULL, 1, 1, 0, 0, 1, 1), "expected a 4-D input");
  /* conv_transpose2d: weight (C, OC, KH, KW) */
  FAILS(lg_conv_transpose2d(x, w, NULL, 2, 2, 1, 1, 0, 0, 1, 1),
        "conv_transpose2d: input 64x32x14x14, weight 128x64x4x4: expected input with 128 channels, got 32");
  int64_t wt[4] = {32, 16, 4, 4};
  lg_tensor *wT = OK(lg_zeros(4, wt));
  FAILS(lg_conv_transpose2d(x, wT, NULL, 2, 2, 1, 1, 2, 0, 1, 1), "output padding 2x0");
  FAILS(lg_conv_transpose2d(x, wT, b, 2, 2, 1, 1, 0, 0, 1, 1), "bias 7 should have shape 16");
  int64_t gs[4] = {64, 128, 5, 5};
  lg_tensor *g = OK(lg_zeros(4, gs));
  FAILS(lg_conv2d_grad_weight(x, g, 4, 4, 2, 2, 1, 1, 1, 1), "gives a 7x7 output");
  lg_release(x); lg_release(w); lg_release(b); lg_release(w2); lg_release(x3); lg_release(wT);
  lg_release(g);
}

/* Empty batches and a conv with no grad anywhere record nothing. */
static void test_conv_edge_cases(void)
{
  int64_t xs[4] = {0, 2, 5, 5}, ws[4] = {3, 2, 3, 3};
  lg_tensor *x = OK(lg_zeros(4, xs)), *w = OK(lg_ones(4, ws));
  lg_tensor *y = OK(lg_conv2d(x, w, NULL, 1, 1, 0, 0, 1, 1));
  CHECK(y->shape[0] == 0 && y->shape[1] == 3 && y->shape[2] == 3 && !y->grad_fn);
  lg_tensor *z = OK(lg_conv_transpose2d(y, w, NULL, 1, 1, 0, 0, 0, 0, 1, 1));
  CHECK(z->shape[0] == 0 && z->shape[1] == 2 && z->shape[2] == 5);
  lg_tensor *dw = OK(lg_conv2d_grad_weight(x, y, 3, 3, 1, 1, 0, 0, 1, 1));
  double s = 0;
  for (int64_t i = 0; i < lg_numel(dw); i++) s += fabs(lg_data(dw)[i]);
  CHECK(s == 0);   /* no samples: a zero weight gradient */
  lg_release(x); lg_release(w); lg_release(y); lg_release(z); lg_release(dw);
}

static void test_formulas_linked(void)
{
  CHECK(lg_op_has_formula(LG_OP_CONV2D));
  CHECK(lg_op_has_formula(LG_OP_CONV_TRANSPOSE2D));
  CHECK(lg_op_has_formula(LG_OP_CONV2D_GRAD_WEIGHT));
}

int main(void)
{
  lg_gen_seed(&G, 1234);
  LGT_RUN(test_formulas_linked);
  LGT_RUN(test_im2col_col2im_adjoint);
  LGT_RUN(test_conv2d_random);
  LGT_RUN(test_conv2d_chunks);
  LGT_RUN(test_conv_transpose2d_random);
  LGT_RUN(test_conv2d_grad_weight_random);
  LGT_RUN(test_gradient_penalty_through_convs);
  LGT_RUN(test_conv2d_grad_weight_double_backward);
  LGT_RUN(test_conv_errors);
  LGT_RUN(test_conv_edge_cases);
  return lgt_finish();
}
