/* lgl.h: helpers shared by every binding file of the Lua module luagan.core.
 *
 * A tensor is a full userdata holding one lg_tensor pointer (a reference the
 * userdata owns), NULL after __close. Every binding file has an
 * lgl_open_<area>(L) that is called with the module table on top of the stack
 * and adds its functions with lgl_setfuncs (leaving the stack balanced).
 *
 * Dims in Lua are 1-based (negative counts from the end, -1 = last); the
 * helpers below turn them into the runtime's 0-based dims and raise argument
 * errors that speak 1-based. */
#ifndef LGL_H
#define LGL_H

#include <lua.h>
#include <lauxlib.h>
#include "lg_ops.h"

#define LGL_TENSOR "luagan.Tensor"     /* metatable name in the registry */

/* ---- tensors on the Lua stack ------------------------------------------ */
/* The tensor at idx, or an argument error "tensor expected, got <type>". */
lg_tensor *lgl_check(lua_State *L, int idx);
/* What the value at idx is, for messages: "tensor", "closed tensor" (a
 * tensor used after __close, never "userdata") or its Lua type name. */
const char *lgl_what(lua_State *L, int idx);
/* "a string, not a tensor" or "a closed tensor (used after __close)": for
 * "element 2 of the list is %s" (may push a string). */
const char *lgl_not_tensor(lua_State *L, int idx);
/* NULL for nil/none, else as lgl_check. */
lg_tensor *lgl_opt(lua_State *L, int idx);
/* The tensor at idx, or NULL if the value is not a live tensor (no error). */
lg_tensor *lgl_test(lua_State *L, int idx);
/* A tensor, or a number which is replaced in place on the stack by a 0-dim
 * tensor (so the Lua GC owns it); else "number or tensor expected". */
lg_tensor *lgl_checkval(lua_State *L, int idx);
/* Push t as a new userdata, stealing the reference. t == NULL raises the
 * runtime's last error (so `return lgl_push(L, lg_op(...));` is a whole
 * wrapper). Reports fresh storage bytes to the collector. Returns 1. */
int lgl_push(lua_State *L, lg_tensor *t);
/* Raise lg_last_error() as a Lua error. Never returns. */
int lgl_error(lua_State *L);

/* ---- dims and shapes ----------------------------------------------------- */
/* Convert the 1-based (or negative) Lua dim at idx to a 0-based dim of a
 * tensor with ndim dims; an argument error when out of range. */
int lgl_checkdim(lua_State *L, int idx, int ndim);
/* As lgl_checkdim, def0 (0-based) when the argument is nil/none. */
int lgl_optdim(lua_State *L, int idx, int ndim, int def0);
/* Convert a Lua dim value d (not on the stack; arg is the argument number
 * for the message) to 0-based. */
int lgl_todim(lua_State *L, lua_Integer d, int ndim, int arg);
/* Read a shape starting at stack index idx: either a table {2,3} or integer
 * varargs 2, 3 (stopping at the first non-number). Returns ndim and sets
 * *next to the index after the shape (where an options table may follow).
 * Sizes are not range-checked beyond fitting int64 (ops give the errors);
 * allow_neg1 permits -1 entries (view/reshape/expand). */
int lgl_shape(lua_State *L, int idx, int64_t shape[LG_MAXDIM], int *next, int allow_neg1);

/* ---- options tables ---------------------------------------------------- */
/* Error unless the value at idx is nil/none or a table whose keys are all in
 * allowed (a NULL-terminated list): "unknown option 'foo' (expected: a, b)". */
void lgl_checkopts(lua_State *L, int idx, const char *const *allowed);
/* The integer argument at idx, in [lo, hi]: else an argument error naming
 * it, "padding must be an integer in [0, 2^20], got 4294967297" (a float
 * with no exact integer value, or one out of int64 range, is an error, never
 * cast). lgl_checkint_at checks the value at stack index vidx and blames
 * argument arg (for values taken out of a table). */
lua_Integer lgl_checkint(lua_State *L, int idx, const char *name, lua_Integer lo, lua_Integer hi);
lua_Integer lgl_checkint_at(lua_State *L, int vidx, int arg, const char *name, lua_Integer lo,
                            lua_Integer hi);
/* Largest stride, padding, dilation, kernel size or scale the nn ops take. */
#define LGL_MAXGEOM ((lua_Integer)1 << 20)
/* Field of the options table at idx (nil/none allowed) with a default;
 * type errors name the option. */
int lgl_optbool(lua_State *L, int idx, const char *key, int def);
lua_Number lgl_optnum(lua_State *L, int idx, const char *key, lua_Number def);
/* Integer field of the options table at idx in [lo, hi], def when absent. */
lua_Integer lgl_optint(lua_State *L, int idx, const char *key, lua_Integer def, lua_Integer lo,
                       lua_Integer hi);

/* ---- registration -------------------------------------------------------- */
/* Set fns into the module table on top of the stack; with as_methods also
 * into the tensor method table (so both lg.op(t, ...) and t:op(...) work). */
void lgl_setfuncs(lua_State *L, const luaL_Reg *fns, int as_methods);

/* Openers, called in order by luaopen_luagan_core (module table on top). */
void lgl_open_tensor(lua_State *L);    /* lgl_tensor.c: the userdata and its metatable */
void lgl_open_create(lua_State *L);    /* lgl_create.c: creation, rng, threads, memory */
void lgl_open_ops(lua_State *L);       /* lgl_ops.c: views, pointwise, reductions, matmul */
void lgl_open_autograd(lua_State *L);  /* lgl_autograd.c: backward, grad, Function */
void lgl_open_nn(lua_State *L);        /* lgl_nn.c: neural-network ops */
void lgl_open_optim(lua_State *L);     /* lgl_optim.c: fused optimizer steps */
void lgl_open_io(lua_State *L);        /* lgl_io.c: datasets, checkpoints, images */
void lgl_open_linalg(lua_State *L);    /* lgl_linalg.c: evaluation kernels (the table linalg) */
void lgl_open_fs(lua_State *L);        /* lgl_fs.c: listdir, isdir, mkdir_p, ... (no shell) */
void lgl_open_sys(lua_State *L);       /* lgl_sys.c: SIGINT/SIGTERM flag, isatty, getpid */
void lgl_open_index(lua_State *L);     /* lgl_index.c: gather, scatter_add, sort, topk, cumsum, erf, ... */
void lgl_open_bytes(lua_State *L);     /* lgl_bytes.c: data sets kept as bytes, converted per batch */

int luaopen_luagan_core(lua_State *L);

#endif
