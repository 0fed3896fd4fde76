-- What a run writes survives a hostile directory, a full disk and a killed
-- process: temporaries are never opened through a link planted at their name,
-- a failed write (ENOSPC) is an error naming the file and leaves the previous
-- file as it was, the metrics log never keeps half a record, and a run
-- removes the temporaries that killed runs left for its own files (only
-- those, and never a live writer's).
-- The full-disk tests mount a 64 KiB tmpfs (root only); without one they
-- fall back to /dev/full, or say they were skipped.
local T = ...
local lg = require "luagan"
local lio = require "luagan.io"
local recipe = require "luagan.recipe"
local train = require "luagan.train"

local sys = package.preload["luagan.sys"] and require("luagan.sys") or nil

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local TMP = os.tmpname()
os.remove(TMP)
TMP = TMP .. "_durable"
assert(os.execute("mkdir -p " .. q(TMP)))

local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
local function write(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end
local function exists(p) return read(p) ~= nil end
local function ls(dir)
  local out = {}
  local p = io.popen("ls -A " .. q(dir) .. " 2>/dev/null")
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end
local function is_link(p) return os.execute("test -L " .. q(p)) == true end
local function skip(msg) io.stderr:write("  (skipped: ", msg, ")\n") end

-- A recipe that needs no data: one parameter, a checkpoint, a metrics line
-- and a sample file per run.
local function tiny()
  return recipe{
    name = "durable_tiny", about = "the smallest run (tests)",
    options = {{"steps", 1, "steps"}},
    setup = function() return {w = lg.zeros(2)} end,
    step = function(s, i) return {loss = i * 0.5} end,
    sample = function(s, path) lio.write_atomic(path, "not really a png") end,
  }
end
local function run(out, extra)
  local args = {"--out", out, "--quiet"}
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return train.run(tiny(), args)
end

-- A pid no process has (from /proc), or nil off Linux.
local function dead_pid()
  local f = io.open("/proc/sys/kernel/pid_max")
  if not f then return nil end
  local max = tonumber(f:read("l"))
  f:close()
  for pid = max - 1, max - 1000, -1 do
    if not io.open("/proc/" .. pid .. "/stat") then return pid end
  end
end

-- ---- 1. no temporary through a planted link ------------------------------------------------
T.test("links planted at the old temporary names are never followed", function()
  local out = TMP .. "/links"
  assert(os.execute("mkdir -p " .. q(out)))
  local victim = TMP .. "/victim.txt"
  write(victim, "precious")
  -- the names the writers used to pick: fixed ones from train.lua, <pid> ones from C
  local names = {"options.json.tmp", "metrics.jsonl.tmp"}
  if sys then
    for _, f in ipairs{"checkpoint.safetensors", "samples_final.png", "loss_curve.png",
                       "options.json"} do
      names[#names + 1] = f .. ".tmp." .. sys.getpid()
    end
  end
  for _, n in ipairs(names) do assert(os.execute("ln -s " .. q(victim) .. " " .. q(out .. "/" .. n))) end
  run(out)
  run(out, {"--resume", out .. "/checkpoint.safetensors", "--steps", "2"})   -- rewrites metrics.jsonl
  T.eq(read(victim), "precious", "the file behind the links is untouched")
  for _, n in ipairs(names) do T.ok(is_link(out .. "/" .. n), n .. " is still the planted link") end
  T.ok(lio.load_checkpoint(out .. "/checkpoint.safetensors").train.step == 2)
  T.eq(#lio.read_jsonl(out .. "/metrics.jsonl"), 2)
  T.eq(lio.json_decode(read(out .. "/options.json")).steps, 2)
  -- io.write_atomic: a fresh temporary each time, nothing left behind
  lio.write_atomic(out .. "/x.bin", "a\0b")
  T.eq(read(out .. "/x.bin"), "a\0b")
  for _, f in ipairs(ls(out)) do
    T.ok(not f:find("%.tmp%.%d+%.") , "leftover temporary " .. f)
  end
end)

-- ---- 2. a full disk ----------------------------------------------------------------------------
local MNT = TMP .. "/full"
local function mount_small()
  assert(os.execute("mkdir -p " .. q(MNT)))
  if not os.execute("mount -t tmpfs -o size=64k tmpfs " .. q(MNT) .. " 2>/dev/null") then return false end
  return true
end
local function umount() os.execute("umount " .. q(MNT) .. " 2>/dev/null") end

-- fill the file system until it refuses one more byte
local function fill(dir)
  local f = assert(io.open(dir .. "/filler", "wb"))
  f:setvbuf("no")
  local chunk = string.rep("f", 1024)
  while f:write(chunk) do end
  f:close()
  f = io.open(dir .. "/filler2", "wb")
  if f then f:setvbuf("no"); while f:write("f") do end f:close() end
end

T.test("full disk: options.json, write_atomic and the metrics log fail loudly and keep the old file", function()
  if not mount_small() then
    skip("cannot mount a tmpfs (needs root); the /dev/full test covers appends")
    return
  end
  local ok, err = pcall(function()
    local out = MNT .. "/run"
    run(out)                                          -- a good run: options.json, checkpoint, log
    local opts_before = read(out .. "/options.json")
    local log_before = read(out .. "/metrics.jsonl")
    local ck_before = read(out .. "/checkpoint.safetensors")
    T.ok(opts_before and #opts_before > 0 and log_before and ck_before)
    fill(MNT)
    -- a new run in the same directory cannot write options.json: an error
    -- naming it and the OS error, the previous options.json intact
    local msg = T.errors(function() run(out, {"--steps", "3"}) end, "options.json")
    T.ok(msg:find("No space left on device", 1, true), msg)
    T.ok(not msg:find("\n"), "one line: " .. msg)
    T.eq(read(out .. "/options.json"), opts_before)
    -- io.write_atomic directly, with a record larger than any page left
    local big = string.rep("x", 20000)
    msg = T.errors(function() lio.write_atomic(out .. "/options.json", big) end, out .. "/options.json")
    T.ok(msg:find("No space left on device", 1, true), msg)
    T.eq(read(out .. "/options.json"), opts_before)
    -- the checkpoint writer too
    msg = T.errors(function() lio.save_checkpoint(out .. "/checkpoint.safetensors", {w = lg.zeros(10000)}) end,
                   "checkpoint.safetensors")
    T.ok(msg:find("No space left on device", 1, true), msg)
    T.eq(read(out .. "/checkpoint.safetensors"), ck_before)
    -- ... and the training loop's save: a one-line user error, not a traceback
    local tr = require "luagan.train"
    msg = T.errors(function()
      tr.save_checkpoint(out .. "/checkpoint.safetensors", {name = "tiny"}, {w = lg.zeros(10000)},
                         {step = 1, elapsed = 0, opt = {}})
    end, "tiny: cannot save the checkpoint: ")
    T.ok(msg:find("No space left on device", 1, true) and not msg:find("\n"), msg)
    T.eq(read(out .. "/checkpoint.safetensors"), ck_before)
    -- the metrics log: an append that does not fit is an error naming the
    -- file, and the log keeps every earlier record and no half line
    local log = lio.MetricsLog(out .. "/metrics.jsonl")
    msg = T.errors(function() log:write{step = 9, note = big} end, out .. "/metrics.jsonl")
    T.ok(msg:find("No space left on device", 1, true), msg)
    log:close()
    T.eq(read(out .. "/metrics.jsonl"), log_before)
    for _, f in ipairs(ls(out)) do T.ok(not f:find("%.tmp%."), "leftover temporary " .. f) end
  end)
  umount()
  if not ok then error(err, 0) end
end)

T.test("a failed append (/dev/full) is an error naming the file", function()
  local f = io.open("/dev/full", "wb")
  if not f then skip("no /dev/full") return end
  f:close()
  local log = lio.MetricsLog("/dev/full")
  local msg = T.errors(function() log:write{step = 1, loss = 0.5} end, "/dev/full")
  T.ok(msg:find("No space left on device", 1, true), msg)
  msg = T.errors(function() lio.append("/dev/full", "x\n") end, "/dev/full")
  T.ok(msg:find("No space left on device", 1, true), msg)
  T.errors(function() lio.MetricsLog(TMP .. "/no/such/dir/m.jsonl") end, "m.jsonl")
end)

-- ---- 3. stale temporaries of killed runs ----------------------------------------------------------
T.test("a run removes its own files' stale temporaries, nothing else", function()
  local dead = dead_pid()
  if not dead then skip("no /proc to find a dead pid") return end
  local out = TMP .. "/stale"
  assert(os.execute("mkdir -p " .. q(out)))
  local stale = {
    "checkpoint.safetensors.tmp." .. dead .. ".AbC123",
    "checkpoint.safetensors.tmp." .. dead,                -- the form before random suffixes
    "metrics.jsonl.tmp." .. dead .. ".q9Q9q9",
    "options.json.tmp." .. dead .. ".Zz0Zz0",
    "samples_00010.png.tmp." .. dead .. ".S4mple",
    "loss_curve.png.tmp." .. dead .. ".L0ss00",
  }
  local keep = {
    "checkpoint.safetensors.tmp.1.LiVe01",                -- pid 1 runs: a live writer
    "checkpoint.safetensors.tmp." .. dead .. ".short",    -- not the exact pattern
    "checkpoint.safetensors.tmp.bak",
    "checkpoint.safetensors.bak",
    "other.bin.tmp." .. dead .. ".AbC123",                -- not a file the run writes
    "notes.txt", "samples_1.jpg.tmp." .. dead .. ".AbC123",
  }
  for _, n in ipairs(stale) do write(out .. "/" .. n, string.rep("s", 4096)) end
  for _, n in ipairs(keep) do write(out .. "/" .. n, "keep " .. n) end
  -- a link at a stale-looking name is not a temporary: left alone, target too
  write(TMP .. "/victim2.txt", "precious")
  local link = "checkpoint.safetensors.tmp." .. dead .. ".L1nk00"
  assert(os.execute("ln -s " .. q(TMP .. "/victim2.txt") .. " " .. q(out .. "/" .. link)))
  run(out)
  for _, n in ipairs(stale) do T.ok(not exists(out .. "/" .. n), "stale " .. n .. " removed") end
  for _, n in ipairs(keep) do T.eq(read(out .. "/" .. n), "keep " .. n, n .. " kept") end
  T.ok(is_link(out .. "/" .. link), "the link is kept")
  T.eq(read(TMP .. "/victim2.txt"), "precious")
  T.ok(exists(out .. "/checkpoint.safetensors"))
  -- the function itself
  write(out .. "/checkpoint.safetensors.tmp." .. dead .. ".AgAin1", "s")
  T.eq(lio.clean_stale_temps(out, {"checkpoint.safetensors"}), 1)
  T.eq(lio.clean_stale_temps(out, {"checkpoint.safetensors"}), 0)
  T.errors(function() lio.clean_stale_temps(TMP .. "/none", {"x"}) end, "cannot list the directory")
  T.errors(function() lio.clean_stale_temps(out, {"../x"}) end, "not a path")
end)

T.test("cleanup", function()
  umount()
  os.execute("rm -rf " .. q(TMP))
end)
