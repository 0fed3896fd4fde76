-- luagan.ops: tensor ops written in Lua from the differentiable ops of the C
-- core, so autograd (and double backward) comes with them. install(lg) is
-- called by scripts/luagan/init.lua; each op becomes both a tensor method and
-- an lg function (x:flip(1) and lg.flip(x, 1)).
--
--   one_hot, scatter, flip, gelu, silu, tile, repeat_interleave, einsum
--
-- Dims and indices are 1-based, as everywhere in luagan; otherwise names,
-- argument order and results follow PyTorch (docs/tensors.md "More ops").
local util = require "luagan.util"

local check_opts = util.check_opts
local M = {}

function M.install(lg)
  local T = lg.Tensor
  local function method(name, f) T[name] = f; lg[name] = f end
  -- errors name the line that called the op (level 3: fail, the op, its caller)
  local function fail(fmt, ...) error(string.format(fmt, ...), 3) end
  -- 0-based check of a 1-based (or negative) dim d of x, for the ops below;
  -- raised at the caller of the op (level 3: here, the op, its caller)
  local function check_dim(op, x, d)
    local n = x:dim()
    if math.type(d) ~= "integer" or d == 0 or d > n or d < -n then
      error(string.format("%s: dim %s out of range for a tensor of %d dims (expected 1..%d or -%d..-1)",
                          op, tostring(d), n, n, n), 3)
    end
  end

  -- lg.one_hot(y, n): y holds 1-based class indices (any shape); the result
  -- has y's shape plus a last dim of n with a 1 at each class. n defaults to
  -- the largest class in y.
  function lg.one_hot(y, n)
    if not lg.is_tensor(y) then fail("one_hot: y must be a tensor of 1-based classes, got %s", type(y)) end
    local lo, hi = 1, 0
    if y:numel() > 0 then lo, hi = y:min():item(), y:max():item() end
    n = n or math.tointeger(hi)
    if math.type(n) ~= "integer" or n < 1 then fail("one_hot: number of classes must be an integer >= 1, got %s", tostring(n)) end
    if y:numel() > 0 and (lo < 1 or hi > n or lg.eq(y:floor(), y):min():item() ~= 1) then
      local bad = (lo < 1 or hi <= n) and lo or hi
      if lo >= 1 and hi <= n then                  -- in range, so some class is not an integer
        bad = (y - y:floor()):abs():max():item()
        fail("one_hot: y holds a non-integer class (off by %g); classes must be integers in [1, %d] (1-based)", bad, n)
      end
      fail("one_hot: y holds %g; classes must be integers in [1, %d] (1-based)", bad, n)
    end
    return lg.eq(y:detach():unsqueeze(-1), lg.arange(1, n + 1))
  end

  -- x:scatter(dim, index, src): x with src (a tensor, or a number) written at
  -- index along dim. Differentiable in x (where not overwritten) and src.
  -- Where an index repeats, PyTorch leaves unspecified which value wins;
  -- here the position gets the mean of them (so a number scatters exactly).
  method("scatter", function(x, dim, index, src)
    local ones = lg.ones(index:shape())
    if not lg.is_tensor(src) then
      if type(src) ~= "number" then fail("scatter: src must be a tensor or a number, got %s", type(src)) end
      src = ones * src
    end
    local base = lg.zeros(x:shape())
    local count = base:scatter_add(dim, index, ones)
    return lg.where(count:gt(0), base:scatter_add(dim, index, src) / count:clamp(1), x)
  end)

  -- The dims of a vararg list or a table, as a list.
  local function dims_of(...)
    local first = ...
    if type(first) == "table" then return first end
    return {...}
  end

  -- x:flip(dims...): reverse the order along each dim (a list or varargs).
  method("flip", function(x, ...)
    local dims = dims_of(...)
    local y = x
    for _, d in ipairs(dims) do
      check_dim("flip", x, d)
      local n = x:size(d)
      local rev = {}
      for i = 1, n do rev[i] = n + 1 - i end
      if n > 1 then y = y:index_select(d, rev) end
    end
    return y
  end)

  -- x:gelu({approximate = "none" | "tanh"}): x * Phi(x) with the normal CDF
  -- through erf (PyTorch's default), or its tanh approximation.
  method("gelu", function(x, opts)
    local o = check_opts("gelu", opts, {"approximate"})
    local mode = o.approximate or "none"
    if mode == "none" then return x * ((x * (1 / math.sqrt(2))):erf() + 1) * 0.5 end
    if mode == "tanh" then
      local inner = (x + x ^ 3 * 0.044715) * math.sqrt(2 / math.pi)
      return x * (inner:tanh() + 1) * 0.5
    end
    fail("gelu: approximate must be \"none\" or \"tanh\", got %s", tostring(mode))
  end)

  -- x:silu(): x * sigmoid(x) (also called swish).
  method("silu", function(x) return x * x:sigmoid() end)

  -- x:tile(reps...): repeat the whole tensor reps[i] times along dim i; with
  -- fewer reps than dims the leading dims repeat once, with more the tensor
  -- gains leading dims (PyTorch's tile).
  method("tile", function(x, ...)
    local reps = dims_of(...)
    local shape = x:shape()
    local m = math.max(#reps, #shape)
    local r, s = {}, {}
    for i = 1, m do
      r[i] = reps[i - (m - #reps)] or 1
      s[i] = shape[i - (m - #shape)] or 1
      if math.type(r[i]) ~= "integer" or r[i] < 0 then fail("tile: repeats must be integers >= 0, got %s", tostring(r[i])) end
    end
    -- view as (1, s1, 1, s2, ...), expand to (r1, s1, r2, s2, ...), merge pairs
    local v, e, out = {}, {}, {}
    for i = 1, m do
      v[2 * i - 1], v[2 * i] = 1, s[i]
      e[2 * i - 1], e[2 * i] = r[i], s[i]
      out[i] = r[i] * s[i]
    end
    if m == 0 then return x:clone() end
    return x:reshape(v):expand(e):reshape(out)
  end)

  -- x:repeat_interleave(repeats, [dim]): repeat each element along dim
  -- (the flattened tensor without dim). repeats: an integer, or a list or
  -- 1-D tensor with one count per element of that dim.
  method("repeat_interleave", function(x, repeats, dim)
    if dim == nil then x, dim = x:reshape(-1), 1 end
    check_dim("repeat_interleave", x, dim)
    local n = x:size(dim)
    if math.type(repeats) == "integer" then
      if repeats < 0 then fail("repeat_interleave: repeats must be >= 0, got %d", repeats) end
      local shape = x:shape()
      local d = dim < 0 and #shape + 1 + dim or dim
      local v, e, out = {}, {}, {}
      for i = 1, #shape do
        v[#v + 1], e[#e + 1] = shape[i], shape[i]
        if i == d then v[#v + 1], e[#e + 1] = 1, repeats end
        out[i] = i == d and shape[i] * repeats or shape[i]
      end
      return x:reshape(v):expand(e):reshape(out)
    end
    local counts = lg.is_tensor(repeats) and repeats:reshape(-1) or repeats
    if type(counts) ~= "table" and not lg.is_tensor(counts) then
      fail("repeat_interleave: repeats must be an integer, a list or a tensor, got %s", type(repeats))
    end
    local len = lg.is_tensor(counts) and counts:numel() or #counts
    if len ~= n then fail("repeat_interleave: %d repeats for dim %d of size %d", len, dim, n) end
    local idx = {}
    for i = 1, n do
      local c = lg.is_tensor(counts) and counts[i]:item() or counts[i]
      if math.type(c) ~= "integer" and not (type(c) == "number" and c == math.floor(c)) or c < 0 then
        fail("repeat_interleave: repeat %d is %s; counts must be integers >= 0", i, tostring(c))
      end
      for _ = 1, c do idx[#idx + 1] = i end
    end
    return x:index_select(dim, idx)
  end)

  -- ---- einsum ------------------------------------------------------------------
  -- lg.einsum("ij,jk->ik", a, b): sums of products over the letters a spec
  -- names, computed by summing out letters found in one operand only, then
  -- folding the operands pairwise into batched matmuls (permute + reshape).
  -- Without "->" the output is the letters seen once, in alphabetical order.
  -- Not supported: "..." and a letter repeated within one operand (diagonals).
  local function letters(s)
    local t = {}
    for c in s:gmatch(".") do t[#t + 1] = c end
    return t
  end
  local function index_of(list)
    local r = {}
    for i, c in ipairs(list) do r[c] = i end
    return r
  end
  -- sum out the letters of (x, ls) for which keep(c) is false
  local function sum_out(x, ls, keep)
    local dims, rest = {}, {}
    for i, c in ipairs(ls) do
      if keep(c) then rest[#rest + 1] = c else dims[#dims + 1] = i end
    end
    if #dims == 0 then return x, ls end
    if #rest == 0 then return x:sum(), rest end
    return x:sum(dims), rest
  end
  local function permute_to(x, ls, order)
    if #order <= 1 then return x end
    local pos, perm = index_of(ls), {}
    for i, c in ipairs(order) do perm[i] = pos[c] end
    return x:permute(table.unpack(perm))
  end

  function lg.einsum(spec, ...)
    if type(spec) ~= "string" then fail("einsum: spec must be a string, got %s", type(spec)) end
    local ops = {...}
    if #ops == 1 and type(ops[1]) == "table" and not lg.is_tensor(ops[1]) then ops = ops[1] end
    local lhs, rhs = spec:gsub("%s", ""):match("^([^-]*)%->(.*)$")
    if not lhs then lhs = spec:gsub("%s", "") end
    if lhs:find("%.") or (rhs and rhs:find("%.")) then fail("einsum: \"...\" is not supported (spec %q)", spec) end
    local specs = {}
    for part in (lhs .. ","):gmatch("([^,]*),") do specs[#specs + 1] = letters(part) end
    if #specs ~= #ops then fail("einsum: spec %q names %d operands, got %d", spec, #specs, #ops) end
    local size, count = {}, {}
    for k, ls in ipairs(specs) do
      local x = ops[k]
      if not lg.is_tensor(x) then fail("einsum: operand %d is a %s, not a tensor", k, type(x)) end
      if #ls ~= x:dim() then
        fail("einsum: operand %d has %d dims (%s) but spec %q gives it %d letters", k, x:dim(), lg.shape_str(x), spec, #ls)
      end
      local seen = {}
      for i, c in ipairs(ls) do
        if not c:match("%a") then fail("einsum: %q in spec %q is not a letter", c, spec) end
        if seen[c] then fail("einsum: letter %s repeats in operand %d (diagonals are not supported)", c, k) end
        seen[c] = true
        count[c] = (count[c] or 0) + 1
        if size[c] and size[c] ~= x:size(i) then
          fail("einsum: letter %s is %d in one operand and %d in operand %d", c, size[c], x:size(i), k)
        end
        size[c] = x:size(i)
      end
    end
    local out
    if rhs then
      out = letters(rhs)
      for _, c in ipairs(out) do
        if not size[c] then fail("einsum: output letter %s is not in any operand (spec %q)", c, spec) end
      end
    else
      out = {}
      for c, n in pairs(count) do if n == 1 then out[#out + 1] = c end end
      table.sort(out)
    end
    local in_out = index_of(out)
    -- letters each later operand still needs
    local function needed_after(k)
      local need = {}
      for c in pairs(in_out) do need[c] = true end
      for j = k + 1, #specs do for _, c in ipairs(specs[j]) do need[c] = true end end
      return need
    end
    local function needed_except(k)
      local need = {}
      for c in pairs(in_out) do need[c] = true end
      for j = 1, #specs do
        if j ~= k then for _, c in ipairs(specs[j]) do need[c] = true end end
      end
      return need
    end
    local x, lx = sum_out(ops[1], specs[1], function(c) return needed_except(1)[c] end)
    for k = 2, #ops do
      local need = needed_after(k)
      local y, ly = sum_out(ops[k], specs[k], function(c) return needed_except(k)[c] end)
      local iy, ix = index_of(ly), index_of(lx)
      local batch, aonly, contract, bonly = {}, {}, {}, {}
      for _, c in ipairs(lx) do
        if iy[c] then
          if need[c] then batch[#batch + 1] = c else contract[#contract + 1] = c end
        else aonly[#aonly + 1] = c end
      end
      for _, c in ipairs(ly) do if not ix[c] then bonly[#bonly + 1] = c end end
      local function prod(list)
        local p = 1
        for _, c in ipairs(list) do p = p * size[c] end
        return p
      end
      local B, M, K, N = prod(batch), prod(aonly), prod(contract), prod(bonly)
      local a = permute_to(x, lx, table.move(contract, 1, #contract, #batch + #aonly + 1,
                                             table.move(aonly, 1, #aonly, #batch + 1, table.move(batch, 1, #batch, 1, {}))))
      local b = permute_to(y, ly, table.move(bonly, 1, #bonly, #batch + #contract + 1,
                                             table.move(contract, 1, #contract, #batch + 1, table.move(batch, 1, #batch, 1, {}))))
      local r = lg.matmul(a:reshape(B, M, K), b:reshape(B, K, N))
      lx = table.move(bonly, 1, #bonly, #batch + #aonly + 1,
                      table.move(aonly, 1, #aonly, #batch + 1, table.move(batch, 1, #batch, 1, {})))
      local shape = {}
      for i, c in ipairs(lx) do shape[i] = size[c] end
      x = #shape == 0 and r:reshape({}) or r:reshape(shape)
      x, lx = sum_out(x, lx, function(c) return need[c] end)
    end
    x, lx = sum_out(x, lx, function(c) return in_out[c] ~= nil end)
    return permute_to(x, lx, out)
  end

  -- ---- layer functions (the modules are in scripts/luagan/nn/extra.lua) ----------
  local function check_ndim(op, x, lo, what)      -- raised at the op's caller, as check_dim
    local msg
    if not lg.is_tensor(x) then msg = string.format("%s: input must be a tensor, got %s", op, type(x))
    elseif x:dim() < lo then msg = string.format("%s: expected input %s, got %s", op, what, lg.shape_str(x)) end
    if msg then error(msg, 3) end
  end
  -- a (C) parameter shaped to broadcast over dim 2 of an input of ndim dims
  local function per_channel(p, ndim)
    local s = {1, p:numel()}
    for i = 3, ndim do s[i] = 1 end
    return p:reshape(s)
  end

  -- lg.group_norm(x (N,C,*), groups, [weight (C)], [bias (C)], [{eps = 1e-5}]):
  -- normalise each group of C/groups channels over it and the spatial dims.
  function lg.group_norm(x, groups, weight, bias, opts)
    local o = check_opts("group_norm", opts, {"eps"})
    check_ndim("group_norm", x, 2, "(N, C, ...)")
    local n, c = x:size(1), x:size(2)
    if math.type(groups) ~= "integer" or groups < 1 or c % groups ~= 0 then
      fail("group_norm: %s groups do not divide %d channels (input %s)", tostring(groups), c, lg.shape_str(x))
    end
    local g = x:reshape(n, groups, -1)
    local d = g - g:mean(3, {keepdim = true})
    local y = (d * ((d * d):mean(3, {keepdim = true}) + (o.eps or 1e-5)):rsqrt()):reshape(x:shape())
    if weight then y = y * per_channel(weight, x:dim()) end
    if bias then y = y + per_channel(bias, x:dim()) end
    return y
  end

  -- lg.pixel_shuffle(x (N, C*r*r, H, W), r) -> (N, C, H*r, W*r)
  function lg.pixel_shuffle(x, r)
    check_ndim("pixel_shuffle", x, 4, "(N, C*r*r, H, W)")
    local n, c, h, w = table.unpack(x:shape())
    if x:dim() ~= 4 or math.type(r) ~= "integer" or r < 1 or c % (r * r) ~= 0 then
      fail("pixel_shuffle: input %s must be (N, C*r*r, H, W) with r = %s", lg.shape_str(x), tostring(r))
    end
    local oc = c // (r * r)
    return x:reshape(n, oc, r, r, h, w):permute(1, 2, 5, 3, 6, 4):reshape(n, oc, h * r, w * r)
  end

  -- lg.conv1d(x (N,C,L), w (O,C,K), [b (O)], [{stride, padding, dilation}]):
  -- conv2d on a unit width.
  function lg.conv1d(x, w, b, opts)
    local o = check_opts("conv1d", opts, {"stride", "padding", "dilation"})
    check_ndim("conv1d", x, 3, "(N, C, L)")
    if x:dim() ~= 3 or not lg.is_tensor(w) or w:dim() ~= 3 then
      fail("conv1d: expected input (N, C, L) and weight (O, C, K), got %s and %s", lg.shape_str(x),
           lg.is_tensor(w) and lg.shape_str(w) or type(w))
    end
    local y = lg.conv2d(x:unsqueeze(4), w:unsqueeze(4), b, {stride = {o.stride or 1, 1},
      padding = {o.padding or 0, 0}, dilation = {o.dilation or 1, 1}})
    return y:squeeze(4)
  end

  -- (out x size) averaging matrix of adaptive pooling: row i averages
  -- [floor(i*size/out), ceil((i+1)*size/out)), as PyTorch's windows.
  local function pool_matrix(out, size)
    local rows = {}
    for i = 0, out - 1 do
      local s, e = (i * size) // out, -((-(i + 1) * size) // out)
      local row = {}
      for j = 0, size - 1 do row[j + 1] = (j >= s and j < e) and 1 / (e - s) or 0 end
      rows[i + 1] = row
    end
    return lg.tensor(rows)
  end

  -- lg.adaptive_avg_pool2d(x (N,C,H,W) or (C,H,W), size): size an integer or
  -- {h, w} (nil keeps that size); windows as PyTorch's, exact for any size.
  function lg.adaptive_avg_pool2d(x, size)
    check_ndim("adaptive_avg_pool2d", x, 3, "(N, C, H, W)")
    local h, w = x:size(-2), x:size(-1)
    local oh, ow
    if type(size) == "table" then oh, ow = size[1] or h, size[2] or w else oh, ow = size, size end
    if math.type(oh) ~= "integer" or math.type(ow) ~= "integer" or oh < 1 or ow < 1 then
      fail("adaptive_avg_pool2d: output size must be integers >= 1, got %s", tostring(size))
    end
    if x:dim() > 4 then fail("adaptive_avg_pool2d: expected input (N, C, H, W), got %s", lg.shape_str(x)) end
    if h % oh == 0 and w % ow == 0 and x:dim() == 4 then
      return lg.avg_pool2d(x, {h // oh, w // ow})
    end
    return lg.matmul(lg.matmul(pool_matrix(oh, h), x), pool_matrix(ow, w):t())
  end

  -- lg.prelu(x, weight): max(0, x) + weight * min(0, x); weight has 1 entry
  -- or one per channel (dim 2 of x).
  function lg.prelu(x, weight)
    check_ndim("prelu", x, 1, "a tensor")
    local c = x:dim() >= 2 and x:size(2) or 1
    if not lg.is_tensor(weight) or (weight:numel() ~= 1 and weight:numel() ~= c) then
      fail("prelu: weight must have 1 or %d entries (input %s)", c, lg.shape_str(x))
    end
    local wb = weight:numel() == 1 and weight:reshape({}) or per_channel(weight, x:dim())
    return x:relu() - wb * (-x):relu()
  end
end

return M
