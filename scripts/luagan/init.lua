-- luagan: the framework table.
--
--   local lg = require "luagan"
--   local x = lg.randn(64, 100, {requires_grad = true})
--
-- Everything of the C module luagan.core (tensors, ops, autograd) is
-- re-exported here; the Lua parts load on first use, so `require "luagan"`
-- stays cheap and a script only pays for what it touches:
--   lg.nn, lg.optim, lg.losses, lg.train, lg.data, lg.eval, lg.image, lg.init, ...
-- (each is the module "luagan.<name>"). Tensor methods live in lg.Tensor, so
-- Lua code may add its own: function lg.Tensor.double_it(t) return t * 2 end.
local core = require "luagan.core"

local lg = {}
for k, v in pairs(core) do lg[k] = v end
lg.core = core

-- Submodules loaded lazily by name; a missing module is nil, not an error,
-- unless the module exists and fails to load (then the error propagates).
local lazy = {init = "luagan.init_weights"}
setmetatable(lg, {__index = function(t, k)
  if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then return nil end
  local name = lazy[k] or ("luagan." .. k)
  if not package.searchpath(name, package.path) and not package.preload[name] then
    return nil
  end
  local m = require(name)
  rawset(t, k, m)
  return m
end})

-- type name of a value, seeing tensors: "tensor", or Lua's type()
function lg.type(v)
  if core.is_tensor(v) then return "tensor" end
  return type(v)
end

-- Shape of a tensor as text, "64x100" ("scalar" for 0-dim): x:shape() is a
-- list of sizes that prints that way (bindings/lgl_tensor.c).
lg.shape_str = require("luagan.util").shape_str

-- Tensor ops written in Lua with differentiable ops (docs/tensors.md "More
-- ops"), so their backward and double backward come from those ops.
require("luagan.ops").install(lg)

-- Same as lg.grad, returning the gradients as multiple values:
--   local gx, gw = lg.grads(loss, {x, w})
function lg.grads(outputs, inputs, opts)
  local g = core.grad(outputs, inputs, opts)
  return table.unpack(g, 1, g.n)
end

-- Finite-difference checks of gradients (scripts/luagan/gradcheck.lua).
function lg.gradcheck(fn, inputs, opts)
  return require("luagan.gradcheck").gradcheck(fn, inputs, opts)
end
function lg.gradgradcheck(fn, inputs, opts)
  return require("luagan.gradcheck").gradgradcheck(fn, inputs, opts)
end

-- Save and load a tensor, a module, an optimizer or a table of them
-- (scripts/luagan/io.lua; docs/training.md "Saving your own objects").
function lg.save(path, x) return require("luagan.io").save(path, x) end
function lg.load(path) return require("luagan.io").load(path) end

lg.version = core.version

return lg
