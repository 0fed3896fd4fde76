-- test_recipe_kit.lua: lg.recipe_kit, the pieces the bundled recipes share
-- (scripts/luagan/recipe_kit.lua), on tiny nets: the order of gan_step's
-- hooks, n_d, penalties reaching D's gradients, the standard step equal to
-- the hand-written one, eval mode restored, options checked.
local T = ...
local lg = require "luagan"
local nn, kit, nets = lg.nn, lg.recipe_kit, lg.nets

local NZ, DIM, B = 3, 4, 8

-- A G/D state on random data (no files): G: z (B,3) -> (B,4), D: (B,4) -> (B,1).
local function tiny_state(seed, o)
  lg.manual_seed(seed or 1)
  local opt = {batch = B, nz = NZ, lr = 1e-2, beta1 = 0.5, beta2 = 0.999, seed = 1}
  local G = nn.Sequential{nn.Linear(NZ, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, DIM)}
  local D = nn.Sequential{nn.Linear(DIM, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1)}
  local so = {opt = opt, G = G, D = D, data = lg.randn(32, DIM), loss = lg.losses.nsgan()}
  for k, v in pairs(o or {}) do so[k] = v end
  return kit.gan_state(so)
end

local function params_equal(a, b)
  local pa, pb = a:parameters(), b:parameters()
  if #pa ~= #pb then return false end
  for i = 1, #pa do
    if (pa[i] - pb[i]):abs():max():item() ~= 0 then return false end
  end
  return true
end

T.test("gan_state: the state of a G/D recipe", function()
  local s = tiny_state()
  for _, k in ipairs{"opt", "G", "D", "optG", "optD", "data", "loss", "fixed_z"} do
    T.ok(s[k] ~= nil, "state has " .. k)
  end
  T.shape(s.fixed_z, {64, NZ})
  T.eq(s.optD.param_groups[1].lr, 1e-2)
  local s2 = tiny_state(1, {lr_d = 5e-3, fixed_z = 10})
  T.eq(s2.optD.param_groups[1].lr, 5e-3)
  T.eq(s2.optG.param_groups[1].lr, 1e-2)
  T.shape(s2.fixed_z, {10, NZ})
  T.eq(tiny_state(1, {fixed_z = false}).fixed_z, nil)
  T.errors(function() tiny_state(1, {optim = "sgd"}) end, "optim must be")
  T.errors(function() tiny_state(1, {fixed = 3}) end, "unknown option 'fixed'")
end)

T.test("gan_step: the hooks run in order, n_d D updates then G", function()
  local s = tiny_state()
  local trace = {}
  local function rec(name, f)
    return function(c, ...)
      trace[#trace + 1] = name .. (c.k and name ~= "g_loss" and name ~= "after_g" and name ~= "metrics"
                                   and c.k or "")
      if f then return f(c, ...) end
    end
  end
  local out = kit.gan_step(s, {
    n_d = 2,
    real = rec("real", function() return s.data:next() end),
    noise = rec("noise", function(c) return lg.randn(c.B, NZ) end),
    generate = rec("generate", function(c, z) return s.G(z) end),
    d_loss = rec("d_loss", kit.d_loss),
    after_d = rec("after_d"),
    g_loss = rec("g_loss", kit.g_loss),
    after_g = rec("after_g"),
    metrics = rec("metrics", function(c, o) o.extra = 7 end),
  }, 5)
  T.eq(trace, {"real1", "noise1", "generate1", "d_loss1", "after_d1",
               "real2", "noise2", "generate2", "d_loss2", "after_d2",
               "g_loss", "after_g", "metrics"})
  T.ok(lg.is_tensor(out.loss_d) and lg.is_tensor(out.loss_g))
  T.eq(out.extra, 7)
  -- fresh: the G update draws its own noise and batch
  trace = {}
  kit.gan_step(s, {fresh = true, noise = rec("noise", function(c) return lg.randn(c.B, NZ) end),
                   generate = rec("generate", function(c, z) return s.G(z) end)})
  T.eq(trace, {"noise1", "generate1", "noise1", "generate1"})
end)

T.test("gan_step: n_d as a function of the context, checked", function()
  local s = tiny_state()
  local seen = 0
  kit.gan_step(s, {n_d = function(c) T.ok(c.s == s) return 3 end, after_d = function() seen = seen + 1 end})
  T.eq(seen, 3)
  T.errors(function() kit.gan_step(s, {n_d = 0}) end, "n_d must be an integer >= 1")
  T.errors(function() kit.gan_step(s, {n_dd = 2}) end, "unknown option 'n_dd'")
end)

T.test("gan_step: the standard step is the hand-written D-then-G step, bit for bit", function()
  local a, b = tiny_state(3), tiny_state(3)
  lg.manual_seed(11)
  for i = 1, 3 do kit.gan_step(a, {}, i) end
  lg.manual_seed(11)
  for _ = 1, 3 do
    local x = b.data:next()
    local fake = b.G(lg.randn(B, NZ))
    local ld = b.loss.d(b.D(x), b.D(fake:detach()))
    b.optD:zero_grad(); ld:backward(); b.optD:step()
    local lgen = b.loss.g(b.D(fake))
    b.optG:zero_grad(); lgen:backward(); b.optG:step()
  end
  T.ok(params_equal(a.G, b.G), "G's parameters equal")
  T.ok(params_equal(a.D, b.D), "D's parameters equal")
end)

-- D's gradients as the D update leaves them, through an optimiser stub.
local function d_grads_of_step(s, hooks)
  local got
  s.optD = {zero_grad = function() s.D:zero_grad() end,
            step = function() got = {} for i, p in ipairs(s.D:parameters()) do got[i] = p.grad:clone() end end}
  kit.gan_step(s, hooks)
  return got
end

T.test("gan_step: a penalty (gradient penalty, R1) reaches D's gradients", function()
  local x, fake = lg.randn(B, DIM), lg.randn(B, DIM)
  local function fixed(c) c.fake = fake; c.fake_d = fake end
  for _, kind in ipairs{"gp", "r1"} do
    local s = tiny_state(2)
    lg.manual_seed(5)
    local got = d_grads_of_step(s, {real = function() return x end, fakes = fixed,
      g_loss = function() return s.G(lg.randn(B, NZ)):sum() end,
      d_loss = function(c)
        if kind == "gp" then return kit.d_loss(c), c:gradient_penalty(10) end
        local pen = c:r1(1.0)
        c.fake_out = s.D(c.fake_d)
        return s.loss.d(c.real_out, c.fake_out), pen
      end})
    -- the same sum by hand
    lg.manual_seed(5)
    local ps = s.D:parameters()
    local ld = s.loss.d(s.D(x), s.D(fake))
    local pen = kind == "gp" and lg.penalties.gradient_penalty(s.D, x, fake, {lambda = 10})
                or lg.penalties.r1(s.D, x, {gamma = 1.0})
    local want = lg.grad(ld + pen, ps)
    local plain = lg.grad(s.loss.d(s.D(x), s.D(fake)), ps)
    for i = 1, #ps do T.close(got[i], want[i], 1e-5) end
    local differs = false
    for i = 1, #ps do
      if (got[i] - plain[i]):abs():max():item() > 1e-6 then differs = true end
    end
    T.ok(differs, kind .. ": the penalty changed D's gradients")
  end
end)

T.test("d_means: through a sigmoid, or raw", function()
  local c = {real_out = lg.tensor{{0}, {0}}, fake_out = lg.tensor{{2}, {4}}}
  local out = {}
  kit.d_means(c, out)
  T.near(out.d_real:item(), 0.5)
  kit.d_means_raw(c, out)
  T.near(out.d_fake:item(), 3)
end)

T.test("in_eval: eval mode inside, the mode restored, also on error", function()
  local G = nn.Sequential{nn.Linear(2, 2), nn.BatchNorm1d(2)}
  G:train()
  T.eq(kit.in_eval(G, function(a) T.eq(G.training, false) return a + 1 end, 1), 2)
  T.eq(G.training, true)
  local msg = T.errors(function() kit.in_eval(G, function() error("boom", 0) end) end, "boom")
  T.ok(msg)
  T.eq(G.training, true)
  G:eval()
  kit.in_eval({G}, function() end)
  T.eq(G.training, false, "a net in eval mode stays there")
end)

T.test("save_grid: G in eval mode for the grid, train mode after, even on error", function()
  local s = tiny_state()
  s.G = nn.Sequential{nn.Linear(NZ, 784), nn.Tanh()}
  local dir = os.tmpname()
  os.remove(dir)
  lg.mkdir_p(dir)
  local path = dir .. "/grid.png"
  local x = kit.save_grid(s, path, {n = 6}, {generate = function(st, z)
    T.eq(st.G.training, false)
    return st.G(z):view(-1, 1, 28, 28)
  end})
  T.shape(x, {6, 1, 28, 28})
  T.ok(io.open(path, "rb"), "the grid was written")
  T.eq(s.G.training, true)
  T.errors(function() kit.sampler{generate = function() error("no sample", 0) end}(s, path, {}) end, "no sample")
  T.eq(s.G.training, true)
  T.errors(function() kit.sampler{nrows = 3} end, "unknown option 'nrows'")
  os.remove(path)
  os.remove(dir)
end)

T.test("in_chunks, map, generated: every chunk, every result", function()
  local calls = {}
  local a, b = kit.in_chunks(7, function(i, m)
    calls[#calls + 1] = {i, m}
    return lg.full({m, 1}, i), lg.full({m}, m)
  end, 3)
  T.eq(calls, {{1, 3}, {4, 3}, {7, 1}})
  T.close(a, lg.tensor{{1}, {1}, {1}, {4}, {4}, {4}, {7}})
  T.close(b, lg.tensor{3, 3, 3, 3, 3, 3, 1})
  local net = nn.Sequential{nn.Linear(2, 3), nn.BatchNorm1d(3)}
  net:train()
  local x = lg.randn(5, 2)
  local y = kit.map(net, x, {size = 2})
  T.shape(y, {5, 3})
  T.eq(net.training, true)
  T.close(y, lg.no_grad(function() net:eval() local r = net(x) net:train() return r end))
  local g = kit.generated(net, 5, function(i, m) T.eq(net.training, false) return net(x:narrow(1, i, m)) end)
  T.close(g, y)
  T.errors(function() kit.map(net, x, {chunk = 2}) end, "unknown option 'chunk'")
end)

T.test("write_eval: JSON written whole", function()
  local dir = os.tmpname()
  os.remove(dir)
  lg.mkdir_p(dir)
  kit.write_eval(dir, {recipe = "x", acc = 0.5})
  local f = assert(io.open(dir .. "/eval.json"))
  local text = f:read("a")
  f:close()
  T.eq(lg.io.json_decode(text), {recipe = "x", acc = 0.5})
  kit.write_eval(dir, {n = 1}, nil, "other.json")
  T.ok(io.open(dir .. "/other.json"))
  os.remove(dir .. "/eval.json"); os.remove(dir .. "/other.json"); os.remove(dir)
end)

T.test("options: a group stands for its entries in place", function()
  local r = require("luagan.recipe"){name = "kit_t", about = "t",
                                     options = {{"steps", 10, "steps"}, kit.BATCH, kit.BETAS, kit.LIMIT},
                                     setup = function() return {} end, step = function() end}
  local names = {}
  for _, o in ipairs(r:option_list()) do if o.recipe then names[#names + 1] = o.name end end
  T.eq(names, {"steps", "batch", "beta1", "beta2", "limit"})
  local opt = r:parse{"--beta2", "0.9"}
  T.eq(opt.beta2, 0.9)
  T.eq(opt.batch, 64)
  T.eq(opt.steps, 10)
  T.eq(kit.BETAS[2][2], 0.999, "the group is not changed")
  T.errors(function()
    require("luagan.recipe"){name = "kit_t", about = "t", options = {kit.BETAS, {{"beta1", 0.9, "again"}}},
                             setup = function() return {} end, step = function() end}
  end, "declared twice")
end)

T.test("nets: dcgan_G / dcgan_D widths, *_layers and the trunk without head", function()
  local G = nets.dcgan_G{nz = 5, ch = 4, hidden = 0}
  T.shape(G(lg.randn(2, 5)), {2, 1, 28, 28})
  local L = nets.dcgan_G_layers{nz = 5, ch = 4, hidden = 16, head = false}
  T.shape(nn.Sequential(L)(lg.randn(2, 5)), {2, 4, 14, 14})
  local D = nets.dcgan_D{ch = 4, hidden = 0}
  T.shape(D(lg.randn(2, 1, 28, 28)), {2, 1})
  local trunk = nets.seq(nets.dcgan_D_layers{ch = 4, hidden = 16, out = 0})
  T.shape(trunk(lg.randn(2, 1, 28, 28)), {2, 16})
  T.shape(nets.seq(nets.dcgan_D_layers{ch = 4, hidden = 0, out = 0})(lg.randn(2, 1, 28, 28)), {2, 8 * 49})
  T.errors(function() nets.dcgan_D{out = 0} end, "out must be >= 1")
  T.errors(function() nets.dcgan_G{hidden = -1} end, "hidden must be an integer >= 0")
  T.errors(function() nets.dcgan_G{head = false} end, "unknown option 'head'")
  -- the reference widths are still the defaults
  T.eq(#nets.dcgan_D{}:parameters(), #nets.dcgan_D{ch = 64, hidden = 1024}:parameters())
end)

T.test("recon_probe and recon_sampler: options checked", function()
  T.errors(function() kit.recon_probe({}, "/tmp", {name = "x"}) end, "unknown option 'name'")
  T.errors(function() kit.recon_sampler{prior = 1} end, "unknown option 'prior'")
end)
