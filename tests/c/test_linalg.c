/* test_linalg.c: the evaluation kernels of lga_metrics.c against hand-worked
 * cases, closed forms and their naive loop references. */
#include <stdlib.h>
#include <string.h>
#include "lgt.h"
#include "lga_metrics.h"

/* deterministic pseudo-random numbers (no dependence on the tensor rng) */
static uint64_t seed = 88172645463325252ull;
static double urand(void)
{
  seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
  return (double)(seed >> 11) / 9007199254740992.0;
}
static double nrand(void)
{
  double u = urand() + 1e-300, v = urand();
  return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* a = b b^T + eps I for a random n x n b: symmetric positive definite */
static void random_spd(int n, double *a, double eps)
{
  double *b = malloc(sizeof(double) * n * n);
  for (int i = 0; i < n * n; i++) b[i] = nrand();
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int k = 0; k < n; k++) s += b[i * n + k] * b[j * n + k];
      a[i * n + j] = s + (i == j ? eps : 0);
    }
  free(b);
}

static void test_eig_hand(void)
{
  /* [[2,1],[1,2]]: eigenvalues 1 and 3, eigenvectors (1,-1)/sqrt2 and (1,1)/sqrt2 */
  double a[4] = {2, 1, 1, 2}, w[2], v[4];
  CHECK(lga_sym_eig(2, a, w, v) == 0);
  CHECK_NEAR(w[0], 1, 1e-15);
  CHECK_NEAR(w[1], 3, 1e-15);
  CHECK_NEAR(fabs(v[0 * 2 + 0]), sqrt(0.5), 1e-15);
  CHECK_NEAR(v[0 * 2 + 0] * v[1 * 2 + 0], -0.5, 1e-15);   /* opposite signs */
  CHECK_NEAR(v[0 * 2 + 1] * v[1 * 2 + 1], 0.5, 1e-15);    /* same sign */
  /* diagonal input: already converged, eigenvalues sorted */
  double b[9] = {5, 0, 0, 0, -2, 0, 0, 0, 1}, wb[3];
  CHECK(lga_sym_eig(3, b, wb, NULL) == 0);
  CHECK(wb[0] == -2 && wb[1] == 1 && wb[2] == 5);
  /* 1x1 and 0x0 */
  double c[1] = {7}, wc[1];
  CHECK(lga_sym_eig(1, c, wc, NULL) == 0 && wc[0] == 7);
  CHECK(lga_sym_eig(0, c, wc, NULL) == 0);
}

static void test_eig_random(void)
{
  enum { N = 40 };
  static double a[N * N], a0[N * N], w[N], v[N * N];
  for (int i = 0; i < N; i++)
    for (int j = i; j < N; j++) a[i * N + j] = a[j * N + i] = nrand();
  memcpy(a0, a, sizeof a);
  CHECK(lga_sym_eig(N, a, w, v) == 0);
  double err = 0, orth = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double s = 0, o = 0;
      for (int k = 0; k < N; k++) {
        s += v[i * N + k] * w[k] * v[j * N + k];   /* v diag(w) v^T */
        o += v[k * N + i] * v[k * N + j];          /* v^T v */
      }
      err = fmax(err, fabs(s - a0[i * N + j]));
      orth = fmax(orth, fabs(o - (i == j)));
    }
  CHECK(err < 1e-12);
  CHECK(orth < 1e-12);
  for (int i = 1; i < N; i++) CHECK(w[i - 1] <= w[i]);
  /* the trace is the sum of the eigenvalues */
  double tr = 0, sw = 0;
  for (int i = 0; i < N; i++) { tr += a0[i * N + i]; sw += w[i]; }
  CHECK_NEAR(sw, tr, 1e-12);
}

static void test_eig_errors(void)
{
  double a[4] = {1, 2, 3, 4}, w[2];
  CHECK(lga_sym_eig(2, a, w, NULL) == -1);
  CHECK(strstr(lg_last_error(), "not symmetric") != NULL);
  double b[4] = {1, NAN, NAN, 1};
  CHECK(lga_sym_eig(2, b, w, NULL) == -1);
}

static void test_sqrtm_hand(void)
{
  double a[4] = {4, 0, 0, 9}, s[4];
  CHECK(lga_sqrtm_psd(2, a, s) == 0);
  CHECK_NEAR(s[0], 2, 1e-15); CHECK_NEAR(s[3], 3, 1e-15);
  CHECK(fabs(s[1]) < 1e-15 && fabs(s[2]) < 1e-15);
  /* [[2,1],[1,2]] = V diag(1,3) V^T -> sqrt = 1/2 [[1+r3, r3-1],[r3-1, 1+r3]] */
  double b[4] = {2, 1, 1, 2}, t[4], r3 = sqrt(3.0);
  CHECK(lga_sqrtm_psd(2, b, t) == 0);
  CHECK_NEAR(t[0], 0.5 * (1 + r3), 1e-15);
  CHECK_NEAR(t[1], 0.5 * (r3 - 1), 1e-15);
  CHECK_NEAR(t[2], 0.5 * (r3 - 1), 1e-15);
  CHECK_NEAR(t[3], 0.5 * (1 + r3), 1e-15);
  /* singular PSD: [[1,1],[1,1]] = 2 u u^T -> sqrt = sqrt2 u u^T = [[1,1],[1,1]]/sqrt2 */
  double c[4] = {1, 1, 1, 1}, u[4];
  CHECK(lga_sqrtm_psd(2, c, u) == 0);
  for (int i = 0; i < 4; i++) CHECK_NEAR(u[i], 1 / sqrt(2.0), 1e-14);
  /* not PSD */
  double d[4] = {1, 0, 0, -1};
  CHECK(lga_sqrtm_psd(2, d, u) == -1);
  CHECK(strstr(lg_last_error(), "not positive semi-definite") != NULL);
}

static void test_sqrtm_random(void)
{
  enum { N = 30 };
  static double a[N * N], s[N * N];
  random_spd(N, a, 0.1);
  CHECK(lga_sqrtm_psd(N, a, s) == 0);
  double err = 0, scale = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      double x = 0;
      for (int k = 0; k < N; k++) x += s[i * N + k] * s[k * N + j];
      err = fmax(err, fabs(x - a[i * N + j]));
      scale = fmax(scale, fabs(a[i * N + j]));
    }
  CHECK(err < 1e-11 * scale);
}

static void test_trace_sqrt_product(void)
{
  /* commuting diagonals: tr sqrt(AB) = sum sqrt(a_i b_i) */
  double a[9] = {1, 0, 0, 0, 4, 0, 0, 0, 9}, b[9] = {16, 0, 0, 0, 1, 0, 0, 0, 4}, t;
  CHECK(lga_trace_sqrt_product(3, a, b, &t) == 0);
  CHECK_NEAR(t, 4 + 2 + 6, 1e-14);
  /* A = B: tr sqrt(A^2) = tr A */
  enum { N = 25 };
  static double c[N * N];
  random_spd(N, c, 0.5);
  double tr = 0;
  for (int i = 0; i < N; i++) tr += c[i * N + i];
  CHECK(lga_trace_sqrt_product(N, c, c, &t) == 0);
  CHECK_NEAR(t, tr, 1e-12);
  /* non-commuting 2x2 worked by hand: A = diag(1, 0) (a projection), B = [[2,1],[1,2]]:
   * A^1/2 B A^1/2 = diag(2, 0) -> tr sqrt = sqrt 2 */
  double p[4] = {1, 0, 0, 0}, q[4] = {2, 1, 1, 2};
  CHECK(lga_trace_sqrt_product(2, p, q, &t) == 0);
  CHECK_NEAR(t, sqrt(2.0), 1e-15);
}

static void test_mean_cov(void)
{
  float x[6] = {1, 2, 3, 6, 5, 10};
  double mu[2], cov[4];
  CHECK(lga_mean_cov(3, 2, x, mu, cov) == 0);
  CHECK_NEAR(mu[0], 3, 1e-15); CHECK_NEAR(mu[1], 6, 1e-15);
  CHECK_NEAR(cov[0], 4, 1e-15); CHECK_NEAR(cov[3], 16, 1e-15);
  CHECK_NEAR(cov[1], 8, 1e-15); CHECK_NEAR(cov[2], 8, 1e-15);
  /* a large common offset costs no precision (two-pass centring) */
  float y[6] = {1e4f + 1, 2, 1e4f + 3, 6, 1e4f + 5, 10};
  CHECK(lga_mean_cov(3, 2, y, mu, cov) == 0);
  CHECK_NEAR(cov[0], 4, 1e-12);
  CHECK(lga_mean_cov(1, 2, x, mu, cov) == -1);
  CHECK(strstr(lg_last_error(), "at least 2 rows") != NULL);
}

static void test_frechet(void)
{
  enum { D = 6 };
  double mu1[D], mu2[D], c1[D * D], c2[D * D], fd;
  random_spd(D, c1, 0.2);
  for (int i = 0; i < D; i++) mu1[i] = nrand();
  /* identical Gaussians: 0 */
  CHECK(lga_frechet(D, mu1, c1, mu1, c1, &fd) == 0);
  CHECK(fabs(fd) < 1e-12);
  /* diagonal covariances: |dmu|^2 + sum (sqrt a_i - sqrt b_i)^2 */
  double expect = 0;
  memset(c1, 0, sizeof c1); memset(c2, 0, sizeof c2);
  for (int i = 0; i < D; i++) {
    double a = 0.5 + i, b = 2.0 / (i + 1);
    c1[i * D + i] = a; c2[i * D + i] = b;
    mu2[i] = mu1[i] + 0.1 * i;
    expect += 0.01 * i * i + (sqrt(a) - sqrt(b)) * (sqrt(a) - sqrt(b));
  }
  CHECK(lga_frechet(D, mu1, c1, mu2, c2, &fd) == 0);
  CHECK_NEAR(fd, expect, 1e-13);
  /* c1 = I, c2 = R diag(l) R^T for a rotation R: sum (1 - sqrt l_i)^2 */
  double th = 0.7, l0 = 4, l1 = 0.25;
  double cc = cos(th), ss = sin(th);
  double i2[4] = {1, 0, 0, 1};
  double r2[4] = {cc * cc * l0 + ss * ss * l1, cc * ss * (l0 - l1),
                  cc * ss * (l0 - l1), ss * ss * l0 + cc * cc * l1};
  double z[2] = {0, 0};
  CHECK(lga_frechet(2, z, i2, z, r2, &fd) == 0);
  CHECK_NEAR(fd, (1 - 2) * (1 - 2) + (1 - 0.5) * (1 - 0.5), 1e-14);
}

static void fill(float *x, int64_t n)
{
  for (int64_t i = 0; i < n; i++) x[i] = (float)nrand();
}

static void test_knn_vs_naive(void)
{
  /* sizes that cross the 256-query and 2048-reference blocks */
  enum { NQ = 300, NR = 2500, D = 17 };
  float *q = malloc(sizeof(float) * NQ * D), *r = malloc(sizeof(float) * NR * D);
  float k1[NR], k2[NR];
  int64_t n1[NR], n2[NR];
  fill(q, NQ * D);
  fill(r, NR * D);
  for (int k = 1; k <= 5; k += 2) {
    CHECK(lga_knn(q, NQ, r, NR, D, k, 0, k1, n1) == 0);
    CHECK(lga_knn_naive(q, NQ, r, NR, D, k, 0, k2, n2) == 0);
    double diff = 0;
    int same = 1;
    for (int i = 0; i < NQ; i++) { diff = fmax(diff, fabs(k1[i] - k2[i])); same &= n1[i] == n2[i]; }
    CHECK(diff < 1e-4);
    CHECK(same);
  }
  /* skip_self on the reference set itself */
  CHECK(lga_knn(r, NR, r, NR, D, 3, 1, k1, n1) == 0);
  CHECK(lga_knn_naive(r, NR, r, NR, D, 3, 1, k2, n2) == 0);
  double diff = 0;
  int same = 1, self = 0;
  for (int i = 0; i < NR; i++) {
    diff = fmax(diff, fabs(k1[i] - k2[i]));
    same &= n1[i] == n2[i];
    self |= n1[i] == i;
  }
  CHECK(diff < 1e-4);
  CHECK(same);
  CHECK(!self);
  free(q); free(r);
}

static void test_knn_hand(void)
{
  /* points on a line at 0, 1, 3, 7 */
  float r[4] = {0, 1, 3, 7}, q[2] = {0.9f, 6}, kth[4];
  int64_t nn[4];
  CHECK(lga_knn(q, 2, r, 4, 1, 2, 0, kth, nn) == 0);
  CHECK_NEAR(kth[0], 0.9, 1e-6);      /* second nearest of 0.9 is 0 */
  CHECK(nn[0] == 1 && nn[1] == 3);
  CHECK_NEAR(kth[1], 3, 1e-6);        /* second nearest of 6 is 3 */
  CHECK(lga_knn(r, 4, r, 4, 1, 1, 1, kth, nn) == 0);
  CHECK_NEAR(kth[0], 1, 1e-6); CHECK_NEAR(kth[2], 2, 1e-6); CHECK_NEAR(kth[3], 4, 1e-6);
  CHECK(nn[0] == 1 && nn[1] == 0 && nn[2] == 1 && nn[3] == 2);
  /* errors: k too large, skip_self with different sets */
  CHECK(lga_knn(r, 4, r, 4, 1, 4, 1, kth, nn) == -1);
  CHECK(strstr(lg_last_error(), "k = 4") != NULL);
  CHECK(lga_knn(q, 2, r, 4, 1, 1, 1, kth, nn) == -1);
}

static void test_in_balls(void)
{
  float r[2] = {0, 10}, rad[2] = {1, 2}, q[4] = {0.5f, 1.5f, 7.5f, 11.9f};
  uint8_t in[4];
  CHECK(lga_in_balls(q, 4, r, 2, 1, rad, in) == 0);
  CHECK(in[0] == 1 && in[1] == 0 && in[2] == 0 && in[3] == 1);
  enum { NQ = 600, NR = 2200, D = 8 };
  float *a = malloc(sizeof(float) * NQ * D), *b = malloc(sizeof(float) * NR * D);
  float *kth = malloc(sizeof(float) * NR);
  uint8_t i1[NQ], i2[NQ];
  fill(a, NQ * D);
  fill(b, NR * D);
  for (int i = 0; i < NQ * D; i++) a[i] *= 1.3f;   /* a wider cloud: some in, some out */
  CHECK(lga_knn(b, NR, b, NR, D, 3, 1, kth, NULL) == 0);
  CHECK(lga_in_balls(a, NQ, b, NR, D, kth, i1) == 0);
  CHECK(lga_in_balls_naive(a, NQ, b, NR, D, kth, i2) == 0);
  int same = 1, count = 0;
  for (int i = 0; i < NQ; i++) { same &= i1[i] == i2[i]; count += i1[i]; }
  CHECK(same);
  CHECK(count > NQ / 10 && count < NQ);      /* the test is not vacuous */
  free(a); free(b); free(kth);
}

static void test_mmd2(void)
{
  /* by hand, d = 1, k(a,b) = (ab + 1)^3: x = {0, 1}, y = {0, 2}
   * within x: k(0,1) = 1 (twice) -> 1; within y: k(0,2) = 1 -> 1;
   * across: 1, 1, 1, 27 -> 7.5; MMD^2 = 1 + 1 - 15 = -13 */
  float x[2] = {0, 1}, y[2] = {0, 2};
  double m;
  CHECK(lga_mmd2_poly(x, 2, y, 2, 1, &m) == 0);
  CHECK_NEAR(m, -13, 1e-12);
  CHECK(lga_mmd2_poly_naive(x, 2, y, 2, 1, &m) == 0);
  CHECK_NEAR(m, -13, 1e-12);
  enum { M = 300, N = 270, D = 9 };
  float *a = malloc(sizeof(float) * M * D), *b = malloc(sizeof(float) * N * D);
  fill(a, M * D);
  fill(b, N * D);
  for (int i = 0; i < N * D; i++) b[i] += 0.3f;
  double f, g;
  CHECK(lga_mmd2_poly(a, M, b, N, D, &f) == 0);
  CHECK(lga_mmd2_poly_naive(a, M, b, N, D, &g) == 0);
  CHECK_NEAR(f, g, 1e-5);
  CHECK(f > 0.01);                   /* a shift of 0.3 per coordinate is visible */
  CHECK(lga_mmd2_poly(a, 1, b, N, D, &f) == -1);
  free(a); free(b);
}

int main(void)
{
  LGT_RUN(test_eig_hand);
  LGT_RUN(test_eig_random);
  LGT_RUN(test_eig_errors);
  LGT_RUN(test_sqrtm_hand);
  LGT_RUN(test_sqrtm_random);
  LGT_RUN(test_trace_sqrt_product);
  LGT_RUN(test_mean_cov);
  LGT_RUN(test_frechet);
  LGT_RUN(test_knn_vs_naive);
  LGT_RUN(test_knn_hand);
  LGT_RUN(test_in_balls);
  LGT_RUN(test_mmd2);
  return lgt_finish();
}
