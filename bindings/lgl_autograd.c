/* lgl_autograd.c: the autograd surface: requires_grad_, backward, detach,
 * retain_grad, lg.grad, grad-mode scopes (no_grad/enable_grad) and custom
 * functions written in Lua (lg.Function{forward=, backward=}), with one
 * output or several.
 *
 * A custom function's node (lg_record_custom) keeps a ctx table and the Lua
 * backward in the registry. The engine calls back into Lua through the
 * lua_State of the backward()/grad() call that is running it (lgl_active_L).
 * When a node dies, possibly inside a __gc or after the state closed, its
 * registry refs are only queued (no Lua API call there) and released at the
 * next custom-function call or backward in that state. */
#include <stdlib.h>
#include <string.h>
#include "lgl.h"

#define LGL_FUNCTION "luagan.Function"
#define LGL_CTX "luagan.FunctionCtx"
#define LGL_STATE "luagan.state"

static _Thread_local lua_State *lgl_active_L;   /* the state running the engine */

/* ---- per-state bookkeeping of dead registry refs ---------------------------------- */
typedef struct lgl_state {
  int alive, refcount;                 /* refs: the state's sentinel + live contexts */
  int *dead, ndead, cap;               /* registry refs to release */
} lgl_state;

/* A function with several outputs records one node on a flat tensor that
 * concatenates them all; each output the caller sees is a reshaped slice of
 * it, so the engine (one gradient per node) sums the outputs' gradients into
 * that flat tensor and the backward splits it again (out_* below). */
typedef struct lgl_fnctx {
  lgl_state *st;
  int ctxref, bwref;
  int nout;                            /* outputs of forward; 1: no packing */
  int64_t *out_off;                    /* nout: offset of output k in the flat tensor */
  int *out_ndim;                       /* nout */
  int64_t (*out_shape)[LG_MAXDIM];     /* nout */
  char name[64];
} lgl_fnctx;

static void state_unref(lgl_state *st)
{
  if (--st->refcount == 0) { free(st->dead); free(st); }
}

static int state_gc(lua_State *L)       /* the state is closing */
{
  lgl_state **p = lua_touserdata(L, 1);
  if (*p) { (*p)->alive = 0; state_unref(*p); *p = NULL; }
  return 0;
}

static lgl_state *get_state(lua_State *L)
{
  lua_getfield(L, LUA_REGISTRYINDEX, LGL_STATE);
  lgl_state **p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return p ? *p : NULL;
}

static void sweep(lua_State *L)
{
  lgl_state *st = get_state(L);
  if (!st) return;
  while (st->ndead > 0) luaL_unref(L, LUA_REGISTRYINDEX, st->dead[--st->ndead]);
}

static void ctx_free(void *p)
{
  lgl_fnctx *c = p;
  lgl_state *st = c->st;
  if (st->alive && st->ndead + 2 > st->cap) {
    int cap = st->cap ? st->cap * 2 : 16;
    int *d = realloc(st->dead, sizeof *d * cap);
    if (d) { st->dead = d; st->cap = cap; }
  }
  if (st->alive && st->ndead + 2 <= st->cap) {   /* on OOM the refs just stay */
    st->dead[st->ndead++] = c->ctxref;
    st->dead[st->ndead++] = c->bwref;
  }
  state_unref(st);
  free(c->out_off); free(c->out_ndim); free(c->out_shape);
  free(c);
}

/* ---- tensor methods ---------------------------------------------------------------- */
static int a_requires_grad_(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1);
  int on = 1;
  if (!lua_isnoneornil(L, 2)) { luaL_checktype(L, 2, LUA_TBOOLEAN); on = lua_toboolean(L, 2); }
  if (lg_requires_grad_(t, on)) return lgl_error(L);
  lua_settop(L, 1);
  return 1;
}

static int a_detach(lua_State *L) { return lgl_push(L, lg_detach(lgl_check(L, 1))); }

static int a_retain_grad(lua_State *L)
{
  if (lg_retain_grad(lgl_check(L, 1))) return lgl_error(L);
  lua_settop(L, 1);
  return 1;
}

static const char *const backward_opts[] = {"retain_graph", "create_graph", "inputs", NULL};
static const char *const grad_opts[] = {"grad_outputs", "retain_graph", "create_graph",
                                        "allow_unused", NULL};

/* Run the engine with L as the state custom functions call back into. */
static int run_backward(lua_State *L, int nr, lg_tensor **roots, lg_tensor **grads, int ni,
                        lg_tensor **inputs, lg_tensor **result, int retain, int create, int unused)
{
  lua_State *prev = lgl_active_L;
  lgl_active_L = L;
  int rc = result ? lg_grad(nr, roots, grads, ni, inputs, result, retain, create, unused)
           : inputs ? lg_backward_to(nr, roots, grads, ni, inputs, retain, create)
           : lg_backward(nr, roots, grads, retain, create);
  lgl_active_L = prev;
  sweep(L);
  return rc;
}

static int tensor_list(lua_State *L, int idx, lg_tensor ***out, int n_expect, const char *who,
                       const char *what);

/* t:backward(grad?, {retain_graph=, create_graph=, inputs=}) */
static int a_backward(lua_State *L)
{
  lg_tensor *t = lgl_check(L, 1), *g = NULL;
  int optidx = 2;
  if (lgl_test(L, 2)) { g = lgl_check(L, 2); optidx = 3; }
  else if (lua_type(L, 2) == LUA_TNUMBER) { g = lgl_checkval(L, 2); optidx = 3; }
  else if (lua_isnil(L, 2) && !lua_isnone(L, 3)) optidx = 3;
  lgl_checkopts(L, optidx, backward_opts);
  int create = lgl_optbool(L, optidx, "create_graph", 0);
  int retain = lgl_optbool(L, optidx, "retain_graph", create);
  lg_tensor **ins = NULL;
  int ni = 0;
  if (lua_type(L, optidx) == LUA_TTABLE) {
    lua_getfield(L, optidx, "inputs");
    if (!lua_isnil(L, -1)) {
      ni = tensor_list(L, lua_gettop(L), &ins, -1, "backward", "inputs");
      if (ni == 0) return luaL_error(L, "backward: inputs is an empty list");
    }
  }
  if (run_backward(L, 1, &t, g ? &g : NULL, ni, ins, NULL, retain, create, 0)) return lgl_error(L);
  return 0;
}

/* A tensor or a list of tensors at idx -> array in GC-owned scratch left on
 * the stack; holes (nil) allowed only when holes_ok. */
static int tensor_list(lua_State *L, int idx, lg_tensor ***out, int n_expect, const char *who,
                       const char *what)
{
  lg_tensor *one = lgl_test(L, idx);
  int n = one ? 1 : -1;
  if (!one) {
    if (lua_type(L, idx) != LUA_TTABLE)
      return luaL_error(L, "%s: %s must be a tensor or a list of tensors, got %s", who, what,
                        lgl_what(L, idx));
    n = n_expect >= 0 ? n_expect : (int)lua_rawlen(L, idx);
  }
  lg_tensor **v = lua_newuserdatauv(L, sizeof *v * (n ? n : 1), 0);
  if (one) v[0] = one;
  for (int i = 0; !one && i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    v[i] = lgl_test(L, -1);
    if (!v[i] && !(n_expect >= 0 && lua_isnil(L, -1)))
      return luaL_error(L, "%s: %s[%d] is %s", who, what, i + 1, lgl_not_tensor(L, -1));
    lua_pop(L, 1);
  }
  *out = v;
  return n;
}

/* lg.grad(outputs, inputs, {grad_outputs=, create_graph=, retain_graph=, allow_unused=})
 * -> list of gradients, one per input (nil for unused inputs with allow_unused). */
static int a_grad(lua_State *L)
{
  lg_tensor **outs, **ins, **gouts = NULL;
  lgl_checkopts(L, 3, grad_opts);
  int create = lgl_optbool(L, 3, "create_graph", 0);
  int retain = lgl_optbool(L, 3, "retain_graph", create);
  int unused = lgl_optbool(L, 3, "allow_unused", 0);
  int no = tensor_list(L, 1, &outs, -1, "grad", "outputs");
  int ni = tensor_list(L, 2, &ins, -1, "grad", "inputs");
  if (no == 0) return luaL_error(L, "grad: no outputs given");
  if (ni == 0) return luaL_error(L, "grad: no inputs given");
  if (lua_type(L, 3) == LUA_TTABLE) {
    lua_getfield(L, 3, "grad_outputs");
    int gi = lua_gettop(L);
    if (!lua_isnil(L, gi)) {
      if (lgl_test(L, gi) && no != 1)
        return luaL_error(L, "grad: %d outputs but grad_outputs is a single tensor", no);
      tensor_list(L, gi, &gouts, no, "grad", "grad_outputs");
    }
  }
  lg_tensor **res = lua_newuserdatauv(L, sizeof *res * ni, 0);
  memset(res, 0, sizeof *res * ni);
  if (run_backward(L, no, outs, gouts, ni, ins, res, retain, create, unused)) return lgl_error(L);
  lua_createtable(L, ni, 1);
  int tbl = lua_gettop(L);
  for (int j = 0; j < ni; j++) {         /* hand every result to the GC before anything can fail */
    if (!res[j]) continue;
    lg_tensor *r = res[j];
    res[j] = NULL;
    lgl_push(L, r);
    lua_rawseti(L, tbl, j + 1);
  }
  lua_pushinteger(L, ni);
  lua_setfield(L, tbl, "n");             /* the length even when the last entries are nil */
  return 1;
}

/* ---- grad mode ---------------------------------------------------------------------- */
static int with_grad_mode(lua_State *L, int on)
{
  if (lua_type(L, 1) != LUA_TFUNCTION) {
    if (!luaL_getmetafield(L, 1, "__call")) return luaL_typeerror(L, 1, "function");
    lua_pop(L, 1);
  }
  int n = lua_gettop(L);
  int prev = lg_set_grad_enabled(on);
  int rc = lua_pcall(L, n - 1, LUA_MULTRET, 0);
  lg_set_grad_enabled(prev);             /* restored on errors too */
  if (rc != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int a_no_grad(lua_State *L) { return with_grad_mode(L, 0); }
static int a_enable_grad(lua_State *L) { return with_grad_mode(L, 1); }

static int a_is_grad_enabled(lua_State *L)
{
  lua_pushboolean(L, lg_grad_enabled());
  return 1;
}

static int a_set_grad_enabled(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, lg_set_grad_enabled(lua_toboolean(L, 1)));
  return 1;
}

/* ---- custom functions ------------------------------------------------------------------ */
/* Engine callback, in C: calls the Lua backward under lua_pcall so no Lua
 * error can unwind through the engine. */
/* Push the gradient of each output: g itself, or for a packed function the
 * slices of the flat gradient g (1-D) reshaped to each output's shape. The
 * slicing is recorded under create_graph, so double backward sees it. */
static int push_output_grads(lua_State *L, lgl_fnctx *c, lg_tensor *g)
{
  if (c->nout == 1) return lgl_push(L, lg_retain(g));
  for (int k = 0; k < c->nout; k++) {
    int64_t len = 1;
    for (int d = 0; d < c->out_ndim[k]; d++) len *= c->out_shape[k][d];
    lg_tensor *part = lg_narrow(g, 0, c->out_off[k], len);
    if (!part) return lgl_error(L);
    lg_tensor *gk = lg_reshape(part, c->out_ndim[k], c->out_shape[k]);
    lg_release(part);
    lgl_push(L, gk);
  }
  return c->nout;
}

/* The gradients backward returned (on the stack from 1 to nres) -> gin.
 * Every input that needs a gradient must get a value back: a backward that
 * forgot its return statement is an error, not an unused input; an explicit
 * nil for such an input means a zero gradient (as in PyTorch). */
static int take_input_grads(lua_State *L, lg_node *n, int nres, lg_tensor **gin)
{
  if (nres > n->n_in)
    return luaL_error(L, "returned %d gradients for %d inputs", nres, n->n_in);
  for (int i = nres; i < n->n_in; i++)
    if (n->needs[i]) {
      if (nres == 0)
        return luaL_error(L, "returned nothing; it must return one gradient per input "
                             "(%d here; nil for an input that needs none)", n->n_in);
      return luaL_error(L, "returned %d gradient%s for %d inputs, and input %d needs one "
                           "(return nil for an input that needs none)",
                        nres, nres == 1 ? "" : "s", n->n_in, i + 1);
    }
  for (int i = 0; i < nres; i++)        /* a wrong type is an error even where unused */
    if (!lua_isnil(L, i + 1) && !lgl_test(L, i + 1))
      return luaL_error(L, "gradient %d must be a tensor or nil, got %s", i + 1,
                        lgl_what(L, i + 1));
  for (int i = 0; i < nres; i++) {
    if (!n->needs[i]) continue;
    gin[i] = lua_isnil(L, i + 1) ? lg_zeros(n->in_ndim[i], n->in_shape[i])
                                 : lg_retain(lgl_test(L, i + 1));
    if (!gin[i]) return lgl_error(L);
  }
  return 0;
}

static int custom_bw_lua(lua_State *L)
{
  lg_node *n = lua_touserdata(L, 1);
  lg_tensor *g = lua_touserdata(L, 2);
  lg_tensor **gin = lua_touserdata(L, 3);
  lgl_fnctx *c = n->ctx;
  lua_settop(L, 0);
  luaL_checkstack(L, n->n_in + c->nout + 8, "too many inputs");
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->bwref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->ctxref);
  lua_createtable(L, n->n_in, 0);
  for (int i = 0; i < n->n_in; i++) {
    lua_pushboolean(L, n->needs[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "needs_input_grad");
  int ng = push_output_grads(L, c, g);
  lua_call(L, 1 + ng, LUA_MULTRET);
  return take_input_grads(L, n, lua_gettop(L), gin);
}

static int custom_bw(lg_node *n, lg_tensor *g, lg_tensor **gin)
{
  lgl_fnctx *c = n->ctx;
  lua_State *L = lgl_active_L;
  if (!L) return lg_error("%s: the backward of a Lua function ran outside a Lua call", c->name), -1;
  if (n->released)
    return lg_error("%s: backward through a graph that was already freed "
                    "(use retain_graph=true to run backward twice)", c->name), -1;
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 8)) return lg_error("%s: Lua stack overflow", c->name), -1;
  lua_pushcfunction(L, custom_bw_lua);
  lua_pushlightuserdata(L, n);
  lua_pushlightuserdata(L, g);
  lua_pushlightuserdata(L, gin);
  int rc = lua_pcall(L, 3, 0, 0);
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    lg_error("%s backward: %s", c->name, msg ? msg : "(error object is not a string)");
  }
  lua_settop(L, top);
  return rc == LUA_OK ? 0 : -1;
}

static int ctx_save_for_backward(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = lua_gettop(L) - 1;
  lua_createtable(L, n, 1);
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, i + 1);
    lua_rawseti(L, -2, i);
  }
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  lua_setfield(L, 1, "saved");
  return 0;
}

/* Record the shapes of the nout outputs at res0.. in c and return their
 * concatenation, flattened (detached: an output may be an input itself). */
static lg_tensor *pack_outputs(lua_State *L, lgl_fnctx *c, int res0, int nout)
{
  c->out_off = calloc(nout, sizeof *c->out_off);
  c->out_ndim = calloc(nout, sizeof *c->out_ndim);
  c->out_shape = calloc(nout, sizeof *c->out_shape);
  lg_tensor **flat = calloc(nout, sizeof *flat);
  lg_tensor *packed = NULL;
  if (!c->out_off || !c->out_ndim || !c->out_shape || !flat) {
    lg_error("%s: out of memory", c->name);
    goto done;
  }
  int64_t off = 0;
  for (int k = 0; k < nout; k++) {
    lg_tensor *t = lgl_test(L, res0 + k);
    int64_t len = lg_numel(t);
    c->out_off[k] = off;
    c->out_ndim[k] = t->ndim;
    memcpy(c->out_shape[k], t->shape, sizeof(int64_t) * t->ndim);
    off += len;
    lg_tensor *d = lg_detach(t);
    if (!d) goto done;
    flat[k] = lg_reshape(d, 1, &len);
    lg_release(d);
    if (!flat[k]) goto done;
  }
  c->nout = nout;
  packed = lg_cat(nout, flat, 0);
done:
  for (int k = 0; flat && k < nout; k++) lg_release(flat[k]);
  free(flat);
  return packed;
}

/* Push the outputs the caller sees: slices of the recorded flat tensor o,
 * reshaped (recorded ops, so gradients flow back into o's node). Steals o. */
static int unpack_outputs(lua_State *L, lgl_fnctx *c, lg_tensor *o)
{
  int nout = c->nout;
  lg_tensor **outs = calloc(nout, sizeof *outs);
  int ok = outs != NULL;
  if (!ok) lg_error("%s: out of memory", c->name);
  for (int k = 0; ok && k < nout; k++) {
    int64_t len = 1;
    for (int d = 0; d < c->out_ndim[k]; d++) len *= c->out_shape[k][d];
    lg_tensor *part = lg_narrow(o, 0, c->out_off[k], len);
    outs[k] = part ? lg_reshape(part, c->out_ndim[k], c->out_shape[k]) : NULL;
    lg_release(part);
    ok = outs[k] != NULL;
  }
  lg_release(o);                         /* the slices' nodes keep o's node alive */
  if (!ok) {
    for (int k = 0; outs && k < nout; k++) lg_release(outs[k]);
    free(outs);
    return lgl_error(L);
  }
  for (int k = 0; k < nout; k++) {       /* hand each to the GC before pushing the next */
    lg_tensor *t = outs[k];
    outs[k] = NULL;
    lgl_push(L, t);
  }
  free(outs);
  return nout;
}

/* F(...): forward under no_grad, then a node whose backward is the Lua one. */
static int fn_call(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  int nargs = lua_gettop(L) - 1;
  sweep(L);
  lua_getfield(L, 1, "name");
  const char *name = lua_isstring(L, -1) ? lua_tostring(L, -1) : "Function";
  char nm[64];
  strncpy(nm, name, sizeof nm - 1);
  nm[sizeof nm - 1] = 0;
  lua_pop(L, 1);
  luaL_checkstack(L, nargs + 8, "too many arguments");
  lua_newtable(L);                       /* ctx */
  luaL_setmetatable(L, LGL_CTX);
  int ctxidx = lua_gettop(L);
  lua_getfield(L, 1, "forward");
  lua_pushvalue(L, ctxidx);
  for (int i = 0; i < nargs; i++) lua_pushvalue(L, 2 + i);
  int prev = lg_set_grad_enabled(0);
  int rc = lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
  lg_set_grad_enabled(prev);
  if (rc != LUA_OK) return lua_error(L);
  int res0 = ctxidx + 1, nout = lua_gettop(L) - ctxidx;   /* outputs: res0 .. res0+nout-1 */
  if (nout == 0) return luaL_error(L, "%s: forward must return a tensor, got nothing", nm);
  for (int k = 0; k < nout; k++) {
    if (lgl_test(L, res0 + k)) continue;
    if (nout == 1)
      return luaL_error(L, "%s: forward must return a tensor, got %s", nm, lgl_what(L, res0));
    return luaL_error(L, "%s: forward must return tensors, output %d of %d is %s", nm, k + 1,
                      nout, lgl_what(L, res0 + k));
  }
  lg_tensor **in = lua_newuserdatauv(L, sizeof *in * (nargs ? nargs : 1), 0); /* stays on the stack */
  for (int i = 0; i < nargs; i++) in[i] = lgl_test(L, 2 + i);
  if (!lg_should_record(nargs, in)) {
    luaL_checkstack(L, nout, "too many outputs");
    for (int k = 0; k < nout; k++) lua_pushvalue(L, res0 + k);
    return nout;
  }
  luaL_checkstack(L, nout + 4, "too many outputs");
  lgl_state *st = get_state(L);
  lgl_fnctx *c = calloc(1, sizeof *c);
  if (!c) return luaL_error(L, "%s: out of memory", nm);
  memcpy(c->name, nm, sizeof nm);
  c->st = st;
  c->nout = 1;
  st->refcount++;
  lua_getfield(L, 1, "backward");
  c->bwref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, ctxidx);
  c->ctxref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* a fresh tensor either way: an output may be an input itself */
  lg_tensor *o = nout == 1 ? lg_detach(lgl_test(L, res0)) : pack_outputs(L, c, res0, nout);
  if (!o) { ctx_free(c); return lgl_error(L); }
  if (lg_record_custom(c->name, o, nargs, in, custom_bw, c, ctx_free)) {  /* frees c */
    lg_release(o);
    return lgl_error(L);
  }
  return nout == 1 ? lgl_push(L, o) : unpack_outputs(L, c, o);
}

static int fn_tostring(lua_State *L)
{
  lua_getfield(L, 1, "name");
  lua_pushfstring(L, "luagan.Function(%s)", lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
  return 1;
}

/* lg.Function{name=, forward=function(ctx, ...) end, backward=function(ctx, g) end} */
static int a_function(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "forward");
  if (lua_type(L, -1) != LUA_TFUNCTION)
    return luaL_argerror(L, 1, "Function: 'forward' must be a function");
  lua_getfield(L, 1, "backward");
  if (lua_type(L, -1) != LUA_TFUNCTION)
    return luaL_argerror(L, 1, "Function: 'backward' must be a function");
  lua_getfield(L, 1, "name");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
    return luaL_argerror(L, 1, "Function: 'name' must be a string");
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, -2); lua_setfield(L, -2, "name");
  lua_pushvalue(L, -3); lua_setfield(L, -2, "backward");
  lua_pushvalue(L, -4); lua_setfield(L, -2, "forward");
  luaL_setmetatable(L, LGL_FUNCTION);
  return 1;
}

static const luaL_Reg lgl_autograd_methods[] = {
  {"requires_grad_", a_requires_grad_}, {"detach", a_detach}, {"retain_grad", a_retain_grad},
  {"backward", a_backward},
  {NULL, NULL},
};

static const luaL_Reg lgl_autograd_fns[] = {
  {"grad", a_grad},                      /* not a method: t.grad is the gradient field */
  {"no_grad", a_no_grad}, {"enable_grad", a_enable_grad},
  {"is_grad_enabled", a_is_grad_enabled}, {"set_grad_enabled", a_set_grad_enabled},
  {"Function", a_function},
  {NULL, NULL},
};

void lgl_open_autograd(lua_State *L)
{
  lua_getfield(L, LUA_REGISTRYINDEX, LGL_STATE);
  if (lua_isnil(L, -1)) {
    lgl_state **p = lua_newuserdatauv(L, sizeof *p, 0);
    *p = NULL;                           /* safe for __gc before the malloc */
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lgl_state *st = calloc(1, sizeof *st);
    if (!st) luaL_error(L, "out of memory");
    st->alive = 1;
    st->refcount = 1;
    *p = st;
    lua_setfield(L, LUA_REGISTRYINDEX, LGL_STATE);
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LGL_FUNCTION)) {
    lua_pushcfunction(L, fn_call);
    lua_setfield(L, -2, "__call");
    lua_pushcfunction(L, fn_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, fn_call);
    lua_setfield(L, -2, "apply");        /* F:apply(x) == F(x) */
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LGL_CTX)) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, ctx_save_for_backward);
    lua_setfield(L, -2, "save_for_backward");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lgl_setfuncs(L, lgl_autograd_methods, 1);
  lgl_setfuncs(L, lgl_autograd_fns, 0);
}
