/* test_index.c: gather, scatter_add, cumsum, sort_indices and the pointwise
 * ops of lg_index.c against naive references written out element by element,
 * plus the adjoint identities their backward formulas rely on and their
 * errors. Inputs include non-contiguous views. */
#include <stdlib.h>
#include <string.h>
#include "lgt.h"

static lg_gen gen;

/* A (a,b,c) tensor that is not contiguous: the permuted view of (c,b,a) data. */
static lg_tensor *noncontig3(int64_t a, int64_t b, int64_t c)
{
  int64_t s[3] = {c, b, a};
  lg_tensor *base = lgt_randn(&gen, 3, s);
  int perm[3] = {2, 1, 0};
  lg_tensor *v = lg_permute(base, perm);
  lg_release(base);
  return v;
}

/* Random 0-based indices in [0, size), of the given shape. */
static lg_tensor *rand_index(int ndim, const int64_t *shape, int64_t size)
{
  lg_tensor *t = lg_zeros(ndim, shape);
  float *p = lg_data(t);
  for (int64_t i = 0; i < lg_numel(t); i++) p[i] = (float)lg_gen_below(&gen, (uint64_t)size);
  return t;
}

static float at3(const lg_tensor *t, int64_t i, int64_t j, int64_t k)
{
  int64_t ix[3] = {i, j, k};
  return lg_get(t, ix);
}

static double dot(const lg_tensor *a, const lg_tensor *b)
{
  int64_t n = lg_numel(a);
  float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
  lg_read(a, x);
  lg_read(b, y);
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * y[i];
  free(x);
  free(y);
  return s;
}

static void test_gather_every_dim(void)
{
  for (int d = 0; d < 3; d++) {
    lg_tensor *x = noncontig3(3, 4, 5);
    int64_t is[3] = {2, 3, 4};       /* smaller than x off dim d, any size along d */
    is[d] = 6;
    lg_tensor *idx = rand_index(3, is, x->shape[d]);
    lg_tensor *y = OK(lg_gather(x, d, idx));
    CHECK(y->ndim == 3 && y->shape[0] == is[0] && y->shape[1] == is[1] && y->shape[2] == is[2]);
    for (int64_t i = 0; i < is[0]; i++)
      for (int64_t j = 0; j < is[1]; j++)
        for (int64_t k = 0; k < is[2]; k++) {
          int64_t p[3] = {i, j, k};
          p[d] = (int64_t)at3(idx, i, j, k);
          CHECK(at3(y, i, j, k) == at3(x, p[0], p[1], p[2]));
        }
    /* adjoint: <gather(x), g> == <x, scatter_add(0, g)>, what the backward uses */
    lg_tensor *g = lgt_randn(&gen, 3, is), *z = lg_zeros(3, x->shape);
    lg_tensor *s = OK(lg_scatter_add(z, d, idx, g));
    CHECK_NEAR(dot(y, g), dot(x, s), 1e-5);
    lg_release(x); lg_release(idx); lg_release(y); lg_release(g); lg_release(z); lg_release(s);
  }
}

static void test_scatter_add_naive(void)
{
  int64_t xs[2] = {3, 4}, is[2] = {5, 2}, ss[2] = {6, 3};
  lg_tensor *x = lgt_randn(&gen, 2, xs), *src = lgt_randn(&gen, 2, ss);
  lg_tensor *idx = rand_index(2, is, 3);    /* 5 rows into 3: repeats accumulate */
  lg_tensor *y = OK(lg_scatter_add(x, 0, idx, src));
  double want[3][4];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) { int64_t p[2] = {i, j}; want[i][j] = lg_get(x, p); }
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 2; j++) {
      int64_t p[2] = {i, j};
      want[(int)lg_get(idx, p)][j] += lg_get(src, p);   /* src read in idx's shape */
    }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) { int64_t p[2] = {i, j}; CHECK_NEAR(lg_get(y, p), want[i][j], 1e-6); }
  lg_release(x); lg_release(src); lg_release(idx); lg_release(y);
}

static void test_cumsum(void)
{
  lg_tensor *x = noncontig3(2, 5, 3);
  for (int rev = 0; rev < 2; rev++) {
    lg_tensor *y = OK(lg_cumsum(x, 1, rev));
    for (int64_t i = 0; i < 2; i++)
      for (int64_t k = 0; k < 3; k++) {
        double acc = 0;
        for (int64_t c = 0; c < 5; c++) {
          int64_t j = rev ? 4 - c : c;
          acc += at3(x, i, j, k);
          CHECK_NEAR(at3(y, i, j, k), acc, 1e-6);
        }
      }
    /* adjoint: <cumsum(x), g> == <x, reverse cumsum(g)> */
    lg_tensor *g = lgt_randn(&gen, 3, x->shape), *gb = OK(lg_cumsum(g, -2, !rev));
    CHECK_NEAR(dot(y, g), dot(x, gb), 1e-5);
    lg_release(y); lg_release(g); lg_release(gb);
  }
  lg_release(x);
}

static void test_sort_indices(void)
{
  float v[8] = {3, 1, NAN, 2, 1, -INFINITY, 5, 1};
  int64_t n = 8;
  lg_tensor *x = lg_from_data(1, &n, v);
  lg_tensor *up = OK(lg_sort_indices(x, 0, 0)), *down = OK(lg_sort_indices(x, 0, 1));
  /* stable: the three 1s keep their order; NaN sorts as the largest */
  float want_up[8] = {5, 1, 4, 7, 3, 0, 6, 2}, want_down[8] = {2, 6, 0, 3, 1, 4, 7, 5};
  for (int64_t i = 0; i < n; i++) {
    CHECK(lg_data(up)[i] == want_up[i]);
    CHECK(lg_data(down)[i] == want_down[i]);
  }
  /* along dim 1 of a non-contiguous tensor: each line comes out ordered */
  lg_tensor *y = noncontig3(3, 6, 2), *ix = OK(lg_sort_indices(y, 1, 0));
  lg_tensor *s = OK(lg_gather(y, 1, ix));
  for (int64_t i = 0; i < 3; i++)
    for (int64_t k = 0; k < 2; k++)
      for (int64_t j = 1; j < 6; j++) CHECK(at3(s, i, j - 1, k) <= at3(s, i, j, k));
  lg_release(x); lg_release(up); lg_release(down); lg_release(y); lg_release(ix); lg_release(s);
}

static void test_pointwise(void)
{
  float v[7] = {-2.5f, -0.5f, 0.5f, 1.5f, 2.7f, NAN, INFINITY};
  int64_t n = 7;
  lg_tensor *x = lg_from_data(1, &n, v);
  lg_tensor *f = OK(lg_floor(x)), *r = OK(lg_round(x)), *e = OK(lg_erf(x));
  lg_tensor *nn = OK(lg_isnan(x)), *fin = OK(lg_isfinite(x));
  float wf[5] = {-3, -1, 0, 1, 2}, wr[5] = {-2, -0.0f, 0, 2, 3};   /* halves to even */
  for (int i = 0; i < 5; i++) {
    CHECK(lg_data(f)[i] == wf[i]);
    CHECK(lg_data(r)[i] == wr[i]);
    CHECK_NEAR(lg_data(e)[i], erf(v[i]), 1e-6);
  }
  for (int i = 0; i < 7; i++) {
    CHECK(lg_data(nn)[i] == (i == 5 ? 1.0f : 0.0f));
    CHECK(lg_data(fin)[i] == (i < 5 ? 1.0f : 0.0f));
  }
  lg_release(x); lg_release(f); lg_release(r); lg_release(e); lg_release(nn); lg_release(fin);
}

static void test_errors(void)
{
  int64_t xs[2] = {3, 4}, bad_nd[1] = {3}, big[2] = {4, 4};
  lg_tensor *x = lgt_randn(&gen, 2, xs);
  lg_tensor *i1 = rand_index(1, bad_nd, 3), *i2 = rand_index(2, big, 3), *i3 = rand_index(2, xs, 3);
  FAILS(lg_gather(x, 0, i1), "index has 1 dims");
  FAILS(lg_gather(x, 1, i2), "larger than input");       /* 4 rows, x has 3 */
  lg_data(i3)[5] = 7;
  FAILS(lg_gather(x, 0, i3), "index 7 is not an integer in [0, 3)");
  lg_data(i3)[5] = 0.5f;
  FAILS(lg_scatter_add(x, 0, i3, x), "index 0.5");
  FAILS(lg_gather(x, 2, i3), "dim");
  FAILS(lg_cumsum(x, 5, 0), "dim");
  lg_release(x); lg_release(i1); lg_release(i2); lg_release(i3);
}

int main(void)
{
  lg_gen_seed(&gen, 14);
  LGT_RUN(test_gather_every_dim);
  LGT_RUN(test_scatter_add_naive);
  LGT_RUN(test_cumsum);
  LGT_RUN(test_sort_indices);
  LGT_RUN(test_pointwise);
  LGT_RUN(test_errors);
  return lgt_finish();
}
