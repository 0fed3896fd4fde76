-- bench/twins/measure.lua: the conditional and encoder recipes' own measures
-- for a PyTorch twin's run, computed by the same lg.eval functions the
-- recipes' finish() calls, and written to DIR/eval.json with the recipe's
-- fields (so bench/results.lua reads both sides alike).
--
--   build/luagan bench/twins/measure.lua DIR
--
-- DIR is a twin's --out; its run.json says what it exported
-- (bench/twins/common.py):
--   cond_samples.idx + cond_codes.idx, cond_kind "label"   (cgan)
--       -> label_accuracy = lg.eval.label_accuracy(samples, labels)
--   the same with cond_kind "code"                         (infogan)
--       -> code_accuracy, majority_accuracy, mapping (lg.eval.code_accuracy)
--   probe_{train,test}_{z,y}.idx + recon_mse/recon_l1      (bigan, vaegan)
--       -> probe_test, probe_train = lg.eval.linear_probe(z_train, y_train, z_test, y_test)
-- Labels and codes are stored 0-based in the files (PyTorch's) and shifted
-- to luagan's 1-based classes here. A twin that exported nothing gets an
-- eval.json with only its name.
local lg = require "luagan"
local lgio = require "luagan.io"

local function fail(msg) error("measure: " .. msg, 0) end

local dir = arg and arg[1]
if not dir or arg[2] then fail("usage: luagan bench/twins/measure.lua DIR (a twin's --out)") end

local function read(path)
  local f = io.open(path, "r")
  if not f then fail("cannot open " .. path) end
  local s = f:read("a")
  f:close()
  return s
end

local ok, run = pcall(lgio.json_decode, read(dir .. "/run.json"))
if not ok or type(run) ~= "table" then fail(dir .. "/run.json: not a JSON object") end
local name = run.twin or fail(dir .. "/run.json: no field 'twin'")

local function idx(file) return lg.load_idx(dir .. "/" .. file) end
local function classes(file) return idx(file) + 1 end

local r = {recipe = name, side = "twin"}
local ev = lg.eval
if run.cond_kind == "label" then
  r.label_accuracy = ev.label_accuracy(idx("cond_samples.idx"), classes("cond_codes.idx"))
  r.n = run.cond_n
elseif run.cond_kind == "code" then
  local acc, mapping, _, majority = ev.code_accuracy(idx("cond_samples.idx"), classes("cond_codes.idx"))
  local names = {}
  for k = 1, 10 do
    names[k] = string.format("%d->%s", k, mapping[k] and lg.data.FASHION_MNIST_CLASSES[mapping[k]] or "?")
  end
  r.code_accuracy, r.majority_accuracy, r.n = acc, majority, run.cond_n
  r.mapping = table.concat(names, ", ")
elseif run.recon_mse ~= nil then
  r.probe_test, r.probe_train = ev.linear_probe(idx("probe_train_z.idx"), classes("probe_train_y.idx"),
                                                idx("probe_test_z.idx"), classes("probe_test_y.idx"))
  r.recon_mse, r.recon_l1 = run.recon_mse, run.recon_l1
  r.n_test, r.n_probe_train = run.n_test, run.n_probe_train
end

local out = dir .. "/eval.json"
local tmp = out .. ".tmp"
local f = io.open(tmp, "w") or fail("cannot write " .. tmp)
f:write(lgio.json_encode(r), "\n")
f:close()
assert(os.rename(tmp, out))
local parts = {}
for _, k in ipairs{"label_accuracy", "code_accuracy", "majority_accuracy", "probe_test", "probe_train",
                   "recon_mse", "recon_l1"} do
  if r[k] ~= nil then parts[#parts + 1] = string.format("%s %.4f", k, r[k]) end
end
print(string.format("%s twin: %s (%s)", name, #parts > 0 and table.concat(parts, ", ") or "no own measure", out))
