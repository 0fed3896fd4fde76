-- lg.save / lg.load: a tensor, a module, an optimizer, the RNG state and
-- nested tables of them round-trip; a model and its optimizer saved in one
-- process resume in a fresh one exactly where the first would have gone on;
-- bad input is an error naming what was wrong.
local T = ...
local lg = require "luagan"
local nn, optim = lg.nn, lg.optim

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function path(name) return dir .. "/" .. name end

local exe = arg and arg[-1]
if exe and exe:find("/") and exe:sub(1, 1) ~= "/" then exe = (os.getenv("PWD") or ".") .. "/" .. exe end

local function same(a, b)
  return pcall(T.close, a, b, 0)
end

T.test("a tensor round-trips bit for bit, as a tensor", function()
  lg.manual_seed(3)
  local x = lg.randn(3, 4, 5)
  lg.save(path("x.safetensors"), x)
  local y = lg.load(path("x.safetensors"))
  T.ok(lg.is_tensor(y), "a tensor comes back")
  T.eq(lg.shape_str(y), "3x4x5")
  T.ok(same(x, y), "same values")
end)

T.test("a nested table of tensors, numbers, strings and booleans", function()
  local v = {w = lg.ones(2, 2), list = {lg.zeros(3), lg.full({1}, 7)}, step = 12, lr = 2.5e-4,
             name = "run", flag = true, deep = {a = {b = lg.arange(4)}}}
  lg.save(path("t.safetensors"), v)
  local u = lg.load(path("t.safetensors"))
  T.ok(same(u.w, v.w) and same(u.list[1], v.list[1]) and same(u.list[2], v.list[2]))
  T.ok(same(u.deep.a.b, v.deep.a.b))
  T.eq(u.step, 12); T.eq(math.type(u.step), "integer")
  T.eq(u.lr, 2.5e-4); T.eq(u.name, "run"); T.eq(u.flag, true)
end)

T.test("a module saves its state_dict (buffers too) and loads into a fresh one", function()
  lg.manual_seed(1)
  local m = nn.Sequential{nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)}
  m(lg.randn(16, 4))                         -- moves the running statistics
  lg.save(path("m.safetensors"), m)
  local sd = lg.load(path("m.safetensors"))
  local m2 = nn.Sequential{nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)}
  m2:load_state_dict(sd)
  m:eval(); m2:eval()
  local x = lg.randn(5, 4)
  T.ok(same(m(x), m2(x)), "the loaded module computes the same")
end)

-- G, its optimizer and the RNG saved after 3 steps; a fresh process loads them
-- and takes 2 more steps: its loss must equal the one of a process that took
-- all 5 steps without stopping.
local script = [[
local lg = require "luagan"
local nn, optim = lg.nn, lg.optim
local mode, file = ...
local function make()
  lg.manual_seed(7)
  local G = nn.Sequential{nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1)}
  return G, optim.Adam(G:parameters(), {lr = 1e-2, betas = {0.5, 0.999}})
end
local function step(G, opt)
  local x = lg.randn(8, 3)
  local loss = ((G(x) - x:sum(2, {keepdim = true})) ^ 2):mean()
  opt:zero_grad(); loss:backward(); opt:step()
  return loss:item()
end
local G, opt = make()
local last
if mode == "all" then
  for _ = 1, 5 do last = step(G, opt) end
elseif mode == "first" then
  for _ = 1, 3 do step(G, opt) end
  lg.save(file, {G = G, opt = opt, rng = lg.get_rng_state()})
  return
else
  local ck = lg.load(file)
  G:load_state_dict(ck.G); opt:load_state_dict(ck.opt); lg.set_rng_state(ck.rng)
  for _ = 1, 2 do last = step(G, opt) end
end
print(string.format("%.9g", last))
]]

T.test("G, its optimizer and the RNG resume in a fresh process", function()
  if not exe then print("  skipped: no interpreter path in arg[-1]") return end
  local s = path("resume.lua")
  local f = assert(io.open(s, "w")); f:write(script); f:close()
  local function run(mode)
    local p = io.popen(string.format("'%s' '%s' %s '%s' 2>&1", exe, s, mode, path("ck.safetensors")))
    local out = p:read("a"); p:close()
    return out
  end
  local all = run("all")
  T.eq(run("first"), "")
  local resumed = run("rest")
  T.ok(all:match("^%S+\n$"), "the uninterrupted run printed a loss: " .. all)
  T.eq(resumed, all)
end)

T.test("bad input names what was wrong", function()
  T.errors(function() lg.save(path("bad.safetensors"), 3) end, "lg.save: expected a tensor")
  T.errors(function() lg.save(42, lg.ones(1)) end, "lg.save: path must be a string")
  T.errors(function() lg.save(path("bad.safetensors"), {f = print}) end, "cannot store a function")
  local c = {}; c.self = c
  T.errors(function() lg.save(path("bad.safetensors"), c) end, "cycle")
  T.errors(function() lg.load(path("missing.safetensors")) end, "missing.safetensors")
  local f = assert(io.open(path("garbage.safetensors"), "wb")); f:write("not a safetensors file"); f:close()
  T.errors(function() lg.load(path("garbage.safetensors")) end, "garbage.safetensors")
  T.errors(function() lg.save("/nonexistent-dir/x.safetensors", lg.ones(1)) end, "/nonexistent-dir/x.safetensors")
end)

T.test("a failed save leaves the previous file as it was", function()
  lg.save(path("keep.safetensors"), lg.full({2}, 5))
  T.errors(function() lg.save(path("keep.safetensors"), {f = print}) end, "cannot store")
  T.ok(same(lg.load(path("keep.safetensors")), lg.full({2}, 5)))
end)

T.test("(clean up the temporary directory)", function() os.execute("rm -rf '" .. dir .. "'") end)
