-- luagan.nn.layers: Linear, convolutions, pooling, shape and activation modules.
local lg = require "luagan"
local base = require "luagan.nn.module"
local init = require "luagan.init_weights"

local util = require "luagan.util"

local Module, shape_str = base.Module, base.shape_str
local M = {}

-- A boolean option of module self (called from init: errors at the user's line).
local function flag(self, o, k, default)
  local r = util.check_bool(self:_who(), k, o[k], default, 5)
  return r
end

-- Largest stride, padding, dilation or kernel size accepted (as the C ops).
local MAX_GEOM = 2^20

-- A geometry value of module self: an integer >= lo or a pair {h, w} of
-- them (nil gives def). Called from init: errors point at the user's line.
local function geom(self, name, v, lo, def)
  if v == nil then return def end
  local who, spec = self:_who(), {int = true, lo = lo, hi = MAX_GEOM, level = 5}
  if type(v) == "table" and not util.is_tensor(v) then
    if #v ~= 2 then
      error(string.format("%s: %s must be an integer or a pair {h, w}, got a table of %d",
                          who, name, #v), 4)
    end
    util.check_num(who, name .. "[1]", v[1], spec)
    util.check_num(who, name .. "[2]", v[2], spec)
    return v
  end
  util.check_num(who, name, v, spec)
  return v
end

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

-- a number or a {h, w} pair -> "4" or "3x5" for printing
local function pair_str(v)
  if type(v) == "table" then
    if v[1] == v[2] then return tostring(v[1]) end
    return table.concat(v, "x")
  end
  return tostring(v)
end

local function pair(v)
  if type(v) == "table" then return v[1], v[2] end
  return v, v
end

local function check_dim(x, dims, what)
  local n = x:dim()
  for _, d in ipairs(dims) do if n == d then return end end
  fail("expected %s input, got %d dims", what, n)
end

-- PyTorch's default init for weights with a fan-in: kaiming_uniform(a=sqrt 5)
-- (= U(-1/sqrt(fan_in), 1/sqrt(fan_in))), and the bias U(same bound).
local function default_init(w, b)
  init.kaiming_uniform(w, {a = math.sqrt(5)})
  if b then
    local fan_in = init.fans(w)
    local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
    init.uniform(b, -bound, bound)
  end
end

---------------------------------------------------------------------------
-- Linear(in, out, {bias = true}): y = x W^T + b, x (..., in) -> (..., out)

local Linear = Module:extend("Linear")
function Linear:init(in_features, out_features, o)
  in_features = self:check_size("in_features", in_features)
  out_features = self:check_size("out_features", out_features)
  o = self:check_opts(o, {"bias"})
  self.in_features, self.out_features = in_features, out_features
  self:add_param("weight", lg.zeros(out_features, in_features))
  if flag(self, o, "bias", true) then self:add_param("bias", lg.zeros(out_features)) end
  self:reset_parameters()
end
function Linear:reset_parameters() default_init(self.weight, self.bias) end
function Linear:forward(x)
  local s = x:shape()
  if #s == 0 or s[#s] ~= self.in_features then
    fail("expected input with %d features in the last dim, got %s", self.in_features,
         #s == 0 and "a scalar" or tostring(s[#s]))
  end
  local y = lg.matmul(x, self.weight:t())
  if self.bias then y = y + self.bias end
  return y
end
function Linear:extra_repr()
  return string.format("%d -> %d%s", self.in_features, self.out_features,
                       self.bias and "" or ", bias=false")
end
function Linear:short() return self.in_features .. "->" .. self.out_features end
M.Linear = Linear

---------------------------------------------------------------------------
-- Conv2d(in, out, k, {stride = 1, padding = 0, dilation = 1, bias = true})

local Conv2d = Module:extend("Conv2d")
function Conv2d:init(cin, cout, k, o)
  cin, cout = self:check_size("in_channels", cin), self:check_size("out_channels", cout)
  local kh, kw = pair(geom(self, "kernel_size", k, 1))
  o = self:check_opts(o, {"stride", "padding", "dilation", "bias"})
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, k
  self.stride = geom(self, "stride", o.stride, 1, 1)
  self.padding = geom(self, "padding", o.padding, 0, 0)
  self.dilation = geom(self, "dilation", o.dilation, 1, 1)
  self:add_param("weight", lg.zeros(cout, cin, kh, kw))
  if flag(self, o, "bias", true) then self:add_param("bias", lg.zeros(cout)) end
  self:reset_parameters()
end
Conv2d.reset_parameters = Linear.reset_parameters
function Conv2d:forward(x)
  check_dim(x, {4}, "(N,C,H,W)")
  local c = x:size(2)
  if c ~= self.in_channels then fail("expected input with %d channels, got %d", self.in_channels, c) end
  return lg.conv2d(x, self.weight, self.bias,
                   {stride = self.stride, padding = self.padding, dilation = self.dilation})
end
local function conv_repr(self, extra)
  local s = string.format("%d, %d, %s", self.in_channels, self.out_channels, pair_str(self.kernel_size))
  if self.stride ~= 1 then s = s .. ", stride=" .. pair_str(self.stride) end
  if self.padding ~= 0 then s = s .. ", padding=" .. pair_str(self.padding) end
  if extra then s = s .. extra end
  if not self.bias then s = s .. ", bias=false" end
  return s
end
function Conv2d:extra_repr()
  return conv_repr(self, self.dilation ~= 1 and ", dilation=" .. pair_str(self.dilation) or nil)
end
function Conv2d:short() return self.in_channels .. "->" .. self.out_channels end
M.Conv2d = Conv2d

-- ConvTranspose2d(in, out, k, {stride = 1, padding = 0, output_padding = 0, bias = true})
-- weight (in, out, kh, kw) as PyTorch.
local ConvTranspose2d = Module:extend("ConvTranspose2d")
function ConvTranspose2d:init(cin, cout, k, o)
  cin, cout = self:check_size("in_channels", cin), self:check_size("out_channels", cout)
  local kh, kw = pair(geom(self, "kernel_size", k, 1))
  o = self:check_opts(o, {"stride", "padding", "output_padding", "bias"})
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, k
  self.stride = geom(self, "stride", o.stride, 1, 1)
  self.padding = geom(self, "padding", o.padding, 0, 0)
  self.output_padding = geom(self, "output_padding", o.output_padding, 0, 0)
  self:add_param("weight", lg.zeros(cin, cout, kh, kw))
  if flag(self, o, "bias", true) then self:add_param("bias", lg.zeros(cout)) end
  self:reset_parameters()
end
ConvTranspose2d.reset_parameters = Linear.reset_parameters
function ConvTranspose2d:forward(x)
  check_dim(x, {4}, "(N,C,H,W)")
  local c = x:size(2)
  if c ~= self.in_channels then fail("expected input with %d channels, got %d", self.in_channels, c) end
  return lg.conv_transpose2d(x, self.weight, self.bias,
                             {stride = self.stride, padding = self.padding,
                              output_padding = self.output_padding})
end
function ConvTranspose2d:extra_repr()
  return conv_repr(self, self.output_padding ~= 0 and ", output_padding=" .. pair_str(self.output_padding) or nil)
end
ConvTranspose2d.short = Conv2d.short
M.ConvTranspose2d = ConvTranspose2d

---------------------------------------------------------------------------
-- Embedding(num, dim): indices (any shape, 1-based) -> (..., dim); weight N(0,1)

local Embedding = Module:extend("Embedding")
function Embedding:init(num, dim, o)
  self:check_opts(o, {})        -- no options (PyTorch's padding_idx, max_norm: not supported)
  num = self:check_size("num_embeddings", num)
  dim = self:check_size("embedding_dim", dim)
  self.num_embeddings, self.embedding_dim = num, dim
  self:add_param("weight", init.normal(lg.zeros(num, dim), 0, 1))
end
function Embedding:forward(idx) return lg.embedding(idx, self.weight) end
function Embedding:extra_repr() return self.num_embeddings .. ", " .. self.embedding_dim end
M.Embedding = Embedding

---------------------------------------------------------------------------
-- Dropout(p = 0.5): active in training mode only

local Dropout = Module:extend("Dropout")
function Dropout:init(p)
  p = p or 0.5
  util.check_num(self:_who(), "p", p, {lo = 0, hi = 1, level = 4})
  self.p = p
end
function Dropout:forward(x) return lg.dropout(x, self.p, self.training) end
function Dropout:extra_repr() return "p=" .. self.p end
M.Dropout = Dropout

---------------------------------------------------------------------------
-- pooling, resampling, padding

local function pool_class(name, fn)
  local C = Module:extend(name)
  function C:init(k, o)
    o = self:check_opts(o, {"stride", "padding"})
    self.kernel_size = geom(self, "kernel_size", k, 1)
    self.stride = geom(self, "stride", o.stride, 1, k)
    self.padding = geom(self, "padding", o.padding, 0, 0)
  end
  function C:forward(x)
    check_dim(x, {4}, "(N,C,H,W)")
    return lg[fn](x, self.kernel_size, {stride = self.stride, padding = self.padding})
  end
  function C:extra_repr()
    local s = pair_str(self.kernel_size)
    if self.stride ~= self.kernel_size then s = s .. ", stride=" .. pair_str(self.stride) end
    if self.padding ~= 0 then s = s .. ", padding=" .. pair_str(self.padding) end
    return s
  end
  return C
end
M.MaxPool2d = pool_class("MaxPool2d", "max_pool2d")
M.AvgPool2d = pool_class("AvgPool2d", "avg_pool2d")

-- Upsample{scale = 2, mode = "nearest"|"bilinear"} or Upsample(2, {mode = ...})
local Upsample = Module:extend("Upsample")
function Upsample:init(a, o)
  if type(a) == "table" then o = a; a = a.scale or a.scale_factor end
  o = self:check_opts(o, {"scale", "scale_factor", "mode"})
  self.scale = geom(self, "scale", a, 1, 2)
  self.mode = o.mode or "nearest"
  if self.mode ~= "nearest" and self.mode ~= "bilinear" then
    error(string.format("%s: mode must be 'nearest' or 'bilinear', got %s", self:_who(),
                        tostring(self.mode)), 3)
  end
end
function Upsample:forward(x) return lg.upsample(x, {scale = self.scale, mode = self.mode}) end
function Upsample:extra_repr() return "scale=" .. pair_str(self.scale) .. ", mode=" .. self.mode end
M.Upsample = Upsample

-- Pad({left, right, top, bottom}, {mode = "constant"|"reflect", value = 0})
local Pad = Module:extend("Pad")
function Pad:init(p, o)
  o = self:check_opts(o, {"mode", "value"})
  if type(p) == "number" then p = {p, p, p, p} end
  if type(p) ~= "table" or (#p ~= 2 and #p ~= 4) then
    error(self:_who() .. ": expected a size or {left, right[, top, bottom]}", 3)
  end
  for i = 1, #p do geom(self, "pad[" .. i .. "]", p[i], 0) end
  self.pad = p
  self.mode = o.mode or "constant"
  self.value = o.value
end
function Pad:forward(x) return lg.pad(x, self.pad, {mode = self.mode, value = self.value}) end
function Pad:extra_repr() return "{" .. table.concat(self.pad, ", ") .. "}, mode=" .. self.mode end
M.Pad = Pad

-- Flatten({start_dim = 2, end_dim = -1}): (N, C, H, W) -> (N, C*H*W)
local Flatten = Module:extend("Flatten")
function Flatten:init(o)
  o = self:check_opts(o, {"start_dim", "end_dim"})
  local who = self:_who()
  self.start_dim = util.check_num(who, "start_dim", o.start_dim, {int = true, default = 2, level = 4})
  self.end_dim = util.check_num(who, "end_dim", o.end_dim, {int = true, default = -1, level = 4})
end
function Flatten:forward(x)
  local s = x:shape()
  local a, b = self.start_dim, self.end_dim
  if a < 0 then a = #s + 1 + a end
  if b < 0 then b = #s + 1 + b end
  if a < 1 or b > #s or a > b then
    fail("cannot flatten dims %d..%d of a %d-dim input", self.start_dim, self.end_dim, #s)
  end
  local out, n = {}, 1
  for i = 1, a - 1 do out[#out + 1] = s[i] end
  for i = a, b do n = n * s[i] end
  out[#out + 1] = n
  for i = b + 1, #s do out[#out + 1] = s[i] end
  return x:reshape(table.unpack(out))
end
M.Flatten = Flatten

-- Reshape(128, 7, 7): (N, ...) -> (N, 128, 7, 7); the batch dim is kept (Torch7).
local Reshape = Module:extend("Reshape")
function Reshape:init(...)
  local dims = {...}
  if type(dims[1]) == "table" then dims = dims[1] end
  for i, d in ipairs(dims) do
    if d ~= -1 then util.check_num(self:_who(), "size " .. i, d, {int = true, lo = 0, level = 4}) end
  end
  self.dims = dims
end
function Reshape:forward(x)
  local n = x:size(1)
  local want = 1
  for _, d in ipairs(self.dims) do want = want * d end
  if want > 0 and x:numel() ~= n * want then
    fail("cannot reshape %s to %dx%s", shape_str(x), n, table.concat(self.dims, "x"))
  end
  return x:reshape(n, table.unpack(self.dims))
end
function Reshape:extra_repr() return table.concat(self.dims, ", ") end
M.Reshape = Reshape

---------------------------------------------------------------------------
-- activations

local function act(name, f, repr)
  local C = Module:extend(name)
  C.forward = f
  if repr then C.extra_repr = repr end
  M[name] = C
  return C
end

act("Identity", function(_, x) return x end)
act("ReLU", function(_, x) return x:relu() end)
act("Tanh", function(_, x) return x:tanh() end)
act("Sigmoid", function(_, x) return x:sigmoid() end)
act("Softplus", function(_, x) return x:softplus() end)

local LeakyReLU = act("LeakyReLU", function(self, x) return x:leaky_relu(self.slope) end,
                      function(self) return tostring(self.slope) end)
function LeakyReLU:init(slope)
  self.slope = util.check_num(self:_who(), "negative slope", slope, {default = 0.01, level = 4})
end

local ELU = act("ELU", function(self, x) return x:elu(self.alpha) end,
                function(self) return "alpha=" .. self.alpha end)
function ELU:init(alpha)
  self.alpha = util.check_num(self:_who(), "alpha", alpha, {default = 1, level = 4})
end

local Softmax = act("Softmax", function(self, x) return lg.softmax(x, self.dim) end,
                    function(self) return "dim=" .. self.dim end)
function Softmax:init(dim)
  self.dim = util.check_num(self:_who(), "dim", dim, {int = true, default = -1, level = 4})
end

local LogSoftmax = act("LogSoftmax", function(self, x) return lg.log_softmax(x, self.dim) end,
                       function(self) return "dim=" .. self.dim end)
function LogSoftmax:init(dim)
  self.dim = util.check_num(self:_who(), "dim", dim, {int = true, default = -1, level = 4})
end

-- Lambda(fn, "name"): wrap a function of the input as a module.
local Lambda = Module:extend("Lambda")
function Lambda:init(fn, label)
  local callable = type(fn) == "function" or (getmetatable(fn) or {}).__call ~= nil
  if not callable then error("nn.Lambda(fn, label): fn must be a function, got " .. type(fn), 3) end
  rawset(self, "fn", fn)
  self.label = label
end
function Lambda:forward(...) return self.fn(...) end
function Lambda:extra_repr() return self.label or "" end
M.Lambda = Lambda

return M
