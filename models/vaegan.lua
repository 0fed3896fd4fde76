-- vaegan.lua: VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016,
-- "Autoencoding beyond pixels using a learned similarity metric",
-- arXiv:1512.09300) on Fashion-MNIST: a VAE whose decoder is also a GAN
-- generator, and whose reconstruction error is measured in the feature space
-- of the discriminator instead of pixel space.
--
--   luagan run vaegan                        # the defaults (see --help)
--   luagan run vaegan --gamma 1e-3           # more GAN, less reconstruction for the decoder
--   luagan run vaegan --margin 0             # no equilibrium gating
--
-- Enc(x) -> (mu, log var), z = mu + sigma * eps; Dec = G; Dis with the
-- intermediate layer Dis_l (the second conv block's output, 2ch x 7 x 7):
--   L_prior = KL(q(z|x) || N(0, I))                    (sum over z, batch mean)
--   L_llike = 1/2 |Dis_l(x) - Dis_l(Dec(Enc(x)))|^2    (sum over features, batch mean:
--                                                       a unit-variance Gaussian in Dis_l)
--   L_GAN   = E sp(-Dis(x)) + E sp(Dis(Dec(z_p))) + E sp(Dis(Dec(Enc(x))))  (D's BCE)
--   Enc <- beta L_prior + L_llike;  Dec <- gamma L_llike + the non-saturating G loss on
--   both fakes (E sp(-Dis(Dec(z_p))) + E sp(-Dis(Dec(Enc(x)))));  Dis <- L_GAN.
-- The GAN gradient never reaches the encoder: each net's gradient is taken of
-- its own loss with lg.grad from one shared forward pass (Larsen et al.
-- 2016). Equilibrium gating as in the reference code: D is not updated
-- while its real or fake BCE is below 0.68 - margin, the decoder not while
-- either is above 0.68 + margin (both are, if both would be skipped).
-- gamma: the reference code uses 1e-6..5e-5 with its own scaling of L_llike;
-- here L_llike is a per-image sum over 3136 features (~1e2..1e3) and the GAN
-- loss a per-image BCE (~1), so the default 1e-2 gives them a comparable pull.
-- Nets: the 28x28 DCGAN ones at half width; Enc mirrors Dis with an FC 2*nz head.
--
-- Samples: rows 1 and 3 are test images, rows 2 and 4 their reconstructions
-- Dec(mu(x)); rows 5-8 random samples Dec(z), z ~ N(0, I). What to expect:
-- after the default 2000 steps (~4 min of one core) reconstructions are sharp
-- and faithful (stripes, logos, shoe shapes), far sharper than a pixel-loss
-- VAE's; random samples from the prior lag behind (noisy garment shapes: the
-- aggregate posterior, KL ~43 nats, does not cover N(0, I) yet). finish()
-- writes eval.json: the test reconstruction error (per pixel, [-1,1] scale)
-- and the linear-probe accuracy of mu(x) (lg.eval).
local lg = require "luagan"
local nn, optim, data, image = lg.nn, lg.optim, lg.data, lg.image

local function make_G(opt)
  local ch, layers, nin = opt.ch, {}, opt.nz
  if opt.hidden > 0 then
    for _, m in ipairs{nn.Linear(nin, opt.hidden), nn.BatchNorm1d(opt.hidden), nn.ReLU()} do
      layers[#layers + 1] = m
    end
    nin = opt.hidden
  end
  for _, m in ipairs{
    nn.Linear(nin, 2 * ch * 7 * 7), nn.BatchNorm1d(2 * ch * 7 * 7), nn.ReLU(),
    nn.Reshape(2 * ch, 7, 7),
    nn.ConvTranspose2d(2 * ch, ch, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(ch), nn.ReLU(),
    nn.ConvTranspose2d(ch, 1, 4, {stride = 2, padding = 1}), nn.Tanh(),
  } do layers[#layers + 1] = m end
  return nn.Sequential(layers)
end

-- conv4 s2 ch-LReLU -> conv4 s2 2ch-BN-LReLU: (N,1,28,28) -> (N,2ch,7,7)
local function conv_trunk(ch)
  return nn.Sequential{
    nn.Conv2d(1, ch, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),
    nn.Conv2d(ch, 2 * ch, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(2 * ch), nn.LeakyReLU(0.2),
  }
end

-- flatten -> (FC hidden-BN-LReLU) -> FC nout
local function fc_head(opt, nout)
  local layers, nin = {nn.Flatten()}, 2 * opt.ch * 7 * 7
  if opt.hidden > 0 then
    for _, m in ipairs{nn.Linear(nin, opt.hidden), nn.BatchNorm1d(opt.hidden), nn.LeakyReLU(0.2)} do
      layers[#layers + 1] = m
    end
    nin = opt.hidden
  end
  layers[#layers + 1] = nn.Linear(nin, nout)
  return nn.Sequential(layers)
end

-- Enc(x) -> mu (N,nz), log variance (N,nz)
local Encoder = nn.Module:extend("Encoder")
function Encoder:init(opt)
  self.nz = opt.nz
  self.trunk = conv_trunk(opt.ch)
  self.head = fc_head(opt, 2 * opt.nz)
end
function Encoder:forward(x)
  local h = self.head(self.trunk(x))
  return h:narrow(2, 1, self.nz), h:narrow(2, self.nz + 1, self.nz)
end

-- Dis(x) -> logits (N,1), Dis_l(x) (N, 2ch*7*7)
local Dis = nn.Module:extend("Dis")
function Dis:init(opt)
  self.trunk = conv_trunk(opt.ch)
  self.head = fc_head(opt, 1)
end
function Dis:forward(x)
  local f = self.trunk(x)
  return self.head(f), f:flatten(2)
end

-- Set p.grad for each parameter of params from the list grads (nil: unused).
local function set_grads(params, grads)
  for i, p in ipairs(params) do p.grad = grads[i] end
end

local function encode_all(E, x)
  return lg.no_grad(function()
    E:eval()
    local parts = {}
    for i = 1, x:size(1), 500 do
      local mu = E(x:narrow(1, i, math.min(500, x:size(1) - i + 1)))
      parts[#parts + 1] = mu
    end
    E:train()
    return lg.cat(parts, 1)
  end)
end

local function decode_all(G, z)
  return lg.no_grad(function()
    G:eval()
    local parts = {}
    for i = 1, z:size(1), 500 do parts[#parts + 1] = G(z:narrow(1, i, math.min(500, z:size(1) - i + 1))) end
    G:train()
    return lg.cat(parts, 1)
  end)
end

local EQUILIBRIUM = 0.68

return require("luagan.recipe"){
  name = "vaegan",
  about = "VAE-GAN on Fashion-MNIST (Larsen et al. 2016): reconstruction in D's feature space",
  options = {
    {"steps", 2000, "training steps (937 per epoch at batch 64)"},
    {"batch", 64, "batch size"},
    {"nz", 32, "latent dimension"},
    {"gamma", 1e-2, "weight of L_llike in the decoder's loss (against the GAN loss)"},
    {"beta", 1.0, "weight of the KL prior term in the encoder's loss"},
    {"margin", 0.35, "equilibrium gating around BCE 0.68 (0 = always update D and Dec)"},
    {"ch", 32, "base channels (64 = the reference DCGAN widths)"},
    {"hidden", 0, "width of an extra FC layer in Enc, Dec and Dis (0 = none)"},
    {"lr", 2e-4, "Adam learning rate (all three nets)"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    {"limit", 0, "train on the first N images only (0 = all 60000)"},
    {"eval_n", 2000, "test images for the reconstruction error and probe at the end (0 = skip)"},
    {"probe_n", 10000, "training images for the linear probe"},
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 1000, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, ch = 4, nz = 4, eval_n = 0},

  setup = function(opt)
    local limit = opt.limit > 0 and opt.limit or nil
    local ds = data.fashion_mnist{limit = limit}
    local test = data.fashion_mnist{split = "test", limit = limit}
    local E = nn.init.dcgan(Encoder(opt))
    local G = nn.init.dcgan(make_G(opt))
    local D = nn.init.dcgan(Dis(opt))
    local betas = {opt.beta1, opt.beta2}
    local idx = {}
    for i = 1, 20 do idx[i] = (i - 1) % test.images:size(1) + 1 end
    return {
      opt = opt, E = E, G = G, D = D,
      optE = optim.Adam(E:parameters(), {lr = opt.lr, betas = betas}),
      optG = optim.Adam(G:parameters(), {lr = opt.lr, betas = betas}),
      optD = optim.Adam(D:parameters(), {lr = opt.lr, betas = betas}),
      data = lg.train.stream(data.DataLoader(ds.images,
        {batch_size = opt.batch, shuffle = true, drop_last = true, seed = opt.seed})),
      fixed_z = lg.randn(40, opt.nz),
      fixed_x = test.images:index_select(1, lg.tensor(idx)),   -- 20 test images for the grid
      sets = {train = ds, test = test},                          -- not checkpointed (no state_dict)
    }
  end,

  step = function(s)
    local B, opt = s.opt.batch, s.opt
    local x = s.data:next()
    local mu, logvar = s.E(x)
    local z = mu + lg.randn(B, opt.nz) * (logvar * 0.5):exp()
    local xr = s.G(z)
    local xp = s.G(lg.randn(B, opt.nz))
    local l_real, f_real = s.D(x)
    local l_rec, f_rec = s.D(xr)
    local l_p = s.D(xp)
    local kl = ((mu * mu + logvar:exp() - logvar - 1) * 0.5):sum(2):mean()
    local diff = f_real - f_rec
    local llike = (diff * diff):sum(2):mean() * 0.5
    local bce_real = lg.softplus(-l_real):mean()
    local bce_fake = (lg.softplus(l_p):mean() + lg.softplus(l_rec):mean()) * 0.5
    local loss_dis = bce_real + bce_fake * 2
    local loss_dec = llike * opt.gamma + lg.softplus(-l_p):mean() + lg.softplus(-l_rec):mean()
    local loss_enc = kl * opt.beta + llike
    -- equilibrium gating (on this step's costs, before any update)
    local train_dis, train_dec = true, true
    local cr, cf = bce_real:item(), bce_fake:item()
    if opt.margin > 0 then
      if cr < EQUILIBRIUM - opt.margin or cf < EQUILIBRIUM - opt.margin then train_dis = false end
      if cr > EQUILIBRIUM + opt.margin or cf > EQUILIBRIUM + opt.margin then train_dec = false end
      if not train_dis and not train_dec then train_dis, train_dec = true, true end
    end
    -- each net's gradient of its own loss, all from the same forward pass
    local pe, pg, pd = s.E:parameters(), s.G:parameters(), s.D:parameters()
    set_grads(pe, lg.grad(loss_enc, pe, {retain_graph = true, allow_unused = true}))
    if train_dec then set_grads(pg, lg.grad(loss_dec, pg, {retain_graph = true, allow_unused = true})) end
    if train_dis then set_grads(pd, lg.grad(loss_dis, pd, {allow_unused = true})) end
    s.optE:step()
    s.optE:zero_grad()
    if train_dec then s.optG:step(); s.optG:zero_grad() end
    if train_dis then s.optD:step(); s.optD:zero_grad() end
    return {loss_dis = loss_dis, loss_dec = loss_dec, kl = kl, llike = llike,
            bce_real = cr, bce_fake = cf,
            dis_on = train_dis and 1 or 0, dec_on = train_dec and 1 or 0}
  end,

  -- Test images / reconstructions Dec(mu(x)) in alternating rows, then
  -- random samples; with o.n, n random samples Dec(z).
  sample = function(s, path, o)
    s.G:eval()
    if o.n then
      local x = s.G(lg.randn(o.n, s.opt.nz))
      s.G:train()
      image.save_grid(path, x, {nrow = math.max(1, math.ceil(math.sqrt(o.n)))})
      return x
    end
    s.E:eval()
    local rec = s.G((s.E(s.fixed_x)))
    s.E:train()
    local gen = s.G(s.fixed_z)
    s.G:train()
    local rows = {}
    for r = 0, 1 do
      rows[#rows + 1] = s.fixed_x:narrow(1, r * 10 + 1, 10)
      rows[#rows + 1] = rec:narrow(1, r * 10 + 1, 10)
    end
    rows[#rows + 1] = gen
    image.save_grid(path, lg.cat(rows, 1), {nrow = 10})
    return gen
  end,

  -- Test reconstruction error of Dec(mu(x)) and a linear probe on mu(x).
  finish = function(s, out)
    local n = math.min(s.opt.eval_n, s.sets.test.images:size(1))
    if n <= 0 then return end
    local xt, yt = s.sets.test.images:narrow(1, 1, n), s.sets.test.labels:narrow(1, 1, n)
    local zt = encode_all(s.E, xt)
    local err = lg.eval.reconstruction_error(xt, decode_all(s.G, zt))
    local m = math.min(s.opt.probe_n, s.sets.train.images:size(1))
    local ztr = encode_all(s.E, s.sets.train.images:narrow(1, 1, m))
    local acc, acc_tr = lg.eval.linear_probe(ztr, s.sets.train.labels:narrow(1, 1, m), zt, yt)
    local r = {recipe = "vaegan", recon_mse = err.mse, recon_l1 = err.l1, probe_test = acc,
               probe_train = acc_tr, n_test = n, n_probe_train = m}
    lg.io.write_atomic(out .. "/eval.json", lg.io.json_encode(r) .. "\n")
    print(string.format("vaegan: test reconstruction mse %.4f l1 %.4f (%d images); linear probe on mu(x): " ..
                        "%.4f test, %.4f train (%d train images) (%s/eval.json)",
                        err.mse, err.l1, n, acc, acc_tr, m, out))
  end,
}
