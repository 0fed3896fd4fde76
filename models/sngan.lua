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
-- CPU-minutes on one idle core of the AMD machine (0.22 CPU s per step),
-- 16 on the 2-vCPU Intel Xeon (0.38). Against its PyTorch twin
-- (bench/twins/sngan.py, seeds 1-3 at 2500 steps, 2026-12-06): FD 112.7 /
-- 100.3 / 96.7 (mean 103.2) against 134.6 / 91.8 / 118.9 (115.1), Welch t -0.88. D never wins outright: loss_d rises from 0.7
-- to about 1.6 within 400 steps and stays there (the hinge loss is 2 when D
-- outputs 0), with d_real (mean D(x)) near 0.1-0.2 and d_fake near -0.25.
-- More D steps (--n-dis 5 with setting "A") or longer runs sharpen the samples.
local lg = require "luagan"
local kit, nets = lg.recipe_kit, lg.nets

return require("luagan.recipe"){
  name = "sngan",
  about = "Spectral-norm GAN with the hinge loss at 28x28 on Fashion-MNIST (Miyato et al. 2018)",
  options = {
    {"steps", 2500, "generator updates (938 per epoch at batch 64)"},
    kit.BATCH,
    {"loss", "hinge", "adversarial loss", choices = {"hinge", "ns"}},
    {"n_dis", 1, "D updates per G update"},
    kit.DCGAN_ADAM,
    kit.NZ,
    kit.LIMIT,
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64},

  setup = function(opt)
    if opt.n_dis < 1 then require("luagan.recipe").fail("sngan: --n-dis must be >= 1") end
    return kit.gan_state{opt = opt, G = nets.dcgan_G{nz = opt.nz}, D = nets.dcgan_D{norm = "none", spectral = true},
                         data = kit.fashion_mnist(opt).images,
                         loss = lg.losses.make(opt.loss == "ns" and "nsgan" or "hinge")}
  end,

  -- n_dis D updates on fresh fakes, then G; sigma_max: the last layer's
  -- spectral-norm estimate
  step = function(s, i)
    return kit.gan_step(s, {fresh = true, n_d = s.opt.n_dis, metrics = function(c, out)
      kit.d_means_raw(c, out)
      out.sigma_max = s.D[#s.D]:sigma()
    end}, i)
  end,

  sample = kit.sampler(),
}
