/* test_kernels_conv.c: the table form of im2col/col2im (lg_kernels_conv.h)
 * against the direct form (itself checked against the definition in
 * test_conv.c), bit for bit, on random geometries: odd sizes, strides,
 * paddings wider than the kernel, dilations, row pitches, several channels;
 * and the AVX-512 permute forms against both. */
#include <stdlib.h>
#include <string.h>
#include "lgt.h"
#include "lg_kernels_conv.h"

static lg_gen G;

static int64_t rnd(int64_t lo, int64_t hi) { return lo + (int64_t)lg_gen_below(&G, hi - lo + 1); }

static float *randv(int64_t n)
{
  float *v = malloc(sizeof(float) * (n ? n : 1));
  for (int64_t i = 0; i < n; i++) v[i] = (float)lg_gen_normal(&G);
  return v;
}

static void test_table_matches_direct(void)
{
  int done = 0;
  for (int it = 0; it < 300; it++) {
    lg_conv_geom g = {rnd(1, 3), rnd(1, 17), rnd(1, 17), rnd(1, 5), rnd(1, 5), rnd(1, 3),
                      rnd(1, 3), rnd(0, 3), rnd(0, 3), rnd(1, 2), rnd(1, 2), 0, 0};
    int64_t oh = g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1, ow = g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1;
    if (oh < 0 || ow < 0) continue;
    g.OH = oh / g.sh + 1;
    g.OW = ow / g.sw + 1;
    int64_t K = g.C * g.KH * g.KW, P = g.OH * g.OW, ldc = P + rnd(0, 5);
    int64_t nt = lg_im2col_table_size(&g);
    CHECK(nt == g.KH * g.KW * P);
    int32_t *idx = malloc(sizeof(int32_t) * (nt ? nt : 1));
    lg_im2col_table(&g, idx);
    int64_t nr = lg_col2im_table_size(&g, ldc);
    CHECK(nr >= 1 && (nr - 1) % (g.H * g.W) == 0);
    int32_t *rev = malloc(sizeof(int32_t) * (nr ? nr : 1));
    lg_col2im_table(&g, ldc, rev);
    /* every (tap, position) that reads the plane appears exactly once */
    int64_t used = 0, want = 0;
    for (int64_t i = 1; i < nr; i++) used += rev[i] >= 0;
    for (int64_t i = 0; i < nt; i++) want += idx[i] != g.H * g.W;
    CHECK(used == want && rev[0] == (nr - 1) / (g.H * g.W));
    float *x = randv(g.C * g.H * g.W), *c = randv(K * ldc);
    float *a = calloc(K * ldc + 1, sizeof(float)), *b = calloc(K * ldc + 1, sizeof(float));
    float *xa = randv(g.C * g.H * g.W), *xb = randv(g.C * g.H * g.W);
    lg_im2col(x, &g, a, ldc);
    lg_im2col_tab(x, &g, idx, b, ldc);
    for (int64_t r = 0; r < K; r++)
      if (memcmp(a + r * ldc, b + r * ldc, sizeof(float) * P)) { CHECK(!"im2col rows differ"); break; }
    /* the padding is an exact zero even next to inf/NaN inputs */
    lg_col2im(c, &g, ldc, xa);
    lg_col2im_tab(c, &g, rev, ldc, xb);
    /* the AVX-512 form (where the CPU has it) sums in the scalar order */
    float *xs = randv(g.C * g.H * g.W);
    lg_col2im_tab_scalar(c, &g, rev, ldc, xs);
    CHECK(!memcmp(xs, xb, sizeof(float) * g.C * g.H * g.W));
    free(xs);
    for (int64_t i = 0; i < g.C * g.H * g.W; i++)
      if (fabsf(xa[i] - xb[i]) > 1e-5f * (1 + fabsf(xa[i]))) {
        CHECK_NEAR(xb[i], xa[i], 1e-5);
        break;
      }
    free(idx); free(rev); free(x); free(c); free(a); free(b); free(xa); free(xb);
    done++;
  }
  CHECK(done > 100);
}

static void test_padding_is_zero_next_to_nonfinite(void)
{
  lg_conv_geom g = {1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 3};
  float x[9], col[81];
  for (int i = 0; i < 9; i++) x[i] = i == 4 ? NAN : INFINITY;
  int32_t idx[81];
  lg_im2col_table(&g, idx);
  lg_im2col_tab(x, &g, idx, col, 9);
  /* tap (0,0) at output (0,0) reads the padding corner */
  CHECK(col[0] == 0.0f);
  /* col2im drops the contributions that fell on the padding */
  float c[81], xb[9];
  int32_t rev[9 + 1 + 81];
  for (int i = 0; i < 81; i++) c[i] = i % 9 == 0 ? INFINITY : 1;   /* (0,0) of every tap */
  lg_col2im_table(&g, 9, rev);
  lg_col2im_tab(c, &g, rev, 9, xb);
  /* output (0,0) reads cells (0,0), (0,1), (1,0), (1,1) (taps (1,1)..(2,2)),
   * which get its inf; the other taps read padding there, whose inf must
   * reach no cell: cells (0,2), (1,2), (2,2) see 4, 6 and 4 finite entries */
  CHECK(xb[2] == 4.0f && xb[5] == 6.0f && xb[8] == 4.0f);
  CHECK(isinf(xb[0]) && xb[0] > 0);
}

static void test_large_plane_has_no_table(void)
{
  lg_conv_geom g = {1, 200, 200, 3, 3, 1, 1, 1, 1, 1, 1, 200, 200};
  CHECK(lg_im2col_table_size(&g) == 0);
  CHECK(lg_col2im_table_size(&g, 40000) == 0);
}

/* ---- the AVX-512 permute forms, m samples at once, against the table forms ---- */
static void test_perm_matches_table(void)
{
  int done = 0;
  for (int it = 0; it < 400; it++) {
    lg_conv_geom g = {1, rnd(1, 40), rnd(1, 40), rnd(1, 5), rnd(1, 5), rnd(1, 3),
                      rnd(1, 3), rnd(0, 3), rnd(0, 3), rnd(1, 2), rnd(1, 2), 0, 0};
    int64_t oh = g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1, ow = g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1;
    if (oh < 0 || ow < 0) continue;
    g.OH = oh / g.sh + 1;
    g.OW = ow / g.sw + 1;
    int fwd = lg_im2col_perm_ok(&g), bwd = lg_col2im_perm_ok(&g);
    if (!fwd && !bwd) continue;
    const int64_t KK = g.KH * g.KW, P = g.OH * g.OW, HW = g.H * g.W, m = rnd(1, 3);
    const int64_t ldc = m * P + rnd(0, 5), xs = HW + rnd(0, 3);
    float *x = randv(m * xs), *c = randv(KK * ldc);
    if (fwd) {   /* every column entry written, padding an exact zero */
      float *a = randv(KK * ldc), *b = randv(KK * ldc);
      for (int64_t n = 0; n < m; n++) lg_im2col(x + n * xs, &g, a + n * P, ldc);
      lg_im2col_perm(x, xs, m, &g, b, ldc);
      for (int64_t r = 0; r < KK; r++)
        if (memcmp(a + r * ldc, b + r * ldc, sizeof(float) * m * P)) {
          CHECK(!"im2col permute rows differ");
          break;
        }
      free(a); free(b);
    }
    if (bwd) {   /* the table form's sums, bit for bit */
      int64_t nr = lg_col2im_table_size(&g, ldc);
      int32_t *rev = malloc(sizeof(int32_t) * nr);
      lg_col2im_table(&g, ldc, rev);
      float *xa = randv(m * xs), *xb = malloc(sizeof(float) * m * xs);
      memcpy(xb, xa, sizeof(float) * m * xs);   /* the gaps between planes stay */
      for (int64_t n = 0; n < m; n++) lg_col2im_tab_scalar(c + n * P, &g, rev, ldc, xa + n * xs);
      lg_col2im_perm(c, m, &g, ldc, xb, xs);
      CHECK(!memcmp(xa, xb, sizeof(float) * m * xs));
      free(rev); free(xa); free(xb);
    }
    free(x); free(c);
    done++;
  }
  CHECK(lg_col2im_tab_fast() == 0 || done > 100);
}

static void test_perm_padding_next_to_nonfinite(void)
{
  lg_conv_geom g = {1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 3};
  if (!lg_im2col_perm_ok(&g) || !lg_col2im_perm_ok(&g)) return;
  float x[9], col[81];
  for (int i = 0; i < 9; i++) x[i] = i == 4 ? NAN : INFINITY;
  lg_im2col_perm(x, 9, 1, &g, col, 9);
  CHECK(col[0] == 0.0f);
  float c[81], xb[9];
  for (int i = 0; i < 81; i++) c[i] = i % 9 == 0 ? INFINITY : 1;
  lg_col2im_perm(c, 1, &g, 9, xb, 9);
  CHECK(xb[2] == 4.0f && xb[5] == 6.0f && xb[8] == 4.0f);
  CHECK(isinf(xb[0]) && xb[0] > 0);
}

/* ---- the batched drivers with a thread team, against direct loops ---------- */
static double maxrel(const float *a, const double *b, int64_t n)
{
  double worst = 0;
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / (1 + fabs(b[i])));
  return worst;
}

static void drivers_case(int64_t N, int64_t C, int64_t H, int64_t Co, int64_t k, int64_t st,
                         int64_t pad)
{
  lg_conv_geom g = {C, H, H, k, k, st, st, pad, pad, 1, 1, 0, 0};
  g.OH = g.OW = (H + 2 * pad - k) / st + 1;
  const int64_t P = g.OH * g.OW, K = C * k * k, HW = H * H;
  float *x = randv(N * C * HW), *w = randv(Co * K), *b = randv(Co), *gy = randv(N * Co * P);
  float *y = malloc(sizeof(float) * N * Co * P), *gx = malloc(sizeof(float) * N * C * HW);
  float *gw = malloc(sizeof(float) * Co * K);
  float *s = malloc(sizeof(float) * lg_conv_scratch_size(&g, N, Co));
  lg_conv2d_forward(x, w, b, y, N, Co, &g, s);
  lg_conv2d_backward_input(gy, w, gx, N, Co, &g, s);
  lg_conv2d_backward_weight(x, gy, gw, N, Co, &g, s);
  double *ry = calloc(N * Co * P, sizeof(double)), *rx = calloc(N * C * HW, sizeof(double));
  double *rw = calloc(Co * K, sizeof(double));
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < Co; o++)
      for (int64_t oh = 0; oh < g.OH; oh++)
        for (int64_t ow = 0; ow < g.OW; ow++) {
          int64_t yi = ((n * Co + o) * g.OH + oh) * g.OW + ow;
          ry[yi] = b[o];
          for (int64_t c = 0; c < C; c++)
            for (int64_t a = 0; a < k; a++)
              for (int64_t e = 0; e < k; e++) {
                int64_t ih = oh * st - pad + a, iw = ow * st - pad + e;
                if (ih < 0 || ih >= H || iw < 0 || iw >= H) continue;
                int64_t xi = ((n * C + c) * H + ih) * H + iw, wi = ((o * C + c) * k + a) * k + e;
                ry[yi] += (double)x[xi] * w[wi];
                rx[xi] += (double)gy[yi] * w[wi];
                rw[wi] += (double)gy[yi] * x[xi];
              }
        }
  CHECK(maxrel(y, ry, N * Co * P) < 1e-4);
  CHECK(maxrel(gx, rx, N * C * HW) < 1e-4);
  CHECK(maxrel(gw, rw, Co * K) < 5e-4);   /* sums N*OH*OW float products */
  free(x); free(w); free(b); free(gy); free(y); free(gx); free(gw); free(s);
  free(ry); free(rx); free(rw);
}

static void test_drivers_threaded(void)
{
  int prev = lg_get_num_threads();
  for (int t = 1; t <= 3; t++) {
    lg_set_num_threads(t);
    drivers_case(9, 16, 14, 64, 4, 2, 1);     /* a team, chunks with a remainder */
    drivers_case(9, 4, 40, 8, 4, 2, 1);       /* too wide for the permute forms */
    drivers_case(9, 3, 28, 64, 3, 1, 1);
    drivers_case(2, 5, 7, 4, 3, 2, 2);        /* too small for a team */
  }
  lg_set_num_threads(prev);
}

int main(void)
{
  lg_gen_seed(&G, 7);
  LGT_RUN(test_table_matches_direct);
  LGT_RUN(test_padding_is_zero_next_to_nonfinite);
  LGT_RUN(test_large_plane_has_no_table);
  LGT_RUN(test_perm_matches_table);
  LGT_RUN(test_perm_padding_next_to_nonfinite);
  LGT_RUN(test_drivers_threaded);
  return lgt_finish();
}
