/* test_reduce.c: reductions, sum_to, argmax/argmin and their gradients.
 *
 * Forward: every reduction against a naive double loop that gathers each
 * output's elements by multi-index, on random shapes (0-dim, empty, size-1
 * dims), random dim lists (negative dims, keepdim) and layouts (contiguous,
 * transposed, strided with an offset, expanded with stride 0), plus shapes
 * that take each fast path (rows, columns, one output split across
 * threads). Backward: first derivatives against central differences, the
 * fused and composite forms against each other, second derivatives against
 * differences of the first, and the documented conventions (ties share,
 * zero-safe norm and std). */
#include <string.h>
#include <stdlib.h>
#include "lgt.h"

static lg_gen gen;

static int64_t rnd(int64_t n) { return (int64_t)lg_gen_below(&gen, (uint64_t)n); }

/* ---- inputs -------------------------------------------------------------------------- */
enum { D_ANY, D_POS, D_NONZERO, D_QUANT, D_NEAR1 };

static void domain(lg_tensor *t, int dom)
{
  float *p = t->storage->data;
  size_t n = t->storage->nbytes / sizeof(float);
  for (size_t i = 0; i < n; i++) {
    float v = p[i];
    switch (dom) {
    case D_POS: p[i] = fabsf(v) + 0.1f; break;
    case D_NONZERO: p[i] = v < 0 ? v - 0.2f : v + 0.2f; break;
    case D_QUANT: p[i] = roundf(v * 2) / 2; break;
    case D_NEAR1: p[i] = 1 + 0.2f * v; break;   /* products stay in range */
    }
  }
}

/* Logical shape sh in layout 0 contiguous, 1 dims reversed in memory, 2 every
 * other element with an offset, 3 one dim expanded with stride 0. */
static lg_tensor *mk(int ndim, const int64_t *sh, int layout, int dom)
{
  int64_t bsh[LG_MAXDIM] = {0}, st[LG_MAXDIM] = {0};
  lg_tensor *base, *v;
  int d0 = -1;
  for (int d = 0; d < ndim; d++) if (sh[d] > 1) d0 = d;
  if (layout == 3 && d0 < 0) layout = 0;
  switch (layout) {
  case 1:
    for (int d = 0; d < ndim; d++) bsh[d] = sh[ndim - 1 - d];
    base = lgt_randn(&gen, ndim, bsh);
    for (int d = 0; d < ndim; d++) st[d] = base->stride[ndim - 1 - d];
    v = lg_alias(base, ndim, sh, st, 0);
    break;
  case 2:
    for (int d = 0; d < ndim; d++) bsh[d] = 2 * sh[d] + 1;
    base = lgt_randn(&gen, ndim, bsh);
    for (int d = 0; d < ndim; d++) st[d] = 2 * base->stride[d];
    v = lg_alias(base, ndim, sh, st, ndim ? 1 : 0);
    break;
  case 3:
    memcpy(bsh, sh, sizeof(int64_t) * ndim);
    bsh[d0] = 1;
    base = lgt_randn(&gen, ndim, bsh);
    memcpy(st, base->stride, sizeof(int64_t) * ndim);
    st[d0] = 0;
    v = lg_alias(base, ndim, sh, st, 0);
    break;
  default:
    base = lgt_randn(&gen, ndim, sh);
    v = lg_retain(base);
  }
  lg_release(base);
  domain(v, dom);
  return v;
}

/* ---- the naive reference --------------------------------------------------------------- */
enum { R_SUM, R_MEAN, R_VAR, R_STD, R_AMAX, R_AMIN, R_LSE, R_NORM, R_PROD, R_ARGMAX, R_ARGMIN };

static void unflat(int ndim, const int64_t *shape, int64_t k, int64_t *idx)
{
  for (int d = ndim - 1; d >= 0; d--) { idx[d] = k % shape[d]; k /= shape[d]; }
}

/* Reduce t over the dims in mask: the expected output (shape per keepdim). */
static lg_tensor *ref_reduce(const lg_tensor *t, unsigned mask, int keepdim, int op, double p, int corr)
{
  int64_t osh[LG_MAXDIM], ksh[LG_MAXDIM];
  int ond = 0, knd = 0;
  int64_t nout = 1, rc = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (mask >> d & 1) { rc *= t->shape[d]; if (keepdim) osh[ond++] = 1; }
    else { ksh[knd++] = t->shape[d]; osh[ond++] = t->shape[d]; nout *= t->shape[d]; }
  }
  lg_tensor *e = lg_empty(ond, osh);
  double *vals = malloc(sizeof(double) * (nout * rc + 1));
  int64_t *fill = calloc(nout + 1, sizeof(int64_t));
  int64_t n = lg_numel(t), idx[LG_MAXDIM], kidx[LG_MAXDIM];
  for (int64_t k = 0; k < n; k++) {
    unflat(t->ndim, t->shape, k, idx);
    int kk = 0;
    for (int d = 0; d < t->ndim; d++) if (!(mask >> d & 1)) kidx[kk++] = idx[d];
    int64_t j = 0;
    for (int d = 0; d < knd; d++) j = j * ksh[d] + kidx[d];
    vals[j * rc + fill[j]++] = lg_get(t, idx);
  }
  for (int64_t j = 0; j < nout; j++) {
    double *v = vals + j * rc, s = 0, m = -INFINITY, mn = INFINITY, r = 0;
    int64_t am = 0, an = 0;
    for (int64_t i = 0; i < rc; i++) {
      s += v[i];
      if (v[i] > m) { m = v[i]; am = i; }
      if (v[i] < mn) { mn = v[i]; an = i; }
    }
    double mean = s / rc;
    switch (op) {
    case R_SUM: r = s; break;
    case R_MEAN: r = mean; break;
    case R_VAR: case R_STD: {
      double q = 0;
      for (int64_t i = 0; i < rc; i++) q += (v[i] - mean) * (v[i] - mean);
      r = rc ? q / (rc - corr) : NAN;
      if (op == R_STD) r = sqrt(r);
      break;
    }
    case R_AMAX: r = m; break;
    case R_AMIN: r = mn; break;
    case R_LSE: {
      double q = 0;
      for (int64_t i = 0; i < rc; i++) q += exp(v[i] - m);
      r = rc ? m + log(q) : -INFINITY;
      break;
    }
    case R_NORM: {
      double q = 0;
      for (int64_t i = 0; i < rc; i++)
        q = isinf(p) ? fmax(q, fabs(v[i])) : q + pow(fabs(v[i]), p);
      r = isinf(p) ? q : pow(q, 1 / p);
      break;
    }
    case R_PROD: r = 1; for (int64_t i = 0; i < rc; i++) r *= v[i]; break;
    case R_ARGMAX: r = (double)am; break;
    case R_ARGMIN: r = (double)an; break;
    }
    lg_data(e)[j] = (float)r;
  }
  free(vals);
  free(fill);
  return e;
}

/* ---- forward, random ------------------------------------------------------------------------- */
typedef struct { const char *name; int op; double p; int corr; int dom; } red_case;
static const red_case red_cases[] = {
  {"sum", R_SUM, 0, 0, D_ANY}, {"mean", R_MEAN, 0, 0, D_ANY}, {"var", R_VAR, 0, 1, D_ANY},
  {"var0", R_VAR, 0, 0, D_ANY}, {"std", R_STD, 0, 1, D_ANY}, {"amax", R_AMAX, 0, 0, D_QUANT},
  {"amin", R_AMIN, 0, 0, D_QUANT}, {"logsumexp", R_LSE, 0, 0, D_ANY},
  {"norm2", R_NORM, 2, 0, D_ANY}, {"norm1", R_NORM, 1, 0, D_ANY}, {"norm3", R_NORM, 3, 0, D_ANY},
  {"norm_half", R_NORM, 0.5, 0, D_ANY}, {"norm_inf", R_NORM, INFINITY, 0, D_ANY},
  {"prod", R_PROD, 0, 0, D_NEAR1},
};
#define NRED (int)(sizeof red_cases / sizeof red_cases[0])

static lg_tensor *run_red(const red_case *c, lg_tensor *t, int nd, const int *dims, int keepdim)
{
  switch (c->op) {
  case R_SUM: return lg_sum(t, nd, dims, keepdim);
  case R_MEAN: return lg_mean(t, nd, dims, keepdim);
  case R_VAR: return lg_var(t, nd, dims, c->corr, keepdim);
  case R_STD: return lg_std(t, nd, dims, c->corr, keepdim);
  case R_AMAX: return lg_amax(t, nd, dims, keepdim);
  case R_AMIN: return lg_amin(t, nd, dims, keepdim);
  case R_LSE: return lg_logsumexp(t, nd, dims, keepdim);
  case R_NORM: return lg_norm(t, c->p, nd, dims, keepdim);
  default: return lg_prod(t, nd, dims, keepdim);
  }
}

/* Run case c on t over dims and compare with the reference. */
static void check_red(const red_case *c, lg_tensor *t, int nd, const int *dims, int keepdim, double tol)
{
  char b[64];
  unsigned mask = 0;
  int lim = t->ndim ? t->ndim : 1;
  for (int k = 0; k < nd; k++) mask |= 1u << (dims[k] < 0 ? dims[k] + lim : dims[k]);
  if (nd == 0) mask = (1u << t->ndim) - 1;
  if (t->ndim == 0) mask = 0;
  int64_t rc = 1;
  for (int d = 0; d < t->ndim; d++) if (mask >> d & 1) rc *= t->shape[d];
  lg_tensor *y = run_red(c, t, nd, dims, keepdim);
  if (rc == 0 && (c->op == R_AMAX || c->op == R_AMIN)) {
    CHECK(y == NULL && strstr(lg_last_error(), "empty"));
    lg_release(y);
    return;
  }
  if (!y) {
    lgt_failed_checks++;
    fprintf(stderr, "%s on %s failed: %s\n", c->name, lg_shape_str(t, b, sizeof b), lg_last_error());
    return;
  }
  lg_tensor *e = ref_reduce(t, mask, keepdim, c->op, c->p, c->corr);
  double d = lgt_maxdiff(y, e);
  if (!(d <= tol)) {
    lgt_failed_checks++;
    fprintf(stderr, "%s on %s (mask %x keepdim %d, strides %lld..) differs by %g\n", c->name,
            lg_shape_str(t, b, sizeof b), mask, keepdim, t->ndim ? (long long)t->stride[0] : 0LL, d);
  }
  CHECK(lg_is_contiguous(y));
  lg_release(e);
  lg_release(y);
}

/* Random dims: none (all), or a random subset in random order, some negative. */
static int rand_dims(int ndim, int *dims)
{
  if (ndim == 0) { if (rnd(2)) return 0; dims[0] = rnd(2) ? 0 : -1; return 1; }
  if (rnd(4) == 0) return 0;
  int nd = 0, perm[LG_MAXDIM];
  for (int d = 0; d < ndim; d++) perm[d] = d;
  for (int d = ndim - 1; d > 0; d--) { int j = (int)rnd(d + 1), t = perm[d]; perm[d] = perm[j]; perm[j] = t; }
  int want = 1 + (int)rnd(ndim);
  for (int k = 0; k < want; k++) dims[nd++] = rnd(2) ? perm[k] : perm[k] - ndim;
  return nd;
}

static void test_random(void)
{
  for (int c = 0; c < NRED; c++)
    for (int trial = 0; trial < 60; trial++) {
      int64_t sh[LG_MAXDIM];
      int ndim = (int)rnd(5);
      for (int d = 0; d < ndim; d++) sh[d] = rnd(12) == 0 ? 0 : 1 + rnd(5);
      int dims[LG_MAXDIM], nd = rand_dims(ndim, dims);
      lg_tensor *t = mk(ndim, sh, trial % 4, red_cases[c].dom);
      check_red(&red_cases[c], t, nd, dims, (int)rnd(2), 2e-6);
      lg_release(t);
    }
}

static void test_fast_paths(void)
{
  /* shapes and dims that take the rows walk (inner dims, one or few outputs
   * split in slices), the cols walk (outer dims, with and without row
   * slicing) and expanded or strided inputs; big enough to thread */
  struct { int nd; int64_t sh[3]; int layout; int ndims; int dims[3]; } cs[] = {
    {1, {100003}, 0, 0, {0}},          /* one output, sliced */
    {2, {300, 501}, 0, 1, {1}},        /* rows: one per output */
    {2, {3, 40000}, 0, 1, {-1}},       /* rows: few outputs, sliced */
    {2, {501, 300}, 0, 1, {0}},        /* cols, few blocks: rows sliced */
    {2, {501, 3000}, 0, 1, {0}},       /* cols, many blocks */
    {3, {40, 30, 50}, 0, 2, {0, 2}},   /* keep a middle dim */
    {3, {40, 30, 50}, 0, 2, {0, 1}},   /* cols with several reduced dims */
    {3, {6, 300, 40}, 0, 1, {1}},      /* cols, several groups of columns */
    {3, {3, 5, 20}, 0, 1, {1}},        /* the same, small (not threaded) */
    {3, {3, 5, 20}, 2, 2, {0, 1}},     /* cols? no: strided columns take rows */
    {2, {300, 501}, 1, 1, {1}},        /* transposed: cols over a view */
    {2, {300, 501}, 1, 1, {0}},        /* transposed: strided rows */
    {2, {100000, 2}, 0, 1, {0}},       /* narrow columns: strided rows, sliced */
    {3, {20, 50, 60}, 2, 2, {1, 2}},   /* strided with offset */
    {3, {20, 50, 60}, 3, 1, {1}},      /* stride 0 */
    {3, {20, 50, 60}, 3, 0, {0}},      /* stride 0, everything */
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
    for (int c = 0; c < NRED; c++) {
      lg_tensor *t = mk(cs[k].nd, cs[k].sh, cs[k].layout, red_cases[c].dom);
      /* products of thousands of values under/overflow: keep factors near 1 */
      if (red_cases[c].op == R_PROD) {
        float *p = t->storage->data;
        for (size_t i = 0; i < t->storage->nbytes / 4; i++) p[i] = 1 + (p[i] - 1) * 1e-3f;
      }
      check_red(&red_cases[c], t, cs[k].ndims, cs[k].dims, (int)(k % 2), 1e-5);
      lg_release(t);
    }
}

static void test_precision(void)
{
  /* a long sum of equal floats: double accumulators keep it exact enough
   * where a float running sum would drift by percents */
  int64_t n[1] = {1 << 22};
  lg_tensor *t = OK(lg_full(1, n, 0.1f));
  lg_tensor *s = OK(lg_sum(t, 0, NULL, 0)), *m = OK(lg_mean(t, 0, NULL, 0)), *v = OK(lg_var(t, 0, NULL, 1, 0));
  CHECK_NEAR(lg_data(s)[0], (double)0.1f * (1 << 22), 1e-7);
  CHECK_NEAR(lg_data(m)[0], 0.1f, 1e-7);
  CHECK(fabsf(lg_data(v)[0]) < 1e-12f);
  lg_release(s); lg_release(m); lg_release(v); lg_release(t);
}

static void test_argmax_argmin(void)
{
  for (int trial = 0; trial < 200; trial++) {
    int64_t sh[LG_MAXDIM];
    int ndim = (int)rnd(5);
    for (int d = 0; d < ndim; d++) sh[d] = rnd(12) == 0 ? 0 : 1 + rnd(5);
    lg_tensor *t = mk(ndim, sh, trial % 4, D_QUANT);   /* ties: the first index wins */
    int dim = ndim ? (int)rnd(ndim) : 0, keep = (int)rnd(2);
    if (rnd(2)) dim -= ndim ? ndim : 1;
    unsigned mask = ndim ? 1u << (dim < 0 ? dim + ndim : dim) : 0;
    int64_t rc = ndim ? sh[dim < 0 ? dim + ndim : dim] : 1;
    for (int is_max = 0; is_max < 2; is_max++) {
      lg_tensor *y = is_max ? lg_argmax(t, dim, keep) : lg_argmin(t, dim, keep);
      if (rc == 0) {
        FAILS(y, is_max ? "argmax" : "argmin");
        continue;
      }
      if (!y) { OK(y); continue; }
      lg_tensor *e = ref_reduce(t, mask, keep, is_max ? R_ARGMAX : R_ARGMIN, 0, 0);
      CHECK_CLOSE(y, e, 0);
      CHECK(!y->requires_grad);
      lg_release(e);
      lg_release(y);
    }
    lg_release(t);
  }
  /* NaN counts as the max (and the min): its first index */
  float v[5] = {1, NAN, 3, NAN, 0};
  int64_t s5[1] = {5};
  lg_tensor *t = OK(lg_from_data(1, s5, v));
  lg_tensor *a = OK(lg_argmax(t, 0, 0)), *b = OK(lg_argmin(t, 0, 0));
  CHECK(lg_data(a)[0] == 1 && lg_data(b)[0] == 1);
  lg_release(a); lg_release(b); lg_release(t);
  /* big, threaded */
  int64_t big[2] = {300, 501};
  t = mk(2, big, 1, D_ANY);
  for (int dim = 0; dim < 2; dim++) {
    lg_tensor *y = OK(lg_argmax(t, dim, 0)), *e = ref_reduce(t, 1u << dim, 0, R_ARGMAX, 0, 0);
    CHECK_CLOSE(y, e, 0);
    lg_release(y); lg_release(e);
  }
  lg_release(t);
}

/* ---- sum_to ------------------------------------------------------------------------------------------ */
static void test_sum_to(void)
{
  for (int trial = 0; trial < 200; trial++) {
    int64_t sh[LG_MAXDIM], ts[LG_MAXDIM];
    int ndim = (int)rnd(5);
    for (int d = 0; d < ndim; d++) sh[d] = rnd(12) == 0 ? 0 : 1 + rnd(5);
    int drop = (int)rnd(ndim + 1), tn = ndim - drop;
    for (int d = 0; d < tn; d++) ts[d] = rnd(2) ? 1 : sh[d + drop];
    lg_tensor *t = mk(ndim, sh, trial % 4, D_ANY);
    lg_tensor *y = OK(lg_sum_to(t, tn, ts));
    /* reference: every element of t added into the target index it broadcasts from */
    lg_tensor *e = OK(lg_zeros(tn, ts));
    int64_t n = lg_numel(t), idx[LG_MAXDIM];
    double *acc = calloc(lg_numel(e) + 1, sizeof(double));
    for (int64_t k = 0; k < n; k++) {
      unflat(ndim, sh, k, idx);
      int64_t j = 0;
      for (int d = 0; d < tn; d++) j = j * ts[d] + (ts[d] == 1 ? 0 : idx[d + drop]);
      acc[j] += lg_get(t, idx);
    }
    for (int64_t j = 0; j < lg_numel(e); j++) lg_data(e)[j] = (float)acc[j];
    free(acc);
    CHECK_CLOSE(y, e, 2e-6);
    lg_release(y); lg_release(e); lg_release(t);
  }
  int64_t s23[2] = {2, 3}, s4[1] = {4}, s123[3] = {1, 2, 3}, s13[2] = {1, 3}, s21[2] = {2, 1};
  lg_tensor *t = OK(lg_ones(2, s23));
  FAILS(lg_sum_to(t, 1, s4), "sum_to: cannot sum 2x3 to shape 4");
  FAILS(lg_sum_to(t, 3, s123), "sum_to");
  lg_tensor *a = OK(lg_sum_to(t, 2, s13)), *b = OK(lg_sum_to(t, 2, s21)), *c = OK(lg_sum_to(t, 0, NULL));
  CHECK(a->shape[0] == 1 && a->shape[1] == 3 && lg_data(a)[2] == 2);
  CHECK(b->shape[0] == 2 && b->shape[1] == 1 && lg_data(b)[1] == 3);
  CHECK(c->ndim == 0 && lg_data(c)[0] == 6);
  lg_release(a); lg_release(b); lg_release(c); lg_release(t);
}

/* ---- edge cases and bad input ---------------------------------------------------------------------- */
static void test_edges(void)
{
  lg_tensor *s = OK(lg_scalar(2.5f));
  int d0 = 0, d1 = 1, dm = -1;
  lg_tensor *a = OK(lg_sum(s, 0, NULL, 0)), *b = OK(lg_mean(s, 1, &d0, 1)), *c = OK(lg_amax(s, 1, &dm, 0));
  CHECK(a->ndim == 0 && lg_data(a)[0] == 2.5f && b->ndim == 0 && lg_data(b)[0] == 2.5f && lg_data(c)[0] == 2.5f);
  FAILS(lg_sum(s, 1, &d1, 0), "sum: dim 1 out of range for input scalar");
  lg_tensor *am = OK(lg_argmax(s, 0, 0));
  CHECK(am->ndim == 0 && lg_data(am)[0] == 0);
  lg_release(a); lg_release(b); lg_release(c); lg_release(am);
  /* empty: sum 0, mean NaN, prod 1, logsumexp -inf, norm 0, amax fails */
  int64_t e0[2] = {0, 3};
  lg_tensor *e = OK(lg_zeros(2, e0));
  a = OK(lg_sum(e, 1, &d0, 0));
  CHECK(a->ndim == 1 && a->shape[0] == 3 && lg_data(a)[0] == 0);
  lg_release(a);
  a = OK(lg_mean(e, 0, NULL, 0));
  CHECK(isnan(lg_data(a)[0]));
  lg_release(a);
  a = OK(lg_prod(e, 0, NULL, 0));
  CHECK(lg_data(a)[0] == 1);
  lg_release(a);
  a = OK(lg_logsumexp(e, 0, NULL, 0));
  CHECK(lg_data(a)[0] == -INFINITY);
  lg_release(a);
  a = OK(lg_norm(e, 2, 0, NULL, 0));
  CHECK(lg_data(a)[0] == 0);
  lg_release(a);
  a = OK(lg_sum(e, 1, &d1, 1));   /* nothing to reduce per output, no outputs */
  CHECK(a->ndim == 2 && a->shape[0] == 0 && a->shape[1] == 1);
  lg_release(a);
  a = OK(lg_amax(e, 1, &d1, 0));  /* no outputs: fine */
  CHECK(a->ndim == 1 && a->shape[0] == 0);
  lg_release(a);
  FAILS(lg_amax(e, 0, NULL, 0), "amax: cannot reduce over an empty dim (input 0x3)");
  FAILS(lg_amin(e, 1, &d0, 0), "amin");
  FAILS(lg_argmax(e, 0, 0), "argmax");
  /* var with N - correction <= 0 */
  int64_t s1[1] = {1};
  lg_tensor *one = OK(lg_ones(1, s1));
  a = OK(lg_var(one, 0, NULL, 1, 0));
  CHECK(isnan(lg_data(a)[0]) || isinf(lg_data(a)[0]));
  lg_release(a);
  /* logsumexp with infinities */
  float iv[3] = {-INFINITY, -INFINITY, -INFINITY}, jv[3] = {1, INFINITY, 2}, kv[3] = {1000, 1000, -5};
  int64_t s3[1] = {3};
  lg_tensor *ti = OK(lg_from_data(1, s3, iv)), *tj = OK(lg_from_data(1, s3, jv)), *tk = OK(lg_from_data(1, s3, kv));
  lg_tensor *li = OK(lg_logsumexp(ti, 0, NULL, 0)), *lj = OK(lg_logsumexp(tj, 0, NULL, 0)), *lk = OK(lg_logsumexp(tk, 0, NULL, 0));
  CHECK(lg_data(li)[0] == -INFINITY && lg_data(lj)[0] == INFINITY);
  CHECK_NEAR(lg_data(lk)[0], 1000 + log(2.0), 1e-6);
  lg_release(li); lg_release(lj); lg_release(lk); lg_release(ti); lg_release(tj); lg_release(tk);
  lg_release(one); lg_release(e); lg_release(s);
}

static void test_bad_input(void)
{
  int64_t s23[2] = {2, 3};
  lg_tensor *t = OK(lg_ones(2, s23));
  int d2 = 2, dm3 = -3, dup[2] = {1, -1}, d0 = 0;
  FAILS(lg_sum(t, 1, &d2, 0), "sum: dim 2 out of range for input 2x3");
  FAILS(lg_mean(t, 1, &dm3, 0), "mean: dim -3 out of range");
  FAILS(lg_var(t, 2, dup, 1, 0), "var: dim -1 given twice");
  FAILS(lg_std(t, 1, &d2, 1, 0), "std");
  FAILS(lg_amax(t, 1, &d2, 0), "amax");
  FAILS(lg_amin(t, 1, &d2, 0), "amin");
  FAILS(lg_logsumexp(t, 1, &d2, 0), "logsumexp");
  FAILS(lg_prod(t, 1, &d2, 0), "prod");
  FAILS(lg_norm(t, 2, 1, &d2, 0), "norm");
  FAILS(lg_norm(t, 0, 1, &d0, 0), "norm: p must be > 0");
  FAILS(lg_norm(t, -1, 0, NULL, 0), "norm: p must be > 0");
  FAILS(lg_norm(t, NAN, 0, NULL, 0), "norm: p must be > 0");
  FAILS(lg_argmax(t, 2, 0), "argmax: dim 2 out of range");
  FAILS(lg_argmin(t, -3, 0), "argmin");
  FAILS(lg_sum(t, -1, NULL, 0), "sum");
  lg_release(t);
}

/* ---- gradients (the same checker as test_pointwise.c) ---------------------------------------------- */
typedef lg_tensor *(*gfn)(lg_tensor **in);

static double loss_at(gfn f, lg_tensor **in, lg_tensor *w)
{
  int prev = lg_set_grad_enabled(0);
  lg_tensor *y = f(in);
  lg_set_grad_enabled(prev);
  int64_t n = lg_numel(y);
  float *buf = malloc(sizeof(float) * (n + 1));
  lg_read(y, buf);
  double s = 0;
  for (int64_t k = 0; k < n; k++) s += (double)buf[k] * lg_data(w)[k];
  free(buf);
  lg_release(y);
  return s;
}

static int grads(gfn f, int nin, lg_tensor **in, lg_tensor *w, int create, lg_tensor **G)
{
  lg_tensor *y = f(in);
  if (!y) return -1;
  lg_tensor *yw = lg_mul(y, w), *L = yw ? lg_sum(yw, 0, NULL, 0) : NULL;
  int rc = L ? lg_grad(1, &L, NULL, nin, in, G, create, create, 1) : -1;
  lg_release(L); lg_release(yw); lg_release(y);
  return rc;
}

static double gval(lg_tensor *G, int64_t e)
{
  if (!G) return 0;
  float *buf = malloc(sizeof(float) * lg_numel(G));
  lg_read(G, buf);
  double v = buf[e];
  free(buf);
  return v;
}

static void report(const char *name, const char *what, int k, int64_t e, double got, double want)
{
  lgt_failed_checks++;
  fprintf(stderr, "%s: %s of input %d element %lld: %.7g, expected %.7g\n", name, what, k,
          (long long)e, got, want);
}

static void gradcheck(const char *name, gfn f, int nin, lg_tensor **in)
{
  const double eps = 2e-3, tol = 1.5e-2;
  lg_tensor *y0 = f(in);
  if (!y0) { report(name, "forward", 0, 0, 0, 0); return; }
  lg_tensor *w = lgt_randn(&gen, y0->ndim, y0->shape);
  lg_release(y0);
  lg_tensor *G0[2] = {0}, *G1[2] = {0}, *V[2] = {0}, *H[2] = {0};
  if (grads(f, nin, in, w, 0, G0) || grads(f, nin, in, w, 1, G1)) {
    lgt_failed_checks++;
    fprintf(stderr, "%s: backward failed: %s\n", name, lg_last_error());
    goto done;
  }
  for (int k = 0; k < nin; k++) {
    if (G0[k] && G1[k]) {
      double d = lgt_maxdiff(G0[k], G1[k]);
      if (!(d <= 1e-5)) { lgt_failed_checks++; fprintf(stderr, "%s: gradients with and without graph differ by %g\n", name, d); }
    }
    for (int64_t e = 0; e < lg_numel(in[k]); e++) {
      float *p = lg_data(in[k]) + e, x0 = *p;
      *p = x0 + (float)eps; double lp = loss_at(f, in, w);
      *p = x0 - (float)eps; double lm = loss_at(f, in, w);
      *p = x0;
      double num = (lp - lm) / (2 * eps), an = gval(G0[k], e);
      if (!(fabs(an - num) <= tol * (1 + fabs(num)))) report(name, "gradient", k, e, an, num);
    }
  }
  lg_tensor *h = NULL;
  for (int k = 0; k < nin; k++) {
    V[k] = lgt_randn(&gen, in[k]->ndim, in[k]->shape);
    if (!G1[k]) continue;
    lg_tensor *t = OK(lg_mul(G1[k], V[k])), *st = OK(lg_sum(t, 0, NULL, 0));
    lg_release(t);
    if (h) { lg_tensor *h2 = OK(lg_add(h, st)); lg_release(h); lg_release(st); h = h2; }
    else h = st;
  }
  if (h && h->requires_grad && lg_grad(1, &h, NULL, nin, in, H, 0, 0, 1)) {
    lgt_failed_checks++;
    fprintf(stderr, "%s: double backward failed: %s\n", name, lg_last_error());
  }
  lg_release(h);
  for (int k = 0; k < nin; k++)
    for (int64_t e = 0; e < lg_numel(in[k]); e++) {
      float *p = lg_data(in[k]) + e, x0 = *p;
      double hv[2];
      for (int sg = 0; sg < 2; sg++) {
        *p = x0 + (float)(sg ? -eps : eps);
        lg_tensor *Gp[2] = {0};
        hv[sg] = 0;
        if (grads(f, nin, in, w, 0, Gp) == 0)
          for (int j = 0; j < nin; j++) {
            if (!Gp[j]) continue;
            for (int64_t q = 0; q < lg_numel(in[j]); q++) hv[sg] += gval(Gp[j], q) * lg_data(V[j])[q];
            lg_release(Gp[j]);
          }
      }
      *p = x0;
      double num = (hv[0] - hv[1]) / (2 * eps), an = gval(H[k], e);
      if (!(fabs(an - num) <= tol * (1 + fabs(num)))) report(name, "second derivative", k, e, an, num);
    }
done:
  for (int k = 0; k < 2; k++) { lg_release(G0[k]); lg_release(G1[k]); lg_release(V[k]); lg_release(H[k]); }
  lg_release(w);
}

static const int D1[1] = {1}, D0[1] = {0}, D02[2] = {0, 2}, DM1[1] = {-1};
#define GF(nm, call) static lg_tensor *g_##nm(lg_tensor **in) { lg_tensor *a = in[0]; return call; }
GF(sum_all, lg_sum(a, 0, NULL, 0)) GF(sum_1, lg_sum(a, 1, D1, 0)) GF(sum_02k, lg_sum(a, 2, D02, 1))
GF(mean_all, lg_mean(a, 0, NULL, 0)) GF(mean_0, lg_mean(a, 1, D0, 0)) GF(mean_02k, lg_mean(a, 2, D02, 1))
GF(var_1, lg_var(a, 1, D1, 1, 0)) GF(var_all0, lg_var(a, 0, NULL, 0, 0)) GF(var_02k, lg_var(a, 2, D02, 1, 1))
GF(std_1, lg_std(a, 1, D1, 1, 0)) GF(std_all, lg_std(a, 0, NULL, 0, 1))
GF(amax_1, lg_amax(a, 1, D1, 0)) GF(amax_all, lg_amax(a, 0, NULL, 0)) GF(amin_02k, lg_amin(a, 2, D02, 1))
GF(lse_1, lg_logsumexp(a, 1, D1, 0)) GF(lse_all, lg_logsumexp(a, 0, NULL, 1))
GF(norm2_1, lg_norm(a, 2, 1, D1, 0)) GF(norm2_all, lg_norm(a, 2, 0, NULL, 0))
GF(norm1_1, lg_norm(a, 1, 1, DM1, 0)) GF(norm3_1, lg_norm(a, 3, 1, D1, 1))
GF(norm_half, lg_norm(a, 0.5, 1, D1, 0)) GF(norm_inf, lg_norm(a, INFINITY, 1, D1, 0))
GF(prod_1, lg_prod(a, 1, D1, 0)) GF(prod_all, lg_prod(a, 0, NULL, 0))
static const int64_t TO[2] = {1, 4};
GF(sum_to, lg_sum_to(a, 2, TO))

static void test_gradients(void)
{
  struct { const char *name; gfn f; int dom; } cs[] = {
    {"sum all", g_sum_all, D_ANY}, {"sum dim 1", g_sum_1, D_ANY}, {"sum dims 0,2 keepdim", g_sum_02k, D_ANY},
    {"mean all", g_mean_all, D_ANY}, {"mean dim 0", g_mean_0, D_ANY}, {"mean dims 0,2 keepdim", g_mean_02k, D_ANY},
    {"var dim 1", g_var_1, D_ANY}, {"var all c0", g_var_all0, D_ANY}, {"var dims 0,2 keepdim", g_var_02k, D_ANY},
    {"std dim 1", g_std_1, D_ANY}, {"std all keepdim", g_std_all, D_ANY},
    {"amax dim 1", g_amax_1, D_ANY}, {"amax all", g_amax_all, D_ANY}, {"amin dims 0,2", g_amin_02k, D_ANY},
    {"logsumexp dim 1", g_lse_1, D_ANY}, {"logsumexp all", g_lse_all, D_ANY},
    {"norm2 dim 1", g_norm2_1, D_ANY}, {"norm2 all", g_norm2_all, D_ANY},
    {"norm1 dim -1", g_norm1_1, D_NONZERO}, {"norm3 dim 1", g_norm3_1, D_NONZERO},
    {"norm0.5 dim 1", g_norm_half, D_NONZERO}, {"norm inf dim 1", g_norm_inf, D_ANY},
    {"prod dim 1", g_prod_1, D_NONZERO}, {"prod all", g_prod_all, D_NEAR1}, {"sum_to", g_sum_to, D_ANY},
  };
  int64_t sh[3] = {2, 4, 3}, sh2[2] = {3, 4};
  for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
    int three = strstr(cs[c].name, "0,2") != NULL;
    lg_tensor *x = lgt_randn(&gen, three ? 3 : 2, three ? sh : sh2);
    domain(x, cs[c].dom);
    /* max-type ops: distinct values, a difference step never crosses a tie */
    if (strstr(cs[c].name, "amax") || strstr(cs[c].name, "amin") || strstr(cs[c].name, "inf"))
      for (int64_t i = 0; i < lg_numel(x); i++) lg_data(x)[i] = (float)((i * 7) % 29) * 0.1f - 1.4f;   /* distinct */
    lg_requires_grad_(x, 1);
    gradcheck(cs[c].name, cs[c].f, 1, &x);
    lg_release(x);
  }
}

static void test_gradient_conventions(void)
{
  /* amax/amin: ties share g equally; norm and std: 0 (not NaN) at zero */
  float v[4] = {1, 3, 3, 2};
  int64_t s4[1] = {4};
  lg_tensor *x = OK(lg_from_data(1, s4, v)), *G = NULL;
  lg_requires_grad_(x, 1);
  for (int create = 0; create < 2; create++) {
    lg_tensor *y = OK(lg_amax(x, 0, NULL, 0));
    CHECK(lg_grad(1, &y, NULL, 1, &x, &G, create, create, 0) == 0);
    CHECK(lg_data(G)[0] == 0 && lg_data(G)[1] == 0.5f && lg_data(G)[2] == 0.5f && lg_data(G)[3] == 0);
    lg_release(G); lg_release(y);
  }
  float u[4] = {1, 0, 0, 2};
  lg_tensor *z = OK(lg_from_data(1, s4, u));
  lg_requires_grad_(z, 1);
  lg_tensor *y = OK(lg_amin(z, 0, NULL, 0));
  CHECK(lg_grad(1, &y, NULL, 1, &z, &G, 0, 0, 0) == 0);
  CHECK(lg_data(G)[1] == 0.5f && lg_data(G)[2] == 0.5f && lg_data(G)[0] == 0);
  lg_release(G); lg_release(y); lg_release(z);
  lg_tensor *zero = OK(lg_zeros(1, s4)), *c = OK(lg_full(1, s4, 2));
  lg_requires_grad_(zero, 1); lg_requires_grad_(c, 1);
  lg_tensor *ops[5];
  ops[0] = OK(lg_norm(zero, 2, 0, NULL, 0));
  ops[1] = OK(lg_norm(zero, 3, 0, NULL, 0));
  ops[2] = OK(lg_norm(zero, 0.5, 0, NULL, 0));
  ops[3] = OK(lg_std(c, 0, NULL, 1, 0));
  ops[4] = OK(lg_norm(zero, 1, 0, NULL, 0));
  for (int k = 0; k < 5; k++) {
    lg_tensor *in = k == 3 ? c : zero, *gg = NULL;
    CHECK(lg_grad(1, &ops[k], NULL, 1, &in, &G, 1, 1, 0) == 0);
    for (int i = 0; i < 4; i++) CHECK(lg_data(G)[i] == 0);
    /* and the double backward stays finite */
    lg_tensor *sg = OK(lg_sum(G, 0, NULL, 0));
    if (sg->requires_grad && lg_grad(1, &sg, NULL, 1, &in, &gg, 0, 0, 1) == 0 && gg)
      for (int i = 0; i < 4; i++) CHECK(isfinite(lg_data(gg)[i]));
    lg_release(gg); lg_release(sg); lg_release(G); lg_release(ops[k]);
  }
  lg_release(zero); lg_release(c); lg_release(x);
}

static void test_no_record(void)
{
  int64_t s23[2] = {2, 3};
  lg_tensor *x = OK(lg_ones(2, s23));
  lg_requires_grad_(x, 1);
  lg_tensor *a = OK(lg_argmax(x, 1, 0)), *s = OK(lg_sum(x, 0, NULL, 0));
  CHECK(!a->requires_grad && !a->grad_fn);
  CHECK(s->grad_fn && !strcmp(lg_node_name(s->grad_fn), "sum"));
  int prev = lg_set_grad_enabled(0);
  lg_tensor *m = OK(lg_mean(x, 0, NULL, 0));
  CHECK(!m->requires_grad);
  lg_set_grad_enabled(prev);
  lg_release(a); lg_release(s); lg_release(m); lg_release(x);
}

int main(void)
{
  lg_gen_seed(&gen, 4242);
  LGT_RUN(test_random);
  LGT_RUN(test_fast_paths);
  LGT_RUN(test_precision);
  LGT_RUN(test_argmax_argmin);
  LGT_RUN(test_sum_to);
  LGT_RUN(test_edges);
  LGT_RUN(test_bad_input);
  LGT_RUN(test_gradients);
  LGT_RUN(test_gradient_conventions);
  LGT_RUN(test_no_record);
  return lgt_finish();
}
