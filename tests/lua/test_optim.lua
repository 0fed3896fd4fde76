-- tests/lua/test_optim.lua: one or two optimizer steps on a 3-element
-- parameter against the update rules written out here in doubles.
local T = ...
local lg = require "luagan"
local nn = require "luagan.nn"
local optim = require "luagan.optim"

local P0 = {1, -2, 3}
local G1 = {0.5, -1, 2}
local G2 = {-0.25, 0.75, 1}

local function param(v) return lg.tensor(v or P0):requires_grad_() end

local function run(opt, p, grads)
  for _, g in ipairs(grads) do
    p.grad = lg.tensor(g)
    opt:step()
  end
end

-- the rules, elementwise in Lua numbers
local function sgd_ref(p, grads, o)
  p = {table.unpack(p)}
  local buf = {}
  for s, g in ipairs(grads) do
    for i = 1, #p do
      local d = g[i] + (o.weight_decay or 0) * p[i]
      local m = o.momentum or 0
      if m ~= 0 then
        if s == 1 then buf[i] = d else buf[i] = m * buf[i] + (1 - (o.dampening or 0)) * d end
        if o.nesterov then d = d + m * buf[i] else d = buf[i] end
      end
      p[i] = p[i] - o.lr * d
    end
  end
  return p
end

local function adam_ref(p, grads, o, decoupled)
  p = {table.unpack(p)}
  local m, v = {0, 0, 0}, {0, 0, 0}
  local b1, b2, wd = o.betas[1], o.betas[2], o.weight_decay or 0
  for t, g in ipairs(grads) do
    for i = 1, #p do
      local d = g[i]
      if decoupled then p[i] = p[i] * (1 - o.lr * wd) else d = d + wd * p[i] end
      m[i] = b1 * m[i] + (1 - b1) * d
      v[i] = b2 * v[i] + (1 - b2) * d * d
      local mh = m[i] / (1 - b1 ^ t)
      local vh = v[i] / (1 - b2 ^ t)
      p[i] = p[i] - o.lr * mh / (math.sqrt(vh) + o.eps)
    end
  end
  return p
end

local function rmsprop_ref(p, grads, o)
  p = {table.unpack(p)}
  local sq, buf = {0, 0, 0}, {0, 0, 0}
  for _, g in ipairs(grads) do
    for i = 1, #p do
      local d = g[i] + (o.weight_decay or 0) * p[i]
      sq[i] = o.alpha * sq[i] + (1 - o.alpha) * d * d
      local u = d / (math.sqrt(sq[i]) + o.eps)
      if (o.momentum or 0) ~= 0 then buf[i] = o.momentum * buf[i] + u; u = buf[i] end
      p[i] = p[i] - o.lr * u
    end
  end
  return p
end

T.test("SGD: plain, momentum, dampening, nesterov, weight decay", function()
  local cases = {
    {lr = 0.1},
    {lr = 0.1, momentum = 0.9},
    {lr = 0.05, momentum = 0.9, dampening = 0.3, weight_decay = 0.1},
    {lr = 0.1, momentum = 0.8, nesterov = true, weight_decay = 0.01},
  }
  for _, o in ipairs(cases) do
    local p = param()
    run(optim.SGD({p}, o), p, {G1, G2})
    T.close(p, sgd_ref(P0, {G1, G2}, o), 1e-6)
  end
  -- one step of plain SGD written out
  local p = param()
  run(optim.SGD({p}, {lr = 0.1}), p, {G1})
  T.close(p, {0.95, -1.9, 2.8}, 1e-6)
end)

T.test("Adam and AdamW against the rule", function()
  local o = {lr = 0.01, betas = {0.5, 0.999}, eps = 1e-8}
  local p = param()
  run(optim.Adam({p}, o), p, {G1, G2})
  T.close(p, adam_ref(P0, {G1, G2}, o, false), 1e-6)
  -- first step of Adam moves each weight by lr * sign(g)
  p = param()
  run(optim.Adam({p}, o), p, {G1})
  T.close(p, {0.99, -1.99, 2.99}, 1e-6)

  local ow = {lr = 0.01, betas = {0.9, 0.99}, eps = 1e-6, weight_decay = 0.1}
  p = param()
  run(optim.Adam({p}, ow), p, {G1, G2, G1})
  T.close(p, adam_ref(P0, {G1, G2, G1}, ow, false), 1e-6)
  p = param()
  run(optim.AdamW({p}, ow), p, {G1, G2, G1})
  T.close(p, adam_ref(P0, {G1, G2, G1}, ow, true), 1e-6)
  -- AdamW's default decay is 0.01, Adam's 0
  p = param()
  run(optim.AdamW({p}, {lr = 0.1}), p, {G1})
  T.close(p, adam_ref(P0, {G1}, {lr = 0.1, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0.01}, true), 1e-6)
end)

T.test("RMSprop with and without momentum", function()
  for _, o in ipairs{{lr = 0.01, alpha = 0.99, eps = 1e-8},
                     {lr = 0.01, alpha = 0.9, eps = 1e-6, momentum = 0.5, weight_decay = 0.1}} do
    local p = param()
    run(optim.RMSprop({p}, o), p, {G1, G2, G1})
    T.close(p, rmsprop_ref(P0, {G1, G2, G1}, o), 1e-6)
  end
  -- WGAN's setting: lr 5e-5, defaults otherwise
  local p = param()
  run(optim.RMSprop({p}, {lr = 5e-5}), p, {G1})
  T.close(p, rmsprop_ref(P0, {G1}, {lr = 5e-5, alpha = 0.99, eps = 1e-8}), 1e-7)
end)

T.test("parameter groups have their own options; nil grads are skipped", function()
  local a, b, c = param(), param(), param()
  local opt = optim.SGD({{params = {a}, lr = 0.1}, {params = {b, c}, momentum = 0.9}}, {lr = 0.01})
  T.eq(opt.param_groups[1].lr, 0.1)
  T.eq(opt.param_groups[2].lr, 0.01)
  T.eq(opt.param_groups[2].momentum, 0.9)
  T.eq(opt.param_groups[1].momentum, 0)
  a.grad = lg.tensor(G1); b.grad = lg.tensor(G1)
  opt:step(); opt:step()
  T.close(a, sgd_ref(P0, {G1, G1}, {lr = 0.1}), 1e-6)
  T.close(b, sgd_ref(P0, {G1, G1}, {lr = 0.01, momentum = 0.9}), 1e-6)
  T.close(c, P0, 0)
  opt:zero_grad()
  T.eq(a.grad, nil); T.eq(b.grad, nil)
  -- a module works as the parameter list
  local net = nn.Linear(3, 2)
  local o2 = optim.Adam(net, {lr = 1e-3})
  T.eq(#o2.param_groups[1].params, 2)
end)

T.test("optimizer argument errors", function()
  local p = param()
  T.errors(function() optim.SGD({p}) end, "lr is required")
  T.errors(function() optim.SGD({p}, {lr = 0.1, nesterov = true}) end, "nesterov needs momentum")
  T.errors(function() optim.Adam({p, 3}, {lr = 0.1}) end, "parameter 2 is a number")
  T.errors(function() optim.Adam({p}, {betas = {0.9}}) end, "betas must be")
  T.errors(function() optim.Adam({{params = {p}}, {params = {p}}}) end, "more than one group")
  T.errors(function() optim.Adam({p}, 0.1) end, "options go in a table")
end)

T.test("optimizer state_dict round trip continues identically", function()
  local o = {lr = 0.01, betas = {0.5, 0.9}, weight_decay = 0.1}
  local p1 = param()
  local opt1 = optim.Adam({p1}, o)
  run(opt1, p1, {G1, G2})
  local sd = opt1:state_dict()
  T.eq(sd["state.1.step"], 2)
  T.ok(lg.is_tensor(sd["state.1.exp_avg"]) and lg.is_tensor(sd["state.1.exp_avg_sq"]))
  T.eq(sd["group.1.betas.1"], 0.5)
  -- as a checkpoint would hand it back: numbers as strings, tensors copied
  local back = {}
  for k, v in pairs(sd) do
    back[k] = lg.is_tensor(v) and v:clone() or tostring(v)
  end
  local p2 = lg.tensor(p1:totable()):requires_grad_()
  local opt2 = optim.Adam({p2}, {lr = 0.5})
  opt2:load_state_dict(back)
  T.eq(opt2.param_groups[1].lr, 0.01)
  T.eq(opt2.param_groups[1].betas[2], 0.9)
  run(opt1, p1, {G1}); run(opt2, p2, {G1})
  T.close(p2, p1, 0)
  T.close(p1, adam_ref(P0, {G1, G2, G1}, {lr = 0.01, betas = {0.5, 0.9}, eps = 1e-8, weight_decay = 0.1}, false), 1e-6)
  -- mismatches are errors
  local opt3 = optim.Adam({param(), param()}, {lr = 1})
  T.errors(function() opt3:load_state_dict(back) end, "the saved state is for 1 parameters, this optimizer has 2")
  local opt4 = optim.Adam({lg.zeros(2):requires_grad_()}, {lr = 1})
  back.n_params = nil
  T.errors(function() opt4:load_state_dict(back) end, "state.1.exp_avg")
  -- SGD momentum buffers too
  local s1 = param()
  local sg1 = optim.SGD({s1}, {lr = 0.1, momentum = 0.9})
  run(sg1, s1, {G1})
  local s2 = lg.tensor(s1:totable()):requires_grad_()
  local sg2 = optim.SGD({s2}, {lr = 0.1, momentum = 0.9})
  sg2:load_state_dict(sg1:state_dict())
  run(sg1, s1, {G2}); run(sg2, s2, {G2})
  T.close(s2, s1, 0)
end)

T.test("schedulers: step, linear decay, cosine", function()
  local p = param()
  local opt = optim.SGD({{params = {p}, lr = 1}, {params = {param()}, lr = 0.1}}, {lr = 1})
  local s = optim.StepLR(opt, {step_size = 2, gamma = 0.5})
  local seen = {}
  for _ = 1, 5 do s:step(); seen[#seen + 1] = opt.param_groups[1].lr end
  T.eq(seen, {1, 0.5, 0.5, 0.25, 0.25})
  T.near(opt.param_groups[2].lr, 0.025)

  local opt2 = optim.Adam({param()}, {lr = 2})
  local ld = optim.LinearDecay(opt2, 2, 6)
  local lrs = {}
  for _ = 1, 7 do ld:step(); lrs[#lrs + 1] = opt2.param_groups[1].lr end
  T.eq(lrs, {2, 2, 1.5, 1, 0.5, 0, 0})

  local opt3 = optim.SGD({param()}, {lr = 1})
  local cs = optim.CosineAnnealing(opt3, {T_max = 4, eta_min = 0.1})
  local c = {}
  for _ = 1, 5 do cs:step(); c[#c + 1] = opt3.param_groups[1].lr end
  T.close(c, {0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2, 0.55,
              0.1 + 0.9 * (1 + math.cos(3 * math.pi / 4)) / 2, 0.1, 0.1}, 1e-12)
  -- scheduler state resumes
  local sd = cs:state_dict()
  local opt4 = optim.SGD({param()}, {lr = 1})
  local cs4 = optim.CosineAnnealing(opt4, {T_max = 4, eta_min = 0.1})
  cs4:load_state_dict(sd)
  T.eq(opt4.param_groups[1].lr, 0.1)
  T.errors(function() optim.StepLR(opt4, {}) end, "step_size")
  T.errors(function() optim.LinearDecay(opt4, 5, 5) end, "start_step < end_step")
end)

T.test("gradient clipping by norm and value; weight clipping", function()
  local a, b = param({0, 0}), param({0, 0})
  a.grad = lg.tensor{3, 0}; b.grad = lg.tensor{0, 4}
  local n = optim.clip_grad_norm({a, b}, 10)
  T.near(n, 5)
  T.close(a.grad, {3, 0})                       -- below the limit: untouched
  n = optim.clip_grad_norm({a, b}, 1)
  T.near(n, 5)
  T.close(a.grad, {0.6, 0}, 1e-5); T.close(b.grad, {0, 0.8}, 1e-5)
  a.grad = lg.tensor{3, -6}; b.grad = nil
  T.near(optim.clip_grad_norm({a, b}, 2, {norm_type = math.huge}), 6)
  T.close(a.grad, {1, -2}, 1e-5)
  a.grad = lg.tensor{3, -0.2}
  optim.clip_grad_value({a, b}, 0.5)
  T.close(a.grad, {0.5, -0.2})
  local w = param({0.5, -0.003, -2})
  optim.clip_weights({w}, 0.01)
  T.close(w, {0.01, -0.003, -0.01})
  T.ok(w.requires_grad)
end)

T.test("EMA of a module's weights", function()
  lg.manual_seed(9)
  local net = nn.Sequential{nn.Linear(3, 2), nn.BatchNorm1d(2)}
  local ema = optim.EMA(net, {decay = 0.9})
  local w0 = net[1].weight:clone()
  lg.no_grad(function() net[1].weight:add_(1) end)
  net(lg.randn(4, 3))                                 -- moves BN statistics
  ema:update()
  local avg = ema:module()
  T.close(avg[1].weight, (w0 + 0.1):totable(), 1e-6)
  T.close(avg[2].running_mean, net[2].running_mean, 0)  -- buffers are copied
  T.ok(not avg[1].weight.requires_grad)
  -- the shadow is independent of the source
  lg.no_grad(function() net[1].weight:fill_(0) end)
  T.close(avg[1].weight, (w0 + 0.1):totable(), 1e-6)
  local dst = nn.Sequential{nn.Linear(3, 2), nn.BatchNorm1d(2)}
  ema:copy_to(dst)
  T.close(dst[1].weight, avg[1].weight, 0)
  T.ok(dst[1].weight.requires_grad)
  -- warmup: min(decay, (1 + n) / (10 + n))
  local e2 = optim.EMA(nn.Linear(1, 1), {decay = 0.999, warmup = true})
  T.near(e2:current_decay(), 0.1)
  e2:update()
  T.near(e2:current_decay(), 2 / 11)
  -- state round trip
  local e3 = optim.EMA(nn.Sequential{nn.Linear(3, 2), nn.BatchNorm1d(2)}, {decay = 0.9})
  e3:load_state_dict(ema:state_dict())
  T.close(e3:module()[1].weight, avg[1].weight, 0)
  T.eq(e3.num_updates, 1)
end)

return nil
