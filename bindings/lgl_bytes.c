/* lgl_bytes.c: byte data sets for Lua (runtime/lg_bytes.h).
 *
 *   local b, rows = core.load_idx_bytes(path, {limit = n})  -- a ubyte IDX file as
 *                                 bytes, its first n rows; rows: the file's row count
 *   b:shape()                     -> {rows, ...}
 *   b:gather(rows, lut)           -> float tensor (#rows, ...): rows is a tensor or a
 *                                    list of 1-based row numbers, lut a (256) tensor
 *   b:range(start, n, lut)        -> float tensor (n, ...) of rows start..start+n-1
 *
 * luagan.data wraps this in its ByteImages (the scaling table, the tensor-like
 * methods); nothing else should need it. */
#include <math.h>
#include <string.h>
#include "lgl.h"
#include "lg_bytes.h"
#include "lg_idx.h"

#define LGL_BYTES "luagan.Bytes"
#define LGL_GATHER_CHUNK 256   /* row numbers converted at a time: no heap scratch */

static lg_bytes *check_bytes(lua_State *L, int idx)
{
  lg_bytes **p = luaL_checkudata(L, idx, LGL_BYTES);
  if (!*p) luaL_argerror(L, idx, "byte data set already freed");
  return *p;
}

static int bytes_gc(lua_State *L)
{
  lg_bytes **p = luaL_checkudata(L, 1, LGL_BYTES);
  lg_bytes_free(*p);
  *p = NULL;
  return 0;
}

static const char *const load_opts[] = {"limit", NULL};

/* load_idx_bytes(path, {limit = n}) */
static int bytes_load(lua_State *L)
{
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (strlen(path) != len) return luaL_argerror(L, 1, "the file name contains a NUL byte");
  lgl_checkopts(L, 2, load_opts);
  lua_Integer limit = -1;
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_getfield(L, 2, "limit");
    if (!lua_isnil(L, -1)) {
      int ok;
      limit = lua_tointegerx(L, -1, &ok);
      if (!ok || limit < 0)
        return luaL_argerror(L, 2, "option 'limit' must be an integer >= 0");
    }
    lua_pop(L, 1);
  }
  lg_bytes **p = lua_newuserdatauv(L, sizeof *p, 0);
  *p = NULL;
  luaL_setmetatable(L, LGL_BYTES);
  int ndim;
  int64_t shape[LG_MAXDIM];
  int64_t in_file;
  unsigned char *data;
  if (lg_idx_read_bytes(path, limit, &ndim, shape, &in_file, &data) != 0) return lgl_error(L);
  *p = lg_bytes_wrap(data, ndim, shape);
  if (!*p) return lgl_error(L);
  lua_pushinteger(L, (lua_Integer)in_file);
  return 2;
}

static int bytes_shape(lua_State *L)
{
  lg_bytes *b = check_bytes(L, 1);
  lua_createtable(L, b->ndim, 0);
  for (int d = 0; d < b->ndim; d++) {
    lua_pushinteger(L, (lua_Integer)b->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  return 1;
}

/* The (256) float table at idx (contiguous, as lg_data reads it). */
static const float *check_lut(lua_State *L, int idx)
{
  lg_tensor *t = lgl_check(L, idx);
  if (t->ndim != 1 || t->shape[0] != 256 || !lg_is_contiguous(t))
    luaL_argerror(L, idx, "expected a contiguous (256) tensor: the float of every byte value");
  return lg_data(t);
}

/* A 1-based row number from a Lua number -> 0-based, or an error naming it. */
static int64_t row_of(lua_State *L, double v, int64_t i, int64_t nrows)
{
  if (v != v || v != floor(v))
    luaL_error(L, "bytes: gather: row %f at position %I is not an integer", v, (lua_Integer)(i + 1));
  if (v < 1 || v > (double)nrows)   /* before the cast: a huge value must not overflow it */
    luaL_error(L, "bytes: gather: row %I at position %I is outside 1..%I",
               (lua_Integer)(v < -9e18 ? -9e18 : v > 9e18 ? 9e18 : v), (lua_Integer)(i + 1),
               (lua_Integer)nrows);
  return (int64_t)v - 1;
}

static int bytes_gather(lua_State *L)
{
  lg_bytes *b = check_bytes(L, 1);
  const float *lut = check_lut(L, 3);
  lg_tensor *idx = lgl_test(L, 2);
  int64_t n;
  if (idx) {
    if (idx->ndim != 1) return luaL_argerror(L, 2, "expected a 1-dim tensor of row numbers");
    n = idx->shape[0];
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int64_t)lua_rawlen(L, 2);
  }
  /* rows go through in chunks of a fixed-size stack buffer, so a batch costs
   * one tensor allocation (the result) and nothing else */
  int64_t rows[LGL_GATHER_CHUNK];
  lg_tensor *out = lg_bytes_batch(b, n);
  if (!out) return lgl_error(L);
  lgl_push(L, out);
  float *dst = lg_data(out);
  for (int64_t i0 = 0; i0 < n; i0 += LGL_GATHER_CHUNK) {
    int64_t m = n - i0 < LGL_GATHER_CHUNK ? n - i0 : LGL_GATHER_CHUNK;
    for (int64_t k = 0; k < m; k++) {
      double v;
      if (idx) {
        int64_t at = i0 + k;
        v = lg_get(idx, &at);
      } else {
        lua_rawgeti(L, 2, (lua_Integer)(i0 + k + 1));
        v = lua_tonumber(L, -1);
        lua_pop(L, 1);
      }
      rows[k] = row_of(L, v, i0 + k, b->shape[0]);
    }
    if (lg_bytes_gather(b, rows, m, lut, dst + i0 * b->row_bytes) != 0) return lgl_error(L);
  }
  return 1;
}

static int bytes_range(lua_State *L)
{
  lg_bytes *b = check_bytes(L, 1);
  lua_Integer start = luaL_checkinteger(L, 2), n = luaL_checkinteger(L, 3);
  const float *lut = check_lut(L, 4);
  return lgl_push(L, lg_bytes_range(b, (int64_t)start - 1, (int64_t)n, lut));
}

void lgl_open_bytes(lua_State *L)
{
  static const luaL_Reg methods[] = {
    {"shape", bytes_shape}, {"gather", bytes_gather}, {"range", bytes_range}, {NULL, NULL},
  };
  if (luaL_newmetatable(L, LGL_BYTES)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, bytes_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"load_idx_bytes", bytes_load}, {NULL, NULL}};
  lgl_setfuncs(L, fns, 0);
}
