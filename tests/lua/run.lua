-- tests/lua/run.lua: the Lua test runner.
--
--   luagan tests/lua/run.lua tests/lua/test_x.lua [more files...] [-k PATTERN]
--
-- A test file is a chunk that receives the runner's table T as `...` and
-- registers tests in order with T.test:
--
--   local T = ...
--   local lg = require "luagan"
--   T.test("adds", function() T.close(lg.tensor{1, 2} + 1, {2, 3}) end)
--
-- (it may instead return a table {name = function ... end}, run in name order).
-- Each test runs under xpcall with a traceback; after it the grad mode is
-- reset to on and a full garbage collection runs, so a crash in a finalizer
-- shows up next to the test that caused it.
--
-- Assertions (each raises an error naming what differed):
--   T.ok(v, msg)                 v is truthy
--   T.eq(a, b, msg)              a == b (tables compared deeply)
--   T.near(a, b, tol)            numbers: |a - b| <= tol * (1 + |b|), tol default 1e-5
--   T.close(a, b, tol)           a, b tensors, nested tables or numbers (a number b
--                                is compared with every element); shapes must match
--   T.shape(t, {2, 3})           t:shape() equals the list
--   T.errors(fn, "substring")    fn() raises an error whose message contains the
--                                substring (plain text); returns the message
--
-- Output: "ok   name" or "FAIL name" plus the error, then one line exactly
-- "N passed, N failed"; the exit status is 1 when anything failed.
local T = {}
local tests = {}

function T.test(name, fn)
  assert(type(name) == "string" and type(fn) == "function", "T.test(name, fn)")
  tests[#tests + 1] = {name = name, fn = fn}
end

local function fail(msg, level) error(msg, (level or 1) + 2) end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function T.ok(v, msg)
  if not v then fail(msg or "expected a true value, got " .. show(v)) end
  return v
end

local function deep_eq(a, b, path)
  if type(a) ~= "table" or type(b) ~= "table" then
    if a == b then return true end
    return false, string.format("%s: %s ~= %s", path, show(a), show(b))
  end
  for k, v in pairs(a) do
    local ok, why = deep_eq(v, b[k], path .. "[" .. tostring(k) .. "]")
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, string.format("%s[%s]: missing", path, tostring(k)) end
  end
  return true
end

function T.eq(a, b, msg)
  local ok, why = deep_eq(a, b, "value")
  if not ok then fail((msg and msg .. ": " or "") .. why) end
end

function T.near(a, b, tol)
  tol = tol or 1e-5
  if type(a) ~= "number" or type(b) ~= "number" then
    fail("T.near expects numbers, got " .. type(a) .. " and " .. type(b))
  end
  if not (math.abs(a - b) <= tol * (1 + math.abs(b))) then
    fail(string.format("%.9g is not near %.9g (tol %g)", a, b, tol))
  end
end

local function is_tensor(v)
  if type(v) ~= "userdata" then return false end
  local core = package.loaded["luagan.core"]
  return core and core.is_tensor(v)
end

-- Flatten a tensor / nested table / number into (values, shape).
local function flat(v)
  if is_tensor(v) then
    local t = v:totable()
    if type(t) == "number" then return {t}, {} end
    v = t
  end
  if type(v) == "number" then return {v}, {} end
  if type(v) ~= "table" then fail("T.close: cannot compare a " .. type(v), 2) end
  local shape, vals, x = {}, {}, v
  while type(x) == "table" do shape[#shape + 1] = #x; x = x[1] end
  local function walk(t, d)
    if d > #shape then vals[#vals + 1] = t return end
    if type(t) ~= "table" or #t ~= shape[d] then fail("T.close: ragged table", 4) end
    for i = 1, #t do walk(t[i], d + 1) end
  end
  walk(v, 1)
  return vals, shape
end

function T.close(a, b, tol)
  tol = tol or 1e-5
  local va, sa = flat(a)
  if type(b) == "number" and #sa > 0 then
    for i = 1, #va do
      if not (math.abs(va[i] - b) <= tol * (1 + math.abs(b))) then
        fail(string.format("element %d: %.9g ~= %.9g (tol %g)", i, va[i], b, tol))
      end
    end
    return
  end
  local vb, sb = flat(b)
  if table.concat(sa, "x") ~= table.concat(sb, "x") then
    fail(string.format("shapes differ: %s vs %s", table.concat(sa, "x"), table.concat(sb, "x")))
  end
  for i = 1, #va do
    local x, y = va[i], vb[i]
    local same = (x ~= x and y ~= y) or x == y or math.abs(x - y) <= tol * (1 + math.abs(y))
    if not same then
      fail(string.format("element %d (flat): %.9g ~= %.9g (tol %g)", i, x, y, tol))
    end
  end
end

function T.shape(t, shape)
  local s = t:shape()
  if table.concat(s, "x") ~= table.concat(shape, "x") then
    fail(string.format("shape %s, expected %s", table.concat(s, "x"), table.concat(shape, "x")))
  end
end

function T.errors(fn, substr)
  local ok, err = pcall(fn)
  if ok then fail("expected an error" .. (substr and " containing '" .. substr .. "'" or "")) end
  err = tostring(err)
  if substr and not err:find(substr, 1, true) then
    fail(string.format("error %q does not contain %q", err, substr))
  end
  return err
end

-- ---- main ----------------------------------------------------------------
local files, pattern = {}, nil
local i = 1
while i <= #arg do
  if arg[i] == "-k" then pattern = arg[i + 1]; i = i + 2
  else files[#files + 1] = arg[i]; i = i + 1 end
end
if #files == 0 then
  io.stderr:write("usage: luagan tests/lua/run.lua test_file.lua... [-k pattern]\n")
  os.exit(2)
end

local passed, failed = 0, 0
local function run_one(name, fn)
  if pattern and not name:find(pattern) then return end
  local t0 = os.clock()
  local ok, err = xpcall(fn, debug.traceback)
  local core = package.loaded["luagan.core"]
  if core then core.set_grad_enabled(true) end
  local gc_ok, gc_err = pcall(collectgarbage)
  if ok and not gc_ok then ok, err = false, "during garbage collection: " .. tostring(gc_err) end
  if ok then
    passed = passed + 1
    print(string.format("ok   %s (%.2fs)", name, os.clock() - t0))
  else
    failed = failed + 1
    print("FAIL " .. name)
    print("  " .. tostring(err):gsub("\n", "\n  "))
  end
  io.stdout:flush()
end

for _, file in ipairs(files) do
  tests = {}
  local chunk, err = loadfile(file)
  if not chunk then
    failed = failed + 1
    print("FAIL " .. file .. " (load)\n  " .. err)
  else
    local ok, ret = xpcall(chunk, debug.traceback, T)
    if not ok then
      failed = failed + 1
      print("FAIL " .. file .. " (top level)\n  " .. tostring(ret):gsub("\n", "\n  "))
    else
      if type(ret) == "table" then
        local names = {}
        for k, v in pairs(ret) do
          if type(v) == "function" then names[#names + 1] = k end
        end
        table.sort(names)
        for _, k in ipairs(names) do tests[#tests + 1] = {name = k, fn = ret[k]} end
      end
      for _, t in ipairs(tests) do run_one(t.name, t.fn) end
    end
  end
end

print(string.format("%d passed, %d failed", passed, failed))
io.stdout:flush()
os.exit(failed == 0 and 0 or 1, true)
