/* lgl_create.c: tensor creation (from nested tables, zeros/ones/..., random),
 * the generator state, threads and memory counters.
 * Integer results that are indices (randperm, multinomial) are 1-based in Lua. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "lgl.h"

static const char *const create_opts[] = {"requires_grad", NULL};

/* Push t (stealing it) and apply the creation options table at optidx. */
static int push_created(lua_State *L, lg_tensor *t, int optidx)
{
  lgl_push(L, t);                        /* first, so an options error cannot leak t */
  if (lgl_optbool(L, optidx, "requires_grad", 0) && lg_requires_grad_(t, 1)) return lgl_error(L);
  return 1;
}

/* ---- from Lua values --------------------------------------------------------- */
static void path_str(char *buf, size_t n, int depth, const int64_t *pos)
{
  size_t k = 0;
  buf[0] = 0;
  for (int d = 0; d < depth && k < n; d++)
    k += snprintf(buf + k, n - k, "[%" PRId64 "]", pos[d] + 1);
}

static void fill_rec(lua_State *L, int tbl, int d, int ndim, const int64_t *shape,
                     float *data, int64_t *k, int64_t *pos)
{
  char where[160];
  lua_Integer len = (lua_Integer)lua_rawlen(L, tbl);
  if (len != shape[d]) {
    path_str(where, sizeof where, d, pos);
    luaL_error(L, "tensor: ragged nested table: %s%s has %I elements, expected %I",
               d ? "row " : "the table", where, len, (lua_Integer)shape[d]);
  }
  for (int64_t i = 0; i < shape[d]; i++) {
    pos[d] = i;
    lua_rawgeti(L, tbl, i + 1);
    if (d == ndim - 1) {
      if (lua_type(L, -1) != LUA_TNUMBER) {
        path_str(where, sizeof where, d + 1, pos);
        luaL_error(L, "tensor: expected a number at %s, got %s%s", where, luaL_typename(L, -1),
                   lgl_test(L, -1) ? " (use lg.stack or lg.cat to join tensors)" : "");
      }
      data[(*k)++] = (float)lua_tonumber(L, -1);
    } else {
      if (lua_type(L, -1) != LUA_TTABLE || lgl_test(L, -1)) {
        path_str(where, sizeof where, d + 1, pos);
        luaL_error(L, "tensor: ragged nested table: expected a table at %s, got %s", where,
                   luaL_typename(L, -1));
      }
      fill_rec(L, lua_gettop(L), d + 1, ndim, shape, data, k, pos);
    }
    lua_pop(L, 1);
  }
}

static int c_tensor(lua_State *L)
{
  lgl_checkopts(L, 2, create_opts);
  if (lua_type(L, 1) == LUA_TNUMBER) return push_created(L, lg_scalar((float)lua_tonumber(L, 1)), 2);
  lg_tensor *src = lgl_test(L, 1);
  if (src) {                             /* a copy cut from src's graph */
    int prev = lg_set_grad_enabled(0);
    lg_tensor *c = lg_clone(src);
    lg_set_grad_enabled(prev);
    return push_created(L, c, 2);
  }
  if (lua_type(L, 1) != LUA_TTABLE) return luaL_typeerror(L, 1, "number, nested table or tensor");
  /* The shape comes from the first element of each level; fill_rec checks the rest. */
  int64_t shape[LG_MAXDIM], pos[LG_MAXDIM];
  int ndim = 0;
  lua_pushvalue(L, 1);
  while (lua_type(L, -1) == LUA_TTABLE && !lgl_test(L, -1)) {
    if (ndim == LG_MAXDIM)
      return luaL_error(L, "tensor: nested table deeper than %d levels", LG_MAXDIM);
    shape[ndim++] = (int64_t)lua_rawlen(L, -1);
    if (shape[ndim - 1] == 0) break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  lg_tensor *t = lg_empty(ndim, shape);
  if (!t) return lgl_error(L);
  lgl_push(L, t);                        /* GC-owned before filling can fail */
  int64_t k = 0;
  luaL_checkstack(L, ndim + 4, "tensor: nested table too deep");
  if (lg_numel(t) > 0) fill_rec(L, 1, 0, ndim, shape, lg_data(t), &k, pos);
  if (lgl_optbool(L, 2, "requires_grad", 0) && lg_requires_grad_(t, 1)) return lgl_error(L);
  return 1;
}

/* ---- shapes given as varargs or a table ---------------------------------------- */
typedef lg_tensor *(*shape_fn)(int ndim, const int64_t *shape);

static int shaped(lua_State *L, shape_fn f)
{
  int64_t shape[LG_MAXDIM];
  int next;
  int ndim = lgl_shape(L, 1, shape, &next, 0);
  if (!lua_isnoneornil(L, next + 1) && lua_type(L, next + 1) != LUA_TNONE)
    return luaL_argerror(L, next + 1, "unexpected argument after the options table");
  lgl_checkopts(L, next, create_opts);
  return push_created(L, f(ndim, shape), next);
}

static lg_tensor *mk_rand(int ndim, const int64_t *shape) { return lg_rand(NULL, ndim, shape); }
static lg_tensor *mk_randn(int ndim, const int64_t *shape) { return lg_randn(NULL, ndim, shape); }

static int c_zeros(lua_State *L) { return shaped(L, lg_zeros); }
static int c_ones(lua_State *L) { return shaped(L, lg_ones); }
static int c_empty(lua_State *L) { return shaped(L, lg_empty); }
static int c_rand(lua_State *L) { return shaped(L, mk_rand); }
static int c_randn(lua_State *L) { return shaped(L, mk_randn); }

static int c_full(lua_State *L)
{
  int64_t shape[LG_MAXDIM];
  luaL_checktype(L, 1, LUA_TTABLE);      /* full({2, 3}, v): a table keeps v apart */
  int ndim = lgl_shape(L, 1, shape, NULL, 0);
  float v = (float)luaL_checknumber(L, 2);
  lgl_checkopts(L, 3, create_opts);
  return push_created(L, lg_full(ndim, shape, v), 3);
}

static int c_arange(lua_State *L)
{
  double a = 0, b, step = 1;
  int optidx;
  if (lua_type(L, 2) != LUA_TNUMBER) {   /* arange(n) = 0, 1, ..., n-1 */
    b = luaL_checknumber(L, 1);
    optidx = 2;
  } else {
    a = luaL_checknumber(L, 1);
    b = luaL_checknumber(L, 2);
    optidx = 3;
    if (lua_type(L, 3) == LUA_TNUMBER) { step = lua_tonumber(L, 3); optidx = 4; }
  }
  lgl_checkopts(L, optidx, create_opts);
  return push_created(L, lg_arange(a, b, step), optidx);
}

static int c_linspace(lua_State *L)
{
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3);
  lgl_checkopts(L, 4, create_opts);
  return push_created(L, lg_linspace(a, b, n), 4);
}

static int c_eye(lua_State *L)
{
  lua_Integer n = luaL_checkinteger(L, 1);
  int optidx = 2;
  lua_Integer m = n;
  if (lua_type(L, 2) == LUA_TNUMBER) { m = luaL_checkinteger(L, 2); optidx = 3; }
  lgl_checkopts(L, optidx, create_opts);
  return push_created(L, lg_eye(n, m), optidx);
}

static int c_randint(lua_State *L)
{
  int64_t shape[LG_MAXDIM];
  lua_Integer lo = luaL_checkinteger(L, 1), hi = luaL_checkinteger(L, 2);
  if (lua_isnoneornil(L, 3))
    return luaL_argerror(L, 3, "shape expected: randint(lo, hi, shape), values in [lo, hi)");
  int next;
  int ndim = lgl_shape(L, 3, shape, &next, 0);
  lgl_checkopts(L, next, create_opts);
  return push_created(L, lg_randint(NULL, lo, hi, ndim, shape), next);
}

static int c_bernoulli(lua_State *L)
{
  if (lua_type(L, 1) == LUA_TNUMBER) {   /* bernoulli(p, shape...) */
    int64_t shape[LG_MAXDIM];
    float p = (float)lua_tonumber(L, 1);
    int ndim = lgl_shape(L, 2, shape, NULL, 0);
    lg_tensor *pt = lg_full(ndim, shape, p);
    if (!pt) return lgl_error(L);
    lg_tensor *r = lg_bernoulli(NULL, pt);
    lg_release(pt);
    return lgl_push(L, r);
  }
  return lgl_push(L, lg_bernoulli(NULL, lgl_check(L, 1)));
}

/* 0-based runtime indices -> 1-based Lua indices. */
static int push_plus1(lua_State *L, lg_tensor *t)
{
  if (!t) return lgl_error(L);
  lg_tensor *r = lg_add_scalar(t, 1.0f);
  lg_release(t);
  return lgl_push(L, r);
}

static int c_randperm(lua_State *L)
{
  return push_plus1(L, lg_randperm(NULL, luaL_checkinteger(L, 1)));
}

static int c_multinomial(lua_State *L)
{
  lg_tensor *p = lgl_check(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  int repl = lua_toboolean(L, 3);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TBOOLEAN);
  return push_plus1(L, lg_multinomial(NULL, p, n, repl));
}

/* ---- *_like ------------------------------------------------------------------ */
static int like(lua_State *L, int kind)
{
  lg_tensor *t = lgl_check(L, 1);
  int optidx = kind == 2 ? 3 : 2;
  float v = kind == 2 ? (float)luaL_checknumber(L, 2) : 0.0f;
  lgl_checkopts(L, optidx, create_opts);
  lg_tensor *r = NULL;
  switch (kind) {
  case 0: r = lg_zeros_like(t); break;
  case 1: r = lg_ones_like(t); break;
  case 2: r = lg_full_like(t, v); break;
  case 3: r = lg_rand(NULL, t->ndim, t->shape); break;
  case 4: r = lg_randn(NULL, t->ndim, t->shape); break;
  case 5: r = lg_empty_like(t); break;
  }
  return push_created(L, r, optidx);
}

static int c_zeros_like(lua_State *L) { return like(L, 0); }
static int c_ones_like(lua_State *L) { return like(L, 1); }
static int c_full_like(lua_State *L) { return like(L, 2); }
static int c_rand_like(lua_State *L) { return like(L, 3); }
static int c_randn_like(lua_State *L) { return like(L, 4); }
static int c_empty_like(lua_State *L) { return like(L, 5); }

/* ---- generator ------------------------------------------------------------------ */
static int c_manual_seed(lua_State *L)
{
  lg_manual_seed((uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

/* The state as 4 x 16 hex digits: portable text, safe to store anywhere. */
static int c_get_rng_state(lua_State *L)
{
  uint64_t w[LG_GEN_STATE_WORDS];
  char buf[LG_GEN_STATE_WORDS * 16 + 1];
  lg_gen_get_state(lg_default_gen(), w);
  for (int i = 0; i < LG_GEN_STATE_WORDS; i++)
    snprintf(buf + 16 * i, 17, "%016" PRIx64, w[i]);
  lua_pushstring(L, buf);
  return 1;
}

static int c_set_rng_state(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  uint64_t w[LG_GEN_STATE_WORDS] = {0};
  if (len != LG_GEN_STATE_WORDS * 16)
    return luaL_argerror(L, 1, "not a generator state (expected the string get_rng_state returns)");
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0) return luaL_argerror(L, 1, "not a generator state (bad hex digit)");
    w[i / 16] = w[i / 16] << 4 | (uint64_t)v;
  }
  lg_gen_set_state(lg_default_gen(), w);
  return 0;
}

/* ---- threads and memory ------------------------------------------------------------ */
static int c_set_num_threads(lua_State *L)
{
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 4096, 1, "number of threads must be in 1..4096");
  lg_set_num_threads((int)n);
  return 0;
}

static int c_get_num_threads(lua_State *L)
{
  lua_pushinteger(L, lg_get_num_threads());
  return 1;
}

static int c_mem_live_bytes(lua_State *L) { lua_pushinteger(L, (lua_Integer)lg_mem_live_bytes()); return 1; }
static int c_mem_cached_bytes(lua_State *L) { lua_pushinteger(L, (lua_Integer)lg_mem_cached_bytes()); return 1; }
static int c_mem_sys_allocs(lua_State *L) { lua_pushinteger(L, (lua_Integer)lg_mem_sys_allocs()); return 1; }
static int c_mem_trim(lua_State *L) { lg_mem_trim(); return 0; }
static int c_mem_peak_live_bytes(lua_State *L) { lua_pushinteger(L, (lua_Integer)lg_mem_peak_live_bytes()); return 1; }
static int c_mem_peak_held_bytes(lua_State *L) { lua_pushinteger(L, (lua_Integer)lg_mem_peak_held_bytes()); return 1; }
static int c_mem_reset_peaks(lua_State *L) { lg_mem_reset_peaks(); return 0; }
static int c_mem_step_mark(lua_State *L) { lg_mem_step_mark(); return 0; }
static int c_mem_hold_limit(lua_State *L) { lua_pushinteger(L, (lua_Integer)lg_mem_hold_limit()); return 1; }

static const luaL_Reg lgl_create_fns[] = {
  {"tensor", c_tensor},
  {"zeros", c_zeros}, {"ones", c_ones}, {"empty", c_empty},
  {"rand", c_rand}, {"randn", c_randn}, {"full", c_full},
  {"arange", c_arange}, {"linspace", c_linspace}, {"eye", c_eye},
  {"randint", c_randint}, {"bernoulli", c_bernoulli}, {"randperm", c_randperm},
  {"multinomial", c_multinomial},
  {"zeros_like", c_zeros_like}, {"ones_like", c_ones_like}, {"full_like", c_full_like},
  {"rand_like", c_rand_like}, {"randn_like", c_randn_like}, {"empty_like", c_empty_like},
  {"manual_seed", c_manual_seed}, {"get_rng_state", c_get_rng_state},
  {"set_rng_state", c_set_rng_state},
  {"set_num_threads", c_set_num_threads}, {"get_num_threads", c_get_num_threads},
  {"mem_live_bytes", c_mem_live_bytes}, {"mem_cached_bytes", c_mem_cached_bytes},
  {"mem_sys_allocs", c_mem_sys_allocs}, {"mem_trim", c_mem_trim},
  {"mem_peak_live_bytes", c_mem_peak_live_bytes}, {"mem_peak_held_bytes", c_mem_peak_held_bytes},
  {"mem_reset_peaks", c_mem_reset_peaks},
  {"mem_step_mark", c_mem_step_mark}, {"mem_hold_limit", c_mem_hold_limit},
  {NULL, NULL},
};

/* Methods too: t:bernoulli(), t:multinomial(n), t:zeros_like() read naturally. */
static const luaL_Reg lgl_create_methods[] = {
  {"bernoulli", c_bernoulli}, {"multinomial", c_multinomial},
  {NULL, NULL},
};

void lgl_open_create(lua_State *L)
{
  lgl_setfuncs(L, lgl_create_fns, 0);
  lgl_setfuncs(L, lgl_create_methods, 1);
}
