/* lgl_ops.c: the tensor ops as Lua functions, each both lg.op(t, ...) and
 * t:op(...): views and indexing, pointwise ops (numbers accepted on either
 * side), comparisons, reductions, matmul, in-place ops, and the arithmetic
 * metamethods. Dims and indices are 1-based here and converted before the
 * runtime sees them, so every dim or index message speaks 1-based. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lgl.h"

#define SELF(L) lgl_check(L, 1)

/* Return self (for in-place ops). */
static int ret_self(lua_State *L) { lua_settop(L, 1); return 1; }

static float checkf(lua_State *L, int idx) { return (float)luaL_checknumber(L, idx); }
static float optf(lua_State *L, int idx, float def) { return (float)luaL_optnumber(L, idx, def); }

/* A list of tensors (a table) at idx: array in GC-owned scratch; returns n. */
static int check_list(lua_State *L, int idx, lg_tensor ***out)
{
  if (lua_type(L, idx) != LUA_TTABLE) luaL_typeerror(L, idx, "list of tensors");
  int n = (int)lua_rawlen(L, idx);
  /* scratch stays on the stack (GC-owned) until the caller returns */
  lg_tensor **v = lua_newuserdatauv(L, sizeof *v * (n ? n : 1), 0);
  lua_pushvalue(L, idx);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    v[i] = lgl_test(L, -1);
    if (!v[i])
      luaL_argerror(L, idx, lua_pushfstring(L, "element %d of the list is %s", i + 1,
                                            lgl_not_tensor(L, -1)));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  *out = v;
  return n;
}

/* ---- views and shape ------------------------------------------------------------ */
static int view_like(lua_State *L, int reshape)
{
  lg_tensor *t = SELF(L);
  int64_t shape[LG_MAXDIM];
  int next;
  int ndim = lgl_shape(L, 2, shape, &next, 1);
  if (!lua_isnone(L, next)) return luaL_argerror(L, next, "integer size expected");
  return lgl_push(L, reshape ? lg_reshape(t, ndim, shape) : lg_view(t, ndim, shape));
}
static int o_view(lua_State *L) { return view_like(L, 0); }
static int o_reshape(lua_State *L) { return view_like(L, 1); }

static int o_flatten(lua_State *L)
{
  lg_tensor *t = SELF(L);
  if (t->ndim == 0) return lgl_push(L, lg_flatten(t, 0, -1));
  int s = lgl_optdim(L, 2, t->ndim, 0), e = lgl_optdim(L, 3, t->ndim, t->ndim - 1);
  if (s > e) return luaL_error(L, "flatten: start dim %d comes after end dim %d", s + 1, e + 1);
  return lgl_push(L, lg_flatten(t, s, e));
}

static int o_squeeze(lua_State *L)
{
  lg_tensor *t = SELF(L);
  if (lua_isnoneornil(L, 2)) return lgl_push(L, lg_squeeze_all(t));
  return lgl_push(L, lg_squeeze(t, lgl_checkdim(L, 2, t->ndim)));
}

static int o_unsqueeze(lua_State *L)
{
  lg_tensor *t = SELF(L);
  return lgl_push(L, lg_unsqueeze(t, lgl_checkdim(L, 2, t->ndim + 1)));
}

/* 1-based position p (negative from the end) in a dim of size n -> 0-based,
 * accepting only 0 <= result < n (or <= n when allow_end). */
static int64_t pos0(lua_State *L, int arg, lua_Integer p, int64_t n, int dim0, int allow_end)
{
  int64_t r = p >= 1 ? p - 1 : p < 0 ? n + p : -1;
  if (r < 0 || r > n || (r == n && !allow_end))
    luaL_argerror(L, arg, lua_pushfstring(L, "index %I out of range for dim %d of size %I",
                                          p, dim0 + 1, (lua_Integer)n));
  return r;
}

static int o_narrow(lua_State *L)
{
  lg_tensor *t = SELF(L);
  int d = lgl_checkdim(L, 2, t->ndim);
  int64_t n = t->shape[d];
  int64_t s = pos0(L, 3, luaL_checkinteger(L, 3), n, d, 1);
  lua_Integer len = luaL_checkinteger(L, 4);
  if (len < 0 || len > n - s)             /* not s + len: that may overflow */
    return luaL_error(L, "narrow: start %I with length %I exceeds size %I of dim %d",
                      (lua_Integer)(s + 1), len, (lua_Integer)n, d + 1);
  return lgl_push(L, lg_narrow(t, d, s, len));
}

static int o_select(lua_State *L)
{
  lg_tensor *t = SELF(L);
  int d = lgl_checkdim(L, 2, t->ndim);
  int64_t i = pos0(L, 3, luaL_checkinteger(L, 3), t->shape[d], d, 0);
  return lgl_push(L, lg_select(t, d, i));
}

/* t:slice(dim, start, stop, step): 1-based inclusive start..stop like a Lua
 * range (negative counts from the end: -1 is the last); defaults 1, -1, 1. */
static int o_slice(lua_State *L)
{
  lg_tensor *t = SELF(L);
  int d = lgl_checkdim(L, 2, t->ndim);
  int64_t n = t->shape[d];
  lua_Integer a = luaL_optinteger(L, 3, 1), b = luaL_optinteger(L, 4, -1);
  lua_Integer step = luaL_optinteger(L, 5, 1);
  luaL_argcheck(L, step >= 1, 5, "step must be >= 1");
  luaL_argcheck(L, a != 0, 3, "start 0 is not a 1-based index");
  luaL_argcheck(L, b != 0, 4, "stop 0 is not a 1-based index");
  int64_t s = a > 0 ? a - 1 : n + a;                 /* 0-based, may fall outside */
  int64_t e = b > 0 ? b : n + b + 1;                 /* exclusive */
  if (s < 0) s = 0;
  if (s > n) s = n;
  if (e > n) e = n;
  if (e < s) e = s;                                  /* an empty slice */
  return lgl_push(L, lg_slice(t, d, s, e, step));
}

static int o_transpose(lua_State *L)
{
  lg_tensor *t = SELF(L);
  int a = lgl_checkdim(L, 2, t->ndim), b = lgl_checkdim(L, 3, t->ndim);
  return lgl_push(L, lg_transpose(t, a, b));
}

static int o_t(lua_State *L)
{
  lg_tensor *t = SELF(L);
  if (t->ndim > 2)
    return luaL_error(L, "t: expects a tensor with at most 2 dims, got %d (use transpose)", t->ndim);
  if (t->ndim < 2) return lgl_push(L, lg_retain(t));
  return lgl_push(L, lg_transpose(t, 0, 1));
}

static int o_permute(lua_State *L)
{
  lg_tensor *t = SELF(L);
  int64_t v[LG_MAXDIM];
  int perm[LG_MAXDIM], seen[LG_MAXDIM] = {0};
  int next;
  int n = lgl_shape(L, 2, v, &next, 1);             /* reads integers; dims checked below */
  if (n != t->ndim)
    return luaL_error(L, "permute: %d dims given for a tensor of %d dims", n, t->ndim);
  for (int i = 0; i < n; i++) {
    perm[i] = lgl_todim(L, v[i], t->ndim, 2 + i);
    if (seen[perm[i]]++)
      return luaL_error(L, "permute: dim %d repeated", perm[i] + 1);
  }
  return lgl_push(L, lg_permute(t, perm));
}

static int o_expand(lua_State *L)
{
  lg_tensor *t = SELF(L);
  int64_t shape[LG_MAXDIM];
  int n = lgl_shape(L, 2, shape, NULL, 1);
  return lgl_push(L, lg_expand(t, n, shape));
}

static int o_contiguous(lua_State *L) { return lgl_push(L, lg_contiguous(SELF(L))); }
static int o_clone(lua_State *L) { return lgl_push(L, lg_clone(SELF(L))); }

/* cat/stack: shapes are checked here so the message speaks 1-based dims. */
static int o_cat(lua_State *L)
{
  lg_tensor **v;
  char b1[160], b2[160];
  lua_settop(L, 2);                      /* the list scratch goes above the args */
  int n = check_list(L, 1, &v);
  if (n == 0) return luaL_argerror(L, 1, "cat: empty list");
  int d = lgl_optdim(L, 2, v[0]->ndim, 0);
  for (int i = 1; i < n; i++) {
    int ok = v[i]->ndim == v[0]->ndim;
    for (int k = 0; ok && k < v[0]->ndim; k++)
      if (k != d && v[i]->shape[k] != v[0]->shape[k]) ok = 0;
    if (!ok)
      return luaL_error(L, "cat: tensor %d has shape %s, tensor 1 has %s: sizes must match "
                        "except in dim %d", i + 1, lg_shape_str(v[i], b1, sizeof b1),
                        lg_shape_str(v[0], b2, sizeof b2), d + 1);
  }
  return lgl_push(L, lg_cat(n, v, d));
}

static int o_stack(lua_State *L)
{
  lg_tensor **v;
  char b1[160], b2[160];
  lua_settop(L, 2);                      /* the list scratch goes above the args */
  int n = check_list(L, 1, &v);
  if (n == 0) return luaL_argerror(L, 1, "stack: empty list");
  int d = lgl_optdim(L, 2, v[0]->ndim + 1, 0);
  for (int i = 1; i < n; i++)
    if (!lg_same_shape(v[i], v[0]))
      return luaL_error(L, "stack: tensor %d has shape %s, tensor 1 has %s: all must match",
                        i + 1, lg_shape_str(v[i], b1, sizeof b1), lg_shape_str(v[0], b2, sizeof b2));
  return lgl_push(L, lg_stack(n, v, d));
}

/* A list of narrow views of the given sizes along dim d. */
static int push_pieces(lua_State *L, lg_tensor *t, int d, int64_t piece, const int64_t *sizes, int nsizes)
{
  int64_t n = t->shape[d], at = 0;
  lua_newtable(L);
  for (int i = 1; sizes ? i <= nsizes : at < n; i++) {
    int64_t len = sizes ? sizes[i - 1] : (piece < n - at ? piece : n - at);
    lgl_push(L, lg_narrow(t, d, at, len));
    lua_rawseti(L, -2, i);
    at += len;
  }
  return 1;
}

static int o_split(lua_State *L)
{
  lg_tensor *t = SELF(L);
  if (t->ndim == 0) return luaL_error(L, "split: cannot split a 0-dim tensor");
  int d = lgl_optdim(L, 3, t->ndim, 0);
  if (lua_type(L, 2) == LUA_TTABLE) {      /* explicit sizes, summing to the dim's size */
    int n = (int)lua_rawlen(L, 2);
    int64_t *sizes = lua_newuserdatauv(L, sizeof *sizes * (n ? n : 1), 0), total = 0;
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);
      int isint;
      lua_Integer s = lua_tointegerx(L, -1, &isint);
      if (!isint || s < 0) return luaL_argerror(L, 2, "sizes must be non-negative integers");
      if (s > t->shape[d])                /* also keeps the running total from overflowing */
        return luaL_error(L, "split: size %I (piece %d) exceeds size %I of dim %d", s, i + 1,
                          (lua_Integer)t->shape[d], d + 1);
      sizes[i] = s;
      total += s;
      if (total > t->shape[d])            /* stop before the sum could overflow */
        return luaL_error(L, "split: sizes sum to more than size %I of dim %d",
                          (lua_Integer)t->shape[d], d + 1);
      lua_pop(L, 1);
    }
    if (total != t->shape[d])
      return luaL_error(L, "split: sizes sum to %I but dim %d has size %I", (lua_Integer)total,
                        d + 1, (lua_Integer)t->shape[d]);
    return push_pieces(L, t, d, 0, sizes, n);
  }
  lua_Integer size = luaL_checkinteger(L, 2);
  luaL_argcheck(L, size >= 1, 2, "split size must be >= 1");
  return push_pieces(L, t, d, size, NULL, 0);
}

static int o_chunk(lua_State *L)
{
  lg_tensor *t = SELF(L);
  if (t->ndim == 0) return luaL_error(L, "chunk: cannot split a 0-dim tensor");
  lua_Integer k = luaL_checkinteger(L, 2);
  luaL_argcheck(L, k >= 1, 2, "number of chunks must be >= 1");
  int d = lgl_optdim(L, 3, t->ndim, 0);
  int64_t n = t->shape[d], piece = n / k + (n % k != 0);   /* ceil, without n + k overflowing */
  return push_pieces(L, t, d, piece > 0 ? piece : 1, NULL, 0);
}

/* index_select(dim, idx): idx a 1-D tensor or a table of 1-based indices. */
static int o_index_select(lua_State *L)
{
  lg_tensor *t = SELF(L);
  int d = lgl_checkdim(L, 2, t->ndim);
  int64_t size = t->shape[d], n;
  float *v;
  lg_tensor *idx = lgl_test(L, 3);
  if (idx) {
    if (idx->ndim > 1) return luaL_argerror(L, 3, "index must be a 1-D tensor");
    n = lg_numel(idx);
    v = lua_newuserdatauv(L, sizeof(float) * (n ? n : 1), 0);
    lg_read(idx, v);
  } else {
    luaL_checktype(L, 3, LUA_TTABLE);
    n = (int64_t)lua_rawlen(L, 3);
    v = lua_newuserdatauv(L, sizeof(float) * (n ? n : 1), 0);
    for (int64_t i = 0; i < n; i++) {
      lua_rawgeti(L, 3, i + 1);
      v[i] = (float)lua_tonumber(L, -1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        return luaL_argerror(L, 3, lua_pushfstring(L, "index %I is a %s, not a number",
                                                   (lua_Integer)(i + 1), lgl_what(L, -1)));
      lua_pop(L, 1);
    }
  }
  for (int64_t i = 0; i < n; i++) {
    if (v[i] != floorf(v[i]) || v[i] < 1 || v[i] > size) {
      char num[32];
      snprintf(num, sizeof num, "%g", (double)v[i]);
      return luaL_error(L, "index_select: index %s (entry %I) out of range for dim %d of size %I "
                        "(indices are 1-based)", num, (lua_Integer)(i + 1), d + 1,
                        (lua_Integer)size);
    }
    v[i] -= 1;
  }
  lg_tensor *i0 = lg_from_data(1, &n, v);
  if (!i0) return lgl_error(L);
  lg_tensor *r = lg_index_select(t, d, i0);
  lg_release(i0);
  return lgl_push(L, r);
}

/* ---- pointwise ------------------------------------------------------------------- */
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW };

static lg_tensor *tensor_scalar(int op, lg_tensor *t, float s, int scalar_first)
{
  lg_tensor *tmp, *r;
  switch (op) {
  case B_ADD: return lg_add_scalar(t, s);
  case B_SUB:
    if (!scalar_first) return lg_add_scalar(t, -s);
    if (!(tmp = lg_neg(t))) return NULL;           /* s - t = (-t) + s */
    r = lg_add_scalar(tmp, s);
    lg_release(tmp);
    return r;
  case B_MUL: return lg_mul_scalar(t, s);
  case B_DIV:
    if (!scalar_first) return lg_mul_scalar(t, 1.0f / s);
    if (!(tmp = lg_reciprocal(t))) return NULL;    /* s / t = s * (1/t) */
    if (s == 1.0f) return tmp;
    r = lg_mul_scalar(tmp, s);
    lg_release(tmp);
    return r;
  default:
    return scalar_first ? lg_rpow_scalar(s, t) : lg_pow_scalar(t, s);
  }
}

static int binop(lua_State *L, int op)
{
  int na = lua_type(L, 1) == LUA_TNUMBER, nb = lua_type(L, 2) == LUA_TNUMBER;
  if (na && nb) return luaL_argerror(L, 1, "tensor expected, got two numbers");
  if (!na && !lgl_test(L, 1)) { lgl_check(L, 1); }
  if (!nb && !luaL_testudata(L, 2, LGL_TENSOR)) luaL_typeerror(L, 2, "number or tensor");
  if (na) return lgl_push(L, tensor_scalar(op, lgl_check(L, 2), (float)lua_tonumber(L, 1), 1));
  lg_tensor *a = lgl_check(L, 1);
  if (nb) return lgl_push(L, tensor_scalar(op, a, (float)lua_tonumber(L, 2), 0));
  lg_tensor *b = lgl_check(L, 2);
  switch (op) {
  case B_ADD: return lgl_push(L, lg_add(a, b));
  case B_SUB: return lgl_push(L, lg_sub(a, b));
  case B_MUL: return lgl_push(L, lg_mul(a, b));
  case B_DIV: return lgl_push(L, lg_div(a, b));
  default: return lgl_push(L, lg_pow(a, b));
  }
}
static int o_add(lua_State *L) { return binop(L, B_ADD); }
static int o_sub(lua_State *L) { return binop(L, B_SUB); }
static int o_mul(lua_State *L) { return binop(L, B_MUL); }
static int o_div(lua_State *L) { return binop(L, B_DIV); }
static int o_pow(lua_State *L) { return binop(L, B_POW); }
static int o_unm(lua_State *L) { return lgl_push(L, lg_neg(SELF(L))); }

/* maximum/minimum/where: numbers become 0-dim tensors that broadcast. */
static int two_vals(lua_State *L, lg_tensor **a, lg_tensor **b)
{
  if (lua_type(L, 1) == LUA_TNUMBER && lua_type(L, 2) == LUA_TNUMBER)
    return luaL_argerror(L, 1, "tensor expected, got two numbers");
  *a = lgl_checkval(L, 1);
  *b = lgl_checkval(L, 2);
  return 0;
}
/* a and b start NULL only to quiet -Wmaybe-uninitialized: two_vals sets or raises */
static int o_maximum(lua_State *L)
{
  lg_tensor *a = NULL, *b = NULL;
  two_vals(L, &a, &b);
  return lgl_push(L, lg_maximum(a, b));
}
static int o_minimum(lua_State *L)
{
  lg_tensor *a = NULL, *b = NULL;
  two_vals(L, &a, &b);
  return lgl_push(L, lg_minimum(a, b));
}

static int o_where(lua_State *L)
{
  lg_tensor *c = lgl_check(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER && lua_type(L, 3) == LUA_TNUMBER) {
    lg_tensor *a = lg_full(c->ndim, c->shape, (float)lua_tonumber(L, 2));
    if (!a) return lgl_error(L);
    lgl_push(L, a);
    lua_replace(L, 2);
  }
  lg_tensor *a = lgl_checkval(L, 2), *b = lgl_checkval(L, 3);
  return lgl_push(L, lg_where(c, a, b));
}

static int o_neg(lua_State *L) { return lgl_push(L, lg_neg(SELF(L))); }
static int o_sign(lua_State *L) { return lgl_push(L, lg_sign(SELF(L))); }
/* o_exp, o_softplus, ...: one per LG_UNARY row of runtime/lg_ops.def */
#define LG_OP(ID, name)
#define LG_UNARY(ID, name, saves, forward, fused, formula) \
  static int o_##name(lua_State *L) { return lgl_push(L, lg_##name(SELF(L))); }
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) \
  static int o_##name(lua_State *L) { return lgl_push(L, lg_##name(SELF(L), optf(L, 2, dflt))); }
#include "lg_ops.def"
#undef LG_OP
#undef LG_UNARY
#undef LG_UNARY_P

static void bounds(lua_State *L, int idx, float *lo, float *hi)
{
  *lo = lua_isnoneornil(L, idx) ? -INFINITY : checkf(L, idx);
  *hi = lua_isnoneornil(L, idx + 1) ? INFINITY : checkf(L, idx + 1);
  if (*lo > *hi) luaL_error(L, "clamp: lower bound %f is above upper bound %f", (lua_Number)*lo, (lua_Number)*hi);
}

static int o_clamp(lua_State *L)
{
  lg_tensor *t = SELF(L);
  float lo, hi;
  bounds(L, 2, &lo, &hi);
  return lgl_push(L, lg_clamp(t, lo, hi));
}

/* ---- comparisons (0/1 masks) --------------------------------------------------------- */
enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE };

static int compare(lua_State *L, int op)
{
  static const int mirror[] = {C_EQ, C_NE, C_GT, C_GE, C_LT, C_LE};
  if (lua_type(L, 1) == LUA_TNUMBER && lua_type(L, 2) != LUA_TNUMBER) {  /* 2 < t == t > 2 */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_replace(L, 1);
    lua_replace(L, 2);
    op = mirror[op];
  }
  lg_tensor *a = lgl_check(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    float s = (float)lua_tonumber(L, 2);
    switch (op) {
    case C_EQ: return lgl_push(L, lg_eq_scalar(a, s));
    case C_LT: return lgl_push(L, lg_lt_scalar(a, s));
    case C_LE: return lgl_push(L, lg_le_scalar(a, s));
    case C_GT: return lgl_push(L, lg_gt_scalar(a, s));
    case C_GE: return lgl_push(L, lg_ge_scalar(a, s));
    default: break;                                   /* ne: through a 0-dim tensor */
    }
  }
  lg_tensor *b = lgl_checkval(L, 2);
  switch (op) {
  case C_EQ: return lgl_push(L, lg_eq(a, b));
  case C_NE: return lgl_push(L, lg_ne(a, b));
  case C_LT: return lgl_push(L, lg_lt(a, b));
  case C_LE: return lgl_push(L, lg_le(a, b));
  case C_GT: return lgl_push(L, lg_gt(a, b));
  default: return lgl_push(L, lg_ge(a, b));
  }
}
static int o_eq(lua_State *L) { return compare(L, C_EQ); }
static int o_ne(lua_State *L) { return compare(L, C_NE); }
static int o_lt(lua_State *L) { return compare(L, C_LT); }
static int o_le(lua_State *L) { return compare(L, C_LE); }
static int o_gt(lua_State *L) { return compare(L, C_GT); }
static int o_ge(lua_State *L) { return compare(L, C_GE); }

/* ---- reductions --------------------------------------------------------------------
 * Arguments after self: (dim_or_dims?, opts?) where dim_or_dims is an integer
 * or a list of dims, and opts is {keepdim=, correction=} or a keepdim boolean. */
typedef struct {
  int nd, dims[LG_MAXDIM];
  int single;                            /* one integer dim was given */
  int keepdim, correction;
} lgl_red;

static const char *const red_opts[] = {"keepdim", NULL};
static const char *const var_opts[] = {"keepdim", "correction", NULL};

static void parse_red(lua_State *L, lg_tensor *t, int idx, lgl_red *r, const char *const *opts)
{
  int seen[LG_MAXDIM] = {0};
  r->nd = 0;
  r->single = 0;
  r->keepdim = 0;
  r->correction = 1;
  int ty = lua_type(L, idx);
  if (ty == LUA_TNUMBER) {
    r->dims[r->nd++] = lgl_checkdim(L, idx, t->ndim);
    r->single = 1;
    idx++;
  } else if (ty == LUA_TTABLE && lua_rawlen(L, idx) > 0) {
    int n = (int)lua_rawlen(L, idx);
    if (n > t->ndim)
      luaL_argerror(L, idx, lua_pushfstring(L, "%d dims given for a tensor of %d dims", n, t->ndim));
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, idx, i + 1);
      int isint;
      lua_Integer d = lua_tointegerx(L, -1, &isint);
      if (!isint) luaL_argerror(L, idx, "dims must be integers");
      int d0 = lgl_todim(L, d, t->ndim, idx);
      if (seen[d0]++) luaL_argerror(L, idx, lua_pushfstring(L, "dim %d repeated", d0 + 1));
      r->dims[r->nd++] = d0;
      lua_pop(L, 1);
    }
    idx++;
  } else if (ty == LUA_TNIL) {
    idx++;
  }
  if (lua_type(L, idx) == LUA_TBOOLEAN) {
    r->keepdim = lua_toboolean(L, idx);
    return;
  }
  lgl_checkopts(L, idx, opts);
  r->keepdim = lgl_optbool(L, idx, "keepdim", 0);
  r->correction = (int)lgl_optint(L, idx, "correction", 1, 0, INT32_MAX);
}

#define REDUCE(name) static int o_##name(lua_State *L) { lg_tensor *t = SELF(L); lgl_red r; \
  parse_red(L, t, 2, &r, red_opts); return lgl_push(L, lg_##name(t, r.nd, r.dims, r.keepdim)); }
REDUCE(sum) REDUCE(mean) REDUCE(logsumexp) REDUCE(prod)
#undef REDUCE

static int o_var(lua_State *L)
{
  lg_tensor *t = SELF(L);
  lgl_red r;
  parse_red(L, t, 2, &r, var_opts);
  return lgl_push(L, lg_var(t, r.nd, r.dims, r.correction, r.keepdim));
}

static int o_std(lua_State *L)
{
  lg_tensor *t = SELF(L);
  lgl_red r;
  parse_red(L, t, 2, &r, var_opts);
  return lgl_push(L, lg_std(t, r.nd, r.dims, r.correction, r.keepdim));
}

/* 0-based argmax/argmin -> 1-based, pushed. */
static int push_index(lua_State *L, lg_tensor *t)
{
  if (!t) return lgl_error(L);
  lg_tensor *r = lg_add_scalar(t, 1.0f);
  lg_release(t);
  return lgl_push(L, r);
}

static int arg_ext(lua_State *L, lg_tensor *t, int d, int keepdim, int is_max)
{
  return push_index(L, is_max ? lg_argmax(t, d, keepdim) : lg_argmin(t, d, keepdim));
}

/* max/min: over everything (or a dims list) gives values; over one dim gives
 * values and 1-based indices, like torch.max(x, dim). */
static int extreme(lua_State *L, int is_max)
{
  lg_tensor *t = SELF(L);
  lgl_red r;
  parse_red(L, t, 2, &r, red_opts);
  lgl_push(L, is_max ? lg_amax(t, r.nd, r.dims, r.keepdim) : lg_amin(t, r.nd, r.dims, r.keepdim));
  if (!r.single) return 1;
  arg_ext(L, t, r.dims[0], r.keepdim, is_max);
  return 2;
}
static int o_max(lua_State *L) { return extreme(L, 1); }
static int o_min(lua_State *L) { return extreme(L, 0); }

static int argext(lua_State *L, int is_max)
{
  lg_tensor *t = SELF(L);
  lgl_red r;
  parse_red(L, t, 2, &r, red_opts);
  if (r.nd > 1 || (r.nd == 1 && !r.single))
    return luaL_argerror(L, 2, "argmax/argmin take one dim, not a list");
  if (r.nd == 1) return arg_ext(L, t, r.dims[0], r.keepdim, is_max);
  int64_t m1 = -1;                                   /* over all elements: flatten first */
  lg_tensor *flat = lg_reshape(t, 1, &m1);
  if (!flat) return lgl_error(L);
  lg_tensor *i = is_max ? lg_argmax(flat, 0, 0) : lg_argmin(flat, 0, 0);
  lg_release(flat);
  return push_index(L, i);
}
static int o_argmax(lua_State *L) { return argext(L, 1); }
static int o_argmin(lua_State *L) { return argext(L, 0); }

/* norm(p=2, dims?, opts?) */
static int o_norm(lua_State *L)
{
  lg_tensor *t = SELF(L);
  double p = 2;
  int idx = 2;
  if (lua_type(L, 2) == LUA_TNUMBER) { p = lua_tonumber(L, 2); idx = 3; }
  else if (lua_isnil(L, 2)) idx = 3;
  luaL_argcheck(L, p > 0, 2, "norm: p must be > 0");
  lgl_red r;
  parse_red(L, t, idx, &r, red_opts);
  return lgl_push(L, lg_norm(t, p, r.nd, r.dims, r.keepdim));
}

static int o_matmul(lua_State *L) { return lgl_push(L, lg_matmul(SELF(L), lgl_check(L, 2))); }

/* ---- in place: each returns self ------------------------------------------------------- */
static int done_(lua_State *L, int rc) { return rc ? lgl_error(L) : ret_self(L); }

static int o_fill_(lua_State *L) { lg_tensor *t = SELF(L); return done_(L, lg_fill_(t, checkf(L, 2))); }
static int o_zero_(lua_State *L) { return done_(L, lg_zero_(SELF(L))); }
static int o_copy_(lua_State *L) { lg_tensor *t = SELF(L); return done_(L, lg_copy_(t, lgl_check(L, 2))); }

static int o_add_(lua_State *L)            /* add_(other, alpha=1): t += alpha * other */
{
  lg_tensor *t = SELF(L);
  float alpha = optf(L, 3, 1.0f);
  if (lua_type(L, 2) == LUA_TNUMBER) return done_(L, lg_add_scalar_(t, alpha * checkf(L, 2)));
  lg_tensor *o = lgl_test(L, 2);
  if (!o) luaL_typeerror(L, 2, "number or tensor");
  return done_(L, lg_add_(t, o, alpha));
}

static int o_sub_(lua_State *L)
{
  lg_tensor *t = SELF(L);
  float alpha = optf(L, 3, 1.0f);
  if (lua_type(L, 2) == LUA_TNUMBER) return done_(L, lg_add_scalar_(t, -alpha * checkf(L, 2)));
  lg_tensor *o = lgl_test(L, 2);
  if (!o) luaL_typeerror(L, 2, "number or tensor");
  return done_(L, lg_add_(t, o, -alpha));
}

static int o_mul_(lua_State *L)
{
  lg_tensor *t = SELF(L);
  if (lua_type(L, 2) == LUA_TNUMBER) return done_(L, lg_mul_scalar_(t, checkf(L, 2)));
  lg_tensor *o = lgl_test(L, 2);
  if (!o) luaL_typeerror(L, 2, "number or tensor");
  return done_(L, lg_mul_(t, o));
}

static int o_clamp_(lua_State *L)
{
  lg_tensor *t = SELF(L);
  float lo, hi;
  bounds(L, 2, &lo, &hi);
  return done_(L, lg_clamp_(t, lo, hi));
}

static int o_normal_(lua_State *L)
{
  lg_tensor *t = SELF(L);
  float mean = optf(L, 2, 0.0f), std = optf(L, 3, 1.0f);
  luaL_argcheck(L, std >= 0, 3, "std must be >= 0");
  return done_(L, lg_normal_(NULL, t, mean, std));
}

static int o_uniform_(lua_State *L)
{
  lg_tensor *t = SELF(L);
  float a = optf(L, 2, 0.0f), b = optf(L, 3, 1.0f);
  luaL_argcheck(L, a <= b, 2, "uniform_: lower bound above upper bound");
  return done_(L, lg_uniform_(NULL, t, a, b));
}

/* ---- registration ---------------------------------------------------------------------- */
static const luaL_Reg lgl_ops_methods[] = {
  {"view", o_view}, {"reshape", o_reshape}, {"flatten", o_flatten}, {"squeeze", o_squeeze},
  {"unsqueeze", o_unsqueeze}, {"narrow", o_narrow}, {"select", o_select}, {"slice", o_slice},
  {"transpose", o_transpose}, {"t", o_t}, {"permute", o_permute}, {"expand", o_expand},
  {"contiguous", o_contiguous}, {"clone", o_clone}, {"split", o_split}, {"chunk", o_chunk},
  {"index_select", o_index_select},
  {"add", o_add}, {"sub", o_sub}, {"mul", o_mul}, {"div", o_div}, {"pow", o_pow},
  {"maximum", o_maximum}, {"minimum", o_minimum}, {"where", o_where},
  {"neg", o_neg}, {"sign", o_sign}, {"clamp", o_clamp},
#define LG_OP(ID, name)
#define LG_UNARY(ID, name, saves, forward, fused, formula) {#name, o_##name},
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) {#name, o_##name},
#include "lg_ops.def"
#undef LG_OP
#undef LG_UNARY
#undef LG_UNARY_P
  {"eq", o_eq}, {"ne", o_ne}, {"lt", o_lt}, {"le", o_le}, {"gt", o_gt}, {"ge", o_ge},
  {"sum", o_sum}, {"mean", o_mean}, {"var", o_var}, {"std", o_std}, {"max", o_max},
  {"min", o_min}, {"argmax", o_argmax}, {"argmin", o_argmin}, {"logsumexp", o_logsumexp},
  {"norm", o_norm}, {"prod", o_prod}, {"matmul", o_matmul},
  {"fill_", o_fill_}, {"zero_", o_zero_}, {"copy_", o_copy_}, {"add_", o_add_},
  {"sub_", o_sub_}, {"mul_", o_mul_}, {"clamp_", o_clamp_}, {"normal_", o_normal_},
  {"uniform_", o_uniform_},
  {NULL, NULL},
};

static const luaL_Reg lgl_ops_fns[] = {   /* module only: they take a list, not self */
  {"cat", o_cat}, {"stack", o_stack},
  {NULL, NULL},
};

static const luaL_Reg lgl_ops_meta[] = {  /* '*' is elementwise; matmul is a named function */
  {"__add", o_add}, {"__sub", o_sub}, {"__mul", o_mul}, {"__div", o_div}, {"__pow", o_pow},
  {"__unm", o_unm},
  {NULL, NULL},
};

void lgl_open_ops(lua_State *L)
{
  lgl_setfuncs(L, lgl_ops_methods, 1);
  lgl_setfuncs(L, lgl_ops_fns, 0);
  luaL_getmetatable(L, LGL_TENSOR);
  luaL_setfuncs(L, lgl_ops_meta, 0);
  lua_pop(L, 1);
}
