-- luagan.nn.norm: batch, layer, instance and virtual batch normalisation.
local lg = require "luagan"
local base = require "luagan.nn.module"

local util = require "luagan.util"

local Module = base.Module
local M = {}

-- eps and momentum of a normalisation layer (called from init).
local function eps_of(self, o)
  local r = util.check_num(self:_who(), "eps", o.eps, {lo = 0, open = true, default = 1e-5, level = 5})
  return r
end

-- A boolean option of module self (called from init: errors at the user's line).
local function flag(self, o, k, default)
  local r = util.check_bool(self:_who(), k, o[k], default, 5)
  return r
end

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

---------------------------------------------------------------------------
-- BatchNorm1d(n) for (N,C) or (N,C,L); BatchNorm2d(n) for (N,C,H,W).
-- opts: {momentum = 0.1, eps = 1e-5, affine = true, track_running_stats = true}.
-- Training mode normalises with the batch statistics and updates the running
-- ones (running = (1-momentum) running + momentum batch, unbiased variance);
-- eval mode uses the running statistics.

local function bn_class(name, dims, what)
  local C = Module:extend(name)
  function C:init(n, o)
    if type(o) == "number" then
      error(name .. "(n, opts): options go in a table, e.g. {momentum = 0.1, eps = 1e-5}" ..
            " (a bare number is ambiguous: PyTorch's second argument is eps)", 3)
    end
    n = self:check_size("num_features", n)
    o = self:check_opts(o, {"momentum", "eps", "affine", "track_running_stats"})
    self.num_features = n
    self.eps = eps_of(self, o)
    self.momentum = util.check_num(self:_who(), "momentum", o.momentum,
                                   {lo = 0, hi = 1, default = 0.1, level = 4})
    self.affine = flag(self, o, "affine", true)
    self.track_running_stats = flag(self, o, "track_running_stats", true)
    if self.affine then
      self:add_param("weight", lg.ones(n))
      self:add_param("bias", lg.zeros(n))
    end
    if self.track_running_stats then
      self:add_buffer("running_mean", lg.zeros(n))
      self:add_buffer("running_var", lg.ones(n))
    end
  end
  function C:forward(x)
    local nd = x:dim()
    local okdim = false
    for _, d in ipairs(dims) do if nd == d then okdim = true end end
    if not okdim then fail("expected %s input, got %d dims", what, nd) end
    local c = x:size(2)
    if c ~= self.num_features then
      fail("expected input with %d channels, got %d", self.num_features, c)
    end
    local use_batch = self.training or not self.track_running_stats
    return lg.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         {training = use_batch, momentum = self.momentum, eps = self.eps})
  end
  function C:extra_repr()
    local s = tostring(self.num_features)
    if self.eps ~= 1e-5 then s = s .. ", eps=" .. self.eps end
    if self.momentum ~= 0.1 then s = s .. ", momentum=" .. self.momentum end
    if not self.affine then s = s .. ", affine=false" end
    return s
  end
  function C:short() return tostring(self.num_features) end
  return C
end
M.BatchNorm1d = bn_class("BatchNorm1d", {2, 3}, "(N,C) or (N,C,L)")
M.BatchNorm2d = bn_class("BatchNorm2d", {4}, "(N,C,H,W)")

---------------------------------------------------------------------------
-- LayerNorm(shape, {eps = 1e-5, affine = true}): normalise over the last
-- #shape dims (shape a number or a table of sizes).

local LayerNorm = Module:extend("LayerNorm")
function LayerNorm:init(shape, o)
  if type(shape) == "number" then shape = {shape} end
  if type(shape) ~= "table" or #shape == 0 then
    error(self:_who() .. ": normalized_shape must be a size or a list of sizes", 3)
  end
  for i, d in ipairs(shape) do self:check_size("normalized_shape[" .. i .. "]", d) end
  o = self:check_opts(o, {"eps", "affine", "elementwise_affine"})
  self.normalized_shape = shape
  self.eps = eps_of(self, o)
  if flag(self, o, "affine", flag(self, o, "elementwise_affine", true)) then
    self:add_param("weight", lg.ones(table.unpack(shape)))
    self:add_param("bias", lg.zeros(table.unpack(shape)))
  end
end
function LayerNorm:forward(x)
  local s, ns = x:shape(), self.normalized_shape
  local ok = #s >= #ns
  for i = 1, #ns do if not ok or s[#s - #ns + i] ~= ns[i] then ok = false end end
  if not ok then
    fail("expected input ending in %s, got %s", table.concat(ns, "x"), base.shape_str(x))
  end
  return lg.layer_norm(x, #ns, self.weight, self.bias, {eps = self.eps})
end
function LayerNorm:extra_repr() return table.concat(self.normalized_shape, "x") end
M.LayerNorm = LayerNorm

---------------------------------------------------------------------------
-- InstanceNorm2d(n, {eps = 1e-5, affine = false}): per sample and channel,
-- over H and W (no running statistics, as PyTorch's default).

local InstanceNorm2d = Module:extend("InstanceNorm2d")
function InstanceNorm2d:init(n, o)
  self.num_features = self:check_size("num_features", n)
  o = self:check_opts(o, {"eps", "affine"})
  self.eps = eps_of(self, o)
  self.affine = flag(self, o, "affine", false)
  if self.affine then
    self:add_param("weight", lg.ones(n))
    self:add_param("bias", lg.zeros(n))
  end
end
function InstanceNorm2d:forward(x)
  if x:dim() ~= 4 then fail("expected (N,C,H,W) input, got %d dims", x:dim()) end
  if x:size(2) ~= self.num_features then
    fail("expected input with %d channels, got %d", self.num_features, x:size(2))
  end
  return lg.instance_norm(x, self.weight, self.bias, {eps = self.eps})
end
function InstanceNorm2d:extra_repr()
  return tostring(self.num_features) .. (self.affine and ", affine=true" or "")
end
InstanceNorm2d.short = function(self) return tostring(self.num_features) end
M.InstanceNorm2d = InstanceNorm2d

---------------------------------------------------------------------------
-- VirtualBatchNorm(n, {eps = 1e-5}) (Salimans et al. 2016), for (N,C) or
-- (N,C,H,W). A reference batch, fixed at the start of training, is
-- forwarded through the network first each step:
--     nn.VirtualBatchNorm.reference(net, x_ref)   -- stores every VBN's stats
--     local y = net(x)
-- Each example i is normalised with the statistics of the reference batch
-- plus itself, the example weighted 1/(N_ref+1):
--     mean_i = (1-w) mean_ref + w mean(x_i),  w = 1/(N_ref+1)
--     msq_i  = (1-w) msq_ref  + w mean(x_i^2)
--     y_i    = gamma (x_i - mean_i) / sqrt(msq_i - mean_i^2 + eps) + beta
-- (per channel; for images mean(x_i) is over the example's H and W). The
-- reference batch itself is normalised with its own statistics. Gradients
-- flow through the reference statistics, as in the original code.

local VirtualBatchNorm = Module:extend("VirtualBatchNorm")
function VirtualBatchNorm:init(n, o)
  self.num_features = self:check_size("num_features", n)
  o = self:check_opts(o, {"eps"})
  self.eps = eps_of(self, o)
  self:add_param("weight", lg.ones(n))
  self:add_param("bias", lg.zeros(n))
  rawset(self, "_ref", nil)
end

-- per-channel dims to average over, and the shape that broadcasts a (C) vector
local function vbn_geometry(self, x)
  local nd = x:dim()
  if nd ~= 2 and nd ~= 4 then fail("expected (N,C) or (N,C,H,W) input, got %d dims", nd) end
  if x:size(2) ~= self.num_features then
    fail("expected input with %d channels, got %d", self.num_features, x:size(2))
  end
  if nd == 2 then return {1}, nil, {1, self.num_features} end
  return {1, 3, 4}, {3, 4}, {1, self.num_features, 1, 1}
end

local function affine(self, xhat, bshape)
  return xhat * self.weight:reshape(table.unpack(bshape)) + self.bias:reshape(table.unpack(bshape))
end

function VirtualBatchNorm:forward(x)
  local all, spatial, bshape = vbn_geometry(self, x)
  if rawget(self, "_ref_mode") then
    -- reference pass: own statistics, kept for the following calls
    local mean = x:mean(all, {keepdim = true})
    local msq = (x * x):mean(all, {keepdim = true})
    rawset(self, "_ref", {mean = mean, msq = msq, n = x:size(1)})
    local var = msq - mean * mean
    return affine(self, (x - mean) / (var + self.eps):sqrt(), bshape)
  end
  local ref = rawget(self, "_ref")
  if not ref then
    fail("no reference statistics: call nn.VirtualBatchNorm.reference(net, x_ref) before net(x)")
  end
  local w = 1 / (ref.n + 1)
  local xm, xsq = x, x * x
  if spatial then
    xm = x:mean(spatial, {keepdim = true})
    xsq = xsq:mean(spatial, {keepdim = true})
  end
  local mean = ref.mean * (1 - w) + xm * w
  local msq = ref.msq * (1 - w) + xsq * w
  local var = msq - mean * mean
  return affine(self, (x - mean) / (var + self.eps):sqrt(), bshape)
end

-- Forward x_ref through net with every VirtualBatchNorm in reference mode;
-- they keep the statistics for the next net(x). Returns net(x_ref).
function VirtualBatchNorm.reference(net, x_ref)
  local vbns = {}
  for _, m in ipairs(net:modules()) do
    if m._is_vbn then
      vbns[#vbns + 1] = m
    end
  end
  for _, m in ipairs(vbns) do rawset(m, "_ref_mode", true) end
  local ok, y = pcall(net, x_ref)
  for _, m in ipairs(vbns) do rawset(m, "_ref_mode", nil) end
  if not ok then error(y, 0) end
  return y
end
VirtualBatchNorm._is_vbn = true

function VirtualBatchNorm:extra_repr() return tostring(self.num_features) end
M.VirtualBatchNorm = VirtualBatchNorm

return M
