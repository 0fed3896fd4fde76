-- dcgan.lua: DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation
-- Learning with Deep Convolutional Generative Adversarial Networks",
-- arXiv:1511.06434) at 28x28 on Fashion-MNIST, in the "InfoGAN architecture"
-- used as the 28x28 standard by Lucic et al. 2018 ("Are GANs Created
-- Equal?"; Chen et al. 2016, appendix):
--
--   G: z100 -> FC 1024-BN-ReLU -> FC 128*7*7-BN-ReLU -> deconv4 s2 64-BN-ReLU
--        -> deconv4 s2 1 -> tanh                                 (N,1,28,28)
--   D: conv4 s2 64-LReLU(0.2) -> conv4 s2 128-BN-LReLU -> FC 1024-BN-LReLU -> FC 1
--
-- Weights N(0, 0.02), batch-norm gamma N(1, 0.02) (the DCGAN init), Adam
-- (2e-4, beta1 0.5, beta2 0.999), batch 64, pixels in [-1, 1], non-saturating
-- loss (--loss mm for the minimax one).
--
--   luagan run dcgan                          # the defaults (see --help)
--   luagan run dcgan --steps 5000             # ~5 epochs, for more detail
--   luagan sample out/dcgan/checkpoint.safetensors --n 100
--
-- What to expect (measured, seed 1, defaults): samples_final.png after 1000 steps
-- (~1 epoch) shows clearly recognisable shirts, pullovers, trousers,
-- sneakers, boots and bags, still blurry in the details (already recognisable,
-- blurrier, at step 500). D wins early: loss_d falls from 1.14 (steps 1-100) to
-- 0.74 (steps 150-250) while loss_g rises to 1.39; then G catches up and by
-- steps 900-1000 loss_d ~ 1.00, loss_g ~ 1.20, d_real ~ 0.63, d_fake ~ 0.36
-- (mean D(x), D(G(z))). A loss_d falling toward 0 with loss_g climbing means D
-- has won and G collapsed: restart with another --seed.
-- Over seeds 1-3 (2026-12-06, bench/results.lua, docs/RESULTS.md): FD 79.1,
-- 86.6, 79.1 (81.6 +- 2.5) against its PyTorch twin's 94.4, 89.0, 80.2
-- (87.9 +- 4.1); 239 CPU-seconds a run against the twin's 381.
-- Cost: ~0.45 CPU-seconds a step on one core (40 steps: 18.8 s user). A
-- checkpoint with both Adam states is 159 MB. On a busy machine --threads 1 is
-- much faster than two threads that wait on each other (40 steps: 47 s vs
-- 123 s wall at load ~10; the default run took 73 min there with 2 threads).
local lg = require "luagan"
local kit, nets = lg.recipe_kit, lg.nets

return require("luagan.recipe"){
  name = "dcgan",
  about = "DCGAN at 28x28 on Fashion-MNIST (Radford et al. 2016; InfoGAN/Lucic et al. architecture)",
  options = {
    {"steps", 1000, "generator updates (938 per epoch at batch 64)"},
    kit.BATCH,
    {"loss", "ns", "generator loss: ns non-saturating, mm minimax", choices = {"ns", "mm"}},
    kit.NZ,
    kit.DCGAN_ADAM,
    kit.LIMIT,
    {"sample_every", 250, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64},

  -- the nets of the header (lg.nets), DCGAN init
  setup = function(opt)
    return kit.gan_state{opt = opt, G = nets.dcgan_G{nz = opt.nz}, D = nets.dcgan_D{},
                         data = kit.fashion_mnist(opt).images,
                         loss = lg.losses.make(opt.loss == "mm" and "mmgan" or "nsgan")}
  end,

  -- D on real and detached fakes, then G through the updated D on the same fakes
  step = function(s, i) return kit.gan_step(s, {metrics = kit.d_means}, i) end,

  -- G in eval mode (batch norm on its running statistics), so a sample does
  -- not depend on the rest of its batch.
  sample = kit.sampler(),
}
