-- luagan.tricks (lg.tricks): the training tricks of Salimans et al. 2016,
-- Arjovsky & Bottou 2017 and friends, as small helpers a training loop calls.
--
--   one-sided label smoothing   tricks.one_sided_label_smoothing(0.9) (= losses.nsgan{real_label = 0.9})
--   feature matching            tricks.forward_to(D, layer, x), tricks.features(D, x, names),
--                               tricks.feature_matching(f_real, f_fake)
--   historical averaging        tricks.HistoricalAverage(D, {lambda = ...})
--   instance noise              tricks.InstanceNoise{std = 0.1, anneal_steps = 5000}
--   k D steps per G step        tricks.Schedule{d_steps = 5, burst = true}
--   TTUR                        tricks.ttur(G, D, {g_lr = 1e-4, d_lr = 4e-4})
--   EMA of G for sampling       tricks.EMA (= lg.optim.EMA)
--
-- The layers of the same papers live in lg.nn: nn.MinibatchDiscrimination,
-- nn.VirtualBatchNorm, nn.SpectralNorm. Learning-rate decay is lg.optim's
-- (LinearDecay, StepLR, CosineAnnealing). docs/losses.md shows each in use.
local lg = require "luagan"
local optim = require "luagan.optim"
local losses = require "luagan.losses"
local util = require "luagan.util"
local check_opts, is_tensor, shape_str = util.check_opts, util.is_tensor, util.shape_str

local tricks = {}

local function is_module(v)
  return type(v) == "table" and getmetatable(v) ~= nil and rawget(v, "_order") ~= nil
end

---------------------------------------------------------------------------
-- one-sided label smoothing (Salimans et al. 2016): the real target of the
-- discriminator's cross-entropy becomes alpha (0.9), the fake target stays 0:
--   D: E [alpha sp(-l_real) + (1 - alpha) sp(l_real)] + E sp(l_fake).
-- Returns losses.nsgan{real_label = alpha} (or mmgan with {loss = "mmgan"}).
function tricks.one_sided_label_smoothing(alpha, o)
  local who = "tricks.one_sided_label_smoothing"
  o = check_opts(who, o, {"loss"})
  if type(alpha) ~= "number" or alpha <= 0 or alpha > 1 then
    error(who .. "(alpha): alpha must be in (0, 1], got " .. tostring(alpha), 2)
  end
  local name = o.loss or "nsgan"
  if name ~= "nsgan" and name ~= "mmgan" then
    error(who .. ": loss must be \"nsgan\" or \"mmgan\", got " .. tostring(name), 2)
  end
  return losses[name]{real_label = alpha}
end

---------------------------------------------------------------------------
-- intermediate features

-- forward_to(seq, layer, x): run a Sequential's children 1..k and return the
-- output of child k. layer: its index (1-based; negative counts from the end,
-- -2 = the one before the last), its name ("3"), or the child module itself.
function tricks.forward_to(seq, layer, x)
  local who = "tricks.forward_to"
  if not is_module(seq) or rawget(seq, "_n") == nil then
    error(who .. "(seq, layer, x): seq must be an nn.Sequential (for other modules use "
          .. "tricks.features(net, x, {names}))", 2)
  end
  local n = #seq
  local k
  if math.type(layer) == "integer" then
    k = layer < 0 and n + 1 + layer or layer
  elseif type(layer) == "string" then
    k = math.tointeger(tonumber(layer))
  elseif is_module(layer) then
    for i = 1, n do if seq[i] == layer then k = i end end
  end
  if not k or k < 1 or k > n then
    error(string.format("%s: layer %s is not a child of this Sequential (%d children)", who,
                        tostring(layer), n), 2)
  end
  for i = 1, k do x = seq[i](x) end
  return x
end

-- Find a submodule by its name in net:named_modules() ("3", "trunk.2").
local function find_module(net, name)
  for n, m in net:named_modules() do
    if n == name then return m end
  end
  local names = {}
  for n in net:named_modules() do if n ~= "" then names[#names + 1] = n end end
  error(string.format("tricks.features: no submodule named '%s' (have: %s)", tostring(name),
                      table.concat(names, ", ")), 3)
end

-- features(net, x, names): run the whole network once and also return the
-- outputs of the named submodules (names as net:named_modules() gives them,
-- e.g. "3" for the third child of a Sequential, "trunk.2" in a tree):
--   local logits, f = tricks.features(D, x, {"4"})   -- f["4"] is D[4]'s output
-- A single name may be given as a string. Works for any module, whatever its
-- forward does; a submodule called more than once reports its last output.
function tricks.features(net, x, names)
  if not is_module(net) then error("tricks.features(net, x, names): net must be a module", 2) end
  if type(names) == "string" then names = {names} end
  if type(names) ~= "table" or #names == 0 then
    error("tricks.features(net, x, names): names must be a name or a list of names", 2)
  end
  local feats, saved, mods = {}, {}, {}
  for i, name in ipairs(names) do mods[i] = find_module(net, name) end
  for _, m in ipairs(mods) do
    if saved[m] == nil then
      local own, f = rawget(m, "forward"), m.forward
      saved[m] = {own}
      rawset(m, "forward", function(self, ...)
        local y = f(self, ...)
        for j, mj in ipairs(mods) do if mj == m then feats[names[j]] = y end end
        return y
      end)
    end
  end
  local r = table.pack(pcall(net, x))
  for m, s in pairs(saved) do rawset(m, "forward", s[1]) end
  if not r[1] then error(r[2], 0) end
  return r[2], feats
end

-- feature_matching(f_real, f_fake, {reduction = "sum"}) (Salimans et al. 2016):
--   || E_batch f(x) - E_batch f(G(z)) ||^2
-- over the features of an intermediate D layer, (N, ...) each; the real side
-- is detached (only G trains on this). reduction "mean" divides by the number
-- of features (what the authors' code computes); "sum" is the formula.
function tricks.feature_matching(f_real, f_fake, o)
  local who = "tricks.feature_matching"
  o = check_opts(who, o, {"reduction"})
  if not is_tensor(f_real) or not is_tensor(f_fake) then
    error(who .. "(f_real, f_fake): both must be tensors", 2)
  end
  local sr, sf = f_real:shape(), f_fake:shape()
  table.remove(sr, 1); table.remove(sf, 1)
  if table.concat(sr, "x") ~= table.concat(sf, "x") then
    error(string.format("%s: real features %s and fake features %s differ beyond the batch dim",
                        who, shape_str(f_real), shape_str(f_fake)), 2)
  end
  local d = f_real:detach():mean(1) - f_fake:mean(1)
  local red = o.reduction or "sum"
  if red == "sum" then return (d * d):sum() end
  if red == "mean" then return (d * d):mean() end
  error(who .. ": reduction must be \"sum\" or \"mean\", got " .. tostring(red), 2)
end

---------------------------------------------------------------------------
-- HistoricalAverage(params, {lambda = 1}) (Salimans et al. 2016): adds
--   lambda sum_p || p - mean of p's past values ||^2
-- to a player's cost. params: a module or a list of tensors. The average
-- starts at the values at construction and takes in the values after each
-- update() (call it after the optimizer step), so when penalty() is called it
-- is (1/t) sum_{i<=t} theta_i over every value the parameters have had,
-- the current one included, and a constant for the gradient.
--   local ha = lg.tricks.HistoricalAverage(D, {lambda = 1e-3})
--   ld = ld + ha:penalty(); ...; optD:step(); ha:update()
local HA = {}
HA.__index = HA

function tricks.HistoricalAverage(params, o)
  local who = "tricks.HistoricalAverage"
  o = check_opts(who, o, {"lambda"})
  if is_module(params) then params = params:parameters() end
  if type(params) ~= "table" or #params == 0 then
    error(who .. "(params): expected a module or a non-empty list of tensors", 2)
  end
  for i, p in ipairs(params) do
    if not is_tensor(p) then error(string.format("%s: parameter %d is %s", who, i, util.not_tensor(p)), 2) end
  end
  local avg = {}
  lg.no_grad(function()
    for i, p in ipairs(params) do avg[i] = p:detach():clone() end
  end)
  local lambda = util.check_num(who, "lambda", o.lambda, {lo = 0, default = 1})
  return setmetatable({params = params, avg = avg, count = 1, lambda = lambda}, HA)
end

function HA:penalty()
  local total
  for i, p in ipairs(self.params) do
    local d = p - self.avg[i]
    local s = (d * d):sum()
    total = total and total + s or s
  end
  return total * self.lambda
end

function HA:update()
  local n = self.count
  lg.no_grad(function()
    -- avg <- (n avg + p) / (n + 1), the running mean of n + 1 values
    for i, p in ipairs(self.params) do self.avg[i]:mul_(n / (n + 1)):add_(p:detach(), 1 / (n + 1)) end
  end)
  self.count = n + 1
end

function HA:state_dict()
  local sd = {count = self.count}
  for i, a in ipairs(self.avg) do sd["avg." .. i] = a end
  return sd
end

function HA:load_state_dict(sd)
  if type(sd) ~= "table" then
    error("tricks.HistoricalAverage:load_state_dict: expected the table of a state_dict(), got " ..
          util.what(sd), 2)
  end
  for i, a in ipairs(self.avg) do
    local s = sd["avg." .. i]
    if not is_tensor(s) or shape_str(s) ~= shape_str(a) then
      error(string.format("HistoricalAverage:load_state_dict: avg.%d missing or of the wrong shape", i), 2)
    end
  end
  lg.no_grad(function() for i, a in ipairs(self.avg) do a:copy_(sd["avg." .. i]) end end)
  self.count = tonumber(sd.count) or self.count
end

---------------------------------------------------------------------------
-- InstanceNoise{std = 0.1, anneal_steps = 10000, final = 0} (Sonderby et al.
-- 2017; Arjovsky & Bottou 2017): add N(0, sigma_t^2) to *both* the real and
-- the fake inputs of D, sigma_t going linearly from std (t = 0) to final (at
-- t = anneal_steps), constant after.
--   local noise = lg.tricks.InstanceNoise{std = 0.1, anneal_steps = 2000}
--   local ld = loss.d(D(noise:apply(x, step)), D(noise:apply(fake, step)))
local Noise = {}
Noise.__index = Noise

function tricks.InstanceNoise(o)
  local who = "tricks.InstanceNoise"
  o = check_opts(who, o, {"std", "anneal_steps", "final"})
  local std = util.check_num(who, "std", o.std, {lo = 0, default = 0.1})
  local steps = util.check_num(who, "anneal_steps", o.anneal_steps, {lo = 0, open = true, default = 10000})
  local final = util.check_num(who, "final", o.final, {lo = 0, default = 0})
  return setmetatable({std = std, anneal_steps = steps, final = final}, Noise)
end

function Noise:sigma(t)
  t = t or 0
  if t >= self.anneal_steps then return self.final end
  if t <= 0 then return self.std end
  return self.std + (self.final - self.std) * (t / self.anneal_steps)
end

-- x plus noise of the std at step t (x itself when that std is 0); the
-- noise is a constant, so gradients flow to x unchanged.
function Noise:apply(x, t)
  if not is_tensor(x) then error("InstanceNoise:apply(x, t): x must be a tensor", 2) end
  local s = self:sigma(t)
  if s == 0 then return x end
  return x + lg.randn_like(x) * s
end

---------------------------------------------------------------------------
-- Schedule{d_steps = 1, g_steps = 1, burst = nil}: alternate D and G updates.
-- d_steps = k is Goodfellow et al.'s Algorithm 1 (k D steps per G step),
-- n_critic of the WGANs (5). burst = true adds the WGAN reference code's
-- extra critic training: 100 critic steps before each of the first 25 G
-- steps and before every 500th; or give {n = 100, first = 25, every = 500}.
--   local sched = lg.tricks.Schedule{d_steps = 5}
--   while sched.g_iter < total do sched:round(d_step, g_step) end
-- or, one batch per call (for a loop over a DataLoader):
--   for x in loader:epoch() do
--     if sched:next() == "d" then d_step(x) else g_step(x) end
--   end
local Schedule = {}
Schedule.__index = Schedule

function tricks.Schedule(o)
  local who = "tricks.Schedule"
  o = check_opts(who, o, {"d_steps", "g_steps", "burst"})
  local d, g = o.d_steps or 1, o.g_steps or 1
  if math.type(d) ~= "integer" or d < 1 then error(who .. ": d_steps must be an integer >= 1", 2) end
  if math.type(g) ~= "integer" or g < 1 then error(who .. ": g_steps must be an integer >= 1", 2) end
  local burst = o.burst
  if burst == true then burst = {n = 100, first = 25, every = 500} end
  if burst ~= nil and burst ~= false then
    if type(burst) ~= "table" then error(who .. ": burst must be true or {n, first, every}", 2) end
    burst = {n = burst.n or 100, first = burst.first or 25, every = burst.every or 500}
  else
    burst = nil
  end
  return setmetatable({d = d, g = g, burst = burst, g_iter = 0, pos = 0}, Schedule)
end

-- Number of D steps before G round number i (1-based; default the next one).
function Schedule:d_steps(i)
  i = i or self.g_iter + 1
  local b = self.burst
  if b and (i <= b.first or (b.every > 0 and i % b.every == 0)) then return b.n end
  return self.d
end

-- "d" or "g": what to do with the next batch.
function Schedule:next()
  local nd = self:d_steps()
  self.pos = self.pos + 1
  if self.pos <= nd then return "d" end
  if self.pos >= nd + self.g then
    self.pos = 0
    self.g_iter = self.g_iter + 1
  end
  return "g"
end

-- One round: d_fn() d_steps times, then g_fn() g_steps times.
function Schedule:round(d_fn, g_fn)
  for _ = 1, self:d_steps() do d_fn() end
  for _ = 1, self.g do g_fn() end
  self.g_iter = self.g_iter + 1
  self.pos = 0
end

function Schedule:state_dict() return {g_iter = self.g_iter, pos = self.pos} end
function Schedule:load_state_dict(sd)
  self.g_iter = tonumber(sd.g_iter) or 0
  self.pos = tonumber(sd.pos) or 0
end

---------------------------------------------------------------------------
-- TTUR (Heusel et al. 2017): two time-scale update rule = separate optimisers
-- with different learning rates for G and D. Nothing more than
--   optim.Adam(G, {lr = g_lr, betas = betas}), optim.Adam(D, {lr = d_lr, betas = betas});
-- defaults g_lr = 1e-4, d_lr = 4e-4, betas = {0, 0.9} (the TTUR/SAGAN settings).
function tricks.ttur(G, D, o)
  o = check_opts("tricks.ttur", o, {"g_lr", "d_lr", "betas"})
  local betas = o.betas or {0, 0.9}
  return optim.Adam(G, {lr = o.g_lr or 1e-4, betas = {betas[1], betas[2]}}),
         optim.Adam(D, {lr = o.d_lr or 4e-4, betas = {betas[1], betas[2]}})
end

-- An exponential moving average of G's weights for sampling: lg.optim.EMA.
--   local ema = lg.tricks.EMA(G, {decay = 0.999}); ...; optG:step(); ema:update()
--   local samples = ema:module()(z)
tricks.EMA = optim.EMA

return tricks
