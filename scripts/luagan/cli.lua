-- luagan.cli: the commands of the `luagan` executable (`luagan run NAME ...`).
-- The executable calls cli.main{"run", "NAME", ...} when its first argument
-- is a word rather than a script. A command is a function of the remaining
-- arguments (a list of strings) returning an exit status (nil = 0).
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

-- run NAME args...: load the recipe models/NAME.lua (a module on package.path)
-- and call its main(args) when it returns a table with one.
cli.commands.run = {
  help = "run the recipe models/NAME.lua: luagan run NAME [args]",
  fn = function(args)
    local name = args[1]
    if not name then error("run: which recipe? usage: luagan run NAME [args]", 0) end
    local path = package.searchpath(name, package.path)
    if not path then error("run: no recipe named '" .. name .. "' on package.path", 0) end
    local chunk = assert(loadfile(path))
    local rest = table.move(args, 2, #args, 1, {})
    local m = chunk(table.unpack(rest))
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
    error(string.format("unknown command '%s' (commands: %s)", tostring(name),
                        table.concat(command_names(), ", ")), 0)
  end
  return cmd.fn(table.move(argv, 2, #argv, 1, {}))
end

return cli
