/* lg_autograd.h: define-by-run reverse-mode autodiff owned by the tensors.
 *
 * An op whose inputs require grad (and grad mode is on) records one lg_node,
 * owned by its single output tensor (t->grad_fn). A node points to the nodes
 * of its inputs (or to leaf tensors) through edges, never to its own output,
 * so the graph has no cycles and dies with the tensors.
 *
 * Every backward formula is written with the public ops of lg_ops.h. The
 * engine runs formulas with grad mode = create_graph, so with create_graph on
 * the gradients are themselves recorded and differentiable to any order.
 */
#ifndef LG_AUTOGRAD_H
#define LG_AUTOGRAD_H

#include <string.h>
#include "lg_tensor.h"

/* gin[i] receives a new reference for input i where n->needs[i] is set, or
 * NULL meaning "zero". g has the output's shape. Return 0, or -1 with error. */
typedef int (*lg_backward_fn)(lg_node *n, lg_tensor *g, lg_tensor **gin);

/* Bytes of scalar parameters a node keeps (ggml's flat op_params): each op
 * declares a struct of its own (lg_conv_params, ...) and stores it with
 * lg_params_put; its formula reads it back with lg_params_get. */
#define LG_NODE_PARAMS 256

struct lg_node {
  int refcount;
  int op;                        /* lg_op id (lg_ops.h), LG_OP_CUSTOM for user functions */
  int n_in;
  lg_node **next_fn;             /* [n_in] grad_fn of input i (owned) or NULL */
  lg_tensor **next_leaf;         /* [n_in] leaf input i requiring grad (owned) or NULL */
  int *needs;                    /* [n_in] set by the engine for each run */
  int (*in_ndim);                /* [n_in] input shapes, for reductions back to them */
  int64_t (*in_shape)[LG_MAXDIM];
  int out_ndim;
  int64_t out_shape[LG_MAXDIM];
  int n_saved;
  lg_tensor **saved;             /* [n_saved] detached aliases (owned) */
  uint32_t *saved_version;
  unsigned char *saved_is_output;
  union {                        /* the op's parameter struct (lg_params_put) */
    double d_; int64_t i_; void *p_;   /* alignment */
    unsigned char bytes[LG_NODE_PARAMS];
  } params;
  int released;                  /* saved tensors freed after a backward */
  /* user-defined function (custom layers): */
  lg_backward_fn custom_backward;
  void *ctx;
  void (*ctx_free)(void *ctx);
  const char *custom_name;
  lg_tensor *retain_tensor;      /* weak: non-leaf output that asked retain_grad() */
  /* engine scratch, valid during one run only */
  int deps, run, needed;
  lg_tensor *acc;
};

/* ---- recording (used by op implementations) ------------------------------ */
/* True when grad mode is on and any input requires grad. */
int lg_should_record(int n_in, lg_tensor *const *in);
/* Create the node for `out` (made by op from inputs in[0..n_in)), reserve
 * n_saved slots, set out->grad_fn and out->requires_grad. Returns the node
 * (borrowed: out owns it) or NULL on allocation failure. */
lg_node *lg_record(int op, lg_tensor *out, int n_in, lg_tensor *const *in, int n_saved);
/* Store the op's parameter struct p (a variable, any type up to
 * LG_NODE_PARAMS bytes: a larger one does not compile) on node n. */
#define lg_params_put(n, p) \
  ((void)sizeof(char[sizeof(p) <= LG_NODE_PARAMS ? 1 : -1]), \
   memcpy((n)->params.bytes, &(p), sizeof(p)))
/* The parameters lg_params_put stored, as a const T * (T the same struct). */
#define lg_params_get(n, T) \
  ((void)sizeof(char[sizeof(T) <= LG_NODE_PARAMS ? 1 : -1]), (const T *)(n)->params.bytes)
/* Save tensor t in slot k (a detached alias; its version is remembered).
 * Ops name their slots with an enum of their own (LG_SV_X, LG_SV_Y, ...). */
void lg_save(lg_node *n, int k, const lg_tensor *t);
/* Save the node's own output in slot k (without a reference cycle). */
void lg_save_output(lg_node *n, int k, const lg_tensor *out);
/* Fetch saved slot k as a new reference: inputs come back with their original
 * grad_fn, the output with this node as grad_fn, so formulas that use them
 * stay differentiable. NULL + error if released or modified in place. */
lg_tensor *lg_saved(lg_node *n, int k);
/* For a formula running in a backward pass: the tensor that the gradient of
 * input i would end up added into in place (the .grad a leaf already has,
 * reached directly or through a 2-D transpose that only n uses), seen with
 * input i's shape, or NULL (then return gin[i] as usual). A formula may add
 * its result there itself, in pieces, with lg_add_(dst, piece, 1) and leave
 * gin[i] NULL: the same sums as the engine's, without the whole gradient as
 * a temporary. Never under create_graph or lg_grad. Caller releases. */
lg_tensor *lg_bw_sink(lg_node *n, int i);
/* Whether the op's backward formula is linked in (tests check all are). */
int lg_op_has_formula(int op);
/* Name of the node's op, for messages. */
const char *lg_node_name(const lg_node *n);

void lg_node_retain(lg_node *n);
void lg_node_release(lg_node *n);

/* ---- running it ------------------------------------------------------------- */
/* Accumulate d(sum_k <roots[k], grads[k]>)/d(leaf) into every leaf's ->grad.
 * grads[k] may be NULL for a scalar root (ones). Returns 0 or -1 with error. */
int lg_backward(int n_roots, lg_tensor *const *roots, lg_tensor *const *grads,
                int retain_graph, int create_graph);
/* lg_backward into the ->grad of the given leaves only (PyTorch's
 * backward(inputs=)): other leaves keep their ->grad, and the parts of the
 * graph that lead only to them are not differentiated (a GAN's G step
 * through D computes no gradients of D's weights). Returns 0 or -1. */
int lg_backward_to(int n_roots, lg_tensor *const *roots, lg_tensor *const *grads,
                   int n_inputs, lg_tensor *const *inputs, int retain_graph, int create_graph);
/* Gradients of roots with respect to inputs, returned in result[j] (new refs;
 * NULL for an unused input when allow_unused, else an error). Leaves' ->grad
 * are untouched. */
int lg_grad(int n_roots, lg_tensor *const *roots, lg_tensor *const *grads,
            int n_inputs, lg_tensor *const *inputs, lg_tensor **result,
            int retain_graph, int create_graph, int allow_unused);

/* Gradient-ready hook (for data-parallel training: start reducing a
 * parameter's gradient while the rest of the backward pass runs). While set,
 * every lg_backward / lg_backward_to call calls fn(leaf, user) once for each
 * leaf it adds into, as soon as the last contribution of this call has been
 * added into leaf->grad (a leaf used several times, in several branches or
 * through a double backward, fires once, after all of them; with
 * backward_to only for the given inputs). leaf->grad may still be NULL when
 * every contribution was zero. It also calls fn(NULL, user) after each node
 * it runs, so the listener can make progress on its own work. lg_grad never
 * calls it (it adds into no .grad). fn must not run autograd itself. One
 * hook per process; fn == NULL removes it. */
typedef void (*lg_grad_ready_fn)(lg_tensor *leaf, void *user);
void lg_set_grad_ready_hook(lg_grad_ready_fn fn, void *user);

/* Keep the gradient of a non-leaf tensor in t->grad after backward. */
int lg_retain_grad(lg_tensor *t);
/* Called by lg_release when a retaining tensor dies (clears the weak pointer). */
void lg_forget_retained(lg_tensor *t);

/* Mark a tensor as a leaf that requires grad (error if it has a grad_fn and on=0). */
int lg_requires_grad_(lg_tensor *t, int on);

/* ---- user-defined functions ----------------------------------------------- */
/* Record a node of a user function: out was computed (under no-grad) from
 * in[0..n_in); bw is called with ctx during backward. ctx_free is called when
 * the node dies. Returns 0 or -1. */
int lg_record_custom(const char *name, lg_tensor *out, int n_in, lg_tensor *const *in,
                     lg_backward_fn bw, void *ctx, void (*ctx_free)(void *));

#endif
