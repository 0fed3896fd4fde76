-- DataLoader{shard = ...}: on one process (every rank simulated with an
-- explicit {rank, size}) and under mpirun -np N (shard = true, the ranks'
-- slices gathered). Checks that the ranks' slices of each global batch, in
-- rank order, are the batch one process draws with batch size N x b, over
-- two epochs, with and without drop_last; and that a position saved at one
-- number of ranks resumes at another where one process would continue.
-- Prints "ok shard N" on rank 0 when all checks passed.
local lg = require "luagan"
local data, dist = lg.data, lg.dist
local rank, size = dist.init()

local function check(cond, what)
  if not cond then error(string.format("shard (rank %d): %s", rank, what), 0) end
end

local n = 37
local x = lg.arange(1, n + 1):reshape(n, 1)    -- sample i holds the value i
local y = x:reshape(n) * 2

local function loader(b, o)
  o = o or {}
  return data.DataLoader({x, y}, {batch_size = b, shuffle = true, seed = 11,
                                  drop_last = o.drop_last, shard = o.shard})
end

-- the batches of one epoch as lists of sample numbers (x and y aligned)
local function epoch_lists(l, limit)
  local out = {}
  for bx, by in l:epoch() do
    local xs = bx:reshape(bx:shape()[1]):totable()
    local ys = by and by:totable()
    for i = 1, ys and #xs or 0 do check(ys[i] == 2 * xs[i], "x and y out of step") end
    out[#out + 1] = xs
    if limit and #out == limit then break end
  end
  return out
end

local function join(lists)
  local out = {}
  for _, l in ipairs(lists) do for _, v in ipairs(l) do out[#out + 1] = v end end
  return out
end

local function same(a, b, what)
  check(#a == #b, string.format("%s: %d batches/samples, expected %d", what, #a, #b))
  for i = 1, #a do
    if type(a[i]) == "table" then same(a[i], b[i], what .. " [" .. i .. "]")
    else check(a[i] == b[i], string.format("%s: item %d is %s, expected %s", what, i,
                                           tostring(a[i]), tostring(b[i]))) end
  end
end

-- one process, every rank simulated: rank slices joined = the global batch
for _, N in ipairs{1, 2, 3, 4} do
  for _, drop in ipairs{false, true} do
    local b = 4
    local ref = loader(N * b, {drop_last = drop})
    local ranks = {}
    for r = 0, N - 1 do ranks[r] = loader(b, {drop_last = drop, shard = {rank = r, size = N}}) end
    for e = 1, 2 do
      local want = epoch_lists(ref)
      -- a last batch of fewer samples than ranks: the sharded loaders drop it
      if #want[#want] < N then want[#want] = nil end
      local got = {}
      for r = 0, N - 1 do got[r] = epoch_lists(ranks[r]) end
      check(#ranks[0] == #want, string.format("np %d: #loader %d, %d batches drawn", N, #ranks[0], #want))
      for k = 1, #want do
        local parts = {}
        for r = 0, N - 1 do parts[#parts + 1] = got[r][k] or {} end
        same(join(parts), want[k], string.format("np %d drop_last %s epoch %d batch %d", N, drop, e, k))
      end
      for r = 0, N - 1 do check(#got[r] == #want, "every rank draws the same number of batches") end
    end
  end
end

-- a final global batch with fewer samples than ranks is dropped, not given to some ranks only
do
  local l = data.DataLoader(x:narrow(1, 1, 9), {batch_size = 2, shard = {rank = 3, size = 4}})
  local got = epoch_lists(l)
  check(#got == 1 and #l == 1, "9 samples at 4 x 2: one global batch, the ninth sample dropped")
end

-- resume on another number of ranks: 3 global batches of 2 x 4, then 4 ranks
-- of 2 (the same global batch) and 3 ranks of 3 (sample 24 is mid-batch for
-- 9): each continues where one process with its global batch does
do
  local a = loader(4, {shard = {rank = 0, size = 2}})
  epoch_lists(a, 3)
  local st = a:state_dict()
  check(st.sample == 24 and st.epoch == 1 and st.pos == 3, "position after 3 global batches of 8")
  for _, c in ipairs{{4, 2}, {3, 3}, {1, 5}} do
    local N, b = c[1], c[2]
    local ref = loader(N * b)
    ref:load_state_dict(st)
    local want = {epoch_lists(ref), epoch_lists(ref)}
    for e = 1, 2 do   -- a last batch of fewer samples than ranks: the sharded loaders drop it
      if #want[e][#want[e]] < N then want[e][#want[e]] = nil end
    end
    local got = {}
    for r = 0, N - 1 do
      local l = loader(b, {shard = {rank = r, size = N}})
      l:load_state_dict(st)
      got[r] = {epoch_lists(l), epoch_lists(l)}
    end
    for e = 1, 2 do
      for k = 1, #want[e] do
        local parts = {}
        for r = 0, N - 1 do parts[#parts + 1] = got[r][e][k] or {} end
        same(join(parts), want[e][k], string.format("resumed at np %d, epoch %d batch %d", N, e, k))
      end
    end
    -- the rest of epoch 1 then all of epoch 2: samples 25..37 of the order, then everything
    check(#join(want[1]) > n - 24 - N and #join(want[2]) > n - N, "resume covers the rest of the epoch")
  end
end

-- bad use
check(not pcall(loader, 4, {shard = {rank = 2, size = 2}}), "rank outside [0, size) is an error")
local ok, err = pcall(loader, 4, {shard = {rank = 0, size = 2, extra = 1}})
check(not ok and tostring(err):find("unknown option 'extra'", 1, true), "unknown shard key: " .. tostring(err))

-- under mpirun: shard = true follows lg.dist; gathered slices = the global batch
if size > 1 then
  local b = 3
  local mine = loader(b, {shard = true})
  local ref = loader(size * b, {drop_last = true})
  mine.drop_last = true
  for e = 1, 2 do
    local want = epoch_lists(ref)
    local k = 0
    for bx in mine:epoch() do
      k = k + 1
      local all = dist.allgather(bx:reshape(b))
      same(all:totable(), want[k], string.format("mpirun np %d epoch %d batch %d", size, e, k))
    end
    check(k == #want, "mpirun: every global batch")
  end
end

dist.barrier()
if dist.is_main() then print("ok shard " .. size) end
