/* lgl_optim.c: the fused optimizer updates (runtime/lg_optim.h) for
 * scripts/luagan/optim.lua, which keeps the state tensors and walks the
 * parameters. Each function updates p (and the state) in place and returns
 * nothing; shapes and contiguity are checked by the runtime. */
#include "lgl.h"
#include "lg_optim.h"

void lgl_open_optim(lua_State *L);

/* sgd_step(p, g, buf|nil, lr, momentum, dampening, weight_decay, nesterov, first_step)
 * p, g, buf: same shape, contiguous */
static int lgl_sgd_step(lua_State *L)
{
  lg_tensor *p = lgl_check(L, 1), *g = lgl_check(L, 2), *buf = lgl_opt(L, 3);
  float lr = (float)luaL_checknumber(L, 4);
  float momentum = (float)luaL_checknumber(L, 5);
  float dampening = (float)luaL_checknumber(L, 6);
  float wd = (float)luaL_checknumber(L, 7);
  int nesterov = lua_toboolean(L, 8), first = lua_toboolean(L, 9);
  if (lg_sgd_step(p, g, buf, lr, momentum, dampening, wd, nesterov, first)) return lgl_error(L);
  return 0;
}

/* adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step)
 * step: the 1-based count after this update (bias correction) */
static int lgl_adam_step(lua_State *L)
{
  lg_tensor *p = lgl_check(L, 1), *g = lgl_check(L, 2);
  lg_tensor *m = lgl_check(L, 3), *v = lgl_check(L, 4);
  float lr = (float)luaL_checknumber(L, 5);
  float beta1 = (float)luaL_checknumber(L, 6), beta2 = (float)luaL_checknumber(L, 7);
  float eps = (float)luaL_checknumber(L, 8), wd = (float)luaL_checknumber(L, 9);
  int decoupled = lua_toboolean(L, 10);
  lua_Integer step = luaL_checkinteger(L, 11);
  if (lg_adam_step(p, g, m, v, lr, beta1, beta2, eps, wd, decoupled, (int64_t)step))
    return lgl_error(L);
  return 0;
}

/* rmsprop_step(p, g, sq, buf|nil, lr, alpha, eps, weight_decay, momentum) */
static int lgl_rmsprop_step(lua_State *L)
{
  lg_tensor *p = lgl_check(L, 1), *g = lgl_check(L, 2), *sq = lgl_check(L, 3);
  lg_tensor *buf = lgl_opt(L, 4);
  float lr = (float)luaL_checknumber(L, 5), alpha = (float)luaL_checknumber(L, 6);
  float eps = (float)luaL_checknumber(L, 7), wd = (float)luaL_checknumber(L, 8);
  float momentum = (float)luaL_checknumber(L, 9);
  if (lg_rmsprop_step(p, g, sq, buf, lr, alpha, eps, wd, momentum)) return lgl_error(L);
  return 0;
}

void lgl_open_optim(lua_State *L)
{
  static const luaL_Reg fns[] = {
    {"sgd_step", lgl_sgd_step},
    {"adam_step", lgl_adam_step},
    {"rmsprop_step", lgl_rmsprop_step},
    {NULL, NULL}
  };
  lgl_setfuncs(L, fns, 0);
}
