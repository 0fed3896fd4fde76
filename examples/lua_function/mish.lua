-- mish.lua: a custom op as a Lua autograd function (path 2 of docs/extending.md).
--
-- Mish (Misra 2019): mish(x) = x tanh(softplus(x)), with
--   d mish / dx = t + x (1 - t^2) sigmoid(x),   t = tanh(softplus(x)).
--
-- lg.Function{forward=, backward=} runs forward under no_grad and records ONE
-- graph node whose backward is the Lua function below, instead of the four
-- nodes (softplus, tanh, mul, ...) the composed ops would record; it saves
-- only x. The backward is written with tensor ops, so when the engine runs it
-- with create_graph = true (lg.grad(..., {create_graph = true}), gradient
-- penalties) those ops record a graph too: double backward works.
--
--   package.path = "examples/lua_function/?.lua;" .. package.path
--   local mish = require "mish"
--   local y = mish.mish(x)            -- the function (also mish.Mish(x))
--   local net = nn.Sequential{nn.Linear(2, 64), mish.Layer(), nn.Linear(64, 1)}
local lg = require "luagan"
local nn = require "luagan.nn"

local M = {}

M.Mish = lg.Function{
  name = "Mish",
  forward = function(ctx, x)
    ctx:save_for_backward(x)           -- the input itself: its graph stays reachable
    return x * x:softplus():tanh()
  end,
  backward = function(ctx, g)
    local x = ctx.saved[1]
    local t = x:softplus():tanh()
    return g * (t + x * (1 - t * t) * x:sigmoid())
  end,
}

function M.mish(x) return M.Mish(x) end

-- The same as a module, for Sequential.
M.Layer = nn.Module:extend("Mish")
function M.Layer:forward(x) return M.Mish(x) end

return M
