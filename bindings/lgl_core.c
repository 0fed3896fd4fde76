/* lgl_core.c: the module entry point (luaopen_luagan_core) and the small
 * argument helpers of lgl.h that are not about the tensor userdata:
 * dims, shapes, options tables, registration. */
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
      luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s' (expected: %s)",
                                            key, lua_tostring(L, -1)));
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
  lgl_setfuncs(L, core_fns, 0);
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "version");
  return 1;
}
