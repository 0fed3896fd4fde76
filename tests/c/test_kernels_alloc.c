/* test_kernels_alloc.c: the caching allocator. A GAN-like training step
 * (conv critic with batch norm, transposed-conv generator, BCE losses,
 * backward, Adam) repeated with the same shapes reaches a steady state in
 * which it takes every tensor buffer from the cache: no system allocation
 * per step, and the bytes alive return to the same level. */
#include <stdlib.h>
#include "lgt.h"
#include "lg_optim.h"

static lg_gen G;

typedef struct {
  lg_tensor *gw1, *gw2, *dw1, *dw2, *dwl, *m[5], *v[5];
  lg_tensor *rm, *rv;
  int64_t t;
} nets;

static lg_tensor *leaf(int nd, const int64_t *s)
{
  lg_tensor *t = OK(lgt_randn(&G, nd, s));
  for (int64_t i = 0; i < lg_numel(t); i++) lg_data(t)[i] *= 0.1f;
  lg_requires_grad_(t, 1);
  return t;
}

/* G: z (B,8,4,4) -> convT 8->4 (k4 s2 p1) -> relu -> convT 4->1 -> tanh: (B,1,16,16)
 * D: conv 1->4 (k4 s2 p1) -> batch norm -> leaky -> conv 4->8 -> flatten -> linear -> (B,1) */
static lg_tensor *gen(nets *n, lg_tensor *z)
{
  lg_tensor *a = OK(lg_conv_transpose2d(z, n->gw1, NULL, 2, 2, 1, 1, 0, 0, 1, 1));
  lg_tensor *b = OK(lg_relu(a));
  lg_tensor *c = OK(lg_conv_transpose2d(b, n->gw2, NULL, 2, 2, 1, 1, 0, 0, 1, 1));
  lg_tensor *y = OK(lg_tanh(c));
  lg_release(a); lg_release(b); lg_release(c);
  return y;
}

static lg_tensor *disc(nets *n, lg_tensor *x)
{
  int64_t B = x->shape[0], fs[2] = {B, 8 * 4 * 4};
  lg_tensor *a = OK(lg_conv2d(x, n->dw1, NULL, 2, 2, 1, 1, 1, 1));
  lg_tensor *b = OK(lg_batch_norm(a, n->rm, n->rv, NULL, NULL, 1, 0.1f, 1e-5f));
  lg_tensor *c = OK(lg_leaky_relu(b, 0.2f));
  lg_tensor *d = OK(lg_conv2d(c, n->dw2, NULL, 2, 2, 1, 1, 1, 1));
  lg_tensor *e = OK(lg_reshape(d, 2, fs));
  lg_tensor *y = OK(lg_matmul(e, n->dwl));
  lg_release(a); lg_release(b); lg_release(c); lg_release(d); lg_release(e);
  return y;
}

/* Adam on ps[0..np), whose moments are n->m/v[first..] */
static void adam(nets *n, lg_tensor **ps, int np, int first)
{
  for (int i = 0; i < np; i++) {
    lg_tensor *p = ps[i];
    if (!p->grad) continue;
    CHECK(lg_adam_step(p, p->grad, n->m[first + i], n->v[first + i], 1e-3f, 0.5f, 0.999f, 1e-8f,
                       0, 0, n->t) == 0);
    lg_release(p->grad);
    p->grad = NULL;
  }
}

static void step(nets *n, lg_tensor *real, lg_tensor *ones, lg_tensor *zeros)
{
  int64_t zs[4] = {real->shape[0], 8, 4, 4};
  lg_tensor *z = OK(lg_randn(&G, 4, zs)), *fake = gen(n, z), *fd = lg_detach(fake);
  lg_tensor *dr = disc(n, real), *df = disc(n, fd);
  lg_tensor *l1 = OK(lg_bce_with_logits(dr, ones, LG_REDUCE_MEAN));
  lg_tensor *l2 = OK(lg_bce_with_logits(df, zeros, LG_REDUCE_MEAN));
  lg_tensor *ld = OK(lg_add(l1, l2));
  CHECK(lg_backward(1, &ld, NULL, 0, 0) == 0);
  lg_tensor *dp[3] = {n->dw1, n->dw2, n->dwl}, *gp[2] = {n->gw1, n->gw2};
  n->t++;
  adam(n, dp, 3, 0);
  lg_tensor *dg = disc(n, fake), *lgen = OK(lg_bce_with_logits(dg, ones, LG_REDUCE_MEAN));
  CHECK(lg_backward(1, &lgen, NULL, 0, 0) == 0);
  adam(n, gp, 2, 3);
  for (int i = 0; i < 3; i++) { lg_release(dp[i]->grad); dp[i]->grad = NULL; }
  lg_release(z); lg_release(fake); lg_release(fd); lg_release(dr); lg_release(df);
  lg_release(l1); lg_release(l2); lg_release(ld); lg_release(dg); lg_release(lgen);
}

static void test_steady_state_step_allocates_nothing(void)
{
  int64_t B = 16;
  int64_t s1[4] = {8, 4, 4, 4}, s2[4] = {4, 1, 4, 4}, s3[4] = {4, 1, 4, 4}, s4[4] = {8, 4, 4, 4};
  int64_t sl[2] = {8 * 4 * 4, 1}, c4 = 4, xs[4] = {B, 1, 16, 16}, ys[2] = {B, 1};
  nets n = {0};
  n.gw1 = leaf(4, s1); n.gw2 = leaf(4, s2);
  n.dw1 = leaf(4, s3); n.dw2 = leaf(4, s4); n.dwl = leaf(2, sl);
  /* Adam state: D's three parameters in slots 0-2, G's two in slots 3-4 */
  lg_tensor *all[5] = {n.dw1, n.dw2, n.dwl, n.gw1, n.gw2};
  for (int i = 0; i < 5; i++) {
    n.m[i] = OK(lg_zeros(all[i]->ndim, all[i]->shape));
    n.v[i] = OK(lg_zeros(all[i]->ndim, all[i]->shape));
  }
  n.rm = OK(lg_zeros(1, &c4));
  n.rv = OK(lg_ones(1, &c4));
  lg_tensor *real = OK(lg_rand(&G, 4, xs)), *ones = OK(lg_ones(2, ys)), *zeros = OK(lg_zeros(2, ys));
  for (int it = 0; it < 3; it++) step(&n, real, ones, zeros);   /* warm the cache */
  uint64_t sys0 = lg_mem_sys_allocs();
  size_t live0 = lg_mem_live_bytes();
  for (int it = 0; it < 5; it++) step(&n, real, ones, zeros);
  CHECK(lg_mem_sys_allocs() == sys0);
  CHECK(lg_mem_live_bytes() == live0);
  CHECK(lg_mem_cached_bytes() > 0);
  /* trimming gives the cache back; the next step refills it from the system */
  lg_mem_trim();
  CHECK(lg_mem_cached_bytes() == 0);
  step(&n, real, ones, zeros);
  CHECK(lg_mem_sys_allocs() > sys0);
  for (int i = 0; i < 5; i++) { lg_release(n.m[i]); lg_release(n.v[i]); lg_release(all[i]); }
  lg_release(n.rm); lg_release(n.rv); lg_release(real); lg_release(ones); lg_release(zeros);
}

/* The high-water marks: peak live follows the largest set alive at once,
 * peak held (live + cached, what RSS follows) includes the cache, and a
 * reset starts both from the present. */
static void test_peak_counters(void)
{
  lg_mem_trim();
  lg_mem_reset_peaks();
  size_t live0 = lg_mem_live_bytes();
  CHECK(lg_mem_peak_live_bytes() == live0);
  CHECK(lg_mem_peak_held_bytes() == live0);
  int64_t n1 = 1 << 18, n2 = 1 << 19;                  /* 1 MiB and 2 MiB */
  lg_tensor *a = OK(lg_zeros(1, &n1)), *b = OK(lg_zeros(1, &n2));
  lg_release(a);                                        /* cached: held stays */
  lg_release(b);
  CHECK(lg_mem_peak_live_bytes() == live0 + (3u << 20));
  CHECK(lg_mem_live_bytes() == live0);
  CHECK(lg_mem_peak_held_bytes() == live0 + (3u << 20));
  a = OK(lg_zeros(1, &n1));                             /* from the cache: no new peak */
  lg_release(a);
  CHECK(lg_mem_peak_live_bytes() == live0 + (3u << 20));
  lg_mem_reset_peaks();
  CHECK(lg_mem_peak_live_bytes() == live0);
  CHECK(lg_mem_peak_held_bytes() == live0 + lg_mem_cached_bytes());
  lg_mem_trim();
}

/* A step larger than the cache floor: its backward pass frees the
 * activations (A blocks of 16 MiB) while only small gradients stay alive.
 * Following the live set, the cache keeps a live set's worth of them and
 * every step maps the rest again; once steps are marked, the cache may fill
 * up to twice the marked peak and a steady step maps nothing, while a size
 * not asked for in 16 marked steps is given back. A trim forgets the marks:
 * a one-off phase after it keeps no more than the live rule allows. */
enum { A = 8 };
static void big_step(lg_tensor **keep, int mark)
{
  int64_t act = 4 << 20, grad = 1 << 10;              /* 16 MiB, 4 KiB */
  lg_tensor *a[A], *g[A];
  for (int i = 0; i < A; i++) a[i] = OK(lg_empty(1, &act));
  for (int i = A - 1; i >= 0; i--) { g[i] = OK(lg_empty(1, &grad)); lg_release(a[i]); }
  for (int i = 0; i < A; i++) { lg_release(keep[i]); keep[i] = g[i]; }
  if (mark) lg_mem_step_mark();
}

static void test_marked_steps_keep_their_blocks(void)
{
  lg_mem_trim();
  lg_tensor *keep[A] = {0};
  for (int it = 0; it < 3; it++) big_step(keep, 0);
  uint64_t sys0 = lg_mem_sys_allocs();
  big_step(keep, 0);
  CHECK(lg_mem_sys_allocs() - sys0 >= 4);            /* unmarked: 128 MiB > floor, remapped */
  CHECK(lg_mem_hold_limit() == 0);
  for (int it = 0; it < 2; it++) big_step(keep, 1);
  CHECK(lg_mem_hold_limit() >= (size_t)A * (16u << 20));
  sys0 = lg_mem_sys_allocs();
  lg_mem_reset_peaks();
  for (int it = 0; it < 5; it++) big_step(keep, 1);
  CHECK(lg_mem_sys_allocs() == sys0);                 /* marked: every block reused */
  CHECK(lg_mem_peak_held_bytes() <= lg_mem_hold_limit());
  /* a one-off size stays cached while its step is recent, then goes */
  size_t cached0 = lg_mem_cached_bytes();
  int64_t odd = (3 << 20) + 5;                        /* ~12 MiB, no other tensor's size */
  lg_release(OK(lg_empty(1, &odd)));
  CHECK(lg_mem_cached_bytes() > cached0);
  for (int it = 0; it < 17; it++) big_step(keep, 1);
  CHECK(lg_mem_cached_bytes() == cached0);
  lg_mem_trim();
  CHECK(lg_mem_hold_limit() == 0);
  CHECK(lg_mem_cached_bytes() == 0);
  big_step(keep, 0);                                  /* after a trim: the live rule */
  CHECK(lg_mem_cached_bytes() <= (64u << 20));
  for (int i = 0; i < A; i++) lg_release(keep[i]);
  lg_mem_trim();
}

/* More distinct sizes than the table has slots, each left behind by the
 * marks: their slots come back, so a new size is still cached. */
static void test_evicted_sizes_free_their_slots(void)
{
  lg_mem_trim();
  for (int64_t i = 0; i < 1500; i++) {
    int64_t n = 1000 + 16 * i;                          /* 1500 distinct rounded sizes */
    lg_release(OK(lg_empty(1, &n)));
    lg_mem_step_mark();
  }
  for (int i = 0; i < 17; i++) lg_mem_step_mark();    /* every size above is now stale */
  CHECK(lg_mem_cached_bytes() == 0);
  int64_t fresh = 1000 + 16 * 2000;
  lg_release(OK(lg_empty(1, &fresh)));
  CHECK(lg_mem_cached_bytes() >= (size_t)fresh * sizeof(float));
  uint64_t sys0 = lg_mem_sys_allocs();
  lg_release(OK(lg_empty(1, &fresh)));                /* and reused */
  CHECK(lg_mem_sys_allocs() == sys0);
  lg_mem_trim();
}

int main(void)
{
  lg_gen_seed(&G, 3);
  LGT_RUN(test_steady_state_step_allocates_nothing);
  LGT_RUN(test_peak_counters);
  LGT_RUN(test_marked_steps_keep_their_blocks);
  LGT_RUN(test_evicted_sizes_free_their_slots);
  return lgt_finish();
}
