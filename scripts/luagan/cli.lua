-- luagan.cli: the commands of the `luagan` executable (`luagan run NAME ...`,
-- `luagan sample CKPT`, `luagan help`; docs/training.md).
-- The executable calls cli.main{"run", "NAME", ...} when its first argument
-- is a word rather than a script. A command is a function of the remaining
-- arguments (a list of strings) returning an exit status (nil = 0), which
-- becomes the process's. Errors raised with require("luagan.recipe").fail
-- print without a traceback (the user's mistake, not a bug).
-- Add one with cli.commands.NAME = {help = "one line", fn = function(args) end}.
local cli = {}

cli.commands = {}

local function command_names()
  local names = {}
  for k in pairs(cli.commands) do names[#names + 1] = k end
  table.sort(names)
  return names
end

cli.commands.help = {
  help = "list the commands",
  fn = function()
    print("usage: luagan script.lua [args]   |   luagan COMMAND [args]")
    print("commands:")
    for _, k in ipairs(command_names()) do
      print(string.format("  %-8s %s", k, cli.commands[k].help or ""))
    end
  end,
}

-- run NAME args...: a recipe (models/NAME.lua, or a path to a .lua file)
-- runs in luagan.train with its --options; a file that returns a table
-- with main(args) gets main(rest); a plain script just runs with rest as `...`.
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
  help = "train a recipe: luagan run NAME [--option value ...] (NAME --help lists its options)",
  fn = function(args)
    local name = args[1]
    if not name or name == "--help" or name == "-h" then
      local lines = list_recipes()
      local text = "usage: luagan run NAME [--option value ...]   (luagan run NAME --help)\n" ..
                   "recipes:\n" .. (#lines > 0 and table.concat(lines, "\n") or "  (none found)")
      if not name then require("luagan.recipe").fail("run: which recipe? " .. text) end
      print(text)
      return 0
    end
    local path
    if name:find("/", 1, true) or name:match("%.lua$") then
      path = name
      local f = io.open(path, "r")
      if not f then require("luagan.recipe").fail("run: no recipe file " .. path) end
      f:close()
    else
      path = package.searchpath(name, package.path)
      if not path then
        local lines = list_recipes()
        require("luagan.recipe").fail("run: no recipe named '" .. name .. "' (models/" .. name ..
                                      ".lua); recipes:\n" .. table.concat(lines, "\n"))
      end
    end
    local chunk, err = loadfile(path)
    if not chunk then error("run: cannot load " .. path .. ": " .. tostring(err), 0) end
    local rest = table.move(args, 2, #args, 1, {})
    local m = chunk(table.unpack(rest))
    local recipe = require "luagan.recipe"
    if recipe.is_recipe(m) then
      m._path, m._cli = path, name
      return require("luagan.train").main(m, rest)
    end
    if type(m) == "table" and type(m.main) == "function" then return m.main(rest) end
  end,
}

-- A command may also live in its own module, scripts/luagan/commands/NAME.lua,
-- returning {help = "one line", fn = function(args) end}; it loads on first use.
local function find_command(name)
  if cli.commands[name] then return cli.commands[name] end
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then return nil end
  local mod = "luagan.commands." .. name
  if not package.searchpath(mod, package.path) then return nil end
  cli.commands[name] = require(mod)
  return cli.commands[name]
end

-- every command module on package.path, so `luagan help` lists them
local function load_all_commands()
  for dir in package.path:gmatch("[^;]+") do
    local d = dir:match("^(.*)%?%.lua$")
    if d then
      local p = io.popen('ls "' .. d .. 'luagan/commands" 2>/dev/null')
      if p then
        for f in p:lines() do
          local n = f:match("^([%a_][%w_]*)%.lua$")
          if n then find_command(n) end
        end
        p:close()
      end
    end
  end
end

function cli.main(argv)
  local name = argv[1]
  if name == "help" then load_all_commands() end
  local cmd = find_command(name)
  if not cmd then load_all_commands() end
  if not cmd then
    require("luagan.recipe").fail(string.format("unknown command '%s' (commands: %s)",
                                  tostring(name), table.concat(command_names(), ", ")))
  end
  return cmd.fn(table.move(argv, 2, #argv, 1, {}))
end

return cli
