-- infogan.lua: InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable
-- Representation Learning by Information Maximizing Generative Adversarial
-- Nets", arXiv:1606.03657) on Fashion-MNIST, without labels.
--
--   luagan run infogan                       # 62 noise + Cat(10) + 2 x U(-1,1) codes
--   luagan run infogan --lambda 2 --steps 5000
--   luagan run infogan --ch 64 --hidden 1024 # the paper's 28x28 widths
--
-- G's input is noise (62), a categorical code c ~ Cat(10) (one-hot) and two
-- continuous codes c1, c2 ~ U(-1, 1). A head Q shares D's trunk and predicts
-- the codes of a fake: softmax logits for c, means for c1, c2 (a Gaussian of
-- fixed std 1). Both players add the variational bound of the mutual
-- information, lambda (CE(Q_cat, c) + lambda_cont * 1/2 |Q_cont - c_cont|^2)
-- (Chen et al. 2016): D's optimiser takes its trunk and Q head, G's
-- takes G. Non-saturating adversarial loss; Adam with D lr 2e-4, G lr 1e-3,
-- beta1 0.5 (the reference settings), batch 64. Nets: the 28x28 DCGAN ones
-- at half width (--ch 64 --hidden 1024 for the paper's):
--   G: [z, c, c1, c2] -> (FC hidden-BN-ReLU) -> FC 2ch*7*7-BN-ReLU
--        -> deconv4 s2 ch-BN-ReLU -> deconv4 s2 1 -> tanh
--   D trunk: conv4 s2 ch-LReLU -> conv4 s2 2ch-BN-LReLU -> (FC hidden-BN-LReLU)
--   D head: FC 1;   Q head: FC 128-BN-LReLU -> FC 10+2
--
-- Samples (one PNG, 10 columns, blocks split by a grey row): rows 1-10 the
-- categorical code c = 1..10 (the same noise down each column, c1 = c2 = 0);
-- rows 12-21 c1 swept from -sweep to +sweep left to right (row r: c = r, its
-- own fixed noise, c2 = 0); rows 23-32 the same for c2. What to expect: q_acc
-- (Q's accuracy on the categorical code of fakes) climbs to ~1 within 100
-- steps; after the default 2000 steps (~2.5 min of one core) most values of c
-- draw one garment type each and c1/c2 change width, sleeve length or shoe
-- height smoothly, but the ten values need not be the ten classes (seed 2:
-- trousers and sneakers take two values each, tops and coats share others).
-- finish() scores the code accuracy (codes matched to classes one to one)
-- with the classifier of models/weights/ when present, written to eval.json:
-- measured 0.687, 0.499 and 0.622 for seeds 1-3 (mean 0.60) (docs/RESULTS.md,
-- "Issue-19 defaults"), far from a supervised model's ~0.92 — unsupervised
-- GAN clustering of Fashion-MNIST is known to land near 0.6 (ClusterGAN,
-- Mukherjee et al. 2019: 0.63); its PyTorch twin (bench/twins/infogan.py)
-- reaches 0.52 on the same seeds.
local lg = require "luagan"
local nn, data, image, kit, nets = lg.nn, lg.data, lg.image, lg.recipe_kit, lg.nets

local NCAT, NCONT = 10, 2

-- D and Q on one trunk (the 28x28 DCGAN D's, lg.nets): forward(x) -> D
-- logits (N,1), Q outputs (N, 10+2).
local InfoD = nn.Module:extend("InfoD")
function InfoD:init(opt)
  self.trunk = nn.Sequential(nets.dcgan_D_layers{ch = opt.ch, hidden = opt.hidden, out = 0})
  local nf = opt.hidden > 0 and opt.hidden or 2 * opt.ch * 7 * 7
  self.d_head = nn.Linear(nf, 1)
  self.q_head = nn.Sequential{nn.Linear(nf, 128), nn.BatchNorm1d(128), nn.LeakyReLU(0.2),
                              nn.Linear(128, NCAT + NCONT)}
end
function InfoD:forward(x)
  local h = self.trunk(x)
  return self.d_head(h), self.q_head(h)
end

-- G's input from noise (N,nz), categorical codes (N) 1..10 and continuous (N,2).
local function latent(z, c, cont)
  return lg.cat({z, lg.eye(NCAT):index_select(1, c), cont}, 2)
end

-- A batch from the prior: z, c, cont.
local function prior(n, nz)
  return lg.randn(n, nz), lg.randint(1, NCAT + 1, {n}), lg.rand(n, NCONT) * 2 - 1
end

-- lambda (CE(Q_cat, c) + lambda_cont * 1/2 |Q_cont - cont|^2), mean over the batch;
-- also Q's categorical accuracy.
local function info_loss(q, c, cont, opt)
  local ce = lg.cross_entropy(q:narrow(2, 1, NCAT), c)
  local d = q:narrow(2, NCAT + 1, NCONT) - cont
  local gauss = (d * d):sum(2):mean() * 0.5
  local _, pred = q:narrow(2, 1, NCAT):detach():max(2)
  local acc = pred:eq(c:reshape(pred:shape())):mean()
  return (ce + gauss * opt.lambda_cont) * opt.lambda, acc, ce, gauss
end

return require("luagan.recipe"){
  name = "infogan",
  about = "InfoGAN on Fashion-MNIST (Chen et al. 2016): Cat(10) + 2 continuous codes, Q head on D's trunk",
  options = {
    {"steps", 2000, "training steps (one D and one G update each; 937 per epoch at batch 64)"},
    {"batch", 64, "batch size"},
    {"nz", 62, "noise dimension (besides the 10 + 2 code dimensions)"},
    {"lambda", 1.0, "weight of the mutual-information term (both players)"},
    {"lambda_cont", 1.0, "extra weight of the continuous codes' term inside it"},
    {"ch", 32, "base channels (64 = the reference widths)"},
    {"hidden", 0, "width of an extra FC layer in G and the D trunk (1024 = the reference; 0 = none)"},
    {"lr_d", 2e-4, "Adam learning rate of D and Q"},
    {"lr_g", 1e-3, "Adam learning rate of G"},
    {"beta1", 0.5, "Adam beta1"},
    {"beta2", 0.999, "Adam beta2"},
    {"sweep", 2.0, "continuous codes are swept over [-sweep, sweep] in the sample grid"},
    kit.LIMIT,
    {"eval_n", 2000, "samples for the code accuracy at the end (0 = skip)"},
    {"sample_every", 500, "write samples_STEP.png every N steps"},
    {"ckpt_every", 1000, "write the checkpoint every N steps"},
  },
  smoke = {steps = 3, batch = 8, limit = 64, ch = 4, nz = 8, eval_n = 0},

  setup = function(opt)
    local G = nets.dcgan_G{nz = opt.nz, extra = NCAT + NCONT, ch = opt.ch, hidden = opt.hidden}
    return kit.gan_state{opt = opt, G = G, D = nn.init.dcgan(InfoD(opt)), lr_g = opt.lr_g, lr_d = opt.lr_d,
                         data = kit.fashion_mnist(opt).images, loss = lg.losses.nsgan(), fixed_z = NCAT}
  end,

  -- D and Q: the adversarial loss + the information term on the (detached)
  -- fakes; G: both through the updated D and Q
  step = function(s, i)
    local opt = s.opt
    return kit.gan_step(s, {
      noise = function(c)
        local z
        z, c.c, c.cont = prior(c.B, opt.nz)
        return latent(z, c.c, c.cont)
      end,
      d_loss = function(c)
        local lr_ = s.D(c.x)
        local lf, qf = s.D(c.fake_d)
        c.real_out, c.fake_out = lr_, lf
        return s.loss.d(lr_, lf) + info_loss(qf, c.c, c.cont, opt)
      end,
      g_loss = function(c)
        local lg_, q = s.D(c.fake)
        c.info, c.q_acc, c.q_ce, c.q_cont = info_loss(q, c.c, c.cont, opt)
        return s.loss.g(lg_) + c.info
      end,
      metrics = function(c, out)
        out.info, out.q_acc, out.q_ce, out.q_cont = c.info, c.q_acc, c.q_ce, c.q_cont
        kit.d_means(c, out)
      end,
    }, i)
  end,

  -- The code sweeps (see the header); with o.n, n samples from the prior
  -- (categorical codes 1,2,..,10,1,..).
  sample = function(s, path, o)
    local z, c, cont
    if o.n then
      z, c, cont = prior(o.n, s.opt.nz)
      local t = {}
      for i = 1, o.n do t[i] = (i - 1) % NCAT + 1 end
      c = lg.tensor(t)
    else
      local zi, cs, cv = {}, {}, {}
      local sw = s.opt.sweep
      -- block 1: categorical; blocks 2, 3: continuous code k swept
      for r = 1, NCAT do
        for j = 1, NCAT do zi[#zi + 1], cs[#cs + 1], cv[#cv + 1] = j, r, {0, 0} end
      end
      for k = 1, NCONT do
        for r = 1, NCAT do
          for j = 1, NCAT do
            local v = {0, 0}
            v[k] = -sw + 2 * sw * (j - 1) / (NCAT - 1)
            zi[#zi + 1], cs[#cs + 1], cv[#cv + 1] = r, r, v
          end
        end
      end
      z, c, cont = s.fixed_z:index_select(1, lg.tensor(zi)), lg.tensor(cs), lg.tensor(cv)
    end
    local x = kit.in_eval(s.G, function() return s.G(latent(z, c, cont)) end)
    if o.n then
      image.save_grid(path, x, {nrow = NCAT})
    else
      local grey = lg.zeros(NCAT, 1, 28, 28)
      local b = NCAT * NCAT
      image.save_grid(path, lg.cat({x:narrow(1, 1, b), grey, x:narrow(1, b + 1, b), grey,
                                    x:narrow(1, 2 * b + 1, b)}, 1), {nrow = NCAT})
    end
    return x, c
  end,

  -- Categorical-code accuracy: the classifier's labels of G(z, c) matched to
  -- the codes one to one (lg.eval.code_accuracy).
  finish = function(s, out)
    local n = s.opt.eval_n
    if n <= 0 then return end
    if not lg.eval.has_classifier() then
      print("infogan: no classifier weights in models/weights/ (luagan run classifier); code accuracy skipped")
      return
    end
    lg.manual_seed(s.opt.seed + 7919)
    local z, c, cont = prior(n, s.opt.nz)
    local x = kit.generated(s.G, n, function(i, m)
      return s.G(latent(z:narrow(1, i, m), c:narrow(1, i, m), cont:narrow(1, i, m)))
    end)
    local acc, mapping, _, majority = lg.eval.code_accuracy(x, c)
    local names = {}
    for k = 1, NCAT do
      names[k] = string.format("%d->%s", k, mapping[k] and data.FASHION_MNIST_CLASSES[mapping[k]] or "?")
    end
    local r = {recipe = "infogan", code_accuracy = acc, majority_accuracy = majority, n = n,
               mapping = table.concat(names, ", ")}
    kit.write_eval(out, r, string.format("infogan: categorical-code accuracy %.4f (one to one), %.4f " ..
                                         "(many to one) on %d samples; %s (%s/eval.json)", acc, majority, n,
                                         r.mapping, out))
  end,
}
