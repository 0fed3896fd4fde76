-- luagan.gradcheck: check analytic gradients against finite differences.
--
--   local gc = require "luagan.gradcheck"     -- also lg.gradcheck / lg.gradgradcheck
--   gc.gradcheck(function(a, b) return a * b:exp() end, {x, y})
--   gc.gradgradcheck(function(a, b) return a * b:exp() end, {x, y})
--
-- fn takes the input tensors and returns one tensor (or a list of tensors).
-- Inputs with requires_grad are checked; the others (masks, indices) are passed
-- through unchanged. On success both return true; on failure they raise an
-- error naming the input, the element and both values, or with {raise=false}
-- return false and the message.
--
-- What is compared. For a projection vector u of the output, the analytic side
-- is one lg.grad call, u^T J (every element of every input's gradient); the
-- numeric side is u^T (f(x + h e_j) - f(x - h e_j)) / 2h for every input element
-- j, accumulated in Lua doubles. With at most `full_max` output elements the
-- projections are the unit vectors (the full Jacobian); otherwise `nproj`
-- Gaussian vectors, which catch any wrong entry of J with probability one.
-- The finite differences are taken once and reused for all projections.
--
-- Finite differences in float32. The function is evaluated in float32, so a
-- central difference with step h carries a rounding error of about
-- ulp(f)/h = 6e-8 |f|/h and a truncation error of h^2 |f'''|/6. We use
-- Richardson extrapolation of two central differences (steps h and 2h),
--   D = (4 D(h) - D(2h)) / 3,
-- whose truncation error is O(h^4) (1e-8 |f^(5)| at h = 1e-2), so h can be
-- large enough that rounding stays small: about 0.75 ulp(f)/h = 5e-6 |f| at the
-- default eps = 1e-2. Each step is the exact difference of the float32 inputs
-- actually used (x+h rounds), so input rounding adds no error. The inputs must
-- stay 2*eps away from kinks (abs, relu, clamp bounds, max ties).
--
-- Tolerance per compared entry (a analytic, n numeric):
--   |a - n| <= atol + rtol * max(|a|, |n|) + noise
-- where noise = 16 ulp of the outputs the entry projects, divided by the step
-- (the float32 rounding floor of the difference quotient; it matters only for
-- large outputs). Rounding of intermediates much larger than the output is not
-- seen by this term: for such functions (logsumexp of values near 40, where
-- x - lse carries ulp(40)) raise atol. Defaults rtol = 2e-3, atol = 1e-4: more than ten times the worst float32
-- error seen over the op test suite, and still fifty times tighter than a 10%
-- error in a formula (the test shows a 1% error is caught).
--
-- gradgradcheck(fn, inputs, opts) checks second order: with a fixed random
-- grad_output v (which requires grad), G(x, v) = lg.grad(fn(x), x, {grad_outputs
-- = v, create_graph = true}) is checked as a function by the same machinery:
-- its analytic VJP is lg.grad(sum_i sum(G_i * w_i), {x..., v}) and its numeric
-- side is finite differences of the first gradient. Checking against v too (as
-- PyTorch does) tests that backward formulas are differentiable in the
-- incoming gradient, which is all the double backward of a linear op (views,
-- sums, matmul) consists of. opts.check_grad_outputs = false skips v.
--
-- Options: eps (1e-2), atol (1e-4), rtol (2e-3), raise (true), nproj (2),
-- full_max (16), richardson (true; false uses plain central differences),
-- check_grad_outputs (true, gradgradcheck only), name (prefix of messages).
local M = {}

local function LG() return package.loaded.luagan or require "luagan" end

local DEFAULTS = {eps = 1e-2, atol = 1e-4, rtol = 2e-3, raise = true, nproj = 2,
                  full_max = 16, richardson = true, check_grad_outputs = true}
local ULP = 2.0 ^ -24                -- half an ulp of float32, relative
local NOISE_ULPS = 16

local function f32(v) return (string.unpack("<f", string.pack("<f", v))) end

local OPTION_NAMES = {"name"}
for k in pairs(DEFAULTS) do OPTION_NAMES[#OPTION_NAMES + 1] = k end
table.sort(OPTION_NAMES)

local function options(opts)
  -- luagan.util's check: the accepted keys and a "did you mean" in the message
  require("luagan.util").check_opts("gradcheck", opts, OPTION_NAMES, 4)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

-- Flat list of a tensor's values (doubles holding float32 values).
local function flat(t)
  local v = t:detach():totable()
  if type(v) == "number" then return {v} end
  local out = {}
  local function walk(x)
    if type(x) == "number" then out[#out + 1] = x return end
    for i = 1, #x do walk(x[i]) end
  end
  walk(v)
  return out
end

local function numel(shape)
  local n = 1
  for i = 1, #shape do n = n * shape[i] end
  return n
end

-- A fresh leaf of the given shape from flat values.
local function build(vals, shape, requires_grad)
  local lg = LG()
  local t
  if #shape == 0 then t = lg.tensor(vals[1])
  elseif #vals == 0 then t = lg.zeros(shape)
  else t = lg.tensor(vals):reshape(shape) end
  if requires_grad then t:requires_grad_() end
  return t
end

-- "[2,3]" (1-based) of flat position j (1-based) in shape.
local function index_str(shape, j)
  if #shape == 0 then return "[] (0-dim)" end
  local idx, k = {}, j - 1
  for d = #shape, 1, -1 do
    idx[d] = k % shape[d]
    k = k // shape[d]
  end
  for d = 1, #shape do idx[d] = idx[d] + 1 end
  return "[" .. table.concat(idx, ",") .. "]"
end

local function as_list(r)
  if type(r) == "table" and not LG().is_tensor(r) then return r end
  return {r}
end

-- The core: F(xs) -> list of tensors; specs: one per input {vals, shape,
-- grad = requires grad, check = compare this input, label}.
local function compare(kind, F, specs, o)
  local lg = LG()
  local function inputs_with(i, j, v)
    local xs = {}
    for k = 1, #specs do
      local s = specs[k]
      local vals = s.vals
      if k == i then
        vals = table.move(s.vals, 1, #s.vals, 1, {})
        vals[j] = v
      end
      if s.fixed then xs[k] = s.tensor else xs[k] = build(vals, s.shape, s.grad) end
    end
    return xs
  end
  local function eval(i, j, v)
    local outs = as_list(F(inputs_with(i, j, v)))
    local vals = {}
    for _, t in ipairs(outs) do
      for _, x in ipairs(flat(t)) do vals[#vals + 1] = x end
    end
    return vals
  end

  -- The base point and the output layout.
  local xs = inputs_with(0)
  local outs = as_list(F(xs))
  local oshapes, n_out = {}, 0
  for k, t in ipairs(outs) do
    oshapes[k] = t:shape()
    n_out = n_out + numel(oshapes[k])
  end
  if n_out == 0 then return true, 0 end

  -- Projections: flat double vectors over all outputs.
  local projs = {}
  if n_out <= o.full_max then
    for k = 1, n_out do
      local u = {}
      for m = 1, n_out do u[m] = m == k and 1 or 0 end
      projs[k] = u
    end
  else
    for p = 1, o.nproj do projs[p] = flat(lg.randn(n_out)) end
  end

  -- Analytic u^T J for every projection: ana[p][i] = flat gradient of input i.
  local wrt, wrt_pos = {}, {}
  for i, s in ipairs(specs) do
    if s.check then wrt[#wrt + 1] = xs[i]; wrt_pos[i] = #wrt end
  end
  if #wrt == 0 then error(kind .. ": no input requires grad", 3) end
  local ana = {}
  for p, u in ipairs(projs) do
    local roots, gouts, at = {}, {}, 0
    for k, t in ipairs(outs) do
      local n = numel(oshapes[k])
      if t.requires_grad then
        roots[#roots + 1] = t
        gouts[#gouts + 1] = build(table.move(u, at + 1, at + n, 1, {}), oshapes[k], false)
      end
      at = at + n
    end
    local res = {}
    if #roots > 0 then
      res = lg.grad(roots, wrt, {grad_outputs = gouts, retain_graph = true, allow_unused = true})
    end
    ana[p] = {}
    for i, s in ipairs(specs) do
      if s.check then
        local g = res[wrt_pos[i]]
        if g then
          local gs = g:shape()
          if table.concat(gs, "x") ~= table.concat(s.shape, "x") then
            error(string.format("%s: gradient of %s has shape %s, the input has %s", kind,
              s.label, table.concat(gs, "x"), table.concat(s.shape, "x")), 3)
          end
          ana[p][i] = flat(g)
        else
          local z = {}
          for j = 1, #s.vals do z[j] = 0 end
          ana[p][i] = z
        end
      end
    end
  end

  -- Numeric side, one input element at a time.
  local worst, worst_ratio, nfail, ncmp = nil, 0, 0, 0
  for i, s in ipairs(specs) do
    if s.check then
      for j = 1, #s.vals do
        local x = s.vals[j]
        local function diff(step)   -- (f(x+) - f(x-)) / (x+ - x-) per output, and the noise floor
          local xp, xm = f32(x + step), f32(x - step)
          local fp, fm = eval(i, j, xp), eval(i, j, xm)
          local h = xp - xm
          local d, mag = {}, {}
          for k = 1, n_out do
            d[k] = (fp[k] - fm[k]) / h
            mag[k] = (math.abs(fp[k]) + math.abs(fm[k])) / h  -- rounding floor
          end
          return d, mag
        end
        local d1, mag1 = diff(o.eps)
        local d, mag = d1, mag1
        if o.richardson then
          local d2, mag2 = diff(2 * o.eps)
          d, mag = {}, {}
          for k = 1, n_out do
            d[k] = (4 * d1[k] - d2[k]) / 3
            mag[k] = (4 * mag1[k] + mag2[k]) / 3
          end
        end
        for p, u in ipairs(projs) do
          local num, noise = 0.0, 0.0
          for k = 1, n_out do
            if u[k] ~= 0 then
              num = num + u[k] * d[k]
              noise = noise + math.abs(u[k]) * mag[k]
            end
          end
          noise = noise * NOISE_ULPS * ULP
          local a = ana[p][i][j]
          local tol = o.atol + o.rtol * math.max(math.abs(a), math.abs(num)) + noise
          local err = math.abs(a - num)
          ncmp = ncmp + 1
          local ratio = err / tol
          if not (err <= tol) then      -- also catches NaN
            nfail = nfail + 1
            ratio = ratio == ratio and ratio or math.huge
          end
          if ratio > worst_ratio or (worst == nil and nfail > 0) then
            worst_ratio = ratio
            worst = {i = i, j = j, p = p, a = a, n = num, err = err, tol = tol}
          end
        end
      end
    end
  end
  if nfail == 0 then return true, worst_ratio end
  local w = worst
  local s = specs[w.i]
  local which
  if n_out <= o.full_max then
    local k, at = w.p, 0             -- unit projection p: output element p
    for m, sh in ipairs(oshapes) do
      local n = numel(sh)
      if k <= at + n then
        which = string.format("output %s%s", #oshapes > 1 and (m .. " ") or "",
                              index_str(sh, k - at))
        break
      end
      at = at + n
    end
  else
    which = string.format("random projection %d of the output", w.p)
  end
  local msg = string.format(
    "%s%s: d(%s)/d(%s) element %s (of shape %s): analytic %.9g, numeric %.9g " ..
    "(|diff| %.3g > tol %.3g; %d of %d entries fail; eps %g)",
    o.name and (o.name .. ": ") or "", kind, which, s.label, index_str(s.shape, w.j),
    #s.shape == 0 and "scalar" or table.concat(s.shape, "x"), w.a, w.n, w.err, w.tol,
    nfail, ncmp, o.eps)
  return false, msg
end

local function finish(o, ok, msg)
  if ok then return true, msg end
  if o.raise then error(msg, 3) end
  return false, msg
end

local function input_specs(inputs, n)
  local lg = LG()
  local specs = {}
  for i = 1, n do
    local t = inputs[i]
    if lg.is_tensor(t) then
      specs[i] = {vals = flat(t), shape = t:shape(), grad = t.requires_grad,
                  check = t.requires_grad, label = "input " .. i}
      if not t.requires_grad then specs[i].fixed, specs[i].tensor = true, t end
    else
      specs[i] = {fixed = true, tensor = t, vals = {}, shape = {}, label = "input " .. i}
    end
  end
  return specs
end

-- gradcheck(fn, inputs, opts) -> true (and the worst error/tolerance ratio)
function M.gradcheck(fn, inputs, opts)
  local o = options(opts)
  local n = inputs.n or #inputs     -- {x, nil, w, n = 3} passes a nil through
  local specs = input_specs(inputs, n)
  local F = function(xs) return fn(table.unpack(xs, 1, n)) end
  return finish(o, compare("gradcheck", F, specs, o))
end

-- gradgradcheck(fn, inputs, opts) -> true (and the worst ratio)
function M.gradgradcheck(fn, inputs, opts)
  local lg = LG()
  local o = options(opts)
  local n = inputs.n or #inputs     -- {x, nil, w, n = 3} passes a nil through
  local specs = input_specs(inputs, n)
  local gidx = {}
  for i, s in ipairs(specs) do if s.check then gidx[#gidx + 1] = i end end
  if #gidx == 0 then error("gradgradcheck: no input requires grad", 2) end
  local outs0 = as_list(fn(table.unpack(inputs, 1, n)))
  for k, t in ipairs(outs0) do    -- one grad_output per output, a leaf requiring grad
    local v = flat(lg.randn(math.max(1, numel(t:shape()))))
    specs[n + k] = {vals = table.move(v, 1, numel(t:shape()), 1, {}), shape = t:shape(),
                    grad = true, check = o.check_grad_outputs, label = "grad_output " .. k}
  end
  local F = function(xs)
    local outs = as_list(fn(table.unpack(xs, 1, n)))
    local roots, gouts = {}, {}
    for k, t in ipairs(outs) do
      if t.requires_grad then roots[#roots + 1] = t; gouts[#gouts + 1] = xs[n + k] end
    end
    local wrt = {}
    for m, i in ipairs(gidx) do wrt[m] = xs[i] end
    local res = {}
    if #roots > 0 then
      res = lg.grad(roots, wrt, {grad_outputs = gouts, create_graph = true, allow_unused = true})
    end
    local gs = {}
    for m, i in ipairs(gidx) do gs[m] = res[m] or lg.zeros(specs[i].shape) end
    return gs
  end
  return finish(o, compare("gradgradcheck", F, specs, o))
end

return M
