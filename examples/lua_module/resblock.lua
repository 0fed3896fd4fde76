-- resblock.lua: a custom layer as a Lua module (path 1 of docs/extending.md).
--
-- The pre-activation residual block of the ResNet GANs (Gulrajani et al.
-- 2017, WGAN-GP; Miyato et al. 2018, SNGAN), written by subclassing
-- nn.Module and composing existing modules and ops. Autograd comes for
-- free, double backward included (gradient penalties through the block).
--
--   x -> [up] -> act -> conv3x3 -> act -> conv3x3 --+--> [down] -> y
--   x -> [up] -> [conv1x1 when channels or size change] --+
--
-- `up` is nearest upsampling by 2 (generator blocks), `down` average pooling
-- by 2 (critic blocks); pooling is linear, so pooling the sum is the same as
-- pooling both branches.
--
--   package.path = "examples/lua_module/?.lua;" .. package.path
--   local ResBlock = require "resblock"
--   local up = ResBlock(128, 64, {up = true})      -- (N,128,H,W) -> (N,64,2H,2W)
--   local down = ResBlock(64, 128, {down = true})  -- (N,64,H,W)  -> (N,128,H/2,W/2)
--   local y = down(up(x))
local lg = require "luagan"
local nn = require "luagan.nn"

local ResBlock = nn.Module:extend("ResBlock")

local function leaky(x) return x:leaky_relu(0.2) end

-- ResBlock(cin, cout, {up = false, down = false, hidden = cout,
--                      act = function(x) return x:leaky_relu(0.2) end})
function ResBlock:init(cin, cout, o)
  -- the library's own checks (docs/extending.md): an unknown key or a bad
  -- size is an error naming the class, the key or argument, and the caller's line
  o = self:check_opts(o, {"up", "down", "hidden", "act"})
  cin, cout = self:check_size("cin", cin), self:check_size("cout", cout)
  local hidden = self:check_size("hidden", o.hidden or cout)
  self.in_channels, self.out_channels = cin, cout
  self.up, self.down = o.up and true or false, o.down and true or false
  self.act = o.act or leaky            -- a function field: not a parameter or module
  -- Assigning modules to fields registers them (in this order) as children,
  -- so parameters(), state_dict(), train()/eval() and printing see them.
  self.conv1 = nn.Conv2d(cin, hidden, 3, {padding = 1})
  self.conv2 = nn.Conv2d(hidden, cout, 3, {padding = 1})
  if cin ~= cout or self.up or self.down then
    self.shortcut = nn.Conv2d(cin, cout, 1)
  end
end

function ResBlock:forward(x)
  if x:dim() ~= 4 or x:size(2) ~= self.in_channels then
    error(string.format("expected (N,%d,H,W) input", self.in_channels), 0)
  end
  if self.up then x = lg.upsample(x, 2) end
  local h = self.conv2(self.act(self.conv1(self.act(x))))
  local y = h + (self.shortcut and self.shortcut(x) or x)
  if self.down then y = lg.avg_pool2d(y, 2) end
  return y
end

-- What print(block) shows after the class name.
function ResBlock:extra_repr()
  local s = self.in_channels .. " -> " .. self.out_channels
  if self.up then s = s .. ", up" end
  if self.down then s = s .. ", down" end
  return s
end

return ResBlock
