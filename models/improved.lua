-- improved.lua: the techniques of "Improved Techniques for Training GANs"
-- (Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen 2016,
-- arXiv:1606.03498) on a DCGAN at 28x28 on Fashion-MNIST, each switchable:
--
--   --minibatch         minibatch discrimination: D's 1024 features f(x_i)
--                       are projected to B kernels of dimension C,
--                       o_b(x_i) = sum_{j~=i} exp(-||M_i,b - M_j,b||_1) is
--                       appended to them, so D can see a batch that lacks
--                       variety (real and fake batches go through separately);
--   --feature-matching  G minimises ||E f(x) - E f(G(z))||^2 on that 1024-unit
--                       feature layer instead of fooling D's output;
--   --label-smoothing a one-sided label smoothing: D's target for real images
--                       is a (0.9), the fake target stays 0 (1 = off);
--   --hist-avg l        historical averaging: each player's cost gets
--                       l ||theta - mean of its past theta||^2 (0 = off);
--   --vbn               virtual batch norm in G: each sample is normalised with
--                       the statistics of a reference batch fixed at the start
--                       plus itself, so a sample does not depend on the rest of
--                       its batch.
-- The defaults switch on minibatch discrimination, label smoothing 0.9 and
-- virtual batch norm (the paper's combination for sample quality); feature
-- matching (the paper's choice for semi-supervised learning, where it gives
-- worse-looking samples) and historical averaging are off.
--
--   luagan run improved                                   # the defaults
--   luagan run improved --feature-matching --no-minibatch
--   luagan run improved --hist-avg 1e-4 --label-smoothing 1 --no-vbn
--
-- Nets: the DCGAN / "InfoGAN architecture" (Chen et al. 2016; lg.nets) with the
-- minibatch-discrimination layer before D's last layer (B = 100, C = 5, the
-- reference sizes) and, with --vbn, VirtualBatchNorm in place of G's batch
-- norm. Loss: the non-saturating GAN loss. Adam(2e-4, 0.5, 0.999), batch 64.
-- What to expect: recognisable garments after the default 1000 steps, with
-- visibly more variety across the grid than a plain DCGAN at the same step;
-- each step costs more than DCGAN's (VBN re-forwards the reference batch).
-- The minibatch layer starts as the authors' code starts it (scaled and
-- centred on the first real batch, nn.MinibatchDiscrimination's data_init):
-- without that start D rejected seed 3's first batches outright from the
-- minibatch features and G stayed a checkerboard for 700 steps (FD 487,
-- 2026-12-06). With it, seeds 1-3: FD 90.2 / 69.9 / 88.5 (docs/RESULTS.md,
-- about 490 CPU-seconds a run at 2 steps/s); seed 3 with the OpenBLAS
-- kernels of the machine it failed on (OPENBLAS_CORETYPE=SkylakeX): FD 70.9.
-- Sneakers stay under half their share on seeds 1 and 3 (coverage 0.9).
local lg = require "luagan"
local nn, kit, tricks, nets = lg.nn, lg.recipe_kit, lg.tricks, lg.nets

-- G(z), after the reference batch set the virtual batch norm statistics
local function generate(s, z)
  if s.opt.vbn then nn.VirtualBatchNorm.reference(s.G, s.ref_z) end
  return s.G(z)
end

return require("luagan.recipe"){
  name = "improved",
  about = "Improved GAN techniques (Salimans et al. 2016) on a DCGAN at 28x28: feature matching, "
          .. "minibatch discrimination, label smoothing, historical averaging, virtual batch norm",
  options = {
    {"steps", 1000, "generator updates (938 per epoch at batch 64)"},
    kit.BATCH,
    {"minibatch", true, "minibatch discrimination in D"},
    {"mbd_kernels", 100, "minibatch discrimination: number of kernels B"},
    {"mbd_dim", 5, "minibatch discrimination: kernel dimension C"},
    {"feature_matching", false, "G matches the mean of D's 1024 features instead of fooling D"},
    {"label_smoothing", 0.9, "D's target for real images (1 = no smoothing)"},
    {"hist_avg", 0.0, "historical averaging weight for both players (0 = off)"},
    {"vbn", true, "virtual batch norm in G instead of batch norm"},
    {"ref_batch", 64, "size of the reference batch for --vbn"},
    kit.NZ,
    kit.DCGAN_ADAM,
    kit.LIMIT,
    {"sample_every", 250, "write samples_STEP.png every N steps"},
    {"ckpt_every", 500, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, ref_batch = 8, mbd_kernels = 4, mbd_dim = 3,
           feature_matching = true, hist_avg = 1e-3},

  setup = function(opt)
    local fail = require("luagan.recipe").fail
    if opt.label_smoothing <= 0 or opt.label_smoothing > 1 then
      fail("improved: --label-smoothing must be in (0, 1]")
    end
    if opt.hist_avg < 0 then fail("improved: --hist-avg must be >= 0") end
    if opt.batch < 2 then fail("improved: --batch must be >= 2") end
    local G = nets.dcgan_G{nz = opt.nz, norm = opt.vbn and "vbn" or "batch"}
    local D = nets.dcgan_D{minibatch = opt.minibatch and {opt.mbd_kernels, opt.mbd_dim} or nil}
    local s = kit.gan_state{opt = opt, G = G, D = D, data = kit.fashion_mnist(opt).images,
                            loss = opt.label_smoothing < 1 and tricks.one_sided_label_smoothing(opt.label_smoothing)
                                   or lg.losses.nsgan()}
    if opt.vbn then s.ref_z = lg.randn(opt.ref_batch, opt.nz) end
    if opt.hist_avg > 0 then
      s.haG = tricks.HistoricalAverage(G, {lambda = opt.hist_avg})
      s.haD = tricks.HistoricalAverage(D, {lambda = opt.hist_avg})
    end
    return s
  end,

  -- historical averaging: a penalty on each player's update; feature
  -- matching: G matches the mean of D's features on real images
  step = function(s, i)
    return kit.gan_step(s, {
      generate = function(_, z) return generate(s, z) end,
      d_loss = function(c)
        local ld = kit.d_loss(c)
        if s.haD then c.hist_d = s.haD:penalty() end
        return ld, c.hist_d
      end,
      after_d = function() if s.haD then s.haD:update() end end,
      g_loss = function(c)
        local lgen
        if s.opt.feature_matching then
          local name = s.D.features
          local _, f_fake = tricks.features(s.D, c.fake, {name})
          local _, f_real = lg.no_grad(function() return tricks.features(s.D, c.x, {name}) end)
          lgen = tricks.feature_matching(f_real[name], f_fake[name])
          c.fm = lgen
        else
          lgen = s.loss.g(s.D(c.fake))
        end
        if s.haG then c.hist_g = s.haG:penalty() end
        return lgen, c.hist_g
      end,
      after_g = function() if s.haG then s.haG:update() end end,
      metrics = function(c, out)
        out.hist_d, out.fm, out.hist_g = c.hist_d, c.fm, c.hist_g
        kit.d_means(c, out)
      end,
    }, i)
  end,

  -- batch norm: eval mode (running statistics); virtual batch norm: the
  -- reference batch, so every sample is independent of the others either way
  sample = kit.sampler{generate = generate},
}
