/* test_matmul.c: lg_matmul against a naive triple loop (NumPy semantics,
 * written again here) on odd sizes, every operand layout sgemm sees
 * (contiguous, transposed, row pitch, strided columns, expanded batch), batch
 * broadcasting, the 1-D cases and empty sizes; then its gradients (exact VJP
 * oracle by linearity, double backward) and its errors. */
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

/* ---- the oracle -------------------------------------------------------------- */
/* NumPy matmul by definition: promote 1-D, broadcast batch dims, sum over K in
 * double, drop the promoted dims. */
static lg_tensor *naive_matmul(const lg_tensor *a, const lg_tensor *b)
{
  int na = a->ndim < 2 ? 2 : a->ndim, nb = b->ndim < 2 ? 2 : b->ndim;
  int64_t as[LG_MAXDIM], bs[LG_MAXDIM];
  if (a->ndim == 1) { as[0] = 1; as[1] = a->shape[0]; } else memcpy(as, a->shape, sizeof(int64_t) * na);
  if (b->ndim == 1) { bs[0] = b->shape[0]; bs[1] = 1; } else memcpy(bs, b->shape, sizeof(int64_t) * nb);
  int64_t M = as[na - 2], K = as[na - 1], N = bs[nb - 1];
  int nbat = (na > nb ? na : nb) - 2;
  int64_t bat[LG_MAXDIM];
  for (int d = 0; d < nbat; d++) {
    int da = d - (nbat - (na - 2)), db = d - (nbat - (nb - 2));
    int64_t x = da >= 0 ? as[da] : 1, y = db >= 0 ? bs[db] : 1;
    bat[d] = x == 1 ? y : x;   /* 0 broadcasts against 1 to 0 */
  }
  int64_t full[LG_MAXDIM];
  memcpy(full, bat, sizeof(int64_t) * nbat);
  full[nbat] = M;
  full[nbat + 1] = N;
  lg_tensor *c = lg_empty(nbat + 2, full);
  int64_t n = lg_numel(c);
  for (int64_t k = 0; k < n; k++) {
    int64_t ci[LG_MAXDIM], ai[LG_MAXDIM], bi[LG_MAXDIM];
    unflat(nbat + 2, full, k, ci);
    int64_t m = ci[nbat], nn = ci[nbat + 1];
    for (int d = 0; d < na - 2; d++) {
      int cd = d + nbat - (na - 2);
      ai[d] = as[d] == 1 ? 0 : ci[cd];
    }
    for (int d = 0; d < nb - 2; d++) {
      int cd = d + nbat - (nb - 2);
      bi[d] = bs[d] == 1 ? 0 : ci[cd];
    }
    double s = 0;
    for (int64_t q = 0; q < K; q++) {
      float x, y;
      if (a->ndim == 1) x = lg_get(a, &q);
      else { ai[na - 2] = m; ai[na - 1] = q; x = lg_get(a, ai); }
      if (b->ndim == 1) y = lg_get(b, &q);
      else { bi[nb - 2] = q; bi[nb - 1] = nn; y = lg_get(b, bi); }
      s += (double)x * y;
    }
    lg_data(c)[k] = (float)s;
  }
  /* drop the promoted dims */
  int64_t out[LG_MAXDIM];
  int no = 0;
  for (int d = 0; d < nbat; d++) out[no++] = bat[d];
  if (a->ndim > 1) out[no++] = M;
  if (b->ndim > 1) out[no++] = N;
  lg_tensor *r = lg_empty(no, out);
  memcpy(lg_data(r), lg_data(c), sizeof(float) * n);
  lg_release(c);
  return r;
}

/* ---- operands in every layout ----------------------------------------------------- */
enum { L_CONTIG, L_TRANSPOSED, L_PITCH, L_STEP, L_EXPANDED, L_COUNT };
static const char *layout_names[L_COUNT] = {"contiguous", "transposed", "row pitch",
                                             "strided columns", "expanded batch"};

/* A tensor of logical shape s in layout l, values N(0,1). */
static lg_tensor *operand(int ndim, const int64_t *s, int l)
{
  int64_t bs[LG_MAXDIM];
  memcpy(bs, s, sizeof(int64_t) * ndim);
  lg_tensor *base, *v;
  if (l == L_TRANSPOSED && ndim >= 2) {
    bs[ndim - 2] = s[ndim - 1];
    bs[ndim - 1] = s[ndim - 2];
    base = lgt_randn(&gen, ndim, bs);
    v = lg_transpose(base, -1, -2);
  } else if (l == L_PITCH) {
    bs[ndim - 1] = s[ndim - 1] + 3;
    base = lgt_randn(&gen, ndim, bs);
    v = lg_narrow(base, -1, 2, s[ndim - 1]);
  } else if (l == L_STEP) {
    bs[ndim - 1] = 2 * s[ndim - 1];
    base = lgt_randn(&gen, ndim, bs);
    v = lg_slice(base, -1, 1, 2 * s[ndim - 1], 2);
  } else if (l == L_EXPANDED && ndim >= 3) {
    bs[0] = 1;   /* the same matrix for every batch: stride 0 */
    base = lgt_randn(&gen, ndim, bs);
    v = lg_expand(base, ndim, s);
  } else {
    return lgt_randn(&gen, ndim, s);
  }
  lg_release(base);
  return v;
}

typedef struct { int na; int64_t a[5]; int nb; int64_t b[5]; } mm_case;

static const mm_case cases[] = {
  {2, {7, 13}, 2, {13, 5}},
  {2, {1, 9}, 2, {9, 1}},
  {2, {5, 1}, 2, {1, 6}},
  {2, {67, 129}, 2, {129, 33}},
  {2, {0, 3}, 2, {3, 4}},
  {2, {3, 0}, 2, {0, 4}},          /* K = 0: zeros */
  {2, {4, 3}, 2, {3, 0}},
  {1, {6}, 1, {6}},                /* dot */
  {1, {6}, 2, {6, 3}},
  {2, {4, 6}, 1, {6}},
  {1, {6}, 3, {2, 6, 3}},
  {3, {2, 4, 6}, 1, {6}},
  {4, {2, 3, 4, 5}, 2, {5, 6}},
  {4, {3, 1, 2, 4}, 3, {2, 4, 5}}, /* batch dims (3,1) and (2) broadcast */
  {4, {3, 1, 4, 5}, 3, {2, 5, 6}},
  {2, {4, 5}, 4, {2, 3, 5, 2}},
  {3, {5, 7, 9}, 2, {9, 4}},       /* folds into one sgemm */
  {3, {5, 7, 9}, 3, {1, 9, 4}},
  {3, {0, 2, 3}, 2, {3, 4}},       /* empty batch */
  {1, {0}, 1, {0}},                /* empty dot: 0 */
};

static void test_matmul_vs_naive(void)
{
  int ncases = sizeof cases / sizeof cases[0];
  for (int c = 0; c < ncases; c++)
    for (int la = 0; la < L_COUNT; la++)
      for (int lb = 0; lb < L_COUNT; lb++) {
        const mm_case *k = &cases[c];
        lg_tensor *a = OK(operand(k->na, k->a, la)), *b = OK(operand(k->nb, k->b, lb));
        lg_tensor *y = OK(lg_matmul(a, b)), *e = naive_matmul(a, b);
        double d = lgt_maxdiff(y, e);
        if (!(d <= 1e-5)) {
          char s1[64], s2[64];
          lgt_failed_checks++;
          fprintf(stderr, "matmul %s (%s) x %s (%s): maxdiff %g\n", lg_shape_str(a, s1, 64),
                  layout_names[la], lg_shape_str(b, s2, 64), layout_names[lb], d);
        }
        CHECK(!y->requires_grad && !y->grad_fn);
        lg_release(y); lg_release(e); lg_release(a); lg_release(b);
      }
}

static void test_matmul_shapes_and_errors(void)
{
  lg_tensor *a = OK(lgt_randn(&gen, 2, (int64_t[]){3, 4})), *b = OK(lgt_randn(&gen, 2, (int64_t[]){5, 6}));
  FAILS(lg_matmul(a, b), "matmul: shapes 3x4 and 5x6");
  lg_tensor *c = OK(lgt_randn(&gen, 3, (int64_t[]){2, 3, 4})), *d = OK(lgt_randn(&gen, 3, (int64_t[]){3, 4, 5}));
  FAILS(lg_matmul(c, d), "matmul: shapes 2x3x4 and 3x4x5 cannot broadcast");
  lg_tensor *s = OK(lg_scalar(2));
  FAILS(lg_matmul(s, a), "matmul");
  FAILS(lg_matmul(a, s), "scalar");
  lg_tensor *v3 = OK(lgt_randn(&gen, 1, (int64_t[]){3})), *v4 = OK(lgt_randn(&gen, 1, (int64_t[]){4}));
  FAILS(lg_matmul(v3, v4), "matmul: shapes 3 and 4");
  FAILS(lg_matmul(a, v3), "matmul: shapes 3x4 and 3");
  lg_tensor *y = OK(lg_matmul(v4, v4));
  CHECK(y->ndim == 0);
  lg_release(y);
  y = OK(lg_matmul(a, v4));
  CHECK(y->ndim == 1 && y->shape[0] == 3);
  lg_release(y);
  lg_release(v3); lg_release(v4); lg_release(s); lg_release(c); lg_release(d);
  lg_release(a); lg_release(b);
}

/* ---- gradients ------------------------------------------------------------------- */
typedef struct { lg_tensor *other; int left; } mm_ctx;

/* x @ other (left) or other @ x: linear in x */
static lg_tensor *f_mm(lg_tensor *x, void *c)
{
  mm_ctx *m = c;
  return m->left ? lg_matmul(x, m->other) : lg_matmul(m->other, x);
}

static lg_tensor *apply_nograd(lg_tensor *x, mm_ctx *c)
{
  int prev = lg_set_grad_enabled(0);
  lg_tensor *y = f_mm(x, c);
  lg_set_grad_enabled(prev);
  return y;
}

/* gx_j = <g, f(e_j)> exactly (f is linear); d<gx, r>/dg = f(r). */
static void check_linear(int ndim, const int64_t *shape, mm_ctx *c)
{
  int before = lgt_failed_checks;
  lg_tensor *x = OK(lgt_randn(&gen, ndim, shape));
  lg_requires_grad_(x, 1);
  lg_tensor *y = OK(f_mm(x, c));
  lg_tensor *g = OK(lgt_randn(&gen, y->ndim, y->shape));
  lg_requires_grad_(g, 1);
  lg_tensor *gx = NULL;
  CHECK(lg_grad(1, &y, &g, 1, &x, &gx, 0, 1, 0) == 0);
  if (!gx) { lgt_failed_checks++; fprintf(stderr, "grad failed: %s\n", lg_last_error()); return; }
  int64_t n = lg_numel(x), m = lg_numel(y);
  lg_tensor *expect = OK(lg_zeros(ndim, shape));
  for (int64_t j = 0; j < n; j++) {
    lg_tensor *e = OK(lg_zeros(ndim, shape));
    lg_data(e)[j] = 1;
    lg_tensor *ye = OK(apply_nograd(e, c));
    double s = 0;
    for (int64_t i = 0; i < m; i++) s += (double)lg_data(g)[i] * lg_data(ye)[i];
    lg_data(expect)[j] = (float)s;
    lg_release(ye); lg_release(e);
  }
  CHECK_CLOSE(gx, expect, 1e-5);
  lg_tensor *r = OK(lgt_randn(&gen, ndim, shape)), *ggr = NULL;
  CHECK(lg_grad(1, &gx, &r, 1, &g, &ggr, 0, 0, 0) == 0);
  lg_tensor *fr = OK(apply_nograd(r, c));
  if (ggr) CHECK_CLOSE(ggr, fr, 1e-5);
  if (lgt_failed_checks != before) {
    char s1[64], s2[64];
    fprintf(stderr, "  (gradient of matmul wrt %s operand %s, other %s)\n",
            c->left ? "left" : "right", lg_shape_str_raw(ndim, shape, s1, 64),
            lg_shape_str(c->other, s2, 64));
  }
  lg_release(fr); lg_release(ggr); lg_release(r); lg_release(expect); lg_release(gx);
  lg_release(g); lg_release(y); lg_release(x);
}

static void test_matmul_gradients(void)
{
  int ncases = sizeof cases / sizeof cases[0];
  for (int c = 0; c < ncases; c++) {
    const mm_case *k = &cases[c];
    int64_t na = 1, nb = 1;
    for (int d = 0; d < k->na; d++) na *= k->a[d];
    for (int d = 0; d < k->nb; d++) nb *= k->b[d];
    if (na > 200 || nb > 200) continue;   /* the oracle is quadratic */
    /* the fixed operand non-contiguous, so the backward products see views too */
    mm_ctx ca = {OK(operand(k->nb, k->b, L_TRANSPOSED)), 1};
    check_linear(k->na, k->a, &ca);
    mm_ctx cb = {OK(operand(k->na, k->a, L_PITCH)), 0};
    check_linear(k->nb, k->b, &cb);
    lg_release(ca.other);
    lg_release(cb.other);
  }
}

static void test_matmul_mixed_second_derivative(void)
{
  /* y = a @ b (2-D); ga = g b^T; d<ga, r>/db = r^T g */
  int64_t M = 4, K = 3, N = 5;
  lg_tensor *a = OK(lgt_randn(&gen, 2, (int64_t[]){M, K})), *b = OK(lgt_randn(&gen, 2, (int64_t[]){K, N}));
  lg_requires_grad_(a, 1);
  lg_requires_grad_(b, 1);
  lg_tensor *y = OK(lg_matmul(a, b));
  CHECK(y->requires_grad && y->grad_fn);
  lg_tensor *g = OK(lgt_randn(&gen, 2, (int64_t[]){M, N})), *ga = NULL;
  CHECK(lg_grad(1, &y, &g, 1, &a, &ga, 1, 1, 0) == 0);
  lg_tensor *r = OK(lgt_randn(&gen, 2, (int64_t[]){M, K})), *gb = NULL;
  if (ga) CHECK(lg_grad(1, &ga, &r, 1, &b, &gb, 0, 0, 0) == 0);
  lg_tensor *e = OK(lg_zeros(2, (int64_t[]){K, N}));
  for (int64_t k = 0; k < K; k++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t m = 0; m < M; m++) s += lg_data(r)[m * K + k] * lg_data(g)[m * N + n];
      lg_data(e)[k * N + n] = (float)s;
    }
  if (gb) CHECK_CLOSE(gb, e, 1e-5);
  /* backward() accumulates both leaves: a.grad = g b^T, b.grad = a^T g */
  CHECK(lg_backward(1, &y, &g, 0, 0) == 0);
  lg_tensor *bt = OK(lg_transpose(b, 0, 1)), *at = OK(lg_transpose(a, 0, 1));
  lg_tensor *ea = naive_matmul(g, bt), *eb = naive_matmul(at, g);
  CHECK(a->grad && b->grad);
  if (a->grad) CHECK_CLOSE(a->grad, ea, 1e-5);
  if (b->grad) CHECK_CLOSE(b->grad, eb, 1e-5);
  lg_release(ea); lg_release(eb); lg_release(at); lg_release(bt);
  lg_release(e); lg_release(gb); lg_release(r); lg_release(ga); lg_release(g); lg_release(y);
  lg_release(a); lg_release(b);
}

int main(void)
{
  lg_gen_seed(&gen, 77);
  LGT_RUN(test_matmul_vs_naive);
  LGT_RUN(test_matmul_shapes_and_errors);
  LGT_RUN(test_matmul_gradients);
  LGT_RUN(test_matmul_mixed_second_derivative);
  return lgt_finish();
}
