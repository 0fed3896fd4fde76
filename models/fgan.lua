-- fgan.lua: f-GAN (Nowozin, Cseke & Tomioka 2016, "f-GAN: Training Generative
-- Neural Samplers using Variational Divergence Minimization",
-- arXiv:1606.00709) at 28x28 on Fashion-MNIST, with --divergence
-- kl | rkl | pearson | hellinger | js | gan | tv.
--
-- The critic's raw output v goes through the divergence's output activation
-- g, and the critic maximises the variational lower bound
--   D_f(P || Q) >= E_P g(v) - E_Q f*(g(v))       (P = data, Q = generator)
-- where f* is the Fenchel conjugate of f (VARIANTS.md has the table;
-- lg.losses.fgan computes f*(g(v)) in stable closed forms). G minimises the
-- bound (--generator saddle: -E_Q f*(g(v))) or, by default, uses the paper's
-- alternative -E_Q g(v), which gives stronger gradients early on.
-- "bound" in the log is that lower bound on the batch: the critic's current
-- estimate of the divergence between data and samples.
--
--   luagan run fgan                                  # --divergence kl
--   luagan run fgan --divergence pearson
--   luagan run fgan --divergence js --generator saddle
--
-- Nets: the DCGAN / "InfoGAN architecture" of VARIANTS.md (lg.nets),
-- Adam(2e-4, 0.5, 0.999), batch 64, pixels in [-1, 1].
-- What to expect: js and gan behave like the standard GAN (the gan
-- divergence is exactly its loss); pearson is LSGAN-like; kl, rkl and
-- hellinger use exponential activations and are the most fragile (the
-- bound can jump by orders of magnitude when D gets confident); tv gives
-- weak gradients (tanh saturates) and learns slowest. All produce garment
-- shapes within the default 1000 steps with this architecture.
local lg = require "luagan"
local optim, data, image, nets = lg.optim, lg.data, lg.image, require "luagan.nets"

local DIVERGENCES = {"kl", "rkl", "pearson", "hellinger", "js", "gan", "tv"}

return require("luagan.recipe"){
  name = "fgan",
  about = "f-GAN at 28x28 on Fashion-MNIST (Nowozin et al. 2016), --divergence kl|rkl|pearson|"
          .. "hellinger|js|gan|tv",
  options = {
    {"steps", 1000, "generator updates (938 per epoch at batch 64)"},
    {"batch", 64, "batch size"},
    {"divergence", "js", "the f-divergence minimised", choices = DIVERGENCES},
    {"generator", "alternative", "G's loss: alternative -E g(v), saddle -E f*(g(v))",
     choices = {"alternative", "saddle"}},
    {"nz", 100, "noise dimension"},
    {"lr", 2e-4, "Adam learning rate (both nets)"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    {"limit", 0, "train on the first N images only (0 = all 60000)"},
    {"sample_every", 250, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, divergence = "hellinger"},

  setup = function(opt)
    local ds = data.fashion_mnist{limit = opt.limit > 0 and opt.limit or nil}
    local G, D = nets.dcgan_G{nz = opt.nz}, nets.dcgan_D{}
    local betas = {opt.beta1, opt.beta2}
    return {
      opt = opt, G = G, D = D,
      optG = optim.Adam(G:parameters(), {lr = opt.lr, betas = betas}),
      optD = optim.Adam(D:parameters(), {lr = opt.lr, betas = betas}),
      data = lg.train.stream(data.DataLoader(ds.images, {batch_size = opt.batch, shuffle = true,
                                                         drop_last = true, seed = opt.seed})),
      loss = lg.losses.fgan{divergence = opt.divergence, generator = opt.generator},
      fixed_z = lg.randn(64, opt.nz),
    }
  end,

  step = function(s)
    local x = s.data:next()
    local fake = s.G(lg.randn(s.opt.batch, s.opt.nz))
    local real_v, fake_v = s.D(x), s.D(fake:detach())
    local ld = s.loss.d(real_v, fake_v)
    s.optD:zero_grad()
    ld:backward()
    s.optD:step()
    local lgen = s.loss.g(s.D(fake))
    s.optG:zero_grad()
    lgen:backward()
    s.optG:step()
    return {loss_d = ld, loss_g = lgen, bound = -ld:item()}
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
