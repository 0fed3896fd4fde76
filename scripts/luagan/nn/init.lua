-- luagan.nn: modules (lg.nn). See module.lua for the Module base class.
--   local net = nn.Sequential{nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1)}:name("D")
--   local y = net(x)
-- Custom layers: local L = nn.Module:extend("L"); function L:init(...) end;
-- function L:forward(x) end; then L(...) builds one.
local nn = {}

local parts = {
  require "luagan.nn.module",
  require "luagan.nn.layers",
  require "luagan.nn.norm",
  (require "luagan.nn.gan"),   -- parenthesised: require also returns the file name
  (require "luagan.nn.sync_batchnorm"),
  (require "luagan.nn.extra"),   -- GroupNorm, PixelShuffle, Conv1d, AdaptiveAvgPool2d, PReLU
}
for _, p in ipairs(parts) do
  for k, v in pairs(p) do
    if k ~= "wrap_errors" then nn[k] = v end
    -- the library's classes name themselves "nn.X" in constructor errors
    if type(v) == "table" and rawget(v, "__name") and rawget(v, "super") then rawset(v, "_lib", true) end
  end
end

nn.init = require "luagan.init_weights"

-- nn.class("Name") == nn.Module:extend("Name"); nn.class("Name", Parent) subclasses Parent.
function nn.class(name, parent)
  return (parent or nn.Module):extend(name)
end

-- Errors inside modules are prefixed with the module path; set
-- nn.set_wrap_errors(false) to get the raw error with its traceback.
local module = parts[1]
function nn.set_wrap_errors(on) module.wrap_errors = on and true or false end

return nn
