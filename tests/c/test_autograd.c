/* test_autograd.c: the engine itself: accumulation, graph freeing, errors,
 * gradients of gradients, retained gradients and flat memory. Formulas of
 * individual ops are checked by the gradcheck and golden tests in Lua. */
#include <string.h>
#include "lgt.h"
#include "lg_kernels_pointwise.h"   /* the formula arena, to overflow it */

static lg_tensor *vec(int n, const float *v)
{
  int64_t s[1] = {n};
  return lg_from_data(1, s, v);
}

static void test_every_op_has_a_formula(void)
{
  for (int op = 0; op < LG_OP_CUSTOM; op++)
    if (!lg_op_has_formula(op)) {
      lgt_failed_checks++;
      fprintf(stderr, "op %s has no backward formula\n", lg_op_names[op]);
    }
}

static void test_backward_accumulates(void)
{
  float xv[3] = {1, 2, 3};
  lg_tensor *x = OK(vec(3, xv));
  lg_requires_grad_(x, 1);
  for (int rep = 1; rep <= 2; rep++) {
    lg_tensor *y = OK(lg_mul(x, x));          /* y = x^2 */
    lg_tensor *s = OK(lg_sum(y, 0, NULL, 0));
    CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
    for (int i = 0; i < 3; i++) CHECK_NEAR(lg_data(x->grad)[i], 2 * xv[i] * rep, 1e-6);
    lg_release(s);
    lg_release(y);
  }
  lg_release(x);
}

static void test_shared_input_and_diamond(void)
{
  /* z = (x*2) * (x+1): two paths from x meet again (a diamond). */
  float xv[2] = {0.5f, -1.5f};
  lg_tensor *x = OK(vec(2, xv));
  lg_requires_grad_(x, 1);
  lg_tensor *a = OK(lg_mul_scalar(x, 2)), *b = OK(lg_add_scalar(x, 1));
  lg_tensor *z = OK(lg_mul(a, b)), *s = OK(lg_sum(z, 0, NULL, 0));
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  for (int i = 0; i < 2; i++) CHECK_NEAR(lg_data(x->grad)[i], 4 * xv[i] + 2, 1e-6);
  lg_release(s); lg_release(z); lg_release(a); lg_release(b); lg_release(x);
}

static void test_freed_graph_and_retain(void)
{
  float xv[2] = {1, 2};
  lg_tensor *x = OK(vec(2, xv));
  lg_requires_grad_(x, 1);
  lg_tensor *y = OK(lg_exp(x)), *s = OK(lg_sum(y, 0, NULL, 0));
  CHECK(lg_backward(1, &s, NULL, 1, 0) == 0);  /* retain_graph */
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  CHECK_NEAR(lg_data(x->grad)[1], 2 * expf(2), 1e-5);
  CHECK(lg_backward(1, &s, NULL, 0, 0) != 0);
  CHECK(strstr(lg_last_error(), "already freed") != NULL);
  lg_release(s); lg_release(y); lg_release(x);
}

static void test_errors(void)
{
  float xv[2] = {1, 2};
  lg_tensor *x = OK(vec(2, xv)), *c = OK(vec(2, xv));
  lg_requires_grad_(x, 1);
  lg_tensor *y = OK(lg_mul(x, c));
  CHECK(lg_backward(1, &y, NULL, 0, 0) != 0);   /* non-scalar without grad */
  CHECK(strstr(lg_last_error(), "scalar outputs") != NULL);
  int64_t s3[1] = {3};
  lg_tensor *g3 = OK(lg_ones(1, s3));
  CHECK(lg_backward(1, &y, &g3, 0, 0) != 0);    /* mismatched grad shape */
  CHECK(strstr(lg_last_error(), "does not match") != NULL);
  lg_tensor *r = NULL;
  CHECK(lg_grad(1, &y, NULL, 1, &c, &r, 0, 0, 0) != 0);  /* input without grad */
  CHECK(strstr(lg_last_error(), "does not require grad") != NULL);
  CHECK(lg_backward(1, &c, NULL, 0, 0) != 0);   /* root without grad */
  lg_release(g3); lg_release(y); lg_release(x); lg_release(c);
}

static void test_unused_input(void)
{
  float v[2] = {1, 2};
  lg_tensor *x = OK(vec(2, v)), *w = OK(vec(2, v));
  lg_requires_grad_(x, 1);
  lg_requires_grad_(w, 1);
  lg_tensor *s = OK(lg_sum(x, 0, NULL, 0));
  lg_tensor *in[2] = {x, w}, *res[2];
  CHECK(lg_grad(1, &s, NULL, 2, in, res, 1, 0, 0) != 0);
  CHECK(strstr(lg_last_error(), "not used") != NULL);
  CHECK(lg_grad(1, &s, NULL, 2, in, res, 1, 0, 1) == 0);
  CHECK(res[0] && !res[1]);
  CHECK(x->grad == NULL);   /* lg_grad leaves .grad alone */
  lg_release(res[0]);
  lg_release(s); lg_release(x); lg_release(w);
}

static void test_double_backward(void)
{
  /* f = sum(x^3); df/dx = 3x^2 (with graph); d/dx sum(3x^2 * x) = 9x^2 ... use
   * the classic: d/dx sum(df/dx) = 6x. */
  float xv[3] = {0.5f, -1, 2};
  lg_tensor *x = OK(vec(3, xv));
  lg_requires_grad_(x, 1);
  lg_tensor *cube = OK(lg_pow_scalar(x, 3)), *f = OK(lg_sum(cube, 0, NULL, 0));
  lg_tensor *g = NULL;
  CHECK(lg_grad(1, &f, NULL, 1, &x, &g, 0, 1, 0) == 0);
  CHECK(g->requires_grad && g->grad_fn);
  for (int i = 0; i < 3; i++) CHECK_NEAR(lg_data(g)[i], 3 * xv[i] * xv[i], 1e-6);
  lg_tensor *sg = OK(lg_sum(g, 0, NULL, 0)), *gg = NULL;
  CHECK(lg_grad(1, &sg, NULL, 1, &x, &gg, 0, 1, 0) == 0);
  for (int i = 0; i < 3; i++) CHECK_NEAR(lg_data(gg)[i], 6 * xv[i], 1e-6);
  /* third order: d/dx sum(6x) = 6 */
  lg_tensor *sgg = OK(lg_sum(gg, 0, NULL, 0)), *ggg = NULL;
  CHECK(lg_grad(1, &sgg, NULL, 1, &x, &ggg, 0, 0, 0) == 0);
  for (int i = 0; i < 3; i++) CHECK_NEAR(lg_data(ggg)[i], 6, 1e-6);
  lg_release(ggg); lg_release(sgg); lg_release(gg); lg_release(sg); lg_release(g);
  lg_release(f); lg_release(cube); lg_release(x);
}

static void test_gradient_penalty_shape(void)
{
  /* ||d/dx (w . x)|| = ||w|| per row; penalty (||w|| - 1)^2 has gradient
   * 2(||w||-1) w/||w|| with respect to w: checks the MLP-critic pattern. */
  float wv[3] = {0.3f, -0.4f, 1.2f};
  int64_t xs[2] = {4, 3}, ws[2] = {3, 1};
  lg_gen gen;
  lg_gen_seed(&gen, 7);
  lg_tensor *x = OK(lgt_randn(&gen, 2, xs)), *w = OK(lg_from_data(2, ws, wv));
  lg_requires_grad_(x, 1);
  lg_requires_grad_(w, 1);
  lg_tensor *out = OK(lg_matmul(x, w)), *s = OK(lg_sum(out, 0, NULL, 0)), *gx = NULL;
  CHECK(lg_grad(1, &s, NULL, 1, &x, &gx, 0, 1, 0) == 0);
  int dim1[1] = {1};
  lg_tensor *nrm = OK(lg_norm(gx, 2, 1, dim1, 0));
  lg_tensor *dev = OK(lg_add_scalar(nrm, -1)), *sq = OK(lg_pow_scalar(dev, 2));
  lg_tensor *pen = OK(lg_mean(sq, 0, NULL, 0));
  CHECK(lg_backward(1, &pen, NULL, 0, 0) == 0);
  double wn = sqrt(0.09 + 0.16 + 1.44);
  for (int i = 0; i < 3; i++) CHECK_NEAR(lg_data(w->grad)[i], 2 * (wn - 1) * wv[i] / wn, 1e-5);
  CHECK(x->grad == NULL);
  lg_release(pen); lg_release(sq); lg_release(dev); lg_release(nrm); lg_release(gx); lg_release(s); lg_release(out);
  lg_release(x); lg_release(w);
}

static void test_retain_grad_and_no_grad(void)
{
  float xv[2] = {1, -2};
  lg_tensor *x = OK(vec(2, xv));
  lg_requires_grad_(x, 1);
  lg_tensor *h = OK(lg_mul_scalar(x, 3));
  CHECK(lg_retain_grad(h) == 0);
  lg_tensor *hh = OK(lg_mul(h, h)), *s = OK(lg_sum(hh, 0, NULL, 0));
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  CHECK(h->grad != NULL);
  lg_release(hh);
  if (h->grad) CHECK_NEAR(lg_data(h->grad)[1], 2 * -6, 1e-6);
  int prev = lg_set_grad_enabled(0);
  lg_tensor *q = OK(lg_mul(x, x));
  CHECK(!q->requires_grad && !q->grad_fn);
  lg_set_grad_enabled(prev);
  lg_release(q); lg_release(s); lg_release(h); lg_release(x);
}

static void test_memory_flat(void)
{
  /* 10 000 training-like iterations: no growth of live tensor bytes and, after
   * warm-up, no system allocation (the caching allocator reuses blocks). */
  int64_t xs[2] = {16, 32}, ws[2] = {32, 8};
  lg_gen gen;
  lg_gen_seed(&gen, 1);
  lg_tensor *w = OK(lgt_randn(&gen, 2, ws));
  lg_requires_grad_(w, 1);
  lg_tensor *x = OK(lgt_randn(&gen, 2, xs));
  size_t live0 = 0;
  uint64_t allocs0 = 0;
  for (int it = 0; it < 10000; it++) {
    if (it == 100) { live0 = lg_mem_live_bytes(); allocs0 = lg_mem_sys_allocs(); }
    lg_tensor *h = OK(lg_matmul(x, w)), *a = OK(lg_tanh(h)), *s = OK(lg_mean(a, 0, NULL, 0));
    CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
    lg_release(s); lg_release(a); lg_release(h);
    int prev = lg_set_grad_enabled(0);
    lg_add_(w, w->grad, -1e-3f);
    lg_zero_(w->grad);
    lg_set_grad_enabled(prev);
  }
  CHECK(lg_mem_live_bytes() == live0);
  CHECK(lg_mem_sys_allocs() == allocs0);
  lg_release(x); lg_release(w);
}

/* A backward formula that needs more temporaries than the arena holds gets
 * NULL and an error (not an assert), and the engine names the op. */
static int greedy_backward(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lg_fx s = {0};
  lg_tensor *t = g;
  for (int k = 0; k <= LG_FX_MAX && t; k++) t = fx_muls(&s, t, 1.0f);
  if (n->needs[0]) gin[0] = fx_out(t);
  fx_free(&s);
  return gin[0] ? 0 : -1;
}

static void test_formula_arena_overflow(void)
{
  float xv[2] = {1, 2};
  lg_tensor *x = OK(vec(2, xv));
  lg_requires_grad_(x, 1);
  lg_tensor *y = OK(lg_clone(x));
  lg_set_grad_enabled(0);
  lg_tensor *out = OK(lg_mul_scalar(y, 1.0f));
  lg_set_grad_enabled(1);
  CHECK(lg_record_custom("greedy_op", out, 1, &y, greedy_backward, NULL, NULL) == 0);
  lg_tensor *s = OK(lg_sum(out, 0, NULL, 0));
  CHECK(lg_backward(1, &s, NULL, 0, 0) == -1);
  CHECK(strstr(lg_last_error(), "greedy_op") != NULL);
  CHECK(strstr(lg_last_error(), "more than 32 temporaries") != NULL);
  lg_release(s); lg_release(out); lg_release(y); lg_release(x);
}

/* loss = sum(tanh(x1 @ W^T)) + sum(tanh(x2 @ W'^T)), W' = W^T again from a
 * second transpose (as Linear does per call) or the same one (shared). */
static lg_tensor *two_branch_loss(lg_tensor *x1, lg_tensor *x2, lg_tensor *w, int shared)
{
  lg_tensor *t1 = OK(lg_transpose(w, 0, 1)), *t2 = shared ? lg_retain(t1) : OK(lg_transpose(w, 0, 1));
  lg_tensor *h1 = OK(lg_matmul(x1, t1)), *h2 = OK(lg_matmul(x2, t2));
  lg_tensor *a1 = OK(lg_tanh(h1)), *a2 = OK(lg_tanh(h2));
  lg_tensor *s1 = OK(lg_sum(a1, 0, NULL, 0)), *s2 = OK(lg_sum(a2, 0, NULL, 0));
  lg_tensor *loss = OK(lg_add(s1, s2));
  lg_release(t1); lg_release(t2); lg_release(h1); lg_release(h2); lg_release(a1);
  lg_release(a2); lg_release(s1); lg_release(s2);
  return loss;
}

/* A Linear weight reached twice in one backward (D on real and on fake
 * images): the second weight gradient is added into .grad in ~1 MiB row
 * blocks (lg_bw_sink, lg_matmul.c) instead of as one whole temporary. The
 * oracle is lg_grad, which never sinks and sums the two out of place: the
 * bits must agree (the sum of two is the same in either order), for a batch
 * past OpenBLAS's K blocking too; a .grad already there gets the same sum
 * as lg_add_; and the backward's peak holds one weight-sized buffer, not two. */
static void test_linear_weight_sink(void)
{
  lg_gen gen;
  lg_gen_seed(&gen, 5);
  int64_t ws[2] = {1024, 1000};                        /* 3.9 MiB: above the sink's minimum */
  size_t wbytes = sizeof(float) * 1024 * 1000;
  for (int c = 0; c < 3; c++) {
    int64_t batch = c == 1 ? 700 : 64;
    int shared = c == 2;
    int64_t xs[2] = {batch, 1000};
    lg_tensor *w = OK(lgt_randn(&gen, 2, ws)), *x1 = OK(lgt_randn(&gen, 2, xs)),
              *x2 = OK(lgt_randn(&gen, 2, xs));
    lg_requires_grad_(w, 1);
    lg_tensor *loss = two_branch_loss(x1, x2, w, shared), *ref = NULL;
    CHECK(lg_grad(1, &loss, NULL, 1, &w, &ref, 0, 0, 0) == 0);
    lg_release(loss);
    loss = two_branch_loss(x1, x2, w, shared);
    size_t live0 = lg_mem_live_bytes();
    lg_mem_reset_peaks();
    CHECK(lg_backward(1, &loss, NULL, 0, 0) == 0);
    if (!shared) CHECK(lg_mem_peak_live_bytes() - live0 < wbytes + ((size_t)5 << 19));
    CHECK(w->grad && ref && lg_same_shape(w->grad, ref));
    if (w->grad && ref) {
      lg_tensor *gc = OK(lg_contiguous(w->grad)), *rc = OK(lg_contiguous(ref));
      CHECK(memcmp(lg_data(gc), lg_data(rc), wbytes) == 0);
      lg_release(gc); lg_release(rc);
    }
    /* into a .grad already there: one more branch through its own transpose */
    lg_tensor *g0 = OK(lg_clone(w->grad)), *t = OK(lg_transpose(w, 0, 1));
    lg_tensor *h = OK(lg_matmul(x1, t)), *a = OK(lg_tanh(h)), *s = OK(lg_sum(a, 0, NULL, 0));
    lg_tensor *one = NULL;
    CHECK(lg_grad(1, &s, NULL, 1, &w, &one, 1, 0, 0) == 0);
    CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
    int prev = lg_set_grad_enabled(0);
    CHECK(lg_add_(g0, one, 1.0f) == 0);
    lg_set_grad_enabled(prev);
    lg_tensor *gc = OK(lg_contiguous(w->grad)), *ec = OK(lg_contiguous(g0));
    CHECK(memcmp(lg_data(gc), lg_data(ec), wbytes) == 0);
    lg_release(gc); lg_release(ec); lg_release(one); lg_release(s); lg_release(a);
    lg_release(h); lg_release(t); lg_release(g0);
    lg_release(loss); lg_release(ref); lg_release(w); lg_release(x1); lg_release(x2);
  }
}

/* lg_backward_to: only the named leaves get gradients, equal to a full
 * backward's; the others keep theirs; a non-leaf input is an error. */
static void test_backward_to(void)
{
  float av[3] = {1, 2, 3}, bv[3] = {-1, 0.5f, 2};
  lg_tensor *a = OK(vec(3, av)), *b = OK(vec(3, bv));
  lg_requires_grad_(a, 1);
  lg_requires_grad_(b, 1);
  lg_tensor *p = OK(lg_mul(a, b)), *s = OK(lg_sum(p, 0, NULL, 0));
  CHECK(lg_backward_to(1, &s, NULL, 1, &a, 1, 0) == 0);
  CHECK(a->grad && !b->grad);
  for (int i = 0; a->grad && i < 3; i++) CHECK(lg_data(a->grad)[i] == bv[i]);
  CHECK(lg_backward_to(1, &s, NULL, 1, &a, 0, 0) == 0);     /* accumulates, as backward does */
  for (int i = 0; a->grad && i < 3; i++) CHECK(lg_data(a->grad)[i] == 2 * bv[i]);
  CHECK(!b->grad);
  lg_tensor *q = OK(lg_mul(a, b)), *s2 = OK(lg_sum(q, 0, NULL, 0));
  CHECK(lg_backward_to(1, &s2, NULL, 1, &q, 0, 0) == -1);
  CHECK(strstr(lg_last_error(), "inputs[1] is not a leaf") != NULL);
  lg_release(q); lg_release(s2); lg_release(s); lg_release(p); lg_release(a); lg_release(b);
}

int main(void)
{
  LGT_RUN(test_every_op_has_a_formula);
  LGT_RUN(test_backward_accumulates);
  LGT_RUN(test_shared_input_and_diamond);
  LGT_RUN(test_freed_graph_and_retain);
  LGT_RUN(test_errors);
  LGT_RUN(test_unused_input);
  LGT_RUN(test_double_backward);
  LGT_RUN(test_gradient_penalty_shape);
  LGT_RUN(test_retain_grad_and_no_grad);
  LGT_RUN(test_memory_flat);
  LGT_RUN(test_formula_arena_overflow);
  LGT_RUN(test_linear_weight_sink);
  LGT_RUN(test_backward_to);
  return lgt_finish();
}
