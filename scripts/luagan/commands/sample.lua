-- luagan sample CKPT [--n 64] [--out FILE.png] [--seed 1] [--recipe FILE.lua]
-- Rebuilds the recipe named in a training checkpoint with its saved options,
-- loads the weights and writes what recipe.sample draws (a grid for image
-- recipes, a scatter plot for 2D ones) to FILE (default: samples.png next to
-- the checkpoint). The recipe is looked up by name among the bundled ones
-- only; a checkpoint of the user's own recipe file needs --recipe FILE
-- (a checkpoint never names code to run: docs/training.md).
local recipe = require "luagan.recipe"
local fail = recipe.fail
local USAGE = "usage: luagan sample CKPT [--n 64] [--out FILE.png] [--seed 1] [--recipe FILE.lua]"
local MAX_N = 10000        -- one picture: a 100 x 100 grid at most

local function parse(args)
  local o = {n = 64, seed = 1}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then return nil end
    local key, val = a:match("^%-%-([%w_-]+)=(.*)$")
    if not key then key = a:match("^%-%-([%w_-]+)$") end
    if key then
      if val == nil then
        val = args[i + 1]
        i = i + 1
      end
      if val == nil then fail("sample: --" .. key .. " needs a value; " .. USAGE) end
      if key == "n" or key == "seed" then
        local v = math.tointeger(tonumber(val))
        if not v or (key == "n" and (v < 1 or v > MAX_N)) then
          fail(string.format("sample: --%s takes %s, got %q", key,
                              key == "n" and ("an integer in 1.." .. MAX_N) or "an integer", val))
        end
        o[key] = v
      elseif key == "out" or key == "recipe" then
        o[key] = val
      else
        fail("sample: unknown option --" .. key .. " (options: --n, --out, --seed, --recipe); " .. USAGE)
      end
    elseif not o.ckpt then
      o.ckpt = a
    else
      fail("sample: unexpected argument " .. string.format("%q", a) .. "; " .. USAGE)
    end
    i = i + 1
  end
  if not o.ckpt then fail("sample: which checkpoint? " .. USAGE) end
  return o
end

return {
  usage = USAGE,
  help = "write a grid of samples (PNG) from a checkpoint",
  fn = function(args)
    local o = parse(args)
    if not o then print(USAGE) return 0 end
    local lg = require "luagan"
    local core = require "luagan.core"
    local train = require "luagan.train"
    local out = o.out or ((o.ckpt:match("^(.*)/[^/]*$") or ".") .. "/samples.png")
    local dir = out:match("^(.*)/[^/]*$") or "."
    if dir == "" then dir = "/" end
    if not core.isdir(dir) then fail("sample: --out " .. out .. ": no directory " .. dir) end
    if not core.writable(dir) then fail("sample: --out " .. out .. ": the directory " .. dir .. " is not writable") end
    if core.isdir(out) then fail("sample: --out " .. out .. " is a directory; give a file name (x.png)") end
    local state, r = train.load(o.ckpt, {recipe = o.recipe, where = "sample",
      hint = "luagan sample " .. o.ckpt .. " --recipe path/to/recipe.lua"})
    if not r.sample then fail("sample: recipe '" .. r.name .. "' has no sample function") end
    lg.manual_seed(o.seed)
    train.sample(r, state, out, {n = o.n})
    print("wrote " .. out)
    return 0
  end,
}
