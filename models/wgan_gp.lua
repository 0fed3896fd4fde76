-- wgan_gp.lua: Wasserstein GAN with gradient penalty (Gulrajani et al. 2017,
-- "Improved Training of Wasserstein GANs", arXiv:1704.00028) at 28x28 on
-- Fashion-MNIST.
--
--   critic minimises E f(G(z)) - E f(x) + lambda E (||grad f(x_hat)||_2 - 1)^2,
--     x_hat = eps x + (1 - eps) G(z), eps ~ U[0,1] per sample;
--   G minimises -E f(G(z)).
-- The penalty differentiates the critic's input gradient with respect to its
-- weights (a gradient of a gradient: lg.penalties.gradient_penalty). It needs
-- per-sample gradients, so the critic has no batch norm: layer norm here
-- (--critic-norm layer, as the authors' larger models), or none (their MNIST
-- critic). lambda = 10, Adam(1e-4, beta1 0.5, beta2 0.9): the betas of the
-- authors' MNIST code (gan_mnist.py); --beta1 0 --n-critic 5 gives the
-- paper's Algorithm 1 (beta1 = 0, beta2 = 0.9, five critic updates).
--
--   luagan run wgan_gp                        # the defaults (see --help)
--   luagan run wgan_gp --critic-norm none --beta1 0
--   luagan run wgan_gp --steps 2000
--
-- One step = one generator update after n_critic critic updates. G: the
-- DCGAN / "InfoGAN architecture" (batch norm); critic: the same D with layer
-- norm in place of batch norm (lg.nets).
-- Budget: one critic update per generator update (--n-critic 1) for 1500
-- steps. The paper's n_critic = 5 spends five critic steps, each costing
-- about three plain ones (the double backward), per generator step: its old
-- default of 200 steps (about 4 CPU-minutes) stopped at FD 530, and 15
-- CPU-minutes buy only about 700 such steps. With the gradient penalty
-- keeping the critic's slope in check, one critic step is enough here:
-- FD 156 / 113 / 56 at 750 / 1000 / 2000 steps for seed 1, and 162 / 119 /
-- 85 / 82 at 750 / 1000 / 1250 / 1500 for seed 2 (docs/RESULTS.md, "Budget
-- curves"). At exactly the default (2026-12-06, seeds 1 / 2 / 3): FD 76.0 /
-- 82.0 / 74.5, 790-803 CPU s each on a 2-vCPU Intel Xeon (1.9 steps per
-- CPU-second); about 8-13 CPU-minutes on one core. Its PyTorch twin
-- (bench/twins/wgan_gp.py, same seeds and settings): 84.3 / 79.7 / 81.0,
-- mean 81.7 against luagan's 77.5 (Welch t -1.57: level), 792-800 CPU s.
-- --n-critic 5 --steps 2000
-- is the paper's schedule. wdist (E f(x) - E f(G(z))) falls steadily and
-- grad_norm (the mean input-gradient norm at x_hat) stays near 1.
local lg = require "luagan"
local kit, nets = lg.recipe_kit, lg.nets

return require("luagan.recipe"){
  name = "wgan_gp",
  about = "WGAN with gradient penalty at 28x28 on Fashion-MNIST (Gulrajani et al. 2017)",
  options = {
    {"steps", 1500, "generator updates (each after --n-critic critic updates)"},
    kit.BATCH,
    {"n_critic", 1, "critic updates per generator update (5: the paper's Algorithm 1)"},
    {"lambda", 10.0, "gradient-penalty weight"},
    {"critic_norm", "layer", "normalisation in the critic (no batch norm with a gradient penalty)",
     choices = {"layer", "none"}},
    {"lr", 1e-4, "Adam learning rate (both nets)"},
    {"beta1", 0.5, "Adam beta1 (0: the paper's Algorithm 1)"},
    {"beta2", 0.9, "Adam beta2"},
    kit.NZ,
    kit.LIMIT,
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 2, batch = 8, limit = 64, n_critic = 2},

  setup = function(opt)
    if opt.n_critic < 1 then require("luagan.recipe").fail("wgan_gp: --n-critic must be >= 1") end
    return kit.gan_state{opt = opt, G = nets.dcgan_G{nz = opt.nz}, D = nets.dcgan_D{norm = opt.critic_norm},
                         data = kit.fashion_mnist(opt).images, loss = lg.losses.wgan()}
  end,

  -- n_critic critic updates on fresh fakes with the penalty, then G
  step = function(s, i)
    return kit.gan_step(s, {
      fresh = true,
      n_d = s.opt.n_critic,
      d_loss = function(c) return kit.d_loss(c), c:gradient_penalty(s.opt.lambda) end,
      metrics = function(c, out)
        out.gp, out.wdist, out.grad_norm = c.penalty, -c.loss_d:item(), c.gp_stats.grad_norm
      end,
    }, i)
  end,

  sample = kit.sampler(),
}
