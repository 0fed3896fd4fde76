-- bigan.lua: BiGAN (Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature
-- Learning", arXiv:1605.09782; the same game as ALI, Dumoulin et al. 2017)
-- on Fashion-MNIST: an encoder E(x) is learned together with G(z) by a
-- discriminator that sees (image, code) pairs.
--
--   luagan run bigan                         # the defaults (see --help)
--   luagan run bigan --nz 64 --steps 6000
--
-- D(x, z) tells encoder pairs (x, E(x)), x from the data, from generator
-- pairs (G(z), z), z ~ N(0, I):
--   D minimises      E sp(-D(x, E(x))) + E sp(D(G(z), z))
--   G and E minimise E sp(D(x, E(x))) + E sp(-D(G(z), z))   (labels flipped)
-- (Donahue et al. 2017; Dumoulin et al. 2017). At the optimum E inverts G, so G(E(x))
-- reconstructs x although no reconstruction loss is ever used. Both updates
-- are taken from one forward pass with lg.grad (simultaneous gradient steps,
-- as in the reference code). Adam(2e-4, 0.5, 0.999), batch 64.
-- Nets (28x28 DCGAN family, half width): G as in dcgan; E mirrors D's conv
-- trunk with an FC nz head; D(x, z): x -> conv4 s2 ch-LReLU -> conv4 s2
-- 2ch-BN-LReLU -> flatten, z -> FC 512-LReLU, joined -> FC 512-LReLU-dropout
-- -> FC 1.
--
-- Samples: rows 1 and 3 are test images, rows 2 and 4 their reconstructions
-- G(E(x)); rows 5-8 random samples G(z). What to expect: D stays ahead
-- (D(x, E(x)) ~0.8, D(G(z), z) ~0.2); after the default 2000 steps random
-- samples are varied garments of modest quality, and reconstructions keep
-- the class and rough shape of most inputs (shoe -> shoe, trousers ->
-- trousers) but not their details: BiGAN reconstructions are semantic, not
-- pixel-exact. At 2000 steps E's features do no better than a random
-- encoder's in the linear probe (BiGAN is slow; longer runs not measured
-- here). finish() writes
-- eval.json: the test reconstruction error and the linear-probe accuracy of
-- E(x) (lg.eval).
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

-- conv4 s2 ch-LReLU -> conv4 s2 2ch-BN-LReLU -> flatten: (N,1,28,28) -> (N, 2ch*49)
local function conv_trunk(ch)
  return nn.Sequential{
    nn.Conv2d(1, ch, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),
    nn.Conv2d(ch, 2 * ch, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(2 * ch), nn.LeakyReLU(0.2),
    nn.Flatten(),
  }
end

local function make_E(opt)
  local layers, nin = {conv_trunk(opt.ch)}, 2 * opt.ch * 7 * 7
  if opt.hidden > 0 then
    for _, m in ipairs{nn.Linear(nin, opt.hidden), nn.BatchNorm1d(opt.hidden), nn.LeakyReLU(0.2)} do
      layers[#layers + 1] = m
    end
    nin = opt.hidden
  end
  layers[#layers + 1] = nn.Linear(nin, opt.nz)
  return nn.Sequential(layers)
end

-- D(x (N,1,28,28), z (N,nz)) -> logits (N,1)
local JointD = nn.Module:extend("JointD")
function JointD:init(opt)
  self.x_path = conv_trunk(opt.ch)
  self.z_path = nn.Sequential{nn.Linear(opt.nz, 512), nn.LeakyReLU(0.2)}
  self.joint = nn.Sequential{
    nn.Linear(2 * opt.ch * 7 * 7 + 512, 512), nn.LeakyReLU(0.2), nn.Dropout(opt.dropout),
    nn.Linear(512, 1),
  }
end
function JointD:forward(x, z)
  return self.joint(lg.cat({self.x_path(x), self.z_path(z)}, 2))
end

-- n latent codes (n, nz) from the prior: N(0, I), or U(-1, 1) per dimension
-- as in the BiGAN paper.
local function draw_z(opt, n)
  if opt.prior == "uniform" then return lg.rand(n, opt.nz) * 2 - 1 end
  return lg.randn(n, opt.nz)
end

local function set_grads(params, grads)
  for i, p in ipairs(params) do p.grad = grads[i] end
end

-- f applied to x in chunks of 500, eval mode, no grad.
local function chunked(net, x)
  return lg.no_grad(function()
    net:eval()
    local parts = {}
    for i = 1, x:size(1), 500 do parts[#parts + 1] = net(x:narrow(1, i, math.min(500, x:size(1) - i + 1))) end
    net:train()
    return lg.cat(parts, 1)
  end)
end

return require("luagan.recipe"){
  name = "bigan",
  about = "BiGAN / ALI on Fashion-MNIST (Donahue et al. 2017): encoder E, generator G, joint D(x, z)",
  options = {
    {"steps", 2000, "training steps (937 per epoch at batch 64)"},
    {"batch", 64, "batch size"},
    {"nz", 50, "latent dimension"},
    {"prior", "normal", "distribution of z: N(0, I), or U(-1, 1) (the BiGAN paper)",
     choices = {"normal", "uniform"}},
    {"dropout", 0.2, "dropout in D's joint layers"},
    {"ch", 32, "base channels (64 = the reference DCGAN widths)"},
    {"hidden", 0, "width of an extra FC layer in G and E (0 = none)"},
    {"lr", 2e-4, "Adam learning rate (all nets)"},
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
    local G, E, D = nn.init.dcgan(make_G(opt)), nn.init.dcgan(make_E(opt)), nn.init.dcgan(JointD(opt))
    local betas = {opt.beta1, opt.beta2}
    local ge = G:parameters()
    for _, p in ipairs(E:parameters()) do ge[#ge + 1] = p end
    local idx = {}
    for i = 1, 20 do idx[i] = (i - 1) % test.images:size(1) + 1 end
    return {
      opt = opt, G = G, E = E, D = D,
      optGE = optim.Adam(ge, {lr = opt.lr, betas = betas}),
      optD = optim.Adam(D:parameters(), {lr = opt.lr, betas = betas}),
      data = lg.train.stream(data.DataLoader(ds.images,
        {batch_size = opt.batch, shuffle = true, drop_last = true, seed = opt.seed})),
      fixed_z = draw_z(opt, 40),
      fixed_x = test.images:index_select(1, lg.tensor(idx)),
      sets = {train = ds, test = test},       -- not checkpointed (no state_dict)
    }
  end,

  step = function(s)
    local B = s.opt.batch
    local x = s.data:next()
    local z = draw_z(s.opt, B)
    local l_enc = s.D(x, s.E(x))
    local l_gen = s.D(s.G(z), z)
    local ld = lg.softplus(-l_enc):mean() + lg.softplus(l_gen):mean()
    local lge = lg.softplus(l_enc):mean() + lg.softplus(-l_gen):mean()
    local pd, pge = s.D:parameters(), s.optGE:params()
    set_grads(pd, lg.grad(ld, pd, {retain_graph = true, allow_unused = true}))
    set_grads(pge, lg.grad(lge, pge, {allow_unused = true}))
    s.optD:step()
    s.optGE:step()
    s.optD:zero_grad()
    s.optGE:zero_grad()
    return {loss_d = ld, loss_ge = lge,
            d_enc = l_enc:detach():sigmoid():mean(), d_gen = l_gen:detach():sigmoid():mean()}
  end,

  -- Test images / reconstructions G(E(x)) in alternating rows, then random
  -- samples; with o.n, n random samples G(z).
  sample = function(s, path, o)
    s.G:eval()
    if o.n then
      local x = s.G(draw_z(s.opt, o.n))
      s.G:train()
      image.save_grid(path, x, {nrow = math.max(1, math.ceil(math.sqrt(o.n)))})
      return x
    end
    s.E:eval()
    local rec = s.G(s.E(s.fixed_x))
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

  -- Test reconstruction error of G(E(x)) and a linear probe on E(x).
  finish = function(s, out)
    local n = math.min(s.opt.eval_n, s.sets.test.images:size(1))
    if n <= 0 then return end
    local xt, yt = s.sets.test.images:narrow(1, 1, n), s.sets.test.labels:narrow(1, 1, n)
    local zt = chunked(s.E, xt)
    local err = lg.eval.reconstruction_error(xt, chunked(s.G, zt))
    local m = math.min(s.opt.probe_n, s.sets.train.images:size(1))
    local ztr = chunked(s.E, s.sets.train.images:narrow(1, 1, m))
    local acc, acc_tr = lg.eval.linear_probe(ztr, s.sets.train.labels:narrow(1, 1, m), zt, yt)
    local r = {recipe = "bigan", recon_mse = err.mse, recon_l1 = err.l1, probe_test = acc,
               probe_train = acc_tr, n_test = n, n_probe_train = m}
    lg.io.write_atomic(out .. "/eval.json", lg.io.json_encode(r) .. "\n")
    print(string.format("bigan: test reconstruction mse %.4f l1 %.4f (%d images); linear probe on E(x): " ..
                        "%.4f test, %.4f train (%d train images) (%s/eval.json)",
                        err.mse, err.l1, n, acc, acc_tr, m, out))
  end,
}
