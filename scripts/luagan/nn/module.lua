-- luagan.nn.module: the Module base class and the containers.
--
-- A module is a table whose metatable is its class. Parameters, buffers and
-- child modules are plain fields (self.weight, self.fc, seq[2]) listed in
-- registration order in self._order, so parameters() and state_dict() walk
-- them in a deterministic order. Assigning to a new field registers what it
-- holds (as PyTorch's __setattr__ does for modules and parameters): a module
-- as a child, a tensor that requires grad as a parameter, any other tensor as
-- a persistent buffer, so a layer's running statistics are saved without
-- ceremony. A field whose name starts with "_" is never registered (scratch,
-- caches); add_buffer(name, t, {persistent = false}) keeps a buffer out of
-- state_dict. add_param / add_buffer / add_module register explicitly.
local lg = require "luagan"
local util = require "luagan.util"

local M = {}

-- Set false to see the original traceback of an error inside a module.
M.wrap_errors = true

local is_tensor, shape_str = util.is_tensor, util.shape_str
M.is_tensor, M.shape_str = is_tensor, shape_str

local function count(t) return t:numel() end

-- 1234567 -> "1,234,567"
local function commas(n)
  local s = tostring(math.floor(n))
  local r
  repeat s, r = s:gsub("^(%d+)(%d%d%d)", "%1,%2") until r == 0
  return s
end
M.commas = commas

---------------------------------------------------------------------------
-- classes

local Module = {}
Module.__index = Module
Module.__name = "Module"

-- Metamethods are looked up raw on the metatable, so every class carries
-- its own copy of them (taken from its parent when the class is made).
local META = {"__call", "__tostring", "__newindex", "__len", "__close"}

local function is_module(v)
  return type(v) == "table" and getmetatable(v) ~= nil and rawget(v, "_order") ~= nil
end
M.is_module = is_module

local function construct(cls, ...)
  local self = setmetatable({}, cls)
  rawset(self, "_order", {})
  rawset(self, "_entries", {})
  rawset(self, "training", true)
  self:init(...)
  return self
end

-- Make a subclass: `local MyLayer = nn.Module:extend("MyLayer")`, then define
-- MyLayer:init(...) and MyLayer:forward(x); `MyLayer(...)` builds one.
function Module:extend(name)
  assert(type(name) == "string", "extend: the class needs a name")
  local cls = {}
  for _, k in ipairs(META) do cls[k] = rawget(self, k) end
  cls.__index = cls
  cls.__name = name
  cls.super = self
  return setmetatable(cls, {__index = self, __call = construct,
                            __tostring = function() return "class " .. name end})
end
setmetatable(Module, {__call = construct, __tostring = function() return "class Module" end})

function Module:init() end

function Module:forward()
  error(self.__name .. " has no forward()", 0)
end

-- Errors: the innermost module whose forward fails prefixes the message with
-- its path and a short description; outer modules pass that message through.
local last_wrapped

local function wrap_error(self, err, x)
  if type(err) ~= "string" or err == last_wrapped then return err end
  -- a position inside the library's own layer code says nothing the module
  -- path does not (a position in user code is kept)
  err = err:gsub("^[^\n:]-luagan/nn/[%w_]+%.lua:%d+: ", "")
  local desc = self:_short()
  local msg = string.format("%s (%s): %s", self:path(), desc, err)
  if is_tensor(x) then
    msg = msg .. " (input " .. shape_str(x) .. ")"
  elseif type(x) == "table" and is_tensor(x[1]) then
    local parts = {}
    for i, t in ipairs(x) do parts[i] = is_tensor(t) and shape_str(t) or type(t) end
    msg = msg .. " (inputs " .. table.concat(parts, ", ") .. ")"
  end
  last_wrapped = msg
  return msg
end

local function finish(self, x, ok, ...)
  if ok then return ... end
  error(wrap_error(self, (...), x), 0)
end

function Module.__call(self, x, ...)
  if not M.wrap_errors then return self:forward(x, ...) end
  return finish(self, x, pcall(self.forward, self, x, ...))
end

function Module.__newindex(self, k, v)
  if type(k) == "string" and k:sub(1, 1) ~= "_" and rawget(self, "_entries") then
    if is_module(v) then
      return self:add_module(k, v)
    elseif is_tensor(v) and v.requires_grad then
      return self:add_param(k, v)
    elseif is_tensor(v) then
      return self:add_buffer(k, v)
    end
  end
  rawset(self, k, v)
end

---------------------------------------------------------------------------
-- constructor checks (for init; custom modules use them the same way)

-- The name constructor errors use: "nn.Conv2d" for the library's classes
-- (marked _lib by luagan.nn), the class name for a user's own.
function Module:_who()
  return (rawget(getmetatable(self), "_lib") and "nn." or "") .. self.__name
end

-- In init: o = self:check_opts(o, {"bias", "stride"}) returns o (or {} for
-- nil) and rejects an unknown key, naming the class, the key, the accepted
-- keys and a close one ("did you mean 'stride'?"). The error points at the
-- line that built the module (init runs two calls below it).
function Module:check_opts(o, allowed)
  local r = util.check_opts(self:_who(), o, allowed, 5)
  return r
end

-- In init: n = self:check_size("in_features", n): a positive integer, or an
-- error naming the class and the argument.
function Module:check_size(name, v)
  local r = util.check_num(self:_who(), name, v, {int = true, lo = 1, level = 5})
  return r
end

---------------------------------------------------------------------------
-- registration

local function register(self, kind, name, key, v)
  local entries = rawget(self, "_entries")
  local e = entries[name]
  if e and e.kind ~= kind then
    error(string.format("%s: '%s' is already a %s", self.__name, name, e.kind), 3)
  end
  if not e then
    e = {kind = kind, name = name, key = key}
    entries[name] = e
    local order = rawget(self, "_order")
    order[#order + 1] = e
  end
  rawset(self, key, v)
end

-- Register t as a parameter (it is made a leaf that requires grad).
function Module:add_param(name, t)
  assert(is_tensor(t), "add_param: expected a tensor")
  if not t.requires_grad then t:requires_grad_(true) end
  register(self, "param", name, name, t)
  return t
end

-- Register a buffer: state that is not trained (running statistics). It is
-- listed by buffers() (EMA copies it, data-parallel training averages it) and,
-- unless opts.persistent is false, saved and loaded by state_dict().
function Module:add_buffer(name, t, opts)
  opts = util.check_opts(self:_who() .. ":add_buffer", opts, {"persistent"}, 3)
  if type(name) ~= "string" or name == "" then
    error(string.format("%s:add_buffer: the name must be a non-empty string, got %s",
                        self:_who(), util.what(name)), 2)
  end
  if t ~= nil and not is_tensor(t) then
    error(string.format("%s:add_buffer('%s'): expected a tensor or nil, got %s",
                        self:_who(), name, util.what(t)), 2)
  end
  if opts.persistent ~= nil and type(opts.persistent) ~= "boolean" then
    error(string.format("%s:add_buffer('%s'): persistent must be a boolean, got %s",
                        self:_who(), name, util.what(opts.persistent)), 2)
  end
  register(self, "buffer", name, name, t)
  rawget(self, "_entries")[name].persistent = opts.persistent ~= false
  return t
end

function Module:add_module(name, m, key)
  assert(is_module(m), "add_module: expected a module")
  register(self, "module", tostring(name), key or name, m)
  if rawget(m, "_parent") == nil then
    rawset(m, "_parent", self)
    rawset(m, "_key", tostring(name))
  end
  return m
end

-- Forget a registered name (the field is cleared).
function Module:remove(name)
  local entries = rawget(self, "_entries")
  local e = entries[name]
  if not e then return end
  entries[name] = nil
  local order = rawget(self, "_order")
  for i, o in ipairs(order) do if o == e then table.remove(order, i) break end end
  rawset(self, e.key, nil)
end

---------------------------------------------------------------------------
-- naming

-- Name the root of a tree for error messages and printing: net:name("D").
function Module:name(n)
  if n == nil then return rawget(self, "_root_name") or "net" end
  rawset(self, "_root_name", n)
  return self
end

function Module:path()
  local p = rawget(self, "_parent")
  if p then return p:path() .. "." .. rawget(self, "_key") end
  return rawget(self, "_root_name") or "net"
end

-- A few words for error prefixes ("Conv2d 64->128"); classes override short().
function Module:_short()
  local s = self.short and self:short()
  if s and s ~= "" then return self.__name .. " " .. s end
  return self.__name
end

-- What goes inside the parentheses when printing; classes override.
function Module:extra_repr() return "" end

---------------------------------------------------------------------------
-- walking the tree

local function walk(self, prefix, kinds, out, seen, seen_mod)
  seen_mod[self] = true
  for _, e in ipairs(rawget(self, "_order")) do
    local v = rawget(self, e.key)
    if v ~= nil then
      if e.kind == "module" then
        if not seen_mod[v] then walk(v, prefix .. e.name .. ".", kinds, out, seen, seen_mod) end
      elseif kinds[e.kind] and not seen[v] and not (kinds.saved and e.persistent == false) then
        seen[v] = true
        out[#out + 1] = {prefix .. e.name, v}
      end
    end
  end
  return out
end

-- STATE: what state_dict saves (parameters and persistent buffers).
local PARAMS, BUFFERS = {param = true}, {buffer = true}
local STATE = {param = true, buffer = true, saved = true}

local function iter(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

-- Parameters in registration order, each tensor once (shared weights too).
function Module:parameters()
  local list, out = walk(self, "", PARAMS, {}, {}, {}), {}
  for i, e in ipairs(list) do out[i] = e[2] end
  return out
end

-- for name, p in net:named_parameters() do ... end  ("1.weight", "fc.bias")
function Module:named_parameters() return iter(walk(self, "", PARAMS, {}, {}, {})) end
function Module:named_buffers() return iter(walk(self, "", BUFFERS, {}, {}, {})) end

function Module:buffers()
  local list, out = walk(self, "", BUFFERS, {}, {}, {}), {}
  for i, e in ipairs(list) do out[i] = e[2] end
  return out
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + count(p) end
  return n
end

-- Direct children in order.
function Module:children()
  local out = {}
  for _, e in ipairs(rawget(self, "_order")) do
    local v = rawget(self, e.key)
    if e.kind == "module" and v ~= nil then out[#out + 1] = v end
  end
  return out
end

local function named_mods(self, prefix, out, seen)
  if seen[self] then return out end
  seen[self] = true
  out[#out + 1] = {prefix, self}
  for _, e in ipairs(rawget(self, "_order")) do
    local v = rawget(self, e.key)
    if e.kind == "module" and v ~= nil then
      named_mods(v, prefix == "" and e.name or prefix .. "." .. e.name, out, seen)
    end
  end
  return out
end

-- This module and every descendant, pre-order, each once.
function Module:modules()
  local out = {}
  for i, e in ipairs(named_mods(self, "", {}, {})) do out[i] = e[2] end
  return out
end

-- for name, m in net:named_modules() do ... end (the root is named "")
function Module:named_modules() return iter(named_mods(self, "", {}, {})) end

function Module:train(mode)
  local on = mode ~= false
  for _, m in ipairs(self:modules()) do rawset(m, "training", on) end
  return self
end

function Module:eval() return self:train(false) end

-- fn(m) on every descendant, children before parents (as PyTorch).
function Module:apply(fn)
  for _, c in ipairs(self:children()) do c:apply(fn) end
  fn(self)
  return self
end

-- Drop every parameter's gradient (the next backward starts from zero).
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad = nil end
end

---------------------------------------------------------------------------
-- state

-- name -> tensor for parameters and buffers. The tensors are detached views
-- of the module's own storage (no copy), ready for a checkpoint writer.
function Module:state_dict()
  local sd = {}
  for _, e in ipairs(walk(self, "", STATE, {}, {}, {})) do sd[e[1]] = e[2]:detach() end
  return sd
end

-- The names of state_dict() in the module's order.
function Module:state_keys()
  local out = {}
  for i, e in ipairs(walk(self, "", STATE, {}, {}, {})) do out[i] = e[1] end
  return out
end

local function same_shape(a, b)
  local sa, sb = a:shape(), b:shape()
  if #sa ~= #sb then return false end
  for i = 1, #sa do if sa[i] ~= sb[i] then return false end end
  return true
end

-- Copy a state_dict in. strict (default true): every name must match both
-- ways. Shapes must match in either mode. Nothing is copied unless all checks
-- pass. Returns {missing = {...}, unexpected = {...}}.
function Module:load_state_dict(sd, opts)
  local where = "load_state_dict (" .. self:path() .. ")"
  opts = util.check_opts(where, opts, {"strict"})
  local strict = opts.strict ~= false
  if type(sd) ~= "table" or is_tensor(sd) then
    error(where .. ": expected a table of tensors, got " .. util.what(sd), 2)
  end
  local own = walk(self, "", STATE, {}, {}, {})
  local known, missing, unexpected, bad = {}, {}, {}, {}
  for _, e in ipairs(own) do
    local name, t = e[1], e[2]
    known[name] = true
    local s = sd[name]
    if s == nil then
      missing[#missing + 1] = name
    elseif not is_tensor(s) then
      bad[#bad + 1] = string.format("%s: expected a tensor, got %s", name, util.what(s))
    elseif not same_shape(s, t) then
      bad[#bad + 1] = string.format("%s: checkpoint has shape %s, module has %s",
                                    name, shape_str(s), shape_str(t))
    end
  end
  for name in pairs(sd) do
    if not known[name] then unexpected[#unexpected + 1] = tostring(name) end
  end
  table.sort(unexpected)
  if #bad > 0 then
    error(where .. ": size mismatch: " .. table.concat(bad, "; "), 2)
  end
  if strict and (#missing > 0 or #unexpected > 0) then
    local parts = {}
    if #missing > 0 then parts[#parts + 1] = "missing keys: " .. table.concat(missing, ", ") end
    if #unexpected > 0 then parts[#parts + 1] = "unexpected keys: " .. table.concat(unexpected, ", ") end
    error(where .. ": " .. table.concat(parts, "; ") ..
          " (pass {strict = false} to load what matches)", 2)
  end
  lg.no_grad(function()
    for _, e in ipairs(own) do
      local s = sd[e[1]]
      if s ~= nil then e[2]:copy_(s) end
    end
  end)
  return {missing = missing, unexpected = unexpected}
end

-- A deep copy: new tensors, same structure; the copy has no parent.
function Module:clone()
  local memo = {}
  local function copy(v)
    if memo[v] ~= nil then return memo[v] end
    if is_tensor(v) then
      local c = lg.no_grad(function() return v:detach():clone() end)
      if v.requires_grad and v.grad_fn == nil then c:requires_grad_(true) end
      memo[v] = c
      return c
    elseif type(v) == "table" then
      local c = {}
      memo[v] = c
      for k, x in next, v do rawset(c, copy(k), copy(x)) end
      return setmetatable(c, getmetatable(v))
    end
    return v
  end
  local parent = rawget(self, "_parent")
  memo[parent or memo] = parent  -- never copy the tree above
  local c = copy(self)
  rawset(c, "_parent", nil)
  rawset(c, "_key", nil)
  return c
end

---------------------------------------------------------------------------
-- printing

local function param_summary(m)
  local parts, n = {}, 0
  for _, e in ipairs(rawget(m, "_order")) do
    local v = rawget(m, e.key)
    if e.kind == "param" and v ~= nil then
      parts[#parts + 1] = e.name .. " " .. shape_str(v)
      n = n + count(v)
    end
  end
  return parts, n
end

local function repr_lines(m, label, indent, out, seen)
  local extra = m:extra_repr()
  local head = indent .. (label and (label .. ": ") or "") .. m.__name ..
               (extra ~= "" and "(" .. extra .. ")" or "")
  local kids = m:children()
  if seen[m] then
    out[#out + 1] = head .. "  (shared, see above)"
    return
  end
  seen[m] = true
  local parts, own = param_summary(m)
  if #kids == 0 then
    if own > 0 then
      head = head .. "  [" .. table.concat(parts, ", ") .. "]  " .. commas(own) .. " params"
    end
    out[#out + 1] = head
    return
  end
  local total = m:num_parameters()
  out[#out + 1] = head .. "  " .. commas(total) .. " params"
  if own > 0 then
    out[#out + 1] = indent .. "  [" .. table.concat(parts, ", ") .. "]  " .. commas(own) .. " params"
  end
  for _, e in ipairs(rawget(m, "_order")) do
    local v = rawget(m, e.key)
    if e.kind == "module" and v ~= nil then repr_lines(v, e.name, indent .. "  ", out, seen) end
  end
end

function Module.__tostring(self)
  local out = {}
  repr_lines(self, self:path(), "", out, {})
  return table.concat(out, "\n")
end

-- Print each module's output shape for an input: net:summary(x).
-- Returns the text (one line per module call, in call order).
function Module:summary(x)
  local lines, depth = {}, 0
  local saved = {}
  for _, m in ipairs(self:modules()) do
    local f = m.forward
    saved[m] = rawget(m, "forward")
    rawset(m, "forward", function(s, ...)
      depth = depth + 1
      local i = #lines + 1
      lines[i] = false
      local y = f(s, ...)
      depth = depth - 1
      local _, own = param_summary(s)
      lines[i] = string.format("%s%-28s %-18s %s", string.rep("  ", depth), s:path(),
                               is_tensor(y) and shape_str(y) or type(y),
                               own > 0 and commas(own) or "")
      return y
    end)
  end
  local ok, err = pcall(function() lg.no_grad(function() self(x) end) end)
  for m, f in pairs(saved) do rawset(m, "forward", f) end
  for _, m in ipairs(self:modules()) do if saved[m] == nil then rawset(m, "forward", nil) end end
  if not ok then error(err, 0) end
  local clean = {}
  for _, l in ipairs(lines) do if l then clean[#clean + 1] = l end end
  table.insert(clean, 1, string.format("input %s; %s params", shape_str(x), commas(self:num_parameters())))
  return table.concat(clean, "\n")
end

M.Module = Module

---------------------------------------------------------------------------
-- containers

-- Sequential{m1, m2, ...}: children named "1", "2", ...; seq[i] is the i-th.
local Sequential = Module:extend("Sequential")

function Sequential:init(list)
  rawset(self, "_n", 0)
  for _, m in ipairs(list or {}) do self:add(m) end
end

function Sequential:add(m)
  if not is_module(m) then
    error(string.format("%s: item %d is not a module (got %s)", self.__name, self._n + 1, type(m)), 2)
  end
  local n = self._n + 1
  rawset(self, "_n", n)
  self:add_module(tostring(n), m, n)
  return self
end

function Sequential:forward(x, ...)
  for i = 1, self._n do
    if i == 1 then x = self[i](x, ...) else x = self[i](x) end
  end
  return x
end

function Sequential.__len(self) return self._n end

M.Sequential = Sequential

-- ModuleList{m1, m2, ...}: a registered list; no forward of its own.
local ModuleList = Module:extend("ModuleList")
ModuleList.init = Sequential.init
ModuleList.add = Sequential.add
ModuleList.__len = Sequential.__len
function ModuleList:forward() error("ModuleList has no forward(); call its items", 0) end
M.ModuleList = ModuleList

-- ModuleDict{name = m, ...}: children in sorted name order (deterministic).
local ModuleDict = Module:extend("ModuleDict")
function ModuleDict:init(map)
  local names = {}
  for k in pairs(map or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do self:add_module(k, map[k]) end
end
function ModuleDict:forward() error("ModuleDict has no forward(); call its items", 0) end
M.ModuleDict = ModuleDict

return M
