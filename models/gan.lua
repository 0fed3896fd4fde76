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
-- What to expect (measured, seed 1, defaults: 4000 steps = 4.3 epochs; 1.6 CPU-minutes,
-- 11m37s wall with --threads 1 on a heavily shared 2-core machine): blurry but
-- recognisable shirts, trousers, sneakers, boots and bags with speckle noise.
-- For ns, loss_d climbs from 1.21 (steps 1-500) to 1.32 (steps 3500-4000, close
-- to 2 log 2 = 1.39, D nearly fooled) while loss_g peaks at 1.08 (steps 500-1000)
-- and falls to 0.90, and d_real / d_fake (mean D(x), D(G(z))) converge to
-- 0.53 / 0.47. For sharper samples train longer (--steps 20000) or use `dcgan`.
local lg = require "luagan"
local nn, optim, data, image = lg.nn, lg.optim, lg.data, lg.image

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

local function make_D()
  return nn.Sequential{
    nn.Linear(784, 512), nn.LeakyReLU(0.2),
    nn.Linear(512, 256), nn.LeakyReLU(0.2),
    nn.Linear(256, 1),
  }
end

return require("luagan.recipe"){
  name = "gan",
  about = "MLP GAN on Fashion-MNIST (Goodfellow et al. 2014), --loss ns|mm, k D steps per G step",
  options = {
    {"steps", 4000, "generator updates"},
    {"batch", 64, "batch size"},
    {"loss", "ns", "generator loss: ns non-saturating, mm minimax", choices = {"ns", "mm"}},
    {"k", 1, "discriminator updates per generator update"},
    {"nz", 100, "noise dimension"},
    {"lr", 2e-4, "Adam learning rate (both nets)"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    {"limit", 0, "train on the first N images only (0 = all 60000)"},
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 1000, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, k = 2},

  setup = function(opt)
    if opt.k < 1 then require("luagan.recipe").fail("gan: --k must be >= 1") end
    local ds = data.fashion_mnist{limit = opt.limit > 0 and opt.limit or nil}
    local G, D = make_G(opt.nz), make_D()
    local betas = {opt.beta1, opt.beta2}
    return {
      opt = opt, G = G, D = D,
      optG = optim.Adam(G:parameters(), {lr = opt.lr, betas = betas}),
      optD = optim.Adam(D:parameters(), {lr = opt.lr, betas = betas}),
      data = lg.train.stream(data.DataLoader(ds.images, {batch_size = opt.batch, shuffle = true,
                                                         drop_last = true, seed = opt.seed})),
      loss = lg.losses.make(opt.loss == "mm" and "mmgan" or "nsgan"),
      fixed_z = lg.randn(64, opt.nz),
    }
  end,

  step = function(s)
    local B, nz = s.opt.batch, s.opt.nz
    local fake, ld, real_logits, fake_logits
    for _ = 1, s.opt.k do
      local x = s.data:next():view(B, 784)
      fake = s.G(lg.randn(B, nz))
      real_logits, fake_logits = s.D(x), s.D(fake:detach())
      ld = s.loss.d(real_logits, fake_logits)
      s.optD:zero_grad()
      ld:backward()
      s.optD:step()
    end
    -- G step on the last fakes; D's gradients from it are cleared by its next zero_grad
    local lgen = s.loss.g(s.D(fake))
    s.optG:zero_grad()
    lgen:backward()
    s.optG:step()
    return {loss_d = ld, loss_g = lgen,
            d_real = real_logits:detach():sigmoid():mean(),
            d_fake = fake_logits:detach():sigmoid():mean()}
  end,

  -- G in eval mode (batch norm on its running statistics), so a sample does
  -- not depend on the rest of its batch.
  sample = function(s, path, o)
    local z = o.n and lg.randn(o.n, s.opt.nz) or s.fixed_z
    s.G:eval()
    local x = s.G(z):view(-1, 1, 28, 28)
    s.G:train()
    image.save_grid(path, x, {nrow = math.max(1, math.ceil(math.sqrt(x:size(1))))})
    return x
  end,
}
