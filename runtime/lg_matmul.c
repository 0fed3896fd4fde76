/* lg_matmul.c: NumPy matmul through cblas_sgemm, and its backward formula.
 *
 *   a: (K)       b: (K)       -> scalar (dot)
 *   a: (K)       b: (...,K,N) -> (...,N)    a promoted to (1,K), then squeezed
 *   a: (...,M,K) b: (K)       -> (...,M)    b promoted to (K,1), then squeezed
 *   a: (...,M,K) b: (...,K,N) -> (broadcast(...),M,N)
 *
 * A matrix operand whose last two dims are row-major (possibly with a row
 * pitch) or column-major (a transposed view) goes to sgemm as it is with the
 * matching transpose flag; anything else is copied to contiguous once. The
 * batch loop calls sgemm per matrix (OpenBLAS threads inside each call; we
 * never call it from an OpenMP region). */
#include <limits.h>
#include <string.h>
#include <cblas.h>
#include "lg_ops.h"

/* How sgemm can read a rows x cols matrix with the given strides (in
 * elements): *tr and *ld, or -1 when it must be copied first. Strides of
 * size-1 dims are irrelevant and ignored. */
static int lg_blas_layout(int64_t rows, int64_t cols, int64_t srow, int64_t scol,
                          CBLAS_TRANSPOSE *tr, int64_t *ld)
{
  int64_t r1 = rows > 1 ? rows : 1, c1 = cols > 1 ? cols : 1;
  /* row-major: element (r,c) at r*ld + c */
  int64_t sc = cols == 1 ? 1 : scol, sr = rows == 1 ? c1 : srow;
  if (sc == 1 && sr >= c1) { *tr = CblasNoTrans; *ld = sr; return 0; }
  /* column-major (the transpose of a row-major cols x rows): (r,c) at c*ld + r */
  sr = rows == 1 ? 1 : srow;
  sc = cols == 1 ? r1 : scol;
  if (sr == 1 && sc >= r1) { *tr = CblasTrans; *ld = sc; return 0; }
  return -1;
}

/* Number of elements in dims [0, n) of shape. */
static int64_t lg_dims_prod(int n, const int64_t *shape)
{
  int64_t p = 1;
  for (int d = 0; d < n; d++) p *= shape[d];
  return p;
}

/* Offset (in elements) of batch number bi of a tensor x whose batch dims
 * (its first xb dims) broadcast to the nb dims of bshape. */
static int64_t lg_batch_offset(const lg_tensor *x, int xb, int nb, const int64_t *bshape, int64_t bi)
{
  int64_t off = 0;
  for (int d = nb - 1; d >= 0; d--) {
    int64_t i = bi % bshape[d];
    bi /= bshape[d];
    int xd = d - (nb - xb);
    if (xd >= 0 && x->shape[xd] != 1) off += i * x->stride[xd];
  }
  return off;
}

/* c (contiguous, batch x M x N) = a @ b over the broadcast batch. a, b are
 * the promoted (>= 2-D) operands; cannot fail except for allocation. */
static int lg_mm_kernel(lg_tensor *a, lg_tensor *b, float *c, int nb, const int64_t *bshape,
                        int64_t M, int64_t K, int64_t N)
{
  int64_t nbatch = lg_dims_prod(nb, bshape);
  if (nbatch == 0 || M == 0 || N == 0) return 0;
  if (K == 0) { memset(c, 0, sizeof(float) * nbatch * M * N); return 0; }
  int ab = a->ndim - 2, bb = b->ndim - 2;
  CBLAS_TRANSPOSE ta, tb;
  int64_t lda, ldb;
  lg_tensor *ac = NULL, *bc = NULL;   /* contiguous copies when the layout needs one */
  if (lg_blas_layout(M, K, a->stride[ab], a->stride[ab + 1], &ta, &lda)) {
    if (!(ac = lg_empty(a->ndim, a->shape)) || lg_copy_(ac, a)) { lg_release(ac); return -1; }
    a = ac;
    ta = CblasNoTrans; lda = K;
  }
  if (lg_blas_layout(K, N, b->stride[bb], b->stride[bb + 1], &tb, &ldb)) {
    if (!(bc = lg_empty(b->ndim, b->shape)) || lg_copy_(bc, b)) {
      lg_release(ac); lg_release(bc);
      return -1;
    }
    b = bc;
    tb = CblasNoTrans; ldb = N;
  }
  /* b shared by every batch and a's batches stacked row after row: one
   * sgemm with M' = batch*M (the Linear-on-3-D case). */
  int tok = lg_blas_serial_begin(nbatch * M * N * K);
  int a_full = lg_dims_prod(ab, a->shape) == nbatch && ta == CblasNoTrans &&
               (ab == 0 || lg_is_contiguous(a));
  if (a_full && lg_dims_prod(bb, b->shape) == 1 && nbatch * M <= INT_MAX) {
    cblas_sgemm(CblasRowMajor, ta, tb, (int)(nbatch * M), (int)N, (int)K, 1.0f, lg_data(a),
                (int)lda, lg_data(b), (int)ldb, 0.0f, c, (int)N);
  } else {
    for (int64_t i = 0; i < nbatch; i++)
      cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0f,
                  lg_data(a) + lg_batch_offset(a, ab, nb, bshape, i), (int)lda,
                  lg_data(b) + lg_batch_offset(b, bb, nb, bshape, i), (int)ldb, 0.0f,
                  c + i * M * N, (int)N);
  }
  lg_blas_serial_end(tok);
  lg_release(ac);
  lg_release(bc);
  return 0;
}

/* saved slots of a matmul node: both factors */
enum { LG_SV_A, LG_SV_B };

lg_tensor *lg_matmul(lg_tensor *a, lg_tensor *b)
{
  char b1[128], b2[128];
  if (a->ndim == 0 || b->ndim == 0)
    return lg_error("matmul: both arguments need at least 1 dim, got shapes %s and %s",
                    lg_shape_str(a, b1, sizeof b1), lg_shape_str(b, b2, sizeof b2));
  /* Promote 1-D operands to matrices (views, nothing copied). */
  int64_t ash[2] = {1, a->shape[0]}, ast[2] = {0, a->stride[0]};
  int64_t bsh[2] = {b->shape[0], 1}, bst[2] = {b->stride[0], 1};
  lg_tensor *A = a->ndim == 1 ? lg_alias(a, 2, ash, ast, a->offset) : lg_retain(a);
  lg_tensor *B = b->ndim == 1 ? lg_alias(b, 2, bsh, bst, b->offset) : lg_retain(b);
  if (!A || !B) { lg_release(A); lg_release(B); return NULL; }
  int64_t M = A->shape[A->ndim - 2], K = A->shape[A->ndim - 1];
  int64_t K2 = B->shape[B->ndim - 2], N = B->shape[B->ndim - 1];
  lg_tensor *out = NULL;
  if (K != K2) {
    lg_error("matmul: shapes %s and %s are not aligned (%lld != %lld)",
             lg_shape_str(a, b1, sizeof b1), lg_shape_str(b, b2, sizeof b2), (long long)K,
             (long long)K2);
    goto done;
  }
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX || A->stride[A->ndim - 2] > INT_MAX ||
      A->stride[A->ndim - 1] > INT_MAX || B->stride[B->ndim - 2] > INT_MAX ||
      B->stride[B->ndim - 1] > INT_MAX) {
    lg_error("matmul: shapes %s and %s exceed the sizes BLAS can index",
             lg_shape_str(a, b1, sizeof b1), lg_shape_str(b, b2, sizeof b2));
    goto done;
  }
  /* Broadcast the batch dims. */
  int na = A->ndim - 2, nb_ = B->ndim - 2, nb = na > nb_ ? na : nb_;
  int64_t bshape[LG_MAXDIM];
  for (int d = 0; d < nb; d++) {
    int64_t x = d < nb - na ? 1 : A->shape[d - (nb - na)];
    int64_t y = d < nb - nb_ ? 1 : B->shape[d - (nb - nb_)];
    if (x != y && x != 1 && y != 1) {
      lg_error("matmul: shapes %s and %s cannot broadcast (batch dim %d: %lld vs %lld)",
               lg_shape_str(a, b1, sizeof b1), lg_shape_str(b, b2, sizeof b2), d,
               (long long)x, (long long)y);
      goto done;
    }
    bshape[d] = x == 1 ? y : x;
  }
  /* Output shape: batch, then M unless a was 1-D, then N unless b was 1-D. */
  int64_t osh[LG_MAXDIM];
  int no = 0;
  for (int d = 0; d < nb; d++) osh[no++] = bshape[d];
  if (a->ndim > 1) osh[no++] = M;
  if (b->ndim > 1) osh[no++] = N;
  if (no > LG_MAXDIM) {
    lg_error("matmul: result of %s and %s would have more than %d dims",
             lg_shape_str(a, b1, sizeof b1), lg_shape_str(b, b2, sizeof b2), LG_MAXDIM);
    goto done;
  }
  out = lg_empty(no, osh);
  if (!out) goto done;
  if (lg_mm_kernel(A, B, lg_data(out), nb, bshape, M, K, N)) {
    lg_release(out);
    out = NULL;
    goto done;
  }
  lg_tensor *in[2] = {a, b};
  if (lg_should_record(2, in)) {
    lg_node *nd = lg_record(LG_OP_MATMUL, out, 2, in, 2);
    if (!nd) { lg_release(out); out = NULL; goto done; }
    lg_save(nd, LG_SV_A, a);
    lg_save(nd, LG_SV_B, b);
  }
done:
  lg_release(A);
  lg_release(B);
  return out;
}

/* lhs @ rhs, with dim sq (a restored size-1 dim; 0 for none) squeezed
 * away and broadcast batch dims summed back to the input's shape. */
static lg_tensor *lg_bw_product(lg_tensor *lhs, lg_tensor *rhs, int sq, int ndim,
                                const int64_t *shape)
{
  lg_tensor *p = lg_matmul(lhs, rhs);
  if (!p) return NULL;
  if (sq) {
    lg_tensor *s = lg_squeeze(p, sq);
    lg_release(p);
    if (!(p = s)) return NULL;
  }
  if (p->ndim == ndim && !memcmp(p->shape, shape, sizeof(int64_t) * ndim)) return p;
  lg_tensor *r = lg_sum_to(p, ndim, shape);
  lg_release(p);
  return r;
}

/* t: (K,N) stored column-major (unit stride down the rows), K, N > 1. */
static int lg_col_major_2d(const lg_tensor *t)
{
  return t->ndim == 2 && t->shape[0] > 1 && t->shape[1] > 1 && t->stride[0] == 1 &&
         t->stride[1] == t->shape[0];
}

/* Rows of gb computed per sgemm when gb is added into an existing .grad. */
#define LG_SINK_BYTES ((size_t)1 << 20)

/* gb = (G^T @ A)^T added into sink S (K,N) in blocks of rows of G^T @ A,
 * so the only temporary is one block (~1 MiB) instead of the whole weight
 * gradient: a weight reached twice in one backward (D on real and on fake
 * images) no longer holds a second weight-sized buffer. Each element is the
 * same sgemm dot product over M as in one call, added to the same .grad
 * element, so the sums are the engine's bit for bit.
 * G: (M,N), A: (M,K), S: (K,N). */
static int lg_bw_matmul_into(lg_tensor *G, lg_tensor *A, lg_tensor *S)
{
  int64_t N = G->shape[1], K = A->shape[1];
  int64_t rows = (int64_t)(LG_SINK_BYTES / sizeof(float)) / (K > 0 ? K : 1);
  if (rows < 1) rows = 1;
  lg_tensor *Gt = lg_transpose(G, 0, 1), *St = lg_transpose(S, 0, 1);   /* (N,M), (N,K) */
  int rc = Gt && St ? 0 : -1;
  for (int64_t r0 = 0; rc == 0 && r0 < N; r0 += rows) {
    int64_t r = N - r0 < rows ? N - r0 : rows;
    lg_tensor *g = lg_narrow(Gt, 0, r0, r);              /* (r,M) */
    lg_tensor *p = g ? lg_matmul(g, A) : NULL;           /* (r,K) */
    lg_tensor *d = p ? lg_narrow(St, 0, r0, r) : NULL;   /* (r,K) of the .grad */
    if (!d || lg_add_(d, p, 1.0f)) rc = -1;
    lg_release(g); lg_release(p); lg_release(d);
  }
  lg_release(Gt); lg_release(St);
  return rc;
}

/* With the 1-D cases made 2-D (A = a as (1,K), B = b as (K,1), G = g with
 * the dropped M / N dims restored): ga = G @ B^T, gb = A^T @ G, then the
 * restored dims squeezed again and broadcast batch dims summed away. */
int lg_bw_matmul(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_tensor *a = lg_saved(n, LG_SV_A), *b = lg_saved(n, LG_SV_B);
  lg_tensor *A = NULL, *B = NULL, *G = NULL, *T = NULL;
  int rc = -1;
  if (!a || !b) goto done;
  int a1 = a->ndim == 1, b1 = b->ndim == 1;
  A = a1 ? lg_unsqueeze(a, 0) : lg_retain(a);
  B = b1 ? lg_unsqueeze(b, -1) : lg_retain(b);
  if (!A || !B) goto done;
  G = lg_retain(g);
  if (b1) { T = lg_unsqueeze(G, -1); lg_release(G); if (!(G = T)) goto done; }
  if (a1) { T = lg_unsqueeze(G, -2); lg_release(G); if (!(G = T)) goto done; }
  T = NULL;
  if (n->needs[0]) {
    lg_tensor *Bt = lg_transpose(B, -1, -2);             /* (...,N,K) */
    if (!Bt) goto done;
    gin[0] = lg_bw_product(G, Bt, a1 ? -2 : 0, n->in_ndim[0], n->in_shape[0]);
    lg_release(Bt);
    if (!gin[0]) goto done;
  }
  if (n->needs[1] && lg_col_major_2d(b) && a->ndim == 2) {
    /* b is a transposed view (Linear's weight:t()): build gb in b's own
     * layout, gb = (G^T @ A)^T, so the transpose's backward hands the leaf a
     * contiguous gradient instead of a strided one that must be copied. */
    lg_tensor *S = (size_t)lg_numel(b) * sizeof(float) > 2 * LG_SINK_BYTES ? lg_bw_sink(n, 1) : NULL;
    if (S) {                                             /* (K,N): an existing .grad, transposed */
      int e = lg_bw_matmul_into(G, A, S);
      lg_release(S);
      if (e) goto done;
    } else {
      lg_tensor *Gt = lg_transpose(G, -1, -2);           /* (N,M) */
      lg_tensor *P = Gt ? lg_matmul(Gt, A) : NULL;       /* (N,K) */
      gin[1] = P ? lg_transpose(P, -1, -2) : NULL;       /* (K,N), column-major */
      lg_release(Gt);
      lg_release(P);
      if (!gin[1]) goto done;
    }
  } else if (n->needs[1]) {
    lg_tensor *At = lg_transpose(A, -1, -2);             /* (...,K,M) */
    if (!At) goto done;
    gin[1] = lg_bw_product(At, G, b1 ? -1 : 0, n->in_ndim[1], n->in_shape[1]);
    lg_release(At);
    if (!gin[1]) goto done;
  }
  rc = 0;
done:
  lg_release(a); lg_release(b); lg_release(A); lg_release(B); lg_release(G);
  return rc;
}
