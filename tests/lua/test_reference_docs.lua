-- test_reference_docs.lua: every public name has an entry in docs/reference/.
--
-- The public API is enumerated at run time (not from a list kept here):
--   lg.*                   every key of require "luagan" (luagan.core re-exports included)
--   Tensor:NAME            every method of lg.Tensor
--   Module:NAME            every method of lg.nn.Module
--   lg.MOD.NAME            every key of lg.nn, lg.nn.init, lg.optim, lg.losses,
--                          lg.penalties, lg.tricks, lg.data, lg.io, lg.image, lg.eval,
--                          lg.eval2d, lg.train, lg.recipe, lg.recipe_kit, lg.nets, lg.linalg
--   lg.NAME                every Lua module file scripts/luagan/NAME.lua
--   luagan NAME            every CLI command (luagan.cli's commands and the files of
--                          scripts/luagan/commands/)
-- and the test fails listing every one that has no entry.
--
-- The entry convention (docs/reference/README.md, "Conventions"): an entry is a
-- Markdown heading whose text holds the name in backticks, e.g.
--   ### `lg.nn.Conv2d(cin, cout, k, opts)`
--   ### `Tensor:sum([dim [, keepdim]])`
--   ### `luagan run NAME [--option value ...]`
-- Every backtick span of a heading counts: its leading name (letters, digits,
-- `_`, `.`, `:`) is the documented name (for `luagan ...`, the first two words),
-- so one heading may document several names: ### `lg.floor(x)`, `Tensor:floor()`.
-- lg.init is lg.nn.init (documented once, under lg.nn.init).
local T = ...
local lg = require "luagan"

-- Names starting with "_" are private. These other names are internal; each
-- says why it has no entry.
local internal = {
  ["lg.util"] = "helpers shared by the Lua modules (option checking); not a user API",
  ["lg.init_weights"] = "the file behind lg.nn.init (lg.init), documented under that name",
}

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do if type(k) == "string" then ks[#ks + 1] = k end end
  table.sort(ks)
  return ks
end

local function public(k) return type(k) == "string" and k:sub(1, 1) ~= "_" end

-- the set of names the API has
local function api_names()
  local names, seen = {}, {}
  local function add(n)
    if not seen[n] and not internal[n] then seen[n] = true; names[#names + 1] = n end
  end
  local submodules = {"nn", "optim", "losses", "penalties", "tricks", "data", "io",
                      "image", "eval", "eval2d", "train", "recipe", "nets", "recipe_kit"}
  for _, m in ipairs(submodules) do assert(lg[m], "lg." .. m .. " did not load") end
  for _, k in ipairs(sorted_keys(lg)) do
    if public(k) then add("lg." .. k) end
  end
  for _, m in ipairs(submodules) do add("lg." .. m) end
  add("lg.nn.init"); add("lg.init")
  -- every Lua module file is a public module (lg.NAME loads scripts/luagan/NAME.lua)
  for _, f in ipairs(lg.listdir("scripts/luagan")) do
    local n = f:match("^([%w_]+)%.lua$")
    if n and n ~= "init" then add("lg." .. n) end
  end
  for _, k in ipairs(sorted_keys(lg.linalg)) do
    if public(k) then add("lg.linalg." .. k) end
  end
  for _, k in ipairs(sorted_keys(lg.Tensor)) do
    if public(k) then add("Tensor:" .. k) end
  end
  for _, k in ipairs(sorted_keys(lg.nn.Module)) do
    if public(k) and type(lg.nn.Module[k]) == "function" then add("Module:" .. k) end
  end
  for _, m in ipairs(submodules) do
    for _, k in ipairs(sorted_keys(lg[m])) do
      if public(k) and not (m == "nn" and k == "init") then add("lg." .. m .. "." .. k) end
    end
  end
  for _, k in ipairs(sorted_keys(lg.nn.init)) do
    if public(k) then add("lg.nn.init." .. k) end
  end
  -- CLI: the built-in commands and the command modules on disk
  local cli = require "luagan.cli"
  for _, k in ipairs(sorted_keys(cli.commands)) do add("luagan " .. k) end
  for _, f in ipairs(lg.listdir("scripts/luagan/commands")) do
    local n = f:match("^([%w_]+)%.lua$")
    if n then add("luagan " .. n) end
  end
  return names
end

-- the set of names docs/reference/*.md has entries for
local function documented_names()
  local found, files = {}, 0
  local ok, names = pcall(lg.listdir, "docs/reference")
  local pages = {}
  for _, f in ipairs(ok and names or {}) do
    if f:match("%.md$") then pages[#pages + 1] = "docs/reference/" .. f end
  end
  for _, path in ipairs(pages) do
    files = files + 1
    local fh = assert(io.open(path, "r"))
    local in_code = false
    for line in fh:lines() do
      if line:match("^```") then in_code = not in_code end
      if not in_code and line:match("^#+%s") then
        for span in line:gmatch("`([^`]+)`") do
          local name = span:match("^[%w_%.:]+")
          if name == "luagan" then name = span:match("^luagan%s+[%w_]+") end
          if name then
            found[name] = path
            found[(name:gsub("^lg%.init%.", "lg.nn.init."))] = path
          end
        end
      end
    end
    fh:close()
  end
  return found, files
end

T.test("the public API is enumerated", function()
  local names = api_names()
  -- a sanity floor, so a broken enumeration cannot pass vacuously
  T.ok(#names > 300, "only " .. #names .. " public names found")
  local have = {}
  for _, n in ipairs(names) do have[n] = true end
  for _, n in ipairs{"lg.tensor", "Tensor:sum", "lg.nn.Conv2d", "lg.optim.Adam",
                     "lg.nn.init.normal_", "Module:state_dict", "luagan run",
                     "luagan sample", "lg.save", "lg.load"} do
    T.ok(have[n], n .. " is not in the enumerated API")
  end
end)

T.test("every public name has an entry in docs/reference", function()
  local found, files = documented_names()
  T.ok(files >= 14, "docs/reference has " .. files .. " pages (run from the repository root)")
  local missing = {}
  for _, n in ipairs(api_names()) do
    if not found[n] then missing[#missing + 1] = n end
  end
  if #missing > 0 then
    error(#missing .. " public names have no entry in docs/reference/*.md " ..
          "(a heading with the name in backticks):\n  " .. table.concat(missing, "\n  "), 0)
  end
end)
