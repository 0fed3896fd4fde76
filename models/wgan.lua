-- wgan.lua: Wasserstein GAN with weight clipping (Arjovsky, Chintala & Bottou
-- 2017, "Wasserstein GAN", arXiv:1701.07875) at 28x28 on Fashion-MNIST.
--
--   critic minimises E f(G(z)) - E f(x), then every critic weight is clipped
--   to [-c, c] (a crude way to keep f Lipschitz); G minimises -E f(G(z)).
-- The critic's output is a score, not a logit. Reference settings (the
-- paper's Algorithm 1): c = 0.01, n_critic = 5 critic updates per generator
-- update, RMSprop(5e-5) (no momentum), batch 64. The authors' code also
-- trains the critic 100 times per generator step for the first 25 generator
-- steps and every 500th (--burst), so the critic is near optimal early on.
--
--   luagan run wgan                           # the defaults (see --help)
--   luagan run wgan --steps 2000 --burst      # longer, with the reference burst
--   luagan run wgan --clip 0.05               # looser clipping
--
-- One step = one generator update (n_critic critic updates before it, each on
-- a fresh real batch). Nets: the DCGAN / "InfoGAN architecture" (Chen et
-- al. 2016; lg.nets), batch norm in the critic too, as in the reference
-- DCGAN critic (clipping reaches the batch-norm weights as well).
-- What to expect: WGAN with clipping learns slowly at the paper's learning
-- rate. Measured (seed 1, defaults: 400 generator steps = 2000 critic steps,
-- 222 CPU-s on one core): the samples are blotchy bright blobs with a few
-- shirt and trouser outlines, FD 711 with 3 of 10 classes covered
-- (docs/RESULTS.md); wgan_gp reaches garment shapes for the same CPU time.
-- Train longer (--steps 2000 --burst) for real samples. wdist (the critic's
-- estimate of the Wasserstein distance, E f(x) - E f(G(z))) rises first,
-- then falls slowly as G improves: it is the curve to watch, not loss_g.
local lg = require "luagan"
local optim, data, image, nets = lg.optim, lg.data, lg.image, require "luagan.nets"

return require("luagan.recipe"){
  name = "wgan",
  about = "Wasserstein GAN with weight clipping at 28x28 on Fashion-MNIST (Arjovsky et al. 2017)",
  options = {
    {"steps", 400, "generator updates (each after --n-critic critic updates)"},
    {"batch", 64, "batch size"},
    {"n_critic", 5, "critic updates per generator update"},
    {"clip", 0.01, "clip every critic weight to [-clip, clip]"},
    {"lr", 5e-5, "RMSprop learning rate (both nets)"},
    {"burst", false, "100 critic updates before each of the first 25 and every 500th G update"},
    {"nz", 100, "noise dimension"},
    {"limit", 0, "train on the first N images only (0 = all 60000)"},
    {"sample_every", 100, "write samples_STEP.png every N steps"},
    {"ckpt_every", 250, "write the checkpoint every N steps"},
  },
  smoke = {steps = 2, batch = 8, limit = 64, n_critic = 2},

  setup = function(opt)
    if opt.n_critic < 1 then require("luagan.recipe").fail("wgan: --n-critic must be >= 1") end
    if opt.clip <= 0 then require("luagan.recipe").fail("wgan: --clip must be > 0") end
    local ds = data.fashion_mnist{limit = opt.limit > 0 and opt.limit or nil}
    local G, D = nets.dcgan_G{nz = opt.nz}, nets.dcgan_D{}
    lg.penalties.clip_weights(D, opt.clip)      -- start inside the constraint
    return {
      opt = opt, G = G, D = D,
      optG = optim.RMSprop(G:parameters(), {lr = opt.lr}),
      optD = optim.RMSprop(D:parameters(), {lr = opt.lr}),
      data = lg.train.stream(data.DataLoader(ds.images, {batch_size = opt.batch, shuffle = true,
                                                         drop_last = true, seed = opt.seed})),
      loss = lg.losses.wgan(),
      sched = lg.tricks.Schedule{d_steps = opt.n_critic, burst = opt.burst or nil},
      fixed_z = lg.randn(64, opt.nz),
    }
  end,

  step = function(s)
    local B, nz = s.opt.batch, s.opt.nz
    local ld
    for _ = 1, s.sched:d_steps() do
      local x = s.data:next()
      local fake = lg.no_grad(function() return s.G(lg.randn(B, nz)) end)
      ld = s.loss.d(s.D(x), s.D(fake))
      s.optD:zero_grad()
      ld:backward()
      s.optD:step()
      s.optD:zero_grad()   -- spent: freed before the G step (memory)
      lg.penalties.clip_weights(s.D, s.opt.clip)
    end
    s.sched.g_iter = s.sched.g_iter + 1
    local lgen = s.loss.g(s.D(s.G(lg.randn(B, nz))))
    s.optG:zero_grad()
    lgen:backward{inputs = s.optG:params()}   -- no gradients of D's weights
    s.optG:step()
    return {loss_d = ld, loss_g = lgen, wdist = -ld:item()}
  end,

  sample = function(s, path, o)
    local z = o.n and lg.randn(o.n, s.opt.nz) or s.fixed_z
    s.G:eval()
    local x = s.G(z)
    s.G:train()
    image.save_grid(path, x, {nrow = math.max(1, math.ceil(math.sqrt(x:size(1))))})
    return x
  end,
}
