-- bench/toy2d_packed_d.lua: why toy2d's packed discriminator shares a trunk.
--
--   build/luagan bench/toy2d_packed_d.lua [--steps 1500] [--mixture grid|ring]
--
-- A discriminator alone (no generator) learns to tell the mixture from
-- uniform noise over its bounding box, with PacGAN packing m = 4: each input
-- row is 4 samples side by side. Two designs of the same size class:
--   plain:  PacGAN's D, an MLP on the 2m concatenated coordinates
--           (3 x 200 maxout-5 layers, the paper's toy-experiment D);
--   shared: lg.nets.packed_D, one 2 x 256 LeakyReLU trunk applied to each
--           sample, the m embeddings concatenated into a 256-unit head.
-- Both: Adam(1e-3, 0.5, 0.999), batch 256 samples (64 packs), non-saturating
-- D loss on logits (2 log 2 = 1.386 is chance, 0 a perfect D). The script
-- prints each D's loss every 300 steps and its CPU time; the lower the loss
-- at a given step, the sooner a generator gets a useful signal. Also run with
-- pack 1 as the unpacked reference.
local lg = require "luagan"
local nets = require "luagan.nets"

local function parse(argv)
  local o = {steps = 1500, mixture = "grid", seed = 1}
  local i = 1
  while i <= #argv do
    local k, v = argv[i]:match("^%-%-(.+)$"), argv[i + 1]
    if k == "steps" or k == "seed" then o[k] = math.tointeger(tonumber(v))
    elseif k == "mixture" then o.mixture = v
    else error("toy2d_packed_d: unknown option " .. tostring(argv[i]), 0) end
    if o[k] == nil then error("toy2d_packed_d: --" .. k .. " needs a value", 0) end
    i = i + 2
  end
  if o.mixture ~= "grid" and o.mixture ~= "ring" then
    error("toy2d_packed_d: --mixture must be grid or ring, got " .. o.mixture, 0)
  end
  return o
end

local function make_D(kind, m)
  if kind == "plain" then
    return nets.mlp({2 * m, 200, 200, 200, 1}, {maxout = 5})
  end
  return nets.packed_D{input = 2, pack = m, trunk = {256, 256}, head = {256}}
end

-- one D trained for o.steps steps; returns the loss trace and CPU seconds
local function train(kind, m, o)
  lg.manual_seed(o.seed)
  local D = make_D(kind, m)
  local opt = lg.optim.Adam(D:parameters(), {lr = 1e-3, betas = {0.5, 0.999}})
  local loss = lg.losses.nsgan()
  local B = 256
  -- work in units of the mixture's scale, as models/toy2d.lua does
  local scale = o.mixture == "grid" and math.sqrt(8) or math.sqrt(0.5)
  local lim = o.mixture == "grid" and 4.5 or 1.2
  local trace, t0 = {}, os.clock()
  for i = 1, o.steps do
    local real = (o.mixture == "grid" and lg.data.grid{n = B} or lg.data.ring{n = B}) / scale
    local fake = (lg.rand(B, 2) * (2 * lim) - lim) / scale
    local ld = loss.d(D(real:reshape(B // m, 2 * m)), D(fake:reshape(B // m, 2 * m)))
    opt:zero_grad()
    ld:backward()
    opt:step()
    if i % 300 == 0 then trace[#trace + 1] = string.format("%d:%.3f", i, ld:item()) end
  end
  return trace, os.clock() - t0
end

local o = parse(arg)
lg.set_num_threads(1)
print(string.format("D alone vs uniform noise on the %s, %d steps, seed %d (loss at step:value)",
                    o.mixture, o.steps, o.seed))
for _, case in ipairs{{"plain", 1}, {"plain", 4}, {"shared", 4}} do
  local trace, cpu = train(case[1], case[2], o)
  print(string.format("  %-6s pack %d  %s  (%.1f CPU s)", case[1], case[2], table.concat(trace, " "), cpu))
end
