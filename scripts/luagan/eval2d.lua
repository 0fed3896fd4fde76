-- luagan.eval2d (lg.eval2d): mode counting on 2D Gaussian mixtures, the
-- protocol of PacGAN (Lin et al. 2018, Table 1) and VEEGAN (Srivastava et al.
-- 2017) (docs/reference/eval2d.md):
--
--   * each sample goes to its nearest mode (Euclidean distance; the modes
--     share one isotropic sigma, so this is also the nearest in Mahalanobis
--     distance, as in PacGAN's code);
--   * a sample is high quality when that distance is below 3 sigma;
--   * a mode is recovered when at least one high-quality sample is nearest to it;
--   * the mode histogram counts the high-quality samples of each mode;
--     reverse KL = KL(histogram || uniform) = sum_k p_k log(K p_k) (0 log 0 = 0);
--     it is 0 for a perfectly balanced generator and log K when one mode
--     holds everything. With no high-quality sample it is NaN (undefined).
--   * reported over seeds as mean +- standard error (sd / sqrt(n), sd with
--     n - 1), PacGAN's way, on 2500 samples per seed.
--
--   local ev = lg.eval2d
--   local r = ev.evaluate(samples, "ring")        -- samples (N,2)
--   print(r.modes_recovered, r.modes_total)        -- e.g. 2, 8: 2 of 8 recovered
--   print(r.high_quality, r.reverse_kl)            -- fraction, nats
--   local s = ev.summarize({r1, r2, ...})          -- over seeds
--   print(ev.format(s))    -- "modes recovered M +- se of 8, high quality P +- se %, ..."
--
-- Specs of the standard mixtures (the same as lg.data.ring / lg.data.grid):
--   ring: 8 modes at (cos 2 pi k/8, sin 2 pi k/8), sigma 0.01;
--   grid: 25 modes at {-4,-2,0,2,4}^2, sigma 0.05.
local lg = require "luagan"
local util = require "luagan.util"
local is_tensor, shape_str = util.is_tensor, util.shape_str
local check_opts, check_num = util.check_opts, util.check_num

local M = {}

M.PROTOCOL_SAMPLES = 2500

---------------------------------------------------------------------------
-- mixture specs: {name =, centres = tensor (K,2), std = sigma}

-- ring{modes = 8, radius = 1, std = 0.01}
function M.ring_spec(o)
  local who = "eval2d.ring_spec"
  o = check_opts(who, o, {"modes", "radius", "std"})
  local k = check_num(who, "modes", o.modes, {int = true, lo = 1, default = 8})
  local r = check_num(who, "radius", o.radius, {lo = 0, open = true, default = 1})
  local std = check_num(who, "std", o.std, {lo = 0, open = true, default = 0.01})
  local c = {}
  for i = 0, k - 1 do
    local a = 2 * math.pi * i / k
    c[i + 1] = {r * math.cos(a), r * math.sin(a)}
  end
  return {name = "ring", centres = lg.tensor(c), std = std}
end

-- grid{side = 5, spacing = 2, std = 0.05} (centred on 0)
function M.grid_spec(o)
  local who = "eval2d.grid_spec"
  o = check_opts(who, o, {"side", "spacing", "std"})
  local side = check_num(who, "side", o.side, {int = true, lo = 1, default = 5})
  local sp = check_num(who, "spacing", o.spacing, {lo = 0, open = true, default = 2})
  local std = check_num(who, "std", o.std, {lo = 0, open = true, default = 0.05})
  local c, half = {}, (side - 1) / 2
  for i = 0, side - 1 do
    for j = 0, side - 1 do c[#c + 1] = {(i - half) * sp, (j - half) * sp} end
  end
  return {name = "grid", centres = lg.tensor(c), std = std}
end

-- A spec from a name ("ring", "grid"), a spec table, or (centres, std).
function M.spec(s, std)
  if s == "ring" then return M.ring_spec(std and {std = std}) end
  if s == "grid" then return M.grid_spec(std and {std = std}) end
  if is_tensor(s) then
    if type(std) ~= "number" then
      error("eval2d.spec(centres, std): std must be a number, got " .. type(std), 2)
    end
    return {name = "custom", centres = s, std = std}
  end
  if type(s) == "table" and is_tensor(s.centres) and type(s.std) == "number" then return s end
  error("eval2d: expected \"ring\", \"grid\", a spec {centres = (K,2) tensor, std = number} "
        .. "or (centres, std), got " .. type(s), 2)
end

---------------------------------------------------------------------------
-- one set of samples

-- Nearest mode of each sample: samples (N,2), centres (K,2) ->
-- dist (N) Euclidean distance to the nearest centre, idx (N) its 1-based index.
-- Differences are taken before squaring (no |x|^2 + |c|^2 - 2xc cancellation).
function M.nearest(samples, centres)
  return lg.no_grad(function()
    local n, k = samples:size(1), centres:size(1)
    local d = samples:detach():reshape(n, 1, 2) - centres:reshape(1, k, 2)  -- (N,K,2)
    local d2 = (d * d):sum(3)                                                -- (N,K)
    local m, idx = d2:min(2)
    return m:sqrt(), idx
  end)
end

-- evaluate(samples, spec, {threshold = 3}) -> {
--   modes_recovered  number of modes with a high-quality sample (0..K),
--   modes_total      K, the number of modes of the mixture,
--   high_quality   fraction of samples within threshold * sigma of their mode,
--   reverse_kl     KL(histogram of high-quality samples || uniform), NaN if none,
--   counts         {K numbers}: high-quality samples per mode,
--   n              number of samples }
-- spec: "ring", "grid" or a spec table (see M.spec). Samples (N,2), N >= 1.
function M.evaluate(samples, spec, o)
  local who = "eval2d.evaluate"
  if not is_tensor(samples) then error(who .. ": samples must be a tensor, got " .. util.what(samples), 2) end
  if samples:dim() ~= 2 or samples:size(2) ~= 2 or samples:size(1) < 1 then
    error(who .. ": samples must be (N,2) with N >= 1, got " .. shape_str(samples), 2)
  end
  o = check_opts(who, o, {"threshold"})
  local s = M.spec(spec)
  local thr = check_num(who, "threshold", o.threshold, {lo = 0, open = true, default = 3}) * s.std
  local dist, idx = M.nearest(samples, s.centres)
  local dl, il = dist:totable(), idx:totable()
  local k = s.centres:size(1)
  local counts = {}
  for j = 1, k do counts[j] = 0 end
  local hq = 0
  for i = 1, #dl do
    -- a NaN distance (diverged G) compares false: never high quality
    if dl[i] < thr then
      local j = math.tointeger(il[i])
      counts[j] = counts[j] + 1
      hq = hq + 1
    end
  end
  local modes, kl = 0, 0
  for j = 1, k do
    if counts[j] > 0 then
      modes = modes + 1
      local p = counts[j] / hq
      kl = kl + p * math.log(p * k)
    end
  end
  if hq == 0 then kl = 0 / 0 end
  -- two names that cannot be read one for the other ("modes"/"n_modes"
  -- once led a user to print 8/8 for a run that recovered 2 of 8)
  return {modes_recovered = modes, modes_total = k, high_quality = hq / #dl, reverse_kl = kl,
          counts = counts, n = #dl, spec = s.name}
end

---------------------------------------------------------------------------
-- over seeds

-- mean and standard error of a list of numbers (se nil for fewer than 2)
local function mean_se(xs)
  local n = #xs
  local m = 0
  for _, x in ipairs(xs) do m = m + x end
  m = m / n
  if n < 2 then return m, nil end
  local v = 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, math.sqrt(v / (n - 1) / n)
end
M.mean_se = mean_se

-- summarize({result, ...}) -> {n_seeds, modes_total, modes_recovered = {mean, se},
-- high_quality = {mean, se}, reverse_kl = {mean, se}} (se nil for one seed).
function M.summarize(results)
  if type(results) ~= "table" or #results == 0 then
    error("eval2d.summarize: expected a non-empty list of evaluate() results", 2)
  end
  local out = {n_seeds = #results, modes_total = results[1].modes_total}
  for _, key in ipairs{"modes_recovered", "high_quality", "reverse_kl"} do
    local xs = {}
    for i, r in ipairs(results) do
      if type(r[key]) ~= "number" then
        error(string.format("eval2d.summarize: result %d has no field %s", i, key), 2)
      end
      xs[i] = r[key]
    end
    local m, se = mean_se(xs)
    out[key] = {mean = m, se = se}
  end
  return out
end

-- over_seeds(seeds, fn, spec, opts): fn(seed) returns samples (N,2) for that
-- seed (train a model, sample 2500 points); returns summary, per-seed results.
-- seeds: a count n (seeds 1..n) or a list.
function M.over_seeds(seeds, fn, spec, o)
  check_opts("eval2d.over_seeds", o, {"threshold"})
  local list = seeds
  if type(seeds) == "number" then
    list = {}
    for i = 1, seeds do list[i] = i end
  end
  local results = {}
  for i, seed in ipairs(list) do results[i] = M.evaluate(fn(seed), spec, o) end
  return M.summarize(results), results
end

local function pm(e, fmt)
  if e.se == nil then return string.format(fmt, e.mean) end
  return string.format(fmt .. " +- " .. fmt, e.mean, e.se)
end

-- One line: "modes recovered 7.90 +- 0.10 of 8, high quality 97.3 +- 0.4 %,
-- reverse KL 0.012 +- 0.003 (10 seeds)". Accepts a summary or a single result.
function M.format(s)
  if type(s.modes_recovered) == "number" then
    return string.format("modes recovered %d of %d, high quality %.1f %%, reverse KL %.4f",
                         s.modes_recovered, s.modes_total, 100 * s.high_quality, s.reverse_kl)
  end
  local hq = {mean = 100 * s.high_quality.mean, se = s.high_quality.se and 100 * s.high_quality.se}
  return string.format("modes recovered %s of %d, high quality %s %%, reverse KL %s (%d seed%s)",
                       pm(s.modes_recovered, "%.2f"), s.modes_total, pm(hq, "%.1f"), pm(s.reverse_kl, "%.4f"),
                       s.n_seeds, s.n_seeds == 1 and "" or "s")
end

return M
