-- nn.MinibatchDiscrimination's data-dependent start under mpirun -np N: every
-- rank starts it from its own batch, and afterwards the ranks must hold the
-- same scale and bias (their statistics averaged), or the replicas of a
-- data-parallel D would differ from the first step on. The scale must be the
-- ranks' mean: 2 / s_b is the mean over ranks of half each rank's mean
-- nearest-neighbour distance. Prints "ok mbd N" on rank 0 when all held.
local lg = require "luagan"
local nn, dist = lg.nn, lg.dist
local rank, size = dist.init()

lg.manual_seed(1)
local mb = nn.MinibatchDiscrimination(6, 3, 2)
dist.broadcast_module(mb)
lg.manual_seed(100 + rank)                          -- another batch on every rank
local x = lg.randn(5, 6)
-- this rank's half mean nearest-neighbour distance per kernel, by loops
local M = lg.matmul(x, mb.T):totable()
local half = {}
for b = 1, 3 do
  local sum = 0
  for i = 1, 5 do
    local m = math.huge
    for j = 1, 5 do
      if j ~= i then
        local d = 0
        for c = 1, 2 do d = d + math.abs(M[i][(b - 1) * 2 + c] - M[j][(b - 1) * 2 + c]) end
        m = math.min(m, d)
      end
    end
    sum = sum + m
  end
  half[b] = sum / 5 / 2
end
local mean_half = dist.allreduce(lg.tensor(half), {op = "mean"}):totable()
mb(x)
assert(mb.initialised:item() == 1, "rank " .. rank .. ": the start did not run")
for _, name in ipairs{"log_scale", "bias"} do
  local t = mb[name]
  local avg = dist.allreduce(t:clone(), {op = "mean"})
  assert((t - avg):abs():max():item() == 0, "rank " .. rank .. ": " .. name .. " differs between the ranks")
end
local s = mb.log_scale:exp():totable()
for b = 1, 3 do
  assert(math.abs(s[b] * mean_half[b] - 1) < 1e-4,
         string.format("rank %d, kernel %d: scale %g is not 1 / the ranks' mean %g", rank, b, s[b], mean_half[b]))
end
dist.barrier()
if dist.is_main() then print("ok mbd " .. size) end
