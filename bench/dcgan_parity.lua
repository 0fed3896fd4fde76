-- dcgan_parity.lua: the luagan side of bench/dcgan_parity.py (run by it).
--
--   build/luagan bench/dcgan_parity.lua OUT
--
-- Reads OUT/init.safetensors (the twin's initial G and D under luagan's
-- state_dict names, K real batches x.1..x.K, noise z.1..z.K, zeval), then
-- drives the recipe models/dcgan.lua itself: its setup (under the same seed,
-- whose init is saved for the statistics comparison), load_state_dict of the
-- twin's weights into its G and D, and K calls of its own step function with
-- the data stream and lg.randn swapped for the stored batches. Samples come
-- from the recipe's own sample function (G:eval(), running statistics).
-- Writes OUT/luagan.safetensors (names as the twin's torch.safetensors) and
-- OUT/luagan_init.safetensors.
local lg = require "luagan"
local lgio = require "luagan.io"
local recipe = require "luagan.recipe"

local out = assert(arg and arg[1], "usage: luagan bench/dcgan_parity.lua OUT")
local init, meta = lgio.load_safetensors(out .. "/init.safetensors")
local K, seed = math.tointeger(tonumber(meta.k)), math.tointeger(tonumber(meta.seed))
local batch, nz = math.tointeger(tonumber(meta.batch)), math.tointeger(tonumber(meta.nz))

local r = recipe.load("models/dcgan.lua")
local opt = r:parse{seed = seed, batch = batch, nz = nz, limit = 256, threads = 1}
-- what train.run does before setup
lg.manual_seed(opt.seed)
lg.set_num_threads(1)
local s = r.setup(opt)

-- the recipe's own init under this seed, and its data scaling
local li = {}
for _, net in ipairs{"G", "D"} do
  for k, v in pairs(s[net]:state_dict()) do li["init." .. net .. "." .. k] = v:clone() end
end
li.pixels = lg.data.fashion_mnist{limit = 256}.images:float()   -- kept as bytes: the floats
lgio.save_safetensors(out .. "/luagan_init.safetensors", li)

-- the twin's weights
local function sub(prefix)
  local t = {}
  for k, v in pairs(init) do
    local rest = k:match("^" .. prefix .. "%.(.+)$")
    if rest then t[rest] = v end
  end
  return t
end
s.G:load_state_dict(sub("G"))
s.D:load_state_dict(sub("D"))

-- diagnosis: every layer's output of G(z.1) and D(x.1) at the initial
-- weights, in training mode (batch statistics), as the first step computes
-- them; the parity script counts the ReLU/LeakyReLU inputs whose sign differs
-- from float64 PyTorch. Batch norm updates its running statistics here: G is
-- sampled in eval mode with them ("sample.diag"), then the weights and
-- statistics are loaded again.
local res = {}
lg.no_grad(function()
  for _, c in ipairs{{"G", init["z.1"]}, {"D", init["x.1"]}} do
    local net, h = s[c[1]], c[2]
    for i = 1, #net do
      h = net[i](h)
      res["act." .. c[1] .. "." .. i] = h:clone()
    end
  end
end)

-- inject the data and the noise: the recipe reads s.data:next() and calls
-- lg.randn(batch, nz) once per step; sample() calls lg.randn(n, nz)
local cur
s.data = {next = function() return init["x." .. cur] end}
local randn = lg.randn
local function with_noise(z, f, ...)
  lg.randn = function(...)
    local n = select("#", ...)
    local a, b = ...
    assert(n == 2 and a == z:size(1) and b == z:size(2), "dcgan_parity: unexpected lg.randn call")
    return z:clone()
  end
  local ok, res = pcall(f, ...)
  lg.randn = randn
  if not ok then error(res, 0) end
  return res
end

-- the gradients each optimizer step sees (D's: of loss_d only), at steps 1 and K
local function capture(optname, net)
  local o = s[optname]
  local orig = o.step
  o.step = function(self, ...)
    if cur == 1 or cur == K then
      for name, p in s[net]:named_parameters() do
        res["grad" .. cur .. "." .. net .. "." .. name] = p.grad:detach():clone()
      end
    end
    return orig(self, ...)
  end
end
capture("optD", "D")
capture("optG", "G")

local tmp = os.tmpname()
local function sample(tag)
  res["sample." .. tag] = with_noise(init.zeval, r.sample, s, tmp .. ".png", {n = init.zeval:size(1)})
end

sample("diag")
s.G:load_state_dict(sub("G"))
s.D:load_state_dict(sub("D"))
sample("init")
local losses = {}
for step = 1, K do
  cur = step
  local m = with_noise(init["z." .. step], r.step, s, step)
  losses[step] = {m.loss_d:item(), m.loss_g:item(), m.d_real:item(), m.d_fake:item()}
  if step == 1 or step == K then
    for _, net in ipairs{"G", "D"} do
      for k, v in pairs(s[net]:state_dict()) do
        res["after" .. step .. "." .. net .. "." .. k] = v:clone()
      end
    end
  end
end
sample("after" .. K)
os.remove(tmp)
os.remove(tmp .. ".png")
res.losses = lg.tensor(losses)

-- Adam alone (bench/dcgan_parity.py's adam_check), built as the recipe builds it
local ad = lgio.load_safetensors(out .. "/adam.safetensors")
local p = ad["adam.p0"]:clone()
local adam = lg.optim.Adam({p}, {lr = opt.lr, betas = {opt.beta1, opt.beta2}})
for i = 1, K do
  p.grad = ad["adam.g." .. i]:clone()
  adam:step()
end
ad["adam.outlg"] = p
lgio.save_safetensors(out .. "/adam.safetensors", ad)
lgio.save_safetensors(out .. "/luagan.safetensors", res)
print(string.format("dcgan_parity.lua: %d steps of models/dcgan.lua done, wrote %s/luagan.safetensors",
                    K, out))
