-- luagan.nets (lg.nets): the network builders the bundled recipes share, so
-- a recipe says which net it uses in one line and the reference 28x28
-- architectures (below; docs/reference/nets.md) live in one place.
--
--   local nets = lg.nets
--   local G = nets.dcgan_G{nz = 100}                  -- (N,100) -> (N,1,28,28) in [-1,1]
--   local D = nets.dcgan_D{norm = "layer"}            -- (N,1,28,28) -> (N,1) logits
--   local D = nets.dcgan_D{norm = "none", spectral = true}        -- SNGAN
--   local D = nets.dcgan_D{minibatch = {100, 5}}      -- minibatch discrimination head
--   local AE = nets.autoencoder_D{code = 64}          -- EBGAN: recon, code = AE(x)
--   local G2 = nets.mlp{2, 128, 128, 2}               -- 2D toy nets
--   local D2 = nets.mlp{4, 128, 128, 1, maxout = 5}   -- maxout hidden layers (PacGAN)
--
-- The 28x28 "InfoGAN architecture" (Chen et al. 2016; the standard of Lucic
-- et al. 2018):
--   G: z -> FC 1024-BN-ReLU -> FC 128*7*7-BN-ReLU -> deconv4 s2 64-BN-ReLU
--        -> deconv4 s2 1 -> tanh
--   D: conv4 s2 64-LReLU(0.2) -> conv4 s2 128-N-LReLU -> FC 1024-N-LReLU -> FC 1
-- where N is the normalisation the variant allows (batch norm by default;
-- layer norm or none for gradient penalties, which need per-sample gradients).
-- Weights start N(0, 0.02) (the DCGAN init; batch-norm gamma N(1, 0.02)).
local lg = require "luagan"
local nn = require "luagan.nn"

local nets = {}

local check_opts = require("luagan.util").check_opts

local function one_of(who, what, v, list)
  for _, c in ipairs(list) do if c == v then return v end end
  error(string.format("%s: %s must be one of %s, got %s", who, what, table.concat(list, ", "),
                      tostring(v)), 3)
end

local function pos_int(who, what, v)
  if math.type(v) ~= "integer" or v < 1 then
    error(string.format("%s: %s must be a positive integer, got %s", who, what, tostring(v)), 3)
  end
  return v
end

---------------------------------------------------------------------------
-- small layers

-- Maxout(in, out, pieces, {spectral = false}) (Goodfellow et al. 2013): a
-- Linear layer to out * pieces units, then the max over each group of
-- `pieces`: (N, in) -> (N, out). The discriminator unit of the PacGAN /
-- VEEGAN 2D nets.
local Maxout = nn.Module:extend("Maxout")
function Maxout:init(n_in, n_out, pieces, o)
  local who = "nets.Maxout"
  check_opts(who, o, {"spectral"}, 4)
  self.in_features, self.out_features = pos_int(who, "in", n_in), pos_int(who, "out", n_out)
  self.pieces = pos_int(who, "pieces", pieces)
  local lin = nn.Linear(n_in, n_out * pieces)
  self:add_module("linear", (o and o.spectral) and nn.SpectralNorm(lin) or lin)
end
function Maxout:forward(x)
  local y = self.linear(x)
  local m = y:reshape(y:size(1), self.out_features, self.pieces):max(3)
  return m
end
function Maxout:extra_repr()
  return string.format("%d, %d, pieces=%d", self.in_features, self.out_features, self.pieces)
end
nets.Maxout = Maxout

-- norm(kind, n, shape): a normalisation layer for n channels (kind "batch",
-- "layer", "vbn", "none" -> nil). shape: the per-sample shape for layer norm
-- ({C,H,W} after a conv, {C} after a Linear); conv = true picks the 2d forms.
local function norm_layer(kind, n, shape, conv)
  if kind == "batch" then return conv and nn.BatchNorm2d(n) or nn.BatchNorm1d(n) end
  if kind == "layer" then return nn.LayerNorm(shape) end
  if kind == "vbn" then return nn.VirtualBatchNorm(n) end
  return nil
end

local function push(list, m) if m then list[#list + 1] = m end end

-- Wrap a layer in spectral norm when asked.
local function sn(on, m) return on and nn.SpectralNorm(m) or m end

---------------------------------------------------------------------------
-- MLPs (2D toys, small heads)

-- mlp({n_in, h1, ..., n_out}, {act = "relu", slope = 0.2, norm = "none",
--      maxout = nil, out = nil, spectral = false})
-- Hidden layers: Linear (or Maxout with `maxout` pieces), then norm ("batch"
-- or "none"), then the activation ("relu", "lrelu", "tanh"; maxout layers
-- need none); the last layer is a plain Linear, followed by `out` ("tanh",
-- "sigmoid") if given. Default init (PyTorch's).
function nets.mlp(sizes, o)
  local who = "nets.mlp"
  o = check_opts(who, o, {"act", "slope", "norm", "maxout", "out", "spectral"})
  if type(sizes) ~= "table" or #sizes < 2 then
    error(who .. "(sizes): expected a list {n_in, ..., n_out} of at least 2 sizes", 2)
  end
  for i, s in ipairs(sizes) do pos_int(who, "size " .. i, s) end
  local act = one_of(who, "act", o.act or "relu", {"relu", "lrelu", "tanh"})
  local norm = one_of(who, "norm", o.norm or "none", {"none", "batch"})
  local pieces = o.maxout
  if pieces ~= nil then pos_int(who, "maxout", pieces) end
  local layers = {}
  for i = 1, #sizes - 1 do
    local last = i == #sizes - 1
    if last then
      push(layers, sn(o.spectral, nn.Linear(sizes[i], sizes[i + 1])))
    else
      if pieces then
        push(layers, Maxout(sizes[i], sizes[i + 1], pieces, {spectral = o.spectral}))
      else
        push(layers, sn(o.spectral, nn.Linear(sizes[i], sizes[i + 1])))
      end
      push(layers, norm_layer(norm, sizes[i + 1], sizes[i + 1], false))
      if not pieces then
        if act == "relu" then push(layers, nn.ReLU())
        elseif act == "lrelu" then push(layers, nn.LeakyReLU(o.slope or 0.2))
        else push(layers, nn.Tanh()) end
      end
    end
  end
  if o.out == "tanh" then push(layers, nn.Tanh())
  elseif o.out == "sigmoid" then push(layers, nn.Sigmoid())
  elseif o.out ~= nil then error(who .. ": out must be \"tanh\" or \"sigmoid\", got " .. tostring(o.out), 2) end
  return nn.Sequential(layers)
end

-- PackedD{input = 2, pack = m, trunk = {256, 256}, head = {256}, act = "lrelu",
--         maxout = nil}: a PacGAN discriminator (Lin et al. 2018) that judges m
-- samples at once. Input (N, m*input): m samples side by side. Each sample
-- first goes through the same trunk MLP (shared weights, every layer followed
-- by its activation), the m embeddings are concatenated, and the head MLP
-- maps them to one logit: (N, m*input) -> (N, 1). PacGAN's own D is a plain MLP
-- on the concatenation; sharing the trunk lets every sample train the
-- per-sample features, which a plain MLP on 4 packed 2D samples learns much
-- more slowly (docs/recipes.md, toy2d). pack = 1 is an ordinary MLP.
local PackedD = nn.Module:extend("PackedD")
function PackedD:init(o)
  local who = "nets.PackedD"
  o = check_opts(who, o, {"input", "pack", "trunk", "head", "act", "maxout"})
  local input = pos_int(who, "input", o.input or 2)
  local m = pos_int(who, "pack", o.pack or 1)
  local trunk, head = o.trunk or {256, 256}, o.head or {256}
  if type(trunk) ~= "table" or #trunk == 0 then error(who .. ": trunk must be a non-empty list of sizes", 3) end
  if type(head) ~= "table" then error(who .. ": head must be a list of sizes", 3) end
  self.input_size, self.pack, self.width = input, m, trunk[#trunk]
  local act = one_of(who, "act", o.act or "lrelu", {"relu", "lrelu", "tanh"})
  local layers, prev = {}, input
  for _, h in ipairs(trunk) do
    pos_int(who, "trunk size", h)
    if o.maxout then
      push(layers, Maxout(prev, h, o.maxout))
    else
      push(layers, nn.Linear(prev, h))
      push(layers, act == "relu" and nn.ReLU() or (act == "tanh" and nn.Tanh() or nn.LeakyReLU(0.2)))
    end
    prev = h
  end
  local t = nn.Sequential(layers)
  self:add_module("trunk", t)
  local hs = {m * self.width}
  for _, h in ipairs(head) do hs[#hs + 1] = h end
  hs[#hs + 1] = 1
  self:add_module("head", nets.mlp(hs, {act = act, maxout = o.maxout}))
end
function PackedD:forward(x)
  local n, m, d = x:size(1), self.pack, self.input_size
  if x:dim() ~= 2 or x:size(2) ~= m * d then
    error(string.format("PackedD: expected (N, %d) input (%d packed samples of %d), got %s",
                        m * d, m, d, table.concat(x:shape(), "x")), 0)
  end
  local e = self.trunk(x:reshape(n * m, d))          -- (N*m, width)
  return self.head(e:reshape(n, m * self.width))      -- (N, 1)
end
function PackedD:extra_repr() return "pack=" .. self.pack end
nets.PackedD = PackedD
function nets.packed_D(o) return PackedD(o) end

---------------------------------------------------------------------------
-- 28x28 generator

-- dcgan_G{nz = 100, norm = "batch", channels = 1, extra = 0, ch = 64, hidden = 1024}
-- (N, nz + extra) -> (N, channels, 28, 28) in [-1, 1]. norm "batch" (the
-- reference), "vbn" (virtual batch norm: call nn.VirtualBatchNorm.reference(G,
-- z_ref) before each G(z)) or "none". `extra` widens the input for
-- conditioning codes (one-hot labels, InfoGAN codes). ch: the width of the
-- last deconv's input (2ch before it; 64 = the reference); hidden: the first
-- FC layer's width (0 = no such layer: z goes straight to FC 2ch*7*7).
local G_OPTS = {"nz", "norm", "channels", "extra", "ch", "hidden", "head"}

-- dcgan_G_layers{... as dcgan_G, head = true} -> the list of G's layers,
-- default-initialised (no DCGAN init): for a recipe that builds its own
-- module around them. head = false leaves out the last deconv and tanh.
function nets.dcgan_G_layers(o, who)
  who = who or "nets.dcgan_G_layers"
  o = check_opts(who, o, G_OPTS)
  local nin = pos_int(who, "nz", o.nz or 100) + (o.extra or 0)
  local c = pos_int(who, "channels", o.channels or 1)
  local ch = pos_int(who, "ch", o.ch or 64)
  local hidden = o.hidden or 1024
  if math.type(hidden) ~= "integer" or hidden < 0 then
    error(string.format("%s: hidden must be an integer >= 0, got %s", who, tostring(hidden)), 3)
  end
  local norm = one_of(who, "norm", o.norm or "batch", {"batch", "vbn", "none"})
  local L = {}
  if hidden > 0 then
    push(L, nn.Linear(nin, hidden)); push(L, norm_layer(norm, hidden, hidden, false)); push(L, nn.ReLU())
    nin = hidden
  end
  push(L, nn.Linear(nin, 2 * ch * 7 * 7)); push(L, norm_layer(norm, 2 * ch * 7 * 7, 2 * ch * 7 * 7, false))
  push(L, nn.ReLU())
  push(L, nn.Reshape(2 * ch, 7, 7))
  push(L, nn.ConvTranspose2d(2 * ch, ch, 4, {stride = 2, padding = 1}))
  push(L, norm_layer(norm, ch, {ch, 14, 14}, true)); push(L, nn.ReLU())
  if o.head ~= false then
    push(L, nn.ConvTranspose2d(ch, c, 4, {stride = 2, padding = 1}))
    push(L, nn.Tanh())
  end
  return L
end

function nets.dcgan_G(o)
  local opts = check_opts("nets.dcgan_G", o, {"nz", "norm", "channels", "extra", "ch", "hidden", "init"})
  local lo = {}
  for k, v in pairs(opts) do if k ~= "init" then lo[k] = v end end
  local G = nn.Sequential(nets.dcgan_G_layers(lo, "nets.dcgan_G"))
  if opts.init ~= false then nn.init.dcgan(G) end
  return G
end

---------------------------------------------------------------------------
-- 28x28 discriminator / critic

-- dcgan_D{norm = "batch", spectral = false, minibatch = nil, channels = 1,
--         out = 1, slope = 0.2, ch = 64, hidden = 1024}
-- (N, channels, 28, 28) -> (N, out). norm: "batch" (reference), "layer"
-- (per-sample: safe under gradient penalties) or "none". spectral = true
-- wraps every conv and linear in nn.SpectralNorm (Miyato et al. 2018).
-- minibatch = {B, C} inserts nn.MinibatchDiscrimination(hidden, B, C) before
-- the last layer (which then reads hidden + B features). ch: the first
-- conv's width (2ch the second's); hidden: the FC layer's width (0 = none:
-- the last layer reads the 2ch*7*7 conv features).
-- The returned Sequential has a field `features`: the name of the child whose
-- output is the hidden feature layer (after its activation), for feature
-- matching with lg.tricks.features(D, x, {D.features}).
local D_OPTS = {"norm", "spectral", "minibatch", "channels", "out", "slope", "ch", "hidden"}

-- dcgan_D_layers{... as dcgan_D} -> the list of D's layers (its field
-- `features`: the index of the feature layer), default-initialised (no DCGAN
-- init). out = 0 leaves out
-- the last layer: the trunk, (N, channels, 28, 28) -> (N, hidden or
-- 2ch*7*7), for a recipe's own heads (InfoGAN's Q, encoders).
function nets.dcgan_D_layers(o, who)
  who = who or "nets.dcgan_D_layers"
  o = check_opts(who, o, D_OPTS)
  local norm = one_of(who, "norm", o.norm or "batch", {"batch", "layer", "none"})
  local c = pos_int(who, "channels", o.channels or 1)
  local n_out = o.out or 1
  if math.type(n_out) ~= "integer" or n_out < 0 then
    error(string.format("%s: out must be an integer >= 0, got %s", who, tostring(n_out)), 3)
  end
  local ch = pos_int(who, "ch", o.ch or 64)
  local hidden = o.hidden or 1024
  if math.type(hidden) ~= "integer" or hidden < 0 then
    error(string.format("%s: hidden must be an integer >= 0, got %s", who, tostring(hidden)), 3)
  end
  local slope = o.slope or 0.2
  local s = o.spectral and true or false
  local L = {}
  push(L, sn(s, nn.Conv2d(c, ch, 4, {stride = 2, padding = 1}))); push(L, nn.LeakyReLU(slope))
  push(L, sn(s, nn.Conv2d(ch, 2 * ch, 4, {stride = 2, padding = 1})))
  push(L, norm_layer(norm, 2 * ch, {2 * ch, 7, 7}, true)); push(L, nn.LeakyReLU(slope))
  push(L, nn.Flatten())
  local width = 2 * ch * 7 * 7
  if hidden > 0 then
    push(L, sn(s, nn.Linear(width, hidden)))
    push(L, norm_layer(norm, hidden, hidden, false)); push(L, nn.LeakyReLU(slope))
    width = hidden
  end
  local features = #L
  if o.minibatch ~= nil then
    local mb = o.minibatch
    if type(mb) ~= "table" then error(who .. ": minibatch must be {B, C}, got " .. type(mb), 3) end
    pos_int(who, "minibatch[1] (B)", mb[1]); pos_int(who, "minibatch[2] (C)", mb[2])
    push(L, nn.MinibatchDiscrimination(width, mb[1], mb[2]))
    width = width + mb[1]
  end
  if n_out > 0 then push(L, sn(s, nn.Linear(width, n_out))) end
  L.features = features
  return L
end

function nets.dcgan_D(o)
  local opts = check_opts("nets.dcgan_D", o, {"norm", "spectral", "minibatch", "channels", "out", "slope",
                                              "ch", "hidden", "init"})
  local lo = {}
  for k, v in pairs(opts) do if k ~= "init" then lo[k] = v end end
  if lo.out == 0 then error("nets.dcgan_D: out must be >= 1 (dcgan_D_layers gives the trunk)", 2) end
  local L = nets.dcgan_D_layers(lo, "nets.dcgan_D")
  -- init before nothing else touches the weights; SpectralNorm keeps the same
  -- tensors as weight_orig, so the init reaches them
  local D = nn.Sequential(L)
  if opts.init ~= false then nets.dcgan_init(D) end
  rawset(D, "features", tostring(L.features))
  return D
end

-- seq(list, from, to) -> nn.Sequential of list[from..to] (default: to the
-- end): a slice of a *_layers list as one module.
function nets.seq(list, from, to)
  return nn.Sequential(table.move(list, from or 1, to or #list, 1, {}))
end

-- The DCGAN init, also through SpectralNorm wrappers (their weight_orig).
function nets.dcgan_init(net)
  nn.init.dcgan(net)
  net:apply(function(m)
    if m.__name == "SpectralNorm" then
      lg.no_grad(function() nn.init.normal(m.weight_orig, 0, 0.02) end)
    end
  end)
  return net
end

---------------------------------------------------------------------------
-- EBGAN's autoencoder discriminator

-- AutoencoderD: encoder = the DCGAN D's convolutions and a Linear to a code
-- of `code` units; decoder = a DCGAN G from the code. forward(x) returns the
-- reconstruction (N,C,28,28) in [-1,1] and the code (N, code), whose rows are
-- the embeddings of the pull-away term.
--   enc: conv4 s2 64-LReLU -> conv4 s2 128-BN-LReLU -> FC code
--   dec: FC 128*7*7-BN-ReLU -> deconv4 s2 64-BN-ReLU -> deconv4 s2 C -> tanh
local AutoencoderD = nn.Module:extend("AutoencoderD")
function AutoencoderD:init(o)
  local who = "nets.autoencoder_D"
  o = check_opts(who, o, {"code", "channels", "norm"})
  local code = pos_int(who, "code", o.code or 64)
  local c = pos_int(who, "channels", o.channels or 1)
  local norm = one_of(who, "norm", o.norm or "batch", {"batch", "none"})
  self.code_size = code
  local E = {}
  push(E, nn.Conv2d(c, 64, 4, {stride = 2, padding = 1})); push(E, nn.LeakyReLU(0.2))
  push(E, nn.Conv2d(64, 128, 4, {stride = 2, padding = 1}))
  push(E, norm_layer(norm, 128, nil, true)); push(E, nn.LeakyReLU(0.2))
  push(E, nn.Flatten())
  push(E, nn.Linear(128 * 7 * 7, code))
  local Dd = {}
  push(Dd, nn.Linear(code, 128 * 7 * 7)); push(Dd, norm_layer(norm, 128 * 7 * 7, nil, false))
  push(Dd, nn.ReLU())
  push(Dd, nn.Reshape(128, 7, 7))
  push(Dd, nn.ConvTranspose2d(128, 64, 4, {stride = 2, padding = 1}))
  push(Dd, norm_layer(norm, 64, nil, true)); push(Dd, nn.ReLU())
  push(Dd, nn.ConvTranspose2d(64, c, 4, {stride = 2, padding = 1}))
  push(Dd, nn.Tanh())
  self:add_module("enc", nn.Sequential(E))
  self:add_module("dec", nn.Sequential(Dd))
  nn.init.dcgan(self)
end
function AutoencoderD:forward(x)
  local code = self.enc(x)
  return self.dec(code), code
end
function AutoencoderD:extra_repr() return "code=" .. self.code_size end
nets.AutoencoderD = AutoencoderD

function nets.autoencoder_D(o) return AutoencoderD(o) end

return nets
