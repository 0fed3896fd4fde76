-- tests/rock/train_small.lua: run by test_rock.sh in a stock lua5.4 whose
-- LUA_PATH/LUA_CPATH come from `luarocks path` for the rock's tree:
--   lua5.4 tests/rock/train_small.lua TREE
-- Checks that luagan and luagan.core load from TREE, then trains a small
-- classifier on the two moons to >= 97% training accuracy and runs WGAN-GP
-- steps on the 8-Gaussian ring (double backward), printing the numbers.
local tree = assert(arg[1], "usage: lua5.4 train_small.lua TREE")

local function from_tree(name, path)
  local p = package.searchpath(name, path)
  if not (p and p:sub(1, #tree + 1) == tree .. "/") then
    error(string.format("%s resolves to %s, not inside the rock tree %s", name, tostring(p), tree))
  end
  return p
end
print("luagan      " .. from_tree("luagan", package.path))
print("luagan.core " .. from_tree("luagan.core", package.cpath))

local lg = require "luagan"
local nn = require "luagan.nn"
local optim = require "luagan.optim"
local data = require "luagan.data"
assert(_VERSION == "Lua 5.4", _VERSION)

-- 1. a classifier: 2 -> 32 -> 32 -> 2 on 512 moons points, full batch Adam
lg.manual_seed(1)
local x, _, labels = data.moons{n = 512, seed = 1}
local net = nn.Sequential{nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2)}
local opt = optim.Adam(net:parameters(), {lr = 0.01})
local first, loss
for step = 1, 300 do
  opt:zero_grad()
  loss = lg.cross_entropy(net(x), labels)
  loss:backward()
  opt:step()
  first = first or loss:item()
end
local acc = lg.no_grad(function() return lg.eq(net(x):argmax(2), labels):mean():item() end)
print(string.format("classifier: loss %.4f -> %.4f, training accuracy %.3f", first, loss:item(), acc))
assert(acc >= 0.97, "the classifier did not learn the moons")

-- 2. WGAN-GP on the ring: the penalty needs the gradient of a gradient
local real_all = data.ring{n = 2048, seed = 2}
local G = nn.Sequential{nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2)}
local D = nn.Sequential{nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 1)}
local og = optim.Adam(G:parameters(), {lr = 1e-3, betas = {0.5, 0.9}})
local od = optim.Adam(D:parameters(), {lr = 1e-3, betas = {0.5, 0.9}})
local gp
for step = 1, 50 do
  local real = real_all:index_select(1, lg.randint(1, 2049, {64}))
  local fake = G(lg.randn(64, 4))
  local eps = lg.rand(64, 1)
  local xhat = (eps * real + (1 - eps) * fake:detach()):requires_grad_()
  local gx = lg.grad(D(xhat):sum(), xhat, {create_graph = true})[1]
  gp = ((gx:norm(2, 2) - 1) ^ 2):mean()
  od:zero_grad()
  ;(D(fake:detach()):mean() - D(real):mean() + gp * 10):backward()
  od:step()
  og:zero_grad()
  ;(-D(fake):mean()):backward()
  og:step()
end
print(string.format("wgan-gp: 50 steps, last gradient penalty %.4f", gp:item()))
assert(gp:item() == gp:item() and gp:item() < math.huge, "the gradient penalty is not finite")

-- 3. the bundled recipes and the clock, as the executable has them (issue 14):
-- train.run("toy2d") finds the installed models/, and its metrics log a
-- real rate, not the 1e10 steps/s of a clock that never moves
local recipe = require "luagan.recipe"
local dcgan = recipe.find("dcgan")
assert(dcgan and dcgan:sub(1, #tree + 1) == tree .. "/", "dcgan recipe not found in the tree: " .. tostring(dcgan))
print("recipe dcgan " .. dcgan)
local out = os.tmpname()
os.remove(out)
local _, info = lg.train.run("toy2d", {"--steps", "20", "--out", out, "--quiet", "--sample-every", "0",
                                       "--threads", "1"})
assert(info.step == 20, "toy2d ran " .. tostring(info.step) .. " steps")
local last
for line in io.lines(out .. "/metrics.jsonl") do last = line end
local rate = tonumber(last:match('"steps_per_s":([%d%.e%+%-]+)'))
assert(rate and rate > 0 and rate < 1e6, "steps_per_s from the clock: " .. tostring(rate))
print(string.format("toy2d from the rock: 20 steps, %.0f steps/s logged", rate))
os.execute("rm -rf '" .. out .. "'")
print("ok")
