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

-- parsed by the one command-line parser (luagan.recipe); the one argument
-- that is no option is the checkpoint
local OPTIONS = recipe.options{name = "sample", args = "paths", max_args = 1, options = {
  {"n", 64, "samples drawn", min = 1, max = MAX_N},
  {"seed", 1, "random seed"},
  {"out", nil, "the PNG (default: samples.png beside the checkpoint)", type = "string"},
  {"recipe", nil, "the recipe file of a checkpoint from the user's own recipe", type = "string"},
}}

-- the options, with ckpt; nil for --help
local function parse(args)
  local o = OPTIONS:parse(args)
  if not o then return nil end
  o.ckpt = o.paths[1]
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
