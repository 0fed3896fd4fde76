-- The command line: `luagan run` (listing, --help, errors without a
-- traceback, recipes by path, plain progress lines without a terminal,
-- scripts with main), `luagan help`. Runs the binary that runs this test.
local T = ...

local exe = arg and arg[-1]
if exe and exe:find("/") and exe:sub(1, 1) ~= "/" then exe = (os.getenv("PWD") or ".") .. "/" .. exe end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local TMP = os.tmpname()
os.remove(TMP)
TMP = TMP .. "_cli"
assert(os.execute("mkdir -p " .. q(TMP)))
local function write(name, text)
  local f = assert(io.open(TMP .. "/" .. name, "w"))
  f:write(text)
  f:close()
  return TMP .. "/" .. name
end

local COUNTER = write("counter.lua", [[
-- counter.lua: the smallest recipe: a number that counts steps.
local lg = require "luagan"
return require("luagan.recipe"){
  name = "counter", about = "counts (a recipe for the CLI tests)",
  options = {{"steps", 5, "steps"}, {"boom", 0, "raise an error at this step"}},
  setup = function(opt) return {opt = opt, x = lg.zeros(1)} end,
  step = function(s, i)
    if i == s.opt.boom then local t = nil; return t.field end
    s.x:add_(1)
    return {value = s.x:sum()}
  end,
  sample = function(s, path) lg.image.save_grid(path, lg.zeros(1, 1, 4, 4)) end,
}
]])

T.test("luagan run lists the recipes; help lists the commands", function()
  local out, code = sh(q(exe) .. " run --help")
  T.eq(code, 0, out)
  T.ok(out:find("usage: luagan run NAME", 1, true), out)
  T.ok(out:find("\n  gan +MLP GAN"), out)
  T.ok(out:find("\n  dcgan +DCGAN"), out)
  out, code = sh(q(exe) .. " run")
  T.eq(code, 1)
  T.ok(out:find("which recipe?", 1, true) and out:find("dcgan", 1, true), out)
  out, code = sh(q(exe) .. " help")
  T.eq(code, 0, out)
  T.ok(out:find("\n  run ", 1, true) and out:find("\n  sample ", 1, true), out)
end)

T.test("luagan run NAME --help shows the options and defaults", function()
  local out, code = sh(q(exe) .. " run gan --help")
  T.eq(code, 0, out)
  T.ok(out:find("%-%-loss ns%s+generator loss.*%(ns|mm%)"), out)
  T.ok(out:find("%-%-k 1%s+discriminator updates per generator update"), out)
  T.ok(out:find("%-%-seed 1", 1), out)
  out, code = sh(q(exe) .. " run dcgan --help")
  T.eq(code, 0, out)
  T.ok(out:find("%-%-lr 0%.0002"), out)
  T.ok(out:find("%-%-beta1 0%.5"), out)
end)

T.test("usage errors: a clear message, exit 1, no traceback", function()
  local out, code = sh(q(exe) .. " run dcgan --bogus 1")
  T.eq(code, 1)
  T.ok(out:find("dcgan: unknown option --bogus", 1, true), out)
  T.ok(not out:find("traceback", 1, true), out)
  out, code = sh(q(exe) .. " run gan --loss xx")
  T.eq(code, 1)
  T.ok(out:find('option --loss must be one of ns, mm, got "xx"', 1, true), out)
  out, code = sh(q(exe) .. " run no_such_recipe")
  T.eq(code, 1)
  T.ok(out:find("no recipe named 'no_such_recipe'", 1, true) and not out:find("traceback", 1, true), out)
  out, code = sh(q(exe) .. " run " .. q(TMP .. "/missing.lua"))
  T.eq(code, 1)
  T.ok(out:find("no recipe file", 1, true), out)
end)

T.test("a recipe by path runs; plain progress lines off a terminal; files written", function()
  local d = TMP .. "/c1"
  local out, code = sh(q(exe) .. " run " .. q(COUNTER) .. " --out " .. q(d) .. " --steps 4 --print-every 2")
  T.eq(code, 0, out)
  T.ok(out:find("[counter] step 2/4", 1, true), out)
  T.ok(out:find("[counter] step 4/4", 1, true), out)
  T.ok(out:find("%[counter%] step 2/4 | [%d.]+ it/s | ETA 0s | value 1.5\n"), out)   -- mean of 1, 2
  T.ok(out:find("%[counter%] step 4/4 | [%d.]+ it/s | ETA 0s | value 3.5\n"), out)   -- mean of 3, 4
  T.ok(not out:find("\r", 1, true), "no carriage returns in plain mode")
  T.ok(out:find("counter: 4 steps in", 1, true), out)
  T.ok(io.open(d .. "/checkpoint.safetensors"), "checkpoint")
  -- --quiet prints nothing
  out, code = sh(q(exe) .. " run " .. q(COUNTER) .. " --out " .. q(d) .. " --quiet")
  T.eq(code, 0, out)
  T.eq(out, "")
end)

T.test("an error inside a step is a bug: traceback and exit 1", function()
  local out, code = sh(q(exe) .. " run " .. q(COUNTER) .. " --out " .. q(TMP .. "/c2") .. " --boom 2")
  T.eq(code, 1)
  T.ok(out:find("attempt to index a nil value", 1, true), out)
  T.ok(out:find("stack traceback", 1, true), out)
end)

T.test("luagan run FILE with a table that has main(args), as before recipes", function()
  local p = write("script.lua", "return {main = function(args) print('main', #args, args[1]) return 3 end}\n")
  local out, code = sh(q(exe) .. " run " .. q(p) .. " x y")
  T.eq(code, 3, out)
  T.eq(out, "main\t2\tx\n")
end)

T.test("cleanup", function()
  os.execute("rm -rf " .. q(TMP))
end)
