-- Allreduce bandwidth: lg.dist's gradient allreduce (dist.allreduce_grads:
-- the agreement check, packing into reused buckets of LUAGAN_DIST_BUCKET_MB,
-- the sum, the mean and the copies back) against one plain MPI_Allreduce of
-- the same bytes in one reused buffer (luagan.mpi.allreduce_), at sizes
-- around the 25 MiB bucket and glibc's 32 MiB mmap threshold.
--
--   mpirun -np 2 --bind-to none -x OMP_NUM_THREADS=1 build/luagan bench/dist_allreduce.lua [MB...]
--
-- Prints one row per size on rank 0: the median time of R calls after one
-- warm-up, and the bus bandwidth 2 (N-1)/N x bytes / time (the convention of
-- nccl-tests: what each rank's link carries in a ring allreduce).
local lg = require "luagan"
local dist = lg.dist
local rank, size = dist.init{force = true}
local mpi = require "luagan.mpi"

local sizes = {}
for i = 1, #arg do sizes[i] = assert(tonumber(arg[i]), "sizes in MB") end
if #sizes == 0 then sizes = {1, 4, 16, 25, 32, 40, 53, 100} end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local function timeit(reps, fn)
  fn()                                   -- warm-up: buffers made, connections up
  local t = {}
  for k = 1, reps do
    dist.barrier()
    local t0 = mpi.wtime()
    fn()
    t[k] = mpi.wtime() - t0
  end
  -- the slowest rank's time is the collective's
  return dist.allreduce_number(median(t), "max")
end

if rank == 0 then
  print(string.format("lg.dist allreduce vs plain MPI_Allreduce, %d ranks, bucket %g MiB (%s)", size,
                      dist.bucket_mb(), (mpi.library_version():match("^[^\n,]*"))))
  print(string.format("%8s %12s %12s %12s %12s %8s", "MB", "plain ms", "plain GB/s", "lg.dist ms",
                      "lg.dist GB/s", "ratio"))
end
for _, mb in ipairs(sizes) do
  local n = math.floor(mb * 1e6 / 4)
  local reps = mb <= 16 and 20 or 7
  local buf = lg.ones(n)
  local plain = timeit(reps, function() mpi.allreduce_(buf, "sum", false) end)
  -- the same bytes as parameters of a model: tensors of at most 1M elements
  local params = {}
  local left = n
  while left > 0 do
    local k = math.min(left, 1 << 20)
    local p = lg.zeros(k, {requires_grad = true})
    p.grad = lg.ones(k)
    params[#params + 1] = p
    left = left - k
  end
  local ours = timeit(reps, function() dist.allreduce_grads(params) end)
  local bus = 2 * (size - 1) / size * n * 4 / 1e9
  if rank == 0 then
    print(string.format("%8.1f %12.2f %12.2f %12.2f %12.2f %8.2f", n * 4 / 1e6, plain * 1e3, bus / plain,
                        ours * 1e3, bus / ours, ours / plain))
    io.stdout:flush()
  end
  buf, params = nil, nil
  collectgarbage()
end
