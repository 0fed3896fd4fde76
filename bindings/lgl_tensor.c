/* lgl_tensor.c: the tensor userdata: one metatable, the stack helpers of
 * lgl.h, the metamethods (__gc __close __tostring __len __index __newindex)
 * and the accessors (shape size dim numel item totable is_contiguous).
 * Arithmetic metamethods are set by lgl_ops.c next to the ops they call. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <limits.h>
#include "lgl.h"

typedef struct { lg_tensor *t; } lgl_box;   /* owned reference; NULL after __close */

/* ---- stack helpers ------------------------------------------------------ */
lg_tensor *lgl_test(lua_State *L, int idx)
{
  lgl_box *b = luaL_testudata(L, idx, LGL_TENSOR);
  return b ? b->t : NULL;
}

lg_tensor *lgl_check(lua_State *L, int idx)
{
  lgl_box *b = luaL_testudata(L, idx, LGL_TENSOR);
  if (!b) luaL_typeerror(L, idx, "tensor");
  if (!b->t) luaL_argerror(L, idx, "tensor was closed (used after __close)");
  return b->t;
}

const char *lgl_not_tensor(lua_State *L, int idx)
{
  const char *w = lgl_what(L, idx);
  if (strcmp(w, "closed tensor") == 0) return "a closed tensor (used after __close)";
  return lua_pushfstring(L, "a %s, not a tensor", w);
}

const char *lgl_what(lua_State *L, int idx)
{
  lgl_box *b = luaL_testudata(L, idx, LGL_TENSOR);
  if (b) return b->t ? "tensor" : "closed tensor";
  return luaL_typename(L, idx);
}

lg_tensor *lgl_opt(lua_State *L, int idx)
{
  return lua_isnoneornil(L, idx) ? NULL : lgl_check(L, idx);
}

lg_tensor *lgl_checkval(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lgl_push(L, lg_scalar((float)lua_tonumber(L, idx)));
    lua_replace(L, idx);                 /* the GC owns the temporary */
  } else if (!luaL_testudata(L, idx, LGL_TENSOR)) {
    luaL_typeerror(L, idx, "number or tensor");
  }
  return lgl_check(L, idx);
}

int lgl_error(lua_State *L)
{
  luaL_where(L, 1);                      /* the Lua line that called the binding */
  lua_pushstring(L, lg_last_error());
  lua_concat(L, 2);
  return lua_error(L);
}

int lgl_push(lua_State *L, lg_tensor *t)
{
  if (!t) return lgl_error(L);
  lgl_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = NULL;                           /* safe for __gc before anything else */
  luaL_setmetatable(L, LGL_TENSOR);
  b->t = t;
  /* Tell the collector about fresh storage so a loop making big tensors
   * collects them promptly (views of existing storage cost nothing new). */
  if (t->storage && t->storage->refcount == 1) {
    size_t kb = t->storage->nbytes >> 10;
    if (kb > 0) lua_gc(L, LUA_GCSTEP, kb > INT_MAX ? INT_MAX : (int)kb);
  }
  return 1;
}

/* ---- lifetime -------------------------------------------------------------- */
static int t_gc(lua_State *L)
{
  lgl_box *b = luaL_checkudata(L, 1, LGL_TENSOR);
  lg_tensor *t = b->t;
  b->t = NULL;
  lg_release(t);
  return 0;
}

/* ---- printing ----------------------------------------------------------------
 * Like PyTorch: nested brackets, one format for all shown values (integers,
 * fixed or scientific), and with more than LGL_PRINT_MAX elements only the
 * first and last LGL_PRINT_EDGE entries of every dim. */
#define LGL_PRINT_MAX 1000
#define LGL_PRINT_EDGE 3

typedef struct {
  int all_int, nonfinite, seen;
  double maxabs, minabs;                 /* minabs over nonzero finite values */
  int mode, width;                       /* 0 integer, 1 fixed, 2 scientific */
} lgl_pfmt;

static int fmt_value(char *buf, size_t n, const lgl_pfmt *f, double v)
{
  if (isnan(v)) return snprintf(buf, n, "nan");
  if (isinf(v)) return snprintf(buf, n, v > 0 ? "inf" : "-inf");
  if (f->mode == 0) return snprintf(buf, n, "%.0f", v == 0 ? 0.0 : v);
  if (f->mode == 1) return snprintf(buf, n, "%.4f", v);
  return snprintf(buf, n, "%.4e", v);
}

static void scan_value(lgl_pfmt *f, double v)
{
  f->seen = 1;
  if (!isfinite(v)) { f->nonfinite = 1; return; }
  double a = fabs(v);
  if (v != floor(v) || a >= 1e9) f->all_int = 0;
  if (a > f->maxabs) f->maxabs = a;
  if (a > 0 && a < f->minabs) f->minabs = a;
}

/* Break a row of the last dim before this many columns, like PyTorch. */
#define LGL_LINE_WIDTH 80

static void indent(luaL_Buffer *b, int n)
{
  for (int k = 0; k < n; k++) luaL_addchar(b, ' ');
}

/* Walk the shown elements; with b == NULL only scan them into f. */
static void walk(const lg_tensor *t, int d, int64_t *idx, int summ, lgl_pfmt *f, luaL_Buffer *b)
{
  char s[64];
  int64_t n = t->shape[d];
  int last = d == t->ndim - 1;
  int ind = 7 + d + 1;                   /* "tensor(" and one '[' per dim */
  int per_line = (LGL_LINE_WIDTH - ind) / (f->width + 2);
  if (per_line < 1) per_line = 1;
  int col = 0;                           /* items on the current line (last dim) */
  if (b) luaL_addchar(b, '[');
  for (int64_t i = 0; i < n; i++) {
    if (summ && n > 2 * LGL_PRINT_EDGE && i == LGL_PRINT_EDGE) {
      i = n - LGL_PRINT_EDGE;
      if (b) {
        luaL_addstring(b, "...,");
        if (last && ++col < per_line) luaL_addchar(b, ' ');
        else { luaL_addchar(b, '\n'); indent(b, ind); col = 0; }
      }
    }
    idx[d] = i;
    if (last) {
      double v = lg_get(t, idx);
      if (!b) scan_value(f, v);
      else {
        int len = fmt_value(s, sizeof s, f, v);
        indent(b, f->width - len);
        luaL_addstring(b, s);
      }
    } else {
      walk(t, d + 1, idx, summ, f, b);
    }
    if (b && i < n - 1) {
      luaL_addchar(b, ',');
      if (last && ++col < per_line) luaL_addchar(b, ' ');
      else {
        for (int k = 0; k < (last ? 1 : t->ndim - d - 1); k++) luaL_addchar(b, '\n');
        indent(b, ind);
        col = 0;
      }
    }
  }
  if (b) luaL_addchar(b, ']');
}

/* Width of the widest shown value (second scan, now that the mode is known). */
static void widths(const lg_tensor *t, int d, int64_t *idx, int summ, lgl_pfmt *f)
{
  char s[64];
  int64_t n = t->shape[d];
  for (int64_t i = 0; i < n; i++) {
    if (summ && n > 2 * LGL_PRINT_EDGE && i == LGL_PRINT_EDGE) i = n - LGL_PRINT_EDGE;
    idx[d] = i;
    if (d == t->ndim - 1) {
      int len = fmt_value(s, sizeof s, f, lg_get(t, idx));
      if (len > f->width) f->width = len;
    } else {
      widths(t, d + 1, idx, summ, f);
    }
  }
}

static int t_tostring(lua_State *L)
{
  lgl_box *bx = luaL_checkudata(L, 1, LGL_TENSOR);
  lg_tensor *t = bx->t;
  if (!t) { lua_pushliteral(L, "tensor(<closed>)"); return 1; }
  char shp[160];
  int64_t idx[LG_MAXDIM] = {0};
  int64_t numel = lg_numel(t);
  int summ = numel > LGL_PRINT_MAX;
  lgl_pfmt f = {1, 0, 0, 0.0, INFINITY, 0, 0};
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "tensor(");
  if (t->ndim == 0) {
    scan_value(&f, lg_get(t, idx));
  } else if (numel > 0) {
    walk(t, 0, idx, summ, &f, NULL);
  }
  f.mode = f.all_int ? 0 : (f.maxabs >= 1e8 || (f.minabs < 1e-4 && f.minabs > 0)) ? 2 : 1;
  if (t->ndim == 0) {
    char s[64];
    fmt_value(s, sizeof s, &f, lg_get(t, idx));
    luaL_addstring(&b, s);
  } else if (numel == 0) {
    luaL_addstring(&b, "[]");
  } else {
    widths(t, 0, idx, summ, &f);
    walk(t, 0, idx, summ, &f, &b);
  }
  if (t->ndim > 0) {
    luaL_addstring(&b, ", shape=");
    luaL_addstring(&b, lg_shape_str(t, shp, sizeof shp));
  }
  if (t->grad_fn) {
    luaL_addstring(&b, ", grad_fn=");
    luaL_addstring(&b, lg_node_name(t->grad_fn));
  } else if (t->requires_grad) {
    luaL_addstring(&b, ", requires_grad=true");
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return 1;
}

/* ---- accessors -------------------------------------------------------------- */
#define LGL_SHAPE "luagan.Shape"   /* metatable of the lists x:shape() returns */

static int is_shape(lua_State *L, int idx)
{
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, LGL_SHAPE);
  int r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* Push the text of the value at idx (an absolute index): a shape list as
 * "2x3" ("scalar" when empty), anything else as tostring does. */
static void shape_text(lua_State *L, int idx)
{
  if (!is_shape(L, idx)) {
    luaL_tolstring(L, idx, NULL);
    return;
  }
  luaL_Buffer b;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  luaL_buffinit(L, &b);
  if (n == 0) luaL_addstring(&b, "scalar");
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, 'x');
    lua_rawgeti(L, idx, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
}
static int shape_tostring(lua_State *L) { shape_text(L, 1); return 1; }
static int shape_concat(lua_State *L)      /* "shape " .. x:shape() */
{
  shape_text(L, 1);
  shape_text(L, 2);
  lua_concat(L, 2);
  return 1;
}

/* A list of sizes, {2, 3}, that prints and concatenates as "2x3". */
static int t_shape(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
  luaL_setmetatable(L, LGL_SHAPE);
  return 1;
}

static int t_size(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  if (lua_isnoneornil(L, 2)) return t_shape(L);
  lua_pushinteger(L, t->shape[lgl_checkdim(L, 2, t->ndim)]);
  return 1;
}

static int t_dim(lua_State *L)
{
  lua_pushinteger(L, lgl_check(L, 1)->ndim);
  return 1;
}

static int t_numel(lua_State *L)
{
  lua_pushinteger(L, lg_numel(lgl_check(L, 1)));
  return 1;
}

static int t_item(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  int64_t n = lg_numel(t);
  if (n != 1) {
    char shp[160];
    return luaL_error(L, "item: tensor of shape %s has %I elements; item() needs exactly one",
                      lg_shape_str(t, shp, sizeof shp), (lua_Integer)n);
  }
  float v;
  lg_read(t, &v);
  lua_pushnumber(L, v);
  return 1;
}

static void totable_rec(lua_State *L, const lg_tensor *t, const float *data, int d, int64_t *pos)
{
  int64_t n = t->shape[d];
  lua_createtable(L, n > INT_MAX ? INT_MAX : (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    if (d == t->ndim - 1) lua_pushnumber(L, data[(*pos)++]);
    else totable_rec(L, t, data, d + 1, pos);
    lua_rawseti(L, -2, i + 1);
  }
}

static int t_totable(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  int64_t n = lg_numel(t), pos = 0;
  float *data = lua_newuserdatauv(L, sizeof(float) * (n ? n : 1), 0); /* GC-owned scratch */
  lg_read(t, data);
  if (t->ndim == 0) { lua_pushnumber(L, data[0]); return 1; }
  luaL_checkstack(L, t->ndim + 4, "tensor too deep");
  totable_rec(L, t, data, 0, &pos);
  return 1;
}

static int t_is_contiguous(lua_State *L)
{
  lua_pushboolean(L, lg_is_contiguous(lgl_check(L, 1)));
  return 1;
}

static int t_is_tensor(lua_State *L)
{
  lua_pushboolean(L, lgl_test(L, 1) != NULL);
  return 1;
}

/* ---- indexing -------------------------------------------------------------- */
/* 1-based index k along dim 0 (negative from the end) to 0-based. */
static int64_t index0(lua_State *L, const lg_tensor *t, int arg)
{
  if (t->ndim == 0) luaL_error(L, "cannot index a 0-dim tensor (use item())");
  int isint;
  lua_Integer k = lua_tointegerx(L, arg, &isint);
  if (!isint) luaL_error(L, "tensor index must be an integer, got %s", lua_tostring(L, arg));
  int64_t n = t->shape[0];
  if (k >= 1 && k <= n) return k - 1;
  if (k <= -1 && k >= -n) return n + k;
  luaL_error(L, "index %I out of range for dim 1 of size %I", k, (lua_Integer)n);
  return -1;
}

static int t_len(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "length of a 0-dim tensor (use numel())");
  lua_pushinteger(L, t->shape[0]);
  return 1;
}

static int t_index(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    int64_t i = index0(L, t, 2);
    if (t->ndim == 1) {
      lua_pushnumber(L, lg_get(t, &i));
      return 1;
    }
    return lgl_push(L, lg_select(t, 0, i));
  }
  const char *k = lua_tostring(L, 2);
  if (k && lua_type(L, 2) == LUA_TSTRING) {
    /* fields first, so a method can never shadow them */
    if (!strcmp(k, "grad")) {
      if (!t->grad) lua_pushnil(L);
      else lgl_push(L, lg_retain(t->grad));
      return 1;
    }
    if (!strcmp(k, "requires_grad")) { lua_pushboolean(L, t->requires_grad); return 1; }
    if (!strcmp(k, "is_leaf")) { lua_pushboolean(L, t->grad_fn == NULL); return 1; }
    if (!strcmp(k, "grad_fn")) {
      if (t->grad_fn) lua_pushstring(L, lg_node_name(t->grad_fn));
      else lua_pushnil(L);
      return 1;
    }
    if (!strcmp(k, "data")) return lgl_push(L, lg_detach(t));
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));      /* the method table */
  return 1;
}

static int t_newindex(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  char b1[160], b2[160];
  if (lua_type(L, 2) == LUA_TNUMBER) {
    int64_t i = index0(L, t, 2);
    int isnum = lua_type(L, 3) == LUA_TNUMBER;
    lg_tensor *src = isnum ? NULL : lgl_test(L, 3);
    if (!isnum && !src)
      return luaL_error(L, "tensor element assignment: number or tensor expected, got %s",
                        luaL_typename(L, 3));
    lg_tensor *dst = lg_select(t, 0, i);      /* a view: writes land in t */
    if (!dst) return lgl_error(L);
    int rc = isnum ? lg_fill_(dst, (float)lua_tonumber(L, 3)) : lg_copy_(dst, src);
    lg_release(dst);
    if (rc) return lgl_error(L);
    return 0;
  }
  const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (k && !strcmp(k, "grad")) {
    lg_tensor *g = lgl_opt(L, 3);
    if (g && !lg_same_shape(g, t))
      return luaL_error(L, "grad: assigned a gradient of shape %s to a tensor of shape %s",
                        lg_shape_str(g, b1, sizeof b1), lg_shape_str(t, b2, sizeof b2));
    lg_retain(g);
    lg_release(t->grad);
    t->grad = g;
    return 0;
  }
  if (k && !strcmp(k, "requires_grad")) {
    luaL_checktype(L, 3, LUA_TBOOLEAN);
    if (lg_requires_grad_(t, lua_toboolean(L, 3))) return lgl_error(L);
    return 0;
  }
  return luaL_error(L, "cannot set field '%s' of a tensor (settable: grad, requires_grad, "
                    "integer indices)", k ? k : luaL_typename(L, 2));
}

/* ---- registration ----------------------------------------------------------- */
static const luaL_Reg lgl_tensor_fns[] = {
  {"shape", t_shape},
  {"size", t_size},
  {"dim", t_dim},
  {"numel", t_numel},
  {"item", t_item},
  {"totable", t_totable},
  {"is_contiguous", t_is_contiguous},
  {NULL, NULL},
};

void lgl_open_tensor(lua_State *L)
{
  if (luaL_newmetatable(L, LGL_TENSOR)) {
    lua_pushcfunction(L, t_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, t_gc);            /* to-be-closed variables free at scope end */
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, t_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, t_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, t_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "luagan.Tensor");
    lua_setfield(L, -2, "__name");
    lua_newtable(L);                       /* the method table, also lg.Tensor */
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "methods");
    lua_pushcclosure(L, t_index, 1);
    lua_setfield(L, -2, "__index");
  }
  if (luaL_newmetatable(L, LGL_SHAPE)) {
    lua_pushcfunction(L, shape_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, shape_concat);
    lua_setfield(L, -2, "__concat");
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "methods");
  lua_setfield(L, -3, "Tensor");
  lua_pop(L, 1);
  lgl_setfuncs(L, lgl_tensor_fns, 1);
  lua_pushcfunction(L, t_is_tensor);
  lua_setfield(L, -2, "is_tensor");
}
