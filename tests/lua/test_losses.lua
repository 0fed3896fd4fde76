-- test_losses.lua: lg.losses against closed forms computed here in Lua
-- doubles, the f-GAN conjugates against the Fenchel definition, the tricks of
-- lg.tricks, and the GAN layers of lg.nn composed with the losses.
local T = ...
local lg = require "luagan"
local nn = lg.nn
local L = lg.losses
local tricks = lg.tricks

local LOG2 = math.log(2)

lg.manual_seed(606)

-- Lua-number references
local function sp(t)
  if t > 0 then return t + math.log(1 + math.exp(-t)) end
  return math.log(1 + math.exp(t))
end
local function sigmoid(t) return 1 / (1 + math.exp(-t)) end
local function mean(xs, f)
  local s = 0
  for _, x in ipairs(xs) do s = s + f(x) end
  return s / #xs
end
local function col(xs) -- (N,1) tensor, the usual shape of logits
  local t = {}
  for i, x in ipairs(xs) do t[i] = {x} end
  return lg.tensor(t)
end

local R = {-3.5, -0.7, 0, 0.4, 2.2, 6}          -- real logits
local F = {-5, -1.3, -0.2, 0.8, 1.5, 3}         -- fake logits
local r, f = col(R), col(F)

---------------------------------------------------------------------------
-- GAN

T.test("minimax D loss at D(x) = 1/2 is 2 log 2", function()
  local z = lg.zeros(16, 1)
  T.near(L.mmgan().d(z, z):item(), 2 * LOG2, 1e-6)
  T.near(L.nsgan().d(z, z):item(), 2 * LOG2, 1e-6)
  T.near(L.mmgan().g(z):item(), -LOG2, 1e-6)
  T.near(L.nsgan().g(z):item(), LOG2, 1e-6)
end)

T.test("mmgan / nsgan: cross-entropy on logits", function()
  local d = mean(R, function(l) return -math.log(sigmoid(l)) end)
          + mean(F, function(l) return -math.log(1 - sigmoid(l)) end)
  T.near(L.nsgan().d(r, f):item(), d, 1e-6)
  T.near(L.mmgan().d(r, f):item(), d, 1e-6)
  T.near(L.mmgan().g(f):item(), mean(F, function(l) return math.log(1 - sigmoid(l)) end), 1e-6)
  T.near(L.nsgan().g(f):item(), mean(F, function(l) return -math.log(sigmoid(l)) end), 1e-6)
  -- the same as lg.bce_with_logits against targets 1 and 0
  local bce = lg.bce_with_logits(r, lg.ones(6, 1)) + lg.bce_with_logits(f, lg.zeros(6, 1))
  T.near(L.nsgan().d(r, f):item(), bce:item(), 1e-6)
end)

T.test("losses stay finite for extreme logits (softplus forms)", function()
  local big = col{-1000, -100, 100, 1000}
  for _, name in ipairs(L.names) do
    if name ~= "ebgan" and name ~= "fgan" then
      local loss = L.make(name)
      local d, g = loss.d(big, big), loss.g(big, big)
      T.ok(d:item() == d:item() and math.abs(d:item()) < math.huge, name .. ".d finite")
      T.ok(g:item() == g:item() and math.abs(g:item()) < math.huge, name .. ".g finite")
    end
  end
  -- -log sigmoid(-1000) = 1000, not inf
  T.near(L.nsgan().g(col{-1000}):item(), 1000, 1e-6)
  T.near(L.nsgan().d(col{1000}, col{1000}):item(), 1000, 1e-6)
end)

T.test("mmgan saturates where nsgan does not", function()
  -- D confidently rejects the fakes (l_fake = -8): the minimax generator's
  -- gradient is sigma(l) ~ 3e-4, the non-saturating one's is sigma(-l) ~ 1
  local lf = col{-8}:requires_grad_()
  local g_mm = lg.grad(L.mmgan().g(lf), lf)[1]:item()
  local g_ns = lg.grad(L.nsgan().g(lf), lf)[1]:item()
  T.near(g_mm, -sigmoid(-8), 1e-4)
  T.near(g_ns, -sigmoid(8), 1e-6)
  T.ok(math.abs(g_mm) < 1e-3 * math.abs(g_ns), "minimax gradient vanishes")
end)

T.test("one-sided label smoothing", function()
  local a = 0.9
  local d = mean(R, function(l) return a * sp(-l) + (1 - a) * sp(l) end) + mean(F, sp)
  T.near(L.nsgan{real_label = a}.d(r, f):item(), d, 1e-6)
  T.near(tricks.one_sided_label_smoothing(a).d(r, f):item(), d, 1e-6)
  T.near(tricks.one_sided_label_smoothing(a, {loss = "mmgan"}).d(r, f):item(), d, 1e-6)
  local bce = lg.bce_with_logits(r, lg.full({6, 1}, a)) + lg.bce_with_logits(f, lg.zeros(6, 1))
  T.near(d, bce:item(), 1e-5)
  -- the generator's loss is untouched
  T.near(L.nsgan{real_label = a}.g(f):item(), L.nsgan().g(f):item(), 1e-7)
  T.errors(function() tricks.one_sided_label_smoothing(1.5) end, "alpha must be in (0, 1]")
end)

---------------------------------------------------------------------------
-- LSGAN, WGAN, hinge

T.test("lsgan closed forms", function()
  for _, abc in ipairs{{0, 1, 1}, {-1, 1, 0}, {0.2, 0.7, 0.5}} do
    local a, b, c = abc[1], abc[2], abc[3]
    local loss = L.lsgan{a = a, b = b, c = c}
    local d = 0.5 * mean(R, function(l) return (l - b) ^ 2 end) + 0.5 * mean(F, function(l) return (l - a) ^ 2 end)
    T.near(loss.d(r, f):item(), d, 1e-6)
    T.near(loss.g(f):item(), 0.5 * mean(F, function(l) return (l - c) ^ 2 end), 1e-6)
    -- the optimum: reals at b, fakes at a; G's at c
    T.near(loss.d(lg.full({4, 1}, b), lg.full({4, 1}, a)):item(), 0, 1e-7)
    T.near(loss.g(lg.full({4, 1}, c)):item(), 0, 1e-7)
  end
  local def = L.lsgan()
  T.eq({def.opts.a, def.opts.b, def.opts.c}, {0, 1, 1})
end)

T.test("wgan and hinge closed forms", function()
  local mr, mf = mean(R, function(l) return l end), mean(F, function(l) return l end)
  T.near(L.wgan().d(r, f):item(), mf - mr, 1e-6)
  T.near(L.wgan().g(f):item(), -mf, 1e-6)
  local h = mean(R, function(l) return math.max(0, 1 - l) end) + mean(F, function(l) return math.max(0, 1 + l) end)
  T.near(L.hinge().d(r, f):item(), h, 1e-6)
  T.near(L.hinge().g(f):item(), -mf, 1e-6)
  -- margins satisfied: zero loss; D = 0 everywhere: 2
  T.near(L.hinge().d(lg.full({3, 1}, 2), lg.full({3, 1}, -2)):item(), 0, 1e-7)
  T.near(L.hinge().d(lg.zeros(3, 1), lg.zeros(3, 1)):item(), 2, 1e-7)
end)

---------------------------------------------------------------------------
-- f-GAN

local V = {}
for i = 0, 24 do V[#V + 1] = -3 + 0.25 * i end     -- v in [-3, 3]

-- sup_u (t u - f(u)) by ternary search (t u - f(u) is concave) over u > 0,
-- or over all reals for the divergences whose f the paper extends to R
-- (Pearson: restricted to u >= 0 its conjugate is -1 for t < -2, not t^2/4 + t;
-- the larger conjugate still gives a valid lower bound)
local function conjugate(fn, t, whole_line)
  local lo, hi = whole_line and -1e4 or 1e-9, 1e4
  local function h(u) return t * u - fn(u) end
  for _ = 1, 300 do
    local m1, m2 = lo + (hi - lo) / 3, hi - (hi - lo) / 3
    if h(m1) < h(m2) then lo = m1 else hi = m2 end
  end
  return h((lo + hi) / 2)
end

T.test("f-GAN: f*(g(v)) equals its stable form on a grid of v", function()
  local vt = lg.tensor(V)
  for _, name in ipairs(L.fgan_divergence_names) do
    local div = L.fgan_divergences[name]
    local stable = div.fstar_g(vt):totable()
    local act = div.g(vt):totable()
    for i, v in ipairs(V) do
      local t = div.g_num(v)
      T.near(act[i], t, 1e-5)
      local direct = div.fstar(t)               -- the textbook composition
      T.near(stable[i], direct, 2e-5)
    end
  end
end)

T.test("f-GAN: each f* is the Fenchel conjugate of its f (checks the table)", function()
  for _, name in ipairs(L.fgan_divergence_names) do
    local div = L.fgan_divergences[name]
    for _, v in ipairs(V) do
      local t = div.g_num(v)
      local sup = conjugate(div.f, t, name == "pearson")
      local tol = 1e-6 * (1 + math.abs(sup))
      if math.abs(sup - div.fstar(t)) > tol then
        error(string.format("%s: v = %g, t = %g: sup_u (tu - f(u)) = %.9g but f*(t) = %.9g (tol %g)",
                            name, v, t, sup, div.fstar(t), tol))
      end
    end
  end
end)

T.test("f-GAN: at P = Q the optimal critic (g(v) = f'(1)) scores -f(1)", function()
  -- f*(f'(1)) = f'(1) - f(1), so -(E_P g - E_Q f*(g)) = -f(1) there: 0 for a
  -- divergence with f(1) = 0, 2 log 2 for the GAN one (its f(1) = -log 4)
  local v0 = {kl = 1, rkl = 0, pearson = 0, hellinger = 0, js = 0, gan = 0, tv = 0}
  for _, name in ipairs(L.fgan_divergence_names) do
    local loss = L.fgan{divergence = name}
    local f1 = L.fgan_divergences[name].f(1)
    local v = lg.full({5, 1}, v0[name])
    T.near(loss.d(v, v):item(), -f1, 1e-6)
    T.near(loss.estimate(v, v), f1, 1e-6)
  end
  T.near(L.fgan_divergences.gan.f(1), -2 * LOG2, 1e-12)
end)

T.test("f-GAN: critic and both generator objectives", function()
  for _, name in ipairs(L.fgan_divergence_names) do
    local div = L.fgan_divergences[name]
    local d = mean(F, function(v) return div.fstar(div.g_num(v)) end) - mean(R, div.g_num)
    local sad, alt = L.fgan{divergence = name, generator = "saddle"}, L.fgan{divergence = name}
    T.near(sad.d(r, f):item(), d, 1e-5)
    T.near(alt.d(r, f):item(), d, 1e-5)
    T.near(sad.g(f):item(), -mean(F, function(v) return div.fstar(div.g_num(v)) end), 2e-5)
    T.near(alt.g(f):item(), -mean(F, div.g_num), 1e-5)
    T.eq(alt.opts.generator, "alternative")
  end
  -- the GAN divergence is the GAN loss; JS is it shifted by 2 log 2
  T.near(L.fgan{divergence = "gan"}.d(r, f):item(), L.nsgan().d(r, f):item(), 1e-6)
  T.near(L.fgan{divergence = "js"}.d(r, f):item(), L.nsgan().d(r, f):item() - 2 * LOG2, 1e-6)
  T.errors(function() L.fgan{divergence = "chi"} end, "divergence must be one of kl, rkl")
  T.errors(function() L.fgan{generator = "minimax"} end, "generator must be")
end)

---------------------------------------------------------------------------
-- EBGAN

T.test("ebgan: energies, margin and the pull-away term", function()
  local loss = L.ebgan{margin = 0.5, pullaway = 0.1}
  local x = lg.tensor{{1, 2}, {0, 0}, {-1, 1}}
  local rec = lg.tensor{{1, 1}, {0.5, 0.5}, {-1, 1}}
  T.close(loss.energy(rec, x), {0.5, 0.25, 0})
  T.close(L.ebgan{energy = "sum"}.energy(rec, x), {1, 0.5, 0})
  local er, ef = lg.tensor{0.1, 0.3}, lg.tensor{0.2, 0.9}
  -- E e_real + E max(0, m - e_fake) = 0.2 + (0.3 + 0) / 2
  T.near(loss.d(er, ef):item(), 0.2 + 0.15, 1e-6)
  T.near(loss.g(ef):item(), 0.55, 1e-6)
  -- pull-away: orthogonal rows 0, parallel or opposite rows 1 (squared cosine)
  T.near(L.pullaway(lg.tensor{{1, 0}, {0, 2}}):item(), 0, 1e-7)
  T.near(L.pullaway(lg.tensor{{1, 1}, {-3, -3}}):item(), 1, 1e-6)
  local s = {{1, 2, 0}, {0.5, -1, 2}, {3, 0.1, -1}, {-1, -1, -1}}
  local want, n = 0, #s
  for i = 1, n do
    for j = 1, n do
      if i ~= j then
        local dot, ni, nj = 0, 0, 0
        for k = 1, 3 do
          dot = dot + s[i][k] * s[j][k]; ni = ni + s[i][k] ^ 2; nj = nj + s[j][k] ^ 2
        end
        want = want + (dot / math.sqrt(ni * nj)) ^ 2
      end
    end
  end
  want = want / (n * (n - 1))
  local st = lg.tensor(s)
  T.near(L.pullaway(st):item(), want, 1e-6)
  T.near(loss.g(ef, st):item(), 0.55 + 0.1 * want, 1e-6)
  T.near(L.ebgan{pullaway = 0}.g(ef, st):item(), 0.55, 1e-6)
  T.errors(function() L.pullaway(lg.ones(1, 3)) end, "needs at least 2 rows")
  T.errors(function() loss.energy(lg.ones(2, 3), lg.ones(3, 2)) end, "must have the same shape")
end)

---------------------------------------------------------------------------
-- relativistic

T.test("relativistic losses", function()
  local n = #R
  local rs_d, rs_g = 0, 0
  for i = 1, n do
    rs_d = rs_d + sp(-(R[i] - F[i])) / n
    rs_g = rs_g + sp(-(F[i] - R[i])) / n
  end
  local rs = L.rsgan()
  T.ok(rs.relativistic)
  T.near(rs.d(r, f):item(), rs_d, 1e-6)
  T.near(rs.g(f, r):item(), rs_g, 1e-6)
  local mr, mf = mean(R, function(l) return l end), mean(F, function(l) return l end)
  local function ra(kind, pos, neg)
    local pf = {
      sgan = function(a, b) return sp(-a) , sp(b) end,
      lsgan = function(a, b) return (a - 1) ^ 2, (b + 1) ^ 2 end,
      hinge = function(a, b) return math.max(0, 1 - a), math.max(0, 1 + b) end,
    }
    local s = 0
    for i = 1, n do
      local x, y = pf[kind](pos[i], neg[i])
      s = s + (x + y) / n
    end
    return s
  end
  for _, kind in ipairs{"sgan", "lsgan", "hinge"} do
    local dr, df = {}, {}
    for i = 1, n do dr[i] = R[i] - mf; df[i] = F[i] - mr end
    local loss = L.ragan{kind = kind}
    T.near(loss.d(r, f):item(), ra(kind, dr, df), 1e-6)
    T.near(loss.g(f, r):item(), ra(kind, df, dr), 1e-6)
  end
  T.errors(function() rs.g(f) end, "real_logits (relativistic losses need them) must be a tensor")
  T.errors(function() L.ragan().g(f) end, "relativistic losses need them")
  T.errors(function() rs.d(r, col{1, 2}) end, "same number of elements")
  T.errors(function() L.ragan{kind = "wgan"} end, "kind must be")
end)

---------------------------------------------------------------------------
-- gradients of every loss, by finite differences

T.test("every loss passes gradcheck on its inputs", function()
  local function leaf(t) return t:detach():requires_grad_() end
  -- away from the hinge kinks at +-1 and the EBGAN margin
  local lr, lf = leaf(col{-0.6, 0.3, 2.5, -1.7}), leaf(col{0.45, -0.3, 1.6, -2.4})
  local cases = {}
  for _, name in ipairs{"mmgan", "nsgan", "lsgan", "wgan", "hinge", "rsgan", "ragan"} do
    cases[#cases + 1] = {name, L.make(name)}
  end
  cases[#cases + 1] = {"ragan lsgan", L.ragan{kind = "lsgan"}}
  cases[#cases + 1] = {"ragan hinge", L.ragan{kind = "hinge"}}
  for _, dv in ipairs(L.fgan_divergence_names) do
    cases[#cases + 1] = {"fgan " .. dv, L.fgan{divergence = dv, generator = "saddle"}}
    cases[#cases + 1] = {"fgan alt " .. dv, L.fgan{divergence = dv}}
  end
  for _, c in ipairs(cases) do
    local loss = c[2]
    lg.gradcheck(function(a, b) return loss.d(a, b) end, {lr, lf}, {name = c[1] .. ".d"})
    lg.gradcheck(function(a, b) return loss.g(b, a) end, {lr, lf}, {name = c[1] .. ".g"})
  end
  local eb = L.ebgan{margin = 1}
  local er, ef = leaf(lg.tensor{0.2, 0.5}), leaf(lg.tensor{0.3, 1.4})
  local s = leaf(lg.randn(4, 3))
  lg.gradcheck(function(a, b) return eb.d(a, b) end, {er, ef}, {name = "ebgan.d"})
  lg.gradcheck(function(b, e) return eb.g(b, e) end, {ef, s}, {name = "ebgan.g"})
end)

T.test("losses.make, names and option errors", function()
  T.eq(L.make("gan").name, "nsgan")
  T.eq(L.make("mm").name, "mmgan")
  T.eq(L.make("wgan-gp").name, "wgan")
  T.eq(L.make("lsgan", {a = -1, b = 1, c = 0}).opts, {a = -1, b = 1, c = 0})
  for _, n in ipairs(L.names) do T.eq(L.make(n).name, n) end
  T.errors(function() L.make("vanilla") end, "unknown loss vanilla")
  T.errors(function() L.lsgan{alpha = 1} end, "unknown option 'alpha'")
  T.errors(function() L.nsgan{real_label = "high"} end, "real_label must be a number")
  T.errors(function() L.nsgan().d(r) end, "losses.nsgan.d: fake_logits must be a tensor, got nil")
  T.errors(function() L.hinge().g({1, 2}) end, "losses.hinge.g: fake_logits must be a tensor, got table")
end)

---------------------------------------------------------------------------
-- tricks

local function small_D()
  return nn.Sequential{nn.Linear(3, 6), nn.LeakyReLU(0.2), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 1)}
end

T.test("forward_to and features return an intermediate layer", function()
  local D = small_D()
  local x = lg.randn(5, 3)
  local h = D[4](D[3](D[2](D[1](x))))
  T.close(tricks.forward_to(D, 4, x), h, 1e-6)
  T.close(tricks.forward_to(D, "4", x), h, 1e-6)
  T.close(tricks.forward_to(D, -2, x), h, 1e-6)
  T.close(tricks.forward_to(D, D[4], x), h, 1e-6)
  local out, feats = tricks.features(D, x, {"2", "4"})
  T.close(out, D(x), 1e-6)
  T.close(feats["4"], h, 1e-6)
  T.close(feats["2"], D[2](D[1](x)), 1e-6)
  -- nested modules by dotted name; the hook is removed afterwards
  local net = nn.Sequential{D, nn.Sigmoid()}
  local _, f2 = tricks.features(net, x, "1.4")
  T.close(f2["1.4"], h, 1e-6)
  T.ok(rawget(D[4], "forward") == nil, "the capture hook is removed")
  T.errors(function() tricks.features(net, x, {"1.9"}) end, "no submodule named '1.9'")
  T.errors(function() tricks.forward_to(D, 7, x) end, "layer 7 is not a child")
end)

T.test("feature matching", function()
  local fr = lg.tensor{{1, 2}, {3, 4}}
  local ff = lg.tensor{{0, 0}, {1, 1}}:requires_grad_()
  -- means (2, 3) and (0.5, 0.5): |.|^2 = 2.25 + 6.25
  local fm = tricks.feature_matching(fr, ff)
  T.near(fm:item(), 8.5, 1e-6)
  T.near(tricks.feature_matching(fr, ff, {reduction = "mean"}):item(), 4.25, 1e-6)
  fm:backward()
  -- d/dff = -2 (mean_r - mean_f) / N
  T.close(ff.grad, {{-1.5, -2.5}, {-1.5, -2.5}}, 1e-6)
  -- the real side is detached, and G gets a gradient through D's layer
  local D, G = small_D(), nn.Linear(2, 3)
  local x, z = lg.randn(8, 3), lg.randn(8, 2)
  local l = tricks.feature_matching(tricks.forward_to(D, 4, x), tricks.forward_to(D, 4, G(z)))
  l:backward()
  T.ok(G.weight.grad ~= nil, "G gets a gradient")
  T.errors(function() tricks.feature_matching(lg.ones(2, 3), lg.ones(2, 4)) end, "differ beyond the batch dim")
end)

T.test("historical averaging keeps the running mean of past parameters", function()
  local p = lg.tensor{1, 2}:requires_grad_()
  local ha = tricks.HistoricalAverage({p}, {lambda = 0.5})
  T.near(ha:penalty():item(), 0, 1e-7)
  lg.no_grad(function() p:copy_(lg.tensor{3, 4}) end)
  -- average of {1,2} so far: penalty 0.5 (4 + 4)
  T.near(ha:penalty():item(), 4, 1e-6)
  ha:update()                                -- average of {1,2},{3,4} = {2,3}
  T.close(ha.avg[1], {2, 3})
  lg.no_grad(function() p:copy_(lg.tensor{8, 0}) end)
  ha:update()                                -- {1,2},{3,4},{8,0} -> {4,2}
  T.close(ha.avg[1], {4, 2})
  local pen = ha:penalty()                   -- 0.5 ((8-4)^2 + (0-2)^2)
  T.near(pen:item(), 10, 1e-6)
  pen:backward()
  T.close(p.grad, {4, -2})                   -- lambda * 2 (p - avg)
  local ha2 = tricks.HistoricalAverage({p})
  ha2:load_state_dict(ha:state_dict())
  T.close(ha2.avg[1], {4, 2})
  T.eq(ha2.count, 3)
  -- a module works too
  local D = small_D()
  T.near(tricks.HistoricalAverage(D):penalty():item(), 0, 1e-7)
end)

T.test("instance noise anneals linearly to zero", function()
  local noise = tricks.InstanceNoise{std = 0.2, anneal_steps = 100}
  T.near(noise:sigma(0), 0.2, 1e-12)
  T.near(noise:sigma(25), 0.15, 1e-12)
  T.near(noise:sigma(100), 0, 1e-12)
  T.near(noise:sigma(1000), 0, 1e-12)
  local x = lg.zeros(20000, 2)
  T.near(noise:apply(x, 50):std():item(), 0.1, 0.03)
  T.ok(noise:apply(x, 100) == x, "no noise once annealed")
  -- gradients flow to x unchanged
  local xi = lg.ones(3, 2):requires_grad_()
  noise:apply(xi, 10):sum():backward()
  T.close(xi.grad, 1)
end)

T.test("schedules: k D steps per G step, the WGAN burst", function()
  local s = tricks.Schedule{d_steps = 3}
  local seq = {}
  for _ = 1, 12 do seq[#seq + 1] = s:next() end
  T.eq(table.concat(seq), "dddgdddgdddg")
  T.eq(s.g_iter, 3)
  local w = tricks.Schedule{d_steps = 5, burst = true}
  T.eq(w:d_steps(1), 100); T.eq(w:d_steps(25), 100); T.eq(w:d_steps(26), 5)
  T.eq(w:d_steps(500), 100); T.eq(w:d_steps(501), 5)
  local nd, ng = 0, 0
  local s2 = tricks.Schedule{d_steps = 2, g_steps = 2}
  for _ = 1, 4 do s2:round(function() nd = nd + 1 end, function() ng = ng + 1 end) end
  T.eq({nd, ng, s2.g_iter}, {8, 8, 4})
  local s3 = tricks.Schedule{d_steps = 3}
  s3:load_state_dict(s:state_dict())
  T.eq(s3:next(), "d")
  T.errors(function() tricks.Schedule{d_steps = 0} end, "d_steps must be an integer >= 1")
end)

T.test("TTUR and EMA helpers", function()
  local G, D = nn.Linear(2, 2), nn.Linear(2, 1)
  local og, od = tricks.ttur(G, D, {g_lr = 1e-4, d_lr = 4e-4})
  T.near(og.param_groups[1].lr, 1e-4, 1e-12)
  T.near(od.param_groups[1].lr, 4e-4, 1e-12)
  T.eq(og.param_groups[1].betas, {0, 0.9})
  T.ok(tricks.EMA == lg.optim.EMA)
  local ema = tricks.EMA(G, {decay = 0.5})
  local w0 = G.weight:detach():clone()
  lg.no_grad(function() G.weight:add_(1) end)
  ema:update()
  T.close(ema:module().weight, w0 + 0.5, 1e-6)
end)

---------------------------------------------------------------------------
-- the GAN layers of lg.nn compose with the losses and penalties

T.test("SpectralNorm, MinibatchDiscrimination, VirtualBatchNorm with the losses", function()
  lg.manual_seed(11)
  local D = nn.Sequential{
    nn.SpectralNorm(nn.Linear(2, 16)), nn.LeakyReLU(0.2),
    nn.VirtualBatchNorm(16),
    nn.MinibatchDiscrimination(16, 5, 3),
    nn.SpectralNorm(nn.Linear(21, 1)),
  }
  local G = nn.Sequential{nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)}
  local x_ref = lg.randn(32, 2)
  local x, z = lg.randn(32, 2), lg.randn(32, 4)
  local function Dx(t)
    nn.VirtualBatchNorm.reference(D, x_ref)
    return D(t)
  end
  for _, name in ipairs{"hinge", "nsgan", "lsgan", "wgan", "ragan"} do
    local loss = L.make(name)
    D:zero_grad(); G:zero_grad()
    local fake = G(z)
    local ld = loss.d(Dx(x), Dx(fake:detach()))
    ld:backward()
    for pname, p in D:named_parameters() do
      T.ok(p.grad ~= nil, name .. ": D." .. pname .. " gets a gradient")
      T.ok(p.grad:abs():max():item() < math.huge, name .. ": finite gradient")
    end
    T.ok(G[1].weight.grad == nil, name .. ": the fakes were detached")
    local lgen = loss.g(Dx(fake), Dx(x))
    lgen:backward()
    T.ok(G[1].weight.grad ~= nil, name .. ": G gets a gradient")
  end
  -- feature matching on the minibatch-discrimination features, by name
  local _, feats = tricks.features(D, x, {"4"})
  T.shape(feats["4"], {32, 21})
  -- a zero-centred penalty through spectral norm and VBN
  local r1 = lg.penalties.r1(Dx, x, {gamma = 1})
  r1:backward()
  T.ok(r1:item() > 0 and D[1].weight_orig.grad ~= nil, "R1 reaches the spectrally normalised weight")
end)
