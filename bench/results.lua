-- bench/results.lua: run every bundled image recipe at its defaults over
-- seeds, and its PyTorch twin (bench/twins/NAME.py) where one exists, score
-- both sides with the same `luagan eval`, and write the tables of
-- docs/RESULTS.md.
--
--   build/luagan bench/results.lua                          # everything, seeds 1-3, one job
--   build/luagan bench/results.lua --recipes lsgan,sngan --seeds 1-3 --jobs 2
--   build/luagan bench/results.lua --recipes lsgan,cgan --seeds 1-2 --n 256 --out /tmp/res \
--       -- --steps 5 --limit 256                            # a tiny end-to-end check
--   build/luagan bench/results.lua --tables-only            # rewrite the tables from OUT
--
-- Options:
--   --recipes a,b     recipes to run (default: every one in RECIPES below)
--   --seeds 1-3       seeds (a range or a list; default 1-3)
--   --jobs N          runs at a time (default 1); each run uses --threads threads
--   --threads N       threads per run (default 1; also OMP_NUM_THREADS for torch)
--   --n N             samples scored by `luagan eval` (default 10000, the FD protocol)
--   --out DIR         where the runs and tables go (default out/results)
--   --luagan PATH     the luagan executable (default: the one running this script)
--   --python PATH     the twins' interpreter (default /usr/bin/python3: Debian's torch)
--   --no-twins        luagan side only
--   --extra 'NAME=ARGS'  more flags for one recipe and its twin (repeatable),
--                     e.g. --extra 'wgan_gp=--n-critic 1'
--   --grids DIR       copy each recipe's first-seed grids to DIR/NAME.png and
--                     DIR/NAME_twin.png and show them as images in the table
--   --grid-link P     the image links' directory (default DIR; e.g. --grids docs/img
--                     --grid-link img for a table pasted into docs/RESULTS.md);
--                     without --grids but with --store, the grids are linked
--                     where the store keeps them, P standing for the store
--                     (--store docs/results --grid-link results)
--   --store DIR       also keep every finished run as a small record in DIR
--                     (DIR/NAME/SIDE/sSEED.json, and the seed-1 sample grid
--                     as sSEED.png next to it): a run recorded there is not
--                     run again, and the tables take it from there when OUT
--                     lacks it. The records outlive OUT (commit them: the
--                     project's are in docs/results/), so the tables can be
--                     built from runs made on several days or machines;
--                     each record names its commit, machine and load.
--   --dry-run         print the jobs it would run, run nothing
--   --tables-only     run nothing, write the tables from what OUT holds
--   -- ARGS           flags for every run of both sides (recipe option names:
--                     the twins take the same ones)
--
-- Each run is one job: a shell script OUT/NAME/SIDE/sSEED.sh (SIDE luagan,
-- twin, or untrained: the encoder recipes at --steps 0, the baseline of the
-- linear probe) whose output goes to the .log next to it. A job trains under
-- /usr/bin/time (CPU seconds, wall, peak RSS into DIR/time.json), scores the
-- samples with `luagan eval --json DIR/fd.json`, leaves the recipe's own
-- measure in DIR/eval.json (the recipe's finish(); for a twin
-- bench/twins/measure.lua) and writes DIR/done last (the time it finished). A rerun
-- skips every job whose done file exists, so an interrupted run picks up
-- where it stopped; OUT/config.json records the settings (--n, the extra
-- flags) and a rerun with other settings is refused (use another --out);
-- a --store directory holds its own config.json, checked the same way. A job
-- also leaves its provenance: the commit of the tree that ran it
-- (`git describe --always --dirty`), the CPU model and online core count
-- (getconf: nproc would count OMP_NUM_THREADS), and the
-- load average before and after training.
--
-- luagan's samples are drawn from its checkpoint (`luagan eval CKPT`, G in
-- eval mode, float values); the twin's come as IDX ubyte pixels (rounding
-- moves the FD by ~0.1 %, docs/RESULTS.md). Statistics: mean +- standard
-- error over seeds per side and Welch's t of luagan - twin (bench/twin_table.lua).
-- Output: OUT/results.md (markdown tables) and OUT/results.json (every
-- number per run).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/?.lua;" .. package.path
local tt = require "twin_table"
local lgio = require "luagan.io"

-- The recipes scored here. fd: the samples are 28x28 images that `luagan eval`
-- judges; measures: the fields of the recipe's eval.json reported (with the
-- direction that is better); untrained: also run at --steps 0 for the
-- encoder baseline. toy2d has its own protocol (`luagan eval --2d`) and the
-- classifier is no GAN: both are left out.
local RECIPES = {
  {"dcgan", fd = true}, {"lsgan", fd = true}, {"wgan", fd = true}, {"wgan_gp", fd = true},
  {"sngan", fd = true}, {"gan", fd = true}, {"fgan", fd = true}, {"improved", fd = true},
  {"ebgan", fd = true},
  {"cgan", fd = true, measures = {{"label_accuracy", "label accuracy", "%.3f"}}},
  {"infogan", fd = true, measures = {{"code_accuracy", "code accuracy (1:1)", "%.3f"},
                                     {"majority_accuracy", "code accuracy (many:1)", "%.3f"}}},
  {"bigan", fd = true, untrained = true, measures = {{"probe_test", "linear probe", "%.3f"},
                                                     {"recon_mse", "recon MSE", "%.4f"}}},
  {"vaegan", fd = true, untrained = true, measures = {{"probe_test", "linear probe", "%.3f"},
                                                      {"recon_mse", "recon MSE", "%.4f"}}},
  {"cogan", fd = true, measures = {{"l1", "correspondence L1", "%.3f"},
                                   {"class_agreement", "class agreement", "%.3f"}}},
  {"cyclegan", fd = false, measures = {{"l1", "|G_AB(a) - T(a)| L1", "%.3f"},
                                       {"class_ba", "class kept B->A", "%.3f"}}},
}

local function fail(msg) error("results: " .. msg, 0) end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function exists(p)
  local f = io.open(p, "r")
  if f then f:close() return true end
  return false
end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true
end

local function write_file(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then fail("cannot write " .. tmp .. ": " .. tostring(err)) end
  local wrote, werr = f:write(text)
  local closed, cerr = f:close()
  if not wrote or not closed then
    os.remove(tmp)
    fail("cannot write " .. tmp .. ": " .. tostring(werr or cerr))
  end
  local ok, e = os.rename(tmp, path)
  if not ok then fail("cannot rename " .. tmp .. ": " .. tostring(e)) end
end

local function read_json_or_nil(path)
  if not exists(path) then return nil end
  local ok, v = pcall(tt.read_json, path)
  return ok and v or nil
end

local function split_words(s)
  local out = {}
  for w in s:gmatch("%S+") do out[#out + 1] = w end
  return out
end

---------------------------------------------------------------------------
-- options

local function default_luagan()
  local i, exe = -1, nil
  while arg and arg[i] do exe = arg[i]; i = i - 1 end
  return exe or "luagan"
end

local function parse(argv)
  local o = {seeds = "1-3", jobs = 1, threads = 1, n = 10000, out = "out/results",
             luagan = default_luagan(), python = "/usr/bin/python3", extra = {}, pass = {}}
  local FLAGS = {["no-twins"] = true, ["dry-run"] = true, ["tables-only"] = true}
  local INTS = {jobs = true, threads = true, n = true}
  local STRS = {recipes = "recipes_arg", seeds = "seeds", out = "out", luagan = "luagan",
                python = "python", grids = "grids", ["grid-link"] = "grid_link", store = "store"}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do o.pass[#o.pass + 1] = argv[j] end
      break
    end
    local k = a:match("^%-%-([%w-]+)$")
    if not k then fail("unexpected argument '" .. a .. "' (flags for the runs go after --)") end
    if FLAGS[k] then
      o[k] = true
    elseif INTS[k] or STRS[k] or k == "extra" then
      local v = argv[i + 1]
      if v == nil then fail("--" .. k .. " needs a value") end
      i = i + 1
      if INTS[k] then
        local n = math.tointeger(tonumber(v))
        if not n or n < 1 then fail("--" .. k .. " takes a positive integer, got '" .. v .. "'") end
        o[k] = n
      elseif k == "extra" then
        local name, args = v:match("^([%w_]+)=(.*)$")
        if not name then fail("--extra takes NAME=ARGS (e.g. 'wgan_gp=--n-critic 1'), got '" .. v .. "'") end
        o.extra[name] = split_words(args)
      else
        o[STRS[k]] = v
      end
    else
      fail("unknown option " .. a .. " (see the header of bench/results.lua)")
    end
    i = i + 1
  end
  o.seeds = tt.parse_seeds(o.seeds, 1)
  local by_name, list = {}, {}
  for _, r in ipairs(RECIPES) do by_name[r[1]], list[#list + 1] = r, r[1] end
  local chosen = o.recipes_arg and split_words((o.recipes_arg:gsub(",", " "))) or list
  o.recipes = {}
  for _, name in ipairs(chosen) do
    local r = by_name[name]
    if not r then fail("unknown recipe '" .. name .. "' (known: " .. table.concat(list, ", ") .. ")") end
    o.recipes[#o.recipes + 1] = r
  end
  for name in pairs(o.extra) do
    if not by_name[name] then fail("--extra: unknown recipe '" .. name .. "'") end
  end
  return o
end

---------------------------------------------------------------------------
-- jobs

local function twin_path(name) return here .. "/twins/" .. name .. ".py" end

local function has_twin(o, name) return not o["no-twins"] and exists(twin_path(name)) end

local function run_dir(o, name, side, seed)
  return string.format("%s/%s/%s/s%d", o.out, name, side, seed)
end

local TIME_FMT = '{"user": %U, "sys": %S, "wall": %e, "max_rss_kb": %M}'

-- eval options: the sample count, and a KID subset no larger than the samples
local function eval_args(o)
  local a = {"--threads", o.threads, "--n", o.n, "--no-floor"}
  if o.n < 2000 then a[#a + 1] = "--kid-size"; a[#a + 1] = math.max(2, o.n // 2) end
  return a
end

local function words(list)
  local out = {}
  for i, w in ipairs(list) do out[i] = q(w) end
  return table.concat(out, " ")
end

-- The shell script of one job (side "luagan", "twin" or "untrained").
local function job_script(o, r, side, seed)
  local name, dir = r[1], run_dir(o, r[1], side, seed)
  local flags = {"--seed", seed, "--threads", o.threads}
  for _, w in ipairs(o.pass) do flags[#flags + 1] = w end
  for _, w in ipairs(o.extra[name] or {}) do flags[#flags + 1] = w end
  local L = {"set -e", "D=" .. q(dir), 'rm -rf "$D"', 'mkdir -p "$D"',
             "export OMP_NUM_THREADS=" .. o.threads, "export MKL_NUM_THREADS=" .. o.threads,
             -- provenance: the tree, the machine, its load around the training
             "echo " .. q(o.commit) .. ' > "$D/commit"',
             "{ grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//'; getconf _NPROCESSORS_ONLN; } > \"$D/machine\" || true",
             'cut -d" " -f1-3 /proc/loadavg > "$D/load_start"'}
  local time = "/usr/bin/time -f " .. q(TIME_FMT) .. ' -o "$D/time.json" '
  local load_end = 'cut -d" " -f1-3 /proc/loadavg > "$D/load_end"'
  if side == "twin" then
    L[#L + 1] = time .. q(o.python) .. " " .. q(twin_path(name)) .. " " .. words(flags) ..
                " --n " .. o.n .. ' --out "$D"'
    L[#L + 1] = load_end
    L[#L + 1] = q(o.luagan) .. " " .. q(here .. "/twins/measure.lua") .. ' "$D"'
    if r.fd then
      L[#L + 1] = q(o.luagan) .. ' eval "$D/samples.idx" ' .. words(eval_args(o)) .. ' --json "$D/fd.json"'
    end
  else
    if side == "untrained" then flags[#flags + 1] = "--steps"; flags[#flags + 1] = "0" end
    L[#L + 1] = time .. q(o.luagan) .. " run " .. q(name) .. " " .. words(flags) .. ' --out "$D"'
    L[#L + 1] = load_end
    if r.fd and side == "luagan" then
      L[#L + 1] = q(o.luagan) .. ' eval "$D/checkpoint.safetensors" ' .. words(eval_args(o)) ..
                  ' --json "$D/fd.json"'
    end
  end
  L[#L + 1] = 'date -u +%FT%TZ > "$D/done"'
  return table.concat(L, "\n") .. "\n"
end

local function sides(o, r)
  local s = {"luagan"}
  if has_twin(o, r[1]) then s[#s + 1] = "twin" end
  if r.untrained then s[#s + 1] = "untrained" end
  return s
end

-- The settings a resumed OUT must share with this call.
local function config_of(o)
  local names = {}
  for k in pairs(o.extra) do names[#names + 1] = k end
  table.sort(names)
  local extra = {}
  for _, k in ipairs(names) do extra[#extra + 1] = k .. "=" .. table.concat(o.extra[k], " ") end
  return {n = o.n, threads = o.threads, pass = table.concat(o.pass, " "),
          extra = table.concat(extra, "; ")}
end

-- dir: OUT or the store (flag: the option that names it, for the message)
local function check_config(o, dir, flag)
  local path = dir .. "/config.json"
  local want = config_of(o)
  local have = read_json_or_nil(path)
  if have then
    for k, v in pairs(want) do
      if tostring(have[k]) ~= tostring(v) then
        fail(string.format("%s was made with %s = '%s', this call has '%s': resume with the same " ..
                           "settings or give another %s", dir, k, tostring(have[k]), tostring(v), flag))
      end
    end
  elseif not o["dry-run"] then
    sh("mkdir -p " .. q(dir))
    write_file(path, lgio.json_encode(want) .. "\n")
  end
end

---------------------------------------------------------------------------
-- the store: one small record per finished run (--store)

local function store_path(o, name, side, seed, ext)
  return string.format("%s/%s/%s/s%d.%s", o.store, name, side, seed, ext)
end

local function in_store(o, name, side, seed)
  return o.store ~= nil and exists(store_path(o, name, side, seed, "json"))
end

local function run_jobs(o)
  local todo = {}
  for _, r in ipairs(o.recipes) do
    for _, side in ipairs(sides(o, r)) do
      for _, seed in ipairs(o.seeds) do
        local dir = run_dir(o, r[1], side, seed)
        if not exists(dir .. "/done") and not in_store(o, r[1], side, seed) then
          todo[#todo + 1] = {r = r, side = side, seed = seed, script = dir .. ".sh", dir = dir}
        end
      end
    end
  end
  print(string.format("results: %d job(s) to run, %d at a time (out %s)", #todo, o.jobs, o.out))
  if #todo == 0 then return end
  if o["dry-run"] then
    for _, j in ipairs(todo) do
      print("---- " .. j.script)
      io.write(job_script(o, j.r, j.side, j.seed))
    end
    return
  end
  local list = {}
  for _, j in ipairs(todo) do
    sh("mkdir -p " .. q(j.dir:match("^(.*)/[^/]*$")))
    write_file(j.script, job_script(o, j.r, j.side, j.seed))
    list[#list + 1] = j.script
  end
  local listfile = o.out .. "/jobs.txt"
  write_file(listfile, table.concat(list, "\n") .. "\n")
  -- xargs runs the job scripts N at a time; each reports one line when it ends
  local runner = 'echo "start $0"; if sh "$0" > "${0%.sh}.log" 2>&1; then echo "done  $0"; ' ..
                 'else echo "FAILED $0 (see ${0%.sh}.log)"; fi'
  sh("xargs -d '\\n' -P " .. o.jobs .. " -n 1 sh -c " .. q(runner) .. " < " .. q(listfile))
  local failed = 0
  for _, j in ipairs(todo) do
    if not exists(j.dir .. "/done") then failed = failed + 1 end
  end
  if failed > 0 then
    print(string.format("results: %d job(s) failed (their .log files say why); rerun to retry them", failed))
  end
end

---------------------------------------------------------------------------
-- collecting

local function last_metrics(path)
  local last
  local f = io.open(path, "r")
  if not f then return nil end
  for line in f:lines() do
    if line:match("%S") then last = line end
  end
  f:close()
  local ok, v = pcall(lgio.json_decode, last or "")
  return ok and v or nil
end

-- The first line of a small text file, or nil.
local function first_line(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  return line ~= "" and line or nil
end

-- One finished run in OUT -> {seed, fd = report, own = eval.json, cpu, wall,
-- rss, steps, steps_per_cpu_s, ..., the provenance: commit, machine, load_start,
-- load_end, finished}
local function collect_out_run(o, r, side, seed)
  local dir = run_dir(o, r[1], side, seed)
  if not exists(dir .. "/done") then return nil end
  local t = read_json_or_nil(dir .. "/time.json") or {}
  local run = {seed = seed, dir = dir, fd = read_json_or_nil(dir .. "/fd.json"),
               own = read_json_or_nil(dir .. "/eval.json") or {},
               commit = first_line(dir .. "/commit"), load_start = first_line(dir .. "/load_start"),
               load_end = first_line(dir .. "/load_end"), finished = first_line(dir .. "/done")}
  local f = io.open(dir .. "/machine", "r")
  if f then
    local model, cores = f:read("l"), f:read("l")
    f:close()
    if model and cores then run.machine = string.format("%s, %s cores", model, cores) end
  end
  if t.user then run.cpu, run.wall, run.rss_mb = t.user + t.sys, t.wall, t.max_rss_kb / 1024 end
  if side == "twin" then
    local info = read_json_or_nil(dir .. "/run.json") or {}
    run.steps, run.loop_s = info.steps, info.train_seconds
  else
    local opts = read_json_or_nil(dir .. "/options.json") or {}
    local m = last_metrics(dir .. "/metrics.jsonl")
    run.steps, run.loop_s = opts.steps, m and m.time
  end
  if run.steps and run.cpu and run.cpu > 0 then run.steps_per_cpu_s = run.steps / run.cpu end
  if run.steps and run.loop_s and run.loop_s > 0 then run.steps_per_s = run.steps / run.loop_s end
  local grid = dir .. "/samples_final.png"
  run.grid = exists(grid) and grid or nil
  return run
end

-- A finished run from OUT, else from the store (its grid: the stored copy).
local function collect_run(o, r, side, seed)
  local run = collect_out_run(o, r, side, seed)
  if run or not in_store(o, r[1], side, seed) then return run end
  local path = store_path(o, r[1], side, seed, "json")
  local ok, rec = pcall(tt.read_json, path)
  if not ok then fail("cannot read the record " .. path .. ": " .. tostring(rec)) end
  local png = store_path(o, r[1], side, seed, "png")
  rec.grid = exists(png) and png or nil
  rec.stored = true
  return rec
end

-- Every finished run of this call that OUT holds and the store lacks (or
-- holds from an earlier run of the same job) becomes a record; seed 1 keeps
-- its sample grid.
local function sync_store(o)
  if not o.store then return end
  local n = 0
  for _, r in ipairs(o.recipes) do
    for _, side in ipairs(sides(o, r)) do
      for _, seed in ipairs(o.seeds) do
        local run = collect_out_run(o, r, side, seed)
        local path = store_path(o, r[1], side, seed, "json")
        local old = run and read_json_or_nil(path)
        if run and not (old and old.finished == run.finished) then
          local rec = {recipe = r[1], side = side, config = config_of(o)}
          for k, v in pairs(run) do
            if k ~= "dir" and k ~= "grid" then rec[k] = v end
          end
          sh("mkdir -p " .. q(path:match("^(.*)/[^/]*$")))
          write_file(path, lgio.json_encode(rec) .. "\n")
          if run.grid and seed == 1 and side ~= "untrained" then
            local png = store_path(o, r[1], side, seed, "png")
            if not sh("cp " .. q(run.grid) .. " " .. q(png .. ".tmp") .. " && mv " .. q(png .. ".tmp") ..
                      " " .. q(png)) then
              fail("cannot copy " .. run.grid .. " to " .. png)
            end
          end
          n = n + 1
        end
      end
    end
  end
  if n > 0 then print(string.format("results: %d run(s) recorded in %s", n, o.store)) end
end

local function values(runs, get)
  local out = {}
  for _, run in ipairs(runs) do
    local v = get(run)
    if type(v) == "number" then out[#out + 1] = v end
  end
  return out
end

local function fmt_mse(fmt, m, s)
  if m == nil then return "–" end
  if s == nil or s ~= s then return string.format(fmt, m) end
  return string.format(fmt .. " ± " .. fmt, m, s)
end

local function fmt_t(c)
  if not c.t then return "–" end
  return string.format("%.2f (df %.1f)", c.t, c.df)
end

local function mean_of(xs)
  if #xs == 0 then return nil end
  local c = tt.compare(xs, {})
  return c.ma, c.sa
end

---------------------------------------------------------------------------
-- tables

-- "Runs: N; commits a (n), b (m); machines ...; load average x-y" over every
-- run of the tables (a run made before jobs recorded provenance counts as
-- "unrecorded").
local function provenance_line(data)
  local counts, order, total = {commit = {}, machine = {}}, {commit = {}, machine = {}}, 0
  local lo, hi
  for _, d in ipairs(data) do
    for _, runs in pairs(d.sides) do
      for _, run in ipairs(runs) do
        total = total + 1
        for _, k in ipairs{"commit", "machine"} do
          local v = run[k] or "unrecorded"
          if not counts[k][v] then order[k][#order[k] + 1] = v end
          counts[k][v] = (counts[k][v] or 0) + 1
        end
        for _, l in ipairs{run.load_start, run.load_end} do
          local x = tonumber(l and l:match("^(%S+)"))
          if x then lo, hi = math.min(lo or x, x), math.max(hi or x, x) end
        end
      end
    end
  end
  local parts = {}
  for _, k in ipairs{"commit", "machine"} do
    table.sort(order[k])
    local list = {}
    for _, v in ipairs(order[k]) do list[#list + 1] = string.format("%s (%d)", v, counts[k][v]) end
    parts[#parts + 1] = k .. "s " .. (#list > 0 and table.concat(list, ", ") or "–")
  end
  return string.format("Runs: %d; %s; load average (1 min, before and after training) %s.", total,
                       table.concat(parts, "; "),
                       lo and string.format("%.2f-%.2f", lo, hi) or "unrecorded")
end

local function tables(o)
  local data, md = {}, {}
  local function add(s) md[#md + 1] = s end
  local seeds_str = table.concat(o.seeds, ",")
  add("<!-- written by bench/results.lua; settings: " .. lgio.json_encode(config_of(o)) .. " -->")
  add("")
  add(string.format("Seeds %s; mean ± standard error over seeds per side; Welch's t of luagan − twin " ..
                    "(|t| above ~2.5 at 3+3 seeds: a difference beyond the seed spread). CPU s: user + sys " ..
                    "of the whole training command (`/usr/bin/time`, data loading and the recipe's " ..
                    "finish included); steps/CPU-s = steps / that; steps/s: steps / wall time of the " ..
                    "training loop (depends on the machine's load). Pairs are luagan / twin.",
                    seeds_str))
  add("")
  add("| recipe | steps | seeds | FD luagan | FD twin | Welch t | CPU s | steps/CPU-s | steps/s | " ..
      "sample grid (first seed) |")
  add("|---|---|---|---|---|---|---|---|---|---|")
  local per_seed, other, own_rows = {}, {}, {}
  for _, r in ipairs(o.recipes) do
    local name = r[1]
    local d = {recipe = name, sides = {}}
    for _, side in ipairs(sides(o, r)) do
      local runs = {}
      for _, seed in ipairs(o.seeds) do runs[#runs + 1] = collect_run(o, r, side, seed) end
      d.sides[side] = runs
    end
    data[#data + 1] = d
    local lg_runs, tw_runs = d.sides.luagan or {}, d.sides.twin or {}
    local twin = has_twin(o, name)
    local function fd(run) return run.fd and run.fd.fd end
    local c = tt.compare(values(lg_runs, fd), values(tw_runs, fd))
    -- "luagan / twin" of the mean of a per-run number
    local function pair(key, fmt)
      local function get(x) return x[key] end
      local a, b = mean_of(values(lg_runs, get)), mean_of(values(tw_runs, get))
      local sa = a and string.format(fmt, a) or "–"
      return twin and (sa .. " / " .. (b and string.format(fmt, b) or "–")) or sa
    end
    local steps = lg_runs[1] and lg_runs[1].steps or (tw_runs[1] and tw_runs[1].steps)
    local grids = {}
    for _, g in ipairs{{lg_runs[1], name, "luagan"}, {tw_runs[1], name .. "_twin", "twin"}} do
      local run, file, label = g[1], g[2] .. ".png", g[3]
      if run and run.grid and o.store and not o.grids and run.stored then
        -- linked where the store keeps it, P standing for the store directory
        local rel = run.grid:sub(#o.store + 2)
        grids[#grids + 1] = string.format("![%s %s](%s/%s)", name, label, o.grid_link or o.store, rel)
      elseif run and run.grid and o.grids then
        -- copied next to the docs and linked as an image
        sh("mkdir -p " .. q(o.grids) .. " && cp " .. q(run.grid) .. " " .. q(o.grids .. "/" .. file))
        grids[#grids + 1] = string.format("![%s %s](%s/%s)", name, label, o.grid_link or o.grids, file)
      elseif run and run.grid then
        grids[#grids + 1] = (label == "twin" and "twin " or "") .. "`" .. run.grid .. "`"
      end
    end
    add(string.format("| `%s` | %s | %d / %s | %s | %s | %s | %s | %s | %s | %s |", name,
                      steps and tostring(steps) or "–", #lg_runs, twin and tostring(#tw_runs) or "–",
                      r.fd and fmt_mse("%.1f", c.ma, c.sa) or "(no FD)",
                      r.fd and twin and fmt_mse("%.1f", c.mb, c.sb) or "–", fmt_t(c),
                      pair("cpu", "%.0f"), pair("steps_per_cpu_s", "%.2f"), pair("steps_per_s", "%.2f"),
                      #grids > 0 and table.concat(grids, "<br>") or "–"))
    if r.fd then
      for _, side in ipairs{"luagan", "twin"} do
        local runs = d.sides[side]
        if runs and #runs > 0 then
          local cells = {}
          for _, run in ipairs(runs) do
            cells[#cells + 1] = string.format("s%d %s", run.seed, run.fd and string.format("%.1f", run.fd.fd) or "–")
          end
          per_seed[#per_seed + 1] = string.format("| `%s` | %s | %s |", name, side, table.concat(cells, ", "))
        end
      end
      local row = {"`" .. name .. "`"}
      for _, m in ipairs{{"kid", 1000, "%.1f"}, {"precision", 1, "%.3f"}, {"recall", 1, "%.3f"},
                         {"coverage", 1, "%.2f"}, {"cs", 1, "%.2f"}} do
        local function get(run) return run.fd and run.fd[m[1]] and run.fd[m[1]] * m[2] end
        local a, b = mean_of(values(lg_runs, get)), mean_of(values(tw_runs, get))
        row[#row + 1] = (a and string.format(m[3], a) or "–") .. " / " .. (b and string.format(m[3], b) or "–")
      end
      other[#other + 1] = "| " .. table.concat(row, " | ") .. " |"
    end
    for _, m in ipairs(r.measures or {}) do
      local function get(run) return run.own[m[1]] end
      local cm = tt.compare(values(lg_runs, get), values(tw_runs, get))
      local un, un_se
      if d.sides.untrained then un, un_se = mean_of(values(d.sides.untrained, get)) end
      own_rows[#own_rows + 1] = string.format("| `%s` | %s | %s | %s | %s | %s |", name, m[2],
        fmt_mse(m[3], cm.ma, cm.sa), twin and fmt_mse(m[3], cm.mb, cm.sb) or "–", fmt_t(cm),
        un and fmt_mse(m[3], un, un_se) or "–")
    end
  end
  add("")
  add(provenance_line(data))
  add("")
  add("Per seed (Fréchet distance):")
  add("")
  add("| recipe | side | FD per seed |")
  add("|---|---|---|")
  for _, s in ipairs(per_seed) do add(s) end
  add("")
  add("Other `luagan eval` metrics, mean over seeds (luagan / twin):")
  add("")
  add("| recipe | KID ×1000 | precision | recall | coverage | classifier score |")
  add("|---|---|---|---|---|---|")
  for _, s in ipairs(other) do add(s) end
  if #own_rows > 0 then
    add("")
    add("The recipes' own measures (`eval.json`: the recipe's finish(); for a twin " ..
        "`bench/twins/measure.lua`, the same lg.eval functions), mean ± s.e.; untrained: the " ..
        "recipe at `--steps 0`:")
    add("")
    add("| recipe | measure | luagan | twin | Welch t | untrained |")
    add("|---|---|---|---|---|---|")
    for _, s in ipairs(own_rows) do add(s) end
  end
  write_file(o.out .. "/results.md", table.concat(md, "\n") .. "\n")
  write_file(o.out .. "/results.json", lgio.json_encode({config = config_of(o), seeds = o.seeds,
                                                         recipes = data}) .. "\n")
  print(table.concat(md, "\n"))
  print("results: wrote " .. o.out .. "/results.md and " .. o.out .. "/results.json")
end

---------------------------------------------------------------------------

-- the tree this script runs from (each job records it)
local function git_describe()
  local p = io.popen("git -C " .. q(here) .. " describe --always --dirty 2>/dev/null")
  local v = p and p:read("l")
  if p then p:close() end
  return v and v ~= "" and v or "unknown"
end

local function main()
  local o = parse(arg)
  sh("mkdir -p " .. q(o.out))
  o.commit = git_describe()
  if o.store then check_config(o, o.store, "--store") end
  if not o["tables-only"] then
    check_config(o, o.out, "--out")
    sync_store(o)
    run_jobs(o)
  end
  if not o["dry-run"] then
    sync_store(o)
    tables(o)
  end
end

-- a user error is one line; a bug keeps its traceback
local ok, err = xpcall(main, function(e)
  if type(e) == "string" and (e:match("^results: ") or e:match("^twin_table: ")) then return e end
  return debug.traceback(e, 2)
end)
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
