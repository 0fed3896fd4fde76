-- luagan.optim (lg.optim): optimizers, learning-rate schedules, clipping, EMA.
--
--   local opt = optim.Adam(G:parameters(), {lr = 2e-4, betas = {0.5, 0.999}})
--   opt:zero_grad(); loss:backward(); opt:step()
--
-- Parameter groups: optim.Adam({{params = a, lr = 1e-3}, {params = b}}, {lr = 2e-4})
-- (a group's own options override the constructor's). The update of each
-- parameter runs in C (runtime/lg_optim.c); Lua only walks the list.
local lg = require "luagan"
local util = require "luagan.util"

local check_opts, check_num, num_problem = util.check_opts, util.check_num, util.num_problem

local optim = {}

local core_cache
local function core()
  if not core_cache then core_cache = package.loaded["luagan.core"] or require "luagan.core" end
  return core_cache
end

local is_tensor, shape_str = util.is_tensor, util.shape_str

local function same_shape(a, b)
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  return true
end

-- A module or a list of tensors -> list of tensors.
local function param_list(p, who)
  if type(p) == "table" and p.parameters and getmetatable(p) then p = p:parameters() end
  if type(p) ~= "table" then
    error(who .. ": expected a list of parameters (net:parameters()), got " .. util.what(p), 3)
  end
  for i, t in ipairs(p) do
    if not is_tensor(t) then
      error(string.format("%s: parameter %d is %s", who, i, util.not_tensor(t)), 3)
    end
  end
  return p
end

---------------------------------------------------------------------------
-- Optimizer base

local Optimizer = {}
Optimizer.__index = Optimizer

-- name: the class name; defaults: option -> default (lr absent when it is
-- required); check(g): an extra cross-option check returning a message or
-- nil; state: the per-parameter state tensors the update keeps, together:
-- those it needs all of once it has one (both validated by load_state_dict).
-- Every option is range-checked by NUMERIC/BOOL below.
local function class(name, defaults, check, state, together)
  local cls = {}
  cls.__index = cls
  cls.__name = name
  cls.defaults = defaults
  cls.check = check
  cls.state_fields, cls.state_names, cls.state_together = {}, {"step"}, together
  for _, f in ipairs(state or {}) do
    cls.state_fields[f] = true
    cls.state_names[#cls.state_names + 1] = f
  end
  cls.options = {"lr"}
  for k in pairs(defaults) do if k ~= "lr" then cls.options[#cls.options + 1] = k end end
  table.sort(cls.options, function(a, b)     -- lr first, then by name
    if a == "lr" or b == "lr" then return a == "lr" and b ~= "lr" end
    return a < b
  end)
  setmetatable(cls, {__index = Optimizer, __call = function(c, params, opts) return c.new(c, params, opts) end})
  return cls
end

-- The range of every numeric hyperparameter (util.check_num specs); betas
-- entries are each in [0, 1).
-- A list, so the first bad option reported is always the same one.
local NUMERIC = {
  {"lr", {lo = 0}}, {"eps", {lo = 0, open = true}}, {"weight_decay", {lo = 0}},
  {"momentum", {lo = 0}}, {"dampening", {lo = 0, hi = 1}}, {"alpha", {lo = 0, hi = 1}},
  {"initial_lr", {lo = 0}},
}
local BOOL = {nesterov = true}

-- A group's options checked: a message naming the first bad one, or nil.
local function check_group(cls, g)
  for _, e in ipairs(NUMERIC) do
    local k = e[1]
    local msg = g[k] ~= nil and num_problem(k, g[k], e[2])
    if msg then return msg end
  end
  for k in pairs(BOOL) do
    if g[k] ~= nil and type(g[k]) ~= "boolean" then
      return string.format("%s must be a boolean, got %s", k, type(g[k]))
    end
  end
  if g.betas ~= nil then
    if type(g.betas) ~= "table" or #g.betas ~= 2 then return "betas must be {beta1, beta2}" end
    for j = 1, 2 do
      local msg = num_problem("betas[" .. j .. "]", g.betas[j], {lo = 0, hi = 1, open_hi = true})
      if msg then return msg end
    end
  end
  if cls.check then return cls.check(g) end
end

-- A group's options: defaults < constructor options < the group's own.
-- Table values (betas) are copied so each group owns its own.
local function merge(defaults, opts, extra)
  local g = {}
  for _, src in ipairs{defaults, opts or {}, extra or {}} do
    for k, v in pairs(src) do
      if k ~= "params" then
        if type(v) == "table" then v = table.move(v, 1, #v, 1, {}) end
        g[k] = v
      end
    end
  end
  return g
end

-- The option names of an optimizer class: lr and its defaults' keys (a
-- class made without class() has no list of its own).
local function options_of(cls)
  if cls.options then return cls.options end
  local out = {"lr"}
  for k in pairs(cls.defaults or {}) do if k ~= "lr" then out[#out + 1] = k end end
  return out
end

-- Every tensor of a group must be a leaf (a tensor computed by an op is
-- never updated in place by a step: the optimizer would change nothing).
local function check_leaves(who, params, gi)
  for i, p in ipairs(params) do
    if p.grad_fn ~= nil then
      error(string.format("%s: parameter %d%s is not a leaf tensor (it was computed by %s); " ..
                          "optimize the tensor it came from, or x:detach():requires_grad_()",
                          who, i, gi and (" of group " .. gi) or "", tostring(p.grad_fn)), 3)
    end
  end
end

function Optimizer.new(cls, params, opts)
  local who = "optim." .. cls.__name
  if opts ~= nil and type(opts) ~= "table" then
    error(who .. "(params, opts): options go in a table, e.g. {lr = 1e-3}", 2)
  end
  local allowed = options_of(cls)
  check_opts(who, opts, allowed, 3)
  local self = setmetatable({param_groups = {}, state = {}}, cls)
  local groups
  if type(params) == "table" and not getmetatable(params) and type(params[1]) == "table"
     and params[1].params ~= nil then
    groups = params
  else
    groups = {{params = params}}
  end
  local seen, total = {}, 0
  local group_keys = table.move(allowed, 1, #allowed, 2, {"params"})
  for gi, spec in ipairs(groups) do
    if params == groups then
      check_opts(string.format("%s: group %d", who, gi), spec, group_keys, 3)
    end
    local g = merge(cls.defaults, opts, spec)
    g.params = param_list(spec.params, who)
    check_leaves(who, g.params, #groups > 1 and gi or nil)
    for _, p in ipairs(g.params) do
      if seen[p] then error(who .. ": a parameter appears in more than one group", 2) end
      seen[p] = true
    end
    total = total + #g.params
    if g.lr == nil then error(who .. ": lr is required", 2) end
    local msg = check_group(cls, g)
    if msg then
      error(#groups > 1 and string.format("%s: group %d: %s", who, gi, msg) or (who .. ": " .. msg), 2)
    end
    g.initial_lr = g.initial_lr or g.lr
    self.param_groups[gi] = g
  end
  if total == 0 then
    error(who .. ": the parameter list is empty (did the module build any layers?)", 2)
  end
  return self
end

-- All parameters in group order (the numbering of state_dict).
function Optimizer:params()
  local out = {}
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do out[#out + 1] = p end
  end
  return out
end

function Optimizer:zero_grad()
  for _, p in ipairs(self:params()) do p.grad = nil end
  -- data-parallel runs: the allreduce of the next gradients may start during
  -- their backward pass (dist.lua, "overlap")
  local dist = package.loaded["luagan.dist"]
  if dist and dist.sync_on_step() then dist.grads_zeroed(self) end
end

-- The gradient as the C update wants it: detached and contiguous.
local function grad_of(p)
  local g = p.grad
  if g == nil then return nil end
  g = g:detach()
  if not g:is_contiguous() then g = g:contiguous() end
  return g
end

function Optimizer:step()
  -- data-parallel runs (lg.dist started under mpirun) average the gradients
  -- over the ranks here, so every loop that steps an optimizer is synchronised
  local dist = package.loaded["luagan.dist"]
  if dist and dist.sync_on_step() then dist.allreduce_grads(self) end
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do
      local d = grad_of(p)
      if d then
        local st = self.state[p]
        if not st then st = {step = 0}; self.state[p] = st end
        st.step = st.step + 1
        self:update(p, d, st, g)
      end
    end
  end
  -- a step ended: its live peak lets the allocator keep the blocks the next
  -- step will take again (lg_tensor.c, "caching allocator")
  core().mem_step_mark()
end

function Optimizer:add_param_group(spec)
  local who = "optim." .. self.__name .. ":add_param_group"
  if type(spec) ~= "table" or spec.params == nil then
    error(who .. ": expected {params = list, <options>}", 2)
  end
  local allowed = options_of(self)
  check_opts(who, spec, table.move(allowed, 1, #allowed, 2, {"params"}), 3)
  local g = merge(self.defaults, spec)
  g.params = param_list(spec.params, who)
  check_leaves(who, g.params)
  for _, p in ipairs(g.params) do
    if self.state[p] ~= nil then error(who .. ": a parameter is already optimized", 2) end
    for _, og in ipairs(self.param_groups) do
      for _, q in ipairs(og.params) do
        if q == p then error(who .. ": a parameter appears in more than one group", 2) end
      end
    end
  end
  if g.lr == nil then g.lr = self.param_groups[1] and self.param_groups[1].lr end
  local msg = check_group(self, g)
  if msg then error(who .. ": " .. msg, 2) end
  g.initial_lr = g.initial_lr or g.lr
  self.param_groups[#self.param_groups + 1] = g
end

-- The state as a flat table a checkpoint can store:
--   "state.<i>.<name>" -> tensor (i numbers parameters across groups),
--   "state.<i>.step"   -> number,
--   "group.<g>.<opt>"  -> number (lr, momentum, ...; betas as betas.1, betas.2),
--   "n_params"         -> number.
-- Tensors are the optimizer's own (not copies). Numbers may come back as
-- strings (checkpoint metadata); load_state_dict accepts both.
function Optimizer:state_dict()
  local sd = {}
  local params = self:params()
  sd.n_params = #params
  for i, p in ipairs(params) do
    local st = self.state[p]
    if st then
      for k, v in pairs(st) do
        if is_tensor(v) then sd["state." .. i .. "." .. k] = v
        elseif type(v) == "number" then sd["state." .. i .. "." .. k] = v end
      end
    end
  end
  for gi, g in ipairs(self.param_groups) do
    for k, v in pairs(g) do
      if type(v) == "number" then
        sd["group." .. gi .. "." .. k] = v
      elseif type(v) == "boolean" then
        sd["group." .. gi .. "." .. k] = v and 1 or 0
      elseif type(v) == "table" and k ~= "params" then
        for j, x in ipairs(v) do sd["group." .. gi .. "." .. k .. "." .. j] = x end
      end
    end
  end
  return sd
end

-- A number stored in a state_dict (checkpoint metadata may hold it as a
-- string); errors name who and the key.
local function num(v, name, who)
  local n = tonumber(v)
  if n == nil then
    error(string.format("%s: %s is not a number (got %s)", who or "load_state_dict", name,
                        type(v) == "string" and string.format("%q", v) or util.what(v)), 3)
  end
  return n
end

-- A group option named by a state_dict key ("lr", "betas.2"): true when
-- the optimizer has it.
local function known_group_key(self, k)
  local base, j = k:match("^(.-)%.(%d+)$")
  if base then return base == "betas" and self.defaults.betas ~= nil and (j == "1" or j == "2") end
  if k == "initial_lr" then return true end
  for _, o in ipairs(options_of(self)) do if o == k then return true end end
  return false
end

function Optimizer:load_state_dict(sd)
  local who = "optim." .. self.__name .. ":load_state_dict"
  if type(sd) ~= "table" then
    error(string.format("%s: expected the table of a state_dict(), got %s", who,
                        is_tensor(sd) and "a tensor" or type(sd)), 2)
  end
  local params = self:params()
  if sd.n_params ~= nil and num(sd.n_params, "n_params", who) ~= #params then
    error(string.format("%s: the saved state is for %d parameters, this optimizer has %d",
                        who, num(sd.n_params, "n_params", who), #params), 2)
  end
  -- validate everything before changing anything
  local fields = self.state_fields or {}
  local new_state, group_vals = {}, {}
  for key, v in pairs(sd) do
    local i, field = tostring(key):match("^state%.(%d+)%.(.+)$")
    local gi, gk = tostring(key):match("^group%.(%d+)%.(.+)$")
    if i then
      i = tonumber(i)
      local p = params[i]
      if not p then error(string.format("%s: %s names parameter %d of %d", who, key, i, #params), 2) end
      new_state[i] = new_state[i] or {}
      if field == "step" then
        local n = num(v, key, who)
        if n < 0 or n ~= math.floor(n) then
          error(string.format("%s: %s must be a non-negative integer, got %s", who, key, util.fmt(n)), 2)
        end
        new_state[i].step = math.tointeger(n) or n
      elseif not fields[field] then
        error(string.format("%s: unexpected key %s (%s keeps %s)", who, key, self.__name,
                            table.concat(self.state_names or {"step"}, ", ")), 2)
      elseif not is_tensor(v) then
        error(string.format("%s: %s must be a tensor, got %s", who, key, util.what(v)), 2)
      elseif not same_shape(v, p) then
        error(string.format("%s: %s has shape %s, parameter %d has shape %s", who, key,
                            shape_str(v), i, shape_str(p)), 2)
      else
        new_state[i][field] = v
      end
    elseif gi then
      gi = tonumber(gi)
      if not self.param_groups[gi] then
        error(string.format("%s: %s names group %d of %d", who, key, gi, #self.param_groups), 2)
      end
      if not known_group_key(self, gk) then
        error(string.format("%s: unexpected key %s (%s has no option '%s')", who, key,
                            self.__name, gk), 2)
      end
      group_vals[#group_vals + 1] = {gi, gk, num(v, key, who)}
    elseif key ~= "n_params" then
      error(who .. ": unexpected key " .. tostring(key), 2)
    end
  end
  for i, st in pairs(new_state) do
    if st.step == nil then error(string.format("%s: state.%d.step is missing", who, i), 2) end
    -- the update needs all of its tensors once it has any (Adam: both moments)
    local have, lack = nil, nil
    for _, f in ipairs(self.state_together or {}) do
      if st[f] ~= nil then have = f else lack = f end
    end
    if have and lack then
      error(string.format("%s: state.%d.%s is given but state.%d.%s is missing", who, i, have, i,
                          lack), 2)
    end
  end
  -- the groups as they would be, checked like the constructor's options
  local staged = {}
  for gi, g in ipairs(self.param_groups) do
    local c = {}
    for k, v in pairs(g) do c[k] = type(v) == "table" and k ~= "params" and table.move(v, 1, #v, 1, {}) or v end
    staged[gi] = c
  end
  for _, e in ipairs(group_vals) do
    local g, k, v = staged[e[1]], e[2], e[3]
    local base, j = k:match("^(.-)%.(%d+)$")
    if base then
      g[base][tonumber(j)] = v
    elseif type(self.defaults[k]) == "boolean" or type(g[k]) == "boolean" then
      g[k] = v ~= 0
    else
      g[k] = v
    end
  end
  for gi, g in ipairs(staged) do
    local msg = check_group(self, g)
    if msg then error(string.format("%s: group %d: %s", who, gi, msg), 2) end
  end
  self.state = {}
  for i, st in pairs(new_state) do
    local s = {}
    for k, v in pairs(st) do
      if is_tensor(v) then s[k] = lg.no_grad(function() return v:detach():clone():contiguous() end)
      else s[k] = v end
    end
    self.state[params[i]] = s
  end
  for gi, g in ipairs(staged) do
    for k, v in pairs(g) do self.param_groups[gi][k] = v end
  end
end

optim.Optimizer = Optimizer

---------------------------------------------------------------------------
-- SGD{lr, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0}

local SGD = class("SGD", {momentum = 0, dampening = 0, nesterov = false, weight_decay = 0},
  function(g)
    if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      return "nesterov needs momentum > 0 and dampening = 0"
    end
  end, {"momentum_buffer"})

function SGD:update(p, d, st, g)
  local buf = nil
  local first = false
  if g.momentum ~= 0 then
    buf = st.momentum_buffer
    if not buf then
      buf = lg.zeros_like(p)
      st.momentum_buffer = buf
      first = true
    end
  end
  core().sgd_step(p, d, buf, g.lr, g.momentum, g.dampening, g.weight_decay, g.nesterov, first)
end
optim.SGD = SGD

---------------------------------------------------------------------------
-- Adam{lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0 (L2)}
-- AdamW: the same with decoupled weight decay (default 0.01).

local ADAM_STATE = {"exp_avg", "exp_avg_sq"}

local function adam_update(decoupled)
  return function(self, p, d, st, g)
    if not st.exp_avg then
      st.exp_avg = lg.zeros_like(p)
      st.exp_avg_sq = lg.zeros_like(p)
    end
    core().adam_step(p, d, st.exp_avg, st.exp_avg_sq, g.lr, g.betas[1], g.betas[2], g.eps,
                     g.weight_decay, decoupled, st.step)
  end
end

local Adam = class("Adam", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}, nil,
                   ADAM_STATE, ADAM_STATE)
Adam.update = adam_update(false)
optim.Adam = Adam

local AdamW = class("AdamW", {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0.01}, nil,
                    ADAM_STATE, ADAM_STATE)
AdamW.update = adam_update(true)
optim.AdamW = AdamW

---------------------------------------------------------------------------
-- RMSprop{lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0}
-- (PyTorch's form: eps outside the square root; not centered.)

local RMSprop = class("RMSprop", {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0},
  nil, {"square_avg", "momentum_buffer"})

function RMSprop:update(p, d, st, g)
  if not st.square_avg then st.square_avg = lg.zeros_like(p) end
  local buf = nil
  if g.momentum ~= 0 then
    buf = st.momentum_buffer
    if not buf then buf = lg.zeros_like(p); st.momentum_buffer = buf end
  end
  core().rmsprop_step(p, d, st.square_avg, buf, g.lr, g.alpha, g.eps, g.weight_decay, g.momentum)
end
optim.RMSprop = RMSprop

---------------------------------------------------------------------------
-- Learning-rate schedules. Each keeps the groups' starting lr and sets
-- group.lr = base * factor(t) where t counts sched:step() calls (per
-- iteration or per epoch, the recipe's choice).

local Scheduler = {}
Scheduler.__index = Scheduler

local function scheduler(name, factor)
  local cls = setmetatable({__name = name, factor = factor}, {__index = Scheduler})
  cls.__index = cls
  return cls
end

local function new_sched(cls, opt, fields)
  if type(opt) ~= "table" or not opt.param_groups then
    error("optim." .. cls.__name .. ": the first argument must be an optimizer, got " .. type(opt), 3)
  end
  local self = setmetatable(fields, cls)
  self.optimizer = opt
  self.last_step = 0
  self.base_lrs = {}
  for i, g in ipairs(opt.param_groups) do self.base_lrs[i] = g.initial_lr or g.lr end
  return self
end

function Scheduler:apply()
  local f = self:factor(self.last_step)
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = self.base_lrs[i] * f end
end

function Scheduler:step()
  self.last_step = self.last_step + 1
  self:apply()
end

function Scheduler:get_lr()
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr end
  return out
end

function Scheduler:state_dict()
  local sd = {last_step = self.last_step}
  for i, b in ipairs(self.base_lrs) do sd["base_lr." .. i] = b end
  return sd
end

function Scheduler:load_state_dict(sd)
  local who = "optim." .. self.__name .. ":load_state_dict"
  if type(sd) ~= "table" then
    error(who .. ": expected the table of a state_dict(), got " .. type(sd), 2)
  end
  if sd.last_step == nil then error(who .. ": last_step is missing", 2) end
  local last = num(sd.last_step, "last_step", who)
  check_num(who, "last_step", last, {int = true, lo = 0})
  local bases = {}
  for i, b in ipairs(self.base_lrs) do
    local v = sd["base_lr." .. i]
    bases[i] = v == nil and b or check_num(who, "base_lr." .. i, num(v, "base_lr." .. i, who), {lo = 0})
  end
  self.last_step, self.base_lrs = last, bases
  self:apply()
end

-- The options of a scheduler: unknown keys rejected, named after the class.
local function sched_opts(cls, o, allowed)
  local r = check_opts("optim." .. cls.__name, o, allowed, 4)
  return r
end

-- StepLR(opt, {step_size = n, gamma = 0.1}): lr * gamma^floor(t / step_size)
optim.StepLR = setmetatable(scheduler("StepLR", function(self, t)
  return self.gamma ^ (t // self.step_size)
end), {__index = Scheduler, __call = function(cls, opt, o)
  o = sched_opts(cls, o, {"step_size", "gamma"})
  if o.step_size == nil then
    error("optim.StepLR(opt, {step_size = n, gamma = 0.1}): step_size must be given", 2)
  end
  local step_size = check_num("optim.StepLR", "step_size", o.step_size, {int = true, lo = 1})
  local gamma = check_num("optim.StepLR", "gamma", o.gamma, {lo = 0, default = 0.1})
  local r = new_sched(cls, opt, {step_size = step_size, gamma = gamma})
  return r
end})

-- LinearDecay(opt, start_step, end_step, {final = 0}): factor 1 up to
-- start_step, then linear down to `final` at end_step, constant after.
optim.LinearDecay = setmetatable(scheduler("LinearDecay", function(self, t)
  if t <= self.start_step then return 1 end
  if t >= self.end_step then return self.final end
  local a = (t - self.start_step) / (self.end_step - self.start_step)
  return 1 + (self.final - 1) * a
end), {__index = Scheduler, __call = function(cls, opt, s, e, o)
  local who = "optim.LinearDecay"
  o = sched_opts(cls, o, {"final"})
  s = check_num(who, "start_step", s, {lo = 0})
  e = check_num(who, "end_step", e, {lo = 0})
  if e <= s then
    error("optim.LinearDecay(opt, start_step, end_step): need start_step < end_step", 2)
  end
  local final = check_num(who, "final", o.final, {lo = 0, default = 0})
  local r = new_sched(cls, opt, {start_step = s, end_step = e, final = final})
  return r
end})

-- CosineAnnealing(opt, {T_max = n, eta_min = 0}): lr = eta_min +
-- (base - eta_min)(1 + cos(pi t / T_max)) / 2, constant at eta_min after T_max.
local Cosine = scheduler("CosineAnnealing", nil)
function Cosine:apply()
  local t = math.min(self.last_step, self.T_max)
  local c = (1 + math.cos(math.pi * t / self.T_max)) / 2
  for i, g in ipairs(self.optimizer.param_groups) do
    g.lr = self.eta_min + (self.base_lrs[i] - self.eta_min) * c
  end
end
optim.CosineAnnealing = setmetatable(Cosine, {__index = Scheduler, __call = function(cls, opt, o)
  local who = "optim.CosineAnnealing"
  o = sched_opts(cls, o, {"T_max", "eta_min"})
  if o.T_max == nil then
    error("optim.CosineAnnealing(opt, {T_max = n, eta_min = 0}): T_max must be given", 2)
  end
  local T_max = check_num(who, "T_max", o.T_max, {lo = 0, open = true})
  local eta_min = check_num(who, "eta_min", o.eta_min, {lo = 0, default = 0})
  local r = new_sched(cls, opt, {T_max = T_max, eta_min = eta_min})
  return r
end})

-- LambdaLR(opt, fn): lr = base * fn(t)
optim.LambdaLR = setmetatable(scheduler("LambdaLR", function(self, t) return self.fn(t) end),
  {__index = Scheduler, __call = function(cls, opt, fn)
    if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
      error("optim.LambdaLR(opt, fn): fn must be a function of the step, got " .. type(fn), 2)
    end
    local r = new_sched(cls, opt, {fn = fn})
    return r
  end})

---------------------------------------------------------------------------
-- clipping

-- Scale all gradients so their joint norm is at most max_norm. params: a
-- list or a module. opts.norm_type: 2 (default) or math.huge. Returns the
-- norm before clipping.
function optim.clip_grad_norm(params, max_norm, opts)
  local who = "optim.clip_grad_norm"
  params = param_list(params, who)
  check_num(who, "max_norm", max_norm, {lo = 0})
  opts = check_opts(who, opts, {"norm_type"})
  local p_norm = opts.norm_type or 2
  if p_norm ~= math.huge then check_num(who, "norm_type", p_norm, {lo = 0, open = true}) end
  local grads = {}
  for _, p in ipairs(params) do
    local g = p.grad
    if g then grads[#grads + 1] = g end
  end
  local total = 0
  return lg.no_grad(function()
    if p_norm == math.huge then
      for _, g in ipairs(grads) do
        if g:numel() > 0 then total = math.max(total, g:abs():max():item()) end
      end
    else
      for _, g in ipairs(grads) do total = total + g:norm(p_norm):item() ^ p_norm end
      total = total ^ (1 / p_norm)
    end
    local coef = max_norm / (total + 1e-6)
    if coef < 1 then
      for _, g in ipairs(grads) do g:mul_(coef) end
    end
    return total
  end)
end

-- Clamp every gradient element to [-v, v].
function optim.clip_grad_value(params, v)
  params = param_list(params, "optim.clip_grad_value")
  check_num("optim.clip_grad_value", "clip_value", v, {lo = 0})
  lg.no_grad(function()
    for _, p in ipairs(params) do
      local g = p.grad
      if g then g:clamp_(-v, v) end
    end
  end)
end

-- Clamp every weight to [-c, c] (the WGAN critic's Lipschitz constraint).
function optim.clip_weights(params, c)
  params = param_list(params, "optim.clip_weights")
  check_num("optim.clip_weights", "c", c, {lo = 0})
  lg.no_grad(function()
    for _, p in ipairs(params) do p:clamp_(-c, c) end
  end)
end

---------------------------------------------------------------------------
-- EMA(module, {decay = 0.999, warmup = false}): an exponential moving
-- average of a module's parameters, kept in a shadow copy of the module
-- (buffers such as batch-norm statistics are copied, not averaged).
--   ema:update()         after each optimizer step
--   ema:module()         the averaged copy (sample from it)
--   ema:copy_to(net)     write the averages into a module of the same structure
-- warmup = true uses min(decay, (1 + n) / (10 + n)) for the n-th update.

local EMA = {}
EMA.__index = EMA

function optim.EMA(module, o)
  if type(module) ~= "table" or not module.parameters then
    error("optim.EMA(module, {decay = 0.999}): expected a module", 2)
  end
  o = check_opts("optim.EMA", o, {"decay", "warmup"})
  local decay = check_num("optim.EMA", "decay", o.decay, {lo = 0, hi = 1, default = 0.999})
  if o.warmup ~= nil and type(o.warmup) ~= "boolean" then
    error("optim.EMA: warmup must be a boolean, got " .. type(o.warmup), 2)
  end
  local shadow = module:clone()
  for _, p in ipairs(shadow:parameters()) do p:requires_grad_(false) end
  return setmetatable({source = module, shadow = shadow, decay = decay,
                       warmup = o and o.warmup or false, num_updates = 0}, EMA)
end

local function pairs_of(a, b, what)
  local pa, pb = a, b
  if #pa ~= #pb then
    error(string.format("EMA: the modules have %d and %d %s", #pa, #pb, what), 3)
  end
  return pa, pb
end

function EMA:current_decay()
  if self.warmup then
    local n = self.num_updates
    return math.min(self.decay, (1 + n) / (10 + n))
  end
  return self.decay
end

function EMA:update()
  local d = self:current_decay()
  self.num_updates = self.num_updates + 1
  local sp, mp = pairs_of(self.shadow:parameters(), self.source:parameters(), "parameters")
  local sb, mb = pairs_of(self.shadow:buffers(), self.source:buffers(), "buffers")
  lg.no_grad(function()
    for i, s in ipairs(sp) do s:mul_(d):add_(mp[i], 1 - d) end
    for i, s in ipairs(sb) do s:copy_(mb[i]) end
  end)
end

function EMA:module() return self.shadow end

function EMA:copy_to(module)
  module = module or self.source
  local sp, mp = pairs_of(self.shadow:parameters(), module:parameters(), "parameters")
  local sb, mb = pairs_of(self.shadow:buffers(), module:buffers(), "buffers")
  lg.no_grad(function()
    for i, s in ipairs(sp) do mp[i]:copy_(s) end
    for i, s in ipairs(sb) do mb[i]:copy_(s) end
  end)
  return module
end

function EMA:state_dict()
  local sd = self.shadow:state_dict()
  sd.num_updates = self.num_updates
  return sd
end

function EMA:load_state_dict(sd)
  if type(sd) ~= "table" then
    error("optim.EMA:load_state_dict: expected the table of a state_dict(), got " .. type(sd), 2)
  end
  local t = {}
  for k, v in pairs(sd) do if k ~= "num_updates" then t[k] = v end end
  self.shadow:load_state_dict(t)
  if sd.num_updates ~= nil then self.num_updates = num(sd.num_updates, "num_updates", "optim.EMA:load_state_dict") end
end

return optim
