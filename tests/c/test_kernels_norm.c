/* test_kernels_norm.c: batch norm's row-walking kernels (the (N,C) case,
 * channel blocks of 256) against a naive double reference, forward and
 * running statistics, and the fused backward against the ops formula
 * (create_graph), on sizes that split into several blocks with a remainder;
 * the same for the per-channel kernels of the (N,C,S) case. */
#include <stdlib.h>
#include <string.h>
#include "lgt.h"

static lg_gen G;

/* y = (x - mean) / sqrt(var + eps) * w + b per column of x: (N,C) */
static void ref_bn2d(const float *x, const float *w, const float *b, int64_t N, int64_t C,
                     double eps, double *y, double *mean, double *uvar)
{
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < N; n++) s += x[n * C + c];
    double m = s / N;
    for (int64_t n = 0; n < N; n++) q += (x[n * C + c] - m) * (x[n * C + c] - m);
    mean[c] = m;
    uvar[c] = q / (N - 1);
    for (int64_t n = 0; n < N; n++)
      y[n * C + c] = (x[n * C + c] - m) / sqrt(q / N + eps) * (w ? w[c] : 1) + (b ? b[c] : 0);
  }
}

/* The fused forward y (n values) against the double reference, and the running
 * statistics (started at mean 0, var 1, momentum 0.25) against the batch's
 * mean and unbiased variance, per channel. */
static void check_forward(lg_tensor *y, const double *ref, int64_t n, lg_tensor *rm,
                          lg_tensor *rv, const double *mean, const double *uvar, int64_t C)
{
  double worst = 0;
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(lg_data(y)[i] - ref[i]));
  CHECK(worst < 2e-3);
  for (int64_t c = 0; c < C; c++) {
    CHECK_NEAR(lg_data(rm)[c], 0.25 * mean[c], 1e-5);
    CHECK_NEAR(lg_data(rv)[c], 0.75 + 0.25 * uvar[c], 1e-4);
  }
}

static void test_rows_forward(void)
{
  /* the last one is past LG_PAR_MIN: channel blocks on several threads */
  int64_t sizes[][2] = {{2, 1}, {7, 300}, {64, 512}, {5, 257}, {3, 1030}, {65, 4097}};
  for (int k = 0; k < 6; k++)
    for (int affine = 0; affine <= 1; affine++) {
      int64_t N = sizes[k][0], C = sizes[k][1], s[2] = {N, C};
      lg_tensor *x = OK(lgt_randn(&G, 2, s)), *w = OK(lgt_randn(&G, 1, &C));
      lg_tensor *b = OK(lgt_randn(&G, 1, &C)), *rm = OK(lg_zeros(1, &C)), *rv = OK(lg_ones(1, &C));
      /* shift the data so a one-pass variance would lose digits */
      for (int64_t i = 0; i < N * C; i++) lg_data(x)[i] = lg_data(x)[i] * 0.1f + 100.0f;
      lg_tensor *y = OK(lg_batch_norm(x, rm, rv, affine ? w : NULL, affine ? b : NULL, 1, 0.25f,
                                      1e-5f));
      double *ref = malloc(sizeof(double) * N * C), *mean = malloc(sizeof(double) * C);
      double *uvar = malloc(sizeof(double) * C);
      ref_bn2d(lg_data(x), affine ? lg_data(w) : NULL, affine ? lg_data(b) : NULL, N, C, 1e-5,
               ref, mean, uvar);
      check_forward(y, ref, N * C, rm, rv, mean, uvar, C);
      free(ref); free(mean); free(uvar);
      lg_release(x); lg_release(w); lg_release(b); lg_release(rm); lg_release(rv); lg_release(y);
    }
}

/* The fused batch-norm backward against the formula written in ops, for x of
 * shape s (ndim 2: (N,C) rows, ndim 3: (N,C,S) channels), with and without
 * the affine weight and bias. */
static void check_backward_matches_ops(int ndim, const int64_t *s)
{
  int64_t C = s[1];
  for (int affine = 0; affine <= 1; affine++) {
    lg_tensor *x = OK(lgt_randn(&G, ndim, s)), *w = OK(lgt_randn(&G, 1, &C));
    lg_tensor *b = OK(lgt_randn(&G, 1, &C)), *r = OK(lgt_randn(&G, ndim, s));
    lg_requires_grad_(x, 1);
    lg_requires_grad_(w, 1);
    lg_requires_grad_(b, 1);
    lg_tensor *in[3] = {x, w, b}, *g1[3] = {0}, *g2[3] = {0};
    lg_tensor *y = OK(lg_batch_norm(x, NULL, NULL, affine ? w : NULL, affine ? b : NULL, 1,
                                    0.1f, 1e-5f));
    lg_tensor *m = OK(lg_mul(y, r)), *t = OK(lg_sum(m, 0, NULL, 0));
    int n_in = affine ? 3 : 1;
    CHECK(lg_grad(1, &t, NULL, n_in, in, g1, 1, 0, 0) == 0);   /* fused kernel */
    CHECK(lg_grad(1, &t, NULL, n_in, in, g2, 0, 1, 0) == 0);   /* ops formula */
    for (int i = 0; i < n_in; i++)
      if (g1[i] && g2[i]) CHECK_CLOSE(g1[i], g2[i], 1e-4);
      else CHECK(g1[i] && g2[i]);
    for (int i = 0; i < 3; i++) { lg_release(g1[i]); lg_release(g2[i]); }
    lg_release(x); lg_release(w); lg_release(b); lg_release(r); lg_release(y);
    lg_release(m); lg_release(t);
  }
}

static void test_rows_backward_matches_ops(void)
{
  int64_t sizes[][2] = {{7, 300}, {64, 512}, {4, 3}, {65, 4097}};
  for (int k = 0; k < 4; k++) check_backward_matches_ops(2, sizes[k]);
}

/* ---- the per-channel kernels (x: (N,C,S), S > 1): 16-lane row sums carried
 * across the rows of a channel, row tails, a shifted mean ---------------- */
static void ref_bn3d(const float *x, const float *w, const float *b, int64_t N, int64_t C,
                     int64_t S, double eps, double *y, double *mean, double *uvar)
{
  for (int64_t c = 0; c < C; c++) {
    double s = 0, q = 0, M = (double)N * S;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) s += x[(n * C + c) * S + i];
    double m = s / M;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        double d = x[(n * C + c) * S + i] - m;
        q += d * d;
      }
    mean[c] = m;
    uvar[c] = q / (M - 1);
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < S; i++) {
        int64_t k = (n * C + c) * S + i;
        y[k] = (x[k] - m) / sqrt(q / M + eps) * (w ? w[c] : 1) + (b ? b[c] : 0);
      }
  }
}

static const int64_t chan_sizes[][3] = {{3, 5, 49}, {64, 8, 49}, {2, 3, 17}, {5, 4, 196},
                                        {4, 2, 5}, {2, 2, 4096}, {33, 3, 16}};
#define N_CHAN_SIZES (int)(sizeof chan_sizes / sizeof chan_sizes[0])

static void test_chan_forward(void)
{
  for (int k = 0; k < N_CHAN_SIZES; k++)
    for (int affine = 0; affine <= 1; affine++) {
      int64_t N = chan_sizes[k][0], C = chan_sizes[k][1], S = chan_sizes[k][2];
      int64_t s[3] = {N, C, S};
      lg_tensor *x = OK(lgt_randn(&G, 3, s)), *w = OK(lgt_randn(&G, 1, &C));
      lg_tensor *b = OK(lgt_randn(&G, 1, &C)), *rm = OK(lg_zeros(1, &C)), *rv = OK(lg_ones(1, &C));
      for (int64_t i = 0; i < N * C * S; i++) lg_data(x)[i] = lg_data(x)[i] * 0.1f + 100.0f;
      lg_tensor *y = OK(lg_batch_norm(x, rm, rv, affine ? w : NULL, affine ? b : NULL, 1, 0.25f,
                                      1e-5f));
      double *ref = malloc(sizeof(double) * N * C * S), *mean = malloc(sizeof(double) * C);
      double *uvar = malloc(sizeof(double) * C);
      ref_bn3d(lg_data(x), affine ? lg_data(w) : NULL, affine ? lg_data(b) : NULL, N, C, S,
               1e-5, ref, mean, uvar);
      check_forward(y, ref, N * C * S, rm, rv, mean, uvar, C);
      free(ref); free(mean); free(uvar);
      lg_release(x); lg_release(w); lg_release(b); lg_release(rm); lg_release(rv); lg_release(y);
    }
}

static void test_chan_backward_matches_ops(void)
{
  for (int k = 0; k < N_CHAN_SIZES; k++) {
    int64_t s[3] = {chan_sizes[k][0], chan_sizes[k][1], chan_sizes[k][2]};
    check_backward_matches_ops(3, s);
  }
}

int main(void)
{
  lg_gen_seed(&G, 11);
  LGT_RUN(test_rows_forward);
  LGT_RUN(test_rows_backward_matches_ops);
  LGT_RUN(test_chan_forward);
  LGT_RUN(test_chan_backward_matches_ops);
  return lgt_finish();
}
