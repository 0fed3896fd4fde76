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
local B, Z = 64, 100     -- the batch of the microbenchmarks and the default of the models

-- ---------------------------------------------------------------------------
-- nominal forward FLOPs of the nets, per batch of b
local function linear_f(i, o, b) return 2 * (b or B) * i * o end
local function conv_f(c, o, k, oh, ow, b) return 2 * (b or B) * o * oh * ow * c * k * k end
local function convt_f(c, o, k, ih, iw, b) return 2 * (b or B) * c * ih * iw * o * k * k end

local function mlp_G_f(b) return linear_f(100, 256, b) + linear_f(256, 512, b) + linear_f(512, 1024, b) + linear_f(1024, 784, b) end
local function mlp_D_f(b) return linear_f(784, 512, b) + linear_f(512, 256, b) + linear_f(256, 1, b) end
local function dc_G_f(b) return linear_f(100, 128 * 49, b) + convt_f(128, 64, 4, 7, 7, b) + convt_f(64, 1, 4, 14, 14, b) end
local function dc_D_f(b) return conv_f(1, 64, 4, 14, 14, b) + conv_f(64, 128, 4, 7, 7, b) + linear_f(128 * 49, 1, b) end

-- DCGAN (Radford et al. 2016) at 64x64x3: G z -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64
-- -> 64x64x3 by 4x4 transposed convs (the first from 1x1, stride 1; the rest stride 2, pad 1),
-- D the mirror (4x4 stride-2 convs 3->64->128->256->512, then a 4x4 conv to one logit).
local DC64 = {512, 256, 128, 64}
local function dc64_G_f(b)
  local f, s = convt_f(Z, DC64[1], 4, 1, 1, b), 4
  for i = 1, 3 do f = f + convt_f(DC64[i], DC64[i + 1], 4, s, s, b); s = 2 * s end
  return f + convt_f(DC64[4], 3, 4, 32, 32, b)
end
local function dc64_D_f(b)
  local f, s, cin = 0, 32, 3
  for i = 4, 1, -1 do f = f + conv_f(cin, DC64[i], 4, s, s, b); cin = DC64[i]; s = s // 2 end
  return f + conv_f(DC64[1], 1, 4, 1, 1, b)
end

-- The CIFAR ResNet of WGAN-GP (Gulrajani et al. 2017) and SNGAN (Miyato et al. 2018) at
-- 32x32x3 with 128 channels: G Linear(128 -> 4x4x128), three up blocks (BN, ReLU, nearest 2x,
-- 3x3 conv, BN, ReLU, 3x3 conv; shortcut 2x + 1x1 conv) to 32x32, BN, ReLU, 3x3 conv to 3,
-- tanh; D an optimised first block (3x3 conv, ReLU, 3x3 conv, 2x2 avg pool; shortcut pool +
-- 1x1 conv) to 16x16, a down block to 8x8 (ReLU, conv, ReLU, conv, pool; shortcut 1x1 conv +
-- pool), two plain blocks at 8x8 (identity shortcut), ReLU, sum over space, Linear(128, 1).
-- No normalisation in D (WGAN-GP's critic; SNGAN's spectral norm is left out on both sides).
local RC, RZ = 128, 128
local function res_G_f(b)
  local f = linear_f(RZ, 4 * 4 * RC, b)
  for _, s in ipairs({8, 16, 32}) do
    f = f + 2 * conv_f(RC, RC, 3, s, s, b) + conv_f(RC, RC, 1, s, s, b)
  end
  return f + conv_f(RC, 3, 3, 32, 32, b)
end
local function res_D_f(b)
  local f = conv_f(3, RC, 3, 32, 32, b) + conv_f(RC, RC, 3, 32, 32, b) + conv_f(3, RC, 1, 16, 16, b)
  f = f + 2 * conv_f(RC, RC, 3, 16, 16, b) + conv_f(RC, RC, 1, 16, 16, b)  -- shortcut conv before its pool
  f = f + 4 * conv_f(RC, RC, 3, 8, 8, b)
  return f + linear_f(RC, 1, b)
end

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

local function dcgan64_nets()
  local s2 = {stride = 2, padding = 1}
  local g = {nn.Reshape(Z, 1, 1), nn.ConvTranspose2d(Z, DC64[1], 4, {bias = false}),
             nn.BatchNorm2d(DC64[1]), nn.ReLU()}
  for i = 1, 3 do
    g[#g + 1] = nn.ConvTranspose2d(DC64[i], DC64[i + 1], 4, {stride = 2, padding = 1, bias = false})
    g[#g + 1] = nn.BatchNorm2d(DC64[i + 1])
    g[#g + 1] = nn.ReLU()
  end
  g[#g + 1] = nn.ConvTranspose2d(DC64[4], 3, 4, {stride = 2, padding = 1, bias = false})
  g[#g + 1] = nn.Tanh()
  local d, cin = {}, 3
  for i = 4, 1, -1 do
    d[#d + 1] = nn.Conv2d(cin, DC64[i], 4, {stride = s2.stride, padding = s2.padding, bias = false})
    if i < 4 then d[#d + 1] = nn.BatchNorm2d(DC64[i]) end
    d[#d + 1] = nn.LeakyReLU(0.2)
    cin = DC64[i]
  end
  d[#d + 1] = nn.Conv2d(DC64[1], 1, 4, {bias = false})
  d[#d + 1] = nn.Flatten()
  return nn.Sequential(g), nn.Sequential(d)
end

-- ResNet blocks of the CIFAR GAN (see res_G_f above).
local GBlock = nn.Module:extend("GBlock")
function GBlock:init(c)
  self.bn1, self.c1 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, {padding = 1})
  self.bn2, self.c2 = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, {padding = 1})
  self.sc = nn.Conv2d(c, c, 1)
end
function GBlock:forward(x)
  local up = {scale = 2, mode = "nearest"}
  local h = self.c1(lg.upsample(self.bn1(x):relu(), up))
  h = self.c2(self.bn2(h):relu())
  return h + self.sc(lg.upsample(x, up))
end

-- first: the optimised first block (no ReLU before its first conv); down: 2x2 average pool.
local DBlock = nn.Module:extend("DBlock")
function DBlock:init(cin, c, first, down)
  self.first, self.down = first, down
  self.c1, self.c2 = nn.Conv2d(cin, c, 3, {padding = 1}), nn.Conv2d(c, c, 3, {padding = 1})
  if down then self.sc = nn.Conv2d(cin, c, 1) end
end
function DBlock:forward(x)
  local h = self.c1(self.first and x or x:relu())
  h = self.c2(h:relu())
  if not self.down then return h + x end
  h = lg.avg_pool2d(h, 2)
  if self.first then return h + self.sc(lg.avg_pool2d(x, 2)) end
  return h + lg.avg_pool2d(self.sc(x), 2)
end

local SumPool = nn.Module:extend("SumPool")   -- (N,C,H,W) -> (N,C): sum over space
function SumPool:forward(x) return x:view(x:size(1), x:size(2), -1):sum(3) end

local function resnet32_nets()
  local G = nn.Sequential{
    nn.Linear(RZ, 4 * 4 * RC), nn.Reshape(RC, 4, 4),
    GBlock(RC), GBlock(RC), GBlock(RC),
    nn.BatchNorm2d(RC), nn.ReLU(), nn.Conv2d(RC, 3, 3, {padding = 1}), nn.Tanh(),
  }
  local D = nn.Sequential{
    DBlock(3, RC, true, true), DBlock(RC, RC, false, true),
    DBlock(RC, RC, false, false), DBlock(RC, RC, false, false),
    nn.ReLU(), SumPool(), nn.Linear(RC, 1),
  }
  return G, D
end

-- ---------------------------------------------------------------------------
-- steps
local function gan_step(G, D, real_shape, b, z)
  b, z = b or B, z or Z
  local optG = optim.Adam(G:parameters(), {lr = 2e-4, betas = {0.5, 0.999}})
  local optD = optim.Adam(D:parameters(), {lr = 2e-4, betas = {0.5, 0.999}})
  local real = lg.rand(table.unpack(real_shape)) * 2 - 1
  local ones, zeros = lg.ones(b, 1), lg.zeros(b, 1)
  return function()
    local fake = G(lg.randn(b, z))
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

-- The hinge loss of SNGAN: D min E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], G min -E[D(G(z))];
-- Adam(2e-4, 0, 0.9) as SNGAN's ResNet; one D update and one G update per step.
local function hinge_step(G, D, real_shape, b, z)
  local optG = optim.Adam(G:parameters(), {lr = 2e-4, betas = {0.0, 0.9}})
  local optD = optim.Adam(D:parameters(), {lr = 2e-4, betas = {0.0, 0.9}})
  local real = lg.rand(table.unpack(real_shape)) * 2 - 1
  return function()
    local fake = G(lg.randn(b, z))
    local ld = (1 - D(real)):relu():mean() + (1 + D(fake:detach())):relu():mean()
    optD:zero_grad()
    ld:backward()
    optD:step()
    local lgen = -D(fake):mean()
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

local function dcgan28(b)
  return {batch = b, flops = gan_step_flops(dc_G_f(b), dc_D_f(b)),
          build = function() local G, D = dcgan_nets(true); return gan_step(G, D, {b, 1, 28, 28}, b) end}
end
local function dcgan64(b)
  return {batch = b, flops = gan_step_flops(dc64_G_f(b), dc64_D_f(b)),
          build = function() local G, D = dcgan64_nets(); return gan_step(G, D, {b, 3, 64, 64}, b) end}
end

M.models = {
  mlp_gan = {
    batch = B, flops = gan_step_flops(mlp_G_f(B), mlp_D_f(B)),
    build = function() local G, D = mlp_nets(); return gan_step(G, D, {B, 784}) end,
  },
  dcgan28 = dcgan28(64),
  dcgan28_b16 = dcgan28(16),
  dcgan28_b256 = dcgan28(256),
  wgangp_dcgan28 = {
    batch = B, flops = wgangp_step_flops(dc_G_f(B), dc_D_f(B)),
    build = function() local G, D = dcgan_nets(false); return wgangp_step(G, D) end,
  },
  dcgan64 = dcgan64(64),
  dcgan64_b128 = dcgan64(128),
  resnet32 = {
    batch = B, flops = gan_step_flops(res_G_f(B), res_D_f(B)),
    build = function()
      local G, D = resnet32_nets()
      return hinge_step(G, D, {B, 3, 32, 32}, B, RZ)
    end,
  },
}
-- The default run; the rest by --models (bench/bench.lua --models all for every one).
M.model_order = {"mlp_gan", "dcgan28", "wgangp_dcgan28"}
M.all_models = {"mlp_gan", "dcgan28_b16", "dcgan28", "dcgan28_b256", "wgangp_dcgan28",
                "dcgan64", "dcgan64_b128", "resnet32"}
-- Nets by name, for the parameter-count check against the PyTorch twin.
M.nets = {mlp_gan = mlp_nets, dcgan28 = function() return dcgan_nets(true) end,
          wgangp_dcgan28 = function() return dcgan_nets(false) end,
          dcgan64 = dcgan64_nets, resnet32 = resnet32_nets}
-- Nominal forward FLOPs per sample of each net, checked against PyTorch's FlopCounterMode.
M.net_flops = {mlp_gan = {G = mlp_G_f(1), D = mlp_D_f(1)},
               dcgan28 = {G = dc_G_f(1), D = dc_D_f(1)}, wgangp_dcgan28 = {G = dc_G_f(1), D = dc_D_f(1)},
               dcgan64 = {G = dc64_G_f(1), D = dc64_D_f(1)}, resnet32 = {G = res_G_f(1), D = res_D_f(1)}}

-- ---------------------------------------------------------------------------
-- microbenchmarks: each returns (function running the op once, its FLOPs)
local function conv_case(x_shape, w_shape, f, transposed, backward, o)
  local x = lg.randn(table.unpack(x_shape))
  local w = lg.randn(table.unpack(w_shape)) * 0.05
  local b = lg.zeros(transposed and w_shape[2] or w_shape[1])
  local op = transposed and lg.conv_transpose2d or lg.conv2d
  o = o or {stride = 2, padding = 1}
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
  -- the ops of dcgan64 and resnet32
  {"D64.conv2 64x64x32x32 -> 64x128x16x16 fwd+bwd", function() return conv_case({B, 64, 32, 32}, {128, 64, 4, 4}, conv_f(64, 128, 4, 16, 16), false, true) end},
  {"G64.convT1 64x512x4x4 -> 64x256x8x8 fwd+bwd", function() return conv_case({B, 512, 4, 4}, {512, 256, 4, 4}, convt_f(512, 256, 4, 4, 4), true, true) end},
  {"R.conv3x3 64x128x32x32 fwd+bwd", function() return conv_case({B, RC, 32, 32}, {RC, RC, 3, 3}, conv_f(RC, RC, 3, 32, 32), false, true, {stride = 1, padding = 1}) end},
  {"R.conv3x3 64x128x16x16 fwd+bwd", function() return conv_case({B, RC, 16, 16}, {RC, RC, 3, 3}, conv_f(RC, RC, 3, 16, 16), false, true, {stride = 1, padding = 1}) end},
  {"R.conv3x3 64x128x8x8 fwd+bwd", function() return conv_case({B, RC, 8, 8}, {RC, RC, 3, 3}, conv_f(RC, RC, 3, 8, 8), false, true, {stride = 1, padding = 1}) end},
  {"BatchNorm2d 64x128x16x16 fwd+bwd", function()
    local m, x = nn.BatchNorm2d(RC), lg.randn(B, RC, 16, 16):requires_grad_()
    return function()
      local y = m(x)
      y:backward(y)
      x.grad = nil
      m:zero_grad()
    end, 0
  end},
  {"add 64 elements (per-op overhead)", function()
    local a, b = lg.randn(B), lg.randn(B)
    return function() return a + b end, 0
  end},
}

return M
