-- cogan.lua: coupled GANs (Liu & Tuzel 2016, "Coupled Generative Adversarial
-- Networks", arXiv:1606.07536): two GANs, one per domain, that share the
-- first layers of their generators and the last layers of their
-- discriminators, so one noise vector gives a corresponding pair of images
-- although the two domains are trained on unpaired images.
--
--   luagan run cogan                          # Fashion-MNIST and its negative
--   luagan run cogan --transform edges        # Fashion-MNIST and edge maps
--
-- Domain A: the originals of one half of the training images, domain B: the
-- transform T of the other half (lg.data.unpaired; no pair is ever seen).
--   G (shared): z -> (FC hidden-BN-ReLU) -> FC 2ch*7*7-BN-ReLU -> deconv4 s2 ch-BN-ReLU
--   G_A, G_B (own): deconv4 s2 1 -> tanh
--   D_A, D_B (own): conv4 s2 ch-LReLU(0.2)
--   D (shared): conv4 s2 2ch-BN-LReLU -> (FC hidden-BN-LReLU) -> FC 1
-- The 28x28 DCGAN nets at half width, cut where the paper cuts (high-level
-- layers shared: G's first, D's last). Non-saturating loss for each domain,
-- summed: D minimises L_D(A) + L_D(B), G minimises L_G(A) + L_G(B), the same
-- z feeding both generators. Adam(2e-4, 0.5, 0.999), batch 64 per domain.
--
-- Samples: pairs of rows, G_A(z) above G_B(z) for the same 10 noise vectors
-- (5 pairs). What to expect: pairs correspond early (by step 500 each B
-- image is the negative of the A image above it, both still rough); after
-- the default 2000 steps (~4 min of one core) recognisable garments and
-- their negatives. finish() measures the correspondence with the known T:
-- |G_B(z) - T(G_A(z))| against the same error for shuffled pairs (0.04
-- against 0.55 with the defaults; eval.json); with the classifier of
-- models/weights/, the share of pairs whose T^-1(G_B(z)) gets the class of
-- G_A(z) (0.89).
local lg = require "luagan"
local nn, optim, data, image = lg.nn, lg.optim, lg.data, lg.image

-- z (N,nz) -> x_a, x_b (N,1,28,28) from one shared trunk
local CoG = nn.Module:extend("CoG")
function CoG:init(opt)
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
  } do layers[#layers + 1] = m end
  self.shared = nn.Sequential(layers)
  self.head_a = nn.Sequential{nn.ConvTranspose2d(ch, 1, 4, {stride = 2, padding = 1}), nn.Tanh()}
  self.head_b = nn.Sequential{nn.ConvTranspose2d(ch, 1, 4, {stride = 2, padding = 1}), nn.Tanh()}
end
function CoG:forward(z)
  local h = self.shared(z)
  return self.head_a(h), self.head_b(h)
end

-- D(x, "a"|"b") -> logits (N,1): the domain's own first layer, then the shared rest
local CoD = nn.Module:extend("CoD")
function CoD:init(opt)
  local ch = opt.ch
  self.first_a = nn.Sequential{nn.Conv2d(1, ch, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2)}
  self.first_b = nn.Sequential{nn.Conv2d(1, ch, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2)}
  local layers = {
    nn.Conv2d(ch, 2 * ch, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(2 * ch), nn.LeakyReLU(0.2),
    nn.Flatten(),
  }
  local nin = 2 * ch * 7 * 7
  if opt.hidden > 0 then
    for _, m in ipairs{nn.Linear(nin, opt.hidden), nn.BatchNorm1d(opt.hidden), nn.LeakyReLU(0.2)} do
      layers[#layers + 1] = m
    end
    nin = opt.hidden
  end
  layers[#layers + 1] = nn.Linear(nin, 1)
  self.shared = nn.Sequential(layers)
end
function CoD:forward(x, domain)
  return self.shared(domain == "a" and self.first_a(x) or self.first_b(x))
end

local INVERSE = {
  invert = function(x) return data.transforms.invert(x, "tanh") end,
  rotate = function(x)
    return data.transforms.rotate(data.transforms.rotate(data.transforms.rotate(x)))
  end,
}

local function classifier_weights()
  local ok, C = pcall(require, "classifier")
  if not ok then return nil end
  local f = io.open(C.WEIGHTS, "rb")
  if not f then return nil end
  f:close()
  return C.WEIGHTS
end

-- Rows of 10: x_a(1..10), x_b(1..10), x_a(11..20), ... (n a multiple of w)
local function pair_rows(xa, xb, w)
  local rows = {}
  for i = 1, xa:size(1), w do
    local m = math.min(w, xa:size(1) - i + 1)
    rows[#rows + 1] = xa:narrow(1, i, m)
    rows[#rows + 1] = xb:narrow(1, i, m)
  end
  return lg.cat(rows, 1)
end

return require("luagan.recipe"){
  name = "cogan",
  about = "coupled GANs (Liu & Tuzel 2016): Fashion-MNIST and a transformed domain, weight sharing",
  options = {
    {"steps", 2000, "training steps (one D and one G update each)"},
    {"batch", 64, "batch size (per domain)"},
    {"transform", "invert", "domain B = T(domain A)", choices = {"invert", "edges", "rotate"}},
    {"nz", 100, "noise dimension"},
    {"ch", 32, "base channels (64 = the reference DCGAN widths)"},
    {"hidden", 0, "width of an extra shared FC layer in G and D (0 = none)"},
    {"lr", 2e-4, "Adam learning rate"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    {"limit", 0, "use the first N images only (0 = all 60000, split into the two domains)"},
    {"eval_n", 2000, "sample pairs for the correspondence error at the end (0 = skip)"},
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 1000, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, ch = 4, nz = 8, eval_n = 0},

  setup = function(opt)
    local limit = opt.limit > 0 and opt.limit or nil
    local un = data.unpaired{transform = opt.transform, limit = limit, seed = opt.seed}
    local G, D = nn.init.dcgan(CoG(opt)), nn.init.dcgan(CoD(opt))
    local betas = {opt.beta1, opt.beta2}
    return {
      opt = opt, G = G, D = D,
      optG = optim.Adam(G:parameters(), {lr = opt.lr, betas = betas}),
      optD = optim.Adam(D:parameters(), {lr = opt.lr, betas = betas}),
      data = lg.train.stream(data.DataLoader(un.a, {batch_size = opt.batch, shuffle = true,
                                                    drop_last = true, seed = opt.seed})),
      data_b = lg.train.stream(data.DataLoader(un.b, {batch_size = opt.batch, shuffle = true,
                                                      drop_last = true, seed = opt.seed + 1})),
      loss = lg.losses.nsgan(),
      fixed_z = lg.randn(50, opt.nz),
      transform = un.transform,       -- a function: not checkpointed
    }
  end,

  step = function(s)
    local a, b = s.data:next(), s.data_b:next()
    local fa, fb = s.G(lg.randn(s.opt.batch, s.opt.nz))
    -- D step on both domains, fakes detached
    local lra, lfa = s.D(a, "a"), s.D(fa:detach(), "a")
    local lrb, lfb = s.D(b, "b"), s.D(fb:detach(), "b")
    local ld_a, ld_b = s.loss.d(lra, lfa), s.loss.d(lrb, lfb)
    local ld = ld_a + ld_b
    s.optD:zero_grad()
    ld:backward()
    s.optD:step()
    -- G step: the same z for both generators
    local lgen = s.loss.g(s.D(fa, "a")) + s.loss.g(s.D(fb, "b"))
    s.optG:zero_grad()
    lgen:backward()
    s.optG:step()
    return {loss_d = ld, loss_g = lgen, loss_d_a = ld_a, loss_d_b = ld_b,
            d_fake_a = lfa:detach():sigmoid():mean(), d_fake_b = lfb:detach():sigmoid():mean()}
  end,

  -- Pairs of rows G_A(z) / G_B(z); with o.n, n pairs (rows of up to 10);
  -- returns G_A(z) (domain A: plain Fashion-MNIST images).
  sample = function(s, path, o)
    local z = o.n and lg.randn(o.n, s.opt.nz) or s.fixed_z
    s.G:eval()
    local xa, xb = s.G(z)
    s.G:train()
    image.save_grid(path, pair_rows(xa, xb, math.min(10, z:size(1))), {nrow = math.min(10, z:size(1))})
    return xa, xb
  end,

  -- Pair correspondence with the known T: |G_B(z) - T(G_A(z))| per pixel,
  -- against shuffled pairs; the classifier's class agreement if available.
  finish = function(s, out)
    local n = s.opt.eval_n
    if n <= 0 then return end
    lg.manual_seed(s.opt.seed + 7919)
    local xa, xb = lg.no_grad(function()
      s.G:eval()
      local pa, pb = {}, {}
      for i = 1, n, 500 do
        pa[#pa + 1], pb[#pb + 1] = s.G(lg.randn(math.min(500, n - i + 1), s.opt.nz))
      end
      s.G:train()
      return lg.cat(pa, 1), lg.cat(pb, 1)
    end)
    local t = {a = xa, fake_b = xb, transform = s.transform}
    local have_cls = classifier_weights() ~= nil
    if have_cls and INVERSE[s.opt.transform] then
      t.a_labels, t.inverse = lg.eval.predict(xa), INVERSE[s.opt.transform]
    end
    local r = lg.eval.translation(t)
    local shuffled = s.transform(xa:index_select(1, lg.randperm(n)))
    r.l1_shuffled = lg.eval.reconstruction_error(shuffled, xb).l1
    r.recipe, r.transform, r.n = "cogan", s.opt.transform, n
    if r.class_ab then r.class_agreement, r.class_ab = r.class_ab, nil end
    lg.io.write_atomic(out .. "/eval.json", lg.io.json_encode(r) .. "\n")
    local msg = string.format("cogan (%s): pairs |G_B(z) - T(G_A(z))| l1 %.4f, shuffled pairs %.4f, " ..
                              "G_A(z) itself %.4f", s.opt.transform, r.l1, r.l1_shuffled, r.l1_identity)
    if r.class_agreement then msg = msg .. string.format("; class agreement %.4f", r.class_agreement) end
    print(msg .. " (" .. out .. "/eval.json)")
  end,
}
