/* lg_ops.h: the public ops of the luagan runtime.
 *
 * Conventions (see lg_tensor.h): every op returns a new reference or NULL with
 * the error set, naming the op and the shapes ("add: shapes 64x100 and 64x784
 * cannot broadcast"). Dims are 0-based; negative dims count from the end.
 * `nd, dims` lists reduce over those dims, nd == 0 meaning all dims.
 * Ops record an autograd node when lg_should_record() holds; their backward
 * formulas (lg_bw_*) are written with these same ops.
 */
#ifndef LG_OPS_H
#define LG_OPS_H

#include "lg_tensor.h"
#include "lg_autograd.h"
#include "lg_rng.h"

enum {
#define LG_OP(ID, name) LG_OP_##ID,
#include "lg_ops.def"
#undef LG_OP
  LG_OP_CUSTOM,
  LG_OP_COUNT
};
extern const char *const lg_op_names[LG_OP_COUNT];

#define LG_OP(ID, name) int lg_bw_##name(lg_node *n, lg_tensor *g, lg_tensor **gin);
#include "lg_ops.def"
#undef LG_OP

/* ---- creation (lg_create.c); never record ------------------------------ */
lg_tensor *lg_zeros(int ndim, const int64_t *shape);
lg_tensor *lg_ones(int ndim, const int64_t *shape);
lg_tensor *lg_full(int ndim, const int64_t *shape, float v);
lg_tensor *lg_zeros_like(const lg_tensor *t);
lg_tensor *lg_ones_like(const lg_tensor *t);
lg_tensor *lg_full_like(const lg_tensor *t, float v);
lg_tensor *lg_arange(double start, double end, double step);   /* [start, end) */
lg_tensor *lg_linspace(double start, double end, int64_t n);
lg_tensor *lg_eye(int64_t n, int64_t m);
/* Random creation; gen NULL means the default generator (lg_rng.h). */
lg_tensor *lg_rand(lg_gen *gen, int ndim, const int64_t *shape);       /* U[0,1) */
lg_tensor *lg_randn(lg_gen *gen, int ndim, const int64_t *shape);      /* N(0,1) */
lg_tensor *lg_randint(lg_gen *gen, int64_t lo, int64_t hi, int ndim, const int64_t *shape); /* [lo,hi) */
lg_tensor *lg_bernoulli(lg_gen *gen, const lg_tensor *p);              /* p: any shape, in [0,1] */
lg_tensor *lg_randperm(lg_gen *gen, int64_t n);                        /* 0-based permutation */
/* probs: (K) or (N,K) non-negative weights -> (n) or (N,n) 0-based indices */
lg_tensor *lg_multinomial(lg_gen *gen, const lg_tensor *probs, int64_t n, int replacement);

/* ---- in place (lg_create.c); bump the version, never record ----------------
 * Each returns 0 or -1 with error. An in-place op on a tensor that requires
 * grad while grad mode is on is an error (do it under no-grad). */
int lg_fill_(lg_tensor *t, float v);
int lg_zero_(lg_tensor *t);
int lg_copy_(lg_tensor *dst, const lg_tensor *src);       /* src broadcasts to dst */
int lg_add_(lg_tensor *t, const lg_tensor *o, float alpha); /* t += alpha*o, o broadcasts */
int lg_mul_(lg_tensor *t, const lg_tensor *o);
int lg_mul_scalar_(lg_tensor *t, float s);
int lg_add_scalar_(lg_tensor *t, float s);
int lg_clamp_(lg_tensor *t, float lo, float hi);           /* -INFINITY/INFINITY for open */
int lg_normal_(lg_gen *gen, lg_tensor *t, float mean, float std);
int lg_uniform_(lg_gen *gen, lg_tensor *t, float lo, float hi);

/* ---- views and shape (lg_view.c) ----------------------------------------- */
/* shape may hold one -1 (inferred). view needs compatible strides; reshape
 * copies when it must. */
lg_tensor *lg_view(lg_tensor *t, int ndim, const int64_t *shape);
lg_tensor *lg_reshape(lg_tensor *t, int ndim, const int64_t *shape);
lg_tensor *lg_flatten(lg_tensor *t, int start_dim, int end_dim);
lg_tensor *lg_squeeze(lg_tensor *t, int dim);     /* drop dim if size 1 */
lg_tensor *lg_squeeze_all(lg_tensor *t);
lg_tensor *lg_unsqueeze(lg_tensor *t, int dim);   /* dim in [-(ndim+1), ndim] */
lg_tensor *lg_narrow(lg_tensor *t, int dim, int64_t start, int64_t len);
/* elements start, start+step, ... < end (step >= 1; start/end clamped like Python) */
lg_tensor *lg_slice(lg_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
lg_tensor *lg_select(lg_tensor *t, int dim, int64_t index);   /* removes dim */
lg_tensor *lg_transpose(lg_tensor *t, int d0, int d1);
lg_tensor *lg_permute(lg_tensor *t, const int *perm);         /* perm: ndim entries */
lg_tensor *lg_expand(lg_tensor *t, int ndim, const int64_t *shape); /* -1 keeps a size */
lg_tensor *lg_contiguous(lg_tensor *t);  /* t itself (retained) when already contiguous */
lg_tensor *lg_clone(lg_tensor *t);       /* always a fresh contiguous copy, differentiable */
lg_tensor *lg_cat(int n, lg_tensor *const *ts, int dim);
lg_tensor *lg_stack(int n, lg_tensor *const *ts, int dim);
/* idx: 1-D tensor of 0-based integral indices along dim */
lg_tensor *lg_index_select(lg_tensor *t, int dim, const lg_tensor *idx);
/* Formula helpers, differentiable in g: zeros of the given shape with g placed
 * at the slice / selected index / indexed rows (index_add accumulates). */
lg_tensor *lg_slice_backward(lg_tensor *g, int ndim, const int64_t *shape, int dim,
                             int64_t start, int64_t end, int64_t step);
lg_tensor *lg_select_backward(lg_tensor *g, int ndim, const int64_t *shape, int dim, int64_t index);
lg_tensor *lg_index_add_zeros(lg_tensor *g, int dim, const lg_tensor *idx, int64_t size);

/* ---- pointwise (lg_pointwise.c); binary ops broadcast -------------------- */
lg_tensor *lg_add(lg_tensor *a, lg_tensor *b);
lg_tensor *lg_sub(lg_tensor *a, lg_tensor *b);
lg_tensor *lg_mul(lg_tensor *a, lg_tensor *b);
lg_tensor *lg_div(lg_tensor *a, lg_tensor *b);
lg_tensor *lg_pow(lg_tensor *a, lg_tensor *b);
lg_tensor *lg_maximum(lg_tensor *a, lg_tensor *b);   /* ties split the gradient */
lg_tensor *lg_minimum(lg_tensor *a, lg_tensor *b);
lg_tensor *lg_where(const lg_tensor *cond, lg_tensor *a, lg_tensor *b); /* cond != 0 ? a : b */
lg_tensor *lg_add_scalar(lg_tensor *a, float s);
lg_tensor *lg_mul_scalar(lg_tensor *a, float s);
lg_tensor *lg_pow_scalar(lg_tensor *a, float e);     /* a^e */
lg_tensor *lg_rpow_scalar(float base, lg_tensor *a); /* base^a */
lg_tensor *lg_neg(lg_tensor *a);
lg_tensor *lg_sign(lg_tensor *a);
/* The unary ops of the LG_UNARY rows of lg_ops.def (exp, log, tanh, sigmoid,
 * relu, softplus, ...): x any shape -> same shape; each row names its function
 * (lg_exp, lg_softplus, ...) and shows its formula. */
#define LG_OP(ID, name)
#define LG_UNARY(ID, name, saves, forward, fused, formula) lg_tensor *lg_##name(lg_tensor *x);
#define LG_UNARY_P(ID, name, param, dflt, saves, forward, fused, formula) \
  lg_tensor *lg_##name(lg_tensor *x, float param);
#include "lg_ops.def"
#undef LG_OP
#undef LG_UNARY
#undef LG_UNARY_P
lg_tensor *lg_clamp(lg_tensor *a, float lo, float hi); /* -INFINITY/INFINITY for open */
/* Comparisons: 0/1 masks, never differentiable. */
lg_tensor *lg_eq(const lg_tensor *a, const lg_tensor *b);
lg_tensor *lg_ne(const lg_tensor *a, const lg_tensor *b);
lg_tensor *lg_lt(const lg_tensor *a, const lg_tensor *b);
lg_tensor *lg_le(const lg_tensor *a, const lg_tensor *b);
lg_tensor *lg_gt(const lg_tensor *a, const lg_tensor *b);
lg_tensor *lg_ge(const lg_tensor *a, const lg_tensor *b);
lg_tensor *lg_gt_scalar(const lg_tensor *a, float s);
lg_tensor *lg_lt_scalar(const lg_tensor *a, float s);
lg_tensor *lg_ge_scalar(const lg_tensor *a, float s);
lg_tensor *lg_le_scalar(const lg_tensor *a, float s);
lg_tensor *lg_eq_scalar(const lg_tensor *a, float s);

/* ---- reductions (lg_reduce.c) ---------------------------------------------- */
lg_tensor *lg_sum(lg_tensor *t, int nd, const int *dims, int keepdim);
lg_tensor *lg_mean(lg_tensor *t, int nd, const int *dims, int keepdim);
lg_tensor *lg_var(lg_tensor *t, int nd, const int *dims, int correction, int keepdim);
lg_tensor *lg_std(lg_tensor *t, int nd, const int *dims, int correction, int keepdim);
/* max/min values over dims; ties share the gradient equally */
lg_tensor *lg_amax(lg_tensor *t, int nd, const int *dims, int keepdim);
lg_tensor *lg_amin(lg_tensor *t, int nd, const int *dims, int keepdim);
/* 0-based indices as floats; dim < 0 after wrapping is an error; never differentiable */
lg_tensor *lg_argmax(const lg_tensor *t, int dim, int keepdim);
lg_tensor *lg_argmin(const lg_tensor *t, int dim, int keepdim);
lg_tensor *lg_logsumexp(lg_tensor *t, int nd, const int *dims, int keepdim);
lg_tensor *lg_norm(lg_tensor *t, double p, int nd, const int *dims, int keepdim); /* p > 0 */
lg_tensor *lg_prod(lg_tensor *t, int nd, const int *dims, int keepdim);
/* Sum a broadcast gradient back to `shape` (the inverse of expand). */
lg_tensor *lg_sum_to(lg_tensor *t, int ndim, const int64_t *shape);

/* ---- index ops, cumsum and more pointwise (lg_index.c) -------------------- */
/* Index tensors: t's ndim, 0-based integral values along dim, idx.shape[k] <=
 * t.shape[k] off dim (PyTorch's rules). gather: out (idx's shape) takes
 * t at idx along dim. scatter_add: t with src (read in idx's shape) added at
 * idx along dim; repeated indices accumulate. Each is the other's backward. */
lg_tensor *lg_gather(lg_tensor *t, int dim, const lg_tensor *idx);
lg_tensor *lg_scatter_add(lg_tensor *t, int dim, const lg_tensor *idx, lg_tensor *src);
/* Running sums along dim (from the end when reverse); the backward of one is the other. */
lg_tensor *lg_cumsum(lg_tensor *t, int dim, int reverse);
/* 0-based positions sorting each line along dim (stable, NaN largest); never
 * records: the sorted values are lg_gather(t, dim, indices). */
lg_tensor *lg_sort_indices(const lg_tensor *t, int dim, int descending);
lg_tensor *lg_erf(lg_tensor *a);
lg_tensor *lg_floor(lg_tensor *a);       /* zero gradient */
lg_tensor *lg_round(lg_tensor *a);       /* half to even; zero gradient */
/* 0/1 masks, never differentiable */
lg_tensor *lg_isnan(const lg_tensor *a);
lg_tensor *lg_isfinite(const lg_tensor *a);

/* ---- linear algebra (lg_matmul.c) ------------------------------------------ */
/* NumPy matmul: 1-D x 1-D dot, 2-D mm, batched with broadcast batch dims. */
lg_tensor *lg_matmul(lg_tensor *a, lg_tensor *b);

/* ---- neural-network ops (lg_nn.h) ------------------------------------------ */
#include "lg_nn.h"

#endif
