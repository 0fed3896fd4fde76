-- luagan.nn.extra: GroupNorm, PixelShuffle, Conv1d, AdaptiveAvgPool2d, PReLU.
-- Each forward is an lg function of scripts/luagan/ops.lua built from
-- differentiable ops, so their gradients (to any order) come from those ops.
-- Constructors follow PyTorch's argument order and defaults; every options
-- table rejects unknown keys.
local lg = require "luagan"
local base = require "luagan.nn.module"
local init = require "luagan.init_weights"
local util = require "luagan.util"

local Module = base.Module
local M = {}

-- Constructor errors name the layer and, through self:check_opts and
-- self:check_size, the user's line.
local function fail(fmt, ...) error(string.format(fmt, ...), 0) end
local function default(v, d) if v == nil then return d end return v end

---------------------------------------------------------------------------
-- GroupNorm(groups, channels, {eps = 1e-5, affine = true}): input (N, C, *),
-- normalised over each group of C/groups channels and the other dims.
local GroupNorm = Module:extend("GroupNorm")
function GroupNorm:init(groups, channels, o)
  o = self:check_opts(o, {"eps", "affine"})
  self.num_groups = self:check_size("groups", groups)
  self.num_channels = self:check_size("channels", channels)
  if channels % groups ~= 0 then
    fail("nn.GroupNorm: %d groups do not divide %d channels", groups, channels)
  end
  self.eps = default(o.eps, 1e-5)
  self.affine = default(o.affine, true)
  if self.affine then
    self:add_param("weight", lg.ones(channels))
    self:add_param("bias", lg.zeros(channels))
  end
end
function GroupNorm:forward(x)
  if x:dim() < 2 or x:size(2) ~= self.num_channels then
    fail("expected input (N, %d, ...), got %s", self.num_channels, lg.shape_str(x))
  end
  return lg.group_norm(x, self.num_groups, self.weight, self.bias, {eps = self.eps})
end
function GroupNorm:extra_repr()
  return string.format("%d, %d%s", self.num_groups, self.num_channels, self.affine and "" or ", affine=false")
end
M.GroupNorm = GroupNorm

---------------------------------------------------------------------------
-- PixelShuffle(r): (N, C*r*r, H, W) -> (N, C, H*r, W*r)
local PixelShuffle = Module:extend("PixelShuffle")
function PixelShuffle:init(r) self.upscale_factor = self:check_size("upscale_factor", r) end
function PixelShuffle:forward(x) return lg.pixel_shuffle(x, self.upscale_factor) end
function PixelShuffle:extra_repr() return tostring(self.upscale_factor) end
M.PixelShuffle = PixelShuffle

---------------------------------------------------------------------------
-- Conv1d(in, out, k, {stride = 1, padding = 0, dilation = 1, bias = true}):
-- (N, in, L) -> (N, out, L'); PyTorch's default init.
local Conv1d = Module:extend("Conv1d")
function Conv1d:init(cin, cout, k, o)
  o = self:check_opts(o, {"stride", "padding", "dilation", "bias"})
  self.in_channels = self:check_size("in_channels", cin)
  self.out_channels = self:check_size("out_channels", cout)
  self.kernel_size = self:check_size("kernel_size", k)
  self.stride, self.padding, self.dilation = default(o.stride, 1), default(o.padding, 0), default(o.dilation, 1)
  self:add_param("weight", lg.zeros(cout, cin, k))
  if default(o.bias, true) then self:add_param("bias", lg.zeros(cout)) end
  self:reset_parameters()
end
function Conv1d:reset_parameters()
  init.kaiming_uniform(self.weight, {a = math.sqrt(5)})
  if self.bias then
    local bound = 1 / math.sqrt(init.fans(self.weight))
    init.uniform(self.bias, -bound, bound)
  end
end
function Conv1d:forward(x)
  if x:dim() ~= 3 or x:size(2) ~= self.in_channels then
    fail("expected input (N, %d, L), got %s", self.in_channels, lg.shape_str(x))
  end
  return lg.conv1d(x, self.weight, self.bias, {stride = self.stride, padding = self.padding, dilation = self.dilation})
end
function Conv1d:extra_repr()
  local s = string.format("%d, %d, %d", self.in_channels, self.out_channels, self.kernel_size)
  if self.stride ~= 1 then s = s .. ", stride=" .. self.stride end
  if self.padding ~= 0 then s = s .. ", padding=" .. self.padding end
  if self.dilation ~= 1 then s = s .. ", dilation=" .. self.dilation end
  if not self.bias then s = s .. ", bias=false" end
  return s
end
M.Conv1d = Conv1d

---------------------------------------------------------------------------
-- AdaptiveAvgPool2d(size): size an integer or {h, w} (nil keeps that dim);
-- (N, C, H, W) -> (N, C, h, w) with PyTorch's windows.
local AdaptiveAvgPool2d = Module:extend("AdaptiveAvgPool2d")
function AdaptiveAvgPool2d:init(size)
  if type(size) ~= "table" then self:check_size("output_size", size) end
  self.output_size = size
end
function AdaptiveAvgPool2d:forward(x) return lg.adaptive_avg_pool2d(x, self.output_size) end
function AdaptiveAvgPool2d:extra_repr()
  local s = self.output_size
  if type(s) ~= "table" then return tostring(s) end
  return tostring(s[1] or "nil") .. "x" .. tostring(s[2] or "nil")
end
M.AdaptiveAvgPool2d = AdaptiveAvgPool2d

---------------------------------------------------------------------------
-- PReLU([C] or {num_parameters = 1, init = 0.25}): max(0, x) + a * min(0, x) with a
-- learned slope a, one shared or one per channel (dim 2 of the input).
local PReLU = Module:extend("PReLU")
function PReLU:init(o)
  if type(o) == "number" then o = {num_parameters = o} end   -- PReLU(C) as in PyTorch
  o = self:check_opts(o, {"num_parameters", "init"})
  self.num_parameters = self:check_size("num_parameters", default(o.num_parameters, 1))
  self:add_param("weight", lg.full({self.num_parameters}, default(o.init, 0.25)))
end
function PReLU:forward(x) return lg.prelu(x, self.weight) end
function PReLU:extra_repr() return "num_parameters=" .. self.num_parameters end
M.PReLU = PReLU

return M
