-- SyncBatchNorm(n, {momentum = 0.1, eps = 1e-5, affine = true}): batch norm
-- whose training-mode statistics are those of the global batch, over every
-- rank of lg.dist, for inputs (N,C), (N,C,L) or (N,C,H,W). On one process it
-- computes what BatchNorm does. Eval mode uses the running statistics.
--
-- It is written with differentiable ops and lg.dist.allreduce_sum, whose
-- gradient is again an allreduce: backward and double backward (a gradient
-- penalty through the critic) see the cross-rank terms, so N ranks of b
-- samples compute what one process computes on N*b. Every rank must call it
-- in the same order with the same number of samples per rank.
--
--   nn.convert_sync_batchnorm(net)   -- every BatchNorm1d/2d of net, in place
local lg = require "luagan.core"
local dist = require "luagan.dist"

local M = {}

-- BatchNorm2d's constructor, options, parameters, buffers and printing; only
-- the training-mode statistics differ
local SyncBatchNorm = require("luagan.nn.norm").BatchNorm2d:extend("SyncBatchNorm")

-- x: (N,C,...) -> the sum over every dim but the channels, (C)
local function channel_sum(x)
  local s = x:sum(1)                       -- (C,...)
  while s:dim() > 1 do s = s:sum(2) end
  return s
end

-- (C) -> broadcastable against x: (1,C,1,...)
local function per_channel(v, nd)
  local shape = {1, v:size(1)}
  for _ = 3, nd do shape[#shape + 1] = 1 end
  return v:view(shape)
end

function SyncBatchNorm:forward(x)
  local nd = x:dim()
  if nd < 2 or nd > 4 then
    error(string.format("%s: expected (N,C), (N,C,L) or (N,C,H,W) input, got %d dims",
                        self:path(), nd), 0)
  end
  if x:size(2) ~= self.num_features then
    error(string.format("%s: expected input with %d channels, got %d", self:path(),
                        self.num_features, x:size(2)), 0)
  end
  if not (self.training or not self.track_running_stats) then
    return lg.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         {training = false, eps = self.eps})
  end
  -- two passes (mean, then the squared deviations), as stable as batch_norm's
  local count = dist.allreduce_number(x:numel() // x:size(2), "sum")
  local mean = dist.allreduce_sum(channel_sum(x)) / count               -- (C)
  local xc = x - per_channel(mean, nd)
  local var = dist.allreduce_sum(channel_sum(xc * xc)) / count          -- (C), biased
  local y = xc * per_channel((var + self.eps):rsqrt(), nd)
  if self.affine then y = y * per_channel(self.weight, nd) + per_channel(self.bias, nd) end
  if self.training and self.track_running_stats then
    local m = self.momentum
    lg.no_grad(function()
      local unbiased = var:detach() * (count / math.max(count - 1, 1))
      self.running_mean:mul_(1 - m):add_(mean:detach() * m)
      self.running_var:mul_(1 - m):add_(unbiased * m)
    end)
  end
  return y
end

M.SyncBatchNorm = SyncBatchNorm

-- convert_sync_batchnorm(m) -> m, with every BatchNorm1d/BatchNorm2d inside
-- replaced by a SyncBatchNorm holding the same parameters, running
-- statistics and settings (m itself is returned if it is one).
function M.convert_sync_batchnorm(m)
  local name = m.__name
  if name == "BatchNorm1d" or name == "BatchNorm2d" then
    local s = SyncBatchNorm(m.num_features, {eps = m.eps, momentum = m.momentum,
                                             affine = m.affine,
                                             track_running_stats = m.track_running_stats})
    s:load_state_dict(m:state_dict())
    s:train(m.training)
    return s
  end
  for _, e in ipairs(rawget(m, "_order") or {}) do
    if e.kind == "module" then
      local child = rawget(m, e.key)
      local new = M.convert_sync_batchnorm(child)
      if new ~= child then m:add_module(e.name, new, e.key) end
    end
  end
  return m
end

return M
