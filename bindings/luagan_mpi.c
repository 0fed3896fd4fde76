/* luagan_mpi.c: the Lua C module luagan.mpi, a thin layer over MPI for
 * data-parallel training (scripts/luagan/dist.lua is the Lua face; users
 * call lg.dist, not this). Built only when CMake finds MPI, as its own
 * module, so luagan.core never links MPI.
 *
 * Collectives work in place on contiguous float32 tensors (dist.lua passes
 * contiguous buckets). MPI's errors are returned, not fatal, and raised as
 * Lua errors naming the call. Ranks are 0-based, the MPI convention. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <mpi.h>
#include "lgl.h"

static int mpi_ready(void)
{
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

static int mpi_fail(lua_State *L, const char *call, int code)
{
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) len = 0;
  msg[len] = '\0';
  return luaL_error(L, "dist: %s failed: %s", call, len ? msg : "unknown MPI error");
}

#define MPI_CHECK(L, call, expr) do { int rc_ = (expr); \
    if (rc_ != MPI_SUCCESS) return mpi_fail(L, call, rc_); } while (0)

static void need_ready(lua_State *L)
{
  if (!mpi_ready()) luaL_error(L, "dist: MPI is not initialised (call lg.dist.init() first)");
}

/* The watchdog: how long a rank waits for the others to join the check
 * that opens every collective (LUAGAN_DIST_TIMEOUT seconds, default 600;
 * 0 waits forever). */
static double watchdog_limit(void)
{
  const char *v = getenv("LUAGAN_DIST_TIMEOUT");
  if (!v || !*v) return 600.0;
  char *end;
  double s = strtod(v, &end);
  return (*end == '\0' && s >= 0) ? s : 600.0;
}

/* Complete req, or end every rank when the others have not joined within
 * the limit: a rank that branched on a rank-local value (or stopped calling
 * collectives) would otherwise leave the rest waiting forever. The request
 * cannot be cancelled, so this is MPI_Abort, after a message naming what
 * waited. Polling (not MPI_Wait) also keeps MPI progressing. */
static void wait_watched(MPI_Request *req, const char *what)
{
  double limit = watchdog_limit(), t0 = MPI_Wtime();
  struct timespec nap = {0, 100000};          /* 0.1 ms between polls after a short spin */
  for (long polls = 0;; polls++) {
    int done = 0;
    MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (limit > 0 && MPI_Wtime() - t0 > limit) {
      int rank = -1;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      fprintf(stderr, "luagan: dist: rank %d waited %.0f s in %s for the other ranks, which never "
              "joined (a branch on a rank-local value, or a rank that stopped): ending every rank "
              "(LUAGAN_DIST_TIMEOUT sets the limit)\n", rank, limit, what);
      fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (polls > 1000) nanosleep(&nap, NULL);
  }
}

/* The tensor at idx, which the collective reads and writes in place. */
static lg_tensor *check_buffer(lua_State *L, int idx, const char *who)
{
  lg_tensor *t = lgl_check(L, idx);
  if (!lg_is_contiguous(t))
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: the tensor must be contiguous", who));
  if (lg_numel(t) > INT32_MAX)
    luaL_argerror(L, idx, lua_pushfstring(L, "%s: more than 2^31-1 elements in one call", who));
  return t;
}

/* Run at exit so a script that never calls finalize (or errors) does not
 * leave mpirun reporting a rank that "exited without finalizing". */
static void finalize_at_exit(void)
{
  if (mpi_ready()) MPI_Finalize();
}

/* init() -> rank, size. Idempotent. Open MPI is told FUNNELED: only the
 * main thread calls MPI, OpenMP workers never do. */
static int l_init(lua_State *L)
{
  if (!mpi_ready()) {
    int fin = 0, provided = 0;
    MPI_Finalized(&fin);
    if (fin) return luaL_error(L, "dist: MPI was already finalised in this process");
    MPI_CHECK(L, "MPI_Init_thread", MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    atexit(finalize_at_exit);
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  lua_pushinteger(L, rank);
  lua_pushinteger(L, size);
  return 2;
}

static int l_initialized(lua_State *L)
{
  lua_pushboolean(L, mpi_ready());
  return 1;
}

static int l_rank(lua_State *L)
{
  int r;
  need_ready(L);
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  lua_pushinteger(L, r);
  return 1;
}

static int l_size(lua_State *L)
{
  int s;
  need_ready(L);
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  lua_pushinteger(L, s);
  return 1;
}

/* local_size() -> ranks on this host (shared-memory domain), local rank */
static int l_local(lua_State *L)
{
  MPI_Comm node;
  int n, r;
  need_ready(L);
  MPI_CHECK(L, "MPI_Comm_split_type",
            MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  MPI_Comm_size(node, &n);
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  lua_pushinteger(L, n);
  lua_pushinteger(L, r);
  return 2;
}

static int l_barrier(lua_State *L)
{
  MPI_Request req;
  need_ready(L);
  MPI_CHECK(L, "MPI_Ibarrier", MPI_Ibarrier(MPI_COMM_WORLD, &req));
  wait_watched(&req, "barrier");
  return 0;
}

static MPI_Op check_op(lua_State *L, int idx)
{
  static const char *const names[] = {"sum", "max", "min", NULL};
  static const MPI_Op ops[] = {MPI_SUM, MPI_MAX, MPI_MIN};
  return ops[luaL_checkoption(L, idx, "sum", names)];
}

/* Exact sum: every rank gathers all buffers and adds them in rank order,
 * (((b0 + b1) + b2) + ...), so the result is bit-identical on every rank
 * and equal to adding N in-process shards in that order. Costs N buffers. */
static int sum_in_rank_order(lua_State *L, float *x, int n, int size)
{
  /* x: (n,) this rank's values, replaced by the ordered sum */
  float *all = malloc((size_t)n * (size_t)size * sizeof(float));
  if (!all) return luaL_error(L, "dist: allreduce (exact): out of memory for %d x %d floats", size, n);
  int rc = MPI_Allgather(x, n, MPI_FLOAT, all, n, MPI_FLOAT, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) { free(all); return mpi_fail(L, "MPI_Allgather", rc); }
  for (int i = 0; i < n; i++) {
    float acc = all[i];
    for (int r = 1; r < size; r++) acc += all[(size_t)r * n + i];
    x[i] = acc;
  }
  free(all);
  return 0;
}

/* allreduce_(t, op, exact): t (any shape, contiguous) replaced in place by
 * the element-wise op over ranks; exact (sum only) fixes the order. */
static int l_allreduce_(lua_State *L)
{
  lg_tensor *t = check_buffer(L, 1, "allreduce");
  MPI_Op op = check_op(L, 2);
  int exact = lua_toboolean(L, 3);
  int n = (int)lg_numel(t), size;
  need_ready(L);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (n == 0) return 0;
  if (exact && op == MPI_SUM && size > 1) sum_in_rank_order(L, lg_data(t), n, size);
  else MPI_CHECK(L, "MPI_Allreduce",
                 MPI_Allreduce(MPI_IN_PLACE, lg_data(t), n, MPI_FLOAT, op, MPI_COMM_WORLD));
  return 0;
}

/* broadcast_(t, root): root's values into t on every rank (root 0-based) */
static int l_broadcast_(lua_State *L)
{
  lg_tensor *t = check_buffer(L, 1, "broadcast");
  lua_Integer root = luaL_checkinteger(L, 2);
  int size;
  need_ready(L);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  luaL_argcheck(L, root >= 0 && root < size, 2, "root must be a rank in [0, size)");
  if (lg_numel(t) == 0) return 0;
  MPI_CHECK(L, "MPI_Bcast", MPI_Bcast(lg_data(t), (int)lg_numel(t), MPI_FLOAT, (int)root,
                                      MPI_COMM_WORLD));
  return 0;
}

/* allgather(t) -> (size * d1, d2, ...): the ranks' tensors stacked along
 * dim 1 in rank order; every rank must pass the same shape. */
static int l_allgather(lua_State *L)
{
  lg_tensor *t = check_buffer(L, 1, "allgather");
  int size;
  need_ready(L);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  luaL_argcheck(L, t->ndim >= 1, 1, "allgather: expected a tensor of at least 1 dim");
  int64_t shape[LG_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  if (shape[0] > INT64_MAX / size) return luaL_error(L, "dist: allgather: result too large");
  shape[0] *= size;
  lg_tensor *out = lg_empty(t->ndim, shape);
  if (!out) return lgl_error(L);
  lgl_push(L, out);
  int n = (int)lg_numel(t);
  if (n > 0 && (int64_t)n * size > INT32_MAX)
    return luaL_error(L, "dist: allgather: more than 2^31-1 elements in the result");
  if (n > 0)
    MPI_CHECK(L, "MPI_Allgather", MPI_Allgather(lg_data(t), n, MPI_FLOAT, lg_data(out), n,
                                                MPI_FLOAT, MPI_COMM_WORLD));
  return 1;
}

/* allreduce_number(x, op) -> the op over ranks of one double */
static int l_allreduce_number(lua_State *L)
{
  double x = luaL_checknumber(L, 1);
  MPI_Op op = check_op(L, 2);
  need_ready(L);
  MPI_Request req;
  MPI_CHECK(L, "MPI_Iallreduce",
            MPI_Iallreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, op, MPI_COMM_WORLD, &req));
  wait_watched(&req, "allreduce_number");
  lua_pushnumber(L, x);
  return 1;
}

/* FNV-1a: a cheap fingerprint of a string, to compare it across ranks */
static uint64_t fingerprint(const char *s, size_t n)
{
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
  return h ^ n;
}

/* same(s) -> true when every rank passed the same string (by fingerprint):
 * how dist.lua checks that all ranks reach the same collective. */
static int l_same(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  need_ready(L);
  uint64_t h = fingerprint(s, n), v[2] = {h, ~h};
  MPI_Request req;
  MPI_CHECK(L, "MPI_Iallreduce",
            MPI_Iallreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD, &req));
  wait_watched(&req, s);
  lua_pushboolean(L, v[0] == h && v[1] == ~h);
  return 1;
}

static int l_wtime(lua_State *L)
{
  lua_pushnumber(L, MPI_Wtime());
  return 1;
}

/* abort(code): end every rank (after a rank-local error a collective would
 * otherwise wait forever) */
static int l_abort(lua_State *L)
{
  int code = (int)luaL_optinteger(L, 1, 1);
  if (mpi_ready()) MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

static int l_finalize(lua_State *L)
{
  if (mpi_ready()) MPI_CHECK(L, "MPI_Finalize", MPI_Finalize());
  return 0;
}

static int l_version(lua_State *L)
{
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);
  lua_pushlstring(L, v, (size_t)len);
  return 1;
}

int luaopen_luagan_mpi(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"init", l_init}, {"initialized", l_initialized}, {"rank", l_rank}, {"size", l_size},
    {"local_size", l_local}, {"barrier", l_barrier}, {"allreduce_", l_allreduce_},
    {"broadcast_", l_broadcast_}, {"allgather", l_allgather},
    {"allreduce_number", l_allreduce_number}, {"same", l_same}, {"wtime", l_wtime},
    {"abort", l_abort}, {"finalize", l_finalize}, {"library_version", l_version},
    {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
