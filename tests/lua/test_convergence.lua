-- test_convergence.lua: lg.eval2d (the PacGAN mode-counting protocol) and,
-- for every loss family of lg.losses, a small MLP GAN trained on the 2D ring
-- of 8 Gaussians (sigma 0.01, as in PacGAN, Lin et al. 2018) that must reach a stated number of
-- modes and share of high-quality samples, scored on 2500 samples.
--
-- Nets: G z8 -> 64 -> 64 -> 2, D 2 -> 64 -> 64 -> 1 (LeakyReLU 0.2), batch
-- 128, Adam(1e-3, betas 0.5, 0.999) unless the family says otherwise, the
-- learning rate decayed linearly to 0 over the second half (sharper modes in
-- few steps). One thread: these nets are too small to gain from more, and a
-- single thread makes a run reproducible bit for bit on one machine.
--
-- The test runs seed 1; its thresholds sit below the worst of seeds 1..10
-- measured with this file (docs/losses.md has the table): one mode may be
-- missed, about half the worst high-quality share. A collapse (1-3 modes) or
-- a diverged generator fails. To re-measure:
--   LUAGAN_CONVERGENCE_SEEDS=10 luagan tests/lua/run.lua tests/lua/test_convergence.lua
-- prints mean +- s.e. and every seed's result per family (no assertions).
local T = ...
local lg = require "luagan"
local nn, optim, P, tricks, ev = lg.nn, lg.optim, lg.penalties, lg.tricks, lg.eval2d
local L = lg.losses

---------------------------------------------------------------------------
-- eval2d

T.test("eval2d: true samples of the ring and the grid", function()
  -- within 3 sigma of a 2D Gaussian's centre: 1 - exp(-9/2) = 0.98889
  local p = 1 - math.exp(-4.5)
  local sd = math.sqrt(p * (1 - p) / 2500)
  for _, mix in ipairs{"ring", "grid"} do
    local x = lg.data[mix]{n = 2500, seed = 5}
    local r = ev.evaluate(x, mix)
    T.eq(r.modes_recovered, mix == "ring" and 8 or 25)
    T.eq(r.n, 2500)
    T.ok(math.abs(r.high_quality - p) < 4 * sd,
         string.format("%s: high quality %.4f, expected %.4f +- %.4f", mix, r.high_quality, p, 4 * sd))
    -- a multinomial histogram of ~2470 samples: KL to uniform ~ (K-1)/(2n)
    T.ok(r.reverse_kl < 0.02, mix .. ": reverse KL " .. r.reverse_kl)
  end
  -- the specs are the data sets' centres
  local _, c = lg.data.ring{n = 4}
  T.close(ev.ring_spec().centres, c, 1e-6)
  local _, g = lg.data.grid{n = 4}
  T.close(ev.grid_spec().centres, g, 1e-6)
  T.eq({ev.ring_spec().std, ev.grid_spec().std}, {0.01, 0.05})
end)

T.test("eval2d: a hand-made example", function()
  local a = 2 * math.pi / 8
  local x = lg.tensor{
    {1.02, 0},                                        -- mode 1, 2 sigma away: high quality
    {math.cos(a) + 0.05, math.sin(a)},                -- mode 2, 5 sigma: low quality
    {math.cos(2 * a), math.sin(2 * a)},               -- mode 3
    {math.cos(2 * a) - 0.01, math.sin(2 * a) + 0.01}, -- mode 3
    {0 / 0, 0},                                       -- NaN: never high quality
  }
  local r = ev.evaluate(x, "ring")
  T.eq(r.counts, {1, 0, 2, 0, 0, 0, 0, 0})
  T.eq(r.modes_recovered, 2)
  T.near(r.high_quality, 3 / 5, 1e-12)
  T.near(r.reverse_kl, (1 / 3) * math.log(8 / 3) + (2 / 3) * math.log(16 / 3), 1e-9)
  -- a wider threshold takes in the 5-sigma sample
  T.eq(ev.evaluate(x, "ring", {threshold = 6}).modes_recovered, 3)
  -- a custom mixture by centres and sigma
  local r2 = ev.evaluate(lg.tensor{{0, 0}, {10, 0.5}}, ev.spec(lg.tensor{{0, 0}, {10, 0}}, 0.2))
  T.eq(r2.counts, {1, 1})
  T.near(r2.reverse_kl, 0, 1e-12)
end)

T.test("eval2d: collapse and divergence", function()
  local one = lg.tensor{{0, 1}}:expand(100, 2) + lg.randn(100, 2) * 0.001
  local r = ev.evaluate(one, "ring")
  T.eq(r.modes_recovered, 1)
  T.near(r.high_quality, 1, 1e-12)
  T.near(r.reverse_kl, math.log(8), 1e-9)
  local far = lg.full({50, 2}, 10)
  local f = ev.evaluate(far, "grid")
  T.eq({f.modes_recovered, f.high_quality}, {0, 0})
  T.ok(f.reverse_kl ~= f.reverse_kl, "reverse KL is NaN without high-quality samples")
end)

T.test("eval2d: mean +- standard error over seeds", function()
  local s = ev.summarize{{modes_recovered = 8, modes_total = 8, high_quality = 0.9, reverse_kl = 0.1},
                         {modes_recovered = 6, modes_total = 8, high_quality = 0.7, reverse_kl = 0.3}}
  T.near(s.modes_recovered.mean, 7, 1e-12)
  T.near(s.modes_recovered.se, 1, 1e-12)                      -- sd sqrt(2), / sqrt(2)
  T.near(s.high_quality.mean, 0.8, 1e-12)
  T.near(s.high_quality.se, 0.1, 1e-12)
  T.eq(s.n_seeds, 2)
  T.eq(ev.format(s), "modes recovered 7.00 +- 1.00 of 8, high quality 80.0 +- 10.0 %, reverse KL 0.2000 +- 0.1000 (2 seeds)")
  local one = ev.summarize{{modes_recovered = 8, modes_total = 8, high_quality = 1, reverse_kl = 0}}
  T.ok(one.modes_recovered.se == nil, "no standard error from one seed")
  T.eq(ev.format(one), "modes recovered 8.00 of 8, high quality 100.0 %, reverse KL 0.0000 (1 seed)")
  local sum, list = ev.over_seeds(3, function(seed) return lg.data.ring{n = 400, seed = seed} end, "ring")
  T.eq(#list, 3)
  T.eq(sum.modes_recovered.mean, 8)
  T.errors(function() ev.evaluate(lg.zeros(4, 3), "ring") end, "samples must be (N,2)")
  T.errors(function() ev.evaluate(lg.zeros(4, 2), "spiral") end, "expected \"ring\", \"grid\"")
  T.errors(function() ev.summarize{} end, "non-empty list")
end)

---------------------------------------------------------------------------
-- convergence per loss family

local H, Z, B = 64, 8, 128

local function act() return nn.LeakyReLU(0.2) end
local function mlp(i, o)
  return nn.Sequential{nn.Linear(i, H), act(), nn.Linear(H, H), act(), nn.Linear(H, o)}
end

-- Train one family; returns the eval2d result of 2500 samples of G.
-- c: loss, steps (G steps), lr, betas, rmsprop, n_critic, gp (lambda),
-- clip (weight clipping bound), mix ("ring" / "grid").
local function train(c, seed)
  lg.manual_seed(seed)
  local mix = c.mix or "ring"
  local function real() return lg.data[mix]{n = B} end
  local G = mlp(Z, 2)
  local loss = c.loss
  local D, energy
  if loss.name == "ebgan" then
    -- D is an autoencoder with an 8-dim code; its energy is the reconstruction error
    local enc = nn.Sequential{nn.Linear(2, H), act(), nn.Linear(H, 8)}
    local dec = nn.Sequential{act(), nn.Linear(8, H), act(), nn.Linear(H, 2)}
    D = nn.Sequential{enc, dec}
    energy = function(x) local s = enc(x) return loss.energy(dec(s), x), s end
  else
    D = mlp(2, 1)
  end
  local lr = c.lr or 1e-3
  local og, od
  if c.rmsprop then
    og, od = optim.RMSprop(G, {lr = lr}), optim.RMSprop(D, {lr = lr})
  else
    local betas = c.betas or {0.5, 0.999}
    og, od = optim.Adam(G, {lr = lr, betas = betas}), optim.Adam(D, {lr = lr, betas = betas})
  end
  local decay = {optim.LinearDecay(og, c.steps // 2, c.steps), optim.LinearDecay(od, c.steps // 2, c.steps)}
  local sched = tricks.Schedule{d_steps = c.n_critic or 1}
  if c.clip then P.clip_weights(D, c.clip) end

  local function d_step()
    local x = real()
    local fake = lg.no_grad(function() return G(lg.randn(B, Z)) end)
    local ld
    if energy then ld = loss.d((energy(x)), (energy(fake)))
    else ld = loss.d(D(x), D(fake)) end
    if c.gp then ld = ld + P.gradient_penalty(D, x, fake, {lambda = c.gp}) end
    od:zero_grad(); ld:backward(); od:step()
    if c.clip then P.clip_weights(D, c.clip) end
  end
  local function g_step()
    local fake = G(lg.randn(B, Z))
    local lgen
    if energy then
      local e, s = energy(fake)
      lgen = loss.g(e, s)
    else
      lgen = loss.g(D(fake), loss.relativistic and D(real()) or nil)
    end
    og:zero_grad(); lgen:backward(); og:step()
    decay[1]:step(); decay[2]:step()
  end
  while sched.g_iter < c.steps do sched:round(d_step, g_step) end
  local s = lg.no_grad(function() return G(lg.randn(ev.PROTOCOL_SAMPLES, Z)) end)
  return ev.evaluate(s, mix)
end

-- name, config, and what seed 1 must reach: modes at least, high-quality share
-- at least, reverse KL of the mode histogram at most (log 8 = 2.08: all in one mode)
local FAMILIES = {
  {"nsgan", {loss = L.nsgan(), steps = 2000}, modes = 7, hq = 0.10, rkl = 0.8},
  {"mmgan", {loss = L.mmgan(), steps = 2000}, modes = 7, hq = 0.10, rkl = 0.8},
  {"lsgan", {loss = L.lsgan(), steps = 2000}, modes = 7, hq = 0.15, rkl = 0.8},
  {"hinge", {loss = L.hinge(), steps = 2000}, modes = 7, hq = 0.06, rkl = 0.8},
  {"wgan-gp", {loss = L.wgan(), gp = 1, n_critic = 5, betas = {0.5, 0.9}, steps = 600},
   modes = 7, hq = 0.01, rkl = 0.8},
  {"wgan (clipping)", {loss = L.wgan(), clip = 0.1, n_critic = 5, rmsprop = true, steps = 800},
   modes = 4, hq = 0.005, rkl = 1.5},
  {"fgan rkl (saddle)", {loss = L.fgan{divergence = "rkl", generator = "saddle"}, lr = 5e-4, steps = 2000},
   modes = 7, hq = 0.025, rkl = 0.8},
  {"fgan hellinger", {loss = L.fgan{divergence = "hellinger"}, lr = 5e-4, steps = 2000},
   modes = 7, hq = 0.045, rkl = 0.8},
  {"ebgan", {loss = L.ebgan{margin = 0.1, pullaway = 0.1}, steps = 2000}, modes = 7, hq = 0.025, rkl = 1.0},
  {"rsgan", {loss = L.rsgan(), steps = 2000}, modes = 7, hq = 0.10, rkl = 0.8},
  {"ragan (lsgan)", {loss = L.ragan{kind = "lsgan"}, steps = 2000}, modes = 7, hq = 0.10, rkl = 0.8},
  {"nsgan on the grid", {loss = L.nsgan(), steps = 2000, mix = "grid"}, modes = 15, hq = 0.01, rkl = 0.9},
}

local function with_one_thread(fn)
  local n = lg.get_num_threads()
  lg.set_num_threads(1)
  local ok, r = pcall(fn)
  lg.set_num_threads(n)
  if not ok then error(r, 0) end
  return r
end

local sweep = tonumber(os.getenv("LUAGAN_CONVERGENCE_SEEDS") or "")

for _, fam in ipairs(FAMILIES) do
  local name, cfg = fam[1], fam[2]
  T.test("converges: " .. name, function()
    if sweep then
      local list, line = {}, {}
      local t0 = os.clock()
      for seed = 1, sweep do
        list[seed] = with_one_thread(function() return train(cfg, seed) end)
        line[seed] = string.format("%d/%.0f%%/%.2f", list[seed].modes_recovered, 100 * list[seed].high_quality,
                                   list[seed].reverse_kl)
      end
      print(string.format("  %s: %s; %.1f s cpu per run\n  per seed (modes/hq/rKL): %s", name,
                          ev.format(ev.summarize(list)), (os.clock() - t0) / sweep, table.concat(line, " ")))
      return
    end
    local r = with_one_thread(function() return train(cfg, 1) end)
    local msg = string.format("%s: %s (needs >= %d modes, >= %.1f %% high quality, reverse KL <= %.2f)",
                              name, ev.format(r), fam.modes, 100 * fam.hq, fam.rkl)
    T.ok(r.modes_recovered >= fam.modes and r.high_quality >= fam.hq and r.reverse_kl <= fam.rkl, msg)
  end)
end
