-- lg.dist: on one process (always), and under mpirun with 2 and 4 ranks when
-- Open MPI and the luagan.mpi module are there (skipped with a message
-- otherwise): collectives against values every rank computes itself, exact
-- sums bit for bit, a GAN with SyncBatchNorm and a WGAN-GP penalty on N ranks
-- x b samples against one process on N*b, a divergent branch that must fail
-- rather than hang.
local T = ...
local lg = require "luagan"
local nn, dist = lg.nn, lg.dist

local function maxdiff(a, b) return (a - b):abs():max():item() end

T.test("one process: rank 0 of 1, collectives are the identity", function()
  T.eq(dist.launched(), false)
  local r, n = dist.init()
  T.eq(r, 0); T.eq(n, 1); T.eq(dist.is_main(), true)
  local t = lg.arange(5)
  T.close(dist.allreduce(t:clone(), {op = "mean"}), t, 0)
  T.close(dist.broadcast(t:clone(), 0), t, 0)
  T.shape(dist.allgather(lg.ones(2, 3)), {2, 3})
  T.eq(dist.allreduce_number(3.5), 3.5)
  dist.barrier()
  T.errors(function() dist.allreduce(t, {opp = "sum"}) end, "unknown option 'opp'")
  T.errors(function() dist.allreduce(t, {op = "prod"}) end, "op must be one of")
  T.errors(function() dist.broadcast(t, 1) end, "root must be a rank in [0, 1)")
  T.errors(function() dist.allreduce(3) end, "expected a tensor, got number")
  T.errors(function() dist.init{overlap = "yes"} end, "overlap must be true or false, got yes")
  dist.init()
  T.eq(dist.overlapping(), false)
  T.eq(dist.overlap_stats().early, 0)
end)

T.test("SyncBatchNorm on one process computes what BatchNorm does, to second order", function()
  lg.manual_seed(1)
  local bn = nn.BatchNorm2d(3)
  local sbn = nn.convert_sync_batchnorm(nn.Sequential{nn.BatchNorm2d(3)})
  T.eq(sbn[1].__name, "SyncBatchNorm")
  local x = lg.randn(4, 3, 5, 5, {requires_grad = true})
  local w = lg.randn(4, 3, 5, 5)
  local y1, y2 = bn(x), sbn(x)
  T.ok(maxdiff(y1, y2) < 1e-5, "forward")
  local g1 = lg.grad((y1 * w):sum(), {x}, {create_graph = true})[1]
  local g2 = lg.grad((y2 * w):sum(), {x}, {create_graph = true})[1]
  T.ok(maxdiff(g1, g2) < 1e-5, "gradient")
  local h1 = lg.grad((g1 * g1):sum(), {x})[1]
  local h2 = lg.grad((g2 * g2):sum(), {x})[1]
  T.ok(maxdiff(h1, h2) < 1e-4 * (1 + h1:abs():max():item()), "second order")
  T.ok(maxdiff(bn.running_mean, sbn[1].running_mean) < 1e-6, "running mean")
  T.ok(maxdiff(bn.running_var, sbn[1].running_var) < 1e-6, "running variance")
  bn:eval(); sbn:eval()
  T.ok(maxdiff(bn(x), sbn(x)) < 1e-5, "eval mode")
end)

T.test("convert_sync_batchnorm keeps the state and settings; bad use is an error", function()
  lg.manual_seed(2)
  local net = nn.Sequential{nn.Linear(3, 4), nn.BatchNorm1d(4, {momentum = 0.3, eps = 1e-3})}
  net(lg.randn(8, 3))
  local before = net:state_dict()
  local keep = {}
  for k, v in pairs(before) do keep[k] = v:clone() end
  nn.convert_sync_batchnorm(net)
  T.eq(net[2].__name, "SyncBatchNorm")
  T.eq(net[2].momentum, 0.3); T.eq(net[2].eps, 1e-3)
  for k, v in pairs(net:state_dict()) do T.close(v, keep[k], 0) end
  T.errors(function() nn.SyncBatchNorm(4, {momentun = 0.1}) end, "unknown option 'momentun'")
  T.errors(function() nn.SyncBatchNorm(0) end, "nn.SyncBatchNorm: num_features must be an integer >= 1, got 0")
  T.errors(function() nn.SyncBatchNorm(4)(lg.randn(2, 5)) end, "expected input with 4 channels")
end)

-- ---- under mpirun ------------------------------------------------------------
local H = dofile("tests/dist/harness.lua")(T)
local exe, tmpdir, MPI_ENV, mpirun, mpi_test = H.exe, H.tmpdir, H.MPI_ENV, H.mpirun, H.mpi_test

for _, np in ipairs{2, 4} do
  mpi_test("collectives at np " .. np, function()
    local out, ok = mpirun(np, "collectives.lua")
    T.ok(ok and out:find("ok " .. np, 1, true), out)
  end)
  mpi_test("exact sums at np " .. np .. " are the in-process sum in rank order, bit for bit", function()
    local out, ok = mpirun(np, "collectives.lua", "", "LUAGAN_DIST_EXACT=1")
    T.ok(ok and out:find("ok " .. np, 1, true), out)
  end)
end

T.test("DataLoader{shard}: rank slices make the global batch; resume on another rank count", function()
  local ok, err = pcall(dofile, "tests/dist/shard.lua")
  T.ok(ok, tostring(err))
end)

mpi_test("DataLoader{shard = true} at np 2: the gathered slices are the global batch", function()
  local out, ok = mpirun(2, "shard.lua")
  T.ok(ok and out:find("ok shard 2", 1, true), out)
end)

mpi_test("MinibatchDiscrimination's data-dependent start at np 2: the ranks agree on the averaged start", function()
  local out, ok = mpirun(2, "mbd_init.lua")
  T.ok(ok and out:find("ok mbd 2", 1, true), out)
end)

local function read_lines(path)
  local out = {}
  for l in io.lines(path) do out[#out + 1] = l end
  return out
end

mpi_test("a GAN with SyncBatchNorm and WGAN-GP: N ranks x b = 1 process x N*b", function()
  local d = tmpdir()
  local steps, batch = 32, 8
  local one = d .. "/np1.txt"
  local ok1 = os.execute(string.format("timeout -k 10 120 '%s' tests/dist/gan_parity.lua %d %d '%s'",
                                       exe, steps, batch, one))
  T.ok(ok1, "the one-process run")
  local ref = read_lines(one)
  T.eq(#ref, steps + 1 + 8)
  for _, np in ipairs{2, 4} do
    local f = string.format("%s/np%d.txt", d, np)
    -- with the overlapped gradient allreduce (off by default on one host)
    local out, ok = mpirun(np, "gan_parity.lua", string.format("%d %d '%s'", steps, batch, f),
                           "LUAGAN_DIST_OVERLAP=1")
    T.ok(ok, out)
    local got = read_lines(f)
    T.eq(#got, #ref)
    T.eq(got[steps + 1], "weights: same on every rank")
    local worst = 0
    for i = 1, #ref do
      if i ~= steps + 1 then
        local a, b = {}, {}
        for v in ref[i]:gmatch("%S+") do a[#a + 1] = tonumber(v) end
        for v in got[i]:gmatch("%S+") do b[#b + 1] = tonumber(v) end
        T.eq(#a, #b)
        for k = 1, #a do
          worst = math.max(worst, math.abs(a[k] - b[k]) / math.max(1, math.abs(a[k])))
        end
      end
    end
    T.ok(worst < 1e-6, string.format("np %d: losses and outputs differ by %.3g (relative)", np, worst))
  end
  os.execute("rm -rf '" .. d .. "'")
end)

-- Overlapped gradient allreduce (small buckets, so the nets make several):
-- buckets start during the backward pass, and the run equals the
-- non-overlapped one bit for bit (a sum of 2 does not depend on order).
mpi_test("overlap at np 2: buckets start during backward; bit for bit the blocking run", function()
  local d = tmpdir()
  local runs = {}
  for _, ov in ipairs{"1", "0"} do
    local f = string.format("%s/ov%s.txt", d, ov)
    local out, ok = mpirun(2, "gan_parity.lua", "12 8 '" .. f .. "'",
                           "LUAGAN_DIST_OVERLAP=" .. ov .. " LUAGAN_DIST_BUCKET_MB=0.0004")
    T.ok(ok, out)
    local early, used, redone = out:match("overlap: early (%d+) used (%d+) redone (%d+)")
    runs[ov] = {early = tonumber(early), used = tonumber(used), redone = tonumber(redone),
                lines = table.concat(read_lines(f), "\n"), weights = read_lines(f .. ".weights")[1]}
  end
  -- 11 steps after the one that makes the groups, G and D two buckets each
  T.eq(runs["1"].early, 44, "buckets started during backward")
  T.eq(runs["1"].used, 44); T.eq(runs["1"].redone, 0)
  T.eq(runs["0"].early, 0)
  T.ok(runs["1"].lines == runs["0"].lines, "losses and outputs differ with overlap on and off")
  T.ok(runs["1"].weights == runs["0"].weights, "weights differ with overlap on and off")
  os.execute("rm -rf '" .. d .. "'")
end)

for _, np in ipairs{2, 4} do
  mpi_test("overlap at np " .. np .. ": every backward pattern gives the blocking mean exactly", function()
    local out, ok = mpirun(np, "overlap.lua", "", "LUAGAN_DIST_OVERLAP=1 LUAGAN_DIST_BUCKET_MB=0.0008")
    T.ok(ok and out:find("ok overlap " .. np, 1, true), out)
  end)
end

mpi_test("overlap in luagan run: dcgan trains 3 steps at np 2 with it", function()
  local d = tmpdir()
  local out, ok = H.mpirun_args(2, "run dcgan --steps 3 --batch 8 --limit 64 --threads 1 --quiet " ..
                                "--log-every 1 --sample-every 0 --ckpt-every 0 --out '" .. d .. "/run'",
                                "LUAGAN_DIST_OVERLAP=1 LUAGAN_DIST_PROFILE=1")
  T.ok(ok, out)
  T.ok(out:find("dist profile, steps 3%-3"), out)
  os.execute("rm -rf '" .. d .. "'")
end)

mpi_test("a branch on a rank-local value fails with an error naming it, not a hang", function()
  local out, ok = mpirun(2, "diverge.lua")
  T.ok(not ok, "non-zero exit")
  T.ok(out:find("dist.allreduce: the ranks disagree", 1, true), out)
  T.ok(not out:find("unreachable", 1, true), out)
end)

mpi_test("a rank that stops calling collectives: the watchdog ends every rank, naming the wait", function()
  local t0 = os.time()
  local out, ok = mpirun(2, "stall.lua", "", "LUAGAN_DIST_TIMEOUT=2")
  T.ok(not ok, "non-zero exit")
  T.ok(out:find("rank 1 waited 2 s in barrier for the other ranks", 1, true), out)
  -- when mpirun runs into its timeout instead, its output says which rank was left
  local took = os.time() - t0
  T.ok(took < 50, "ended by the watchdog, not by the test's timeout (" .. took .. " s):\n" .. out)
end)

mpi_test("mpirun -np 2 luagan run dcgan: one valid checkpoint, resumable on another rank count", function()
  local d = tmpdir()
  local cmd = string.format(MPI_ENV .. "OMP_NUM_THREADS=1 LUAGAN_DIST_PROFILE=1 " ..
    "%s -np 2 -x LUAGAN_DIST_PROFILE '%s' run dcgan " ..
    "--steps 4 --batch 8 --limit 64 --threads 1 --quiet --sample-every 0 --out '%s/run' 2>&1",
    H.mpirun_cmd(120), exe, d)
  local p = io.popen(cmd); local out = p:read("a"); local ok = p:close()
  T.ok(ok, out)
  -- LUAGAN_DIST_PROFILE: one line from rank 0 splitting the step
  local _, lines = out:gsub("dist profile, steps 1%-4, ms per step %(mean of 2 ranks%): step [%d.]+ = " ..
                            "compute [-%d.]+ %+ wait [%d.]+ %+ comm [%d.]+ %+ copy [%d.]+; allreduce [%d.]+ MB", "")
  T.eq(lines, 1, out)
  local ck = lg.io.load_checkpoint(d .. "/run/checkpoint.safetensors")
  T.eq(ck.train.step, 4)
  local n = 0
  for _ in io.lines(d .. "/run/metrics.jsonl") do n = n + 1 end
  T.ok(n >= 1 and n <= 4, "one metrics log, written by rank 0 alone: " .. n .. " records")
  for _, f in ipairs(lg.core.listdir(d .. "/run")) do
    T.ok(not f:find("%.tmp"), "no temporary left: " .. f)
  end
  -- resume on one process, two steps more
  local p2 = io.popen(string.format("'%s' run dcgan --resume '%s/run/checkpoint.safetensors' --steps 6 " ..
                                    "--quiet --threads 1 --out '%s/run' 2>&1", exe, d, d))
  local out2 = p2:read("a"); T.ok(p2:close(), out2)
  T.eq(lg.io.load_checkpoint(d .. "/run/checkpoint.safetensors").train.step, 6)
  os.execute("rm -rf '" .. d .. "'")
end)
