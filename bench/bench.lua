-- bench/bench.lua: luagan against PyTorch on the reference GAN training steps
-- (bench/models.lua, bench/torch_models.py) and the op microbenchmarks.
--
--   build/luagan bench/bench.lua [options]
--     --rounds N       timed rounds per model and side, alternating (3)
--     --secs S         seconds per round (2)
--     --threads N      luagan threads (lg.set_num_threads; 2)
--     --models a,b     which models (mlp_gan,dcgan28,wgangp_dcgan28 by default)
--     --no-torch       luagan only (also automatic when no torch imports)
--     --no-micro       skip the op microbenchmarks
--     --torch-threads N  skip PyTorch's configuration trial and use N threads
--                      (Np: N threads with OMP_WAIT_POLICY=PASSIVE)
--     --warmup N       untimed steps per round (2; compiled PyTorch: one more)
--     --min-steps N    timed steps per round at least (3)
--     --peers a,b      subset of luagan,pt2,pt2c,pt113 (PyTorch 2.x eager and
--                      torch.compile from bench/.venv, made by bench/setup_peer.sh;
--                      Debian's 1.13 from /usr/bin/python3); each that imports
--     --models none    no training step (the op microbenchmarks alone)
--     --models all     every model: mlp_gan, dcgan28_b16, dcgan28, dcgan28_b256,
--                      wgangp_dcgan28, dcgan64, dcgan64_b128, resnet32
--     --trial-secs S   seconds of each PyTorch configuration trial (1)
--     --check          compare the nets' parameter counts and forward FLOPs with
--                      PyTorch 2.x's (FlopCounterMode) and stop
--
-- Every round is a fresh worker process (this script with --worker, or
-- python3 bench/torch_models.py), so each side's peak memory (VmHWM) is that of
-- a process that ran one model. A round warms up with 2 steps, then times
-- single steps for S seconds (at least 3). steps/s median/min/max are over
-- all timed steps of all rounds; the peers take turns within a round. Each
-- PyTorch runs in its fastest configuration, chosen per model by a short trial
-- of each: 1 thread, 2 threads, 2 threads with OMP_WAIT_POLICY=PASSIVE; Debian's
-- 1.13 also with the faster (measured by torch.mm) of OPENBLAS_CORETYPE unset
-- and SkylakeX. The compiled peer takes its eager twin's choice; its warm-up
-- (torch.compile's compilation; kernels cached in /tmp/luagan_bench_inductor
-- unless TORCHINDUCTOR_CACHE_DIR says otherwise) is timed and reported apart.
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

local function worker(what, secs, threads, warmup, min_steps)
  warmup, min_steps = warmup or 2, min_steps or 3
  local M = dofile(here() .. "/models.lua")
  local io_ = require "luagan.io"
  lg.set_num_threads(threads)
  lg.manual_seed(1)
  local out = {side = "luagan", what = what, threads = lg.get_num_threads()}
  if what == "import" then
    -- nothing: the peak RSS of a process that loaded luagan and the bench models
  elseif what == "check" then
    local nets = {}
    for name, make in pairs(M.nets) do
      local G, D = make()
      local function count(m) local n = 0; for _, p in ipairs(m:parameters()) do n = n + p:numel() end; return n end
      nets[name] = {G_params = count(G), D_params = count(D),
                    G_flops_per_sample = M.net_flops[name].G, D_flops_per_sample = M.net_flops[name].D}
    end
    out.nets = nets
  elseif what == "micro" then
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
    local best, best_cpu = math.huge, math.huge
    lg.no_grad(function()
      lg.matmul(a, b)
      for _ = 1, 10 do
        local t0, c0 = lg.clock(), os.clock()
        local c = lg.matmul(a, b)
        best = math.min(best, lg.clock() - t0)
        best_cpu = math.min(best_cpu, os.clock() - c0)
        c = nil
      end
    end)
    out.gflops = 2 * n * n * n / best / 1e9
    -- per CPU-second of all threads: the rate a loaded machine cannot hide
    out.gflops_per_cpu_s = 2 * n * n * n / best_cpu / 1e9
    out.blas = lg.blas_corename()
  else
    local m = M.models[what] or error("unknown model " .. what)
    local step = m.build()
    for _ = 1, warmup do step() end
    local times, t_end = {}, lg.clock() + secs
    local cpu = {}
    local allocs0 = lg.mem_sys_allocs()
    while lg.clock() < t_end or #times < min_steps do
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
-- The peers: luagan and up to three PyTorch configurations, each run as its own process.
local PEER_ORDER = {"luagan", "pt2", "pt2c", "pt113"}
local PEER_LABEL = {luagan = "luagan", pt2 = "PyTorch 2.x eager", pt2c = "PyTorch 2.x compiled",
                    pt113 = "PyTorch 1.13 (Debian)"}

local function parse_args(a)
  local o = {rounds = 3, secs = 2, threads = 2, micro = true, micro_secs = 0.4, trial_secs = 1}
  local i = 1
  local function list(v) local t = {}; for m in v:gmatch("[^,]+") do t[#t + 1] = m end; return t end
  while i <= #a do
    local k = a[i]
    if k == "--rounds" then o.rounds = tonumber(a[i + 1]); i = i + 1
    elseif k == "--secs" then o.secs = tonumber(a[i + 1]); i = i + 1
    elseif k == "--trial-secs" then o.trial_secs = tonumber(a[i + 1]); i = i + 1
    elseif k == "--threads" then o.threads = tonumber(a[i + 1]); i = i + 1
    elseif k == "--torch-threads" then
      o.torch_passive = a[i + 1] and a[i + 1]:match("^%d+p$") ~= nil
      o.torch_threads = tonumber(a[i + 1] and a[i + 1]:match("^(%d+)p?$")); i = i + 1
    elseif k == "--warmup" then o.warmup = tonumber(a[i + 1]); i = i + 1
    elseif k == "--min-steps" then o.min_steps = tonumber(a[i + 1]); i = i + 1
    elseif k == "--models" then o.models = list(a[i + 1]); i = i + 1
    elseif k == "--peers" then o.peers = list(a[i + 1]); i = i + 1
    elseif k == "--no-torch" then o.peers = {"luagan"}
    elseif k == "--no-micro" then o.micro = false
    elseif k == "--check" then o.check = true
    else error("bench: unknown option " .. k .. " (see the header of bench/bench.lua)", 0) end
    if (k == "--rounds" or k == "--secs" or k == "--threads" or k == "--torch-threads"
        or k == "--trial-secs" or k == "--warmup" or k == "--min-steps")
       and not o[(k:sub(3):gsub("-", "_"))] then
      error("bench: " .. k .. " needs a number", 0)
    end
    i = i + 1
  end
  for _, p in ipairs(o.peers or {}) do
    if not PEER_LABEL[p] then
      error("bench: unknown peer " .. p .. " (luagan, pt2, pt2c, pt113)", 0)
    end
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
  return {med = median(r), min = r[1], max = r[#r], n = #r}
end

local median_time = median

local function concat(dst, src) for _, v in ipairs(src) do dst[#dst + 1] = v end end

local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return nil end
  local l = f:read("l"); f:close()
  return l
end

-- A torch configuration: threads and environment ({NAME = value}, value false = unset).
local function cfg_str(c)
  local s = c.threads .. " thr"
  local names = {}
  for k in pairs(c.env) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    s = s .. ", " .. k .. (c.env[k] and "=" .. c.env[k] or " unset")
  end
  return s
end
local function env_prefix(env)
  local unset, set, names = "", "", {}
  for k in pairs(env) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do   -- env takes its -u options before the assignments
    if env[k] then set = set .. " " .. k .. "=" .. sh_quote(env[k]) else unset = unset .. " -u " .. k end
  end
  return "env" .. unset .. set
end
local function merge(a, b)
  local t = {}
  for k, v in pairs(a) do t[k] = v end
  for k, v in pairs(b) do t[k] = v end
  return t
end

local function main(a)
  io.stdout:setvbuf("line")   -- a long run shows its progress (and keeps it if stopped)
  local o = parse_args(a)
  local exe = arg[-1] or "luagan"
  local self_path = here() .. "/bench.lua"
  local torch_py = here() .. "/torch_models.py"
  local venv_py = here() .. "/.venv/bin/python"
  local M = dofile(here() .. "/models.lua")
  local models = o.models or M.model_order
  if #models == 1 and models[1] == "all" then models = M.all_models end
  if #models == 1 and models[1] == "none" then models = {} end   -- the op table alone
  for _, name in ipairs(models) do
    if not M.models[name] then error("bench: unknown model " .. name, 0) end
  end

  local python = {pt2 = venv_py, pt2c = venv_py, pt113 = "/usr/bin/python3"}
  local function imports(py)
    return os.execute(sh_quote(py) .. " -c 'import torch' >/dev/null 2>&1") and true or false
  end
  local has = {luagan = true}
  has.pt2 = imports(venv_py); has.pt2c = has.pt2; has.pt113 = imports("/usr/bin/python3")
  local peers = {}
  for _, p in ipairs(o.peers or PEER_ORDER) do
    if has[p] then peers[#peers + 1] = p
    else print(string.format("%s: not available (%s does not import torch; bench/setup_peer.sh "
                             .. "makes bench/.venv)", PEER_LABEL[p], python[p])) end
  end
  local on = {}
  for _, p in ipairs(peers) do on[p] = true end

  -- torch.compile's cache of compiled kernels, one for the bench (the first round of a
  -- model compiles cold when it is empty; later rounds find the kernels there).
  local base_env = {}
  if not os.getenv("TORCHINDUCTOR_CACHE_DIR") then
    base_env.TORCHINDUCTOR_CACHE_DIR = "/tmp/luagan_bench_inductor"
  end
  local steps_args = string.format(" %d %d", o.warmup or 2, o.min_steps or 3)
  local function lua_cmd(what, secs, thr)
    return string.format("%s %s --worker %s %g %d%s", sh_quote(exe), sh_quote(self_path), what, secs, thr,
                         steps_args)
  end
  local function torch_cmd(peer, what, secs, c)
    return string.format("%s %s %s %s %g %d%s%s", env_prefix(merge(base_env, c.env)), sh_quote(python[peer]),
                         sh_quote(torch_py), what, secs, c.threads, steps_args,
                         peer == "pt2c" and " --compile" or "")
  end
  local loads = {}
  local function sample_load()
    local l = loadavg()
    if l then loads[#loads + 1] = tonumber(l:match("^(%S+)")) end
  end

  -- machine
  local cpu = io.popen("lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1"):read("l") or "?"
  local ncpu = io.popen("nproc"):read("l") or "?"
  print(string.format("machine: %s, %s CPUs; load average before: %s", cpu, ncpu, loadavg() or "?"))
  local peaks, cpu_peaks, blas = {}, {}, nil
  for _, t in ipairs({1, o.threads}) do
    local r = run_worker(lua_cmd("sgemm", 0, t))
    peaks[t], cpu_peaks[t], blas = r.gflops, r.gflops_per_cpu_s, r.blas
  end
  local peak = peaks[o.threads]
  print(string.format("sgemm peak (luagan matmul 2048^3, OpenBLAS %s kernels): %.1f GFLOP/s on 1 thread, "
                      .. "%.1f on %d; per CPU-second %.1f and %.1f", blas, peaks[1], peak, o.threads,
                      cpu_peaks[1], cpu_peaks[o.threads]))
  local import_rss = {luagan = run_worker(lua_cmd("import", 0, 1)).peak_rss}

  -- each torch's build (BLAS, oneDNN) and the environment it runs best in
  local base_cfg = {pt2 = {}, pt113 = {}}
  for _, p in ipairs({"pt2", "pt113"}) do
    if on[p] or (p == "pt2" and on.pt2c) then
      local r = run_worker(torch_cmd(p, "config", 0, {threads = 1, env = {}}))
      local c = r.config
      import_rss[p] = r.peak_rss
      print(string.format("%s: torch %s, BLAS %s%s, oneDNN: %s, ATen CPU capability %s",
                          PEER_LABEL[p], c.version, c.blas_info or "?",
                          c.mkl_version and " (" .. c.mkl_version .. ")" or "", c.onednn or "none",
                          c.cpu_capability or "?"))
    end
  end
  import_rss.pt2c = import_rss.pt2
  if on.pt113 then
    -- Debian's torch calls the system OpenBLAS (0.3.21), whose own dispatch picks slower
    -- kernels on this CPU than SkylakeX: take the faster of the two for the peer.
    local best, bestg
    for _, ct in ipairs({false, "SkylakeX"}) do
      local c = {threads = 1, env = {OPENBLAS_CORETYPE = ct}}
      local g = run_worker(torch_cmd("pt113", "sgemm", 0, c)).gflops
      print(string.format("  PyTorch 1.13 torch.mm 2048^3, 1 thread, OPENBLAS_CORETYPE %s: %.1f GFLOP/s",
                          ct or "unset", g))
      if not bestg or g > bestg then best, bestg = ct, g end
    end
    base_cfg.pt113 = {OPENBLAS_CORETYPE = best}
  end
  if on.pt2 or on.pt2c then
    local g = run_worker(torch_cmd("pt2", "sgemm", 0, {threads = 1, env = {}})).gflops
    print(string.format("  PyTorch 2.x torch.mm 2048^3, 1 thread: %.1f GFLOP/s", g))
  end
  print("import-only peak RSS (MiB): " .. (function()
    local t = {}
    for _, p in ipairs(peers) do t[#t + 1] = string.format("%s %.0f", PEER_LABEL[p], (import_rss[p] or 0) / 2^20) end
    return table.concat(t, ", ")
  end)())

  if o.check then
    local l = run_worker(lua_cmd("check", 0, 1)).nets
    local t = has.pt2 and run_worker(torch_cmd("pt2", "check", 0, {threads = 1, env = {}})).nets
              or run_worker(torch_cmd("pt113", "check", 0, {threads = 1, env = {}})).nets
    print("\n| net | G params luagan / PyTorch | D params luagan / PyTorch | G fwd MFLOP/sample nominal / FlopCounterMode | D fwd MFLOP/sample nominal / FlopCounterMode | match |")
    print("|---|---|---|---|---|---|")
    local names = {}
    for k in pairs(l) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      local a, b = l[k], t[k]
      local function mf(x) return x and string.format("%.2f", x / 1e6) or "-" end
      local same = a.G_params == b.G_params and a.D_params == b.D_params
                   and (not b.G_flops_per_sample or (math.abs(a.G_flops_per_sample - b.G_flops_per_sample) < 1
                        and math.abs(a.D_flops_per_sample - b.D_flops_per_sample) < 1))
      print(string.format("| %s | %d / %d | %d / %d | %s / %s | %s / %s | %s |", k, a.G_params, b.G_params,
                          a.D_params, b.D_params, mf(a.G_flops_per_sample), mf(b.G_flops_per_sample),
                          mf(a.D_flops_per_sample), mf(b.D_flops_per_sample), same and "yes" or "NO"))
    end
    return
  end

  local rows = {}
  for _, name in ipairs(models) do
    local cfg = {luagan = {threads = o.threads, env = {}}}
    -- Each PyTorch's fastest configuration for this model: 1 thread, 2 threads, 2 threads
    -- with passive OpenMP waiting (spinning threads lose on a loaded machine). The
    -- compiled peer uses its eager twin's choice (a trial would compile again).
    for _, p in ipairs({"pt2", "pt113"}) do
      if on[p] or (p == "pt2" and on.pt2c) then
        local cands = o.torch_threads
                      and {{threads = o.torch_threads, env = o.torch_passive and {OMP_WAIT_POLICY = "PASSIVE"} or {}}}
                      or {{threads = 1, env = {}}, {threads = 2, env = {}},
                          {threads = 2, env = {OMP_WAIT_POLICY = "PASSIVE"}}}
        local best, bests
        for _, c in ipairs(cands) do
          c.env = merge(base_cfg[p], c.env)
          if #cands > 1 then
            local r = run_worker(torch_cmd(p, name, o.trial_secs, c))
            sample_load()
            local s = stats(r.times).med
            io.write(string.format("  [%s] %s trial, %s: %.2f steps/s\n", name, PEER_LABEL[p], cfg_str(c), s))
            if not bests or s > bests then best, bests = c, s end
          else best = c end
        end
        cfg[p] = best
      end
    end
    cfg.pt2c = cfg.pt2
    local acc = {}
    for _, p in ipairs(peers) do acc[p] = {t = {}, c = {}, mem = 0, warm = {}} end
    local allocs = 0
    for r = 1, o.rounds do
      local msg = string.format("  [%s] round %d:", name, r)
      for _, p in ipairs(peers) do
        local A = acc[p]
        if not A.failed then
          local ok, res = pcall(run_worker, p == "luagan" and lua_cmd(name, o.secs, o.threads)
                                                    or torch_cmd(p, name, o.secs, cfg[p]))
          sample_load()
          if ok then
            concat(A.t, res.times); concat(A.c, res.cpu_times)
            A.mem = math.max(A.mem, res.peak_rss)
            if res.warmup_s then A.warm[#A.warm + 1] = res.warmup_s end
            if p == "luagan" then allocs = math.max(allocs, res.sys_allocs_per_step) end
            msg = msg .. string.format("  %s %.2f", p, stats(res.times).med)
          else
            A.failed = res:match("([^\n]*Error[^\n]*)") or res:sub(1, 200)
            msg = msg .. "  " .. p .. " failed"
          end
        end
      end
      print(msg .. " steps/s" .. string.format("  (load %s)", (loadavg() or "?"):match("^%S+")))
    end
    rows[#rows + 1] = {name = name, acc = acc, cfg = cfg, flops = M.models[name].flops,
                       batch = M.models[name].batch, allocs = allocs}
  end

  local function ok(A) return A and not A.failed and #A.t > 0 end
  local function fmt_steps(A, p)
    if not A then return "-" end
    if A.failed then return "n/a (" .. A.failed:gsub("|", "/"):sub(1, 80) .. ")" end
    local s = stats(A.t)
    return string.format("%.2f (%.2f-%.2f)", s.med, s.min, s.max)
  end
  local function ratio(r, p)
    local L, A = r.acc.luagan, r.acc[p]
    if not (ok(L) and ok(A)) then return "-" end
    return string.format("%.2fx", stats(L.t).med / stats(A.t).med)
  end
  local function gf(r, p)
    local A = r.acc[p]
    if not ok(A) then return "-" end
    local g = r.flops * stats(A.t).med / 1e9
    local pk = peaks[r.cfg[p].threads] or peak
    return string.format("%.1f (%.0f%%)", g, 100 * g / pk)
  end
  local function col(r, f)
    local t = {}
    for _, p in ipairs(peers) do t[#t + 1] = f(r.acc[p], p) end
    return table.concat(t, " / ")
  end

  print()
  print(string.format("## training steps (luagan %d threads; each PyTorch in its fastest configuration, "
                      .. "see the last table)", o.threads))
  print("steps/s: median (min-max) over all timed steps of all rounds. ratio: luagan steps/s ÷ the")
  print("peer's. GFLOP/s: nominal matmul/conv FLOPs per step (bench/models.lua) x median steps/s, % of")
  print("the luagan-measured OpenBLAS sgemm peak at the same thread count.")
  print()
  local hdr, sep = {"model", "batch", "GFLOP/step"}, {}
  for _, p in ipairs(peers) do hdr[#hdr + 1] = PEER_LABEL[p] .. " steps/s" end
  for _, p in ipairs(peers) do if p ~= "luagan" then hdr[#hdr + 1] = "luagan ÷ " .. PEER_LABEL[p] end end
  for _, p in ipairs(peers) do hdr[#hdr + 1] = PEER_LABEL[p] .. " GFLOP/s (% peak)" end
  for i = 1, #hdr do sep[i] = "---" end
  print("| " .. table.concat(hdr, " | ") .. " |")
  print("|" .. table.concat(sep, "|") .. "|")
  for _, r in ipairs(rows) do
    local c = {r.name, tostring(r.batch), string.format("%.1f", r.flops / 1e9)}
    for _, p in ipairs(peers) do c[#c + 1] = fmt_steps(r.acc[p], p) end
    for _, p in ipairs(peers) do if p ~= "luagan" then c[#c + 1] = ratio(r, p) end end
    for _, p in ipairs(peers) do c[#c + 1] = gf(r, p) end
    print("| " .. table.concat(c, " | ") .. " |")
  end

  print()
  print("## cost per step (CPU ms of all threads, median), peak RSS (VmHWM of the worker, MiB),")
  print("## compile warm-up, configuration. Columns in the order " ..
        table.concat((function() local t = {}; for _, p in ipairs(peers) do t[#t + 1] = PEER_LABEL[p] end; return t end)(), " / "))
  print()
  print("GFLOP per CPU-s: nominal FLOPs per step ÷ median CPU seconds per step, % of the sgemm's")
  print("GFLOP per CPU-second at 1 thread (the rate a loaded machine does not hide).")
  print()
  print("| model | CPU ms/step | GFLOP per CPU-s (% sgemm) | peak RSS MiB | PyTorch 2.x eager RSS ÷ luagan RSS | compiled warm-up s (first, later rounds) | luagan sys allocs/step | configurations |")
  print("|---|---|---|---|---|---|---|---|")
  for _, r in ipairs(rows) do
    local cpu_s = col(r, function(A) return ok(A) and string.format("%.1f", median(A.c) * 1e3) or "-" end)
    local gcpu = col(r, function(A)
      if not ok(A) then return "-" end
      local g = r.flops / median(A.c) / 1e9
      return string.format("%.0f (%.0f%%)", g, 100 * g / cpu_peaks[1])
    end)
    local rss_s = col(r, function(A) return ok(A) and string.format("%.0f", A.mem / 2^20) or "-" end)
    local rr = (ok(r.acc.pt2) and ok(r.acc.luagan))
               and string.format("%.1fx", r.acc.pt2.mem / r.acc.luagan.mem) or "-"
    local w = r.acc.pt2c and r.acc.pt2c.warm or {}
    local ws = #w > 0 and string.format("%.1f", w[1]) or "-"
    if #w > 1 then
      local later = {table.unpack(w, 2)}
      ws = ws .. string.format(", %.1f", median(later))
    end
    local cf = {}
    for _, p in ipairs(peers) do
      if p ~= "luagan" and p ~= "pt2c" then cf[#cf + 1] = p .. ": " .. cfg_str(r.cfg[p]) end
    end
    print(string.format("| %s | %s | %s | %s | %s | %s | %.2f | %s |", r.name, cpu_s, gcpu, rss_s, rr, ws, r.allocs,
                        table.concat(cf, "; ")))
  end

  local mp = on.pt2 and "pt2" or (on.pt113 and "pt113" or nil)
  if o.micro then
    local lm = run_worker(lua_cmd("micro", o.micro_secs, o.threads)).micro
    local tm, tm2
    if mp then
      local c1 = {threads = 1, env = base_cfg[mp]}
      local c2 = {threads = 2, env = merge(base_cfg[mp], {OMP_WAIT_POLICY = "PASSIVE"})}
      tm = run_worker(torch_cmd(mp, "micro", o.micro_secs, c1)).micro
      tm2 = run_worker(torch_cmd(mp, "micro", o.micro_secs, c2)).micro
    end
    local flops = {}
    for i, c in ipairs(M.micro) do local _, f = c[2](); flops[i] = f end
    print()
    print(string.format("## op microbenchmarks (median per call, wall (CPU); luagan %d threads, "
                        .. "%s the faster of 1 and 2 (passive))", o.threads, mp and PEER_LABEL[mp] or "-"))
    print("| op | luagan | PyTorch | ratio (PyTorch time / luagan time) | luagan GFLOP/s (% peak) |")
    print("|---|---|---|---|---|")
    for i, c in ipairs(lm) do
      local lt, lcp = median_time(c.times), median_time(c.cpu_times)
      local tcol, ratio_s = "-", "-"
      if tm then
        local t1, t2 = median_time(tm[i].times), median_time(tm2[i].times)
        local tb = t1 <= t2 and tm[i] or tm2[i]
        local t = math.min(t1, t2)
        tcol = string.format("%.1f (%.1f) us [%d thr]", t * 1e6, median_time(tb.cpu_times) * 1e6,
                             t1 <= t2 and 1 or 2)
        ratio_s = string.format("%.2fx", t / lt)
      end
      local g = flops[i] > 0 and string.format("%.1f (%.0f%%)", flops[i] / lt / 1e9,
                                                100 * flops[i] / lt / 1e9 / peak) or "-"
      print(string.format("| %s | %.1f (%.1f) us | %s | %s | %s |", c.name, lt * 1e6, lcp * 1e6,
                          tcol, ratio_s, g))
    end
  end
  table.sort(loads)
  if #loads > 0 then
    print(string.format("\nload average (1 min) during the run: min %.2f, median %.2f, max %.2f (%d samples)",
                        loads[1], median(loads), loads[#loads], #loads))
  end
  print(string.format("load average after: %s", loadavg() or "?"))
end

if arg[1] == "--worker" then
  worker(arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6]))
else
  main(arg)
end
