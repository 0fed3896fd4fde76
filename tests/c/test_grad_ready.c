/* test_grad_ready.c: the gradient-ready hook (lg_set_grad_ready_hook).
 * The naive oracle: a recorder copies each leaf's .grad when the hook fires
 * for it; after the backward call every wanted leaf must have fired exactly
 * once, and its copy must equal its final .grad (no contribution came after
 * the hook), in an order where later layers come first. */
#include <string.h>
#include "lgt.h"

#define MAXEV 32
static struct {
  lg_tensor *leaf[MAXEV];        /* borrowed */
  float snap[MAXEV][8];          /* leaf->grad's values when it fired */
  int has_grad[MAXEV];
  int n, ticks;
} rec;

static void recorder(lg_tensor *leaf, void *user)
{
  CHECK(user == &rec);
  if (!leaf) { rec.ticks++; return; }
  if (rec.n == MAXEV) { lgt_failed_checks++; return; }
  rec.leaf[rec.n] = leaf;
  rec.has_grad[rec.n] = leaf->grad != NULL;
  if (leaf->grad) {
    lg_tensor *c = OK(lg_contiguous(leaf->grad));
    int64_t n = lg_numel(c) < 8 ? lg_numel(c) : 8;
    memcpy(rec.snap[rec.n], lg_data(c), (size_t)n * sizeof(float));
    lg_release(c);
  }
  rec.n++;
}

static void rec_start(void)
{
  memset(&rec, 0, sizeof rec);
  lg_set_grad_ready_hook(recorder, &rec);
}

/* the event index of leaf (checked to be unique), or -1 */
static int fired_once(const lg_tensor *leaf)
{
  int at = -1, count = 0;
  for (int k = 0; k < rec.n; k++)
    if (rec.leaf[k] == leaf) { at = k; count++; }
  CHECK(count <= 1);
  return count == 1 ? at : -1;
}

/* fired exactly once, with the values its .grad has now */
static int fired_final(const lg_tensor *leaf)
{
  int k = fired_once(leaf);
  CHECK(k >= 0);
  if (k < 0) return -1;
  CHECK(rec.has_grad[k] && leaf->grad);
  if (!leaf->grad) return k;
  lg_tensor *c = OK(lg_contiguous(leaf->grad));
  int64_t n = lg_numel(c) < 8 ? lg_numel(c) : 8;
  for (int64_t i = 0; i < n; i++) CHECK(rec.snap[k][i] == lg_data(c)[i]);
  lg_release(c);
  return k;
}

static lg_tensor *mat(int r, int c, const float *v)
{
  int64_t s[2] = {r, c};
  lg_tensor *t = OK(lg_from_data(2, s, v));
  lg_requires_grad_(t, 1);
  return t;
}

/* x used in three places (a diamond and a repeat): one event, after all */
static void test_several_contributions(void)
{
  float xv[2] = {0.5f, -1.5f};
  lg_tensor *x = mat(1, 2, xv);
  lg_tensor *a = OK(lg_mul_scalar(x, 2)), *b = OK(lg_mul(x, x));
  lg_tensor *z = OK(lg_mul(a, b)), *zz = OK(lg_add(z, x)), *s = OK(lg_sum(zz, 0, NULL, 0));
  rec_start();
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  CHECK(rec.n == 1);
  fired_final(x);
  CHECK(rec.ticks > 0);
  for (int i = 0; i < 2; i++) CHECK_NEAR(lg_data(x->grad)[i], 6 * xv[i] * xv[i] + 1, 1e-5);
  lg_set_grad_ready_hook(NULL, NULL);
  lg_release(s); lg_release(zz); lg_release(z); lg_release(b); lg_release(a); lg_release(x);
}

/* three layers: each weight once, final, the last layer's first */
static void test_layers_order(void)
{
  float xv[4] = {1, 2, -1, 0.5f}, w1v[4] = {0.1f, -0.2f, 0.3f, 0.4f};
  float w2v[4] = {1, 0.5f, -0.5f, 2}, w3v[2] = {0.7f, -0.3f};
  lg_tensor *x = OK(lg_from_data(2, (int64_t[]){2, 2}, xv));
  lg_tensor *w1 = mat(2, 2, w1v), *w2 = mat(2, 2, w2v), *w3 = mat(2, 1, w3v);
  lg_tensor *h1 = OK(lg_matmul(x, w1)), *t1 = OK(lg_tanh(h1)), *h2 = OK(lg_matmul(t1, w2));
  lg_tensor *t2 = OK(lg_tanh(h2)), *h3 = OK(lg_matmul(t2, w3)), *s = OK(lg_sum(h3, 0, NULL, 0));
  rec_start();
  CHECK(lg_backward(1, &s, NULL, 1, 0) == 0);
  CHECK(rec.n == 3);
  int k1 = fired_final(w1), k2 = fired_final(w2), k3 = fired_final(w3);
  CHECK(k3 < k2 && k2 < k1);
  /* a second backward call fires again (and accumulates) */
  rec_start();
  CHECK(lg_backward(1, &s, NULL, 0, 0) == 0);
  CHECK(rec.n == 3);
  fired_final(w1); fired_final(w2); fired_final(w3);
  lg_set_grad_ready_hook(NULL, NULL);
  lg_release(s); lg_release(h3); lg_release(t2); lg_release(h2); lg_release(t1);
  lg_release(h1); lg_release(w3); lg_release(w2); lg_release(w1); lg_release(x);
}

/* a gradient penalty: lg_grad with create_graph fires nothing (it adds into
 * no .grad); the backward of loss + penalty fires w once, after both the
 * first-order and the double-backward contributions, and gives the same
 * gradient as without a hook */
static void test_penalty(void)
{
  float xv[2] = {0.3f, -0.8f}, wv[2] = {1.5f, -0.5f};
  float ref[2];
  for (int with_hook = 0; with_hook < 2; with_hook++) {
    lg_tensor *x = mat(1, 2, xv), *w = mat(2, 1, wv);
    lg_tensor *h = OK(lg_matmul(x, w)), *t = OK(lg_tanh(h)), *d = OK(lg_sum(t, 0, NULL, 0));
    if (with_hook) rec_start();
    lg_tensor *gx = NULL;
    CHECK(lg_grad(1, &d, NULL, 1, &x, &gx, 1, 1, 0) == 0);
    if (with_hook) CHECK(rec.n == 0);
    lg_tensor *g2 = OK(lg_mul(gx, gx)), *pen = OK(lg_sum(g2, 0, NULL, 0));
    lg_tensor *loss = OK(lg_add(d, pen));
    CHECK(lg_backward_to(1, &loss, NULL, 1, &w, 0, 0) == 0);
    if (with_hook) {
      CHECK(rec.n == 1);
      fired_final(w);
      CHECK(fired_once(x) < 0);
      for (int i = 0; i < 2; i++) CHECK(lg_data(w->grad)[i] == ref[i]);
      lg_set_grad_ready_hook(NULL, NULL);
    } else {
      memcpy(ref, lg_data(w->grad), sizeof ref);
    }
    lg_release(loss); lg_release(pen); lg_release(g2); lg_release(gx); lg_release(d);
    lg_release(t); lg_release(h); lg_release(w); lg_release(x);
  }
}

/* backward_to fires only its inputs; a plain backward with create_graph and a
 * root that is a leaf fire too */
static void test_inputs_and_roots(void)
{
  float av[2] = {1, 2}, bv[2] = {-1, 0.5f};
  lg_tensor *a = mat(1, 2, av), *b = mat(1, 2, bv);
  lg_tensor *p = OK(lg_mul(a, b)), *s = OK(lg_sum(p, 0, NULL, 0));
  rec_start();
  CHECK(lg_backward_to(1, &s, NULL, 1, &b, 1, 0) == 0);
  CHECK(rec.n == 1 && !a->grad);
  fired_final(b);
  rec_start();
  CHECK(lg_backward(1, &s, NULL, 0, 1) == 0);            /* create_graph */
  CHECK(rec.n == 2);
  fired_final(a); fired_final(b);
  /* create_graph made .grad -> graph -> leaf cycles: break them */
  lg_release(a->grad); a->grad = NULL;
  lg_release(b->grad); b->grad = NULL;
  float cv[1] = {3};
  lg_tensor *c = mat(1, 1, cv);
  rec_start();
  CHECK(lg_backward(1, &c, NULL, 0, 0) == 0);            /* the root is the leaf */
  CHECK(rec.n == 1);
  fired_final(c);
  lg_set_grad_ready_hook(NULL, NULL);
  lg_release(c); lg_release(s); lg_release(p); lg_release(b); lg_release(a);
}

int main(void)
{
  LGT_RUN(test_several_contributions);
  LGT_RUN(test_layers_order);
  LGT_RUN(test_penalty);
  LGT_RUN(test_inputs_and_roots);
  return lgt_finish();
}
