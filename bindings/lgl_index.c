/* lgl_index.c: the index ops of runtime/lg_index.c as Lua functions, each both
 * lg.op(t, ...) and t:op(...): gather, scatter_add, sort, topk, cumsum, erf,
 * floor, round, isnan, isfinite. Indices are 1-based both ways: index tensors
 * coming in are checked and shifted here (so a bad index is reported as the
 * user wrote it), and the indices sort/topk return count from 1. */
#include <math.h>
#include <stdio.h>
#include "lgl.h"

/* The index tensor at arg for op along 0-based dim d of size `size`: every
 * value an integer in [1, size]. Returns a new 0-based tensor (caller
 * releases) or raises a Lua error that speaks 1-based. */
static lg_tensor *check_index(lua_State *L, int arg, const char *op, int d, int64_t size)
{
  lg_tensor *idx = lgl_check(L, arg);
  int64_t n = lg_numel(idx);
  float *v = lua_newuserdatauv(L, sizeof(float) * (n ? n : 1), 0);   /* GC-owned scratch */
  lg_read(idx, v);
  for (int64_t i = 0; i < n; i++) {
    if (v[i] != floorf(v[i]) || v[i] < 1 || v[i] > size) {
      char num[32];
      snprintf(num, sizeof num, "%g", (double)v[i]);
      luaL_error(L, "%s: index %s out of range for dim %d of size %I (indices are 1-based)", op,
                 num, d + 1, (lua_Integer)size);
    }
    v[i] -= 1;
  }
  lg_tensor *r = lg_from_data(idx->ndim, idx->shape, v);
  lua_pop(L, 1);
  if (!r) lgl_error(L);
  return r;
}

/* gather(dim, index): out[i][j] = t[index[i][j]][j] for dim 1, and so on. */
static int x_gather(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "gather: input is 0-dim; it needs a dim to index");
  int d = lgl_checkdim(L, 2, t->ndim);
  lg_tensor *idx = check_index(L, 3, "gather", d, t->shape[d]);
  lg_tensor *r = lg_gather(t, d, idx);
  lg_release(idx);
  return lgl_push(L, r);
}

/* scatter_add(dim, index, src): t plus src added at index along dim. */
static int x_scatter_add(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  if (t->ndim == 0) return luaL_error(L, "scatter_add: input is 0-dim; it needs a dim to index");
  int d = lgl_checkdim(L, 2, t->ndim);
  lg_tensor *src = lgl_check(L, 4);
  lg_tensor *idx = check_index(L, 3, "scatter_add", d, t->shape[d]);
  lg_tensor *r = lg_scatter_add(t, d, idx, src);
  lg_release(idx);
  return lgl_push(L, r);
}

/* cumsum(dim): running sums along dim (dim required, as in PyTorch). */
static int x_cumsum(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  int d = lgl_checkdim(L, 2, t->ndim ? t->ndim : 1);
  return lgl_push(L, lg_cumsum(t, d, 0));
}

/* Push values = gather(t, d, idx0) and 1-based indices; steals idx0. */
static int push_sorted(lua_State *L, lg_tensor *t, int d, lg_tensor *idx0)
{
  if (!idx0) return lgl_error(L);
  lg_tensor *vals = lg_gather(t, d, idx0);
  lg_tensor *one = vals ? lg_add_scalar(idx0, 1.0f) : NULL;
  lg_release(idx0);
  if (!one) { lg_release(vals); return lgl_error(L); }
  lgl_push(L, vals);
  return 1 + lgl_push(L, one);
}

/* sort([dim], [{descending}]) -> values, indices (stable; NaN sorts last). */
static int x_sort(lua_State *L)
{
  static const char *const allowed[] = {"descending", "stable", NULL};
  lg_tensor *t = lgl_check(L, 1);
  int opts = lua_istable(L, 2) ? 2 : 3;
  int nd = t->ndim ? t->ndim : 1;
  int d = opts == 2 ? nd - 1 : lgl_optdim(L, 2, nd, nd - 1);
  lgl_checkopts(L, opts, allowed);
  int desc = lgl_optbool(L, opts, "descending", 0);
  (void)lgl_optbool(L, opts, "stable", 1);   /* always stable; accepted as in PyTorch */
  if (t->ndim == 0) {                        /* a 0-dim tensor: itself at index 1 */
    lg_tensor *one = lg_ones(0, NULL);
    lgl_push(L, lg_retain(t));
    return 1 + lgl_push(L, one);
  }
  return push_sorted(L, t, d, lg_sort_indices(t, d, desc));
}

/* topk(k, [dim], [{largest, sorted}]) -> the k largest (or smallest) values
 * along dim, in order, and their 1-based indices. */
static int x_topk(lua_State *L)
{
  static const char *const allowed[] = {"largest", "sorted", NULL};
  lg_tensor *t = lgl_check(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  int opts = lua_istable(L, 3) ? 3 : 4;
  int nd = t->ndim ? t->ndim : 1;
  int d = opts == 3 ? nd - 1 : lgl_optdim(L, 3, nd, nd - 1);
  lgl_checkopts(L, opts, allowed);
  int largest = lgl_optbool(L, opts, "largest", 1);
  (void)lgl_optbool(L, opts, "sorted", 1);   /* results always come sorted */
  int64_t size = t->ndim ? t->shape[d] : 1;
  if (k < 0 || k > size)
    return luaL_error(L, "topk: k = %I is out of range for dim %d of size %I", k, d + 1,
                      (lua_Integer)size);
  if (t->ndim == 0) {
    lgl_push(L, lg_retain(t));
    return 1 + lgl_push(L, lg_ones(0, NULL));
  }
  lg_tensor *all = lg_sort_indices(t, d, largest);
  lg_tensor *top = all ? lg_narrow(all, d, 0, k) : NULL;
  lg_release(all);
  return push_sorted(L, t, d, top);
}

static int x_erf(lua_State *L) { return lgl_push(L, lg_erf(lgl_check(L, 1))); }
static int x_floor(lua_State *L) { return lgl_push(L, lg_floor(lgl_check(L, 1))); }
static int x_round(lua_State *L) { return lgl_push(L, lg_round(lgl_check(L, 1))); }
static int x_isnan(lua_State *L) { return lgl_push(L, lg_isnan(lgl_check(L, 1))); }
static int x_isfinite(lua_State *L) { return lgl_push(L, lg_isfinite(lgl_check(L, 1))); }

static const luaL_Reg lgl_index_methods[] = {
  {"gather", x_gather}, {"scatter_add", x_scatter_add}, {"cumsum", x_cumsum},
  {"sort", x_sort}, {"topk", x_topk}, {"erf", x_erf}, {"floor", x_floor}, {"round", x_round},
  {"isnan", x_isnan}, {"isfinite", x_isfinite},
  {NULL, NULL},
};

void lgl_open_index(lua_State *L)
{
  lgl_setfuncs(L, lgl_index_methods, 1);
}
