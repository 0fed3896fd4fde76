-- luagan.data: data sets and batching.
--
--   local data = require "luagan.data"         -- also lg.data
--   local fm = data.fashion_mnist{split = "train"}      -- images in [-1, 1]
--   local loader = data.DataLoader({fm.images, fm.labels},
--                                  {batch_size = 64, shuffle = true, drop_last = true, seed = 1})
--   for x, y in loader:epoch() do ... end     -- x: 64x1x28x28, y: 64 (classes 1..10)
--
--   local x, centres = data.ring{n = 2500}     -- 2D mixtures for mode-collapse studies
--
-- Everything random takes an optional seed and then uses its own generator
-- state, leaving the global one (lg.manual_seed) untouched; without a seed
-- it draws from the global generator.
local lg = require "luagan"
local core = require "luagan.core"
local util = require "luagan.util"
local check_opts = util.check_opts

local data = {}

data.load_idx = core.load_idx
data.save_idx = core.save_idx

local with_seed = util.with_seed

-- Run fn() on a generator whose state is the string st; returns the new
-- state string and fn's results.
local function with_state(st, fn, ...)
  local saved = lg.get_rng_state()
  lg.set_rng_state(st)
  local res = table.pack(pcall(fn, ...))
  local after = lg.get_rng_state()
  lg.set_rng_state(saved)
  if not res[1] then error(res[2], 0) end
  return after, table.unpack(res, 2, res.n)
end

---------------------------------------------------------------------------
-- MNIST-like IDX data sets

data.FASHION_MNIST_CLASSES = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
data.MNIST_CLASSES = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

local SPLIT_PREFIX = {train = "train", test = "t10k"}

-- The file <dir>/<stem> or <dir>/<stem>.gz, or nil.
local function find_file(dir, stem)
  for _, p in ipairs{dir .. "/" .. stem .. ".gz", dir .. "/" .. stem} do
    if core.isfile(p) then return p end
  end
end

-- Pixel scaling of uint8 images: "tanh" [-1,1] (GAN default), "unit" [0,1],
-- "raw" 0..255.
local SCALES = {tanh = {-1, 1}, unit = {0, 1}, raw = {0, 255}}
data.SCALES = SCALES

local function scale_pixels(x, scale, who)
  local r = SCALES[scale]
  if not r then
    error(who .. ": scale must be \"tanh\" ([-1,1]), \"unit\" ([0,1]) or \"raw\" (0..255), got " ..
          tostring(scale), 3)
  end
  if scale == "raw" then return x end
  -- clamp: float rounding may put 255 a hair above the top of the range
  return (x * ((r[2] - r[1]) / 255) + r[1]):clamp(r[1], r[2])
end

---------------------------------------------------------------------------
-- Byte images: an image data set kept as its uint8 pixels (1 byte a pixel
-- instead of a float's 4) and converted when rows are drawn. Each byte value
-- maps through a 256-entry table computed by scale_pixels itself, the same
-- tensor ops the full-float path ran on the whole set, so the floats of a
-- drawn batch are bit for bit those of the old scaled tensor's rows.
--
-- It answers the tensor methods a data set is read with (shape, size, dim,
-- numel, narrow and index_select along dim 1, images[i]), each returning a
-- new float tensor (a copy, never a view); float() converts the whole set;
-- any other tensor method converts the whole set first and runs on that.

local ByteImages = {}
local byte_methods = {}

local function is_byte_images(v) return getmetatable(v) == ByteImages end
data.is_byte_images = is_byte_images

local tensor_probe = lg.zeros(1)   -- which names are tensor methods

ByteImages.__index = function(self, k)
  local m = byte_methods[k]
  if m then return m end
  if math.type(k) == "integer" then return byte_methods.narrow(self, 1, k, 1)[1] end
  if type(k) == "string" and type(tensor_probe[k]) == "function" then
    -- a tensor method not listed: run it on the converted set (a full copy)
    return function(s, ...)
      local t = byte_methods.float(s)
      return t[k](t, ...)
    end
  end
end

-- The (256) float of every byte value under scale.
local function scale_table(scale, who)
  local v = {}
  for i = 0, 255 do v[i + 1] = i end
  return scale_pixels(lg.tensor(v), scale, who)
end

-- bytes: a core byte set (N, H, W) (core.load_idx_bytes); shape: the
-- tensor shape it stands for, (N, C, H, W).
local function byte_images(bytes, shape, scale, who)
  -- every field present (false when unused): a missing one would reach __index
  return setmetatable({bytes = bytes, dims = shape, lut = scale_table(scale, who),
                       scale = scale, rows = false, post = false}, ByteImages)
end

-- The rows `rows` (a 1-based index tensor) of the byte set src, each drawn
-- batch then passed through post(x) (a transform of whole images, which
-- treats every image on its own, so a batch gets what the whole set would).
local function byte_subset(src, rows, post)
  local dims = table.move(src.dims, 1, #src.dims, 1, {})
  dims[1] = rows:shape()[1]
  if src.rows then rows = src.rows:index_select(1, rows) end
  if src.post and post then
    local inner, outer = src.post, post
    post = function(x) return outer(inner(x)) end
  end
  return setmetatable({bytes = src.bytes, dims = dims, lut = src.lut, scale = src.scale,
                       rows = rows, post = post or src.post or false}, ByteImages)
end

local function with_rows(self, t, n)
  local s = {n}
  for d = 2, #self.dims do s[d] = self.dims[d] end
  return t:reshape(s)
end

function byte_methods.shape(self)
  return table.move(self.dims, 1, #self.dims, 1, {})
end

function byte_methods.size(self, d)
  if d == nil then return byte_methods.shape(self) end
  if d < 0 then d = #self.dims + 1 + d end
  local v = self.dims[d]
  if not v then error(string.format("size: dim %s out of range for %d dims", tostring(d), #self.dims), 2) end
  return v
end

function byte_methods.dim(self) return #self.dims end

function byte_methods.numel(self)
  local n = 1
  for _, v in ipairs(self.dims) do n = n * v end
  return n
end

local function check_dim1(dim, op)
  if dim ~= 1 then error(op .. ": a byte image set is drawn from along dim 1 only, got dim " ..
                         tostring(dim) .. " (convert it with :float() first)", 3) end
end

-- The drawn rows x (n, C, H, W) through the set's per-image transform, if any.
local function finish(self, x)
  if self.post then return self.post(x) end
  return x
end

-- Rows start..start+len-1 as floats (N', C, H, W).
function byte_methods.narrow(self, dim, start, len)
  check_dim1(dim, "narrow")
  if self.rows then
    if math.type(start) ~= "integer" or math.type(len) ~= "integer" or start < 1 or len < 0 or
       start + len - 1 > self.dims[1] then
      error(string.format("narrow: rows %s..%s are outside 1..%d", tostring(start),
                          tostring(start and len and start + len - 1), self.dims[1]), 2)
    end
    return finish(self, with_rows(self, self.bytes:gather(self.rows:narrow(1, start, len), self.lut), len))
  end
  return finish(self, with_rows(self, self.bytes:range(start, len, self.lut), len))
end

-- The rows idx (a tensor or a list of 1-based row numbers) as floats.
function byte_methods.index_select(self, dim, idx)
  check_dim1(dim, "index_select")
  local n = core.is_tensor(idx) and idx:shape()[1] or #idx
  if self.rows then
    if not core.is_tensor(idx) then idx = lg.tensor(idx) end
    idx = self.rows:index_select(1, idx)
  end
  return finish(self, with_rows(self, self.bytes:gather(idx, self.lut), n))
end

-- The whole set as one float tensor (N, C, H, W).
function byte_methods.float(self)
  return byte_methods.narrow(self, 1, 1, self.dims[1])
end

function byte_methods.detach(self) return self end

ByteImages.__tostring = function(self)
  return string.format("ByteImages(%s, %s)", table.concat(self.dims, "x"), self.scale)
end

local function load_mnist_like(who, name, default_dirs, install_hint, classes, o)
  o = check_opts(who, o, {"split", "path", "scale", "limit"})
  local split = o.split or "train"
  local prefix = SPLIT_PREFIX[split]
  if not prefix then error(who .. ": split must be \"train\" or \"test\", got " .. tostring(split), 3) end
  local scale = o.scale or "tanh"
  if not SCALES[scale] then scale_pixels(nil, scale, who) end   -- the error, before any reading
  if o.limit ~= nil and (math.type(o.limit) ~= "integer" or o.limit < 0) then
    error(who .. ": limit must be an integer >= 0, got " .. tostring(o.limit), 3)
  end
  local dirs, looked = {}, {}
  if o.path then
    dirs = {o.path}
  else
    local env = os.getenv("LUAGAN_DATA")
    if env and env ~= "" then dirs = {env .. "/" .. name, env} end
    for _, d in ipairs(default_dirs) do dirs[#dirs + 1] = d end
  end
  local img_path, lbl_path
  for _, d in ipairs(dirs) do
    img_path = find_file(d, prefix .. "-images-idx3-ubyte")
    lbl_path = find_file(d, prefix .. "-labels-idx1-ubyte")
    if img_path and lbl_path then break end
    looked[#looked + 1] = d
    img_path, lbl_path = nil, nil
  end
  if not img_path then
    error(string.format("%s: the %s data set (%s split) was not found in %s: %s", who, name,
                        split, table.concat(looked, ", "), install_hint), 3)
  end
  -- the pixels stay bytes; only the first `limit` rows are read at all
  local bytes, rows_in_file = core.load_idx_bytes(img_path, {limit = o.limit})
  local labels = core.load_idx(lbl_path)
  local si, sl = bytes:shape(), labels:shape()
  if #si ~= 3 then
    error(string.format("%s: %s: expected images N x H x W, got %s", who, img_path,
                        table.concat(si, "x")), 3)
  end
  if #sl ~= 1 or sl[1] ~= rows_in_file then
    error(string.format("%s: %s has %s labels but %s has %d images", who, lbl_path,
                        table.concat(sl, "x"), img_path, rows_in_file), 3)
  end
  local n = si[1]
  labels = labels:narrow(1, 1, n)
  local lv = labels:totable()
  for i = 1, n do
    local v = lv[i]
    if v < 0 or v >= #classes or v ~= math.floor(v) then
      -- the file's own 0-based labels, as stored (luagan adds 1 on loading)
      error(string.format("%s: %s: label %g at position %d is not a class 0..%d (IDX labels " ..
                          "are 0-based in the file)", who, lbl_path, v, i, #classes - 1), 3)
    end
  end
  return {
    images = byte_images(bytes, {n, 1, si[2], si[3]}, scale, who),
    labels = labels + 1,            -- 1-based classes, like every index in luagan
    classes = classes,
    scale = scale,
    name = name, split = split, files = {images = img_path, labels = lbl_path},
  }
end

-- fashion_mnist{split = "train"|"test", path = dir, scale = "tanh"|"unit"|"raw", limit = n}
-- -> {images = (N,1,28,28), labels = (N) classes 1..10, classes = {...names}}
-- images are ByteImages (above): the pixels kept as bytes, converted to
-- floats when rows are drawn (the DataLoader does it per batch); limit = n
-- reads only the first n images of the file.
-- Looks in path, else $LUAGAN_DATA/fashion-mnist and $LUAGAN_DATA, else the
-- Debian package's /usr/share/datasets/fashion-mnist.
function data.fashion_mnist(o)
  return load_mnist_like("data.fashion_mnist", "fashion-mnist",
    {"/usr/share/datasets/fashion-mnist"},
    "install it with `apt-get install dataset-fashion-mnist`, or set LUAGAN_DATA (or path=) " ..
    "to a directory holding train-images-idx3-ubyte.gz and friends",
    data.FASHION_MNIST_CLASSES, o)
end

-- mnist{...}: the same for MNIST (not packaged by Debian: download the four
-- IDX files and point LUAGAN_DATA or path= at them).
function data.mnist(o)
  return load_mnist_like("data.mnist", "mnist", {"/usr/share/datasets/mnist"},
    "download the four MNIST IDX files (train-images-idx3-ubyte.gz, ...) into a directory " ..
    "and set LUAGAN_DATA (or path=) to it",
    data.MNIST_CLASSES, o)
end

---------------------------------------------------------------------------
-- DataLoader

local Loader = {}
Loader.__index = Loader

local function is_rows(v) return core.is_tensor(v) or is_byte_images(v) end

local function as_tensor_list(who, ds)
  if is_rows(ds) then return {ds} end
  if type(ds) ~= "table" then error(who .. ": expected a tensor or a list of tensors, got " .. util.what(ds), 3) end
  if ds[1] == nil and ds.images then      -- a data set table: {images=, labels=}
    return ds.labels and {ds.images, ds.labels} or {ds.images}
  end
  if #ds == 0 then error(who .. ": empty list of tensors", 3) end
  for i, t in ipairs(ds) do
    if not is_rows(t) then error(string.format("%s: entry %d is %s", who, i, util.not_tensor(t)), 3) end
    if t:dim() == 0 then error(string.format("%s: entry %d is a 0-dim tensor", who, i), 3) end
    if t:shape()[1] ~= ds[1]:shape()[1] then
      error(string.format("%s: tensor %d has %d samples, tensor 1 has %d (dim 1 must match)",
                          who, i, t:shape()[1], ds[1]:shape()[1]), 3)
    end
  end
  return ds
end

-- DataLoader(tensors, {batch_size = 64, shuffle = false, drop_last = false, seed = nil,
--                      shard = nil | true | {rank = r, size = n}})
-- tensors: one tensor, a list of tensors sharing dim 1, or {images=, labels=};
-- ByteImages (fashion_mnist's images) count as tensors: their batches are
-- converted from the bytes as they are drawn.
-- Shuffling uses the loader's own generator (seeded by `seed`, or by a draw
-- from the global generator when no seed is given), so its order depends
-- only on the seed and the epoch, and state_dict()/load_state_dict() resume
-- it exactly, even in the middle of an epoch.
-- shard (data parallel, docs/distributed.md): every rank walks the same
-- shuffled order (give the same seed everywhere) in global batches of
-- size x batch_size and takes its own contiguous slice of each; true means
-- lg.dist's rank and size (looked up when an epoch starts). The position is
-- counted in samples, so a run can resume on another number of ranks.
function data.DataLoader(ds, o)
  local who = "data.DataLoader"
  o = check_opts(who, o, {"batch_size", "shuffle", "drop_last", "seed", "shard"})
  local tensors = as_tensor_list(who, ds)
  local bs = o.batch_size or 64
  if math.type(bs) ~= "integer" or bs < 1 then
    error(who .. ": batch_size must be a positive integer, got " .. tostring(bs), 2)
  end
  local n = tensors[1]:shape()[1]
  local seed = o.seed
  if seed == nil and o.shuffle then
    seed = math.floor(lg.rand(1):totable()[1] * 2 ^ 31)   -- reproducible under lg.manual_seed
  end
  local self = setmetatable({
    tensors = tensors, n = n, batch_size = bs,
    shuffle = o.shuffle and true or false, drop_last = o.drop_last and true or false,
    seed = seed, epochs = 0, start_sample = 0, shard = false,
  }, Loader)
  if self.shuffle then
    self.next_rng = with_seed(seed, lg.get_rng_state)
  end
  if o.shard ~= nil then self:set_shard(o.shard) end
  return self
end

-- set_shard(true | {rank = r, size = n} | false) -> self: take rank r's slice
-- (0-based, the MPI convention) of every global batch of n x batch_size
-- samples; true follows lg.dist; false reads the whole data again. Takes
-- effect at the next epoch() (a resumed position stays where it was).
function Loader:set_shard(s)
  local who = "DataLoader:set_shard"
  if s == nil or s == false or s == true then
    self.shard = s or false
    return self
  end
  if type(s) ~= "table" then
    error(who .. ": expected true, false or {rank = r, size = n}, got " .. util.what(s), 2)
  end
  check_opts(who, s, {"rank", "size"})
  local r, n = s.rank, s.size
  if math.type(n) ~= "integer" or n < 1 then
    error(who .. ": size must be an integer >= 1, got " .. tostring(n), 2)
  end
  if math.type(r) ~= "integer" or r < 0 or r >= n then
    error(string.format("%s: rank must be an integer in [0, %d), got %s", who, n, tostring(r)), 2)
  end
  self.shard = {rank = r, size = n}
  return self
end

-- rank, size of the current shard (0, 1 without one)
function Loader:shard_info()
  local s = self.shard
  if s == true then
    local dist = package.loaded["luagan.dist"]
    if not dist then return 0, 1 end
    return dist.rank(), dist.size()
  end
  if s then return s.rank, s.size end
  return 0, 1
end

-- Batches per epoch (global batches of a sharded loader). A sharded final
-- batch of fewer samples than ranks is dropped: every rank must get one.
function Loader:__len()
  local _, size = self:shard_info()
  local gb = self.batch_size * size
  local full, rem = self.n // gb, self.n % gb
  if self.drop_last or rem < size then return full end
  return full + 1
end
Loader.num_batches = Loader.__len

-- This rank's part (first, count; first 0-based within the batch) of a
-- global batch of len samples: b each when it is full, else near-equal
-- contiguous parts (the first len % size ranks one more).
local function shard_part(len, bs, rank, size)
  if len == bs * size then return rank * bs, bs end
  local q, r = len // size, len % size
  return rank * q + math.min(rank, r), q + (rank < r and 1 or 0)
end

-- for x, y in loader:epoch() do ... end: one pass over the data in batches
-- (copies, never views of the data set). Starting a new epoch() abandons
-- an unfinished one.
function Loader:epoch()
  self.epochs = self.epochs + 1
  local perm
  local cur = {epoch = self.epochs, sample = self.start_sample, rng = self.next_rng}
  if self.shuffle then
    self.next_rng, perm = with_state(self.next_rng, lg.randperm, self.n)
  end
  self.cur = cur
  self.start_sample = 0
  local rank, size = self:shard_info()
  local bs, n = self.batch_size, self.n
  local gb = bs * size
  return function()
    local len = self.cur == cur and math.min(gb, n - cur.sample) or 0
    if len <= 0 or len < size or (self.drop_last and len < gb) then
      if self.cur == cur then self.cur = nil end
      return nil
    end
    local first, cnt = shard_part(len, bs, rank, size)
    local start = cur.sample + first + 1
    cur.sample = cur.sample + len
    local out = {}
    if perm then
      local idx = perm:narrow(1, start, cnt)
      for i, t in ipairs(self.tensors) do out[i] = t:index_select(1, idx) end
    else
      for i, t in ipairs(self.tensors) do
        -- a byte set's narrow is already a fresh float copy
        out[i] = is_byte_images(t) and t:narrow(1, start, cnt) or t:narrow(1, start, cnt):clone()
      end
    end
    return table.unpack(out, 1, #self.tensors)
  end
end

-- The position to resume from: inside an epoch, its start state and the
-- samples already handed out (over all ranks: the same on every rank, and
-- valid for another number of ranks); between epochs, the next epoch.
-- pos: the same position in (global) batches, for reading.
function Loader:state_dict()
  local _, size = self:shard_info()
  local gb = self.batch_size * size
  if self.cur then
    return {epoch = self.cur.epoch, sample = self.cur.sample, pos = self.cur.sample // gb,
            rng = self.cur.rng or "", seed = self.seed or -1}
  end
  return {epoch = self.epochs + 1, sample = self.start_sample, pos = self.start_sample // gb,
          rng = self.next_rng or "", seed = self.seed or -1}
end

-- Accepts the states of older luagan too (pos in batches, no sample).
function Loader:load_state_dict(s)
  local who = "DataLoader:load_state_dict"
  if type(s) ~= "table" then error(who .. ": expected a table", 2) end
  local epoch = math.tointeger(tonumber(s.epoch))
  local sample = math.tointeger(tonumber(s.sample))
  if s.sample == nil then
    local pos = math.tointeger(tonumber(s.pos))
    sample = pos and pos * self.batch_size
  end
  if not epoch or epoch < 1 or not sample or sample < 0 or sample > self.n then
    error(string.format("%s: bad state (epoch %s, sample %s, pos %s) for %d samples", who,
                        tostring(s.epoch), tostring(s.sample), tostring(s.pos), self.n), 2)
  end
  if self.shuffle then
    if type(s.rng) ~= "string" or s.rng == "" then error(who .. ": missing generator state", 2) end
    self.next_rng = s.rng
  end
  self.epochs = epoch - 1
  self.start_sample = sample
  self.cur = nil
end

---------------------------------------------------------------------------
-- 2D mixtures of the PacGAN (Lin et al. 2018) / VEEGAN (Srivastava et al.
-- 2017) evaluation protocol (lg.eval2d). Each returns
-- samples (n,2), centres (K,2) and the 1-based mode of every sample (n).

-- Gaussian mixture with equal weights: centres is a (K,2) tensor.
local function mixture(centres, n, std)
  local k = centres:shape()[1]
  local labels = lg.randint(1, k + 1, {n})
  local x = centres:index_select(1, labels) + lg.randn(n, 2) * std
  return x, centres, labels
end

local function positive_int(who, v, name, def)
  v = v == nil and def or v
  if math.type(v) ~= "integer" or v < 1 then
    error(string.format("%s: %s must be a positive integer, got %s", who, name, tostring(v)), 3)
  end
  return v
end

-- ring{n = 2500, modes = 8, radius = 1, std = 0.01, seed = nil}: modes at
-- (r cos 2πk/K, r sin 2πk/K), k = 0..K-1 (K distinct angles: never
-- linspace(0, 2π, K), whose ends coincide).
function data.ring(o)
  o = check_opts("data.ring", o, {"n", "modes", "radius", "std", "seed"})
  local n = positive_int("data.ring", o.n, "n", 2500)
  local k = positive_int("data.ring", o.modes, "modes", 8)
  local r, std = o.radius or 1, o.std or 0.01
  local c = {}
  for i = 0, k - 1 do
    local a = 2 * math.pi * i / k
    c[i + 1] = {r * math.cos(a), r * math.sin(a)}
  end
  return with_seed(o.seed, mixture, lg.tensor(c), n, std)
end

-- grid{n = 2500, side = 5, spacing = 2, std = 0.05}: modes at
-- {-4,-2,0,2,4}^2 for the defaults (centred on 0).
function data.grid(o)
  o = check_opts("data.grid", o, {"n", "side", "spacing", "std", "seed"})
  local n = positive_int("data.grid", o.n, "n", 2500)
  local side = positive_int("data.grid", o.side, "side", 5)
  local sp, std = o.spacing or 2, o.std or 0.05
  local c, half = {}, (side - 1) / 2
  for i = 0, side - 1 do
    for j = 0, side - 1 do c[#c + 1] = {(i - half) * sp, (j - half) * sp} end
  end
  return with_seed(o.seed, mixture, lg.tensor(c), n, std)
end

-- Points on a curve f(t), t in [0,1], for plotting the true manifold.
local function curve(f, m)
  local c = {}
  for i = 0, m - 1 do c[i + 1] = {f(i / (m - 1))} end
  return lg.tensor(c)
end

-- spiral{n = 2500, turns = 1.5, std = 0.02}: one arm r = θ/(2π·turns),
-- θ = 2π·turns·sqrt(u) (uniform density along the area); no discrete modes:
-- the "centres" are 200 points along the true curve; labels are all 1.
function data.spiral(o)
  o = check_opts("data.spiral", o, {"n", "turns", "std", "seed"})
  local n = positive_int("data.spiral", o.n, "n", 2500)
  local turns, std = o.turns or 1.5, o.std or 0.02
  local span = 2 * math.pi * turns
  local function f(t) local th = span * t return th / span * math.cos(th), th / span * math.sin(th) end
  return with_seed(o.seed, function()
    local th = lg.rand(n):sqrt() * span
    local r = th / span
    local x = lg.stack({r * th:cos(), r * th:sin()}, 2) + lg.randn(n, 2) * std
    return x, curve(f, 200), lg.ones(n)
  end)
end

-- moons{n = 2500, std = 0.05}: the two interleaved half circles (as
-- sklearn's make_moons, centred on 0); labels 1 (upper) and 2 (lower);
-- "centres" are 100 points along each moon (rows 1-100 upper, 101-200 lower).
function data.moons(o)
  o = check_opts("data.moons", o, {"n", "std", "seed"})
  local n = positive_int("data.moons", o.n, "n", 2500)
  local std = o.std or 0.05
  local function up(t) return math.cos(math.pi * t) - 0.5, math.sin(math.pi * t) - 0.25 end
  local function down(t) return 1 - math.cos(math.pi * t) - 0.5, 0.25 - math.sin(math.pi * t) end
  local centres = lg.cat({curve(up, 100), curve(down, 100)}, 1)
  return with_seed(o.seed, function()
    local labels = lg.randint(1, 3, {n})
    local t = lg.rand(n) * math.pi
    local lower = labels - 1                       -- 0 upper, 1 lower
    local sgn = 1 - lower * 2                      -- +1 upper, -1 lower
    local x = (t:cos() * sgn) + lower - 0.5
    local y = (t:sin() * sgn) + (lower * 0.5 - 0.25)
    return lg.stack({x, y}, 2) + lg.randn(n, 2) * std, centres, labels
  end)
end

---------------------------------------------------------------------------
-- two domains with a known transform (for CycleGAN / CoGAN evaluation)

-- Transforms of images (N,1,H,W) whose values span `scale` (see SCALES).
data.transforms = {}

-- Invert the intensities: white on black becomes black on white.
function data.transforms.invert(x, scale)
  local r = SCALES[scale or "tanh"]
  return (x * -1) + (r[1] + r[2])
end

-- Sobel edge magnitude, /4 and clamped to the range (edges bright).
function data.transforms.edges(x, scale)
  local r = SCALES[scale or "tanh"]
  local s = x:shape()
  local N, C, H, W = s[1], s[2], s[3], s[4]
  local u = (x - r[1]) * (1 / (r[2] - r[1]))      -- to [0,1]
  local p = lg.zeros(N, C, H + 2, W + 2)
  lg.no_grad(function() p:narrow(3, 2, H):narrow(4, 2, W):copy_(u) end)
  local function S(dy, dx) return p:narrow(3, 1 + dy, H):narrow(4, 1 + dx, W) end
  local gx = (S(0, 2) + S(1, 2) * 2 + S(2, 2)) - (S(0, 0) + S(1, 0) * 2 + S(2, 0))
  local gy = (S(2, 0) + S(2, 1) * 2 + S(2, 2)) - (S(0, 0) + S(0, 1) * 2 + S(0, 2))
  local mag = ((gx * gx + gy * gy) + 1e-12):sqrt() * 0.25
  return mag:clamp(0, 1) * (r[2] - r[1]) + r[1]
end

-- Rotate by 90 degrees counterclockwise (needs H == W to keep the shape).
function data.transforms.rotate(x)
  local W = x:shape()[4]
  local rev = {}
  for i = 1, W do rev[i] = W + 1 - i end
  return x:transpose(3, 4):index_select(3, rev)
end

-- T^-1 where it exists (invert is its own inverse; rotating thrice undoes a rotation)
local INVERSES = {
  invert = function(x, scale) return data.transforms.invert(x, scale) end,
  rotate = function(x) local r = data.transforms.rotate; return r(r(r(x))) end,
}

-- unpaired{transform = "invert"|"edges"|"rotate", split=, path=, scale=, limit=, seed=}
-- Domain A: the originals of one random half of the images; domain B: the
-- transform of the other half. Training sees a and b only, which never hold
-- the same image, so no pair exists to learn from; evaluation gets the ground
-- truth through `transform` (T(a) is the true translation of any a) and
-- `truth` (for each row of a / b, the index of its source image).
-- Returns {a=, a_labels=, b=, b_labels=, transform = fn(x), inverse = fn(x) (T^-1;
--          nil for edges), truth = {a_index=, b_index=}, classes=, scale=}. With a byte data set (the default), a and b are
-- byte image sets too: rows drawn from b are transformed as they are drawn.
function data.unpaired(o)
  o = check_opts("data.unpaired", o, {"transform", "split", "path", "scale", "limit", "seed", "dataset"})
  local name = o.transform or "invert"
  local T = data.transforms[name]
  if not T then
    error("data.unpaired: transform must be \"invert\", \"edges\" or \"rotate\", got " .. tostring(name), 2)
  end
  local ds = o.dataset or data.fashion_mnist{split = o.split, path = o.path, scale = o.scale,
                                             limit = o.limit}
  local scale = ds.scale or o.scale or "tanh"
  local n = ds.images:shape()[1]
  if n < 2 then error("data.unpaired: need at least 2 images", 2) end
  local perm = with_seed(o.seed, lg.randperm, n)
  local half = n // 2
  local ia, ib = perm:narrow(1, 1, half), perm:narrow(1, half + 1, half)
  local function transform(x) return T(x, scale) end
  local a, b
  if is_byte_images(ds.images) then
    -- kept as bytes: the halves are row lists into them, B transformed per batch
    a, b = byte_subset(ds.images, ia), byte_subset(ds.images, ib, transform)
  else
    a, b = ds.images:index_select(1, ia), transform(ds.images:index_select(1, ib))
  end
  return {
    a = a, a_labels = ds.labels:index_select(1, ia),
    b = b, b_labels = ds.labels:index_select(1, ib),
    transform = transform, transform_name = name,
    inverse = INVERSES[name] and function(x) return INVERSES[name](x, scale) end or nil,
    truth = {a_index = ia, b_index = ib},
    classes = ds.classes, scale = scale,
  }
end

---------------------------------------------------------------------------
-- a folder of images

local IMAGE_EXT = {png = true, jpg = true, jpeg = true}   -- what read_image decodes (docs/images.md)

-- The regular files in dir and in its immediate subfolders, sorted by path
-- (listed with luagan.core, not a shell: a folder name is data).
local function files_to_depth2(dir)
  local out = {}
  for _, name in ipairs(core.listdir(dir)) do
    local p = dir .. "/" .. name
    if core.isfile(p) then out[#out + 1] = p
    elseif core.isdir(p) then
      local ok, sub = pcall(core.listdir, p)
      for _, f in ipairs(ok and sub or {}) do
        if core.isfile(p .. "/" .. f) then out[#out + 1] = p .. "/" .. f end
      end
    end
  end
  table.sort(out)
  return out
end

-- image_folder(dir, {size = 28 | {h, w}, channels = 1|3, scale = "tanh"|"unit", limit = n})
-- Images in dir/<class>/* get the class of their subfolder (classes sorted
-- by name, 1-based); images directly in dir form one class.
-- -> {images = (N,C,h,w), labels = (N), classes = {...}, files = {...}}
function data.image_folder(dir, o)
  local who = "data.image_folder"
  o = check_opts(who, o, {"size", "channels", "scale", "limit"})
  if type(dir) ~= "string" then error(who .. ": dir must be a string", 2) end
  local size = o.size or 64
  local h, w
  if type(size) == "table" then h, w = size[1], size[2] else h, w = size, size end
  if math.type(h) ~= "integer" or math.type(w) ~= "integer" or h < 1 or w < 1 then
    error(who .. ": size must be a positive integer or {h, w}", 2)
  end
  local channels = o.channels or 3
  if channels ~= 1 and channels ~= 3 then error(who .. ": channels must be 1 or 3", 2) end
  local scale = o.scale or "tanh"
  if not SCALES[scale] or scale == "raw" then error(who .. ": scale must be \"tanh\" or \"unit\"", 2) end
  if not core.isdir(dir) then error(who .. ": no PNG/JPEG/BMP/GIF/TGA images in " .. dir .. ": no such directory", 2) end
  local files = {}
  for _, line in ipairs(files_to_depth2(dir)) do
    local ext = line:match("%.([%w]+)$")
    if ext and IMAGE_EXT[ext:lower()] then files[#files + 1] = line end
  end
  if #files == 0 then
    error(who .. ": no PNG/JPEG images in " .. dir .. " or its subfolders", 2)
  end
  if o.limit then while #files > o.limit do files[#files] = nil end end
  local class_of, classes = {}, {}
  for _, f in ipairs(files) do
    local rel = f:sub(#dir + 2)
    local cls = rel:match("^([^/]+)/") or "."
    if not class_of[cls] then class_of[cls] = true; classes[#classes + 1] = cls end
  end
  table.sort(classes)
  local index = {}
  for i, c in ipairs(classes) do index[c] = i end
  local imgs, labels = {}, {}
  for i, f in ipairs(files) do
    local img = core.read_image(f, {channels = channels})       -- (C,H,W) in [0,1]
    local s = img:shape()
    if s[2] ~= h or s[3] ~= w then img = core.resize(img, h, w) end
    imgs[i] = img
    local rel = f:sub(#dir + 2)
    labels[i] = index[rel:match("^([^/]+)/") or "."]
  end
  local x = lg.stack(imgs, 1)
  local r = SCALES[scale]
  if scale ~= "unit" then x = x * (r[2] - r[1]) + r[1] end
  if #classes == 1 and classes[1] == "." then classes[1] = dir:match("([^/]+)/?$") or dir end
  return {images = x, labels = lg.tensor(labels), classes = classes, files = files, scale = scale}
end

return data
