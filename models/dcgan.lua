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
-- Cost: ~0.45 CPU-seconds a step on one core (40 steps: 18.8 s user). A
-- checkpoint with both Adam states is 159 MB. On a busy machine --threads 1 is
-- much faster than two threads that wait on each other (40 steps: 47 s vs
-- 123 s wall at load ~10; the default run took 73 min there with 2 threads).
local lg = require "luagan"
local nn, optim, data, image = lg.nn, lg.optim, lg.data, lg.image

local function make_G(nz)
  return nn.Sequential{
    nn.Linear(nz, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
    nn.Linear(1024, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
    nn.Reshape(128, 7, 7),
    nn.ConvTranspose2d(128, 64, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(64), nn.ReLU(),
    nn.ConvTranspose2d(64, 1, 4, {stride = 2, padding = 1}), nn.Tanh(),
  }
end

local function make_D()
  return nn.Sequential{
    nn.Conv2d(1, 64, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),
    nn.Conv2d(64, 128, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
    nn.Flatten(),
    nn.Linear(128 * 7 * 7, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
    nn.Linear(1024, 1),
  }
end

return require("luagan.recipe"){
  name = "dcgan",
  about = "DCGAN at 28x28 on Fashion-MNIST (Radford et al. 2016; InfoGAN/Lucic et al. architecture)",
  options = {
    {"steps", 1000, "generator updates (938 per epoch at batch 64)"},
    {"batch", 64, "batch size"},
    {"loss", "ns", "generator loss: ns non-saturating, mm minimax", choices = {"ns", "mm"}},
    {"nz", 100, "noise dimension"},
    {"lr", 2e-4, "Adam learning rate (both nets)"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    {"limit", 0, "train on the first N images only (0 = all 60000)"},
    {"sample_every", 250, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64},

  setup = function(opt)
    local ds = data.fashion_mnist{limit = opt.limit > 0 and opt.limit or nil}
    local G = nn.init.dcgan(make_G(opt.nz))
    local D = nn.init.dcgan(make_D())
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
    local x = s.data:next()
    local fake = s.G(lg.randn(s.opt.batch, s.opt.nz))
    -- D step: fakes detached, so G gets no gradient from it
    local real_logits, fake_logits = s.D(x), s.D(fake:detach())
    local ld = s.loss.d(real_logits, fake_logits)
    s.optD:zero_grad()
    ld:backward()
    s.optD:step()
    s.optD:zero_grad()   -- D's gradients are spent: free them before the G step's peak
    -- G step through the updated D, into G's gradients only (D's weight
    -- gradients would be thrown away: not computing them saves a D-weight-sized
    -- buffer at the peak and their matrix products)
    local lgen = s.loss.g(s.D(fake))
    s.optG:zero_grad()
    lgen:backward{inputs = s.optG:params()}
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
    local x = s.G(z)
    s.G:train()
    image.save_grid(path, x, {nrow = math.max(1, math.ceil(math.sqrt(x:size(1))))})
    return x
  end,
}
