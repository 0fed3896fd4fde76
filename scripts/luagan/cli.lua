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

function cli.main(argv)
  local name = argv[1]
  local cmd = cli.commands[name]
  if not cmd then
    error(string.format("unknown command '%s' (commands: %s)", tostring(name),
                        table.concat(command_names(), ", ")), 0)
  end
  return cmd.fn(table.move(argv, 2, #argv, 1, {}))
end

return cli
