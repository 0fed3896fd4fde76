-- gan.lua: the original GAN (Goodfellow et al. 2014, "Generative Adversarial
-- Nets", arXiv:1406.2661) with multilayer perceptrons on Fashion-MNIST.
--
--   luagan run gan                           # non-saturating loss, k = 1
--   luagan run gan --loss mm --k 2           # the minimax game of the paper, 2 D steps per G step
--
-- G: z100 -> 128 -> 256 -> 512 -> 1024 -> 784, tanh out, LeakyReLU 0.2, batch
-- norm after every hidden layer but the first; D: 784 -> 512 -> 256 -> 1,
-- LeakyReLU 0.2 (the reference 28x28 MLPs, docs/recipes.md). Adam(2e-4, 0.5, 0.999),
-- batch 64, pixels in [-1, 1]. Each step is k discriminator updates (fresh
-- real batch and noise each) then one generator update on the last fakes.
--   --loss ns: G minimises E[-log D(G(z))] (the paper's practical advice);
--   --loss mm: G minimises E[log(1 - D(G(z)))], whose gradient vanishes when D
--              rejects the fakes confidently (early in training): the paper's
--              reason to train G with ns instead.
-- What to expect (measured, docs/RESULTS.md "Budget curves"): an MLP GAN
-- needs many more updates than the convolutional recipes. At 4000 steps (the
-- old default) the samples are blurry shirts, trousers and shoes in speckle
-- noise, FD 344; FD falls steadily to 183-192 at 15000-20000 steps and
-- reaches 145, 133 and 140 (seeds 1-3) at the default 40000 steps (43
-- epochs): ~6 CPU-minutes on an idle core (~110 steps/s), 1002 CPU s on a
-- loaded one. Seeds 1-3 again beside the PyTorch twin (bench/twins/gan.py,
-- 2026-12-06, two single-thread runs on a 2-vCPU Xeon): FD 143.6 / 134.0 /
-- 140.0 (mean 139.2) against the twin's 140.7 / 130.1 / 155.4 (142.1), Welch
-- t -0.36; 532-546 CPU s (74 steps per CPU-second) against 933-994. Both
-- sides draw too few pullovers (92-384 of 10,000 samples, every seed). For ns, loss_d climbs towards 2 log 2 = 1.39 (D nearly fooled) and
-- d_real / d_fake (mean D(x), D(G(z))) settle near 0.52 / 0.48.
local lg = require "luagan"
local nn, kit, nets = lg.nn, lg.recipe_kit, lg.nets

local function make_G(nz)
  local sizes = {nz, 128, 256, 512, 1024}
  local layers = {}
  for i = 1, #sizes - 1 do
    layers[#layers + 1] = nn.Linear(sizes[i], sizes[i + 1])
    if i > 1 then layers[#layers + 1] = nn.BatchNorm1d(sizes[i + 1]) end
    layers[#layers + 1] = nn.LeakyReLU(0.2)
  end
  layers[#layers + 1] = nn.Linear(1024, 784)
  layers[#layers + 1] = nn.Tanh()
  return nn.Sequential(layers)
end

return require("luagan.recipe"){
  name = "gan",
  about = "MLP GAN on Fashion-MNIST (Goodfellow et al. 2014), --loss ns|mm, k D steps per G step",
  options = {
    {"steps", 40000, "generator updates"},
    {"batch", 64, "batch size"},
    {"loss", "ns", "generator loss: ns non-saturating, mm minimax", choices = {"ns", "mm"}},
    {"k", 1, "discriminator updates per generator update"},
    {"nz", 100, "noise dimension"},
    {"lr", 2e-4, "Adam learning rate (both nets)"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    kit.LIMIT,
    {"sample_every", 5000, "write samples_STEP.png every N steps"},
    {"ckpt_every", 5000, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, k = 2},

  setup = function(opt)
    if opt.k < 1 then require("luagan.recipe").fail("gan: --k must be >= 1") end
    return kit.gan_state{opt = opt, G = make_G(opt.nz), D = nets.mlp({784, 512, 256, 1}, {act = "lrelu"}),
                         data = kit.fashion_mnist(opt).images,
                         loss = lg.losses.make(opt.loss == "mm" and "mmgan" or "nsgan")}
  end,

  -- k D updates (fresh real batch and noise each), then G on the last fakes
  step = function(s, i)
    return kit.gan_step(s, {n_d = s.opt.k, metrics = kit.d_means,
                            real = function(c) return s.data:next():view(c.B, 784) end}, i)
  end,

  -- G in eval mode (batch norm on its running statistics), so a sample does
  -- not depend on the rest of its batch.
  sample = kit.sampler{generate = function(s, z) return s.G(z):view(-1, 1, 28, 28) end},
}
