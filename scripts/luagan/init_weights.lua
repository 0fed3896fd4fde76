-- luagan.init_weights (also lg.nn.init): weight initialisers.
-- Each fills a tensor in place (under no_grad, so parameters may be passed)
-- and returns it. Fans follow PyTorch: fan_in = size(2) * receptive field,
-- fan_out = size(1) * receptive field (for ConvTranspose2d weights, stored
-- (in, out, k, k), that makes "fan_in" the output channels, as in PyTorch).
local lg = require "luagan"
local check_opts = require("luagan.util").check_opts

local init = {}

local function nograd(f, ...)
  local args = table.pack(...)
  return lg.no_grad(function() return f(table.unpack(args, 1, args.n)) end)
end

function init.fans(t)
  local s = t:shape()
  if #s < 2 then
    error("init: fan in/out need a tensor with at least 2 dims, got " ..
          (#s == 0 and "a scalar" or table.concat(s, "x")), 3)
  end
  local rf = 1
  for i = 3, #s do rf = rf * s[i] end
  return s[2] * rf, s[1] * rf
end

-- Recommended gain for a nonlinearity (PyTorch's calculate_gain).
function init.gain(nonlinearity, param)
  nonlinearity = nonlinearity or "linear"
  if nonlinearity == "linear" or nonlinearity == "conv2d" or nonlinearity == "sigmoid"
     or nonlinearity == "conv_transpose2d" then
    return 1
  elseif nonlinearity == "tanh" then
    return 5 / 3
  elseif nonlinearity == "relu" then
    return math.sqrt(2)
  elseif nonlinearity == "leaky_relu" then
    local slope = param or 0.01
    return math.sqrt(2 / (1 + slope * slope))
  elseif nonlinearity == "selu" then
    return 3 / 4
  end
  error("init.gain: unknown nonlinearity '" .. tostring(nonlinearity) .. "'", 2)
end

function init.normal(t, mean, std)
  return nograd(function() t:normal_(mean or 0, std or 1) return t end)
end

function init.uniform(t, a, b)
  return nograd(function() t:uniform_(a or 0, b or 1) return t end)
end

function init.constant(t, v)
  return nograd(function() t:fill_(v) return t end)
end

function init.zeros(t) return init.constant(t, 0) end
function init.ones(t) return init.constant(t, 1) end

function init.xavier_uniform(t, opts)
  check_opts("nn.init.xavier_uniform", opts, {"gain"})
  local fi, fo = init.fans(t)
  local gain = opts and opts.gain or 1
  local a = gain * math.sqrt(6 / (fi + fo))
  return init.uniform(t, -a, a)
end

function init.xavier_normal(t, opts)
  check_opts("nn.init.xavier_normal", opts, {"gain"})
  local fi, fo = init.fans(t)
  local gain = opts and opts.gain or 1
  return init.normal(t, 0, gain * math.sqrt(2 / (fi + fo)))
end

local function kaiming_std(t, opts, who)
  opts = check_opts(who, opts, {"a", "mode", "nonlinearity"}, 4)
  local fi, fo = init.fans(t)
  local mode = opts.mode or "fan_in"
  local fan
  if mode == "fan_in" then fan = fi
  elseif mode == "fan_out" then fan = fo
  else error("init.kaiming: mode must be 'fan_in' or 'fan_out', got '" .. tostring(mode) .. "'", 3) end
  local g = init.gain(opts.nonlinearity or "leaky_relu", opts.a or 0)
  return g / math.sqrt(fan)
end

-- opts: {a = 0, mode = "fan_in", nonlinearity = "leaky_relu"} as PyTorch.
function init.kaiming_uniform(t, opts)
  local b = math.sqrt(3) * kaiming_std(t, opts, "nn.init.kaiming_uniform")
  return init.uniform(t, -b, b)
end

function init.kaiming_normal(t, opts)
  local std = kaiming_std(t, opts, "nn.init.kaiming_normal")
  return init.normal(t, 0, std)
end

-- Orthogonal (Saxe et al.): the weight viewed as (size(1), rest) gets
-- orthonormal rows or columns (whichever are fewer), from the QR of a
-- Gaussian matrix. QR by classical Gram-Schmidt done twice ("CGS2"), which
-- is as accurate as Householder here; the R diagonal is positive, so the
-- result is Haar-distributed.
function init.orthogonal(t, opts)
  check_opts("nn.init.orthogonal", opts, {"gain"})
  local gain = opts and opts.gain or 1
  local s = t:shape()
  if #s < 2 then error("init.orthogonal: need a tensor with at least 2 dims", 2) end
  local rows = s[1]
  local cols = t:numel() // rows
  return nograd(function()
    local n, k = rows, cols
    local transpose = rows < cols
    if transpose then n, k = cols, rows end
    local a = lg.randn(n, k)
    local q = lg.zeros(n, k)
    for j = 1, k do
      local v = a:narrow(2, j, 1):clone()            -- (n,1)
      if j > 1 then
        local qj = q:narrow(2, 1, j - 1)              -- (n,j-1)
        for _ = 1, 2 do
          v = v - lg.matmul(qj, lg.matmul(qj:t(), v))
        end
      end
      v = v / v:norm():item()
      q:narrow(2, j, 1):copy_(v)
    end
    if transpose then q = q:t() end
    t:copy_(q:reshape(table.unpack(s)) * gain)
    return t
  end)
end

-- DCGAN init (Radford et al.): conv and linear weights N(0, 0.02), their
-- biases 0; batch-norm gamma N(1, 0.02), beta 0. opts.linear = false leaves
-- Linear layers at their default init.
function init.dcgan(module, opts)
  check_opts("nn.init.dcgan", opts, {"linear"})
  local linear = not (opts and opts.linear == false)
  module:apply(function(m)
    local n = m.__name
    if n == "Conv2d" or n == "ConvTranspose2d" or (linear and n == "Linear") then
      init.normal(m.weight, 0, 0.02)
      if m.bias then init.zeros(m.bias) end
    elseif (n == "BatchNorm1d" or n == "BatchNorm2d") and m.weight then
      init.normal(m.weight, 1, 0.02)
      init.zeros(m.bias)
    end
  end)
  return module
end

-- underscore aliases for PyTorch habits
for _, k in ipairs{"normal", "uniform", "constant", "zeros", "ones", "xavier_uniform",
                   "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal"} do
  init[k .. "_"] = init[k]
end

return init
