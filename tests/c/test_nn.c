/* test_nn.c: pooling, upsampling, normalisation, padding, softmax, dropout,
 * embedding and the losses against naive loops (in double) on random
 * shapes, their gradients and gradients of gradients (finite differences),
 * and their error messages. */
#include <stdlib.h>
#include <string.h>
#include "lgt.h"

static lg_gen G;

static int64_t rnd(int64_t lo, int64_t hi) { return lo + (int64_t)lg_gen_below(&G, hi - lo + 1); }
static lg_tensor *randn_shape(int nd, const int64_t *s) { return lgt_randn(&G, nd, s); }

/* A random tensor; when `strided`, a view with its last two dims transposed
 * in memory (non-contiguous). */
static lg_tensor *rand_t(int nd, const int64_t *s, int strided)
{
  if (!strided || nd < 2) return randn_shape(nd, s);
  int64_t t[LG_MAXDIM];
  memcpy(t, s, sizeof(int64_t) * nd);
  t[nd - 1] = s[nd - 2];
  t[nd - 2] = s[nd - 1];
  lg_tensor *b = randn_shape(nd, t), *v = lg_transpose(b, nd - 2, nd - 1);
  lg_release(b);
  return v;
}

/* Well-separated values (a shuffled ramp with step 0.1) so max and |.| kinks
 * stay farther than the finite-difference step. */
static lg_tensor *ramp(int nd, const int64_t *s)
{
  lg_tensor *t = lg_empty(nd, s);
  int64_t n = lg_numel(t);
  lg_tensor *perm = lg_randperm(&G, n);
  for (int64_t i = 0; i < n; i++) lg_data(t)[i] = (lg_data(perm)[i] - n / 2.0f) * 0.1f;
  lg_release(perm);
  return t;
}

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

static double vdot(const lg_tensor *a, const lg_tensor *b)
{
  double *x = dbl(a), *y = dbl(b), s = 0;
  for (int64_t i = 0; i < lg_numel(a); i++) s += x[i] * y[i];
  free(x);
  free(y);
  return s;
}

static double item(lg_tensor *t)   /* t: a single element */
{
  float v;
  if (lg_numel(t) != 1) { lgt_failed_checks++; fprintf(stderr, "item: not one element\n"); return NAN; }
  lg_read(t, &v);
  return v;
}

static lg_tensor *dot(lg_tensor *y, lg_tensor *r)
{
  lg_tensor *m = OK(lg_mul(y, r)), *s = OK(lg_sum(m, 0, NULL, 0));
  lg_release(m);
  return s;
}

/* ---- finite-difference gradcheck --------------------------------------------------- */
typedef lg_tensor *(*op_fn)(lg_tensor **in, void *ctx);

static void gradcheck_scalar(op_fn fn, void *ctx, int n, lg_tensor **in, double eps, double tol,
                             int samples, const char *what)
{
  lg_tensor *y = OK(fn(in, ctx)), *gr[8] = {0}, *gc[8] = {0};
  /* formulas may take a fused path without a graph: both must agree */
  if (lg_grad(1, &y, NULL, n, in, gc, 1, 1, 1) || lg_grad(1, &y, NULL, n, in, gr, 0, 0, 1)) {
    lgt_failed_checks++;
    fprintf(stderr, "%s: lg_grad failed: %s\n", what, lg_last_error());
  }
  for (int i = 0; i < n; i++) {
    if (gr[i] && gc[i]) CHECK_CLOSE(gc[i], gr[i], 1e-4);
    else CHECK(!gr[i] == !gc[i]);
    lg_release(gc[i]);
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
      double num = (item(a) - item(b)) / (2 * eps), ana = ga[j];
      if (!(fabs(num - ana) <= tol * (1 + fabs(num)))) {
        lgt_failed_checks++;
        fprintf(stderr, "%s: input %d element %lld: analytic %.6g, numeric %.6g\n", what, i,
                (long long)j, ana, num);
      }
      lg_release(a);
      lg_release(b);
    }
    free(ga);
    lg_release(gr[i]);
  }
}

/* First order: S1 = sum(r * f(in)); second order: S2 = sum(tanh(d/d in[0]
 * sum(r * f(in)^2))) checked against all inputs. */
typedef struct { op_fn f; void *ctx; lg_tensor *r; int order2; } gc_ctx;

static lg_tensor *gc_eval(lg_tensor **in, void *vctx)
{
  gc_ctx *c = vctx;
  lg_tensor *y = c->f(in, c->ctx);
  if (!y) return NULL;
  if (!c->r) c->r = randn_shape(y->ndim, y->shape);
  if (!c->order2) {
    lg_tensor *s = dot(y, c->r);
    lg_release(y);
    return s;
  }
  lg_tensor *y2 = OK(lg_mul(y, y)), *s = dot(y2, c->r), *g = NULL;
  if (lg_grad(1, &s, NULL, 1, in, &g, 1, 1, 0)) {
    fprintf(stderr, "inner grad failed: %s\n", lg_last_error());
    lgt_failed_checks++;
  }
  lg_tensor *t = OK(lg_tanh(OK(g))), *r = OK(lg_sum(t, 0, NULL, 0));
  lg_release(y); lg_release(y2); lg_release(s); lg_release(g); lg_release(t);
  return r;
}

/* Gradcheck and gradgradcheck of f at the leaves in[0..n) (made to require grad). */
static void gradchecks(const char *what, op_fn f, void *ctx, int n, lg_tensor **in, double tol)
{
  for (int i = 0; i < n; i++) lg_requires_grad_(in[i], 1);
  for (int order2 = 0; order2 <= 1; order2++) {
    gc_ctx c = {f, ctx, NULL, order2};
    gradcheck_scalar(gc_eval, &c, n, in, 1e-2, 3e-2, 10, what);
    lg_release(c.r);
  }
}

/* ---- pooling ------------------------------------------------------------------------- */
typedef struct { int kh, kw, sh, sw, ph, pw; } pool_prm;

static lg_tensor *ref_pool(lg_tensor *x, pool_prm p, int avg)
{
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t OH = (H + 2 * p.ph - p.kh) / p.sh + 1, OW = (W + 2 * p.pw - p.kw) / p.sw + 1;
  int64_t s[4] = {N, C, OH, OW};
  double *xd = dbl(x), *y = calloc(N * C * OH * OW + 1, sizeof(double));
  for (int64_t q = 0; q < N * C; q++)
    for (int64_t i = 0; i < OH; i++)
      for (int64_t j = 0; j < OW; j++) {
        double m = -INFINITY, sum = 0;
        for (int64_t a = 0; a < p.kh; a++)
          for (int64_t b = 0; b < p.kw; b++) {
            int64_t h = i * p.sh - p.ph + a, w = j * p.sw - p.pw + b;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            double v = xd[(q * H + h) * W + w];
            if (v > m) m = v;
            sum += v;
          }
        y[(q * OH + i) * OW + j] = avg ? sum / (p.kh * p.kw) : m;
      }
  lg_tensor *r = from_dbl(4, s, y);
  free(xd);
  free(y);
  return r;
}

static pool_prm rand_pool(void)
{
  pool_prm p;
  p.kh = (int)rnd(1, 4); p.kw = (int)rnd(1, 4);
  p.sh = (int)rnd(1, 3); p.sw = (int)rnd(1, 3);
  p.ph = (int)rnd(0, p.kh / 2); p.pw = (int)rnd(0, p.kw / 2);
  return p;
}

static lg_tensor *f_maxpool(lg_tensor **in, void *c)
{
  pool_prm *p = c;
  return lg_max_pool2d(in[0], p->kh, p->kw, p->sh, p->sw, p->ph, p->pw);
}

static lg_tensor *f_avgpool(lg_tensor **in, void *c)
{
  pool_prm *p = c;
  return lg_avg_pool2d(in[0], p->kh, p->kw, p->sh, p->sw, p->ph, p->pw);
}

static void test_pooling_random(void)
{
  for (int it = 0; it < 40; it++) {
    pool_prm p = rand_pool();
    int64_t s[4] = {rnd(1, 2), rnd(1, 3), rnd(1, 8), rnd(1, 8)};
    if (s[2] + 2 * p.ph < p.kh || s[3] + 2 * p.pw < p.kw) continue;
    int strided = (int)rnd(0, 1);
    lg_tensor *x = OK(rand_t(4, s, strided));
    lg_tensor *ym = OK(lg_max_pool2d(x, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw));
    lg_tensor *ya = OK(lg_avg_pool2d(x, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw));
    lg_tensor *rm = ref_pool(x, p, 0), *ra = ref_pool(x, p, 1);
    CHECK_CLOSE(ym, rm, 1e-6);
    CHECK_CLOSE(ya, ra, 1e-5);
    /* avg_pool2d_backward is the adjoint of avg_pool2d */
    lg_tensor *g = OK(randn_shape(4, ya->shape));
    lg_tensor *gb = OK(lg_avg_pool2d_backward(g, s[2], s[3], p.kh, p.kw, p.sh, p.sw, p.ph, p.pw));
    CHECK_NEAR(vdot(ya, g), vdot(x, gb), 1e-4);
    lg_release(x); lg_release(ym); lg_release(ya); lg_release(rm); lg_release(ra);
    lg_release(g); lg_release(gb);
  }
}

static void test_pooling_grads(void)
{
  pool_prm ps[3] = {{2, 2, 2, 2, 0, 0}, {3, 2, 2, 1, 1, 1}, {3, 3, 1, 2, 1, 0}};
  for (int k = 0; k < 3; k++) {
    int64_t s[4] = {2, 2, 5, 6};
    lg_tensor *x = ramp(4, s);
    gradchecks("max_pool2d", f_maxpool, &ps[k], 1, &x, 3e-2);
    lg_release(x);
    x = randn_shape(4, s);
    gradchecks("avg_pool2d", f_avgpool, &ps[k], 1, &x, 3e-2);
    lg_release(x);
  }
  /* the max-pool gradient lands on the argmax only */
  float v[8] = {1, 5, 2, 0, 3, 4, 9, -1};
  int64_t s[4] = {1, 1, 2, 4};
  lg_tensor *x = OK(lg_from_data(4, s, v));
  lg_requires_grad_(x, 1);
  lg_tensor *y = OK(lg_max_pool2d(x, 2, 2, 2, 2, 0, 0)), *t = OK(lg_sum(y, 0, NULL, 0));
  CHECK(lg_data(y)[0] == 5 && lg_data(y)[1] == 9);
  CHECK(lg_backward(1, &t, NULL, 0, 0) == 0);
  float want[8] = {0, 1, 0, 0, 0, 0, 1, 0};
  for (int i = 0; i < 8; i++) CHECK(lg_data(x->grad)[i] == want[i]);
  lg_release(x); lg_release(y); lg_release(t);
}

static void test_gather_scatter_adjoint(void)
{
  int64_t xs[4] = {2, 3, 4, 5}, is[4] = {2, 3, 3, 2}, gs[4] = {2, 3, 3, 2};
  lg_tensor *x = OK(randn_shape(4, xs)), *idx = OK(lg_randint(&G, 0, 20, 4, is));
  lg_tensor *g = OK(randn_shape(4, gs));
  lg_tensor *a = OK(lg_pool_gather(x, idx)), *b = OK(lg_pool_scatter(g, idx, 4, 5));
  CHECK_NEAR(vdot(a, g), vdot(x, b), 1e-5);
  for (int64_t i = 0; i < lg_numel(a); i++) {
    int64_t plane = i / 6;
    CHECK(lg_data(a)[i] == lg_data(x)[plane * 20 + (int64_t)lg_data(idx)[i]]);
  }
  float bad[1] = {20};
  int64_t one[2] = {1, 1};
  lg_tensor *bi = OK(lg_from_data(2, one, bad));
  FAILS(lg_pool_gather(x, bi), "index 20 is not a position in a plane of 20 cells");
  lg_release(x); lg_release(idx); lg_release(g); lg_release(a); lg_release(b); lg_release(bi);
}

/* ---- upsampling ----------------------------------------------------------------------- */
static lg_tensor *ref_upsample(lg_tensor *x, int sh, int sw, int bilinear)
{
  int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t OH = H * sh, OW = W * sw, s[4] = {x->shape[0], x->shape[1], OH, OW};
  double *xd = dbl(x), *y = calloc(P * OH * OW + 1, sizeof(double));
  for (int64_t q = 0; q < P; q++)
    for (int64_t i = 0; i < OH; i++)
      for (int64_t j = 0; j < OW; j++) {
        double v;
        if (!bilinear) v = xd[(q * H + i / sh) * W + j / sw];
        else {
          /* PyTorch align_corners=False: src = (dst + 0.5) / scale - 0.5, clamped at 0 */
          double hs = fmax((i + 0.5) / sh - 0.5, 0), ws = fmax((j + 0.5) / sw - 0.5, 0);
          int64_t h0 = (int64_t)hs, w0 = (int64_t)ws;
          int64_t h1 = h0 + (h0 < H - 1), w1 = w0 + (w0 < W - 1);
          double lh = hs - h0, lw = ws - w0;
          const double *p = xd + q * H * W;
          v = (1 - lh) * ((1 - lw) * p[h0 * W + w0] + lw * p[h0 * W + w1]) +
              lh * ((1 - lw) * p[h1 * W + w0] + lw * p[h1 * W + w1]);
        }
        y[(q * OH + i) * OW + j] = v;
      }
  lg_tensor *r = from_dbl(4, s, y);
  free(xd);
  free(y);
  return r;
}

typedef struct { int sh, sw, mode; } up_prm;
static lg_tensor *f_up(lg_tensor **in, void *c)
{
  up_prm *p = c;
  return lg_upsample(in[0], p->sh, p->sw, p->mode);
}

static void test_upsample(void)
{
  for (int it = 0; it < 30; it++) {
    int sh = (int)rnd(1, 3), sw = (int)rnd(1, 3), mode = (int)rnd(0, 1);
    int64_t s[4] = {rnd(1, 2), rnd(1, 3), rnd(1, 6), rnd(1, 6)};
    lg_tensor *x = OK(rand_t(4, s, (int)rnd(0, 1)));
    lg_tensor *y = OK(lg_upsample(x, sh, sw, mode)), *r = ref_upsample(x, sh, sw, mode);
    CHECK_CLOSE(y, r, 1e-5);
    if (mode == 1) {
      lg_tensor *g = OK(randn_shape(4, y->shape));
      lg_tensor *gb = OK(lg_upsample_bilinear_backward(g, s[2], s[3], sh, sw));
      CHECK_NEAR(vdot(y, g), vdot(x, gb), 1e-4);
      lg_release(g);
      lg_release(gb);
    }
    lg_release(x); lg_release(y); lg_release(r);
  }
  for (int mode = 0; mode <= 1; mode++) {
    up_prm p = {2, 3, mode};
    int64_t s[4] = {1, 2, 3, 2};
    lg_tensor *x = randn_shape(4, s);
    gradchecks(mode ? "upsample bilinear" : "upsample nearest", f_up, &p, 1, &x, 3e-2);
    lg_release(x);
  }
  int64_t s[4] = {1, 1, 2, 2};
  lg_tensor *x = OK(lg_zeros(4, s));
  FAILS(lg_upsample(x, 0, 2, 0), "scale 0x2 must be a whole number >= 1");
  FAILS(lg_upsample(x, 2, 2, 7), "unknown mode 7");
  lg_release(x);
}

/* ---- batch norm ----------------------------------------------------------------------- */
/* x: (N,C,S...) normalised per channel with biased variance; also the batch
 * mean and unbiased variance for the running statistics. */
static lg_tensor *ref_bn(lg_tensor *x, lg_tensor *w, lg_tensor *b, double eps, double *mean,
                         double *uvar)
{
  int64_t N = x->shape[0], C = x->shape[1], S = lg_numel(x) / (N * C);
  double *xd = dbl(x), *wd = w ? dbl(w) : NULL, *bd = b ? dbl(b) : NULL;
  double *y = malloc(sizeof(double) * (lg_numel(x) + 1));
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0, M = (double)N * S;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) s += xd[(n * C + c) * S + i];
    double m = s / M;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) q += pow(xd[(n * C + c) * S + i] - m, 2);
    if (mean) mean[c] = m;
    if (uvar) uvar[c] = q / (M - 1);
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        int64_t k = (n * C + c) * S + i;
        y[k] = (xd[k] - m) / sqrt(q / M + eps) * (wd ? wd[c] : 1) + (bd ? bd[c] : 0);
      }
  }
  lg_tensor *r = from_dbl(x->ndim, x->shape, y);
  free(xd); free(wd); free(bd); free(y);
  return r;
}

static void test_batch_norm_forward(void)
{
  for (int it = 0; it < 20; it++) {
    int nd = (int)rnd(2, 4);
    int64_t s[4] = {rnd(2, 5), rnd(1, 4), rnd(1, 4), rnd(1, 4)};
    int64_t C = s[1];
    lg_tensor *x = OK(rand_t(nd, s, (int)rnd(0, 1)));
    int affine = (int)rnd(0, 1);
    lg_tensor *w = affine ? OK(randn_shape(1, &C)) : NULL, *b = affine ? OK(randn_shape(1, &C)) : NULL;
    lg_tensor *rm = OK(randn_shape(1, &C)), *rv = OK(lg_rand(&G, 1, &C));
    double *rm0 = dbl(rm), *rv0 = dbl(rv), mean[8], uvar[8];
    lg_tensor *y = OK(lg_batch_norm(x, rm, rv, w, b, 1, 0.3f, 1e-3f));
    lg_tensor *r = ref_bn(x, w, b, 1e-3, mean, uvar);
    CHECK_CLOSE(y, r, 1e-4);
    for (int64_t c = 0; c < C; c++) {
      CHECK_NEAR(lg_data(rm)[c], 0.7 * rm0[c] + 0.3 * mean[c], 1e-5);
      CHECK_NEAR(lg_data(rv)[c], 0.7 * rv0[c] + 0.3 * uvar[c], 1e-5);
    }
    /* eval: (x - rm) / sqrt(rv + eps) * w + b with the running statistics */
    lg_tensor *e = OK(lg_batch_norm(x, rm, rv, w, b, 0, 0.3f, 1e-3f));
    double *xd = dbl(x), *ed = dbl(e);
    int64_t S = lg_numel(x) / (s[0] * C);
    for (int64_t k = 0; k < lg_numel(x); k++) {
      int64_t c = (k / S) % C;
      double want = (xd[k] - lg_data(rm)[c]) / sqrt(lg_data(rv)[c] + 1e-3) *
                    (w ? lg_data(w)[c] : 1) + (b ? lg_data(b)[c] : 0);
      CHECK_NEAR(ed[k], want, 1e-4);
    }
    free(xd); free(ed); free(rm0); free(rv0);
    lg_release(x); lg_release(w); lg_release(b); lg_release(rm); lg_release(rv);
    lg_release(y); lg_release(r); lg_release(e);
  }
}

/* Fused backward (no graph) against the ops backward (create_graph) and
 * against finite differences. */
static void test_batch_norm_backward_paths(void)
{
  int64_t s[4] = {4, 3, 2, 3}, C = 3;
  for (int affine = 0; affine <= 1; affine++) {
    lg_tensor *x = OK(rand_t(4, s, 1)), *w = OK(randn_shape(1, &C)), *b = OK(randn_shape(1, &C));
    lg_requires_grad_(x, 1);
    lg_requires_grad_(w, 1);
    lg_requires_grad_(b, 1);
    lg_tensor *in[3] = {x, w, b}, *g1[3] = {0}, *g2[3] = {0};
    lg_tensor *y = OK(lg_batch_norm(x, NULL, NULL, affine ? w : NULL, affine ? b : NULL, 1, 0.1f,
                                    1e-5f));
    lg_tensor *r = OK(randn_shape(4, s)), *t = dot(y, r);
    CHECK(lg_grad(1, &t, NULL, affine ? 3 : 1, in, g1, 1, 0, 0) == 0);
    CHECK(lg_grad(1, &t, NULL, affine ? 3 : 1, in, g2, 0, 1, 0) == 0);
    CHECK(g1[0] && !g1[0]->grad_fn && g2[0] && g2[0]->requires_grad);
    for (int i = 0; i < (affine ? 3 : 1); i++) CHECK_CLOSE(g1[i], g2[i], 1e-4);
    for (int i = 0; i < 3; i++) { lg_release(g1[i]); lg_release(g2[i]); }
    lg_release(x); lg_release(w); lg_release(b); lg_release(y); lg_release(r); lg_release(t);
  }
}

typedef struct { int affine, nd; } bn_prm;
static lg_tensor *f_bn(lg_tensor **in, void *c)
{
  bn_prm *p = c;
  return lg_batch_norm(in[0], NULL, NULL, p->affine ? in[1] : NULL, p->affine ? in[2] : NULL, 1,
                       0.1f, 1e-5f);
}

static void test_batch_norm_gradchecks(void)
{
  int64_t s4[4] = {3, 2, 2, 2}, s2[2] = {5, 3};
  for (int k = 0; k < 2; k++) {
    bn_prm p = {1, k ? 2 : 4};
    int64_t C = k ? 3 : 2;
    lg_tensor *in[3] = {randn_shape(p.nd, k ? s2 : s4), randn_shape(1, &C), randn_shape(1, &C)};
    gradchecks("batch_norm", f_bn, &p, 3, in, 3e-2);
    for (int i = 0; i < 3; i++) lg_release(in[i]);
  }
}

static void test_batch_norm_errors(void)
{
  int64_t s[4] = {4, 3, 2, 2}, C4 = 4, one[2] = {1, 3};
  lg_tensor *x = OK(lg_zeros(4, s)), *w = OK(lg_ones(1, &C4)), *x1 = OK(lg_zeros(2, one));
  FAILS(lg_batch_norm(x, NULL, NULL, w, NULL, 1, 0.1f, 1e-5f),
        "batch_norm: input 4x3x2x2: weight 4 should have shape 3");
  FAILS(lg_batch_norm(x, NULL, NULL, NULL, NULL, 0, 0.1f, 1e-5f), "eval mode needs running statistics");
  FAILS(lg_batch_norm(x1, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), "more than 1 value per channel");
  FAILS(lg_batch_norm(w, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), "at least 2 dims");
  lg_release(x); lg_release(w); lg_release(x1);
}

/* ---- layer norm and instance norm --------------------------------------------------------- */
static lg_tensor *ref_ln(lg_tensor *x, int k, lg_tensor *w, lg_tensor *b, double eps)
{
  int64_t D = 1;
  for (int d = x->ndim - k; d < x->ndim; d++) D *= x->shape[d];
  int64_t R = lg_numel(x) / D;
  double *xd = dbl(x), *wd = w ? dbl(w) : NULL, *bd = b ? dbl(b) : NULL;
  double *y = malloc(sizeof(double) * (lg_numel(x) + 1));
  for (int64_t r = 0; r < R; r++) {
    double m = 0, q = 0;
    for (int64_t i = 0; i < D; i++) m += xd[r * D + i] / D;
    for (int64_t i = 0; i < D; i++) q += pow(xd[r * D + i] - m, 2) / D;
    for (int64_t i = 0; i < D; i++)
      y[r * D + i] = (xd[r * D + i] - m) / sqrt(q + eps) * (wd ? wd[i] : 1) + (bd ? bd[i] : 0);
  }
  lg_tensor *t = from_dbl(x->ndim, x->shape, y);
  free(xd); free(wd); free(bd); free(y);
  return t;
}

typedef struct { int k, affine; } ln_prm;
static lg_tensor *f_ln(lg_tensor **in, void *c)
{
  ln_prm *p = c;
  return lg_layer_norm(in[0], p->k, p->affine ? in[1] : NULL, p->affine ? in[2] : NULL, 1e-5f);
}
static lg_tensor *f_in(lg_tensor **in, void *c)
{
  (void)c;
  return lg_instance_norm(in[0], in[1], in[2], 1e-5f);
}

static void test_layer_and_instance_norm(void)
{
  for (int it = 0; it < 15; it++) {
    int nd = (int)rnd(2, 4), k = (int)rnd(1, nd);
    int64_t s[4] = {rnd(1, 3), rnd(2, 4), rnd(1, 4), rnd(2, 4)};
    if (k == nd && nd == 2 && s[0] * s[1] < 2) continue;
    lg_tensor *x = OK(rand_t(nd, s, (int)rnd(0, 1)));
    const int64_t *ns = s + nd - k;
    lg_tensor *w = OK(randn_shape(k, ns)), *b = OK(randn_shape(k, ns));
    lg_tensor *y = OK(lg_layer_norm(x, k, w, b, 1e-5f)), *r = ref_ln(x, k, w, b, 1e-5);
    CHECK_CLOSE(y, r, 1e-4);
    lg_release(x); lg_release(w); lg_release(b); lg_release(y); lg_release(r);
  }
  int64_t s[3] = {2, 3, 4}, ws[2] = {3, 4};
  ln_prm p = {2, 1};
  lg_tensor *in[3] = {randn_shape(3, s), randn_shape(2, ws), randn_shape(2, ws)};
  gradchecks("layer_norm", f_ln, &p, 3, in, 3e-2);
  for (int i = 0; i < 3; i++) lg_release(in[i]);

  /* instance norm: batch norm of each (n, c) plane, then the affine map */
  int64_t xs[4] = {2, 3, 3, 2}, C = 3;
  lg_tensor *x = OK(rand_t(4, xs, 1)), *w = OK(randn_shape(1, &C)), *b = OK(randn_shape(1, &C));
  lg_tensor *y = OK(lg_instance_norm(x, w, b, 1e-5f));
  double *xd = dbl(x), *yd = dbl(y);
  for (int64_t q = 0; q < 6; q++) {
    double m = 0, v = 0;
    for (int i = 0; i < 6; i++) m += xd[q * 6 + i] / 6;
    for (int i = 0; i < 6; i++) v += pow(xd[q * 6 + i] - m, 2) / 6;
    for (int i = 0; i < 6; i++)
      CHECK_NEAR(yd[q * 6 + i], (xd[q * 6 + i] - m) / sqrt(v + 1e-5) * lg_data(w)[q % 3] +
                                lg_data(b)[q % 3], 1e-4);
  }
  free(xd); free(yd);
  lg_tensor *in2[3] = {randn_shape(4, xs), randn_shape(1, &C), randn_shape(1, &C)};
  gradchecks("instance_norm", f_in, NULL, 3, in2, 3e-2);
  for (int i = 0; i < 3; i++) lg_release(in2[i]);
  int64_t bad[2] = {3, 5};
  lg_tensor *wb = OK(lg_ones(2, bad));
  FAILS(lg_layer_norm(x, 2, wb, NULL, 1e-5f), "layer_norm: input 2x3x3x2: weight 3x5 should have shape 3x2");
  FAILS(lg_layer_norm(x, 5, NULL, NULL, 1e-5f), "cannot normalise over the last 5 dims");
  FAILS(lg_instance_norm(w, NULL, NULL, 1e-5f), "at least 3 dims");
  lg_release(x); lg_release(w); lg_release(b); lg_release(y); lg_release(wb);
}

/* ---- padding ------------------------------------------------------------------------------ */
typedef struct { int l, r, t, b, mode; float value; } pad_prm;
static lg_tensor *f_pad(lg_tensor **in, void *c)
{
  pad_prm *p = c;
  return lg_pad(in[0], p->l, p->r, p->t, p->b, p->mode, p->value);
}

static void test_pad(void)
{
  for (int it = 0; it < 30; it++) {
    int nd = (int)rnd(2, 4);
    int64_t s[4] = {rnd(1, 3), rnd(1, 5), rnd(1, 5), rnd(1, 5)};
    int64_t H = s[nd - 2], W = s[nd - 1];
    pad_prm p = {(int)rnd(0, 3), (int)rnd(0, 3), (int)rnd(0, 3), (int)rnd(0, 3), (int)rnd(0, 1),
                 (float)rnd(-2, 2)};
    if (p.mode == 1 && (p.l >= W || p.r >= W || p.t >= H || p.b >= H)) continue;
    lg_tensor *x = OK(rand_t(nd, s, (int)rnd(0, 1)));
    lg_tensor *y = OK(lg_pad(x, p.l, p.r, p.t, p.b, p.mode, p.value));
    int64_t OH = H + p.t + p.b, OW = W + p.l + p.r, P = lg_numel(x) / (H * W);
    CHECK(y->shape[nd - 2] == OH && y->shape[nd - 1] == OW);
    double *xd = dbl(x), *yd = dbl(y);
    for (int64_t q = 0; q < P; q++)
      for (int64_t i = 0; i < OH; i++)
        for (int64_t j = 0; j < OW; j++) {
          int64_t h = i - p.t, w = j - p.l;
          double want;
          if (p.mode == 0) {
            want = h < 0 || h >= H || w < 0 || w >= W ? p.value : xd[(q * H + h) * W + w];
          } else {
            h = h < 0 ? -h : h >= H ? 2 * (H - 1) - h : h;
            w = w < 0 ? -w : w >= W ? 2 * (W - 1) - w : w;
            want = xd[(q * H + h) * W + w];
          }
          CHECK(yd[(q * OH + i) * OW + j] == want);
        }
    if (p.mode == 1) {
      lg_tensor *g = OK(randn_shape(nd, y->shape));
      lg_tensor *gb = OK(lg_reflect_pad_backward(g, p.l, p.r, p.t, p.b));
      CHECK_NEAR(vdot(y, g), vdot(x, gb), 1e-4);
      lg_release(g);
      lg_release(gb);
    }
    free(xd); free(yd);
    lg_release(x); lg_release(y);
  }
  for (int mode = 0; mode <= 1; mode++) {
    pad_prm p = {1, 2, 2, 1, mode, 0.5f};
    int64_t s[4] = {1, 2, 3, 3};
    lg_tensor *x = randn_shape(4, s);
    gradchecks(mode ? "pad reflect" : "pad constant", f_pad, &p, 1, &x, 3e-2);
    lg_release(x);
  }
  int64_t s[2] = {2, 2};
  lg_tensor *x = OK(lg_zeros(2, s));
  FAILS(lg_pad(x, 2, 0, 0, 0, 1, 0), "reflection padding 2,0,0,0 must be smaller");
  FAILS(lg_pad(x, -1, 0, 0, 0, 0, 0), "padding -1,0,0,0 must be >= 0");
  FAILS(lg_pad(x, 0, 0, 0, 0, 3, 0), "unknown mode 3");
  lg_release(x);
}

/* ---- softmax ------------------------------------------------------------------------------ */
typedef struct { int dim, log; } sm_prm;
static lg_tensor *f_sm(lg_tensor **in, void *c)
{
  sm_prm *p = c;
  return p->log ? lg_log_softmax(in[0], p->dim) : lg_softmax(in[0], p->dim);
}

static void test_softmax(void)
{
  for (int it = 0; it < 30; it++) {
    int nd = (int)rnd(1, 4), dim = (int)rnd(-nd, nd - 1), d = dim < 0 ? dim + nd : dim;
    int64_t s[4] = {rnd(1, 4), rnd(1, 4), rnd(1, 4), rnd(1, 4)};
    lg_tensor *x = OK(rand_t(nd, s, (int)rnd(0, 1)));
    lg_mul_scalar_(x, 5);
    lg_tensor *y = OK(lg_softmax(x, dim)), *ly = OK(lg_log_softmax(x, dim));
    double *xd = dbl(x), *yd = dbl(y), *lyd = dbl(ly);
    int64_t O = 1, D = s[d], I = 1;
    for (int k = 0; k < d; k++) O *= s[k];
    for (int k = d + 1; k < nd; k++) I *= s[k];
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < I; i++) {
        double z = 0;
        for (int64_t j = 0; j < D; j++) z += exp(xd[(o * D + j) * I + i]);
        for (int64_t j = 0; j < D; j++) {
          int64_t k = (o * D + j) * I + i;
          CHECK_NEAR(yd[k], exp(xd[k]) / z, 1e-5);
          CHECK_NEAR(lyd[k], xd[k] - log(z), 1e-5);
        }
      }
    free(xd); free(yd); free(lyd);
    lg_release(x); lg_release(y); lg_release(ly);
  }
  /* large logits stay finite */
  float big[3] = {1000, 0, -1000};
  lg_tensor *b = OK(lg_from_data(1, (int64_t[1]){3}, big)), *lb = OK(lg_log_softmax(b, 0));
  CHECK(lg_data(lb)[0] == 0 && lg_data(lb)[1] == -1000);
  lg_release(b); lg_release(lb);
  int64_t s[3] = {2, 3, 2};
  for (int log = 0; log <= 1; log++) {
    sm_prm p = {1, log};
    lg_tensor *x = randn_shape(3, s);
    gradchecks(log ? "log_softmax" : "softmax", f_sm, &p, 1, &x, 3e-2);
    lg_release(x);
  }
  lg_tensor *x = OK(lg_zeros(3, s));
  FAILS(lg_softmax(x, 3), "softmax");
  lg_release(x);
}

/* ---- dropout and embedding ------------------------------------------------------------------- */
static void test_dropout(void)
{
  int64_t n = 20000;
  lg_tensor *x = OK(lg_ones(1, &n));
  lg_requires_grad_(x, 1);
  lg_gen g1, g2;
  lg_gen_seed(&g1, 5);
  lg_gen_seed(&g2, 5);
  lg_tensor *y = OK(lg_dropout(&g1, x, 0.3f, 1)), *y2 = OK(lg_dropout(&g2, x, 0.3f, 1));
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; i++) {
    float v = lg_data(y)[i];
    if (v == 0) zeros++;
    else CHECK_NEAR(v, 1 / 0.7, 1e-6);
  }
  CHECK(zeros > 0.27 * n && zeros < 0.33 * n);
  CHECK(lgt_maxdiff(y, y2) == 0);               /* the same seed, the same mask */
  lg_tensor *s = OK(lg_sum(y, 0, NULL, 0));
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  CHECK(lgt_maxdiff(x->grad, y) == 0);          /* the gradient is the mask */
  lg_tensor *e = OK(lg_dropout(NULL, x, 0.3f, 0));
  CHECK(e == x);                                /* eval: the input itself */
  lg_tensor *z = OK(lg_dropout(NULL, x, 1, 1));
  CHECK(lg_data(z)[0] == 0 && lg_data(z)[n - 1] == 0);
  FAILS(lg_dropout(NULL, x, 1.5f, 1), "probability 1.5 is not in [0, 1]");
  lg_release(x); lg_release(y); lg_release(y2); lg_release(s); lg_release(e); lg_release(z);
}

static void test_embedding(void)
{
  int64_t ws[2] = {5, 3}, is[2] = {2, 3};
  float iv[6] = {4, 0, 4, 1, 1, 2};
  lg_tensor *w = OK(randn_shape(2, ws)), *idx = OK(lg_from_data(2, is, iv));
  lg_requires_grad_(w, 1);
  lg_tensor *y = OK(lg_embedding(idx, w));
  CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 3);
  for (int k = 0; k < 6; k++)
    for (int j = 0; j < 3; j++) CHECK(lg_data(y)[k * 3 + j] == lg_data(w)[(int)iv[k] * 3 + j]);
  lg_tensor *s = OK(lg_sum(y, 0, NULL, 0));
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  float cnt[5] = {1, 2, 1, 0, 2};               /* how often each row was picked */
  for (int r = 0; r < 5; r++)
    for (int j = 0; j < 3; j++) CHECK(lg_data(w->grad)[r * 3 + j] == cnt[r]);
  float bad[1] = {5};
  lg_tensor *bi = OK(lg_from_data(1, (int64_t[1]){1}, bad));
  FAILS(lg_embedding(bi, w), "embedding: index 5 is not in [0, 5)");
  lg_release(w); lg_release(idx); lg_release(y); lg_release(s); lg_release(bi);
}

/* ---- losses -------------------------------------------------------------------------------------- */
static double ref_elem(int kind, double x, double y)
{
  if (kind == 0) return fmax(x, 0) - x * y + log1p(exp(-fabs(x)));
  return kind == 1 ? (x - y) * (x - y) : fabs(x - y);
}

typedef lg_tensor *(*loss_fn)(lg_tensor *, lg_tensor *, int);
static const loss_fn losses[3] = {lg_bce_with_logits, lg_mse_loss, lg_l1_loss};
typedef struct { int kind, red; } loss_prm;
static lg_tensor *f_loss(lg_tensor **in, void *c)
{
  loss_prm *p = c;
  return losses[p->kind](in[0], in[1], p->red);
}

static void test_elementwise_losses(void)
{
  for (int it = 0; it < 30; it++) {
    int kind = (int)rnd(0, 2), red = (int)rnd(0, 2), nd = (int)rnd(1, 3);
    int64_t s[3] = {rnd(1, 5), rnd(1, 5), rnd(1, 5)}, ys[3];
    memcpy(ys, s, sizeof s);
    int bc = (int)rnd(0, 2);                      /* target broadcast: none, a size-1 dim, scalar */
    if (bc == 1) ys[nd - 1] = 1;
    lg_tensor *x = OK(rand_t(nd, s, (int)rnd(0, 1)));
    lg_mul_scalar_(x, 3);
    lg_tensor *y = bc == 2 ? OK(lg_scalar(0.25f)) : OK(lg_rand(&G, nd, ys));
    lg_tensor *l = OK(losses[kind](x, y, red));
    double *xd = dbl(x), acc = 0;
    lg_tensor *ye = OK(lg_expand(y, nd, s)), *yc = OK(lg_contiguous(ye));
    double *yd = dbl(yc), *ld = dbl(l);
    int64_t n = lg_numel(x);
    for (int64_t i = 0; i < n; i++) {
      double v = ref_elem(kind, xd[i], yd[i]);
      acc += v;
      if (red == 0) CHECK_NEAR(ld[i], v, 1e-5);
    }
    if (red == 1) CHECK_NEAR(item(l), acc / n, 1e-5);
    if (red == 2) CHECK_NEAR(item(l), acc, 1e-5);
    CHECK(red == 0 ? lg_same_shape(l, x) : l->ndim == 0);
    free(xd); free(yd); free(ld);
    lg_release(x); lg_release(y); lg_release(l); lg_release(ye); lg_release(yc);
  }
  /* extreme logits: bce stays finite and exact */
  float xv[2] = {100, -100}, yv[2] = {0, 0};
  lg_tensor *x = OK(lg_from_data(1, (int64_t[1]){2}, xv)), *y = OK(lg_from_data(1, (int64_t[1]){2}, yv));
  lg_tensor *l = OK(lg_bce_with_logits(x, y, 0));
  CHECK_NEAR(lg_data(l)[0], 100, 1e-6);
  CHECK(lg_data(l)[1] >= 0 && lg_data(l)[1] < 1e-30);
  lg_release(x); lg_release(y); lg_release(l);
  /* gradients (x and target), every reduction */
  for (int kind = 0; kind < 3; kind++)
    for (int red = 0; red < 3; red++) {
      loss_prm p = {kind, red};
      int64_t s[2] = {3, 4}, ys[2] = {1, 4};
      lg_tensor *in[2] = {ramp(2, s), lg_rand(&G, 2, ys)};
      if (kind == 2) {                                /* keep x - y away from 0 */
        lg_mul_scalar_(in[1], 0.01f);
        lg_add_scalar_(in[1], 0.05f);
      }
      gradchecks(kind == 0 ? "bce_with_logits" : kind == 1 ? "mse_loss" : "l1_loss", f_loss, &p,
                 2, in, 3e-2);
      lg_release(in[0]);
      lg_release(in[1]);
    }
  int64_t a[2] = {4, 1}, b[1] = {4};
  lg_tensor *xa = OK(lg_zeros(2, a)), *yb = OK(lg_zeros(1, b));
  FAILS(lg_mse_loss(yb, xa, 1), "mse_loss: target 4x1 does not broadcast to the input shape 4");
  FAILS(lg_bce_with_logits(xa, yb, 5), "unknown reduction 5");
  lg_release(xa); lg_release(yb);
}

typedef struct { int red, probs; lg_tensor *t; } ce_prm;
static lg_tensor *f_ce(lg_tensor **in, void *c)
{
  ce_prm *p = c;
  return lg_cross_entropy(in[0], p->probs ? in[1] : p->t, p->red);
}

static void test_cross_entropy_and_nll(void)
{
  for (int it = 0; it < 20; it++) {
    int nd = (int)rnd(2, 3), red = (int)rnd(0, 2);
    int64_t s[3] = {rnd(1, 4), rnd(1, 5), rnd(1, 3)}, ts[2] = {s[0], s[2]};
    int64_t N = s[0], C = s[1], R = nd == 3 ? s[2] : 1;
    lg_tensor *x = OK(rand_t(nd, s, (int)rnd(0, 1)));
    lg_tensor *t = OK(lg_randint(&G, 0, C, nd - 1, ts));
    lg_tensor *l = OK(lg_cross_entropy(x, t, red));
    lg_tensor *lp = OK(lg_log_softmax(x, 1)), *nl = OK(lg_nll_loss(lp, t, red));
    CHECK_CLOSE(l, nl, 1e-6);
    double *xd = dbl(x), *td = dbl(t), *ld = dbl(l), acc = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t r = 0; r < R; r++) {
        double z = 0;
        for (int64_t c = 0; c < C; c++) z += exp(xd[(n * C + c) * R + r]);
        double v = log(z) - xd[(n * C + (int64_t)td[n * R + r]) * R + r];
        acc += v;
        if (red == 0) CHECK_NEAR(ld[n * R + r], v, 1e-5);
      }
    if (red == 1) CHECK_NEAR(item(l), acc / (N * R), 1e-5);
    if (red == 2) CHECK_NEAR(item(l), acc, 1e-5);
    /* probabilities: one-hot targets give the same loss */
    lg_tensor *oh = OK(lg_zeros(nd, s));
    for (int64_t n = 0; n < N; n++)
      for (int64_t r = 0; r < R; r++) lg_data(oh)[(n * C + (int64_t)td[n * R + r]) * R + r] = 1;
    lg_tensor *lq = OK(lg_cross_entropy(x, oh, red));
    CHECK_CLOSE(lq, l, 1e-5);
    free(xd); free(td); free(ld);
    lg_release(x); lg_release(t); lg_release(l); lg_release(lp); lg_release(nl);
    lg_release(oh); lg_release(lq);
  }
  int64_t s[2] = {3, 4}, ts[1] = {3};
  lg_tensor *t = OK(lg_randint(&G, 0, 4, 1, ts));
  for (int probs = 0; probs <= 1; probs++) {
    ce_prm p = {1, probs, t};
    lg_tensor *in[2] = {randn_shape(2, s), lg_rand(&G, 2, s)};
    gradchecks("cross_entropy", f_ce, &p, probs ? 2 : 1, in, 3e-2);
    lg_release(in[0]);
    lg_release(in[1]);
  }
  lg_tensor *x = OK(lg_zeros(2, s));
  float bad[3] = {0, 4, 1};
  lg_tensor *tb = OK(lg_from_data(1, ts, bad)), *t2 = OK(lg_zeros(2, (int64_t[2]){3, 1}));
  FAILS(lg_cross_entropy(x, tb, 1), "target 4 at position 1 is not a class index in [0, 4)");
  FAILS(lg_nll_loss(x, t2, 1), "nll_loss: input 3x4, target 3x1: expected a target of shape 3");
  FAILS(lg_cross_entropy(t, t, 1), "expected (N,C)");
  lg_release(t); lg_release(x); lg_release(tb); lg_release(t2);
}

/* every op of lg_ops_nn.def has its formula linked in (conv ones: test_conv.c) */
static void test_formulas_linked(void)
{
  int ops[] = {LG_OP_POOL_GATHER,
               LG_OP_POOL_SCATTER, LG_OP_AVG_POOL2D, LG_OP_AVG_POOL2D_BACKWARD,
               LG_OP_UPSAMPLE_BILINEAR, LG_OP_UPSAMPLE_BILINEAR_BACKWARD, LG_OP_BATCH_NORM,
               LG_OP_LAYER_NORM, LG_OP_PAD, LG_OP_REFLECT_PAD, LG_OP_REFLECT_PAD_BACKWARD,
               LG_OP_SOFTMAX, LG_OP_LOG_SOFTMAX, LG_OP_BCE_WITH_LOGITS, LG_OP_MSE_LOSS,
               LG_OP_L1_LOSS};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) CHECK(lg_op_has_formula(ops[i]));
}

int main(void)
{
  lg_gen_seed(&G, 99);
  LGT_RUN(test_formulas_linked);
  LGT_RUN(test_pooling_random);
  LGT_RUN(test_pooling_grads);
  LGT_RUN(test_gather_scatter_adjoint);
  LGT_RUN(test_upsample);
  LGT_RUN(test_batch_norm_forward);
  LGT_RUN(test_batch_norm_backward_paths);
  LGT_RUN(test_batch_norm_gradchecks);
  LGT_RUN(test_batch_norm_errors);
  LGT_RUN(test_layer_and_instance_norm);
  LGT_RUN(test_pad);
  LGT_RUN(test_softmax);
  LGT_RUN(test_dropout);
  LGT_RUN(test_embedding);
  LGT_RUN(test_elementwise_losses);
  LGT_RUN(test_cross_entropy_and_nll);
  return lgt_finish();
}
