-- ebgan.lua: Energy-Based GAN (Zhao, Mathieu & LeCun 2017, "Energy-based
-- Generative Adversarial Network", arXiv:1609.03126) at 28x28 on
-- Fashion-MNIST.
--
-- D is an autoencoder; its energy is the reconstruction error
--   D(x) = mean over pixels of (Dec(Enc(x)) - x)^2,
-- low on data and pushed up on samples, up to a margin m:
--   D minimises E D(x) + E max(0, m - D(G(z)))
--   G minimises E D(G(z)) + lambda_PT f_PT(S)
-- where f_PT, the pull-away term, is the mean squared cosine similarity
-- between the encoder codes S of different generated samples: it pushes G
-- away from producing near-identical samples (mode collapse).
-- The margin is on the energy's scale: on Fashion-MNIST in [-1, 1] a blank
-- (all-zero) reconstruction costs 0.69 per pixel, the mean image 0.35, and a
-- trained D reconstructs real images at about 0.06. m = 0.1 (the default)
-- asks D to keep samples just above the real energies, so G still gets a
-- gradient toward the data. m = 1 (above a blank image) failed, measured at
-- seed 1: e_fake climbed to 0.93-0.97, near the margin, by step 500 while the
-- samples stayed grey noise (FD 1463, one class); with "sum" energies (the
-- paper's) m would scale with the 784 pixels. lambda_PT = 0.1 (the paper's).
-- Adam(2e-4, 0.5, 0.999) for both nets (--lr-d for D alone).
--
--   luagan run ebgan                          # the defaults (see --help)
--   luagan run ebgan --margin 0.2 --pullaway 0
--   luagan run ebgan --steps 3000
--
-- Nets: G is the DCGAN / "InfoGAN architecture" generator (Chen et al. 2016);
-- D's encoder is that D's convolutional trunk with a 64-unit linear code,
-- its decoder a DCGAN generator from the code (lg.nets.autoencoder_D).
-- What to expect (measured, seed 1, defaults, docs/RESULTS.md): e_real falls
-- from 0.59 to 0.10 within 100 steps and to 0.06 by the end, while e_fake
-- stays near 0.12, just above the margin; pt (the pull-away term, 0 =
-- orthogonal codes, 1 = identical) rises slowly from 0.05 to 0.28. Samples
-- after the default 1000 steps are recognisable shirts, pullovers, trousers,
-- sneakers and bags: FD 104, all 10 classes (dcgan at 1000 steps: 92).
-- Over seeds 1-3 (2026-12-06, bench/results.lua): FD 93.2, 79.9, 101.1
-- (91.4 +- 6.2), ~233 CPU-seconds a run.
local lg = require "luagan"
local kit, nets = lg.recipe_kit, lg.nets

return require("luagan.recipe"){
  name = "ebgan",
  about = "Energy-based GAN (autoencoder D, margin, pull-away term) at 28x28 on Fashion-MNIST "
          .. "(Zhao et al. 2017)",
  options = {
    {"steps", 1000, "generator updates (938 per epoch at batch 64)"},
    kit.BATCH,
    {"margin", 0.1, "margin m of the fake energies (per-pixel mean squared error)"},
    {"pullaway", 0.1, "weight lambda_PT of the pull-away term (0 = off)"},
    {"code", 64, "size of the autoencoder's code"},
    kit.NZ,
    {"lr", 2e-4, "Adam learning rate of G"},
    {"lr_d", 2e-4, "Adam learning rate of D"},
    kit.BETAS,
    kit.LIMIT,
    {"sample_every", 250, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, code = 8},

  setup = function(opt)
    return kit.gan_state{opt = opt, G = nets.dcgan_G{nz = opt.nz}, D = nets.autoencoder_D{code = opt.code},
                         lr_d = opt.lr_d, data = kit.fashion_mnist(opt).images,
                         loss = lg.losses.ebgan{margin = opt.margin, pullaway = opt.pullaway, energy = "mean"}}
  end,

  -- D: the energies (reconstruction errors) of real images and fakes; G: the
  -- energy of its samples under the updated D, plus the pull-away term
  step = function(s, i)
    return kit.gan_step(s, {
      d_loss = function(c)
        local x, fd = c.x, c.fake_d
        c.e_real = s.loss.energy((s.D(x)), x)
        c.e_fake = s.loss.energy((s.D(fd)), fd)
        return s.loss.d(c.e_real, c.e_fake)
      end,
      g_loss = function(c)
        local recon, code = s.D(c.fake)
        c.code = code
        return s.loss.g(s.loss.energy(recon, c.fake), code)
      end,
      metrics = function(c, out)
        out.e_real, out.e_fake = c.e_real:detach():mean(), c.e_fake:detach():mean()
        out.pt = lg.no_grad(function() return lg.losses.pullaway(c.code:detach()) end)
      end,
    }, i)
  end,

  sample = kit.sampler(),
}
