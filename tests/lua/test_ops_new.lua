-- test_ops_new.lua: the ops and layers of issue 14 from Lua: results against
-- hand-worked values (PyTorch's, with 1-based dims and indices), the
-- indices sort/topk return, errors that speak 1-based, options that reject
-- unknown keys, and x:shape() printing as "2x3". Gradients are checked in
-- test_gradcheck.lua and values against PyTorch in test_golden.lua.
local T = ...
local lg = require "luagan"
local nn = lg.nn

T.test("x:shape() prints as 2x3 and still indexes as a list", function()
  local x = lg.zeros(2, 3)
  local s = x:shape()
  T.eq(tostring(s), "2x3")
  T.eq(s[1], 2); T.eq(s[2], 3); T.eq(#s, 2)
  T.eq("shape " .. s, "shape 2x3")
  T.eq(tostring(x:size()), "2x3")
  T.eq(x:size(2), 3)
  T.eq(tostring(lg.tensor(1):shape()), "scalar")
  T.eq(tostring(require("luagan.core").zeros(4, 1, 2):shape()), "4x1x2")   -- the C module alone too
  T.eq(lg.shape_str(x), "2x3")
  T.eq(table.concat(s, ","), "2,3")
  T.shape(lg.zeros(s), {2, 3})               -- a shape table still builds tensors
end)

T.test("gather and scatter_add take 1-based indices", function()
  local x = lg.tensor({{1, 2, 3}, {4, 5, 6}})
  T.close(x:gather(2, lg.tensor({{3, 1}, {2, 2}})), {{3, 1}, {5, 5}})
  T.close(lg.gather(x, 1, lg.tensor({{2, 1, 2}})), {{4, 2, 6}})
  local z = lg.zeros(2, 3)
  T.close(z:scatter_add(2, lg.tensor({{1, 1}, {3, 2}}), lg.ones(2, 2)), {{2, 0, 0}, {0, 1, 1}})
  T.errors(function() x:gather(2, lg.tensor({{4}})) end, "gather: index 4 out of range for dim 2 of size 3 (indices are 1-based)")
  T.errors(function() x:gather(1, lg.tensor({{0}})) end, "index 0 out of range for dim 1")
  T.errors(function() x:gather(3, lg.tensor({{1}})) end, "dim")
  T.errors(function() x:gather(1, lg.tensor({1})) end, "index has 1 dims")
  local err = T.errors(function() x:gather(2, lg.ones(3, 1)) end, "gather: index shape 3x1 is larger than input 2x3 outside the indexed dim")
  T.ok(not err:find("dim 0", 1, true), err)
  T.errors(function() z:scatter_add(1, lg.ones(1, 3), lg.ones(1, 2)) end, "scatter_add: index shape 1x3 is larger than src 1x2")
end)

T.test("scatter writes src or a number at the indices", function()
  local x = lg.zeros(2, 4)
  T.close(x:scatter(2, lg.tensor({{2, 4}, {1, 1}}), lg.tensor({{7, 8}, {9, 9}})), {{0, 7, 0, 8}, {9, 0, 0, 0}})
  T.close(lg.ones(2, 2):scatter(1, lg.tensor({{2, 1}}), 5), {{1, 5}, {5, 1}})
  T.errors(function() x:scatter(2, lg.tensor({{1}}), "a") end, "scatter: src must be a tensor or a number")
end)

T.test("sort and topk return values and 1-based indices", function()
  local x = lg.tensor({{3, 1, 2, 1}, {0, 5, 4, 9}})
  local v, i = x:sort(2)
  T.close(v, {{1, 1, 2, 3}, {0, 4, 5, 9}})
  T.close(i, {{2, 4, 3, 1}, {1, 3, 2, 4}})           -- stable: the two 1s keep their order
  v, i = x:sort(1, {descending = true})
  T.close(v, {{3, 5, 4, 9}, {0, 1, 2, 1}})
  T.close(i, {{1, 2, 2, 2}, {2, 1, 1, 1}})
  v, i = x:sort({descending = true})                 -- dim defaults to the last
  T.close(i, {{1, 3, 2, 4}, {4, 2, 3, 1}})
  v, i = x:topk(2)
  T.close(v, {{3, 2}, {9, 5}}); T.close(i, {{1, 3}, {4, 2}})
  v, i = lg.topk(x, 1, 1, {largest = false})
  T.close(v, {{0, 1, 2, 1}}); T.close(i, {{2, 1, 1, 1}})
  local n = lg.tensor({2, 0 / 0, 1})
  v, i = n:sort()
  T.close(i, {3, 1, 2})                              -- NaN sorts last, as in PyTorch
  T.errors(function() x:topk(5) end, "topk: k = 5 is out of range for dim 2 of size 4")
  T.errors(function() x:sort(2, {decending = true}) end, "unknown option 'decending'")
  -- indices carry no gradient; values do
  local a = lg.tensor({3, 1, 2}):requires_grad_()
  local sv, si = a:sort()
  T.ok(sv.requires_grad and not si.requires_grad)
  sv:mul(lg.tensor({1, 10, 100})):sum():backward()
  T.close(a.grad, {100, 1, 10})
end)

T.test("cumsum, flip, floor, round, isnan, isfinite", function()
  local x = lg.tensor({{1, 2, 3}, {4, 5, 6}})
  T.close(x:cumsum(2), {{1, 3, 6}, {4, 9, 15}})
  T.close(x:cumsum(-2), {{1, 2, 3}, {5, 7, 9}})
  T.close(x:flip(2), {{3, 2, 1}, {6, 5, 4}})
  T.close(x:flip({1, 2}), {{6, 5, 4}, {3, 2, 1}})
  -- errors are one line at the caller's line, speaking 1-based dims
  local err = T.errors(function() x:flip(3) end, "flip: dim 3 out of range for a tensor of 2 dims (expected 1..2 or -2..-1)")
  T.ok(err:find("test_ops_new.lua", 1, true), err)
  err = T.errors(function() lg.pixel_shuffle(x, 2) end, "pixel_shuffle: expected input (N, C*r*r, H, W), got 2x3")
  T.ok(err:find("test_ops_new.lua", 1, true), err)
  T.errors(function() x:repeat_interleave(2, 0) end, "repeat_interleave: dim 0 out of range")
  T.close(lg.tensor({-1.5, -0.5, 0.5, 1.5, 2.5, 2.6}):round(), {-2, 0, 0, 2, 2, 3})
  T.close(lg.tensor({-1.5, 0.2, 2.9}):floor(), {-2, 0, 2})
  local y = lg.tensor({1, 0 / 0, 1 / 0, -1 / 0})
  T.close(y:isnan(), {0, 1, 0, 0})
  T.close(y:isfinite(), {1, 0, 0, 0})
  -- floor has a zero gradient (as in PyTorch), not an error
  local a = lg.tensor({1.5, 2.5}):requires_grad_()
  a:floor():sum():backward()
  T.close(a.grad, {0, 0})
  T.ok(not a:isnan().requires_grad)
end)

T.test("one_hot takes 1-based classes", function()
  T.close(lg.one_hot(lg.tensor({2, 1, 3}), 4), {{0, 1, 0, 0}, {1, 0, 0, 0}, {0, 0, 1, 0}})
  T.shape(lg.one_hot(lg.tensor({{1, 2}}), 3), {1, 2, 3})
  T.shape(lg.one_hot(lg.tensor({1, 5})), {2, 5})      -- n defaults to the largest class
  T.errors(function() lg.one_hot(lg.tensor({0, 1}), 3) end, "one_hot: y holds 0; classes must be integers in [1, 3] (1-based)")
  T.errors(function() lg.one_hot(lg.tensor({4}), 3) end, "y holds 4")
  T.errors(function() lg.one_hot(lg.tensor({1.5}), 3) end, "classes must be integers")
end)

T.test("gelu, silu, erf", function()
  local x = lg.tensor({-1, 0, 1})
  -- PyTorch: F.gelu([-1, 0, 1]) = [-0.158655, 0, 0.841345]; tanh form -0.158808, 0, 0.841192
  T.close(x:gelu(), {-0.15865526, 0, 0.84134474}, 1e-5)
  T.close(x:gelu({approximate = "tanh"}), {-0.15880801, 0, 0.84119199}, 1e-5)
  T.close(x:silu(), {-0.26894142, 0, 0.73105858}, 1e-5)
  T.close(x:erf(), {-0.84270079, 0, 0.84270079}, 1e-6)
  T.errors(function() x:gelu({approximate = "fast"}) end, "gelu: approximate must be \"none\" or \"tanh\"")
  T.errors(function() x:gelu({aproximate = "tanh"}) end, "unknown option 'aproximate'")
end)

T.test("tile and repeat_interleave", function()
  local x = lg.tensor({{1, 2}, {3, 4}})
  T.close(x:tile(1, 2), {{1, 2, 1, 2}, {3, 4, 3, 4}})
  T.close(x:tile(2), {{1, 2, 1, 2}, {3, 4, 3, 4}})      -- fewer reps: leading dims once
  T.shape(x:tile(2, 1, 1), {2, 2, 2})
  T.close(x:repeat_interleave(2, 1), {{1, 2}, {1, 2}, {3, 4}, {3, 4}})
  T.close(x:repeat_interleave(2), {1, 1, 2, 2, 3, 3, 4, 4})
  T.close(x:repeat_interleave({1, 2}, 2), {{1, 2, 2}, {3, 4, 4}})
  T.errors(function() x:repeat_interleave({1, 2, 3}, 2) end, "3 repeats for dim 2 of size 2")
end)

T.test("einsum", function()
  local a, b = lg.randn(2, 3), lg.randn(3, 4)
  T.close(lg.einsum("ij,jk->ik", a, b), lg.matmul(a, b), 1e-5)
  T.close(lg.einsum("ij,jk", a, b), lg.matmul(a, b), 1e-5)       -- implicit output "ik"
  T.close(lg.einsum("ij->ji", a), a:t())
  T.close(lg.einsum("ij->", a), a:sum(), 1e-5)
  local x, y = lg.randn(2, 3, 4), lg.randn(2, 4, 5)
  T.close(lg.einsum("bij,bjk->bik", x, y), lg.matmul(x, y), 1e-5)
  T.close(lg.einsum("i,j->ij", lg.tensor({1, 2}), lg.tensor({3, 4, 5})), {{3, 4, 5}, {6, 8, 10}})
  T.close(lg.einsum("i,i", lg.tensor({1, 2}), lg.tensor({3, 4})), 11)
  T.close(lg.einsum("ij,jk->ik", {a, b}), lg.matmul(a, b), 1e-5)   -- operands as a list
  T.errors(function() lg.einsum("ii->i", lg.eye(2)) end, "letter i repeats in operand 1 (diagonals are not supported)")
  T.errors(function() lg.einsum("ij,jk->ik", a, a) end, "letter j is 3 in one operand and 2 in operand 2")
  T.errors(function() lg.einsum("ij->ik", a) end, "output letter k is not in any operand")
  T.errors(function() lg.einsum("ijk", a) end, "operand 1 has 2 dims (2x3) but spec \"ijk\" gives it 3 letters")
  T.errors(function() lg.einsum("...ij->ij", a) end, "not supported")
end)

T.test("GroupNorm, PixelShuffle, Conv1d, AdaptiveAvgPool2d, PReLU", function()
  lg.manual_seed(7)
  local x = lg.randn(2, 4, 3, 3)
  local gn = nn.GroupNorm(2, 4)
  local y = gn(x)
  T.shape(y, {2, 4, 3, 3})
  local g1 = y:narrow(2, 1, 2)                       -- group 1 of sample 1..2: mean 0, var 1
  T.close(g1:reshape(2, -1):mean(2), {0, 0}, 1e-5)
  T.close(g1:reshape(2, -1):var(2, {correction = 0}), {1, 1}, 1e-3)
  T.eq(#gn:parameters(), 2)
  T.eq(#nn.GroupNorm(2, 4, {affine = false}):parameters(), 0)
  T.errors(function() nn.GroupNorm(3, 4) end, "nn.GroupNorm: 3 groups do not divide 4 channels")
  T.errors(function() nn.GroupNorm(2, 4, {epsilon = 1}) end, "nn.GroupNorm: unknown option 'epsilon'")

  local ps = nn.PixelShuffle(2)(lg.arange(0, 8):reshape(1, 4, 1, 2))
  -- PyTorch: pixel_shuffle(arange(8).view(1,4,1,2), 2) = [[[[0,2,1,3],[4,6,5,7]]]]
  T.close(ps, {{{{0, 2, 1, 3}, {4, 6, 5, 7}}}})

  local c = nn.Conv1d(3, 5, 3, {stride = 2, padding = 1, bias = false})
  local s = lg.randn(2, 3, 8)
  T.shape(c(s), {2, 5, 4})
  T.ok(c.bias == nil)
  -- the same as conv2d on a unit width
  T.close(c(s), lg.conv2d(s:unsqueeze(4), c.weight:unsqueeze(4), nil, {stride = {2, 1}, padding = {1, 0}}):squeeze(4), 1e-5)
  T.errors(function() nn.Conv1d(3, 5, 3, {strides = 2}) end, "nn.Conv1d: unknown option 'strides' (did you mean 'stride'?; expected: stride, padding, dilation, bias)")
  T.errors(function() c(lg.randn(2, 4, 8)) end, "expected input (N, 3, L), got 2x4x8")

  local p = nn.AdaptiveAvgPool2d(1)(x)
  T.close(p:reshape(2, 4), x:mean({3, 4}), 1e-5)
  -- uneven windows: a 5-row input to 3 rows averages rows {1,2}, {2,3,4}, {4,5}
  local col = lg.tensor({1, 2, 3, 4, 5}):reshape(1, 1, 5, 1)
  T.close(lg.adaptive_avg_pool2d(col, {3, 1}):reshape(3), {1.5, 3, 4.5}, 1e-6)
  T.shape(nn.AdaptiveAvgPool2d({2, nil})(x), {2, 4, 2, 3})

  local pr = nn.PReLU()
  T.close(pr(lg.tensor({-2, 3})), {-0.5, 3})
  T.eq(#nn.PReLU(4):parameters(), 1)
  T.shape(nn.PReLU(4).weight, {4})
  T.close(nn.PReLU({num_parameters = 2, init = 0.1})(lg.tensor({{-1, -1}})), {{-0.1, -0.1}})
  T.errors(function() nn.PReLU({slope = 1}) end, "nn.PReLU: unknown option 'slope'")
  T.errors(function() lg.prelu(lg.randn(2, 3), lg.ones(2)) end, "prelu: weight must have 1 or 3 entries")
end)

T.test("the new layers save and load their state and print", function()
  local net = nn.Sequential{nn.Conv1d(2, 4, 3), nn.GroupNorm(2, 4), nn.PReLU(4)}
  local sd = net:state_dict()
  local names = {}
  for k in pairs(sd) do names[#names + 1] = k end
  table.sort(names)
  T.eq(#names, 5, table.concat(names, " "))
  local other = nn.Sequential{nn.Conv1d(2, 4, 3), nn.GroupNorm(2, 4), nn.PReLU(4)}
  other:load_state_dict(sd)
  local x = lg.randn(3, 2, 6)
  T.close(other(x), net(x), 1e-6)
  local text = tostring(net)
  T.ok(text:find("Conv1d(2, 4, 3)", 1, true) and text:find("GroupNorm(2, 4)", 1, true)
       and text:find("PReLU(num_parameters=4)", 1, true), text)
end)
