-- Overlapped gradient allreduce under mpirun -np N (run with a small
-- LUAGAN_DIST_BUCKET_MB so the nets make several buckets): after each
-- pattern of backward calls, allreduce_grads(optimizer) must give exactly
-- the mean that a blocking allreduce of the same gradients gives, whether
-- the overlapped buckets were used or had to be redone. Prints
-- "ok overlap N" on rank 0 when all checks passed; the first failure is an
-- error (non-zero exit).
local lg = require "luagan"
local nn, optim, dist = lg.nn, lg.optim, lg.dist
local rank, size = dist.init()

local function check(cond, what)
  if not cond then error(string.format("rank %d: %s", rank, what), 0) end
end

lg.manual_seed(3)
-- a middle layer that the loss may skip (a parameter without a gradient)
local net = nn.Sequential{nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 12), nn.Tanh(), nn.Linear(12, 3)}
local spare = nn.Linear(12, 12)
local params = net:parameters()
table.insert(params, 3, spare.weight)        -- between the layers, in the optimizer's order
dist.broadcast_module(net)
dist.broadcast_module(spare)
local opt = optim.SGD(params, {lr = 0.1})

lg.manual_seed(10 + rank)                     -- each rank its own data
local function loss_of(x, use_spare)
  local h = net[2](net[1](x))
  if use_spare then h = h + spare(h) * 0.1 end
  return net[5](net[4](net[3](h))):pow(2):mean()
end

-- the mean over ranks of each gradient, by the blocking collective
local function expected()
  local out = {}
  for i, p in ipairs(params) do
    out[i] = p.grad and dist.allreduce(p.grad:detach():clone(), {op = "mean"}) or false
  end
  return out
end

local function same_as(want, what)
  dist.allreduce_grads(opt)
  for i, p in ipairs(params) do
    if want[i] then
      check(p.grad ~= nil, what .. ": parameter " .. i .. " lost its gradient")
      local d = (p.grad - want[i]):abs():max():item()
      check(d == 0, string.format("%s: parameter %d differs from the blocking mean by %g", what, i, d))
    else
      check(p.grad == nil, what .. ": parameter " .. i .. " got a gradient")
    end
  end
end

local function stats() return dist.overlap_stats() end

-- the first reduction makes the optimizer's group (blocking)
opt:zero_grad(); loss_of(lg.randn(4, 5), true):backward(); dist.allreduce_grads(opt)

-- 1. one backward: every bucket starts during it and is used
local s0 = stats()
for _ = 1, 3 do
  opt:zero_grad()
  loss_of(lg.randn(4, 5), true):backward()
  same_as(expected(), "one backward")
end
local s1 = stats()
check(s1.early > s0.early and s1.used - s0.used == s1.early - s0.early and s1.redone == s0.redone,
      string.format("one backward: buckets started early %d, used %d, redone %d",
                    s1.early - s0.early, s1.used - s0.used, s1.redone - s0.redone))
check((s1.early - s0.early) % 3 == 0 and (s1.early - s0.early) // 3 >= 2, "several buckets per step")

-- 2. two backward calls before the step: the second adds into the
-- gradients already sent, so those buckets are redone
opt:zero_grad()
loss_of(lg.randn(4, 5), true):backward()
loss_of(lg.randn(4, 5), true):backward()
same_as(expected(), "two backward calls")
local s2 = stats()
check(s2.redone > s1.redone, "two backward calls: nothing was redone")

-- 3. a gradient changed in place after its backward (clipping): redone
opt:zero_grad()
loss_of(lg.randn(4, 5), true):backward()
lg.no_grad(function() params[#params].grad:mul_(0.5) end)
same_as(expected(), "clipped after backward")
check(stats().redone > s2.redone, "clipped after backward: nothing was redone")

-- 4. a parameter without a gradient (on every rank): its bucket never
-- completes; the buckets after it go the blocking way
opt:zero_grad()
loss_of(lg.randn(4, 5), false):backward()
same_as(expected(), "a parameter without a gradient")

-- 5. the ranks see the gradients in different orders (two losses summed in
-- rank-dependent order, so the engine reaches the leaves differently)
opt:zero_grad()
local a, b = loss_of(lg.randn(4, 5), true), loss_of(lg.randn(4, 5), true)
;(rank % 2 == 0 and a + b or b + a):backward()
same_as(expected(), "different orders on different ranks")

-- 6. gradients from lg.grad, set by hand: nothing started, all blocking
opt:zero_grad()
local l = loss_of(lg.randn(4, 5), true)
local gs = lg.grad(l, params, {allow_unused = true})
for i, p in ipairs(params) do p.grad = gs[i] end
same_as(expected(), "lg.grad")

-- 7. a gradient penalty (double backward) in the loss, as WGAN-GP's
opt:zero_grad()
local x = lg.randn(4, 5):requires_grad_()
local lx = loss_of(x, true)
local gx = lg.grad(lx, {x}, {create_graph = true})[1]
;(lx + gx:pow(2):sum()):backward()
same_as(expected(), "gradient penalty")

-- 8. optimizer steps stay in step on every rank
opt:zero_grad(); loss_of(lg.randn(4, 5), true):backward(); opt:step()
local w = {}
for i, p in ipairs(params) do w[i] = string.format("%a", p:detach():sum():item()) end
check(dist.same(table.concat(w, ",")), "weights differ between ranks after a step")

if rank == 0 then print("ok overlap " .. size) end
