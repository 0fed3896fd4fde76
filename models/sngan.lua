-- sngan.lua: spectral normalisation with the hinge loss (Miyato et al. 2018,
-- "Spectral Normalization for Generative Adversarial Networks",
-- arXiv:1802.05957) at 28x28 on Fashion-MNIST.
--
--   every conv and linear weight of D is divided by its largest singular
--   value sigma(W), estimated by one power iteration per forward on a
--   persistent vector u (lg.nn.SpectralNorm), so each layer is 1-Lipschitz;
--   D minimises E max(0, 1 - D(x)) + E max(0, 1 + D(G(z))),
--   G minimises -E D(G(z))                    (the hinge loss, Lim & Ye 2017).
-- D has no batch norm (spectral norm replaces it, as in the paper's standard
-- CNN); G keeps its batch norm. Adam(2e-4, beta1 0.5, beta2 0.999) with one D
-- step per G step is the paper's setting "C" for its standard CNN; --n-dis 5
-- --lr 1e-4 --beta2 0.9 is its setting "A". --loss ns swaps in the
-- non-saturating loss (the paper's other choice).
--
--   luagan run sngan                          # the defaults (see --help)
--   luagan run sngan --n-dis 5 --lr 1e-4 --beta2 0.9
--   luagan run sngan --steps 5000
--
-- Nets: the DCGAN / "InfoGAN architecture" (Chen et al. 2016; lg.nets.dcgan_G,
-- dcgan_D{norm = "none", spectral = true}).
-- Budget: 2500 steps (docs/RESULTS.md, "Budget curves"): FD 102 / 99 for
-- seeds 1 / 3 at step 2500 (at 2000: 131 / 127 / 130 for seeds 1 / 2 / 3, at
-- 3000: 75 / 88 / 99); the old default of 1000 stopped at 268-287. About 9
-- CPU-minutes on one idle core (0.22 CPU s per step). D never wins outright: loss_d rises from 0.7
-- to about 1.6 within 400 steps and stays there (the hinge loss is 2 when D
-- outputs 0), with d_real (mean D(x)) near 0.1-0.2 and d_fake near -0.25.
-- More D steps (--n-dis 5 with setting "A") or longer runs sharpen the samples.
local lg = require "luagan"
local optim, data, image, nets = lg.optim, lg.data, lg.image, require "luagan.nets"

return require("luagan.recipe"){
  name = "sngan",
  about = "Spectral-norm GAN with the hinge loss at 28x28 on Fashion-MNIST (Miyato et al. 2018)",
  options = {
    {"steps", 2500, "generator updates (938 per epoch at batch 64)"},
    {"batch", 64, "batch size"},
    {"loss", "hinge", "adversarial loss", choices = {"hinge", "ns"}},
    {"n_dis", 1, "D updates per G update"},
    {"lr", 2e-4, "Adam learning rate (both nets)"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    {"nz", 100, "noise dimension"},
    {"limit", 0, "train on the first N images only (0 = all 60000)"},
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64},

  setup = function(opt)
    if opt.n_dis < 1 then require("luagan.recipe").fail("sngan: --n-dis must be >= 1") end
    local ds = data.fashion_mnist{limit = opt.limit > 0 and opt.limit or nil}
    local G = nets.dcgan_G{nz = opt.nz}
    local D = nets.dcgan_D{norm = "none", spectral = true}
    local betas = {opt.beta1, opt.beta2}
    return {
      opt = opt, G = G, D = D,
      optG = optim.Adam(G:parameters(), {lr = opt.lr, betas = betas}),
      optD = optim.Adam(D:parameters(), {lr = opt.lr, betas = betas}),
      data = lg.train.stream(data.DataLoader(ds.images, {batch_size = opt.batch, shuffle = true,
                                                         drop_last = true, seed = opt.seed})),
      loss = lg.losses.make(opt.loss == "ns" and "nsgan" or "hinge"),
      fixed_z = lg.randn(64, opt.nz),
    }
  end,

  step = function(s)
    local B, nz = s.opt.batch, s.opt.nz
    local ld, real_out, fake_out
    for _ = 1, s.opt.n_dis do
      local x = s.data:next()
      local fake = lg.no_grad(function() return s.G(lg.randn(B, nz)) end)
      real_out, fake_out = s.D(x), s.D(fake)
      ld = s.loss.d(real_out, fake_out)
      s.optD:zero_grad()
      ld:backward()
      s.optD:step()
      s.optD:zero_grad()   -- spent: freed before the G step (memory)
    end
    local lgen = s.loss.g(s.D(s.G(lg.randn(B, nz))))
    s.optG:zero_grad()
    lgen:backward{inputs = s.optG:params()}   -- no gradients of D's weights
    s.optG:step()
    return {loss_d = ld, loss_g = lgen,
            d_real = real_out:detach():mean(), d_fake = fake_out:detach():mean(),
            sigma_max = s.D[#s.D]:sigma()}
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
