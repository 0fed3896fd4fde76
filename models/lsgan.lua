-- lsgan.lua: Least Squares GAN (Mao et al. 2017, "Least Squares Generative
-- Adversarial Networks", arXiv:1611.04076) at 28x28 on Fashion-MNIST.
--
--   D minimises 1/2 E (D(x) - b)^2 + 1/2 E (D(G(z)) - a)^2
--   G minimises 1/2 E (D(G(z)) - c)^2
-- on D's raw output (no sigmoid). The defaults a, b, c = 0, 1, 1 are the
-- paper's "0-1 coding"; --a -1 --b 1 --c 0 is the form that minimises the
-- Pearson chi^2 divergence (b - c = 1, b - a = 2). The squared loss keeps
-- pushing fakes that D already classifies correctly but that lie far from the
-- decision boundary, so G gets gradients where the sigmoid cross-entropy
-- saturates.
--
--   luagan run lsgan                          # the defaults (see --help)
--   luagan run lsgan --a -1 --b 1 --c 0       # the Pearson chi^2 coding
--   luagan run lsgan --steps 3000             # sharper samples (FD about 46)
--
-- Nets: the DCGAN / "InfoGAN architecture" (Chen et al. 2016; lg.nets.dcgan_G,
-- dcgan_D, batch norm in both), Adam(2e-4, 0.5, 0.999), batch 64, pixels in
-- [-1, 1] (the paper's settings for its LSUN nets; Lucic et al. 2018 use the
-- same for Fashion-MNIST).
-- Budget: 2000 steps, the shortest at which every measured seed reaches
-- recognisable garments of all classes (docs/RESULTS.md, "Budget curves"):
-- FD 84 / 69 / 88 for seeds 1 / 2 / 3 at step 2000, but 169 / 138 / 163 at
-- 1500 and 696 / 335 at the old default of 1000. D leads early: loss_d falls
-- from about 0.26 to 0.06 by step 600 (d_real 0.89, d_fake 0.11 with 0-1
-- coding), then G catches up. Against its PyTorch twin (bench/twins/lsgan.py),
-- seeds 1-3 with later code: FD 70.2 / 68.4 / 78.8 vs the twin's 65.0 / 114.0 /
-- 73.9, no difference beyond the seed spread (Welch t -0.77). The records of
-- docs/results (2026-12-06, a 2-vCPU AMD EPYC, whose OpenBLAS kernels round
-- differently): FD 85.4 / 79.3 / 87.3, 572-597 CPU-seconds a run (3.4 steps per
-- CPU-second, two runs sharing the 2 cores).
local lg = require "luagan"
local kit, nets = lg.recipe_kit, lg.nets

return require("luagan.recipe"){
  name = "lsgan",
  about = "Least Squares GAN at 28x28 on Fashion-MNIST (Mao et al. 2017), --a --b --c targets",
  options = {
    {"steps", 2000, "generator updates (938 per epoch at batch 64)"},
    kit.BATCH,
    {"a", 0.0, "target of D for fakes"},
    {"b", 1.0, "target of D for real images"},
    {"c", 1.0, "target G wants D to give its fakes"},
    kit.NZ,
    kit.DCGAN_ADAM,
    kit.LIMIT,
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64},

  setup = function(opt)
    return kit.gan_state{opt = opt, G = nets.dcgan_G{nz = opt.nz}, D = nets.dcgan_D{},
                         data = kit.fashion_mnist(opt).images,
                         loss = lg.losses.lsgan{a = opt.a, b = opt.b, c = opt.c}}
  end,

  -- d_real, d_fake: D's raw outputs (no sigmoid)
  step = function(s, i) return kit.gan_step(s, {metrics = kit.d_means_raw}, i) end,

  -- G in eval mode (batch norm on its running statistics)
  sample = kit.sampler(),
}
