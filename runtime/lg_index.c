/* lg_index.c: index ops along one dim (gather, scatter_add, sort indices),
 * cumsum, and the pointwise ops with no useful derivative or a new one
 * (erf, floor, round, isnan, isfinite), each with its backward formula.
 *
 *   gather      -> GATHER      (bw: scatter_add into zeros, whose bw in src is gather)
 *   scatter_add -> SCATTER_ADD (bw: g for the base, gather(g) for src)
 *   cumsum      -> CUMSUM      (bw: the reversed cumsum, whose bw is cumsum again)
 *   erf         -> ERF         (bw: g * 2/sqrt(pi) * exp(-x^2), written with ops)
 *   floor/round -> FLOOR/ROUND (bw: zero, like sign)
 * sort_indices, isnan and isfinite never record: indices and masks carry no
 * gradient (sorted values are gather(x, dim, indices), differentiable).
 *
 * Index tensors hold 0-based integral floats (the bindings subtract 1), and
 * have the same number of dims as the input, as in PyTorch. Messages that
 * can reach Lua name no dim number (dims are 0-based here, 1-based there);
 * the bindings check dims and index values first, in 1-based terms.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lg_ops.h"

/* t's elements in a fresh contiguous float buffer, or NULL with error. */
static float *lg_dense_copy(const char *op, const lg_tensor *t)
{
  int64_t n = lg_numel(t);
  float *v = malloc(sizeof(float) * (n ? n : 1));
  if (!v) return lg_error("%s: out of memory", op);
  lg_read(t, v);
  return v;
}

/* Row-major strides of a shape (in elements). */
static void lg_strides_of(int ndim, const int64_t *shape, int64_t *st)
{
  int64_t s = 1;
  for (int k = ndim - 1; k >= 0; k--) { st[k] = s; s *= shape[k]; }
}

/* Check idx against t for an index op along d: same ndim, idx.shape[k] <=
 * t->shape[k] for every k != d, integral
 * values in [0, t.shape[d]). Returns the dense int64 indices or NULL. */
static int64_t *lg_check_index(const char *op, const lg_tensor *t, int d, const lg_tensor *idx)
{
  char b1[128], b2[128];
  if (idx->ndim != t->ndim)
    return lg_error("%s: index has %d dims (%s), input has %d (%s); they must match", op,
                    idx->ndim, lg_shape_str(idx, b1, sizeof b1), t->ndim,
                    lg_shape_str(t, b2, sizeof b2));
  for (int k = 0; k < idx->ndim; k++)
    if (k != d && idx->shape[k] > t->shape[k])
      return lg_error("%s: index shape %s is larger than input %s outside the indexed dim", op,
                      lg_shape_str(idx, b1, sizeof b1), lg_shape_str(t, b2, sizeof b2));
  int64_t n = lg_numel(idx), size = t->shape[d];
  float *v = lg_dense_copy(op, idx);
  int64_t *r = v ? malloc(sizeof(int64_t) * (n ? n : 1)) : NULL;
  if (!r) { free(v); return v ? lg_error("%s: out of memory", op) : NULL; }
  for (int64_t j = 0; j < n; j++) {
    float x = v[j];
    if (!(x >= 0 && x < (float)size) || x != (float)(int64_t)x) {
      free(v); free(r);
      return lg_error("%s: index %g is not an integer in [0, %lld) for dim %d (input %s)", op,
                      x, (long long)size, d, lg_shape_str(t, b2, sizeof b2));
    }
    r[j] = (int64_t)x;
  }
  free(v);
  return r;
}

/* Offset in a tensor of strides st of the idx-shaped position j (row-major
 * in ishape) with its dim d coordinate replaced by c. */
static int64_t lg_pos(int ndim, const int64_t *ishape, int64_t j, const int64_t *st, int d, int64_t c)
{
  int64_t off = 0;
  for (int k = ndim - 1; k >= 0; k--) {
    int64_t q = ishape[k] ? j % ishape[k] : 0;
    j = ishape[k] ? j / ishape[k] : 0;
    off += (k == d ? c : q) * st[k];
  }
  return off;
}

/* Node parameters: the dim of gather, scatter_add and cumsum (and cumsum's
 * direction); saved slots: the indices of gather and scatter_add, erf's input. */
typedef struct { int64_t dim, reverse; } lg_dim_params;
enum { LG_SV_IDX = 0 };
enum { LG_SV_X = 0 };

/* ---- gather / scatter_add ------------------------------------------------------ */
/* t: any shape; idx: t's ndim, idx.shape[k] <= t.shape[k] for k != d.
 * out[..i..] = t[..idx[..i..]..] in dim d; out has idx's shape. */
lg_tensor *lg_gather(lg_tensor *t, int dim, const lg_tensor *idx)
{
  if (t->ndim == 0) return lg_error("gather: input is 0-dim; it needs a dim to index");
  int d = lg_wrap_dim("gather", dim, t->ndim);
  if (d < 0) return NULL;
  int64_t *ix = lg_check_index("gather", t, d, idx);
  if (!ix) return NULL;
  lg_tensor *out = lg_empty(idx->ndim, idx->shape);
  float *src = out ? lg_dense_copy("gather", t) : NULL;
  if (!src) { free(ix); lg_release(out); return NULL; }
  int64_t st[LG_MAXDIM], n = lg_numel(idx);
  lg_strides_of(t->ndim, t->shape, st);
  float *o = lg_data(out);
  for (int64_t j = 0; j < n; j++) o[j] = src[lg_pos(idx->ndim, idx->shape, j, st, d, ix[j])];
  free(ix);
  free(src);
  if (lg_should_record(1, &t)) {
    lg_node *nd = lg_record(LG_OP_GATHER, out, 1, &t, 1);
    if (!nd) { lg_release(out); return NULL; }
    lg_save(nd, LG_SV_IDX, idx);
    lg_dim_params p = {d, 0};
    lg_params_put(nd, p);
  }
  return out;
}

/* src narrowed to idx's shape (a differentiable view), as PyTorch reads only
 * that corner of a larger src. */
static lg_tensor *lg_corner(lg_tensor *src, const lg_tensor *idx)
{
  lg_tensor *c = lg_retain(src);
  for (int k = 0; k < idx->ndim && c; k++) {
    if (c->shape[k] == idx->shape[k]) continue;
    lg_tensor *n = lg_narrow(c, k, 0, idx->shape[k]);
    lg_release(c);
    c = n;
  }
  return c;
}

/* t: any shape; idx: t's ndim, <= src everywhere and <= t off dim d; src:
 * t's ndim. out = t with src[..i..] added at t[..idx[..i..]..] (repeated
 * indices accumulate). */
lg_tensor *lg_scatter_add(lg_tensor *t, int dim, const lg_tensor *idx, lg_tensor *src)
{
  char b1[128], b2[128];
  if (t->ndim == 0) return lg_error("scatter_add: input is 0-dim; it needs a dim to index");
  int d = lg_wrap_dim("scatter_add", dim, t->ndim);
  if (d < 0) return NULL;
  if (src->ndim != t->ndim)
    return lg_error("scatter_add: src %s and input %s must have the same number of dims",
                    lg_shape_str(src, b1, sizeof b1), lg_shape_str(t, b2, sizeof b2));
  int64_t *ix = lg_check_index("scatter_add", t, d, idx);
  if (!ix) return NULL;
  for (int k = 0; k < idx->ndim; k++)
    if (idx->shape[k] > src->shape[k]) {
      free(ix);
      return lg_error("scatter_add: index shape %s is larger than src %s",
                      lg_shape_str(idx, b1, sizeof b1), lg_shape_str(src, b2, sizeof b2));
    }
  lg_tensor *s = lg_corner(src, idx);
  lg_tensor *out = s ? lg_empty(t->ndim, t->shape) : NULL;
  float *sv = out ? lg_dense_copy("scatter_add", s) : NULL;
  if (!sv) { free(ix); lg_release(out); lg_release(s); return NULL; }
  lg_read(t, lg_data(out));
  int64_t st[LG_MAXDIM], n = lg_numel(idx);
  lg_strides_of(t->ndim, t->shape, st);
  float *o = lg_data(out);
  for (int64_t j = 0; j < n; j++) o[lg_pos(idx->ndim, idx->shape, j, st, d, ix[j])] += sv[j];
  free(ix);
  free(sv);
  lg_tensor *in[2] = {t, s};
  if (lg_should_record(2, in)) {
    lg_node *nd = lg_record(LG_OP_SCATTER_ADD, out, 2, in, 1);
    if (!nd) { lg_release(out); lg_release(s); return NULL; }
    lg_save(nd, LG_SV_IDX, idx);
    lg_dim_params p = {d, 0};
    lg_params_put(nd, p);
  }
  lg_release(s);
  return out;
}

int lg_bw_gather(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_tensor *idx = lg_saved(n, LG_SV_IDX), *z = idx ? lg_zeros(n->in_ndim[0], n->in_shape[0]) : NULL;
  if (z) gin[0] = lg_scatter_add(z, (int)lg_params_get(n, lg_dim_params)->dim, idx, g);
  lg_release(z);
  lg_release(idx);
  return gin[0] ? 0 : -1;
}

int lg_bw_scatter_add(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (n->needs[0]) gin[0] = lg_retain(g);
  if (!n->needs[1]) return 0;
  lg_tensor *idx = lg_saved(n, LG_SV_IDX);
  if (idx) gin[1] = lg_gather(g, (int)lg_params_get(n, lg_dim_params)->dim, idx);
  lg_release(idx);
  return gin[1] ? 0 : -1;
}

/* ---- cumsum ------------------------------------------------------------------- */
/* t: any shape. Running sums along d, from the end when reverse (the adjoint
 * of the forward sum, so each is the other's backward). Sums in double. */
lg_tensor *lg_cumsum(lg_tensor *t, int dim, int reverse)
{
  int d = lg_wrap_dim("cumsum", dim, t->ndim ? t->ndim : 1);   /* a 0-dim t is one line */
  if (d < 0) return NULL;
  lg_tensor *out = lg_empty(t->ndim, t->shape);
  if (!out) return NULL;
  lg_read(t, lg_data(out));
  int64_t outer = 1, inner = 1, size = t->ndim ? t->shape[d] : 1;
  for (int k = 0; k < d; k++) outer *= t->shape[k];
  for (int k = d + 1; k < t->ndim; k++) inner *= t->shape[k];
  float *o = lg_data(out);
  for (int64_t a = 0; a < outer; a++)
    for (int64_t i = 0; i < inner; i++) {
      float *p = o + a * size * inner + i;
      double acc = 0;
      for (int64_t c = 0; c < size; c++) {
        int64_t q = reverse ? size - 1 - c : c;
        acc += p[q * inner];
        p[q * inner] = (float)acc;
      }
    }
  if (lg_should_record(1, &t)) {
    lg_node *nd = lg_record(LG_OP_CUMSUM, out, 1, &t, 0);
    if (!nd) { lg_release(out); return NULL; }
    lg_dim_params p = {d, reverse};
    lg_params_put(nd, p);
  }
  return out;
}

int lg_bw_cumsum(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  const lg_dim_params *p = lg_params_get(n, lg_dim_params);
  gin[0] = lg_cumsum(g, (int)p->dim, !p->reverse);
  return gin[0] ? 0 : -1;
}

/* ---- sort ----------------------------------------------------------------------- */
/* qsort comparator over (value, position) pairs: ascending, NaN largest (as
 * PyTorch), ties in original order so the sort is stable. */
typedef struct { float v; int64_t i; } lg_vi;
static int lg_vi_cmp(const void *pa, const void *pb)
{
  const lg_vi *a = pa, *b = pb;
  int an = isnan(a->v), bn = isnan(b->v);
  if (an != bn) return an ? 1 : -1;
  if (!an && a->v != b->v) return a->v < b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}
static int lg_vi_cmp_desc(const void *pa, const void *pb)
{
  const lg_vi *a = pa, *b = pb;
  int an = isnan(a->v), bn = isnan(b->v);
  if (an != bn) return an ? -1 : 1;
  if (!an && a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

/* t: any shape -> t's shape of 0-based positions along d that sort each
 * line (stable; NaN sorts as the largest value). Never records. */
lg_tensor *lg_sort_indices(const lg_tensor *t, int dim, int descending)
{
  int d = lg_wrap_dim("sort", dim, t->ndim ? t->ndim : 1);
  if (d < 0) return NULL;
  int64_t outer = 1, inner = 1, size = t->ndim ? t->shape[d] : 1;
  for (int k = 0; k < d; k++) outer *= t->shape[k];
  for (int k = d + 1; k < t->ndim; k++) inner *= t->shape[k];
  lg_tensor *out = lg_empty(t->ndim, t->shape);
  float *v = out ? lg_dense_copy("sort", t) : NULL;
  lg_vi *line = v ? malloc(sizeof *line * (size ? size : 1)) : NULL;
  if (!line) {
    free(v);
    lg_release(out);
    return out && v ? lg_error("sort: out of memory") : NULL;
  }
  float *o = lg_data(out);
  for (int64_t a = 0; a < outer; a++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = a * size * inner + i;
      for (int64_t c = 0; c < size; c++) line[c] = (lg_vi){v[base + c * inner], c};
      qsort(line, (size_t)size, sizeof *line, descending ? lg_vi_cmp_desc : lg_vi_cmp);
      for (int64_t c = 0; c < size; c++) o[base + c * inner] = (float)line[c].i;
    }
  free(line);
  free(v);
  return out;
}

/* ---- pointwise: erf, floor, round, isnan, isfinite ------------------------------- */
enum { LG_P_ERF, LG_P_FLOOR, LG_P_ROUND, LG_P_ISNAN, LG_P_ISFINITE };

/* a: any shape -> same shape, f applied to each element; records op (saving
 * the input when save) unless op < 0. */
static lg_tensor *lg_map(int op, int kind, int save, lg_tensor *a)
{
  lg_tensor *out = lg_empty(a->ndim, a->shape);
  if (!out) return NULL;
  float *o = lg_data(out);
  lg_read(a, o);
  int64_t n = lg_numel(a);
  for (int64_t i = 0; i < n; i++) {
    float x = o[i];
    switch (kind) {
    case LG_P_ERF: o[i] = erff(x); break;
    case LG_P_FLOOR: o[i] = floorf(x); break;
    case LG_P_ROUND: o[i] = nearbyintf(x); break;   /* half to even, as torch.round */
    case LG_P_ISNAN: o[i] = isnan(x) ? 1.0f : 0.0f; break;
    default: o[i] = isfinite(x) ? 1.0f : 0.0f; break;
    }
  }
  if (op >= 0 && lg_should_record(1, &a)) {
    lg_node *nd = lg_record(op, out, 1, &a, save);
    if (!nd) { lg_release(out); return NULL; }
    if (save) lg_save(nd, LG_SV_X, a);
  }
  return out;
}

lg_tensor *lg_erf(lg_tensor *a) { return lg_map(LG_OP_ERF, LG_P_ERF, 1, a); }
lg_tensor *lg_floor(lg_tensor *a) { return lg_map(LG_OP_FLOOR, LG_P_FLOOR, 0, a); }
lg_tensor *lg_round(lg_tensor *a) { return lg_map(LG_OP_ROUND, LG_P_ROUND, 0, a); }
lg_tensor *lg_isnan(const lg_tensor *a) { return lg_map(-1, LG_P_ISNAN, 0, (lg_tensor *)a); }
lg_tensor *lg_isfinite(const lg_tensor *a) { return lg_map(-1, LG_P_ISFINITE, 0, (lg_tensor *)a); }

/* d erf(x)/dx = 2/sqrt(pi) exp(-x^2), written with ops so it differentiates again. */
int lg_bw_erf(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  if (!n->needs[0]) return 0;
  lg_tensor *x = lg_saved(n, LG_SV_X);
  lg_tensor *x2 = x ? lg_mul(x, x) : NULL;
  lg_tensor *e = x2 ? lg_mul_scalar(x2, -1.0f) : NULL;
  lg_tensor *ex = e ? lg_exp(e) : NULL;
  lg_tensor *s = ex ? lg_mul_scalar(ex, 1.1283791670955126f) : NULL;
  if (s) gin[0] = lg_mul(g, s);
  lg_release(x); lg_release(x2); lg_release(e); lg_release(ex); lg_release(s);
  return gin[0] ? 0 : -1;
}

/* floor and round are piecewise constant: a zero gradient, like sign. */
int lg_bw_floor(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  (void)g;
  if (n->needs[0] && !(gin[0] = lg_zeros(n->in_ndim[0], n->in_shape[0]))) return -1;
  return 0;
}
int lg_bw_round(lg_node *n, lg_tensor *g, lg_tensor **gin) { return lg_bw_floor(n, g, gin); }
