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

/* ---- overlapping the gradient allreduce with the backward pass -------------
 * dist.lua registers an optimizer's parameters as a group: buckets of at
 * most bucket_elems floats, filled in reverse parameter order (DDP's
 * choice: the last layers' gradients are final first). The runtime's
 * gradient-ready hook (lg_set_grad_ready_hook) tells us when a parameter's
 * .grad is final for a backward call; once every parameter of a bucket is,
 * it is copied into the bucket (never reduced where it lies: the gradient may
 * still change before the step, by clipping or another backward, and then
 * the copy's result is dropped) and an MPI_Iallreduce starts on the group's
 * own communicator. Buckets start strictly in order 0, 1, ..., so every
 * rank issues the same sequence of collectives on that communicator even
 * when the ranks see the gradients in different orders. The hook's ticks
 * (after every node of the backward pass) call MPI_Test, which is what makes
 * Open MPI progress a non-blocking collective. At the step, overlap_finish
 * agrees with the other ranks (on MPI_COMM_WORLD) which buckets are valid
 * everywhere: started on every rank and untouched since; a rank that started
 * fewer starts the missing ones with whatever it has (to complete the
 * matching collectives), all wait (watched), and the valid ones are copied
 * back and scaled. The others are left to dist.lua's blocking path, so the
 * result is the same either way. */

typedef struct {
  lg_tensor *param;              /* owned */
  int bucket;                    /* -1: not in a bucket (too large, or in another group) */
  int64_t off, n;                /* where in the bucket */
  int fired;                     /* final in this round */
  const lg_tensor *packed;       /* the .grad copied (identity only), and its version */
  uint32_t version;
} ov_slot;

typedef struct {
  lg_tensor *buf;                /* (n,) owned, reused every round */
  int nparams, nready, posted, done, dirty, early;
  MPI_Request req;
} ov_bucket;

typedef struct {
  MPI_Comm comm;
  int nslots, nbuckets, next_post, armed, error;
  ov_slot *slots;
  ov_bucket *b;
} ov_group;

/* every live group, and a sorted index param -> (group, slot) for the hook */
typedef struct { const lg_tensor *param; ov_group *g; int slot; } ov_key;
static ov_group **ov_groups;
static int ov_ngroups;
static ov_key *ov_index;
static int ov_nindex;
static long ov_early, ov_valid, ov_fallback;   /* buckets: started in backward, used, redone */

static int ov_key_cmp(const void *a, const void *b)
{
  uintptr_t x = (uintptr_t)((const ov_key *)a)->param, y = (uintptr_t)((const ov_key *)b)->param;
  return (x > y) - (x < y);
}

static int ov_reindex(void)
{
  int n = 0;
  for (int k = 0; k < ov_ngroups; k++) n += ov_groups[k]->nslots;
  ov_key *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
  if (!idx) return -1;
  n = 0;
  for (int k = 0; k < ov_ngroups; k++)
    for (int i = 0; i < ov_groups[k]->nslots; i++)
      if (ov_groups[k]->slots[i].bucket >= 0)
        idx[n++] = (ov_key){ov_groups[k]->slots[i].param, ov_groups[k], i};
  qsort(idx, (size_t)n, sizeof *idx, ov_key_cmp);
  free(ov_index);
  ov_index = idx;
  ov_nindex = n;
  return 0;
}

static const ov_key *ov_find(const lg_tensor *param)
{
  ov_key key = {param, NULL, 0};
  return ov_nindex ? bsearch(&key, ov_index, (size_t)ov_nindex, sizeof key, ov_key_cmp) : NULL;
}

/* Copy the bucket's gradients in (remembering which .grad and its version)
 * and start its allreduce. A gradient that cannot be copied (missing,
 * strided, wrong size) makes the bucket dirty: still started, to keep the
 * sequence, but redone at the step. */
static void ov_post(ov_group *g, int bi, int early)
{
  ov_bucket *b = &g->b[bi];
  float *dst = lg_data(b->buf);
  for (int i = 0; i < g->nslots; i++) {
    ov_slot *sl = &g->slots[i];
    if (sl->bucket != bi) continue;
    const lg_tensor *gr = sl->param->grad;
    if (!gr || !lg_is_contiguous(gr) || lg_numel(gr) != sl->n) { b->dirty = 1; sl->packed = NULL; continue; }
    memcpy(dst + sl->off, lg_data(gr), (size_t)sl->n * sizeof(float));
    sl->packed = gr;
    sl->version = gr->storage->version;
  }
  int rc = MPI_Iallreduce(MPI_IN_PLACE, dst, (int)lg_numel(b->buf), MPI_FLOAT, MPI_SUM, g->comm,
                          &b->req);
  if (rc != MPI_SUCCESS) { g->error = rc; b->dirty = 1; b->done = 1; }
  b->posted = 1;
  b->early = early;
  if (early) ov_early++;
  g->next_post = bi + 1;
}

/* MPI_Test on every started bucket: Open MPI advances a non-blocking
 * collective only inside MPI calls. */
static void ov_progress(void)
{
  for (int k = 0; k < ov_ngroups; k++) {
    ov_group *g = ov_groups[k];
    for (int bi = 0; bi < g->next_post; bi++)
      if (g->b[bi].posted && !g->b[bi].done) {
        int flag = 0;
        MPI_Test(&g->b[bi].req, &flag, MPI_STATUS_IGNORE);
        if (flag) g->b[bi].done = 1;
        else break;                  /* later ones wait on this one anyway */
      }
  }
}

/* the runtime's gradient-ready hook */
static void ov_on_ready(lg_tensor *leaf, void *user)
{
  (void)user;
  if (!mpi_ready()) return;
  if (leaf) {
    const ov_key *k = ov_find(leaf);
    if (k && k->g->armed && leaf->grad) {
      ov_group *g = k->g;
      ov_slot *sl = &g->slots[k->slot];
      ov_bucket *b = &g->b[sl->bucket];
      if (sl->fired) {
        b->dirty = 1;                /* a second backward before the step: redo it */
      } else {
        sl->fired = 1;
        b->nready++;
        while (g->next_post < g->nbuckets && g->b[g->next_post].nready == g->b[g->next_post].nparams)
          ov_post(g, g->next_post, 1);
      }
    }
  }
  ov_progress();
}

/* Wait for every started bucket (watched) and clear the round. */
static void ov_wait_all(ov_group *g, const char *what)
{
  for (int bi = 0; bi < g->nbuckets; bi++)
    if (g->b[bi].posted && !g->b[bi].done) {
      wait_watched(&g->b[bi].req, what);
      g->b[bi].done = 1;
    }
}

static void ov_reset(ov_group *g)
{
  for (int i = 0; i < g->nslots; i++) { g->slots[i].fired = 0; g->slots[i].packed = NULL; }
  for (int bi = 0; bi < g->nbuckets; bi++) {
    ov_bucket *b = &g->b[bi];
    b->nready = b->posted = b->done = b->dirty = b->early = 0;
  }
  g->next_post = 0;
}

static ov_group *ov_check(lua_State *L, int idx)
{
  ov_group **u = luaL_checkudata(L, idx, "luagan.mpi.overlap");
  if (!*u) luaL_argerror(L, idx, "overlap group already freed");
  return *u;
}

static void ov_free(ov_group *g)
{
  for (int k = 0; k < ov_ngroups; k++)
    if (ov_groups[k] == g) { ov_groups[k] = ov_groups[--ov_ngroups]; break; }
  ov_reindex();
  int busy = 0;
  for (int bi = 0; bi < g->nbuckets; bi++) busy |= g->b[bi].posted && !g->b[bi].done;
  if (busy && mpi_ready()) return;   /* MPI may still write the buffers: leak them */
  for (int i = 0; i < g->nslots; i++) lg_release(g->slots[i].param);
  for (int bi = 0; bi < g->nbuckets; bi++) lg_release(g->b[bi].buf);
  free(g->slots);
  free(g->b);
  free(g);
}

static int l_ov_gc(lua_State *L)
{
  ov_group **u = luaL_checkudata(L, 1, "luagan.mpi.overlap");
  if (*u) ov_free(*u);
  *u = NULL;
  return 0;
}

/* overlap_new({params...}, bucket_elems) -> group. Collective (it duplicates
 * MPI_COMM_WORLD): every rank calls it at the same point with the same list
 * (dist.lua's fixed order). Parameters already in another group, or larger
 * than a bucket, stay out (the blocking path reduces them). */
static int l_ov_new(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer cap = luaL_checkinteger(L, 2);
  luaL_argcheck(L, cap >= 1 && cap <= INT32_MAX, 2, "bucket size out of range");
  need_ready(L);
  int n = (int)luaL_len(L, 1);
  ov_group **u = lua_newuserdatauv(L, sizeof *u, 0);
  *u = NULL;
  luaL_setmetatable(L, "luagan.mpi.overlap");
  ov_group *g = calloc(1, sizeof *g);
  if (!g) return luaL_error(L, "dist: overlap: out of memory");
  g->slots = calloc((size_t)(n ? n : 1), sizeof *g->slots);
  g->b = calloc((size_t)(n ? n : 1), sizeof *g->b);
  if (!g->slots || !g->b) { free(g->slots); free(g->b); free(g); return luaL_error(L, "dist: overlap: out of memory"); }
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    g->slots[i].param = lg_retain(lgl_check(L, -1));
    g->slots[i].n = lg_numel(g->slots[i].param);
    g->slots[i].bucket = -1;
    g->nslots = i + 1;
    lua_pop(L, 1);
  }
  *u = g;                        /* from here the __gc frees it */
  /* reverse order into buckets of at most cap floats */
  int64_t fill = 0;
  int cur = -1;
  for (int i = n - 1; i >= 0; i--) {
    ov_slot *sl = &g->slots[i];
    if (sl->n == 0 || sl->n > cap || ov_find(sl->param)) continue;
    int dup = 0;                 /* the same tensor twice in one list */
    for (int j = i + 1; j < n && !dup; j++) dup = g->slots[j].param == sl->param && g->slots[j].bucket >= 0;
    if (dup) continue;
    if (cur < 0 || fill + sl->n > cap) { cur = g->nbuckets++; fill = 0; }
    sl->bucket = cur;
    sl->off = fill;
    fill += sl->n;
    g->b[cur].nparams++;
  }
  for (int bi = 0; bi < g->nbuckets; bi++) {
    int64_t len = 0;
    for (int i = 0; i < n; i++)
      if (g->slots[i].bucket == bi) len = g->slots[i].off + g->slots[i].n > len ? g->slots[i].off + g->slots[i].n : len;
    int64_t shape[1] = {len};
    if (!(g->b[bi].buf = lg_zeros(1, shape))) return lgl_error(L);
  }
  MPI_Request req;
  MPI_CHECK(L, "MPI_Comm_idup", MPI_Comm_idup(MPI_COMM_WORLD, &g->comm, &req));
  wait_watched(&req, "allreduce_grads (overlap setup)");
  MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN);
  ov_group **grown = realloc(ov_groups, (size_t)(ov_ngroups + 1) * sizeof *grown);
  if (!grown) return luaL_error(L, "dist: overlap: out of memory");
  ov_groups = grown;
  ov_groups[ov_ngroups++] = g;
  if (ov_reindex()) return luaL_error(L, "dist: overlap: out of memory");
  lg_set_grad_ready_hook(ov_on_ready, NULL);
  return 1;
}

/* overlap_arm(group): the gradients were just zeroed; reductions started
 * from now on belong to the next step (a round never consumed is waited
 * for and dropped). */
static int l_ov_arm(lua_State *L)
{
  ov_group *g = ov_check(L, 1);
  need_ready(L);
  ov_wait_all(g, "zero_grad (overlap: an earlier backward's allreduce)");
  ov_reset(g);
  g->armed = 1;
  return 0;
}

/* overlap_finish(group, scale) -> {reduced per slot (booleans, in the
 * registered order)}, buckets used. Collective, at the step, after
 * dist.lua agreed on the gradients' shapes; scale (or nil) multiplies the
 * sums (the mean). The parameters not marked reduced are left to the
 * blocking path. */
static int l_ov_finish(lua_State *L)
{
  ov_group *g = ov_check(L, 1);
  int has_scale = !lua_isnoneornil(L, 2);
  float scale = has_scale ? (float)luaL_checknumber(L, 2) : 1.0f;
  need_ready(L);
  if (g->error) {
    int e = g->error;
    g->error = 0;
    ov_wait_all(g, "allreduce_grads (overlap)");
    ov_reset(g);
    g->armed = 0;
    return mpi_fail(L, "MPI_Iallreduce (overlap)", e);
  }
  /* dirty: a .grad replaced or written since it was copied (clipping, ...) */
  for (int i = 0; i < g->nslots; i++) {
    ov_slot *sl = &g->slots[i];
    if (sl->bucket < 0 || !g->b[sl->bucket].posted) continue;
    const lg_tensor *gr = sl->param->grad;
    if (!sl->packed || gr != sl->packed || gr->storage->version != sl->version) g->b[sl->bucket].dirty = 1;
  }
  int K = g->nbuckets;
  int *v = malloc((size_t)(K + 2) * sizeof *v);
  if (!v) return luaL_error(L, "dist: overlap: out of memory");
  v[0] = -g->next_post;
  v[1] = g->next_post;
  for (int bi = 0; bi < K; bi++) v[2 + bi] = g->b[bi].dirty;
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, v, K + 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req);
  if (rc != MPI_SUCCESS) { free(v); return mpi_fail(L, "MPI_Iallreduce", rc); }
  wait_watched(&req, "allreduce_grads (overlap agreement)");
  int s_min = -v[0], s_max = v[1];
  /* complete the collectives some rank started */
  while (g->next_post < s_max) ov_post(g, g->next_post, 0);
  ov_wait_all(g, "allreduce_grads (overlap)");
  lua_createtable(L, g->nslots, 0);
  int used = 0;
  for (int bi = 0; bi < K; bi++) {
    int ok = bi < s_min && !v[2 + bi] && g->b[bi].posted;
    if (g->b[bi].posted) { if (ok) ov_valid++; else ov_fallback++; }
    if (!ok) continue;
    used++;
    if (has_scale && lg_mul_scalar_(g->b[bi].buf, scale) != 0) { free(v); return lgl_error(L); }
    const float *src = lg_data(g->b[bi].buf);
    for (int i = 0; i < g->nslots; i++) {
      ov_slot *sl = &g->slots[i];
      if (sl->bucket != bi) continue;
      lg_tensor *gr = sl->param->grad;
      memcpy(lg_data(gr), src + sl->off, (size_t)sl->n * sizeof(float));
      lg_bump_version(gr);
      lua_pushboolean(L, 1);
      lua_seti(L, -2, i + 1);
    }
  }
  for (int i = 0; i < g->nslots; i++) {
    lua_geti(L, -1, i + 1);
    int set = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!set) { lua_pushboolean(L, 0); lua_seti(L, -2, i + 1); }
  }
  free(v);
  ov_reset(g);
  g->armed = 0;
  lua_pushinteger(L, used);
  return 2;
}

/* overlap_stats() -> buckets started during a backward pass, buckets whose
 * result was used, buckets redone by the blocking path (since start) */
static int l_ov_stats(lua_State *L)
{
  lua_pushinteger(L, ov_early);
  lua_pushinteger(L, ov_valid);
  lua_pushinteger(L, ov_fallback);
  return 3;
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
    {"overlap_new", l_ov_new}, {"overlap_arm", l_ov_arm}, {"overlap_finish", l_ov_finish},
    {"overlap_stats", l_ov_stats},
    {NULL, NULL}};
  luaL_newmetatable(L, "luagan.mpi.overlap");
  lua_pushcfunction(L, l_ov_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  return 1;
}
