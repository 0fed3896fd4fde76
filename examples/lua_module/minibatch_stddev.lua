-- minibatch_stddev.lua: a custom GAN layer as a Lua module (path 1 of
-- docs/extending.md), with no parameters: ProGAN's minibatch standard
-- deviation (Karras et al. 2018, "Progressive Growing of GANs", section 3).
--
-- x (N,C,H,W) -> (N,C+1,H,W). The batch is split into groups of G samples
-- (sample n is in group n mod N/G, as in the reference implementation); the
-- extra channel of every sample holds, over its group, the standard deviation
-- of each feature averaged over C, H and W. A critic sees how varied the
-- batch is, which discourages mode collapse.
--
--   package.path = "examples/lua_module/?.lua;" .. package.path
--   local MinibatchStdDev = require "minibatch_stddev"
--   local layer = MinibatchStdDev{group_size = 4}
--   local y = layer(x)        -- x (16,128,4,4) -> (16,129,4,4)
local lg = require "luagan"
local nn = require "luagan.nn"

local MinibatchStdDev = nn.Module:extend("MinibatchStdDev")

-- MinibatchStdDev{group_size = 4, eps = 1e-8}
function MinibatchStdDev:init(o)
  -- the library's own checks: an unknown key or a bad size names the class
  o = self:check_opts(o, {"group_size", "eps"})
  self.group_size = self:check_size("group_size", o.group_size or 4)
  self.eps = o.eps or 1e-8
end

function MinibatchStdDev:forward(x)
  if x:dim() ~= 4 then error("expected (N,C,H,W) input", 0) end
  local N, C, H, W = x:size(1), x:size(2), x:size(3), x:size(4)
  local G = math.min(self.group_size, N)
  if N % G ~= 0 then
    error(string.format("batch size %d is not a multiple of the group size %d", N, G), 0)
  end
  local M = N // G
  -- (G, M, C, H, W): y[g][m] is sample (g-1)*M + m, so group m holds m, m+M, ...
  local y = x:reshape(G, M, C, H, W)
  local sd = (y:var(1, {correction = 0}) + self.eps):sqrt()   -- (M, C, H, W)
  local s = sd:mean({2, 3, 4})                                 -- (M)
  -- back to one map per sample: sample (g-1)*M + m gets s[m]
  local map = s:reshape(1, M, 1, 1, 1):expand(G, M, 1, H, W):reshape(N, 1, H, W)
  return lg.cat({x, map}, 2)
end

function MinibatchStdDev:extra_repr() return "group_size=" .. self.group_size end

return MinibatchStdDev
