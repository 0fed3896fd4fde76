/* lgl_nn.c: Lua bindings of the neural-network ops (lg_nn.h).
 *
 * Geometry options follow PyTorch's names and accept a number or a pair
 * {h, w}: lg.conv2d(x, w, b, {stride = 2, padding = 1, dilation = 1}).
 * Class indices are 1-based in Lua (embedding, nll_loss, cross_entropy) and
 * shifted to the runtime's 0-based indices here. Losses take
 * {reduction = "mean" | "sum" | "none"}. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "lgl.h"

/* ---- option helpers -------------------------------------------------------- */
/* The number or {h, w} pair at stack index vidx into *h, *w, each an integer
 * in [lo, LGL_MAXGEOM] (errors blame argument arg and name the value): never
 * a cast, so 2^32 + 1 is an error rather than 1. */
static void geom_pair(lua_State *L, int vidx, int arg, const char *name, int lo, int *h, int *w)
{
  vidx = lua_absindex(L, vidx);
  if (lua_type(L, vidx) == LUA_TTABLE) {
    if (lua_rawlen(L, vidx) != 2)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer or a pair {h, w}", name));
    lua_rawgeti(L, vidx, 1);
    lua_rawgeti(L, vidx, 2);
    int top = lua_gettop(L);    /* absolute: the names pushed below move relative indices */
    *h = (int)lgl_checkint_at(L, top - 1, arg, lua_pushfstring(L, "%s[1]", name), lo, LGL_MAXGEOM);
    *w = (int)lgl_checkint_at(L, top, arg, lua_pushfstring(L, "%s[2]", name), lo, LGL_MAXGEOM);
    lua_pop(L, 4);
  } else if (lua_type(L, vidx) == LUA_TNUMBER) {
    *h = *w = (int)lgl_checkint_at(L, vidx, arg, name, lo, LGL_MAXGEOM);
  } else {
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer or a pair {h, w}, got %s",
                                          name, luaL_typename(L, vidx)));
  }
}

/* A number or a {h, w} pair from options table idx (nil/none allowed),
 * each value in [lo, LGL_MAXGEOM]. */
static void opt_pair(lua_State *L, int idx, const char *key, int def, int lo, int *h, int *w)
{
  *h = *w = def;
  if (lua_isnoneornil(L, idx)) return;
  if (lua_getfield(L, idx, key) != LUA_TNIL) geom_pair(L, -1, idx, key, lo, h, w);
  lua_pop(L, 1);
}

/* A positional number-or-pair argument (kernel size), each value >= 1. */
static void arg_pair(lua_State *L, int idx, int *h, int *w)
{
  geom_pair(L, idx, idx, "kernel size", 1, h, w);
}

static int opt_reduction(lua_State *L, int idx)
{
  static const char *const names[] = {"none", "mean", "sum", NULL};
  if (lua_isnoneornil(L, idx)) return LG_REDUCE_MEAN;
  lua_getfield(L, idx, "reduction");
  int r = lua_isnil(L, -1) ? LG_REDUCE_MEAN : luaL_checkoption(L, -1, NULL, names);
  lua_pop(L, 1);
  return r;
}

static const char *opt_string(lua_State *L, int idx, const char *key, const char *def)
{
  if (lua_isnoneornil(L, idx)) return def;
  lua_getfield(L, idx, key);
  const char *s = lua_isnil(L, -1) ? def : NULL;
  if (!s) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "option '%s': string expected, got %s", key, luaL_typename(L, -1));
    s = lua_tostring(L, -1);   /* stays valid: the options table holds it */
  }
  lua_pop(L, 1);
  return s;
}

/* "(2, 3)": the 1-based position of flat element i of a tensor of shape t. */
static const char *position(lua_State *L, const lg_tensor *t, int64_t i)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  int64_t at[LG_MAXDIM];
  for (int d = t->ndim - 1; d >= 0; d--) {
    at[d] = t->shape[d] ? i % t->shape[d] : 0;
    i = t->shape[d] ? i / t->shape[d] : 0;
  }
  luaL_addchar(&b, '(');
  for (int d = 0; d < t->ndim; d++) {
    if (d) luaL_addstring(&b, ", ");
    lua_pushfstring(L, "%I", (lua_Integer)(at[d] + 1));
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, ')');
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* A tensor of 1-based class indices, each an integer in 1..n (op and what
 * name them in the error, which speaks 1-based: the runtime's own check
 * would print the shifted 0-based value) -> a new tensor of 0-based ones. */
static lg_tensor *shift_index(lua_State *L, int idx, int64_t n, const char *op, const char *what)
{
  lg_tensor *t = lgl_check(L, idx);
  int64_t cnt = lg_numel(t);
  float *v = lua_newuserdatauv(L, sizeof(float) * (size_t)(cnt ? cnt : 1), 0); /* GC-owned */
  lg_read(t, v);
  for (int64_t i = 0; i < cnt; i++)
    if (!(v[i] >= 1 && v[i] <= (float)n) || v[i] != floorf(v[i])) {
      char val[32];
      snprintf(val, sizeof val, "%g", (double)v[i]);
      const char *pos = t->ndim ? position(L, t, i) : "";
      luaL_error(L, "%s: %s %s%s%s is not a %s in [1, %I] (luagan counts from 1)", op, what, val,
                 t->ndim ? " at " : "", pos,
                 strcmp(what, "index") == 0 ? "row index" : "class index", (lua_Integer)n);
    }
  lua_pop(L, 1);
  lg_tensor *r = lg_add_scalar(t, -1.0f);
  if (!r) lgl_error(L);
  return r;
}

/* ---- convolution -------------------------------------------------------------- */
static const char *const conv_opts[] = {"stride", "padding", "dilation", NULL};
static const char *const convt_opts[] = {"stride", "padding", "output_padding", "dilation",
                                         NULL};

/* lg.conv2d(x (N,C,H,W), w (OC,C,KH,KW), [b (OC)], [opts]) */
static int n_conv2d(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1), *w = lgl_check(L, 2), *b = lgl_opt(L, 3);
  lgl_checkopts(L, 4, conv_opts);
  int sh, sw, ph, pw, dh, dw;
  opt_pair(L, 4, "stride", 1, 1, &sh, &sw);
  opt_pair(L, 4, "padding", 0, 0, &ph, &pw);
  opt_pair(L, 4, "dilation", 1, 1, &dh, &dw);
  return lgl_push(L, lg_conv2d(x, w, b, sh, sw, ph, pw, dh, dw));
}

/* lg.conv_transpose2d(x (N,C,H,W), w (C,OC,KH,KW), [b (OC)], [opts]) */
static int n_conv_transpose2d(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1), *w = lgl_check(L, 2), *b = lgl_opt(L, 3);
  lgl_checkopts(L, 4, convt_opts);
  int sh, sw, ph, pw, oh, ow, dh, dw;
  opt_pair(L, 4, "stride", 1, 1, &sh, &sw);
  opt_pair(L, 4, "padding", 0, 0, &ph, &pw);
  opt_pair(L, 4, "output_padding", 0, 0, &oh, &ow);
  opt_pair(L, 4, "dilation", 1, 1, &dh, &dw);
  return lgl_push(L, lg_conv_transpose2d(x, w, b, sh, sw, ph, pw, oh, ow, dh, dw));
}

/* lg.conv2d_grad_weight(x (N,C,H,W), g (N,OC,OH,OW), k, [opts]) -> (OC,C,KH,KW) */
static int n_conv2d_grad_weight(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1), *g = lgl_check(L, 2);
  int kh, kw, sh, sw, ph, pw, dh, dw;
  arg_pair(L, 3, &kh, &kw);
  lgl_checkopts(L, 4, conv_opts);
  opt_pair(L, 4, "stride", 1, 1, &sh, &sw);
  opt_pair(L, 4, "padding", 0, 0, &ph, &pw);
  opt_pair(L, 4, "dilation", 1, 1, &dh, &dw);
  return lgl_push(L, lg_conv2d_grad_weight(x, g, kh, kw, sh, sw, ph, pw, dh, dw));
}

/* ---- pooling and resampling ---------------------------------------------------- */
static const char *const pool_opts[] = {"stride", "padding", NULL};

static int pool(lua_State *L, int is_max)
{
  lg_tensor *x = lgl_check(L, 1);
  int kh, kw, sh, sw, ph, pw;
  arg_pair(L, 2, &kh, &kw);
  lgl_checkopts(L, 3, pool_opts);
  opt_pair(L, 3, "stride", 0, 1, &sh, &sw);
  if (sh == 0) sh = kh;                   /* PyTorch: stride defaults to the kernel */
  if (sw == 0) sw = kw;
  opt_pair(L, 3, "padding", 0, 0, &ph, &pw);
  return lgl_push(L, is_max ? lg_max_pool2d(x, kh, kw, sh, sw, ph, pw)
                            : lg_avg_pool2d(x, kh, kw, sh, sw, ph, pw));
}
/* lg.max_pool2d(x (N,C,H,W), k, {stride = k, padding = 0}) */
static int n_max_pool2d(lua_State *L) { return pool(L, 1); }
/* lg.avg_pool2d(x (N,C,H,W), k, {stride = k, padding = 0}) */
static int n_avg_pool2d(lua_State *L) { return pool(L, 0); }

/* lg.upsample(x (N,C,H,W), {scale = 2 | {sh, sw}, mode = "nearest" | "bilinear"}) */
static int n_upsample(lua_State *L)
{
  static const char *const opts[] = {"scale", "scale_factor", "mode", NULL};
  lg_tensor *x = lgl_check(L, 1);
  int sh, sw;
  if (lua_type(L, 2) == LUA_TNUMBER) {  /* lg.upsample(x, 2, {mode = ...}) */
    sh = sw = (int)lgl_checkint(L, 2, "scale", 1, LGL_MAXGEOM);
    lgl_checkopts(L, 3, opts);
    lua_remove(L, 2);
  } else {
    lgl_checkopts(L, 2, opts);
    opt_pair(L, 2, "scale", 0, 1, &sh, &sw);
    if (sh == 0) opt_pair(L, 2, "scale_factor", 2, 1, &sh, &sw);
  }
  const char *mode = opt_string(L, 2, "mode", "nearest");
  int m;
  if (strcmp(mode, "nearest") == 0) m = 0;
  else if (strcmp(mode, "bilinear") == 0) m = 1;
  else return luaL_error(L, "upsample: unknown mode '%s' (expected nearest, bilinear)", mode);
  return lgl_push(L, lg_upsample(x, sh, sw, m));
}

/* ---- normalisation ------------------------------------------------------------- */
/* lg.batch_norm(x (N,C,...), [running_mean (C)], [running_var (C)], [weight (C)],
 *               [bias (C)], {training = true, momentum = 0.1, eps = 1e-5}) */
static int n_batch_norm(lua_State *L)
{
  static const char *const opts[] = {"training", "momentum", "eps", NULL};
  lg_tensor *x = lgl_check(L, 1), *rm = lgl_opt(L, 2), *rv = lgl_opt(L, 3);
  lg_tensor *w = lgl_opt(L, 4), *b = lgl_opt(L, 5);
  lgl_checkopts(L, 6, opts);
  int training = lgl_optbool(L, 6, "training", 1);
  float momentum = (float)lgl_optnum(L, 6, "momentum", 0.1);
  float eps = (float)lgl_optnum(L, 6, "eps", 1e-5);
  return lgl_push(L, lg_batch_norm(x, rm, rv, w, b, training, momentum, eps));
}

static const char *const eps_opts[] = {"eps", NULL};

/* lg.layer_norm(x, k, [weight], [bias], {eps = 1e-5}): normalise over the last k dims */
static int n_layer_norm(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1);
  lua_Integer k = luaL_checkinteger(L, 2);
  luaL_argcheck(L, k >= 1 && k <= x->ndim, 2, "number of normalised dims out of range");
  lg_tensor *w = lgl_opt(L, 3), *b = lgl_opt(L, 4);
  lgl_checkopts(L, 5, eps_opts);
  return lgl_push(L, lg_layer_norm(x, (int)k, w, b, (float)lgl_optnum(L, 5, "eps", 1e-5)));
}

/* lg.instance_norm(x (N,C,...), [weight (C)], [bias (C)], {eps = 1e-5}) */
static int n_instance_norm(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1), *w = lgl_opt(L, 2), *b = lgl_opt(L, 3);
  lgl_checkopts(L, 4, eps_opts);
  return lgl_push(L, lg_instance_norm(x, w, b, (float)lgl_optnum(L, 4, "eps", 1e-5)));
}

/* ---- misc ------------------------------------------------------------------------ */
/* lg.dropout(x, p = 0.5, training = true) */
static int n_dropout(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1);
  lua_Number p = luaL_optnumber(L, 2, 0.5);
  luaL_argcheck(L, p >= 0 && p <= 1, 2, "dropout probability must be in [0, 1]");
  int training = lua_isnoneornil(L, 3) ? 1 : lua_toboolean(L, 3);
  return lgl_push(L, lg_dropout(NULL, x, (float)p, training));
}

/* lg.embedding(idx (any shape, 1-based), weight (V,D)) -> (idx shape..., D) */
static int n_embedding(lua_State *L)
{
  lg_tensor *w = lgl_check(L, 2);
  if (w->ndim != 2) return lgl_push(L, lg_embedding(lgl_check(L, 1), w));  /* its shape error */
  lg_tensor *i0 = shift_index(L, 1, w->shape[0], "embedding", "index");
  lg_tensor *r = lg_embedding(i0, w);
  lg_release(i0);
  return lgl_push(L, r);
}

/* lg.pad(x, {left, right, top, bottom} | p, {mode = "constant" | "reflect", value = 0}) */
static int n_pad(lua_State *L)
{
  static const char *const opts[] = {"mode", "value", NULL};
  lg_tensor *x = lgl_check(L, 1);
  int p[4];
  if (lua_type(L, 2) == LUA_TNUMBER) {
    p[0] = p[1] = p[2] = p[3] = (int)lgl_checkint(L, 2, "padding", 0, LGL_MAXGEOM);
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n == 2 || n == 4, 2, "expected {left, right} or {left, right, top, bottom}");
    static const char *const side[] = {"left", "right", "top", "bottom"};
    for (int i = 0; i < 4; i++) {
      if (i < n) {
        lua_rawgeti(L, 2, i + 1);
        int at = lua_gettop(L);
        p[i] = (int)lgl_checkint_at(L, at, 2, lua_pushfstring(L, "padding (%s)", side[i]), 0,
                                    LGL_MAXGEOM);
        lua_pop(L, 2);
      } else {
        p[i] = 0;
      }
    }
  }
  lgl_checkopts(L, 3, opts);
  const char *mode = opt_string(L, 3, "mode", "constant");
  int m;
  if (strcmp(mode, "constant") == 0 || strcmp(mode, "zero") == 0) m = 0;
  else if (strcmp(mode, "reflect") == 0 || strcmp(mode, "reflection") == 0) m = 1;
  else return luaL_error(L, "pad: unknown mode '%s' (expected constant, reflect)", mode);
  float value = (float)lgl_optnum(L, 3, "value", 0);
  return lgl_push(L, lg_pad(x, p[0], p[1], p[2], p[3], m, value));
}

/* lg.softmax(x, dim = -1), lg.log_softmax(x, dim = -1) */
static int n_softmax(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1);
  return lgl_push(L, lg_softmax(x, lgl_optdim(L, 2, x->ndim, x->ndim - 1)));
}
static int n_log_softmax(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1);
  return lgl_push(L, lg_log_softmax(x, lgl_optdim(L, 2, x->ndim, x->ndim - 1)));
}

/* ---- losses ---------------------------------------------------------------------- */
static const char *const red_opts[] = {"reduction", NULL};

static int loss2(lua_State *L, lg_tensor *(*fn)(lg_tensor *, lg_tensor *, int))
{
  lg_tensor *x = lgl_check(L, 1), *y = lgl_checkval(L, 2);
  lgl_checkopts(L, 3, red_opts);
  return lgl_push(L, fn(x, y, opt_reduction(L, 3)));
}
/* lg.bce_with_logits(x, y, {reduction = "mean"}): y broadcasts to x */
static int n_bce_with_logits(lua_State *L) { return loss2(L, lg_bce_with_logits); }
static int n_mse_loss(lua_State *L) { return loss2(L, lg_mse_loss); }
static int n_l1_loss(lua_State *L) { return loss2(L, lg_l1_loss); }

/* lg.nll_loss(logp (N,C,...), target (N,...) 1-based classes, {reduction}) */
static int n_nll_loss(lua_State *L)
{
  lg_tensor *logp = lgl_check(L, 1);
  lgl_checkopts(L, 3, red_opts);
  int red = opt_reduction(L, 3);
  if (logp->ndim < 2) return lgl_push(L, lg_nll_loss(logp, lgl_check(L, 2), red));
  lg_tensor *t0 = shift_index(L, 2, logp->shape[1], "nll_loss", "target");
  lg_tensor *r = lg_nll_loss(logp, t0, red);
  lg_release(t0);
  return lgl_push(L, r);
}

/* lg.cross_entropy(logits (N,C,...), target, {reduction}): target holds 1-based
 * classes (N,...) or probabilities of the logits' shape. */
static int n_cross_entropy(lua_State *L)
{
  lg_tensor *x = lgl_check(L, 1), *t = lgl_check(L, 2);
  lgl_checkopts(L, 3, red_opts);
  int red = opt_reduction(L, 3);
  int probs = t->ndim == x->ndim;
  if (!probs && x->ndim < 2) return lgl_push(L, lg_cross_entropy(x, t, red));  /* its error */
  lg_tensor *t0 = probs ? lg_retain(t) : shift_index(L, 2, x->shape[1], "cross_entropy", "target");
  lg_tensor *r = lg_cross_entropy(x, t0, red);
  lg_release(t0);
  return lgl_push(L, r);
}

void lgl_open_nn(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"conv2d", n_conv2d},
    {"conv_transpose2d", n_conv_transpose2d},
    {"conv2d_grad_weight", n_conv2d_grad_weight},
    {"max_pool2d", n_max_pool2d},
    {"avg_pool2d", n_avg_pool2d},
    {"upsample", n_upsample},
    {"batch_norm", n_batch_norm},
    {"layer_norm", n_layer_norm},
    {"instance_norm", n_instance_norm},
    {"dropout", n_dropout},
    {"embedding", n_embedding},
    {"pad", n_pad},
    {"softmax", n_softmax},
    {"log_softmax", n_log_softmax},
    {"bce_with_logits", n_bce_with_logits},
    {"mse_loss", n_mse_loss},
    {"l1_loss", n_l1_loss},
    {"nll_loss", n_nll_loss},
    {"cross_entropy", n_cross_entropy},
    {NULL, NULL},
  };
  lgl_setfuncs(L, fns, 1);
}
