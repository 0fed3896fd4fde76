/* test_create.c: the generator (against the PCG reference algorithm, written
 * again here), creation ops, random ops (determinism, moments, errors) and
 * the in-place ops (against naive loops, on strided and overlapping views). */
#include <string.h>
#include <stdlib.h>
#include "lgt.h"

/* ---- the PCG reference (O'Neill, pcg_basic.c), independent of lg_rng.c ---- */
typedef struct { uint64_t state, inc; } ref_pcg;

static uint32_t ref_next(ref_pcg *r)
{
  uint64_t old = r->state;
  r->state = old * 6364136223846793005ULL + r->inc;
  uint32_t xs = (uint32_t)(((old >> 18) ^ old) >> 27), rot = (uint32_t)(old >> 59);
  return (xs >> rot) | (xs << ((32 - rot) & 31));
}

static void ref_seed(ref_pcg *r, uint64_t initstate, uint64_t initseq)
{
  r->state = 0;
  r->inc = (initseq << 1) | 1;
  ref_next(r);
  r->state += initstate;
  ref_next(r);
}

static double ref_uniform(ref_pcg *r)
{
  uint64_t a = ref_next(r) >> 5, b = ref_next(r) >> 6;   /* 27 + 26 bits */
  return (double)((a << 26) | b) / 9007199254740992.0;
}

static lg_tensor *vec(int64_t n, const float *v)
{
  int64_t s[1] = {n};
  return lg_from_data(1, s, v);
}

/* Multi-index of flat (row-major) position k of a shape. */
static void unflat(int ndim, const int64_t *shape, int64_t k, int64_t *idx)
{
  for (int d = ndim - 1; d >= 0; d--) {
    idx[d] = shape[d] ? k % shape[d] : 0;
    k = shape[d] ? k / shape[d] : 0;
  }
}

/* ---- generator ---------------------------------------------------------------- */
static void test_pcg_matches_reference(void)
{
  /* pcg32-demo prints these for srandom(42, 54); the generator's fixed stream
   * is 54 so seed 42 must give them. */
  const uint32_t demo[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u, 0x83d2f293u,
                            0xbfa4784bu, 0xcbed606eu};
  lg_gen g;
  lg_gen_seed(&g, 42);
  for (int i = 0; i < 6; i++) CHECK(lg_gen_u32(&g) == demo[i]);
  /* and any seed follows the reference algorithm */
  uint64_t seeds[4] = {0, 1, 123456789, UINT64_MAX};
  for (int s = 0; s < 4; s++) {
    ref_pcg r;
    ref_seed(&r, seeds[s], 54);
    lg_gen_seed(&g, seeds[s]);
    for (int i = 0; i < 100; i++) CHECK(lg_gen_u32(&g) == ref_next(&r));
  }
}

static void test_uniform_and_normal_from_stream(void)
{
  lg_gen g;
  ref_pcg r;
  lg_gen_seed(&g, 7);
  ref_seed(&r, 7, 54);
  for (int i = 0; i < 50; i++) {
    double u = lg_gen_uniform(&g), e = ref_uniform(&r);
    CHECK(u == e);
    CHECK(u >= 0 && u < 1);
  }
  /* Box-Muller pairs: cos first, then the cached sin */
  for (int i = 0; i < 20; i++) {
    double u1 = 1.0 - ref_uniform(&r), u2 = ref_uniform(&r);
    double rad = sqrt(-2 * log(u1));
    CHECK(lg_gen_normal(&g) == rad * cos(2 * M_PI * u2));
    CHECK(lg_gen_normal(&g) == rad * sin(2 * M_PI * u2));
  }
}

static void test_below_unbiased(void)
{
  lg_gen g;
  lg_gen_seed(&g, 3);
  CHECK(lg_gen_below(&g, 0) == 0);
  CHECK(lg_gen_below(&g, 1) == 0);
  /* counts of below(6) over 60000 draws: each within 6 sigma of 10000 */
  int64_t cnt[6] = {0};
  for (int i = 0; i < 60000; i++) {
    uint64_t v = lg_gen_below(&g, 6);
    CHECK(v < 6);
    if (v < 6) cnt[v]++;
  }
  double sd = sqrt(60000 * (1 / 6.0) * (5 / 6.0));
  for (int k = 0; k < 6; k++) CHECK(fabs(cnt[k] - 10000.0) < 6 * sd);
  /* A range just above 2^31: the biased mapping (u32 % n) would make values
   * below 2^32 - n twice as likely; unbiased gives a mean near n/2. */
  uint64_t n = (UINT64_C(1) << 31) + (UINT64_C(1) << 30);
  double mean = 0;
  int64_t div3 = 0;
  for (int i = 0; i < 20000; i++) {
    uint64_t v = lg_gen_below(&g, n);
    CHECK(v < n);
    mean += (double)v / 20000;
    div3 += v % 3 == 0;
  }
  CHECK(fabs(mean / n - 0.5) < 6 * sqrt(1 / 12.0 / 20000));
  /* n = 3 * 2^30, so a third of the values are multiples of 3; multiply-shift
   * without rejection would hit those twice as often (a half) */
  CHECK(fabs(div3 / 20000.0 - 1 / 3.0) < 6 * sqrt(2 / 9.0 / 20000));
  /* 64-bit ranges */
  uint64_t big = (UINT64_C(1) << 40) + 12345;
  for (int i = 0; i < 1000; i++) CHECK(lg_gen_below(&g, big) < big);
  for (int i = 0; i < 1000; i++) CHECK(lg_gen_below(&g, UINT64_MAX) < UINT64_MAX);
}

static void test_state_roundtrip(void)
{
  lg_gen g;
  lg_gen_seed(&g, 99);
  (void)lg_gen_normal(&g);   /* leaves a spare cached: it must be saved too */
  uint64_t st[LG_GEN_STATE_WORDS];
  lg_gen_get_state(&g, st);
  double a[10];
  for (int i = 0; i < 10; i++) a[i] = i % 3 ? lg_gen_normal(&g) : lg_gen_uniform(&g);
  lg_gen h;
  lg_gen_seed(&h, 1);
  lg_gen_set_state(&h, st);
  for (int i = 0; i < 10; i++) CHECK(a[i] == (i % 3 ? lg_gen_normal(&h) : lg_gen_uniform(&h)));
  /* the default generator too, through the tensor ops */
  lg_manual_seed(5);
  lg_gen_get_state(lg_default_gen(), st);
  int64_t s[2] = {3, 4};
  lg_tensor *x = OK(lg_randn(NULL, 2, s));
  lg_gen_set_state(lg_default_gen(), st);
  lg_tensor *y = OK(lg_randn(NULL, 2, s));
  CHECK(lgt_maxdiff(x, y) == 0);
  /* manual_seed(5) and a private generator seeded 5 agree */
  lg_manual_seed(5);
  lg_tensor *z = OK(lg_rand(NULL, 2, s));
  lg_gen_seed(&g, 5);
  lg_tensor *w = OK(lg_rand(&g, 2, s));
  CHECK(lgt_maxdiff(z, w) == 0);
  lg_release(x); lg_release(y); lg_release(z); lg_release(w);
}

/* ---- random creation ------------------------------------------------------------ */
static void test_rand_values_and_moments(void)
{
  lg_gen g;
  ref_pcg r;
  lg_gen_seed(&g, 11);
  ref_seed(&r, 11, 54);
  int64_t s[2] = {200, 250};
  lg_tensor *t = OK(lg_rand(&g, 2, s));
  const float *p = lg_data(t);
  for (int i = 0; i < 8; i++) CHECK(p[i] == (float)ref_uniform(&r));
  int64_t n = lg_numel(t);
  double m = 0, v = 0;
  int in_range = 1;
  for (int64_t i = 0; i < n; i++) {
    m += p[i];
    in_range &= p[i] >= 0 && p[i] < 1;
  }
  m /= n;
  for (int64_t i = 0; i < n; i++) v += (p[i] - m) * (p[i] - m);
  v /= n;
  CHECK(in_range);
  CHECK(fabs(m - 0.5) < 6 * sqrt(1 / 12.0 / n));
  CHECK(fabs(v - 1 / 12.0) < 0.002);
  lg_release(t);

  t = OK(lg_randn(&g, 2, s));
  p = lg_data(t);
  m = v = 0;
  double m4 = 0;
  for (int64_t i = 0; i < n; i++) m += p[i];
  m /= n;
  for (int64_t i = 0; i < n; i++) {
    double d = p[i] - m;
    v += d * d;
    m4 += d * d * d * d;
  }
  v /= n;
  m4 /= n;
  CHECK(fabs(m) < 6 / sqrt((double)n));
  CHECK(fabs(v - 1) < 6 * sqrt(2.0 / n));
  CHECK(fabs(m4 - 3) < 6 * sqrt(96.0 / n));   /* kurtosis of a normal */
  lg_release(t);

  t = OK(lg_randint(&g, -3, 4, 2, s));
  p = lg_data(t);
  int64_t cnt[7] = {0};
  int ok = 1;
  for (int64_t i = 0; i < n; i++) {
    ok &= p[i] >= -3 && p[i] < 4 && p[i] == floorf(p[i]);
    if (p[i] >= -3 && p[i] < 4) cnt[(int)p[i] + 3]++;
  }
  CHECK(ok);
  double sd = sqrt(n * (1 / 7.0) * (6 / 7.0));
  for (int k = 0; k < 7; k++) CHECK(fabs(cnt[k] - n / 7.0) < 6 * sd);
  lg_release(t);
  int64_t one[1] = {5};
  FAILS(lg_randint(&g, 4, 4, 1, one), "randint");
  FAILS(lg_rand(&g, 1, (int64_t[]){-2}), "negative");
}

static void test_bernoulli(void)
{
  lg_gen g;
  lg_gen_seed(&g, 12);
  /* p: (2, 20000) built as an expanded (2,1) view: rows 0.2 and 0.9 */
  float pv[2] = {0.2f, 0.9f};
  int64_t ps[2] = {2, 1}, es[2] = {2, 20000};
  lg_tensor *p1 = OK(lg_from_data(2, ps, pv)), *p = OK(lg_expand(p1, 2, es));
  lg_tensor *b = OK(lg_bernoulli(&g, p));
  CHECK(lg_same_shape(b, p));
  const float *q = lg_data(b);
  for (int r = 0; r < 2; r++) {
    double m = 0;
    int binary = 1;
    for (int i = 0; i < 20000; i++) {
      float x = q[r * 20000 + i];
      binary &= x == 0 || x == 1;
      m += x;
    }
    m /= 20000;
    CHECK(binary);
    CHECK(fabs(m - pv[r]) < 6 * sqrt(pv[r] * (1 - pv[r]) / 20000));
  }
  lg_release(b);
  /* p = 0 and 1 are exact */
  float ev[4] = {0, 1, 0, 1};
  lg_tensor *e = OK(vec(4, ev)), *eb = OK(lg_bernoulli(&g, e));
  CHECK(lgt_maxdiff(eb, e) == 0);
  float bad[2] = {0.5f, 1.5f};
  lg_tensor *bt = OK(vec(2, bad));
  FAILS(lg_bernoulli(&g, bt), "bernoulli: probability 1.5");
  bad[1] = NAN;
  lg_release(bt);
  bt = OK(vec(2, bad));
  FAILS(lg_bernoulli(&g, bt), "bernoulli");
  lg_release(bt); lg_release(e); lg_release(eb); lg_release(p); lg_release(p1);
}

static void test_randperm(void)
{
  lg_gen g;
  lg_gen_seed(&g, 13);
  int64_t sizes[4] = {0, 1, 7, 1000};
  for (int k = 0; k < 4; k++) {
    int64_t n = sizes[k];
    lg_tensor *t = OK(lg_randperm(&g, n));
    CHECK(t->ndim == 1 && t->shape[0] == n);
    char *seen = calloc(n + 1, 1);
    const float *p = lg_data(t);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
      int64_t v = (int64_t)p[i];
      if (p[i] != (float)v || v < 0 || v >= n || seen[v]) { ok = 0; break; }
      seen[v] = 1;
    }
    CHECK(ok);
    free(seen);
    lg_release(t);
  }
  /* uniform over positions: element 0 lands in each slot of 4 about equally */
  int64_t cnt[4] = {0};
  for (int i = 0; i < 8000; i++) {
    lg_tensor *t = OK(lg_randperm(&g, 4));
    for (int j = 0; j < 4; j++) if (lg_data(t)[j] == 0) cnt[j]++;
    lg_release(t);
  }
  for (int j = 0; j < 4; j++) CHECK(fabs(cnt[j] - 2000.0) < 6 * sqrt(8000 * 0.25 * 0.75));
  FAILS(lg_randperm(&g, -1), "randperm");
}

static void test_multinomial(void)
{
  lg_gen g;
  lg_gen_seed(&g, 14);
  /* 1-D, with replacement: frequencies follow the weights, zero never drawn */
  float w[4] = {1, 0, 3, 4};
  lg_tensor *p = OK(vec(4, w)), *s = OK(lg_multinomial(&g, p, 40000, 1));
  CHECK(s->ndim == 1 && s->shape[0] == 40000);
  int64_t cnt[4] = {0};
  int ok = 1;
  for (int i = 0; i < 40000; i++) {
    float x = lg_data(s)[i];
    if (!(x >= 0 && x < 4 && x == floorf(x))) ok = 0;
    else cnt[(int)x]++;
  }
  CHECK(ok);
  CHECK(cnt[1] == 0);
  for (int k = 0; k < 4; k++) {
    double pk = w[k] / 8.0;
    CHECK(fabs(cnt[k] - 40000 * pk) <= 6 * sqrt(40000 * pk * (1 - pk)));
  }
  lg_release(s);

  /* 2-D (through a transposed view), without replacement: rows hold distinct
   * categories with nonzero weight; drawing all of them gives a permutation */
  float w2[6] = {1, 5, 0, 2, 2, 1};   /* stored (3,2), transposed to (2,3) */
  int64_t sh[2] = {3, 2};
  lg_tensor *pt = OK(lg_from_data(2, sh, w2)), *p2 = OK(lg_transpose(pt, 0, 1));
  /* p2 rows: {1,0,2} and {5,2,1} */
  int first1 = 0;
  for (int rep = 0; rep < 2000; rep++) {
    lg_tensor *s2 = OK(lg_multinomial(&g, p2, 2, 0));
    CHECK(s2->ndim == 2 && s2->shape[0] == 2 && s2->shape[1] == 2);
    const float *q = lg_data(s2);
    CHECK(q[0] != q[1] && q[2] != q[3]);
    CHECK(q[0] != 1 && q[1] != 1);           /* zero weight in row 0 */
    CHECK(q[2] >= 0 && q[2] < 3 && q[3] >= 0 && q[3] < 3);
    if (q[2] == 0) first1++;
    lg_release(s2);
  }
  /* row 1: first draw is category 0 with probability 5/8 */
  CHECK(fabs(first1 - 2000 * 0.625) < 6 * sqrt(2000 * 0.625 * 0.375));
  lg_tensor *s3 = OK(lg_multinomial(&g, p, 3, 0));   /* all 3 nonzero categories */
  float q3[3];
  lg_read(s3, q3);
  CHECK(q3[0] + q3[1] + q3[2] == 0 + 2 + 3);
  CHECK(q3[0] != 1 && q3[1] != 1 && q3[2] != 1);
  lg_release(s3);
  /* n = 0 gives an empty result */
  lg_tensor *s0 = OK(lg_multinomial(&g, p2, 0, 1));
  CHECK(s0->ndim == 2 && s0->shape[0] == 2 && s0->shape[1] == 0);
  lg_release(s0);

  /* errors */
  FAILS(lg_multinomial(&g, p, 4, 0), "fewer than");
  FAILS(lg_multinomial(&g, p, 5, 0), "without replacement");
  float neg[3] = {1, -1, 2}, zero[3] = {0, 0, 0};
  lg_tensor *pn = OK(vec(3, neg)), *pz = OK(vec(3, zero));
  FAILS(lg_multinomial(&g, pn, 1, 1), "negative");
  FAILS(lg_multinomial(&g, pz, 1, 1), "all-zero");
  lg_tensor *sc = OK(lg_scalar(1));
  FAILS(lg_multinomial(&g, sc, 1, 1), "1-D or 2-D");
  lg_release(sc); lg_release(pn); lg_release(pz);
  lg_release(p); lg_release(p2); lg_release(pt);
}

/* ---- deterministic creation ---------------------------------------------------- */
static void test_constant_creation(void)
{
  int64_t s[3] = {2, 3, 4};
  lg_tensor *z = OK(lg_zeros(3, s)), *o = OK(lg_ones(3, s)), *f = OK(lg_full(3, s, -2.5f));
  lg_tensor *zl = OK(lg_zeros_like(f)), *ol = OK(lg_ones_like(z)), *fl = OK(lg_full_like(z, 7));
  for (int i = 0; i < 24; i++) {
    CHECK(lg_data(z)[i] == 0 && lg_data(zl)[i] == 0);
    CHECK(lg_data(o)[i] == 1 && lg_data(ol)[i] == 1);
    CHECK(lg_data(f)[i] == -2.5f && lg_data(fl)[i] == 7);
  }
  CHECK(lg_same_shape(zl, f) && lg_same_shape(fl, z));
  CHECK(!z->requires_grad && !z->grad_fn);
  lg_tensor *sc = OK(lg_full(0, NULL, 3));
  CHECK(sc->ndim == 0 && lg_data(sc)[0] == 3);
  int64_t e[2] = {0, 5};
  lg_tensor *em = OK(lg_ones(2, e));
  CHECK(lg_numel(em) == 0);
  lg_tensor *big = OK(lg_full(1, (int64_t[]){100003}, 4));   /* threaded path */
  int ok = 1;
  for (int i = 0; i < 100003; i++) ok &= lg_data(big)[i] == 4;
  CHECK(ok);
  lg_release(big); lg_release(em); lg_release(sc);
  lg_release(z); lg_release(o); lg_release(f); lg_release(zl); lg_release(ol); lg_release(fl);
}

static void test_arange_linspace_eye(void)
{
  lg_tensor *a = OK(lg_arange(0, 5, 1));
  CHECK(a->shape[0] == 5);
  for (int i = 0; i < 5; i++) CHECK(lg_data(a)[i] == i);
  lg_release(a);
  a = OK(lg_arange(1, 2, 0.3));      /* 1, 1.3, 1.6, 1.9 */
  CHECK(a->shape[0] == 4);
  for (int i = 0; i < 4; i++) CHECK_NEAR(lg_data(a)[i], 1 + 0.3 * i, 1e-6);
  lg_release(a);
  a = OK(lg_arange(3, -3, -2));      /* 3, 1, -1 */
  CHECK(a->shape[0] == 3 && lg_data(a)[2] == -1);
  lg_release(a);
  a = OK(lg_arange(2, 2, 1));
  CHECK(a->shape[0] == 0);
  lg_release(a);
  FAILS(lg_arange(0, 1, 0), "arange: step");
  FAILS(lg_arange(0, 5, -1), "arange");

  lg_tensor *l = OK(lg_linspace(-1, 2, 7));
  CHECK(l->shape[0] == 7 && lg_data(l)[0] == -1 && lg_data(l)[6] == 2);
  for (int i = 0; i < 7; i++) CHECK_NEAR(lg_data(l)[i], -1 + 0.5 * i, 1e-6);
  lg_release(l);
  l = OK(lg_linspace(0.1, 0.7, 3));  /* the end point is exact */
  CHECK(lg_data(l)[2] == 0.7f && lg_data(l)[0] == 0.1f);
  lg_release(l);
  l = OK(lg_linspace(3, 9, 1));
  CHECK(l->shape[0] == 1 && lg_data(l)[0] == 3);
  lg_release(l);
  l = OK(lg_linspace(3, 9, 0));
  CHECK(l->shape[0] == 0);
  lg_release(l);
  FAILS(lg_linspace(0, 1, -1), "linspace");

  lg_tensor *e = OK(lg_eye(3, 5));
  CHECK(e->shape[0] == 3 && e->shape[1] == 5);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 5; j++) CHECK(lg_data(e)[i * 5 + j] == (i == j));
  lg_release(e);
  e = OK(lg_eye(4, -1));
  CHECK(e->shape[1] == 4 && lg_data(e)[15] == 1 && lg_data(e)[14] == 0);
  lg_release(e);
  FAILS(lg_eye(-2, 3), "eye");
}

/* ---- in place ------------------------------------------------------------------ */
/* A non-contiguous 2-D view of a fresh (rows+2, cols*2) buffer: the
 * transpose of a narrowed, column-strided block, so writes through it must
 * leave the rest of the buffer alone. */
static lg_tensor *strided_view(lg_gen *g, int64_t rows, int64_t cols, lg_tensor **base)
{
  int64_t bs[2] = {cols + 3, rows * 2};
  *base = lgt_randn(g, 2, bs);
  lg_tensor *n1 = lg_narrow(*base, 0, 1, cols);
  lg_tensor *s1 = lg_slice(n1, 1, 0, rows * 2, 2);   /* (cols, rows), column stride 2 */
  lg_tensor *v = lg_transpose(s1, 0, 1);              /* (rows, cols) */
  lg_release(n1);
  lg_release(s1);
  return v;
}

static void test_fill_and_scalar_ops_strided(void)
{
  lg_gen g;
  lg_gen_seed(&g, 21);
  lg_tensor *base, *v = OK(strided_view(&g, 5, 7, &base));
  int64_t bn = lg_numel(base);
  float *before = malloc(sizeof(float) * bn);
  memcpy(before, lg_data(base), sizeof(float) * bn);
  uint32_t ver = v->storage->version;
  CHECK(lg_fill_(v, 2.5f) == 0);
  CHECK(v->storage->version == ver + 1);
  /* elements of base that v covers: rows 1..7, even columns < 10 */
  int ok = 1;
  for (int64_t i = 0; i < bn; i++) {
    int64_t r = i / 10, c = i % 10;
    int in = r >= 1 && r <= 7 && c % 2 == 0;
    ok &= lg_data(base)[i] == (in ? 2.5f : before[i]);
  }
  CHECK(ok);
  CHECK(lg_mul_scalar_(v, -2) == 0);
  CHECK(lg_add_scalar_(v, 1) == 0);
  for (int64_t k = 0; k < 35; k++) {
    int64_t idx[2] = {k / 7, k % 7};
    CHECK(lg_get(v, idx) == -4.0f);
  }
  CHECK(lg_zero_(v) == 0);
  int64_t idx0[2] = {4, 6};
  CHECK(lg_get(v, idx0) == 0);
  CHECK(lg_data(base)[0] == before[0]);
  free(before);
  lg_release(v); lg_release(base);
}

static void test_clamp_(void)
{
  float xv[6] = {-3, -1, 0, 0.5f, 2, NAN};
  lg_tensor *x = OK(vec(6, xv));
  CHECK(lg_clamp_(x, -1, 1) == 0);
  float e[5] = {-1, -1, 0, 0.5f, 1};
  for (int i = 0; i < 5; i++) CHECK(lg_data(x)[i] == e[i]);
  CHECK(isnan(lg_data(x)[5]));
  CHECK(lg_clamp_(x, -INFINITY, 0) == 0);
  CHECK(lg_data(x)[0] == -1 && lg_data(x)[3] == 0 && lg_data(x)[4] == 0);
  CHECK(lg_clamp_(x, 2, 1) != 0);
  CHECK(strstr(lg_last_error(), "clamp_") != NULL);
  lg_release(x);
}

/* Naive: t[i] op= o[broadcast i], element by element through lg_get. */
static void naive_binary(int k, lg_tensor *t, const lg_tensor *o, float alpha, float *out)
{
  int64_t n = lg_numel(t), idx[LG_MAXDIM], oi[LG_MAXDIM];
  for (int64_t i = 0; i < n; i++) {
    unflat(t->ndim, t->shape, i, idx);
    for (int d = 0; d < o->ndim; d++) {
      int td = d + t->ndim - o->ndim;
      oi[d] = o->shape[d] == 1 ? 0 : idx[td];
    }
    float a = lg_get(t, idx), b = lg_get(o, oi);
    out[i] = k == 0 ? b : k == 1 ? a + alpha * b : a * b;
  }
}

static void test_binary_inplace_vs_naive(void)
{
  lg_gen g;
  lg_gen_seed(&g, 22);
  /* o shapes broadcasting to (rows, cols): full, (cols), (rows,1), scalar, and
   * a transposed full one */
  for (int big = 0; big < 2; big++) {
    int64_t rows = big ? 300 : 5, cols = big ? 211 : 7;
    for (int os = 0; os < 5; os++) {
      for (int k = 0; k < 3; k++) {
        for (int dst_strided = 0; dst_strided < 2; dst_strided++) {
          lg_tensor *base = NULL, *t;
          int64_t ts[2] = {rows, cols};
          t = dst_strided ? strided_view(&g, rows, cols, &base) : lgt_randn(&g, 2, ts);
          lg_tensor *o, *obase = NULL;
          if (os == 0) o = lgt_randn(&g, 2, ts);
          else if (os == 1) o = lgt_randn(&g, 1, &cols);
          else if (os == 2) o = lgt_randn(&g, 2, (int64_t[]){rows, 1});
          else if (os == 3) { o = lg_scalar(1.5f); }
          else { obase = lgt_randn(&g, 2, (int64_t[]){cols, rows}); o = lg_transpose(obase, 0, 1); }
          int64_t n = rows * cols;
          float *exp = malloc(sizeof(float) * n), *got = malloc(sizeof(float) * n);
          naive_binary(k, t, o, -0.75f, exp);
          int rc = k == 0 ? lg_copy_(t, o) : k == 1 ? lg_add_(t, o, -0.75f) : lg_mul_(t, o);
          CHECK(rc == 0);
          lg_read(t, got);
          double md = 0;
          for (int64_t i = 0; i < n; i++) md = fmax(md, fabs(got[i] - exp[i]));
          if (md > 1e-6) {
            fprintf(stderr, "k=%d os=%d strided=%d big=%d: maxdiff %g\n", k, os, dst_strided, big, md);
            CHECK(md <= 1e-6);
          }
          free(exp); free(got);
          lg_release(o); lg_release(obase); lg_release(t); lg_release(base);
        }
      }
    }
  }
  /* broadcasting the other way is an error naming the op and shapes */
  int64_t s1[2] = {3, 4}, s2[2] = {2, 4};
  lg_tensor *a = OK(lg_zeros(2, s1)), *b = OK(lg_zeros(2, s2)), *c = OK(lg_zeros(1, (int64_t[]){4}));
  CHECK(lg_copy_(a, b) != 0);
  CHECK(strstr(lg_last_error(), "copy_") && strstr(lg_last_error(), "2x4") && strstr(lg_last_error(), "3x4"));
  CHECK(lg_add_(c, a, 1) != 0);
  CHECK(strstr(lg_last_error(), "add_") != NULL);
  CHECK(lg_mul_(a, b) != 0);
  CHECK(strstr(lg_last_error(), "mul_") != NULL);
  lg_release(a); lg_release(b); lg_release(c);
}

static void test_overlapping_copy(void)
{
  /* t[1:10] = t[0:9] must shift by one, as if the source were read first */
  lg_tensor *t = OK(lg_arange(0, 10, 1));
  lg_tensor *dst = OK(lg_narrow(t, 0, 1, 9)), *src = OK(lg_narrow(t, 0, 0, 9));
  CHECK(lg_copy_(dst, src) == 0);
  CHECK(lg_data(t)[0] == 0);
  for (int i = 1; i < 10; i++) CHECK(lg_data(t)[i] == i - 1);
  lg_release(dst); lg_release(src);
  /* and the other direction, and a transpose of a square matrix into itself */
  lg_release(t);
  t = OK(lg_arange(0, 10, 1));
  dst = OK(lg_narrow(t, 0, 0, 9));
  src = OK(lg_narrow(t, 0, 1, 9));
  CHECK(lg_add_(dst, src, 1) == 0);
  for (int i = 0; i < 9; i++) CHECK(lg_data(t)[i] == 2 * i + 1);
  lg_release(dst); lg_release(src); lg_release(t);
  lg_tensor *a = OK(lg_arange(0, 9, 1)), *m = OK(lg_view(a, 2, (int64_t[]){3, 3}));
  lg_tensor *mt = OK(lg_transpose(m, 0, 1));
  CHECK(lg_copy_(m, mt) == 0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) CHECK(lg_data(a)[i * 3 + j] == j * 3 + i);
  /* x += x (same geometry) needs no copy and doubles */
  CHECK(lg_add_(m, m, 1) == 0);
  CHECK(lg_data(a)[1] == 6);
  lg_release(mt); lg_release(m); lg_release(a);
}

static void test_inplace_errors(void)
{
  int64_t s[1] = {4};
  lg_tensor *x = OK(lg_ones(1, s));
  lg_requires_grad_(x, 1);
  CHECK(lg_fill_(x, 0) != 0);
  CHECK(strstr(lg_last_error(), "fill_: in-place operation on a tensor that requires grad") != NULL);
  CHECK(lg_add_scalar_(x, 1) != 0);
  CHECK(strstr(lg_last_error(), "add_scalar_: in-place") != NULL);
  CHECK(lg_normal_(NULL, x, 0, 1) != 0);
  CHECK(strstr(lg_last_error(), "normal_") != NULL);
  int prev = lg_set_grad_enabled(0);   /* allowed under no-grad */
  CHECK(lg_fill_(x, 3) == 0);
  lg_set_grad_enabled(prev);
  CHECK(lg_data(x)[2] == 3);
  /* writing into an expanded view is refused */
  lg_tensor *one = OK(lg_ones(2, (int64_t[]){1, 3})), *e = OK(lg_expand(one, 2, (int64_t[]){4, 3}));
  CHECK(lg_fill_(e, 2) != 0);
  CHECK(strstr(lg_last_error(), "expanded") != NULL);
  lg_tensor *y = OK(lg_zeros(1, s));
  CHECK(lg_uniform_(NULL, y, 1, 0) != 0);
  CHECK(strstr(lg_last_error(), "uniform_") != NULL);
  CHECK(lg_normal_(NULL, y, 0, -1) != 0);
  CHECK(strstr(lg_last_error(), "normal_") != NULL);
  lg_release(y); lg_release(e); lg_release(one); lg_release(x);
}

static void test_random_fills_ignore_strides(void)
{
  /* normal_/uniform_ on a transposed view give, in logical order, the values
   * the same seed gives a contiguous tensor */
  lg_gen g;
  for (int which = 0; which < 2; which++) {
    int64_t s[2] = {6, 9}, st[2] = {9, 6};
    lg_tensor *c = OK(lg_empty(2, s)), *b = OK(lg_empty(2, st)), *v = OK(lg_transpose(b, 0, 1));
    lg_gen_seed(&g, 31);
    CHECK((which ? lg_uniform_(&g, c, -2, 3) : lg_normal_(&g, c, 1, 0.5f)) == 0);
    lg_gen_seed(&g, 31);
    CHECK((which ? lg_uniform_(&g, v, -2, 3) : lg_normal_(&g, v, 1, 0.5f)) == 0);
    CHECK(lgt_maxdiff(v, c) == 0);
    /* and they follow the stream: uniform_ is lo + (hi-lo) u */
    ref_pcg r;
    ref_seed(&r, 31, 54);
    if (which)
      for (int i = 0; i < 5; i++) CHECK(lg_data(c)[i] == (float)(-2 + 5 * ref_uniform(&r)));
    lg_release(v); lg_release(b); lg_release(c);
  }
  /* moments of a larger normal_ / uniform_ */
  int64_t n = 50000;
  lg_tensor *t = OK(lg_empty(1, &n));
  lg_gen_seed(&g, 32);
  CHECK(lg_normal_(&g, t, 3, 2) == 0);
  double m = 0, v = 0;
  for (int64_t i = 0; i < n; i++) m += lg_data(t)[i];
  m /= n;
  for (int64_t i = 0; i < n; i++) v += (lg_data(t)[i] - m) * (lg_data(t)[i] - m);
  v /= n;
  CHECK(fabs(m - 3) < 6 * 2 / sqrt((double)n));
  CHECK(fabs(v - 4) < 6 * 4 * sqrt(2.0 / n));
  CHECK(lg_uniform_(&g, t, 1, 1.0000001f) == 0);   /* a one-ulp interval: always lo */
  int ok = 1;
  for (int64_t i = 0; i < n; i++) ok &= lg_data(t)[i] == 1;
  CHECK(ok);
  lg_release(t);
}

int main(void)
{
  LGT_RUN(test_pcg_matches_reference);
  LGT_RUN(test_uniform_and_normal_from_stream);
  LGT_RUN(test_below_unbiased);
  LGT_RUN(test_state_roundtrip);
  LGT_RUN(test_rand_values_and_moments);
  LGT_RUN(test_bernoulli);
  LGT_RUN(test_randperm);
  LGT_RUN(test_multinomial);
  LGT_RUN(test_constant_creation);
  LGT_RUN(test_arange_linspace_eye);
  LGT_RUN(test_fill_and_scalar_ops_strided);
  LGT_RUN(test_clamp_);
  LGT_RUN(test_binary_inplace_vs_naive);
  LGT_RUN(test_overlapping_copy);
  LGT_RUN(test_inplace_errors);
  LGT_RUN(test_random_fills_ignore_strides);
  return lgt_finish();
}
