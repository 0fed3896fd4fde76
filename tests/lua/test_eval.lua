-- tests/lua/test_eval.lua: lg.eval and `luagan eval`. The linear algebra
-- against hand cases and closed forms; then the calibration of the
-- Fashion-MNIST metrics with the shipped classifier on real images and
-- controlled corruptions of them (smaller sample counts than the documented
-- protocol, so the file runs in seconds; the orderings checked hold by wide
-- margins at these sizes, see docs/eval.md for full-size numbers).
local T = ...
local lg = require "luagan"
local ev = require "luagan.eval"
local data = require "luagan.data"

local N = 1000          -- samples per scored set here (the protocol uses 10000)

---------------------------------------------------------------------------
-- linear algebra

T.test("matrix square root, eigendecomposition and trace sqrt against hand cases", function()
  local r3 = math.sqrt(3)
  local s = lg.linalg.sqrtm_psd{{2, 1}, {1, 2}}          -- V diag(1, 3) V^T
  T.near(s[1][1], (1 + r3) / 2, 1e-14)
  T.near(s[1][2], (r3 - 1) / 2, 1e-14)
  T.near(s[2][1], (r3 - 1) / 2, 1e-14)
  T.near(s[2][2], (1 + r3) / 2, 1e-14)
  local w, V = lg.linalg.sym_eig{{2, 1}, {1, 2}}
  T.near(w[1], 1, 1e-14)
  T.near(w[2], 3, 1e-14)
  T.near(V[1][2] * V[2][2], 0.5, 1e-14)                  -- (1,1)/sqrt2 for eigenvalue 3
  -- a projection against a full matrix: tr sqrt(diag(1,0) B) = sqrt(B11)
  T.near(lg.linalg.trace_sqrt_product({{1, 0}, {0, 0}}, {{2, 1}, {1, 2}}), math.sqrt(2), 1e-14)
  T.errors(function() lg.linalg.sqrtm_psd{{1, 0}, {0, -1}} end, "not positive semi-definite")
  T.errors(function() lg.linalg.sqrtm_psd{{1, 2}, {3}} end, "square matrix")
  T.errors(function() lg.linalg.sym_eig{{1, 2}, {3, 4}} end, "not symmetric")
end)

T.test("Frechet distance: identical sets give 0, known Gaussians give the closed form", function()
  lg.manual_seed(5)
  local x = lg.randn(500, 6)
  T.ok(math.abs(ev.frechet(x, x)) < 1e-9)
  -- N(m1, diag(a)) vs N(m2, R diag(l) R^T): no sampling, the stats as tables
  local th, l1, l2 = 0.6, 3.0, 0.5
  local c, s = math.cos(th), math.sin(th)
  local A = {mu = {0, 0}, cov = {{1, 0}, {0, 1}}}
  local B = {mu = {1, -2}, cov = {{c * c * l1 + s * s * l2, c * s * (l1 - l2)},
                                  {c * s * (l1 - l2), s * s * l1 + c * c * l2}}}
  local expect = (1 + 4) + (1 - math.sqrt(l1)) ^ 2 + (1 - math.sqrt(l2)) ^ 2
  T.near(ev.frechet(A, B), expect, 1e-12)
  T.near(ev.frechet(B, A), expect, 1e-12)
  -- sampled: N(0, diag(1,4)) vs N((1,0), diag(4,1)) -> 1 + (1-2)^2 + (2-1)^2 = 3
  local n = 40000
  local a = lg.randn(n, 2) * lg.tensor{1, 2}
  local b = lg.randn(n, 2) * lg.tensor{2, 1} + lg.tensor{1, 0}
  T.near(ev.frechet(a, b), 3, 0.1)
  -- two samples of one distribution: small, and the mean/cov are float64
  local st = ev.stats(a)
  T.eq(#st.mu, 2)
  T.near(st.cov[2][2], 4, 0.15)
end)

T.test("KID: fast kernel sums match the naive loops; near 0 for one distribution", function()
  lg.manual_seed(6)
  local x, y = lg.randn(300, 16), lg.randn(280, 16) + 0.2
  T.near(lg.linalg.mmd2_poly(x, y), lg.linalg.mmd2_poly(x, y, {naive = true}), 1e-6)
  local a, b = lg.randn(2000, 16), lg.randn(2000, 16)
  local m, sd = ev.kid(a, b, {subsets = 20, size = 500})
  T.ok(math.abs(m) < 3 * sd, string.format("KID of one distribution %g +- %g", m, sd))
  local m2 = ev.kid(a, b + 0.3, {subsets = 20, size = 500})
  T.ok(m2 > 10 * sd, "a shift of 0.3 must be clear")
  -- the global generator is left alone
  lg.manual_seed(9)
  local before = lg.rand(1):item()
  lg.manual_seed(9)
  ev.kid(a, b, {subsets = 2, size = 50})
  T.eq(lg.rand(1):item(), before)
end)

T.test("k-NN precision/recall and in_balls agree with the naive references", function()
  lg.manual_seed(7)
  local real, fake = lg.randn(700, 8), lg.randn(600, 8) * 1.5
  local r1, i1 = lg.linalg.knn(real, real, 3, {skip_self = true})
  local r2, i2 = lg.linalg.knn(real, real, 3, {skip_self = true, naive = true})
  T.ok((r1 - r2):abs():max():item() < 1e-4)
  T.eq(i1:totable(), i2:totable())
  T.eq(lg.linalg.in_balls(fake, real, r1):totable(),
       lg.linalg.in_balls(fake, real, r1, {naive = true}):totable())
  -- a wider fake cloud: lower precision, while recall stays high
  local p, r = ev.precision_recall(real, fake)
  T.ok(p < 0.8 and r > 0.8, string.format("precision %.3f recall %.3f", p, r))
end)

---------------------------------------------------------------------------
-- conditional / encoder helpers without the classifier

T.test("hungarian matching beats greedy on a hand case", function()
  local perm, total = ev.hungarian{{9, 8, 0}, {8, 0, 0}, {0, 0, 1}}
  T.eq(total, 17)
  T.eq(perm, {2, 1, 3})
  local p2, t2 = ev.hungarian{{1, 0}, {0, 1}}
  T.eq(t2, 2)
  T.eq(p2, {1, 2})
end)

T.test("reconstruction error and linear probe", function()
  local x = lg.tensor{{1, -1}, {0, 0.5}}
  local e = ev.reconstruction_error(x, lg.tensor{{0, -1}, {0, 0}})
  T.near(e.mse, (1 + 0.25) / 4, 1e-7)
  T.near(e.l1, (1 + 0.5) / 4, 1e-7)
  -- three separable Gaussian classes in 5-D: a linear probe gets them
  lg.manual_seed(8)
  local function blobs(n)
    local y = lg.randint(1, 4, {n})
    local centres = lg.tensor{{3, 0, 0, 0, 0}, {0, 3, 0, 0, 0}, {0, 0, 3, 0, 0}}
    return centres:index_select(1, y) + lg.randn(n, 5) * 0.5, y
  end
  local ztr, ytr = blobs(600)
  local zte, yte = blobs(300)
  local acc = ev.linear_probe(ztr, ytr, zte, yte, {epochs = 10})
  T.ok(acc > 0.97, "probe accuracy " .. acc)
  -- random labels: chance level
  local acc2 = ev.linear_probe(ztr, lg.randint(1, 4, {600}), zte, lg.randint(1, 4, {300}),
                               {epochs = 5})
  T.ok(acc2 < 0.5, "probe on random labels " .. acc2)
end)

---------------------------------------------------------------------------
-- calibration with the shipped classifier

local C = require "classifier"
local test = data.fashion_mnist{split = "test"}
local train = data.fashion_mnist{split = "train"}
lg.manual_seed(11)
local perm = lg.randperm(60000)
local real = train.images:index_select(1, perm:narrow(1, 1, N))         -- fresh real images
local real_labels = train.labels:index_select(1, perm:narrow(1, 1, N))
-- the first 2000 test images as the reference set (the protocol uses all 10000)
local ref = ev.reference{reload = true, test_limit = 2000}
local test_stats = ref.test_stats()

local function fd_of(x)
  local _, f = ev.features(x)
  return ev.frechet(test_stats, f)
end

T.test("the shipped classifier: >= 91 % recorded, and it classifies the test images", function()
  local _, meta = C.load()
  T.ok(tonumber(meta.test_accuracy) >= 0.91, "recorded test accuracy " .. tostring(meta.test_accuracy))
  local acc = ev.label_accuracy(test.images:narrow(1, 1, N), test.labels:narrow(1, 1, N))
  T.ok(acc >= 0.9, "accuracy on 1000 test images " .. acc)
  local f = io.open(C.WEIGHTS, "rb")
  local size = f:seek("end")
  f:close()
  T.ok(size < 2 * 1024 * 1024, "weights file is " .. size .. " bytes")
end)

local floor_fd = fd_of(real)

T.test("gaussian noise raises the Frechet distance monotonically from the train-test floor", function()
  local prev = floor_fd
  for _, s in ipairs{0.05, 0.15, 0.4} do
    local fd = fd_of(ev.perturb.noise(real, s, 3))
    T.ok(fd > prev, string.format("noise %.2f: FD %.3f not above %.3f", s, fd, prev))
    prev = fd
  end
  T.ok(prev > 5 * floor_fd, "heavy noise must be far above the floor")
end)

T.test("gaussian blur raises the Frechet distance monotonically from the floor", function()
  local prev = floor_fd
  for _, s in ipairs{0.6, 1.2, 2.0} do
    local fd = fd_of(ev.perturb.blur(real, s))
    T.ok(fd > prev, string.format("blur %.1f: FD %.3f not above %.3f", s, fd, prev))
    prev = fd
  end
end)

local floor_report = ev.fashion(real, {n = N, kid_subsets = 10, memo = 200})

T.test("the train-vs-test floor: real images score as real on every metric", function()
  local r = floor_report
  T.near(r.fd, floor_fd, 1e-9)
  T.ok(math.abs(r.kid) < 3 * r.kid_std + 1e-4, string.format("KID %g +- %g", r.kid, r.kid_std))
  T.ok(r.precision > 0.6 and r.recall > 0.6, string.format("P %.3f R %.3f", r.precision, r.recall))
  T.eq(r.coverage, 1)
  T.ok(r.kl_uniform < 0.02, "label histogram of real images is near uniform: " .. r.kl_uniform)
  T.ok(r.cs > 7, "classifier score of real images " .. r.cs)
  -- fresh real images are not copies of training images (the test set split
  -- in two: one half as the "test" reference, queries from the other half)
  local m = ev.memorisation(test.images:narrow(1, 5001, 200),
                            {test = test.images:narrow(1, 1, 5000):reshape(5000, 784)})
  T.ok(not m.flagged, string.format("test images flagged: %.1f %% near copies", 100 * m.copy_fraction))
  -- a perturbation scores worse than the floor on the distances
  local noisy = ev.fashion(ev.perturb.noise(real, 0.3, 4), {n = N, kid_subsets = 10, memo = 0})
  T.ok(noisy.fd > r.fd and noisy.kid > r.kid and noisy.precision < r.precision)
end)

T.test("dropping classes lowers recall, coverage and raises the label KL", function()
  -- N distinct training images of classes 1..5 (none of them duplicated:
  -- duplicates would shrink the k-NN radii and lower recall by themselves)
  local keep = {}
  local yl, pl = train.labels:totable(), perm:totable()
  for _, i in ipairs(pl) do
    if yl[math.tointeger(i)] <= 5 then keep[#keep + 1] = i end
    if #keep == N then break end
  end
  local x = train.images:index_select(1, lg.tensor(keep))
  local r = ev.fashion(x, {n = N, kid_subsets = 10, memo = 0})
  T.ok(r.recall < 0.75 * floor_report.recall,
       string.format("recall %.3f vs floor %.3f", r.recall, floor_report.recall))
  T.ok(r.coverage <= 0.5, "coverage " .. r.coverage)
  T.ok(r.kl_uniform > 0.3, "KL " .. r.kl_uniform)   -- log 2 = 0.69 for 5 classes exactly; 0.57 here
  T.ok(r.fd > 10 * floor_report.fd)
end)

T.test("a generator that replays training images is flagged", function()
  local m = floor_report.memorisation          -- `real` are training images
  T.ok(m.flagged, "exact replay not flagged")
  T.ok(m.copy_fraction > 0.9 and m.ratio_median < 0.05)
  -- a replay under faint noise is still a copy
  local m2 = ev.memorisation(ev.perturb.noise(real:narrow(1, 1, 200), 0.02, 5))
  T.ok(m2.flagged, string.format("noisy replay: %.1f %% near copies", 100 * m2.copy_fraction))
end)

T.test("memorisation against the training set kept as bytes equals it as floats", function()
  -- the bytes are scored 8192 rows at a time (and converted per chunk); the
  -- float pixels in one knn call: every distance, so every figure, is equal
  local q = real:narrow(1, 1, 40)
  local pixels = train.images:float():reshape(60000, 784)
  local a = ev.memorisation(q, {n = 40, n_ref = 40, train = train.images, test = ref.test_pixels})
  local b = ev.memorisation(q, {n = 40, n_ref = 40, train = pixels, test = ref.test_pixels})
  pixels = nil
  for k, v in pairs(b) do T.eq(a[k], v, k) end
  T.ok(data.is_byte_images(ref.train_images()), "the reference keeps the training set as bytes")
end)

T.test("classifier score, label accuracy and code matching on real images", function()
  -- one class only: classifier score near 1
  local yl = real_labels:totable()
  local one = {}
  for i = 1, #yl do if yl[i] == 2 then one[#one + 1] = i end end
  local trousers = real:index_select(1, lg.tensor(one))
  local _, p = ev.predict(trousers)
  T.ok(ev.classifier_score(p) < 1.5)
  -- codes = a permutation of the true labels: matching recovers it
  local x, y = test.images:narrow(1, 1, 1000), test.labels:narrow(1, 1, 1000)
  local acc = ev.label_accuracy(x, y)
  local sigma = {3, 7, 1, 10, 2, 9, 4, 8, 6, 5}
  local codes = lg.tensor(sigma):index_select(1, y)
  local cacc, mapping = ev.code_accuracy(x, codes)
  T.near(cacc, acc, 1e-6)
  for cls = 1, 10 do T.eq(mapping[sigma[cls]], cls) end
end)

T.test("translation metrics against a known transform", function()
  local d = data.unpaired{transform = "invert", dataset = {images = test.images:narrow(1, 1, 400),
                          labels = test.labels:narrow(1, 1, 400), classes = test.classes,
                          scale = "tanh"}, seed = 1}
  -- a perfect translator: G_AB = T, G_BA = T^-1 (inversion is its own inverse)
  local r = ev.translation{a = d.a, fake_b = d.transform(d.a), transform = d.transform,
                           inverse = d.transform, a_labels = d.a_labels,
                           fake_a = d.transform(d.b), b_labels = d.b_labels}
  T.near(r.l1, 0, 1e-6)
  T.ok(r.l1_identity > 0.5)
  T.ok(r.class_ab > 0.85 and r.class_ba > 0.85)
  -- a translator that does nothing: the identity error, and class_ba collapses
  local r2 = ev.translation{a = d.a, fake_b = d.a, transform = d.transform,
                            fake_a = d.b, b_labels = d.b_labels}
  T.near(r2.l1, r2.l1_identity, 1e-6)
  T.ok(r2.class_ba < 0.5)
end)

---------------------------------------------------------------------------
-- the command

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  os.execute("mkdir -p '" .. p .. "'")
  return p
end

T.test("luagan eval: an IDX file and a run dir, JSON out; usage errors", function()
  local cmd = require "luagan.commands.eval"
  local lgio = require "luagan.io"
  local dir = tmpdir()
  ev.save_samples(dir .. "/samples.idx", test.images:narrow(1, 1, 600))
  local json = dir .. "/r.json"
  T.eq(cmd.fn{dir, "--n", "500", "--memo", "0", "--no-floor", "--kid-subsets", "5",
              "--json", json}, 0)
  local f = io.open(json)
  local r = lgio.json_decode(f:read("a"))
  f:close()
  T.eq(r.n, 500)
  T.ok(r.fd >= 0 and r.precision > 0.5 and r.coverage == 1)
  T.eq(r.source, dir .. "/samples.idx")
  -- the samples round-trip through IDX ubyte exactly (to the pixel)
  local back = ev.load_samples(dir .. "/samples.idx")
  T.ok((back - test.images:narrow(1, 1, 600)):abs():max():item() < 1e-5)
  T.errors(function() cmd.fn{dir, "--n", "1000"} end, "fixed count")
  T.errors(function() cmd.fn{dir, "--bogus"} end, "unknown option --bogus")
  T.errors(function() cmd.fn{dir .. "/nothing"} end, "no such file")
  os.execute("rm -rf '" .. dir .. "'")
end)

T.test("luagan eval --2d: mean +- s.e. over seed runs", function()
  local cmd = require "luagan.commands.eval"
  local dir = tmpdir()
  for s = 1, 2 do
    local x = data.ring{n = 2500, seed = s}
    lg.save_idx(dir .. "/ring_s" .. s .. ".idx", x)
  end
  local json = dir .. "/r.json"
  T.eq(cmd.fn{"--2d", "ring", dir .. "/ring_s{seed}.idx", "--seeds", "2", "--json", json}, 0)
  local f = io.open(json)
  local r = require("luagan.io").json_decode(f:read("a"))
  f:close()
  T.eq(r.summary.modes_recovered.mean, 8)
  T.eq(r.summary.modes_total, 8)
  T.eq(r.runs[1].modes_recovered, 8)
  T.eq(r.summary.modes, nil)                        -- issue 14: no ambiguous name
  T.ok(r.summary.high_quality.mean > 0.97)
  T.errors(function() cmd.fn{"--2d", "ring", dir .. "/ring_s{seed}.idx"} end, "--seeds")
  os.execute("rm -rf '" .. dir .. "'")
end)
