-- Data never runs code: a checkpoint that is also a Lua chunk and names
-- itself (or ./evil) as its recipe runs nothing under `luagan sample`,
-- `luagan eval` or `--resume`; the filesystem calls of luagan.core that
-- replace every shell-out (listdir, isdir, isfile, mkdir_p, read_head,
-- sha256_file), with names that would inject into a shell; and no
-- io.popen / os.execute anywhere in scripts/ or models/.
local T = ...
local lg = require "luagan"
local lgio = require "luagan.io"
local core = require "luagan.core"

local exe = arg and arg[-1]
if exe and exe:find("/") and exe:sub(1, 1) ~= "/" then exe = (os.getenv("PWD") or ".") .. "/" .. exe end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local TMP = os.tmpname()
os.remove(TMP)
TMP = TMP .. "_security"
core.mkdir_p(TMP)

local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
local function write(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
  return p
end

-- cmd (run by sh in dir) -> exit code, stdout + stderr, stderr
local function run_in(dir, cmd)
  local err = TMP .. "/stderr.txt"
  local p = assert(io.popen("cd " .. q(dir) .. " && " .. cmd .. " 2>" .. q(err)))
  local out = p:read("a")
  local ok, _, code = p:close()
  local e = read(err) or ""
  return ok and 0 or code, out .. e, e
end

-- A file that is a valid luagan training checkpoint AND a Lua chunk: its
-- 8-byte header length starts with '#' (0x23), so loadfile skips "line 1"
-- (the length and the JSON header, which ends in a newline) and runs the
-- tensor bytes, which are Lua code that writes `marker`.
local function craft(path, recipe_name, marker)
  local code = string.format("local f = io.open(%q, 'w') f:write('ran') f:close() return nil", marker)
  local nbytes = (#code + 3) // 4 * 4
  lgio.save_checkpoint(path, {
    state = {w = lg.zeros(nbytes // 4)},
    train = {recipe = recipe_name, recipe_path = path, step = 1, rng = lg.get_rng_state(),
             elapsed = 0.0, options = {out = TMP .. "/elsewhere"}},
  }, {metadata = {["luagan.format"] = "luagan-train-1"}})
  local b = read(path)
  local n = string.unpack("<I8", b)
  local head, data = b:sub(9, 8 + n):gsub("%s+$", ""), b:sub(9 + n)
  assert(#data == nbytes and not head:find("\n"))
  local len = #head + 1
  while len % 256 ~= 0x23 or (len >> 8) % 256 == 10 do len = len + 1 end
  head = head .. string.rep(" ", len - #head - 1) .. "\n"
  write(path, string.pack("<I8", #head) .. head .. code .. string.rep(" ", nbytes - #code))
end

local function lines(s)
  local n = 0
  for _ in s:gmatch("[^\n]*\n") do n = n + 1 end
  if s ~= "" and s:sub(-1) ~= "\n" then n = n + 1 end
  return n
end

T.test("the crafted file really is both a checkpoint and a Lua chunk", function()
  local d = TMP .. "/proof"
  core.mkdir_p(d)
  local marker = d .. "/marker"
  craft(d .. "/evil.safetensors", "evil", marker)
  T.eq(read(d .. "/evil.safetensors"):sub(1, 1), "#")
  local ck = lgio.load_checkpoint(d .. "/evil.safetensors")
  T.eq(ck.train.recipe, "evil")
  T.eq(ck.train.recipe_path, d .. "/evil.safetensors")
  local chunk = assert(loadfile(d .. "/evil.safetensors"))
  chunk()
  T.eq(read(marker), "ran", "loading it as Lua runs the code (so the tests below can fail)")
end)

T.test("sample, eval and --resume never run a checkpoint's code", function()
  if not exe then return end
  -- the file names itself by path, by ./evil, or by the name of evil.lua
  -- sitting in the current directory
  for _, name in ipairs{"evil", "./evil", "SELF"} do
    local d = TMP .. "/cwd_" .. name:gsub("%W", "_")
    core.mkdir_p(d)
    local marker = d .. "/marker"
    local ck = d .. "/ck.safetensors"
    craft(ck, name == "SELF" and ck or name, marker)
    write(d .. "/evil.lua", read(ck))
    local cases = {
      {"sample", q(exe) .. " sample ck.safetensors", "luagan sample ck.safetensors --recipe"},
      {"eval", q(exe) .. " eval ck.safetensors --n 10 --memo 0 --no-floor", "--recipe"},
      {"resume by name", q(exe) .. " run evil --resume ck.safetensors --steps 5", "no recipe named 'evil'"},
      {"resume, other recipe", q(exe) .. " run gan --resume ck.safetensors --steps 5",
       "the checkpoint was made by recipe"},
    }
    for _, c in ipairs(cases) do
      local code, all, err = run_in(d, c[2])
      local what = name .. ", " .. c[1] .. ": "
      T.ok(not read(marker), what .. "the checkpoint's code ran")
      T.ok(code ~= 0, what .. "exit status 0: " .. all)
      T.eq(lines(err), 1, what .. "one line on stderr: " .. err)
      T.ok(not err:find("traceback", 1, true), what .. err)
      T.ok(err:find(c[3], 1, true), what .. err)
    end
    T.ok(not core.isdir(TMP .. "/elsewhere"), "nothing written where the file said")
  end
end)

T.test("a user's own recipe file is named on the command line, never taken from the file", function()
  if not exe then return end
  local d = TMP .. "/own"
  core.mkdir_p(d)
  write(d .. "/mine.lua", [[
local lg = require "luagan"
return require("luagan.recipe"){
  name = "mine", about = "a user's recipe",
  options = {{"steps", 2, "steps"}},
  setup = function(opt) return {x = lg.zeros(1)} end,
  step = function(s) s.x:add_(1) end,
  sample = function(s, path) lg.image.save_grid(path, lg.zeros(1, 1, 4, 4)) return lg.zeros(1, 2) end,
}
]])
  local code, all = run_in(d, q(exe) .. " run ./mine.lua --out run1 --quiet")
  T.eq(code, 0, all)
  local ck = lgio.load_checkpoint(d .. "/run1/checkpoint.safetensors")
  T.eq(ck.train.recipe_path, "./mine.lua")              -- recorded, but never loaded from here
  local err
  code, all, err = run_in(d, q(exe) .. " sample run1/checkpoint.safetensors")
  T.ok(code ~= 0 and lines(err) == 1, all)
  T.ok(err:find("recipe 'mine', which is not a bundled recipe", 1, true), err)
  T.ok(err:find("luagan sample run1/checkpoint.safetensors --recipe path/to/recipe.lua", 1, true), err)
  code, all = run_in(d, q(exe) .. " sample run1/checkpoint.safetensors --recipe ./mine.lua --out s.png")
  T.eq(code, 0, all)
  T.ok(core.isfile(d .. "/s.png"), "the picture")
  -- resume names the file too
  code, all = run_in(d, q(exe) .. " run ./mine.lua --resume run1/checkpoint.safetensors --out run1 " ..
                        "--steps 4 --quiet")
  T.eq(code, 0, all)
  T.eq(lgio.load_checkpoint(d .. "/run1/checkpoint.safetensors").train.step, 4)
  -- the Lua API: train.load takes the recipe (or its path) from the caller
  local train = require "luagan.train"
  T.errors(function() train.load(d .. "/run1/checkpoint.safetensors") end, "not a bundled recipe")
  local _, r = train.load(d .. "/run1/checkpoint.safetensors", {recipe = d .. "/mine.lua"})
  T.eq(r.name, "mine")
end)

---------------------------------------------------------------------------
-- filesystem calls without a shell

T.test("listdir, isdir, isfile: sorted names, no . and .., errors name the path", function()
  local d = TMP .. "/ls"
  core.mkdir_p(d .. "/sub")
  for _, n in ipairs{"b.txt", "a.txt", "C.txt", ".hidden"} do write(d .. "/" .. n, "x") end
  T.eq(core.listdir(d), {".hidden", "C.txt", "a.txt", "b.txt", "sub"})
  T.eq(core.listdir(d .. "/sub"), {})
  T.ok(core.isdir(d) and not core.isfile(d))
  T.ok(core.isfile(d .. "/a.txt") and not core.isdir(d .. "/a.txt"))
  T.ok(not core.isfile(d .. "/nope") and not core.isdir(d .. "/nope"))
  T.errors(function() core.listdir(d .. "/nope") end, "listdir: " .. d .. "/nope: No such file or directory")
  T.errors(function() core.listdir(d .. "/a.txt") end, "listdir: " .. d .. "/a.txt: Not a directory")
end)

T.test("mkdir_p: parents, existing dirs, errors name the path and the reason", function()
  local d = TMP .. "/mk/a/b/c"
  T.eq(core.mkdir_p(d), d)
  T.ok(core.isdir(d))
  T.eq(core.mkdir_p(d), d)                  -- already there: fine
  T.eq(core.mkdir_p(TMP .. "/mk/a/"), TMP .. "/mk/a/")
  write(TMP .. "/mk/file", "x")
  T.errors(function() core.mkdir_p(TMP .. "/mk/file") end, "mkdir_p: cannot create " .. TMP .. "/mk/file: Not a directory")
  T.errors(function() core.mkdir_p(TMP .. "/mk/file/x/y") end,
           "mkdir_p: cannot create " .. TMP .. "/mk/file/x/y (at " .. TMP .. "/mk/file): Not a directory")
  T.errors(function() core.mkdir_p("") end, "empty path")
end)

T.test("read_head through gzip and plain; sha256_file", function()
  local d = TMP .. "/head"
  core.mkdir_p(d)
  lg.save_idx(d .. "/x.idx.gz", lg.zeros(2, 3), {dtype = "ubyte"})
  lg.save_idx(d .. "/x.idx", lg.zeros(2, 3))
  T.eq(core.read_head(d .. "/x.idx.gz", 4), "\0\0\8\2")
  T.eq(core.read_head(d .. "/x.idx", 4), "\0\0\13\2")
  T.eq(core.read_head(d .. "/x.idx", 0), "")
  T.errors(function() core.read_head(d .. "/nope", 4) end, "read_head: " .. d .. "/nope")
  write(d .. "/abc", "abc")
  T.eq(core.sha256_file(d .. "/abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  write(d .. "/empty", "")
  T.eq(core.sha256_file(d .. "/empty"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
  -- 1,000,000 x 'a' (FIPS 180-2 test vector; several blocks and buffer refills)
  write(d .. "/million", string.rep("a", 1000000))
  T.eq(core.sha256_file(d .. "/million"), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  T.errors(function() core.sha256_file(d .. "/nope") end, "sha256_file: " .. d .. "/nope")
end)

T.test("names that would inject into a shell are only names", function()
  local marker = TMP .. "/injected"
  local evil = TMP .. "/x'\"$(touch " .. marker .. ")`touch " .. marker .. "`"
  -- an image folder
  core.mkdir_p(evil .. "/cls")
  lg.image.save_grid(evil .. "/cls/a.png", lg.zeros(1, 1, 4, 4))
  local ds = lg.data.image_folder(evil, {size = 4, channels = 1})
  T.eq(#ds.files, 1)
  -- a recipe directory and a command directory on package.path
  core.mkdir_p(evil .. "/models")
  local saved = package.path
  package.path = evil .. "/models/?.lua;" .. evil .. "/?.lua;" .. saved
  local print0 = print
  print = function() end                    -- luagan help's listing
  local ok, err = pcall(function()
    require("luagan.recipe").list()
    require("luagan.cli").main{"help"}
  end)
  print = print0
  package.path = saved
  T.ok(ok, tostring(err))
  -- a gzip IDX file (its header read through zlib, not `gzip -dc`)
  lg.save_idx(evil .. "/s.idx.gz", lg.zeros(2, 28, 28), {dtype = "ubyte"})
  T.shape(lg.eval.load_samples(evil .. "/s.idx.gz"), {2, 1, 28, 28})
  -- an output directory
  require("luagan.train").mkdir(evil .. "/out")
  T.ok(core.isdir(evil .. "/out"))
  T.ok(not core.isfile(marker), "a shell ran a command from a file name")
end)

T.test("no shell anywhere in scripts/ or models/", function()
  local root = package.searchpath("luagan", package.path):match("^(.*)/scripts/luagan/init%.lua$")
  T.ok(root, "the tree's root")
  local found = {}
  local function scan(dir)
    for _, n in ipairs(core.listdir(dir)) do
      local p = dir .. "/" .. n
      if core.isdir(p) then scan(p)
      elseif n:match("%.lua$") then
        local text = read(p)
        for _, pat in ipairs{"io%.popen", "os%.execute", "popen%s*%(", "execute%s*%("} do
          if text:find(pat) then found[#found + 1] = p .. " (" .. pat .. ")" end
        end
      end
    end
  end
  scan(root .. "/scripts")
  scan(root .. "/models")
  T.eq(found, {})
end)

T.test("cleanup", function()
  os.execute("rm -rf " .. q(TMP))
end)
