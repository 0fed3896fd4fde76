-- tests/lua/test_examples.lua: the three custom-layer examples of
-- docs/extending.md, each against values computed here by loops or written
-- out as formulas, plus gradcheck and gradgradcheck:
--   examples/lua_module/   ResBlock, MinibatchStdDev (nn.Module subclasses)
--   examples/lua_function/ Mish (lg.Function with its own backward)
--   examples/c_op/         pixel_norm (a C op in its own module, pixelnorm.so)
-- pixelnorm.so is found on package.cpath (CTest sets LUA_CPATH; the rock test
-- builds it against the installed package) or next to the running luagan
-- executable, in <build>/examples/c_op/.
local T = ...
local lg = require "luagan"
local nn = require "luagan.nn"
local gc = require "luagan.gradcheck"

-- The examples: $LUAGAN_EXAMPLES (the rock test points it at the installed
-- copy), else <root>/examples, this file being <root>/tests/lua/test_examples.lua.
local src = debug.getinfo(1, "S").source:gsub("^@", "")
local root = src:match("^(.*)/tests/lua/[^/]+$") or "."
local examples = os.getenv("LUAGAN_EXAMPLES") or (root .. "/examples")
package.path = table.concat({examples .. "/lua_module/?.lua",
                             examples .. "/lua_function/?.lua", package.path}, ";")

local ResBlock = require "resblock"
local MinibatchStdDev = require "minibatch_stddev"
local mish = require "mish"

local function load_pixelnorm()
  if package.searchpath("pixelnorm", package.cpath) then return require "pixelnorm" end
  local exe = arg and arg[-1]
  local dir = exe and exe:match("^(.*)/[^/]+$")
  local path = dir and package.searchpath("pixelnorm", dir .. "/examples/c_op/?.so")
  if path then return package.loadlib(path, "luaopen_pixelnorm")() end
  error("pixelnorm.so not found on package.cpath nor in <build>/examples/c_op: build the "
        .. "tree (it builds examples/c_op) and set LUA_CPATH='<build>/examples/c_op/?.so;;'", 0)
end
local pn_ok, pn = pcall(load_pixelnorm)

local function R(...) return lg.randn(...):requires_grad_() end

-- Set a module's parameters (in named_parameters order) to the given tensors,
-- so gradcheck can vary them: it calls fn with fresh tensors every time.
local function with_params(module, ps)
  local i = 0
  for name in module:named_parameters() do
    i = i + 1
    local owner, key = module, name
    for part in name:gmatch("([^.]+)%.") do owner = owner[part] end
    key = name:match("([^.]+)$")
    rawset(owner, key, ps[i])
  end
  assert(i == #ps, "with_params: parameter count")
end

local function params_list(module)
  local ps = {}
  for _, p in module:named_parameters() do ps[#ps + 1] = p:detach():clone():requires_grad_() end
  return ps
end

-- ---- path 1: nn.Module subclasses ---------------------------------------------------
T.test("ResBlock: shapes, registered children, parameter count, printing", function()
  lg.manual_seed(1)
  local up = ResBlock(4, 3, {up = true})
  T.shape(up(lg.randn(2, 4, 5, 5)), {2, 3, 10, 10})
  local down = ResBlock(3, 6, {down = true, hidden = 5})
  T.shape(down(lg.randn(2, 3, 8, 8)), {2, 6, 4, 4})
  local same = ResBlock(3, 3)
  T.eq(same.shortcut, nil)
  T.shape(same(lg.randn(1, 3, 4, 4)), {1, 3, 4, 4})
  local names = {}
  for name in down:named_parameters() do names[#names + 1] = name end
  T.eq(names, {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
               "shortcut.weight", "shortcut.bias"})
  T.eq(down:num_parameters(), (3 * 5 * 9 + 5) + (5 * 6 * 9 + 6) + (3 * 6 + 6))
  T.eq(same:num_parameters(), 2 * (3 * 3 * 9 + 3))
  local s = tostring(up)
  T.ok(s:find("ResBlock", 1, true) and s:find("4 -> 3, up", 1, true), s)
end)

T.test("ResBlock: forward is the documented formula", function()
  lg.manual_seed(2)
  local b = ResBlock(2, 3, {down = true})
  local x = lg.randn(2, 2, 6, 6)
  local function conv(m, t, pad) return lg.conv2d(t, m.weight, m.bias, {padding = pad}) end
  local h = conv(b.conv2, conv(b.conv1, x:leaky_relu(0.2), 1):leaky_relu(0.2), 1)
  local want = lg.avg_pool2d(h, 2) + lg.avg_pool2d(conv(b.shortcut, x, 0), 2)
  T.close(b(x), want, 1e-5)
  local u = ResBlock(2, 2, {up = true, act = lg.tanh})
  local xu = lg.upsample(x, 2)
  local hu = conv(u.conv2, conv(u.conv1, xu:tanh(), 1):tanh(), 1)
  T.close(u(x), hu + conv(u.shortcut, xu, 0), 1e-5)
end)

T.test("ResBlock: gradcheck and gradgradcheck in the input and every weight", function()
  lg.manual_seed(3)
  for _, o in ipairs{{down = true, act = lg.tanh, hidden = 2}, {up = true, act = lg.tanh}} do
    local b = ResBlock(2, 3, o)
    local fn = function(x, ...)
      with_params(b, {...})
      return b(x)
    end
    local inputs = {R(2, 2, 4, 4), table.unpack(params_list(b))}
    T.ok(gc.gradcheck(fn, inputs, {name = "ResBlock"}))
    T.ok(gc.gradgradcheck(fn, inputs, {name = "ResBlock"}))
  end
end)

T.test("ResBlock: argument errors name the module and the input", function()
  local b = ResBlock(4, 4)
  local err = T.errors(function() b(lg.randn(1, 3, 4, 4)) end, "expected (N,4,H,W) input")
  T.ok(err:find("ResBlock", 1, true) and err:find("1x3x4x4", 1, true), err)
  T.errors(function() ResBlock(4, 4, {upsample = true}) end, "unknown option 'upsample'")
  T.errors(function() ResBlock(4, 0) end, "ResBlock: cout must be an integer >= 1, got 0")
end)

-- sd over each group of every feature, averaged, by loops in doubles
local function mbstd_ref(x, G, eps)
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local M = N // G
  local s = {}
  for m = 1, M do
    local acc = 0
    for c = 1, C do for h = 1, H do for w = 1, W do
      local mean = 0
      for g = 0, G - 1 do mean = mean + x[g * M + m][c][h][w] end
      mean = mean / G
      local var = 0
      for g = 0, G - 1 do var = var + (x[g * M + m][c][h][w] - mean) ^ 2 end
      acc = acc + math.sqrt(var / G + eps)
    end end end
    s[m] = acc / (C * H * W)
  end
  local y = {}
  for n = 1, N do
    y[n] = {}
    for c = 1, C do y[n][c] = x[n][c] end
    y[n][C + 1] = {}
    for h = 1, H do
      y[n][C + 1][h] = {}
      for w = 1, W do y[n][C + 1][h][w] = s[(n - 1) % M + 1] end
    end
  end
  return y
end

T.test("MinibatchStdDev: values against loops, group sizes, errors", function()
  lg.manual_seed(4)
  local x = lg.randn(6, 2, 2, 3)
  for _, G in ipairs{1, 2, 3, 6} do
    local y = MinibatchStdDev{group_size = G}(x)
    T.shape(y, {6, 3, 2, 3})
    T.close(y, mbstd_ref(x:totable(), G, 1e-8), 1e-5)
  end
  -- a group larger than the batch is the whole batch
  T.close(MinibatchStdDev{group_size = 8}(x), mbstd_ref(x:totable(), 6, 1e-8), 1e-5)
  T.errors(function() MinibatchStdDev{group_size = 4}(x) end, "not a multiple of the group size 4")
  T.errors(function() MinibatchStdDev{groups = 4} end, "unknown option 'groups'")
  T.errors(function() MinibatchStdDev()(lg.randn(4, 4)) end, "expected (N,C,H,W) input")
end)

T.test("MinibatchStdDev: gradcheck and gradgradcheck", function()
  lg.manual_seed(5)
  local layer = MinibatchStdDev{group_size = 2}
  local fn = function(x) return layer(x) end
  T.ok(gc.gradcheck(fn, {R(4, 2, 2, 2)}, {name = "MinibatchStdDev"}))
  T.ok(gc.gradgradcheck(fn, {R(4, 2, 2, 2)}, {name = "MinibatchStdDev"}))
end)

-- ---- path 2: lg.Function ------------------------------------------------------------
T.test("Mish: values against the formula, one graph node, module form", function()
  local vals = {-6, -2.5, -1, -0.3, 0, 0.4, 1, 2, 7}
  local x = lg.tensor(vals, {requires_grad = true})
  local y = mish.mish(x)
  local want = {}
  for i, v in ipairs(vals) do
    local sp = math.log(1 + math.exp(v))
    want[i] = v * (math.exp(2 * sp) - 1) / (math.exp(2 * sp) + 1)
  end
  T.close(y, want, 1e-5)
  T.eq(y.grad_fn, "Mish")
  T.eq(lg.no_grad(function() return mish.mish(x) end).grad_fn, nil)
  -- first derivative against the closed form
  y:sum():backward()
  local dwant = {}
  for i, v in ipairs(vals) do
    local sp = math.log(1 + math.exp(v))
    local t = (math.exp(2 * sp) - 1) / (math.exp(2 * sp) + 1)
    dwant[i] = t + v * (1 - t * t) / (1 + math.exp(-v))
  end
  T.close(x.grad, dwant, 1e-5)
  local net = nn.Sequential{nn.Linear(2, 4), mish.Layer(), nn.Linear(4, 1)}
  T.shape(net(lg.randn(3, 2)), {3, 1})
  T.ok(tostring(net):find("Mish", 1, true))
end)

T.test("Mish: gradcheck and gradgradcheck (the backward is made of ops)", function()
  lg.manual_seed(6)
  T.ok(gc.gradcheck(mish.mish, {R(3, 4)}, {name = "Mish"}))
  T.ok(gc.gradgradcheck(mish.mish, {R(3, 4)}, {name = "Mish"}))
end)

T.test("Mish: first and second derivatives equal the composed ops' autograd", function()
  lg.manual_seed(7)
  local x = lg.randn(5, 3, {requires_grad = true})
  local v = lg.randn(5, 3)
  local function grads(f)
    local g = lg.grad(f(x), x, {grad_outputs = v, create_graph = true})[1]
    local gg = lg.grad((g * g):sum(), x)[1]
    return g, gg
  end
  local g1, gg1 = grads(mish.mish)
  local g2, gg2 = grads(function(t) return t * t:softplus():tanh() end)
  T.close(g1, g2, 1e-5)
  T.close(gg1, gg2, 1e-4)
end)

-- ---- an op composed once in Lua: its gradient comes for free ----------------------
-- docs/extending.md "Adding an op": swish written with two existing ops has no
-- backward of its own, yet gradcheck and gradgradcheck pass: autograd records
-- the mul and the sigmoid, whose formulas are themselves made of ops.
T.test("swish = x * sigmoid(x) in Lua: gradcheck and gradgradcheck without a formula", function()
  local function swish(x) return x * x:sigmoid() end
  lg.manual_seed(11)
  T.ok(gc.gradcheck(swish, {R(3, 4)}, {name = "swish"}))
  T.ok(gc.gradgradcheck(swish, {R(3, 4)}, {name = "swish"}))
  -- against the hand-derived derivative sigma(x) (1 + x (1 - sigma(x)))
  local v = {-2, 0, 1.5}
  local want, dwant = {}, {}
  for i, t in ipairs(v) do
    local sg = 1 / (1 + math.exp(-t))
    want[i], dwant[i] = t * sg, sg * (1 + t * (1 - sg))
  end
  local x = lg.tensor(v):requires_grad_()
  local y = swish(x)
  T.close(y, want, 1e-6)
  y:sum():backward()
  T.close(x.grad, dwant, 1e-6)
end)

-- ---- path 3: a C op in its own module -----------------------------------------------
local function need_pn()
  if not pn_ok then error(pn, 0) end
  return pn
end

-- x * rsqrt(mean_c x^2 + eps) with ops
local function pn_formula(x, eps)
  return x * ((x * x):mean(2, {keepdim = true}) + (eps or 1e-8)):rsqrt()
end

T.test("pixel_norm (C): kernel = naive reference = formula, any trailing dims", function()
  local p = need_pn()
  lg.manual_seed(8)
  for _, shape in ipairs{{3, 5}, {2, 4, 3, 3}, {2, 3, 2, 2, 2}, {1, 16, 1, 7}, {2, 1, 4}} do
    local x = lg.randn(shape) * 3
    local y = p.pixel_norm(x)
    T.shape(y, shape)
    T.close(y, p.pixel_norm_reference(x), 1e-5)
    T.close(y, pn_formula(x), 1e-5)
    T.close((y * y):mean(2), 1, 1e-4)      -- unit RMS over the channels
  end
  -- a strided view and a larger eps
  local x = lg.randn(4, 3, 5):transpose(2, 3)   -- (4,5,3), not contiguous
  T.close(p.pixel_norm(x, {eps = 0.5}), pn_formula(x, 0.5), 1e-5)
  T.close(p.pixel_norm(x, {eps = 0.5}), p.pixel_norm_reference(x, {eps = 0.5}), 1e-5)
end)

T.test("pixel_norm (C): gradcheck and gradgradcheck", function()
  local p = need_pn()
  lg.manual_seed(9)
  local fn = function(x) return p.pixel_norm(x) end
  T.ok(gc.gradcheck(fn, {R(2, 3, 2, 2)}, {name = "pixel_norm"}))
  T.ok(gc.gradgradcheck(fn, {R(2, 3, 2, 2)}, {name = "pixel_norm"}))
  T.ok(gc.gradgradcheck(fn, {R(3, 4)}, {name = "pixel_norm"}))
end)

T.test("pixel_norm (C): the fused backward kernel equals the differentiable ops path", function()
  local p = need_pn()
  lg.manual_seed(10)
  local x = lg.randn(3, 8, 4, 4, {requires_grad = true})
  local v = lg.randn(3, 8, 4, 4)
  local fused = lg.grad(p.pixel_norm(x), x, {grad_outputs = v})[1]              -- kernel
  local ops = lg.grad(p.pixel_norm(x), x, {grad_outputs = v, create_graph = true})[1]
  T.ok(not fused.requires_grad and ops.requires_grad)
  T.close(fused, ops, 1e-5)
  T.close(fused, lg.grad(pn_formula(x), x, {grad_outputs = v})[1], 1e-5)
end)

T.test("pixel_norm (C): one runtime with luagan.core (grad mode, allocator, errors)", function()
  local p = need_pn()
  local x = lg.randn(4, 8, {requires_grad = true})
  T.eq(p.pixel_norm(x).grad_fn, "pixel_norm")
  -- lg.no_grad switches the grad mode the C module reads
  T.eq(lg.no_grad(function() return p.pixel_norm(x) end).grad_fn, nil)
  T.eq(p.pixel_norm(x:detach()).grad_fn, nil)
  -- the output is counted by the allocator luagan.core reports
  local xd = lg.randn(64, 256)
  collectgarbage()
  local before = lg.mem_live_bytes()
  local y = p.pixel_norm(xd)
  T.eq(lg.mem_live_bytes() - before, 64 * 256 * 4)
  y = nil
  collectgarbage()
  T.eq(lg.mem_live_bytes(), before)
  -- errors set in the C op come back through the shared error buffer
  T.errors(function() p.pixel_norm(lg.ones(3)) end, "pixel_norm: expected an input of shape (N,C,...), got 3")
  T.errors(function() p.pixel_norm(lg.ones(2, 0)) end, "has no channels")
  T.errors(function() p.pixel_norm(x, {eps = 0}) end, "eps must be positive")
  T.errors(function() p.pixel_norm(x, {epsilon = 1}) end, "unknown option 'epsilon'")
  T.errors(function() p.pixel_norm("x") end, "tensor expected")
end)

T.test("pixel_norm (C): freed graphs and in-place changes are errors", function()
  local p = need_pn()
  local x = lg.randn(2, 3, {requires_grad = true})
  local y = p.pixel_norm(x):sum()
  y:backward()
  T.errors(function() y:backward() end, "already freed")
  local h = x * 1
  local z = p.pixel_norm(h):sum()
  lg.no_grad(function() h:mul_(2) end)
  T.errors(function() z:backward() end, "modified in place")
end)

-- ---- all three in one GAN step with a gradient penalty --------------------------------
-- (a bias right before a linear map cancels out of the WGAN critic loss, so
-- only weights must have a nonzero gradient)
local function check_grads(who, net)
  for name, w in net:named_parameters() do
    T.ok(w.grad, who .. "." .. name .. " has no gradient")
    local a = w.grad:abs()
    T.ok(a:max():item() < math.huge, who .. "." .. name .. " gradient is not finite")
    if name:match("weight$") then T.ok(a:sum():item() > 0, who .. "." .. name .. " gradient is 0") end
  end
end

T.test("all three in a WGAN-GP step: finite gradients, nonzero for every weight", function()
  local p = need_pn()
  lg.manual_seed(11)
  local PixelNorm = nn.Module:extend("PixelNorm")
  function PixelNorm:forward(x) return p.pixel_norm(x) end
  local G = nn.Sequential{nn.Linear(8, 4 * 2 * 2), nn.Reshape(4, 2, 2), PixelNorm(),
                          ResBlock(4, 4, {up = true, act = mish.mish}), PixelNorm(),
                          nn.Conv2d(4, 1, 3, {padding = 1})}
  local D = nn.Sequential{MinibatchStdDev{group_size = 2}, ResBlock(2, 4, {down = true}),
                          nn.Flatten(), nn.Linear(4 * 2 * 2, 1)}
  local real = lg.randn(4, 1, 4, 4)
  local fake = G(lg.randn(4, 8))
  T.shape(fake, {4, 1, 4, 4})
  local eps = lg.rand(4, 1, 1, 1)
  local xhat = (eps * real + (1 - eps) * fake:detach()):requires_grad_()
  local gx = lg.grad(D(xhat):sum(), xhat, {create_graph = true})[1]
  local gp = ((gx:flatten(2):norm(2, 2) - 1) ^ 2):mean()
  local loss_d = D(fake:detach()):mean() - D(real):mean() + gp * 10
  loss_d:backward()
  check_grads("D", D)
  D:zero_grad()
  local loss_g = -D(fake):mean()
  loss_g:backward()
  check_grads("G", G)
end)
