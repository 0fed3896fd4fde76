-- classifier.lua: the Fashion-MNIST classifier behind `luagan eval`.
--
--   luagan models/classifier.lua --epochs 6 --out out/classifier   # train (or: luagan run classifier ...)
--   local C = require "classifier"
--   local net = C.load()                  -- models/weights/classifier.safetensors, eval mode
--   local logits, feats = C.forward(net, x)   -- x: (N,1,28,28) or (N,784) in [-1,1]
--
-- conv(1->32,3,pad 1)-BN-ReLU-maxpool2 - conv(32->64,3,pad 1)-BN-ReLU-maxpool2 -
-- Linear(64*7*7 -> 128)-ReLU [the 128-d penultimate features] - Linear(128 -> 10).
-- Trained on the 60k training images (pixels in [-1,1], as generators emit
-- them) with Adam (lr 1e-3, cosine decay to 0 over the run), batch 128,
-- random horizontal flips; the test accuracy is measured on the 10k test
-- images at the end and stored in the weights' metadata.
local lg = require "luagan"
local nn = require "luagan.nn"

local M = {}

M.FEATURE_DIM = 128
M.NUM_CLASSES = 10

-- models/weights/classifier.safetensors next to this file.
local function default_weights()
  local src = debug.getinfo(1, "S").source
  local dir = src:sub(1, 1) == "@" and src:sub(2):match("^(.*)/[^/]*$") or "."
  return dir .. "/weights/classifier.safetensors"
end
M.WEIGHTS = default_weights()

local Classifier = nn.Module:extend("Classifier")

function Classifier:init()
  self.features = nn.Sequential{
    nn.Conv2d(1, 32, 3, {padding = 1}), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, {padding = 1}), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, M.FEATURE_DIM), nn.ReLU(),
  }
  self.head = nn.Linear(M.FEATURE_DIM, M.NUM_CLASSES)
end

-- x (N,1,28,28) -> logits (N,10), features (N,128)
function Classifier:forward(x)
  local f = self.features(x)
  return self.head(f), f
end

-- A fresh, untrained classifier.
function M.build() return Classifier() end

local function as_images(x, who)
  local s = x:shape()
  if #s == 2 and s[2] == 784 then return x:reshape(s[1], 1, 28, 28) end
  if #s == 3 and s[2] == 28 and s[3] == 28 then return x:reshape(s[1], 1, 28, 28) end
  if #s == 4 and s[2] == 1 and s[3] == 28 and s[4] == 28 then return x end
  error(string.format("%s: expected images (N,1,28,28), (N,28,28) or (N,784), got %s", who,
                      table.concat(s, "x")), 3)
end

-- Logits (N,10) and features (N,128) of images in [-1,1], in batches, no grad.
function M.forward(net, x, o)
  x = as_images(x, "classifier.forward")
  local bs = (o and o.batch_size) or 500
  local n = x:shape()[1]
  local logits, feats = {}, {}
  lg.no_grad(function()
    for i = 1, n, bs do
      local len = math.min(bs, n - i + 1)
      local l, f = net(x:narrow(1, i, len))
      logits[#logits + 1], feats[#feats + 1] = l, f
    end
  end)
  if #logits == 0 then return lg.zeros(0, M.NUM_CLASSES), lg.zeros(0, M.FEATURE_DIM) end
  return lg.cat(logits, 1), lg.cat(feats, 1)
end

-- Fraction of x classified as labels (1-based classes).
function M.accuracy(net, x, labels)
  local logits = M.forward(net, x)
  local pred = logits:argmax(2)
  return (pred:eq(labels:reshape(pred:shape())):sum():item()) / labels:numel()
end

-- The trained classifier from path (default M.WEIGHTS), in eval mode.
-- Returns the net and the file's metadata.
function M.load(path)
  path = path or M.WEIGHTS
  local f = io.open(path, "rb")
  if not f then
    error("classifier.load: no weights at " .. path ..
          " (train them with `luagan models/classifier.lua --out DIR`)", 2)
  end
  f:close()
  local sd, meta = lg.load_safetensors(path)
  local net = M.build()
  net:load_state_dict(sd)
  net:eval()
  return net, meta
end

---------------------------------------------------------------------------
-- training

local USAGE = "usage: luagan models/classifier.lua [--epochs 6] [--out out/classifier] " ..
              "[--batch 128] [--lr 1e-3] [--seed 1] [--threads N] [--limit N (0 = all images)]"

-- A usage error: without a traceback when luagan.recipe is there to mark it.
local function fail(msg)
  local ok, recipe = pcall(require, "luagan.recipe")
  if ok and type(recipe) == "table" and recipe.fail then recipe.fail(msg) end
  error(msg, 0)
end

local function parse_args(args)
  local o = {epochs = 6, out = "out/classifier", batch = 128, lr = 1e-3, seed = 1, threads = nil,
             limit = 0}
  local i = 1
  while i <= #args do
    local k = args[i]
    if k == "--help" or k == "-h" then return nil end
    local key = k:match("^%-%-([%w_]+)$")
    if not key or o[key] == nil and key ~= "threads" then
      fail("classifier: unknown argument '" .. k .. "'; " .. USAGE)
    end
    local v = args[i + 1]
    if v == nil then fail("classifier: " .. k .. " needs a value") end
    if key ~= "out" then
      v = tonumber(v) or fail("classifier: " .. k .. " needs a number, got '" .. v .. "'")
    end
    o[key] = v
    i = i + 2
  end
  return o
end

-- Flip each image left-right with probability 1/2 (x: (B,1,28,28)).
local REV = {}
for i = 1, 28 do REV[i] = 29 - i end
local function random_flip(x)
  local b = x:shape()[1]
  local mask = lg.rand(b, 1, 1, 1):lt(0.5)
  return lg.where(mask, x:index_select(4, REV), x)
end

local function sha256(path)
  local ok, hex = pcall(lg.sha256_file, path)
  return ok and hex or "?"
end

function M.main(args)
  local o = parse_args(args or {})
  if not o then print(USAGE) return 0 end
  for _, k in ipairs{"epochs", "batch", "seed", "limit"} do
    if not math.tointeger(o[k]) or (o[k] < 1 and k ~= "seed" and k ~= "limit") then
      fail("classifier: --" .. k .. " must be a positive integer, got " .. tostring(o[k]))
    end
  end
  if o.threads then lg.set_num_threads(math.tointeger(o.threads)) end
  lg.manual_seed(math.tointeger(o.seed))
  lg.mkdir_p(o.out)
  local data = require "luagan.data"
  local lgio = require "luagan.io"
  local limit = o.limit > 0 and math.tointeger(o.limit) or nil
  local train = data.fashion_mnist{split = "train", limit = limit}
  local test = data.fashion_mnist{split = "test", limit = limit}
  local net = M.build()
  local opt = lg.optim.Adam(net:parameters(), {lr = o.lr})
  local loader = data.DataLoader(train, {batch_size = math.tointeger(o.batch), shuffle = true,
                                         drop_last = true, seed = math.tointeger(o.seed)})
  local steps = #loader * math.tointeger(o.epochs)
  local log = lgio.MetricsLog(o.out .. "/metrics.jsonl", {append = false})
  print(string.format("classifier: %d params, %d epochs x %d steps, batch %d",
                      net:num_parameters(), o.epochs, #loader, o.batch))
  local t0, step = os.time(), 0
  local acc
  for epoch = 1, math.tointeger(o.epochs) do
    net:train()
    local sum, cnt = 0, 0
    for x, y in loader:epoch() do
      step = step + 1
      -- cosine decay of the learning rate from lr to 0 over the whole run
      opt.param_groups[1].lr = o.lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
      opt:zero_grad()
      local loss = lg.cross_entropy(net(random_flip(x)), y)
      loss:backward()
      opt:step()
      sum, cnt = sum + loss:item(), cnt + 1
      if step % 100 == 0 then
        print(string.format("  epoch %d step %5d  loss %.4f  %ds", epoch, step, sum / cnt,
                            os.time() - t0))
      end
    end
    net:eval()
    acc = M.accuracy(net, test.images, test.labels)
    print(string.format("epoch %d  train loss %.4f  test accuracy %.4f  %ds", epoch, sum / cnt,
                        acc, os.time() - t0))
    log:write{epoch = epoch, step = step, train_loss = sum / cnt, test_accuracy = acc,
              seconds = os.time() - t0}
  end
  log:close()
  local path = o.out .. "/classifier.safetensors"
  lg.save_safetensors(path, net:state_dict(), {
    test_accuracy = string.format("%.4f", acc), epochs = tostring(o.epochs),
    seed = tostring(o.seed), limit = tostring(o.limit), arch = "conv32-bn-pool-conv64-bn-pool-fc128-fc10",
    input = "Nx1x28x28 in [-1,1]",
  })
  print(string.format("wrote %s  test accuracy %.4f  sha256 %s  (%ds)", path, acc, sha256(path),
                      os.time() - t0))
  return 0
end

-- Run as a script (`luagan models/classifier.lua ...`): train. `luagan run
-- classifier ...` and require "classifier" only get the table.
if arg and arg[0] and "@" .. arg[0] == debug.getinfo(1, "S").source then
  local rc = M.main(arg)
  if rc and rc ~= 0 then os.exit(rc) end
end

return M
