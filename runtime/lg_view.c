/* lg_view.c: views and shape ops (view, reshape, narrow, select, permute,
 * expand, ...), copies that change layout (contiguous, clone, cat, stack),
 * index_select, and the formula helpers that undo them (slice_backward,
 * select_backward, index_add_zeros), each with its backward formula.
 *
 * Views share storage (lg_alias) and record a node so gradients flow:
 *   reshape / view / flatten / squeeze / unsqueeze -> VIEW     (bw: reshape g back)
 *   narrow / slice -> SLICE            (bw: slice_backward, whose bw is slice)
 *   select -> SELECT                   (bw: select_backward, whose bw is select)
 *   transpose / permute -> PERMUTE     (bw: inverse permute)
 *   expand -> EXPAND                   (bw: sum_to the input shape)
 *   contiguous (when it copies) / clone -> CONTIGUOUS (bw: g)
 *   cat -> CAT (bw: narrow per input); stack = unsqueeze each + cat
 *   index_select -> INDEX_SELECT (bw: index_add_zeros, whose bw is index_select)
 *
 * Messages give dims and indices 0-based (the bindings translate) but count
 * the tensors of a list from 1, like the autograd engine's "input %d".
 */
#include <stdlib.h>
#include <string.h>
#include "lg_ops.h"
#include "lg_ops_private.h"

#define LG_OMP_MIN 32768

/* Node parameters: the slice window (slice, slice_backward), the selected
 * index (select, select_backward), the dim (and size) of
 * cat, index_select and index_add_zeros (the permutation: lg_ops_private.h);
 * their saved slot, the indices. */
typedef struct { int64_t dim, start, end, step; } lg_slice_params;
typedef struct { int64_t dim, index; } lg_select_params;
typedef struct { int64_t dim, size; } lg_dim_params;
enum { LG_SV_IDX };

/* Record a single-input node saving nothing; on failure drop out. */
static lg_tensor *lg_rec1(int op, lg_tensor *out, lg_tensor *in, lg_node **nd)
{
  *nd = NULL;
  if (!lg_should_record(1, &in)) return out;
  *nd = lg_record(op, out, 1, &in, 0);
  if (!*nd) { lg_release(out); return NULL; }
  return out;
}

/* lg_ops_private.h: a contiguous copy of t that records nothing (t itself
 * when contiguous; NULL stays NULL). */
lg_tensor *lg_dense(const lg_tensor *t)
{
  if (!t || lg_is_contiguous(t)) return lg_retain((lg_tensor *)t);
  lg_tensor *c = lg_empty(t->ndim, t->shape);
  if (c && lg_copy_(c, t)) { lg_release(c); return NULL; }
  return c;
}

/* ---- view / reshape --------------------------------------------------------- */
/* Resolve a -1 and check the element count. 0 or -1 with error. */
static int lg_infer_shape(const char *op, const lg_tensor *t, int ndim, const int64_t *shape,
                          int64_t *out)
{
  char b1[128], b2[128];
  if (ndim < 0 || ndim > LG_MAXDIM) {
    lg_error("%s: %d dims requested, at most %d supported", op, ndim, LG_MAXDIM);
    return -1;
  }
  int infer = -1;
  int64_t known;
  for (int d = 0; d < ndim; d++) {
    out[d] = shape[d];
    if (shape[d] == -1) {
      if (infer >= 0) {
        lg_error("%s: only one dimension can be -1 (shape %s)", op,
                 lg_shape_str_raw(ndim, shape, b1, sizeof b1));
        return -1;
      }
      infer = d;
      out[d] = 1;   /* for the size check below */
    } else if (shape[d] < 0) {
      lg_error("%s: invalid size %lld in shape %s", op, (long long)shape[d],
               lg_shape_str_raw(ndim, shape, b1, sizeof b1));
      return -1;
    }
  }
  /* Checked before comparing counts: a product that wrapped (or one with a
   * zero size) could otherwise match the input's size. */
  if (lg_shape_check(op, ndim, out, &known)) return -1;
  int64_t n = lg_numel(t);
  if (infer >= 0) {
    if (known == 0 || n % known) {
      lg_error("%s: shape %s is invalid for input of size %lld (input %s)", op,
               lg_shape_str_raw(ndim, shape, b1, sizeof b1), (long long)n,
               lg_shape_str(t, b2, sizeof b2));
      return -1;
    }
    out[infer] = n / known;
    known = n;
  }
  if (known != n) {
    lg_error("%s: shape %s is invalid for input of size %lld (input %s)", op,
             lg_shape_str_raw(ndim, shape, b1, sizeof b1), (long long)n,
             lg_shape_str(t, b2, sizeof b2));
    return -1;
  }
  /* the inferred size times the others may still pass the limit */
  return lg_shape_check(op, ndim, out, NULL);
}

/* Strides that let `shape` view t's memory without a copy, or -1 when none
 * exists (PyTorch's computeStride: dims that chain in memory may be split or
 * merged freely; chunks that do not chain must map to whole groups). */
static int lg_view_strides(const lg_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
  int64_t n = lg_numel(t);
  if (n == 0 || t->ndim == 0 || n == 1) {
    /* no memory to walk: any strides do, pick contiguous ones */
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) { stride[d] = s; s *= shape[d] ? shape[d] : 1; }
    return 0;
  }
  int view_d = ndim - 1;
  int64_t chunk = t->stride[t->ndim - 1], tensor_numel = 1, view_numel = 1;
  for (int td = t->ndim - 1; td >= 0; td--) {
    tensor_numel *= t->shape[td];
    if (td == 0 || (t->shape[td - 1] != 1 && t->stride[td - 1] != tensor_numel * chunk)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        stride[view_d] = view_numel * chunk;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel) return -1;
      if (td > 0) {
        chunk = t->stride[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1 ? 0 : -1;
}

/* The view itself: a VIEW node whose backward reshapes g to the input. */
static lg_tensor *lg_view_as(lg_tensor *t, int ndim, const int64_t *shape, const int64_t *stride)
{
  lg_node *nd;
  lg_tensor *out = lg_alias(t, ndim, shape, stride, t->offset);
  return out ? lg_rec1(LG_OP_VIEW, out, t, &nd) : NULL;
}

static lg_tensor *lg_view_op(const char *op, lg_tensor *t, int ndim, const int64_t *shape,
                             int may_copy)
{
  int64_t sh[LG_MAXDIM] = {0}, st[LG_MAXDIM];   /* = {0}: gcc cannot see ndim <= LG_MAXDIM */
  if (lg_infer_shape(op, t, ndim, shape, sh)) return NULL;
  if (lg_view_strides(t, ndim, sh, st) == 0) return lg_view_as(t, ndim, sh, st);
  if (!may_copy) {
    char b1[128], b2[128];
    return lg_error("%s: shape %s is not compatible with the strides of input %s (a "
                    "non-contiguous view); use reshape, which copies when it must", op,
                    lg_shape_str_raw(ndim, sh, b1, sizeof b1), lg_shape_str(t, b2, sizeof b2));
  }
  lg_tensor *c = lg_contiguous(t);
  if (!c) return NULL;
  lg_tensor *out = lg_view_op(op, c, ndim, sh, 0);
  lg_release(c);
  return out;
}

lg_tensor *lg_view(lg_tensor *t, int ndim, const int64_t *shape)
{
  return lg_view_op("view", t, ndim, shape, 0);
}

lg_tensor *lg_reshape(lg_tensor *t, int ndim, const int64_t *shape)
{
  return lg_view_op("reshape", t, ndim, shape, 1);
}

lg_tensor *lg_flatten(lg_tensor *t, int start_dim, int end_dim)
{
  if (t->ndim == 0) {   /* a scalar flattens to one element, like PyTorch */
    int64_t one = 1;
    return lg_view_op("flatten", t, 1, &one, 1);
  }
  int s = lg_wrap_dim("flatten", start_dim, t->ndim), e = lg_wrap_dim("flatten", end_dim, t->ndim);
  if (s < 0 || e < 0) return NULL;
  if (s > e)
    return lg_error("flatten: start dim %d comes after end dim %d", start_dim, end_dim);
  int64_t sh[LG_MAXDIM];
  int n = 0;
  for (int d = 0; d < s; d++) sh[n++] = t->shape[d];
  int64_t m = 1;
  for (int d = s; d <= e; d++) m *= t->shape[d];
  sh[n++] = m;
  for (int d = e + 1; d < t->ndim; d++) sh[n++] = t->shape[d];
  return lg_view_op("flatten", t, n, sh, 1);
}

lg_tensor *lg_squeeze(lg_tensor *t, int dim)
{
  /* PyTorch lets dim 0 / -1 name the "dim" of a scalar */
  int d = lg_wrap_dim("squeeze", dim, t->ndim ? t->ndim : 1);
  if (d < 0) return NULL;
  int64_t sh[LG_MAXDIM], st[LG_MAXDIM];
  int n = 0;
  for (int k = 0; k < t->ndim; k++) {
    if (k == d && t->shape[k] == 1) continue;
    sh[n] = t->shape[k]; st[n] = t->stride[k]; n++;
  }
  return lg_view_as(t, n, sh, st);
}

lg_tensor *lg_squeeze_all(lg_tensor *t)
{
  int64_t sh[LG_MAXDIM], st[LG_MAXDIM];
  int n = 0;
  for (int k = 0; k < t->ndim; k++) {
    if (t->shape[k] == 1) continue;
    sh[n] = t->shape[k]; st[n] = t->stride[k]; n++;
  }
  return lg_view_as(t, n, sh, st);
}

lg_tensor *lg_unsqueeze(lg_tensor *t, int dim)
{
  if (t->ndim >= LG_MAXDIM)
    return lg_error("unsqueeze: input already has %d dims, the most supported", t->ndim);
  int d = lg_wrap_dim("unsqueeze", dim, t->ndim + 1);
  if (d < 0) return NULL;
  int64_t sh[LG_MAXDIM], st[LG_MAXDIM];
  for (int k = 0, j = 0; k <= t->ndim; k++) {
    if (k == d) {
      sh[k] = 1;
      st[k] = d < t->ndim ? t->shape[d] * t->stride[d] : 1;   /* as if contiguous there */
      continue;
    }
    sh[k] = t->shape[j]; st[k] = t->stride[j]; j++;
  }
  return lg_view_as(t, t->ndim + 1, sh, st);
}

/* ---- slice / narrow / select ----------------------------------------------- */
/* Slice with start/end already normalised to 0 <= start <= end <= size. */
static lg_tensor *lg_slice_raw(lg_tensor *t, int d, int64_t start, int64_t end, int64_t step)
{
  int64_t sh[LG_MAXDIM], st[LG_MAXDIM];
  memcpy(sh, t->shape, sizeof(int64_t) * t->ndim);
  memcpy(st, t->stride, sizeof(int64_t) * t->ndim);
  /* no end - start + step - 1 (overflows for a huge step); a step past the
   * end leaves one element, whose stride is never used: keep t's */
  sh[d] = end > start ? (end - start - 1) / step + 1 : 0;
  st[d] = sh[d] > 1 ? t->stride[d] * step : t->stride[d];
  lg_tensor *out = lg_alias(t, t->ndim, sh, st, t->offset + start * t->stride[d]);
  lg_node *nd;
  if (!out || !lg_rec1(LG_OP_SLICE, out, t, &nd)) return NULL;
  if (nd) { lg_slice_params p = {d, start, end, step}; lg_params_put(nd, p); }
  return out;
}

/* Python slice bounds: negatives count from the end, then clamp to [0, size]. */
static int64_t lg_clamp_index(int64_t i, int64_t size)
{
  if (i < 0) i += size;
  return i < 0 ? 0 : i > size ? size : i;
}

lg_tensor *lg_slice(lg_tensor *t, int dim, int64_t start, int64_t end, int64_t step)
{
  int d = lg_wrap_dim("slice", dim, t->ndim);
  if (d < 0) return NULL;
  if (step < 1) return lg_error("slice: step %lld must be >= 1", (long long)step);
  int64_t size = t->shape[d];
  start = lg_clamp_index(start, size);
  end = lg_clamp_index(end, size);
  if (end < start) end = start;
  return lg_slice_raw(t, d, start, end, step);
}

lg_tensor *lg_narrow(lg_tensor *t, int dim, int64_t start, int64_t len)
{
  char buf[128];
  int d = lg_wrap_dim("narrow", dim, t->ndim);
  if (d < 0) return NULL;
  int64_t size = t->shape[d];
  if (start < 0 && start >= -size) start += size;
  if (start < 0 || start > size)
    return lg_error("narrow: start %lld out of range for size %lld of dim %d (input %s)",
                    (long long)start, (long long)size, d, lg_shape_str(t, buf, sizeof buf));
  if (len < 0)
    return lg_error("narrow: length %lld must be >= 0 (input %s)", (long long)len,
                    lg_shape_str(t, buf, sizeof buf));
  if (start + len > size)
    return lg_error("narrow: start %lld + length %lld exceeds size %lld of dim %d (input %s)",
                    (long long)start, (long long)len, (long long)size, d,
                    lg_shape_str(t, buf, sizeof buf));
  return lg_slice_raw(t, d, start, start + len, 1);
}

lg_tensor *lg_select(lg_tensor *t, int dim, int64_t index)
{
  char buf[128];
  int d = lg_wrap_dim("select", dim, t->ndim);
  if (d < 0) return NULL;
  int64_t size = t->shape[d];
  if (index < -size || index >= size)
    return lg_error("select: index %lld out of range for size %lld of dim %d (input %s)",
                    (long long)index, (long long)size, d, lg_shape_str(t, buf, sizeof buf));
  if (index < 0) index += size;
  int64_t sh[LG_MAXDIM], st[LG_MAXDIM];
  for (int k = 0, j = 0; k < t->ndim; k++) {
    if (k == d) continue;
    sh[j] = t->shape[k]; st[j] = t->stride[k]; j++;
  }
  lg_tensor *out = lg_alias(t, t->ndim - 1, sh, st, t->offset + index * t->stride[d]);
  lg_node *nd;
  if (!out || !lg_rec1(LG_OP_SELECT, out, t, &nd)) return NULL;
  if (nd) { lg_select_params p = {d, index}; lg_params_put(nd, p); }
  return out;
}

/* ---- permute / transpose / expand ------------------------------------------- */
static lg_tensor *lg_permute_op(const char *op, lg_tensor *t, const int *perm)
{
  int seen[LG_MAXDIM] = {0}, p[LG_MAXDIM];
  for (int d = 0; d < t->ndim; d++) {
    int k = perm[d] < 0 ? perm[d] + t->ndim : perm[d];
    if (k < 0 || k >= t->ndim || seen[k]) {
      char buf[128];
      return lg_error("%s: entry %d (%d) of the permutation is out of range or repeated "
                      "for input %s", op, d, perm[d], lg_shape_str(t, buf, sizeof buf));
    }
    seen[k] = 1;
    p[d] = k;
  }
  int64_t sh[LG_MAXDIM], st[LG_MAXDIM];
  for (int d = 0; d < t->ndim; d++) { sh[d] = t->shape[p[d]]; st[d] = t->stride[p[d]]; }
  lg_tensor *out = lg_alias(t, t->ndim, sh, st, t->offset);
  lg_node *nd;
  if (!out || !lg_rec1(LG_OP_PERMUTE, out, t, &nd)) return NULL;
  if (nd) {
    lg_permute_params pp = {{0}};
    memcpy(pp.perm, p, sizeof(int) * t->ndim);
    lg_params_put(nd, pp);
  }
  return out;
}

lg_tensor *lg_permute(lg_tensor *t, const int *perm) { return lg_permute_op("permute", t, perm); }

lg_tensor *lg_transpose(lg_tensor *t, int d0, int d1)
{
  if (t->ndim == 0 && (d0 == 0 || d0 == -1) && (d1 == 0 || d1 == -1))
    return lg_permute_op("transpose", t, NULL);   /* a scalar transposes to itself */
  int a = lg_wrap_dim("transpose", d0, t->ndim), b = lg_wrap_dim("transpose", d1, t->ndim);
  if (a < 0 || b < 0) return NULL;
  int perm[LG_MAXDIM];
  for (int d = 0; d < t->ndim; d++) perm[d] = d;
  perm[a] = b;
  perm[b] = a;
  return lg_permute_op("transpose", t, perm);
}

lg_tensor *lg_expand(lg_tensor *t, int ndim, const int64_t *shape)
{
  char b1[128], b2[128];
  if (ndim < t->ndim || ndim > LG_MAXDIM)
    return lg_error("expand: cannot expand %s to %d dims", lg_shape_str(t, b1, sizeof b1), ndim);
  int64_t sh[LG_MAXDIM], st[LG_MAXDIM];
  int lead = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    if (d < lead) {
      if (shape[d] < 0)
        return lg_error("expand: size %lld for new leading dim %d of %s",
                        (long long)shape[d], d, lg_shape_str_raw(ndim, shape, b1, sizeof b1));
      sh[d] = shape[d];
      st[d] = 0;
      continue;
    }
    int64_t have = t->shape[d - lead], want = shape[d] == -1 ? have : shape[d];
    if (want == have) { sh[d] = have; st[d] = t->stride[d - lead]; continue; }
    if (have != 1 || want < 0)
      return lg_error("expand: cannot expand %s to %s (dim %d has size %lld, expected 1 or %lld)",
                      lg_shape_str(t, b1, sizeof b1), lg_shape_str_raw(ndim, shape, b2, sizeof b2),
                      d, (long long)have, (long long)want);
    sh[d] = want;
    st[d] = 0;
  }
  /* stride 0 costs no memory, but every loop and count over the view sees its size */
  if (lg_shape_check("expand", ndim, sh, NULL)) return NULL;
  lg_tensor *out = lg_alias(t, ndim, sh, st, t->offset);
  lg_node *nd;
  return out ? lg_rec1(LG_OP_EXPAND, out, t, &nd) : NULL;
}

/* ---- copies ------------------------------------------------------------------ */
lg_tensor *lg_clone(lg_tensor *t)
{
  lg_tensor *out = lg_empty(t->ndim, t->shape);
  if (!out) return NULL;
  if (lg_copy_(out, t)) { lg_release(out); return NULL; }
  lg_node *nd;
  return lg_rec1(LG_OP_CONTIGUOUS, out, t, &nd);
}

lg_tensor *lg_contiguous(lg_tensor *t)
{
  return lg_is_contiguous(t) ? lg_retain(t) : lg_clone(t);
}

lg_tensor *lg_cat(int n, lg_tensor *const *ts, int dim)
{
  char b1[128], b2[128];
  if (n < 1) return lg_error("cat: needs at least one tensor");
  const lg_tensor *t0 = ts[0];
  for (int k = 0; k < n; k++)
    if (ts[k]->ndim == 0)
      return lg_error("cat: tensor %d is a scalar (0-dim) and cannot be concatenated", k + 1);
  int d = lg_wrap_dim("cat", dim, t0->ndim);
  if (d < 0) return NULL;
  int64_t sh[LG_MAXDIM];
  memcpy(sh, t0->shape, sizeof(int64_t) * t0->ndim);
  sh[d] = 0;
  for (int k = 0; k < n; k++) {
    const lg_tensor *t = ts[k];
    int ok = t->ndim == t0->ndim;
    for (int j = 0; ok && j < t0->ndim; j++)
      if (j != d && t->shape[j] != t0->shape[j]) ok = 0;
    if (!ok)
      return lg_error("cat: tensor %d has shape %s, which does not match tensor 1 (%s) "
                      "outside dim %d", k + 1, lg_shape_str(t, b1, sizeof b1),
                      lg_shape_str(t0, b2, sizeof b2), d);
    if (t->shape[d] > LG_MAXNUMEL - sh[d])   /* many inputs with zero sizes elsewhere */
      return lg_error("cat: the sizes of dim %d add up to more than 2^40 (at tensor %d of %d)",
                      d, k + 1, n);
    sh[d] += t->shape[d];
  }
  lg_tensor *out = lg_empty(t0->ndim, sh);
  if (!out) return NULL;
  int64_t off = 0;
  for (int k = 0; k < n; k++) {
    int64_t sub[LG_MAXDIM];
    memcpy(sub, sh, sizeof(int64_t) * t0->ndim);
    sub[d] = ts[k]->shape[d];
    lg_tensor *part = lg_alias(out, t0->ndim, sub, out->stride, out->offset + off * out->stride[d]);
    if (!part || lg_copy_(part, ts[k])) { lg_release(part); lg_release(out); return NULL; }
    lg_release(part);
    off += sub[d];
  }
  if (lg_should_record(n, ts)) {
    lg_node *nd = lg_record(LG_OP_CAT, out, n, ts, 0);
    if (!nd) { lg_release(out); return NULL; }
    lg_dim_params p = {d, 0};
    lg_params_put(nd, p);
  }
  return out;
}

lg_tensor *lg_stack(int n, lg_tensor *const *ts, int dim)
{
  char b1[128], b2[128];
  if (n < 1) return lg_error("stack: needs at least one tensor");
  for (int k = 1; k < n; k++)
    if (!lg_same_shape(ts[k], ts[0]))
      return lg_error("stack: tensor %d has shape %s, tensor 1 has shape %s", k + 1,
                      lg_shape_str(ts[k], b1, sizeof b1), lg_shape_str(ts[0], b2, sizeof b2));
  if (ts[0]->ndim >= LG_MAXDIM)
    return lg_error("stack: inputs already have %d dims, the most supported", ts[0]->ndim);
  int d = lg_wrap_dim("stack", dim, ts[0]->ndim + 1);
  if (d < 0) return NULL;
  lg_tensor **u = calloc(n, sizeof *u), *out = NULL;
  if (!u) return lg_error("stack: out of memory");
  int k;
  for (k = 0; k < n; k++)
    if (!(u[k] = lg_unsqueeze(ts[k], d))) break;
  if (k == n) out = lg_cat(n, u, d);
  for (int j = 0; j < n; j++) lg_release(u[j]);
  free(u);
  return out;
}

/* ---- index_select / index_add_zeros --------------------------------------------- */
/* Read and check idx: 1-D (or 0-dim) integral values in [0, size). Returns a
 * malloc'ed array of count entries or NULL with error. */
static int64_t *lg_read_index(const char *op, const lg_tensor *t, int d, const lg_tensor *idx,
                              int64_t size, int64_t *count)
{
  char b1[128], b2[128];
  if (idx->ndim > 1)
    return lg_error("%s: index must be 1-D, got %s (input %s)", op,
                    lg_shape_str(idx, b1, sizeof b1), lg_shape_str(t, b2, sizeof b2));
  int64_t m = lg_numel(idx);
  float *v = malloc(sizeof(float) * (m ? m : 1));
  int64_t *r = malloc(sizeof(int64_t) * (m ? m : 1));
  if (!v || !r) { free(v); free(r); return lg_error("%s: out of memory", op); }
  lg_read(idx, v);
  for (int64_t j = 0; j < m; j++) {
    float x = v[j];
    if (!(x >= 0 && x < (float)size) || x != (float)(int64_t)x) {
      free(v); free(r);
      return lg_error("%s: index %g at position %lld is not an integer in [0, %lld) for dim %d "
                      "(input %s)", op, x, (long long)j, (long long)size, d,
                      lg_shape_str(t, b2, sizeof b2));
    }
    r[j] = (int64_t)x;
  }
  free(v);
  *count = m;
  return r;
}

lg_tensor *lg_index_select(lg_tensor *t, int dim, const lg_tensor *idx)
{
  int d = lg_wrap_dim("index_select", dim, t->ndim);
  if (d < 0) return NULL;
  int64_t m, *ix = lg_read_index("index_select", t, d, idx, t->shape[d], &m);
  if (!ix) return NULL;
  int64_t sh[LG_MAXDIM];
  memcpy(sh, t->shape, sizeof(int64_t) * t->ndim);
  sh[d] = m;
  lg_tensor *out = lg_empty(t->ndim, sh), *src = out ? lg_dense(t) : NULL;
  if (!src) { free(ix); lg_release(out); return NULL; }
  /* t: (outer, size, inner) -> out: (outer, m, inner), one row copy each */
  int64_t outer = 1, inner = 1, size = t->shape[d];
  for (int k = 0; k < d; k++) outer *= t->shape[k];
  for (int k = d + 1; k < t->ndim; k++) inner *= t->shape[k];
  const float *s = lg_data(src);
  float *o = lg_data(out);
  #pragma omp parallel for if (outer * m * inner > LG_OMP_MIN)
  for (int64_t r = 0; r < outer * m; r++) {
    int64_t a = r / m, j = r % m;
    memcpy(o + r * inner, s + (a * size + ix[j]) * inner, sizeof(float) * inner);
  }
  free(ix);
  lg_release(src);
  if (lg_should_record(1, &t)) {
    lg_node *nd = lg_record(LG_OP_INDEX_SELECT, out, 1, &t, 1);
    if (!nd) { lg_release(out); return NULL; }
    lg_save(nd, LG_SV_IDX, idx);
    lg_dim_params p = {d, 0};
    lg_params_put(nd, p);
  }
  return out;
}

lg_tensor *lg_index_add_zeros(lg_tensor *g, int dim, const lg_tensor *idx, int64_t size)
{
  char b1[128], b2[128];
  int d = lg_wrap_dim("index_add_zeros", dim, g->ndim);
  if (d < 0) return NULL;
  if (size < 0) return lg_error("index_add_zeros: size %lld must be >= 0", (long long)size);
  int64_t m, *ix = lg_read_index("index_add_zeros", g, d, idx, size, &m);
  if (!ix) return NULL;
  if (m != g->shape[d]) {
    free(ix);
    return lg_error("index_add_zeros: %lld indices for dim %d of size %lld (source %s, index %s)",
                    (long long)m, d, (long long)g->shape[d], lg_shape_str(g, b1, sizeof b1),
                    lg_shape_str(idx, b2, sizeof b2));
  }
  int64_t sh[LG_MAXDIM];
  memcpy(sh, g->shape, sizeof(int64_t) * g->ndim);
  sh[d] = size;
  lg_tensor *out = lg_zeros(g->ndim, sh), *src = out ? lg_dense(g) : NULL;
  if (!src) { free(ix); lg_release(out); return NULL; }
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < d; k++) outer *= g->shape[k];
  for (int k = d + 1; k < g->ndim; k++) inner *= g->shape[k];
  const float *s = lg_data(src);
  float *o = lg_data(out);
  /* Repeated indices add into the same row: only the outer loop threads. */
  #pragma omp parallel for if (outer > 1 && outer * m * inner > LG_OMP_MIN)
  for (int64_t a = 0; a < outer; a++)
    for (int64_t j = 0; j < m; j++) {
      float *dst = o + (a * size + ix[j]) * inner;
      const float *row = s + (a * m + j) * inner;
      for (int64_t i = 0; i < inner; i++) dst[i] += row[i];
    }
  free(ix);
  lg_release(src);
  if (lg_should_record(1, &g)) {
    lg_node *nd = lg_record(LG_OP_INDEX_ADD_ZEROS, out, 1, &g, 1);
    if (!nd) { lg_release(out); return NULL; }
    lg_save(nd, LG_SV_IDX, idx);
    lg_dim_params p = {d, size};
    lg_params_put(nd, p);
  }
  return out;
}

/* ---- slice_backward / select_backward ------------------------------------------ */
lg_tensor *lg_slice_backward(lg_tensor *g, int ndim, const int64_t *shape, int dim,
                             int64_t start, int64_t end, int64_t step)
{
  char b1[128], b2[128], b3[128];
  lg_tensor *out = lg_zeros(ndim, shape);
  if (!out) return NULL;
  lg_tensor *win = lg_slice(out, dim, start, end, step);   /* out needs no grad: no node */
  if (!win) { lg_release(out); lg_error_prefix("slice_backward"); return NULL; }
  if (!lg_same_shape(win, g)) {
    lg_error("slice_backward: gradient %s does not match slice %s of %s",
             lg_shape_str(g, b1, sizeof b1), lg_shape_str(win, b2, sizeof b2),
             lg_shape_str(out, b3, sizeof b3));
    lg_release(win); lg_release(out);
    return NULL;
  }
  int rc = lg_copy_(win, g);
  lg_release(win);
  if (rc) { lg_release(out); return NULL; }
  if (lg_should_record(1, &g)) {
    lg_node *nd = lg_record(LG_OP_SLICE_BACKWARD, out, 1, &g, 0);
    if (!nd) { lg_release(out); return NULL; }
    int d = dim < 0 ? dim + ndim : dim;   /* valid: lg_slice accepted it */
    lg_slice_params p = {d, start, end, step};
    lg_params_put(nd, p);
  }
  return out;
}

lg_tensor *lg_select_backward(lg_tensor *g, int ndim, const int64_t *shape, int dim, int64_t index)
{
  char b1[128], b2[128];
  lg_tensor *out = lg_zeros(ndim, shape);
  if (!out) return NULL;
  lg_tensor *win = lg_select(out, dim, index);   /* out needs no grad: no node */
  if (!win) { lg_release(out); lg_error_prefix("select_backward"); return NULL; }
  if (!lg_same_shape(win, g)) {
    lg_error("select_backward: gradient %s does not match selection %s",
             lg_shape_str(g, b1, sizeof b1), lg_shape_str(win, b2, sizeof b2));
    lg_release(win); lg_release(out);
    return NULL;
  }
  int d = lg_wrap_dim("select_backward", dim, ndim);
  if (index < 0) index += shape[d];
  int rc = lg_copy_(win, g);
  lg_release(win);
  if (rc) { lg_release(out); return NULL; }
  if (lg_should_record(1, &g)) {
    lg_node *nd = lg_record(LG_OP_SELECT_BACKWARD, out, 1, &g, 0);
    if (!nd) { lg_release(out); return NULL; }
    lg_select_params p = {d, index};
    lg_params_put(nd, p);
  }
  return out;
}

/* ---- backward formulas ---------------------------------------------------------- */
int lg_bw_view(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (n->needs[0] && !(gin[0] = lg_reshape(g, n->in_ndim[0], n->in_shape[0]))) return -1;
  return 0;
}

int lg_bw_expand(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (n->needs[0] && !(gin[0] = lg_sum_to(g, n->in_ndim[0], n->in_shape[0]))) return -1;
  return 0;
}

int lg_bw_permute(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  int inv[LG_MAXDIM];
  const lg_permute_params *p = lg_params_get(n, lg_permute_params);
  for (int d = 0; d < g->ndim; d++) inv[p->perm[d]] = d;
  if (n->needs[0] && !(gin[0] = lg_permute(g, inv))) return -1;
  return 0;
}

int lg_bw_slice(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_slice_params *p = lg_params_get(n, lg_slice_params);
  if (n->needs[0] && !(gin[0] = lg_slice_backward(g, n->in_ndim[0], n->in_shape[0], (int)p->dim,
                                                  p->start, p->end, p->step)))
    return -1;
  return 0;
}

int lg_bw_select(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_select_params *p = lg_params_get(n, lg_select_params);
  if (n->needs[0] && !(gin[0] = lg_select_backward(g, n->in_ndim[0], n->in_shape[0],
                                                   (int)p->dim, p->index)))
    return -1;
  return 0;
}

int lg_bw_slice_backward(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_slice_params *p = lg_params_get(n, lg_slice_params);
  if (n->needs[0] && !(gin[0] = lg_slice(g, (int)p->dim, p->start, p->end, p->step))) return -1;
  return 0;
}

int lg_bw_select_backward(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  const lg_select_params *p = lg_params_get(n, lg_select_params);
  if (n->needs[0] && !(gin[0] = lg_select(g, (int)p->dim, p->index))) return -1;
  return 0;
}

int lg_bw_contiguous(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (n->needs[0]) gin[0] = lg_retain(g);
  return 0;
}

int lg_bw_cat(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  int d = (int)lg_params_get(n, lg_dim_params)->dim;
  int64_t off = 0;
  for (int k = 0; k < n->n_in; k++) {
    int64_t len = n->in_shape[k][d];
    if (n->needs[k] && !(gin[k] = lg_narrow(g, d, off, len))) return -1;
    off += len;
  }
  return 0;
}

int lg_bw_index_select(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  int d = (int)lg_params_get(n, lg_dim_params)->dim;
  lg_tensor *idx = lg_saved(n, LG_SV_IDX);
  if (!idx) return -1;
  gin[0] = lg_index_add_zeros(g, d, idx, n->in_shape[0][d]);
  lg_release(idx);
  return gin[0] ? 0 : -1;
}

int lg_bw_index_add_zeros(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_tensor *idx = lg_saved(n, LG_SV_IDX);
  if (!idx) return -1;
  gin[0] = lg_index_select(g, (int)lg_params_get(n, lg_dim_params)->dim, idx);
  lg_release(idx);
  return gin[0] ? 0 : -1;
}
