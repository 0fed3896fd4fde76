/* test_pointwise.c: elementwise ops, comparisons and their gradients.
 *
 * Forward: every op against a naive double-precision loop over a multi-index,
 * on random shapes (0-dim, empty, size-1 dims, broadcasting) and layouts
 * (contiguous, transposed, strided with an offset, expanded with stride 0),
 * plus tensors big enough to take the threaded and chunked paths.
 * Backward: each formula's first derivative against central differences,
 * the fused (no graph) and composite (create_graph) forms against each
 * other, and the second derivative (gradient of <grad, v>) against central
 * differences of the first derivative. */
#include <string.h>
#include <stdlib.h>
#include "lgt.h"

static lg_gen gen;

static int64_t rnd(int64_t n) { return (int64_t)lg_gen_below(&gen, (uint64_t)n); }

/* ---- inputs ------------------------------------------------------------------------ */
enum { D_ANY, D_POS, D_NONZERO, D_QUANT, D_SMALL };

/* Map every value of t's storage into a domain (views share it). */
static void domain(lg_tensor *t, int dom)
{
  float *p = t->storage->data;
  size_t n = t->storage->nbytes / sizeof(float);
  for (size_t i = 0; i < n; i++) {
    float v = p[i];
    switch (dom) {
    case D_POS: p[i] = fabsf(v) + 0.1f; break;
    case D_NONZERO: p[i] = v < 0 ? v - 0.2f : v + 0.2f; break;
    case D_QUANT: p[i] = roundf(v * 2) / 2; break;   /* ties and exact equalities */
    case D_SMALL: p[i] = v * 0.5f; break;
    }
  }
}

/* A tensor of logical shape sh in one of four layouts: 0 contiguous, 1 all
 * dims reversed in memory, 2 every other element of a bigger buffer with an
 * offset, 3 one dim expanded with stride 0. */
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

static int rand_shape(int64_t *sh, int maxdim)
{
  int nd = (int)rnd(maxdim + 1);
  for (int d = 0; d < nd; d++) sh[d] = rnd(10) == 0 ? 0 : 1 + rnd(5);
  return nd;
}

/* ---- naive references ------------------------------------------------------------------ */
static void unflat(int ndim, const int64_t *shape, int64_t k, int64_t *idx)
{
  for (int d = ndim - 1; d >= 0; d--) { idx[d] = k % shape[d]; k /= shape[d]; }
}

/* Element of t at the broadcast index idx (of an ndim-dim shape). */
static double at(const lg_tensor *t, int ndim, const int64_t *idx)
{
  int64_t ti[LG_MAXDIM];
  for (int d = 0; d < t->ndim; d++) {
    int od = d + ndim - t->ndim;
    ti[d] = t->shape[d] == 1 ? 0 : idx[od];
  }
  return lg_get(t, ti);
}

static int bshape(int na, const int64_t *sa, int nb, const int64_t *sb, int64_t *out)
{
  int n = na > nb ? na : nb;
  for (int k = 0; k < n; k++) {
    int64_t x = k < n - na ? 1 : sa[k - (n - na)], y = k < n - nb ? 1 : sb[k - (n - nb)];
    out[k] = x == 1 ? y : x;
  }
  return n;
}

/* Expected tensor: f applied elementwise over broadcast operands (up to 3). */
typedef double (*ref3)(double x, double y, double z);
static lg_tensor *expect(int nops, lg_tensor *const *t, ref3 f)
{
  int64_t sh[LG_MAXDIM];
  int nd = 0;
  for (int o = 0; o < nops; o++) {
    int64_t tmp[LG_MAXDIM];
    memcpy(tmp, sh, sizeof tmp);
    nd = bshape(nd, tmp, t[o]->ndim, t[o]->shape, sh);
  }
  lg_tensor *e = lg_empty(nd, sh);
  int64_t n = lg_numel(e), idx[LG_MAXDIM];
  for (int64_t k = 0; k < n; k++) {
    unflat(nd, sh, k, idx);
    double v[3] = {0, 0, 0};
    for (int o = 0; o < nops; o++) v[o] = at(t[o], nd, idx);
    lg_data(e)[k] = (float)f(v[0], v[1], v[2]);
  }
  return e;
}

/* ---- unary ops ---------------------------------------------------------------------------- */
typedef struct {
  const char *name;
  lg_tensor *(*op)(lg_tensor *);
  double (*ref)(double, double, double);
  int dom;
} unary_case;

#define UOP(nm, call, expr, dom) \
  static lg_tensor *u_##nm(lg_tensor *a) { return call; } \
  static double r_##nm(double x, double y_, double z_) { (void)y_; (void)z_; return expr; }
static double sgn(double x) { return x > 0 ? 1 : x < 0 ? -1 : x; }
static double sigm(double x) { return 1 / (1 + exp(-x)); }
static double clampd(double x, double lo, double hi) { double t = x < lo ? lo : x; return t > hi ? hi : t; }
UOP(neg, lg_neg(a), -x, D_ANY)
UOP(reciprocal, lg_reciprocal(a), 1 / x, D_NONZERO)
UOP(exp, lg_exp(a), exp(x), D_ANY)
UOP(log, lg_log(a), log(x), D_POS)
UOP(log1p, lg_log1p(a), log1p(x), D_POS)
UOP(sqrt, lg_sqrt(a), sqrt(x), D_POS)
UOP(rsqrt, lg_rsqrt(a), 1 / sqrt(x), D_POS)
UOP(abs, lg_abs(a), fabs(x), D_ANY)
UOP(sign, lg_sign(a), sgn(x), D_QUANT)
UOP(sin, lg_sin(a), sin(x), D_ANY)
UOP(cos, lg_cos(a), cos(x), D_ANY)
UOP(tanh, lg_tanh(a), tanh(x), D_ANY)
UOP(sigmoid, lg_sigmoid(a), sigm(x), D_ANY)
UOP(relu, lg_relu(a), x > 0 ? x : 0, D_QUANT)
UOP(leaky_relu, lg_leaky_relu(a, 0.2f), x > 0 ? x : 0.2f * x, D_ANY)
UOP(elu, lg_elu(a, 1.3f), x > 0 ? x : 1.3f * (exp(x) - 1), D_ANY)
UOP(softplus, lg_softplus(a), log1p(exp(x)), D_ANY)
UOP(clamp, lg_clamp(a, -0.5f, 0.7f), clampd(x, -0.5, 0.7), D_QUANT)
UOP(clamp_lo, lg_clamp(a, -INFINITY, 0.3f), clampd(x, -INFINITY, 0.3), D_ANY)
UOP(clamp_crossed, lg_clamp(a, 1, -1), -1, D_ANY)
UOP(add_scalar, lg_add_scalar(a, 2.5f), x + 2.5f, D_ANY)
UOP(mul_scalar, lg_mul_scalar(a, -1.5f), x * -1.5f, D_ANY)
UOP(pow2, lg_pow_scalar(a, 2), x * x, D_ANY)
UOP(pow3, lg_pow_scalar(a, 3), x * x * x, D_ANY)
UOP(pow_half, lg_pow_scalar(a, 0.5f), sqrt(x), D_POS)
UOP(pow_neg, lg_pow_scalar(a, -1.5f), pow(x, -1.5), D_POS)
UOP(rpow, lg_rpow_scalar(2, a), pow(2, x), D_ANY)
UOP(rpow_half, lg_rpow_scalar(0.5f, a), pow(0.5, x), D_ANY)
UOP(gt_scalar, lg_gt_scalar(a, 0.5f), x > 0.5, D_QUANT)
UOP(lt_scalar, lg_lt_scalar(a, 0.5f), x < 0.5, D_QUANT)
UOP(ge_scalar, lg_ge_scalar(a, 0.5f), x >= 0.5, D_QUANT)
UOP(le_scalar, lg_le_scalar(a, 0.5f), x <= 0.5, D_QUANT)
UOP(eq_scalar, lg_eq_scalar(a, 0.5f), x == 0.5, D_QUANT)

#define UC(nm, dom) {#nm, u_##nm, r_##nm, dom}
static const unary_case unary_cases[] = {
  UC(neg, D_ANY), UC(reciprocal, D_NONZERO), UC(exp, D_ANY), UC(log, D_POS), UC(log1p, D_POS),
  UC(sqrt, D_POS), UC(rsqrt, D_POS), UC(abs, D_ANY), UC(sign, D_QUANT), UC(sin, D_ANY),
  UC(cos, D_ANY), UC(tanh, D_ANY), UC(sigmoid, D_ANY), UC(relu, D_QUANT), UC(leaky_relu, D_ANY),
  UC(elu, D_ANY), UC(softplus, D_ANY), UC(clamp, D_QUANT), UC(clamp_lo, D_ANY),
  UC(clamp_crossed, D_ANY), UC(add_scalar, D_ANY), UC(mul_scalar, D_ANY), UC(pow2, D_ANY),
  UC(pow3, D_ANY), UC(pow_half, D_POS), UC(pow_neg, D_POS), UC(rpow, D_ANY),
  UC(rpow_half, D_ANY), UC(gt_scalar, D_QUANT), UC(lt_scalar, D_QUANT), UC(ge_scalar, D_QUANT),
  UC(le_scalar, D_QUANT), UC(eq_scalar, D_QUANT),
};
#define NUNARY (int)(sizeof unary_cases / sizeof unary_cases[0])

static void check_unary(const unary_case *c, lg_tensor *x)
{
  lg_tensor *y = c->op(x);
  if (!y) { lgt_failed_checks++; fprintf(stderr, "%s failed: %s\n", c->name, lg_last_error()); return; }
  lg_tensor *e = expect(1, &x, c->ref);
  double d = lgt_maxdiff(y, e);
  if (!(d <= 2e-6)) {
    char b[64];
    lgt_failed_checks++;
    fprintf(stderr, "%s on %s (strides %lld..): differs by %g\n", c->name,
            lg_shape_str(x, b, sizeof b), x->ndim ? (long long)x->stride[0] : 0LL, d);
  }
  CHECK(lg_is_contiguous(y) && !y->requires_grad);
  lg_release(e);
  lg_release(y);
}

static void test_unary_random(void)
{
  for (int c = 0; c < NUNARY; c++)
    for (int trial = 0; trial < 24; trial++) {
      int64_t sh[LG_MAXDIM];
      int nd = rand_shape(sh, 4);
      lg_tensor *x = mk(nd, sh, trial % 4, unary_cases[c].dom);
      check_unary(&unary_cases[c], x);
      lg_release(x);
    }
}

static void test_unary_large(void)
{
  /* past the threading threshold and the chunk size, flat and strided */
  int64_t big[2] = {181, 200}, longrow[2] = {2, 40001};
  for (int c = 0; c < NUNARY; c++) {
    for (int layout = 0; layout < 3; layout++) {
      lg_tensor *x = mk(2, layout == 2 ? longrow : big, layout, unary_cases[c].dom);
      check_unary(&unary_cases[c], x);
      lg_release(x);
    }
  }
}

/* ---- binary ops ----------------------------------------------------------------------------------- */
typedef struct {
  const char *name;
  lg_tensor *(*op)(lg_tensor *, lg_tensor *);
  double (*ref)(double, double, double);
  int da, db;
} binary_case;

#define BOP(nm, call, expr) \
  static lg_tensor *b_##nm(lg_tensor *a, lg_tensor *b) { return call; } \
  static double rb_##nm(double x, double y, double z_) { (void)z_; return expr; }
BOP(add, lg_add(a, b), x + y)
BOP(sub, lg_sub(a, b), x - y)
BOP(mul, lg_mul(a, b), x * y)
BOP(div, lg_div(a, b), x / y)
BOP(pow, lg_pow(a, b), pow(x, y))
BOP(maximum, lg_maximum(a, b), isnan(x) || isnan(y) ? NAN : x > y ? x : y)
BOP(minimum, lg_minimum(a, b), isnan(x) || isnan(y) ? NAN : x < y ? x : y)
BOP(eq, lg_eq(a, b), x == y)
BOP(ne, lg_ne(a, b), x != y)
BOP(lt, lg_lt(a, b), x < y)
BOP(le, lg_le(a, b), x <= y)
BOP(gt, lg_gt(a, b), x > y)
BOP(ge, lg_ge(a, b), x >= y)

static const binary_case binary_cases[] = {
  {"add", b_add, rb_add, D_ANY, D_ANY}, {"sub", b_sub, rb_sub, D_ANY, D_ANY},
  {"mul", b_mul, rb_mul, D_ANY, D_ANY}, {"div", b_div, rb_div, D_ANY, D_NONZERO},
  {"pow", b_pow, rb_pow, D_POS, D_SMALL}, {"maximum", b_maximum, rb_maximum, D_QUANT, D_QUANT},
  {"minimum", b_minimum, rb_minimum, D_QUANT, D_QUANT}, {"eq", b_eq, rb_eq, D_QUANT, D_QUANT},
  {"ne", b_ne, rb_ne, D_QUANT, D_QUANT}, {"lt", b_lt, rb_lt, D_QUANT, D_QUANT},
  {"le", b_le, rb_le, D_QUANT, D_QUANT}, {"gt", b_gt, rb_gt, D_QUANT, D_QUANT},
  {"ge", b_ge, rb_ge, D_QUANT, D_QUANT},
};
#define NBINARY (int)(sizeof binary_cases / sizeof binary_cases[0])

/* A shape broadcasting to (nd, sh): leading dims dropped at random, others 1 at random. */
static int sub_shape(int nd, const int64_t *sh, int64_t *out)
{
  int drop = (int)rnd(nd + 1);
  if (rnd(2)) drop = 0;
  for (int d = drop; d < nd; d++) out[d - drop] = rnd(3) == 0 ? 1 : sh[d];
  return nd - drop;
}

static void check_binary(const binary_case *c, lg_tensor *a, lg_tensor *b)
{
  lg_tensor *y = c->op(a, b);
  char b1[64], b2[64];
  if (!y) {
    lgt_failed_checks++;
    fprintf(stderr, "%s(%s, %s) failed: %s\n", c->name, lg_shape_str(a, b1, sizeof b1),
            lg_shape_str(b, b2, sizeof b2), lg_last_error());
    return;
  }
  lg_tensor *ops[2] = {a, b}, *e = expect(2, ops, c->ref);
  double d = lgt_maxdiff(y, e);
  if (!(d <= 2e-6)) {
    lgt_failed_checks++;
    fprintf(stderr, "%s(%s, %s) differs by %g\n", c->name, lg_shape_str(a, b1, sizeof b1),
            lg_shape_str(b, b2, sizeof b2), d);
  }
  CHECK(lg_is_contiguous(y));
  lg_release(e);
  lg_release(y);
}

static void test_binary_random(void)
{
  for (int c = 0; c < NBINARY; c++)
    for (int trial = 0; trial < 40; trial++) {
      int64_t sh[LG_MAXDIM], sa[LG_MAXDIM], sb[LG_MAXDIM];
      int nd = rand_shape(sh, 4);
      int na = sub_shape(nd, sh, sa), nb = sub_shape(nd, sh, sb);
      if (trial % 2) { int t = na; na = nb; nb = t; int64_t tmp[LG_MAXDIM]; memcpy(tmp, sa, sizeof tmp);
                       memcpy(sa, sb, sizeof tmp); memcpy(sb, tmp, sizeof tmp); }
      lg_tensor *a = mk(na, sa, trial % 4, binary_cases[c].da);
      lg_tensor *b = mk(nb, sb, (trial / 4) % 4, binary_cases[c].db);
      check_binary(&binary_cases[c], a, b);
      check_binary(&binary_cases[c], b, a);
      lg_release(a);
      lg_release(b);
    }
}

static void test_binary_large(void)
{
  /* flat + threaded, scalar broadcast, row/column broadcast, strided long rows */
  int64_t big[2] = {181, 200}, row[1] = {200}, col[2] = {181, 1}, one[1] = {1}, longrow[2] = {2, 40001};
  for (int c = 0; c < NBINARY; c++) {
    const binary_case *bc = &binary_cases[c];
    lg_tensor *a = mk(2, big, 0, bc->da), *at_ = mk(2, big, 1, bc->da);
    lg_tensor *r = mk(1, row, 0, bc->db), *cl = mk(2, col, 0, bc->db), *s = mk(0, NULL, 0, bc->db);
    lg_tensor *o = mk(1, one, 0, bc->db), *b = mk(2, big, 2, bc->db);
    lg_tensor *la = mk(2, longrow, 2, bc->da), *lb = mk(2, longrow, 0, bc->db);
    check_binary(bc, a, b);
    check_binary(bc, at_, a);
    check_binary(bc, a, r);
    check_binary(bc, cl, a);
    check_binary(bc, at_, s);
    check_binary(bc, s, a);
    check_binary(bc, o, at_);
    check_binary(bc, la, lb);
    lg_tensor *all[9] = {a, at_, r, cl, s, o, b, la, lb};
    for (int k = 0; k < 9; k++) lg_release(all[k]);
  }
}

static double r_where(double c, double x, double y) { return c != 0 ? x : y; }

static void test_where(void)
{
  for (int trial = 0; trial < 60; trial++) {
    int64_t sh[LG_MAXDIM], sc[LG_MAXDIM], sa[LG_MAXDIM], sb[LG_MAXDIM];
    int nd = rand_shape(sh, 4);
    int nc = sub_shape(nd, sh, sc), na = sub_shape(nd, sh, sa), nb = sub_shape(nd, sh, sb);
    lg_tensor *c = mk(nc, sc, trial % 4, D_QUANT);
    lg_tensor *a = mk(na, sa, (trial / 4) % 4, D_ANY), *b = mk(nb, sb, (trial / 2) % 4, D_ANY);
    lg_tensor *y = OK(lg_where(c, a, b));
    lg_tensor *ops[3] = {c, a, b}, *e = expect(3, ops, r_where);
    CHECK_CLOSE(y, e, 0);
    lg_release(y); lg_release(e); lg_release(a); lg_release(b); lg_release(c);
  }
  int64_t big[2] = {181, 200}, row[1] = {200};
  lg_tensor *c = mk(2, big, 1, D_QUANT), *a = mk(1, row, 0, D_ANY), *b = mk(0, NULL, 0, D_ANY);
  lg_tensor *y = OK(lg_where(c, a, b)), *ops[3] = {c, a, b}, *e = expect(3, ops, r_where);
  CHECK_CLOSE(y, e, 0);
  lg_release(y); lg_release(e); lg_release(a); lg_release(b); lg_release(c);
}

/* ---- edge cases ----------------------------------------------------------------------------------- */
static lg_tensor *vec(int n, const float *v)
{
  int64_t s[1] = {n};
  return lg_from_data(1, s, v);
}

static void test_special_values(void)
{
  float xv[6] = {NAN, 100, -100, 0, -0.0f, 1};
  float yv[6] = {1, NAN, 2, 0, 0, INFINITY};
  lg_tensor *x = OK(vec(6, xv)), *y = OK(vec(6, yv));
  lg_tensor *mx = OK(lg_maximum(x, y)), *mn = OK(lg_minimum(x, y));
  CHECK(isnan(lg_data(mx)[0]) && isnan(lg_data(mx)[1]) && lg_data(mx)[2] == 2 && lg_data(mx)[5] == INFINITY);
  CHECK(isnan(lg_data(mn)[0]) && isnan(lg_data(mn)[1]) && lg_data(mn)[2] == -100);
  lg_tensor *sp = OK(lg_softplus(x)), *sg = OK(lg_sigmoid(x)), *th = OK(lg_tanh(x)), *re = OK(lg_relu(x));
  CHECK(isnan(lg_data(sp)[0]) && lg_data(sp)[1] == 100 && lg_data(sp)[2] >= 0 && lg_data(sp)[2] < 1e-30);
  CHECK_NEAR(lg_data(sp)[3], log(2.0), 1e-7);
  CHECK(lg_data(sg)[1] == 1 && lg_data(sg)[2] >= 0 && lg_data(sg)[2] < 1e-30 && lg_data(sg)[3] == 0.5f);
  CHECK(lg_data(th)[1] == 1 && lg_data(th)[2] == -1);
  CHECK(isnan(lg_data(re)[0]) && lg_data(re)[1] == 100 && lg_data(re)[2] == 0);
  lg_tensor *cl = OK(lg_clamp(x, -1, 1)), *sn = OK(lg_sign(x));
  CHECK(isnan(lg_data(cl)[0]) && lg_data(cl)[1] == 1 && lg_data(cl)[2] == -1);
  CHECK(isnan(lg_data(sn)[0]) && lg_data(sn)[1] == 1 && lg_data(sn)[2] == -1 && lg_data(sn)[3] == 0);
  lg_tensor *eq = OK(lg_eq(x, y)), *ne = OK(lg_ne(x, y));
  CHECK(lg_data(eq)[0] == 0 && lg_data(eq)[3] == 1 && lg_data(eq)[4] == 1);   /* -0 == 0 */
  CHECK(lg_data(ne)[0] == 1 && lg_data(ne)[3] == 0);
  lg_tensor *all[12] = {x, y, mx, mn, sp, sg, th, re, cl, sn, eq, ne};
  for (int k = 0; k < 12; k++) lg_release(all[k]);
}

static void test_zero_dim_and_empty(void)
{
  lg_tensor *s = OK(lg_scalar(3)), *t = OK(lg_scalar(-2));
  lg_tensor *r = OK(lg_mul(s, t));
  CHECK(r->ndim == 0 && lg_data(r)[0] == -6);
  lg_release(r);
  int64_t sh[2] = {2, 3}, e0[2] = {0, 3}, e1[2] = {1, 3}, z[1] = {0};
  lg_tensor *m = OK(lg_ones(2, sh));
  r = OK(lg_add(s, m));
  CHECK(r->ndim == 2 && r->shape[0] == 2 && r->shape[1] == 3 && lg_data(r)[5] == 4);
  lg_release(r);
  lg_tensor *e = OK(lg_zeros(2, e0)), *o = OK(lg_ones(2, e1)), *zz = OK(lg_zeros(1, z));
  r = OK(lg_add(e, o));
  CHECK(r->ndim == 2 && r->shape[0] == 0 && r->shape[1] == 3);
  lg_release(r);
  r = OK(lg_where(e, s, t));
  CHECK(r->ndim == 2 && r->shape[0] == 0);
  lg_release(r);
  r = OK(lg_exp(e));
  CHECK(lg_numel(r) == 0 && r->shape[1] == 3);
  lg_release(r);
  r = OK(lg_mul(zz, s));   /* (0) * scalar */
  CHECK(r->ndim == 1 && r->shape[0] == 0);
  lg_release(r);
  r = OK(lg_gt(s, t));
  CHECK(r->ndim == 0 && lg_data(r)[0] == 1);
  lg_release(r);
  lg_release(e); lg_release(o); lg_release(zz); lg_release(m); lg_release(s); lg_release(t);
}

static void test_bad_input(void)
{
  int64_t s23[2] = {2, 3}, s4[1] = {4}, s32[2] = {3, 2};
  lg_tensor *a = OK(lg_ones(2, s23)), *b = OK(lg_ones(1, s4)), *c = OK(lg_ones(2, s32));
  FAILS(lg_add(a, b), "add: shapes 2x3 and 4 cannot broadcast");
  FAILS(lg_sub(a, c), "sub: shapes 2x3 and 3x2");
  FAILS(lg_mul(b, a), "mul: shapes 4 and 2x3");
  FAILS(lg_div(a, b), "div");
  FAILS(lg_pow(a, b), "pow");
  FAILS(lg_maximum(a, b), "maximum");
  FAILS(lg_minimum(a, b), "minimum");
  FAILS(lg_where(b, a, a), "where");
  FAILS(lg_where(a, a, b), "where");
  FAILS(lg_eq(a, b), "eq: shapes 2x3 and 4");
  FAILS(lg_ne(a, b), "ne");
  FAILS(lg_lt(a, b), "lt");
  FAILS(lg_le(a, b), "le");
  FAILS(lg_gt(a, b), "gt");
  FAILS(lg_ge(a, b), "ge");
  FAILS(lg_clamp(a, NAN, 1), "clamp");
  lg_release(a); lg_release(b); lg_release(c);
}

static void test_recording(void)
{
  float v[3] = {1, -2, 3};
  lg_tensor *x = OK(vec(3, v)), *c = OK(vec(3, v));
  lg_requires_grad_(x, 1);
  lg_tensor *m = OK(lg_gt(x, c)), *ms = OK(lg_gt_scalar(x, 0));
  CHECK(!m->requires_grad && !m->grad_fn && !ms->requires_grad);
  lg_tensor *y = OK(lg_tanh(x)), *z = OK(lg_mul(c, c));
  CHECK(y->grad_fn && !strcmp(lg_node_name(y->grad_fn), "tanh"));
  CHECK(!z->requires_grad && !z->grad_fn);
  lg_tensor *w = OK(lg_where(x, c, x));   /* cond requiring grad is not an input */
  CHECK(w->grad_fn && w->grad_fn->n_in == 2);
  int prev = lg_set_grad_enabled(0);
  lg_tensor *q = OK(lg_exp(x));
  CHECK(!q->requires_grad && !q->grad_fn);
  lg_set_grad_enabled(prev);
  lg_tensor *all[7] = {x, c, m, ms, y, z, w};
  for (int k = 0; k < 7; k++) lg_release(all[k]);
  lg_release(q);
}

/* ---- gradients -------------------------------------------------------------------------------- */
typedef lg_tensor *(*gfn)(lg_tensor **in);

/* sum(f(in) * w) in double, recording nothing */
static double loss_at(gfn f, lg_tensor **in, lg_tensor *w)
{
  int prev = lg_set_grad_enabled(0);
  lg_tensor *y = f(in);
  lg_set_grad_enabled(prev);
  int64_t n = lg_numel(y);
  double s = 0;
  for (int64_t k = 0; k < n; k++) s += (double)lg_data(y)[k] * lg_data(w)[k];
  lg_release(y);
  return s;
}

/* Gradients of sum(f(in) * w) into G (new refs, NULL where unused). */
static int grads(gfn f, int nin, lg_tensor **in, lg_tensor *w, int create, lg_tensor **G)
{
  lg_tensor *y = f(in);
  if (!y) return -1;
  lg_tensor *yw = lg_mul(y, w), *L = yw ? lg_sum(yw, 0, NULL, 0) : NULL;
  /* create_graph keeps the graph, as in PyTorch: formulas that use a saved
   * output run that output's node again in the double backward */
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

/* First derivative (fused and composite) and second derivative of f at in
 * (contiguous inputs that require grad) against central differences. */
static void gradcheck(const char *name, gfn f, int nin, lg_tensor **in)
{
  const double eps = 2e-3, tol = 1.5e-2;
  lg_tensor *y0 = f(in);
  if (!y0) { report(name, "forward", 0, 0, 0, 0); return; }
  lg_tensor *w = lgt_randn(&gen, y0->ndim, y0->shape);
  lg_release(y0);
  lg_tensor *G0[3] = {0}, *G1[3] = {0}, *V[3] = {0}, *H[3] = {0};
  if (grads(f, nin, in, w, 0, G0) || grads(f, nin, in, w, 1, G1)) {
    lgt_failed_checks++;
    fprintf(stderr, "%s: backward failed: %s\n", name, lg_last_error());
    goto done;
  }
  for (int k = 0; k < nin; k++) {
    if (G0[k] && G1[k]) {
      double d = lgt_maxdiff(G0[k], G1[k]);
      if (!(d <= 1e-5)) { lgt_failed_checks++; fprintf(stderr, "%s: fused and composite gradients of input %d differ by %g\n", name, k, d); }
    } else if (G0[k] || G1[k]) {
      lgt_failed_checks++;
      fprintf(stderr, "%s: gradient of input %d missing in one mode\n", name, k);
    }
    if (G0[k]) CHECK(!G0[k]->requires_grad);
    for (int64_t e = 0; e < lg_numel(in[k]); e++) {
      float *p = lg_data(in[k]) + e, x0 = *p;
      *p = x0 + (float)eps; double lp = loss_at(f, in, w);
      *p = x0 - (float)eps; double lm = loss_at(f, in, w);
      *p = x0;
      double num = (lp - lm) / (2 * eps), an = gval(G0[k], e);
      if (!(fabs(an - num) <= tol * (1 + fabs(num)))) report(name, "gradient", k, e, an, num);
    }
  }
  /* second order: h = sum_k <G1_k, V_k>; dh/din against differences of G0 */
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
      for (int sgn_ = 0; sgn_ < 2; sgn_++) {
        *p = x0 + (float)(sgn_ ? -eps : eps);
        lg_tensor *Gp[3] = {0};
        hv[sgn_] = 0;
        if (grads(f, nin, in, w, 0, Gp) == 0)
          for (int j = 0; j < nin; j++) {
            if (!Gp[j]) continue;
            for (int64_t q = 0; q < lg_numel(in[j]); q++) hv[sgn_] += gval(Gp[j], q) * lg_data(V[j])[q];
            lg_release(Gp[j]);
          }
      }
      *p = x0;
      double num = (hv[0] - hv[1]) / (2 * eps), an = gval(H[k], e);
      if (!(fabs(an - num) <= tol * (1 + fabs(num)))) report(name, "second derivative", k, e, an, num);
    }
done:
  for (int k = 0; k < 3; k++) { lg_release(G0[k]); lg_release(G1[k]); lg_release(V[k]); lg_release(H[k]); }
  lg_release(w);
}

/* A contiguous leaf of the shape with values in dom, nudged away from kinks. */
static lg_tensor *leaf(int ndim, const int64_t *sh, int dom, float kink_lo, float kink_hi)
{
  lg_tensor *t = lgt_randn(&gen, ndim, sh);
  domain(t, dom);
  float *p = lg_data(t);
  for (int64_t i = 0; i < lg_numel(t); i++) {
    if (fabsf(p[i] - kink_lo) < 0.1f) p[i] = kink_lo + (p[i] < kink_lo ? -0.15f : 0.15f);
    if (fabsf(p[i] - kink_hi) < 0.1f) p[i] = kink_hi + (p[i] < kink_hi ? -0.15f : 0.15f);
  }
  lg_requires_grad_(t, 1);
  return t;
}

#define GF1(nm, call) static lg_tensor *g_##nm(lg_tensor **in) { lg_tensor *a = in[0]; return call; }
#define GF2(nm, call) static lg_tensor *g_##nm(lg_tensor **in) { lg_tensor *a = in[0], *b = in[1]; return call; }
GF1(neg, lg_neg(a)) GF1(reciprocal, lg_reciprocal(a)) GF1(exp, lg_exp(a)) GF1(log, lg_log(a))
GF1(log1p, lg_log1p(a)) GF1(sqrt, lg_sqrt(a)) GF1(rsqrt, lg_rsqrt(a)) GF1(abs, lg_abs(a))
GF1(sign, lg_sign(a)) GF1(sin, lg_sin(a)) GF1(cos, lg_cos(a)) GF1(tanh, lg_tanh(a))
GF1(sigmoid, lg_sigmoid(a)) GF1(relu, lg_relu(a)) GF1(leaky_relu, lg_leaky_relu(a, 0.2f))
GF1(elu, lg_elu(a, 1.3f)) GF1(softplus, lg_softplus(a)) GF1(clamp, lg_clamp(a, -0.5f, 0.5f))
GF1(add_scalar, lg_add_scalar(a, 1.5f)) GF1(mul_scalar, lg_mul_scalar(a, -2.5f))
GF1(pow0, lg_pow_scalar(a, 0)) GF1(pow1, lg_pow_scalar(a, 1)) GF1(pow2, lg_pow_scalar(a, 2))
GF1(pow3, lg_pow_scalar(a, 3)) GF1(pow_half, lg_pow_scalar(a, 0.5f)) GF1(pow_neg, lg_pow_scalar(a, -1.5f))
GF1(rpow, lg_rpow_scalar(1.7f, a))
GF2(add, lg_add(a, b)) GF2(sub, lg_sub(a, b)) GF2(mul, lg_mul(a, b)) GF2(div, lg_div(a, b))
GF2(pow, lg_pow(a, b)) GF2(maximum, lg_maximum(a, b)) GF2(minimum, lg_minimum(a, b))
static lg_tensor *where_cond;
GF2(where, lg_where(where_cond, a, b))

static void test_unary_gradients(void)
{
  struct { const char *name; gfn f; int dom; float k0, k1; } cs[] = {
    {"neg", g_neg, D_ANY, NAN, NAN}, {"reciprocal", g_reciprocal, D_NONZERO, NAN, NAN},
    {"exp", g_exp, D_ANY, NAN, NAN}, {"log", g_log, D_POS, NAN, NAN},
    {"log1p", g_log1p, D_POS, NAN, NAN}, {"sqrt", g_sqrt, D_POS, NAN, NAN},
    {"rsqrt", g_rsqrt, D_POS, NAN, NAN}, {"abs", g_abs, D_ANY, 0, NAN},
    {"sign", g_sign, D_ANY, 0, NAN}, {"sin", g_sin, D_ANY, NAN, NAN}, {"cos", g_cos, D_ANY, NAN, NAN},
    {"tanh", g_tanh, D_ANY, NAN, NAN}, {"sigmoid", g_sigmoid, D_ANY, NAN, NAN},
    {"relu", g_relu, D_ANY, 0, NAN}, {"leaky_relu", g_leaky_relu, D_ANY, 0, NAN},
    {"elu", g_elu, D_ANY, 0, NAN}, {"softplus", g_softplus, D_ANY, NAN, NAN},
    {"clamp", g_clamp, D_ANY, -0.5f, 0.5f}, {"add_scalar", g_add_scalar, D_ANY, NAN, NAN},
    {"mul_scalar", g_mul_scalar, D_ANY, NAN, NAN}, {"pow0", g_pow0, D_ANY, NAN, NAN},
    {"pow1", g_pow1, D_ANY, NAN, NAN}, {"pow2", g_pow2, D_ANY, NAN, NAN},
    {"pow3", g_pow3, D_ANY, NAN, NAN}, {"pow_half", g_pow_half, D_POS, NAN, NAN},
    {"pow_neg", g_pow_neg, D_POS, NAN, NAN}, {"rpow", g_rpow, D_ANY, NAN, NAN},
  };
  int64_t sh[2] = {2, 3};
  for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
    lg_tensor *x = leaf(2, sh, cs[c].dom, cs[c].k0, cs[c].k1);
    gradcheck(cs[c].name, cs[c].f, 1, &x);
    lg_release(x);
  }
}

static void test_binary_gradients(void)
{
  struct { const char *name; gfn f; int da, db; } cs[] = {
    {"add", g_add, D_ANY, D_ANY}, {"sub", g_sub, D_ANY, D_ANY}, {"mul", g_mul, D_ANY, D_ANY},
    {"div", g_div, D_ANY, D_NONZERO}, {"pow", g_pow, D_POS, D_SMALL},
    {"maximum", g_maximum, D_ANY, D_ANY}, {"minimum", g_minimum, D_ANY, D_ANY},
    {"where", g_where, D_ANY, D_ANY},
  };
  /* same shapes, then broadcasting both ways (sum_to back to each input) */
  int64_t s23[2] = {2, 3}, s3[1] = {3}, s21[2] = {2, 1};
  struct { int na; const int64_t *sa; int nb; const int64_t *sb; } shapes[] = {
    {2, s23, 2, s23}, {2, s23, 1, s3}, {2, s21, 1, s3}, {0, NULL, 2, s23},
  };
  int64_t cs23[2] = {2, 3};
  float cv[6] = {1, 0, 0, 1, 1, 0};
  where_cond = OK(lg_from_data(2, cs23, cv));
  for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      lg_tensor *in[2];
      in[0] = leaf(shapes[s].na, shapes[s].sa, cs[c].da, NAN, NAN);
      in[1] = leaf(shapes[s].nb, shapes[s].sb, cs[c].db, NAN, NAN);
      if (cs[c].f == g_maximum || cs[c].f == g_minimum) {
        /* keep a and b apart so no difference step crosses a tie */
        lg_tensor *a = in[0], *b = in[1];
        for (int64_t i = 0; i < lg_numel(a); i++) lg_data(a)[i] = (float)(i % 3) - 1 + 0.37f * (i % 2);
        for (int64_t i = 0; i < lg_numel(b); i++) lg_data(b)[i] = (float)((i + 1) % 3) - 1.21f;
      }
      char name[64];
      snprintf(name, sizeof name, "%s (shapes %zu)", cs[c].name, s);
      gradcheck(name, cs[c].f, 2, in);
      lg_release(in[0]); lg_release(in[1]);
    }
  lg_release(where_cond);
}

static void test_tie_and_zero_conventions(void)
{
  /* maximum/minimum ties split g in halves; pow at 0 keeps finite gradients */
  float av[3] = {1, 2, 3}, bv[3] = {1, 5, 0};
  lg_tensor *a = OK(vec(3, av)), *b = OK(vec(3, bv));
  lg_requires_grad_(a, 1); lg_requires_grad_(b, 1);
  lg_tensor *in[2] = {a, b}, *G[2];
  lg_tensor *m = OK(lg_maximum(a, b)), *s = OK(lg_sum(m, 0, NULL, 0));
  CHECK(lg_grad(1, &s, NULL, 2, in, G, 0, 0, 0) == 0);
  CHECK(lg_data(G[0])[0] == 0.5f && lg_data(G[0])[1] == 0 && lg_data(G[0])[2] == 1);
  CHECK(lg_data(G[1])[0] == 0.5f && lg_data(G[1])[1] == 1 && lg_data(G[1])[2] == 0);
  lg_release(G[0]); lg_release(G[1]); lg_release(s); lg_release(m);
  m = OK(lg_minimum(a, b)); s = OK(lg_sum(m, 0, NULL, 0));
  CHECK(lg_grad(1, &s, NULL, 2, in, G, 0, 0, 0) == 0);
  CHECK(lg_data(G[0])[0] == 0.5f && lg_data(G[0])[1] == 1 && lg_data(G[0])[2] == 0);
  lg_release(G[0]); lg_release(G[1]); lg_release(s); lg_release(m);
  /* pow(0, b): d/da = 0 for b == 0, d/db = 0 for a == 0 and b >= 0 */
  float pa[3] = {0, 0, 2}, pb[3] = {0, 2, 0};
  lg_tensor *x = OK(vec(3, pa)), *e = OK(vec(3, pb));
  lg_requires_grad_(x, 1); lg_requires_grad_(e, 1);
  lg_tensor *pin[2] = {x, e}, *p = OK(lg_pow(x, e)), *ps = OK(lg_sum(p, 0, NULL, 0));
  CHECK(lg_grad(1, &ps, NULL, 2, pin, G, 0, 1, 0) == 0);
  for (int i = 0; i < 3; i++) CHECK(isfinite(lg_data(G[0])[i]) && isfinite(lg_data(G[1])[i]));
  CHECK(lg_data(G[0])[0] == 0 && lg_data(G[1])[0] == 0 && lg_data(G[1])[1] == 0);
  CHECK_NEAR(lg_data(G[1])[2], log(2.0), 1e-6);
  lg_release(G[0]); lg_release(G[1]); lg_release(ps); lg_release(p);
  lg_release(x); lg_release(e); lg_release(a); lg_release(b);
}

int main(void)
{
  lg_gen_seed(&gen, 20240601);
  LGT_RUN(test_unary_random);
  LGT_RUN(test_unary_large);
  LGT_RUN(test_binary_random);
  LGT_RUN(test_binary_large);
  LGT_RUN(test_where);
  LGT_RUN(test_special_values);
  LGT_RUN(test_zero_dim_and_empty);
  LGT_RUN(test_bad_input);
  LGT_RUN(test_recording);
  LGT_RUN(test_unary_gradients);
  LGT_RUN(test_binary_gradients);
  LGT_RUN(test_tie_and_zero_conventions);
  return lgt_finish();
}
