-- test_golden.lua: luagan against PyTorch reference values.
--
-- tests/golden/fixtures.lua is written by tests/golden/gen_fixtures.py (run it
-- with Debian's python3-torch to regenerate); this test needs no PyTorch. Each
-- case holds float32 inputs, the Lua source of the op, and float64 references
-- for the output, the first-order gradients for a fixed grad_output and the
-- second-order gradients d(sum_i <grads_i, w_i>)/d inputs for fixed w.
--
-- Tolerance per element (b the reference, scale the largest |b| of that
-- tensor): |a - b| <= RTOL * (|b| + 0.1 * scale) + 1e-6, RTOL = 1e-4. The
-- scale term keeps a near-zero entry of a tensor of O(1) values from demanding
-- more than float32 can give after cancellation.
local T = ...
local lg = require "luagan"

local RTOL = 1e-4

local here = debug.getinfo(1, "S").source:match("^@(.*)[/\\][^/\\]*$") or "."
local cases = dofile(here .. "/../golden/fixtures.lua")

local env = setmetatable({lg = lg, sq = function(y) return y * y end}, {__index = _G})

local function flat(t)
  local v = t:totable()
  if type(v) == "number" then return {v} end
  local out = {}
  local function walk(x)
    if type(x) == "number" then out[#out + 1] = x return end
    for i = 1, #x do walk(x[i]) end
  end
  walk(v)
  return out
end

local function build(spec, requires_grad)
  local t
  if #spec.shape == 0 then t = lg.tensor(spec.data[1])
  else t = lg.tensor(spec.data):reshape(spec.shape) end
  if requires_grad then t:requires_grad_() end
  return t
end

local function shape_str(s) return #s == 0 and "scalar" or table.concat(s, "x") end

-- Compare tensor a (nil meaning zeros) against the reference spec.
local function check(what, a, ref)
  local shape = a and a:shape() or ref.shape
  if shape_str(shape) ~= shape_str(ref.shape) then
    error(string.format("%s: shape %s, expected %s", what, shape_str(shape), shape_str(ref.shape)), 2)
  end
  local av = a and flat(a)
  local scale = 0
  for _, b in ipairs(ref.data) do scale = math.max(scale, math.abs(b)) end
  local nbad, worst, wj = 0, -1, nil
  for j, b in ipairs(ref.data) do
    local x = av and av[j] or 0
    local tol = RTOL * (math.abs(b) + 0.1 * scale) + 1e-6
    local r = math.abs(x - b) / tol
    if r ~= r then r = math.huge end
    if r > 1 then nbad = nbad + 1 end
    if r > worst then worst, wj = r, j end
  end
  if nbad > 0 then
    error(string.format("%s: element %d of %s is %.9g, PyTorch says %.9g (%d of %d elements off, "
      .. "worst %.3g x tolerance)", what, wj, shape_str(ref.shape), av and av[wj] or 0,
      ref.data[wj], nbad, #ref.data, worst), 2)
  end
end

local function missing(c)
  for _, n in ipairs(c.needs or {}) do
    if lg[n] == nil then return n end
  end
end

local skipped = {}

for _, c in ipairs(cases) do
  T.test("golden " .. c.name, function()
    local m = missing(c)
    if m then
      skipped[#skipped + 1] = c.name
      print(string.format("  note: skipping %s: lg.%s is not bound yet", c.name, m))
      return
    end
    local fn = assert(load("return " .. c.lua, "=golden " .. c.name, "t", env))()
    local xs, gi = {}, {}
    for i, spec in ipairs(c.inputs) do
      xs[i] = build(spec, spec.grad)
      if spec.grad then gi[#gi + 1] = xs[i] end
    end
    local out = fn(table.unpack(xs, 1, #c.inputs))
    check("output", out, c.output)

    local gout = build(c.grad_output, false)
    local grads = lg.grad({out}, gi, {grad_outputs = {gout}, create_graph = true, allow_unused = true})
    for k = 1, #gi do check("grad of input " .. k, grads[k], c.grads[k]) end

    -- second order: d(sum_k <grads_k, w_k>)/d inputs
    local s
    for k = 1, #gi do
      if grads[k] and grads[k].requires_grad then
        local term = (grads[k] * build(c.w[k], false)):sum()
        s = s and s + term or term
      end
    end
    local gg = {}
    if s then gg = lg.grad({s}, gi, {allow_unused = true}) end
    for k = 1, #gi do check("second-order grad of input " .. k, gg[k], c.gradgrads[k]) end
  end)
end

T.test("golden fixtures cover the op families", function()
  T.ok(#cases >= 100, "expected at least 100 golden cases, found " .. #cases)
  local names = {}
  for _, c in ipairs(cases) do names[c.name] = true end
  for _, n in ipairs{"wgan_gp_mlp", "wgan_gp_mlp_loss", "r1_mlp", "softplus_gan_loss",
                     "matmul_bcast", "index_select", "logsumexp_big", "var_dims"} do
    T.ok(names[n], "missing golden case " .. n)
  end
  if #skipped > 0 then
    print(string.format("  note: %d golden cases skipped until their bindings exist: %s",
                        #skipped, table.concat(skipped, ", ")))
  end
end)

T.test("golden comparison rejects a 0.1% error", function()
  local c
  for _, x in ipairs(cases) do if x.name == "exp" then c = x end end
  T.ok(c, "case exp missing")
  local out = lg.tensor(c.inputs[1].data):reshape(c.inputs[1].shape):exp()
  check("output", out, c.output)                    -- passes as is
  local bad = {shape = c.output.shape, data = {}}
  for j, v in ipairs(c.output.data) do bad.data[j] = j == 5 and v * 1.001 or v end
  T.errors(function() check("output", out, bad) end, "element 5")
  T.errors(function() check("output", out:view(-1), c.output) end, "shape")
end)
