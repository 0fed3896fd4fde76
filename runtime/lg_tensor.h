/* lg_tensor.h: the tensor type of the luagan runtime.
 *
 * A tensor is a float32 view (shape, strides, offset) over a refcounted storage,
 * so reshape/narrow/transpose/expand share memory. Every function that returns a
 * tensor returns a NEW reference (release it with lg_release) or NULL after
 * setting the thread's error message (lg_last_error). Nothing here aborts or
 * exits on bad input; assert() guards internal invariants only.
 *
 * Dims are 0-based in C (negative dims count from the end where an argument
 * says "dim"); the Lua bindings translate from Lua's 1-based dims.
 */
#ifndef LG_TENSOR_H
#define LG_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define LG_MAXDIM 8              /* most dims a tensor may have */
/* The most elements a shape may describe (see "sizes" below). */
#define LG_MAXNUMEL (INT64_C(1) << 40)

typedef struct lg_node lg_node;
typedef struct lg_gen lg_gen;

typedef struct lg_storage {
  float *data;
  size_t nbytes;
  int refcount;
  uint32_t version;              /* bumped by in-place ops; saved tensors check it */
} lg_storage;

typedef struct lg_tensor {
  int refcount;
  int ndim;
  int64_t shape[LG_MAXDIM];
  int64_t stride[LG_MAXDIM];     /* in elements; 0 on expanded dims */
  int64_t offset;                /* in elements */
  lg_storage *storage;
  int requires_grad;
  int retains_grad;              /* non-leaf that keeps .grad after backward */
  struct lg_tensor *grad;        /* accumulated gradient (owned), or NULL */
  lg_node *grad_fn;              /* node that made this tensor (owned), NULL for leaves */
} lg_tensor;

/* ---- errors ----------------------------------------------------------- */
/* Set the thread's error message; always returns NULL so callers can
 * `return lg_error("add: ...")`. */
void *lg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *lg_last_error(void);
/* Prefix the current message with "ctx: " (used by layers above an op). */
void lg_error_prefix(const char *ctx);

/* ---- lifetime ----------------------------------------------------------- */
lg_tensor *lg_retain(lg_tensor *t);       /* returns t; NULL-safe */
void lg_release(lg_tensor *t);            /* NULL-safe */

/* ---- storage / allocation -------------------------------------------- */
/* Bytes of tensor storage alive now (for the Lua GC pressure hint). */
size_t lg_mem_live_bytes(void);
/* Bytes the caching allocator holds for reuse; lg_mem_trim frees them. */
size_t lg_mem_cached_bytes(void);
/* Frees the cached blocks and forgets the step marks. */
void lg_mem_trim(void);
/* A training step ended (every optimizer step calls it): the live peak since
 * the previous mark joins the last 16 marked steps' peaks, and the cache may
 * hold blocks until live + cached reaches twice their largest, so a step
 * whose backward pass frees more than stays alive still reuses all of it
 * next time; cached sizes no allocation took during those 16 steps are
 * freed. Without marks the cache holds at most the live bytes (or 64 MiB). */
void lg_mem_step_mark(void);
/* What live + cached may reach since the last mark: twice the largest live
 * peak of the marked steps (0 without marks). */
size_t lg_mem_hold_limit(void);
/* Number of system allocations the caching allocator has made (for tests
 * asserting a steady-state loop allocates nothing). */
uint64_t lg_mem_sys_allocs(void);
/* High-water marks since the last lg_mem_reset_peaks (or the start): of the
 * live bytes, and of the bytes held (live + cached), which RSS follows. */
size_t lg_mem_peak_live_bytes(void);
size_t lg_mem_peak_held_bytes(void);
void lg_mem_reset_peaks(void);

/* ---- construction ----------------------------------------------------- */
/* shape: ndim sizes, each >= 0, passing lg_shape_check. Uninitialised
 * contents. lg_empty_op names op in its errors ("zeros: shape ... is too
 * large"); lg_empty says "empty". */
lg_tensor *lg_empty(int ndim, const int64_t *shape);
lg_tensor *lg_empty_op(const char *op, int ndim, const int64_t *shape);
lg_tensor *lg_empty_like(const lg_tensor *t);
/* A view sharing t's storage with the given geometry (no checks beyond ndim). */
lg_tensor *lg_alias(const lg_tensor *t, int ndim, const int64_t *shape,
                    const int64_t *stride, int64_t offset);
/* Detached alias: same storage and geometry, no grad_fn, requires_grad 0. */
lg_tensor *lg_detach(const lg_tensor *t);
/* Copy from a flat float array (contiguous row-major). */
lg_tensor *lg_from_data(int ndim, const int64_t *shape, const float *data);
lg_tensor *lg_scalar(float v);            /* 0-dim tensor */

/* ---- sizes ----------------------------------------------------------------
 * Every tensor and view keeps the product of its sizes, a zero size counting
 * as 1, at most LG_MAXNUMEL (2^40). Then the element count, every stride of a
 * contiguous layout and every byte count (4 * 2^40) of any tensor fit int64_t
 * and size_t with room to spare, and no product of a tensor's sizes can
 * overflow. Shapes that come from outside (arguments, file headers, expand,
 * reshape) pass lg_shape_check; other size arithmetic uses lg_size_mul. */
/* *r = a * b for sizes a, b >= 0; -1 (no error set, *r untouched) when a or
 * b is negative or the product exceeds LG_MAXNUMEL. */
static inline int lg_size_mul(int64_t a, int64_t b, int64_t *r)
{
  int64_t p;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &p) || p > LG_MAXNUMEL) return -1;
  *r = p;
  return 0;
}
/* Check that shape (ndim sizes) may be a tensor's: 0 <= ndim <= LG_MAXDIM,
 * every size >= 0 and the product of the sizes, zeros counting as 1, at most
 * LG_MAXNUMEL. Sets *numel (if non-NULL) to the element count. 0, or -1 with
 * an error naming op and the shape. */
int lg_shape_check(const char *op, int ndim, const int64_t *shape, int64_t *numel);

/* ---- geometry helpers ---------------------------------------------------- */
int64_t lg_numel(const lg_tensor *t);   /* cannot overflow: see "sizes" */
int lg_is_contiguous(const lg_tensor *t);
/* Pointer to element 0 of the view (storage data + offset). */
static inline float *lg_data(const lg_tensor *t) { return t->storage->data + t->offset; }
/* Writes "64x100" (or "scalar" for 0-dim) into buf; returns buf. */
char *lg_shape_str(const lg_tensor *t, char *buf, size_t n);
char *lg_shape_str_raw(int ndim, const int64_t *shape, char *buf, size_t n);
/* Normalise a possibly negative dim against ndim; -1 and an error if out of range. */
int lg_wrap_dim(const char *op, int dim, int ndim);
int lg_same_shape(const lg_tensor *a, const lg_tensor *b);
/* Broadcast two shapes (NumPy rules); -1 + error naming op on failure. */
int lg_broadcast_shape(const char *op, int na, const int64_t *sa, int nb,
                       const int64_t *sb, int *nout, int64_t *out);
/* Read element at a multi-index (slow; for tests, item(), printing). */
float lg_get(const lg_tensor *t, const int64_t *idx);
/* Copy the view's elements into a contiguous buffer of lg_numel floats. */
void lg_read(const lg_tensor *t, float *dst);
/* Bump the storage version after an in-place write. */
static inline void lg_bump_version(lg_tensor *t) { t->storage->version++; }

/* ---- strided iteration --------------------------------------------------
 * lg_iter walks up to LG_ITER_MAX operands that share one (broadcast) shape,
 * coalescing dims, and hands the kernel 1-D runs: count elements with per
 * operand strides. Operand 0 is normally the output. */
#define LG_ITER_MAX 4
typedef struct lg_iter {
  int nops, ndim;
  int64_t shape[LG_MAXDIM];
  int64_t stride[LG_ITER_MAX][LG_MAXDIM];
  float *base[LG_ITER_MAX];
} lg_iter;
/* Build an iterator: each operand t[i] is broadcast (stride 0) to shape. */
void lg_iter_init(lg_iter *it, int nops, lg_tensor *const *t, int ndim, const int64_t *shape);
/* Number of inner runs and length of each run. */
int64_t lg_iter_outer(const lg_iter *it);
int64_t lg_iter_inner(const lg_iter *it);
/* Pointers and inner strides for outer run r. */
void lg_iter_run(const lg_iter *it, int64_t r, float **ptrs, int64_t *inner_stride);

/* ---- grad mode ------------------------------------------------------------ */
int lg_grad_enabled(void);
int lg_set_grad_enabled(int on);          /* returns the previous mode */

/* ---- threads ------------------------------------------------------------- */
void lg_set_num_threads(int n);           /* OpenMP and OpenBLAS together */
int lg_get_num_threads(void);
/* Elementwise loops shorter than this run on one thread: waking a sleeping
 * OpenMP thread costs about what 256K float operations take, and on a busy
 * machine a second thread often is not free at all. */
#define LG_PAR_MIN ((int64_t)1 << 18)
/* BLAS calls of fewer multiply-adds than this run on one thread (see
 * lg_blas_serial_begin). */
#define LG_BLAS_PAR_MIN ((int64_t)1 << 23)
/* Bracket a BLAS call of `macs` multiply-adds: below LG_BLAS_PAR_MIN it runs
 * on one thread, otherwise on lg_get_num_threads(). Returns the token for
 * lg_blas_serial_end. Main thread only (BLAS inside an OpenMP region is
 * serial anyway). */
int lg_blas_serial_begin(int64_t macs);
void lg_blas_serial_end(int token);
/* Name of the OpenBLAS kernels in use ("SkylakeX", "Haswell", ...). */
const char *lg_blas_corename(void);

#endif
