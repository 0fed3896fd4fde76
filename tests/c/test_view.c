/* test_view.c: views, copies, cat/stack, index_select and their gradients.
 *
 * Forward: every element of a result is checked against the input element a
 * naive index mapping names. Backward: all these ops are linear, so the exact
 * vector-Jacobian product is sum_i g_i * op(e_j)_i over basis tensors e_j; the
 * double backward (gradient of <grad, r> with respect to g) must equal op(r). */
#include <string.h>
#include <stdlib.h>
#include "lgt.h"

static lg_gen gen;

static void unflat(int ndim, const int64_t *shape, int64_t k, int64_t *idx)
{
  for (int d = ndim - 1; d >= 0; d--) {
    idx[d] = shape[d] ? k % shape[d] : 0;
    k = shape[d] ? k / shape[d] : 0;
  }
}

static lg_tensor *randn_shape(int ndim, const int64_t *shape) { return lgt_randn(&gen, ndim, shape); }

/* A 3-D (a,b,c) tensor that is not contiguous: the transpose of (c,b,a) data. */
static lg_tensor *noncontig3(int64_t a, int64_t b, int64_t c)
{
  int64_t s[3] = {c, b, a};
  lg_tensor *base = randn_shape(3, s);
  int perm[3] = {2, 1, 0};
  lg_tensor *v = lg_permute(base, perm);
  lg_release(base);
  return v;
}

/* ---- the linear-op gradient oracle ------------------------------------------ */
typedef lg_tensor *(*lin_fn)(lg_tensor *x, void *ctx);

static lg_tensor *apply_nograd(lin_fn f, lg_tensor *x, void *ctx)
{
  int prev = lg_set_grad_enabled(0);
  lg_tensor *y = f(x, ctx);
  lg_set_grad_enabled(prev);
  return y;
}

/* Checks first and second order gradients of the linear map f at an input
 * of the given shape; `name` labels failures. */
static void check_linear(const char *name, int ndim, const int64_t *shape, lin_fn f, void *ctx)
{
  int before = lgt_failed_checks;
  lg_tensor *x = OK(randn_shape(ndim, shape));
  lg_requires_grad_(x, 1);
  lg_tensor *y = OK(f(x, ctx));
  CHECK(y->requires_grad && y->grad_fn);
  lg_tensor *g = OK(randn_shape(y->ndim, y->shape));
  lg_requires_grad_(g, 1);
  lg_tensor *gx = NULL;
  CHECK(lg_grad(1, &y, &g, 1, &x, &gx, 0, 1, 0) == 0);
  if (!gx) { fprintf(stderr, "%s: grad failed: %s\n", name, lg_last_error()); lgt_failed_checks++; return; }
  /* oracle: gx_j = <g, f(e_j)> */
  int64_t n = lg_numel(x), m = lg_numel(g);
  lg_tensor *expect = OK(lg_zeros(ndim, shape));
  float *gv = malloc(sizeof(float) * (m ? m : 1)), *yv = malloc(sizeof(float) * (m ? m : 1));
  lg_read(g, gv);
  for (int64_t j = 0; j < n; j++) {
    lg_tensor *e = OK(lg_zeros(ndim, shape));
    lg_data(e)[j] = 1;
    lg_tensor *ye = OK(apply_nograd(f, e, ctx));
    lg_read(ye, yv);
    double s = 0;
    for (int64_t i = 0; i < m; i++) s += (double)gv[i] * yv[i];
    lg_data(expect)[j] = (float)s;
    lg_release(ye);
    lg_release(e);
  }
  CHECK_CLOSE(gx, expect, 1e-5);
  /* double backward: d<gx, r>/dg = f(r) */
  lg_tensor *r = OK(randn_shape(ndim, shape)), *ggr = NULL;
  if (gx->requires_grad) {
    CHECK(lg_grad(1, &gx, &r, 1, &g, &ggr, 0, 0, 0) == 0);
    lg_tensor *fr = OK(apply_nograd(f, r, ctx));
    if (ggr) CHECK_CLOSE(ggr, fr, 1e-5);
    lg_release(fr);
  } else {
    CHECK(gx->requires_grad);   /* create_graph must give a differentiable gradient */
  }
  if (lgt_failed_checks != before) fprintf(stderr, "  (in gradient check of %s)\n", name);
  free(gv); free(yv);
  lg_release(ggr); lg_release(r); lg_release(expect); lg_release(gx); lg_release(g);
  lg_release(y); lg_release(x);
}

/* ---- forward checks ------------------------------------------------------------ */
/* The result y of a reshape-like op holds x's elements in logical order. */
static void check_same_order(const lg_tensor *y, const lg_tensor *x)
{
  int64_t n = lg_numel(x);
  CHECK(lg_numel(y) == n);
  float *a = malloc(sizeof(float) * (n ? n : 1)), *b = malloc(sizeof(float) * (n ? n : 1));
  lg_read(x, a);
  lg_read(y, b);
  CHECK(memcmp(a, b, sizeof(float) * n) == 0);
  free(a); free(b);
}

static void test_view_and_reshape(void)
{
  int64_t s[3] = {2, 3, 4};
  lg_tensor *x = OK(randn_shape(3, s));
  int64_t v1[2] = {6, -1};
  lg_tensor *y = OK(lg_view(x, 2, v1));
  CHECK(y->ndim == 2 && y->shape[0] == 6 && y->shape[1] == 4);
  CHECK(y->storage == x->storage);
  check_same_order(y, x);
  lg_release(y);
  /* a non-contiguous input that still views: a narrow along the last dim
   * keeps rows chained, so splitting dim 0 is fine but merging is not */
  lg_tensor *nr = OK(lg_narrow(x, 2, 1, 2));     /* (2,3,2) strides (12,4,1) */
  int64_t v2[4] = {2, 1, 3, 2};
  y = OK(lg_view(nr, 4, v2));
  CHECK(y->storage == x->storage);
  check_same_order(y, nr);
  lg_release(y);
  int64_t v3[1] = {12};
  FAILS(lg_view(nr, 1, v3), "use reshape");
  y = OK(lg_reshape(nr, 1, v3));                 /* copies */
  CHECK(y->storage != x->storage);
  check_same_order(y, nr);
  lg_release(y);
  /* a transpose views as itself with a size-1 dim inserted */
  lg_tensor *t = OK(lg_transpose(x, 0, 2));      /* (4,3,2) */
  int64_t v4[4] = {4, 3, 1, 2};
  y = OK(lg_view(t, 4, v4));
  CHECK(y->storage == x->storage);
  check_same_order(y, t);
  lg_release(y);
  FAILS(lg_view(t, 2, v1), "view: shape");
  y = OK(lg_reshape(t, 2, v1));
  check_same_order(y, t);
  lg_release(y);
  /* errors */
  int64_t bad[2] = {5, 5}, two[2] = {-1, -1}, neg[2] = {-2, 12}, z[2] = {0, -1};
  FAILS(lg_reshape(x, 2, bad), "reshape: shape 5x5 is invalid for input of size 24 (input 2x3x4)");
  FAILS(lg_reshape(x, 2, two), "only one dimension");
  FAILS(lg_view(x, 2, neg), "invalid size");
  FAILS(lg_view(x, 2, z), "invalid for input of size 24");
  /* scalar <-> (1,1) and empty */
  lg_tensor *sc = OK(lg_scalar(3));
  int64_t o11[2] = {1, 1};
  y = OK(lg_reshape(sc, 2, o11));
  CHECK(y->ndim == 2 && lg_data(y)[0] == 3);
  lg_tensor *back = OK(lg_reshape(y, 0, NULL));
  CHECK(back->ndim == 0);
  lg_release(back); lg_release(y); lg_release(sc);
  int64_t es[2] = {0, 4}, ev[3] = {2, 0, -1};
  lg_tensor *em = OK(lg_zeros(2, es));
  FAILS(lg_view(em, 3, ev), "invalid");           /* -1 with a zero size is ambiguous */
  int64_t ev2[3] = {2, 0, 7};
  y = OK(lg_view(em, 3, ev2));
  CHECK(lg_numel(y) == 0);
  lg_release(y); lg_release(em);
  lg_release(t); lg_release(nr); lg_release(x);
}

static void test_flatten_squeeze_unsqueeze(void)
{
  lg_tensor *x = OK(noncontig3(2, 1, 5));
  lg_tensor *f = OK(lg_flatten(x, 0, -1));
  CHECK(f->ndim == 1 && f->shape[0] == 10);
  check_same_order(f, x);
  lg_release(f);
  f = OK(lg_flatten(x, 1, 2));
  CHECK(f->ndim == 2 && f->shape[0] == 2 && f->shape[1] == 5);
  check_same_order(f, x);
  lg_release(f);
  FAILS(lg_flatten(x, 2, 1), "flatten");
  FAILS(lg_flatten(x, 0, 3), "flatten: dim 3 out of range");
  lg_tensor *s = OK(lg_squeeze(x, 1));
  CHECK(s->ndim == 2 && s->shape[1] == 5 && s->storage == x->storage);
  check_same_order(s, x);
  lg_release(s);
  s = OK(lg_squeeze(x, 0));                     /* size 2: unchanged */
  CHECK(s->ndim == 3);
  lg_release(s);
  int64_t s3[4] = {1, 3, 1, 1};
  lg_tensor *ones = OK(lg_zeros(4, s3));
  s = OK(lg_squeeze_all(ones));
  CHECK(s->ndim == 1 && s->shape[0] == 3);
  lg_release(s);
  for (int d = -4; d <= 3; d++) {
    lg_tensor *u = OK(lg_unsqueeze(x, d));
    int dd = d < 0 ? d + 4 : d;
    CHECK(u->ndim == 4 && u->shape[dd] == 1);
    check_same_order(u, x);
    lg_release(u);
  }
  FAILS(lg_unsqueeze(x, 4), "unsqueeze");
  FAILS(lg_unsqueeze(x, -5), "unsqueeze");
  lg_tensor *sc = OK(lg_scalar(2)), *u = OK(lg_unsqueeze(sc, 0));
  CHECK(u->ndim == 1 && u->shape[0] == 1);
  lg_tensor *fs = OK(lg_flatten(sc, 0, -1));
  CHECK(fs->ndim == 1 && fs->shape[0] == 1);
  lg_release(fs); lg_release(u); lg_release(sc);
  lg_release(ones); lg_release(x);
}

static void test_narrow_slice_select(void)
{
  lg_tensor *x = OK(noncontig3(4, 6, 5));
  /* narrow: y[i,j,k] = x[i, j+start, k] */
  lg_tensor *y = OK(lg_narrow(x, 1, 2, 3));
  CHECK(y->shape[1] == 3 && y->storage == x->storage);
  for (int64_t k = 0; k < lg_numel(y); k++) {
    int64_t i[3], j[3];
    unflat(3, y->shape, k, i);
    memcpy(j, i, sizeof i);
    j[1] += 2;
    CHECK(lg_get(y, i) == lg_get(x, j));
  }
  lg_release(y);
  y = OK(lg_narrow(x, -1, -2, 2));   /* negative dim and start */
  CHECK(y->shape[2] == 2);
  int64_t a0[3] = {1, 1, 0}, b0[3] = {1, 1, 3};
  CHECK(lg_get(y, a0) == lg_get(x, b0));
  lg_release(y);
  /* slice with step and Python clamping: y[.., j, ..] = x[.., start + j*step, ..] */
  int64_t cases[5][3] = {{1, 6, 2}, {-5, 100, 3}, {0, 6, 1}, {4, 2, 1}, {-100, -1, 4}};
  for (int c = 0; c < 5; c++) {
    int64_t st = cases[c][0], en = cases[c][1], step = cases[c][2];
    y = OK(lg_slice(x, 1, st, en, step));
    int64_t s0 = st < 0 ? st + 6 : st; s0 = s0 < 0 ? 0 : s0 > 6 ? 6 : s0;
    int64_t e0 = en < 0 ? en + 6 : en; e0 = e0 < 0 ? 0 : e0 > 6 ? 6 : e0;
    int64_t len = 0;
    for (int64_t q = s0; q < e0; q += step) len++;
    CHECK(y->shape[1] == len);
    for (int64_t k = 0; k < lg_numel(y); k++) {
      int64_t i[3], j[3];
      unflat(3, y->shape, k, i);
      memcpy(j, i, sizeof i);
      j[1] = s0 + i[1] * step;
      CHECK(lg_get(y, i) == lg_get(x, j));
    }
    lg_release(y);
  }
  FAILS(lg_slice(x, 1, 0, 3, 0), "slice: step");
  /* select removes the dim */
  for (int64_t idx = -4; idx < 4; idx++) {
    y = OK(lg_select(x, 0, idx));
    CHECK(y->ndim == 2 && y->shape[0] == 6 && y->shape[1] == 5);
    int64_t i[2] = {3, 4}, j[3] = {idx < 0 ? idx + 4 : idx, 3, 4};
    CHECK(lg_get(y, i) == lg_get(x, j));
    lg_release(y);
  }
  /* errors: 0-based dims in C */
  int64_t s2[2] = {4, 6};
  lg_tensor *m = OK(lg_zeros(2, s2));
  FAILS(lg_narrow(m, 1, 5, 3), "narrow: start 5 + length 3 exceeds size 6 of dim 1 (input 4x6)");
  FAILS(lg_narrow(m, 0, -9, 1), "narrow: start");
  FAILS(lg_narrow(m, 0, 0, -1), "narrow: length");
  FAILS(lg_narrow(m, 2, 0, 1), "narrow: dim 2 out of range");
  FAILS(lg_select(m, 1, 6), "select: index 6 out of range for size 6 of dim 1 (input 4x6)");
  FAILS(lg_select(m, 0, -5), "select: index -5");
  lg_release(m);
  lg_release(x);
}

static void test_transpose_permute_expand(void)
{
  lg_tensor *x = OK(noncontig3(2, 3, 4));
  int perm[3] = {1, 2, 0};
  lg_tensor *p = OK(lg_permute(x, perm));
  CHECK(p->shape[0] == 3 && p->shape[1] == 4 && p->shape[2] == 2);
  for (int64_t k = 0; k < 24; k++) {
    int64_t i[3], j[3];
    unflat(3, p->shape, k, i);
    for (int d = 0; d < 3; d++) j[perm[d]] = i[d];
    CHECK(lg_get(p, i) == lg_get(x, j));
  }
  lg_release(p);
  lg_tensor *t = OK(lg_transpose(x, -1, 0));
  CHECK(t->shape[0] == 4 && t->shape[2] == 2);
  int64_t ti[3] = {3, 1, 0}, tj[3] = {0, 1, 3};
  CHECK(lg_get(t, ti) == lg_get(x, tj));
  lg_release(t);
  int bad1[3] = {0, 0, 1}, bad2[3] = {0, 1, 3};
  FAILS(lg_permute(x, bad1), "permute");
  FAILS(lg_permute(x, bad2), "permute");
  FAILS(lg_transpose(x, 0, 3), "transpose");
  /* expand: new leading dims and size-1 dims broadcast with stride 0 */
  int64_t s1[2] = {3, 1};
  lg_tensor *c = OK(randn_shape(2, s1));
  int64_t es[3] = {2, -1, 5};
  lg_tensor *e = OK(lg_expand(c, 3, es));
  CHECK(e->ndim == 3 && e->shape[0] == 2 && e->shape[1] == 3 && e->shape[2] == 5);
  CHECK(e->stride[0] == 0 && e->stride[2] == 0 && e->storage == c->storage);
  for (int64_t k = 0; k < 30; k++) {
    int64_t i[3], j[2];
    unflat(3, e->shape, k, i);
    j[0] = i[1]; j[1] = 0;
    CHECK(lg_get(e, i) == lg_get(c, j));
  }
  int64_t bad[2] = {4, 5}, lead[3] = {-1, 3, 1};
  FAILS(lg_expand(c, 2, bad), "expand: cannot expand 3x1 to 4x5");
  FAILS(lg_expand(c, 3, lead), "expand");
  FAILS(lg_expand(c, 1, bad), "expand");
  lg_release(e); lg_release(c); lg_release(x);
}

static void test_contiguous_clone(void)
{
  int64_t s[2] = {3, 4};
  lg_tensor *x = OK(randn_shape(2, s));
  lg_tensor *c = OK(lg_contiguous(x));
  CHECK(c == x);                                   /* already contiguous: itself */
  lg_release(c);
  lg_tensor *k = OK(lg_clone(x));
  CHECK(k != x && k->storage != x->storage && lgt_maxdiff(k, x) == 0);
  lg_release(k);
  lg_tensor *t = OK(lg_transpose(x, 0, 1));
  c = OK(lg_contiguous(t));
  CHECK(c->storage != x->storage && lg_is_contiguous(c));
  check_same_order(c, t);
  lg_release(c); lg_release(t); lg_release(x);
}

static void test_cat_stack(void)
{
  /* three inputs, one non-contiguous and one empty along the cat dim */
  lg_tensor *a = OK(randn_shape(3, (int64_t[]){2, 3, 4}));
  lg_tensor *b = OK(noncontig3(2, 5, 4));
  lg_tensor *e = OK(lg_zeros(3, (int64_t[]){2, 0, 4}));
  lg_tensor *in[3] = {a, e, b};
  for (int dim = 1; dim >= -2; dim -= 3) {
    lg_tensor *c = OK(lg_cat(3, in, dim));
    CHECK(c->shape[0] == 2 && c->shape[1] == 8 && c->shape[2] == 4);
    for (int64_t k = 0; k < lg_numel(c); k++) {
      int64_t i[3], j[3];
      unflat(3, c->shape, k, i);
      memcpy(j, i, sizeof i);
      float want;
      if (i[1] < 3) want = lg_get(a, j);
      else { j[1] -= 3; want = lg_get(b, j); }
      CHECK(lg_get(c, i) == want);
    }
    lg_release(c);
  }
  lg_tensor *one[1] = {b};
  lg_tensor *c1 = OK(lg_cat(1, one, 0));
  CHECK(lgt_maxdiff(c1, b) == 0);
  lg_release(c1);
  lg_tensor *bad[2] = {a, b};
  FAILS(lg_cat(2, bad, 2), "cat: tensor 2 has shape 2x5x4");   /* list positions count from 1 */
  FAILS(lg_cat(0, bad, 0), "cat");
  lg_tensor *sc = OK(lg_scalar(1)), *scs[2] = {sc, sc};
  FAILS(lg_cat(2, scs, 0), "cat");
  /* stack: out[.., k, ..] = in[k] */
  lg_tensor *b2 = OK(noncontig3(2, 3, 4));
  lg_tensor *st_in[2] = {a, b2};
  for (int dim = 0; dim <= 3; dim++) {
    lg_tensor *s = OK(lg_stack(2, st_in, dim));
    CHECK(s->ndim == 4 && s->shape[dim] == 2);
    for (int64_t k = 0; k < lg_numel(s); k++) {
      int64_t i[4], j[3];
      unflat(4, s->shape, k, i);
      for (int d = 0, q = 0; d < 4; d++) if (d != dim) j[q++] = i[d];
      CHECK(lg_get(s, i) == lg_get(st_in[i[dim]], j));
    }
    lg_release(s);
  }
  FAILS(lg_stack(2, bad, 0), "stack: tensor 2 has shape 2x5x4");
  lg_tensor *ss = OK(lg_stack(2, scs, 0));
  CHECK(ss->ndim == 1 && ss->shape[0] == 2);
  lg_release(ss); lg_release(sc);
  lg_release(b2); lg_release(a); lg_release(b); lg_release(e);
}

static void test_index_select_and_add(void)
{
  lg_tensor *x = OK(noncontig3(3, 5, 4));
  float iv[6] = {4, 0, 0, 2, 4, 1};
  lg_tensor *idx = OK(lg_from_data(1, (int64_t[]){6}, iv));
  for (int dim = 0; dim < 3; dim++) {
    lg_tensor *ix = idx;
    float small[3] = {2, 0, 2};
    lg_tensor *alt = NULL;
    if (x->shape[dim] < 5) ix = alt = OK(lg_from_data(1, (int64_t[]){3}, small));
    lg_tensor *y = OK(lg_index_select(x, dim, ix));
    CHECK(y->shape[dim] == ix->shape[0]);
    for (int64_t k = 0; k < lg_numel(y); k++) {
      int64_t i[3], j[3];
      unflat(3, y->shape, k, i);
      memcpy(j, i, sizeof i);
      j[dim] = (int64_t)lg_data(ix)[i[dim]];
      CHECK(lg_get(y, i) == lg_get(x, j));
    }
    /* index_add_zeros: out[.., idx[j], ..] += y[.., j, ..] (repeats add up) */
    int64_t size = x->shape[dim];
    lg_tensor *z = OK(lg_index_add_zeros(y, dim, ix, size));
    CHECK(lg_same_shape(z, x));
    for (int64_t k = 0; k < lg_numel(z); k++) {
      int64_t i[3], j[3];
      unflat(3, z->shape, k, i);
      double s = 0;
      for (int64_t q = 0; q < ix->shape[0]; q++)
        if ((int64_t)lg_data(ix)[q] == i[dim]) {
          memcpy(j, i, sizeof i);
          j[dim] = q;
          s += lg_get(y, j);
        }
      CHECK_NEAR(lg_get(z, i), s, 1e-6);
    }
    lg_release(z); lg_release(y); lg_release(alt);
  }
  float badv[2] = {0, 5}, frac[1] = {1.5f};
  lg_tensor *bi = OK(lg_from_data(1, (int64_t[]){2}, badv)), *fi = OK(lg_from_data(1, (int64_t[]){1}, frac));
  FAILS(lg_index_select(x, 1, bi), "index_select: index 5");
  FAILS(lg_index_select(x, 1, fi), "index_select: index 1.5");
  lg_tensor *i2 = OK(lg_zeros(2, (int64_t[]){1, 2}));
  FAILS(lg_index_select(x, 1, i2), "index must be 1-D");
  FAILS(lg_index_add_zeros(x, 1, bi, 5), "index_add_zeros");
  lg_release(i2); lg_release(bi); lg_release(fi); lg_release(idx); lg_release(x);
}

static void test_slice_select_backward_helpers(void)
{
  int64_t shape[2] = {4, 7};
  lg_tensor *g = OK(randn_shape(2, (int64_t[]){4, 3}));
  lg_tensor *o = OK(lg_slice_backward(g, 2, shape, 1, 1, 7, 2));   /* cols 1,3,5 */
  for (int64_t k = 0; k < 28; k++) {
    int64_t i[2] = {k / 7, k % 7}, j[2] = {k / 7, (k % 7 - 1) / 2};
    float want = (i[1] % 2 == 1) ? lg_get(g, j) : 0;
    CHECK(lg_get(o, i) == want);
  }
  lg_release(o);
  FAILS(lg_slice_backward(g, 2, shape, 1, 0, 7, 1), "slice_backward");
  lg_tensor *r = OK(randn_shape(1, (int64_t[]){7}));
  o = OK(lg_select_backward(r, 2, shape, 0, -1));
  for (int64_t k = 0; k < 28; k++) {
    int64_t i[2] = {k / 7, k % 7}, j[1] = {k % 7};
    CHECK(lg_get(o, i) == (i[0] == 3 ? lg_get(r, j) : 0));
  }
  lg_release(o);
  FAILS(lg_select_backward(g, 2, shape, 0, 1), "select_backward");
  lg_release(r); lg_release(g);
}

/* ---- gradients ------------------------------------------------------------------ */
static lg_tensor *f_reshape(lg_tensor *x, void *c) { (void)c; return lg_reshape(x, 2, (int64_t[]){3, -1}); }
static lg_tensor *f_view_t(lg_tensor *x, void *c)
{
  (void)c;   /* a transpose then a reshape that must copy: PERMUTE, CONTIGUOUS, VIEW */
  lg_tensor *t = lg_transpose(x, 0, 2), *r = lg_reshape(t, 1, (int64_t[]){-1});
  lg_release(t);
  return r;
}
static lg_tensor *f_flatten(lg_tensor *x, void *c) { (void)c; return lg_flatten(x, 1, 2); }
static lg_tensor *f_squeeze(lg_tensor *x, void *c)
{
  (void)c;
  lg_tensor *u = lg_unsqueeze(x, 1), *s = lg_squeeze(u, 1), *a = lg_squeeze_all(s);
  lg_release(u); lg_release(s);
  return a;
}
static lg_tensor *f_narrow(lg_tensor *x, void *c) { (void)c; return lg_narrow(x, 1, 1, 2); }
static lg_tensor *f_slice(lg_tensor *x, void *c) { (void)c; return lg_slice(x, 2, -4, 100, 2); }
static lg_tensor *f_select(lg_tensor *x, void *c) { (void)c; return lg_select(x, -1, 2); }
static lg_tensor *f_permute(lg_tensor *x, void *c) { (void)c; return lg_permute(x, (int[]){2, 0, 1}); }
static lg_tensor *f_expand(lg_tensor *x, void *c)
{
  (void)c;   /* x: (2,1,4) -> (3,2,5,4) */
  return lg_expand(x, 4, (int64_t[]){3, 2, 5, 4});
}
static lg_tensor *f_clone_of_view(lg_tensor *x, void *c)
{
  (void)c;
  lg_tensor *t = lg_transpose(x, 0, 1), *k = lg_clone(t), *q = lg_contiguous(t);
  lg_tensor *both[2] = {k, q}, *r = lg_cat(2, both, 0);
  lg_release(t); lg_release(k); lg_release(q);
  return r;
}
static lg_tensor *f_cat_self(lg_tensor *x, void *c)
{
  (void)c;   /* pieces of x concatenated: a narrow and a select of it */
  lg_tensor *n = lg_narrow(x, 0, 0, 1), *s = lg_select(x, 0, 1), *u = lg_unsqueeze(s, 0);
  lg_tensor *in[3] = {u, n, x}, *r = lg_cat(3, in, 0);
  lg_release(n); lg_release(s); lg_release(u);
  return r;
}
static lg_tensor *f_stack(lg_tensor *x, void *c)
{
  (void)c;
  lg_tensor *t = lg_transpose(x, 1, 2), *s = lg_select(t, 0, 0), *n = lg_select(t, 0, 1);
  lg_tensor *in[2] = {s, n}, *r = lg_stack(2, in, 1);
  lg_release(t); lg_release(s); lg_release(n);
  return r;
}
static lg_tensor *f_index_select(lg_tensor *x, void *c) { return lg_index_select(x, 1, c); }
static lg_tensor *f_index_add(lg_tensor *x, void *c) { return lg_index_add_zeros(x, 1, c, 4); }
static lg_tensor *f_slice_bw(lg_tensor *x, void *c)
{
  (void)c;   /* x: (2,2,4) into (2,5,4) at rows 1, 3 */
  return lg_slice_backward(x, 3, (int64_t[]){2, 5, 4}, 1, 1, 4, 2);
}
static lg_tensor *f_select_bw(lg_tensor *x, void *c)
{
  (void)c;   /* x: (2,4) into (2,3,4) at index 1 of dim 1 */
  return lg_select_backward(x, 3, (int64_t[]){2, 3, 4}, 1, 1);
}

static void test_gradients(void)
{
  int64_t s234[3] = {2, 3, 4}, s214[3] = {2, 1, 4}, s24[2] = {2, 4}, s224[3] = {2, 2, 4};
  check_linear("reshape", 3, s234, f_reshape, NULL);
  check_linear("transpose+reshape", 3, s234, f_view_t, NULL);
  check_linear("flatten", 3, s234, f_flatten, NULL);
  check_linear("squeeze/unsqueeze", 3, s214, f_squeeze, NULL);
  check_linear("narrow", 3, s234, f_narrow, NULL);
  check_linear("slice", 3, s234, f_slice, NULL);
  check_linear("select", 3, s234, f_select, NULL);
  check_linear("permute", 3, s234, f_permute, NULL);
  check_linear("expand", 3, s214, f_expand, NULL);
  check_linear("clone/contiguous", 3, s234, f_clone_of_view, NULL);
  check_linear("cat", 3, s234, f_cat_self, NULL);
  check_linear("stack", 3, s234, f_stack, NULL);
  float iv[5] = {2, 0, 2, 1, 1};
  lg_tensor *idx = OK(lg_from_data(1, (int64_t[]){5}, iv));
  check_linear("index_select", 3, s234, f_index_select, idx);   /* repeats accumulate */
  lg_release(idx);
  float iv2[3] = {3, 0, 3};
  idx = OK(lg_from_data(1, (int64_t[]){3}, iv2));
  check_linear("index_select", 3, (int64_t[]){2, 4, 3}, f_index_select, idx);
  int64_t s234b[3] = {2, 3, 4};
  check_linear("index_add_zeros", 3, s234b, f_index_add, idx);
  lg_release(idx);
  check_linear("slice_backward", 3, s224, f_slice_bw, NULL);
  check_linear("select_backward", 2, s24, f_select_bw, NULL);
}

static void test_grad_flows_to_view_inputs(void)
{
  /* backward() into a leaf through a view chain accumulates the scatter */
  int64_t s[2] = {3, 4};
  lg_tensor *x = OK(randn_shape(2, s));
  lg_requires_grad_(x, 1);
  lg_tensor *n = OK(lg_narrow(x, 1, 1, 2)), *t = OK(lg_transpose(n, 0, 1));   /* (2,3) */
  lg_tensor *g = OK(randn_shape(2, (int64_t[]){2, 3}));
  CHECK(lg_backward(1, &t, &g, 0, 0) == 0);
  CHECK(x->grad && lg_same_shape(x->grad, x));
  for (int64_t k = 0; k < 12 && x->grad; k++) {
    int64_t i[2] = {k / 4, k % 4}, j[2] = {i[1] - 1, i[0]};
    float want = (i[1] == 1 || i[1] == 2) ? lg_get(g, j) : 0;
    CHECK(lg_get(x->grad, i) == want);
  }
  /* a view made under no-grad records nothing */
  int prev = lg_set_grad_enabled(0);
  lg_tensor *v = OK(lg_select(x, 0, 0));
  lg_set_grad_enabled(prev);
  CHECK(!v->requires_grad && !v->grad_fn);
  lg_release(v); lg_release(g); lg_release(t); lg_release(n); lg_release(x);
}

int main(void)
{
  lg_gen_seed(&gen, 2024);
  LGT_RUN(test_view_and_reshape);
  LGT_RUN(test_flatten_squeeze_unsqueeze);
  LGT_RUN(test_narrow_slice_select);
  LGT_RUN(test_transpose_permute_expand);
  LGT_RUN(test_contiguous_clone);
  LGT_RUN(test_cat_stack);
  LGT_RUN(test_index_select_and_add);
  LGT_RUN(test_slice_select_backward_helpers);
  LGT_RUN(test_gradients);
  LGT_RUN(test_grad_flows_to_view_inputs);
  return lgt_finish();
}
