-- test_penalties.lua: lg.penalties against PyTorch fixtures and closed forms.
--
-- tests/golden/penalty_fixtures.lua is written by
-- tests/golden/gen_penalty_fixtures.py (Debian's python3-torch); this test
-- needs no PyTorch. Each case: a small critic (MLP with LeakyReLU, a smooth
-- MLP with tanh/softplus, a conv critic on 6x6 images), float32 inputs and the
-- random numbers the penalty would draw (eps, alpha, noise); float64
-- references for the penalty value, the mean input-gradient norm and the
-- gradient of the penalty w.r.t. every critic weight (a second-order path).
-- Tolerance per element (b the reference, scale the largest |b| of that
-- tensor): |a - b| <= RTOL (|b| + 0.1 scale) + 1e-6, as in test_golden.lua.
local T = ...
local lg = require "luagan"
local nn = lg.nn
local P = lg.penalties

local RTOL = 2e-4

local here = debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$") or "."
local cases = dofile(here .. "/../golden/penalty_fixtures.lua")

local function tensor_of(spec)
  return lg.tensor(spec.data):reshape(spec.shape)
end

local function flat(t)
  local v = t:totable()
  if type(v) == "number" then return {v} end
  local out = {}
  local function walk(x)
    if type(x) == "number" then out[#out + 1] = x return end
    for i = 1, #x do walk(x[i]) end
  end
  walk(v)
  return out
end

local function check(what, a, ref)
  local av = a and flat(a) or nil
  local scale = 0
  for _, b in ipairs(ref.data) do scale = math.max(scale, math.abs(b)) end
  if av and #av ~= #ref.data then
    error(string.format("%s: %d elements, expected %d", what, #av, #ref.data), 2)
  end
  for j, b in ipairs(ref.data) do
    local x = av and av[j] or 0
    local tol = RTOL * (math.abs(b) + 0.1 * scale) + 1e-6
    if not (math.abs(x - b) <= tol) then
      error(string.format("%s: element %d is %.9g, expected %.9g (tol %.3g)", what, j, x, b, tol), 2)
    end
  end
end

local function build(layers)
  local mods = {}
  for i, l in ipairs(layers) do
    local kind = l[1]
    if kind == "linear" then mods[i] = nn.Linear(l[2], l[3])
    elseif kind == "conv" then mods[i] = nn.Conv2d(l[2], l[3], l[4], {stride = l[5], padding = l[6]})
    elseif kind == "lrelu" then mods[i] = nn.LeakyReLU(l[2])
    elseif kind == "tanh" then mods[i] = nn.Tanh()
    elseif kind == "softplus" then mods[i] = nn.Softplus()
    elseif kind == "flatten" then mods[i] = nn.Flatten()
    else error("unknown layer " .. kind) end
  end
  return nn.Sequential(mods)
end

for _, c in ipairs(cases) do
  T.test("fixture " .. c.name, function()
    local D = build(c.layers)
    local sd = {}
    for _, p in ipairs(c.params) do sd[p.name] = tensor_of(p.value) end
    D:load_state_dict(sd)
    local real, fake = tensor_of(c.real), tensor_of(c.fake)
    local o = {}
    for k, v in pairs(c.opts) do o[k] = v end
    if c.eps then o.eps = tensor_of(c.eps) end
    if c.alpha then o.alpha = tensor_of(c.alpha) end
    if c.noise then o.noise = tensor_of(c.noise) end
    local pen, stats
    if c.penalty == "gradient_penalty" then pen, stats = P.gradient_penalty(D, real, fake, o)
    elseif c.penalty == "dragan" then pen, stats = P.dragan(D, real, o)
    elseif c.penalty == "r1" then pen, stats = P.r1(D, real, o)
    elseif c.penalty == "r2" then pen, stats = P.r2(D, fake, o)
    else error("unknown penalty " .. c.penalty) end
    T.shape(pen, {})
    check("value", pen, {data = {c.value}})
    check("grad_norm", lg.tensor{stats.grad_norm}, {data = {c.grad_norm}})
    D:zero_grad()
    pen:backward()
    local named = {}
    for name, p in D:named_parameters() do named[name] = p end
    for _, g in ipairs(c.grads) do
      local p = named[g.name]
      T.ok(p, "no parameter " .. g.name)
      check("d penalty / d " .. g.name, p.grad, g.value)
    end
  end)
end

T.test("the fixtures cover every penalty on every critic", function()
  local seen = {}
  for _, c in ipairs(cases) do seen[c.penalty .. "/" .. c.critic] = true end
  for _, pen in ipairs{"gradient_penalty", "dragan", "r1", "r2"} do
    for _, critic in ipairs{"mlp_lrelu", "mlp_smooth", "conv"} do
      T.ok(seen[pen .. "/" .. critic], "missing fixture " .. pen .. "/" .. critic)
    end
  end
end)

-- A linear critic D(x) = x w + b has input gradient w everywhere, so
-- GP = lambda (|w| - t)^2, DRAGAN = lambda (|w| - k)^2, R1 = R2 = gamma/2 |w|^2,
-- whatever the interpolation; the gradient of GP w.r.t. w is
-- 2 lambda (|w| - t) w / |w|.
T.test("closed forms on a linear critic", function()
  local w = lg.tensor{{0.6}, {-1.2}, {0.4}}:requires_grad_()
  local b = lg.tensor{0.3}:requires_grad_()
  local function D(x) return lg.matmul(x, w) + b end
  local nw = math.sqrt(0.36 + 1.44 + 0.16)
  local real, fake = lg.randn(7, 3), lg.randn(7, 3)
  local gp, st = P.gradient_penalty(D, real, fake, {lambda = 10})
  T.near(gp:item(), 10 * (nw - 1) ^ 2, 1e-5)
  T.near(st.grad_norm, nw, 1e-5)
  gp:backward()
  T.close(w.grad, {{20 * (nw - 1) * 0.6 / nw}, {20 * (nw - 1) * -1.2 / nw}, {20 * (nw - 1) * 0.4 / nw}}, 1e-4)
  T.ok(b.grad == nil or math.abs(b.grad:item()) < 1e-7, "the bias does not move the penalty")
  T.near(P.gradient_penalty(D, real, fake, {lambda = 3, target = 2}):item(), 3 * (nw - 2) ^ 2, 1e-5)
  T.near(P.dragan(D, real, {lambda = 5, k = 0.5}):item(), 5 * (nw - 0.5) ^ 2, 1e-5)
  local r1, s1 = P.r1(D, real, {gamma = 4})
  T.near(r1:item(), 2 * nw * nw, 1e-5)
  T.shape(s1.logits, {7, 1})
  T.close(s1.logits, D(real), 1e-6)
  T.near(P.r2(D, fake):item(), 5 * nw * nw, 1e-5)
end)

T.test("gradient_penalty draws one eps per sample on the segment real-fake", function()
  lg.manual_seed(7)
  local seen
  local function D(x) seen = x; return (x * x):sum(2) * 0.5 end   -- grad = x
  local real, fake = lg.zeros(64, 5), lg.ones(64, 5)
  local gp = P.gradient_penalty(D, real, fake, {lambda = 1})
  -- xhat_i = (1 - eps_i) * ones: every row is constant, rows differ
  local rows = seen:detach()
  local spread = (rows - rows:mean(2, {keepdim = true})):abs():max():item()
  T.ok(spread < 1e-6, "xhat is eps real + (1 - eps) fake with one eps per row")
  local c = rows:select(2, 1)
  T.ok(c:min():item() >= 0 and c:max():item() <= 1, "eps in [0, 1]")
  T.ok(c:std():item() > 0.15, "eps varies across samples (std " .. c:std():item() .. ")")
  -- the penalty is lambda mean((|xhat_i| - 1)^2) with |xhat_i| = c_i sqrt(5)
  local expect = ((c * math.sqrt(5) - 1) ^ 2):mean():item()
  T.near(gp:item(), expect, 1e-4)
end)

T.test("gradient_penalty on images broadcasts eps over C, H, W", function()
  local seen
  local function D(x) seen = x; return x:sum({2, 3, 4}) end
  local real, fake = lg.zeros(3, 2, 4, 4), lg.ones(3, 2, 4, 4)
  local eps = lg.tensor{0.25, 0.5, 1}
  local gp = P.gradient_penalty(D, real, fake, {eps = eps, lambda = 1})
  T.close(seen:detach():mean({2, 3, 4}), {0.75, 0.5, 0})
  -- D is linear with gradient all ones: norm sqrt(32) for every sample
  T.near(gp:item(), (math.sqrt(32) - 1) ^ 2, 1e-5)
end)

T.test("dragan perturbs the reals by c std(x) U[0,1)", function()
  local seen
  local function D(x) seen = x; return x:sum(2) end
  local real = lg.tensor{{0, 0}, {2, 2}}                  -- std of all 4 = sqrt(4/3)
  local noise = lg.tensor{{1, 0.5}, {0, 1}}
  P.dragan(D, real, {alpha = lg.tensor{0, 0.5}, noise = noise, c = 0.5})
  local s = 0.5 * math.sqrt(4 / 3)
  T.close(seen:detach(), {{s * 1, s * 0.5}, {2, 2 + 0.5 * s}}, 1e-5)
end)

T.test("penalties train D: gradient of GP through nn.SpectralNorm", function()
  lg.manual_seed(3)
  local D = nn.Sequential{nn.SpectralNorm(nn.Linear(3, 8)), nn.Tanh(), nn.Linear(8, 1)}
  local real, fake = lg.randn(5, 3), lg.randn(5, 3)
  local eps = lg.rand(5)
  local gp = P.gradient_penalty(D, real, fake, {eps = eps})
  gp:backward()
  local w = D[1].weight_orig
  T.ok(w.grad ~= nil, "weight_orig gets a gradient")
  -- check one element by central differences (u is held fixed in eval mode)
  D:eval()
  local function value() return P.gradient_penalty(D, real, fake, {eps = eps}):item() end
  D:zero_grad()
  local g = lg.grad(P.gradient_penalty(D, real, fake, {eps = eps}), {w})[1]
  local h = 1e-2
  local function bump(dv)
    lg.no_grad(function()
      local row = w:select(1, 2)
      local e = row:narrow(1, 3, 1)
      e:add_(dv)
    end)
  end
  bump(h); local fp = value(); bump(-2 * h); local fm = value(); bump(h)
  local num = (fp - fm) / (2 * h)
  local ana = g:select(1, 2):select(1, 3):item()
  T.near(ana, num, 2e-2)
end)

T.test("clip_weights clamps every parameter", function()
  local D = nn.Sequential{nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1)}
  lg.no_grad(function() for _, p in ipairs(D:parameters()) do p:mul_(100) end end)
  P.clip_weights(D, 0.01)
  for name, p in D:named_parameters() do
    T.ok(p:abs():max():item() <= 0.01 + 1e-9, name .. " clipped")
  end
  T.errors(function() P.clip_weights(D, -1) end, "c must be a positive number")
end)

T.test("clear errors", function()
  local D = function(x) return x:sum(2) end
  T.errors(function() P.gradient_penalty(D, lg.zeros(4, 2), lg.zeros(3, 2)) end,
           "real 4x2 and fake 3x2 must have the same shape")
  T.errors(function() P.gradient_penalty(42, lg.zeros(4, 2), lg.zeros(4, 2)) end,
           "D must be a module or a function")
  T.errors(function() P.gradient_penalty(D, lg.zeros(4, 2), lg.zeros(4, 2), {eps = lg.zeros(3)}) end,
           "eps must be a tensor of 4 elements")
  T.errors(function() P.r1(D, lg.zeros(4, 2), {lamda = 1}) end, "unknown option 'lamda'")
  T.errors(function() P.dragan(D, "x") end, "real must be a tensor")
  T.errors(function() P.dragan(D, lg.zeros(4, 2), {noise = lg.zeros(4, 3)}) end,
           "noise must have real's shape 4x2")
end)
