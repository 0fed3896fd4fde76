-- luagan eval: score generated samples offline (see docs/eval.md).
--
--   luagan eval samples.idx                   # IDX N x 28 x 28 (ubyte 0..255 or float32 [-1,1])
--   luagan eval out/dcgan                     # a run dir: its samples.idx, else its checkpoint
--   luagan eval out/dcgan/checkpoint.safetensors --save-samples dcgan.idx
--   luagan eval samples.idx --json scores.json --no-floor
--   luagan eval --calibrate --n 10000         # floor, noise, blur, dropped classes, replay
--   luagan eval --2d ring 'runs/ring_s{seed}' --seeds 10   # PacGAN protocol over seeds
local USAGE = [[
usage: luagan eval PATH [options]        Fashion-MNIST samples: an IDX file, a run dir or a checkpoint
       luagan eval --calibrate [options] the metrics on real and perturbed real images
       luagan eval --2d ring|grid PATH... [--seeds N]   2D mixtures, mean +- s.e. over runs
options:
  --n N              samples scored (fixed; default 10000, the documented protocol)
  --k K              k of the k-NN precision/recall manifolds (default 3)
  --kid-subsets N    KID subsets (default 100)      --kid-size N   KID subset size (default 1000)
  --memo N           samples in the memorisation check (default 1000, 0 = skip)
  --no-floor         skip the real-train-images reference row
  --seed N           seed of the random subsets and of sampling a checkpoint (default 1)
  --classifier FILE  other classifier weights (default models/weights/classifier.safetensors)
  --recipe FILE      the recipe file a checkpoint of your own recipe was trained from
                     (a checkpoint's recipe is otherwise looked up among the bundled ones)
  --save-samples F   write the scored samples to F as IDX (ubyte)
  --json FILE        write the report as JSON
  --seeds N          with --2d: expand {seed} in PATH to 1..N
  --threads N        CPU threads (under mpirun: cores / ranks on the host by default)
  --test-limit N     only the first N test images as the reference (quick checks;
                     scores are then not the protocol's)
under mpirun (mpirun -np N luagan eval ...) sampling and feature extraction are
split over the ranks; rank 0 prints and writes the same numbers as one process]]

local function fail(msg)
  local ok, recipe = pcall(require, "luagan.recipe")
  if ok and recipe.fail then recipe.fail(msg) end
  error(msg, 0)
end

-- The options, parsed by the one command-line parser (luagan.recipe); nil
-- defaults are the documented ones the code below picks.
local OPTIONS = require("luagan.recipe").options{name = "eval", args = "paths", options = {
  {"n", nil, "samples scored", type = "integer", min = 1},
  {"k", nil, "k of the k-NN manifolds", type = "integer", min = 1},
  {"kid_subsets", nil, "KID subsets", type = "integer", min = 1},
  {"kid_size", nil, "KID subset size", type = "integer", min = 1},
  {"memo", nil, "samples in the memorisation check", type = "integer", min = 0},
  {"no_floor", false, "skip the real-train-images reference row"},
  {"seed", nil, "seed", type = "integer", min = 1},
  {"classifier", nil, "classifier weights", type = "string"},
  {"recipe", nil, "recipe file of a checkpoint", type = "string"},
  {"save_samples", nil, "write the scored samples as IDX", type = "string"},
  {"json", nil, "write the report as JSON", type = "string"},
  {"2d", nil, "2D mixture: ring or grid", type = "string"},
  {"seeds", nil, "with --2d: expand {seed} to 1..N", type = "integer", min = 1},
  {"threads", nil, "CPU threads", type = "integer", min = 1, max = 4096},
  {"calibrate", false, "the metrics on real and perturbed real images"},
  {"test_limit", nil, "only the first N test images as the reference", type = "integer", min = 1},
}}

-- {paths = {...}, ["kid-subsets"] = ..., ...}: the options by their
-- command-line names; {help = true} for --help.
local function parse(args)
  local opt = OPTIONS:parse(args)
  if not opt then return {help = true, paths = {}} end
  local o = {}
  for k, v in pairs(opt) do o[(k:gsub("_", "-"))] = v end
  return o
end

local core = require "luagan.core"
local exists, is_dir = core.isfile, core.isdir

-- Under mpirun every rank runs this command; rank 0 alone prints and writes.
local main_rank = true
local function print(...) if main_rank then _G.print(...) end end

-- how to name the recipe file of a checkpoint that is not from a bundled recipe
local function hint(file) return "luagan eval " .. file .. " --recipe path/to/recipe.lua" end

local SAMPLE_FILES = {"samples.idx", "samples.idx.gz", "samples-idx3-ubyte", "samples-idx3-ubyte.gz"}

-- What a PATH argument names: "idx", "checkpoint" or "text", with the file.
local function resolve(path)
  if is_dir(path) then
    for _, f in ipairs(SAMPLE_FILES) do
      if exists(path .. "/" .. f) then return "idx", path .. "/" .. f end
    end
    if exists(path .. "/checkpoint.safetensors") then
      return "checkpoint", path .. "/checkpoint.safetensors"
    end
    fail("eval: " .. path .. " holds neither samples (" .. table.concat(SAMPLE_FILES, ", ") ..
         ") nor checkpoint.safetensors")
  end
  if not exists(path) then fail("eval: no such file or directory: " .. path) end
  if path:match("%.safetensors$") then return "checkpoint", path end
  if path:match("%.csv$") or path:match("%.txt$") then return "text", path end
  return "idx", path
end

-- Rows of numbers from a text file ("x y" or "x,y" per line) as (N, D).
local function read_text(lg, path)
  local rows = {}
  for line in io.lines(path) do
    if not line:match("^%s*$") and not line:match("^%s*#") then
      local r = {}
      for v in line:gmatch("[^%s,;]+") do
        r[#r + 1] = tonumber(v) or fail(string.format("eval: %s: %q is not a number", path, v))
      end
      if #rows > 0 and #r ~= #rows[1] then
        fail(string.format("eval: %s: line %d has %d values, the first has %d", path, #rows + 1,
                           #r, #rows[1]))
      end
      rows[#rows + 1] = r
    end
  end
  if #rows == 0 then fail("eval: " .. path .. " has no rows") end
  return lg.tensor(rows)
end

local function write_json(path, value)
  if not main_rank then return end
  local lgio = require "luagan.io"
  local f, err = io.open(path, "w")
  if not f then fail("eval: cannot write " .. path .. ": " .. tostring(err)) end
  f:write(lgio.json_encode(value), "\n")
  f:close()
  print("wrote " .. path)
end

---------------------------------------------------------------------------
-- Fashion-MNIST

local function eval_fashion(lg, ev, o)
  if #o.paths ~= 1 then fail("eval: give one PATH (an IDX file, a run dir or a checkpoint)\n" .. USAGE) end
  local n = o.n or ev.FD_SAMPLES
  local kind, file = resolve(o.paths[1])
  local x
  if kind == "checkpoint" then
    print(string.format("sampling %d images from %s", n, file))
    local r
    x, r = ev.sample_checkpoint(file, n, {seed = o.seed, recipe = o.recipe, hint = hint(file),
                                          dist = o.dist})
    if x:numel() ~= n * 784 then
      fail(string.format("eval: recipe '%s' draws %s samples, not 28x28 images (2D? use --2d)",
                         r.name, table.concat(x:shape(), "x")))
    end
    x = x:clamp(-1, 1)
  elseif kind == "text" then
    fail("eval: " .. file .. ": text samples are for --2d; images must be IDX")
  else
    x = ev.load_samples(file)
  end
  if o["save-samples"] and main_rank then
    ev.save_samples(o["save-samples"], x)
    print("wrote " .. o["save-samples"])
  end
  local r = ev.fashion(x, {n = n, k = o.k, kid_subsets = o["kid-subsets"],
                           kid_size = o["kid-size"], memo = o.memo, floor = not o["no-floor"],
                           seed = o.seed, dist = o.dist})
  r.source = file
  print(ev.format(r))
  print(string.format("(%.1f s)", r.seconds))
  if o.json then write_json(o.json, r) end
  return r
end

-- The metrics on real images and controlled corruptions of them: what each
-- number means on this scale (docs/eval.md shows a full-size run).
local function calibrate(lg, ev, o)
  local n = o.n or ev.FD_SAMPLES
  local ref = ev.reference()
  local train, labels = ref.train_images(), ref.train_labels()
  local seed = o.seed or 1
  local perm = lg.randperm(train:shape()[1])
  local base = train:index_select(1, perm:narrow(1, 1, n))
  local rows = {}
  local function run(name, x)
    local r = ev.fashion(x, {n = n, k = o.k, kid_subsets = o["kid-subsets"],
                             kid_size = o["kid-size"], memo = 0, seed = seed, dist = o.dist})
    rows[#rows + 1] = {name = name, report = r}
    print(string.format("%-28s FD %8.3f  KID*1e3 %8.3f  P %.3f  R %.3f  cov %.2f  KL %.3f  CS %.2f",
                        name, r.fd, 1000 * r.kid, r.precision, r.recall, r.coverage, r.kl_uniform,
                        r.cs))
    io.stdout:flush()
  end
  print(string.format("calibration on %d images (real: random training images, unseen by " ..
                      "the reference test set)", n))
  run("real train images (floor)", base)
  for _, s in ipairs{0.05, 0.1, 0.2, 0.4} do run("gaussian noise " .. s, ev.perturb.noise(base, s, seed)) end
  for _, s in ipairs{0.5, 1, 1.5, 2} do run("gaussian blur " .. s .. " px", ev.perturb.blur(base, s)) end
  -- classes dropped: n distinct training images of the kept classes
  local bl, pl = labels:totable(), perm:totable()
  for _, keep in ipairs{8, 5, 2} do
    local idx = {}
    for _, i in ipairs(pl) do
      if bl[math.tointeger(i)] <= keep then idx[#idx + 1] = i end
      if #idx == n then break end
    end
    run(string.format("classes 1..%d only", keep), train:index_select(1, lg.tensor(idx)))
  end
  -- memorisation: replayed training images (exact and under faint noise)
  -- against held-out images (the second half of the test set, scored against
  -- the first half as the test reference)
  local memo = math.min(o.memo or ev.MEMO_SAMPLES, 5000)
  if memo > 0 then
    local tst = ref.test_images
    local half = tst:shape()[1] // 2
    local test_ref = tst:narrow(1, 1, half):reshape(half, 784)
    local function mrow(name, x)
      local m = ev.memorisation(x, {n = memo, test = test_ref})
      rows[#rows + 1] = {name = name, memorisation = m}
      print(string.format("%-28s d_train/d_test median %.3f (real %.3f)  near copies %5.1f %%  %s",
                          name, m.ratio_median, m.ref_ratio_median, 100 * m.copy_fraction,
                          m.flagged and "FLAGGED" or "ok"))
      io.stdout:flush()
    end
    mrow("memo: held-out test images", tst:narrow(1, half + 1, memo))
    mrow("memo: replayed train images", base)
    mrow("memo: replay + noise 0.05", ev.perturb.noise(base:narrow(1, 1, memo), 0.05, seed))
    mrow("memo: replay + noise 0.1", ev.perturb.noise(base:narrow(1, 1, memo), 0.1, seed))
  end
  if o.json then write_json(o.json, rows) end
end

---------------------------------------------------------------------------
-- 2D

local function eval_2d(lg, ev, o)
  local spec = o["2d"]
  local e2 = lg.eval2d
  if not e2 then fail("eval: --2d needs scripts/luagan/eval2d.lua") end
  if #o.paths == 0 then fail("eval: --2d " .. spec .. " needs PATH(s) of 2D samples\n" .. USAGE) end
  local paths = {}
  for _, p in ipairs(o.paths) do
    if p:find("{seed}", 1, true) then
      if not o.seeds then fail("eval: " .. p .. " has {seed}: give --seeds N") end
      for s = 1, o.seeds do paths[#paths + 1] = (p:gsub("{seed}", tostring(s))) end
    else
      paths[#paths + 1] = p
    end
  end
  local n = o.n or e2.PROTOCOL_SAMPLES
  local results = {}
  for i, p in ipairs(paths) do
    local kind, file = resolve(p)
    local x
    if kind == "checkpoint" then
      x = ev.sample_checkpoint(file, n, {seed = o.seed, recipe = o.recipe, hint = hint(file)})
    elseif kind == "text" then
      x = read_text(lg, file)
    else
      x = lg.load_idx(file)
    end
    if x:dim() ~= 2 or x:size(2) ~= 2 then
      fail(string.format("eval: %s holds %s values, expected N x 2 points", file,
                         table.concat(x:shape(), "x")))
    end
    if x:size(1) > n then x = x:narrow(1, 1, n) end
    if x:size(1) < n then
      io.stderr:write(string.format("eval: warning: %s has %d samples; the protocol uses %d\n",
                                    file, x:size(1), n))
    end
    results[i] = e2.evaluate(x, spec)
    print(string.format("%-40s %s  (%d samples)", file, e2.format(results[i]), x:size(1)))
  end
  local s = e2.summarize(results)
  print(e2.format(s))
  if o.json then write_json(o.json, {summary = s, runs = results, paths = paths}) end
  return s
end

return {
  usage = USAGE,
  help = "score samples (IDX file, run dir or checkpoint): FD, KID, precision/recall, ... (--help)",
  fn = function(args)
    local o = parse(args)
    if o.help then print(USAGE) return 0 end
    local lg = require "luagan"
    -- under mpirun: the work split over the ranks (dist.split_map)
    local dist = lg.dist
    if dist.launched() then dist.init() end
    o.dist = dist.size() > 1
    main_rank = dist.is_main()
    if o.threads then lg.set_num_threads(o.threads)
    elseif o.dist then lg.set_num_threads(math.max(1, lg.get_num_threads() // dist.local_size())) end
    lg.manual_seed(o.seed or 1)
    local ev = lg.eval
    if o.classifier then ev.set_classifier(o.classifier) end
    if o["test-limit"] then ev.reference{test_limit = o["test-limit"], reload = true, dist = o.dist} end
    if o["2d"] then
      if o["2d"] ~= "ring" and o["2d"] ~= "grid" then
        fail("eval: --2d takes ring or grid, got " .. o["2d"])
      end
      eval_2d(lg, ev, o)
    elseif o.calibrate then
      calibrate(lg, ev, o)
    else
      if #o.paths == 0 then print(USAGE) return 1 end
      eval_fashion(lg, ev, o)
    end
    return 0
  end,
}
