-- bench/bigan_trunk_probe.lua: the linear probe of bigan's encoder read at
-- two depths: E(x) (what the recipe's finish() reports) and the conv
-- trunk's features (E[1], the flattened 2ch x 7 x 7 map), for each
-- checkpoint given. An untrained encoder is `luagan run bigan --steps 0`.
--
--   build/luagan bench/bigan_trunk_probe.lua out/b0/checkpoint.safetensors \
--       out/bigan/checkpoint.safetensors
--
-- Probe: lg.eval.linear_probe on the first 10,000 training images, scored
-- on the first 2,000 test images (the recipe's probe_n / eval_n defaults).
local lg = require "luagan"
local train = require "luagan.train"
local kit = lg.recipe_kit

if not arg or #arg == 0 then
  error("usage: luagan bench/bigan_trunk_probe.lua CHECKPOINT...", 0)
end
local tr = lg.data.fashion_mnist{split = "train", limit = 10000}
local te = lg.data.fashion_mnist{split = "test", limit = 2000}

-- rows of f over the images (N,1,28,28), flattened: (N, features)
local function features(f, x) return kit.map(f, x):reshape(x:size(1), -1) end

for _, ck in ipairs(arg) do
  local s = train.load(ck, {recipe = "bigan", where = "bigan_trunk_probe"})
  s.E:eval()
  local trunk = s.E[1]
  local at_trunk = lg.eval.linear_probe(features(trunk, tr.images), tr.labels,
                                        features(trunk, te.images), te.labels)
  local at_code = lg.eval.linear_probe(features(s.E, tr.images), tr.labels,
                                       features(s.E, te.images), te.labels)
  print(string.format("%s: probe on E(x) %.4f, on the trunk's features %.4f", ck, at_code, at_trunk))
end
