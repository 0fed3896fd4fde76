-- luagan.recipe: declare a training recipe (models/NAME.lua) and parse its
-- command-line options. See docs/training.md.
--
--   return require("luagan.recipe"){
--     name = "gan", about = "MLP GAN on Fashion-MNIST",
--     options = {{"lr", 2e-4, "Adam learning rate"}, {"loss", "ns", "G loss", choices = {"ns", "mm"}}},
--     setup = function(opt) ... return state end,
--     step = function(state, i) ... return {loss_d = ld, loss_g = lg_} end,
--     sample = function(state, path, o) ... end,
--   }
--
-- The option's type is its default's: integer, float (any number), string
-- (or one of choices) or boolean. Every recipe also gets the common options
-- of recipe.COMMON; declaring one of them in `options` changes its default.
--
-- This module owns command-line options: the luagan commands parse theirs
-- with the same parser (recipe.options{...}:parse(args), below), so every
-- command reads --name value, --name=value, --flag/--no-flag and --help the
-- same way and says the same about a bad one.
local recipe = {}

-- {name, default, help}: the options the training loop itself reads.
recipe.COMMON = {
  {"steps", 1000, "training steps", min = 0},
  {"out", "", "output directory (default out/NAME)"},
  {"seed", 1, "random seed (lg.manual_seed before setup)"},
  {"threads", 0, "CPU threads for the kernels (0 = leave the default)", min = 0, max = 4096},
  {"resume", "", "continue from this checkpoint (its options, overridden by the ones given)"},
  {"sample_every", 500, "write samples_STEP.png every N steps (0 = only at the end)", min = 0},
  {"ckpt_every", 1000, "write the checkpoint every N steps (0 = only at the end)", min = 0},
  {"log_every", 10, "one metrics.jsonl line per N steps (their mean)", min = 0},
  {"print_every", 0, "without a terminal, a progress line every N steps (0 = about 20 lines a run)",
   min = 0},
  {"quiet", false, "no progress output"},
}

-- Ranges of the options most recipes declare under the same names, used when
-- the recipe gives none (an entry's min/max/above/below replace them): a
-- value outside is a usage error, not a crash or a silent nonsense run. A
-- default outside the conventional range is a special value the recipe
-- understands (toy2d's --batch 0 = automatic), so the range stretches to it.
recipe.CONVENTIONAL = {
  batch = {min = 1}, nz = {min = 1}, limit = {min = 0},
  lr = {above = 0}, beta1 = {min = 0, below = 1}, beta2 = {min = 0, below = 1},
}
local function conventional(name)
  if recipe.CONVENTIONAL[name] then return recipe.CONVENTIONAL[name] end
  if name:match("^lr_%w+$") then return recipe.CONVENTIONAL.lr end   -- lr_d, lr_g
end

-- A usage error (bad option, unknown recipe, missing file): the luagan
-- executable prints its message without a traceback. tostring(err) is the
-- message, so pcall callers see text as with any error.
local UsageError = {__name = "luagan.UsageError"}
UsageError.__tostring = function(e) return e.message end
UsageError.__concat = function(a, b) return tostring(a) .. tostring(b) end

function recipe.fail(msg)
  error(setmetatable({message = msg, usage = true}, UsageError), 0)
end

-- An option set: name (for messages), _options (the checked entries in
-- order), _index (name -> entry), _args (where arguments that are no option
-- go, or nil: none allowed), _max_args, _help_cmd (the command whose --help
-- lists the options). Recipes are option sets; so are the commands' options.
local Options = {}
Options.__index = Options

local Recipe = setmetatable({}, {__index = Options})
Recipe.__index = Recipe
recipe.Recipe = Recipe

local FIELDS = {name = "string", about = "string", options = "table", setup = "function",
                step = "function", sample = "function", save = "function", load = "function",
                finish = "function"}
local REQUIRED = {"name", "about", "setup", "step"}

local function kind_of(v)
  local t = type(v)
  if t == "number" then return math.type(v) == "integer" and "integer" or "float" end
  return t
end

local function check_entry(who, e, pos)
  local where = string.format("%s: option %d", who, pos)
  if type(e) ~= "table" then error(where .. ": expected {name, default, help}, got " .. type(e), 3) end
  local name, default, help = e[1], e[2], e[3]
  if type(name) ~= "string" or not name:match("^[%w][%w_]*$") then
    error(where .. ": the name must be a word (letters, digits, _), got " .. tostring(name), 3)
  end
  where = string.format("%s: option '%s'", who, name)
  -- no default (nil: "not given", the command picks) needs the type named
  local k = default == nil and e.type or kind_of(default)
  if k ~= "integer" and k ~= "float" and k ~= "string" and k ~= "boolean" then
    error(where .. ": the default must be a number, string or boolean (or nil with type = " ..
          "\"integer\", \"float\", \"string\" or \"boolean\"), got " .. type(default), 3)
  end
  if e.type ~= nil and e.type ~= k then
    error(where .. ": type " .. tostring(e.type) .. " does not match the default's, " .. k, 3)
  end
  if type(help) ~= "string" or help == "" then error(where .. ": needs a help string", 3) end
  if e.choices ~= nil then
    if type(e.choices) ~= "table" or #e.choices == 0 then
      error(where .. ": choices must be a non-empty list", 3)
    end
    local found = false
    for _, c in ipairs(e.choices) do
      if kind_of(c) ~= k and not (k == "float" and type(c) == "number") then
        error(where .. ": choice " .. tostring(c) .. " is not a " .. k, 3)
      end
      if c == default then found = true end
    end
    if not found then error(where .. ": the default " .. tostring(default) .. " is not one of the choices", 3) end
  end
  local range = {}
  for _, f in ipairs{"min", "max", "above", "below"} do
    if e[f] ~= nil then
      if (k ~= "integer" and k ~= "float") or type(e[f]) ~= "number" or e[f] ~= e[f] then
        error(where .. ": " .. f .. " must be a number, for a number option", 3)
      end
      range[f] = e[f]
    end
  end
  for key in pairs(e) do
    if not (key == 1 or key == 2 or key == 3 or key == "choices" or key == "type" or range[key] ~= nil) then
      error(where .. ": unknown field '" .. tostring(key) ..
            "' (fields: name, default, help, choices, type, min, max, above, below)", 3)
    end
  end
  if next(range) == nil and (k == "integer" or k == "float") and default ~= nil then
    local c = conventional(name)
    if c then
      for f, v in pairs(c) do range[f] = v end
      if range.min and default < range.min then range.min = default end
      if range.above and default <= range.above then range.above, range.min = nil, default end
    end
  end
  local o = {name = name, default = default, help = help, kind = k, choices = e.choices}
  if next(range) ~= nil then
    o.range = range
    local why = default ~= nil and recipe.out_of_range(o, default)
    if why then error(where .. ": the default " .. tostring(default) .. " " .. why, 3) end
  end
  return o
end

-- nil when v is within option o's range, else the complaint ("must be >= 1").
function recipe.out_of_range(o, v)
  local r = o.range
  if not r then return nil end
  local lo = r.min ~= nil and ("[" .. tostring(r.min)) or r.above ~= nil and ("(" .. tostring(r.above))
  local hi = r.max ~= nil and (tostring(r.max) .. "]") or r.below ~= nil and (tostring(r.below) .. ")")
  local bad = (r.min ~= nil and v < r.min) or (r.above ~= nil and v <= r.above)
              or (r.max ~= nil and v > r.max) or (r.below ~= nil and v >= r.below)
  if not bad then return nil end
  if lo and hi then return "must be in " .. lo .. ", " .. hi end
  if r.min ~= nil then return "must be >= " .. tostring(r.min) end
  if r.above ~= nil then return "must be > " .. tostring(r.above) end
  if r.max ~= nil then return "must be <= " .. tostring(r.max) end
  return "must be < " .. tostring(r.below)
end

-- recipe{...} -> a Recipe (the same table, checked, with the methods below).
local function new(spec)
  local who = "recipe"
  if type(spec) ~= "table" then error("recipe: expected a table, got " .. type(spec), 2) end
  if type(spec.name) == "string" then who = "recipe '" .. spec.name .. "'" end
  for _, k in ipairs(REQUIRED) do
    if spec[k] == nil then error(who .. ": missing field '" .. k .. "'", 2) end
  end
  for k, t in pairs(FIELDS) do
    if spec[k] ~= nil and type(spec[k]) ~= t then
      error(string.format("%s: field '%s' must be a %s, got %s", who, k, t, type(spec[k])), 2)
    end
  end
  for k in pairs(spec) do
    if Recipe[k] ~= nil then
      error(string.format("%s: field '%s' is the name of a recipe method; choose another name", who, k), 2)
    end
  end
  if spec.smoke ~= nil and spec.smoke ~= false and type(spec.smoke) ~= "table" then
    error(who .. ": smoke must be a table of options or false", 2)
  end
  -- the option list: common ones first (in their order), the recipe's after;
  -- a recipe entry with a common name replaces the common default in place
  local list, index = {}, {}
  for _, e in ipairs(recipe.COMMON) do
    local o = check_entry(who, e, #list + 1)
    o.common = true
    list[#list + 1] = o
    index[o.name] = o
  end
  for pos, e in ipairs(spec.options or {}) do
    local o = check_entry(who, e, pos)
    local c = index[o.name]
    if c and c.recipe then error(who .. ": option '" .. o.name .. "' is declared twice", 2) end
    if c then
      if c.kind ~= o.kind then
        error(string.format("%s: option '%s' is a common option of type %s; its default must be too",
                            who, o.name, c.kind), 2)
      end
      c.default, c.help, c.choices, c.recipe = o.default, o.help, o.choices, true
      if o.range or (c.range and recipe.out_of_range(c, o.default)) then c.range = o.range end
    else
      o.recipe = true
      list[#list + 1] = o
      index[o.name] = o
    end
  end
  spec._options, spec._index = list, index
  spec._help_cmd = "luagan run " .. spec.name .. " --help"
  return setmetatable(spec, Recipe)
end

function recipe.is_recipe(v) return getmetatable(v) == Recipe end

---------------------------------------------------------------------------
-- options

local function fmt_value(v)
  if type(v) == "string" then return v == "" and '""' or v end
  if math.type(v) == "float" then
    local s = string.format("%.6g", v)
    return s
  end
  return tostring(v)
end

local function cli_name(name) return (name:gsub("_", "-")) end

-- Levenshtein distance, for "did you mean" (the one luagan.util shares).
local distance = require("luagan.util").distance

function Options:unknown_option(name)
  local best, bd = nil, math.huge
  for _, o in ipairs(self._options) do
    local d = distance(name, o.name)
    if d < bd then best, bd = o.name, d end
  end
  local msg = string.format("%s: unknown option --%s", self.name, cli_name(name))
  if best and bd <= math.max(2, #name // 3) then
    msg = msg .. " (did you mean --" .. cli_name(best) .. "?)"
  end
  return msg .. "; `" .. self._help_cmd .. "` lists the options"
end

local TRUE = {["true"] = true, ["1"] = true, yes = true, on = true}
local FALSE = {["false"] = true, ["0"] = true, no = true, off = true}

-- Convert v (a string from the command line, or a Lua value) to option o's type.
function Options:convert(o, v)
  local function bad(why)
    recipe.fail(string.format("%s: option --%s %s, got %s", self.name, cli_name(o.name), why,
                              type(v) == "string" and string.format("%q", v) or tostring(v)))
  end
  local out
  if o.kind == "integer" then
    local n = tonumber(v)
    out = n and math.tointeger(n)
    if out == nil then bad("takes an integer") end
  elseif o.kind == "float" then
    out = tonumber(v)
    if out == nil then bad("takes a number") end
    out = out + 0.0
    if out ~= out or out == math.huge or out == -math.huge then bad("takes a finite number") end
  elseif o.kind == "boolean" then
    if type(v) == "boolean" then out = v
    elseif type(v) == "string" and TRUE[v:lower()] then out = true
    elseif type(v) == "string" and FALSE[v:lower()] then out = false
    else bad("takes true or false") end
  else
    if type(v) ~= "string" then
      if type(v) == "number" then v = tostring(v) else bad("takes a string") end
    end
    out = v
  end
  if o.choices then
    local ok = false
    for _, c in ipairs(o.choices) do if c == out then ok = true end end
    if not ok then
      local cs = {}
      for i, c in ipairs(o.choices) do cs[i] = fmt_value(c) end
      bad("must be one of " .. table.concat(cs, ", "))
    end
  end
  local why = (o.kind == "integer" or o.kind == "float") and recipe.out_of_range(o, out)
  if why then bad(why) end
  return out
end

-- The defaults as a table name -> value.
function Options:defaults()
  local t = {}
  for _, o in ipairs(self._options) do t[o.name] = o.default end
  return t
end

-- A recipe's out defaults to out/NAME.
function Recipe:defaults()
  local t = Options.defaults(self)
  if t.out == "" then t.out = "out/" .. self.name end
  return t
end

-- parse(args) -> opt, given   (opt: every option; given: the names set by args)
-- args: a list of strings ("--lr", "1e-4", "--flag", "--key=value", "--no-flag")
-- or a table name -> value (Lua callers); mixed is fine. Returns nil, "help"
-- for --help / -h (or help first). Errors name the option and what was wrong.
-- Arguments that are no option go to the list opt[self._args] when the set
-- takes them (at most self._max_args), else they are an error.
function Options:parse(args)
  args = args or {}
  if type(args) ~= "table" then error(self.name .. ": options must be a table, got " .. type(args), 2) end
  local opt, given = self:defaults(), {}
  if self._args then opt[self._args] = {} end
  local function set(name, v)
    local key = name:gsub("-", "_")
    local o = self._index[key]
    if not o then recipe.fail(self:unknown_option(key)) end
    opt[key] = self:convert(o, v)
    given[key] = true
  end
  -- named fields first (Lua callers), then the list (command line) on top
  local named = {}
  for k in pairs(args) do
    if type(k) == "string" then named[#named + 1] = k
    elseif math.type(k) ~= "integer" or k < 1 or k > #args then
      error(self.name .. ": bad option key " .. tostring(k), 0)
    end
  end
  table.sort(named)
  for _, k in ipairs(named) do set(k, args[k]) end
  local i, n = 1, #args
  while i <= n do
    local a = args[i]
    if type(a) ~= "string" then error(self.name .. ": argument " .. i .. " is not a string", 0) end
    if a == "--help" or a == "-h" or a == "help" and i == 1 then return nil, "help" end
    local body = a:match("^%-%-(.+)$")
    if not body then
      local list = self._args and opt[self._args]
      if not list or #list >= (self._max_args or math.huge) then
        recipe.fail(string.format("%s: unexpected argument %q (options look like --name value; " ..
                                  "`%s` lists them)", self.name, a, self._help_cmd))
      end
      list[#list + 1] = a
      i = i + 1
      goto continue
    end
    local name, value = body:match("^([^=]+)=(.*)$")
    name = name or body
    local key = name:gsub("-", "_")
    local o = self._index[key]
    if not o and key:match("^no_") and self._index[key:sub(4)]
       and self._index[key:sub(4)].kind == "boolean" and value == nil then
      set(key:sub(4), false)
    elseif not o then
      recipe.fail(self:unknown_option(key))
    elseif value ~= nil then
      set(key, value)
    elseif o.kind == "boolean" then
      local nxt = args[i + 1]
      if type(nxt) == "string" and (TRUE[nxt:lower()] or FALSE[nxt:lower()]) then
        set(key, nxt)
        i = i + 1
      else
        set(key, true)
      end
    else
      local nxt = args[i + 1]
      if nxt == nil or (type(nxt) == "string" and nxt:match("^%-%-%a")) then
        recipe.fail(string.format("%s: option --%s needs a value (%s%s)", self.name, cli_name(key),
                                  o.kind, o.default == nil and "" or ", default " .. fmt_value(o.default)))
      end
      set(key, nxt)
      i = i + 1
    end
    i = i + 1
    ::continue::
  end
  return opt, given
end

function Recipe:parse(args)
  local opt, given = Options.parse(self, args)
  if opt and opt.out == "" then opt.out = "out/" .. self.name end
  return opt, given
end

-- recipe.options{name = "sample", options = {entries}, args = "paths",
-- max_args = 1} -> an option set for a command's own options (entries as a
-- recipe's; {name, nil, help, type = "integer"} for one the command defaults
-- itself). set:parse(args) as a recipe's; the arguments that are no option
-- go to opt[args] (a list; none allowed without `args`).
function recipe.options(spec)
  local who = type(spec) == "table" and spec.name
  if type(who) ~= "string" then error("recipe.options: expected {name = ..., options = {...}}", 2) end
  local list, index = {}, {}
  for pos, e in ipairs(spec.options or {}) do
    local o = check_entry(who, e, pos)
    if index[o.name] then error(who .. ": option '" .. o.name .. "' is declared twice", 2) end
    list[#list + 1] = o
    index[o.name] = o
  end
  return setmetatable({name = who, _options = list, _index = index, _args = spec.args,
                       _max_args = spec.max_args, _help_cmd = "luagan " .. who .. " --help"}, Options)
end

-- The --help text: the recipe's line, its options, then the common ones.
function Recipe:help()
  local lines = {string.format("luagan run %s [--option value ...]", self.name), "",
                 self.name .. ": " .. self.about, ""}
  local function section(title, pick)
    local rows, w = {}, 0
    for _, o in ipairs(self._options) do
      if pick(o) then
        local left = "--" .. cli_name(o.name) .. " " .. fmt_value(o.default)
        rows[#rows + 1] = {left, o}
        w = math.max(w, #left)
      end
    end
    if #rows == 0 then return end
    lines[#lines + 1] = title
    for _, r in ipairs(rows) do
      local o = r[2]
      local help = o.help
      if o.choices then
        local cs = {}
        for j, c in ipairs(o.choices) do cs[j] = fmt_value(c) end
        help = help .. " (" .. table.concat(cs, "|") .. ")"
      end
      lines[#lines + 1] = string.format("  %-" .. w .. "s  %s", r[1], help)
    end
    lines[#lines + 1] = ""
  end
  section("options:", function(o) return o.recipe end)
  section("training loop:", function(o) return not o.recipe end)
  lines[#lines + 1] = "Values take the type of the default; --flag / --no-flag set booleans."
  return table.concat(lines, "\n")
end

-- The list of option entries (name, default, help, kind, choices, common, recipe).
function Recipe:option_list() return self._options end

---------------------------------------------------------------------------
-- finding recipes

local core = require "luagan.core"

local function is_path(s) return s:find("/", 1, true) or s:match("%.lua$") end
recipe.is_path = is_path

-- The luagan root (its scripts/ and models/): what the executable says in
-- luagan.config, else what the install wrote in site.lua beside this file
-- (read by its own path, never looked up on package.path), else nil.
function recipe.root()
  local config = package.loaded["luagan.config"]
  if type(config) == "table" and type(config.root) == "string" and config.root ~= "" then
    return config.root
  end
  local here = debug.getinfo(1, "S").source:match("^@(.*/)recipe%.lua$")
  local chunk = here and loadfile(here .. "site.lua", "t", {})
  local ok, site = pcall(chunk or error)
  if ok and type(site) == "table" and type(site.root) == "string" and site.root ~= "" then
    return site.root
  end
end

-- Trusted directories: root_sub under the luagan root (the executable's
-- luagan.config), and what from_template(d) makes of the directory d of every
-- absolute "d?.lua" template on package.path (an installed rock), nil to
-- skip it. Never a relative template: what the current directory holds is not
-- code luagan loads unless the user names its path.
function recipe.trusted_dirs(root_sub, from_template)
  local dirs, seen = {}, {}
  local function add(d)
    if d and not seen[d] then seen[d] = true; dirs[#dirs + 1] = d end
  end
  local root = recipe.root()
  if root then add(root .. "/" .. root_sub) end
  for t in package.path:gmatch("[^;]+") do
    local d = t:match("^(/.*/)%?%.lua$")
    if d then add(from_template(d)) end
  end
  return dirs
end

-- The recipe directories: models/ under the root, and every absolute
-- .../models/?.lua template.
function recipe.dirs()
  return recipe.trusted_dirs("models/", function(d) return d:match("/models/$") and d end)
end

-- find(name) -> path of recipe NAME (models/NAME.lua in a recipe directory),
-- or nil. Only a plain name is looked up (letters, digits, _).
function recipe.find(name)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then return nil end
  for _, d in ipairs(recipe.dirs()) do
    if core.isfile(d .. name .. ".lua") then return d .. name .. ".lua" end
  end
end

-- Compile a recipe file the user named (or a bundled one): a syntax error is
-- the user's to fix, so it is a usage error (one line), not a traceback.
function recipe.loadfile(path, who)
  if core.isdir(path) then recipe.fail((who or "recipe") .. ": " .. path .. " is a directory, not a recipe file") end
  local chunk, err = loadfile(path)
  if not chunk then
    recipe.fail(string.format("%s: cannot load %s: %s", who or "recipe", path,
                              (tostring(err):gsub("\n.*", ""))))
  end
  return chunk
end

-- resolve(name_or_path [, who]) -> the path of the recipe file it names: a
-- path (with a slash or ending in .lua) as it is, a name looked up in
-- recipe.dirs() (models/NAME.lua; never ./NAME.lua). What names no recipe
-- is a usage error, prefixed "who: ", listing the bundled recipes.
function recipe.resolve(what, who)
  if type(what) ~= "string" or what == "" then
    error("recipe.resolve: expected a recipe name or a path, got " .. tostring(what), 2)
  end
  local pre = who and (who .. ": ") or ""
  if is_path(what) then
    if not core.isfile(what) and not core.isdir(what) then recipe.fail(pre .. "no recipe file " .. what) end
    return what
  end
  if not what:match("^[%w_]+$") then
    recipe.fail(pre .. "bad recipe name '" .. what .. "' (a name is letters, digits and _; a file needs a path)")
  end
  local path = recipe.find(what)
  if path then return path end
  local names = {}
  for n in pairs(recipe.list()) do names[#names + 1] = n end
  table.sort(names)
  local hint = core.isfile(what .. ".lua")
               and string.format("; for the file in this directory: luagan run ./%s.lua", what) or ""
  recipe.fail(string.format("%sno recipe named '%s' (recipes: %s)%s", pre, what,
                            #names > 0 and table.concat(names, ", ")
                            or "none found in " .. table.concat(recipe.dirs(), ", "), hint))
end

-- load(name_or_path) -> recipe, path. A name is looked up in recipe.dirs()
-- (models/NAME.lua); a path (with a slash or ending in .lua) is loaded as a
-- file (recipe.resolve). Only call it with what the user typed or wrote in
-- code: a name read from a data file goes through recipe.find, never a path.
function recipe.load(what)
  if type(what) ~= "string" or what == "" then
    error("recipe.load: expected a recipe name or a path, got " .. tostring(what), 2)
  end
  local path = recipe.resolve(what)
  local r = recipe.loadfile(path)(what)
  if not recipe.is_recipe(r) then
    recipe.fail(string.format("%s does not return a recipe (expected `return require(\"luagan.recipe\"){...}`," ..
                              " got %s)", path, type(r)))
  end
  r._path = path
  return r, path
end

-- The bundled recipes: {name = path} for every models/*.lua in recipe.dirs().
function recipe.list()
  local out = {}
  for _, d in ipairs(recipe.dirs()) do
    local ok, names = pcall(core.listdir, d)
    for _, f in ipairs(ok and names or {}) do
      local n = f:match("^([%w_]+)%.lua$")
      if n and not out[n] then out[n] = d .. f end
    end
  end
  return out
end

return setmetatable(recipe, {__call = function(_, spec) return new(spec) end})
