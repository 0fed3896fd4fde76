-- luagan.recipe_kit (lg.recipe_kit): the pieces the bundled recipes share, so
-- a recipe (models/NAME.lua) holds only what makes its variant different: its
-- nets, its losses, its schedule. docs/training.md, "Writing a recipe with
-- the kit"; docs/reference/train.md.
--
--   local kit = lg.recipe_kit
--   options = {{"steps", 1000, "generator updates"}, kit.BATCH, kit.NZ,
--              {"lr", 2e-4, "Adam learning rate (both nets)"}, kit.BETAS, kit.LIMIT},
--   setup = function(opt)
--     return kit.gan_state{opt = opt, G = nets.dcgan_G{nz = opt.nz}, D = nets.dcgan_D{},
--                          data = kit.fashion_mnist(opt).images, loss = lg.losses.nsgan()}
--   end,
--   step = function(s, i) return kit.gan_step(s, {metrics = kit.d_means}, i) end,
--   sample = kit.sampler(),
--
-- Every helper keeps the order in which the recipes drew random numbers and
-- ran their nets before, so a recipe written with the kit trains bit for bit
-- as its hand-written form did.
local lg = require "luagan"
local check_opts = require("luagan.util").check_opts

local kit = {}

local function is_module(v) return require("luagan.nn").is_module(v) end

---------------------------------------------------------------------------
-- options

-- Option entries most recipes declare with the same default and help, and
-- groups of them (a list of entries: luagan.recipe splices it in place).
kit.BATCH = {"batch", 64, "batch size"}
kit.NZ = {"nz", 100, "noise dimension"}
kit.LIMIT = {"limit", 0, "train on the first N images only (0 = all 60000)"}
kit.BETAS = {{"beta1", 0.5, "Adam beta1"}, {"beta2", 0.999, "Adam beta2"}}
-- The DCGAN paper's Adam (lr 2e-4, betas 0.5, 0.999) for both nets.
kit.DCGAN_ADAM = {{"lr", 2e-4, "Adam learning rate (both nets)"}, kit.BETAS[1], kit.BETAS[2]}
-- The options of kit.recon_probe.
kit.RECON_EVAL = {
  {"eval_n", 2000, "test images for the reconstruction error and probe at the end (0 = skip)"},
  {"probe_n", 10000, "training images for the linear probe"},
}

---------------------------------------------------------------------------
-- data, optimisers, state

-- fashion_mnist(opt, split) -> the data set (lg.data.fashion_mnist) with
-- --limit applied (0 = all images).
function kit.fashion_mnist(opt, split)
  return lg.data.fashion_mnist{split = split, limit = opt.limit > 0 and opt.limit or nil}
end

-- stream(opt, tensors, seed_offset) -> an endless batch stream (lg.train.stream)
-- of tensors (N, ...) or a list of them sharing N (images, labels),
-- shuffled batches of opt.batch rows, incomplete ones dropped, shuffled with
-- seed opt.seed + seed_offset (default 0; a second stream of one run uses 1).
function kit.stream(opt, tensors, seed_offset)
  return lg.train.stream(lg.data.DataLoader(tensors, {batch_size = opt.batch, shuffle = true,
                                                      drop_last = true, seed = opt.seed + (seed_offset or 0)}))
end

local function params_of(net)
  if is_module(net) then return net:parameters() end
  return net
end

-- adam_pair(G, D, opt, {lr_g =, lr_d =}) -> optG, optD: the standard pair of
-- Adam optimisers, betas {opt.beta1, opt.beta2}, learning rate opt.lr unless
-- lr_g / lr_d give another. G and D: modules or lists of parameters.
function kit.adam_pair(G, D, opt, o)
  o = check_opts("recipe_kit.adam_pair", o, {"lr_g", "lr_d"})
  local betas = {opt.beta1, opt.beta2}
  return lg.optim.Adam(params_of(G), {lr = o.lr_g or opt.lr, betas = betas}),
         lg.optim.Adam(params_of(D), {lr = o.lr_d or opt.lr, betas = betas})
end

-- gan_state{opt =, G =, D =, data =, loss =, fixed_z = 64, lr_g =, lr_d =,
--           optim = "adam"} -> the state of a G/D recipe:
--   {opt, G, D, optG, optD, data = kit.stream(opt, data), loss, fixed_z}
-- optim "adam": kit.adam_pair; "rmsprop": RMSprop(lr) for both. fixed_z: a
-- number n (n x opt.nz noise, drawn last) or a tensor; false for none. The
-- recipe adds what else it keeps to the returned table.
function kit.gan_state(o)
  o = check_opts("recipe_kit.gan_state", o, {"opt", "G", "D", "data", "loss", "fixed_z", "lr_g", "lr_d", "optim"})
  local opt = o.opt
  if type(opt) ~= "table" then error("recipe_kit.gan_state: opt (the options) is required", 2) end
  if o.G == nil or o.D == nil then error("recipe_kit.gan_state: G and D are required", 2) end
  local s = {opt = opt, G = o.G, D = o.D, loss = o.loss}
  local kind = o.optim or "adam"
  if kind == "adam" then
    s.optG, s.optD = kit.adam_pair(o.G, o.D, opt, {lr_g = o.lr_g, lr_d = o.lr_d})
  elseif kind == "rmsprop" then
    s.optG = lg.optim.RMSprop(params_of(o.G), {lr = o.lr_g or opt.lr})
    s.optD = lg.optim.RMSprop(params_of(o.D), {lr = o.lr_d or opt.lr})
  else
    error("recipe_kit.gan_state: optim must be \"adam\" or \"rmsprop\", got " .. tostring(kind), 2)
  end
  if o.data ~= nil then s.data = kit.stream(opt, o.data) end
  local fz = o.fixed_z
  if fz == nil then fz = 64 end
  if math.type(fz) == "integer" then s.fixed_z = lg.randn(fz, opt.nz)
  elseif fz then s.fixed_z = fz end
  return s
end

---------------------------------------------------------------------------
-- the standard D-then-G step

-- The step's context: c.s (the state), c.opt, c.B (batch size), c.i (the
-- step), c.k (the D update, 1..n_d), c.x (the real batch), c.z (the noise),
-- c.fake (G's batch, with its graph), c.fake_d (the batch D trains on: no
-- graph to G), c.real_out / c.fake_out (D's outputs, by kit.d_loss),
-- c.loss_d, c.penalty (the last D update's), c.loss_g, c.penalty_g.
local Ctx = {}
Ctx.__index = Ctx

-- The WGAN-GP penalty (lg.penalties.gradient_penalty: lg.grad with a graph)
-- on c.x and c.fake_d; its statistics go to c.gp_stats.
function Ctx:gradient_penalty(lambda)
  local gp, st = lg.penalties.gradient_penalty(self.s.D, self.x, self.fake_d, {lambda = lambda})
  self.gp_stats = st
  return gp
end

-- The R1 penalty (lg.penalties.r1) on real inputs x (default c.x); D's
-- logits on them go to c.real_out (the penalty computes them).
function Ctx:r1(gamma, x)
  local r1, st = lg.penalties.r1(self.s.D, x or self.x, {gamma = gamma})
  self.real_out = st.logits
  return r1
end

-- D's loss of the standard step: D on the real batch, then on the fakes.
function kit.d_loss(c)
  c.real_out, c.fake_out = c.s.D(c.x), c.s.D(c.fake_d)
  return c.s.loss.d(c.real_out, c.fake_out)
end

-- G's loss of the standard step: D's verdict on G's batch.
function kit.g_loss(c)
  return c.s.loss.g(c.s.D(c.fake))
end

-- A metrics hook: d_real, d_fake = the mean of D's outputs on the last real
-- and fake batches, through a sigmoid (logits) unless raw is true (scores).
function kit.d_means(c, out, raw)
  local r, f = c.real_out:detach(), c.fake_out:detach()
  if not raw then r, f = r:sigmoid(), f:sigmoid() end
  out.d_real, out.d_fake = r:mean(), f:mean()
end
function kit.d_means_raw(c, out) return kit.d_means(c, out, true) end

local STEP_HOOKS = {"n_d", "fresh", "real", "noise", "generate", "fakes", "d_loss", "after_d",
                    "g_loss", "after_g", "metrics"}

-- One optimiser update on loss (+ pen, when there is a penalty term). only:
-- backward into the optimizer's parameters alone (backward{inputs =}), for
-- G's update through D: D's weight gradients would be thrown away, and not
-- computing them saves their buffers at the step's peak and their matrix
-- products. free: drop the gradients after the step (D's: they are dead
-- until D's next update, and G's update would otherwise hold them at its
-- peak). The same updates bit for bit either way.
local function update(optimizer, loss, pen, o)
  optimizer:zero_grad()
  local l = pen and loss + pen or loss
  if o.only then l:backward{inputs = optimizer:params()} else l:backward() end
  optimizer:step()
  if o.free then optimizer:zero_grad() end
end

local function generate(h, c, z)
  if h.generate then return h.generate(c, z) end
  return c.s.G(z)
end

-- gan_step(s, hooks, i) -> the step's metrics {loss_d, loss_g, ...}.
-- n_d D updates, then one G update, each: zero_grad, backward, step (D's
-- gradients freed after its step; G's backward into G's parameters only).
-- A D update: c.x = real(c) (default s.data:next()); fakes(c) sets c.fake
-- and c.fake_d (default: c.z = noise(c) (default randn(B, nz)), c.fake =
-- generate(c, z) (default s.G(z)), c.fake_d = c.fake:detach(); with fresh,
-- generated under lg.no_grad); then loss, pen = d_loss(c) (default
-- kit.d_loss), D's update on loss + pen, after_d(c) (weight clipping, ...).
-- The G update: with fresh, a new batch c.fake = generate(c, noise(c)) with
-- its graph, else the last D update's c.fake; loss, pen = g_loss(c) (default
-- kit.g_loss); G's update on loss + pen; after_g(c). The metrics are
-- {loss_d = the last D loss, loss_g} and what metrics(c, out) adds.
-- Hooks: n_d (a number or a function of c; 1 by default), fresh (boolean),
-- real, noise, generate, fakes, d_loss, after_d, g_loss, after_g, metrics.
function kit.gan_step(s, h, i)
  h = check_opts("recipe_kit.gan_step", h, STEP_HOOKS)
  local c = setmetatable({s = s, opt = s.opt, B = s.opt.batch, i = i}, Ctx)
  local n_d = h.n_d or 1
  if type(n_d) == "function" then n_d = n_d(c) end
  if math.type(n_d) ~= "integer" or n_d < 1 then
    error("recipe_kit.gan_step: n_d must be an integer >= 1, got " .. tostring(n_d), 2)
  end
  local noise = h.noise or function(cc) return lg.randn(cc.B, cc.opt.nz) end
  for k = 1, n_d do
    c.k = k
    c.x = h.real and h.real(c) or s.data:next()
    if h.fakes then
      h.fakes(c)
    else
      local z = noise(c)
      c.z = z
      if h.fresh then
        c.fake = lg.no_grad(function() return generate(h, c, z) end)
        c.fake_d = c.fake
      else
        c.fake = generate(h, c, z)
        c.fake_d = c.fake:detach()
      end
    end
    c.loss_d, c.penalty = (h.d_loss or kit.d_loss)(c)
    update(s.optD, c.loss_d, c.penalty, {free = true})
    if h.after_d then h.after_d(c) end
  end
  -- G's update, into G's gradients only (D's were freed after its update)
  if h.fresh then
    c.z = noise(c)
    c.fake = generate(h, c, c.z)
  end
  c.loss_g, c.penalty_g = (h.g_loss or kit.g_loss)(c)
  update(s.optG, c.loss_g, c.penalty_g, {only = true})
  if h.after_g then h.after_g(c) end
  local out = {loss_d = c.loss_d, loss_g = c.loss_g}
  if h.metrics then h.metrics(c, out) end
  return out
end

---------------------------------------------------------------------------
-- eval mode, chunks, samples, evaluation files

-- in_eval(nets, f, ...) -> f(...) with the module (or list of modules) nets
-- in eval mode (batch norm on running statistics, no dropout); each net's
-- mode is restored afterwards, also when f raises an error (re-raised).
function kit.in_eval(nets, f, ...)
  local list = is_module(nets) and {nets} or nets
  local was = {}
  for j, m in ipairs(list) do was[j] = m.training; m:eval() end
  local r = table.pack(pcall(f, ...))
  for j, m in ipairs(list) do m:train(was[j]) end
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

-- in_chunks(n, f, size = 500) -> f(i, m) called for rows i .. i+m-1 of n,
-- chunk by chunk; each of its results concatenated over the chunks (dim 1).
function kit.in_chunks(n, f, size)
  size = size or 500
  local parts, nres = {}, 0
  for i = 1, n, size do
    local r = table.pack(f(i, math.min(size, n - i + 1)))
    nres = math.max(nres, r.n)
    for j = 1, r.n do
      parts[j] = parts[j] or {}
      parts[j][#parts[j] + 1] = r[j]
    end
  end
  local out = {}
  for j = 1, nres do out[j] = lg.cat(parts[j], 1) end
  return table.unpack(out, 1, nres)
end

-- map(net, x, {eval = true, size = 500}) -> net(x) (its first result), x
-- (N, ...) -> (N, ...), computed in chunks of x's rows, without gradients, in eval mode unless
-- eval = false.
function kit.map(net, x, o)
  o = check_opts("recipe_kit.map", o, {"eval", "size"})
  local function run()
    return kit.in_chunks(x:size(1), function(i, m) return (net(x:narrow(1, i, m))) end, o.size)
  end
  return lg.no_grad(function()
    if o.eval == false then return run() end
    return kit.in_eval(net, run)
  end)
end

-- generated(nets, n, f) -> f(i, m) in chunks of n rows (kit.in_chunks),
-- without gradients and with nets in eval mode: n samples for an evaluation.
function kit.generated(nets, n, f)
  return lg.no_grad(function() return kit.in_eval(nets, kit.in_chunks, n, f) end)
end

-- save_grid(s, path, o, {generate = function(s, z), nrow =}) -> x: the grid
-- of G's samples for the training's fixed noise s.fixed_z, or o.n fresh
-- noise vectors, with s.G in eval mode (a sample does not depend on the rest
-- of its batch). nrow: ceil(sqrt(N)) by default.
function kit.save_grid(s, path, o, so)
  so = check_opts("recipe_kit.save_grid", so, {"generate", "nrow"})
  local z = o.n and lg.randn(o.n, s.opt.nz) or s.fixed_z
  local x = kit.in_eval(s.G, function()
    if so.generate then return so.generate(s, z) end
    return s.G(z)
  end)
  lg.image.save_grid(path, x, {nrow = so.nrow or math.max(1, math.ceil(math.sqrt(x:size(1))))})
  return x
end

-- sampler(o) -> a recipe's sample function that calls kit.save_grid with o.
function kit.sampler(o)
  check_opts("recipe_kit.sampler", o, {"generate", "nrow"})
  return function(s, path, so) return kit.save_grid(s, path, so, o) end
end

-- write_eval(out, r, msg, name = "eval.json"): r as JSON in out/name,
-- atomically, then msg printed (if given).
function kit.write_eval(out, r, msg, name)
  lg.io.write_atomic(out .. "/" .. (name or "eval.json"), lg.io.json_encode(r) .. "\n")
  if msg then print(msg) end
end

---------------------------------------------------------------------------
-- encoder recipes (bigan, vaegan): the reconstruction grid and evaluation

-- fixed_images(images, n = 20) -> (n,1,28,28): the first n of images
-- (N,1,28,28) (cycled when N < n), the test images of a reconstruction grid.
function kit.fixed_images(images, n)
  local idx = {}
  for i = 1, n or 20 do idx[i] = (i - 1) % images:size(1) + 1 end
  return images:index_select(1, lg.tensor(idx))
end

-- recon_sampler{draw_z = function(opt, n)} -> a sample function: test
-- images s.fixed_x and their reconstructions G(E(x)) (E's first result is
-- the code) in alternating rows of 10, then G(s.fixed_z); with o.n, n
-- samples G(draw_z(opt, n)) (default N(0, I)). G and E in eval mode.
function kit.recon_sampler(ro)
  ro = check_opts("recipe_kit.recon_sampler", ro, {"draw_z"})
  local draw_z = ro.draw_z or function(opt, n) return lg.randn(n, opt.nz) end
  return function(s, path, o)
    if o.n then
      local x = kit.in_eval(s.G, function() return s.G(draw_z(s.opt, o.n)) end)
      lg.image.save_grid(path, x, {nrow = math.max(1, math.ceil(math.sqrt(o.n)))})
      return x
    end
    local rec, gen = kit.in_eval({s.G, s.E}, function()
      return s.G((s.E(s.fixed_x))), s.G(s.fixed_z)
    end)
    local rows = {}
    for r = 0, 1 do
      rows[#rows + 1] = s.fixed_x:narrow(1, r * 10 + 1, 10)
      rows[#rows + 1] = rec:narrow(1, r * 10 + 1, 10)
    end
    rows[#rows + 1] = gen
    lg.image.save_grid(path, lg.cat(rows, 1), {nrow = 10})
    return gen
  end
end

-- recon_probe(s, out, {recipe =, code =}): the test reconstruction error of
-- G(E(x)) on opt.eval_n test images and a linear probe on E(x) from
-- opt.probe_n training images (lg.eval), written to out/eval.json; code
-- names E(x) in the printed line ("E(x)", "mu(x)"). s.sets = {train =,
-- test =}: the data sets.
function kit.recon_probe(s, out, o)
  o = check_opts("recipe_kit.recon_probe", o, {"recipe", "code"})
  local n = math.min(s.opt.eval_n, s.sets.test.images:size(1))
  if n <= 0 then return end
  local xt, yt = s.sets.test.images:narrow(1, 1, n), s.sets.test.labels:narrow(1, 1, n)
  local zt = kit.map(s.E, xt)
  local err = lg.eval.reconstruction_error(xt, kit.map(s.G, zt))
  local m = math.min(s.opt.probe_n, s.sets.train.images:size(1))
  local ztr = kit.map(s.E, s.sets.train.images:narrow(1, 1, m))
  local acc, acc_tr = lg.eval.linear_probe(ztr, s.sets.train.labels:narrow(1, 1, m), zt, yt)
  local r = {recipe = o.recipe, recon_mse = err.mse, recon_l1 = err.l1, probe_test = acc,
             probe_train = acc_tr, n_test = n, n_probe_train = m}
  kit.write_eval(out, r, string.format("%s: test reconstruction mse %.4f l1 %.4f (%d images); " ..
                                       "linear probe on %s: %.4f test, %.4f train (%d train images) " ..
                                       "(%s/eval.json)", o.recipe, err.mse, err.l1, n, o.code, acc,
                                       acc_tr, m, out))
end

return kit
