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
  out, code = sh(q(exe) .. " run")                 -- no name: the same listing, status 0
  T.eq(code, 0, out)
  T.ok(out:find("usage: luagan run NAME", 1, true) and out:find("\n  dcgan +DCGAN"), out)
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

-- exit code, stdout + stderr, stderr alone
local function sh2(cmd)
  local err = TMP .. "/stderr.txt"
  local p = assert(io.popen(cmd .. " 2>" .. q(err)))
  local out = p:read("a")
  local ok, _, code = p:close()
  local f = io.open(err, "rb")
  local e = f and f:read("a") or ""
  if f then f:close() end
  return ok and 0 or code, out .. e, e
end

T.test("--resume writes where the command line says (or the default), never where the file says", function()
  local a = TMP .. "/resume_a"
  local out, code = sh(q(exe) .. " run " .. q(COUNTER) .. " --out " .. q(a) .. " --steps 2 --quiet")
  T.eq(code, 0, out)
  -- resumed from another directory without --out: the default out/counter there
  local cwd = TMP .. "/resume_cwd"
  require("luagan.core").mkdir_p(cwd)
  out, code = sh("cd " .. q(cwd) .. " && " .. q(exe) .. " run " .. q(COUNTER) .. " --resume " ..
                 q(a .. "/checkpoint.safetensors") .. " --steps 4 --quiet")
  T.eq(code, 0, out)
  local lgio = require "luagan.io"
  T.eq(lgio.load_checkpoint(cwd .. "/out/counter/checkpoint.safetensors").train.step, 4)
  T.eq(lgio.load_checkpoint(a .. "/checkpoint.safetensors").train.step, 2, "the file's out untouched")
  -- with --out: there
  local b = TMP .. "/resume_b"
  out, code = sh(q(exe) .. " run " .. q(COUNTER) .. " --resume " .. q(a .. "/checkpoint.safetensors") ..
                 " --steps 5 --quiet --out " .. q(b))
  T.eq(code, 0, out)
  T.eq(lgio.load_checkpoint(b .. "/checkpoint.safetensors").train.step, 5)
  T.eq(lgio.load_checkpoint(a .. "/checkpoint.safetensors").train.step, 2)
end)

-- A recipe with a data loader (10 examples) for the batch-size errors, and a
-- marker file written after step 3 for the signal tests.
local LOADER = write("loader.lua", [[
local lg = require "luagan"
return require("luagan.recipe"){
  name = "loader", about = "a data loader over 10 examples",
  options = {{"steps", 3, "steps"}, {"batch", 4, "batch size"}, {"nz", 2, "noise dimension"},
             {"lr", 1e-3, "learning rate"}, {"beta1", 0.5, "Adam beta1"}, {"limit", 0, "examples (0 = all)"},
             {"marker", "", "create this file after step 3"}},
  setup = function(opt)
    local x = lg.randn(10, opt.nz)
    return {x = lg.zeros(1), data = lg.train.stream(lg.data.DataLoader(x, {batch_size = opt.batch,
                                                                          drop_last = true})), opt = opt}
  end,
  step = function(s, i)
    s.data:next()
    s.x:add_(1)
    if i == 3 and s.opt.marker ~= "" then io.open(s.opt.marker, "w"):close() end
  end,
  sample = function(s, path, o) lg.image.save_grid(path, lg.zeros(1, 1, 4, 4)) return lg.zeros(o.n or 4, 2) end,
}
]])

T.test("user errors: one line naming the problem, exit status not 0, no traceback", function()
  local E = q(exe)
  local d = TMP .. "/usage"
  local core = require "luagan.core"
  core.mkdir_p(d .. "/dir.safetensors")
  local out, code = sh(E .. " run " .. q(LOADER) .. " --out " .. q(d .. "/run") .. " --quiet")
  T.eq(code, 0, out)
  local good = q(d .. "/run/checkpoint.safetensors")
  local f = assert(io.open(d .. "/garbage.safetensors", "wb"))
  for i = 1, 100 do f:write(string.char((i * 37) % 256)) end
  f:close()
  local full = assert(io.open(d .. "/run/checkpoint.safetensors", "rb")):read("a")
  f = assert(io.open(d .. "/truncated.safetensors", "wb"))
  f:write(full:sub(1, #full // 2))
  f:close()
  core.save_safetensors(d .. "/foreign.safetensors", {w = require("luagan").zeros(3)}, {})
  write("syntax.lua", "return require('luagan.recipe'){ name = = 1 }\n")
  write("noreturn.lua", "local x = 1\n")
  core.mkdir_p(d .. "/file")
  f = assert(io.open(d .. "/afile", "w")) f:close()
  local R = " run " .. q(LOADER) .. " --quiet --out " .. q(d .. "/o") .. " "
  local cases = {
    -- {command line, words the message must hold}
    {" sample " .. q(d .. "/garbage.safetensors"), "is not a readable checkpoint"},
    {" sample " .. q(d .. "/truncated.safetensors"), "is not a readable checkpoint"},
    {" sample " .. q(d .. "/foreign.safetensors"), "not a luagan training checkpoint"},
    {" sample " .. q(d .. "/dir.safetensors"), "is a directory"},
    {" sample " .. q(d .. "/missing.safetensors"), "no checkpoint file"},
    {" eval " .. q(d .. "/garbage.safetensors"), "is not a readable checkpoint"},
    {" eval " .. q(d .. "/truncated.safetensors"), "is not a readable checkpoint"},
    {" eval " .. q(d .. "/foreign.safetensors"), "not a luagan training checkpoint"},
    {" eval " .. q(d .. "/dir.safetensors"), "holds neither samples"},
    {R .. "--resume " .. q(d .. "/garbage.safetensors"), "is not a readable checkpoint"},
    {R .. "--resume " .. q(d .. "/truncated.safetensors"), "is not a readable checkpoint"},
    {R .. "--resume " .. q(d .. "/foreign.safetensors"), "not a luagan training checkpoint"},
    {R .. "--resume " .. q(d .. "/dir.safetensors"), "is a directory"},
    {R .. "--batch 0", "option --batch must be >= 1"},
    {R .. "--batch 64", "the data loader yields no batches (10 examples, batch size 64"},
    {R .. "--nz 0", "option --nz must be >= 1"},
    {R .. "--lr 0", "option --lr must be > 0"},
    {R .. "--lr 1e999", "option --lr takes a finite number"},
    {R .. "--beta1 7", "option --beta1 must be in [0, 1)"},
    {R .. "--threads 100000", "option --threads must be in [0, 4096]"},
    {R .. "--limit -5", "option --limit must be >= 0"},
    {R .. "--steps -1", "option --steps must be >= 0"},
    {" run " .. q(LOADER) .. " --quiet --out " .. q(d .. "/afile/x"), "cannot create the output directory"},
    {" run gan --batch 0", "gan: option --batch must be >= 1"},
    {" run gan --beta1 7", "gan: option --beta1 must be in [0, 1)"},
    {" sample " .. good .. " --recipe " .. q(LOADER) .. " --n 1e8", "sample: option --n must be in [1, 10000]"},
    {" sample " .. good .. " --recipe " .. q(LOADER) .. " --out /nonexistent/x.png", "no directory /nonexistent"},
    {" sample " .. good .. " --recipe " .. q(LOADER) .. " --out " .. q(d .. "/file"), "is a directory"},
    {" sample " .. good, "not a bundled recipe"},
    {" sample " .. good .. " --recipe gan", "was made by recipe 'loader', not 'gan'"},
    {" eval --threads 100000 x", "eval: option --threads must be in [1, 4096]"},
    {" run " .. q(TMP .. "/syntax.lua"), "cannot load"},
    {" run " .. q(TMP .. "/noreturn.lua"), "not a recipe"},
    {" run no_such_recipe", "no recipe named 'no_such_recipe'"},
    {" run ../x", "no recipe file ../x"},
    {" frob", "unknown command 'frob'"},
  }
  for _, c in ipairs(cases) do
    local rc, all, err = sh2(E .. c[1])
    T.ok(rc ~= 0, c[1] .. ": exit status 0: " .. all)
    local n = select(2, err:gsub("\n", ""))
    T.eq(n, 1, c[1] .. ": one line on stderr: " .. err)
    T.ok(not err:find("traceback", 1, true), c[1] .. ": " .. err)
    T.ok(err:find(c[2], 1, true), c[1] .. ": the message names the problem: " .. err)
  end
  -- -v shows where a usage error was raised
  local _, _, err = sh2(E .. " -v run gan --batch 0")
  T.ok(err:find("option --batch must be >= 1", 1, true) and err:find("stack traceback", 1, true), err)
end)

-- start a run in the background, wait for its marker, send sig; -> output with "rc=N"
local function signal_run(cmd, marker, sig)
  local script = string.format(
    "%s & pid=$!; n=0; while [ ! -f %s ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done; " ..
    "sleep 0.2; kill -%s $pid; wait $pid; echo \"rc=$?\"", cmd, q(marker), sig)
  return sh("timeout 120 sh -c " .. q(script))
end

T.test("SIGTERM stops a run like Ctrl-C: the step finishes, the checkpoint is saved, exit 143", function()
  local d = TMP .. "/term"
  local marker = d .. ".marker"
  local out = signal_run(q(exe) .. " run " .. q(LOADER) .. " --out " .. q(d) .. " --steps 100000000 " ..
                         "--batch 2 --threads 1 --sample-every 0 --ckpt-every 0 --log-every 1000 --marker " .. q(marker),
                         marker, "TERM")
  T.ok(out:find("rc=143", 1, true), out)
  T.ok(out:find("interrupted after step", 1, true), out)
  T.ok(out:find("--out " .. d, 1, true), "the resume hint names --out: " .. out)
  local ck = require("luagan.io").load_checkpoint(d .. "/checkpoint.safetensors")
  T.ok(ck.train.step >= 3 and ck.train.step < 100000000, "saved at step " .. tostring(ck.train.step))
  T.eq(ck.state.x:item(), ck.train.step + 0.0, "the last step finished before the save")
end)

T.test("a stock lua5.4 with luagan.core handles SIGTERM the same way", function()
  local lua = "/usr/bin/lua5.4"
  local lib = exe:match("^(.*)/[^/]*$") .. "/lib"
  local h = io.open(lib .. "/luagan/core.so", "rb")
  if not h or not io.open(lua, "rb") then return end     -- no stock interpreter or no core.so here
  h:close()
  -- a sanitizer build's core.so cannot load into an uninstrumented lua5.4
  local _, probe = sh(lua .. " -e " .. q(string.format("package.cpath = %q .. '/?.so;' .. package.cpath; " ..
                                                       "require 'luagan.core'", lib)))
  if probe ~= 0 then return end
  local root = package.searchpath("luagan", package.path):match("^(.*)/scripts/luagan/init%.lua$")
  local d = TMP .. "/term_stock"
  local marker = d .. ".marker"
  local driver = write("stock.lua", string.format([[
package.path = %q .. "/scripts/?.lua;" .. %q .. "/scripts/?/init.lua;" .. package.path
package.cpath = %q .. "/?.so;" .. package.cpath
local train = require "luagan.train"
local r = require("luagan.recipe").load(%q)
local _, info = train.run(r, {out = %q, steps = 100000000, batch = 2, threads = 1, sample_every = 0,
                              ckpt_every = 0, log_every = 1000, marker = %q, quiet = true})
os.exit(info.interrupted and 128 + info.signal or 0)
]], root, root, lib, LOADER, d, marker))
  local out = signal_run(lua .. " " .. q(driver), marker, "TERM")
  T.ok(out:find("rc=143", 1, true), out)
  -- (killed outright, the exit status would read 143 too: the checkpoint,
  -- written only at the end with --ckpt-every 0, is what shows the handler ran)
  local ck = require("luagan.io").load_checkpoint(d .. "/checkpoint.safetensors")
  T.ok(ck.train.step >= 3, "saved at step " .. tostring(ck.train.step))
  T.eq(ck.state.x:item(), ck.train.step + 0.0)
end)

T.test("cleanup", function()
  os.execute("rm -rf " .. q(TMP))
end)
