/* lg_create.c: creation ops (zeros, arange, rand, multinomial, ...) and the
 * in-place ops (fill_, copy_, add_, normal_, ...). None of them records a
 * graph: creation makes leaves, and in-place writes are refused on tensors
 * that require grad while grad mode is on.
 *
 * Random ops draw in logical (row-major) order of the written tensor, one
 * draw sequence per element, so a seed gives the same values whatever the
 * tensor's strides; they never thread (the stream is sequential). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lg_ops.h"

#define LG_OMP_MIN 32768   /* below this, threads cost more than they save */
#define LG_CHUNK 16384     /* contiguous work is split in runs of this size */

static lg_gen *lg_gen_or_default(lg_gen *g) { return g ? g : lg_default_gen(); }

/* ---- the in-place kernels -------------------------------------------------- */
enum { LG_K_FILL, LG_K_ADDS, LG_K_MULS, LG_K_CLAMP, LG_K_COPY, LG_K_ADD, LG_K_MUL };

/* One run: d[i*ds] op= s[i*ss] (s unused by the scalar kernels). */
static inline void lg_kernel(int k, float *d, int64_t ds, const float *s, int64_t ss,
                             int64_t n, float a, float b)
{
  switch (k) {
  case LG_K_FILL: for (int64_t i = 0; i < n; i++) d[i * ds] = a; break;
  case LG_K_ADDS: for (int64_t i = 0; i < n; i++) d[i * ds] += a; break;
  case LG_K_MULS: for (int64_t i = 0; i < n; i++) d[i * ds] *= a; break;
  case LG_K_CLAMP:
    for (int64_t i = 0; i < n; i++) {   /* NaN stays NaN (comparisons are false) */
      float x = d[i * ds];
      d[i * ds] = x < a ? a : x > b ? b : x;
    }
    break;
  case LG_K_COPY: for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss]; break;
  case LG_K_ADD: for (int64_t i = 0; i < n; i++) d[i * ds] += a * s[i * ss]; break;
  case LG_K_MUL: for (int64_t i = 0; i < n; i++) d[i * ds] *= s[i * ss]; break;
  }
}

/* Apply kernel k to t (and o, broadcast to t's shape, for binary kernels).
 * Cannot fail: shapes and overlap were checked by the caller. */
static void lg_apply(int k, lg_tensor *t, const lg_tensor *o, float a, float b)
{
  int64_t n = lg_numel(t);
  if (n == 0) return;
  if (lg_is_contiguous(t) && (!o || (lg_is_contiguous(o) && lg_same_shape(o, t)))) {
    float *d = lg_data(t);
    const float *s = o ? lg_data(o) : NULL;
    int64_t nch = (n + LG_CHUNK - 1) / LG_CHUNK;
    #pragma omp parallel for if (n > LG_OMP_MIN)
    for (int64_t c = 0; c < nch; c++) {
      int64_t lo = c * LG_CHUNK, len = n - lo < LG_CHUNK ? n - lo : LG_CHUNK;
      lg_kernel(k, d + lo, 1, s ? s + lo : NULL, 1, len, a, b);
    }
    return;
  }
  lg_iter it;
  lg_tensor *ops[2] = {t, (lg_tensor *)o};
  lg_iter_init(&it, o ? 2 : 1, ops, t->ndim, t->shape);
  int64_t outer = lg_iter_outer(&it), inner = lg_iter_inner(&it);
  #pragma omp parallel for if (n > LG_OMP_MIN)
  for (int64_t r = 0; r < outer; r++) {
    float *p[2] = {NULL, NULL};
    int64_t st[2] = {0, 0};
    lg_iter_run(&it, r, p, st);
    lg_kernel(k, p[0], st[0], p[1], st[1], inner, a, b);
  }
}

/* Checks shared by every in-place op on t. */
static int lg_inplace_check(const char *op, const lg_tensor *t)
{
  if (t->requires_grad && lg_grad_enabled()) {
    lg_error("%s: in-place operation on a tensor that requires grad", op);
    return -1;
  }
  /* An expanded view (stride 0, size > 1) would make several elements one
   * memory cell; writing it is order-dependent garbage. */
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] == 0 && t->shape[d] > 1) {
      char buf[128];
      lg_error("%s: cannot write in place into an expanded tensor (%s, dim %d has stride 0); "
               "use contiguous() first", op, lg_shape_str(t, buf, sizeof buf), d);
      return -1;
    }
  return 0;
}

/* o must broadcast to exactly t's shape. */
static int lg_broadcasts_to(const char *op, const lg_tensor *o, const lg_tensor *t)
{
  int ok = o->ndim <= t->ndim;
  for (int d = 0; ok && d < o->ndim; d++) {
    int64_t x = o->shape[o->ndim - 1 - d], y = t->shape[t->ndim - 1 - d];
    if (x != y && x != 1) ok = 0;
  }
  if (!ok) {
    char b1[128], b2[128];
    lg_error("%s: shape %s cannot broadcast to the destination shape %s", op,
             lg_shape_str(o, b1, sizeof b1), lg_shape_str(t, b2, sizeof b2));
    return -1;
  }
  return 0;
}

/* When o shares t's storage with a different geometry, element order would
 * matter (t written while o is still read): work from a copy of o. Returns a
 * new reference to o or to its copy, NULL on allocation failure. */
static lg_tensor *lg_unalias(const lg_tensor *t, const lg_tensor *o)
{
  if (o->storage != t->storage ||
      (o->offset == t->offset && lg_same_shape(o, t) &&
       !memcmp(o->stride, t->stride, sizeof(int64_t) * t->ndim)))
    return lg_retain((lg_tensor *)o);
  lg_tensor *c = lg_empty(o->ndim, o->shape);
  if (c) lg_read(o, lg_data(c));
  return c;
}

static int lg_unary_(const char *op, int k, lg_tensor *t, float a, float b)
{
  if (lg_inplace_check(op, t)) return -1;
  lg_apply(k, t, NULL, a, b);
  lg_bump_version(t);
  return 0;
}

static int lg_binary_(const char *op, int k, lg_tensor *t, const lg_tensor *o, float a)
{
  if (lg_inplace_check(op, t) || lg_broadcasts_to(op, o, t)) return -1;
  lg_tensor *src = lg_unalias(t, o);
  if (!src) return -1;
  lg_apply(k, t, src, a, 0);
  lg_release(src);
  lg_bump_version(t);
  return 0;
}

int lg_fill_(lg_tensor *t, float v) { return lg_unary_("fill_", LG_K_FILL, t, v, 0); }
int lg_zero_(lg_tensor *t) { return lg_unary_("zero_", LG_K_FILL, t, 0, 0); }
int lg_mul_scalar_(lg_tensor *t, float s) { return lg_unary_("mul_scalar_", LG_K_MULS, t, s, 0); }
int lg_add_scalar_(lg_tensor *t, float s) { return lg_unary_("add_scalar_", LG_K_ADDS, t, s, 0); }

int lg_clamp_(lg_tensor *t, float lo, float hi)
{
  if (lo > hi) {
    lg_error("clamp_: lower bound %g is greater than upper bound %g", lo, hi);
    return -1;
  }
  return lg_unary_("clamp_", LG_K_CLAMP, t, lo, hi);
}

int lg_copy_(lg_tensor *dst, const lg_tensor *src) { return lg_binary_("copy_", LG_K_COPY, dst, src, 0); }
int lg_add_(lg_tensor *t, const lg_tensor *o, float alpha) { return lg_binary_("add_", LG_K_ADD, t, o, alpha); }
int lg_mul_(lg_tensor *t, const lg_tensor *o) { return lg_binary_("mul_", LG_K_MUL, t, o, 0); }

/* ---- random fills ------------------------------------------------------------ */
/* Call draw(gen, ctx) for every element of t in row-major order. lg_iter
 * keeps that order: it only drops size-1 dims and merges neighbours. */
#define LG_RANDOM_FILL(t, expr) do { \
    lg_iter it_; lg_tensor *ops_[1] = {(t)}; \
    lg_iter_init(&it_, 1, ops_, (t)->ndim, (t)->shape); \
    int64_t outer_ = lg_iter_outer(&it_), inner_ = lg_iter_inner(&it_); \
    for (int64_t r_ = 0; r_ < outer_; r_++) { \
      float *p_; int64_t s_; \
      lg_iter_run(&it_, r_, &p_, &s_); \
      for (int64_t i_ = 0; i_ < inner_; i_++) p_[i_ * s_] = (expr); \
    } \
  } while (0)

/* A float in [lo, hi) from a 53-bit uniform: rounding to float may land on
 * hi itself, which the half-open interval promises never to return. */
static inline float lg_uniform_float(lg_gen *g, float lo, float hi)
{
  float v = (float)(lo + ((double)hi - lo) * lg_gen_uniform(g));
  return v >= hi && hi > lo ? nextafterf(hi, lo) : v;
}

int lg_uniform_(lg_gen *gen, lg_tensor *t, float lo, float hi)
{
  if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi)) {
    lg_error("uniform_: need finite lo <= hi, got lo %g and hi %g", lo, hi);
    return -1;
  }
  if (lg_inplace_check("uniform_", t)) return -1;
  lg_gen *g = lg_gen_or_default(gen);
  LG_RANDOM_FILL(t, lg_uniform_float(g, lo, hi));
  lg_bump_version(t);
  return 0;
}

int lg_normal_(lg_gen *gen, lg_tensor *t, float mean, float std)
{
  if (!(std >= 0) || !isfinite(std) || !isfinite(mean)) {
    lg_error("normal_: need finite mean and std >= 0, got mean %g and std %g", mean, std);
    return -1;
  }
  if (lg_inplace_check("normal_", t)) return -1;
  lg_gen *g = lg_gen_or_default(gen);
  LG_RANDOM_FILL(t, (float)(mean + std * lg_gen_normal(g)));
  lg_bump_version(t);
  return 0;
}

/* ---- creation ----------------------------------------------------------------- */
static lg_tensor *lg_full_op(const char *op, int ndim, const int64_t *shape, float v)
{
  lg_tensor *t = lg_empty_op(op, ndim, shape);
  if (t) lg_apply(LG_K_FILL, t, NULL, v, 0);
  return t;
}

lg_tensor *lg_full(int ndim, const int64_t *shape, float v) { return lg_full_op("full", ndim, shape, v); }
lg_tensor *lg_zeros(int ndim, const int64_t *shape) { return lg_full_op("zeros", ndim, shape, 0); }
lg_tensor *lg_ones(int ndim, const int64_t *shape) { return lg_full_op("ones", ndim, shape, 1); }
lg_tensor *lg_zeros_like(const lg_tensor *t) { return lg_full(t->ndim, t->shape, 0); }
lg_tensor *lg_ones_like(const lg_tensor *t) { return lg_full(t->ndim, t->shape, 1); }
lg_tensor *lg_full_like(const lg_tensor *t, float v) { return lg_full(t->ndim, t->shape, v); }

lg_tensor *lg_arange(double start, double end, double step)
{
  if (!isfinite(start) || !isfinite(end) || !isfinite(step))
    return lg_error("arange: start %g, end %g and step %g must be finite", start, end, step);
  if (step == 0) return lg_error("arange: step must be nonzero");
  if ((end - start) * step < 0)
    return lg_error("arange: step %g moves away from end %g (start %g)", step, end, start);
  double nd = ceil((end - start) / step);
  if (!(nd < (double)LG_MAXNUMEL))
    return lg_error("arange: %g elements requested, more than 2^40", nd);
  int64_t shape[1] = {(int64_t)nd};
  lg_tensor *t = lg_empty_op("arange", 1, shape);
  if (!t) return NULL;
  float *p = lg_data(t);
  for (int64_t i = 0; i < shape[0]; i++) p[i] = (float)(start + (double)i * step);
  return t;
}

lg_tensor *lg_linspace(double start, double end, int64_t n)
{
  if (n < 0) return lg_error("linspace: number of points %lld must be >= 0", (long long)n);
  if (!isfinite(start) || !isfinite(end))
    return lg_error("linspace: start %g and end %g must be finite", start, end);
  int64_t shape[1] = {n};
  lg_tensor *t = lg_empty_op("linspace", 1, shape);
  if (!t) return NULL;
  float *p = lg_data(t);
  double step = n > 1 ? (end - start) / (double)(n - 1) : 0;
  /* Fill the halves from their own ends so both endpoints are exact. */
  for (int64_t i = 0; i < n; i++)
    p[i] = (float)(i < n / 2 ? start + (double)i * step : end - (double)(n - 1 - i) * step);
  if (n == 1) p[0] = (float)start;
  return t;
}

/* m < 0 means a square n x n matrix. */
lg_tensor *lg_eye(int64_t n, int64_t m)
{
  if (m < 0) m = n;
  if (n < 0) return lg_error("eye: number of rows %lld must be >= 0", (long long)n);
  int64_t shape[2] = {n, m};
  lg_tensor *t = lg_full_op("eye", 2, shape, 0);
  if (!t) return NULL;
  float *p = lg_data(t);
  for (int64_t i = 0; i < n && i < m; i++) p[i * m + i] = 1;
  return t;
}

lg_tensor *lg_rand(lg_gen *gen, int ndim, const int64_t *shape)
{
  lg_tensor *t = lg_empty_op("rand", ndim, shape);
  if (!t) return NULL;
  lg_gen *g = lg_gen_or_default(gen);
  int64_t n = lg_numel(t);
  float *p = lg_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = lg_uniform_float(g, 0, 1);
  return t;
}

lg_tensor *lg_randn(lg_gen *gen, int ndim, const int64_t *shape)
{
  lg_tensor *t = lg_empty_op("randn", ndim, shape);
  if (!t) return NULL;
  lg_gen *g = lg_gen_or_default(gen);
  int64_t n = lg_numel(t);
  float *p = lg_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = (float)lg_gen_normal(g);
  return t;
}

lg_tensor *lg_randint(lg_gen *gen, int64_t lo, int64_t hi, int ndim, const int64_t *shape)
{
  if (hi <= lo)
    return lg_error("randint: high %lld must be greater than low %lld", (long long)hi, (long long)lo);
  lg_tensor *t = lg_empty_op("randint", ndim, shape);
  if (!t) return NULL;
  lg_gen *g = lg_gen_or_default(gen);
  uint64_t range = (uint64_t)hi - (uint64_t)lo;
  int64_t n = lg_numel(t);
  float *p = lg_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = (float)(lo + (int64_t)lg_gen_below(g, range));
  return t;
}

lg_tensor *lg_bernoulli(lg_gen *gen, const lg_tensor *p)
{
  lg_tensor *t = lg_empty(p->ndim, p->shape);
  if (!t) return NULL;
  int64_t n = lg_numel(t);
  float *q = lg_data(t);
  lg_read(p, q);   /* probabilities in logical order, then replaced by draws */
  for (int64_t i = 0; i < n; i++)
    if (!(q[i] >= 0 && q[i] <= 1)) {
      char buf[128];
      float bad = q[i];
      lg_release(t);
      return lg_error("bernoulli: probability %g at flat index %lld of %s is outside [0, 1]",
                      bad, (long long)i, lg_shape_str(p, buf, sizeof buf));
    }
  lg_gen *g = lg_gen_or_default(gen);
  for (int64_t i = 0; i < n; i++) q[i] = lg_gen_uniform(g) < q[i] ? 1.0f : 0.0f;
  return t;
}

lg_tensor *lg_randperm(lg_gen *gen, int64_t n)
{
  if (n < 0) return lg_error("randperm: n %lld must be >= 0", (long long)n);
  if (n > (INT64_C(1) << 24))
    return lg_error("randperm: n %lld exceeds 2^24, the largest count float32 indices "
                    "represent exactly", (long long)n);
  int64_t shape[1] = {n};
  lg_tensor *t = lg_empty(1, shape);
  if (!t) return NULL;
  lg_gen *g = lg_gen_or_default(gen);
  float *p = lg_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = (float)i;
  for (int64_t i = n - 1; i > 0; i--) {   /* Fisher-Yates, from the top */
    int64_t j = (int64_t)lg_gen_below(g, (uint64_t)i + 1);
    float x = p[i]; p[i] = p[j]; p[j] = x;
  }
  return t;
}

/* Index k with cum(k-1) <= u < cum(k) by a linear scan of the weights w
 * (zero weights are never picked); falls back to the last positive weight
 * when rounding puts u at the total. */
static int64_t lg_pick(const double *w, int64_t K, double u)
{
  double acc = 0;
  int64_t last = -1;
  for (int64_t k = 0; k < K; k++) {
    if (w[k] <= 0) continue;
    acc += w[k];
    last = k;
    if (u < acc) return k;
  }
  return last;
}

lg_tensor *lg_multinomial(lg_gen *gen, const lg_tensor *probs, int64_t n, int replacement)
{
  char buf[128];
  if (probs->ndim != 1 && probs->ndim != 2)
    return lg_error("multinomial: probabilities must be 1-D or 2-D, got %s",
                    lg_shape_str(probs, buf, sizeof buf));
  int64_t K = probs->shape[probs->ndim - 1], rows = probs->ndim == 2 ? probs->shape[0] : 1;
  if (K == 0) return lg_error("multinomial: no categories (probabilities %s)",
                              lg_shape_str(probs, buf, sizeof buf));
  if (n < 0) return lg_error("multinomial: number of samples %lld must be >= 0", (long long)n);
  if (!replacement && n > K)
    return lg_error("multinomial: cannot draw %lld samples without replacement from %lld "
                    "categories", (long long)n, (long long)K);
  int64_t nel = rows * K;
  float *p = malloc(sizeof(float) * nel);
  double *w = malloc(sizeof(double) * K);
  if (!p || !w) { free(p); free(w); return lg_error("multinomial: out of memory"); }
  lg_read(probs, p);
  for (int64_t r = 0; r < rows; r++) {
    int64_t pos = 0;
    for (int64_t k = 0; k < K; k++) {
      float x = p[r * K + k];
      if (!(x >= 0) || isinf(x)) {
        free(p); free(w);
        return lg_error("multinomial: weight %g in row %lld, category %lld is negative or "
                        "not finite", x, (long long)r, (long long)k);
      }
      pos += x > 0;
    }
    if (pos == 0) {
      free(p); free(w);
      return lg_error("multinomial: row %lld of %s has all-zero weights", (long long)r,
                      lg_shape_str(probs, buf, sizeof buf));
    }
    if (!replacement && pos < n) {
      free(p); free(w);
      return lg_error("multinomial: row %lld has %lld nonzero weights, fewer than the %lld "
                      "samples drawn without replacement", (long long)r, (long long)pos,
                      (long long)n);
    }
  }
  int64_t shape[2] = {rows, n};
  lg_tensor *t = probs->ndim == 2 ? lg_empty_op("multinomial", 2, shape)
                                  : lg_empty_op("multinomial", 1, shape + 1);
  if (!t) { free(p); free(w); return NULL; }
  lg_gen *g = lg_gen_or_default(gen);
  float *out = lg_data(t);
  for (int64_t r = 0; r < rows; r++) {
    double total = 0;
    for (int64_t k = 0; k < K; k++) total += w[k] = p[r * K + k];
    for (int64_t s = 0; s < n; s++) {
      int64_t k = lg_pick(w, K, lg_gen_uniform(g) * total);
      out[r * n + s] = (float)k;
      if (!replacement) {   /* drop the category and renormalise */
        w[k] = 0;
        total = 0;
        for (int64_t j = 0; j < K; j++) total += w[j];
      }
    }
  }
  free(p);
  free(w);
  return t;
}
