/* lg_autograd.c: graph recording and the reverse-mode engine.
 *
 * Ownership: an output tensor owns its node (t->grad_fn); a node owns the
 * nodes of its inputs (next_fn) or the leaf inputs themselves (next_leaf)
 * and its saved tensors. Nothing points back up, so there are no cycles. A
 * node that needs its own output saves a detached alias and re-attaches
 * itself as grad_fn when the formula fetches it (lg_saved), which keeps
 * the formula differentiable without a reference cycle. */
#include <stdlib.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_ops_private.h"

const char *const lg_op_names[LG_OP_COUNT] = {
#define LG_OP(ID, name) #name,
#include "lg_ops.def"
#undef LG_OP
  "custom",
};

/* Formulas are strong references: every op in lg_ops.def must have one, and
 * referencing them here pulls every op's object file out of the static
 * library, so a program that records an op can always differentiate it. */
#define LG_OP(ID, name) int lg_bw_##name(lg_node *n, lg_tensor *g, lg_tensor **gin);
#include "lg_ops.def"
#undef LG_OP

static lg_backward_fn const lg_formulas[LG_OP_COUNT] = {
#define LG_OP(ID, name) lg_bw_##name,
#include "lg_ops.def"
#undef LG_OP
  NULL,
};

const char *lg_node_name(const lg_node *n)
{
  if (n->op == LG_OP_CUSTOM && n->custom_name) return n->custom_name;
  return n->op >= 0 && n->op < LG_OP_COUNT ? lg_op_names[n->op] : "?";
}

/* ---- nodes --------------------------------------------------------------- */
int lg_should_record(int n_in, lg_tensor *const *in)
{
  if (!lg_grad_enabled()) return 0;
  for (int i = 0; i < n_in; i++)
    if (in[i] && in[i]->requires_grad) return 1;
  return 0;
}

static lg_node *lg_node_alloc(int n_in, int n_saved)
{
  lg_node *n = calloc(1, sizeof *n);
  if (!n) return lg_error("out of memory (autograd node)");
  int ni = n_in > 0 ? n_in : 1, ns = n_saved > 0 ? n_saved : 1;
  n->next_fn = calloc(ni, sizeof *n->next_fn);
  n->next_leaf = calloc(ni, sizeof *n->next_leaf);
  n->needs = calloc(ni, sizeof *n->needs);
  n->in_ndim = calloc(ni, sizeof *n->in_ndim);
  n->in_shape = calloc(ni, sizeof *n->in_shape);
  n->saved = calloc(ns, sizeof *n->saved);
  n->saved_version = calloc(ns, sizeof *n->saved_version);
  n->saved_is_output = calloc(ns, sizeof *n->saved_is_output);
  n->refcount = 1;
  n->n_in = n_in;
  n->n_saved = n_saved;
  if (!n->next_fn || !n->next_leaf || !n->needs || !n->in_ndim || !n->in_shape || !n->saved ||
      !n->saved_version || !n->saved_is_output) {
    lg_node_release(n);
    return lg_error("out of memory (autograd node)");
  }
  return n;
}

void lg_node_retain(lg_node *n) { if (n) n->refcount++; }

static void lg_node_drop_saved(lg_node *n)
{
  for (int k = 0; k < n->n_saved; k++) {
    lg_release(n->saved[k]);
    n->saved[k] = NULL;
  }
}

void lg_node_release(lg_node *n)
{
  if (!n || --n->refcount > 0) return;
  if (n->next_fn)
    for (int i = 0; i < n->n_in; i++) {
      lg_node_release(n->next_fn[i]);
      lg_release(n->next_leaf[i]);
    }
  if (n->saved) lg_node_drop_saved(n);
  if (n->ctx_free) n->ctx_free(n->ctx);
  lg_release(n->acc);
  free(n->next_fn); free(n->next_leaf); free(n->needs); free(n->in_ndim); free(n->in_shape);
  free(n->saved); free(n->saved_version); free(n->saved_is_output);
  free(n);
}

static lg_node *lg_attach(lg_node *n, int op, lg_tensor *out, int n_in, lg_tensor *const *in)
{
  n->op = op;
  for (int i = 0; i < n_in; i++) {
    lg_tensor *x = in[i];
    if (!x) continue;
    n->in_ndim[i] = x->ndim;
    memcpy(n->in_shape[i], x->shape, sizeof(int64_t) * x->ndim);
    if (!x->requires_grad) continue;
    if (x->grad_fn) { n->next_fn[i] = x->grad_fn; lg_node_retain(x->grad_fn); }
    else n->next_leaf[i] = lg_retain(x);
  }
  n->out_ndim = out->ndim;
  memcpy(n->out_shape, out->shape, sizeof(int64_t) * out->ndim);
  if (out->grad_fn) lg_node_release(out->grad_fn);
  out->grad_fn = n;
  out->requires_grad = 1;
  return n;
}

lg_node *lg_record(int op, lg_tensor *out, int n_in, lg_tensor *const *in, int n_saved)
{
  lg_node *n = lg_node_alloc(n_in, n_saved);
  return n ? lg_attach(n, op, out, n_in, in) : NULL;
}

int lg_record_custom(const char *name, lg_tensor *out, int n_in, lg_tensor *const *in,
                     lg_backward_fn bw, void *ctx, void (*ctx_free)(void *))
{
  lg_node *n = lg_node_alloc(n_in, 0);
  if (!n) { if (ctx_free) ctx_free(ctx); return -1; }
  n->custom_backward = bw;
  n->ctx = ctx;
  n->ctx_free = ctx_free;
  n->custom_name = name;
  lg_attach(n, LG_OP_CUSTOM, out, n_in, in);
  return 0;
}

void lg_save(lg_node *n, int k, const lg_tensor *t)
{
  /* An input is kept as itself (with its own grad_fn): no cycle, since an
   * input's graph never contains this node. */
  n->saved[k] = lg_retain((lg_tensor *)t);
  n->saved_version[k] = t->storage->version;
}

void lg_save_output(lg_node *n, int k, const lg_tensor *out)
{
  n->saved[k] = lg_detach(out);   /* no grad_fn: the output owns this node */
  n->saved_version[k] = out->storage->version;
  n->saved_is_output[k] = 1;
}

lg_tensor *lg_saved(lg_node *n, int k)
{
  if (n->released)
    return lg_error("%s: backward through a graph that was already freed "
                    "(use retain_graph=true to run backward twice)", lg_node_name(n));
  lg_tensor *t = n->saved[k];
  if (!t) return lg_error("%s: saved tensor %d is missing", lg_node_name(n), k);
  if (t->storage->version != n->saved_version[k])
    return lg_error("%s: a tensor needed for the gradient was modified by an in-place "
                    "operation after it was used", lg_node_name(n));
  if (!n->saved_is_output[k]) return lg_retain(t);
  lg_tensor *o = lg_detach(t);
  if (!o) return NULL;
  o->grad_fn = n;
  lg_node_retain(n);
  o->requires_grad = 1;
  return o;
}

int lg_requires_grad_(lg_tensor *t, int on)
{
  if (!on && t->grad_fn)
    return lg_error("requires_grad_: cannot turn off gradients of a non-leaf tensor "
                    "(made by %s); use detach()", lg_node_name(t->grad_fn)), -1;
  t->requires_grad = on ? 1 : 0;
  return 0;
}

int lg_retain_grad(lg_tensor *t)
{
  if (!t->requires_grad)
    return lg_error("retain_grad: tensor does not require grad"), -1;
  if (!t->grad_fn) return 0;   /* leaves keep their grad anyway */
  t->retains_grad = 1;
  t->grad_fn->retain_tensor = t;
  return 0;
}

void lg_forget_retained(lg_tensor *t)
{
  if (t->grad_fn && t->grad_fn->retain_tensor == t) t->grad_fn->retain_tensor = NULL;
}

/* ---- the engine ------------------------------------------------------------ */
typedef struct { lg_node **v; int n, cap; } lg_nodevec;

static int lg_push(lg_nodevec *s, lg_node *n)
{
  if (s->n == s->cap) {
    int cap = s->cap ? s->cap * 2 : 64;
    lg_node **v = realloc(s->v, sizeof *v * cap);
    if (!v) return lg_error("out of memory (autograd)"), -1;
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = n;
  return 0;
}

static int lg_run_counter;

/* Add g into *slot (a gradient being accumulated): recorded when the graph
 * of the gradient itself is wanted. Steals g. */
static int lg_accumulate(lg_tensor **slot, lg_tensor *g)
{
  if (!*slot) { *slot = g; return 0; }
  lg_tensor *s = lg_add(*slot, g);
  lg_release(g);
  if (!s) return -1;
  lg_release(*slot);
  *slot = s;
  return 0;
}

static int lg_index_of(int n, lg_tensor *const *v, const lg_tensor *t)
{
  for (int i = 0; i < n; i++) if (v[i] == t) return i;
  return -1;
}

/* A gradient handed to a leaf must not alias another tensor that a later
 * in-place update (x.grad:add_) would corrupt. */
static lg_tensor *lg_own_grad(lg_tensor *g)
{
  if (g->refcount == 1 && g->storage->refcount == 1 && lg_is_contiguous(g) && !g->grad_fn)
    return g;
  lg_tensor *c = lg_clone(g);
  lg_release(g);
  if (c && !c->grad_fn) c->requires_grad = 0;
  return c;
}

/* Set while lg_backward runs without create_graph: the only runs in which
 * leaves' gradients are added in place (lg_bw_sink). */
static _Thread_local int lg_sink_ok;

/* A leaf's .grad the engine adds into in place (as in step 5). */
static lg_tensor *lg_inplace_grad(const lg_tensor *leaf)
{
  return leaf && leaf->grad && !leaf->grad->grad_fn ? leaf->grad : NULL;
}

/* Add g (consumed) into leaf->grad as step 5 of the engine does: in place
 * into a plain .grad, else as the leaf's own new .grad. */
static int lg_add_into_leaf(lg_tensor *leaf, lg_tensor *g, int create_graph)
{
  if (!create_graph && lg_inplace_grad(leaf)) {
    int rc = lg_add_(leaf->grad, g, 1.0f);
    lg_release(g);
    return rc;
  }
  if (!create_graph && !leaf->grad && !(g = lg_own_grad(g))) return -1;
  return lg_accumulate(&leaf->grad, g);
}

/* ---- the gradient-ready hook (lg_set_grad_ready_hook) ---------------------
 * A leaf is final for a backward call once every node of the run that holds
 * an edge to it has been processed: the engine counts those edges (a leaf
 * used k times gets k contributions) and fires when its count reaches 0.
 * Only built while a hook is set, so plain runs pay nothing. */
static lg_grad_ready_fn lg_ready_fn;
static void *lg_ready_user;

void lg_set_grad_ready_hook(lg_grad_ready_fn fn, void *user)
{
  lg_ready_fn = fn;
  lg_ready_user = user;
}

typedef struct { lg_tensor *leaf; int pending; } lg_leafcount;
typedef struct { lg_leafcount *v; int n, cap; } lg_leafvec;

static int lg_leaf_cmp(const void *a, const void *b)
{
  uintptr_t x = (uintptr_t)((const lg_leafcount *)a)->leaf;
  uintptr_t y = (uintptr_t)((const lg_leafcount *)b)->leaf;
  return (x > y) - (x < y);
}

static int lg_leaf_push(lg_leafvec *s, lg_tensor *leaf)
{
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 64;
    lg_leafcount *v = realloc(s->v, (size_t)cap * sizeof *v);
    if (!v) return lg_error("out of memory (autograd)"), -1;
    s->v = v; s->cap = cap;
  }
  s->v[s->n++] = (lg_leafcount){leaf, 1};
  return 0;
}

/* Sort the pushed edges and merge them into one entry per leaf with its count. */
static void lg_leaf_merge(lg_leafvec *s)
{
  if (!s->n) return;
  qsort(s->v, (size_t)s->n, sizeof *s->v, lg_leaf_cmp);
  int k = 0;
  for (int a = 1; a < s->n; a++) {
    if (s->v[a].leaf == s->v[k].leaf) s->v[k].pending++;
    else s->v[++k] = s->v[a];
  }
  s->n = k + 1;
}

static lg_leafcount *lg_leaf_find(const lg_leafvec *s, const lg_tensor *leaf)
{
  lg_leafcount key = {(lg_tensor *)leaf, 0};
  return s->n ? bsearch(&key, s->v, (size_t)s->n, sizeof *s->v, lg_leaf_cmp) : NULL;
}

lg_tensor *lg_bw_sink(lg_node *n, int i)
{
  if (!lg_sink_ok || i < 0 || i >= n->n_in || !n->needs[i]) return NULL;
  lg_tensor *g = lg_inplace_grad(n->next_leaf[i]);
  if (g) return lg_same_shape(g, n->next_leaf[i]) ? lg_retain(g) : NULL;
  /* through m = leaf:t(): only when n is m's last consumer and nothing has
   * reached m yet, so m would pass exactly n's gradient on (a sum of several
   * would be added in another order) */
  lg_node *m = n->next_fn[i];
  if (!m || m->op != LG_OP_PERMUTE || m->n_in != 1 || m->deps != 1 || m->acc ||
      m->retain_tensor || m->out_ndim != 2)
    return NULL;
  const int *perm = lg_params_get(m, lg_permute_params)->perm;
  if (perm[0] != 1 || perm[1] != 0) return NULL;
  g = lg_inplace_grad(m->next_leaf[0]);
  if (!g || g->ndim != 2 || !lg_same_shape(g, m->next_leaf[0])) return NULL;
  return lg_transpose(g, 0, 1);
}

/* Shared by lg_backward (inputs == NULL: accumulate into leaves) and lg_grad
 * (capture gradients of the given inputs into result). */
static int lg_engine(int n_roots, lg_tensor *const *roots, lg_tensor *const *grads,
                     int n_inputs, lg_tensor *const *inputs, lg_tensor **result,
                     int retain_graph, int create_graph, int accumulate, const char *who)
{
  char b1[128], b2[128];
  int run = ++lg_run_counter, rc = -1;
  int prev_sink = lg_sink_ok;
  lg_sink_ok = !inputs && !create_graph;
  lg_nodevec all = {0}, stack = {0}, ready = {0};
  /* the hook fires for runs that add into leaves' .grad: lg_backward, and
   * lg_backward_to (accumulate), which then adds each input as it is final */
  lg_grad_ready_fn ready_fn = accumulate ? lg_ready_fn : NULL;
  void *ready_user = lg_ready_user;
  lg_leafvec leaves = {0};
  lg_tensor **root_g = calloc(n_roots ? n_roots : 1, sizeof *root_g);
  int prev_mode = lg_set_grad_enabled(0);
  if (!root_g) { lg_error("out of memory (autograd)"); goto done; }

  /* 1. Check roots and build their seed gradients. */
  for (int k = 0; k < n_roots; k++) {
    lg_tensor *r = roots[k], *g = grads ? grads[k] : NULL;
    if (!r->requires_grad) {
      lg_error("%s: output %d does not require grad and has no grad_fn", who, k + 1);
      goto done;
    }
    if (!g) {
      if (lg_numel(r) != 1) {
        lg_error("%s: gradient can be implicitly created only for scalar outputs "
                 "(output %d has shape %s); pass a gradient", who, k + 1,
                 lg_shape_str(r, b1, sizeof b1));
        goto done;
      }
      if (!(root_g[k] = lg_ones(r->ndim, r->shape))) goto done;
    } else {
      if (!lg_same_shape(g, r)) {
        lg_error("%s: gradient shape %s does not match output shape %s", who,
                 lg_shape_str(g, b1, sizeof b1), lg_shape_str(r, b2, sizeof b2));
        goto done;
      }
      root_g[k] = lg_retain(g);
    }
  }

  /* 2. Collect the graph reachable from the roots (DFS) and count, for each
   * node, the edges that reach it from other nodes of this run. */
  for (int k = 0; k < n_roots; k++) {
    lg_node *n = roots[k]->grad_fn;
    if (n && n->run != run) {
      n->run = run; n->deps = 0; n->needed = 0;
      if (lg_push(&stack, n) || lg_push(&all, n)) goto done;
    }
  }
  while (stack.n) {
    lg_node *n = stack.v[--stack.n];
    for (int i = 0; i < n->n_in; i++) {
      lg_node *m = n->next_fn[i];
      if (!m) continue;
      if (m->run != run) {
        m->run = run; m->deps = 0; m->needed = 0;
        if (lg_push(&stack, m) || lg_push(&all, m)) goto done;
      }
      m->deps++;
    }
  }

  /* 3. Which nodes must run: those leading to a wanted leaf or input. `all`
   * lists parents before children (DFS discovery order is not topological),
   * so iterate to a fixed point; graphs are small next to their kernels. */
  for (int changed = 1; changed;) {
    changed = 0;
    for (int a = all.n - 1; a >= 0; a--) {
      lg_node *n = all.v[a];
      if (n->needed) continue;
      int need = 0;
      if (inputs) {
        for (int j = 0; j < n_inputs && !need; j++)
          if (inputs[j]->grad_fn == n) need = 1;
      }
      for (int i = 0; i < n->n_in && !need; i++) {
        if (n->next_fn[i] && n->next_fn[i]->needed) need = 1;
        if (n->next_leaf[i] && (!inputs || lg_index_of(n_inputs, inputs, n->next_leaf[i]) >= 0))
          need = 1;
      }
      if (need) { n->needed = 1; changed = 1; }
    }
  }

  /* 3b. With a gradient-ready hook: the edges into each wanted leaf. */
  if (ready_fn) {
    for (int a = 0; a < all.n; a++) {
      lg_node *n = all.v[a];
      if (!n->needed) continue;
      for (int i = 0; i < n->n_in; i++)
        if (n->next_leaf[i] && (!inputs || lg_index_of(n_inputs, inputs, n->next_leaf[i]) >= 0) &&
            lg_leaf_push(&leaves, n->next_leaf[i]))
          goto done;
    }
    lg_leaf_merge(&leaves);
  }

  /* 4. Seed: roots that are leaves or inputs themselves get their gradient
   * directly; the others into their node's accumulator. */
  lg_set_grad_enabled(create_graph);
  for (int k = 0; k < n_roots; k++) {
    lg_tensor *r = roots[k];
    lg_tensor *g = root_g[k];
    root_g[k] = NULL;
    int j = inputs ? lg_index_of(n_inputs, inputs, r) : -1;
    if (j >= 0 && !r->grad_fn) {
      if (lg_accumulate(&result[j], g)) goto done;
    } else if (!r->grad_fn) {
      if (!inputs && lg_accumulate(&r->grad, g)) goto done;
      if (inputs) lg_release(g);
      /* a root leaf no node reaches is final now */
      if (!inputs && ready_fn && !lg_leaf_find(&leaves, r)) ready_fn(r, ready_user);
    } else if (lg_accumulate(&r->grad_fn->acc, g)) goto done;
  }

  /* 5. Run nodes in topological order (Kahn): a node runs once every node
   * that feeds it a gradient has run. */
  for (int a = 0; a < all.n; a++)
    if (all.v[a]->deps == 0 && lg_push(&ready, all.v[a])) goto done;
  while (ready.n) {
    lg_node *n = ready.v[--ready.n];
    lg_tensor *g = n->acc;
    n->acc = NULL;
    /* capture gradients of non-leaf inputs and retained tensors */
    if (inputs && g)
      for (int j = 0; j < n_inputs; j++)
        if (inputs[j]->grad_fn == n) {
          lg_retain(g);
          if (lg_accumulate(&result[j], g)) { lg_release(g); goto done; }
        }
    if (!inputs && g && n->retain_tensor) {
      lg_tensor *keep = lg_retain(g);
      if (lg_accumulate(&n->retain_tensor->grad, keep)) { lg_release(g); goto done; }
    }
    lg_tensor **gin = NULL;
    if (n->needed && g) {
      lg_backward_fn f = n->op == LG_OP_CUSTOM ? n->custom_backward : lg_formulas[n->op];
      if (!f) {
        lg_error("%s: no backward formula for op '%s'", who, lg_node_name(n));
        lg_release(g);
        goto done;
      }
      for (int i = 0; i < n->n_in; i++)
        n->needs[i] = (n->next_fn[i] && n->next_fn[i]->needed) ||
                      (n->next_leaf[i] && (!inputs || lg_index_of(n_inputs, inputs, n->next_leaf[i]) >= 0));
      gin = calloc(n->n_in ? n->n_in : 1, sizeof *gin);
      if (!gin) { lg_error("out of memory (autograd)"); lg_release(g); goto done; }
      int frc = f(n, g, gin);
      lg_release(g);
      if (frc) {
        for (int i = 0; i < n->n_in; i++) lg_release(gin[i]);
        free(gin);
        if (!strstr(lg_last_error(), lg_node_name(n))) lg_error_prefix(lg_node_name(n));
        goto done;
      }
      for (int i = 0; i < n->n_in; i++) {
        lg_tensor *gi = gin[i];
        gin[i] = NULL;
        if (!gi) continue;
        if (!n->needs[i]) { lg_release(gi); continue; }
        if (gi->ndim != n->in_ndim[i] || memcmp(gi->shape, n->in_shape[i], sizeof(int64_t) * gi->ndim)) {
          lg_error("%s: backward of %s returned a gradient of shape %s for input %d of shape %s",
                   who, lg_node_name(n), lg_shape_str(gi, b1, sizeof b1), i + 1,
                   lg_shape_str_raw(n->in_ndim[i], n->in_shape[i], b2, sizeof b2));
          lg_release(gi);
          for (int r = i + 1; r < n->n_in; r++) lg_release(gin[r]);
          free(gin);
          goto done;
        }
        int err;
        if (n->next_fn[i]) {
          err = lg_accumulate(&n->next_fn[i]->acc, gi);
        } else if (inputs) {
          err = lg_accumulate(&result[lg_index_of(n_inputs, inputs, n->next_leaf[i])], gi);
        } else {
          lg_tensor *leaf = n->next_leaf[i];
          if (!create_graph && leaf->grad && !leaf->grad->grad_fn) {
            err = lg_add_(leaf->grad, gi, 1.0f);   /* in place: no new buffer per step */
            lg_release(gi);
          } else {
            if (!create_graph && !leaf->grad && !(gi = lg_own_grad(gi))) err = -1;
            else err = lg_accumulate(&leaf->grad, gi);
          }
        }
        if (err) {
          for (int r = i + 1; r < n->n_in; r++) lg_release(gin[r]);
          free(gin);
          goto done;
        }
      }
      free(gin);
    } else {
      lg_release(g);
    }
    if (!retain_graph && n->needed) { lg_node_drop_saved(n); n->released = 1; }
    if (ready_fn) {
      /* n was the last contributor to these leaves: they are final. Under
       * backward_to an input's gradient is added into its .grad now, not
       * after the run, so a listener can use it while the rest runs. */
      for (int i = 0; i < n->n_in && n->needed; i++) {
        lg_leafcount *lc = n->next_leaf[i] ? lg_leaf_find(&leaves, n->next_leaf[i]) : NULL;
        if (!lc || --lc->pending) continue;
        if (inputs) {
          int j = lg_index_of(n_inputs, inputs, lc->leaf);
          lg_tensor *gj = result[j];
          result[j] = NULL;
          if (gj && lg_add_into_leaf(lc->leaf, gj, create_graph)) goto done;
        }
        ready_fn(lc->leaf, ready_user);
      }
      ready_fn(NULL, ready_user);      /* progress tick after every node */
    }
    for (int i = 0; i < n->n_in; i++) {
      lg_node *m = n->next_fn[i];
      if (m && --m->deps == 0 && lg_push(&ready, m)) goto done;
    }
  }
  if (inputs)
    for (int j = 0; j < n_inputs; j++)
      if (result[j] && !create_graph && result[j]->grad_fn == NULL) result[j]->requires_grad = 0;
  rc = 0;

done:
  lg_sink_ok = prev_sink;
  lg_set_grad_enabled(prev_mode);
  for (int a = 0; a < all.n; a++) {     /* drop partial sums left by an error */
    lg_release(all.v[a]->acc);
    all.v[a]->acc = NULL;
  }
  for (int k = 0; k < n_roots && root_g; k++) lg_release(root_g[k]);
  free(root_g);
  free(all.v); free(stack.v); free(ready.v); free(leaves.v);
  return rc;
}

int lg_backward(int n_roots, lg_tensor *const *roots, lg_tensor *const *grads,
                int retain_graph, int create_graph)
{
  return lg_engine(n_roots, roots, grads, 0, NULL, NULL, retain_graph, create_graph, 1, "backward");
}

int lg_backward_to(int n_roots, lg_tensor *const *roots, lg_tensor *const *grads,
                   int n_inputs, lg_tensor *const *inputs, int retain_graph, int create_graph)
{
  for (int j = 0; j < n_inputs; j++) {
    if (inputs[j]->grad_fn)
      return lg_error("backward: inputs[%d] is not a leaf (it was computed by %s)", j + 1,
                      lg_node_name(inputs[j]->grad_fn)), -1;
    if (!inputs[j]->requires_grad)
      return lg_error("backward: inputs[%d] does not require grad", j + 1), -1;
  }
  lg_tensor **res = calloc(n_inputs ? n_inputs : 1, sizeof *res);
  if (!res) return lg_error("out of memory (autograd)"), -1;
  int rc = lg_engine(n_roots, roots, grads, n_inputs, inputs, res, retain_graph, create_graph,
                     1, "backward");
  /* then into each leaf as step 5 of the engine would have added it (with a
   * gradient-ready hook the engine has already added those it reached) */
  for (int j = 0; j < n_inputs; j++) {
    lg_tensor *g = res[j], *leaf = inputs[j];
    res[j] = NULL;
    if (rc || !g) { lg_release(g); continue; }
    rc = lg_add_into_leaf(leaf, g, create_graph);
    if (!rc && lg_ready_fn) lg_ready_fn(leaf, lg_ready_user);
  }
  free(res);
  return rc;
}

int lg_grad(int n_roots, lg_tensor *const *roots, lg_tensor *const *grads,
            int n_inputs, lg_tensor *const *inputs, lg_tensor **result,
            int retain_graph, int create_graph, int allow_unused)
{
  for (int j = 0; j < n_inputs; j++) {
    result[j] = NULL;
    if (!inputs[j]->requires_grad) {
      lg_error("grad: input %d does not require grad", j + 1);
      return -1;
    }
  }
  if (lg_engine(n_roots, roots, grads, n_inputs, inputs, result, retain_graph, create_graph, 0,
                "grad"))
    goto fail;
  for (int j = 0; j < n_inputs; j++)
    if (!result[j] && !allow_unused) {
      lg_error("grad: input %d was not used to compute the outputs "
               "(pass allow_unused=true to get nil)", j + 1);
      goto fail;
    }
  return 0;
fail:
  for (int j = 0; j < n_inputs; j++) { lg_release(result[j]); result[j] = NULL; }
  return -1;
}

int lg_op_has_formula(int op)
{
  return op >= 0 && op < LG_OP_CUSTOM && lg_formulas[op] != NULL;
}
