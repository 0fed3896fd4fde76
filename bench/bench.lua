-- bench/bench.lua: luagan against PyTorch on the reference GAN training steps
-- (bench/models.lua, bench/torch_models.py) and the op microbenchmarks.
--
--   build/luagan bench/bench.lua [options]
--     --rounds N       timed rounds per model and side, alternating (3)
--     --secs S         seconds per round (2)
--     --threads N      luagan threads (lg.set_num_threads; 2)
--     --models a,b     subset of mlp_gan,dcgan28,wgangp_dcgan28
--     --no-torch       luagan only (also automatic when torch does not import)
--     --no-micro       skip the op microbenchmarks
--     --torch-threads N  skip PyTorch's thread trial and use N threads
--
-- Every round is a fresh worker process (this script with --worker, or
-- python3 bench/torch_models.py), so each side's peak memory (VmHWM) is that of
-- a process that ran one model. A round warms up with 2 steps, then times
-- single steps for S seconds (at least 3). steps/s median/min/max are over
-- all timed steps of all rounds. PyTorch runs in its faster configuration of
-- 1 and 2 threads, chosen per model by a short trial round of each.
local lg = require "luagan"

local function vmhwm()
  local f = io.open("/proc/self/status")
  if f then
    for line in f:lines() do
      local kb = line:match("^VmHWM:%s*(%d+)")
      if kb then f:close(); return tonumber(kb) * 1024 end
    end
    f:close()
  end
  return lg.peak_rss()
end

local function here()
  local src = debug.getinfo(1, "S").source:sub(2)
  return src:match("^(.*)/[^/]*$") or "."
end

-- ---------------------------------------------------------------------------
-- worker: one round of one model (or the micro suite) in this process
-- Samples of seconds per call (wall, and CPU of all threads), each over reps calls.
local function time_calls(fn, secs, reps)
  fn()
  local samples, cpu, t_end = {}, {}, lg.clock() + secs
  while lg.clock() < t_end or #samples < 3 do
    local t0, c0 = lg.clock(), os.clock()
    for _ = 1, reps do fn() end
    samples[#samples + 1] = (lg.clock() - t0) / reps
    cpu[#cpu + 1] = (os.clock() - c0) / reps
  end
  return samples, cpu
end

local function worker(what, secs, threads)
  local M = dofile(here() .. "/models.lua")
  local io_ = require "luagan.io"
  lg.set_num_threads(threads)
  lg.manual_seed(1)
  local out = {side = "luagan", what = what, threads = lg.get_num_threads()}
  if what == "micro" then
    local res = {}
    for _, case in ipairs(M.micro) do
      local fn = case[2]()
      local reps = case[1]:match("^add") and 1000 or 1
      local w, c = time_calls(fn, secs, reps)
      res[#res + 1] = {name = case[1], times = w, cpu_times = c}
      collectgarbage()
    end
    out.micro = res
  elseif what == "sgemm" then
    -- The machine's sgemm peak through luagan's own matmul (one cblas_sgemm
    -- of 2048^3), the best of 10: the rate when the cores are ours.
    local n = 2048
    local a, b = lg.randn(n, n), lg.randn(n, n)
    local best = math.huge
    lg.no_grad(function()
      lg.matmul(a, b)
      for _ = 1, 10 do
        local t0 = lg.clock()
        local c = lg.matmul(a, b)
        best = math.min(best, lg.clock() - t0)
        c = nil
      end
    end)
    out.gflops = 2 * n * n * n / best / 1e9
    out.blas = lg.blas_corename()
  else
    local m = M.models[what] or error("unknown model " .. what)
    local step = m.build()
    step(); step()
    local times, t_end = {}, lg.clock() + secs
    local cpu = {}
    local allocs0 = lg.mem_sys_allocs()
    while lg.clock() < t_end or #times < 3 do
      local t0, c0 = lg.clock(), os.clock()
      step()
      times[#times + 1] = lg.clock() - t0
      cpu[#cpu + 1] = os.clock() - c0      -- CPU seconds of all threads
    end
    out.times, out.cpu_times = times, cpu
    out.sys_allocs_per_step = (lg.mem_sys_allocs() - allocs0) / #times
  end
  out.peak_rss = vmhwm()
  print("RESULT " .. io_.json_encode(out))
end

-- ---------------------------------------------------------------------------
-- driver
local function parse_args(a)
  local o = {rounds = 3, secs = 2, threads = 2, torch = true, micro = true, micro_secs = 0.4}
  local i = 1
  while i <= #a do
    local k = a[i]
    if k == "--rounds" then o.rounds = tonumber(a[i + 1]); i = i + 1
    elseif k == "--secs" then o.secs = tonumber(a[i + 1]); i = i + 1
    elseif k == "--threads" then o.threads = tonumber(a[i + 1]); i = i + 1
    elseif k == "--torch-threads" then o.torch_threads = tonumber(a[i + 1]); i = i + 1
    elseif k == "--models" then
      o.models = {}
      for m in a[i + 1]:gmatch("[^,]+") do o.models[#o.models + 1] = m end
      i = i + 1
    elseif k == "--no-torch" then o.torch = false
    elseif k == "--no-micro" then o.micro = false
    else error("bench: unknown option " .. k .. " (see the header of bench/bench.lua)", 0) end
    i = i + 1
  end
  return o
end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Run a worker command, return its RESULT table (error with its output otherwise).
local function run_worker(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local text = p:read("a")
  p:close()
  local js = text:match("RESULT (%b{})")
  if not js then error("bench: worker failed: " .. cmd .. "\n" .. text, 0) end
  return require("luagan.io").json_decode(js)
end

local function median(v)
  local t = {}
  for i, x in ipairs(v) do t[i] = x end
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

local function stats(times)
  local r = {}
  for i, t in ipairs(times) do r[i] = 1 / t end
  table.sort(r)
  local n = #r
  local med = n % 2 == 1 and r[(n + 1) // 2] or (r[n // 2] + r[n // 2 + 1]) / 2
  return {med = med, min = r[1], max = r[n], n = n}
end

local median_time = median

local function concat(dst, src) for _, v in ipairs(src) do dst[#dst + 1] = v end end

local function main(a)
  local o = parse_args(a)
  local exe = arg[-1] or "luagan"
  local self_path = here() .. "/bench.lua"
  local torch_py = here() .. "/torch_models.py"
  local M = dofile(here() .. "/models.lua")
  local models = o.models or M.model_order
  local has_torch = o.torch and os.execute("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1")
  local function lua_cmd(what, secs, thr)
    return string.format("%s %s --worker %s %g %d", sh_quote(exe), sh_quote(self_path), what, secs, thr)
  end
  local function torch_cmd(what, secs, thr)
    return string.format("/usr/bin/python3 %s %s %g %d", sh_quote(torch_py), what, secs, thr)
  end

  -- machine
  local cpu = io.popen("lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1"):read("l") or "?"
  local ncpu = io.popen("nproc"):read("l") or "?"
  local load = (io.open("/proc/loadavg") or {read = function() return "?" end}):read("l")
  print(string.format("machine: %s, %s CPUs; load average before: %s", cpu, ncpu, load))
  local peaks, blas = {}, nil
  for _, t in ipairs({1, o.threads}) do
    local r = run_worker(lua_cmd("sgemm", 0, t))
    peaks[t], blas = r.gflops, r.blas
  end
  local peak = peaks[o.threads]
  print(string.format("sgemm peak (luagan matmul 2048^3, OpenBLAS %s kernels): %.1f GFLOP/s on 1 thread, "
                      .. "%.1f on %d", blas, peaks[1], peak, o.threads))
  if not has_torch then print("PyTorch: not available (or --no-torch): luagan only") end

  local rows = {}
  for _, name in ipairs(models) do
    if not M.models[name] then error("bench: unknown model " .. name, 0) end
    local tthr = o.torch_threads
    if has_torch and not tthr then
      -- PyTorch's faster thread count for this model (short trial each)
      local best
      for _, t in ipairs({1, 2}) do
        local r = run_worker(torch_cmd(name, math.max(1, o.secs / 2), t))
        local s = stats(r.times).med
        io.write(string.format("  [%s] torch trial %d thread(s): %.2f steps/s\n", name, t, s))
        if not best or s > best then best, tthr = s, t end
      end
    end
    local lt, tt, lc, tc, lmem, tmem, allocs = {}, {}, {}, {}, 0, 0, 0
    for r = 1, o.rounds do
      local lr = run_worker(lua_cmd(name, o.secs, o.threads))
      concat(lt, lr.times)
      concat(lc, lr.cpu_times)
      lmem = math.max(lmem, lr.peak_rss)
      allocs = math.max(allocs, lr.sys_allocs_per_step)
      local msg = string.format("  [%s] round %d: luagan %.2f", name, r, stats(lr.times).med)
      if has_torch then
        local tr = run_worker(torch_cmd(name, o.secs, tthr))
        concat(tt, tr.times)
        concat(tc, tr.cpu_times)
        tmem = math.max(tmem, tr.peak_rss)
        msg = msg .. string.format("  torch %.2f", stats(tr.times).med)
      end
      print(msg .. " steps/s")
    end
    rows[#rows + 1] = {name = name, l = stats(lt), t = has_torch and stats(tt) or nil, tthr = tthr,
                       lcpu = median(lc), tcpu = has_torch and median(tc) or nil,
                       lmem = lmem, tmem = tmem, flops = M.models[name].flops, allocs = allocs}
  end

  print()
  print(string.format("## training steps (batch 64; luagan %d threads; PyTorch its faster of 1 and 2)",
                      o.threads))
  print("GFLOP/s: nominal matmul/conv FLOPs per step (bench/models.lua) x median steps/s; % of the")
  print("sgemm peak for the same thread count. CPU ms/step: median CPU time of all threads per step.")
  print()
  print("| model | luagan steps/s med (min-max) | PyTorch steps/s med (min-max) | ratio | luagan GFLOP/s (% peak) | PyTorch GFLOP/s (% peak) | CPU ms/step luagan / PyTorch | peak RSS luagan / PyTorch | luagan sys allocs/step |")
  print("|---|---|---|---|---|---|---|---|---|")
  for _, r in ipairs(rows) do
    local lg_gf = r.flops * r.l.med / 1e9
    local tcol, ratio, tgf, tcpu = "-", "-", "-", "-"
    if r.t then
      local t_gf = r.flops * r.t.med / 1e9
      tcol = string.format("%.2f (%.2f-%.2f) [%d thr]", r.t.med, r.t.min, r.t.max, r.tthr)
      ratio = string.format("%.2fx", r.l.med / r.t.med)
      tgf = string.format("%.1f (%.0f%%)", t_gf, 100 * t_gf / (peaks[r.tthr] or peak))
      tcpu = string.format("%.1f", r.tcpu * 1e3)
    end
    print(string.format("| %s | %.2f (%.2f-%.2f) | %s | %s | %.1f (%.0f%%) | %s | %.1f / %s | %.0f / %s MiB | %.2f |",
      r.name, r.l.med, r.l.min, r.l.max, tcol, ratio, lg_gf, 100 * lg_gf / peak, tgf,
      r.lcpu * 1e3, tcpu, r.lmem / 2^20, r.t and string.format("%.0f", r.tmem / 2^20) or "-",
      r.allocs))
  end

  if o.micro then
    local lm = run_worker(lua_cmd("micro", o.micro_secs, o.threads)).micro
    local tm = has_torch and run_worker(torch_cmd("micro", o.micro_secs, 1)).micro or nil
    local tm2 = has_torch and run_worker(torch_cmd("micro", o.micro_secs, 2)).micro or nil
    local flops = {}
    for i, c in ipairs(M.micro) do local _, f = c[2](); flops[i] = f end
    print()
    print(string.format("## op microbenchmarks (median per call, wall (CPU); luagan %d threads, "
                        .. "PyTorch the faster of 1 and 2)", o.threads))
    print("| op | luagan | PyTorch | ratio (PyTorch time / luagan time) | luagan GFLOP/s |")
    print("|---|---|---|---|---|")
    for i, c in ipairs(lm) do
      local lt, lcp = median_time(c.times), median_time(c.cpu_times)
      local tcol, ratio = "-", "-"
      if tm then
        local t1, t2 = median_time(tm[i].times), median_time(tm2[i].times)
        local tb = t1 <= t2 and tm[i] or tm2[i]
        local t = math.min(t1, t2)
        tcol = string.format("%.1f (%.1f) us [%d thr]", t * 1e6, median_time(tb.cpu_times) * 1e6,
                             t1 <= t2 and 1 or 2)
        ratio = string.format("%.2fx", t / lt)
      end
      local gf = flops[i] > 0 and string.format("%.1f", flops[i] / lt / 1e9) or "-"
      print(string.format("| %s | %.1f (%.1f) us | %s | %s | %s |", c.name, lt * 1e6, lcp * 1e6,
                          tcol, ratio, gf))
    end
  end
  local load2 = (io.open("/proc/loadavg") or {read = function() return "?" end}):read("l")
  print(string.format("\nload average after: %s", load2))
end

if arg[1] == "--worker" then
  worker(arg[2], tonumber(arg[3]), tonumber(arg[4]))
else
  main(arg)
end
