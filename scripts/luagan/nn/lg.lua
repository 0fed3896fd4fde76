-- luagan.nn.lg: the framework table, resolved on first use.
-- luagan/init.lua requires luagan.nn while it is itself loading, so the nn
-- files cannot `require "luagan"` at load time (Lua 5.4 would recurse). They
-- index this proxy instead; the first lookup made at run time (when the
-- framework is loaded) replaces the proxy's __index with the real table.
local proxy = {}
setmetatable(proxy, {__index = function(_, k)
  local lg = require "luagan"
  setmetatable(proxy, {__index = lg})
  return lg[k]
end})
return proxy
