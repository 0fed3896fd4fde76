-- bench/models.lua: the three reference training steps of the benchmark and the
-- op microbenchmarks, built from lg.nn modules and lg.optim.Adam. Mirrors
-- bench/torch_models.py layer for layer.
--
--   local M = dofile("bench/models.lua")
--   local step = M.models.dcgan28.build()   -- a function running one step
--
-- Every model takes batch 64, float32 and synthetic "real" images in [-1, 1]
-- (the data pipeline is not what is measured). FLOP counts are nominal: the
-- multiply-adds of the matmuls and convolutions (2 per MAC), a backward pass
-- counted as 2x its forward; elementwise work is not counted. The same counts
-- are used for PyTorch, so the GFLOP/s of both sides compare directly.
local lg = require "luagan"
local nn, optim = lg.nn, lg.optim

local M = {}
local B, Z = 64, 100

-- ---------------------------------------------------------------------------
-- nominal forward FLOPs of the nets (per batch)
local function linear_f(i, o) return 2 * B * i * o end
local function conv_f(c, o, k, oh, ow) return 2 * B * o * oh * ow * c * k * k end
local function convt_f(c, o, k, ih, iw) return 2 * B * c * ih * iw * o * k * k end

local mlp_G_f = linear_f(100, 256) + linear_f(256, 512) + linear_f(512, 1024) + linear_f(1024, 784)
local mlp_D_f = linear_f(784, 512) + linear_f(512, 256) + linear_f(256, 1)
local dc_G_f = linear_f(100, 128 * 49) + convt_f(128, 64, 4, 7, 7) + convt_f(64, 1, 4, 14, 14)
local dc_D_f = conv_f(1, 64, 4, 14, 14) + conv_f(64, 128, 4, 7, 7) + linear_f(128 * 49, 1)

-- A GAN step (one D update, one G update, G forward once): G fwd + bwd (3x),
-- D on real and fake fwd + bwd (2 x 3x), D on fake again for G fwd + bwd (3x).
local function gan_step_flops(gf, df) return 3 * gf + 9 * df end
-- A WGAN-GP step: 5 critic updates, each G fwd (1x), D on real and fake
-- fwd + bwd (6x), the penalty: D fwd + input grad (2x) then the backward of
-- that through create_graph (2 x 2x) = 6x; then one G update (3 gf + 3 df).
local function wgangp_step_flops(gf, df) return 5 * (gf + 12 * df) + 3 * gf + 3 * df end

-- ---------------------------------------------------------------------------
-- nets
local function mlp_nets()
  local G = nn.Sequential{
    nn.Linear(Z, 256), nn.LeakyReLU(0.2),
    nn.Linear(256, 512), nn.BatchNorm1d(512), nn.LeakyReLU(0.2),
    nn.Linear(512, 1024), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
    nn.Linear(1024, 784), nn.Tanh(),
  }
  local D = nn.Sequential{
    nn.Linear(784, 512), nn.LeakyReLU(0.2),
    nn.Linear(512, 256), nn.LeakyReLU(0.2),
    nn.Linear(256, 1),
  }
  return G, D
end

local function dcgan_nets(d_batchnorm)
  local G = nn.Sequential{
    nn.Linear(Z, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
    nn.Reshape(128, 7, 7),
    nn.ConvTranspose2d(128, 64, 4, {stride = 2, padding = 1}), nn.BatchNorm2d(64), nn.ReLU(),
    nn.ConvTranspose2d(64, 1, 4, {stride = 2, padding = 1}), nn.Tanh(),
  }
  local d = {nn.Conv2d(1, 64, 4, {stride = 2, padding = 1}), nn.LeakyReLU(0.2),
             nn.Conv2d(64, 128, 4, {stride = 2, padding = 1})}
  if d_batchnorm then d[#d + 1] = nn.BatchNorm2d(128) end
  d[#d + 1] = nn.LeakyReLU(0.2)
  d[#d + 1] = nn.Flatten()
  d[#d + 1] = nn.Linear(128 * 7 * 7, 1)
  return G, nn.Sequential(d)
end

-- ---------------------------------------------------------------------------
-- steps
local function gan_step(G, D, real_shape)
  local optG = optim.Adam(G:parameters(), {lr = 2e-4, betas = {0.5, 0.999}})
  local optD = optim.Adam(D:parameters(), {lr = 2e-4, betas = {0.5, 0.999}})
  local real = lg.rand(table.unpack(real_shape)) * 2 - 1
  local ones, zeros = lg.ones(B, 1), lg.zeros(B, 1)
  return function()
    local fake = G(lg.randn(B, Z))
    local ld = lg.bce_with_logits(D(real), ones) + lg.bce_with_logits(D(fake:detach()), zeros)
    optD:zero_grad()
    ld:backward()
    optD:step()
    local lgen = lg.bce_with_logits(D(fake), ones)
    optG:zero_grad()
    lgen:backward()
    optG:step()
  end
end

local function wgangp_step(G, D)
  local optG = optim.Adam(G:parameters(), {lr = 1e-4, betas = {0.5, 0.9}})
  local optD = optim.Adam(D:parameters(), {lr = 1e-4, betas = {0.5, 0.9}})
  local real = lg.rand(B, 1, 28, 28) * 2 - 1
  local lambda, n_critic = 10, 5
  return function()
    for _ = 1, n_critic do
      local fake = lg.no_grad(function() return G(lg.randn(B, Z)) end)
      local eps = lg.rand(B, 1, 1, 1)
      local xhat = (real * eps + fake * (1 - eps)):requires_grad_()
      local dx = D(xhat)
      local gx = lg.grad({dx:sum()}, {xhat}, {create_graph = true})[1]
      local norm = (gx:view(B, -1):pow(2):sum(2) + 1e-12):sqrt()
      local gp = ((norm - 1):pow(2)):mean()
      local ld = D(fake):mean() - D(real):mean() + gp * lambda
      optD:zero_grad()
      ld:backward()
      optD:step()
    end
    local lgen = -D(G(lg.randn(B, Z))):mean()
    optG:zero_grad()
    lgen:backward()
    optG:step()
  end
end

M.models = {
  mlp_gan = {
    flops = gan_step_flops(mlp_G_f, mlp_D_f),
    build = function() local G, D = mlp_nets(); return gan_step(G, D, {B, 784}) end,
  },
  dcgan28 = {
    flops = gan_step_flops(dc_G_f, dc_D_f),
    build = function() local G, D = dcgan_nets(true); return gan_step(G, D, {B, 1, 28, 28}) end,
  },
  wgangp_dcgan28 = {
    flops = wgangp_step_flops(dc_G_f, dc_D_f),
    build = function() local G, D = dcgan_nets(false); return wgangp_step(G, D) end,
  },
}
M.model_order = {"mlp_gan", "dcgan28", "wgangp_dcgan28"}

-- ---------------------------------------------------------------------------
-- microbenchmarks: each returns (function running the op once, its FLOPs)
local function conv_case(x_shape, w_shape, f, transposed, backward)
  local x = lg.randn(table.unpack(x_shape))
  local w = lg.randn(table.unpack(w_shape)) * 0.05
  local b = lg.zeros(transposed and w_shape[2] or w_shape[1])
  local op = transposed and lg.conv_transpose2d or lg.conv2d
  local o = {stride = 2, padding = 1}
  if not backward then
    return function() lg.no_grad(function() return op(x, w, b, o) end) end, f
  end
  x:requires_grad_(); w:requires_grad_(); b:requires_grad_()
  return function()
    local y = op(x, w, b, o)
    y:backward(y)   -- grad_output = y: any dense tensor of y's shape
    x.grad, w.grad, b.grad = nil, nil, nil
  end, 3 * f
end

M.micro = {
  {"D.conv1 64x1x28x28 -> 64x64x14x14", function() return conv_case({B, 1, 28, 28}, {64, 1, 4, 4}, conv_f(1, 64, 4, 14, 14), false, false) end},
  {"D.conv1 fwd+bwd", function() return conv_case({B, 1, 28, 28}, {64, 1, 4, 4}, conv_f(1, 64, 4, 14, 14), false, true) end},
  {"D.conv2 64x64x14x14 -> 64x128x7x7", function() return conv_case({B, 64, 14, 14}, {128, 64, 4, 4}, conv_f(64, 128, 4, 7, 7), false, false) end},
  {"D.conv2 fwd+bwd", function() return conv_case({B, 64, 14, 14}, {128, 64, 4, 4}, conv_f(64, 128, 4, 7, 7), false, true) end},
  {"G.convT1 64x128x7x7 -> 64x64x14x14", function() return conv_case({B, 128, 7, 7}, {128, 64, 4, 4}, convt_f(128, 64, 4, 7, 7), true, false) end},
  {"G.convT1 fwd+bwd", function() return conv_case({B, 128, 7, 7}, {128, 64, 4, 4}, convt_f(128, 64, 4, 7, 7), true, true) end},
  {"G.convT2 64x64x14x14 -> 64x1x28x28", function() return conv_case({B, 64, 14, 14}, {64, 1, 4, 4}, convt_f(64, 1, 4, 14, 14), true, false) end},
  {"G.convT2 fwd+bwd", function() return conv_case({B, 64, 14, 14}, {64, 1, 4, 4}, convt_f(64, 1, 4, 14, 14), true, true) end},
  {"Linear(784, 512) 64x784", function()
    local m, x = nn.Linear(784, 512), lg.randn(B, 784)
    return function() lg.no_grad(function() return m(x) end) end, linear_f(784, 512)
  end},
  {"Linear(784, 512) fwd+bwd", function()
    local m, x = nn.Linear(784, 512), lg.randn(B, 784):requires_grad_()
    return function()
      local y = m(x)
      y:backward(y)
      x.grad = nil
      m:zero_grad()
    end, 3 * linear_f(784, 512)
  end},
  {"add 64 elements (per-op overhead)", function()
    local a, b = lg.randn(B), lg.randn(B)
    return function() return a + b end, 0
  end},
}

return M
