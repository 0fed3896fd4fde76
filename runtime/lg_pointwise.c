/* lg_pointwise.c: elementwise ops with NumPy broadcasting, comparisons, and
 * their backward formulas.
 *
 * Each op validates shapes, allocates a fresh contiguous output and runs one
 * kernel through lg_drive, which takes a flat path when every operand is
 * contiguous in the output's order (or a single broadcast value) and the
 * strided lg_iter path otherwise; both split work in chunks that OpenMP
 * shares out when the tensor is large.
 *
 * Formulas are written with public ops (so create_graph gives gradients of
 * gradients). When no graph of the gradient is wanted, the unary formulas
 * run one fused kernel instead of a chain of ops (same values, one pass).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_kernels_pointwise.h"
#include "lg_simd.h"

#define LG_OMP_MIN LG_PAR_MIN   /* lg_tensor.h: shorter loops run on one thread */
#define LG_CHUNK 16384     /* work is split in runs of at most this size */

/* ---- the driver ---------------------------------------------------------- */
typedef struct { int k; float a, b; } lg_kp;
/* One run of n elements: p[0] is the output (unit stride), p[1..] inputs with
 * strides st[1..] (0 for a broadcast value). */
typedef void (*lg_runfn)(const lg_kp *kp, float *const *p, const int64_t *st, int64_t n);

static void lg_drive_item(lg_runfn fn, const lg_kp *kp, const lg_iter *it, int nops,
                          int64_t np, int64_t inner, int64_t w)
{
  float *q[LG_ITER_MAX];
  int64_t s[LG_ITER_MAX];
  int64_t r = w / np, lo = (w % np) * LG_CHUNK;
  int64_t len = inner - lo < LG_CHUNK ? inner - lo : LG_CHUNK;
  lg_iter_run(it, r, q, s);
  for (int o = 0; o < nops; o++) q[o] += lo * s[o];
  fn(kp, q, s, len);
}

/* Run fn over ops[0] (the fresh contiguous output) and its inputs, each
 * broadcast to the output's shape (validated by the caller). */
static void lg_drive(lg_runfn fn, const lg_kp *kp, int nops, lg_tensor *const *ops)
{
  const lg_tensor *out = ops[0];
  int64_t n = lg_numel(out);
  if (n == 0) return;
  float *p[LG_ITER_MAX];
  int64_t st[LG_ITER_MAX];
  int flat = 1;
  for (int o = 0; o < nops && flat; o++) {
    int64_t m = lg_numel(ops[o]);
    p[o] = lg_data(ops[o]);
    /* An input that broadcasts to the output with as many elements has the
     * same element order, so contiguity is all a flat walk needs. */
    if (o > 0 && m == 1) st[o] = 0;
    else if (m == n && lg_is_contiguous(ops[o])) st[o] = 1;
    else flat = 0;
  }
  if (flat) {
    if (n <= LG_OMP_MIN) { fn(kp, p, st, n); return; }
    int64_t nch = (n + LG_CHUNK - 1) / LG_CHUNK;
    #pragma omp parallel for
    for (int64_t c = 0; c < nch; c++) {
      int64_t lo = c * LG_CHUNK, len = n - lo < LG_CHUNK ? n - lo : LG_CHUNK;
      float *q[LG_ITER_MAX];
      for (int o = 0; o < nops; o++) q[o] = p[o] + lo * st[o];
      fn(kp, q, st, len);
    }
    return;
  }
  lg_iter it;
  lg_iter_init(&it, nops, ops, out->ndim, out->shape);
  int64_t outer = lg_iter_outer(&it), inner = lg_iter_inner(&it);
  int64_t np = (inner + LG_CHUNK - 1) / LG_CHUNK, items = outer * np;
  if (n <= LG_OMP_MIN) {
    for (int64_t w = 0; w < items; w++) lg_drive_item(fn, kp, &it, nops, np, inner, w);
    return;
  }
  #pragma omp parallel for
  for (int64_t w = 0; w < items; w++) lg_drive_item(fn, kp, &it, nops, np, inner, w);
}

/* ---- kernels ---------------------------------------------------------------- */
static inline float lg_sigmoidf(float v)
{
  if (v >= 0) return 1.0f / (1.0f + expf(-v));
  float e = expf(v);   /* no overflow for very negative v */
  return e / (1.0f + e);
}

/* e^y for y in [0, 20], the range lg_tanhf needs: y = n ln2 + r, |r| <= ln2/2
 * (ln2 in two parts, Cody-Waite), e^r by a degree-6 minimax polynomial, 2^n
 * put into the exponent bits. Branch-free, so loops over it vectorise. */
static inline float lg_exp_tanh(float y)
{
  const float shifter = 12582912.0f;                  /* 1.5 * 2^23: t - shifter = round */
  float n = (y * 1.44269504088896341f + shifter) - shifter;
  float r = (y - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.3859296e-3f;
  p = p * r + 8.3747674e-3f;
  p = p * r + 4.1667726e-2f;
  p = p * r + 1.6666421e-1f;
  p = p * r + 4.9999994e-1f;
  p = p * r + 1.0f;
  union { float f; int32_t i; } sc;
  sc.i = ((int32_t)n + 127) << 23;
  return (1.0f + r * p) * sc.f;
}

/* tanh within ~2 ulp (glibc's tanhf is a scalar call; this loop vectorises:
 * BENCHMARKS.md, "What was changed", Elementwise): tanh(x) = x + x^3 Q(x^2) below 0.625 (degree-4 minimax Q),
 * 1 - 2/(e^2|x| + 1) above (|x| clamped at 10: past 9.02 tanh rounds to 1), the
 * sign copied back, NaN passed through. Reference: tests/c/test_kernels_pointwise.c. */
static inline float lg_tanhf(float v)
{
  float a = fabsf(v), x2 = a * a;
  float q = -5.7188915e-3f;
  q = q * x2 + 2.0653063e-2f;
  q = q * x2 - 5.3744640e-2f;
  q = q * x2 + 1.3331513e-1f;
  q = q * x2 - 3.3333287e-1f;
  float small = a + a * x2 * q;
  float big = 1.0f - 2.0f / (lg_exp_tanh(2.0f * (a < 10.0f ? a : 10.0f)) + 1.0f);
  float t = copysignf(a < 0.625f ? small : big, v);
  return v != v ? v : t;
}

static inline float lg_signf(float v) { return v > 0 ? 1.0f : v < 0 ? -1.0f : v; }

/* min(max(v, lo), hi) like PyTorch (lo > hi gives hi); NaN stays NaN */
static inline float lg_clampf(float v, float lo, float hi)
{
  float t = v < lo ? lo : v;
  return t > hi ? hi : t;
}

/* The kernels are LG_CLONES (lg_simd.h): divisions, square roots and lg_tanhf
 * are compute-bound in the baseline SSE2 loops. */

LG_CLONES
static void lg_unary_run(const lg_kp *kp, float *const *p, const int64_t *st, int64_t n)
{
  float *restrict o = p[0];
  const float *restrict xp = p[1];
  const int64_t xs = st[1];
  const float a = kp->a, b = kp->b;
  assert(st[0] == 1 || n <= 1);
  /* kernel K: o = E for each element V of x; a row's parameter PAR reads a */
#define UX(K, V, PAR, E) case K: { const float PAR = a; (void)PAR; \
  if (xs == 1) for (int64_t i = 0; i < n; i++) { float V = xp[i]; o[i] = (E); } \
  else for (int64_t i = 0; i < n; i++) { float V = xp[i * xs]; o[i] = (E); } \
  break; }
#define U(K, E) UX(K, v, p0_, E)
  switch (kp->k) {
#define LG_OP(ID, name)
#define LG_UNARY(ID, name, saves, forward, fused, formula) UX(LG_U_##ID, x, p0_, forward)
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) UX(LG_U_##ID, x, param, forward)
#include "lg_ops.def"
#undef LG_OP
#undef LG_UNARY
#undef LG_UNARY_P
  U(LG_U_NEG, -v)
  U(LG_U_SIGN, lg_signf(v))
  U(LG_U_CLAMP, lg_clampf(v, a, b))
  U(LG_U_ADDS, v + a)
  U(LG_U_MULS, v * a)
  U(LG_U_POWS, powf(v, a))
  U(LG_U_SQUARE, v * v)
  U(LG_U_RPOWS, powf(a, v))
  U(LG_U_GTS, v > a ? 1.0f : 0.0f)
  U(LG_U_LTS, v < a ? 1.0f : 0.0f)
  U(LG_U_GES, v >= a ? 1.0f : 0.0f)
  U(LG_U_LES, v <= a ? 1.0f : 0.0f)
  U(LG_U_EQS, v == a ? 1.0f : 0.0f)
  default: assert(0);
  }
#undef U
#undef UX
  (void)b;
}

LG_CLONES
static void lg_binary_run(const lg_kp *kp, float *const *p, const int64_t *st, int64_t n)
{
  float *restrict o = p[0];
  const float *restrict xp = p[1], *restrict yp = p[2];
  const int64_t xs = st[1], ys = st[2];
  const float a = kp->a, b = kp->b;
  assert(st[0] == 1 || n <= 1);
  /* unit strides, a broadcast y, a broadcast x, anything else; elements X and
   * Y, a row's parameter PAR reads a */
#define BX(K, X, Y, PAR, E) case K: { const float PAR = a; (void)PAR; \
  if (xs == 1 && ys == 1) for (int64_t i = 0; i < n; i++) { float X = xp[i], Y = yp[i]; o[i] = (E); } \
  else if (xs == 1 && ys == 0) { const float Y = yp[0]; \
    for (int64_t i = 0; i < n; i++) { float X = xp[i]; o[i] = (E); } } \
  else if (xs == 0 && ys == 1) { const float X = xp[0]; \
    for (int64_t i = 0; i < n; i++) { float Y = yp[i]; o[i] = (E); } } \
  else for (int64_t i = 0; i < n; i++) { float X = xp[i * xs], Y = yp[i * ys]; o[i] = (E); } \
  break; }
#define B(K, E) BX(K, x, y, p0_, E)
  /* a row's fused backward: g the gradient, x the saved input or y the output */
#define B_IN(K, PAR, E) BX(K, g, x, PAR, E)
#define B_OUT(K, PAR, E) BX(K, g, y, PAR, E)
#define B_BOTH(K, PAR, E) BX(K, g, x, PAR, E)
#define B_SIGN(K, PAR, E) BX(K, g, x, PAR, E)
  switch (kp->k) {
  B(LG_B_ADD, x + y)
  B(LG_B_SUB, x - y)
  B(LG_B_MUL, x * y)
  B(LG_B_DIV, x / y)
  B(LG_B_POW, powf(x, y))
  B(LG_B_MAX, (x > y || x != x) ? x : y)       /* NaN in either propagates */
  B(LG_B_MIN, (x < y || x != x) ? x : y)
  B(LG_B_EQ, x == y ? 1.0f : 0.0f)
  B(LG_B_NE, x != y ? 1.0f : 0.0f)
  B(LG_B_LT, x < y ? 1.0f : 0.0f)
  B(LG_B_LE, x <= y ? 1.0f : 0.0f)
  B(LG_B_GT, x > y ? 1.0f : 0.0f)
  B(LG_B_GE, x >= y ? 1.0f : 0.0f)
#define LG_OP(ID, name)
#define LG_UNARY(ID, name, saves, forward, fused, formula) B_##saves(LG_B_##ID##_BW, p0_, fused)
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) \
  B_##saves(LG_B_##ID##_BW, param, fused)
#include "lg_ops.def"
#undef LG_OP
#undef LG_UNARY
#undef LG_UNARY_P
  B(LG_B_CLAMP_BW, (y >= a && y <= b) ? x : 0.0f)
  B(LG_B_POWS_BW, a == 0 ? 0.0f : a == 2 ? 2.0f * x * y : x * a * powf(y, a - 1.0f))
  B(LG_B_RPOWS_BW, x * y * a)
  default: assert(0);
  }
#undef B_IN
#undef B_OUT
#undef B_BOTH
#undef B_SIGN
#undef BX
#undef B
}

LG_CLONES
static void lg_where_run(const lg_kp *kp, float *const *p, const int64_t *st, int64_t n)
{
  float *restrict o = p[0];
  const float *restrict c = p[1], *restrict x = p[2], *restrict y = p[3];
  assert(st[0] == 1 || n <= 1);
  (void)kp;
  /* Both values are loaded before the select, so the common layouts (a
   * dense mask with dense or scalar branches: the relu/leaky_relu formulas
   * and their derivatives) compile to blends, not to a branch that a random
   * mask mispredicts half the time. */
  const int64_t sc = st[1], sx = st[2], sy = st[3];
  if (sc == 1 && sx == 1 && sy == 1)
    for (int64_t i = 0; i < n; i++) { float a = x[i], b = y[i]; o[i] = c[i] != 0 ? a : b; }
  else if (sc == 1 && sx == 1 && sy == 0) {
    const float b = y[0];
    for (int64_t i = 0; i < n; i++) { float a = x[i]; o[i] = c[i] != 0 ? a : b; }
  } else if (sc == 1 && sx == 0 && sy == 1) {
    const float a = x[0];
    for (int64_t i = 0; i < n; i++) { float b = y[i]; o[i] = c[i] != 0 ? a : b; }
  } else
    for (int64_t i = 0; i < n; i++) {
      float a = x[i * sx], b = y[i * sy];
      o[i] = c[i * sc] != 0 ? a : b;
    }
}

/* ---- raw ops (no autograd) ----------------------------------------------------- */
lg_tensor *lg_pw_unary(int k, const lg_tensor *a, float p0, float p1)
{
  /* a: any shape -> out: same shape */
  lg_tensor *out = lg_empty(a->ndim, a->shape);
  if (!out) return NULL;
  lg_kp kp = {k, p0, p1};
  lg_tensor *ops[2] = {out, (lg_tensor *)a};
  lg_drive(lg_unary_run, &kp, 2, ops);
  return out;
}

lg_tensor *lg_pw_binary(const char *op, int k, const lg_tensor *a, const lg_tensor *b,
                        float p0, float p1)
{
  /* a, b: shapes that broadcast -> out: the broadcast shape */
  int nd;
  int64_t sh[LG_MAXDIM];
  if (lg_broadcast_shape(op, a->ndim, a->shape, b->ndim, b->shape, &nd, sh)) return NULL;
  lg_tensor *out = lg_empty(nd, sh);
  if (!out) return NULL;
  lg_kp kp = {k, p0, p1};
  lg_tensor *ops[3] = {out, (lg_tensor *)a, (lg_tensor *)b};
  lg_drive(lg_binary_run, &kp, 3, ops);
  return out;
}

/* ---- recording -------------------------------------------------------------------- */
/* Record op's node on out when its inputs want gradients. Returns 0 (with *nd
 * the node or NULL), or -1 after releasing out. */
static int lg_rec(int op, lg_tensor *out, int n, lg_tensor *const *in, int nsaved, lg_node **nd)
{
  *nd = NULL;
  if (!lg_should_record(n, in)) return 0;
  if (!(*nd = lg_record(op, out, n, in, nsaved))) { lg_release(out); return -1; }
  return 0;
}

enum { LG_SAVE_NONE = 0, LG_SAVE_IN = 1, LG_SAVE_OUT = 2, LG_SAVE_BOTH = 3, LG_SAVE_SIGN = 4 };

/* What a row of lg_ops.def with save kind saves and parameter p keeps: SIGN
 * is the output for p >= 0, else the input (lg_ops.def). */
static int lg_save_mode(int saves, float p)
{
  if (saves != LG_SAVE_SIGN) return saves;
  return p >= 0 ? LG_SAVE_OUT : LG_SAVE_IN;
}

/* Saved slots of the unary ops (input x, output y), of the binary ops (a, b,
 * and the output of pow), of where (the condition). */
enum { LG_SV_X, LG_SV_Y };
enum { LG_SV_A, LG_SV_B, LG_SV_OUT };
enum { LG_SV_COND };
/* Parameters of a unary op: a row's parameter (slope, alpha) or the scalar
 * of the *_scalar ops in a; clamp's bounds in a, b. */
typedef struct { float a, b; } lg_unary_params;

/* A unary op: kernel k, node op saving the input (LG_SV_X) and/or the output
 * (LG_SV_Y), parameters p0, p1. */
static lg_tensor *lg_unop(int op, int k, int save, lg_tensor *a, float p0, float p1)
{
  lg_tensor *out = lg_pw_unary(k, a, p0, p1);
  lg_node *nd;
  if (!out || lg_rec(op, out, 1, &a, save ? 2 : 0, &nd)) return NULL;
  if (nd) {
    if (save & LG_SAVE_IN) lg_save(nd, LG_SV_X, a);
    if (save & LG_SAVE_OUT) lg_save_output(nd, LG_SV_Y, out);
    lg_unary_params p = {p0, p1};
    lg_params_put(nd, p);
  }
  return out;
}

/* A binary op saving a and b (when save_ab), and the output (when save_out). */
static lg_tensor *lg_binop(const char *name, int op, int k, lg_tensor *a, lg_tensor *b,
                           int save_ab, int save_out)
{
  lg_tensor *out = lg_pw_binary(name, k, a, b, 0, 0);
  lg_tensor *in[2] = {a, b};
  lg_node *nd;
  if (!out || lg_rec(op, out, 2, in, save_out ? 3 : save_ab ? 2 : 0, &nd)) return NULL;
  if (nd) {
    if (save_ab) { lg_save(nd, LG_SV_A, a); lg_save(nd, LG_SV_B, b); }
    if (save_out) lg_save_output(nd, LG_SV_OUT, out);
  }
  return out;
}

/* ---- binary ops ------------------------------------------------------------------- */
/* a, b: broadcastable -> out: broadcast shape */
lg_tensor *lg_add(lg_tensor *a, lg_tensor *b) { return lg_binop("add", LG_OP_ADD, LG_B_ADD, a, b, 0, 0); }
lg_tensor *lg_sub(lg_tensor *a, lg_tensor *b) { return lg_binop("sub", LG_OP_SUB, LG_B_SUB, a, b, 0, 0); }
lg_tensor *lg_mul(lg_tensor *a, lg_tensor *b) { return lg_binop("mul", LG_OP_MUL, LG_B_MUL, a, b, 1, 0); }
lg_tensor *lg_div(lg_tensor *a, lg_tensor *b) { return lg_binop("div", LG_OP_DIV, LG_B_DIV, a, b, 1, 0); }
lg_tensor *lg_pow(lg_tensor *a, lg_tensor *b) { return lg_binop("pow", LG_OP_POW, LG_B_POW, a, b, 1, 1); }
lg_tensor *lg_maximum(lg_tensor *a, lg_tensor *b)
{
  return lg_binop("maximum", LG_OP_MAXIMUM, LG_B_MAX, a, b, 1, 0);
}
lg_tensor *lg_minimum(lg_tensor *a, lg_tensor *b)
{
  return lg_binop("minimum", LG_OP_MINIMUM, LG_B_MIN, a, b, 1, 0);
}

lg_tensor *lg_where(const lg_tensor *cond, lg_tensor *a, lg_tensor *b)
{
  /* cond, a, b: broadcastable -> out: broadcast shape; cond is not differentiable */
  int nab, nd;
  int64_t sab[LG_MAXDIM], sh[LG_MAXDIM];
  if (lg_broadcast_shape("where", a->ndim, a->shape, b->ndim, b->shape, &nab, sab) ||
      lg_broadcast_shape("where", cond->ndim, cond->shape, nab, sab, &nd, sh))
    return NULL;
  lg_tensor *out = lg_empty(nd, sh);
  if (!out) return NULL;
  lg_kp kp = {0, 0, 0};
  lg_tensor *ops[4] = {out, (lg_tensor *)cond, a, b};
  lg_drive(lg_where_run, &kp, 4, ops);
  lg_tensor *in[2] = {a, b};
  lg_node *nd_;
  if (lg_rec(LG_OP_WHERE, out, 2, in, 1, &nd_)) return NULL;
  if (nd_) lg_save(nd_, LG_SV_COND, cond);
  return out;
}

/* ---- scalar forms and unary ops ------------------------------------------------------ */
/* a: any shape -> out: same shape */
lg_tensor *lg_add_scalar(lg_tensor *a, float s) { return lg_unop(LG_OP_ADD_SCALAR, LG_U_ADDS, LG_SAVE_NONE, a, s, 0); }
lg_tensor *lg_mul_scalar(lg_tensor *a, float s) { return lg_unop(LG_OP_MUL_SCALAR, LG_U_MULS, LG_SAVE_NONE, a, s, 0); }
lg_tensor *lg_pow_scalar(lg_tensor *a, float e)
{
  return lg_unop(LG_OP_POW_SCALAR, e == 2 ? LG_U_SQUARE : LG_U_POWS, LG_SAVE_IN, a, e, 0);
}
lg_tensor *lg_rpow_scalar(float base, lg_tensor *a)
{
  return lg_unop(LG_OP_RPOW_SCALAR, LG_U_RPOWS, LG_SAVE_OUT, a, base, 0);
}
lg_tensor *lg_neg(lg_tensor *a) { return lg_unop(LG_OP_NEG, LG_U_NEG, LG_SAVE_NONE, a, 0, 0); }
lg_tensor *lg_sign(lg_tensor *a) { return lg_unop(LG_OP_SIGN, LG_U_SIGN, LG_SAVE_NONE, a, 0, 0); }
/* the LG_UNARY rows of lg_ops.def: lg_exp, lg_tanh, lg_softplus, ... */
#define LG_OP(ID, name)
#define LG_UNARY(ID, name, saves, forward, fused, formula) \
  lg_tensor *lg_##name(lg_tensor *x) \
  { return lg_unop(LG_OP_##ID, LG_U_##ID, LG_SAVE_##saves, x, 0, 0); }
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) \
  lg_tensor *lg_##name(lg_tensor *x, float param) \
  { return lg_unop(LG_OP_##ID, LG_U_##ID, lg_save_mode(LG_SAVE_##saves, param), x, param, 0); }
#include "lg_ops.def"
#undef LG_OP
#undef LG_UNARY
#undef LG_UNARY_P
lg_tensor *lg_clamp(lg_tensor *a, float lo, float hi)
{
  if (isnan(lo) || isnan(hi)) return lg_error("clamp: bounds must not be NaN (got %g, %g)", lo, hi);
  return lg_unop(LG_OP_CLAMP, LG_U_CLAMP, LG_SAVE_IN, a, lo, hi);
}

/* ---- comparisons: 0/1 masks that never record ----------------------------------------- */
lg_tensor *lg_eq(const lg_tensor *a, const lg_tensor *b) { return lg_pw_binary("eq", LG_B_EQ, a, b, 0, 0); }
lg_tensor *lg_ne(const lg_tensor *a, const lg_tensor *b) { return lg_pw_binary("ne", LG_B_NE, a, b, 0, 0); }
lg_tensor *lg_lt(const lg_tensor *a, const lg_tensor *b) { return lg_pw_binary("lt", LG_B_LT, a, b, 0, 0); }
lg_tensor *lg_le(const lg_tensor *a, const lg_tensor *b) { return lg_pw_binary("le", LG_B_LE, a, b, 0, 0); }
lg_tensor *lg_gt(const lg_tensor *a, const lg_tensor *b) { return lg_pw_binary("gt", LG_B_GT, a, b, 0, 0); }
lg_tensor *lg_ge(const lg_tensor *a, const lg_tensor *b) { return lg_pw_binary("ge", LG_B_GE, a, b, 0, 0); }
lg_tensor *lg_gt_scalar(const lg_tensor *a, float s) { return lg_pw_unary(LG_U_GTS, a, s, 0); }
lg_tensor *lg_lt_scalar(const lg_tensor *a, float s) { return lg_pw_unary(LG_U_LTS, a, s, 0); }
lg_tensor *lg_ge_scalar(const lg_tensor *a, float s) { return lg_pw_unary(LG_U_GES, a, s, 0); }
lg_tensor *lg_le_scalar(const lg_tensor *a, float s) { return lg_pw_unary(LG_U_LES, a, s, 0); }
lg_tensor *lg_eq_scalar(const lg_tensor *a, float s) { return lg_pw_unary(LG_U_EQS, a, s, 0); }

/* ---- backward formulas -------------------------------------------------------------------
 * g has the output's shape; binary ops sum it back to each input's shape.
 * Where no graph of the gradient is wanted (lg_fx_graph false) unary
 * formulas run one fused kernel with the same values. */

/* 0 when every needed gradient was produced, else -1 (the error is set). */
static int lg_bw_done(const lg_node *n, lg_tensor **gin)
{
  for (int i = 0; i < n->n_in; i++)
    if (n->needs[i] && !gin[i]) return -1;
  return 0;
}

/* The fused form of a unary formula: gin[0] = kernel k (g, y) with the
 * node's parameters, for when no graph of the gradient is wanted. */
static int lg_bw_fused(lg_node *n, lg_tensor *g, lg_tensor *y, int k, lg_tensor **gin)
{
  const lg_unary_params *p = lg_params_get(n, lg_unary_params);
  gin[0] = lg_pw_binary(lg_node_name(n), k, g, y, p->a, p->b);
  return gin[0] ? 0 : -1;
}

int lg_bw_add(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_fx s = {0};
  if (n->needs[0]) gin[0] = fx_out(fx_sum_to(&s, g, n, 0));
  if (n->needs[1]) gin[1] = fx_out(fx_sum_to(&s, g, n, 1));
  fx_free(&s);
  return lg_bw_done(n, gin);
}

int lg_bw_sub(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_fx s = {0};
  if (n->needs[0]) gin[0] = fx_out(fx_sum_to(&s, g, n, 0));
  if (n->needs[1]) gin[1] = fx_out(fx_neg(&s, fx_sum_to(&s, g, n, 1)));
  fx_free(&s);
  return lg_bw_done(n, gin);
}

int lg_bw_mul(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  /* d(a*b) = g*b, g*a */
  lg_fx s = {0};
  if (n->needs[0]) gin[0] = fx_out(fx_sum_to(&s, fx_mul(&s, g, fx(&s, lg_saved(n, LG_SV_B))), n, 0));
  if (n->needs[1]) gin[1] = fx_out(fx_sum_to(&s, fx_mul(&s, g, fx(&s, lg_saved(n, LG_SV_A))), n, 1));
  fx_free(&s);
  return lg_bw_done(n, gin);
}

int lg_bw_div(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  /* y = a/b: da = g/b, db = -g*a/b^2 = -(g/b)*(a/b). From the inputs, not
   * the saved output, so a double backward needs no retained graph here. */
  lg_fx s = {0};
  lg_tensor *b = fx(&s, lg_saved(n, LG_SV_B)), *t = fx_div(&s, g, b);
  if (n->needs[0]) gin[0] = fx_out(fx_sum_to(&s, t, n, 0));
  if (n->needs[1]) {
    lg_tensor *q = fx_div(&s, fx(&s, lg_saved(n, LG_SV_A)), b);
    gin[1] = fx_out(fx_neg(&s, fx_sum_to(&s, fx_mul(&s, t, q), n, 1)));
  }
  fx_free(&s);
  return lg_bw_done(n, gin);
}

int lg_bw_pow(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  /* y = a^b: da = g*b*a^(b-1) (0 where b == 0), db = g*y*log(a) (0 where
   * a == 0 and b >= 0, since y is 0 there). The masked entries are computed
   * from 1 instead of a so that no inf or NaN hides behind a mask, where a
   * second derivative would turn 0*inf into NaN. */
  lg_fx s = {0};
  lg_tensor *a = fx(&s, lg_saved(n, LG_SV_A)), *b = fx(&s, lg_saved(n, LG_SV_B));
  lg_tensor *one = fx_scalar(&s, 1);
  if (n->needs[0]) {
    lg_tensor *a1 = fx_where(&s, fx_eqs(&s, b, 0), one, a);
    lg_tensor *d = fx_mul(&s, b, fx_pow(&s, a1, fx_adds(&s, b, -1)));
    gin[0] = fx_out(fx_sum_to(&s, fx_mul(&s, g, d), n, 0));
  }
  if (n->needs[1]) {
    lg_tensor *y = fx(&s, lg_saved(n, LG_SV_OUT));
    lg_tensor *a1 = fx_where(&s, fx_eqs(&s, a, 0), one, a);
    gin[1] = fx_out(fx_sum_to(&s, fx_mul(&s, g, fx_mul(&s, y, fx_log(&s, a1))), n, 1));
  }
  fx_free(&s);
  return lg_bw_done(n, gin);
}

/* maximum/minimum: the winner takes g, ties split it in halves. */
static int lg_bw_minmax(lg_node *n, lg_tensor *g, lg_tensor **gin, int is_max)
{
  lg_fx s = {0};
  lg_tensor *a = fx(&s, lg_saved(n, LG_SV_A)), *b = fx(&s, lg_saved(n, LG_SV_B));
  lg_tensor *w = NULL;   /* share of a: masks only, nothing records */
  if (a && b)
    w = fx_add(&s, is_max ? fx_gt(&s, a, b) : fx_lt(&s, a, b), fx_muls(&s, fx_eq(&s, a, b), 0.5f));
  if (n->needs[0]) gin[0] = fx_out(fx_sum_to(&s, fx_mul(&s, g, w), n, 0));
  if (n->needs[1]) gin[1] = fx_out(fx_sum_to(&s, fx_mul(&s, g, fx_rsub1(&s, w)), n, 1));
  fx_free(&s);
  return lg_bw_done(n, gin);
}
int lg_bw_maximum(lg_node *n, lg_tensor *g, lg_tensor **gin) { return lg_bw_minmax(n, g, gin, 1); }
int lg_bw_minimum(lg_node *n, lg_tensor *g, lg_tensor **gin) { return lg_bw_minmax(n, g, gin, 0); }

int lg_bw_where(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_fx s = {0};
  lg_tensor *c = fx(&s, lg_saved(n, LG_SV_COND)), *zero = fx_scalar(&s, 0);
  if (n->needs[0]) gin[0] = fx_out(fx_sum_to(&s, fx_where(&s, c, g, zero), n, 0));
  if (n->needs[1]) gin[1] = fx_out(fx_sum_to(&s, fx_where(&s, c, zero, g), n, 1));
  fx_free(&s);
  return lg_bw_done(n, gin);
}

int lg_bw_add_scalar(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (n->needs[0]) gin[0] = lg_retain(g);
  return 0;
}

int lg_bw_mul_scalar(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (n->needs[0] && !(gin[0] = lg_mul_scalar(g, lg_params_get(n, lg_unary_params)->a))) return -1;
  return 0;
}

int lg_bw_neg(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (n->needs[0] && !(gin[0] = lg_neg(g))) return -1;
  return 0;
}

int lg_bw_sign(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  /* piecewise constant: a zero gradient (0 at the jump too, like PyTorch) */
  if (n->needs[0] && !(gin[0] = lg_zeros(n->in_ndim[0], n->in_shape[0]))) return -1;
  return 0;
}

/* The shape of the hand-written unary formulas below: fetch saved slot
 * `slot` as t, run the fused kernel when no graph is wanted, else the
 * composite expression E (written with s, g, t and the parameters a, b). */
#define LG_BW_UNARY(name, slot, kernel, E) \
  int lg_bw_##name(lg_node *n, lg_tensor *g, lg_tensor **gin) \
  { \
    if (!n->needs[0]) return 0; \
    const float a = lg_params_get(n, lg_unary_params)->a; \
    const float b = lg_params_get(n, lg_unary_params)->b; \
    (void)a; (void)b; \
    lg_fx s = {0}; \
    lg_tensor *t = fx(&s, lg_saved(n, slot)); \
    if (t && !lg_fx_graph(g, t)) { \
      int rc = lg_bw_fused(n, g, t, kernel, gin); \
      fx_free(&s); \
      return rc; \
    } \
    if (t) gin[0] = fx_out(E); \
    fx_free(&s); \
    return gin[0] ? 0 : -1; \
  }

/* a^e: g*e*a^(e-1), 0 for e == 0 (PyTorch's convention) */
LG_BW_UNARY(pow_scalar, LG_SV_X, LG_B_POWS_BW,
  a == 0 ? fx(&s, lg_zeros(n->in_ndim[0], n->in_shape[0])) :
  a == 1 ? fx(&s, lg_retain(g)) :
  a == 2 ? fx_muls(&s, fx_mul(&s, g, t), 2) :
  fx_mul(&s, g, fx_muls(&s, fx_pows(&s, t, a - 1), a)))
/* base^a: g*y*log(base); the fused kernel takes log(base) as its parameter */
int lg_bw_rpow_scalar(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  lg_tensor *y = fx(&s, lg_saved(n, LG_SV_Y));
  float lb = logf(lg_params_get(n, lg_unary_params)->a);
  if (y && !lg_fx_graph(g, y)) gin[0] = lg_pw_binary("rpow_scalar", LG_B_RPOWS_BW, g, y, lb, 0);
  else gin[0] = fx_out(fx_mul(&s, g, fx_muls(&s, y, lb)));
  fx_free(&s);
  return gin[0] ? 0 : -1;
}
/* clamp passes g where lo <= a <= hi (inclusive, like PyTorch) */
LG_BW_UNARY(clamp, LG_SV_X, LG_B_CLAMP_BW,
  fx_where(&s, fx_mul(&s, fx_ges(&s, t, a), fx_les(&s, t, b)), g, fx_scalar(&s, 0)))
#undef LG_BW_UNARY

/* The backward of each LG_UNARY row of lg_ops.def (lg_bw_exp, lg_bw_tanh,
 * lg_bw_softplus, ...): the row's fused kernel on the saved input x (or
 * output y for OUT rows; for SIGN rows whichever was saved, as x) when no
 * graph of the gradient is wanted, else its
 * formula, with x and y the saved tensors (y fetched after the fused check
 * for BOTH rows) and the row's parameter. */
#define LG_BW_ROW(ID, name, param, saves, formula) \
  int lg_bw_##name(lg_node *n, lg_tensor *g, lg_tensor **gin) \
  { \
    if (!n->needs[0]) return 0; \
    const float param = lg_params_get(n, lg_unary_params)->a; \
    (void)param; \
    const int sv = lg_save_mode(LG_SAVE_##saves, param); \
    lg_fx s = {0}; \
    lg_tensor *t = fx(&s, lg_saved(n, sv == LG_SAVE_OUT ? LG_SV_Y : LG_SV_X)); \
    if (t && !lg_fx_graph(g, t)) { \
      int rc = lg_bw_fused(n, g, t, LG_B_##ID##_BW, gin); \
      fx_free(&s); \
      return rc; \
    } \
    const int sign_ = LG_SAVE_##saves == LG_SAVE_SIGN; /* the saved tensor reads as x */ \
    lg_tensor *x = sv == LG_SAVE_OUT && !sign_ ? NULL : t; \
    lg_tensor *y = sv == LG_SAVE_OUT && !sign_ ? t : sv == LG_SAVE_BOTH && t ? fx(&s, lg_saved(n, LG_SV_Y)) : NULL; \
    (void)x; (void)y; \
    if (t) gin[0] = fx_out(formula); \
    fx_free(&s); \
    return gin[0] ? 0 : -1; \
  }
#define LG_OP(ID, name)
#define LG_UNARY(ID, name, saves, forward, fused, formula) \
  LG_BW_ROW(ID, name, p0_, saves, formula)
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) \
  LG_BW_ROW(ID, name, param, saves, formula)
#include "lg_ops.def"
#undef LG_OP
#undef LG_UNARY
#undef LG_UNARY_P
#undef LG_BW_ROW
