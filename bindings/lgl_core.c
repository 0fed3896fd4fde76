/* lgl_core.c: the module entry point (luaopen_luagan_core) and the small
 * argument helpers of lgl.h that are not about the tensor userdata:
 * dims, shapes, options tables, registration. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include "lgl.h"

/* ---- dims ------------------------------------------------------------------ */
int lgl_todim(lua_State *L, lua_Integer d, int ndim, int arg)
{
  /* 1..ndim counts from the front, -1..-ndim from the back; 0 is never a dim. */
  if (d >= 1 && d <= ndim) return (int)(d - 1);
  if (d <= -1 && d >= -ndim) return (int)(d + ndim);
  if (ndim == 0)
    return luaL_argerror(L, arg, lua_pushfstring(L, "dim %I out of range for a 0-dim tensor", d));
  return luaL_argerror(L, arg, lua_pushfstring(L,
      "dim %I out of range for a tensor of %d dims (expected 1..%d or -%d..-1)",
      d, ndim, ndim, ndim));
}

int lgl_checkdim(lua_State *L, int idx, int ndim)
{
  return lgl_todim(L, luaL_checkinteger(L, idx), ndim, idx);
}

int lgl_optdim(lua_State *L, int idx, int ndim, int def0)
{
  return lua_isnoneornil(L, idx) ? def0 : lgl_checkdim(L, idx, ndim);
}

/* ---- shapes ------------------------------------------------------------- */
static int64_t lgl_size_at(lua_State *L, int arg, int allow_neg1)
{
  /* arg: stack index of one size (a number) */
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint) {
    if (lua_type(L, -1) == LUA_TNUMBER)
      luaL_argerror(L, arg, lua_pushfstring(L, "size %s is not an integer",
                                            lua_tostring(L, -1)));
    luaL_argerror(L, arg, lua_pushfstring(L, "size expected to be an integer, got %s",
                                          luaL_typename(L, -1)));
  }
  if (v < 0 && !(allow_neg1 && v == -1))
    luaL_argerror(L, arg, lua_pushfstring(L, "negative size %I", v));
  return (int64_t)v;
}

int lgl_shape(lua_State *L, int idx, int64_t shape[LG_MAXDIM], int *next, int allow_neg1)
{
  int n = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TTABLE && !lgl_test(L, idx)) {
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    if (len > LG_MAXDIM)
      luaL_argerror(L, idx, lua_pushfstring(L, "%I dims given, at most %d supported",
                                            len, LG_MAXDIM));
    for (lua_Integer i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, i);
      shape[n++] = lgl_size_at(L, idx, allow_neg1);
      lua_pop(L, 1);
    }
    if (next) *next = idx + 1;
    return n;
  }
  int top = lua_gettop(L), i = idx;
  for (; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
    if (n == LG_MAXDIM)
      luaL_argerror(L, i, lua_pushfstring(L, "more than %d dims given", LG_MAXDIM));
    lua_pushvalue(L, i);
    shape[n++] = lgl_size_at(L, i, allow_neg1);
    lua_pop(L, 1);
  }
  if (next) *next = i;
  return n;
}

/* ---- integers ------------------------------------------------------------- */
/* A bound as messages print it: powers of two from 2^10 up as "2^k". */
static const char *bound_str(lua_State *L, lua_Integer v)
{
  if (v >= 1024 && (v & (v - 1)) == 0) {
    int k = 0;
    while (((lua_Integer)1 << k) != v) k++;
    return lua_pushfstring(L, "2^%d", k);
  }
  return lua_pushfstring(L, "%I", v);
}

lua_Integer lgl_checkint_at(lua_State *L, int vidx, int arg, const char *name, lua_Integer lo,
                            lua_Integer hi)
{
  int isint = 0;
  vidx = lua_absindex(L, vidx);
  lua_Integer v = lua_type(L, vidx) == LUA_TNUMBER ? lua_tointegerx(L, vidx, &isint) : 0;
  if (isint && v >= lo && v <= hi) return v;
  /* the value as the user wrote it: 4294967297 (not "4294967297.0" for 2^32 + 1),
   * 2.5, nil, string */
  char num[64];
  if (lua_isinteger(L, vidx)) snprintf(num, sizeof num, LUA_INTEGER_FMT, lua_tointeger(L, vidx));
  else if (lua_type(L, vidx) == LUA_TNUMBER) snprintf(num, sizeof num, "%.14g", lua_tonumber(L, vidx));
  const char *got = lua_type(L, vidx) == LUA_TNUMBER ? num : luaL_typename(L, vidx);
  const char *l = bound_str(L, lo), *h = bound_str(L, hi);
  return (lua_Integer)luaL_argerror(L, arg, lua_pushfstring(L,
      "%s must be an integer in [%s, %s], got %s", name, l, h, got));
}

lua_Integer lgl_checkint(lua_State *L, int idx, const char *name, lua_Integer lo, lua_Integer hi)
{
  return lgl_checkint_at(L, idx, idx, name, lo, hi);
}

lua_Integer lgl_optint(lua_State *L, int idx, const char *key, lua_Integer def, lua_Integer lo,
                       lua_Integer hi)
{
  if (lua_type(L, idx) != LUA_TTABLE) return def;
  idx = lua_absindex(L, idx);
  lua_getfield(L, idx, key);
  lua_Integer v = lua_isnil(L, -1) ? def : lgl_checkint_at(L, -1, idx, key, lo, hi);
  lua_pop(L, 1);
  return v;
}

/* Levenshtein distance of two short strings (for "did you mean"); longer
 * than 63 bytes counts as far. */
static int edit_distance(const char *a, const char *b)
{
  size_t na = strlen(a), nb = strlen(b);
  if (na > 63 || nb > 63) return 64;
  int prev[64], cur[64];
  for (size_t j = 0; j <= nb; j++) prev[j] = (int)j;
  for (size_t i = 1; i <= na; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= nb; j++) {
      int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      int del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    memcpy(prev, cur, sizeof(int) * (nb + 1));
  }
  return prev[nb];
}

/* The allowed name closest to key (edit distance <= 2 and below key's
 * length, or one a prefix of the other), or NULL: the same rule as
 * luagan.util.suggest. */
static const char *suggest(const char *key, const char *const *allowed)
{
  const char *best = NULL;
  int bd = 1 << 30;
  size_t nk = strlen(key);
  for (const char *const *a = allowed; *a; a++) {
    int d = edit_distance(key, *a);
    size_t na = strlen(*a);
    int prefix = nk >= 2 && (strncmp(key, *a, nk < na ? nk : na) == 0);
    if (((d <= 2 && (size_t)d < nk) || prefix) && d < bd) { best = *a; bd = d; }
  }
  return best;
}

/* ---- options tables ----------------------------------------------------- */
void lgl_checkopts(lua_State *L, int idx, const char *const *allowed)
{
  idx = lua_absindex(L, idx);
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE || lgl_test(L, idx))
    luaL_typeerror(L, idx, "options table");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (const char *const *a = allowed; *a && !ok; a++)
        ok = strcmp(lua_tostring(L, -1), *a) == 0;
    if (!ok) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (const char *const *a = allowed; *a; a++) {
        if (a != allowed) luaL_addstring(&b, ", ");
        luaL_addstring(&b, *a);
      }
      if (!*allowed) luaL_addstring(&b, "none");
      luaL_pushresult(&b);
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                        : luaL_typename(L, -2);
      const char *near = lua_type(L, -2) == LUA_TSTRING ? suggest(key, allowed) : NULL;
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' (%s%s%sexpected: %s)",
                                            key, near ? "did you mean '" : "", near ? near : "",
                                            near ? "'?; " : "", lua_tostring(L, -1)));
    }
  }
}

int lgl_optbool(lua_State *L, int idx, const char *key, int def)
{
  if (lua_type(L, idx) != LUA_TTABLE) return def;
  lua_getfield(L, idx, key);
  int t = lua_type(L, -1), v = def;
  if (t == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a boolean, got %s",
                                          key, luaL_typename(L, -1)));
  lua_pop(L, 1);
  return v;
}

lua_Number lgl_optnum(lua_State *L, int idx, const char *key, lua_Number def)
{
  if (lua_type(L, idx) != LUA_TTABLE) return def;
  lua_getfield(L, idx, key);
  lua_Number v = def;
  if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a number, got %s",
                                          key, luaL_typename(L, -1)));
  lua_pop(L, 1);
  return v;
}

/* ---- registration --------------------------------------------------------- */
void lgl_setfuncs(lua_State *L, const luaL_Reg *fns, int as_methods)
{
  luaL_setfuncs(L, fns, 0);
  if (!as_methods) return;
  luaL_getmetatable(L, LGL_TENSOR);
  lua_getfield(L, -1, "methods");
  for (const luaL_Reg *f = fns; f->name; f++) {
    lua_getfield(L, -3, f->name);          /* the same function object as lg.<name> */
    lua_setfield(L, -2, f->name);
  }
  lua_pop(L, 2);
}

/* ---- timing and process memory (benchmarks, progress bars) ---------------------- */
/* lg.clock() -> seconds of a monotonic wall clock (os.clock is CPU time
 * summed over threads, which overstates a threaded step). */
static int c_clock(lua_State *L)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* lg.peak_rss() -> the process's peak resident set size in bytes (ru_maxrss). */
static int c_peak_rss(lua_State *L)
{
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru)) return luaL_error(L, "peak_rss: getrusage failed");
  lua_pushinteger(L, (lua_Integer)ru.ru_maxrss * 1024);
  return 1;
}

/* lg.blas_corename() -> the OpenBLAS kernels in use, e.g. "SkylakeX". */
static int c_blas_corename(lua_State *L)
{
  lua_pushstring(L, lg_blas_corename());
  return 1;
}

/* ---- the module ------------------------------------------------------------- */
int luaopen_luagan_core(lua_State *L)
{
  static const luaL_Reg core_fns[] = {{"clock", c_clock}, {"peak_rss", c_peak_rss},
                                       {"blas_corename", c_blas_corename}, {NULL, NULL}};
  lua_newtable(L);
  lgl_open_tensor(L);     /* first: the others register methods in its metatable */
  lgl_open_create(L);
  lgl_open_ops(L);
  lgl_open_autograd(L);
  lgl_open_nn(L);
  lgl_open_optim(L);
  lgl_open_io(L);
  lgl_open_linalg(L);
  lgl_open_fs(L);
  lgl_open_sys(L);
  lgl_open_index(L);
  lgl_open_bytes(L);
  lgl_setfuncs(L, core_fns, 0);
  lua_pushliteral(L, LUAGAN_VERSION);   /* project(VERSION) in CMakeLists.txt */
  lua_setfield(L, -2, "version");
  return 1;
}
