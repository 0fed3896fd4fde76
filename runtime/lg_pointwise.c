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

/* tanh within ~2 ulp (glibc's tanhf is a scalar call; this loop vectorises,
 * ~15x faster): tanh(x) = x + x^3 Q(x^2) below 0.625 (degree-4 minimax Q),
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
  const float *restrict x = p[1];
  const int64_t xs = st[1];
  const float a = kp->a, b = kp->b;
  assert(st[0] == 1 || n <= 1);
#define U(K, E) case K: \
  if (xs == 1) for (int64_t i = 0; i < n; i++) { float v = x[i]; o[i] = (E); } \
  else for (int64_t i = 0; i < n; i++) { float v = x[i * xs]; o[i] = (E); } \
  break;
  switch (kp->k) {
  U(LG_U_NEG, -v)
  U(LG_U_RECIP, 1.0f / v)
  U(LG_U_EXP, expf(v))
  U(LG_U_LOG, logf(v))
  U(LG_U_LOG1P, log1pf(v))
  U(LG_U_SQRT, sqrtf(v))
  U(LG_U_RSQRT, 1.0f / sqrtf(v))
  U(LG_U_ABS, fabsf(v))
  U(LG_U_SIGN, lg_signf(v))
  U(LG_U_SIN, sinf(v))
  U(LG_U_COS, cosf(v))
  U(LG_U_TANH, lg_tanhf(v))
  U(LG_U_SIGMOID, lg_sigmoidf(v))
  U(LG_U_RELU, v < 0 ? 0.0f : v)                 /* NaN stays NaN */
  U(LG_U_LEAKY, v > 0 ? v : v * a)
  U(LG_U_ELU, v > 0 ? v : a * expm1f(v))
  /* log(1+e^v) = max(v,0) + log1p(e^-|v|): no overflow, exact for large |v| */
  U(LG_U_SOFTPLUS, v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v)))
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
  /* unit strides, a broadcast y, a broadcast x, anything else */
#define B(K, E) case K: \
  if (xs == 1 && ys == 1) for (int64_t i = 0; i < n; i++) { float x = xp[i], y = yp[i]; o[i] = (E); } \
  else if (xs == 1 && ys == 0) { const float y = yp[0]; \
    for (int64_t i = 0; i < n; i++) { float x = xp[i]; o[i] = (E); } } \
  else if (xs == 0 && ys == 1) { const float x = xp[0]; \
    for (int64_t i = 0; i < n; i++) { float y = yp[i]; o[i] = (E); } } \
  else for (int64_t i = 0; i < n; i++) { float x = xp[i * xs], y = yp[i * ys]; o[i] = (E); } \
  break;
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
  B(LG_B_TANH_BW, x * (1.0f - y * y))
  B(LG_B_SIGMOID_BW, x * y * (1.0f - y))
  B(LG_B_RELU_BW, y > 0 ? x : 0.0f)
  B(LG_B_LEAKY_BW, y > 0 ? x : x * a)
  B(LG_B_ELU_BW, y > 0 ? x : x * a * expf(y))
  B(LG_B_SOFTPLUS_BW, x * lg_sigmoidf(y))
  B(LG_B_CLAMP_BW, (y >= a && y <= b) ? x : 0.0f)
  B(LG_B_SQRT_BW, x * 0.5f / y)
  B(LG_B_RSQRT_BW, -0.5f * x * (y * y * y))
  B(LG_B_RECIP_BW, -x * (y * y))
  B(LG_B_LOG1P_BW, x / (1.0f + y))
  B(LG_B_SIN_BW, x * cosf(y))
  B(LG_B_COS_BW, -x * sinf(y))
  B(LG_B_ABS_BW, x * lg_signf(y))
  B(LG_B_POWS_BW, a == 0 ? 0.0f : a == 2 ? 2.0f * x * y : x * a * powf(y, a - 1.0f))
  B(LG_B_RPOWS_BW, x * y * a)
  default: assert(0);
  }
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

enum { LG_SAVE_NONE = 0, LG_SAVE_IN = 1, LG_SAVE_OUT = 2, LG_SAVE_BOTH = 3 };

/* A unary op: kernel k, node op saving the input (slot 0) and/or the output
 * (next slot), parameters in f[0], f[1]. */
static lg_tensor *lg_unop(int op, int k, int save, lg_tensor *a, float p0, float p1)
{
  lg_tensor *out = lg_pw_unary(k, a, p0, p1);
  lg_node *nd;
  int ns = (save & LG_SAVE_IN ? 1 : 0) + (save & LG_SAVE_OUT ? 1 : 0);
  if (!out || lg_rec(op, out, 1, &a, ns, &nd)) return NULL;
  if (nd) {
    int slot = 0;
    if (save & LG_SAVE_IN) lg_save(nd, slot++, a);
    if (save & LG_SAVE_OUT) lg_save_output(nd, slot++, out);
    nd->f[0] = p0;
    nd->f[1] = p1;
  }
  return out;
}

/* A binary op saving a and b (when save_ab), and the output after them (when save_out). */
static lg_tensor *lg_binop(const char *name, int op, int k, lg_tensor *a, lg_tensor *b,
                           int save_ab, int save_out)
{
  lg_tensor *out = lg_pw_binary(name, k, a, b, 0, 0);
  lg_tensor *in[2] = {a, b};
  lg_node *nd;
  if (!out || lg_rec(op, out, 2, in, (save_ab ? 2 : 0) + (save_out ? 1 : 0), &nd)) return NULL;
  if (nd) {
    if (save_ab) { lg_save(nd, 0, a); lg_save(nd, 1, b); }
    if (save_out) lg_save_output(nd, save_ab ? 2 : 0, out);
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
  if (nd_) lg_save(nd_, 0, cond);
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
lg_tensor *lg_reciprocal(lg_tensor *a) { return lg_unop(LG_OP_RECIPROCAL, LG_U_RECIP, LG_SAVE_OUT, a, 0, 0); }
lg_tensor *lg_exp(lg_tensor *a) { return lg_unop(LG_OP_EXP, LG_U_EXP, LG_SAVE_OUT, a, 0, 0); }
lg_tensor *lg_log(lg_tensor *a) { return lg_unop(LG_OP_LOG, LG_U_LOG, LG_SAVE_IN, a, 0, 0); }
lg_tensor *lg_log1p(lg_tensor *a) { return lg_unop(LG_OP_LOG1P, LG_U_LOG1P, LG_SAVE_IN, a, 0, 0); }
lg_tensor *lg_sqrt(lg_tensor *a) { return lg_unop(LG_OP_SQRT, LG_U_SQRT, LG_SAVE_OUT, a, 0, 0); }
lg_tensor *lg_rsqrt(lg_tensor *a) { return lg_unop(LG_OP_RSQRT, LG_U_RSQRT, LG_SAVE_OUT, a, 0, 0); }
lg_tensor *lg_abs(lg_tensor *a) { return lg_unop(LG_OP_ABS, LG_U_ABS, LG_SAVE_IN, a, 0, 0); }
lg_tensor *lg_sign(lg_tensor *a) { return lg_unop(LG_OP_SIGN, LG_U_SIGN, LG_SAVE_NONE, a, 0, 0); }
lg_tensor *lg_sin(lg_tensor *a) { return lg_unop(LG_OP_SIN, LG_U_SIN, LG_SAVE_IN, a, 0, 0); }
lg_tensor *lg_cos(lg_tensor *a) { return lg_unop(LG_OP_COS, LG_U_COS, LG_SAVE_IN, a, 0, 0); }
lg_tensor *lg_tanh(lg_tensor *a) { return lg_unop(LG_OP_TANH, LG_U_TANH, LG_SAVE_OUT, a, 0, 0); }
lg_tensor *lg_sigmoid(lg_tensor *a) { return lg_unop(LG_OP_SIGMOID, LG_U_SIGMOID, LG_SAVE_OUT, a, 0, 0); }
/* relu and leaky_relu (slope >= 0) keep their output for the gradient:
 * y > 0 exactly where a > 0, so the formula's mask is the same, and the
 * input (the conv / batch-norm output before the activation) can be freed
 * after the forward pass instead of living until backward. */
lg_tensor *lg_relu(lg_tensor *a) { return lg_unop(LG_OP_RELU, LG_U_RELU, LG_SAVE_OUT, a, 0, 0); }
lg_tensor *lg_leaky_relu(lg_tensor *a, float slope)
{
  return lg_unop(LG_OP_LEAKY_RELU, LG_U_LEAKY, slope >= 0 ? LG_SAVE_OUT : LG_SAVE_IN, a, slope, 0);
}
lg_tensor *lg_elu(lg_tensor *a, float alpha) { return lg_unop(LG_OP_ELU, LG_U_ELU, LG_SAVE_BOTH, a, alpha, 0); }
lg_tensor *lg_softplus(lg_tensor *a) { return lg_unop(LG_OP_SOFTPLUS, LG_U_SOFTPLUS, LG_SAVE_IN, a, 0, 0); }
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
  gin[0] = lg_pw_binary(lg_node_name(n), k, g, y, (float)n->f[0], (float)n->f[1]);
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
  if (n->needs[0]) gin[0] = fx_out(fx_sum_to(&s, fx_mul(&s, g, fx(&s, lg_saved(n, 1))), n, 0));
  if (n->needs[1]) gin[1] = fx_out(fx_sum_to(&s, fx_mul(&s, g, fx(&s, lg_saved(n, 0))), n, 1));
  fx_free(&s);
  return lg_bw_done(n, gin);
}

int lg_bw_div(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  /* y = a/b: da = g/b, db = -g*a/b^2 = -(g/b)*(a/b). From the inputs, not
   * the saved output, so a double backward needs no retained graph here. */
  lg_fx s = {0};
  lg_tensor *b = fx(&s, lg_saved(n, 1)), *t = fx_div(&s, g, b);
  if (n->needs[0]) gin[0] = fx_out(fx_sum_to(&s, t, n, 0));
  if (n->needs[1]) {
    lg_tensor *q = fx_div(&s, fx(&s, lg_saved(n, 0)), b);
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
  lg_tensor *a = fx(&s, lg_saved(n, 0)), *b = fx(&s, lg_saved(n, 1));
  lg_tensor *one = fx_scalar(&s, 1);
  if (n->needs[0]) {
    lg_tensor *a1 = fx_where(&s, fx_eqs(&s, b, 0), one, a);
    lg_tensor *d = fx_mul(&s, b, fx_pow(&s, a1, fx_adds(&s, b, -1)));
    gin[0] = fx_out(fx_sum_to(&s, fx_mul(&s, g, d), n, 0));
  }
  if (n->needs[1]) {
    lg_tensor *y = fx(&s, lg_saved(n, 2));
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
  lg_tensor *a = fx(&s, lg_saved(n, 0)), *b = fx(&s, lg_saved(n, 1));
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
  lg_tensor *c = fx(&s, lg_saved(n, 0)), *zero = fx_scalar(&s, 0);
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
  if (n->needs[0] && !(gin[0] = lg_mul_scalar(g, (float)n->f[0]))) return -1;
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

/* The shape of every unary formula below: fetch saved slot `slot`, run the
 * fused kernel when no graph is wanted, else the composite expression E
 * (written with s, g and the saved tensor t). */
#define LG_BW_UNARY(name, slot, kernel, E) \
  int lg_bw_##name(lg_node *n, lg_tensor *g, lg_tensor **gin) \
  { \
    if (!n->needs[0]) return 0; \
    lg_fx s = {0}; \
    lg_tensor *t = fx(&s, lg_saved(n, slot)); \
    if (t && (kernel) >= 0 && !lg_fx_graph(g, t)) { \
      int rc = lg_bw_fused(n, g, t, kernel, gin); \
      fx_free(&s); \
      return rc; \
    } \
    if (t) gin[0] = fx_out(E); \
    fx_free(&s); \
    return gin[0] ? 0 : -1; \
  }

/* a^e: g*e*a^(e-1), 0 for e == 0 (PyTorch's convention) */
LG_BW_UNARY(pow_scalar, 0, LG_B_POWS_BW,
  n->f[0] == 0 ? fx(&s, lg_zeros(n->in_ndim[0], n->in_shape[0])) :
  n->f[0] == 1 ? fx(&s, lg_retain(g)) :
  n->f[0] == 2 ? fx_muls(&s, fx_mul(&s, g, t), 2) :
  fx_mul(&s, g, fx_muls(&s, fx_pows(&s, t, (float)n->f[0] - 1), (float)n->f[0])))
/* base^a: g*y*log(base); the fused kernel takes log(base) in f[0] */
int lg_bw_rpow_scalar(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_fx s = {0};
  lg_tensor *y = fx(&s, lg_saved(n, 0));
  float lb = logf((float)n->f[0]);
  if (y && !lg_fx_graph(g, y)) gin[0] = lg_pw_binary("rpow_scalar", LG_B_RPOWS_BW, g, y, lb, 0);
  else gin[0] = fx_out(fx_mul(&s, g, fx_muls(&s, y, lb)));
  fx_free(&s);
  return gin[0] ? 0 : -1;
}
LG_BW_UNARY(reciprocal, 0, LG_B_RECIP_BW, fx_neg(&s, fx_mul(&s, g, fx_mul(&s, t, t))))
LG_BW_UNARY(exp, 0, LG_B_MUL, fx_mul(&s, g, t))
LG_BW_UNARY(log, 0, LG_B_DIV, fx_div(&s, g, t))
LG_BW_UNARY(log1p, 0, LG_B_LOG1P_BW, fx_div(&s, g, fx_adds(&s, t, 1)))
LG_BW_UNARY(sqrt, 0, LG_B_SQRT_BW, fx_div(&s, fx_muls(&s, g, 0.5f), t))
LG_BW_UNARY(rsqrt, 0, LG_B_RSQRT_BW, fx_muls(&s, fx_mul(&s, g, fx_pows(&s, t, 3)), -0.5f))
LG_BW_UNARY(abs, 0, LG_B_ABS_BW, fx_mul(&s, g, fx_sign(&s, t)))
LG_BW_UNARY(sin, 0, LG_B_SIN_BW, fx_mul(&s, g, fx_cos(&s, t)))
LG_BW_UNARY(cos, 0, LG_B_COS_BW, fx_neg(&s, fx_mul(&s, g, fx_sin(&s, t))))
LG_BW_UNARY(tanh, 0, LG_B_TANH_BW, fx_mul(&s, g, fx_rsub1(&s, fx_mul(&s, t, t))))
LG_BW_UNARY(sigmoid, 0, LG_B_SIGMOID_BW, fx_mul(&s, g, fx_mul(&s, t, fx_rsub1(&s, t))))
LG_BW_UNARY(relu, 0, LG_B_RELU_BW, fx_where(&s, fx_gts(&s, t, 0), g, fx_scalar(&s, 0)))
LG_BW_UNARY(leaky_relu, 0, LG_B_LEAKY_BW,
  fx_where(&s, fx_gts(&s, t, 0), g, fx_muls(&s, g, (float)n->f[0])))
/* elu: for a <= 0, dy/da = alpha*e^a = y + alpha (finite, so the unselected
 * branch of where never holds inf) */
LG_BW_UNARY(elu, 0, LG_B_ELU_BW,
  fx_where(&s, fx_gts(&s, t, 0), g,
           fx_mul(&s, g, fx_adds(&s, fx(&s, lg_saved(n, 1)), (float)n->f[0]))))
LG_BW_UNARY(softplus, 0, LG_B_SOFTPLUS_BW, fx_mul(&s, g, fx_sigmoid(&s, t)))
/* clamp passes g where lo <= a <= hi (inclusive, like PyTorch) */
LG_BW_UNARY(clamp, 0, LG_B_CLAMP_BW,
  fx_where(&s, fx_mul(&s, fx_ges(&s, t, (float)n->f[0]), fx_les(&s, t, (float)n->f[1])), g,
           fx_scalar(&s, 0)))
#undef LG_BW_UNARY
