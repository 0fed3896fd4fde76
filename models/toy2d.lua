-- toy2d.lua: GANs on the 2D Gaussian mixtures of the mode-collapse
-- literature, scored with the PacGAN protocol (Lin et al. 2018, "PacGAN: The
-- power of two samples in generative adversarial networks", arXiv:1712.04086;
-- VEEGAN, Srivastava et al. 2017):
--   ring: 8 modes at (cos 2pi k/8, sin 2pi k/8), sigma 0.01;
--   grid: 25 modes at {-4,-2,0,2,4}^2, sigma 0.05.
-- Any loss (--loss), with PacGAN packing (--pack m: D judges m samples at
-- once, which penalises a generator that drops modes or repeats itself),
-- instance noise (--noise: N(0, s^2) added to D's real and fake inputs, s
-- annealed linearly to 0 over half the run on the ring and over the whole run
-- on the grid; on by default, s = 0.1), an R1 penalty, n_critic D steps and an
-- EMA of G as options.
--
--   luagan run toy2d                                  # ring, the defaults
--   luagan run toy2d --mixture grid                   # the 5x5 grid
--   luagan run toy2d --pack 1                         # no packing, for comparison
--   luagan run toy2d --loss wgan_gp --n-critic 5
--   luagan run toy2d --noise 0                        # without instance noise
--
-- G: z (nz = 2, Gaussian) -> 3 x 256 ReLU -> R^2. D (lg.nets.PackedD): each of
-- the m packed samples goes through the same 2 x 256 LeakyReLU trunk, the m
-- embeddings are concatenated and a 256-unit head gives one logit. (PacGAN's D
-- is a plain MLP on the concatenated samples; bench/toy2d_packed_d.lua shows why
-- the shared trunk: a plain MLP on 4 packed samples does not learn to tell the
-- grid from uniform noise in 1500 steps, the shared trunk does;
-- docs/recipes.md.) The nets work in units of the mixture's scale (data / 0.71
-- for the ring, / 2.83 for the grid: --normalize), so one set of settings fits
-- both, except two: batch 512 on the ring, 1024 on the grid, and the noise
-- annealing (PER_MIXTURE below). Adam(1e-3, 0.5, 0.999)
-- for both nets, a fresh batch of the mixture every step, non-saturating loss,
-- pack 4, instance noise 0.1 (without it 2 of 5 ring seeds dropped a mode);
-- the learning rate decays linearly to 0 over the second half (--decay), which
-- freezes G where the modes are tight.
-- finish() scores 2500 fresh samples: modes recovered, % high quality (within
-- 3 sigma of the nearest mode) and the reverse KL of the mode histogram to
-- uniform (lg.eval2d); prints them, writes eval2d.json and scatter_eval.png.
-- A perfect sampler scores 8/8 (25/25) with 98.9 % high quality (the mass of a
-- 2D Gaussian within 3 sigma).
-- What to expect: the defaults (20000 steps, about 4 CPU-minutes on the ring,
-- 7.5 on the grid) reach every mode with about 97-99 % high-quality samples;
-- the scores over 10 seeds are in docs/RESULTS.md. samples_STEP.png show the
-- scatter over the true modes (red discs: the 3-sigma zones): a blurred ring or
-- square first, then clusters joined by thin bridges that thin out as the
-- learning rate decays.
local lg = require "luagan"
local nets = require "luagan.nets"
local optim, data, image, eval2d, kit = lg.optim, lg.data, lg.image, lg.eval2d, lg.recipe_kit
local recipe = require "luagan.recipe"

local LOSSES = {"ns", "mm", "lsgan", "hinge", "wgan_gp", "rsgan", "ragan"}

-- Settings that differ by mixture, chosen from measured runs (docs/RESULTS.md):
-- on the grid, batch 512 with the noise gone by mid-run left one or two of 25
-- modes empty on 2 of 10 seeds; twice the batch (40 samples per mode per step)
-- and noise annealed over the whole run kept every mode on every seed.
local PER_MIXTURE = {
  ring = {batch = 512, noise_frac = 0.5},
  grid = {batch = 1024, noise_frac = 1.0},
}

local function sample_mixture(opt, n)
  if opt.mixture == "ring" then return (data.ring{n = n}) end
  return (data.grid{n = n})
end

-- (N,2) -> (N/m, 2m): m consecutive samples side by side (PacGAN packing)
local function pack(x, m)
  if m == 1 then return x end
  return x:reshape(x:size(1) // m, 2 * m)
end

-- n latent vectors (n, nz), standard Gaussian
local function latent(opt, n) return lg.randn(n, opt.nz) end

-- G's samples for z (the EMA copy with --ema), batch norm on its running statistics
local function generate(s, z)
  local G = s.ema and s.ema:module() or s.G
  return kit.in_eval(G, lg.no_grad, function() return G(z) * s.scale end)
end

return recipe{
  name = "toy2d",
  about = "GANs on the 8-Gaussian ring / 5x5 grid with PacGAN packing, instance noise, "
          .. "any loss; PacGAN mode-counting metrics",
  options = {
    {"steps", 20000, "training steps (one G update each)"},
    {"mixture", "ring", "target mixture", choices = {"ring", "grid"}},
    {"loss", "ns", "adversarial loss (wgan_gp adds the gradient penalty)", choices = LOSSES},
    {"pack", 4, "PacGAN packing degree m: D sees m samples at once (1 = off)"},
    {"noise", 0.1, "instance noise std at step 0 (in units of the mixture scale), annealed linearly to 0 (0 = off)"},
    {"noise_steps", 0, "steps over which the instance noise decays (0 = half the run for the ring, the whole run for the grid)"},
    {"batch", 0, "samples per batch, a multiple of --pack (0 = 512 for the ring, 1024 for the grid)"},
    {"nz", 2, "Gaussian noise dimension"},
    {"g_hidden", 256, "units per hidden layer of G"},
    {"g_layers", 3, "hidden layers of G"},
    {"g_norm", "none", "normalisation after G's hidden layers", choices = {"none", "batch"}},
    {"d_hidden", 256, "units per hidden layer of D"},
    {"d_layers", 2, "hidden layers of D's per-sample trunk (one more in its head)"},
    {"maxout", 1, "maxout pieces in D's hidden layers (1 = LeakyReLU layers; PacGAN used 5)"},
    {"lr", 1e-3, "Adam learning rate of G"},
    {"lr_d", 1e-3, "Adam learning rate of D"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    {"decay", true, "decay the learning rate linearly to 0 over the second half"},
    {"ema", 0.0, "EMA decay of G's weights for sampling and evaluation (0 = off)"},
    {"n_critic", 1, "D updates per G update"},
    {"gp", 10.0, "gradient-penalty weight lambda (--loss wgan_gp)"},
    {"r1", 0.0, "R1 penalty gamma on real data (0 = off)"},
    {"normalize", true, "train in units of the mixture's scale (the RMS coordinate of its modes)"},
    {"eval_n", 2500, "samples scored by finish() (the protocol's 2500)"},
    {"sample_every", 5000, "write samples_STEP.png every N steps"},
    {"ckpt_every", 5000, "write the checkpoint every N steps"},
  },
  smoke = {steps = 4, batch = 16, g_hidden = 16, d_hidden = 16, eval_n = 200, noise = 0.1,
           maxout = 2, r1 = 1.0},

  setup = function(opt)
    local who = "toy2d"
    -- the automatic values (0) resolved here are recorded in options.json and the checkpoint
    local auto = PER_MIXTURE[opt.mixture]
    if opt.batch == 0 then opt.batch = auto.batch end
    if opt.noise_steps == 0 then opt.noise_steps = math.max(1, math.floor(opt.steps * auto.noise_frac)) end
    if opt.pack < 1 then recipe.fail(who .. ": --pack must be >= 1") end
    if opt.batch < opt.pack or opt.batch % opt.pack ~= 0 then
      recipe.fail(string.format("%s: --batch %d must be a multiple of --pack %d", who, opt.batch, opt.pack))
    end
    if opt.n_critic < 1 then recipe.fail(who .. ": --n-critic must be >= 1") end
    if opt.noise_steps < 0 then recipe.fail(who .. ": --noise-steps must be >= 0") end
    if opt.g_layers < 1 or opt.d_layers < 1 then recipe.fail(who .. ": --g-layers and --d-layers must be >= 1") end
    if opt.maxout < 1 then recipe.fail(who .. ": --maxout must be >= 1") end
    local gs, trunk = {opt.nz}, {}
    for _ = 1, opt.g_layers do gs[#gs + 1] = opt.g_hidden end
    for _ = 1, opt.d_layers do trunk[#trunk + 1] = opt.d_hidden end
    gs[#gs + 1] = 2
    local G = nets.mlp(gs, {act = "relu", norm = opt.g_norm})
    local D = nets.packed_D{input = 2, pack = opt.pack, trunk = trunk, head = {opt.d_hidden},
                            maxout = opt.maxout > 1 and opt.maxout or nil}
    local s = kit.gan_state{opt = opt, G = G, D = D, lr_d = opt.lr_d, fixed_z = opt.eval_n,
                            loss = lg.losses.make(opt.loss == "wgan_gp" and "wgan" or opt.loss)}
    s.spec = eval2d.spec(opt.mixture)
    -- the nets see data divided by scale (ring 0.71, grid 2.83), so the same
    -- settings fit both mixtures; G's output is multiplied back when sampling
    s.scale = 1.0
    if opt.normalize then s.scale = math.sqrt((s.spec.centres * s.spec.centres):mean():item()) end
    if opt.decay and opt.steps >= 2 then   -- (--steps 0 or 1: nothing to decay)
      s.schedG = optim.LinearDecay(s.optG, opt.steps // 2, opt.steps)
      s.schedD = optim.LinearDecay(s.optD, opt.steps // 2, opt.steps)
    end
    if opt.ema > 0 then s.ema = optim.EMA(G, {decay = opt.ema, warmup = true}) end
    if opt.noise > 0 then
      s.noise = lg.tricks.InstanceNoise{std = opt.noise, anneal_steps = opt.noise_steps}
    end
    return s
  end,

  -- n_critic D updates on packed real and fake batches (instance noise on
  -- both; R1 and the gradient penalty on the packed batches), then G
  step = function(s, i)
    local opt = s.opt
    local m = opt.pack
    local function noisy(x) return s.noise and s.noise:apply(x, i - 1) or x end
    return kit.gan_step(s, {
      n_d = opt.n_critic,
      fresh = true,
      real = function(c) return noisy(sample_mixture(opt, c.B) / s.scale) end,
      fakes = function(c) c.fake_d = noisy(s.G(latent(opt, c.B)):detach()) end,
      generate = function(_, z) return noisy(s.G(z)) end,
      d_loss = function(c)
        local pr, pf = pack(c.x, m), pack(c.fake_d, m)
        c.fake_out = s.D(pf)
        local pen
        if opt.r1 > 0 then pen = c:r1(opt.r1, pr) else c.real_out = s.D(pr) end
        if opt.loss == "wgan_gp" then
          local gp = lg.penalties.gradient_penalty(s.D, pr, pf, {lambda = opt.gp})
          pen = pen and pen + gp or gp
        end
        return s.loss.d(c.real_out, c.fake_out), pen
      end,
      g_loss = function(c)
        return s.loss.g(s.D(pack(c.fake, m)), s.loss.relativistic and c.real_out:detach() or nil)
      end,
      after_g = function()
        if s.schedG then s.schedG:step(); s.schedD:step() end
        if s.ema then s.ema:update() end
      end,
      metrics = function(c, out) out.penalty = c.penalty end,
    }, i)
  end,

  -- scatter of G's samples (the fixed noise, or o.n fresh ones) over the true modes
  sample = function(s, path, o)
    local z = o.n and latent(s.opt, o.n) or s.fixed_z
    local x = generate(s, z)
    local b = s.opt.mixture == "ring" and {-1.5, 1.5, -1.5, 1.5} or {-6, 6, -6, 6}
    image.scatter(path, x, {centres = s.spec.centres, std = s.spec.std, bounds = b,
                            title = string.format("toy2d %s, %s loss, pack %d", s.opt.mixture,
                                                  s.opt.loss, s.opt.pack)})
    return x
  end,

  -- the PacGAN protocol on eval_n fresh samples
  finish = function(s, out)
    local x = generate(s, latent(s.opt, s.opt.eval_n))
    local r = eval2d.evaluate(x, s.spec)
    local line = eval2d.format(r)
    if not s.opt.quiet then print("toy2d: " .. line) end
    local report = {mixture = s.opt.mixture, modes_recovered = r.modes_recovered,
                    modes_total = r.modes_total,
                    high_quality = r.high_quality,
                    -- NaN (no high-quality sample) is not JSON: left out
                    reverse_kl = r.reverse_kl == r.reverse_kl and r.reverse_kl or nil,
                    counts = r.counts, n = r.n, seed = s.opt.seed}
    kit.write_eval(out, report, nil, "eval2d.json")
    local b = s.opt.mixture == "ring" and {-1.5, 1.5, -1.5, 1.5} or {-6, 6, -6, 6}
    image.scatter(out .. "/scatter_eval.png", x, {centres = s.spec.centres, std = s.spec.std,
                                                  bounds = b, title = line})
    s.result = r
  end,
}
