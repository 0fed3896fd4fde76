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
--   G (shared): z -> FC hidden-BN-ReLU -> FC 2ch*7*7-BN-ReLU -> deconv4 s2 ch-BN-ReLU
--   G_A, G_B (own): deconv4 s2 1 -> tanh
--   D_A, D_B (own): conv4 s2 ch-LReLU(0.2)
--   D (shared): conv4 s2 2ch-BN-LReLU -> FC hidden-BN-LReLU -> FC 1
-- The 28x28 DCGAN nets of the dcgan recipe (ch 64, hidden 1024), cut where the
-- paper cuts (high-level layers shared: G's first, D's last). Non-saturating loss for each domain,
-- summed: D minimises L_D(A) + L_D(B), G minimises L_G(A) + L_G(B), the same
-- z feeding both generators. Adam(2e-4, 0.5, 0.999), batch 64 per domain.
--
-- Samples: pairs of rows, G_A(z) above G_B(z) for the same 10 noise vectors
-- (5 pairs). What to expect: pairs correspond early (by step 500 each B
-- image is the negative of the A image above it, both still rough); after
-- the default 1000 steps (~9 CPU-minutes) recognisable garments of every
-- class and their negatives. finish() measures the correspondence with the
-- known T: |G_B(z) - T(G_A(z))| against the same error for shuffled pairs
-- (0.039 against 0.53 at the defaults; eval.json); with the classifier of
-- models/weights/, the share of pairs whose T^-1(G_B(z)) gets the class of
-- G_A(z) (0.93). `luagan eval` scores G_A(z), domain A being plain
-- Fashion-MNIST: FD 83.0 / 87.8 / 117.1 on seeds 1-3 (2026-12-06, ~490
-- CPU-seconds a run, 2 steps/s; docs/RESULTS.md). The earlier default, these nets
-- at half width without the FC layer for 2000 steps (130 CPU-seconds), gave
-- pairs as good but FD 195-204 on seeds 1-3: too small a net, not too few
-- steps (docs/recipes_conditional.md).
local lg = require "luagan"
local nn, image, kit, nets = lg.nn, lg.image, lg.recipe_kit, lg.nets

-- z (N,nz) -> x_a, x_b (N,1,28,28) from one shared trunk (the 28x28 DCGAN G
-- of lg.nets without its last deconv), each domain its own last deconv
local CoG = nn.Module:extend("CoG")
function CoG:init(opt)
  local ch = opt.ch
  self.shared = nn.Sequential(nets.dcgan_G_layers{nz = opt.nz, ch = ch, hidden = opt.hidden, head = false})
  self.head_a = nn.Sequential{nn.ConvTranspose2d(ch, 1, 4, {stride = 2, padding = 1}), nn.Tanh()}
  self.head_b = nn.Sequential{nn.ConvTranspose2d(ch, 1, 4, {stride = 2, padding = 1}), nn.Tanh()}
end
function CoG:forward(z)
  local h = self.shared(z)
  return self.head_a(h), self.head_b(h)
end

-- D(x, "a"|"b") -> logits (N,1): the domain's own first layer, then the
-- shared rest (the 28x28 DCGAN D of lg.nets)
local CoD = nn.Module:extend("CoD")
function CoD:init(opt)
  local L = nets.dcgan_D_layers{ch = opt.ch, hidden = opt.hidden, out = 1}
  self.first_a = nets.seq(L, 1, 2)
  self.first_b = nn.Sequential{nn.Conv2d(1, opt.ch, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2)}
  self.shared = nets.seq(L, 3)
end
function CoD:forward(x, domain)
  return self.shared(domain == "a" and self.first_a(x) or self.first_b(x))
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
    {"steps", 1000, "training steps (one D and one G update each)"},
    {"batch", 64, "batch size (per domain)"},
    {"transform", "invert", "domain B = T(domain A)", choices = {"invert", "edges", "rotate"}},
    kit.NZ,
    {"ch", 64, "base channels (the dcgan recipe's widths)"},
    {"hidden", 1024, "width of the shared FC layer in G and D (0 = none)"},
    {"lr", 2e-4, "Adam learning rate"},
    kit.BETAS,
    {"limit", 0, "use the first N images only (0 = all 60000, split into the two domains)"},
    {"eval_n", 2000, "sample pairs for the correspondence error at the end (0 = skip)"},
    {"sample_every", 250, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, ch = 4, hidden = 16, nz = 8, eval_n = 0},

  setup = function(opt)
    local limit = opt.limit > 0 and opt.limit or nil
    local un = lg.data.unpaired{transform = opt.transform, limit = limit, seed = opt.seed}
    local s = kit.gan_state{opt = opt, G = nn.init.dcgan(CoG(opt)), D = nn.init.dcgan(CoD(opt)), data = un.a,
                            loss = lg.losses.nsgan(), fixed_z = false}
    s.data_b = kit.stream(opt, un.b, 1)
    s.fixed_z = lg.randn(50, opt.nz)
    s.transform, s.inverse = un.transform, un.inverse       -- functions: not checkpointed
    return s
  end,

  -- one noise batch for both generators; D on both domains
  step = function(s, i)
    return kit.gan_step(s, {
      real = function(c)
        local a, b = s.data:next(), s.data_b:next()
        c.b = b
        return a
      end,
      generate = function(c, z)
        local fa, fb = s.G(z)
        c.fb = fb
        return fa
      end,
      d_loss = function(c)
        local lra, lfa = s.D(c.x, "a"), s.D(c.fake_d, "a")
        local lrb, lfb = s.D(c.b, "b"), s.D(c.fb:detach(), "b")
        c.ld_a, c.ld_b = s.loss.d(lra, lfa), s.loss.d(lrb, lfb)
        c.d_fake_a, c.d_fake_b = lfa:detach():sigmoid():mean(), lfb:detach():sigmoid():mean()
        return c.ld_a + c.ld_b
      end,
      g_loss = function(c) return s.loss.g(s.D(c.fake, "a")) + s.loss.g(s.D(c.fb, "b")) end,
      metrics = function(c, out)
        out.loss_d_a, out.loss_d_b, out.d_fake_a, out.d_fake_b = c.ld_a, c.ld_b, c.d_fake_a, c.d_fake_b
      end,
    }, i)
  end,

  -- Pairs of rows G_A(z) / G_B(z); with o.n, n pairs (rows of up to 10);
  -- returns G_A(z) (domain A: plain Fashion-MNIST images).
  sample = function(s, path, o)
    local z = o.n and lg.randn(o.n, s.opt.nz) or s.fixed_z
    local xa, xb = kit.in_eval(s.G, s.G, z)
    image.save_grid(path, pair_rows(xa, xb, math.min(10, z:size(1))), {nrow = math.min(10, z:size(1))})
    return xa, xb
  end,

  -- Pair correspondence with the known T: |G_B(z) - T(G_A(z))| per pixel,
  -- against shuffled pairs; the classifier's class agreement if available.
  finish = function(s, out)
    local n = s.opt.eval_n
    if n <= 0 then return end
    lg.manual_seed(s.opt.seed + 7919)
    local xa, xb = kit.generated(s.G, n, function(_, m) return s.G(lg.randn(m, s.opt.nz)) end)
    local t = {a = xa, fake_b = xb, transform = s.transform}
    if lg.eval.has_classifier() and s.inverse then
      t.a_labels, t.inverse = lg.eval.predict(xa), s.inverse
    end
    local r = lg.eval.translation(t)
    local shuffled = s.transform(xa:index_select(1, lg.randperm(n)))
    r.l1_shuffled = lg.eval.reconstruction_error(shuffled, xb).l1
    r.recipe, r.transform, r.n = "cogan", s.opt.transform, n
    if r.class_ab then r.class_agreement, r.class_ab = r.class_ab, nil end
    local msg = string.format("cogan (%s): pairs |G_B(z) - T(G_A(z))| l1 %.4f, shuffled pairs %.4f, " ..
                              "G_A(z) itself %.4f", s.opt.transform, r.l1, r.l1_shuffled, r.l1_identity)
    if r.class_agreement then msg = msg .. string.format("; class agreement %.4f", r.class_agreement) end
    kit.write_eval(out, r, msg .. " (" .. out .. "/eval.json)")
  end,
}
