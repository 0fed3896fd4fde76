-- luagan.eval (lg.eval): offline metrics for generated Fashion-MNIST images,
-- computed with the framework's own classifier (models/classifier.lua,
-- weights in models/weights/classifier.safetensors). See docs/eval.md.
--
--   local ev = lg.eval
--   local r = ev.fashion(samples)          -- samples (N,1,28,28) in [-1,1], N >= 10000
--   print(ev.format(r))
--   local x = ev.load_samples("samples.idx")   -- IDX ubyte 0..255 or float32 in [-1,1]
--   local acc = ev.label_accuracy(G_of_z_y, y) -- conditional GANs
--
-- Metrics on the classifier's 128-d penultimate features (f) and its
-- predicted class probabilities (p):
--   fd        Frechet distance |mu1-mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^1/2), float64,
--             10000 generated vs the 10000 test images (fixed N: the estimate is
--             biased upward at small N, so values are only comparable at equal N)
--   kid       unbiased MMD^2 with kernel (a.b/d + 1)^3, mean and std over 100
--             random subsets of 1000 (Binkowski et al. 2018), on the features
--             divided by the RMS of the test-set features (a constant of the
--             classifier) so a.b/d is O(1) as with the Inception features
--             the kernel was made for
--   precision / recall   k-NN manifolds with k = 3 (Kynkaanniemi et al. 2019)
--   coverage  fraction of the 10 classes holding at least min_share (default
--             50 %) of their uniform share of the predicted labels
--   kl_uniform KL(predicted-label histogram || uniform)
--   cs        classifier score exp(E_x KL(p(y|x) || p(y))) (the Inception score's
--             formula with this classifier), 1..10
--   memorisation  nearest training vs nearest test image in pixel space
local lg = require "luagan"

local E = {}

E.FD_SAMPLES = 10000      -- the fixed sample count of the Frechet distance
E.KID_SUBSETS = 100
E.KID_SUBSET_SIZE = 1000
E.PR_K = 3
E.MEMO_SAMPLES = 1000
E.COVERAGE_MIN_SHARE = 0.5
-- samples drawn from a checkpoint per call of its sample function (chunk i
-- under seed seed*100003 + i): part of the protocol, since it fixes which
-- samples are drawn (it was 1000 before the memory work of issue 16)
E.SAMPLE_CHUNK = 250
-- images featurised per classifier call: its conv activations for 500
-- images peaked at 250 MB. The features do not depend on it (bit for bit);
-- the logits of the 10-way head move by ~1e-6 (the GEMM's blocking)
E.FEATURE_BATCH = 100

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end
local util = require "luagan.util"
local check_opts, check_num = util.check_opts, util.check_num

local shape_str, is_tensor = util.shape_str, util.is_tensor
-- metrics must not disturb a training run's random stream
local with_seed = util.with_seed

-- The option dist = true: split over the ranks when there are several
-- (lg.dist started here when the process was launched by mpirun).
local function split_over_ranks(flag)
  if not flag then return false end
  if lg.dist.launched() then lg.dist.init() end
  return lg.dist.size() > 1
end

-- map_chunks(n, chunk, fn, dist) -> fn(first, count) for the chunks of
-- 1..n joined along dim 1. With dist (under mpirun, lg.dist initialised)
-- the chunks are spread over the ranks and gathered on every rank in index
-- order (lg.dist.split_map): the same rows as one process computes.
local function map_chunks(n, chunk, fn, dist)
  if dist then return lg.dist.split_map(n, chunk, fn) end
  local parts = {}
  for first = 1, n, chunk do parts[#parts + 1] = fn(first, math.min(chunk, n - first + 1)) end
  if #parts == 1 then return parts[1] end
  return lg.cat(parts, 1)
end

---------------------------------------------------------------------------
-- images

-- x as (N,1,28,28), detached; accepts (N,1,28,28), (N,28,28), (N,784).
function E.as_images(x, who)
  who = who or "eval"
  if not is_tensor(x) then fail("%s: samples must be a tensor, got %s", who, util.what(x)) end
  local s = x:shape()
  local n = s[1]
  if (#s == 2 and s[2] == 784) or (#s == 3 and s[2] == 28 and s[3] == 28)
     or (#s == 4 and s[2] == 1 and s[3] == 28 and s[4] == 28) then
    return x:detach():reshape(n, 1, 28, 28)
  end
  fail("%s: expected 28x28 grey images (N,1,28,28), (N,28,28) or (N,784), got %s", who,
       shape_str(x))
end

-- The IDX type code of a file (byte 3 of the header), through gzip if needed.
local function idx_type(path)
  local f = io.open(path, "rb")
  if not f then fail("eval.load_samples: cannot open %s", path) end
  local head = f:read(4) or ""
  f:close()
  if head:sub(1, 2) == "\31\139" then
    local ok, h = pcall(require("luagan.core").read_head, path, 4)   -- zlib, no shell
    head = ok and h or ""
  end
  if #head < 4 then fail("eval.load_samples: %s: too short for an IDX header", path) end
  return head:byte(3)
end

-- Samples from an IDX file as (N,1,28,28) in [-1,1]. Type ubyte: pixels
-- 0..255 (what any framework writes with its uint8 images); type float32 /
-- float64: values already in [-1,1] (a generator's tanh output).
function E.load_samples(path)
  local code = idx_type(path)
  local x = lg.load_idx(path)
  local s = x:shape()
  if not ((#s == 3 and s[2] == 28 and s[3] == 28) or (#s == 4 and s[2] == 1 and s[3] == 28)
          or (#s == 2 and s[2] == 784)) then
    fail("eval.load_samples: %s holds %s values; expected N x 28 x 28 images", path, shape_str(x))
  end
  if code == 0x08 then
    x = x * (2 / 255) - 1
  elseif code == 0x0D or code == 0x0E then
    local lo, hi = x:min():item(), x:max():item()
    if lo < -1.001 or hi > 1.001 then
      fail("eval.load_samples: %s: float values span [%g, %g]; float IDX samples must be in " ..
           "[-1,1] (or write uint8 pixels 0..255)", path, lo, hi)
    end
  else
    fail("eval.load_samples: %s: IDX type 0x%02X; expected ubyte (0x08) pixels 0..255 or " ..
         "float32 (0x0D) values in [-1,1]", path, code)
  end
  return E.as_images(x, "eval.load_samples"):clamp(-1, 1)
end

-- Write samples (in [-1,1]) as an IDX ubyte file N x 28 x 28 (pixels 0..255).
function E.save_samples(path, x)
  x = E.as_images(x, "eval.save_samples")
  local n = x:shape()[1]
  local px = ((x:clamp(-1, 1) + 1) * 127.5):clamp(0, 255)   -- the writer rounds
  lg.save_idx(path, px:reshape(n, 28, 28), {dtype = "ubyte"})
end

-- Perturbations for calibration (inputs and outputs in [-1,1]).
E.perturb = {}

-- x + sigma * N(0,1), clamped to [-1,1] (a stored image stays in range).
function E.perturb.noise(x, sigma, seed)
  x = E.as_images(x, "eval.perturb.noise")
  return with_seed(seed or 1, function()
    return (x + lg.randn(table.unpack(x:shape())) * sigma):clamp(-1, 1)
  end)
end

-- Gaussian blur of standard deviation sigma pixels (kernel radius 3 sigma);
-- the border is padded with black (-1), the image background.
function E.perturb.blur(x, sigma)
  x = E.as_images(x, "eval.perturb.blur")
  if sigma <= 0 then return x end
  local r = math.max(1, math.ceil(3 * sigma))
  local k, tot = {}, 0
  for i = -r, r do k[#k + 1] = math.exp(-i * i / (2 * sigma * sigma)); tot = tot + k[#k] end
  local w = {}
  for i = 1, #k do
    w[i] = {}
    for j = 1, #k do w[i][j] = k[i] * k[j] / (tot * tot) end
  end
  local kernel = lg.tensor({{w}})                            -- (1,1,2r+1,2r+1)
  return lg.no_grad(function()
    return lg.conv2d(x + 1, kernel, nil, {padding = r}) - 1
  end)
end

---------------------------------------------------------------------------
-- the classifier

local current            -- the classifier in use (loaded on first use)
local current_path

-- The classifier in use: the default weights unless set_classifier chose
-- others. Returns the net (eval mode).
function E.classifier()
  if not current then
    local C = require "classifier"
    current, current_path = C.load(), C.WEIGHTS
  end
  return current
end

-- Use other classifier weights (a path to a safetensors file written by
-- models/classifier.lua, or a net built by classifier.build()); nil goes back
-- to the default. Cached reference features are dropped.
function E.set_classifier(w)
  if w == nil then
    current, current_path = nil, nil
  elseif type(w) == "string" then
    current, current_path = require("classifier").load(w), w
  else
    current, current_path = w, "(a net)"
  end
  E.clear_cache()
end

function E.classifier_path()
  E.classifier()
  return current_path
end

-- true when a classifier is there to use: one chosen by set_classifier, or
-- the default weights file (models/weights/, written by `luagan
-- models/classifier.lua`). Recipes skip their classifier scores without it.
function E.has_classifier()
  if current then return true end
  local ok, C = pcall(require, "classifier")
  if not ok or type(C) ~= "table" or type(C.WEIGHTS) ~= "string" then return false end
  return require("luagan.core").isfile(C.WEIGHTS)
end

-- logits (N,10) and penultimate features (N,128) of images in [-1,1].
-- o.dist: split the images over the ranks of lg.dist (under mpirun) and
-- gather the results on every rank (the same numbers as one process).
function E.features(x, o)
  o = check_opts("eval.features", o, {"net", "dist"})
  x = E.as_images(x, "eval.features")
  local C = require "classifier"
  local net = o.net or E.classifier()
  if not split_over_ranks(o.dist) then
    return C.forward(net, x, {batch_size = E.FEATURE_BATCH})
  end
  -- the chunks are the classifier's own batches: the same rows, bit for bit
  local both = lg.dist.split_map(x:shape()[1], E.FEATURE_BATCH, function(first, count)
    local l, f = C.forward(net, x:narrow(1, first, count), {batch_size = E.FEATURE_BATCH})
    return lg.cat({l, f}, 2)
  end)
  local nl = C.NUM_CLASSES
  return both:narrow(2, 1, nl):contiguous(), both:narrow(2, nl + 1, both:shape()[2] - nl):contiguous()
end

-- Predicted classes (N) 1..10 and probabilities (N,10).
function E.predict(x, o)
  check_opts("eval.predict", o, {"net"})
  local logits = E.features(x, o)
  local p = lg.softmax(logits, 2)
  local _, idx = logits:max(2)
  return idx, p
end

---------------------------------------------------------------------------
-- distances between feature sets

-- {mu = D table, cov = DxD table, n = N} in float64 of features (N,D).
function E.stats(f)
  local mu, cov = lg.linalg.mean_cov(f)
  return {mu = mu, cov = cov, n = f:shape()[1]}
end

-- Frechet distance of two feature sets (tensors (N,D) or E.stats tables).
-- Tiny negative values from rounding are returned as 0.
function E.frechet(a, b)
  local sa = is_tensor(a) and E.stats(a) or a
  local sb = is_tensor(b) and E.stats(b) or b
  return math.max(0, lg.linalg.frechet(sa.mu, sa.cov, sb.mu, sb.cov))
end

-- KID: unbiased MMD^2 (cubic polynomial kernel) over random subsets.
-- kid(fa, fb, {subsets = 100, size = 1000, seed = 1, scale = 1}) -> mean, std
-- (features are divided by scale first; size is capped at the smaller set;
-- subsets are drawn without replacement within a subset, independently
-- across subsets).
function E.kid(fa, fb, o)
  local who = "eval.kid"
  o = check_opts(who, o, {"subsets", "size", "seed", "scale"})
  check_num(who, "subsets", o.subsets, {int = true, lo = 1, optional = true})
  check_num(who, "size", o.size, {int = true, lo = 2, optional = true})
  check_num(who, "scale", o.scale, {lo = 0, open = true, optional = true})
  if o.scale and o.scale ~= 1 then fa, fb = fa / o.scale, fb / o.scale end
  local na, nb = fa:shape()[1], fb:shape()[1]
  local size = math.min(o.size or E.KID_SUBSET_SIZE, na, nb)
  local subsets = o.subsets or E.KID_SUBSETS
  if size < 2 then fail("eval.kid: need at least 2 samples on each side, got %d and %d", na, nb) end
  local vals = with_seed(o.seed or 1, function()
    local v = {}
    for i = 1, subsets do
      local ia = lg.randperm(na):narrow(1, 1, size)
      local ib = lg.randperm(nb):narrow(1, 1, size)
      v[i] = lg.linalg.mmd2_poly(fa:index_select(1, ia), fb:index_select(1, ib))
    end
    return v
  end)
  local m = 0
  for _, x in ipairs(vals) do m = m + x end
  m = m / #vals
  local var = 0
  for _, x in ipairs(vals) do var = var + (x - m) ^ 2 end
  return m, #vals > 1 and math.sqrt(var / (#vals - 1)) or 0
end

-- k-NN precision and recall (Kynkaanniemi et al. 2019): precision = share of
-- generated samples inside the real manifold (union of balls around each
-- real feature with radius its k-th nearest real neighbour distance); recall
-- = share of real samples inside the generated manifold.
-- precision_recall(real, fake, {k = 3, real_radii = precomputed}) -> p, r
function E.precision_recall(real, fake, o)
  o = check_opts("eval.precision_recall", o, {"k", "real_radii"})
  local k = check_num("eval.precision_recall", "k", o.k, {int = true, lo = 1, default = E.PR_K})
  local rr = o.real_radii or lg.linalg.knn(real, real, k, {skip_self = true})
  local fr = lg.linalg.knn(fake, fake, k, {skip_self = true})
  local p = lg.linalg.in_balls(fake, real, rr):mean():item()
  local r = lg.linalg.in_balls(real, fake, fr):mean():item()
  return p, r
end

---------------------------------------------------------------------------
-- label statistics

-- From predicted classes (N): counts (10), coverage (share of classes with at
-- least min_share of the uniform share N/10), KL(histogram || uniform).
function E.class_stats(pred, o)
  local who = "eval.class_stats"
  o = check_opts(who, o, {"classes", "min_share"})
  local k = check_num(who, "classes", o.classes, {int = true, lo = 1, default = 10})
  local min_share = check_num(who, "min_share", o.min_share,
                              {lo = 0, default = E.COVERAGE_MIN_SHARE})
  local counts = {}
  for c = 1, k do counts[c] = 0 end
  local pl = pred:totable()
  for i = 1, #pl do
    local c = math.tointeger(pl[i])
    if not c or c < 1 or c > k then
      fail("%s: prediction %s at %d is not a class in [1, %d] (classes are 1-based)", who,
           util.fmt(pl[i]), i, k)
    end
    counts[c] = counts[c] + 1
  end
  local n = #pl
  local covered, kl = 0, 0
  for c = 1, k do
    if counts[c] >= min_share * n / k then covered = covered + 1 end
    if counts[c] > 0 then
      local p = counts[c] / n
      kl = kl + p * math.log(p * k)
    end
  end
  return {counts = counts, coverage = covered / k, kl_uniform = kl}
end

-- exp(E_x KL(p(y|x) || p(y))) of probabilities (N,K): 1 when every sample
-- gets the same prediction, K for confident predictions spread evenly.
function E.classifier_score(probs)
  local p = probs:clamp(1e-12, 1)
  local py = p:mean(1, {keepdim = true})
  local kl = (p * (p:log() - py:log())):sum(2)
  return math.exp(kl:mean():item())
end

---------------------------------------------------------------------------
-- memorisation

local function quantile(sorted, q)
  local n = #sorted
  local pos = q * (n - 1) + 1
  local lo = math.floor(pos)
  local hi = math.min(lo + 1, n)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
end

local function sorted_list(t)
  local l = t:totable()
  table.sort(l)
  return l
end

-- Training rows scored against at a time when the training set is kept as
-- bytes: a multiple of the knn kernel's 2048-row block (apps/lga_metrics.c), so the
-- chunks are scored block for block as one call over the whole set would
-- score them (the same distances, bit for bit), and only 25 MB of the set is
-- ever float at once.
local KNN_CHUNK = 4 * 2048
-- samples per rank's share of the memorisation check under lg.dist
local MEMO_CHUNK = 100

-- Distance from each row of x (N,784) to its nearest row of rows (M,784),
-- or of a byte image set (M,1,28,28) converted one chunk at a time.
local function nearest(x, rows)
  if lg.is_tensor(rows) then return (lg.linalg.knn(x, rows, 1)) end
  local m, best = rows:shape()[1], nil
  for s = 1, m, KNN_CHUNK do
    local len = math.min(KNN_CHUNK, m - s + 1)
    local d = lg.linalg.knn(x, rows:narrow(1, s, len):reshape(len, 784), 1)
    best = best and lg.minimum(best, d) or d
  end
  return best
end

-- Pixel-space ratios d_train / d_test of the rows of x (N,784) against the
-- training images and the test images (nearest neighbour of each);
-- skip_test_self: x are the first N test images themselves.
local function nn_ratios(x, train, test, skip_test_self)
  local dtr = nearest(x, train)
  local dte
  if skip_test_self then
    -- the query set is a prefix of test: use the whole test set and skip i == i
    local n = x:shape()[1]
    local t = test:narrow(1, 1, n)
    local d1 = lg.linalg.knn(x, t, 1, {skip_self = true})
    if test:shape()[1] > n then
      local d2 = lg.linalg.knn(x, test:narrow(1, n + 1, test:shape()[1] - n), 1)
      dte = lg.minimum(d1, d2)
    else
      dte = d1
    end
  else
    dte = lg.linalg.knn(x, test, 1)
  end
  return dtr / (dte + 1e-8), dtr, dte
end

-- memorisation(samples, {train = (M,784) in [-1,1], test = (T,784), n = 1000})
-- (train may also be a byte image set, data.fashion_mnist's images: it is
-- then scored a chunk at a time; the default is the training set so kept)
-- For each of n samples, the distance to the nearest training image and to
-- the nearest test image; a generator that replays training images has
-- ratios near 0, one that generalises looks like held-out real images. The
-- reference: the same ratios for n real test images (their nearest training
-- image vs their nearest other test image). A sample is a near copy when its
-- ratio is below the 1st percentile of the reference ratios; the check is
-- flagged when more than 5 % of the samples are near copies (5 times the
-- rate of real unseen images). Returns {ratio_median, ref_ratio_median,
-- copy_threshold, copy_fraction, flagged, d_train_median, d_test_median, n}.
function E.memorisation(samples, o)
  local who = "eval.memorisation"
  o = check_opts(who, o, {"train", "test", "n", "n_ref", "flag_fraction", "dist"})
  check_num(who, "n", o.n, {int = true, lo = 1, optional = true})
  check_num(who, "n_ref", o.n_ref, {int = true, lo = 1, optional = true})
  check_num(who, "flag_fraction", o.flag_fraction, {lo = 0, hi = 1, optional = true})
  local x = E.as_images(samples, "eval.memorisation")
  local n = math.min(o.n or E.MEMO_SAMPLES, x:shape()[1])
  local train, test = o.train, o.test
  if not train or not test then
    local ref = E.reference()
    train, test = train or ref.train_images(), test or ref.test_pixels
  end
  local ntest = test:shape()[1]
  if ntest < 2 then fail("eval.memorisation: need at least 2 test images") end
  local q = x:narrow(1, 1, n):reshape(n, 784)
  local ratio, dtr, dte
  if split_over_ranks(o.dist) then
    -- the samples split over the ranks: each row's distances are its own
    local all = lg.dist.split_map(n, MEMO_CHUNK, function(first, count)
      return lg.stack({nn_ratios(q:narrow(1, first, count), train, test, false)}, 2)
    end)
    ratio, dtr, dte = all:select(2, 1):contiguous(), all:select(2, 2):contiguous(),
                      all:select(2, 3):contiguous()
  else
    ratio, dtr, dte = nn_ratios(q, train, test, false)
  end
  local nref = math.min(o.n_ref or n, ntest - 1)
  local rratio = nn_ratios(test:narrow(1, 1, nref), train, test, true)
  local rs = sorted_list(rratio)
  local thr = quantile(rs, 0.01)
  local rl = ratio:totable()
  local copies = 0
  for i = 1, #rl do if rl[i] < thr then copies = copies + 1 end end
  local frac = copies / #rl
  return {
    n = n, n_ref = nref,
    ratio_median = quantile(sorted_list(ratio), 0.5),
    ref_ratio_median = quantile(rs, 0.5),
    copy_threshold = thr, copy_fraction = frac,
    flagged = frac > (o.flag_fraction or 0.05),
    d_train_median = quantile(sorted_list(dtr), 0.5),
    d_test_median = quantile(sorted_list(dte), 0.5),
  }
end

---------------------------------------------------------------------------
-- the reference data (test set features, training images), computed once

local ref_cache

-- Forget the cached reference features (after changing the classifier).
function E.clear_cache() ref_cache = nil end

-- {test_images, test_labels, test_feats, feature_rms, test_stats(),
--  test_radii(k), test_pixels, train_pixels() (60000x784), train_images(),
--  train_labels()}; loaded on first use. o.test_limit = n: only the first n
-- test images (for quick tests; scores are then not the protocol's);
-- o.reload: rebuild (also needed to change test_limit).
-- test_images is a float tensor (the features and the memorisation check use
-- it whole: 31 MB); train_images() is the training set kept as bytes
-- (data.fashion_mnist's images: rows drawn from it are floats), and
-- train_pixels() its full float copy (188 MB: only for callers that need
-- one tensor; nothing here does).
function E.reference(o)
  check_opts("eval.reference", o, {"test_limit", "reload", "dist"})
  if ref_cache and not (o and o.reload) then return ref_cache end
  local data = require "luagan.data"
  local test = data.fashion_mnist{split = "test", limit = o and o.test_limit}
  local test_images = test.images:float()
  local r = {test_images = test_images, test_labels = test.labels}
  local _, f = E.features(test_images, {dist = o and o.dist})
  r.test_feats = f
  -- the RMS of the test features: the fixed scale of the KID kernel
  r.feature_rms = math.sqrt((f * f):mean():item())
  r.test_pixels = test_images:reshape(test_images:shape()[1], 784)
  local train_ds
  local function train()
    train_ds = train_ds or data.fashion_mnist{split = "train"}
    return train_ds
  end
  function r.train_images() return train().images end
  function r.train_labels() return train().labels end
  function r.train_pixels()
    local t = train().images:float()
    return t:reshape(t:shape()[1], 784)
  end
  local stats, radii
  function r.test_stats() stats = stats or E.stats(f) return stats end
  function r.test_radii(k)
    k = k or E.PR_K
    radii = radii or {}
    radii[k] = radii[k] or lg.linalg.knn(f, f, k, {skip_self = true})
    return radii[k]
  end
  ref_cache = r
  return r
end

---------------------------------------------------------------------------
-- the full Fashion-MNIST report

-- fashion(samples, opts) -> report table. samples (N,1,28,28) in [-1,1].
-- opts: n = 10000 (the fixed count; exactly n samples are scored and fewer
-- is an error), k = 3, kid_subsets = 100, kid_size = 1000, memo = 1000
-- (0 skips the memorisation check), floor = false (also score n random
-- training images the same way: the value a perfect generator would get),
-- seed = 1 (KID subsets, floor subset).
function E.fashion(samples, o)
  local who = "eval.fashion"
  o = check_opts(who, o, {"n", "k", "kid_subsets", "kid_size", "memo", "floor", "seed", "dist"})
  check_num(who, "n", o.n, {int = true, lo = 1, optional = true})
  check_num(who, "memo", o.memo, {int = true, lo = 0, optional = true})
  local x = E.as_images(samples, "eval.fashion")
  local n = o.n or E.FD_SAMPLES
  local have = x:shape()[1]
  if have < n then
    fail("eval.fashion: %d samples given, the metrics use a fixed count of %d (Frechet " ..
         "distance and precision/recall depend on N); give %d samples or set n = %d " ..
         "(scores are then only comparable with other n = %d scores)", have, n, n, have, have)
  end
  x = x:narrow(1, 1, n)
  local ref = E.reference{dist = o.dist}
  local real = ref.test_feats
  local t0 = lg.clock and lg.clock() or os.time()
  local logits, f = E.features(x, {dist = o.dist})
  local report = {n = n, n_real = real:shape()[1], classifier = E.classifier_path(),
                  kid_scale = ref.feature_rms}
  report.fd = E.frechet(ref.test_stats(), f)
  report.kid, report.kid_std = E.kid(f, real, {subsets = o.kid_subsets, size = o.kid_size,
                                               seed = o.seed, scale = ref.feature_rms})
  report.precision, report.recall = E.precision_recall(real, f, {k = o.k,
                                                                 real_radii = ref.test_radii(o.k)})
  local _, pred = logits:max(2)
  local cs = E.class_stats(pred)
  report.class_counts, report.coverage, report.kl_uniform = cs.counts, cs.coverage, cs.kl_uniform
  report.cs = E.classifier_score(lg.softmax(logits, 2))
  if (o.memo or E.MEMO_SAMPLES) > 0 then
    report.memorisation = E.memorisation(x, {n = o.memo, dist = o.dist})
  end
  if o.floor then
    local train = ref.train_images()
    local idx = with_seed(o.seed or 1, lg.randperm, train:shape()[1]):narrow(1, 1, n)
    local fl = E.fashion(train:index_select(1, idx), {n = n, k = o.k, kid_subsets = o.kid_subsets,
                                                      kid_size = o.kid_size, memo = 0,
                                                      seed = o.seed, dist = o.dist})
    report.floor = fl
  end
  report.seconds = (lg.clock and lg.clock() or os.time()) - t0
  return report
end

-- A few lines of text for a report (and its floor, if present).
function E.format(r)
  local lines = {}
  local function row(name, v, fl, fmt)
    local s = string.format("  %-22s " .. fmt, name, v)
    if fl ~= nil then s = s .. string.format("   (real train images: " .. fmt .. ")", fl) end
    lines[#lines + 1] = s
  end
  local f = r.floor or {}
  lines[#lines + 1] = string.format("Fashion-MNIST, %d samples vs %d test images " ..
                                    "(classifier features, %s)",
                                    r.n, r.n_real, r.classifier or E.classifier_path())
  row("Frechet distance", r.fd, f.fd, "%.3f")
  lines[#lines + 1] = string.format("  %-22s %.3f +- %.3f%s", "KID x 1000", 1000 * r.kid,
                                    1000 * r.kid_std,
                                    f.kid and string.format("   (real train images: %.3f +- %.3f)",
                                                            1000 * f.kid, 1000 * f.kid_std) or "")
  row("precision (k=3)", r.precision, f.precision, "%.4f")
  row("recall (k=3)", r.recall, f.recall, "%.4f")
  row("class coverage", r.coverage, f.coverage, "%.2f")
  row("KL(labels || uniform)", r.kl_uniform, f.kl_uniform, "%.4f")
  row("classifier score", r.cs, f.cs, "%.3f")
  local counts = {}
  for i, c in ipairs(r.class_counts) do counts[i] = tostring(c) end
  lines[#lines + 1] = "  predicted classes      " .. table.concat(counts, " ")
  local m = r.memorisation
  if m then
    lines[#lines + 1] = string.format("  memorisation           d_train/d_test median %.3f " ..
      "(real test images %.3f); near copies %.1f %% -> %s", m.ratio_median, m.ref_ratio_median,
      100 * m.copy_fraction, m.flagged and "FLAGGED: replays training images" or "ok")
  end
  return table.concat(lines, "\n")
end

---------------------------------------------------------------------------
-- conditional, encoder and translation metrics

-- Share of samples the classifier assigns to their intended labels (1..10):
-- the CGAN label accuracy of G(z, y).
function E.label_accuracy(samples, labels, o)
  check_opts("eval.label_accuracy", o, {"net"})
  local pred = E.predict(samples, o)
  local y = labels:reshape(pred:shape())
  return pred:eq(y):mean():item()
end

-- The assignment maximising sum w[i][perm[i]] of a square matrix (Hungarian
-- method with potentials, O(n^3)); returns perm (row -> column) and the sum.
function E.hungarian(w)
  local n = #w
  local big = 0
  for i = 1, n do
    if #w[i] ~= n then fail("eval.hungarian: expected a square matrix, row %d has %d of %d", i, #w[i], n) end
    for j = 1, n do big = math.max(big, w[i][j]) end
  end
  -- minimise cost = big - w; arrays indexed 0..n, 0 the dummy row/column
  local u, v, p, way = {}, {}, {}, {}
  for j = 0, n do u[j], v[j], p[j], way[j] = 0, 0, 0, 0 end
  for i = 1, n do
    p[0] = i
    local j0 = 0
    local minv, used = {}, {}
    for j = 0, n do minv[j], used[j] = math.huge, false end
    repeat
      used[j0] = true
      local i0, delta, j1 = p[j0], math.huge, 0
      for j = 1, n do
        if not used[j] then
          local cur = (big - w[i0][j]) - u[i0] - v[j]
          if cur < minv[j] then minv[j], way[j] = cur, j0 end
          if minv[j] < delta then delta, j1 = minv[j], j end
        end
      end
      for j = 0, n do
        if used[j] then u[p[j]] = u[p[j]] + delta; v[j] = v[j] - delta
        else minv[j] = minv[j] - delta end
      end
      j0 = j1
    until p[j0] == 0
    repeat
      local j1 = way[j0]
      p[j0] = p[j1]
      j0 = j1
    until j0 == 0
  end
  local perm, total = {}, 0
  for j = 1, n do perm[p[j]] = j end
  for i = 1, n do total = total + w[i][perm[i]] end
  return perm, total
end

-- InfoGAN categorical-code accuracy: samples generated with codes (N,
-- values 1..K); the classifier's predictions are matched to codes one to one
-- (Hungarian method on the K x 10 count matrix, padded square) and the
-- accuracy is the share of samples whose prediction is their code's class.
-- Returns accuracy, mapping (code -> class), counts (K x 10), and the
-- many-to-one accuracy (each code to its most frequent class) as a 4th value.
function E.code_accuracy(samples, codes, o)
  check_opts("eval.code_accuracy", o, {"net"})
  local pred = E.predict(samples, o)
  local pl, cl = pred:totable(), codes:reshape(pred:shape()):totable()
  local k = 0
  for i, c in ipairs(cl) do
    local ci = math.tointeger(c)
    if not ci or ci < 1 then
      fail("eval.code_accuracy: code %s at %d is not a 1-based class (an integer >= 1)", util.fmt(c), i)
    end
    k = math.max(k, ci)
  end
  local size = math.max(k, 10)
  local counts = {}
  for i = 1, size do
    counts[i] = {}
    for j = 1, size do counts[i][j] = 0 end
  end
  for i = 1, #pl do
    local c, y = math.tointeger(cl[i]), math.tointeger(pl[i])
    counts[c][y] = counts[c][y] + 1
  end
  local perm, matched = E.hungarian(counts)
  local mapping, out_counts, majority = {}, {}, 0
  for c = 1, k do
    mapping[c] = perm[c] <= 10 and perm[c] or nil
    out_counts[c] = {table.unpack(counts[c], 1, 10)}
    local best = 0
    for j = 1, 10 do best = math.max(best, counts[c][j]) end
    majority = majority + best
  end
  return matched / #pl, mapping, out_counts, majority / #pl
end

-- Test reconstruction error of x_rec = G(E(x)) against x (same shapes):
-- {mse, l1} per pixel in the [-1,1] scale.
function E.reconstruction_error(x, xr)
  local d = x:detach() - xr:detach():reshape(x:shape())
  return {mse = (d * d):mean():item(), l1 = d:abs():mean():item()}
end

-- Linear-probe accuracy of encoder features: multinomial logistic regression
-- on standardised train features (Adam, minibatches), test accuracy.
-- linear_probe(ztr (N,D), ytr (N), zte (M,D), yte (M), {epochs = 20,
-- lr = 1e-2, batch = 256, weight_decay = 1e-4, seed = 1}) -> test acc, train acc
function E.linear_probe(ztr, ytr, zte, yte, o)
  local who = "eval.linear_probe"
  o = check_opts(who, o, {"epochs", "lr", "batch", "weight_decay", "seed"})
  check_num(who, "epochs", o.epochs, {int = true, lo = 1, optional = true})
  check_num(who, "batch", o.batch, {int = true, lo = 1, optional = true})
  ztr, zte = ztr:detach(), zte:detach()
  local n, d = ztr:shape()[1], ztr:shape()[2]
  local k = math.tointeger(math.max(ytr:max():item(), yte:max():item()))
  local mu = ztr:mean(1, {keepdim = true})
  local sd = ztr:std(1, {keepdim = true}) + 1e-6
  local xtr, xte = (ztr - mu) / sd, (zte - mu) / sd
  return with_seed(o.seed or 1, function()
    local W = (lg.randn(d, k) * 0.01):requires_grad_()
    local b = lg.zeros(k):requires_grad_()
    local opt = lg.optim.Adam({W, b}, {lr = o.lr or 1e-2, weight_decay = o.weight_decay or 1e-4})
    local bs = o.batch or 256
    for _ = 1, o.epochs or 20 do
      local perm = lg.randperm(n)
      for i = 1, n, bs do
        local idx = perm:narrow(1, i, math.min(bs, n - i + 1))
        opt:zero_grad()
        local loss = lg.cross_entropy(lg.matmul(xtr:index_select(1, idx), W) + b,
                                      ytr:index_select(1, idx))
        loss:backward()
        opt:step()
      end
    end
    local function acc(xx, yy)
      return lg.no_grad(function()
        local _, p = (lg.matmul(xx, W) + b):max(2)
        return p:eq(yy:reshape(p:shape())):mean():item()
      end)
    end
    return acc(xte, yte), acc(xtr, ytr)
  end)
end

-- CycleGAN / CoGAN on a known transform T (lg.data.unpaired):
-- translation{a = originals, fake_b = G_AB(a), transform = T (or target_b = T(a)),
--             b = domain-B images, b_labels =, fake_a = G_BA(b),
--             a_labels =, inverse = T^-1 (optional)}
-- -> {l1, mse: |G_AB(a) - T(a)| per pixel; l1_identity: the same for a
--     generator that returns its input (the scale of the error);
--     class_ba: classifier accuracy on G_BA(b) against b's labels (domain A
--     is plain Fashion-MNIST, so the classifier applies directly);
--     class_ab: accuracy on inverse(G_AB(a)) against a's labels, if inverse}
function E.translation(t)
  if type(t) ~= "table" then error("eval.translation: expected a table of tensors, got " .. type(t), 2) end
  check_opts("eval.translation", t, {"a", "fake_b", "transform", "target_b", "b", "b_labels",
                                     "fake_a", "a_labels", "inverse"})
  local r = {}
  if t.fake_b and t.a then
    local target = t.target_b or (t.transform and t.transform(t.a))
    if not target then fail("eval.translation: give transform or target_b with a and fake_b") end
    local err = E.reconstruction_error(target, t.fake_b)
    r.l1, r.mse = err.l1, err.mse
    r.l1_identity = E.reconstruction_error(target, t.a).l1
    if t.inverse and t.a_labels then
      r.class_ab = E.label_accuracy(t.inverse(t.fake_b:detach()), t.a_labels)
    end
  end
  if t.fake_a and t.b_labels then
    r.class_ba = E.label_accuracy(t.fake_a, t.b_labels)
  end
  return r
end

---------------------------------------------------------------------------
-- samples from a training checkpoint (recipes of scripts/luagan/train.lua)

-- The tensor allocator keeps freed blocks for reuse (a training step then
-- allocates nothing), but after a one-off phase (loading a checkpoint: its
-- tensors are copied into the nets; sampling or featurising in chunks) the
-- blocks it freed are dead weight for the rest of the run: drop them.
local function trim()
  collectgarbage()
  lg.mem_trim()
end

-- n samples from the checkpoint at path, drawn in chunks of 250 (each chunk
-- under its own seed, since train.sample restores the generator state): a
-- chunk's activations, not n samples', are what sampling holds at once.
-- o.recipe and o.hint go to train.load (a run of a user's own recipe file);
-- o.dist: the chunks split over the ranks of lg.dist and gathered on every
-- rank (chunk i is drawn under the same seed wherever it runs).
-- -> tensor (n, ...) as the recipe's sample function returns it.
function E.sample_checkpoint(path, n, o)
  local who = "eval.sample_checkpoint"
  o = check_opts(who, o, {"chunk", "seed", "recipe", "hint", "dist"})
  n = check_num(who, "n", n, {int = true, lo = 1})
  check_num(who, "chunk", o.chunk, {int = true, lo = 1, optional = true})
  local train = require "luagan.train"
  local state, r = train.load(path, {recipe = o.recipe, hint = o.hint, where = "eval"})
  if not r.sample then fail("eval: recipe '%s' has no sample function", r.name) end
  trim()
  local chunk = o.chunk or E.SAMPLE_CHUNK
  local tmp = os.tmpname()
  local seed = o.seed or 1
  local ok, x = pcall(map_chunks, n, chunk, function(first, count)
    local i = (first - 1) // chunk + 1
    lg.manual_seed(seed * 100003 + i)
    local s = train.sample(r, state, tmp .. ".png", {n = count})
    if not is_tensor(s) then
      fail("eval: recipe '%s': sample() must return the tensor it drew to be evaluated", r.name)
    end
    if s:dim() < 1 or s:shape()[1] < count then
      fail("eval: recipe '%s': sample() drew %s samples when asked for %d", r.name,
           s:dim() < 1 and "no" or tostring(s:shape()[1]), count)
    end
    return s:detach():narrow(1, 1, count)
  end, split_over_ranks(o.dist))
  os.remove(tmp); os.remove(tmp .. ".png")
  if not ok then error(x, 0) end
  state = nil   -- the nets (and optimizer states) go before the rest of the run
  trim()
  return x, r
end

return E
