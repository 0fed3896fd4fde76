-- luagan.train: the training loop every recipe runs in (docs/training.md).
--
--   local train = require "luagan.train"         -- also lg.train
--   local state, info = train.run(recipe, {"--steps", "200", "--out", "/tmp/x"})
--   local state, r, opt = train.load("out/dcgan/checkpoint.safetensors")
--
-- run: parse the options, seed, set threads, state = recipe.setup(opt),
-- resume if asked, then for each step: recipe.step, progress, metrics log,
-- sample grids and checkpoints on schedule; Ctrl-C finishes the step, saves
-- and returns. A checkpoint holds the top-level state entries that have
-- state_dict/load_state_dict (modules, optimizers, loaders) or are tensors,
-- recipe.save(state), the step, the RNG state and the options, so a resumed
-- run continues exactly where the saved one was.
local lg = require "luagan"
local lgio = require "luagan.io"
local recipe = require "luagan.recipe"

local train = {}

-- process services (SIGINT/SIGTERM flag, isatty, monotonic clock) live in
-- luagan.core, so a stock lua5.4 with the rock behaves as the executable
local core = require "luagan.core"

local clock = core.clock

local is_tensor = require("luagan.util").is_tensor

local function checkpointable(v)
  return type(v) == "table" and type(v.state_dict) == "function"
         and type(v.load_state_dict) == "function"
end

-- Create the output directory (and its parents) without a shell; a path
-- that cannot be made is the user's --out, so a usage error.
function train.mkdir(dir)
  local ok, err = pcall(core.mkdir_p, dir)
  if not ok then recipe.fail("train: cannot create the output directory: " .. tostring(err)) end
  if not core.writable(dir) then recipe.fail("train: the output directory " .. dir .. " is not writable") end
end

-- Replace path with text atomically (luagan.io.write_atomic: exclusive
-- temporary, every write checked, the previous file kept on failure). A
-- failure (full disk, no permission) is the system's, not a bug: one line.
local function write_atomic(path, text)
  local ok, err = pcall(lgio.write_atomic, path, text)
  if not ok then recipe.fail("train: " .. tostring(err)) end
end

local function fmt_time(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%dh%02dm", s // 3600, (s % 3600) // 60)
end
train.format_time = fmt_time

local function fmt_num(v)
  if v ~= v then return "nan" end
  local a = math.abs(v)
  if a ~= 0 and (a < 1e-3 or a >= 1e5) then return string.format("%.3e", v) end
  return string.format("%.4g", v)
end

---------------------------------------------------------------------------
-- data streams

local Stream = {}
Stream.__index = Stream

-- stream(loader): an endless iterator over a DataLoader's batches, epoch after
-- epoch. s:next() returns the next batch; s.epoch is its epoch (1-based).
-- Checkpoints the loader's position (state_dict / load_state_dict).
function train.stream(loader)
  if type(loader) ~= "table" or type(loader.epoch) ~= "function" then
    error("train.stream: expected a DataLoader (something with :epoch()), got " .. type(loader), 2)
  end
  return setmetatable({loader = loader, epoch = 0}, Stream)
end

-- Under lg.dist the loader is sharded (train.run calls loader:set_shard):
-- every rank walks the same shuffled order and takes its slice of each
-- global batch.
function Stream:next()
  for _ = 1, 2 do
    if not self.it then
      self.it = self.loader:epoch()
      self.epoch = self.loader.cur and self.loader.cur.epoch or (self.epoch + 1)
    end
    local r = table.pack(self.it())
    if r[1] ~= nil then return table.unpack(r, 1, r.n) end
    self.it = nil
  end
  local l = self.loader
  local ranks = type(l.shard_info) == "function" and select(2, l:shard_info()) or 1
  recipe.fail(string.format("train: the data loader yields no batches (%s examples, batch size %s%s%s): " ..
                            "give a smaller --batch or more data", tostring(l.n), tostring(l.batch_size),
                            ranks > 1 and string.format(" x %d ranks", ranks) or "",
                            l.drop_last and ", incomplete batches dropped" or ""))
end

function Stream:state_dict() return self.loader:state_dict() end

function Stream:load_state_dict(s)
  self.loader:load_state_dict(s)
  self.it = nil
  self.epoch = math.tointeger(tonumber(s.epoch)) or self.epoch
end

function train.is_stream(v) return getmetatable(v) == Stream end

---------------------------------------------------------------------------
-- checkpoints

-- The saved part of a state table: sorted keys for a stable file.
local function state_keys(state)
  local keys = {}
  for k, v in pairs(state) do
    if type(k) == "string" and (is_tensor(v) or checkpointable(v)) then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

local function collect(state)
  local out = {}
  for _, k in ipairs(state_keys(state)) do
    local v = state[k]
    out[k] = is_tensor(v) and v:detach() or v:state_dict()
  end
  return out
end

-- the first line of an error, without Lua's "file:line:" position (user-facing)
local function first_line(err)
  local msg = tostring(err):match("^[^\n]*")
  return msg:gsub("^[^%s:]+%.lua:%d+: ", "")
end

-- Copy a checkpoint's state into a state built by setup (same recipe and
-- options): every saved entry must exist in the state and the other way round.
local function restore(state, saved, where)
  if type(saved) ~= "table" then recipe.fail(where .. ": no state in the checkpoint") end
  for _, k in ipairs(state_keys(state)) do
    if saved[k] == nil then
      recipe.fail(string.format("%s: the checkpoint has no '%s' (the state from setup has it; " ..
                                "different recipe version?)", where, k))
    end
  end
  for k, v in pairs(saved) do
    local cur = state[k]
    if cur == nil then
      recipe.fail(string.format("%s: the checkpoint has '%s' but the state from setup has no such field",
                                where, tostring(k)))
    end
    if is_tensor(cur) then
      if not is_tensor(v) or lg.shape_str(v) ~= lg.shape_str(cur) then
        recipe.fail(string.format("%s: '%s' is %s in the state but %s in the checkpoint", where, k,
                                  lg.shape_str(cur), is_tensor(v) and lg.shape_str(v) or type(v)))
      end
      lg.no_grad(function() cur:copy_(v) end)
    elseif checkpointable(cur) then
      local ok, err = pcall(cur.load_state_dict, cur, v)
      if not ok then recipe.fail(string.format("%s: loading '%s': %s", where, k, first_line(err))) end
    else
      error(string.format("%s: '%s' in the state cannot load a checkpoint entry", where, k), 0)
    end
  end
end

-- Save the run to path (atomically).
local function save(path, r, state, info)
  local ck = {
    state = collect(state),
    train = {recipe = r.name, recipe_path = r._path or "", step = info.step,
             rng = lg.get_rng_state(), elapsed = info.elapsed, options = info.opt},
  }
  if r.save then
    local extra = r.save(state)
    if extra ~= nil then
      if type(extra) ~= "table" then error(r.name .. ".save must return a table, got " .. type(extra), 0) end
      ck.extra = extra
    end
  end
  -- a write that fails (a full disk, a directory gone) is the machine's
  -- problem, not a bug: one line naming the file; the previous checkpoint stays
  local ok, err = pcall(lgio.save_checkpoint, path, ck, {metadata = {["luagan.format"] = "luagan-train-1"}})
  if not ok then
    recipe.fail(string.format("%s: cannot save the checkpoint: %s", r.name, first_line(err)))
  end
end
train.save_checkpoint = save

-- Options of a checkpoint, merged into recipe r's: saved values, then the
-- names in `given` from opt on top. Where files go (out) and what to resume
-- come from the command line or the defaults, never from the file: a
-- checkpoint must not choose where a run writes.
local FROM_COMMAND_LINE = {out = true, resume = true}

local function merge_options(r, saved, opt, given, where)
  local out = r:defaults()
  if type(saved) ~= "table" then saved = {} end
  for name, v in pairs(saved) do
    local o = r._index[name]
    if o and not FROM_COMMAND_LINE[name] then
      local ok, cv = pcall(r.convert, r, o, v)
      if not ok then recipe.fail(where .. ": saved option " .. name .. ": " .. first_line(cv)) end
      out[name] = cv
    end
  end
  for name in pairs(given or {}) do out[name] = opt[name] end
  return out
end

-- Read a training checkpoint; whatever is wrong with the file (missing, a
-- directory, garbage, truncated, another program's safetensors) is a usage
-- error naming it.
local function read_checkpoint(path, where)
  if core.isdir(path) then recipe.fail(where .. ": " .. path .. " is a directory, not a checkpoint file") end
  if not core.isfile(path) then recipe.fail(where .. ": no checkpoint file " .. path) end
  local ok, ck = pcall(lgio.load_checkpoint, path)
  if not ok then
    recipe.fail(string.format("%s: %s is not a readable checkpoint: %s", where, path, first_line(ck)))
  end
  if type(ck) ~= "table" or type(ck.train) ~= "table" or type(ck.train.recipe) ~= "string"
     or math.type(ck.train.step) ~= "integer" or ck.train.step < 0 then
    recipe.fail(where .. ": " .. path .. " is not a luagan training checkpoint (no train.recipe/step)")
  end
  return ck
end

-- The recipe a checkpoint names, looked up by name among the recipe
-- directories only (recipe.find): nothing a file says is ever loaded as a
-- path, so a checkpoint cannot run code of its choosing (docs/training.md,
-- "Loading a checkpoint never runs code"). A run made from the user's own
-- recipe file needs that file named again (how is the caller's `hint`).
local function find_recipe(ck, where, hint)
  local name = ck.train.recipe
  local path = recipe.find(name)
  if path then return (recipe.load(name)) end
  local shown = name:match("^[%w_%.%-]+$") and ("'" .. name .. "'") or "(a name that is not a recipe name)"
  recipe.fail(string.format("%s: the checkpoint was made by recipe %s, which is not a bundled recipe; " ..
                            "if it came from your own recipe file, name that file: %s", where, shown,
                            hint or "train.load(path, {recipe = \"path/to/recipe.lua\"})"))
end

-- load(path, {recipe = r, options = {...}, hint = "..."}) -> state, r, opt, ck
-- Rebuild a trained state from a checkpoint: find the recipe it names among
-- the bundled ones (or use o.recipe: a recipe, or the path or name of one
-- the caller chose), run setup with the saved options (o.options on top),
-- load every saved entry and the generator state. o.hint: how the user names
-- their own recipe file, for the error when the recipe is not bundled.
function train.load(path, o)
  local where = "train.load"
  o = o or {}
  for k in pairs(o) do
    if k ~= "recipe" and k ~= "options" and k ~= "hint" and k ~= "where" then
      error("train.load: unknown option '" .. tostring(k) .. "' (expected: recipe, options, hint, where)", 2)
    end
  end
  where = o.where or where
  local ck = read_checkpoint(path, where)
  local r = o.recipe
  if type(r) == "string" then r = recipe.load(r) end
  r = r or find_recipe(ck, where, o.hint)
  if ck.train.recipe ~= r.name then
    recipe.fail(string.format("%s: %s was made by recipe '%s', not '%s'", where, path, ck.train.recipe, r.name))
  end
  local given = {}
  for k in pairs(o.options or {}) do given[k] = true end
  local opt = merge_options(r, ck.train.options, o.options, given, where)
  lg.manual_seed(opt.seed)
  local state = r.setup(opt)
  if type(state) ~= "table" then error(r.name .. ".setup must return the state table", 0) end
  restore(state, ck.state, where .. " (" .. path .. ")")
  if r.load and ck.extra ~= nil then r.load(state, ck.extra) end
  lg.set_rng_state(ck.train.rng)
  return state, r, opt, ck
end

---------------------------------------------------------------------------
-- samples

-- sample(r, state, path, o): recipe.sample under no_grad, leaving the global
-- generator as it was (sampling must not change the training stream).
-- Returns what recipe.sample returned (ideally the tensor it drew).
function train.sample(r, state, path, o)
  if not r.sample then return nil end
  local rng = lg.get_rng_state()
  local ok, res = pcall(lg.no_grad, function() return r.sample(state, path, o or {}) end)
  lg.set_rng_state(rng)
  if not ok then error(res, 0) end
  return res
end

---------------------------------------------------------------------------
-- progress

local Progress = {}
Progress.__index = Progress

local function new_progress(r, opt, start, tty)
  local total = opt.steps
  local every = opt.print_every
  if every <= 0 then every = math.max(1, (total - start) // 20) end
  return setmetatable({name = r.name, total = total, start = start, tty = tty,
                       quiet = opt.quiet, every = every, last_draw = -math.huge,
                       ema = {}, ema_n = {}, keys = {}}, Progress)
end

-- The numbers shown: on a terminal a bias-corrected moving average (the bar
-- redraws several times a second); in plain lines the mean over the steps
-- since the previous line.
function Progress:update(m)
  self.sum, self.count = self.sum or {}, (self.count or 0) + 1
  for k, v in pairs(m) do
    if not self.ema[k] then
      self.keys[#self.keys + 1] = k
      table.sort(self.keys)
      self.ema[k] = 0
    end
    self.ema[k] = 0.9 * self.ema[k] + 0.1 * v
    self.ema_n[k] = (self.ema_n[k] or 0) + 1
    self.sum[k] = (self.sum[k] or 0) + v
  end
end

function Progress:values()
  local out = {}
  for _, k in ipairs(self.keys) do
    if self.tty then out[k] = self.ema[k] / (1 - 0.9 ^ self.ema_n[k])
    elseif self.sum[k] then out[k] = self.sum[k] / self.count end
  end
  return out
end

function Progress:line(i, epoch, rate)
  local eta = rate > 0 and (self.total - i) / rate or math.huge
  local parts, vals = {}, self:values()
  for _, k in ipairs(self.keys) do
    if vals[k] then parts[#parts + 1] = k .. " " .. fmt_num(vals[k]) end
  end
  local ep = epoch and (" ep " .. epoch) or ""
  return string.format("%d/%d%s | %.2f it/s | ETA %s%s", i, self.total, ep, rate, fmt_time(eta),
                       #parts > 0 and " | " .. table.concat(parts, " ") or "")
end

function Progress:show(i, epoch, rate, now, force)
  if self.quiet or self.shown == i then return end
  if self.tty then
    if not force and now - self.last_draw < 0.2 then return end
    self.last_draw = now
    local width = 24
    local frac = self.total > 0 and i / self.total or 1
    local fill = math.floor(frac * width + 0.5)
    local bar = string.rep("=", fill) .. (fill < width and ">" or "") .. string.rep(" ", width - fill - 1)
    io.stdout:write("\r\27[K[", bar:sub(1, width), "] ", self:line(i, epoch, rate))
    io.stdout:flush()
    self.shown = i
  elseif force or (i - self.start) % self.every == 0 then
    io.stdout:write("[", self.name, "] step ", self:line(i, epoch, rate), "\n")
    io.stdout:flush()
    self.sum, self.count, self.shown = {}, 0, i
  end
end

-- a message line that does not garble the bar (after finish: below the final bar)
function Progress:say(msg)
  if self.quiet then return end
  if self.tty and not self.done then io.stdout:write("\r\27[K") end
  io.stdout:write(msg, "\n")
  io.stdout:flush()
  self.last_draw = -math.huge
end

-- leave the final bar on the screen
function Progress:finish()
  if self.quiet or not self.tty or self.done then return end
  self.done = true
  if self.last_draw > -math.huge then io.stdout:write("\n") io.stdout:flush() end
end

local function find_stream(state)
  for _, k in ipairs(state_keys(state)) do
    if train.is_stream(state[k]) then return state[k] end
  end
end

-- the metrics of one step as plain numbers
local function numbers(m, r, i)
  local out = {}
  if m == nil then return out end
  if type(m) ~= "table" then
    error(string.format("%s.step must return a table of metrics (or nothing), got %s at step %d",
                        r.name, type(m), i), 0)
  end
  for k, v in pairs(m) do
    if is_tensor(v) then v = v:item() end
    if type(v) ~= "number" then
      error(string.format("%s.step: metric '%s' is a %s, expected a number or a one-element tensor",
                          r.name, tostring(k), type(v)), 0)
    end
    out[k] = v + 0.0
  end
  return out
end

-- Keep the records of a metrics log up to step (a resumed run rewrites what
-- came after its checkpoint).
local function truncate_log(path, step)
  if not core.isfile(path) then return end
  local ok, records = pcall(lgio.read_jsonl, path)
  if not ok then return end
  local lines = {}
  for _, rec in ipairs(records) do
    if type(rec.step) ~= "number" or rec.step <= step then lines[#lines + 1] = lgio.json_encode(rec) end
  end
  write_atomic(path, #lines > 0 and table.concat(lines, "\n") .. "\n" or "")
end

---------------------------------------------------------------------------
-- the loop

local function tty_default()
  return core.isatty(1) and os.getenv("TERM") ~= "dumb"
end

-- run(r, args) -> state, info   (nil when args asked for --help)
-- r: a recipe (or a recipe name/path); args: command-line strings or a table
-- of options (quiet = true silences it). info = {step, out, interrupted,
-- checkpoint, metrics, samples, elapsed, opt}.
---------------------------------------------------------------------------
-- data parallel: luagan run under mpirun (docs/distributed.md)

-- the entries of a state that have a method of this name, in sorted key
-- order (the same on every rank)
local function state_with(state, method)
  local out = {}
  for _, k in ipairs(state_keys(state)) do
    local v = state[k]
    if type(v) == "table" and type(v[method]) == "function" then out[#out + 1] = v end
  end
  return out
end

-- the modules of a state
local function state_modules(state) return state_with(state, "named_parameters") end

-- After setup: rank 0's weights everywhere, then a noise stream per rank
-- (rank 0 keeps the seed's own, so one rank runs exactly as without MPI).
-- Every data loader of the state (streams' included) takes this rank's
-- slice of each global batch (DataLoader:set_shard).
local function dist_start(dist, state, opt, start)
  for _, m in ipairs(state_modules(state)) do dist.broadcast_module(m) end
  for _, k in ipairs(state_keys(state)) do
    local v = state[k]
    local loader = train.is_stream(v) and v.loader or v
    if type(loader) == "table" and type(loader.set_shard) == "function" then loader:set_shard(true) end
  end
  if dist.rank() > 0 then lg.manual_seed(opt.seed * 1000003 + start * 7919 + dist.rank()) end
end

-- Batch-norm running statistics are each rank's own; average them before
-- rank 0 samples or saves, so the file holds the statistics of all the data.
local function dist_average_buffers(dist, state)
  for _, m in ipairs(state_modules(state)) do
    for name, b in m:named_buffers() do
      if name:match("running_mean$") or name:match("running_var$") then
        dist.allreduce(b, {op = "mean"})
      end
    end
  end
end

-- the mean of every metric over the ranks (sorted names: one allreduce)
local function dist_metrics(dist, m)
  local keys = {}
  for k in pairs(m) do keys[#keys + 1] = k end
  table.sort(keys)
  if #keys == 0 then return m end
  local v = {}
  for i, k in ipairs(keys) do v[i] = m[k] end
  local t = dist.allreduce(lg.tensor(v), {op = "mean"})
  for i, k in ipairs(keys) do m[k] = t[i] end
  return m
end

-- LUAGAN_DIST_PROFILE=1: per step, averaged over the steps since the last
-- log record and over the ranks, the wall time split into compute (the
-- rest), waiting for the slowest rank, communication (every collective)
-- and copies into and out of the gradient buckets; one line on stderr from
-- rank 0 (docs/distributed.md, "Profiling").
local function dist_profile(dist, r, from, to, secs)
  local p = dist.profile_take()
  local steps = to - from
  local v = dist.allreduce(lg.tensor{secs, p.wait, p.comm, p.copy, p.bytes, p.buckets},
                           {op = "mean"}):totable()
  if not dist.is_main() then return end
  local ms = 1000 / steps
  local step, wait, comm, copy = v[1] * ms, v[2] * ms, v[3] * ms, v[4] * ms
  io.stderr:write(string.format("%s: dist profile, steps %d-%d, ms per step (mean of %d ranks): " ..
                                "step %.1f = compute %.1f + wait %.1f + comm %.1f + copy %.1f; " ..
                                "allreduce %.2f MB in %.1f buckets per step\n", r.name, from + 1, to,
                                dist.size(), step, step - wait - comm - copy, wait, comm, copy,
                                v[5] / steps / 1e6, v[6] / steps))
end

function train.run(r, args)
  if type(r) == "string" then
    local path
    r, path = recipe.load(r)
    r._path = path
  end
  if not recipe.is_recipe(r) then error("train.run: expected a recipe, got " .. type(r), 2) end
  local opt, given = r:parse(args)
  if not opt then
    print(r:help())
    return nil, {help = true}
  end
  local start, elapsed0, ck = 0, 0.0, nil
  if opt.resume ~= "" then
    ck = read_checkpoint(opt.resume, r.name .. ": --resume")
    if ck.train.recipe ~= r.name then
      recipe.fail(string.format("%s: --resume %s: the checkpoint was made by recipe '%s'", r.name,
                                opt.resume, ck.train.recipe))
    end
    local resume = opt.resume
    opt = merge_options(r, ck.train.options, opt, given, r.name .. ": --resume")
    opt.resume = resume
    start = ck.train.step
    elapsed0 = tonumber(ck.train.elapsed) or 0.0
    if start > opt.steps then
      recipe.fail(string.format("%s: --resume: the checkpoint is at step %d, past --steps %d " ..
                                "(give a larger --steps to train longer)", r.name, start, opt.steps))
    end
  end
  if opt.log_every == 0 then opt.log_every = 1 end
  -- under mpirun: data parallel over the ranks, rank 0 writes every file
  local dist = require "luagan.dist"
  if dist.launched() then dist.init() end
  local nranks, main = dist.size(), dist.is_main()
  local out = opt.out
  train.mkdir(out)
  local files = {checkpoint = out .. "/checkpoint.safetensors", metrics = out .. "/metrics.jsonl",
                 curve = out .. "/loss_curve.png", options = out .. "/options.json"}
  -- temporaries that a run killed mid-write left for these files (never a live writer's)
  if main then
    lgio.clean_stale_temps(out, {"checkpoint.safetensors", "metrics.jsonl", "loss_curve.png",
                                 "options.json", "samples_*.png"})
  end

  lg.manual_seed(opt.seed)
  if opt.threads > 0 then lg.set_num_threads(opt.threads)
  elseif nranks > 1 then   -- the cores shared by the ranks on this host
    lg.set_num_threads(math.max(1, lg.get_num_threads() // dist.local_size()))
  end
  local state = r.setup(opt)
  if type(state) ~= "table" then
    error(string.format("%s.setup must return the state table, got %s", r.name, type(state)), 0)
  end
  -- after setup: a recipe may resolve automatic values (toy2d's --batch 0), and
  -- options.json records what the run used
  if main then write_atomic(files.options, lgio.json_encode(opt) .. "\n") end
  if ck then
    restore(state, ck.state, r.name .. ": --resume " .. opt.resume)
    if r.load and ck.extra ~= nil then r.load(state, ck.extra) end
    lg.set_rng_state(ck.train.rng)
    if main then truncate_log(files.metrics, start) end
  end
  if nranks > 1 then dist_start(dist, state, opt, start) end
  local log = main and lgio.MetricsLog(files.metrics, {append = ck ~= nil})
  local stream = find_stream(state)
  local progress = new_progress(r, opt, start, tty_default())
  progress.quiet = progress.quiet or not main
  local info = {step = start, out = out, interrupted = false, checkpoint = files.checkpoint,
                metrics = files.metrics, samples = {}, opt = opt, elapsed = elapsed0}
  if not opt.quiet then
    progress:say(string.format("%s: %s steps %d..%d, out %s, seed %d, %d thread(s)", r.name,
                               ck and ("resuming from step " .. start .. ",") or "training,",
                               start + 1, opt.steps, out, opt.seed, lg.get_num_threads()))
    if nranks > 1 then
      progress:say(string.format("%s: data parallel over %d ranks%s", r.name, nranks,
                                 type(opt.batch) == "number" and opt.batch > 0 and
                                 string.format(", batch %d per rank = global batch %d", opt.batch,
                                               opt.batch * nranks) or ""))
    end
  end

  local t0 = clock()
  local acc, count, t_log, i_log = {}, 0, t0, start
  local function flush_log(i)
    if count == 0 then return end
    local now = clock()
    if nranks > 1 and dist.profiling() then dist_profile(dist, r, i_log, i, now - t_log) end
    local rec = {step = i, time = elapsed0 + (now - t0),
                 steps_per_s = (i - i_log) / math.max(now - t_log, 1e-9)}
    if stream then rec.epoch = stream.epoch end
    for k, v in pairs(acc) do rec[k] = v / count end
    if log then
      local ok, err = pcall(log.write, log, rec)   -- a failed append: one line naming the file
      if not ok then recipe.fail(r.name .. ": " .. tostring(err)) end
    end
    acc, count, t_log, i_log = {}, 0, now, i
  end
  local function sample_to(name)
    if not r.sample then return end
    if nranks > 1 then dist_average_buffers(dist, state) end
    if not main then return end
    local path = out .. "/" .. name
    train.sample(r, state, path, {})
    info.samples[#info.samples + 1] = path
    return path
  end
  local function checkpoint(i)
    info.step, info.elapsed = i, elapsed0 + (clock() - t0)
    if nranks > 1 then dist_average_buffers(dist, state) end
    if main then save(files.checkpoint, r, state, info) end
  end

  -- Ctrl-C (SIGINT) and SIGTERM set a flag (luagan.core) that the loop reads
  -- after each step; the previous actions come back when the loop ends,
  -- however it ends.
  local guard <close> = setmetatable({}, {__close = function() core.catch_interrupts(false) end})
  core.catch_interrupts(true)

  -- Every recipe zeroes a net's gradients before its backward, so the ones
  -- left after a step are dead: dropping them here keeps a gradient per
  -- parameter (51 MiB for dcgan) from sitting through the next step's forward
  -- passes, which is where the peak is (docs/perf_notes.md, "Memory").
  local holders = state_with(state, "zero_grad")   -- modules and optimizers
  local i = start
  while i < opt.steps do
    i = i + 1
    local m = numbers(r.step(state, i), r, i)
    for _, h in ipairs(holders) do h:zero_grad() end
    if nranks > 1 then m = dist_metrics(dist, m) end
    for k, v in pairs(m) do acc[k] = (acc[k] or 0) + v end
    count = count + 1
    progress:update(m)
    if i % opt.log_every == 0 then flush_log(i) end
    local now = clock()
    progress:show(i, stream and stream.epoch, (i - start) / math.max(now - t0, 1e-9), now, false)
    if opt.sample_every > 0 and i % opt.sample_every == 0 and i < opt.steps then
      sample_to(string.format("samples_%05d.png", i))
    end
    if opt.ckpt_every > 0 and i % opt.ckpt_every == 0 and i < opt.steps then checkpoint(i) end
    local sig = core.interrupted()
    if nranks > 1 then   -- a signal to any rank stops them all after the same step
      sig = math.tointeger(dist.allreduce_number(sig or 0, "max"))
      if sig == 0 then sig = nil end
    end
    if sig then
      info.interrupted, info.signal = true, sig
      break
    end
  end
  core.catch_interrupts(false)
  -- the step's temporaries cached for the next step are dead now: give them
  -- back before the final checkpoint, samples and loss curve, whose own
  -- allocations would otherwise come on top of them
  lg.mem_trim()
  progress:show(i, stream and stream.epoch, (i - start) / math.max(clock() - t0, 1e-9), clock(), true)
  progress:finish()

  flush_log(i)
  if log then log:close() end
  checkpoint(i)
  local final = i > start or not core.isfile(out .. "/samples_final.png")
  if nranks > 1 then final = dist.allreduce_number(final and 1 or 0, "max") > 0 end  -- hosts agree
  if final then sample_to("samples_final.png") end
  local ok, err = pcall(function()
    local image = require "luagan.image"
    if main and #lgio.read_jsonl(files.metrics) > 0 then image.loss_curve(files.curve, files.metrics) end
  end)
  if not ok then progress:say(r.name .. ": could not draw the loss curve: " .. tostring(err)) end
  if not info.interrupted and r.finish and main then r.finish(state, out) end
  local secs = clock() - t0
  if info.interrupted then
    -- the output directory is never read from the checkpoint: name it again
    local again = out ~= "out/" .. r.name and (" --out " .. out) or ""
    progress:say(string.format("%s: interrupted after step %d; saved %s\n  continue with: " ..
                               "luagan run %s --resume %s%s", r.name, i, files.checkpoint,
                               r._cli or r.name, files.checkpoint, again))
  else
    local wrote = {}
    for _, f in ipairs{"samples_final.png", "checkpoint.safetensors", "metrics.jsonl", "loss_curve.png"} do
      if core.isfile(out .. "/" .. f) then wrote[#wrote + 1] = f end
    end
    progress:say(string.format("%s: %d steps in %s (%.2f it/s); wrote %s/{%s}", r.name,
                               i - start, fmt_time(secs), (i - start) / math.max(secs, 1e-9), out,
                               table.concat(wrote, ", ")))
  end
  info.wall = secs
  return state, info
end

-- main(r, args) -> exit status: run from the command line (luagan run NAME ...).
-- 0 when done; stopped by a signal (after saving), 128 + its number as shells
-- report it: 130 for Ctrl-C (SIGINT), 143 for SIGTERM.
function train.main(r, args)
  local state, info = train.run(r, args)
  if state == nil then return 0 end
  if info.interrupted then return 128 + (math.tointeger(info.signal) or 2) end
  return 0
end

return train
