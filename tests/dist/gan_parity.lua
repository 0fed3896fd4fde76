-- A small GAN with SyncBatchNorm in G and D, trained with the WGAN-GP
-- penalty (a double backward through SyncBatchNorm's allreduces), on a
-- global batch that every rank draws the same way and then slices. Run as
--   luagan tests/dist/gan_parity.lua STEPS GLOBAL_BATCH OUT
-- on 1 process or under mpirun -np N: rank 0 writes to OUT one line per
-- step (the global losses) and G's output on fixed noise at the end, so the
-- runs can be compared line by line (tests/lua/test_dist.lua).
-- The nets avoid gradients that are exactly zero on one process but rounding
-- noise on several (a bias whose shift batch norm removes: before BN in G,
-- and on G's output, which D's first batch norm sees; piecewise-linear
-- activations in D): Adam turns such noise into steps of about lr, which
-- would make the runs differ for reasons that have nothing to do with MPI.
local lg = require "luagan"
local nn, optim, dist = lg.nn, lg.optim, lg.dist

local steps, B, out = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local rank, size = dist.init()
assert(B % size == 0, "the global batch must split evenly over the ranks")
local b = B // size

lg.manual_seed(1)
local G = nn.convert_sync_batchnorm(nn.Sequential{
  nn.Linear(4, 16, {bias = false}), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 6, {bias = false})})
local D = nn.convert_sync_batchnorm(nn.Sequential{
  nn.Linear(6, 16, {bias = false}), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1)})
dist.broadcast_module(G)
dist.broadcast_module(D)
local optG = optim.Adam(G:parameters(), {lr = 1e-3, betas = {0.5, 0.9}})
local optD = optim.Adam(D:parameters(), {lr = 1e-3, betas = {0.5, 0.9}})
local fixed_z = lg.randn(8, 4)

-- this rank's rows of a (B, ...) tensor every rank drew identically
local function mine(t) return t:narrow(1, rank * b + 1, b) end

local f = rank == 0 and assert(io.open(out, "w"))
for step = 1, steps do
  local real = mine(lg.randn(B, 6) * 0.5 + 1)
  local z = mine(lg.randn(B, 4))
  local eps = mine(lg.rand(B))
  local fake = G(z)
  local gp = lg.penalties.gradient_penalty(D, real, fake:detach(), {lambda = 10, eps = eps})
  local ld = D(fake:detach()):mean() - D(real):mean() + gp
  optD:zero_grad(); ld:backward(); optD:step()   -- step() averages over ranks
  local lgen = -D(G(z)):mean()
  optG:zero_grad(); lgen:backward(); optG:step()
  local gd, gg = dist.allreduce_number(ld:item(), "mean"), dist.allreduce_number(lgen:item(), "mean")
  if f then f:write(string.format("%d %.9g %.9g\n", step, gd, gg)) end
end
-- every rank must hold the same weights: compare a fingerprint of them
local sums = {}
for _, net in ipairs{G, D} do
  for _, p in ipairs(net:parameters()) do
    local v = p:detach():reshape(p:numel())
    for k = 1, v:size(1) do sums[#sums + 1] = string.format("%a", v[k]) end
  end
end
local same = dist.same(table.concat(sums, ","))
-- OUT.weights: the exact weights, and how many gradient buckets overlapped
-- their allreduce with the backward pass (tests compare overlap on and off)
if rank == 0 then
  local w = assert(io.open(out .. ".weights", "w"))
  w:write(table.concat(sums, ","), "\n")
  w:close()
  local st = dist.overlap_stats()
  print(string.format("overlap: early %d used %d redone %d", st.early, st.used, st.redone))
end
G:eval()
local y = G(fixed_z)
if f then
  f:write(same and "weights: same on every rank\n" or "weights: DIFFER between ranks\n")
  for i = 1, y:size(1) do
    local row = {}
    for j = 1, y:size(2) do row[j] = string.format("%.9g", y[i][j]) end
    f:write(table.concat(row, " "), "\n")
  end
  f:close()
end
