/* lg_tensor.c: tensor lifetime, errors, the caching allocator, geometry
 * helpers, the strided iterator, grad mode and threads. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <strings.h>
#include <assert.h>
#include <omp.h>
#include "lg_tensor.h"
#include "lg_autograd.h"

/* ---- errors ----------------------------------------------------------- */
static _Thread_local char lg_errbuf[1024];

void *lg_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(lg_errbuf, sizeof lg_errbuf, fmt, ap);
  va_end(ap);
  return NULL;
}

const char *lg_last_error(void) { return lg_errbuf[0] ? lg_errbuf : "unknown error"; }

void lg_error_prefix(const char *ctx)
{
  char tmp[sizeof lg_errbuf];
  size_t k = strlen(ctx);
  if (k > sizeof tmp / 2) k = sizeof tmp / 2;
  memcpy(tmp, ctx, k);
  memcpy(tmp + k, ": ", 2);
  size_t rest = strlen(lg_errbuf);
  if (rest > sizeof tmp - k - 3) rest = sizeof tmp - k - 3;
  memcpy(tmp + k + 2, lg_errbuf, rest);
  tmp[k + 2 + rest] = 0;
  memcpy(lg_errbuf, tmp, sizeof tmp);
}

/* ---- caching allocator -------------------------------------------------
 * Freed blocks go to a free list keyed by their exact rounded size, so a
 * training step that allocates the same shapes every iteration reuses them
 * and makes no system allocation in steady state. The cache is capped: a
 * block freed while the cache is full goes back to the system.
 *
 * The cap follows the live set: the cache never holds more than the bytes
 * in use (or LG_CACHE_FLOOR, whichever is larger), so RSS stays within
 * about twice the live peak. A steady loop is unaffected (its temporaries are
 * freed while its own live set, which they are part of, is at least as
 * large), while one-off phases (loading a data set or a checkpoint, sampling
 * or featurising in chunks) no longer leave hundreds of MB of dead blocks of
 * sizes that never recur.
 *
 * Following the live set alone fails a large step, though: late in its
 * backward pass the live set falls to weights and gradients while the
 * activations are freed, so the cache may keep only a live set's worth of
 * them and the next forward pass takes the rest from the system again. So
 * each completed step (lg_mem_step_mark, called by every optimizer step)
 * records its live peak, and live + cached may also reach twice the largest
 * peak of the last LG_MARK_WINDOWS steps (not the peak itself: blocks of
 * sizes that are never alive together must all stay cached, so a step's
 * blocks add up to more than its live peak). What a steady loop holds is
 * then just the blocks it takes again; a size no allocation asked for
 * during the last LG_MARK_WINDOWS steps is given back at the next mark, so a
 * one-off phase inside training does not stay cached. A phase after
 * training (or after a trim, which forgets the marks) is back to the live
 * rule. */
#define LG_ALIGN 64
#define LG_NBUCKETS 1024
#define LG_CACHE_CAP ((size_t)2 << 30)     /* 2 GiB kept for reuse at most */
#define LG_CACHE_FLOOR ((size_t)64 << 20)  /* always cacheable: small runs never hit the cap */
/* Steps whose live peaks bound the cache: enough for a GAN step of several
 * optimizer steps (WGAN: five critic steps and a generator step). */
#define LG_MARK_WINDOWS 16

typedef struct lg_block { struct lg_block *next; } lg_block;
typedef struct {
  size_t size;
  lg_block *head;
  uint64_t used;    /* lg_nmarks when a block of this size was last taken or cached */
} lg_bucket;

static lg_bucket lg_buckets[LG_NBUCKETS];
static size_t lg_live_bytes, lg_cached_bytes;
static size_t lg_peak_live, lg_peak_held;   /* high-water marks, lg_mem_reset_peaks */
static size_t lg_window_peak;               /* live peak since the last step mark */
static size_t lg_marks[LG_MARK_WINDOWS];    /* live peaks of the last marked steps */
static uint64_t lg_nmarks;                  /* marks so far; lg_marks[lg_nmarks % N] is next */
static size_t lg_hold_limit;                /* 2 x max of lg_marks: live + cached may reach it */
static uint64_t lg_sys_allocs;
static omp_lock_t lg_alloc_lock;
static int lg_alloc_lock_ready;

static void lg_lock(void)
{
  /* Tensors are created from one thread (the Lua state); the lock guards
   * against kernels that allocate from worker threads. */
  if (!lg_alloc_lock_ready) { omp_init_lock(&lg_alloc_lock); lg_alloc_lock_ready = 1; }
  omp_set_lock(&lg_alloc_lock);
}
static void lg_unlock(void) { omp_unset_lock(&lg_alloc_lock); }

static size_t lg_round(size_t n) { return (n + LG_ALIGN - 1) / LG_ALIGN * LG_ALIGN; }

/* Blocks from this size up are mapped from the kernel directly and unmapped
 * when the cache lets them go, so giving them back lowers RSS at once.
 * Through malloc they would land in its heap once glibc's adaptive mmap
 * threshold had grown past them (it follows the largest block freed, up to
 * 32 MiB), and a freed heap block stays resident. */
#define LG_MAP_MIN ((size_t)1 << 20)

static void *lg_sys_alloc(size_t size)
{
  if (size < LG_MAP_MIN) return aligned_alloc(LG_ALIGN, size);
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;   /* page aligned, so LG_ALIGN aligned */
}

/* size: the rounded size p was allocated with */
static void lg_sys_free(void *p, size_t size)
{
  if (!p) return;
  if (size < LG_MAP_MIN) free(p);
  else munmap(p, size);
}

static lg_bucket *lg_bucket_for(size_t size, int create)
{
  size_t h = (size / LG_ALIGN) * 2654435761u % LG_NBUCKETS;
  for (size_t k = 0; k < LG_NBUCKETS; k++) {
    lg_bucket *b = &lg_buckets[(h + k) % LG_NBUCKETS];
    if (b->size == size) return b;
    if (b->size == 0) {
      if (!create) return NULL;
      b->size = size;
      return b;
    }
  }
  return NULL;   /* table full: caller falls back to the system allocator */
}

static void *lg_alloc(size_t n)
{
  size_t size = lg_round(n ? n : 1);
  lg_lock();
  lg_bucket *b = lg_bucket_for(size, 0);
  void *p = NULL;
  if (b && b->head) {
    p = b->head;
    b->head = b->head->next;
    b->used = lg_nmarks;
    lg_cached_bytes -= size;
  }
  lg_unlock();
  if (!p) {
    p = lg_sys_alloc(size);
    if (!p) return NULL;
    lg_lock();
    lg_sys_allocs++;
    lg_unlock();
  }
  lg_lock();
  lg_live_bytes += size;
  if (lg_live_bytes > lg_peak_live) lg_peak_live = lg_live_bytes;
  if (lg_live_bytes > lg_window_peak) lg_window_peak = lg_live_bytes;
  if (lg_live_bytes + lg_cached_bytes > lg_peak_held) lg_peak_held = lg_live_bytes + lg_cached_bytes;
  lg_unlock();
  return p;
}

static void lg_dealloc(void *p, size_t n)
{
  size_t size = lg_round(n ? n : 1);
  lg_lock();
  lg_live_bytes -= size;
  size_t cap = lg_live_bytes > LG_CACHE_FLOOR ? lg_live_bytes : LG_CACHE_FLOOR;
  if (lg_hold_limit > lg_live_bytes && lg_hold_limit - lg_live_bytes > cap)
    cap = lg_hold_limit - lg_live_bytes;
  if (cap > LG_CACHE_CAP) cap = LG_CACHE_CAP;
  lg_bucket *b = lg_cached_bytes + size <= cap ? lg_bucket_for(size, 1) : NULL;
  if (b) {
    lg_block *blk = p;
    blk->next = b->head;
    b->head = blk;
    b->used = lg_nmarks;
    lg_cached_bytes += size;
    p = NULL;
  }
  lg_unlock();
  lg_sys_free(p, size);
}

size_t lg_mem_live_bytes(void) { return lg_live_bytes; }
size_t lg_mem_cached_bytes(void) { return lg_cached_bytes; }
uint64_t lg_mem_sys_allocs(void) { return lg_sys_allocs; }
size_t lg_mem_peak_live_bytes(void) { return lg_peak_live; }
size_t lg_mem_peak_held_bytes(void) { return lg_peak_held; }

void lg_mem_reset_peaks(void)
{
  lg_lock();
  lg_peak_live = lg_live_bytes;
  lg_peak_held = lg_live_bytes + lg_cached_bytes;
  lg_unlock();
}

/* Gives every cached block of b back to the system (the lock is held). */
static void lg_bucket_release_all(lg_bucket *b)
{
  while (b->head) {
    lg_block *nx = b->head->next;
    lg_sys_free(b->head, b->size);
    lg_cached_bytes -= b->size;
    b->head = nx;
  }
}

/* Re-inserts every bucket that still has a size, after lg_mem_step_mark has
 * cleared the sizes it dropped: an open-addressing slot cannot be emptied in
 * place without breaking the probe chains through it, and without giving the
 * slots back a run that meets more than LG_NBUCKETS distinct sizes between
 * trims would find the table full and cache no new size. (The lock is held.) */
static void lg_buckets_rehash(void)
{
  static lg_bucket keep[LG_NBUCKETS];
  int n = 0;
  for (int i = 0; i < LG_NBUCKETS; i++)
    if (lg_buckets[i].size) keep[n++] = lg_buckets[i];
  memset(lg_buckets, 0, sizeof lg_buckets);
  for (int i = 0; i < n; i++) *lg_bucket_for(keep[i].size, 1) = keep[i];
}

void lg_mem_step_mark(void)
{
  lg_lock();
  lg_marks[lg_nmarks % LG_MARK_WINDOWS] = lg_window_peak;
  lg_nmarks++;
  size_t peak = 0;
  for (int i = 0; i < LG_MARK_WINDOWS; i++)
    if (lg_marks[i] > peak) peak = lg_marks[i];
  lg_hold_limit = peak > LG_CACHE_CAP ? 2 * LG_CACHE_CAP : 2 * peak;
  lg_window_peak = lg_live_bytes;
  /* sizes no allocation asked for during the last LG_MARK_WINDOWS marks go,
   * blocks and slot (a steady loop drops nothing and rehashes nothing) */
  int dropped = 0;
  for (int i = 0; i < LG_NBUCKETS; i++) {
    lg_bucket *b = &lg_buckets[i];
    if (b->size && lg_nmarks - b->used > LG_MARK_WINDOWS) {
      lg_bucket_release_all(b);
      b->size = 0;
      dropped = 1;
    }
  }
  if (dropped) lg_buckets_rehash();
  lg_unlock();
}

size_t lg_mem_hold_limit(void) { return lg_hold_limit; }

void lg_mem_trim(void)
{
  lg_lock();
  memset(lg_marks, 0, sizeof lg_marks);
  lg_hold_limit = 0;
  lg_window_peak = lg_live_bytes;
  for (int i = 0; i < LG_NBUCKETS; i++) {
    lg_bucket_release_all(&lg_buckets[i]);
    lg_buckets[i].size = 0;
  }
  lg_unlock();
#ifdef __GLIBC__
  /* The blocks under LG_MAP_MIN went back to malloc's heap, where freed
   * pages stay resident; hand the free pages to the kernel too, or a phase
   * after a trim (a recipe's final evaluation) grows RSS past them. */
  malloc_trim(0);
#endif
}

/* ---- lifetime ------------------------------------------------------------- */
static void lg_storage_release(lg_storage *s)
{
  if (s && --s->refcount == 0) {
    lg_dealloc(s->data, s->nbytes);
    free(s);
  }
}

lg_tensor *lg_retain(lg_tensor *t)
{
  if (t) t->refcount++;
  return t;
}

void lg_release(lg_tensor *t)
{
  if (!t || --t->refcount > 0) return;
  if (t->retains_grad) lg_forget_retained(t);
  lg_storage_release(t->storage);
  lg_release(t->grad);
  if (t->grad_fn) lg_node_release(t->grad_fn);
  free(t);
}

/* ---- construction ----------------------------------------------------- */
static lg_tensor *lg_tensor_new(void)
{
  lg_tensor *t = calloc(1, sizeof *t);
  if (!t) return lg_error("out of memory");
  t->refcount = 1;
  return t;
}

static void lg_set_contiguous_strides(lg_tensor *t)
{
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    t->stride[d] = s;
    s *= t->shape[d];
  }
}

int lg_shape_check(const char *op, int ndim, const int64_t *shape, int64_t *numel)
{
  char buf[160];
  if (ndim < 0 || ndim > LG_MAXDIM) {
    lg_error("%s: %d dims requested, at most %d supported", op, ndim, LG_MAXDIM);
    return -1;
  }
  int64_t n = 1, extent = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) {
      lg_error("%s: negative size %lld in shape %s", op, (long long)shape[d],
               lg_shape_str_raw(ndim, shape, buf, sizeof buf));
      return -1;
    }
    /* extent >= n, so n cannot overflow once extent did not */
    if (lg_size_mul(extent, shape[d] ? shape[d] : 1, &extent)) {
      lg_error("%s: shape %s is too large: its sizes multiply to more than 2^40 (the most "
               "elements a tensor may have; a size 0 counts as 1)", op,
               lg_shape_str_raw(ndim, shape, buf, sizeof buf));
      return -1;
    }
    n *= shape[d];
  }
  if (numel) *numel = n;
  return 0;
}

lg_tensor *lg_empty(int ndim, const int64_t *shape) { return lg_empty_op("empty", ndim, shape); }

lg_tensor *lg_empty_op(const char *op, int ndim, const int64_t *shape)
{
  char buf[128];
  int64_t n;
  if (lg_shape_check(op, ndim, shape, &n)) return NULL;
  lg_tensor *t = lg_tensor_new();
  if (!t) return NULL;
  lg_storage *s = calloc(1, sizeof *s);
  if (s) {
    s->refcount = 1;
    s->nbytes = (size_t)n * sizeof(float);
    s->data = lg_alloc(s->nbytes);
  }
  if (!s || !s->data) {
    free(s);
    free(t);
    return lg_error("%s: out of memory allocating %s (%.1f MiB)", op,
                    lg_shape_str_raw(ndim, shape, buf, sizeof buf), n * 4.0 / (1 << 20));
  }
  t->storage = s;
  t->ndim = ndim;
  if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * ndim);   /* shape may be NULL at 0 dims */
  lg_set_contiguous_strides(t);
  return t;
}

lg_tensor *lg_empty_like(const lg_tensor *t) { return lg_empty(t->ndim, t->shape); }

lg_tensor *lg_alias(const lg_tensor *t, int ndim, const int64_t *shape,
                    const int64_t *stride, int64_t offset)
{
  assert(ndim >= 0 && ndim <= LG_MAXDIM);
  lg_tensor *a = lg_tensor_new();
  if (!a) return NULL;
  a->ndim = ndim;
  if (ndim) {
    memcpy(a->shape, shape, sizeof(int64_t) * ndim);
    memcpy(a->stride, stride, sizeof(int64_t) * ndim);
  }
  a->offset = offset;
  a->storage = t->storage;
  a->storage->refcount++;
  return a;
}

lg_tensor *lg_detach(const lg_tensor *t)
{
  return lg_alias(t, t->ndim, t->shape, t->stride, t->offset);
}

lg_tensor *lg_from_data(int ndim, const int64_t *shape, const float *data)
{
  lg_tensor *t = lg_empty(ndim, shape);
  if (t) memcpy(t->storage->data, data, t->storage->nbytes);
  return t;
}

lg_tensor *lg_scalar(float v)
{
  lg_tensor *t = lg_empty(0, NULL);
  if (t) t->storage->data[0] = v;
  return t;
}

/* ---- geometry ------------------------------------------------------------ */
int64_t lg_numel(const lg_tensor *t)
{
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

int lg_is_contiguous(const lg_tensor *t)
{
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != s) return 0;
    s *= t->shape[d];
  }
  return 1;
}

char *lg_shape_str_raw(int ndim, const int64_t *shape, char *buf, size_t n)
{
  if (ndim == 0) { snprintf(buf, n, "scalar"); return buf; }
  size_t k = 0;
  buf[0] = 0;
  for (int d = 0; d < ndim && k < n; d++)
    k += snprintf(buf + k, n - k, d ? "x%lld" : "%lld", (long long)shape[d]);
  return buf;
}

char *lg_shape_str(const lg_tensor *t, char *buf, size_t n)
{
  return lg_shape_str_raw(t->ndim, t->shape, buf, n);
}

int lg_wrap_dim(const char *op, int dim, int ndim)
{
  int d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim) {
    lg_error("%s: dim %d out of range for a tensor of %d dims", op, dim, ndim);
    return -1;
  }
  return d;
}

int lg_same_shape(const lg_tensor *a, const lg_tensor *b)
{
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

int lg_broadcast_shape(const char *op, int na, const int64_t *sa, int nb,
                       const int64_t *sb, int *nout, int64_t *out)
{
  int n = na > nb ? na : nb;
  for (int k = 0; k < n; k++) {
    int64_t x = k < n - na ? 1 : sa[k - (n - na)];
    int64_t y = k < n - nb ? 1 : sb[k - (n - nb)];
    if (x != y && x != 1 && y != 1) {
      char b1[128], b2[128];
      lg_error("%s: shapes %s and %s cannot broadcast", op,
               lg_shape_str_raw(na, sa, b1, sizeof b1), lg_shape_str_raw(nb, sb, b2, sizeof b2));
      return -1;
    }
    out[k] = x == 1 ? y : x;
  }
  *nout = n;
  return 0;
}

float lg_get(const lg_tensor *t, const int64_t *idx)
{
  int64_t off = t->offset;
  for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
  return t->storage->data[off];
}

void lg_read(const lg_tensor *t, float *dst)
{
  if (lg_is_contiguous(t)) {
    memcpy(dst, lg_data(t), sizeof(float) * lg_numel(t));
    return;
  }
  lg_iter it;
  lg_tensor *ops[1] = {(lg_tensor *)t};
  lg_iter_init(&it, 1, ops, t->ndim, t->shape);
  int64_t outer = lg_iter_outer(&it), inner = lg_iter_inner(&it), k = 0;
  for (int64_t r = 0; r < outer; r++) {
    float *p; int64_t s;
    lg_iter_run(&it, r, &p, &s);
    for (int64_t i = 0; i < inner; i++) dst[k++] = p[i * s];
  }
}

/* ---- strided iteration ---------------------------------------------------- */
void lg_iter_init(lg_iter *it, int nops, lg_tensor *const *t, int ndim, const int64_t *shape)
{
  assert(nops <= LG_ITER_MAX);
  it->nops = nops;
  /* Per operand strides aligned to `shape` (stride 0 where broadcast). */
  int64_t st[LG_ITER_MAX][LG_MAXDIM];
  for (int o = 0; o < nops; o++) {
    const lg_tensor *x = t[o];
    it->base[o] = lg_data(x);
    for (int d = 0; d < ndim; d++) {
      int xd = d - (ndim - x->ndim);
      st[o][d] = (xd < 0 || x->shape[xd] == 1) ? 0 : x->stride[xd];
    }
  }
  /* Drop size-1 dims, then coalesce neighbours whose strides chain for every
   * operand, so contiguous data becomes one long run. */
  int n = 0;
  int64_t sh[LG_MAXDIM];
  int64_t cs[LG_ITER_MAX][LG_MAXDIM];
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1) continue;
    if (n > 0) {
      int ok = 1;
      for (int o = 0; o < nops; o++)
        if (cs[o][n - 1] != st[o][d] * shape[d]) { ok = 0; break; }
      if (ok) {
        sh[n - 1] *= shape[d];
        for (int o = 0; o < nops; o++) cs[o][n - 1] = st[o][d];
        continue;
      }
    }
    sh[n] = shape[d];
    for (int o = 0; o < nops; o++) cs[o][n] = st[o][d];
    n++;
  }
  int empty = 0;
  for (int d = 0; d < ndim; d++) if (shape[d] == 0) empty = 1;
  if (n == 0) { sh[0] = empty ? 0 : 1; for (int o = 0; o < nops; o++) cs[o][0] = 0; n = 1; }
  if (empty) { sh[0] = 0; n = 1; }
  it->ndim = n;
  memcpy(it->shape, sh, sizeof(int64_t) * n);
  for (int o = 0; o < nops; o++) memcpy(it->stride[o], cs[o], sizeof(int64_t) * n);
}

int64_t lg_iter_inner(const lg_iter *it) { return it->shape[it->ndim - 1]; }

int64_t lg_iter_outer(const lg_iter *it)
{
  int64_t n = 1;
  for (int d = 0; d < it->ndim - 1; d++) n *= it->shape[d];
  return it->shape[it->ndim - 1] == 0 ? 0 : n;
}

void lg_iter_run(const lg_iter *it, int64_t r, float **ptrs, int64_t *inner_stride)
{
  int64_t off[LG_ITER_MAX] = {0};
  for (int d = it->ndim - 2; d >= 0; d--) {
    int64_t i = r % it->shape[d];
    r /= it->shape[d];
    for (int o = 0; o < it->nops; o++) off[o] += i * it->stride[o][d];
  }
  for (int o = 0; o < it->nops; o++) {
    ptrs[o] = it->base[o] + off[o];
    inner_stride[o] = it->stride[o][it->ndim - 1];
  }
}

/* ---- grad mode ------------------------------------------------------------- */
static _Thread_local int lg_grad_off;   /* zero-initialised: grad mode starts on */

int lg_grad_enabled(void) { return !lg_grad_off; }

int lg_set_grad_enabled(int on)
{
  int prev = !lg_grad_off;
  lg_grad_off = !on;
  return prev;
}

/* ---- threads ------------------------------------------------------------------ */
void openblas_set_num_threads(int n);   /* from OpenBLAS; declared here to keep cblas.h out */
char *openblas_get_corename(void);

/* ---- OpenBLAS kernels -------------------------------------------------------------
 * OpenBLAS 0.3.21 (Debian 12) predates AMD Zen 4/5: on those AVX-512 CPUs its
 * runtime dispatch falls back to the Haswell (AVX2) kernels (and some
 * environments pin OPENBLAS_CORETYPE=Haswell), about half the sgemm
 * throughput (BENCHMARKS.md has the measurement). Later OpenBLAS
 * releases run the SkylakeX kernels there; do the same by re-running the
 * library's dispatch once at load time, before any BLAS call, when the CPU
 * has the AVX-512 subsets those kernels use and the choice was a generic AVX2
 * core. LUAGAN_BLAS_CORETYPE=<name> picks the kernels explicitly instead
 * ("" = leave OpenBLAS's choice alone). Needs a DYNAMIC_ARCH OpenBLAS that
 * exports its dispatch hooks (weak references: other builds keep theirs). */
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));

__attribute__((constructor)) static void lg_blas_pick_kernels(void)
{
  if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
  const char *want = getenv("LUAGAN_BLAS_CORETYPE"), *core = openblas_get_corename();
  if (!core || (want && !*want)) return;
  if (!want) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl") ||
        !__builtin_cpu_supports("avx512cd"))
      return;
    if (strcasecmp(core, "haswell") && strcasecmp(core, "zen")) return;
    want = "SkylakeX";
  }
  if (!strcasecmp(core, want)) return;
  /* OpenBLAS reads OPENBLAS_CORETYPE; put the caller's value back after, so
   * child processes see the environment they were given. */
  const char *prev = getenv("OPENBLAS_CORETYPE");
  char saved[64] = {0};
  if (prev) snprintf(saved, sizeof saved, "%s", prev);
  setenv("OPENBLAS_CORETYPE", want, 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  if (prev) setenv("OPENBLAS_CORETYPE", saved, 1);
  else unsetenv("OPENBLAS_CORETYPE");
}

/* Which OpenBLAS kernels run (for benchmarks and bug reports). */
const char *lg_blas_corename(void)
{
  const char *c = openblas_get_corename();
  return c ? c : "?";
}

void lg_set_num_threads(int n)
{
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int lg_get_num_threads(void) { return omp_get_max_threads(); }

/* Small sgemms split over threads spend more on the split (a wake-up, a
 * barrier, every thread packing its panels) than they save. The thread
 * count goes down for the call and back after: cheap calls that only set
 * counters (OpenBLAS's OpenMP build keeps no pool of its own). */
int lg_blas_serial_begin(int64_t macs)
{
  if (macs >= LG_BLAS_PAR_MIN || omp_in_parallel()) return 0;
  int n = omp_get_max_threads();
  if (n <= 1) return 0;
  openblas_set_num_threads(1);
  return n;
}

void lg_blas_serial_end(int token)
{
  if (token > 0) lg_set_num_threads(token);
}
