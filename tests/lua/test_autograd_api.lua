-- The autograd surface of the Lua binding: requires_grad, backward and .grad
-- accumulation, fields, detach, retain_grad, grad-mode scopes, lg.grad with
-- create_graph (gradients of gradients), custom Lua functions, and errors.
local T = ...
local lg = require "luagan"

T.test("backward accumulates into .grad", function()
  local x = lg.tensor({1, 2, 3}, {requires_grad = true})
  T.eq(x.grad, nil)
  T.ok(x.requires_grad and x.is_leaf)
  local y = (x * x):sum()
  T.eq(y.grad_fn, "sum")
  T.ok(not y.is_leaf)
  y:backward()
  T.close(x.grad, {2, 4, 6})
  ;(x * x):sum():backward()
  T.close(x.grad, {4, 8, 12})
  x.grad = nil
  T.eq(x.grad, nil)
  ;(x * 3):sum():backward()
  T.close(x.grad, {3, 3, 3})
  x.grad = lg.zeros(3)
  ;(x ^ 2):sum():backward()
  T.close(x.grad, {2, 4, 6})
end)

T.test("relu and leaky_relu keep their output, not their input, for the gradient", function()
  local x = lg.tensor({-2, -0.0, 0.0, 1e-30, 3}, {requires_grad = true})
  x:relu():sum():backward()
  T.eq(x.grad:totable(), {0, 0, 0, 1, 1})
  x.grad = nil
  x:leaky_relu(0.2):sum():backward()
  T.close(x.grad, {0.2, 0.2, 0.2, 1, 1})
  x.grad = nil
  x:leaky_relu(0):sum():backward()
  T.eq(x.grad:totable(), {0, 0, 0, 1, 1})
  x.grad = nil
  x:leaky_relu(-0.5):sum():backward()       -- a negative slope keeps the input
  T.close(x.grad, {-0.5, -0.5, -0.5, 1, 1})
  -- the activation's input (a 4 MiB intermediate here) is freed after the
  -- forward pass instead of living until backward
  local w = lg.ones(1 << 20):requires_grad_()
  for _, f in ipairs{function(a) return a:relu() end, function(a) return a:leaky_relu(0.2) end} do
    collectgarbage()
    local live0 = lg.mem_live_bytes()
    local a = w * 2
    local y = f(a)
    a = nil
    collectgarbage()
    T.eq(lg.mem_live_bytes() - live0, 4 << 20, "only the output is live")
    y:sum():backward()
    T.eq(w.grad:sum():item(), 2 * (1 << 20))
    w.grad = nil
  end
  -- so changing the output in place before backward is the error it is for
  -- any saved tensor
  local y = (x * 1):relu()
  lg.no_grad(function() y:add_(1) end)
  T.errors(function() y:sum():backward() end, "relu: a tensor needed for the gradient was modified by an in-place operation")
end)

T.test("backward{inputs = ...} fills only the listed leaves' .grad", function()
  local a = lg.tensor({1, 2, 3}, {requires_grad = true})
  local b = lg.tensor({-1, 0.5, 2}, {requires_grad = true})
  local function loss() return (a * b):sum() + (a * a):sum() end
  loss():backward{inputs = {a}}
  T.eq(a.grad:totable(), {1, 4.5, 8})
  T.eq(b.grad, nil)
  b.grad = lg.tensor{7, 7, 7}
  loss():backward{inputs = a}                       -- one tensor is a list of one
  T.eq(a.grad:totable(), {2, 9, 16})
  T.eq(b.grad:totable(), {7, 7, 7}, "a leaf not listed keeps its .grad")
  a.grad, b.grad = nil, nil
  loss():backward(nil, {inputs = {a, b}})
  local full_a, full_b = a.grad:totable(), b.grad:totable()
  a.grad, b.grad = nil, nil
  loss():backward()
  T.eq(full_a, a.grad:totable())
  T.eq(full_b, b.grad:totable())
  T.errors(function() loss():backward{inputs = {a * 2}} end, "backward: inputs[1] is not a leaf")
  T.errors(function() loss():backward{inputs = {lg.ones(3)}} end,
           "backward: inputs[1] does not require grad")
  T.errors(function() loss():backward{inputs = {}} end, "backward: inputs is an empty list")
  T.errors(function() loss():backward{inputs = {a, 3}} end, "backward: inputs[2] is")
  T.errors(function() loss():backward{inputs = 3} end,
           "backward: inputs must be a tensor or a list of tensors")
end)

T.test("backward with an explicit gradient and through views", function()
  local x = lg.tensor({{1, 2}, {3, 4}}, {requires_grad = true})
  local y = x * 2
  y:backward(lg.tensor{{1, 0}, {0, 1}})
  T.close(x.grad, {{2, 0}, {0, 2}})
  x.grad = nil
  x[2]:sum():backward()                  -- select routes the gradient
  T.close(x.grad, {{0, 0}, {1, 1}})
  x.grad = nil
  x:t():narrow(1, 2, 1):sum():backward() -- second column of x
  T.close(x.grad, {{0, 1}, {0, 1}})
end)

T.test("requires_grad_, detach, retain_grad, field assignment", function()
  local x = lg.ones(2)
  T.ok(x:requires_grad_() == x)
  T.ok(x.requires_grad)
  x:requires_grad_(false)
  T.ok(not x.requires_grad)
  x.requires_grad = true
  T.ok(x.requires_grad)
  local y = x * 3
  local d = y:detach()
  T.ok(not d.requires_grad and d.is_leaf)
  T.eq(d.grad_fn, nil)
  T.close(d, {3, 3})
  T.ok(y:retain_grad() == y)
  local z = (y * y):sum()
  z:backward()
  T.close(y.grad, {6, 6})                -- dz/dy = 2y
  T.close(x.grad, {18, 18})              -- dz/dx = 2y * 3
  T.errors(function() y:requires_grad_(false) end, "non-leaf")
end)

T.test("no_grad and enable_grad scopes return results and restore the mode", function()
  local x = lg.ones(2, {requires_grad = true})
  T.ok(lg.is_grad_enabled())
  local a, b = lg.no_grad(function(u, v)
    T.ok(not lg.is_grad_enabled())
    return x * u, v
  end, 2, "kept")
  T.ok(not a.requires_grad)
  T.eq(b, "kept")
  T.ok(lg.is_grad_enabled())
  T.errors(function() lg.no_grad(function() error("inside") end) end, "inside")
  T.ok(lg.is_grad_enabled(), "mode restored after an error")
  lg.no_grad(function()
    local r = lg.enable_grad(function() return x * 2 end)
    T.ok(r.requires_grad)
    T.ok(not lg.is_grad_enabled())
  end)
  T.eq(lg.set_grad_enabled(false), true)
  T.ok(not (x * 2).requires_grad)
  T.eq(lg.set_grad_enabled(true), false)
end)

T.test("lg.grad returns a list and leaves .grad alone", function()
  local x = lg.tensor({1, 2}, {requires_grad = true})
  local w = lg.tensor({3, 4}, {requires_grad = true})
  local y = (x * w):sum()
  local g = lg.grad(y, {x, w})
  T.eq(g.n, 2)
  T.close(g[1], {3, 4})
  T.close(g[2], {1, 2})
  T.eq(x.grad, nil)
  local gx = lg.grad((x * x):sum(), x)[1]
  T.close(gx, {2, 4})
  local gx2, gw2 = lg.grads((x * w):sum(), {x, w})
  T.close(gx2, {3, 4})
  T.close(gw2, {1, 2})
end)

T.test("gradient of a gradient: d/dx sum(d/dx sum(x^3)) = 6x", function()
  local x = lg.tensor({-1, 0.5, 2}, {requires_grad = true})
  local g = lg.grad((x ^ 3):sum(), x, {create_graph = true})[1]
  T.close(g, {3, 0.75, 12})              -- 3x^2
  T.ok(g.requires_grad)
  local gg = lg.grad(g:sum(), x)[1]
  T.close(gg, {-6, 3, 12}, 1e-5)
  -- the same through backward(create_graph=true)
  local y = (x ^ 3):sum()
  y:backward(nil, {create_graph = true})
  local first = x.grad
  x.grad = nil
  first:sum():backward()
  T.close(x.grad, {-6, 3, 12}, 1e-5)
end)

T.test("grad_outputs, several outputs, allow_unused holes", function()
  local x = lg.tensor({1, 2}, {requires_grad = true})
  local u = lg.tensor({5}, {requires_grad = true})
  local y = x * 2
  local g = lg.grad(y, x, {grad_outputs = lg.tensor{1, 10}})
  T.close(g[1], {2, 20})
  local y1, y2 = (x * 2):sum(), (x * x):sum()
  T.close(lg.grad({y1, y2}, x)[1], {4, 6})
  local r = lg.grad((x * 2):sum(), {u, x}, {allow_unused = true})
  T.eq(r.n, 2)
  T.eq(r[1], nil)
  T.close(r[2], {2, 2})
  T.errors(function() lg.grad((x * 2):sum(), {u, x}) end, "input 1 was not used")
end)

T.test("autograd errors", function()
  local x = lg.tensor({1, 2, 3}, {requires_grad = true})
  T.errors(function() (x * x):backward() end, "implicitly created only for scalar outputs")
  local y = (x * x):sum()
  y:backward()
  T.errors(function() y:backward() end, "already freed")
  local z = (x * x):sum()
  z:backward(nil, {retain_graph = true})
  z:backward()                           -- retained once: a second pass works
  T.close(x.grad, {2 + 2 + 2, 4 + 4 + 4, 6 + 6 + 6})
  local c = lg.ones(3)
  T.errors(function() lg.grad((x * c):sum(), c) end, "input 1 does not require grad")
  T.errors(function() (x * 2):backward(lg.ones(2)) end, "gradient shape 2 does not match output shape 3")
  T.errors(function() lg.ones(2):sum():backward() end, "does not require grad")
  T.errors(function() x.grad = lg.ones(4) end, "shape 4 to a tensor of shape 3")
  T.errors(function() lg.grad(x:sum(), "x") end, "inputs must be a tensor or a list")
  T.errors(function() lg.grad({}, x) end, "no outputs")
  T.errors(function() lg.ones(2):retain_grad() end, "does not require grad")
end)

-- ---- custom Lua functions ------------------------------------------------------
local Square = lg.Function{
  name = "Square",
  forward = function(ctx, x)
    ctx:save_for_backward(x)
    return x * x
  end,
  backward = function(ctx, g)
    local x = ctx.saved[1]
    return g * 2 * x
  end,
}

T.test("lg.Function: forward under no_grad, Lua backward", function()
  local x = lg.tensor({1, -2, 3}, {requires_grad = true})
  local y = Square(x)
  T.close(y, {1, 4, 9})
  T.eq(y.grad_fn, "Square")
  y:sum():backward()
  T.close(x.grad, {2, -4, 6})
  T.close(Square:apply(lg.tensor{2}), {4})
  local plain = Square(lg.tensor{3})       -- no input needs grad: no node
  T.eq(plain.grad_fn, nil)
  T.ok(tostring(Square):find("Square", 1, true))
end)

T.test("lg.Function: several inputs, non-tensor arguments, needs_input_grad", function()
  local seen
  local Scale = lg.Function{
    name = "Scale",
    forward = function(ctx, a, k, b)
      ctx.k = k
      ctx:save_for_backward(a, b)
      return a * k + b
    end,
    backward = function(ctx, g)
      seen = ctx.needs_input_grad
      return g * ctx.k, nil, g
    end,
  }
  local a = lg.tensor({1, 2}, {requires_grad = true})
  local b = lg.tensor({0, 1})
  local y = Scale(a, 3, b)
  T.close(y, {3, 7})
  y:sum():backward()
  T.close(a.grad, {3, 3})
  T.eq(seen, {true, false, false})
end)

T.test("lg.Function backward stays differentiable under create_graph", function()
  local x = lg.tensor({1, 2}, {requires_grad = true})
  local g = lg.grad(Square(x):sum(), x, {create_graph = true})[1]
  T.close(g, {2, 4})
  local gg = lg.grad(g:sum(), x)[1]
  T.close(gg, {2, 2})
end)

T.test("lg.Function errors propagate with the Lua message", function()
  local Bad = lg.Function{
    name = "Bad",
    forward = function(ctx, x) return x + 1 end,
    backward = function(ctx, g) error("broken backward") end,
  }
  local x = lg.ones(2, {requires_grad = true})
  local err = T.errors(function() Bad(x):sum():backward() end, "broken backward")
  T.ok(err:find("Bad", 1, true), err)
  local WrongShape = lg.Function{
    forward = function(ctx, x) return x * 1 end,
    backward = function(ctx, g) return lg.ones(5) end,
  }
  T.errors(function() WrongShape(x):sum():backward() end, "shape")
  local NotTensor = lg.Function{
    forward = function(ctx, x) return 3 end,
    backward = function(ctx, g) return g end,
  }
  T.errors(function() NotTensor(x) end, "forward must return a tensor, got number")
  local BadGrad = lg.Function{
    forward = function(ctx, x) return x * 1 end,
    backward = function(ctx, g) return "nope" end,
  }
  T.errors(function() BadGrad(x):sum():backward() end, "gradient 1 must be a tensor or nil, got string")
  T.errors(function() lg.Function{forward = 1, backward = function() end} end, "'forward' must be a function")
  local y = Square(x):sum()
  y:backward()
  T.errors(function() y:backward() end, "already freed")
  T.ok(lg.is_grad_enabled())
end)

-- Issue 14: a forward returning two outputs silently dropped the second, and a
-- backward returning nothing was reported as "input 1 was not used".
local ProdNorm = lg.Function{
  name = "ProdNorm",                       -- (a * b, sum(a^2)): a vector and a scalar
  forward = function(ctx, a, b)
    ctx:save_for_backward(a, b)
    return a * b, (a * a):sum()
  end,
  backward = function(ctx, gp, gs)
    local a, b = ctx.saved[1], ctx.saved[2]
    return gp * b + a * gs * 2, gp * a
  end,
}

T.test("lg.Function with two outputs: both returned, gradients of both, gradcheck, double backward", function()
  local a = lg.tensor({1, -2, 3}, {requires_grad = true})
  local b = lg.tensor({0.5, 1, 2}, {requires_grad = true})
  local p, s = ProdNorm(a, b)
  T.close(p, {0.5, -2, 6})
  T.shape(p, {3})
  T.ok(s ~= nil, "second output dropped")
  T.shape(s, {})
  T.close(s, 14)
  -- both outputs feed the loss: the backward gets both gradients
  local ga, gb = table.unpack(lg.grad((p * 3):sum() + s * 5, {a, b}))
  T.close(ga, {0.5 * 3 + 10, 1 * 3 - 20, 2 * 3 + 30})
  T.close(gb, {3, -6, 9})
  -- only one output used: the other's gradient is zeros
  T.close(lg.grad(select(2, ProdNorm(a, b)), a)[1], {2, -4, 6})
  T.close(lg.grad(ProdNorm(a, b):sum(), b)[1], {1, -2, 3})
  -- no input needs grad: plain outputs, no node
  local p0, s0 = ProdNorm(lg.tensor{2}, lg.tensor{3})
  T.close(p0, {6}); T.close(s0, 4)
  T.eq(p0.grad_fn, nil)
  -- an input returned as an output is not aliased
  local Twice = lg.Function{
    forward = function(ctx, x) return x, x * 2 end,
    backward = function(ctx, g1, g2) return g1 + g2 * 2 end,
  }
  local x = lg.tensor({1, 2}, {requires_grad = true})
  local y1, y2 = Twice(x)
  T.ok(y1 ~= x)
  T.close(lg.grad((y1 + y2):sum(), x)[1], {3, 3})
  -- gradcheck and gradgradcheck through both outputs
  local fn = function(u, v) local q, r = ProdNorm(u, v) return {q, r} end
  local u = lg.randn(4, {requires_grad = true})
  local v = lg.randn(4, {requires_grad = true})
  T.ok(lg.gradcheck(fn, {u, v}))
  T.ok(lg.gradgradcheck(fn, {u, v}))
  -- double backward: d/da of sum(d s/da) = d/da sum(2a) = 2
  local g1 = lg.grad(select(2, ProdNorm(a, b)), a, {create_graph = true})[1]
  T.close(lg.grad(g1:sum(), a)[1], {2, 2, 2})
end)

T.test("lg.Function: a backward that returns too few gradients says so", function()
  local x = lg.ones(2, {requires_grad = true})
  local y = lg.ones(2, {requires_grad = true})
  local Silent = lg.Function{
    name = "Silent",
    forward = function(ctx, a) return a * 2 end,
    backward = function(ctx, g) end,          -- forgot `return`
  }
  local err = T.errors(function() lg.grad(Silent(x):sum(), x) end, "returned nothing")
  T.ok(err:find("Silent", 1, true) and not err:find("not used", 1, true), err)
  T.errors(function() Silent(x):sum():backward() end, "returned nothing")
  local Short = lg.Function{
    forward = function(ctx, a, b) return a * b end,
    backward = function(ctx, g) return g end,
  }
  T.errors(function() lg.grad(Short(x, y):sum(), {x, y}) end,
           "returned 1 gradient for 2 inputs, and input 2 needs one")
  -- an explicit nil for a needed input is a zero gradient
  local NilGrad = lg.Function{
    forward = function(ctx, a, b) return a + b end,
    backward = function(ctx, g) return g, nil end,
  }
  local gx, gy = table.unpack(lg.grad(NilGrad(x, y):sum(), {x, y}))
  T.close(gx, {1, 1}); T.close(gy, {0, 0})
  local Nothing = lg.Function{forward = function(ctx, a) end, backward = function() end}
  T.errors(function() Nothing(x) end, "forward must return a tensor, got nothing")
  local Mixed = lg.Function{forward = function(ctx, a) return a, 3 end, backward = function() end}
  T.errors(function() Mixed(x) end, "output 2 of 2 is number")
end)

T.test("graph memory is freed: 2000 training-like steps keep memory flat", function()
  local w = lg.randn(64, 64, {requires_grad = true})
  local x = lg.randn(16, 64)
  collectgarbage()
  local live0 = lg.mem_live_bytes()
  local peak = 0
  for i = 1, 2000 do
    local y = Square(lg.matmul(x, w)):mean()
    y:backward()
    w.grad = nil
    if i % 100 == 0 then peak = math.max(peak, lg.mem_live_bytes() - live0) end
  end
  T.ok(peak < 64 * 2^20, ("live tensor memory grew by %.1f MB"):format(peak / 2^20))
end)

-- Issue 3's memory bar: 10 000 iterations of a step with a gradient penalty
-- (double backward) keep both the runtime's live bytes and Lua's heap flat.
-- Under the sanitizer build this also proves the graphs are freed cleanly.
T.test("10 000 gradient-penalty steps keep memory flat", function()
  local w1 = lg.randn(8, 16, {requires_grad = true})
  local w2 = lg.randn(16, 1, {requires_grad = true})
  collectgarbage()
  local live0, lua0 = lg.mem_live_bytes(), collectgarbage("count")
  local live_mid, lua_mid
  for i = 1, 10000 do
    local x = lg.randn(4, 8, {requires_grad = true})
    local d = lg.matmul(lg.matmul(x, w1):tanh(), w2)
    local gx = lg.grad({d:sum()}, {x}, {create_graph = true})[1]
    local loss = d:mean() + ((gx:norm(2, 2) - 1) ^ 2):mean() * 10
    loss:backward()
    w1.grad, w2.grad = nil, nil
    if i == 5000 then
      collectgarbage()
      live_mid, lua_mid = lg.mem_live_bytes(), collectgarbage("count")
    end
  end
  collectgarbage()
  local live1, lua1 = lg.mem_live_bytes(), collectgarbage("count")
  -- the second half may not grow at all beyond collector noise
  T.ok(live1 - live_mid < 64 * 1024,
       ("runtime memory grew %d bytes over the second 5000 steps"):format(live1 - live_mid))
  T.ok(lua1 - lua_mid < 256, ("Lua heap grew %.0f KB over the second 5000 steps"):format(lua1 - lua_mid))
  T.ok(live1 - live0 < 1024 * 1024, "runtime memory grew over the whole loop")
  T.ok(lua1 - lua0 < 1024, "Lua heap grew over the whole loop")
end)
