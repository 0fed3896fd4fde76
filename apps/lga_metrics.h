/* lga_metrics.h: the numerical kernels of the evaluation metrics (luagan eval).
 *
 * Dense double-precision linear algebra on small matrices (the 128x128
 * feature covariances of the Frechet distance) and nearest-neighbour /
 * kernel sums over float32 feature rows (k-NN manifolds, KID, memorisation).
 * Everything works on plain row-major arrays, so the Lua binding and the C
 * tests can call it without tensors. Functions return 0, or -1 after
 * setting the runtime's error message (lg_last_error) naming what was wrong.
 *
 * Every fast kernel (blocked cblas_sgemm distances) has a naive loop
 * reference next to it with the same signature (suffix _naive); the tests
 * compare the two.
 */
#ifndef LGA_METRICS_H
#define LGA_METRICS_H

#include <stdint.h>

/* ---- dense symmetric matrices (double) --------------------------------- */

/* Eigendecomposition of the symmetric n x n matrix a (row-major; only its
 * values are read, a is overwritten) by the cyclic Jacobi method: w gets the
 * n eigenvalues in ascending order, v (n x n, may be NULL) the eigenvectors
 * as its columns, a = v diag(w) v^T. Jacobi is slow (O(n^3) per sweep, a
 * handful of sweeps) but accurate to a few ulps in every eigenvalue, which
 * is what a Frechet distance near 0 needs. */
int lga_sym_eig(int n, double *a, double *w, double *v);

/* out (n x n) = the symmetric square root of the symmetric positive
 * semi-definite a (n x n): v diag(sqrt(max(w, 0))) v^T. a is not modified;
 * out may not alias a. Eigenvalues below -1e-6 * max|w| are an error (a is
 * not PSD); smaller negative ones are rounding and count as 0. */
int lga_sqrtm_psd(int n, const double *a, double *out);

/* *out = trace of sqrt(a b) for symmetric PSD a and b (n x n): computed as
 * trace sqrt(a^1/2 b a^1/2), whose argument is symmetric PSD, so only
 * symmetric eigendecompositions are needed (a b itself is not symmetric). */
int lga_trace_sqrt_product(int n, const double *a, const double *b, double *out);

/* Mean mu (d) and unbiased covariance cov (d x d, divided by n-1) of the n
 * rows of x (n x d float32, row-major), accumulated in double after
 * centring (two passes, so a large mean costs no precision). n >= 2. */
int lga_mean_cov(int64_t n, int d, const float *x, double *mu, double *cov);

/* *out = Frechet distance between N(mu1, c1) and N(mu2, c2) in d dims:
 * |mu1 - mu2|^2 + tr c1 + tr c2 - 2 tr sqrt(c1 c2). */
int lga_frechet(int d, const double *mu1, const double *c1, const double *mu2,
               const double *c2, double *out);

/* ---- nearest neighbours over float32 rows --------------------------------- */

/* For each row i of q (nq x d): kth[i] = Euclidean distance to its k-th
 * nearest row of r (nr x d), and nn[i] (may be NULL) = the 0-based index of
 * its nearest row. skip_self: q and r are the same set of rows (nq == nr),
 * and row i of r is not a neighbour of query i. Needs k <= nr (- 1 with
 * skip_self) and k <= 256. Distances come from |q|^2 + |r|^2 - 2 q.r
 * (sgemm over blocks), clamped at 0. */
int lga_knn(const float *q, int64_t nq, const float *r, int64_t nr, int d, int k,
           int skip_self, float *kth, int64_t *nn);
int lga_knn_naive(const float *q, int64_t nq, const float *r, int64_t nr, int d, int k,
                 int skip_self, float *kth, int64_t *nn);

/* inside[i] = 1 when row i of q (nq x d) lies in some ball around a row j of
 * r (nr x d) of radius radius[j] (|q_i - r_j| <= radius[j]), else 0. With the
 * k-NN radii of r this is the k-NN manifold test of Kynkaanniemi et al. 2019
 * (precision: q = generated, r = real; recall: the other way round). */
int lga_in_balls(const float *q, int64_t nq, const float *r, int64_t nr, int d,
                const float *radius, uint8_t *inside);
int lga_in_balls_naive(const float *q, int64_t nq, const float *r, int64_t nr, int d,
                      const float *radius, uint8_t *inside);

/* *out = unbiased MMD^2 between the rows of x (m x d) and y (n x d) with the
 * cubic polynomial kernel k(a, b) = (a.b / d + 1)^3 of KID (Binkowski et al.
 * 2018): mean of k over pairs i != j within x, plus the same within y, minus
 * twice the mean over all pairs across. m, n >= 2. Sums in double. */
int lga_mmd2_poly(const float *x, int64_t m, const float *y, int64_t n, int d, double *out);
int lga_mmd2_poly_naive(const float *x, int64_t m, const float *y, int64_t n, int d,
                       double *out);

#endif
