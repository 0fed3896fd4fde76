-- luagan.util: small checks shared by the Lua modules (not part of the
-- user-facing API; recipes need not use it).
local core = require "luagan.core"

local util = {}

-- true for a live tensor userdata
function util.is_tensor(v)
  return type(v) == "userdata" and core.is_tensor(v)
end

-- "64x100", or "scalar" for a 0-dim tensor
function util.shape_str(t)
  local s = t:shape()
  return #s == 0 and "scalar" or table.concat(s, "x")
end

-- Validate an options table: nil gives {}, a non-table or an unknown key is an
-- error naming `who` and the allowed keys, raised at the caller of the
-- function that called check_opts (level 3), where the mistake is.
function util.check_opts(who, o, allowed)
  if o == nil then return {} end
  if type(o) ~= "table" then error(who .. ": options go in a table, got " .. type(o), 3) end
  local ok = {}
  for _, k in ipairs(allowed) do ok[k] = true end
  for k in pairs(o) do
    if not ok[k] then
      error(string.format("%s: unknown option '%s' (expected: %s)", who, tostring(k),
                          table.concat(allowed, ", ")), 3)
    end
  end
  return o
end

return util
