-- A smoke test for every recipe in models/: a few steps at tiny sizes (the
-- recipe's `smoke` options, one thread), finite metrics, the files written, and a
-- checkpoint that reloads (through the recipe name, as `luagan sample` does)
-- into identical samples. Recipes added later are picked up automatically;
-- a recipe opts out with `smoke = false`, and files in models/ that are not
-- recipes are listed in NOT_RECIPES.
local T = ...
local lg = require "luagan"
local recipe = require "luagan.recipe"
local train = require "luagan.train"
local lgio = require "luagan.io"

-- models/*.lua that are not GAN recipes built with luagan.recipe
local NOT_RECIPES = {classifier = true}

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local TMP = os.tmpname()
os.remove(TMP)
TMP = TMP .. "_recipes"
assert(os.execute("mkdir -p " .. q(TMP)))

local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local paths = recipe.list()
local names = {}
for n in pairs(paths) do
  if not NOT_RECIPES[n] then names[#names + 1] = n end
end
table.sort(names)

T.test("the bundled recipes are found", function()
  local have = {}
  for _, n in ipairs(names) do have[n] = true end
  T.ok(have.gan and have.dcgan, "models/gan.lua and models/dcgan.lua: " .. table.concat(names, ", "))
end)

local function finite_metrics(path, name)
  local recs = lgio.read_jsonl(path)
  T.ok(#recs > 0, name .. ": metrics.jsonl has records")
  local nmetrics = 0
  for _, r in ipairs(recs) do
    for k, v in pairs(r) do
      if type(v) == "number" then
        T.ok(v == v and math.abs(v) < math.huge, string.format("%s: %s = %s at step %s", name, k,
                                                               tostring(v), tostring(r.step)))
        if k ~= "step" and k ~= "epoch" and k ~= "time" and k ~= "steps_per_s" then
          nmetrics = nmetrics + 1
        end
      end
    end
  end
  T.ok(nmetrics > 0, name .. ": step() returned some metrics")
end

for _, name in ipairs(names) do
  T.test("smoke: " .. name, function()
    local src = read(paths[name])
    T.ok(src:match("^%-%-"), name .. ": starts with a header comment")
    local r = recipe.load(paths[name])
    T.eq(r.name, name, "the recipe's name matches its file")
    local h = r:help()
    T.ok(h:find(r.about, 1, true), "--help shows the about line")
    for _, o in ipairs(r:option_list()) do
      T.ok(h:find("--" .. o.name:gsub("_", "-"), 1, true), "--help lists " .. o.name)
    end
    if r.smoke == false then return end
    T.ok(type(r.smoke) == "table", name .. ": declares smoke options (or smoke = false)")
    local out = TMP .. "/" .. name
    local opts = {}
    for k, v in pairs(r.smoke) do opts[k] = v end
    opts.out, opts.quiet = out, true
    -- one thread: CI runs test files side by side, and OpenMP threads that
    -- wait on each other on a busy machine make a run many times slower
    if opts.threads == nil then opts.threads = 1 end
    if opts.sample_every == nil then opts.sample_every = 2 end
    if opts.ckpt_every == nil then opts.ckpt_every = 0 end    -- the final one (DCGAN's is 150 MB)
    if opts.log_every == nil then opts.log_every = 1 end
    local state, info = train.run(r, opts)
    T.eq(info.interrupted, false)
    T.eq(info.step, r:parse(opts).steps)
    finite_metrics(out .. "/metrics.jsonl", name)
    local ckpt = out .. "/checkpoint.safetensors"
    T.ok(read(ckpt), name .. ": checkpoint written")
    T.eq((read(out .. "/loss_curve.png") or ""):sub(2, 4), "PNG", name .. ": loss curve")
    if not r.sample then return end
    T.eq((read(out .. "/samples_final.png") or ""):sub(2, 4), "PNG", name .. ": samples_final.png")
    -- the checkpoint, reloaded by recipe name, gives the same samples
    lg.manual_seed(11)
    local y1 = train.sample(r, state, out .. "/a.png", {n = 8})
    local state2, r2 = train.load(ckpt)
    T.eq(r2.name, name)
    lg.manual_seed(11)
    local y2 = train.sample(r2, state2, out .. "/b.png", {n = 8})
    T.ok(read(out .. "/a.png"), name .. ": sample(state, path, {n = 8}) writes the file")
    T.eq(read(out .. "/a.png"), read(out .. "/b.png"), name .. ": same picture after reloading")
    if lg.is_tensor(y1) then
      T.ok(lg.is_tensor(y2), "sample returns a tensor both times")
      T.eq(lg.shape_str(y1), lg.shape_str(y2))
      T.eq((y1 - y2):abs():max():item(), 0.0, name .. ": identical samples after reloading")
    end
  end)
end

-- toy2d's automatic --batch / --noise-steps: resolved per mixture by setup and
-- recorded in options.json and the checkpoint (what --resume reuses)
T.test("toy2d resolves its per-mixture defaults and records them", function()
  local r = recipe.load(paths.toy2d)
  local want = {ring = {512, 5}, grid = {1024, 10}}
  for _, mixture in ipairs{"ring", "grid"} do
    local out = TMP .. "/toy2d_auto_" .. mixture
    local _, info = train.run(r, {mixture = mixture, steps = 10, g_hidden = 8, d_hidden = 8,
                                  eval_n = 100, sample_every = 0, ckpt_every = 0, threads = 1,
                                  out = out, quiet = true})
    T.eq({info.opt.batch, info.opt.noise_steps}, want[mixture], mixture .. ": resolved values")
    local saved = lgio.json_decode(read(out .. "/options.json"))
    T.eq({saved.batch, saved.noise_steps}, want[mixture], mixture .. ": options.json")
    local ck = lgio.load_checkpoint(out .. "/checkpoint.safetensors")
    T.eq({ck.train.options.batch, ck.train.options.noise_steps}, want[mixture], mixture .. ": checkpoint")
  end
  local _, info = train.run(r, {mixture = "grid", steps = 4, batch = 16, noise_steps = 3,
                                g_hidden = 8, d_hidden = 8, eval_n = 100, sample_every = 0,
                                ckpt_every = 0, threads = 1, out = TMP .. "/toy2d_given", quiet = true})
  T.eq({info.opt.batch, info.opt.noise_steps}, {16, 3}, "given values are kept")
end)

T.test("cleanup", function()
  os.execute("rm -rf " .. q(TMP))
end)
