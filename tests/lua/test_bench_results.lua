-- bench/twin_table.lua (as a module) and bench/results.lua on runs laid out
-- by hand: seeds, Welch's t, a single seed (no standard error), the tables
-- from finished runs, resuming (finished runs are skipped), the job scripts
-- of --dry-run, and one-line errors. No training runs here.
local T = ...

local src = debug.getinfo(1, "S").source:gsub("^@", "")
local root = src:match("^(.*)/tests/lua/[^/]*$") or "."
package.path = root .. "/bench/?.lua;" .. package.path
local tt = require "twin_table"
local lgio = require "luagan.io"

local exe = arg and arg[-1]
if exe and exe:find("/") and exe:sub(1, 1) ~= "/" then exe = (os.getenv("PWD") or ".") .. "/" .. exe end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function write(path, text)
  assert(os.execute("mkdir -p " .. q(path:match("^(.*)/[^/]*$"))))
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function results(args)
  return sh(q(exe) .. " " .. q(root .. "/bench/results.lua") .. " " .. args)
end

T.test("twin_table.parse_seeds: ranges, lists, bad input", function()
  T.eq(tt.parse_seeds("1-3"), {1, 2, 3})
  T.eq(tt.parse_seeds("2,5", 1), {2, 5})
  T.eq(tt.parse_seeds("4", 1), {4})
  T.errors(function() tt.parse_seeds("4") end, "at least 2")
  T.errors(function() tt.parse_seeds("1,x") end, "not an integer")
end)

T.test("twin_table.compare: means, standard errors, Welch's t and df", function()
  -- means 2 and 5, standard errors 1/sqrt(3) each: t = -3 / sqrt(2/3), df = 4
  local c = tt.compare({1, 2, 3}, {4, 5, 6})
  T.near(c.ma, 2); T.near(c.mb, 5)
  T.near(c.sa, 1 / math.sqrt(3)); T.near(c.diff, -3)
  T.near(c.t, -3 / math.sqrt(2 / 3)); T.near(c.df, 4)
  local only = tt.compare({7, 9}, {})
  T.near(only.ma, 8); T.eq(only.mb, nil); T.eq(only.t, nil)
end)

T.test("twin_table.compare: a single seed a side has no standard error and no t", function()
  local c = tt.compare({10}, {12})
  T.near(c.diff, -2)
  T.eq(c.sa, nil); T.eq(c.t, nil); T.eq(c.diff_se, nil)
end)

-- A finished run of `side` with FD `fd` (what a job leaves behind).
local function fake_run(out, name, side, seed, fd, cpu)
  local d = string.format("%s/%s/%s/s%d", out, name, side, seed)
  write(d .. "/fd.json", lgio.json_encode({fd = fd, kid = 0.1, precision = 0.7, recall = 0.2,
                                           coverage = 1, cs = 5}))
  write(d .. "/time.json", string.format('{"user": %g, "sys": 0, "wall": %g, "max_rss_kb": 1024}', cpu, cpu))
  if side == "twin" then
    write(d .. "/run.json", '{"twin": "' .. name .. '", "steps": 100, "train_seconds": 50}')
  else
    write(d .. "/options.json", '{"steps": 100}')
    write(d .. "/metrics.jsonl", '{"step": 100, "time": 25}\n')
  end
  write(d .. "/done", "")
end

T.test("results.lua: tables from finished runs, resume skips them", function()
  local out = os.tmpname()
  os.remove(out)
  for s, fd in ipairs{100, 110, 120} do fake_run(out, "lsgan", "luagan", s, fd, 200) end
  for s, fd in ipairs{130, 140, 150} do fake_run(out, "lsgan", "twin", s, fd, 400) end
  local text, ok = results("--recipes lsgan --seeds 1-3 --out " .. q(out))
  T.ok(ok, text)
  T.ok(text:find("0 job(s) to run", 1, true), "finished runs are not rerun: " .. text)
  local f = assert(io.open(out .. "/results.md"))
  local md = f:read("a")
  f:close()
  -- luagan 110 +- 5.77, twin 140 +- 5.77: t = -30 / sqrt(2 * 100/3) = -3.67, df 4
  T.ok(md:find("| `lsgan` | 100 | 3 / 3 | 110.0 ± 5.8 | 140.0 ± 5.8 | -3.67 (df 4.0) | 200 / 400 | " ..
               "0.50 / 0.25 | 4.00 / 2.00 |", 1, true), md)
  T.ok(md:find("| `lsgan` | twin | s1 130.0, s2 140.0, s3 150.0 |", 1, true), md)
  local js = lgio.json_decode(assert(io.open(out .. "/results.json")):read("a"))
  T.eq(js.seeds, {1, 2, 3})
  -- another sample count for the same OUT is refused: the runs would not be comparable
  local msg, ok2 = results("--recipes lsgan --seeds 1-3 --n 500 --out " .. q(out))
  T.ok(not ok2 and msg:find("made with n = '10000'", 1, true), msg)
  os.execute("rm -rf " .. q(out))
end)

T.test("results.lua --store: records outlive OUT, a recorded run is not rerun, tables read them", function()
  local out, out2, store = os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(out); os.remove(out2); os.remove(store)
  for s, fd in ipairs{100, 110, 120} do fake_run(out, "lsgan", "luagan", s, fd, 200) end
  for s, fd in ipairs{130, 140, 150} do fake_run(out, "lsgan", "twin", s, fd, 400) end
  write(out .. "/lsgan/luagan/s1/commit", "abc1234\n")
  write(out .. "/lsgan/luagan/s1/machine", "Some CPU\n2\n")
  write(out .. "/lsgan/luagan/s1/load_start", "1.50 1.20 1.00\n")
  write(out .. "/lsgan/luagan/s1/load_end", "2.25 1.90 1.10\n")
  write(out .. "/lsgan/luagan/s1/samples_final.png", "png")
  local text, ok = results("--recipes lsgan --seeds 1-3 --tables-only --out " .. q(out) .. " --store " .. q(store))
  T.ok(ok, text)
  T.ok(text:find("6 run(s) recorded", 1, true), text)
  local rec = lgio.json_decode(assert(io.open(store .. "/lsgan/luagan/s1.json")):read("a"))
  T.eq(rec.recipe, "lsgan"); T.eq(rec.side, "luagan"); T.eq(rec.seed, 1)
  T.near(rec.fd.fd, 100); T.near(rec.cpu, 200); T.eq(rec.commit, "abc1234")
  T.eq(rec.machine, "Some CPU, 2 cores"); T.eq(rec.config.n, 10000); T.eq(rec.dir, nil)
  T.ok(io.open(store .. "/lsgan/luagan/s1.png"), "seed 1 keeps its grid")
  T.ok(not io.open(store .. "/lsgan/luagan/s2.png"), "other seeds do not")
  -- a fresh OUT with the same store: nothing to run, the same table, the grid linked in the store
  text, ok = results("--recipes lsgan --seeds 1-3 --out " .. q(out2) .. " --store " .. q(store) ..
                     " --grid-link results")
  T.ok(ok, text)
  T.ok(text:find("0 job(s) to run", 1, true), text)
  T.ok(text:find("| `lsgan` | 100 | 3 / 3 | 110.0 ± 5.8 | 140.0 ± 5.8 | -3.67 (df 4.0) | 200 / 400 |", 1, true), text)
  T.ok(text:find("![lsgan luagan](results/lsgan/luagan/s1.png)", 1, true), text)
  T.ok(text:find("Runs: 6; commits abc1234 (1), unrecorded (5); machines Some CPU, 2 cores (1), " ..
                 "unrecorded (5); load average (1 min, before and after training) 1.50-2.25.", 1, true), text)
  -- the store keeps its settings: another sample count is refused
  local msg, ok2 = results("--recipes lsgan --seeds 1-3 --n 500 --out " .. q(out2 .. "x") .. " --store " .. q(store))
  T.ok(not ok2 and msg:find("made with n = '10000'", 1, true) and msg:find("--store", 1, true), msg)
  os.execute("rm -rf " .. q(out) .. " " .. q(out2) .. " " .. q(out2 .. "x") .. " " .. q(store))
end)

T.test("results.lua --dry-run: one job per side and seed, flags after -- reach both sides", function()
  local out = os.tmpname()
  os.remove(out)
  local text, ok = results("--recipes bigan --seeds 1-2 --dry-run --out " .. q(out) .. " -- --steps 5")
  T.ok(ok, text)
  T.ok(text:find("6 job(s) to run", 1, true), text)      -- luagan, twin, untrained x 2 seeds
  T.ok(text:find("run 'bigan' '--seed' '2' '--threads' '1' '--steps' '5' '--steps' '0'", 1, true), text)
  T.ok(text:find("bench/twins/bigan.py' '--seed' '1' '--threads' '1' '--steps' '5'", 1, true), text)
  T.ok(text:find("bench/twins/measure.lua", 1, true), text)
  os.execute("rm -rf " .. q(out))
end)

T.test("results.lua: a bad option or recipe is one line, no traceback", function()
  local text, ok = results("--recipes nope")
  T.ok(not ok, text)
  T.ok(text:find("unknown recipe 'nope'", 1, true) and not text:find("traceback", 1, true), text)
  text, ok = results("--jobs 0")
  T.ok(not ok and text:find("--jobs takes a positive integer", 1, true), text)
end)
