-- tests/lua/test_nn.lua: lg.nn modules against values computed here by hand
-- or by naive loops (never by the code under test).
local T = ...
local lg = require "luagan"
local nn = require "luagan.nn"

local function set(t, values)          -- overwrite a parameter's values
  lg.no_grad(function() t:copy_(lg.tensor(values)) end)
end

local function tanh(x) local e = math.exp(2 * x) return (e - 1) / (e + 1) end

-- y = x W^T + b by loops
local function linear_ref(x, w, b)
  local y = {}
  for n = 1, #x do
    y[n] = {}
    for o = 1, #w do
      local s = b and b[o] or 0
      for i = 1, #x[n] do s = s + x[n][i] * w[o][i] end
      y[n][o] = s
    end
  end
  return y
end

-- naive conv2d: x (N,C,H,W), w (O,C,KH,KW)
local function conv2d_ref(x, w, b, stride, pad, dil)
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local O, KH, KW = #w, #w[1][1], #w[1][1][1]
  local OH = (H + 2 * pad - dil * (KH - 1) - 1) // stride + 1
  local OW = (W + 2 * pad - dil * (KW - 1) - 1) // stride + 1
  local y = {}
  for n = 1, N do
    y[n] = {}
    for o = 1, O do
      y[n][o] = {}
      for i = 1, OH do
        y[n][o][i] = {}
        for j = 1, OW do
          local s = b and b[o] or 0
          for c = 1, C do
            for kh = 1, KH do
              for kw = 1, KW do
                local hi = (i - 1) * stride - pad + (kh - 1) * dil + 1
                local wi = (j - 1) * stride - pad + (kw - 1) * dil + 1
                if hi >= 1 and hi <= H and wi >= 1 and wi <= W then
                  s = s + x[n][c][hi][wi] * w[o][c][kh][kw]
                end
              end
            end
          end
          y[n][o][i][j] = s
        end
      end
    end
  end
  return y
end

-- naive transposed conv: x (N,C,H,W), w (C,O,KH,KW), scatter form
local function conv_t_ref(x, w, b, stride, pad, opad)
  local N, C, H, W = #x, #x[1], #x[1][1], #x[1][1][1]
  local O, KH, KW = #w[1], #w[1][1], #w[1][1][1]
  local OH = (H - 1) * stride - 2 * pad + KH + opad
  local OW = (W - 1) * stride - 2 * pad + KW + opad
  local y = {}
  for n = 1, N do
    y[n] = {}
    for o = 1, O do
      y[n][o] = {}
      for i = 1, OH do
        y[n][o][i] = {}
        for j = 1, OW do y[n][o][i][j] = b and b[o] or 0 end
      end
      for c = 1, C do
        for i = 1, H do
          for j = 1, W do
            for kh = 1, KH do
              for kw = 1, KW do
                local oi = (i - 1) * stride - pad + kh
                local oj = (j - 1) * stride - pad + kw
                if oi >= 1 and oi <= OH and oj >= 1 and oj <= OW then
                  y[n][o][oi][oj] = y[n][o][oi][oj] + x[n][c][i][j] * w[c][o][kh][kw]
                end
              end
            end
          end
        end
      end
    end
  end
  return y
end

local function flat(t, out)
  out = out or {}
  if type(t) == "number" then out[#out + 1] = t return out end
  for _, v in ipairs(t) do flat(v, out) end
  return out
end

local function mean_var(vals)   -- biased and unbiased variance
  local n, s = #vals, 0
  for _, v in ipairs(vals) do s = s + v end
  local m = s / n
  local q = 0
  for _, v in ipairs(vals) do q = q + (v - m) ^ 2 end
  return m, q / n, q / (n - 1)
end

---------------------------------------------------------------------------
-- layers

T.test("Linear forward by hand", function()
  local l = nn.Linear(3, 2)
  set(l.weight, {{1, 2, 3}, {4, 5, 6}})
  set(l.bias, {0.5, -1})
  local y = l(lg.tensor{{1, 0, -1}, {2, 1, 0}})
  T.close(y, {{-1.5, -3}, {4.5, 12}})
  -- extra leading dims go through matmul broadcasting
  local y3 = l(lg.tensor{{{1, 0, -1}}, {{2, 1, 0}}})
  T.shape(y3, {2, 1, 2})
  local nb = nn.Linear(3, 2, {bias = false})
  T.eq(nb.bias, nil)
  T.eq(#nb:parameters(), 1)
end)

T.test("Linear and Conv2d default init is PyTorch's", function()
  lg.manual_seed(1)
  local l = nn.Linear(300, 200)
  local bound = 1 / math.sqrt(300)
  local w = flat(l.weight:totable())
  local mx, sq = 0, 0
  for _, v in ipairs(w) do mx = math.max(mx, math.abs(v)); sq = sq + v * v end
  T.ok(mx <= bound + 1e-7, "weights within 1/sqrt(fan_in)")
  T.ok(mx > 0.95 * bound, "weights fill the range")
  T.near(math.sqrt(sq / #w), bound / math.sqrt(3), 0.02)   -- std of U(-b, b)
  local bmax = l.bias:abs():max():item()
  T.ok(bmax <= bound + 1e-7 and bmax > 0.5 * bound)
  local c = nn.Conv2d(4, 8, 3)
  local cb = 1 / math.sqrt(4 * 9)
  T.ok(c.weight:abs():max():item() <= cb + 1e-7)
  -- ConvTranspose2d weight is (in, out, k, k): PyTorch's fan_in uses size(2)
  local ct = nn.ConvTranspose2d(4, 8, 3)
  T.shape(ct.weight, {4, 8, 3, 3})
  T.ok(ct.weight:abs():max():item() <= 1 / math.sqrt(8 * 9) + 1e-7)
end)

T.test("Conv2d matches a naive convolution", function()
  lg.manual_seed(2)
  for _, cfg in ipairs{{stride = 2, padding = 1, dilation = 1}, {stride = 1, padding = 0, dilation = 2}} do
    local c = nn.Conv2d(2, 3, 3, cfg)
    local x = lg.randn(2, 2, 7, 6)
    local y = c(x)
    local ref = conv2d_ref(x:totable(), c.weight:totable(), c.bias:totable(),
                           cfg.stride, cfg.padding, cfg.dilation)
    T.close(y, ref, 1e-4)
  end
  local c = nn.Conv2d(1, 64, 4, {stride = 2, padding = 1})
  T.shape(c(lg.randn(3, 1, 28, 28)), {3, 64, 14, 14})
end)

T.test("ConvTranspose2d matches a naive transposed convolution", function()
  lg.manual_seed(3)
  local c = nn.ConvTranspose2d(3, 2, 4, {stride = 2, padding = 1})
  local x = lg.randn(2, 3, 3, 4)
  local ref = conv_t_ref(x:totable(), c.weight:totable(), c.bias:totable(), 2, 1, 0)
  T.close(c(x), ref, 1e-4)
  local c2 = nn.ConvTranspose2d(2, 1, 3, {stride = 2, padding = 1, output_padding = 1, bias = false})
  local x2 = lg.randn(1, 2, 3, 3)
  local y2 = c2(x2)
  T.shape(y2, {1, 1, 6, 6})
  T.close(y2, conv_t_ref(x2:totable(), c2.weight:totable(), nil, 2, 1, 1), 1e-4)
  T.shape(nn.ConvTranspose2d(128, 64, 4, {stride = 2, padding = 1})(lg.randn(2, 128, 7, 7)),
          {2, 64, 14, 14})
end)

T.test("BatchNorm2d training, running stats and eval by hand", function()
  lg.manual_seed(4)
  local bn = nn.BatchNorm2d(3)
  local x = lg.randn(4, 3, 2, 2) * 2 + 1
  local xt = x:totable()
  local y = bn(x):totable()
  local rm, rv = bn.running_mean:totable(), bn.running_var:totable()
  for c = 1, 3 do
    local xs, ys = {}, {}
    for n = 1, 4 do for i = 1, 2 do for j = 1, 2 do
      xs[#xs + 1] = xt[n][c][i][j]; ys[#ys + 1] = y[n][c][i][j]
    end end end
    local m, vb, vu = mean_var(xs)
    for k = 1, #xs do T.near(ys[k], (xs[k] - m) / math.sqrt(vb + 1e-5), 1e-4) end
    T.near(rm[c], 0.1 * m, 1e-5)
    T.near(rv[c], 0.9 + 0.1 * vu, 1e-5)
  end
  -- eval: running statistics and the affine parameters
  set(bn.weight, {1, 2, 3}); set(bn.bias, {0, 0.5, -1})
  bn:eval()
  local z = bn(x):totable()
  local w, b = {1, 2, 3}, {0, 0.5, -1}
  for c = 1, 3 do
    local e = (xt[2][c][1][2] - rm[c]) / math.sqrt(rv[c] + 1e-5) * w[c] + b[c]
    T.near(z[2][c][1][2], e, 1e-4)
  end
  T.close(bn.running_mean, rm)     -- eval leaves the statistics alone
  T.errors(function() bn(lg.randn(2, 4, 2, 2)) end, "expected input with 3 channels, got 4")
  T.errors(function() nn.BatchNorm1d(10, 0.8) end, "options go in a table")
end)

T.test("BatchNorm1d on (N,C) and options", function()
  local bn = nn.BatchNorm1d(2, {momentum = 0.5, eps = 0.1, affine = false})
  T.eq(#bn:parameters(), 0)
  local y = bn(lg.tensor{{1, 10}, {3, 20}})
  -- channel 1: mean 2, biased var 1 -> (x-2)/sqrt(1.1)
  T.close(y:select(2, 1), {-1 / math.sqrt(1.1), 1 / math.sqrt(1.1)}, 1e-5)
  T.close(bn.running_mean, {1, 7.5})            -- 0.5 * 0 + 0.5 * batch mean
  T.close(bn.running_var, {0.5 + 0.5 * 2, 0.5 + 0.5 * 50})   -- unbiased var 2 and 50
end)

T.test("LayerNorm and InstanceNorm2d by hand", function()
  local ln = nn.LayerNorm(4)
  set(ln.weight, {1, 1, 2, 2}); set(ln.bias, {0, 0, 0, 1})
  local y = ln(lg.tensor{{1, 2, 3, 4}, {0, 0, 0, 8}})
  local function row(v, w, b)
    local m, vb = mean_var(v)
    local out = {}
    for i = 1, 4 do out[i] = (v[i] - m) / math.sqrt(vb + 1e-5) * w[i] + b[i] end
    return out
  end
  T.close(y, {row({1, 2, 3, 4}, {1, 1, 2, 2}, {0, 0, 0, 1}),
              row({0, 0, 0, 8}, {1, 1, 2, 2}, {0, 0, 0, 1})}, 1e-4)
  local inorm = nn.InstanceNorm2d(2)
  T.eq(#inorm:parameters(), 0)
  local x = lg.tensor{{{{1, 2}, {3, 4}}, {{0, 0}, {0, 4}}}}
  local z = inorm(x):totable()
  local m, vb = mean_var{0, 0, 0, 4}
  T.near(z[1][2][2][2], (4 - m) / math.sqrt(vb + 1e-5), 1e-4)
  m, vb = mean_var{1, 2, 3, 4}
  T.near(z[1][1][1][1], (1 - m) / math.sqrt(vb + 1e-5), 1e-4)
end)

T.test("Embedding, Dropout, pooling, upsampling, padding, shapes", function()
  local e = nn.Embedding(3, 2)
  set(e.weight, {{1, 2}, {3, 4}, {5, 6}})
  T.close(e(lg.tensor{{2, 1}, {3, 3}}), {{{3, 4}, {1, 2}}, {{5, 6}, {5, 6}}})

  local d = nn.Dropout(0.5)
  local x = lg.ones(4000)
  local y = d(x):totable()
  local zeros = 0
  for _, v in ipairs(y) do
    if v == 0 then zeros = zeros + 1 else T.near(v, 2) end
  end
  T.ok(zeros > 1800 and zeros < 2200, "about half dropped: " .. zeros)
  d:eval()
  T.close(d(x), 1)

  local img = lg.arange(1, 17):reshape(1, 1, 4, 4)
  T.close(nn.MaxPool2d(2)(img), {{{{6, 8}, {14, 16}}}})
  T.close(nn.AvgPool2d(2)(img), {{{{3.5, 5.5}, {11.5, 13.5}}}})
  T.close(nn.Upsample(2)(lg.tensor{{{{1, 2}, {3, 4}}}}),
          {{{{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, 4, 4}, {3, 3, 4, 4}}}})
  T.close(nn.Pad({1, 0, 0, 1})(lg.tensor{{{{1, 2}, {3, 4}}}}),
          {{{{0, 1, 2}, {0, 3, 4}, {0, 0, 0}}}})

  T.shape(nn.Flatten()(lg.zeros(2, 3, 4, 5)), {2, 60})
  T.shape(nn.Reshape(3, 20)(lg.zeros(2, 60)), {2, 3, 20})
  T.errors(function() nn.Reshape(7, 7)(lg.zeros(2, 60)) end, "cannot reshape 2x60 to 2x7x7")
end)

T.test("activations match their formulas", function()
  local xs = {-2, -0.5, 0, 1.5}
  local x = lg.tensor(xs)
  local function map(f) local o = {} for i, v in ipairs(xs) do o[i] = f(v) end return o end
  T.close(nn.ReLU()(x), map(function(v) return math.max(v, 0) end))
  T.close(nn.LeakyReLU(0.2)(x), map(function(v) return v > 0 and v or 0.2 * v end))
  T.close(nn.LeakyReLU()(x), map(function(v) return v > 0 and v or 0.01 * v end))
  T.close(nn.Tanh()(x), map(tanh))
  T.close(nn.Sigmoid()(x), map(function(v) return 1 / (1 + math.exp(-v)) end))
  T.close(nn.ELU()(x), map(function(v) return v > 0 and v or math.exp(v) - 1 end))
  T.close(nn.Softplus()(x), map(function(v) return math.log(1 + math.exp(v)) end))
  T.close(nn.Identity()(x), xs)
end)

---------------------------------------------------------------------------
-- the Module machinery

T.test("Sequential naming, parameters, dedup, modules", function()
  local shared = nn.Linear(4, 4)
  local net = nn.Sequential{shared, nn.ReLU(), shared, nn.Linear(4, 2)}
  T.eq(#net, 4)
  T.ok(net[1] == shared and net[3] == shared)
  local names = {}
  for name, p in net:named_parameters() do names[#names + 1] = name end
  T.eq(names, {"1.weight", "1.bias", "4.weight", "4.bias"})
  local ps = net:parameters()
  T.eq(#ps, 4)
  T.ok(ps[1] == shared.weight and ps[3] == net[4].weight)
  T.eq(net:num_parameters(), 16 + 4 + 8 + 2)
  T.eq(#net:modules(), 4)          -- net, shared, relu, last (shared once)
  T.eq(#net:children(), 4)
  local y = net(lg.randn(3, 4))
  T.shape(y, {3, 2})
  T.errors(function() nn.Sequential{nn.ReLU(), 5} end, "item 2 is not a module")
end)

T.test("custom modules register fields, buffers, nested names", function()
  local Affine = nn.Module:extend("Affine")
  function Affine:init(n)
    self.fc = nn.Linear(n, n)
    self.scale = lg.ones(n, {requires_grad = true})
    self:add_buffer("count", lg.zeros(1))
    self.plain = lg.zeros(2)           -- no grad: a buffer (saved), not a parameter
    self._scratch = lg.zeros(2)        -- "_" prefix: never registered
    self.size = n
  end
  function Affine:forward(x) return self.fc(x) * self.scale end
  local Sub = nn.class("Sub", Affine)   -- subclass of a subclass
  function Sub:forward(x) return Affine.forward(self, x) + 1 end

  local m = nn.Sequential{Affine(3), Sub(3)}
  local names = {}
  for name in m:named_parameters() do names[#names + 1] = name end
  T.eq(names, {"1.fc.weight", "1.fc.bias", "1.scale", "2.fc.weight", "2.fc.bias", "2.scale"})
  T.eq(m:state_keys(), {"1.fc.weight", "1.fc.bias", "1.scale", "1.count", "1.plain",
                        "2.fc.weight", "2.fc.bias", "2.scale", "2.count", "2.plain"})
  local y = m(lg.randn(2, 3))
  T.shape(y, {2, 3})
  local mods = {}
  for name, mod in m:named_modules() do mods[#mods + 1] = name .. "=" .. mod.__name end
  T.eq(mods, {"=Sequential", "1=Affine", "1.fc=Linear", "2=Sub", "2.fc=Linear"})
  -- reassigning a registered parameter keeps its place
  m[1].scale = lg.full({3}, 2, {requires_grad = true})
  T.ok(m:parameters()[3] == m[1].scale)
end)

-- Issue 14: `self.running = lg.zeros(2)` in init was a plain field, missing
-- from state_dict, so a custom running-statistics layer lost it on save.
T.test("a tensor field is a buffer: saved, loaded, copied; '_' and persistent=false opt out", function()
  local Running = nn.Module:extend("Running")
  function Running:init(n)
    self.running = lg.zeros(n)                          -- a buffer by the rule
    self._last = nil                                    -- scratch: never state
    self:add_buffer("calls", lg.zeros(1), {persistent = false})
  end
  function Running:forward(x)
    lg.no_grad(function()
      self.running:mul_(0.9):add_(x:mean(1) * 0.1)
      self.calls:add_(1)
    end)
    self._cache = x:detach()                             -- set in forward, "_": not state
    return x - self.running
  end
  local m = nn.Sequential{nn.Linear(2, 2), Running(2)}
  m(lg.ones(4, 2))
  T.eq(m:state_keys(), {"1.weight", "1.bias", "2.running"})
  local bufs = {}
  for name in m:named_buffers() do bufs[#bufs + 1] = name end
  T.eq(bufs, {"2.running", "2.calls"})                  -- listed (EMA, data parallel) but not saved
  T.eq(#m:parameters(), 2)
  -- saved and loaded through a file
  local path = os.tmpname()
  lg.save(path, m)
  local fresh = nn.Sequential{nn.Linear(2, 2), Running(2)}
  fresh:load_state_dict(lg.load(path))
  os.remove(path)
  T.close(fresh[2].running, m[2].running:totable())
  T.ok(fresh[2].running:sum():item() ~= 0)
  T.close(fresh[2].calls, {0})                           -- non-persistent: not in the file
  -- a clone copies buffers (new storage)
  local c = m:clone()
  T.close(c[2].running, m[2].running:totable())
  T.ok(c[2].running ~= m[2].running)
  -- replacing a buffer's tensor keeps it registered
  m[2].running = lg.full({2}, 5)
  T.close(m:state_dict()["2.running"], {5, 5})
  -- the explicit call checks its arguments
  local r = Running(2)
  T.errors(function() r:add_buffer("b", lg.zeros(1), {persistant = false}) end,
           "unknown option 'persistant'")
  T.errors(function() r:add_buffer("b", 3) end, "expected a tensor or nil, got number")
  T.errors(function() r:add_buffer("b", nil, {persistent = 1}) end, "persistent must be a boolean")
end)

T.test("train/eval recurse; apply visits children first", function()
  local net = nn.Sequential{nn.Linear(2, 2), nn.Sequential{nn.Dropout(), nn.BatchNorm1d(2)}}
  net:eval()
  for _, m in ipairs(net:modules()) do T.eq(m.training, false) end
  net:train()
  for _, m in ipairs(net:modules()) do T.eq(m.training, true) end
  local order = {}
  net:apply(function(m) order[#order + 1] = m.__name end)
  T.eq(order, {"Linear", "Dropout", "BatchNorm1d", "Sequential", "Sequential"})
end)

T.test("zero_grad drops gradients", function()
  local net = nn.Sequential{nn.Linear(3, 2), nn.Tanh()}
  net(lg.randn(4, 3)):sum():backward()
  for _, p in ipairs(net:parameters()) do T.ok(p.grad ~= nil) end
  net:zero_grad()
  for _, p in ipairs(net:parameters()) do T.eq(p.grad, nil) end
end)

T.test("state_dict round trip with buffers", function()
  lg.manual_seed(5)
  local function make()
    return nn.Sequential{nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1)}
  end
  local a, b = make(), make()
  a(lg.randn(8, 3))                    -- moves the running statistics
  local sd = a:state_dict()
  local keys = {}
  for k in pairs(sd) do keys[#keys + 1] = k end
  table.sort(keys)
  T.eq(keys, {"1.bias", "1.weight", "2.bias", "2.running_mean", "2.running_var", "2.weight",
              "4.bias", "4.weight"})
  T.eq(sd["2.running_mean"].requires_grad, false)
  local r = b:load_state_dict(sd)
  T.eq(r.missing, {}); T.eq(r.unexpected, {})
  a:eval(); b:eval()
  local x = lg.randn(5, 3)
  T.close(b(x), a(x), 0)
  T.close(b[2].running_var, a[2].running_var, 0)
  -- loading copies: later changes to a do not reach b
  lg.no_grad(function() a[1].weight:fill_(7) end)
  T.ok(b[1].weight:max():item() < 7)
end)

T.test("load_state_dict strict and non-strict errors", function()
  local net = nn.Sequential{nn.Linear(3, 4), nn.BatchNorm1d(4)}:name("G")
  local sd = net:state_dict()
  local partial = {}
  for k, v in pairs(sd) do if k ~= "2.running_mean" then partial[k] = v end end
  partial["3.weight"] = lg.zeros(2)
  local err = T.errors(function() net:load_state_dict(partial) end, "missing keys: 2.running_mean")
  T.ok(err:find("unexpected keys: 3.weight", 1, true), err)
  T.ok(err:find("load_state_dict (G)", 1, true), err)
  local before = net[1].weight:clone()
  local other = nn.Sequential{nn.Linear(3, 4), nn.BatchNorm1d(4)}
  local r = other:load_state_dict(partial, {strict = false})
  T.eq(r.missing, {"2.running_mean"}); T.eq(r.unexpected, {"3.weight"})
  T.close(other[1].weight, net[1].weight, 0)
  -- shape mismatch fails in both modes and changes nothing
  local wrong = nn.Sequential{nn.Linear(3, 5), nn.BatchNorm1d(4)}:state_dict()
  err = T.errors(function() net:load_state_dict(wrong, {strict = false}) end, "size mismatch")
  T.ok(err:find("1.weight: checkpoint has shape 5x3, module has 4x3", 1, true), err)
  T.close(net[1].weight, before, 0)
  T.errors(function() net:load_state_dict({["1.weight"] = 3}, {strict = false}) end,
           "1.weight: expected a tensor, got number")
end)

T.test("errors name the module path, description and input shape", function()
  local D = nn.Sequential{
    nn.Conv2d(1, 8, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),
    nn.Conv2d(8, 16, 4, {stride = 2, padding = 1}),
  }:name("D")
  local err = T.errors(function() D(lg.randn(2, 3, 28, 28)) end,
                       "D.1 (Conv2d 1->8): expected input with 1 channels, got 3 (input 2x3x28x28)")
  T.ok(not err:find("D (Sequential)", 1, true), "prefixed once: " .. err)
  local G = nn.Sequential{nn.Linear(4, 8), nn.Sequential{nn.Linear(8, 8), nn.Linear(7, 2)}}:name("G")
  T.errors(function() G(lg.randn(5, 4)) end,
           "G.2.2 (Linear 7->2): expected input with 7 features in the last dim, got 8 (input 5x8)")
  -- an error from the runtime inside a custom module keeps the op's message
  local Bad = nn.Module:extend("Bad")
  function Bad:forward(x) return x + lg.ones(5) end
  err = T.errors(function() nn.Sequential{Bad()}(lg.zeros(2, 3)) end, "net.1 (Bad): ")
  T.ok(err:find("2x3", 1, true) and err:find("(input 2x3)", 1, true), err)
  -- an unnamed root is "net"; a module used alone is its own root
  T.errors(function() nn.Linear(2, 2)(lg.zeros(1, 3)) end, "net (Linear 2->2)")
end)

T.test("__tostring shows the tree, shapes and parameter counts", function()
  local D = nn.Sequential{
    nn.Conv2d(1, 8, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2), nn.Flatten(),
    nn.Linear(8 * 14 * 14, 1),
  }:name("D")
  local s = tostring(D)
  T.ok(s:find("D: Sequential", 1, true), s)
  T.ok(s:find("1: Conv2d(1, 8, 4, stride=2, padding=1)  [weight 8x1x4x4, bias 8]  136 params", 1, true), s)
  T.ok(s:find("2: LeakyReLU(0.2)", 1, true), s)
  T.ok(s:find("4: Linear(1568 -> 1)  [weight 1x1568, bias 1]  1,569 params", 1, true), s)
  T.ok(s:find("1,705 params", 1, true), s)
  local summary = D:summary(lg.zeros(2, 1, 28, 28))
  T.ok(summary:find("D.1%s+2x8x14x14"), summary)
  T.ok(summary:find("D.4%s+2x1"), summary)
end)

T.test("clone is deep and independent", function()
  local net = nn.Sequential{nn.Linear(2, 3), nn.BatchNorm1d(3)}:name("N")
  local c = net:clone()
  c:eval(); net:eval()
  local x = lg.randn(4, 2)
  T.close(c(x), net(x), 0)
  lg.no_grad(function() c[1].weight:fill_(0) end)
  T.ok(net[1].weight:abs():sum():item() > 0)
  T.ok(c[1].weight.requires_grad)
  T.eq(c:path(), "N")
  T.eq(c[2]:path(), "N.2")
end)

---------------------------------------------------------------------------
-- GAN layers

-- largest singular value of a Lua matrix by power iteration on W^T W, in doubles
local function top_singular(w)
  local rows, cols = #w, #w[1]
  local v = {}
  for j = 1, cols do v[j] = 1 / math.sqrt(cols) + j * 1e-3 end
  local s = 0
  for _ = 1, 2000 do
    local u = {}
    for i = 1, rows do
      local a = 0
      for j = 1, cols do a = a + w[i][j] * v[j] end
      u[i] = a
    end
    local nv = {}
    for j = 1, cols do
      local a = 0
      for i = 1, rows do a = a + w[i][j] * u[i] end
      nv[j] = a
    end
    local n = 0
    for j = 1, cols do n = n + nv[j] ^ 2 end
    n = math.sqrt(n)
    for j = 1, cols do v[j] = nv[j] / n end
    s = math.sqrt(n)
  end
  return s
end

T.test("SpectralNorm: sigma converges to the top singular value", function()
  lg.manual_seed(6)
  local sn = nn.SpectralNorm(nn.Linear(6, 4))
  local x = lg.randn(3, 6)
  for _ = 1, 50 do sn(x) end
  local w = sn.weight_orig:totable()
  local sigma = top_singular(w)
  T.near(sn:sigma(), sigma, 1e-4)
  -- the output uses W / sigma
  local ws = {}
  for i = 1, 4 do ws[i] = {} for j = 1, 6 do ws[i][j] = w[i][j] / sigma end end
  local ref = linear_ref(x:totable(), ws, sn.module.bias:totable())
  T.close(sn(x), ref, 1e-4)
  -- registered names: weight_orig, u, and the layer's own bias
  T.eq(sn:state_keys(), {"weight_orig", "u", "module.bias"})
  T.eq(#sn:parameters(), 2)
  -- outside forward the layer sees the raw weight
  T.ok(sn.module.weight == sn.weight_orig)
  -- eval mode leaves u alone
  sn:eval()
  local u0 = sn.u:clone()
  sn(x)
  T.close(sn.u, u0, 0)
end)

T.test("SpectralNorm gradient flows through sigma with u, v constant", function()
  lg.manual_seed(7)
  local sn = nn.SpectralNorm(nn.Linear(5, 3))
  local x = lg.randn(4, 5)
  for _ = 1, 30 do sn(x) end
  sn:eval()
  sn(x):sum():backward()
  -- d/dW sum(x (W/s)^T) = G/s - <G,W>/s^2 u v^T, G[o][i] = sum_n x[n][i], s = u^T W v
  local w, xt, u = sn.weight_orig:totable(), x:totable(), sn.u:totable()
  local v = {}
  for j = 1, 5 do local a = 0 for i = 1, 3 do a = a + w[i][j] * u[i] end v[j] = a end
  local nv = 0
  for j = 1, 5 do nv = nv + v[j] ^ 2 end
  for j = 1, 5 do v[j] = v[j] / math.sqrt(nv) end
  local s = 0
  for i = 1, 3 do for j = 1, 5 do s = s + u[i] * w[i][j] * v[j] end end
  local G, gw = {}, 0
  for j = 1, 5 do
    local a = 0
    for n = 1, 4 do a = a + xt[n][j] end
    G[j] = a
  end
  for i = 1, 3 do for j = 1, 5 do gw = gw + G[j] * w[i][j] end end
  local ref = {}
  for i = 1, 3 do
    ref[i] = {}
    for j = 1, 5 do ref[i][j] = G[j] / s - gw / (s * s) * u[i] * v[j] end
  end
  T.close(sn.weight_orig.grad, ref, 1e-4)
  T.close(sn.module.bias.grad, {4, 4, 4})
end)

T.test("SpectralNorm on convolutions uses (C_out, rest)", function()
  local c = nn.SpectralNorm(nn.Conv2d(2, 5, 3, {padding = 1}))
  T.shape(c.u, {5})
  T.shape(c(lg.randn(1, 2, 4, 4)), {1, 5, 4, 4})
  local ct = nn.SpectralNorm(nn.ConvTranspose2d(2, 5, 4, {stride = 2, padding = 1}))
  T.shape(ct.u, {5})
  T.shape(ct(lg.randn(1, 2, 3, 3)), {1, 5, 6, 6})
  local D = nn.Sequential{c}:name("D")
  T.errors(function() D(lg.randn(1, 3, 4, 4)) end, "D.1.module (Conv2d 2->5): expected input with 2 channels")
end)

T.test("MinibatchDiscrimination by hand", function()
  local mb = nn.MinibatchDiscrimination(2, 2, 2, {data_init = false})
  local Tv = {{1, 0, 0.5, -1}, {0, 2, 1, 1}}
  set(mb.T, Tv)
  local xv = {{1, 2}, {0, 1}, {-1, 0.5}}
  local y = mb(lg.tensor(xv))
  T.shape(y, {3, 4})
  local M = {}
  for i = 1, 3 do
    M[i] = {}
    for k = 1, 4 do M[i][k] = xv[i][1] * Tv[1][k] + xv[i][2] * Tv[2][k] end
  end
  local ref = {}
  for i = 1, 3 do
    ref[i] = {xv[i][1], xv[i][2]}
    for b = 1, 2 do
      local o = 0
      for j = 1, 3 do
        if j ~= i then
          local d = 0
          for c = 1, 2 do d = d + math.abs(M[i][(b - 1) * 2 + c] - M[j][(b - 1) * 2 + c]) end
          o = o + math.exp(-d)
        end
      end
      ref[i][2 + b] = o
    end
  end
  T.close(y, ref, 1e-5)
  T.errors(function() mb(lg.zeros(3, 5)) end, "expected input (N, 2), got 3x5")
end)

-- The authors' data-dependent start: the first training forward scales each
-- kernel so the mean nearest-neighbour distance is 2 and centres o at 0;
-- later forwards (and a fresh layer in eval mode) leave s_b and b_b alone.
T.test("MinibatchDiscrimination data-dependent initialisation", function()
  lg.manual_seed(3)
  local mb = nn.MinibatchDiscrimination(6, 3, 2)
  local x = lg.randn(5, 6)
  local M = lg.matmul(x, mb.T):totable()
  local y = mb(x):totable()
  T.eq(mb.initialised:item(), 1)
  local s, bias = mb.log_scale:exp():totable(), mb.bias:totable()
  for b = 1, 3 do
    local dist = {}
    for i = 1, 5 do
      dist[i] = {}
      for j = 1, 5 do
        local d = 0
        for c = 1, 2 do d = d + math.abs(M[i][(b - 1) * 2 + c] - M[j][(b - 1) * 2 + c]) end
        dist[i][j] = d
      end
    end
    local near, omean = 0, 0
    for i = 1, 5 do
      local m, o = math.huge, 0
      for j = 1, 5 do
        if j ~= i then m = math.min(m, dist[i][j]); o = o + math.exp(-s[b] * dist[i][j]) end
      end
      near = near + s[b] * m / 5
      T.near(y[i][6 + b], o + bias[b], 1e-4)
      omean = omean + (o + bias[b]) / 5
    end
    T.near(near, 2, 1e-4)
    T.near(omean, 0, 1e-5)
  end
  local s1 = mb.log_scale:clone()
  mb(lg.randn(5, 6))
  T.close(mb.log_scale, s1, 0)
  local ev = nn.MinibatchDiscrimination(6, 3, 2)
  ev:eval()
  ev(x)
  T.eq(ev.initialised:item(), 0)
  T.close(ev.log_scale, lg.zeros(3), 0)
  T.errors(function() nn.MinibatchDiscrimination(6, 3, 2, {data_init = 1}) end, "data_init must be true or false")
end)

-- |.| has kinks where two samples' projections agree; inputs spread by 10
-- and steps of 1e-3 keep the finite differences off them.
T.test("MinibatchDiscrimination: gradcheck in the input, T, log_scale and bias", function()
  local gc = require "luagan.gradcheck"
  lg.manual_seed(4)
  local mb = nn.MinibatchDiscrimination(4, 2, 3, {data_init = false})
  local fn = function(x, t, ls, b)
    rawset(mb, "T", t); rawset(mb, "log_scale", ls); rawset(mb, "bias", b)
    return mb(x)
  end
  local function leaf(t) return t:detach():clone():requires_grad_() end
  local inputs = {(lg.randn(5, 4) * 10):requires_grad_(), leaf(mb.T),
                  leaf(lg.tensor{-1.2, 0.4}), leaf(lg.tensor{0.3, -0.7})}
  T.ok(gc.gradcheck(fn, inputs, {name = "MinibatchDiscrimination", eps = 1e-3}))
end)

T.test("VirtualBatchNorm normalises with reference + example statistics", function()
  local vbn = nn.VirtualBatchNorm(2)
  set(vbn.weight, {1, 2}); set(vbn.bias, {0, 1})
  local net = nn.Sequential{vbn}
  local ref = {{1, 0}, {2, 4}, {3, 2}, {6, 2}}
  local xv = {{0, 1}, {10, -2}}
  T.errors(function() net(lg.tensor(xv)) end, "no reference statistics")
  local yr = nn.VirtualBatchNorm.reference(net, lg.tensor(ref))
  local y = net(lg.tensor(xv))
  local w, b = {1, 2}, {0, 1}
  local yrt, yt = yr:totable(), y:totable()
  for c = 1, 2 do
    local col = {}
    for n = 1, 4 do col[n] = ref[n][c] end
    local m, vb = mean_var(col)
    local msq = vb + m * m
    for n = 1, 4 do T.near(yrt[n][c], (ref[n][c] - m) / math.sqrt(vb + 1e-5) * w[c] + b[c], 1e-4) end
    for n = 1, 2 do
      local x = xv[n][c]
      local mi = 0.8 * m + 0.2 * x
      local qi = 0.8 * msq + 0.2 * x * x
      T.near(yt[n][c], (x - mi) / math.sqrt(qi - mi * mi + 1e-5) * w[c] + b[c], 1e-4)
    end
  end
  -- images: per-channel statistics, the example's own over H and W
  local v2 = nn.VirtualBatchNorm(3)
  nn.VirtualBatchNorm.reference(v2, lg.randn(4, 3, 2, 2))
  T.shape(v2(lg.randn(2, 3, 2, 2)), {2, 3, 2, 2})
end)

---------------------------------------------------------------------------
-- initialisers

T.test("initialisers: xavier, kaiming, orthogonal, dcgan", function()
  lg.manual_seed(8)
  local init = nn.init
  local w = lg.zeros(64, 32)
  init.xavier_uniform(w)
  local a = math.sqrt(6 / 96)
  T.ok(w:abs():max():item() <= a + 1e-6 and w:abs():max():item() > 0.9 * a)
  init.kaiming_normal(w, {nonlinearity = "relu"})
  local _, vb = mean_var(flat(w:totable()))
  T.near(math.sqrt(vb), math.sqrt(2 / 32), 0.05)
  init.xavier_normal(w, {gain = 2})
  _, vb = mean_var(flat(w:totable()))
  T.near(math.sqrt(vb), 2 * math.sqrt(2 / 96), 0.05)
  for _, shape in ipairs{{4, 6}, {6, 4}, {4, 2, 3, 3}} do
    local q = lg.zeros(table.unpack(shape))
    init.orthogonal(q)
    local m = q:reshape(shape[1], -1)
    local g = (shape[1] <= m:size(2)) and lg.matmul(m, m:t()) or lg.matmul(m:t(), m)
    T.close(g, lg.eye(g:size(1)):totable(), 1e-4)
  end
  T.errors(function() init.xavier_uniform(lg.zeros(5)) end, "at least 2 dims")

  local G = nn.Sequential{nn.ConvTranspose2d(8, 64, 4), nn.BatchNorm2d(64), nn.Conv2d(64, 64, 4)}
  init.dcgan(G)
  local m, v = mean_var(flat(G[3].weight:totable()))
  T.near(m, 0, 0.002); T.near(math.sqrt(v), 0.02, 0.05)
  m, v = mean_var(flat(G[2].weight:totable()))
  T.near(m, 1, 0.01); T.near(math.sqrt(v), 0.02, 0.3)
  T.close(G[2].bias, 0); T.close(G[1].bias, 0)
  T.ok(G[1].weight.requires_grad)
end)

return nil
