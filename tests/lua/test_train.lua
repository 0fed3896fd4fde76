-- lg.train and luagan.recipe: option parsing, --help, the loop's files,
-- checkpoint + resume bit-identical to an uninterrupted run, Ctrl-C (a real
-- SIGINT) saving a checkpoint that resumes exactly, atomic checkpoints, the
-- metrics log and `luagan sample`.
local T = ...
local lg = require "luagan"
local recipe = require "luagan.recipe"
local train = require "luagan.train"
local lgio = require "luagan.io"

local has_sys = package.preload["luagan.sys"] ~= nil

local exe = arg and arg[-1]
if exe and exe:find("/") and exe:sub(1, 1) ~= "/" then exe = (os.getenv("PWD") or ".") .. "/" .. exe end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local TMP = os.tmpname()
os.remove(TMP)
TMP = TMP .. "_train"
assert(os.execute("mkdir -p " .. q(TMP)))
local ndirs = 0
local function tmpdir()
  ndirs = ndirs + 1
  return TMP .. "/d" .. ndirs
end
local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end
local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
local function ls(dir)
  local out = {}
  local p = io.popen("ls " .. q(dir) .. " 2>/dev/null")
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

-- A tiny GAN on 2D points with everything a checkpoint must carry: two nets
-- (one with batch norm), two Adam optimizers, a shuffled loader, fresh noise
-- each step, a fixed tensor and extra state through save/load.
local TINY = [[
local lg = require "luagan"
local nn, optim, data = lg.nn, lg.optim, lg.data
return require("luagan.recipe"){
  name = "tiny", about = "a tiny 2D GAN for the tests",
  options = {
    {"steps", 12, "steps"}, {"batch", 8, "batch size"}, {"lr", 0.01, "learning rate"},
    {"marker", "", "create this file after step 3 (the signal test waits for it)"},
    {"kill_at", 0, "send SIGINT to this process after this step (0 = never)"},
    {"sample_every", 4, "samples every N"}, {"ckpt_every", 0, "checkpoints every N"},
    {"log_every", 1, "log every N"},
    {"mode", "a", "a choice", choices = {"a", "b"}}, {"flag", false, "a boolean"},
  },
  setup = function(opt)
    local G = nn.Sequential{nn.Linear(4, 16), nn.BatchNorm1d(16), nn.LeakyReLU(0.2), nn.Linear(16, 2)}
    local D = nn.Sequential{nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)}
    local x = lg.randn(40, 2) * 0.5 + 1
    return {
      opt = opt, G = G, D = D,
      optG = optim.Adam(G:parameters(), {lr = opt.lr, betas = {0.5, 0.999}}),
      optD = optim.Adam(D:parameters(), {lr = opt.lr, betas = {0.5, 0.999}}),
      data = lg.train.stream(data.DataLoader(x, {batch_size = opt.batch, shuffle = true,
                                                 drop_last = true, seed = opt.seed})),
      fixed_z = lg.randn(16, 4), counter = 0,
    }
  end,
  step = function(s, i)
    local x = s.data:next()
    local fake = s.G(lg.randn(s.opt.batch, 4))
    local ld = lg.softplus(-s.D(x)):mean() + lg.softplus(s.D(fake:detach())):mean()
    s.optD:zero_grad(); ld:backward(); s.optD:step()
    local lgen = lg.softplus(-s.D(fake)):mean()
    s.optG:zero_grad(); lgen:backward(); s.optG:step()
    s.counter = s.counter + 1
    if i == 3 and s.opt.marker ~= "" then io.open(s.opt.marker, "w"):close() end
    -- (io.popen, not os.execute: system() ignores SIGINT in the caller while it waits)
    if i == s.opt.kill_at then io.popen("kill -INT " .. require("luagan.sys").getpid()):close() end
    return {loss_d = ld, loss_g = lgen, i = i, counter = s.counter, epoch_seen = s.data.epoch}
  end,
  sample = function(s, path, o)
    local z = o.n and lg.randn(o.n, 4) or s.fixed_z
    local y = s.G(z)           -- train mode: batch norm on the batch (updates running stats)
    lg.image.scatter(path, y)
    return y
  end,
  save = function(s) return {counter = s.counter} end,
  load = function(s, t) s.counter = t.counter end,
}
]]
local TINY_PATH = TMP .. "/tiny.lua"
do
  local f = assert(io.open(TINY_PATH, "w"))
  f:write(TINY)
  f:close()
end
local function tiny() return recipe.load(TINY_PATH) end

-- every tensor, number and string of two checkpoints equal, bit for bit
local function same_tree(a, b, path, skip)
  if skip and skip[path] then return end
  if lg.is_tensor(a) then
    T.ok(lg.is_tensor(b), path .. ": tensor vs " .. type(b))
    T.eq(lg.shape_str(a), lg.shape_str(b), path)
    T.eq(a:numel() == 0 or (a - b):abs():max():item(), a:numel() == 0 or 0.0,
         path .. " differs")
    return
  end
  T.eq(type(a), type(b), path)
  if type(a) == "table" then
    for k, v in pairs(a) do same_tree(v, b[k], path .. "." .. tostring(k), skip) end
    for k in pairs(b) do T.ok(a[k] ~= nil, path .. "." .. tostring(k) .. " only in the second") end
  else
    T.eq(a, b, path)
  end
end

local function same_checkpoint(p1, p2)
  local a, b = lgio.load_checkpoint(p1), lgio.load_checkpoint(p2)
  T.eq(a.train.step, b.train.step, "step")
  T.eq(a.train.rng, b.train.rng, "rng state")
  same_tree(a.state, b.state, "state")
  same_tree(a.extra, b.extra, "extra")
  return a, b
end

local function metrics_without_time(path)
  local out = {}
  for _, r in ipairs(lgio.read_jsonl(path)) do
    r.time, r.steps_per_s = nil, nil
    out[#out + 1] = r
  end
  return out
end

---------------------------------------------------------------------------
-- options

T.test("options: types from defaults, --k=v, -/_ names, booleans, choices, Lua tables", function()
  local r = tiny()
  local opt, given = r:parse{"--lr", "0.5", "--steps=7", "--sample-every", "3", "--flag",
                             "--mode", "b", "--marker", "m.txt"}
  T.eq(opt.lr, 0.5); T.eq(math.type(opt.lr), "float")
  T.eq(opt.steps, 7); T.eq(math.type(opt.steps), "integer")
  T.eq(opt.sample_every, 3)
  T.eq(opt.flag, true)
  T.eq(opt.mode, "b")
  T.eq(opt.marker, "m.txt")
  T.eq(opt.batch, 8)                         -- default kept
  T.eq(opt.seed, 1); T.eq(opt.threads, 0)    -- common options
  T.eq(opt.out, "out/tiny")                  -- default out dir from the name
  T.eq(given, {lr = true, steps = true, sample_every = true, flag = true, mode = true, marker = true})
  T.eq(r:parse{"--flag", "false"}.flag, false)
  T.eq(r:parse{"--flag", "--lr", "1"}.flag, true)
  T.eq(r:parse{"--no-flag"}.flag, false)
  T.eq(r:parse{"--lr", "2"}.lr, 2.0)          -- an integer text for a float option
  T.eq(math.type(r:parse{"--lr", "2"}.lr), "float")
  T.eq(r:parse{"--seed", "-3"}.seed, -3)      -- negative numbers are values
  local o2 = r:parse{steps = 3, lr = 1, quiet = true, out = "/tmp/x"}
  T.eq(o2.steps, 3); T.eq(o2.lr, 1.0); T.eq(o2.quiet, true); T.eq(o2.out, "/tmp/x")
  T.eq(r:defaults().lr, 0.01)
end)

T.test("options: unknown, missing and bad values are clear errors", function()
  local r = tiny()
  T.errors(function() r:parse{"--lrr", "1"} end, "tiny: unknown option --lrr (did you mean --lr?)")
  T.errors(function() r:parse{"--zzzzzz"} end, "`luagan run tiny --help` lists the options")
  T.errors(function() r:parse{"--steps"} end, "option --steps needs a value (integer, default 12)")
  T.errors(function() r:parse{"--steps", "--lr", "1"} end, "option --steps needs a value")
  T.errors(function() r:parse{"--steps", "2.5"} end, 'option --steps takes an integer, got "2.5"')
  T.errors(function() r:parse{"--lr", "fast"} end, 'option --lr takes a number, got "fast"')
  T.errors(function() r:parse{"--mode", "c"} end, 'option --mode must be one of a, b, got "c"')
  T.errors(function() r:parse{"--flag=maybe"} end, "option --flag takes true or false")
  T.errors(function() r:parse{"stray"} end, 'unexpected argument "stray"')
  T.errors(function() r:parse{nosuch = 1} end, "unknown option --nosuch")
  local _, why = r:parse{"--lr", "1", "--help"}
  T.eq(why, "help")
  -- usage errors carry no traceback in the executable: a table whose tostring is the message
  local ok, err = pcall(r.parse, r, {"--bogus"})
  T.ok(not ok and type(err) == "table" and err.usage == true, "a usage error object")
end)

T.test("--help lists every option with its default and help", function()
  local h = tiny():help()
  T.ok(h:find("tiny: a tiny 2D GAN for the tests", 1, true), h)
  T.ok(h:find("%-%-lr 0%.01%s+learning rate"), h)
  T.ok(h:find("%-%-mode a%s+a choice %(a|b%)"), h)
  T.ok(h:find("%-%-steps 12%s+steps"), h)
  T.ok(h:find("%-%-sample%-every 4"), h)          -- a common option with the recipe's default
  T.ok(h:find("%-%-resume \"\"%s+continue from this checkpoint"), h)
  T.ok(h:find("%-%-threads 0"), h)
end)

T.test("recipe{}: missing fields and bad option declarations are errors", function()
  local ok_step = function() end
  T.errors(function() recipe{name = "x", about = "y", step = ok_step} end, "missing field 'setup'")
  T.errors(function() recipe{name = "x", setup = ok_step, step = ok_step} end, "missing field 'about'")
  T.errors(function() recipe{name = "x", about = "y", setup = 1, step = ok_step} end,
           "field 'setup' must be a function, got number")
  T.errors(function()
    recipe{name = "x", about = "y", setup = ok_step, step = ok_step, options = {{"lr", {}, "h"}}}
  end, "option 'lr': the default must be a number, string or boolean")
  T.errors(function()
    recipe{name = "x", about = "y", setup = ok_step, step = ok_step, options = {{"lr", 1}}}
  end, "option 'lr': needs a help string")
  T.errors(function()
    recipe{name = "x", about = "y", setup = ok_step, step = ok_step,
           options = {{"m", "q", "h", choices = {"a", "b"}}}}
  end, "the default q is not one of the choices")
  T.errors(function()
    recipe{name = "x", about = "y", setup = ok_step, step = ok_step, options = {{"steps", 1.5, "h"}}}
  end, "option 'steps' is a common option of type integer")
  T.errors(function()
    recipe{name = "x", about = "y", setup = ok_step, step = ok_step, options = {{"a", 1, "h"}, {"a", 2, "h"}}}
  end, "option 'a' is declared twice")
  T.errors(function()
    recipe{name = "x", about = "y", setup = ok_step, step = ok_step, help = "z"}
  end, "field 'help' is the name of a recipe method")
  T.errors(function() recipe.load(TMP .. "/nope.lua") end, "no recipe file")
  T.errors(function() recipe.load("no_such_recipe_zz") end, "no recipe named 'no_such_recipe_zz'")
end)

---------------------------------------------------------------------------
-- the loop

T.test("a run writes samples, checkpoint, metrics, loss curve and options", function()
  local out = tmpdir()
  local state, info = train.run(tiny(), {out = out, quiet = true, threads = 1, steps = 10,
                                         sample_every = 4, log_every = 3})
  T.eq(info.step, 10); T.eq(info.interrupted, false); T.eq(state.counter, 10)
  local files = table.concat(ls(out), " ")
  T.eq(files, "checkpoint.safetensors loss_curve.png metrics.jsonl options.json " ..
              "samples_00004.png samples_00008.png samples_final.png")
  T.eq(read(out .. "/loss_curve.png"):sub(2, 4), "PNG")
  T.eq(read(out .. "/samples_final.png"):sub(2, 4), "PNG")
  -- metrics: one line per 3 steps with the mean of the step's numbers, and a last partial line
  local recs = lgio.read_jsonl(out .. "/metrics.jsonl")
  T.eq(#recs, 4)
  T.eq({recs[1].step, recs[2].step, recs[3].step, recs[4].step}, {3, 6, 9, 10})
  T.near(recs[1].i, 2); T.near(recs[2].i, 5); T.near(recs[3].i, 8); T.near(recs[4].i, 10)
  for _, r in ipairs(recs) do
    T.ok(r.loss_d == r.loss_d and math.abs(r.loss_d) < 100, "finite loss_d")
    T.ok(type(r.time) == "number" and r.time >= 0 and r.steps_per_s > 0, "time fields")
  end
  T.eq({recs[1].epoch, recs[4].epoch}, {1, 2})    -- 40 points, batch 8: 5 steps an epoch
  local opt = lgio.json_decode(read(out .. "/options.json"))
  T.eq(opt.steps, 10); T.eq(opt.out, out)
  local ck = lgio.load_checkpoint(out .. "/checkpoint.safetensors")
  T.eq(ck.train.step, 10); T.eq(ck.train.recipe, "tiny"); T.eq(ck.train.options.lr, 0.01)
  T.eq(ck.extra.counter, 10)
  T.ok(ck.state.G and ck.state.optD and ck.state.data and ck.state.fixed_z, "state entries saved")
  T.eq(ck.state.opt, nil)                         -- plain tables are not
end)

T.test("resume from a checkpoint is bit-identical to an uninterrupted run (1 thread)", function()
  local a, b = tmpdir(), tmpdir()
  train.run(tiny(), {out = a, quiet = true, threads = 1, steps = 12})
  local _, i1 = train.run(tiny(), {out = b, quiet = true, threads = 1, steps = 7})
  T.eq(i1.step, 7)
  local state, i2 = train.run(tiny(), {"--resume", b .. "/checkpoint.safetensors", "--steps", "12",
                                       "--quiet", "--threads", "1", "--out", b})
  T.eq(i2.step, 12); T.eq(i2.out, b)              -- out dir from the command line, never the file
  T.eq(state.counter, 12)                         -- recipe.load restored the extra state
  same_checkpoint(a .. "/checkpoint.safetensors", b .. "/checkpoint.safetensors")
  -- the logs match step for step (times aside), with no step twice
  T.eq(metrics_without_time(a .. "/metrics.jsonl"), metrics_without_time(b .. "/metrics.jsonl"))
  -- a different seed really is different (the comparison above can fail)
  local c = tmpdir()
  train.run(tiny(), {out = c, quiet = true, threads = 1, steps = 12, seed = 2})
  local ok = pcall(same_checkpoint, a .. "/checkpoint.safetensors", c .. "/checkpoint.safetensors")
  T.ok(not ok, "seed 2 gives another checkpoint")
end)

T.test("resume from an earlier checkpoint truncates the metrics log; errors are clear", function()
  local d = tmpdir()
  train.run(tiny(), {out = d, quiet = true, threads = 1, steps = 5})
  assert(os.execute("cp " .. q(d .. "/checkpoint.safetensors") .. " " .. q(d .. "/at5.safetensors")))
  train.run(tiny(), {resume = d .. "/checkpoint.safetensors", steps = 9, quiet = true, out = d})
  train.run(tiny(), {resume = d .. "/at5.safetensors", steps = 10, quiet = true, out = d})
  local steps = {}
  for _, r in ipairs(lgio.read_jsonl(d .. "/metrics.jsonl")) do steps[#steps + 1] = r.step end
  T.eq(steps, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
  T.errors(function() train.run(tiny(), {resume = d .. "/at5.safetensors", steps = 3, quiet = true}) end,
           "the checkpoint is at step 5, past --steps 3")
  T.errors(function() train.run(tiny(), {resume = d .. "/missing.safetensors", quiet = true}) end,
           "no checkpoint file")
  local other = recipe{name = "other", about = "x", setup = function() return {} end,
                       step = function() end}
  T.errors(function() train.run(other, {resume = d .. "/at5.safetensors", quiet = true, out = tmpdir()}) end,
           "the checkpoint was made by recipe 'tiny'")
end)

T.test("the loop drops the gradients of the state's modules and optimizers after each step", function()
  -- every recipe zeroes before its backward, so a step must never see the
  -- previous step's gradients; the loop frees them between steps (memory)
  local seen = {}
  local r = recipe{name = "grads", about = "x",
    setup = function()
      local net = lg.nn.Linear(3, 2)
      local extra = lg.zeros(2):requires_grad_()
      return {net = net, opt = lg.optim.SGD({extra}, {lr = 0.1}), extra = extra}
    end,
    step = function(s)
      seen[#seen + 1] = (s.net.weight.grad == nil) and (s.extra.grad == nil)
      local loss = s.net(lg.ones(4, 3)):sum() + s.extra:sum()
      loss:backward()          -- no zero_grad here: the loop's drop is what clears them
      s.opt:step()
      return {loss = loss}
    end}
  local state = train.run(r, {out = tmpdir(), quiet = true, steps = 3})
  T.eq(seen, {true, true, true})
  T.ok(state.net.weight.grad == nil and state.extra.grad == nil, "none left after the run")
end)

T.test("checkpoints are atomic: a failing save keeps the last good one", function()
  local d = tmpdir()
  local r = tiny()
  local save = r.save
  r.save = function(s)
    if s.counter == 8 then error("disk full (simulated)") end
    return save(s)
  end
  T.errors(function() train.run(r, {out = d, quiet = true, steps = 10, ckpt_every = 4}) end,
           "disk full (simulated)")
  local ck = lgio.load_checkpoint(d .. "/checkpoint.safetensors")
  T.eq(ck.train.step, 4)
  for _, f in ipairs(ls(d)) do T.ok(not f:find("tmp"), "no temporary file left: " .. f) end
  -- an interrupted write (a truncated file) is rejected, not half-loaded
  local bytes = read(d .. "/checkpoint.safetensors")
  local f = assert(io.open(d .. "/cut.safetensors", "wb"))
  f:write(bytes:sub(1, #bytes // 2))
  f:close()
  T.errors(function() train.load(d .. "/cut.safetensors", {recipe = tiny()}) end)
end)

T.test("train.load rebuilds the state: identical samples", function()
  local d = tmpdir()
  local r = tiny()
  local state = train.run(r, {out = d, quiet = true, threads = 1, steps = 6})
  lg.manual_seed(7)
  local y1 = train.sample(r, state, d .. "/s1.png", {n = 10})
  local state2, r2, opt = train.load(d .. "/checkpoint.safetensors", {recipe = TINY_PATH})
  T.eq(r2.name, "tiny"); T.eq(opt.steps, 6); T.eq(state2.counter, 6)
  lg.manual_seed(7)
  local y2 = train.sample(r2, state2, d .. "/s2.png", {n = 10})
  T.shape(y1, {10, 2})
  T.eq((y1 - y2):abs():max():item(), 0.0)
  T.eq(read(d .. "/s1.png"), read(d .. "/s2.png"))
  -- sampling leaves the global generator alone
  lg.manual_seed(3)
  local before = lg.get_rng_state()
  train.sample(r2, state2, d .. "/s3.png", {n = 4})
  T.eq(lg.get_rng_state(), before)
end)

T.test("errors from a recipe: bad setup result, bad metrics", function()
  local bad = recipe{name = "bad", about = "x", setup = function() return 1 end, step = function() end}
  T.errors(function() train.run(bad, {out = tmpdir(), quiet = true}) end, "bad.setup must return the state table")
  local bad2 = recipe{name = "bad2", about = "x", setup = function() return {} end,
                      step = function() return {loss = "high"} end}
  T.errors(function() train.run(bad2, {out = tmpdir(), quiet = true}) end,
           "metric 'loss' is a string, expected a number")
end)

T.test("stream: endless batches across epochs, resumable", function()
  local loader = lg.data.DataLoader(lg.arange(1, 11), {batch_size = 4, shuffle = true, drop_last = true, seed = 3})
  local s = train.stream(loader)
  local seen = {}
  for i = 1, 5 do seen[i] = s:next():totable() end   -- 2 batches an epoch
  T.eq(s.epoch, 3)
  local sd = s:state_dict()
  local want = s:next():totable()
  local s2 = train.stream(lg.data.DataLoader(lg.arange(1, 11), {batch_size = 4, shuffle = true,
                                                                drop_last = true, seed = 3}))
  s2:load_state_dict(sd)
  T.eq(s2:next():totable(), want)
  local empty = train.stream(lg.data.DataLoader(lg.arange(1, 3), {batch_size = 4, drop_last = true}))
  T.errors(function() empty:next() end, "yields no batches")
end)

---------------------------------------------------------------------------
-- Ctrl-C

T.test("SIGINT: the step finishes, a checkpoint is saved, resume is bit-identical", function()
  if not has_sys then return end          -- only the luagan executable catches SIGINT
  local d = tmpdir()
  local r = tiny()
  local _, info = train.run(r, {out = d, quiet = true, threads = 1, steps = 50, kill_at = 6})
  T.eq(info.interrupted, true)
  T.ok(info.step >= 6 and info.step < 50, "stopped early at " .. info.step)
  local ck = lgio.load_checkpoint(d .. "/checkpoint.safetensors")
  T.eq(ck.train.step, info.step)
  T.eq(ck.extra.counter, info.step)       -- the step that was running finished
  -- resume to 14 and compare with a run that was never stopped
  train.run(tiny(), {resume = d .. "/checkpoint.safetensors", steps = 14, kill_at = 0, quiet = true, out = d})
  local a = tmpdir()
  train.run(tiny(), {out = a, quiet = true, threads = 1, steps = 14})
  same_checkpoint(a .. "/checkpoint.safetensors", d .. "/checkpoint.safetensors")
end)

T.test("SIGINT from outside: luagan run exits 130 after saving", function()
  if not has_sys or not exe then return end
  local d = tmpdir()
  local marker = d .. ".marker"
  local cmd = string.format(
    "%s run %s --out %s --steps 1000000 --threads 1 --marker %s --sample-every 0 --log-every 100 & " ..
    "pid=$!; n=0; while [ ! -f %s ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done; " ..
    "sleep 0.2; kill -INT $pid; wait $pid; echo \"rc=$?\"",
    q(exe), q(TINY_PATH), q(d), q(marker), q(marker))
  local out = sh("timeout 120 sh -c " .. q(cmd))
  T.ok(out:find("rc=130", 1, true), out)
  T.ok(out:find("interrupted after step", 1, true), out)
  T.ok(out:find("continue with: luagan run", 1, true), out)
  local ck = lgio.load_checkpoint(d .. "/checkpoint.safetensors")
  T.ok(ck.train.step >= 3 and ck.train.step < 1000000, "saved at step " .. tostring(ck.train.step))
  T.eq(ck.extra.counter, ck.train.step)
  T.ok(exists(d .. "/samples_final.png"), "samples written on the way out")
end)

T.test("luagan sample CKPT writes a picture from a checkpoint", function()
  if not exe then return end
  local d = tmpdir()
  train.run(tiny(), {out = d, quiet = true, steps = 3})
  local out, code = sh(q(exe) .. " sample " .. q(d .. "/checkpoint.safetensors") .. " --n 20 --out " ..
                       q(d .. "/s.png") .. " --recipe " .. q(TINY_PATH))
  T.eq(code, 0, out)
  T.ok(out:find("wrote " .. d .. "/s.png", 1, true), out)
  T.eq(read(d .. "/s.png"):sub(2, 4), "PNG")
  out, code = sh(q(exe) .. " sample " .. q(d .. "/checkpoint.safetensors") .. " --recipe " .. q(TINY_PATH))
  T.eq(code, 0, out)
  T.ok(exists(d .. "/samples.png"), "default output next to the checkpoint")
  out, code = sh(q(exe) .. " sample " .. q(d .. "/nope.safetensors"))
  T.eq(code, 1)
  T.ok(out:find("no checkpoint file", 1, true) and not out:find("traceback", 1, true), out)
  out, code = sh(q(exe) .. " sample " .. q(d .. "/checkpoint.safetensors") .. " --k 3")
  T.eq(code, 1)
  T.ok(out:find("unknown option --k", 1, true), out)
end)

T.test("cleanup", function()
  os.execute("rm -rf " .. q(TMP))
end)
