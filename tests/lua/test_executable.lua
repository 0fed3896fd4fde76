-- The `luagan` executable: scripts with arg, -e, stdin, -v, the prompt,
-- command dispatch to luagan.cli, errors with a traceback and exit status 1.
-- It runs the same binary that runs this test (arg[-1]).
local T = ...

local exe = arg and arg[-1]
if exe and not exe:find("/") then exe = nil end          -- found on PATH: use as is below
if exe and exe:sub(1, 1) ~= "/" then exe = (os.getenv("PWD") or ".") .. "/" .. exe end
exe = exe or (arg and arg[-1])
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, how, code = p:close()
  return out, ok and 0 or code, how
end

local function tmpfile(text)
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(text)
  f:close()
  return name
end

T.test("the binary under test is known", function()
  T.ok(exe and exe ~= "", "arg[-1] names the interpreter")
end)

T.test("script with arguments: arg table and ...", function()
  local s = tmpfile([[
local n = select('#', ...)
print(arg[0] ~= nil, arg[1], arg[2], n, (...))
print(arg[-1], arg[-2])
]])
  local out, code = sh(q(exe) .. " -e 'x = 1' " .. q(s) .. " a b")
  os.remove(s)
  T.eq(code, 0, out)
  T.ok(out:find("true\ta\tb\t2\ta\n", 1, true), out)
  T.ok(out:find("x = 1\t-e\n", 1, true), out)
end)

T.test("-e runs code with luagan on package.path; -v prints the version", function()
  local out, code = sh(q(exe) .. [[ -e 'local lg = require "luagan"; print((lg.ones(2) + 1):sum():item())']])
  T.eq(code, 0, out)
  T.eq(out, "4.0\n")
  out = sh(q(exe) .. " -v")
  T.ok(out:find("^luagan %d+%.%d+%.%d+ %(Lua 5%.4"), out)
  out = sh("cd / && " .. q(exe) .. [[ -e 'print(require("luagan.core").version)']])
  T.eq(out, require("luagan").version .. "\n")
end)

T.test("stdin with - and without arguments when not a terminal", function()
  local out, code = sh("echo 'print(6 * 7)' | " .. q(exe) .. " -")
  T.eq(code, 0, out)
  T.eq(out, "42\n")
  out = sh("echo 'print(select(\"#\", ...))' | " .. q(exe))
  T.eq(out, "0\n")
end)

T.test("interactive prompt prints expression values and continues lines", function()
  local input = "1 + 1\\ny = 5\\ny * 2\\nfor i = 1, 2 do\\nprint('i', i)\\nend\\nerror('oops')\\n=y\\n"
  local out = sh("printf \"" .. input .. "\" | " .. q(exe) .. " -i")
  T.ok(out:find("> 2\n", 1, true), out)
  T.ok(out:find("> 10\n", 1, true), out)
  T.ok(out:find(">> >> i\t1\ni\t2\n", 1, true), out)
  T.ok(out:find("oops", 1, true), out)
  T.ok(out:find("> 5\n", 1, true), out)
end)

T.test("errors print a traceback and exit with status 1", function()
  local out, code = sh(q(exe) .. " -e 'local function f() error(\"boom\") end f()'")
  T.eq(code, 1)
  T.ok(out:find("boom", 1, true), out)
  T.ok(out:find("stack traceback", 1, true), out)
  local s = tmpfile("local lg = require 'luagan'\nlocal x = lg.ones(2) + lg.ones(3)\n")
  out, code = sh(q(exe) .. " " .. q(s))
  os.remove(s)
  T.eq(code, 1)
  T.ok(out:find("add: shapes 2 and 3 cannot broadcast", 1, true), out)
  out, code = sh(q(exe) .. " /nonexistent/script.lua")
  T.eq(code, 1)
  T.ok(out:find("cannot open", 1, true), out)
  out, code = sh(q(exe) .. " -x")
  T.eq(code, 1)
  T.ok(out:find("unrecognized option '-x'", 1, true), out)
end)

T.test("commands dispatch to luagan.cli", function()
  local out, code = sh(q(exe) .. " nosuchcommand")
  T.eq(code, 1)
  T.ok(out:find("unknown command 'nosuchcommand' (commands: ", 1, true) and out:find("help, run", 1, true), out)
  out, code = sh(q(exe) .. " help")
  T.eq(code, 0, out)
  T.ok(out:find("run", 1, true), out)
  out, code = sh(q(exe) .. " run")
  T.eq(code, 1)
  T.ok(out:find("which recipe", 1, true), out)
end)

T.test("LUAGAN_ROOT chooses where scripts come from", function()
  local out, code = sh("LUAGAN_ROOT=/nonexistent " .. q(exe) .. " -e 'require \"luagan\"'")
  T.eq(code, 1)
  T.ok(out:find("/nonexistent/scripts/luagan/init.lua", 1, true), out)
  out = sh("LUAGAN_ROOT=/nonexistent " .. q(exe) .. " -e 'print(require(\"luagan.core\").version ~= nil)'")
  T.eq(out, "true\n")
end)

T.test("commands win over files named like them; run NAME never loads ./NAME.lua", function()
  local d = os.tmpname()
  os.remove(d)
  require("luagan.core").mkdir_p(d .. "/eval")          -- a directory named like a command
  local marker = d .. "/marker"
  local code_text = "io.open(" .. string.format("%q", marker) .. ", 'w'):close()\n"
  for _, f in ipairs{"run", "sample", "help", "gan.lua", "mine.lua"} do
    local h = assert(io.open(d .. "/" .. f, "w"))
    h:write(code_text)
    h:close()
  end
  local function ran()
    local h = io.open(marker)
    if h then h:close() os.remove(marker) return true end
    return false
  end
  local cd = "cd " .. q(d) .. " && "
  local out, code = sh(cd .. q(exe) .. " run --help")
  T.eq(code, 0, out)
  T.ok(out:find("usage: luagan run NAME", 1, true) and not ran(), out)
  out, code = sh(cd .. q(exe) .. " sample")
  T.eq(code, 1)
  T.ok(out:find("sample: which checkpoint?", 1, true) and not ran(), out)
  out, code = sh(cd .. q(exe) .. " eval --help")
  T.eq(code, 0, out)
  T.ok(out:find("usage: luagan eval PATH", 1, true) and not ran(), out)
  out, code = sh(cd .. q(exe) .. " help")
  T.eq(code, 0, out)
  T.ok(out:find("commands:", 1, true) and not ran(), out)
  -- a bare recipe name is a bundled recipe, not the file here
  out, code = sh(cd .. q(exe) .. " run gan --help")
  T.eq(code, 0, out)
  T.ok(out:find("--loss ns", 1, true) and not ran(), out)
  out, code = sh(cd .. q(exe) .. " run mine")
  T.eq(code, 1)
  T.ok(out:find("no recipe named 'mine'", 1, true) and out:find("luagan run ./mine.lua", 1, true), out)
  T.ok(not ran(), "./mine.lua ran")
  -- a word that is no command is not run as a file either; a path is
  out, code = sh(cd .. q(exe) .. " frob")
  T.eq(code, 1)
  T.ok(out:find("unknown command 'frob'", 1, true) and not ran(), out)
  out, code = sh(cd .. q(exe) .. " ./run")
  T.eq(code, 0, out)
  T.ok(ran(), "luagan ./run runs the file")
  os.execute("rm -rf " .. q(d))
end)
