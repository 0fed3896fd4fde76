-- luagan.util: small checks shared by the Lua modules (not part of the
-- user-facing API; recipes need not use it, custom modules may).
local core = require "luagan.core"

local util = {}

-- true for a live tensor userdata
function util.is_tensor(v)
  return type(v) == "userdata" and core.is_tensor(v)
end

-- What a value is, for messages: "tensor", "closed tensor" (a tensor used
-- after __close: never "userdata") or its Lua type.
local tensor_mt
function util.what(v)
  if type(v) ~= "userdata" then return type(v) end
  if core.is_tensor(v) then return "tensor" end
  tensor_mt = tensor_mt or getmetatable(core.zeros(0))
  if getmetatable(v) == tensor_mt then return "closed tensor" end
  return "userdata"
end

-- "a string, not a tensor" or "a closed tensor (used after __close)": what
-- follows "entry 3 is" in a message about a value that should be a tensor.
function util.not_tensor(v)
  local w = util.what(v)
  if w == "closed tensor" then return "a closed tensor (used after __close)" end
  return "a " .. w .. ", not a tensor"
end

-- "64x100", or "scalar" for a 0-dim tensor: how a shape prints (the one
-- helper; lg.shape_str, nn.shape_str and every module use it)
function util.shape_str(t) return tostring(t:shape()) end

-- Run fn(...) with the global generator seeded to seed, then put the global
-- state back, also when fn raises: randomness that is reproducible on its
-- own and does not disturb the caller's stream (a data set's draw, an
-- evaluation's subsets during training). seed nil: fn runs on the global
-- generator as it stands.
function util.with_seed(seed, fn, ...)
  if seed == nil then return fn(...) end
  local saved = core.get_rng_state()
  core.manual_seed(seed)
  local res = table.pack(pcall(fn, ...))
  core.set_rng_state(saved)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- Levenshtein distance between two strings (for "did you mean").
function util.distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = {[0] = i}
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The name in `names` closest to `key`: within edit distance 2 (and fewer
-- edits than key has characters: "x" is not a misspelt "a"), or one of the
-- two a prefix of the other (`pad` for `padding`); nil when none is.
function util.suggest(key, names)
  if type(key) ~= "string" then return nil end
  local best, bd = nil, math.huge
  for _, n in ipairs(names) do
    local d = util.distance(key, n)
    local prefix = #key >= 2 and (n:sub(1, #key) == key or key:sub(1, #n) == n)
    if ((d <= 2 and d < #key) or prefix) and d < bd then best, bd = n, d end
  end
  return best
end

-- Validate an options table: nil gives {}, a non-table or an unknown key is an
-- error naming `who`, the key and the allowed keys, with "did you mean" when
-- one is close:
--   nn.Conv2d: unknown option 'strides' (did you mean 'stride'?; expected: stride, ...)
-- The error is raised at `level` (default 3: the caller of the function that
-- called check_opts, where the mistake is; a module's init passes 4, as it is
-- called through the class's constructor).
function util.check_opts(who, o, allowed, level)
  level = level or 3
  if o == nil then return {} end
  if type(o) ~= "table" or util.is_tensor(o) then
    error(who .. ": options go in a table, got " .. (util.is_tensor(o) and "a tensor" or type(o)),
          level)
  end
  local ok = {}
  for _, k in ipairs(allowed) do ok[k] = true end
  for k in pairs(o) do
    if not ok[k] then
      local near = util.suggest(k, allowed)
      local list = #allowed > 0 and table.concat(allowed, ", ") or "none"
      error(string.format("%s: unknown option '%s' (%sexpected: %s)", who, tostring(k),
                          near and ("did you mean '" .. near .. "'?; ") or "", list), level)
    end
  end
  return o
end

-- A number option or argument, checked: it must be a finite number within
-- the spec's range and, with spec.int, an integer. nil gives spec.default
-- when the spec has one (or spec.optional is set); else nil is an error.
-- spec: {lo =, hi =, open = (lo exclusive), open_hi = (hi exclusive),
-- int = true, default =, optional = true, level = (error level, default 3)}.
-- Errors name `who` and `name`: "optim.Adam: lr must be a finite number >= 0, got nan".
function util.check_num(who, name, v, spec)
  spec = spec or {}
  if v == nil and (spec.default ~= nil or spec.optional) then return spec.default end
  local problem = util.num_problem(name, v, spec)
  if problem then error(who .. ": " .. problem, spec.level or 3) end
  return spec.int and math.tointeger(v) or v
end

-- A boolean option: nil gives def; anything but true/false is an error
-- naming who and name (`bias = 0` is truthy in Lua: never guess).
function util.check_bool(who, name, v, def, level)
  if v == nil then return def end
  if type(v) ~= "boolean" then
    error(string.format("%s: %s must be true or false, got %s", who, name,
                        type(v) == "number" and util.fmt(v) or util.what(v)), level or 3)
  end
  return v
end

-- What is wrong with v under check_num's spec ("lr must be a finite number
-- >= 0, got nan"), or nil when nothing is; for callers that collect
-- messages instead of raising.
function util.num_problem(name, v, spec)
  local lo, hi = spec.lo, spec.hi
  local good = type(v) == "number" and v == v and v > -math.huge and v < math.huge
  if good and spec.int then good = math.tointeger(v) ~= nil end
  if good and lo then good = (spec.open and v > lo) or (not spec.open and v >= lo) end
  if good and hi then good = (spec.open_hi and v < hi) or (not spec.open_hi and v <= hi) end
  if good then return nil end
  local range, b = "", util.fmt_bound
  if lo and hi then
    range = string.format(" in %s%s, %s%s", spec.open and "(" or "[", b(lo), b(hi),
                          spec.open_hi and ")" or "]")
  elseif lo then
    range = (spec.open and " > " or " >= ") .. b(lo)
  elseif hi then
    range = (spec.open_hi and " < " or " <= ") .. b(hi)
  end
  return string.format("%s must be %s%s, got %s", name,
                       spec.int and "an integer" or "a finite number", range,
                       type(v) == "number" and util.fmt(v) or type(v))
end

-- A bound as the messages print it: powers of two from 2^10 up as "2^20"
-- (as the C bindings print theirs), other numbers as util.fmt.
function util.fmt_bound(v)
  local i = math.tointeger(v)
  if i and i >= 1024 and i & (i - 1) == 0 then
    local k = 0
    while 1 << k ~= i do k = k + 1 end
    return "2^" .. k
  end
  return util.fmt(v)
end

-- A number as the messages print it: integers without ".0", nan/inf by name.
function util.fmt(v)
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
  if math.type(v) == "integer" or (v == math.floor(v) and math.abs(v) < 2^53) then
    return string.format("%d", v)
  end
  return string.format("%.6g", v)
end

return util
