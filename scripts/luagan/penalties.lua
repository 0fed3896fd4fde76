-- luagan.penalties (lg.penalties): regularisers of the discriminator / critic.
--
--   local gp = lg.penalties.gradient_penalty(D, x_real, x_fake:detach(), {lambda = 10})
--   local ld = loss.d(D(x_real), D(x_fake:detach())) + gp
--
-- The gradient penalties differentiate D's output with respect to its input
-- with lg.grad{create_graph = true}, so the penalty is itself differentiable
-- with respect to D's weights (a gradient of a gradient). D is anything
-- callable on a batch: an nn module or a function x -> logits. The input
-- gradient of sum(D(x)) is taken, which is the per-sample gradient when D
-- treats samples independently (no batch norm, no minibatch discrimination in
-- D, as WGAN-GP prescribes; with them it is what PyTorch code computes too).
--
-- Each returns the penalty (a 0-dim tensor, weight included) and a table of
-- statistics: grad_norm (mean per-sample input-gradient norm, a number) and,
-- for r1 / r2, logits (D's output on the inputs, reusable for the loss).
--
-- Per-sample gradient norms are sqrt(sum g^2 + 1e-12): the 1e-12 keeps the
-- derivative of the norm finite where a gradient vanishes (it moves the norm
-- by at most 1e-6).
local lg = require "luagan"
local optim = require "luagan.optim"
local util = require "luagan.util"
local check_opts, is_tensor, shape_str = util.check_opts, util.is_tensor, util.shape_str
local check_num = util.check_num

local P = {}

local NORM_EPS = 1e-12

local function check_callable(who, D)
  local mt = getmetatable(D)
  if type(D) ~= "function" and not (mt and mt.__call) then
    error(who .. ": D must be a module or a function x -> logits, got " .. type(D), 3)
  end
end

local function check_batch(who, what, x)
  if not is_tensor(x) then error(string.format("%s: %s must be a tensor, got %s", who, what, util.what(x)), 3) end
  if x:dim() < 1 or x:size(1) < 1 then
    error(string.format("%s: %s must be a batch (N, ...), got %s", who, what, shape_str(x)), 3)
  end
end

-- shape (N, 1, ..., 1) that broadcasts one number per sample against x
local function per_sample_shape(x)
  local s = {x:size(1)}
  for i = 2, x:dim() do s[i] = 1 end
  return s
end

-- A per-sample coefficient in [0,1): given (N or any shape of N elements) or drawn.
local function per_sample(who, what, x, given)
  local s = per_sample_shape(x)
  if given == nil then return lg.rand(table.unpack(s)) end
  if not is_tensor(given) or given:numel() ~= x:size(1) then
    error(string.format("%s: %s must be a tensor of %d elements (one per sample), got %s",
                        who, what, x:size(1), is_tensor(given) and shape_str(given) or type(given)), 3)
  end
  return given:detach():reshape(table.unpack(s))
end

-- Per-sample norms of d sum(out) / d x, differentiable (create_graph):
-- out = D(x), x (N, ...) a tensor that requires grad -> (N) norms.
function P.input_grad_norms(out, x)
  local g = lg.grad(out:sum(), x, {create_graph = true})[1]
  local n = x:size(1)
  local g2 = g:reshape(n, -1)
  return ((g2 * g2):sum(2) + NORM_EPS):sqrt()
end

-- Squared norms without the square root (R1 / R2 need no sqrt): (N).
local function input_grad_sq(out, x)
  local g = lg.grad(out:sum(), x, {create_graph = true})[1]
  local g2 = g:reshape(x:size(1), -1)
  return (g2 * g2):sum(2)
end

local function mean_item(t) return lg.no_grad(function() return t:mean():item() end) end

---------------------------------------------------------------------------
-- gradient_penalty(D, real, fake, {lambda = 10, target = 1, eps = nil})
-- WGAN-GP (Gulrajani et al. 2017):
--   lambda E (||grad_xhat D(xhat)||_2 - target)^2,  xhat = eps x + (1 - eps) x_fake,
-- eps ~ U[0,1] drawn per sample (or given: a tensor of N values). real and fake
-- have the same shape; fake should be detached (the penalty trains D only).
-- target 1 is WGAN-GP; other targets give the "gamma-centred" variants.
function P.gradient_penalty(D, real, fake, o)
  local who = "penalties.gradient_penalty"
  o = check_opts(who, o, {"lambda", "target", "eps"})
  check_callable(who, D)
  check_batch(who, "real", real)
  check_batch(who, "fake", fake)
  if shape_str(real) ~= shape_str(fake) then
    error(string.format("%s: real %s and fake %s must have the same shape", who,
                        shape_str(real), shape_str(fake)), 2)
  end
  local lambda = check_num(who, "lambda", o.lambda, {lo = 0, default = 10})
  local target = check_num(who, "target", o.target, {default = 1})
  local eps = per_sample(who, "eps", real, o.eps)
  local xhat = (real:detach() * eps + fake:detach() * (1 - eps)):requires_grad_()
  local norms = P.input_grad_norms(D(xhat), xhat)
  local d = norms - target
  return (d * d):mean() * lambda, {grad_norm = mean_item(norms)}
end
P.wgan_gp = P.gradient_penalty

---------------------------------------------------------------------------
-- dragan(D, real, {lambda = 10, k = 1, c = 0.5, alpha = nil, noise = nil})
-- DRAGAN (Kodali et al. 2017): a gradient penalty around the data.
--   x_p  = x + c * std(x) * u,     u ~ U[0,1) elementwise (noise), std over the batch
--   xhat = alpha x + (1 - alpha) x_p,  alpha ~ U[0,1] per sample
--   lambda E (||grad_xhat D(xhat)||_2 - k)^2
-- This is the perturbation of the authors' code (the paper writes
-- x + delta, delta ~ N(0, cI)); std is the unbiased std of all of x.
-- alpha (N values) and noise (x's shape) may be given, for reproducible tests.
function P.dragan(D, real, o)
  local who = "penalties.dragan"
  o = check_opts(who, o, {"lambda", "k", "c", "alpha", "noise"})
  check_callable(who, D)
  check_batch(who, "real", real)
  local lambda = check_num(who, "lambda", o.lambda, {lo = 0, default = 10})
  local k = check_num(who, "k", o.k, {default = 1})
  local c = check_num(who, "c", o.c, {lo = 0, default = 0.5})
  local x = real:detach()
  local u = o.noise
  if u == nil then
    u = lg.rand_like(x)
  elseif not is_tensor(u) or shape_str(u) ~= shape_str(x) then
    error(string.format("%s: noise must have real's shape %s, got %s", who, shape_str(x),
                        is_tensor(u) and shape_str(u) or type(u)), 2)
  end
  local alpha = per_sample(who, "alpha", x, o.alpha)
  local xhat = lg.no_grad(function()
    local xp = x + u:detach() * (c * x:std():item())
    return x * alpha + xp * (1 - alpha)
  end):requires_grad_()
  local norms = P.input_grad_norms(D(xhat), xhat)
  local d = norms - k
  return (d * d):mean() * lambda, {grad_norm = mean_item(norms)}
end

---------------------------------------------------------------------------
-- r1(D, real, {gamma = 10}) and r2(D, fake, {gamma = 10}) (Mescheder et al. 2018):
--   R1 = gamma/2 E_real ||grad_x D(x)||^2,  R2 = the same on (detached) fakes.
-- Returns the penalty and {grad_norm, logits = D(x)}: the logits are computed
-- on an input that requires grad and can be reused for the loss itself, which
-- saves a forward pass:
--   local r1, st = lg.penalties.r1(D, x)
--   local ld = loss.d(st.logits, D(fake)) + r1
local function zero_centred(who, D, x, o)
  o = check_opts(who, o, {"gamma"})
  check_callable(who, D)
  check_batch(who, "x", x)
  local gamma = check_num(who, "gamma", o.gamma, {lo = 0, default = 10})
  local xi = x:detach():requires_grad_()
  local out = D(xi)
  local sq = input_grad_sq(out, xi)
  local stats = {logits = out,
                 grad_norm = lg.no_grad(function() return sq:sqrt():mean():item() end)}
  return sq:mean() * (gamma / 2), stats
end

function P.r1(D, real, o) return zero_centred("penalties.r1", D, real, o) end
function P.r2(D, fake, o) return zero_centred("penalties.r2", D, fake, o) end

---------------------------------------------------------------------------
-- clip_weights(D, c): clamp every parameter of D (a module or a list of
-- tensors) to [-c, c], in place, after each critic step (WGAN, c = 0.01).
-- The same function as lg.optim.clip_weights.
function P.clip_weights(params, c)
  if type(c) ~= "number" or c <= 0 then
    error("penalties.clip_weights(D, c): c must be a positive number, got " .. tostring(c), 2)
  end
  return optim.clip_weights(params, c)
end

return P
