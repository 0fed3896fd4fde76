/* lg_optim.c: fused optimizer updates (see lg_optim.h). One pass over each
 * parameter: the update is memory-bound, so fusing the moment updates and
 * the step saves several passes over the same arrays. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include "lg_optim.h"
#include "lg_simd.h"

#define LG_OMP_MIN LG_PAR_MIN   /* lg_tensor.h: shorter loops run on one thread */
#define LG_CHUNK 16384     /* threads take runs of this many elements */

static int lg_optim_check(const char *op, const lg_tensor *p, const lg_tensor *g,
                          const lg_tensor *s1, const lg_tensor *s2)
{
  const lg_tensor *all[4] = {p, g, s1, s2};
  const char *names[4] = {"parameter", "gradient", "state", "state"};
  char b1[128], b2[128];
  for (int k = 0; k < 4; k++) {
    if (!all[k]) continue;
    if (!lg_is_contiguous(all[k])) {
      lg_error("%s: %s must be contiguous", op, names[k]);
      return -1;
    }
    if (!lg_same_shape(all[k], p)) {
      lg_error("%s: %s has shape %s, parameter has shape %s", op, names[k],
               lg_shape_str(all[k], b1, sizeof b1), lg_shape_str(p, b2, sizeof b2));
      return -1;
    }
  }
  return 0;
}

/* A hyperparameter in [lo, hi] (each end open when asked): NaN fails every
 * comparison, so it is rejected too. A bad value would quietly ruin the
 * parameters (lr = nan) or turn the update around (eps = -1). */
static int lg_hyper(const char *op, const char *name, float v, float lo, int lo_open, float hi,
                    int hi_open)
{
  if ((lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi)) return 0;
  char got[32];
  if (isnan(v)) snprintf(got, sizeof got, "nan");   /* not "-nan" on some platforms */
  else snprintf(got, sizeof got, "%g", (double)v);
  if (hi == FLT_MAX)
    lg_error("%s: %s = %s is out of range (expected a finite value %s %g)", op, name, got,
             lo_open ? ">" : ">=", (double)lo);
  else
    lg_error("%s: %s = %s is out of range (expected %s%g, %g%s)", op, name, got,
             lo_open ? "(" : "[", (double)lo, (double)hi, hi_open ? ")" : "]");
  return -1;
}
#define LG_HYPER_MAX FLT_MAX   /* finite: lr = inf is as wrong as nan */

int lg_sgd_step(lg_tensor *p, const lg_tensor *g, lg_tensor *buf, float lr, float momentum,
                float dampening, float weight_decay, int nesterov, int first_step)
{
  if (lg_optim_check("sgd", p, g, buf, NULL)) return -1;
  if (lg_hyper("sgd", "lr", lr, 0, 0, LG_HYPER_MAX, 0)
      || lg_hyper("sgd", "momentum", momentum, 0, 0, LG_HYPER_MAX, 0)
      || lg_hyper("sgd", "dampening", dampening, 0, 0, 1, 0)
      || lg_hyper("sgd", "weight_decay", weight_decay, 0, 0, LG_HYPER_MAX, 0))
    return -1;
  if (momentum != 0 && !buf) { lg_error("sgd: momentum needs a buffer"); return -1; }
  int64_t n = lg_numel(p);
  float *w = lg_data(p), *b = buf ? lg_data(buf) : NULL;
  const float *d0 = lg_data(g);
  #pragma omp parallel for if (n > LG_OMP_MIN)
  for (int64_t i = 0; i < n; i++) {
    float d = d0[i] + weight_decay * w[i];
    if (b) {
      b[i] = first_step ? d : momentum * b[i] + (1 - dampening) * d;
      d = nesterov ? d + momentum * b[i] : b[i];
    }
    w[i] -= lr * d;
  }
  lg_bump_version(p);
  return 0;
}

/* One run of the Adam update: w, m, v, g: (n). A square root and a division
 * per element make the baseline (SSE2) loop compute-bound, so it is also
 * built for AVX2 and AVX-512, the CPU picking one when the library loads. */
LG_CLONES
static void lg_adam_run(float *restrict w, float *restrict mm, float *restrict vv,
                        const float *restrict gg, int64_t n, float beta1, float beta2, float l2,
                        float decay, float step_size, float inv_sqrt_bc2, float eps)
{
  for (int64_t i = 0; i < n; i++) {
    float d = gg[i] + l2 * w[i];
    mm[i] = beta1 * mm[i] + (1 - beta1) * d;
    vv[i] = beta2 * vv[i] + (1 - beta2) * d * d;
    w[i] = w[i] * decay - step_size * mm[i] / (sqrtf(vv[i]) * inv_sqrt_bc2 + eps);
  }
}

int lg_adam_step(lg_tensor *p, const lg_tensor *g, lg_tensor *m, lg_tensor *v, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int decoupled,
                 int64_t step)
{
  if (lg_optim_check("adam", p, g, m, v)) return -1;
  if (lg_hyper("adam", "lr", lr, 0, 0, LG_HYPER_MAX, 0)
      || lg_hyper("adam", "beta1", beta1, 0, 0, 1, 1) || lg_hyper("adam", "beta2", beta2, 0, 0, 1, 1)
      || lg_hyper("adam", "eps", eps, 0, 1, LG_HYPER_MAX, 0)
      || lg_hyper("adam", "weight_decay", weight_decay, 0, 0, LG_HYPER_MAX, 0))
    return -1;
  if (step < 1) { lg_error("adam: step must be >= 1, got %lld", (long long)step); return -1; }
  int64_t n = lg_numel(p);
  float *w = lg_data(p), *mm = lg_data(m), *vv = lg_data(v);
  const float *gg = lg_data(g);
  /* Bias corrections in double: beta^step underflows gracefully there. */
  double bc1 = 1 - pow(beta1, (double)step), bc2 = 1 - pow(beta2, (double)step);
  float step_size = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1 / sqrt(bc2));
  float decay = decoupled ? 1 - lr * weight_decay : 1;
  float l2 = decoupled ? 0 : weight_decay;
  int64_t nch = (n + LG_CHUNK - 1) / LG_CHUNK;
  #pragma omp parallel for if (n > LG_OMP_MIN)
  for (int64_t c = 0; c < nch; c++) {
    int64_t lo = c * LG_CHUNK, len = n - lo < LG_CHUNK ? n - lo : LG_CHUNK;
    lg_adam_run(w + lo, mm + lo, vv + lo, gg + lo, len, beta1, beta2, l2, decay, step_size,
                inv_sqrt_bc2, eps);
  }
  lg_bump_version(p);
  return 0;
}

int lg_rmsprop_step(lg_tensor *p, const lg_tensor *g, lg_tensor *sq, lg_tensor *buf, float lr,
                    float alpha, float eps, float weight_decay, float momentum)
{
  if (lg_optim_check("rmsprop", p, g, sq, buf)) return -1;
  if (lg_hyper("rmsprop", "lr", lr, 0, 0, LG_HYPER_MAX, 0)
      || lg_hyper("rmsprop", "alpha", alpha, 0, 0, 1, 0)
      || lg_hyper("rmsprop", "eps", eps, 0, 1, LG_HYPER_MAX, 0)
      || lg_hyper("rmsprop", "weight_decay", weight_decay, 0, 0, LG_HYPER_MAX, 0)
      || lg_hyper("rmsprop", "momentum", momentum, 0, 0, LG_HYPER_MAX, 0))
    return -1;
  if (momentum != 0 && !buf) { lg_error("rmsprop: momentum needs a buffer"); return -1; }
  int64_t n = lg_numel(p);
  float *w = lg_data(p), *s = lg_data(sq), *b = buf ? lg_data(buf) : NULL;
  const float *gg = lg_data(g);
  #pragma omp parallel for if (n > LG_OMP_MIN)
  for (int64_t i = 0; i < n; i++) {
    float d = gg[i] + weight_decay * w[i];
    s[i] = alpha * s[i] + (1 - alpha) * d * d;
    float u = d / (sqrtf(s[i]) + eps);
    if (b) { b[i] = momentum * b[i] + u; u = b[i]; }
    w[i] -= lr * u;
  }
  lg_bump_version(p);
  return 0;
}
