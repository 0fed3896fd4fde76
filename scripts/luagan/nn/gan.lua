-- luagan.nn.gan: GAN-specific layers: SpectralNorm, MinibatchDiscrimination.
local lg = require "luagan"
local base = require "luagan.nn.module"
local init = require "luagan.init_weights"

local util = require "luagan.util"
local dist = require "luagan.dist"

local Module = base.Module
local M = {}

local function opt(o, k, default)
  if o == nil or o[k] == nil then return default end
  return o[k]
end

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

---------------------------------------------------------------------------
-- SpectralNorm(module, {n_power_iterations = 1, eps = 1e-12, name = "weight"})
-- (Miyato et al. 2018). Wraps a layer and replaces its weight W by W / sigma(W)
-- on every forward. sigma = u^T W v from power iteration on a persistent u
-- (buffer "u", saved with the state), W viewed as (C_out, rest): for
-- ConvTranspose2d, whose weight is (in, out, k, k), C_out is the second dim.
-- In training mode each forward runs n_power_iterations updates of u; in
-- eval mode u stays put. u and v are constants for the gradient, which
-- flows through sigma into W. The trained tensor is "weight_orig".

local SpectralNorm = Module:extend("SpectralNorm")

local function normalize(v, eps)
  return v / math.max(v:norm():item(), eps)
end

function SpectralNorm:init(module, o)
  if not base.is_module(module) then error("nn.SpectralNorm(module): expected a module", 3) end
  o = self:check_opts(o, {"n_power_iterations", "eps", "name"})
  local name = opt(o, "name", "weight")
  local w = rawget(module, name)
  if not base.is_tensor(w) then
    error("SpectralNorm: " .. module.__name .. " has no parameter '" .. name .. "'", 3)
  end
  local who = self:_who()
  self.n_power_iterations = util.check_num(who, "n_power_iterations", o.n_power_iterations,
                                           {int = true, lo = 0, default = 1, level = 4})
  self.eps = util.check_num(who, "eps", o.eps, {lo = 0, open = true, default = 1e-12, level = 4})
  self.wname = name
  self.out_dim = module.__name == "ConvTranspose2d" and 2 or 1
  module:remove(name)
  rawset(module, name, w)     -- outside forward the layer still sees the raw weight
  self:add_param("weight_orig", w)
  local u = lg.randn(w:size(self.out_dim))
  self:add_buffer("u", lg.no_grad(function() return normalize(u, self.eps) end))
  self:add_module("module", module)
end

-- W as a (C_out, rest) matrix (differentiable view of weight_orig)
function SpectralNorm:matrix()
  local w = self.weight_orig
  if self.out_dim ~= 1 then w = w:transpose(1, self.out_dim) end
  return w:reshape(w:size(1), -1)
end

-- Power iteration (training mode) and v; returns u, v as fresh constants.
function SpectralNorm:_uv(iterations)
  return lg.no_grad(function()
    local wm = self:matrix():detach()
    local wt = wm:t()
    local u = self.u
    local v
    for _ = 1, iterations do
      v = normalize(lg.matmul(wt, u), self.eps)
      u:copy_(normalize(lg.matmul(wm, v), self.eps))
    end
    if iterations == 0 then v = normalize(lg.matmul(wt, u), self.eps) end
    -- clones: a later forward updates self.u in place while this graph lives
    return u:clone(), v
  end)
end

-- sigma as a differentiable 0-dim tensor (u, v constant).
function SpectralNorm:_sigma(iterations)
  local u, v = self:_uv(iterations)
  return lg.matmul(u, lg.matmul(self:matrix(), v))
end

-- The current estimate of the largest singular value (a number; no update).
function SpectralNorm:sigma()
  return lg.no_grad(function() return self:_sigma(0):item() end)
end

function SpectralNorm:forward(...)
  local iters = self.training and self.n_power_iterations or 0
  local w_sn = self.weight_orig / self:_sigma(iters)
  local m, name = self.module, self.wname
  rawset(m, name, w_sn)
  local r = table.pack(pcall(m, ...))
  rawset(m, name, self.weight_orig)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

function SpectralNorm:extra_repr()
  return "n_power_iterations=" .. self.n_power_iterations
end
M.SpectralNorm = SpectralNorm

---------------------------------------------------------------------------
-- MinibatchDiscrimination(A, B, C, {std = 0.05, data_init = true})
-- (Salimans et al. 2016): for features f (N, A), M_i = f_i T with T (A, B*C)
-- viewed as (A, B, C) -> M_i (B, C); per kernel b a learned scale s_b and
-- bias b_b: d_b(i,j) = s_b ||M_i,b - M_j,b||_1, o_b(i) = sum_{j~=i}
-- exp(-d_b(i,j)) + b_b; output [f, o] (N, A+B). Real and fake batches go
-- through separately. T starts N(0, std).
-- data_init: the first forward in training mode sets s_b so that the mean
-- distance of a sample to its nearest neighbour in that batch is 2 and b_b
-- so that o_b has mean 0 over it, as the authors' code initialises the
-- layer (from a batch of real data: the first batch a GAN's D sees). Without
-- it, with T at N(0, 0.05) on 1024 unit-scale features the distances start
-- near 10, so o is ~0 for a varied batch and large for a similar one, and D
-- can reject a generator's first, similar-looking batches outright from
-- these B features alone: on one seed the generator never left its
-- starting checkerboard (docs/recipes.md, improved). The buffer
-- `initialised` records that it ran (saved with the state). Under lg.dist
-- every rank sees its own slice of the batch: the ranks' statistics are
-- averaged, so the replicas of D start (and stay) the same.

local MinibatchDiscrimination = Module:extend("MinibatchDiscrimination")
function MinibatchDiscrimination:init(a, b, c, o)
  a, b = self:check_size("in_features", a), self:check_size("num_kernels", b)
  c = self:check_size("kernel_dim", c)
  o = self:check_opts(o, {"std", "data_init"})
  self.in_features, self.num_kernels, self.kernel_dim = a, b, c
  self.data_init = util.check_bool(self:_who(), "data_init", o.data_init, true, 4)
  self:add_param("T", init.normal(lg.zeros(a, b * c), 0, opt(o, "std", 0.05)))
  self:add_param("log_scale", lg.zeros(b))
  self:add_param("bias", lg.zeros(b))
  self:add_buffer("initialised", lg.zeros(1))
end

-- distances (N, N, B) -> o (N, B) without the bias; drops c_b(i,i) = 1
local function closeness(d, log_scale)
  local b = d:size(3)
  return (-(d * log_scale:exp():reshape(1, 1, b))):exp():sum(2):reshape(d:size(1), b) - 1
end

-- The data-dependent initialisation of s_b and b_b from distances d (N, N, B)
function MinibatchDiscrimination:_data_init(d)
  lg.no_grad(function()
    local n, b = d:size(1), d:size(3)
    local far = lg.eye(n):reshape(n, n, 1) * 1e30              -- keeps j = i out of the min
    local nearest = (d * self.log_scale:exp():reshape(1, 1, b) + far):min(2)   -- (N, 1, B)
    -- the ranks' mean (lg.dist; the identity on one process)
    local half = dist.allreduce(nearest:reshape(n, b):mean(1) * 0.5, {op = "mean"})   -- (B)
    self.log_scale:copy_(self.log_scale - half:clamp(1e-12, math.huge):log())
    self.bias:copy_(-dist.allreduce(closeness(d, self.log_scale):mean(1), {op = "mean"}))
    self.initialised:fill_(1)
  end)
end

function MinibatchDiscrimination:forward(x)
  if x:dim() ~= 2 or x:size(2) ~= self.in_features then
    fail("expected input (N, %d), got %s", self.in_features, base.shape_str(x))
  end
  local n, b, c = x:size(1), self.num_kernels, self.kernel_dim
  local m = lg.matmul(x, self.T)                               -- (N, B*C)
  local d = (m:reshape(n, 1, b, c) - m:reshape(1, n, b, c)):abs():sum(4)  -- (N, N, B)
  if self.data_init and self.training and n >= 2 and self.initialised:item() == 0 then
    self:_data_init(d:detach())
  end
  return lg.cat({x, closeness(d, self.log_scale) + self.bias:reshape(1, b)}, 2)
end

function MinibatchDiscrimination:extra_repr()
  return string.format("%d, B=%d, C=%d", self.in_features, self.num_kernels, self.kernel_dim)
end
function MinibatchDiscrimination:short()
  return self.in_features .. "->" .. (self.in_features + self.num_kernels)
end
M.MinibatchDiscrimination = MinibatchDiscrimination

return M
