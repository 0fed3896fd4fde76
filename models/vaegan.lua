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
-- Dec(mu(x)); rows 5-8 random samples Dec(z), z ~ N(0, I). What to expect
-- (measured, docs/RESULTS.md "Issue-19 defaults"): reconstructions
-- are sharp and faithful early (stripes, logos, shoe shapes), far sharper
-- than a pixel-loss VAE's; random samples from the prior take longer, since
-- the aggregate posterior (KL ~43-47 nats) must come to cover N(0, I): their
-- FD is 207 at 2000 steps, 147 at 4000 and 121 at the default 6000 (seed 1;
-- seeds 2 and 3: 123 and 118 at 6000, 141 and 159 at 4000; ~490 CPU s, about
-- 12 steps/s on one core), while the test reconstruction MSE goes 0.077 ->
-- 0.070 -> 0.069 and the linear probe on mu(x) 0.816 -> 0.826 -> 0.833. Its
-- PyTorch twin (bench/twins/vaegan.py, seeds 1-3, 2026-12-06) is level: FD
-- 123.3 against luagan's 120.9, probe 0.832 against 0.833, reconstruction
-- MSE 0.072 against 0.071. finish() writes eval.json: the test reconstruction error (per
-- pixel, [-1,1] scale) and the linear-probe accuracy of mu(x) (lg.eval).
local lg = require "luagan"
local nn, kit, nets = lg.nn, lg.recipe_kit, lg.nets

-- conv4 s2 ch-LReLU -> conv4 s2 2ch-BN-LReLU (trunk: (N,1,28,28) -> (N,2ch,7,7)),
-- then flatten -> (FC hidden-BN-LReLU) -> FC nout (head): the 28x28 DCGAN D
-- of lg.nets in two parts
local function trunk_and_head(opt, nout)
  local L = nets.dcgan_D_layers{ch = opt.ch, hidden = opt.hidden, out = nout}
  return nets.seq(L, 1, 5), nets.seq(L, 6)
end

-- Enc(x) -> mu (N,nz), log variance (N,nz)
local Encoder = nn.Module:extend("Encoder")
function Encoder:init(opt)
  self.nz = opt.nz
  local trunk, head = trunk_and_head(opt, 2 * opt.nz)
  self.trunk = trunk      -- registered before the head: the order of init and state
  self.head = head
end
function Encoder:forward(x)
  local h = self.head(self.trunk(x))
  return h:narrow(2, 1, self.nz), h:narrow(2, self.nz + 1, self.nz)
end

-- Dis(x) -> logits (N,1), Dis_l(x) (N, 2ch*7*7)
local Dis = nn.Module:extend("Dis")
function Dis:init(opt)
  local trunk, head = trunk_and_head(opt, 1)
  self.trunk = trunk
  self.head = head
end
function Dis:forward(x)
  local f = self.trunk(x)
  return self.head(f), f:flatten(2)
end

-- Set p.grad for each parameter of params from the list grads (nil: unused).
local function set_grads(params, grads)
  for i, p in ipairs(params) do p.grad = grads[i] end
end

local EQUILIBRIUM = 0.68

return require("luagan.recipe"){
  name = "vaegan",
  about = "VAE-GAN on Fashion-MNIST (Larsen et al. 2016): reconstruction in D's feature space",
  options = {
    {"steps", 6000, "training steps (937 per epoch at batch 64)"},
    kit.BATCH,
    {"nz", 32, "latent dimension"},
    {"gamma", 1e-2, "weight of L_llike in the decoder's loss (against the GAN loss)"},
    {"beta", 1.0, "weight of the KL prior term in the encoder's loss"},
    {"margin", 0.35, "equilibrium gating around BCE 0.68 (0 = always update D and Dec)"},
    {"ch", 32, "base channels (64 = the reference DCGAN widths)"},
    {"hidden", 0, "width of an extra FC layer in Enc, Dec and Dis (0 = none)"},
    {"lr", 2e-4, "Adam learning rate (all three nets)"},
    kit.BETAS,
    kit.LIMIT,
    kit.RECON_EVAL,
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 1000, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, ch = 4, nz = 4, eval_n = 0},

  setup = function(opt)
    local ds, test = kit.fashion_mnist(opt), kit.fashion_mnist(opt, "test")
    local E = nn.init.dcgan(Encoder(opt))
    local G = nets.dcgan_G{nz = opt.nz, ch = opt.ch, hidden = opt.hidden}
    local D = nn.init.dcgan(Dis(opt))
    local s = {opt = opt, E = E, G = G, D = D}
    s.optE, s.optG = kit.adam_pair(E, G, opt)
    s.optD = lg.optim.Adam(D:parameters(), {lr = opt.lr, betas = {opt.beta1, opt.beta2}})
    s.data = kit.stream(opt, ds.images)
    s.fixed_z = lg.randn(40, opt.nz)
    s.fixed_x = kit.fixed_images(test.images)    -- 20 test images for the grid
    s.sets = {train = ds, test = test}             -- not checkpointed (no state_dict)
    return s
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
  sample = kit.recon_sampler(),

  -- Test reconstruction error of Dec(mu(x)) and a linear probe on mu(x).
  finish = function(s, out) kit.recon_probe(s, out, {recipe = "vaegan", code = "mu(x)"}) end,
}
