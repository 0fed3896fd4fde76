/* lgl_linalg.c: the evaluation kernels of runtime/lga_metrics.h for Lua, as
 * the table luagan.core.linalg (lg.linalg):
 *
 *   w, V = linalg.sym_eig(A)              A: n x n nested table (symmetric)
 *   S    = linalg.sqrtm_psd(A)            symmetric PSD square root
 *   t    = linalg.trace_sqrt_product(A, B)  trace sqrt(A B), A and B PSD
 *   mu, C = linalg.mean_cov(x)            x: (N,D) tensor -> D table, D x D table
 *   fd   = linalg.frechet(mu1, C1, mu2, C2)
 *   kth, nn = linalg.knn(q, r, k, {skip_self = false, naive = false})
 *   inside = linalg.in_balls(q, r, radius, {naive = false})
 *   m    = linalg.mmd2_poly(x, y, {naive = false})
 *
 * Matrices and vectors of doubles travel as Lua tables (Lua numbers are
 * doubles, so nothing is rounded to float32 on the way); feature rows travel
 * as float32 tensors. Indices returned to Lua are 1-based. */
#include <stdlib.h>
#include <string.h>
#include "lgl.h"
#include "lga_metrics.h"

/* ---- doubles <-> Lua tables ---------------------------------------------------- */

/* The vector at idx (a table of numbers) as a malloc'd array; *n its length.
 * The array is owned by a userdata pushed on the stack (freed by the GC even
 * when a later argument check raises). */
static double *check_vector(lua_State *L, int idx, int *n, const char *what)
{
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
  if (len < 1 || len > 1 << 20)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: expected a non-empty list of numbers", what));
  double *v = lua_newuserdatauv(L, sizeof(double) * (size_t)len, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, i);
    int isnum;
    v[i - 1] = lua_tonumberx(L, -1, &isnum);
    if (!isnum)
      luaL_argerror(L, idx, lua_pushfstring(L, "%s: entry %I is a %s, not a number", what, i,
                                            luaL_typename(L, -1)));
    lua_pop(L, 1);
  }
  *n = (int)len;
  return v;
}

/* The square matrix at idx (a table of n rows of n numbers) as row-major
 * doubles owned by a userdata pushed on the stack; *n its size. */
static double *check_matrix(lua_State *L, int idx, int *n, const char *what)
{
  idx = lua_absindex(L, idx);
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer rows = (lua_Integer)lua_rawlen(L, idx);
  if (rows < 1 || rows > 4096)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: expected a square matrix (a table of rows), "
                                          "got %I rows", what, rows));
  double *a = lua_newuserdatauv(L, sizeof(double) * (size_t)(rows * rows), 0);
  for (lua_Integer i = 1; i <= rows; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TTABLE)
      luaL_argerror(L, idx, lua_pushfstring(L, "%s: row %I is a %s, not a table", what, i,
                                            luaL_typename(L, -1)));
    if ((lua_Integer)lua_rawlen(L, -1) != rows)
      luaL_argerror(L, idx, lua_pushfstring(L, "%s: row %I has %I entries, expected %I "
                                            "(a square matrix)", what, i,
                                            (lua_Integer)lua_rawlen(L, -1), rows));
    for (lua_Integer j = 1; j <= rows; j++) {
      lua_rawgeti(L, -1, j);
      int isnum;
      a[(i - 1) * rows + (j - 1)] = lua_tonumberx(L, -1, &isnum);
      if (!isnum)
        luaL_argerror(L, idx, lua_pushfstring(L, "%s: entry [%I][%I] is a %s, not a number",
                                              what, i, j, luaL_typename(L, -1)));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  *n = (int)rows;
  return a;
}

static void push_vector(lua_State *L, const double *v, int n)
{
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void push_matrix(lua_State *L, const double *a, int n)
{
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    push_vector(L, a + (size_t)i * n, n);
    lua_rawseti(L, -2, i + 1);
  }
}

/* A scratch array of doubles owned by a userdata pushed on the stack. */
static double *scratch(lua_State *L, size_t count)
{
  return lua_newuserdatauv(L, sizeof(double) * (count ? count : 1), 0);
}

/* ---- float32 rows ------------------------------------------------------------------ */

/* Check that the value at idx is a 2-D tensor (N,D) of feature rows;
 * returns it (borrowed) with *n = N, *d = D. Every argument is checked this
 * way before any contiguous copy is made, so an argument error leaks nothing. */
static lg_tensor *check_rows(lua_State *L, int idx, const char *who, const char *what,
                             int64_t *n, int *d)
{
  lg_tensor *t = lgl_check(L, idx);
  if (t->ndim != 2)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: %s must be a 2-D tensor (N,D) of feature rows, "
                                          "got %d dims", who, what, t->ndim));
  if (t->shape[1] < 1 || t->shape[1] > 1 << 24)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: %s has %I columns", who, what,
                                          (lua_Integer)t->shape[1]));
  *n = t->shape[0];
  *d = (int)t->shape[1];
  return t;
}

/* ---- functions ---------------------------------------------------------------------- */

static int l_sym_eig(lua_State *L)
{
  int n;
  double *a = check_matrix(L, 1, &n, "sym_eig");
  double *w = scratch(L, (size_t)n), *v = scratch(L, (size_t)n * n);
  if (lga_sym_eig(n, a, w, v)) return lgl_error(L);
  push_vector(L, w, n);
  push_matrix(L, v, n);
  return 2;
}

static int l_sqrtm_psd(lua_State *L)
{
  int n;
  double *a = check_matrix(L, 1, &n, "sqrtm_psd");
  double *s = scratch(L, (size_t)n * n);
  if (lga_sqrtm_psd(n, a, s)) return lgl_error(L);
  push_matrix(L, s, n);
  return 1;
}

static int l_trace_sqrt_product(lua_State *L)
{
  int n, m;
  double *a = check_matrix(L, 1, &n, "trace_sqrt_product");
  double *b = check_matrix(L, 2, &m, "trace_sqrt_product");
  if (n != m)
    return luaL_error(L, "trace_sqrt_product: matrices are %dx%d and %dx%d", n, n, m, m);
  double t;
  if (lga_trace_sqrt_product(n, a, b, &t)) return lgl_error(L);
  lua_pushnumber(L, t);
  return 1;
}

static int l_mean_cov(lua_State *L)
{
  int64_t n;
  int d;
  lg_tensor *x0 = check_rows(L, 1, "mean_cov", "x", &n, &d);
  double *mu = scratch(L, (size_t)d), *cov = scratch(L, (size_t)d * d);
  lg_tensor *x = lg_contiguous(x0);
  if (!x) return lgl_error(L);
  int rc = lga_mean_cov(n, d, lg_data(x), mu, cov);
  lg_release(x);
  if (rc) return lgl_error(L);
  push_vector(L, mu, d);
  push_matrix(L, cov, d);
  return 2;
}

static int l_frechet(lua_State *L)
{
  int d1, d2, n1, n2;
  double *mu1 = check_vector(L, 1, &d1, "frechet: mu1");
  double *c1 = check_matrix(L, 2, &n1, "frechet: cov1");
  double *mu2 = check_vector(L, 3, &d2, "frechet: mu2");
  double *c2 = check_matrix(L, 4, &n2, "frechet: cov2");
  if (d1 != n1 || d2 != n2 || d1 != d2)
    return luaL_error(L, "frechet: sizes differ: mu1 %d, cov1 %dx%d, mu2 %d, cov2 %dx%d",
                      d1, n1, n1, d2, n2, n2);
  double fd;
  if (lga_frechet(d1, mu1, c1, mu2, c2, &fd)) return lgl_error(L);
  lua_pushnumber(L, fd);
  return 1;
}

static const char *const knn_opts[] = {"skip_self", "naive", NULL};

static int l_knn(lua_State *L)
{
  lua_Integer k = lgl_checkint(L, 3, "k", 1, (lua_Integer)1 << 20);
  lgl_checkopts(L, 4, knn_opts);
  int skip_self = lgl_optbool(L, 4, "skip_self", 0), naive = lgl_optbool(L, 4, "naive", 0);
  int64_t nq, nr;
  int dq, dr;
  lg_tensor *q0 = check_rows(L, 1, "knn", "queries", &nq, &dq);
  lg_tensor *r0 = check_rows(L, 2, "knn", "references", &nr, &dr);
  if (dq != dr) return luaL_error(L, "knn: queries have %d columns, references %d", dq, dr);
  lg_tensor *q = lg_contiguous(q0);
  if (!q) return lgl_error(L);
  lg_tensor *r = lg_contiguous(r0);
  if (!r) { lg_release(q); return lgl_error(L); }
  int64_t shape[1] = {nq};
  lg_tensor *kth = lg_empty(1, shape), *nn = lg_empty(1, shape);
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(nq ? nq : 1));
  if (!idx) lg_error("knn: out of memory for %lld indices", (long long)nq);
  int rc = (!kth || !nn || !idx) ? -1
           : (naive ? lga_knn_naive : lga_knn)(lg_data(q), nq, lg_data(r), nr, dq, (int)k,
                                             skip_self, lg_data(kth), idx);
  if (rc == 0)
    for (int64_t i = 0; i < nq; i++) lg_data(nn)[i] = (float)(idx[i] + 1);
  free(idx);
  lg_release(q);
  lg_release(r);
  if (rc) {
    lg_release(kth);
    lg_release(nn);
    return lgl_error(L);
  }
  lgl_push(L, kth);
  lgl_push(L, nn);
  return 2;
}

static const char *const naive_opts[] = {"naive", NULL};

static int l_in_balls(lua_State *L)
{
  lgl_checkopts(L, 4, naive_opts);
  int naive = lgl_optbool(L, 4, "naive", 0);
  lg_tensor *rad = lgl_check(L, 3);
  int64_t nq, nr;
  int dq, dr;
  lg_tensor *q0 = check_rows(L, 1, "in_balls", "queries", &nq, &dq);
  lg_tensor *r0 = check_rows(L, 2, "in_balls", "centres", &nr, &dr);
  if (dq != dr || rad->ndim != 1 || rad->shape[0] != nr) {
    return luaL_error(L, "in_balls: queries (%I,%d), centres (%I,%d) and radius of %d dims "
                      "(%I) do not fit: need equal columns and one radius per centre",
                      (lua_Integer)nq, dq, (lua_Integer)nr, dr, rad->ndim,
                      (lua_Integer)(rad->ndim ? rad->shape[0] : 1));
  }
  lg_tensor *q = lg_contiguous(q0), *r = lg_contiguous(r0), *radc = lg_contiguous(rad);
  int64_t shape[1] = {nq};
  lg_tensor *out = lg_empty(1, shape);
  uint8_t *in = malloc((size_t)(nq ? nq : 1));
  if (!in) lg_error("in_balls: out of memory for %lld flags", (long long)nq);
  int rc = (!q || !r || !radc || !out || !in) ? -1
           : (naive ? lga_in_balls_naive : lga_in_balls)(lg_data(q), nq, lg_data(r), nr, dq,
                                                       lg_data(radc), in);
  if (rc == 0)
    for (int64_t i = 0; i < nq; i++) lg_data(out)[i] = in[i];
  free(in);
  lg_release(q); lg_release(r); lg_release(radc);
  if (rc) { lg_release(out); return lgl_error(L); }
  return lgl_push(L, out);
}

static int l_mmd2_poly(lua_State *L)
{
  lgl_checkopts(L, 3, naive_opts);
  int naive = lgl_optbool(L, 3, "naive", 0);
  int64_t m, n;
  int dx, dy;
  lg_tensor *x0 = check_rows(L, 1, "mmd2_poly", "x", &m, &dx);
  lg_tensor *y0 = check_rows(L, 2, "mmd2_poly", "y", &n, &dy);
  if (dx != dy) return luaL_error(L, "mmd2_poly: x has %d columns, y %d", dx, dy);
  lg_tensor *x = lg_contiguous(x0), *y = lg_contiguous(y0);
  double out;
  int rc = (!x || !y) ? -1
           : (naive ? lga_mmd2_poly_naive : lga_mmd2_poly)(lg_data(x), m, lg_data(y), n, dx, &out);
  lg_release(x); lg_release(y);
  if (rc) return lgl_error(L);
  lua_pushnumber(L, out);
  return 1;
}

void lgl_open_linalg(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"sym_eig", l_sym_eig},
    {"sqrtm_psd", l_sqrtm_psd},
    {"trace_sqrt_product", l_trace_sqrt_product},
    {"mean_cov", l_mean_cov},
    {"frechet", l_frechet},
    {"knn", l_knn},
    {"in_balls", l_in_balls},
    {"mmd2_poly", l_mmd2_poly},
    {NULL, NULL}
  };
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -2, "linalg");
}
