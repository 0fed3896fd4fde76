/* lga_metrics.c: symmetric eigendecomposition (Jacobi), matrix square roots,
 * feature statistics, and the blocked nearest-neighbour / kernel sums of the
 * evaluation metrics. See lga_metrics.h for the contracts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "lg_tensor.h"
#include "lga_metrics.h"

/* Blocks of the sgemm-based kernels: QB query rows x RB reference rows of
 * float distances at a time (QB*RB*4 bytes = 2 MiB), small enough to stay in
 * cache-friendly sizes, large enough for sgemm to run at full speed. */
#define QB 256
#define RB 2048
#define KNN_MAX_K 256

static int check_rows(const char *who, const void *p, int64_t n, int d)
{
  if (n < 0 || d < 1) {
    lg_error("%s: bad sizes (%lld rows of %d values)", who, (long long)n, d);
    return -1;
  }
  if (n > 0 && p == NULL) {
    lg_error("%s: NULL data", who);
    return -1;
  }
  return 0;
}

/* ---- dense symmetric matrices ------------------------------------------------ */

int lga_sym_eig(int n, double *a, double *w, double *v)
{
  if (n < 0 || (n > 0 && (a == NULL || w == NULL))) {
    lg_error("sym_eig: bad arguments (n = %d)", n);
    return -1;
  }
  /* the strict lower triangle must mirror the upper one (to rounding) */
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      double x = a[i * n + j], y = a[j * n + i];
      if (!(fabs(x - y) <= 1e-9 * (fabs(x) + fabs(y)) + 1e-300)) {
        lg_error("sym_eig: matrix is not symmetric: a[%d][%d] = %.17g, a[%d][%d] = %.17g",
                 i + 1, j + 1, x, j + 1, i + 1, y);
        return -1;
      }
      if (!isfinite(x)) {
        lg_error("sym_eig: matrix has a non-finite entry a[%d][%d] = %g", i + 1, j + 1, x);
        return -1;
      }
      a[i * n + j] = a[j * n + i] = 0.5 * (x + y);
    }
  for (int i = 0; i < n; i++)
    if (!isfinite(a[i * n + i])) {
      lg_error("sym_eig: matrix has a non-finite entry a[%d][%d] = %g", i + 1, i + 1, a[i * n + i]);
      return -1;
    }
  if (v) {
    memset(v, 0, sizeof(double) * (size_t)n * (size_t)n);
    for (int i = 0; i < n; i++) v[i * n + i] = 1;
  }
  int converged = 0;
  for (int sweep = 0; sweep < 100 && !converged; sweep++) {
    double off = 0, total = 0;
    for (int i = 0; i < n; i++) {
      total += a[i * n + i] * a[i * n + i];
      for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    total += 2 * off;
    /* off-diagonal mass below (1e-17)^2 of the whole: the diagonal holds the
     * eigenvalues to double precision */
    if (off <= 1e-34 * total || off == 0) { converged = 1; break; }
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        double apq = a[p * n + q];
        double app = a[p * n + p], aqq = a[q * n + q];
        /* negligible next to both diagonal entries: zero it without rotating
         * (Rutishauser's rule; keeps late sweeps from churning on rounding) */
        if (fabs(apq) <= 1e-18 * (fabs(app) + fabs(aqq)) || apq == 0) {
          a[p * n + q] = a[q * n + p] = 0;
          continue;
        }
        /* the rotation angle that zeroes a_pq (Golub & Van Loan, sym.schur2):
         * t = tan(phi) is the smaller root of t^2 + 2 tau t - 1 = 0 */
        double tau = (aqq - app) / (2 * apq);
        double t = fabs(tau) > 1e150 ? 1 / (2 * tau)
                                     : (tau >= 0 ? 1 : -1) / (fabs(tau) + sqrt(1 + tau * tau));
        double c = 1 / sqrt(1 + t * t), s = t * c;
        /* a <- a J: columns p and q */
        for (int k = 0; k < n; k++) {
          double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        /* a <- J^T a: rows p and q */
        for (int k = 0; k < n; k++) {
          double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        a[p * n + q] = a[q * n + p] = 0;     /* zero by construction; drop the rounding */
        if (v)
          for (int k = 0; k < n; k++) {
            double vkp = v[k * n + p], vkq = v[k * n + q];
            v[k * n + p] = c * vkp - s * vkq;
            v[k * n + q] = s * vkp + c * vkq;
          }
      }
  }
  if (!converged) {
    /* a last check: the final sweep may have finished the job */
    double off = 0, total = 0;
    for (int i = 0; i < n; i++) {
      total += a[i * n + i] * a[i * n + i];
      for (int j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    if (!(off <= 1e-28 * (total + 2 * off))) {
      lg_error("sym_eig: Jacobi did not converge in 100 sweeps (n = %d)", n);
      return -1;
    }
  }
  for (int i = 0; i < n; i++) w[i] = a[i * n + i];
  /* selection sort, ascending, moving the eigenvector columns along */
  for (int i = 0; i < n; i++) {
    int m = i;
    for (int j = i + 1; j < n; j++) if (w[j] < w[m]) m = j;
    if (m != i) {
      double t = w[i]; w[i] = w[m]; w[m] = t;
      if (v)
        for (int k = 0; k < n; k++) {
          t = v[k * n + i]; v[k * n + i] = v[k * n + m]; v[k * n + m] = t;
        }
    }
  }
  return 0;
}

/* Eigenvalues w of a PSD matrix made non-negative: rounding may leave tiny
 * negative ones; a clearly negative one means the input is not PSD. */
static int clamp_psd(const char *who, int n, double *w)
{
  double big = 0;
  for (int i = 0; i < n; i++) if (fabs(w[i]) > big) big = fabs(w[i]);
  for (int i = 0; i < n; i++) {
    if (w[i] < -1e-6 * big - 1e-300) {
      lg_error("%s: matrix is not positive semi-definite (eigenvalue %.6g, largest %.6g)",
               who, w[i], big);
      return -1;
    }
    if (w[i] < 0) w[i] = 0;
  }
  return 0;
}

int lga_sqrtm_psd(int n, const double *a, double *out)
{
  if (n < 0 || (n > 0 && (a == NULL || out == NULL))) {
    lg_error("sqrtm_psd: bad arguments (n = %d)", n);
    return -1;
  }
  size_t nn = (size_t)n * (size_t)n;
  double *buf = malloc(sizeof(double) * (2 * nn + (size_t)n + 1));
  if (!buf) { lg_error("sqrtm_psd: out of memory (n = %d)", n); return -1; }
  double *t = buf, *v = buf + nn, *w = buf + 2 * nn;
  memcpy(t, a, sizeof(double) * nn);
  int rc = lga_sym_eig(n, t, w, v);
  if (rc != 0) lg_error_prefix("sqrtm_psd");
  else rc = clamp_psd("sqrtm_psd", n, w);
  if (rc == 0) {
    for (int i = 0; i < n; i++) w[i] = sqrt(w[i]);
    /* out = v diag(w) v^T */
    for (int i = 0; i < n; i++)
      for (int j = i; j < n; j++) {
        double s = 0;
        for (int k = 0; k < n; k++) s += v[i * n + k] * w[k] * v[j * n + k];
        out[i * n + j] = out[j * n + i] = s;
      }
  }
  free(buf);
  return rc;
}

int lga_trace_sqrt_product(int n, const double *a, const double *b, double *out)
{
  if (n < 0 || (n > 0 && (a == NULL || b == NULL)) || out == NULL) {
    lg_error("trace_sqrt_product: bad arguments (n = %d)", n);
    return -1;
  }
  size_t nn = (size_t)n * (size_t)n;
  double *buf = malloc(sizeof(double) * (3 * nn + (size_t)n + 1));
  if (!buf) { lg_error("trace_sqrt_product: out of memory (n = %d)", n); return -1; }
  double *s = buf, *t = buf + nn, *m = buf + 2 * nn, *w = buf + 3 * nn;
  int rc = lga_sqrtm_psd(n, a, s);
  if (rc != 0) lg_error_prefix("trace_sqrt_product");
  else {
    /* t = b s, then m = s t = s b s (symmetric PSD: both factors are) */
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double acc = 0;
        for (int k = 0; k < n; k++) acc += b[i * n + k] * s[k * n + j];
        t[i * n + j] = acc;
      }
    for (int i = 0; i < n; i++)
      for (int j = i; j < n; j++) {
        double acc = 0;
        for (int k = 0; k < n; k++) acc += s[i * n + k] * t[k * n + j];
        m[i * n + j] = acc;
      }
    for (int i = 0; i < n; i++)
      for (int j = 0; j < i; j++) m[i * n + j] = m[j * n + i];
    rc = lga_sym_eig(n, m, w, NULL);
    if (rc != 0) lg_error_prefix("trace_sqrt_product");
    else rc = clamp_psd("trace_sqrt_product", n, w);
    if (rc == 0) {
      double tr = 0;
      for (int i = 0; i < n; i++) tr += sqrt(w[i]);
      *out = tr;
    }
  }
  free(buf);
  return rc;
}

int lga_mean_cov(int64_t n, int d, const float *x, double *mu, double *cov)
{
  if (check_rows("mean_cov", x, n, d)) return -1;
  if (n < 2) {
    lg_error("mean_cov: need at least 2 rows for a covariance, got %lld", (long long)n);
    return -1;
  }
  double *c = malloc(sizeof(double) * (size_t)d);
  if (!c) { lg_error("mean_cov: out of memory (d = %d)", d); return -1; }
  for (int j = 0; j < d; j++) mu[j] = 0;
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) mu[j] += x[i * d + j];
  for (int j = 0; j < d; j++) mu[j] /= (double)n;
  for (size_t k = 0; k < (size_t)d * (size_t)d; k++) cov[k] = 0;
  for (int64_t i = 0; i < n; i++) {
    for (int j = 0; j < d; j++) {
      c[j] = x[i * d + j] - mu[j];
      if (!isfinite(c[j])) {
        free(c);
        lg_error("mean_cov: row %lld, column %d is not finite (%g)", (long long)i + 1, j + 1,
                 (double)x[i * d + j]);
        return -1;
      }
    }
    for (int j = 0; j < d; j++) {
      double cj = c[j];
      double *row = cov + (size_t)j * d;
      for (int k = j; k < d; k++) row[k] += cj * c[k];
    }
  }
  for (int j = 0; j < d; j++)
    for (int k = j; k < d; k++) {
      cov[(size_t)j * d + k] /= (double)(n - 1);
      cov[(size_t)k * d + j] = cov[(size_t)j * d + k];
    }
  free(c);
  return 0;
}

int lga_frechet(int d, const double *mu1, const double *c1, const double *mu2,
               const double *c2, double *out)
{
  if (d < 1 || !mu1 || !c1 || !mu2 || !c2 || !out) {
    lg_error("frechet: bad arguments (d = %d)", d);
    return -1;
  }
  double tsqrt;
  if (lga_trace_sqrt_product(d, c1, c2, &tsqrt) != 0) {
    lg_error_prefix("frechet");
    return -1;
  }
  double m2 = 0, tr = 0;
  for (int i = 0; i < d; i++) {
    double dm = mu1[i] - mu2[i];
    m2 += dm * dm;
    tr += c1[i * d + i] + c2[i * d + i];
  }
  *out = m2 + tr - 2 * tsqrt;
  return 0;
}

/* ---- nearest neighbours ------------------------------------------------------------ */

static void row_norms(const float *x, int64_t n, int d, double *out)
{
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
    out[i] = s;
  }
}

/* Squared distance by the definition, in double (the naive references). */
static double dist2(const float *a, const float *b, int d)
{
  double s = 0;
  for (int j = 0; j < d; j++) {
    double t = (double)a[j] - b[j];
    s += t * t;
  }
  return s;
}

/* Insert d2 into the ascending list best[0..k) if it belongs there. */
static inline void topk_insert(double *best, int k, double d2)
{
  if (!(d2 < best[k - 1])) return;
  int p = k - 1;
  while (p > 0 && best[p - 1] > d2) { best[p] = best[p - 1]; p--; }
  best[p] = d2;
}

static int knn_check(const char *who, const float *q, int64_t nq, const float *r, int64_t nr,
                     int d, int k, int skip_self, const float *kth)
{
  if (check_rows(who, q, nq, d) || check_rows(who, r, nr, d)) return -1;
  if (kth == NULL && nq > 0) { lg_error("%s: NULL output", who); return -1; }
  if (skip_self && nq != nr) {
    lg_error("%s: skip_self needs the same rows as queries and references, got %lld and %lld",
             who, (long long)nq, (long long)nr);
    return -1;
  }
  int64_t avail = skip_self ? nr - 1 : nr;
  if (k < 1 || k > KNN_MAX_K || k > avail) {
    lg_error("%s: k = %d must be in 1..%lld (%lld reference rows%s; at most %d)", who, k,
             (long long)(avail < KNN_MAX_K ? avail : KNN_MAX_K), (long long)nr,
             skip_self ? ", self excluded" : "", KNN_MAX_K);
    return -1;
  }
  return 0;
}

int lga_knn_naive(const float *q, int64_t nq, const float *r, int64_t nr, int d, int k,
                 int skip_self, float *kth, int64_t *nn)
{
  if (knn_check("knn", q, nq, r, nr, d, k, skip_self, kth)) return -1;
  double best[KNN_MAX_K];
  for (int64_t i = 0; i < nq; i++) {
    for (int t = 0; t < k; t++) best[t] = INFINITY;
    double bmin = INFINITY;
    int64_t bidx = -1;
    for (int64_t j = 0; j < nr; j++) {
      if (skip_self && j == i) continue;
      double d2 = dist2(q + i * d, r + j * d, d);
      topk_insert(best, k, d2);
      if (d2 < bmin) { bmin = d2; bidx = j; }
    }
    kth[i] = (float)sqrt(best[k - 1]);
    if (nn) nn[i] = bidx;
  }
  return 0;
}

int lga_knn(const float *q, int64_t nq, const float *r, int64_t nr, int d, int k,
           int skip_self, float *kth, int64_t *nn)
{
  if (knn_check("knn", q, nq, r, nr, d, k, skip_self, kth)) return -1;
  float *g = malloc(sizeof(float) * QB * RB);
  double *qn = malloc(sizeof(double) * QB), *rn = malloc(sizeof(double) * RB);
  double *best = malloc(sizeof(double) * QB * (size_t)k), *bmin = malloc(sizeof(double) * QB);
  int64_t *bidx = malloc(sizeof(int64_t) * QB);
  if (!g || !qn || !rn || !best || !bmin || !bidx) {
    free(g); free(qn); free(rn); free(best); free(bmin); free(bidx);
    lg_error("knn: out of memory");
    return -1;
  }
  for (int64_t i0 = 0; i0 < nq; i0 += QB) {
    int qb = (int)(nq - i0 < QB ? nq - i0 : QB);
    row_norms(q + i0 * d, qb, d, qn);
    for (int64_t t = 0; t < (int64_t)qb * k; t++) best[t] = INFINITY;
    for (int i = 0; i < qb; i++) { bmin[i] = INFINITY; bidx[i] = -1; }
    for (int64_t j0 = 0; j0 < nr; j0 += RB) {
      int rb = (int)(nr - j0 < RB ? nr - j0 : RB);
      row_norms(r + j0 * d, rb, d, rn);
      /* g (qb x rb) = q_blk r_blk^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, rb, d, 1.0f, q + i0 * d, d,
                  r + j0 * d, d, 0.0f, g, rb);
      for (int i = 0; i < qb; i++) {
        double *bi = best + (size_t)i * k;
        const float *gi = g + (size_t)i * rb;
        for (int j = 0; j < rb; j++) {
          if (skip_self && j0 + j == i0 + i) continue;
          double d2 = qn[i] + rn[j] - 2.0 * gi[j];
          if (d2 < 0) d2 = 0;
          topk_insert(bi, k, d2);
          if (d2 < bmin[i]) { bmin[i] = d2; bidx[i] = j0 + j; }
        }
      }
    }
    for (int i = 0; i < qb; i++) {
      kth[i0 + i] = (float)sqrt(best[(size_t)i * k + k - 1]);
      if (nn) nn[i0 + i] = bidx[i];
    }
  }
  free(g); free(qn); free(rn); free(best); free(bmin); free(bidx);
  return 0;
}

static int balls_check(const float *q, int64_t nq, const float *r, int64_t nr, int d,
                       const float *radius, const uint8_t *inside)
{
  if (check_rows("in_balls", q, nq, d) || check_rows("in_balls", r, nr, d)) return -1;
  if ((nr > 0 && radius == NULL) || (nq > 0 && inside == NULL)) {
    lg_error("in_balls: NULL radius or output");
    return -1;
  }
  return 0;
}

int lga_in_balls_naive(const float *q, int64_t nq, const float *r, int64_t nr, int d,
                      const float *radius, uint8_t *inside)
{
  if (balls_check(q, nq, r, nr, d, radius, inside)) return -1;
  for (int64_t i = 0; i < nq; i++) {
    inside[i] = 0;
    for (int64_t j = 0; j < nr && !inside[i]; j++)
      if (dist2(q + i * d, r + j * d, d) <= (double)radius[j] * radius[j]) inside[i] = 1;
  }
  return 0;
}

int lga_in_balls(const float *q, int64_t nq, const float *r, int64_t nr, int d,
                const float *radius, uint8_t *inside)
{
  if (balls_check(q, nq, r, nr, d, radius, inside)) return -1;
  float *g = malloc(sizeof(float) * QB * RB);
  double *qn = malloc(sizeof(double) * QB), *rn = malloc(sizeof(double) * RB);
  if (!g || !qn || !rn) {
    free(g); free(qn); free(rn);
    lg_error("in_balls: out of memory");
    return -1;
  }
  for (int64_t i0 = 0; i0 < nq; i0 += QB) {
    int qb = (int)(nq - i0 < QB ? nq - i0 : QB);
    row_norms(q + i0 * d, qb, d, qn);
    int left = qb;                        /* queries of the block not yet inside */
    for (int i = 0; i < qb; i++) inside[i0 + i] = 0;
    for (int64_t j0 = 0; j0 < nr && left > 0; j0 += RB) {
      int rb = (int)(nr - j0 < RB ? nr - j0 : RB);
      row_norms(r + j0 * d, rb, d, rn);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, rb, d, 1.0f, q + i0 * d, d,
                  r + j0 * d, d, 0.0f, g, rb);
      for (int i = 0; i < qb; i++) {
        if (inside[i0 + i]) continue;
        const float *gi = g + (size_t)i * rb;
        for (int j = 0; j < rb; j++) {
          double d2 = qn[i] + rn[j] - 2.0 * gi[j];
          double rad = radius[j0 + j];
          if (d2 <= rad * rad) { inside[i0 + i] = 1; left--; break; }
        }
      }
    }
  }
  free(g); free(qn); free(rn);
  return 0;
}

/* ---- the KID kernel ------------------------------------------------------------------ */

static inline double poly3(double dot, int d)
{
  double t = dot / d + 1;
  return t * t * t;
}

static int mmd_check(const float *x, int64_t m, const float *y, int64_t n, int d, double *out)
{
  if (check_rows("mmd2_poly", x, m, d) || check_rows("mmd2_poly", y, n, d)) return -1;
  if (m < 2 || n < 2) {
    lg_error("mmd2_poly: the unbiased estimate needs at least 2 rows on each side, got %lld and %lld",
             (long long)m, (long long)n);
    return -1;
  }
  if (!out) { lg_error("mmd2_poly: NULL output"); return -1; }
  return 0;
}

int lga_mmd2_poly_naive(const float *x, int64_t m, const float *y, int64_t n, int d, double *out)
{
  if (mmd_check(x, m, y, n, d, out)) return -1;
  double sxx = 0, syy = 0, sxy = 0;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < m; j++) {
      if (i == j) continue;
      double s = 0;
      for (int t = 0; t < d; t++) s += (double)x[i * d + t] * x[j * d + t];
      sxx += poly3(s, d);
    }
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      if (i == j) continue;
      double s = 0;
      for (int t = 0; t < d; t++) s += (double)y[i * d + t] * y[j * d + t];
      syy += poly3(s, d);
    }
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      double s = 0;
      for (int t = 0; t < d; t++) s += (double)x[i * d + t] * y[j * d + t];
      sxy += poly3(s, d);
    }
  *out = sxx / ((double)m * (m - 1)) + syy / ((double)n * (n - 1)) - 2 * sxy / ((double)m * n);
  return 0;
}

/* Sum of the kernel over all pairs (i, j) of rows of a (na) and b (nb);
 * same: a and b are the same rows, and the pairs i == j are left out. */
static double kernel_sum(const float *a, int64_t na, const float *b, int64_t nb, int d,
                         int same, float *g)
{
  double total = 0;
  for (int64_t i0 = 0; i0 < na; i0 += QB) {
    int qb = (int)(na - i0 < QB ? na - i0 : QB);
    for (int64_t j0 = 0; j0 < nb; j0 += RB) {
      int rb = (int)(nb - j0 < RB ? nb - j0 : RB);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, rb, d, 1.0f, a + i0 * d, d,
                  b + j0 * d, d, 0.0f, g, rb);
      for (int i = 0; i < qb; i++) {
        const float *gi = g + (size_t)i * rb;
        double s = 0;
        for (int j = 0; j < rb; j++) {
          if (same && i0 + i == j0 + j) continue;
          s += poly3(gi[j], d);
        }
        total += s;
      }
    }
  }
  return total;
}

int lga_mmd2_poly(const float *x, int64_t m, const float *y, int64_t n, int d, double *out)
{
  if (mmd_check(x, m, y, n, d, out)) return -1;
  float *g = malloc(sizeof(float) * QB * RB);
  if (!g) { lg_error("mmd2_poly: out of memory"); return -1; }
  double sxx = kernel_sum(x, m, x, m, d, 1, g);
  double syy = kernel_sum(y, n, y, n, d, 1, g);
  double sxy = kernel_sum(x, m, y, n, d, 0, g);
  free(g);
  *out = sxx / ((double)m * (m - 1)) + syy / ((double)n * (n - 1)) - 2 * sxy / ((double)m * n);
  return 0;
}
