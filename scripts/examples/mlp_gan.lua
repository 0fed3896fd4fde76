-- mlp_gan.lua: a non-saturating MLP GAN on Fashion-MNIST written with bare
-- tensor ops (no nn modules), to show the runtime layer on its own.
--
--   luagan scripts/examples/mlp_gan.lua [steps] [out_dir]
--
-- G: z100 -> 256 -> 512 -> 1024 -> 784 (LeakyReLU 0.2, tanh out)
-- D: 784 -> 512 -> 256 -> 1 (LeakyReLU 0.2), loss on logits with softplus:
--   D minimises E sp(-l_real) + E sp(l_fake), G minimises E sp(-l_fake).
-- Adam(2e-4, betas 0.5, 0.999), batch 64. Writes samples_<step>.png grids.
local lg = require "luagan"
local data = require "luagan.data"
local image = require "luagan.image"

local steps = tonumber(arg[1]) or 1500
local out = arg[2] or "out/mlp_gan"
lg.mkdir_p(out)
lg.manual_seed(1)

-- A linear layer as two leaf tensors, PyTorch's default init U(-1/sqrt(in), 1/sqrt(in)).
local function linear(n_in, n_out)
  local b = 1 / math.sqrt(n_in)
  return {w = lg.rand(n_in, n_out) * (2 * b) - b, b = lg.rand(n_out) * (2 * b) - b}
end

local function params_of(layers)
  local ps = {}
  for _, l in ipairs(layers) do
    ps[#ps + 1] = l.w:requires_grad_()
    ps[#ps + 1] = l.b:requires_grad_()
  end
  return ps
end

local function mlp(layers, x, out_act)
  for i, l in ipairs(layers) do
    x = lg.matmul(x, l.w) + l.b
    if i < #layers then x = x:leaky_relu(0.2) end
  end
  return out_act and out_act(x) or x
end

local G = {linear(100, 256), linear(256, 512), linear(512, 1024), linear(1024, 784)}
local D = {linear(784, 512), linear(512, 256), linear(256, 1)}
local gp, dp = params_of(G), params_of(D)

-- Adam state per parameter; the update itself runs in C.
local function adam(ps)
  local st, t = {}, 0
  for i, p in ipairs(ps) do st[i] = {m = lg.zeros_like(p), v = lg.zeros_like(p)} end
  return function()
    t = t + 1
    for i, p in ipairs(ps) do
      if p.grad then
        lg.adam_step(p, p.grad, st[i].m, st[i].v, 2e-4, 0.5, 0.999, 1e-8, 0, false, t)
        p.grad = nil
      end
    end
  end
end
local step_g, step_d = adam(gp), adam(dp)

local train = data.fashion_mnist{split = "train"}          -- images in [-1, 1]
local loader = data.DataLoader(train.images, {batch_size = 64, shuffle = true, drop_last = true, seed = 1})
local fixed_z = lg.randn(64, 100)
local t0, step = os.clock(), 0

while step < steps do
  for x in loader:epoch() do
    step = step + 1
    x = x:view(64, 784)
    -- discriminator step: fakes are detached so G gets no gradient
    local fake = mlp(G, lg.randn(64, 100), lg.tanh)
    local ld = lg.softplus(-mlp(D, x)):mean() + lg.softplus(mlp(D, fake:detach())):mean()
    ld:backward()
    step_d()
    -- generator step (non-saturating); D's grads from this pass are dropped
    local lgen = lg.softplus(-mlp(D, fake)):mean()
    lgen:backward()
    step_g()
    for _, p in ipairs(dp) do p.grad = nil end
    if step % 100 == 0 or step == steps then
      print(string.format("step %5d  loss_d %.4f  loss_g %.4f  %.1f steps/s (cpu time)", step,
                          ld:item(), lgen:item(), step / (os.clock() - t0)))
    end
    if step % 500 == 0 or step == steps then
      local s = lg.no_grad(function() return mlp(G, fixed_z, lg.tanh) end)
      local path = string.format("%s/samples_%05d.png", out, step)
      image.save_grid(path, s:view(64, 1, 28, 28), {nrow = 8, range = {-1, 1}})
      print("wrote " .. path)
    end
    if step >= steps then break end
  end
end
