-- Collectives under mpirun -np N: each rank checks the results against
-- values it computes itself; the first failure is an error (non-zero exit).
-- With EXACT=1 in the environment, sums must equal the in-process sum in rank
-- order bit for bit. Prints "ok N" on rank 0 when all checks passed.
local lg = require "luagan"
local dist = lg.dist
local rank, size = dist.init()

local function check(cond, what)
  if not cond then error(string.format("rank %d: %s", rank, what), 0) end
end

-- every rank can compute every rank's input: seed by rank
local function input(r, n)
  lg.manual_seed(100 + r)
  return lg.randn(n)
end

check(dist.exact() == (os.getenv("LUAGAN_DIST_EXACT") == "1"), "exact mode follows LUAGAN_DIST_EXACT")

local n = 1000
local mine = input(rank, n)

-- sum, mean, max, min against the in-process reduction in rank order
local sum, mx, mn = input(0, n), input(0, n), input(0, n)
for r = 1, size - 1 do
  local x = input(r, n)
  sum = sum + x
  mx = lg.maximum(mx, x)
  mn = lg.minimum(mn, x)
end
local function maxdiff(a, b) return (a - b):abs():max():item() end

local t = mine:clone(); dist.allreduce(t)
if dist.exact() then check(maxdiff(t, sum) == 0, "exact sum is not bit-identical")
else check(maxdiff(t, sum) < 1e-5, "sum") end
t = mine:clone(); dist.allreduce(t, {op = "mean"})
check(maxdiff(t, sum * (1 / size)) < 1e-5, "mean")
t = mine:clone(); dist.allreduce(t, {op = "max"}); check(maxdiff(t, mx) == 0, "max")
t = mine:clone(); dist.allreduce(t, {op = "min"}); check(maxdiff(t, mn) == 0, "min")

-- a non-contiguous view is reduced in place too
local m = lg.ones(4, 3):t()
dist.allreduce(m)
check(maxdiff(m, lg.full({3, 4}, size)) == 0, "non-contiguous allreduce")

-- broadcast from the last rank; allgather in rank order
t = mine:clone(); dist.broadcast(t, size - 1)
check(maxdiff(t, input(size - 1, n)) == 0, "broadcast")
local g = dist.allgather(lg.full({2, 3}, rank))
check(g:size(1) == 2 * size and g:size(2) == 3, "allgather shape")
for r = 0, size - 1 do check(g[2 * r + 1][1] == r and g[2 * r + 2][3] == r, "allgather order") end

-- numbers, and a module broadcast from rank 0
check(dist.allreduce_number(rank, "sum") == size * (size - 1) / 2, "allreduce_number")
lg.manual_seed(rank)                     -- different weights on every rank
local net = lg.nn.Sequential{lg.nn.Linear(3, 4), lg.nn.BatchNorm1d(4)}
net[2].running_mean:fill_(rank)
dist.broadcast_module(net)
lg.manual_seed(0)
local ref = lg.nn.Sequential{lg.nn.Linear(3, 4), lg.nn.BatchNorm1d(4)}
check(maxdiff(net[1].weight, ref[1].weight) == 0, "broadcast_module parameters")
check(maxdiff(net[2].running_mean, lg.zeros(4)) == 0, "broadcast_module buffers")

-- gradients: mean over ranks, in buckets
local p = lg.zeros(5, {requires_grad = true})
p.grad = lg.full({5}, rank + 1)
local q = lg.zeros(2, {requires_grad = true})    -- no gradient on any rank: skipped
dist.allreduce_grads({p, q})
check(maxdiff(p.grad, lg.full({5}, (size + 1) / 2)) < 1e-6, "allreduce_grads mean")
check(q.grad == nil, "a parameter without gradients stays without")

-- gradients of every kind with a small bucket (0.5 MiB = 131072 floats): a
-- large contiguous one (reduced in place, in 3 slices), a large
-- non-contiguous one (alone in a bucket larger than the limit), and small
-- ones packed together; each must become the mean of every rank's values
dist.set_bucket_mb(0.5)
check(dist.bucket_mb() == 0.5, "set_bucket_mb")
local function grad_of(r, shape, k)
  lg.manual_seed(1000 * k + r)
  return lg.randn(table.unpack(shape))
end
local shapes = {{300000}, {600, 400}, {7}, {3, 5}, {1000}, {2, 2, 2}}
local ps = {}
for k, shape in ipairs(shapes) do
  local p = lg.zeros(table.unpack(shape)):requires_grad_()
  p.grad = grad_of(rank, shape, k)
  if k == 2 then p.grad = grad_of(rank, {400, 600}, k):t() end   -- not contiguous
  ps[k] = p
end
dist.allreduce_grads(ps)
for k, shape in ipairs(shapes) do
  local want = k == 2 and grad_of(0, {400, 600}, k):t() or grad_of(0, shape, k)
  for r = 1, size - 1 do
    want = want + (k == 2 and grad_of(r, {400, 600}, k):t() or grad_of(r, shape, k))
  end
  want = want * (1 / size)
  check(maxdiff(ps[k].grad, want) < 1e-5, "allreduce_grads, gradient " .. k .. " of shape " ..
        table.concat(shape, "x"))
end
dist.set_bucket_mb(nil)
check(dist.bucket_mb() == 25, "the default bucket is 25 MiB")
check(not pcall(dist.set_bucket_mb, 0), "a bucket of 0 MiB is an error")

dist.barrier()
if dist.is_main() then print("ok " .. size) end
