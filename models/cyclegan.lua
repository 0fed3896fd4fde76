-- cyclegan.lua: CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired
-- Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
-- arXiv:1703.10593) between Fashion-MNIST (domain A) and a transformed
-- Fashion-MNIST (domain B: inverted, edge maps or rotated images).
--
--   luagan run cyclegan                              # A <-> inverted A
--   luagan run cyclegan --transform edges --steps 3000
--   luagan run cyclegan --lambda-id 5                # + the identity loss
--
-- lg.data.unpaired splits the training images in two halves: A holds the
-- originals of one half, B the transform T of the other, so no image of A has
-- its translation in B and training never sees a pair. The true translation
-- T(a) is known, which makes the result measurable (finish(), eval.json).
--   G_AB, G_BA: conv5 ch-IN-ReLU -> conv4 s2 2ch-IN-ReLU -> n_res residual
--     blocks (conv3-IN-ReLU-conv3-IN, + skip) at 14x14 -> deconv4 s2 ch-IN-ReLU
--     -> conv5 1 -> tanh   (a small ResNet generator; --n-res 0: plain encoder-decoder)
--   D_A, D_B: conv4 s2 ch-LReLU -> conv4 s2 2ch-IN-LReLU -> conv3 1: a 7x7 map
--     of patch logits (a PatchGAN at 28x28)
--   L_G = L_GAN(G_AB, D_B) + L_GAN(G_BA, D_A) + lambda_cyc (|G_BA(G_AB(a)) - a|_1
--         + |G_AB(G_BA(b)) - b|_1) + lambda_id (|G_BA(a) - a|_1 + |G_AB(b) - b|_1)
--   LSGAN: D minimises 1/2 E (D(real) - 1)^2 + 1/2 E D(fake)^2 (lg.losses.lsgan),
--   G minimises E (D(G(x)) - 1)^2 (the paper's scale); lambda_cyc = 10;
--   D sees fakes through a replay buffer of the last --pool generated images
--   (50; half of each batch drawn from it once full); Adam(2e-4, 0.5, 0.999),
--   lr linearly to 0 over the second half of the run (Zhu et al. 2017).
-- Batch 16 (the paper uses 1; small images make larger batches cheap).
--
-- Samples: 10 fixed test images per row; rows: a, G_AB(a), T(a) (the truth,
-- never used in training), G_BA(G_AB(a)), b, G_BA(b), G_AB(G_BA(b)). What to
-- expect with the defaults (--transform invert, 2000 steps, ~7 min on a busy
-- two-core machine): translations close to T(a) (test l1 to the truth ~0.24
-- per pixel against ~1.53 for copying the input) and classes kept (~80 %).
-- The balance matters: with a twice wider D (--dch 32) D won, G_AB only
-- whitened the background and G_BA changed classes (boots into tops) while
-- the cycle loss stayed low. --transform edges asks G_BA to invent the fill
-- of an outline; rotate needs more than the generators' local receptive
-- field (see docs/recipes_conditional.md for what was measured).
local lg = require "luagan"
local nn, optim, data, image, kit = lg.nn, lg.optim, lg.data, lg.image, lg.recipe_kit

local ResBlock = nn.Module:extend("ResBlock")
function ResBlock:init(c)
  self.body = nn.Sequential{
    nn.Conv2d(c, c, 3, {padding = 1}), nn.InstanceNorm2d(c), nn.ReLU(),
    nn.Conv2d(c, c, 3, {padding = 1}), nn.InstanceNorm2d(c),
  }
end
function ResBlock:forward(x) return x + self.body(x) end

local function make_G(opt)
  local ch = opt.ch
  local layers = {
    nn.Conv2d(1, ch, 5, {padding = 2}), nn.InstanceNorm2d(ch), nn.ReLU(),
    nn.Conv2d(ch, 2 * ch, 4, {stride = 2, padding = 1}), nn.InstanceNorm2d(2 * ch), nn.ReLU(),
  }
  for _ = 1, opt.n_res do layers[#layers + 1] = ResBlock(2 * ch) end
  for _, m in ipairs{
    nn.ConvTranspose2d(2 * ch, ch, 4, {stride = 2, padding = 1}), nn.InstanceNorm2d(ch), nn.ReLU(),
    nn.Conv2d(ch, 1, 5, {padding = 2}), nn.Tanh(),
  } do layers[#layers + 1] = m end
  return nn.Sequential(layers)
end

local function make_D(opt)
  local ch = opt.dch
  return nn.Sequential{
    nn.Conv2d(1, ch, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),
    nn.Conv2d(ch, 2 * ch, 4, {stride = 2, padding = 1}), nn.InstanceNorm2d(2 * ch), nn.LeakyReLU(0.2),
    nn.Conv2d(2 * ch, 1, 3, {padding = 1}),
  }
end

local function l1(a, b) return (a - b):abs():mean() end

-- The replay buffer (Shrivastava et al. 2017) as CycleGAN uses it: while not
-- full, store each fake and return it; then with probability 1/2 return a
-- stored fake (replaced by the new one), else the new fake. buf is a state
-- tensor (pool,1,28,28), so it is checkpointed; its fill count goes through
-- save/load.
local function pool_query(s, which, fakes)
  local size = s.opt.pool
  if size == 0 then return fakes end
  local buf = s["pool_" .. which]
  local out = {}
  for i = 1, fakes:size(1) do
    local f = fakes:narrow(1, i, 1)
    local n = s.pool_n[which]
    if n < size then
      s.pool_n[which] = n + 1
      buf:narrow(1, n + 1, 1):copy_(f)
      out[i] = f
    elseif lg.rand(1):item() < 0.5 then
      local j = math.tointeger(lg.randint(1, size + 1, {1}):item())
      out[i] = buf:narrow(1, j, 1):clone()
      buf:narrow(1, j, 1):copy_(f)
    else
      out[i] = f
    end
  end
  return lg.cat(out, 1)
end

return require("luagan.recipe"){
  name = "cyclegan",
  about = "CycleGAN (Zhu et al. 2017): Fashion-MNIST <-> a transformed Fashion-MNIST, unpaired",
  options = {
    {"steps", 2000, "training steps (one G and one D update each)"},
    {"batch", 16, "batch size (per domain)"},
    {"transform", "invert", "domain B = T(domain A)", choices = {"invert", "edges", "rotate"}},
    {"lambda_cyc", 10.0, "weight of the cycle-consistency L1 terms"},
    {"lambda_id", 0.0, "weight of the identity L1 terms (the paper uses 0.5 lambda_cyc for some tasks)"},
    {"ch", 16, "generator base channels"},
    {"dch", 16, "discriminator base channels (32 made D win: see docs/recipes_conditional.md)"},
    {"n_res", 2, "residual blocks in each generator (0 = plain encoder-decoder)"},
    {"pool", 50, "replay buffer of generated images for D (0 = off)"},
    {"decay", true, "decay the learning rate linearly to 0 over the second half"},
    {"lr", 2e-4, "Adam learning rate"},
    kit.BETAS,
    {"limit", 0, "use the first N images only (0 = all 60000, split into the two domains)"},
    {"eval_n", 2000, "test images per domain for the translation error at the end (0 = skip)"},
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 1000, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 4, limit = 64, ch = 4, dch = 4, n_res = 1, pool = 4, lambda_id = 5.0,
           eval_n = 0},

  setup = function(opt)
    local limit = opt.limit > 0 and opt.limit or nil
    local un = data.unpaired{transform = opt.transform, limit = limit, seed = opt.seed}
    local test = data.unpaired{transform = opt.transform, split = "test", limit = limit, seed = opt.seed}
    local G_AB, G_BA = make_G(opt), make_G(opt)
    local D_A, D_B = make_D(opt), make_D(opt)
    for _, net in ipairs{G_AB, G_BA, D_A, D_B} do nn.init.dcgan(net) end
    local pg = G_AB:parameters()
    for _, p in ipairs(G_BA:parameters()) do pg[#pg + 1] = p end
    local pd = D_A:parameters()
    for _, p in ipairs(D_B:parameters()) do pd[#pd + 1] = p end
    local optG, optD = kit.adam_pair(pg, pd, opt)
    local s = {
      opt = opt, G_AB = G_AB, G_BA = G_BA, D_A = D_A, D_B = D_B, optG = optG, optD = optD,
      data = kit.stream(opt, un.a), data_b = kit.stream(opt, un.b, 1),
      fixed_a = kit.fixed_images(test.a, 10), fixed_b = kit.fixed_images(test.b, 10),
      pool_a = lg.zeros(math.max(opt.pool, 1), 1, 28, 28),
      pool_b = lg.zeros(math.max(opt.pool, 1), 1, 28, 28),
      pool_n = {a = 0, b = 0},
      loss = lg.losses.lsgan(),
      sets = {test = test},               -- not checkpointed (no state_dict)
    }
    if opt.decay then
      local half = opt.steps // 2
      s.schedG = optim.LinearDecay(optG, half, math.max(opt.steps, half + 1))
      s.schedD = optim.LinearDecay(optD, half, math.max(opt.steps, half + 1))
    end
    return s
  end,

  save = function(s) return {pool_n_a = s.pool_n.a, pool_n_b = s.pool_n.b} end,
  load = function(s, t)
    s.pool_n.a = math.tointeger(t.pool_n_a) or 0
    s.pool_n.b = math.tointeger(t.pool_n_b) or 0
  end,

  step = function(s)
    local opt = s.opt
    local a, b = s.data:next(), s.data_b:next()
    -- generators: adversarial (LSGAN, target 1) + cycle + identity
    local fake_b, fake_a = s.G_AB(a), s.G_BA(b)
    local rec_a, rec_b = s.G_BA(fake_b), s.G_AB(fake_a)
    local adv = (s.loss.g(s.D_B(fake_b)) + s.loss.g(s.D_A(fake_a))) * 2
    local cyc = l1(rec_a, a) + l1(rec_b, b)
    local lgen = adv + cyc * opt.lambda_cyc
    local idt
    if opt.lambda_id > 0 then
      idt = l1(s.G_BA(a), a) + l1(s.G_AB(b), b)
      lgen = lgen + idt * opt.lambda_id
    end
    s.optG:zero_grad()
    lgen:backward()
    s.optG:step()
    -- discriminators on real images and (replayed) detached fakes
    local pb = pool_query(s, "b", fake_b:detach())
    local pa = pool_query(s, "a", fake_a:detach())
    local ld_b = s.loss.d(s.D_B(b), s.D_B(pb))
    local ld_a = s.loss.d(s.D_A(a), s.D_A(pa))
    local ld = ld_a + ld_b
    s.optD:zero_grad()
    ld:backward()
    s.optD:step()
    if s.schedG then s.schedG:step(); s.schedD:step() end
    return {loss_g = lgen, adv = adv, cyc = cyc, idt = idt, loss_d_a = ld_a, loss_d_b = ld_b}
  end,

  -- The rows of the header; with o.n, n random test images of A and their
  -- translations G_AB(a) in alternating rows of 10 (returns G_AB(a)).
  sample = function(s, path, o)
    if o.n then
      local test = s.sets.test
      local idx = lg.randint(1, test.a:size(1) + 1, {o.n})
      local a = test.a:index_select(1, idx)
      local fb = s.G_AB(a)
      local w = math.min(10, o.n)
      local rows = {}
      for i = 1, o.n, w do
        local m = math.min(w, o.n - i + 1)
        local pad = m < w and (lg.zeros(w - m, 1, 28, 28) - 1) or nil      -- black fill
        local function row(t)
          local r = t:narrow(1, i, m)
          return pad and lg.cat({r, pad}, 1) or r
        end
        rows[#rows + 1] = row(a)
        rows[#rows + 1] = row(fb)
      end
      image.save_grid(path, lg.cat(rows, 1), {nrow = w})
      return fb
    end
    local a, b = s.fixed_a, s.fixed_b
    local fb, fa = s.G_AB(a), s.G_BA(b)
    local truth = s.sets.test.transform(a)
    image.save_grid(path, lg.cat({a, fb, truth, s.G_BA(fb), b, fa, s.G_AB(fa)}, 1), {nrow = 10})
    return fb
  end,

  -- The translation error against the known transform on test images
  -- (lg.eval.translation) and the test cycle error; class accuracies with
  -- the classifier of models/weights/ when present.
  finish = function(s, out)
    local test = s.sets.test
    local n = math.min(s.opt.eval_n, test.a:size(1), test.b:size(1))
    if n <= 0 then return end
    local a, b = test.a:narrow(1, 1, n), test.b:narrow(1, 1, n)
    local fb, fa = kit.map(s.G_AB, a, {eval = false}), kit.map(s.G_BA, b, {eval = false})
    local t = {a = a, fake_b = fb, transform = test.transform}
    local have_cls = lg.eval.has_classifier()
    if have_cls then
      t.b, t.fake_a, t.b_labels = b, fa, test.b_labels:narrow(1, 1, n)
      t.a_labels, t.inverse = test.a_labels:narrow(1, 1, n), test.inverse
    end
    local r = lg.eval.translation(t)
    r.cycle_l1_a = l1(kit.map(s.G_BA, fb, {eval = false}), a):item()
    r.cycle_l1_b = l1(kit.map(s.G_AB, fa, {eval = false}), b):item()
    r.recipe, r.transform, r.n = "cyclegan", s.opt.transform, n
    local msg = string.format("cyclegan (%s): |G_AB(a) - T(a)| l1 %.4f mse %.4f (copying a: l1 %.4f); " ..
                              "cycle l1 A %.4f B %.4f", s.opt.transform, r.l1, r.mse, r.l1_identity,
                              r.cycle_l1_a, r.cycle_l1_b)
    if r.class_ba then msg = msg .. string.format("; class acc G_BA(b) %.4f", r.class_ba) end
    if r.class_ab then msg = msg .. string.format(", T^-1(G_AB(a)) %.4f", r.class_ab) end
    if not have_cls then msg = msg .. " (no classifier weights: class accuracies skipped)" end
    kit.write_eval(out, r, msg .. " (" .. out .. "/eval.json)")
  end,
}
