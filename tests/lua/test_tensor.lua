-- Tensor API of the Lua binding: creation, accessors, printing, indexing,
-- views, pointwise ops, comparisons, reductions, matmul, in-place ops and
-- the collector pressure hint. Expected values are computed by hand.
local T = ...
local lg = require "luagan"

T.test("the issue's example runs exactly as written", function()
  local snippet = [[
local lg = require "luagan"
lg.manual_seed(1)
local a = lg.tensor{{1, 2}, {3, 4}}           -- from nested tables
local z = lg.randn(64, 100)                    -- or lg.randn{64, 100}
print(z:shape()[2], z:size(2), z:dim(), z:numel(), #z)   -- 100 100 2 6400 64
local y = (a + 1) * a / 2 - a ^ 2              -- elementwise, broadcasting
local m = lg.matmul(a, a)                      -- also a:matmul(a); '*' is never matmul
print(m:sum():item(), a:mean(1, {keepdim = true}))
print(a[2][1], a:select(1, 2):totable())       -- 1-based dims and indices, like Torch7
return y, m
]]
  local lines = {}
  local env = setmetatable({print = function(...)
    local t = table.pack(...)
    for i = 1, t.n do t[i] = tostring(t[i]) end
    lines[#lines + 1] = table.concat(t, "\t")
  end}, {__index = _G})
  local y, m = assert(load(snippet, "=snippet", "t", env))()
  T.eq(lines[1], "100\t100\t2\t6400\t64")
  T.ok(lines[2]:find("^54%.0\t"), lines[2])
  T.ok(lines[2]:find("[[2, 3]]", 1, true), lines[2])
  T.ok(lines[2]:find("shape=1x2", 1, true), lines[2])
  T.ok(lines[3]:find("^3%.0\ttable: "), lines[3])
  T.close(y, {{0, -1}, {-3, -6}})
  T.close(m, {{7, 10}, {15, 22}})
  T.close(lg.randn{64, 100}:shape(), {64, 100})
end)

-- ---- creation ----------------------------------------------------------------
T.test("tensor from nested tables and numbers", function()
  local a = lg.tensor{{1, 2, 3}, {4, 5, 6}}
  T.shape(a, {2, 3})
  T.eq(a:totable(), {{1, 2, 3}, {4, 5, 6}})
  local s = lg.tensor(2.5)
  T.eq(s:dim(), 0)
  T.eq(s:item(), 2.5)
  T.eq(s:totable(), 2.5)
  T.shape(lg.tensor{}, {0})
  T.shape(lg.tensor{{{1}, {2}}}, {1, 2, 1})
  local c = lg.tensor(a)                 -- a copy
  c[1] = 0
  T.eq(a[1][1], 1)
  T.eq(c[1][1], 0)
  T.ok(lg.tensor({1, 2}, {requires_grad = true}).requires_grad)
end)

T.test("zeros ones empty full with varargs, tables and options", function()
  T.close(lg.zeros(2, 3), {{0, 0, 0}, {0, 0, 0}})
  T.close(lg.ones{2, 2}, {{1, 1}, {1, 1}})
  T.shape(lg.empty(4, 5), {4, 5})
  T.shape(lg.empty{0, 3}, {0, 3})
  T.close(lg.full({2, 2}, 7), {{7, 7}, {7, 7}})
  T.eq(lg.zeros():dim(), 0)
  local r = lg.ones(2, 3, {requires_grad = true})
  T.ok(r.requires_grad and r.is_leaf)
  T.ok(lg.zeros({3}, {requires_grad = true}).requires_grad)
  T.ok(not lg.zeros(3).requires_grad)
end)

T.test("arange linspace eye", function()
  T.close(lg.arange(5), {0, 1, 2, 3, 4})
  T.close(lg.arange(2, 5), {2, 3, 4})
  T.close(lg.arange(0, 1, 0.25), {0, 0.25, 0.5, 0.75})
  T.close(lg.linspace(0, 1, 5), {0, 0.25, 0.5, 0.75, 1})
  T.close(lg.eye(2), {{1, 0}, {0, 1}})
  T.close(lg.eye(2, 3), {{1, 0, 0}, {0, 1, 0}})
end)

T.test("random creation: ranges, seeds, 1-based indices", function()
  lg.manual_seed(7)
  local u = lg.rand(1000)
  T.ok(u:min():item() >= 0 and u:max():item() < 1)
  T.near(u:mean():item(), 0.5, 0.1)
  local n = lg.randn(4000)
  T.near(n:mean():item(), 0, 0.1)
  T.near(n:std():item(), 1, 0.1)
  local r = lg.randint(3, 6, {500})
  T.ok(r:min():item() == 3 and r:max():item() == 5, "randint values in [3, 6)")
  for _, v in ipairs(r:totable()) do T.ok(v == math.floor(v), "randint gives integers") end
  T.shape(lg.randint(0, 2, 3, 4), {3, 4})
  T.close(lg.bernoulli(lg.tensor{0, 1, 0, 1}), {0, 1, 0, 1})
  T.shape(lg.bernoulli(0.5, {3, 2}), {3, 2})
  local p = lg.randperm(6):totable()
  table.sort(p)
  T.eq(p, {1, 2, 3, 4, 5, 6})
  T.close(lg.multinomial(lg.tensor{0, 0, 1}, 3, true), {3, 3, 3})
  local m = lg.multinomial(lg.tensor{1, 1, 1, 1}, 4, false):totable()
  table.sort(m)
  T.eq(m, {1, 2, 3, 4})
  local base = lg.tensor{{1, 2}, {3, 4}}
  T.close(lg.zeros_like(base), {{0, 0}, {0, 0}})
  T.close(lg.ones_like(base), {{1, 1}, {1, 1}})
  T.close(lg.full_like(base, 3), {{3, 3}, {3, 3}})
  T.shape(lg.rand_like(base), {2, 2})
  T.shape(lg.randn_like(base), {2, 2})
  T.ok(lg.randn_like(base, {requires_grad = true}).requires_grad)
end)

T.test("manual_seed and rng state give the same stream", function()
  lg.manual_seed(42)
  local a = lg.randn(5):totable()
  lg.manual_seed(42)
  T.eq(lg.randn(5):totable(), a)
  local st = lg.get_rng_state()
  T.eq(type(st), "string")
  local b = lg.rand(3):totable()
  lg.randn(10)
  lg.set_rng_state(st)
  T.eq(lg.rand(3):totable(), b)
end)

T.test("threads and memory counters", function()
  local n = lg.get_num_threads()
  lg.set_num_threads(1)
  T.eq(lg.get_num_threads(), 1)
  lg.set_num_threads(n)
  T.eq(lg.get_num_threads(), n)
  local before = lg.mem_live_bytes()
  local big = lg.zeros(1024, 256)
  T.ok(lg.mem_live_bytes() >= before + 1024 * 1024)
  big = nil
  collectgarbage()
  T.ok(lg.mem_live_bytes() <= before + 4096)
end)

-- ---- accessors, printing, indexing ---------------------------------------------
T.test("shape size dim numel len item totable", function()
  local t = lg.zeros(2, 3, 4)
  T.eq(t:shape(), {2, 3, 4})
  T.eq(t:size(), {2, 3, 4})
  T.eq(t:size(1), 2)
  T.eq(t:size(3), 4)
  T.eq(t:size(-1), 4)
  T.eq(t:dim(), 3)
  T.eq(t:numel(), 24)
  T.eq(#t, 2)
  T.eq(lg.tensor{{5}}:item(), 5)
  T.eq(lg.tensor{1, 2}:totable(), {1, 2})
  T.eq(lg.numel(t), 24)                  -- functional form
end)

T.test("printing: values, shape, formats, abbreviation", function()
  T.eq(tostring(lg.tensor{{1, 2}, {3, 4}}), "tensor([[1, 2],\n        [3, 4]], shape=2x2)")
  T.eq(tostring(lg.tensor{1.5, -2}), "tensor([ 1.5000, -2.0000], shape=2)")
  T.eq(tostring(lg.tensor(3)), "tensor(3)")
  T.eq(tostring(lg.tensor(0.25)), "tensor(0.2500)")
  T.eq(tostring(lg.zeros(0, 3)), "tensor([], shape=0x3)")
  T.ok(tostring(lg.tensor{1e-6, 1}):find("1.0000e-06", 1, true))
  local big = tostring(lg.arange(2000):view(2, 1000))
  T.ok(big:find("[[   0,    1,    2, ...,  997,  998,  999],", 1, true), big)
  T.ok(big:find("shape=2x1000", 1, true))
  T.ok(#big < 200)
  local x = lg.ones(2, {requires_grad = true})
  T.ok(tostring(x):find("requires_grad=true", 1, true))
  T.ok(tostring(x * 2):find("grad_fn=mul_scalar", 1, true), tostring(x * 2))
  local long = tostring(lg.arange(100) * 1.5)   -- long rows wrap under 80 columns
  for line in long:gmatch("[^\n]+") do T.ok(#line <= 80, line) end
  T.ok(select(2, long:gsub("\n", "")) >= 10, long)
  T.ok(long:find("tensor([  0.0000,   1.5000,", 1, true), long)
  T.ok(long:find("\n        [ %d]"), long)
  local three = tostring(lg.arange(8):view(2, 2, 2))
  T.eq(three, "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]], shape=2x2x2)")
end)

T.test("integer indexing reads and writes, 1-based and negative", function()
  local t = lg.tensor{{1, 2, 3}, {4, 5, 6}}
  T.close(t[1], {1, 2, 3})
  T.eq(t[2][3], 6)
  T.eq(t[-1][-1], 6)
  T.eq(t[1][-3], 1)
  t[1] = 0
  T.close(t, {{0, 0, 0}, {4, 5, 6}})
  t[2] = lg.tensor{7, 8, 9}
  T.close(t, {{0, 0, 0}, {7, 8, 9}})
  t[2][2] = -1                           -- through a view into t
  T.close(t, {{0, 0, 0}, {7, -1, 9}})
  t[1] = lg.tensor{1, 2, 3}
  T.close(t, {{1, 2, 3}, {7, -1, 9}})
end)

-- ---- views -------------------------------------------------------------------------
T.test("view reshape flatten squeeze unsqueeze", function()
  local a = lg.arange(6)
  local v = a:view(2, 3)
  T.close(v, {{0, 1, 2}, {3, 4, 5}})
  v[1][1] = 10                           -- shares memory
  T.eq(a[1], 10)
  T.shape(a:view{3, -1}, {3, 2})
  T.shape(a:reshape(-1, 2), {3, 2})
  local tr = v:t()
  T.ok(not tr:is_contiguous())
  T.close(tr:reshape(6), {10, 3, 1, 4, 2, 5})
  T.shape(lg.zeros(2, 3, 4):flatten(), {24})
  T.shape(lg.zeros(2, 3, 4):flatten(2), {2, 12})
  T.shape(lg.zeros(2, 3, 4, 5):flatten(2, 3), {2, 12, 5})
  T.shape(lg.zeros(1, 3, 1):squeeze(), {3})
  T.shape(lg.zeros(1, 3, 1):squeeze(1), {3, 1})
  T.shape(lg.zeros(1, 3, 1):squeeze(-1), {1, 3})
  T.shape(lg.zeros(2, 3):unsqueeze(1), {1, 2, 3})
  T.shape(lg.zeros(2, 3):unsqueeze(3), {2, 3, 1})
  T.shape(lg.zeros(2, 3):unsqueeze(-1), {2, 3, 1})
end)

T.test("narrow select slice transpose permute expand", function()
  local t = lg.tensor{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}}
  T.close(t:narrow(2, 2, 2), {{2, 3}, {6, 7}, {10, 11}})
  T.close(t:narrow(1, 3, 1), {{9, 10, 11, 12}})
  T.close(t:select(1, 2), {5, 6, 7, 8})
  T.close(t:select(2, 4), {4, 8, 12})
  T.close(t:select(2, -1), {4, 8, 12})
  T.close(t:slice(2, 2, 3), {{2, 3}, {6, 7}, {10, 11}})
  T.close(t:slice(2, 1, -1, 2), {{1, 3}, {5, 7}, {9, 11}})
  T.close(t:slice(1, -2), {{5, 6, 7, 8}, {9, 10, 11, 12}})
  T.shape(t:slice(1, 3, 2), {0, 4})
  T.close(t:transpose(1, 2), {{1, 5, 9}, {2, 6, 10}, {3, 7, 11}, {4, 8, 12}})
  T.close(t:t(), t:transpose(2, 1))
  local p = lg.arange(24):view(2, 3, 4):permute(3, 1, 2)
  T.shape(p, {4, 2, 3})
  T.eq(p[2][2][3], 12 + 2 * 4 + 1)      -- element (2,3,2) of the original = 21
  T.shape(lg.arange(24):view(2, 3, 4):permute{2, 3, 1}, {3, 4, 2})
  local e = lg.tensor{{1}, {2}}:expand(2, 3)
  T.close(e, {{1, 1, 1}, {2, 2, 2}})
  T.close(lg.tensor{{1}, {2}}:expand(-1, 3), {{1, 1, 1}, {2, 2, 2}})
  T.shape(lg.tensor{1, 2}:expand(3, 2), {3, 2})
  T.ok(not e:is_contiguous())
  T.ok(e:contiguous():is_contiguous())
  T.close(e:contiguous(), e)
  local c = t:clone()
  c[1][1] = 100
  T.eq(t[1][1], 1)
end)

T.test("cat stack split chunk index_select", function()
  local a, b = lg.tensor{{1, 2}}, lg.tensor{{3, 4}, {5, 6}}
  T.close(lg.cat({a, b}), {{1, 2}, {3, 4}, {5, 6}})
  T.close(lg.cat({a, a}, 2), {{1, 2, 1, 2}})
  T.close(lg.cat({a, a}, -1), {{1, 2, 1, 2}})
  T.close(lg.stack({lg.tensor{1, 2}, lg.tensor{3, 4}}), {{1, 2}, {3, 4}})
  T.close(lg.stack({lg.tensor{1, 2}, lg.tensor{3, 4}}, 2), {{1, 3}, {2, 4}})
  local parts = lg.arange(5):split(2)
  T.eq(#parts, 3)
  T.close(parts[1], {0, 1})
  T.close(parts[3], {4})
  local sp = lg.arange(6):view(2, 3):split({1, 2}, 2)
  T.close(sp[2], {{1, 2}, {4, 5}})
  local ch = lg.arange(6):chunk(3)
  T.eq(#ch, 3)
  T.close(ch[2], {2, 3})
  ch[2][1] = 100                           -- chunks are views
  local m = lg.arange(12):view(3, 4)
  T.close(m:index_select(1, lg.tensor{3, 1}), {{8, 9, 10, 11}, {0, 1, 2, 3}})
  T.close(m:index_select(2, {4, 4, 1}), {{3, 3, 0}, {7, 7, 4}, {11, 11, 8}})
end)

-- ---- pointwise --------------------------------------------------------------------------
T.test("arithmetic operators with numbers on either side and broadcasting", function()
  local a = lg.tensor{{1, 2}, {3, 4}}
  T.close(a + 1, {{2, 3}, {4, 5}})
  T.close(1 + a, {{2, 3}, {4, 5}})
  T.close(a - 1, {{0, 1}, {2, 3}})
  T.close(10 - a, {{9, 8}, {7, 6}})
  T.close(a * 3, {{3, 6}, {9, 12}})
  T.close(3 * a, {{3, 6}, {9, 12}})
  T.close(a / 2, {{0.5, 1}, {1.5, 2}})
  T.close(12 / a, {{12, 6}, {4, 3}})
  T.close(1 / a, {{1, 0.5}, {1 / 3, 0.25}})
  T.close(a ^ 2, {{1, 4}, {9, 16}})
  T.close(2 ^ a, {{2, 4}, {8, 16}})
  T.close(a ^ a, {{1, 4}, {27, 256}})
  T.close(-a, {{-1, -2}, {-3, -4}})
  T.close(a * a, {{1, 4}, {9, 16}})       -- elementwise, never matmul
  T.close(a + lg.tensor{10, 20}, {{11, 22}, {13, 24}})
  T.close(a + lg.tensor{{10}, {20}}, {{11, 12}, {23, 24}})
  T.close(a - lg.tensor(1), {{0, 1}, {2, 3}})
  T.close(a / lg.tensor{1, 2}, {{1, 1}, {3, 2}})
  T.close(lg.add(a, 1), a:add(1))
  T.close(a:sub(a), {{0, 0}, {0, 0}})
  T.close(lg.mul(2, a), {{2, 4}, {6, 8}})
  T.close(a:div(a), {{1, 1}, {1, 1}})
  T.close(a:pow(0.5), {{1, math.sqrt(2)}, {math.sqrt(3), 2}})
  T.ok(a ~= lg.tensor{{1, 2}, {3, 4}})   -- __eq is identity
  T.ok(a == a)
end)

T.test("unary pointwise ops", function()
  local x = lg.tensor{-2, -0.5, 0, 0.5, 2}
  local function each(f)
    local r = {}
    for i, v in ipairs({-2, -0.5, 0, 0.5, 2}) do r[i] = f(v) end
    return r
  end
  T.close(x:neg(), each(function(v) return -v end))
  T.close(x:exp(), each(math.exp))
  T.close(x:abs(), each(math.abs))
  T.close(x:sign(), {-1, -1, 0, 1, 1})
  T.close(x:sin(), each(math.sin))
  T.close(x:cos(), each(math.cos))
  T.close(x:tanh(), each(function(v) return (math.exp(v) - math.exp(-v)) / (math.exp(v) + math.exp(-v)) end))
  T.close(x:sigmoid(), each(function(v) return 1 / (1 + math.exp(-v)) end))
  T.close(x:relu(), {0, 0, 0, 0.5, 2})
  T.close(x:leaky_relu(), {-0.02, -0.005, 0, 0.5, 2})
  T.close(x:leaky_relu(0.2), {-0.4, -0.1, 0, 0.5, 2})
  T.close(x:elu(), each(function(v) return v > 0 and v or math.exp(v) - 1 end))
  T.close(x:elu(2), each(function(v) return v > 0 and v or 2 * (math.exp(v) - 1) end))
  T.close(x:softplus(), each(function(v) return math.log(1 + math.exp(v)) end))
  T.close(x:clamp(-1, 1), {-1, -0.5, 0, 0.5, 1})
  T.close(x:clamp(nil, 0), {-2, -0.5, 0, 0, 0})
  T.close(x:clamp(0), {0, 0, 0, 0.5, 2})
  local p = lg.tensor{0.25, 1, 4}
  T.close(p:log(), {math.log(0.25), 0, math.log(4)})
  T.close(p:log1p(), {math.log(1.25), math.log(2), math.log(5)})
  T.close(p:sqrt(), {0.5, 1, 2})
  T.close(p:rsqrt(), {2, 1, 0.5})
  T.close(p:reciprocal(), {4, 1, 0.25})
  T.close(lg.exp(lg.tensor{0}), {1})     -- functional form
end)

T.test("maximum minimum where", function()
  local a, b = lg.tensor{1, 5, 3}, lg.tensor{4, 2, 3}
  T.close(lg.maximum(a, b), {4, 5, 3})
  T.close(a:minimum(b), {1, 2, 3})
  T.close(a:maximum(2), {2, 5, 3})
  T.close(lg.minimum(2, a), {1, 2, 2})
  local c = lg.tensor{1, 0, 1}
  T.close(lg.where(c, a, b), {1, 2, 3})
  T.close(lg.where(c, a, 0), {1, 0, 3})
  T.close(lg.where(c, -1, b), {-1, 2, -1})
  T.close(lg.where(c, 7, 8), {7, 8, 7})
  T.close(c:where(a, b), {1, 2, 3})
end)

T.test("comparisons with numbers and tensors on either side", function()
  local a, b = lg.tensor{1, 2, 3}, lg.tensor{3, 2, 1}
  T.close(a:eq(b), {0, 1, 0})
  T.close(a:ne(b), {1, 0, 1})
  T.close(a:lt(b), {1, 0, 0})
  T.close(a:le(b), {1, 1, 0})
  T.close(a:gt(b), {0, 0, 1})
  T.close(a:ge(b), {0, 1, 1})
  T.close(a:eq(2), {0, 1, 0})
  T.close(a:ne(2), {1, 0, 1})
  T.close(a:lt(2), {1, 0, 0})
  T.close(a:le(2), {1, 1, 0})
  T.close(a:gt(2), {0, 0, 1})
  T.close(a:ge(2), {0, 1, 1})
  T.close(lg.lt(2, a), {0, 0, 1})        -- 2 < a
  T.close(lg.ge(2, a), {1, 1, 0})        -- 2 >= a
  T.close(lg.gt(a, lg.tensor{{0}, {2}}), {{1, 1, 1}, {0, 0, 1}})
end)

-- ---- reductions -----------------------------------------------------------------------------
T.test("sum mean prod over all, dims, lists, keepdim", function()
  local a = lg.tensor{{1, 2, 3}, {4, 5, 6}}
  T.eq(a:sum():item(), 21)
  T.eq(a:sum():dim(), 0)
  T.close(a:sum(1), {5, 7, 9})
  T.close(a:sum(2), {6, 15})
  T.close(a:sum(-1), {6, 15})
  T.close(a:sum(2, {keepdim = true}), {{6}, {15}})
  T.close(a:sum(1, true), {{5, 7, 9}})
  T.close(a:sum({1, 2}), 21)
  T.close(a:sum(nil, {keepdim = true}), {{21}})
  T.close(a:sum({keepdim = true}), {{21}})
  T.close(a:mean(), 3.5)
  T.close(a:mean(1), {2.5, 3.5, 4.5})
  T.close(a:prod(), 720)
  T.close(a:prod(2), {6, 120})
  T.close(lg.sum(a, 1), {5, 7, 9})
end)

T.test("var std with correction", function()
  local a = lg.tensor{{1, 2, 3, 4}, {2, 4, 6, 8}}
  T.near(a:var():item(), 37.5 / 7, 1e-5)   -- mean 3.75, squared deviations sum to 37.5
  T.near(a:var(nil, {correction = 0}):item(), 37.5 / 8, 1e-5)
  T.close(a:var(2), {5 / 3, 20 / 3})
  T.close(a:var(2, {correction = 0}), {1.25, 5})
  T.close(a:std(2), {math.sqrt(5 / 3), math.sqrt(20 / 3)})
  T.close(a:std(2, {correction = 0, keepdim = true}), {{math.sqrt(1.25)}, {math.sqrt(5)}})
end)

T.test("max min with values and 1-based indices; argmax argmin", function()
  local a = lg.tensor{{3, 9, 1}, {7, 2, 8}}
  T.close(a:max(), 9)
  T.close(a:min(), 1)
  local v, i = a:max(2)
  T.close(v, {9, 8})
  T.close(i, {2, 3})
  v, i = a:min(1)
  T.close(v, {3, 2, 1})
  T.close(i, {1, 2, 1})
  v, i = a:max(1, {keepdim = true})
  T.close(v, {{7, 9, 8}})
  T.close(i, {{2, 1, 2}})
  T.close(a:max({1, 2}), 9)
  T.close(a:argmax(), 2)
  T.close(a:argmin(), 3)
  T.close(a:argmax(2), {2, 3})
  T.close(a:argmin(2), {3, 2})
  T.close(a:argmax(1, {keepdim = true}), {{2, 1, 2}})
end)

T.test("logsumexp norm", function()
  local a = lg.tensor{{0, math.log(3)}, {math.log(2), math.log(2)}}
  T.close(a:logsumexp(2), {math.log(4), math.log(4)})
  T.near(a:logsumexp():item(), math.log(8), 1e-5)
  local b = lg.tensor{{3, -4}, {0, 0}}
  T.close(b:norm(), 5)
  T.close(b:norm(1), 7)
  T.close(b:norm(2, 2), {5, 0})
  T.close(b:norm(2, 1, {keepdim = true}), {{3, 4}})
  T.close(b:norm(nil, {1, 2}), 5)
end)

T.test("matmul: mm, mv, dot, batched", function()
  local a = lg.tensor{{1, 2}, {3, 4}}
  local b = lg.tensor{{5, 6}, {7, 8}}
  T.close(lg.matmul(a, b), {{19, 22}, {43, 50}})
  T.close(a:matmul(b), {{19, 22}, {43, 50}})
  T.close(a:matmul(lg.tensor{1, 1}), {3, 7})
  T.close(lg.tensor{1, 2}:matmul(lg.tensor{3, 4}), 11)
  local batch = lg.stack({a, b})
  T.close(batch:matmul(a), {{{7, 10}, {15, 22}}, {{23, 34}, {31, 46}}})
end)

-- ---- in place -------------------------------------------------------------------------------
T.test("in-place ops return self and write through views", function()
  local t = lg.zeros(2, 2)
  T.ok(t:fill_(3) == t)
  T.close(t, 3)
  T.ok(t:add_(1) == t)
  T.close(t, 4)
  t:add_(lg.tensor{1, 2}, 2)
  T.close(t, {{6, 8}, {6, 8}})
  t:sub_(1)
  T.close(t, {{5, 7}, {5, 7}})
  t:mul_(2)
  T.close(t, {{10, 14}, {10, 14}})
  t:mul_(lg.tensor{{1}, {0}})
  T.close(t, {{10, 14}, {0, 0}})
  t:clamp_(1, 12)
  T.close(t, {{10, 12}, {1, 1}})
  T.ok(t:copy_(lg.tensor{{1, 2}, {3, 4}}) == t)
  T.close(t, {{1, 2}, {3, 4}})
  t:select(1, 1):zero_()
  T.close(t, {{0, 0}, {3, 4}})
  lg.manual_seed(3)
  local n = lg.empty(2000):normal_(5, 2)
  T.near(n:mean():item(), 5, 0.05)
  T.near(n:std():item(), 2, 0.05)
  local u = lg.empty(2000):uniform_(-1, 3)
  T.ok(u:min():item() >= -1 and u:max():item() < 3)
  T.near(u:mean():item(), 1, 0.1)
  T.ok(lg.zeros(3):zero_():normal_():uniform_() ~= nil)
end)

-- ---- memory -----------------------------------------------------------------------------------
T.test("20000 1 MB tensors keep Lua and tensor memory flat", function()
  collectgarbage()
  local lua0, live0 = collectgarbage("count"), lg.mem_live_bytes()
  local peak_lua, peak_live = 0, 0
  for i = 1, 20000 do
    local t = lg.empty(256, 1024)       -- 1 MiB of storage each
    if i % 100 == 0 then
      peak_lua = math.max(peak_lua, collectgarbage("count") - lua0)
      peak_live = math.max(peak_live, lg.mem_live_bytes() - live0)
    end
  end
  -- 20000 MB were created; without the collector hint they would pile up.
  T.ok(peak_live < 512 * 1024 * 1024, ("tensor memory grew to %.0f MB"):format(peak_live / 2^20))
  T.ok(peak_lua < 16 * 1024, ("Lua heap grew by %.0f KB"):format(peak_lua))
end)

T.test("views keep the storage alive; <close> frees at scope end", function()
  local v
  do
    local t = lg.arange(10)
    v = t:narrow(1, 3, 2)
  end
  collectgarbage()
  T.close(v, {2, 3})
  do
    local t <close> = lg.ones(3)
    T.close(t, 1)
  end
end)

-- ---- the framework table (scripts/luagan/init.lua) --------------------------------------
T.test("require 'luagan': core re-exported, helpers, lazy submodules, lg.Tensor", function()
  local core = require "luagan.core"
  T.ok(lg.zeros == core.zeros and lg.grad == core.grad)
  T.eq(lg.type(lg.ones(1)), "tensor")
  T.eq(lg.type({}), "table")
  T.eq(lg.shape_str(lg.zeros(64, 100)), "64x100")
  T.eq(lg.shape_str(lg.tensor(1)), "scalar")
  T.ok(lg.is_tensor(lg.ones(1)) and not lg.is_tensor({}))
  T.eq(lg.no_such_module_here, nil)
  T.eq(type(lg.gradcheck), "function")
  function lg.Tensor.twice(t) return t * 2 end   -- user methods on every tensor
  T.close(lg.ones(2):twice(), {2, 2})
  lg.Tensor.twice = nil
  T.eq(lg.ones(2).twice, nil)
  T.ok(lg.ones(2).data ~= nil and not lg.ones(2, {requires_grad = true}).data.requires_grad)
end)
