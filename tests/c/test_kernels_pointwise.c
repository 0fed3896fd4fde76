/* test_kernels_pointwise.c: the vectorisable tanh of lg_pointwise.c against
 * the C library's double tanh (the naive reference) on a dense sweep of
 * float inputs, and its special values; elementwise kernels on the threaded
 * path against element-at-a-time references. */
#include <stdlib.h>
#include <string.h>
#include "lgt.h"

/* |got - want| in units of the float spacing at want */
static double ulps(float got, double want)
{
  double sp = fabs(want) < 1.1754943508e-38 ? 1.4e-45 : ldexp(1.0, ilogb(want) - 23);
  return fabs(got - want) / sp;
}

static void test_tanh_accuracy(void)
{
  /* every 97th float bit pattern in [0, 12] and the same negated: crosses the
   * polynomial/exp switch at 0.625, tiny and subnormal inputs, the clamp at 9 */
  int64_t n = 0;
  const uint32_t top = 0x41400000u;   /* 12.0f */
  for (uint32_t b = 0; b <= top; b += 97) n += 2;
  float *v = malloc(sizeof(float) * n);
  int64_t k = 0;
  for (uint32_t b = 0; b <= top; b += 97) {
    float f;
    memcpy(&f, &b, 4);
    v[k++] = f;
    v[k++] = -f;
  }
  lg_tensor *x = OK(lg_from_data(1, &n, v)), *y = OK(lg_tanh(x));
  double worst = 0;
  float at = 0;
  for (int64_t i = 0; i < n; i++) {
    double u = ulps(lg_data(y)[i], tanh((double)v[i]));
    if (u > worst) { worst = u; at = v[i]; }
  }
  if (worst > 3) fprintf(stderr, "tanh: %.2f ulp at %.9g\n", worst, at);
  CHECK(worst <= 3);
  lg_release(x); lg_release(y); free(v);
}

static void test_tanh_special(void)
{
  float v[8] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 9.0f, 20.0f, -1e-30f};
  int64_t n = 8;
  lg_tensor *x = OK(lg_from_data(1, &n, v)), *y = OK(lg_tanh(x));
  float *o = lg_data(y);
  CHECK(o[0] == 0.0f && !signbit(o[0]));
  CHECK(o[1] == 0.0f && signbit(o[1]));
  CHECK(o[2] == 1.0f && o[3] == -1.0f);
  CHECK(isnan(o[4]));
  CHECK(ulps(o[5], tanh(9.0)) <= 1 && o[6] == 1.0f);
  CHECK(o[7] == -1e-30f);
  lg_release(x); lg_release(y);
}

/* Past LG_PAR_MIN the loops run on several threads: same values as computed
 * here one element at a time (flat, broadcast and strided operands). */
static void test_threaded_elementwise(void)
{
  lg_gen G;
  lg_gen_seed(&G, 5);
  int64_t s[2] = {640, 512}, row[2] = {1, 512};   /* 327680 > LG_PAR_MIN elements */
  CHECK(s[0] * s[1] > LG_PAR_MIN);
  int prev = lg_get_num_threads();
  lg_set_num_threads(2);
  lg_tensor *a = OK(lgt_randn(&G, 2, s)), *b = OK(lgt_randn(&G, 2, s)), *r = OK(lgt_randn(&G, 2, row));
  /* bs: b's values as a strided (transposed-storage) 640x512 view */
  lg_tensor *bt = OK(lg_transpose(b, 0, 1)), *btt = OK(lg_contiguous(bt));
  lg_tensor *bs = OK(lg_transpose(btt, 0, 1));
  CHECK(!lg_is_contiguous(bs));
  lg_tensor *add = OK(lg_add(a, b)), *badd = OK(lg_add(a, r)), *sadd = OK(lg_add(a, bs));
  lg_tensor *lk = OK(lg_leaky_relu(a, 0.2f)), *th = OK(lg_tanh(a));
  lg_tensor *mask = OK(lg_gt_scalar(a, 0)), *wh = OK(lg_where(mask, a, b));
  const float *pa = lg_data(a), *pb = lg_data(b), *pr = lg_data(r);
  int bad = 0;
  for (int64_t i = 0; i < s[0] * s[1] && bad < 5; i++) {
    float x = pa[i], y = pb[i];
    if (lg_data(add)[i] != x + y) bad++;
    if (lg_data(badd)[i] != x + pr[i % s[1]]) bad++;
    if (lg_data(sadd)[i] != x + y) bad++;
    if (lg_data(lk)[i] != (x > 0 ? x : x * 0.2f)) bad++;
    if (ulps(lg_data(th)[i], tanh((double)x)) > 3) bad++;
    if (lg_data(wh)[i] != (x > 0 ? x : y)) bad++;
  }
  CHECK(bad == 0);
  lg_tensor *all[] = {a, b, r, bt, btt, bs, add, badd, sadd, lk, th, mask, wh};
  for (size_t k = 0; k < sizeof all / sizeof *all; k++) lg_release(all[k]);
  lg_set_num_threads(prev);
}

int main(void)
{
  LGT_RUN(test_tanh_accuracy);
  LGT_RUN(test_tanh_special);
  LGT_RUN(test_threaded_elementwise);
  return lgt_finish();
}
