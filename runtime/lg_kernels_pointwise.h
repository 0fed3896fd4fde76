/* lg_kernels_pointwise.h: private to lg_pointwise.c and lg_reduce.c.
 *
 * Two things both files need:
 *  - raw elementwise kernels that never record (comparisons, masks, and the
 *    fused backward kernels used when no graph of the gradient is wanted);
 *  - `lg_fx`, a tiny arena for writing backward formulas as nested op calls:
 *    every intermediate is registered and released at the end, and every
 *    helper passes NULL through, so a formula checks for failure once.
 */
#ifndef LG_KERNELS_POINTWISE_H
#define LG_KERNELS_POINTWISE_H

#include <assert.h>
#include "lg_ops.h"

/* unary kernels: out = f(x; p0, p1); LG_U_<ID> for each LG_UNARY row of
 * lg_ops.def (LG_U_EXP, LG_U_SOFTPLUS, ...), then the hand-written ones */
enum {
#define LG_OP(ID, name)
#define LG_UNARY(ID, name, saves, forward, fused, formula) LG_U_##ID,
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) LG_U_##ID,
#include "lg_ops.def"
#undef LG_UNARY
#undef LG_UNARY_P
  LG_U_NEG, LG_U_SIGN, LG_U_CLAMP, LG_U_ADDS, LG_U_MULS, LG_U_POWS, LG_U_SQUARE, LG_U_RPOWS,
  LG_U_GTS, LG_U_LTS, LG_U_GES, LG_U_LES, LG_U_EQS
};

/* binary kernels: out = f(x, y; p0, p1), x and y broadcast. The *_BW ones
 * are fused backward formulas: x is the incoming gradient g, y the saved
 * input or output; LG_B_<ID>_BW for each LG_UNARY row (its `fused` column,
 * LG_B_SOFTPLUS_BW, ...), then the hand-written ones. */
enum {
  LG_B_ADD, LG_B_SUB, LG_B_MUL, LG_B_DIV, LG_B_POW, LG_B_MAX, LG_B_MIN,
  LG_B_EQ, LG_B_NE, LG_B_LT, LG_B_LE, LG_B_GT, LG_B_GE,
#define LG_UNARY(ID, name, saves, forward, fused, formula) LG_B_##ID##_BW,
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) LG_B_##ID##_BW,
#include "lg_ops.def"
#undef LG_OP
#undef LG_UNARY
#undef LG_UNARY_P
  LG_B_CLAMP_BW,     /* y = input:  p0 <= y <= p1 ? g : 0 */
  LG_B_POWS_BW,      /* y = input:  g*p0*y^(p0-1) */
  LG_B_RPOWS_BW      /* y = output: g*y*p0 (p0 = log(base)) */
};

/* Elementwise kernels without autograd; `op` names the op in errors. */
lg_tensor *lg_pw_unary(int k, const lg_tensor *a, float p0, float p1);
lg_tensor *lg_pw_binary(const char *op, int k, const lg_tensor *a, const lg_tensor *b,
                        float p0, float p1);

/* ---- the formula arena ---------------------------------------------------- */
#define LG_FX_MAX 32
typedef struct { lg_tensor *t[LG_FX_MAX]; int n; } lg_fx;

/* Register a temporary (NULL passes through). A formula that needs more than
 * LG_FX_MAX temporaries gets NULL and an error, which the engine prefixes
 * with the op's name ("softplus: backward formula ..."); x is released. */
static inline lg_tensor *fx(lg_fx *s, lg_tensor *x)
{
  if (!x) return NULL;
  if (s->n >= LG_FX_MAX) {
    lg_release(x);
    return lg_error("backward formula needs more than %d temporaries (LG_FX_MAX in "
                    "lg_kernels_pointwise.h)", LG_FX_MAX);
  }
  s->t[s->n++] = x;
  return x;
}
static inline void fx_free(lg_fx *s)
{
  for (int k = 0; k < s->n; k++) lg_release(s->t[k]);
  s->n = 0;
}
/* A result to hand out: a new reference that survives fx_free. */
static inline lg_tensor *fx_out(lg_tensor *x) { return lg_retain(x); }

#define LG_FX2(name, call) \
  static inline lg_tensor *fx_##name(lg_fx *s, lg_tensor *a, lg_tensor *b) \
  { return a && b ? fx(s, call) : NULL; }
LG_FX2(add, lg_add(a, b))
LG_FX2(sub, lg_sub(a, b))
LG_FX2(mul, lg_mul(a, b))
LG_FX2(div, lg_div(a, b))
LG_FX2(pow, lg_pow(a, b))
LG_FX2(eq, lg_eq(a, b))
LG_FX2(gt, lg_gt(a, b))
LG_FX2(lt, lg_lt(a, b))
#undef LG_FX2

#define LG_FX1(name, call) \
  static inline lg_tensor *fx_##name(lg_fx *s, lg_tensor *a) { return a ? fx(s, call) : NULL; }
LG_FX1(neg, lg_neg(a))
LG_FX1(exp, lg_exp(a))
LG_FX1(log, lg_log(a))
LG_FX1(sin, lg_sin(a))
LG_FX1(cos, lg_cos(a))
LG_FX1(abs, lg_abs(a))
LG_FX1(sign, lg_sign(a))
LG_FX1(sigmoid, lg_sigmoid(a))
#undef LG_FX1

#define LG_FXS(name, call) \
  static inline lg_tensor *fx_##name(lg_fx *s, lg_tensor *a, float v) \
  { return a ? fx(s, call) : NULL; }
LG_FXS(adds, lg_add_scalar(a, v))
LG_FXS(muls, lg_mul_scalar(a, v))
LG_FXS(pows, lg_pow_scalar(a, v))
LG_FXS(eqs, lg_eq_scalar(a, v))
LG_FXS(gts, lg_gt_scalar(a, v))
LG_FXS(ges, lg_ge_scalar(a, v))
LG_FXS(les, lg_le_scalar(a, v))
#undef LG_FXS

static inline lg_tensor *fx_where(lg_fx *s, lg_tensor *c, lg_tensor *a, lg_tensor *b)
{
  return c && a && b ? fx(s, lg_where(c, a, b)) : NULL;
}
/* 1 - a */
static inline lg_tensor *fx_rsub1(lg_fx *s, lg_tensor *a) { return fx_adds(s, fx_neg(s, a), 1); }
static inline lg_tensor *fx_scalar(lg_fx *s, float v) { return fx(s, lg_scalar(v)); }
/* Sum a broadcast gradient back to the shape of input i of node n. */
static inline lg_tensor *fx_sum_to(lg_fx *s, lg_tensor *a, const lg_node *n, int i)
{
  return a ? fx(s, lg_sum_to(a, n->in_ndim[i], n->in_shape[i])) : NULL;
}

/* True when ops on these tensors would record (a graph of the gradient is
 * wanted): formulas then use differentiable ops, otherwise fused kernels. */
static inline int lg_fx_graph(lg_tensor *a, lg_tensor *b)
{
  lg_tensor *v[2] = {a, b};
  return lg_should_record(b ? 2 : 1, v);
}

#endif
