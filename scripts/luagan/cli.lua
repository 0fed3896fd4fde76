-- luagan.cli: the commands of the `luagan` executable (`luagan run NAME ...`,
-- `luagan sample CKPT`, `luagan help`; docs/training.md).
-- The executable calls cli.main{"run", "NAME", ...} when its first argument
-- is a word rather than a script. A command is a function of the remaining
-- arguments (a list of strings) returning an exit status (nil = 0), which
-- becomes the process's. Errors raised with require("luagan.recipe").fail
-- print without a traceback (the user's mistake, not a bug).
-- Add one with cli.commands.NAME = {help = "one line", usage = "usage: luagan NAME ...",
-- fn = function(args) end}; `luagan help` prints help and usage's first line, and
-- `luagan help NAME` calls fn{"--help"}.
local cli = {}

cli.commands = {}

local function command_names()
  local names = {}
  for k in pairs(cli.commands) do names[#names + 1] = k end
  table.sort(names)
  return names
end

-- What `luagan help` (and `luagan --help`) prints before the commands.
local OVERVIEW = [[
usage: luagan                        an interactive prompt with lg = require "luagan" loaded
                                     (line editing, history in ~/.luagan_history, Tab completion)
       luagan script.lua [args]      run a Lua script (arg[1..] = args); `luagan -` reads stdin
       luagan -e 'code' [-i] [-v]    run code (-i: a prompt afterwards; -v: version, tracebacks)
       luagan COMMAND [args]         a command (below); a script is named by a path, not a word]]

-- The synopsis lines of a command's usage text (cmd.usage: "usage: luagan X
-- ...", maybe more "luagan X ..." lines, then its options), for the overview.
local function synopsis(cmd)
  local out = {}
  if type(cmd.usage) ~= "string" then return out end
  for line in cmd.usage:gmatch("[^\n]+") do
    local l = line:gsub("^usage:", ""):match("^%s*(luagan .*)$")
    if not l then break end
    out[#out + 1] = l
  end
  return out
end

cli.commands.help = {
  help = "describe the commands (luagan help COMMAND: one command's options)",
  usage = "usage: luagan help [COMMAND]",
  fn = function(args)
    local name = args and args[1]
    if name then                 -- luagan help run == luagan run --help
      local cmd = cli.find(name)
      if not cmd then cli.unknown(name) end
      if name == "help" then print(cmd.usage) return 0 end
      return cmd.fn{"--help"}
    end
    print(OVERVIEW)
    print("commands:")
    for _, k in ipairs(command_names()) do
      local cmd = cli.commands[k]
      print(string.format("  %-8s %s", k, cmd.help or ""))
      for _, u in ipairs(synopsis(cmd)) do print(string.format("  %-8s %s", "", u)) end
    end
    print("`luagan help COMMAND` or `luagan COMMAND --help` describes a command's options;\n" ..
          "`luagan run` lists the recipes. Documentation: docs/training.md, docs/eval.md.")
    return 0
  end,
}

-- run NAME args...: a recipe (models/NAME.lua, or a path to a .lua file)
-- runs in luagan.train with its --options; a file that returns a table
-- with main(args) gets main(rest); anything else is a usage error (a plain
-- script runs as `luagan FILE`).
local function list_recipes()
  local recipe = require "luagan.recipe"
  local names, paths = {}, recipe.list()
  for n in pairs(paths) do names[#names + 1] = n end
  table.sort(names)
  local lines = {}
  for _, n in ipairs(names) do
    local ok, r = pcall(recipe.load, paths[n])
    local about = ok and r.about
    if not about then            -- a script rather than a recipe: its header line
      local f = io.open(paths[n], "r")
      local first = f and f:read("l") or ""
      if f then f:close() end
      about = first:match("^%-%-%s*[%w_]+%.lua:%s*(.*)$") or first:match("^%-%-%s*(.*)$") or "(a script)"
    end
    lines[#lines + 1] = string.format("  %-12s %s", n, about)
  end
  return lines
end

cli.commands.run = {
  help = "train a recipe (no NAME: list the recipes; NAME --help: its options)",
  usage = "usage: luagan run NAME [--option value ...]   (luagan run NAME --help)",
  fn = function(args)
    local recipe = require "luagan.recipe"
    local name = args[1]
    if not name or name == "--help" or name == "-h" then   -- a listing, not a mistake
      local lines = list_recipes()
      print("usage: luagan run NAME [--option value ...]   (luagan run NAME --help)\n" ..
            "recipes:\n" .. (#lines > 0 and table.concat(lines, "\n") or "  (none found)"))
      return 0
    end
    -- a path (a slash, or .lua at the end) is the user's own file; a bare
    -- name is only ever a bundled recipe, never ./NAME.lua
    local path = recipe.resolve(name, "run")
    local chunk = recipe.loadfile(path, "run")
    local rest = table.move(args, 2, #args, 1, {})
    local m = chunk(table.unpack(rest))
    if recipe.is_recipe(m) then
      m._path, m._cli = path, name
      return require("luagan.train").main(m, rest)
    end
    if type(m) == "table" and type(m.main) == "function" then return m.main(rest) end
    recipe.fail(string.format("run: %s returned %s, not a recipe (`return require(\"luagan.recipe\"){...}`)" ..
                              " nor a table with main(args); a plain script runs as `luagan %s`",
                              path, type(m), path))
  end,
}

-- A command may also live in its own module, scripts/luagan/commands/NAME.lua,
-- returning {help = "one line", usage = "...", fn = function(args) end}; it loads
-- on first use.
-- Command modules come from the luagan root and absolute package.path
-- entries only: a word typed after `luagan` never loads code from the
-- current directory.
local function command_dirs()
  return require("luagan.recipe").trusted_dirs("scripts/luagan/commands/",
                                              function(d) return d .. "luagan/commands/" end)
end

local function find_command(name)
  if cli.commands[name] then return cli.commands[name] end
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then return nil end
  local core = require "luagan.core"
  for _, d in ipairs(command_dirs()) do
    local path = d .. name .. ".lua"
    if core.isfile(path) then
      local mod = "luagan.commands." .. name
      if not package.loaded[mod] then package.loaded[mod] = dofile(path) end
      cli.commands[name] = package.loaded[mod]
      return cli.commands[name]
    end
  end
  return nil
end

-- every command module in those directories, so `luagan help` lists them
local function load_all_commands()
  local core = require "luagan.core"
  for _, d in ipairs(command_dirs()) do
    local ok, files = pcall(core.listdir, d)
    for _, f in ipairs(ok and files or {}) do
      local n = f:match("^([%a_][%w_]*)%.lua$")
      if n then find_command(n) end
    end
  end
end

-- A command by name (loading its module on first use), or nil.
function cli.find(name)
  local cmd = find_command(name)
  if not cmd then load_all_commands() end
  return cli.commands[name]
end

-- The usage error for a word that is no command.
function cli.unknown(name)
  local hint = ""
  if type(name) == "string" and require("luagan.core").isfile(name) then
    hint = string.format("; to run the file %s, give its path: luagan ./%s", name, name)
  end
  require("luagan.recipe").fail(string.format("unknown command '%s' (commands: %s)%s",
                                tostring(name), table.concat(command_names(), ", "), hint))
end

function cli.main(argv)
  local name = argv[1]
  if name == "help" then load_all_commands() end
  local cmd = cli.find(name)
  if not cmd then cli.unknown(name) end
  return cmd.fn(table.move(argv, 2, #argv, 1, {}))
end

return cli
