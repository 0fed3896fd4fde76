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
  out, code = sh(q(exe) .. " run")                 -- issue 14: a listing, not an error
  T.eq(code, 0, out)
  T.ok(out:find("recipes:\n", 1, true) and out:find("\n  dcgan ", 1, true), out)
end)

-- Issue 14: `luagan --help` and `luagan help` describe every command.
T.test("--help, -h and help describe every command with its usage", function()
  local help = sh(q(exe) .. " help")
  for _, flag in ipairs{"--help", "-h"} do
    local out, code = sh(q(exe) .. " " .. flag)
    T.eq(code, 0, out)
    T.eq(out, help)
  end
  T.ok(help:find("an interactive prompt", 1, true) and help:find("luagan script.lua", 1, true), help)
  for _, c in ipairs{"eval", "help", "run", "sample"} do
    T.ok(help:find("\n  " .. c .. " +%S"), "no line for " .. c .. ":\n" .. help)
    T.ok(help:find("\n +luagan " .. c .. " "), "no usage for " .. c .. ":\n" .. help)
  end
  local out, code = sh(q(exe) .. " help run")
  T.eq(code, 0, out)
  T.ok(out:find("recipes:", 1, true), out)
  out, code = sh(q(exe) .. " help eval")
  T.eq(code, 0, out)
  T.ok(out:find("--2d", 1, true), out)
  out, code = sh(q(exe) .. " help nosuch")
  T.eq(code, 1)
  T.ok(out:find("unknown command 'nosuch'", 1, true) and not out:find("traceback", 1, true), out)
end)

-- Issue 14: the prompt preloads lg and says so; piped input reads plain lines.
T.test("the prompt: banner, lg preloaded, results printed", function()
  local out = sh("printf 'x = lg.ones(2, 3)\\nx:numel()\\nlg.nn ~= nil\\n' | " .. q(exe) .. " -i")
  T.ok(out:find("^luagan %d+%.%d+%.%d+ %(Lua 5%.4"), out)
  T.ok(out:find('lg = require "luagan" is loaded', 1, true), out)
  T.ok(out:find("> 6\n", 1, true), out)
  T.ok(out:find("> true\n", 1, true), out)
  -- a script's own lg is kept
  local s = tmpfile("lg = 'mine'\n")
  out = sh("printf 'lg\\n' | " .. q(exe) .. " -i " .. q(s))
  os.remove(s)
  T.ok(out:find("> mine\n", 1, true), out)
end)

-- On a terminal (util-linux `script` gives one): Tab completion of lg. names
-- and of methods, and history kept across sessions in ~/.luagan_history.
T.test("the prompt on a terminal: Tab completion and history across sessions", function()
  if not sh("command -v script"):find("script", 1, true) then
    print("  skipped: no `script` (util-linux) to give the prompt a terminal")
    return
  end
  local home = os.tmpname()
  os.remove(home)
  require("luagan.core").mkdir_p(home)
  -- the keys arrive one batch at a time so readline sees each Tab on its own
  local function session(keys, env)
    local feed = {"sleep 0.5"}              -- let readline take the terminal first
    for _, k in ipairs(keys) do feed[#feed + 1] = "printf " .. q(k) .. "; sleep 0.3" end
    feed[#feed + 1] = "printf '\\004'"
    local out = sh("(" .. table.concat(feed, "; ") .. ") | env -u LUAGAN_HISTORY HOME=" .. q(home) ..
                   " " .. (env or "") .. " timeout 30 script -qfec " .. q("stty cols 80 rows 24; " .. q(exe)) .. " /dev/null")
    return (out:gsub("\27%[[%d?;]*%a", ""):gsub("\r", ""))   -- terminal controls, CRs
  end
  -- LUAGAN_HISTORY empty: no history file
  local out = session({"1 + 2\n"}, "LUAGAN_HISTORY=")
  T.ok(out:find("history: off", 1, true), out)
  T.ok(not io.open(home .. "/.luagan_history"), "history written with LUAGAN_HISTORY empty")
  out = session{"lg.zeros_l\t(lg.ones(4)):numel()\n", "t = lg.ones(5)\n", "t:num\t()\n"}
  T.ok(out:find("Tab completes", 1, true), out)
  T.ok(out:find("lg.zeros_like(lg.ones(4)):numel()", 1, true), out)       -- completed
  T.ok(out:find("\n4\n", 1, true), out)
  T.ok(out:find("> t:numel()\n5\n", 1, true), out)                        -- completed
  -- Tab on an ambiguous name completes the common part; Tab twice more lists the
  -- candidates by their last part
  out = session{"lg.zer\t", "\t", "\t", "\21\n"}
  T.ok(out:find("> lg.zero\n", 1, true) and out:find("\nzero_ +zeros +zeros_like"), out)
  local f = io.open(home .. "/.luagan_history")
  T.ok(f, "no ~/.luagan_history")
  local hist = f and f:read("a") or ""
  if f then f:close() end
  T.ok(hist:find("lg.zeros_like(lg.ones(4)):numel()", 1, true), hist)
  -- the next session recalls the last line with the up arrow
  out = session{"\27[A\n"}                  -- recalled: t is not defined in this session
  T.ok(out:find("> t:numel()\n", 1, true) and out:find("global 't'", 1, true), out)
  os.execute("rm -rf " .. q(home))
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
