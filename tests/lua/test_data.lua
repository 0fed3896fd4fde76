-- luagan.data: IDX files made byte by byte here, the Fashion-MNIST loader
-- (on a small fake copy, and on the Debian data set when installed), the
-- DataLoader (batching, drop_last, seeded shuffling, exact resume), the 2D
-- mixtures, the two-domain sets and the image folder.
local T = ...
local lg = require "luagan"
local data = require "luagan.data"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function path(name) return dir .. "/" .. name end

local function put(name, bytes)
  local f = assert(io.open(path(name), "wb"))
  f:write(bytes)
  f:close()
  return path(name)
end

-- IDX bytes: magic 0 0 type ndim, big-endian uint32 sizes, then the values
local function idx_u8(shape, values)
  local parts = {string.pack("BBBB", 0, 0, 8, #shape)}
  for _, s in ipairs(shape) do parts[#parts + 1] = string.pack(">I4", s) end
  for _, v in ipairs(values) do parts[#parts + 1] = string.char(v) end
  return table.concat(parts)
end

local exe = arg and arg[-1]
if exe and exe:find("/") and exe:sub(1, 1) ~= "/" then exe = (os.getenv("PWD") or ".") .. "/" .. exe end

-- ---- IDX ---------------------------------------------------------------------------
T.test("an IDX file made by hand loads with its shape and raw values", function()
  local vals = {}
  for i = 1, 24 do vals[i] = (i * 11) % 256 end
  local t = data.load_idx(put("a.idx", idx_u8({2, 3, 4}, vals)))
  T.shape(t, {2, 3, 4})
  local flat = t:reshape(24):totable()
  for i = 1, 24 do T.eq(flat[i], vals[i]) end
end)

T.test("IDX errors name the file and the field", function()
  local p = put("short.idx", idx_u8({3, 2}, {1, 2, 3, 4}))
  local err = T.errors(function() data.load_idx(p) end, "truncated: header says 3x2 ubyte = 6 bytes")
  T.ok(err:find(p, 1, true), err)
  p = put("bad.idx", "\1\2\8\1" .. string.pack(">I4", 1) .. "x")
  T.errors(function() data.load_idx(p) end, "bad magic number")
  T.errors(function() data.load_idx(path("missing.idx")) end, "missing.idx: cannot open")
end)

T.test("save_idx round trip, float32 and ubyte, plain and gzip", function()
  local x = lg.tensor{{0.5, -1.25}, {3, 1e-3}}
  data.save_idx(path("f.idx.gz"), x)
  T.close(data.load_idx(path("f.idx.gz")), x, 0)
  local u = lg.tensor{{0, 255}, {7, 128}}
  data.save_idx(path("u.idx"), u, {dtype = "ubyte"})
  local f = assert(io.open(path("u.idx"), "rb"))
  local bytes = f:read("a")
  f:close()
  T.eq(bytes, idx_u8({2, 2}, {0, 255, 7, 128}))
  T.errors(function() data.save_idx(path("v.idx"), u + 200, {dtype = "ubyte"}) end, "outside 0..255")
  T.errors(function() data.save_idx(path("v.idx"), u, {dtype = "int8"}) end, "dtype")
end)

-- ---- Fashion-MNIST ---------------------------------------------------------------------
-- A fake data set directory: n images 28x28 of value (i*5 + pixel) % 256 and labels i % 10.
local function fake_fashion(sub, n, bad_label)
  local d = path(sub)
  os.execute("mkdir -p '" .. d .. "'")
  local imgs, lbls = {}, {}
  for i = 0, n - 1 do
    for p = 0, 783 do imgs[#imgs + 1] = (i * 5 + p) % 256 end
    lbls[#lbls + 1] = i % 10
  end
  if bad_label then lbls[n] = bad_label end
  for _, split in ipairs{"train", "t10k"} do
    put(sub .. "/" .. split .. "-images-idx3-ubyte", idx_u8({n, 28, 28}, imgs))
    put(sub .. "/" .. split .. "-labels-idx1-ubyte", idx_u8({n}, lbls))
  end
  return d
end

T.test("fashion_mnist from a path: shapes, scaling, 1-based labels, classes", function()
  local d = fake_fashion("fm", 12)
  local ds = data.fashion_mnist{path = d, split = "test"}
  T.shape(ds.images, {12, 1, 28, 28})
  T.shape(ds.labels, {12})
  T.eq(#ds.classes, 10)
  T.eq(ds.classes[1], "T-shirt/top")
  T.eq(ds.classes[10], "Ankle boot")
  for i = 1, 12 do T.eq(ds.labels[i], (i - 1) % 10 + 1) end
  -- pixel (row 1, col 3) of image 2 is (1*5 + 2) % 256 = 7 -> 7/127.5 - 1
  T.near(ds.images[2][1][1][3], 7 / 127.5 - 1, 1e-6)
  T.near(ds.images:max():item(), 1, 1e-6)
  T.near(ds.images:min():item(), -1, 1e-6)
  local unit = data.fashion_mnist{path = d, scale = "unit", limit = 5}
  T.shape(unit.images, {5, 1, 28, 28})
  T.near(unit.images[2][1][1][3], 7 / 255, 1e-6)
  local raw = data.fashion_mnist{path = d, scale = "raw"}
  T.eq(raw.images[2][1][1][3], 7)
end)

T.test("fashion_mnist: missing or corrupt data sets are clear errors", function()
  local err = T.errors(function() data.fashion_mnist{path = path("nowhere")} end,
                       "apt-get install dataset-fashion-mnist")
  T.ok(err:find("LUAGAN_DATA", 1, true), err)
  T.ok(err:find(path("nowhere"), 1, true), err)
  T.errors(function() data.fashion_mnist{path = fake_fashion("fmbad", 4, 10)} end,
           "label 10 at position 4 is not a class 0..9")
  T.errors(function() data.fashion_mnist{path = fake_fashion("fm", 12), split = "val"} end, "split")
  T.errors(function() data.fashion_mnist{path = fake_fashion("fm", 12), scale = "x"} end, "scale")
  T.errors(function() data.fashion_mnist{pth = "x"} end, "unknown option 'pth'")
  T.errors(function() data.mnist{path = path("nowhere")} end, "LUAGAN_DATA")
end)

T.test("LUAGAN_DATA is searched (subprocess with the variable set)", function()
  if not exe then return end
  local d = fake_fashion("env/fashion-mnist", 3)
  local script = put("env.lua", [[
local ds = require("luagan.data").fashion_mnist{split = "train"}
io.write(table.concat(ds.images:shape(), "x"), " ", ds.files.images)]])
  local p = io.popen("LUAGAN_DATA='" .. path("env") .. "' '" .. exe .. "' '" .. script .. "' 2>&1")
  local out = p:read("a")
  p:close()
  T.eq(out, "3x1x28x28 " .. d .. "/train-images-idx3-ubyte")
end)

-- ---- images kept as bytes ------------------------------------------------------------------
-- The loader before issue 16: every image as a float, scaled by whole-tensor
-- ops. The byte path must give the same floats, bit for bit.
local function old_float_images(img_path, scale, n)
  local x = lg.core.load_idx(img_path)
  local s = x:shape()
  n = n or s[1]
  x = x:narrow(1, 1, n):reshape(n, 1, s[2], s[3])
  local r = data.SCALES[scale]
  if scale == "raw" then return x end
  return (x * ((r[2] - r[1]) / 255) + r[1]):clamp(r[1], r[2])
end

-- Every batch of two loaders over the same rows, compared exactly.
local function same_batches(a, b, opts, max)
  local la, lb = data.DataLoader(a, opts), data.DataLoader(b, opts)
  local ea, eb = la:epoch(), lb:epoch()
  local count = 0
  while true do
    local xa, xb = ea(), eb()
    if xa == nil or xb == nil then T.eq(xa == nil, xb == nil, "same number of batches") break end
    T.ok(lg.is_tensor(xa), "a batch of a byte set is a float tensor")
    T.close(xa, xb, 0)
    count = count + 1
    if max and count >= max then break end
  end
  return count
end

local debian = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
local f = io.open(debian, "rb")
if f then
  f:close()
  T.test("the Debian Fashion-MNIST loads: 60000 and 10000 images of 28x28", function()
    local tr = data.fashion_mnist{split = "train"}
    T.shape(tr.images, {60000, 1, 28, 28})
    T.shape(tr.labels, {60000})
    T.eq(tr.labels:min():item(), 1)
    T.eq(tr.labels:max():item(), 10)
    T.near(tr.images:min():item(), -1, 1e-6)
    T.near(tr.images:max():item(), 1, 1e-6)
    -- the data set is balanced: 6000 images per class
    T.eq(lg.eq(tr.labels, lg.full({60000}, 3)):sum():item(), 6000)
    local te = data.fashion_mnist{split = "test"}
    T.shape(te.images, {10000, 1, 28, 28})
    T.shape(te.labels, {10000})
    T.eq(te.labels[1], 10)        -- the first test image is an ankle boot (class 9, 0-based)
  end)

  T.test("Debian Fashion-MNIST as bytes: its first batches are the full-float path's", function()
    local tr = data.fashion_mnist{split = "train"}
    local old = old_float_images(tr.files.images, "tanh")
    T.eq(same_batches({tr.images, tr.labels}, {old, tr.labels},
                      {batch_size = 64, shuffle = true, seed = 1, drop_last = true}, 5), 5)
    T.eq(same_batches(tr.images, old, {batch_size = 64}, 3), 3)
    T.close(tr.images:narrow(1, 59937, 64), old:narrow(1, 59937, 64), 0)
    old = nil
    local part = data.fashion_mnist{split = "train", limit = 20000}
    T.shape(part.images, {20000, 1, 28, 28})
    T.shape(part.labels, {20000})
    T.close(part.images:narrow(1, 19901, 100), tr.images:narrow(1, 19901, 100), 0)
  end)
end

T.test("images kept as bytes: the floats of the full-float path, bit for bit", function()
  local d = fake_fashion("fmb", 12)
  for _, scale in ipairs{"tanh", "unit", "raw"} do
    local ds = data.fashion_mnist{path = d, scale = scale}
    T.ok(data.is_byte_images(ds.images), "images are kept as bytes")
    local old = old_float_images(ds.files.images, scale)
    T.close(ds.images:float(), old, 0)
    T.close(ds.images:narrow(1, 3, 4), old:narrow(1, 3, 4), 0)
    T.close(ds.images:index_select(1, lg.tensor{12, 1, 5, 5}), old:index_select(1, lg.tensor{12, 1, 5, 5}), 0)
    T.close(ds.images:index_select(1, {2, 3}), old:index_select(1, lg.tensor{2, 3}), 0)
    T.close(ds.images[7], old[7], 0)
    T.eq(ds.images:size(1), 12)
    T.eq(ds.images:dim(), 4)
    T.eq(ds.images:numel(), 12 * 784)
    T.near(ds.images:mean():item(), old:mean():item(), 0)  -- other methods run on the floats
    -- the DataLoader draws the same batches (in order, shuffled, a short last one)
    T.eq(same_batches(ds.images, old, {batch_size = 5}), 3)
    T.eq(same_batches({ds.images, ds.labels}, {old, ds.labels},
                      {batch_size = 5, shuffle = true, seed = 4, drop_last = true}), 2)
  end
end)

T.test("byte images: misuse is a one-line error", function()
  local ds = data.fashion_mnist{path = fake_fashion("fmb", 12)}
  T.errors(function() ds.images:narrow(2, 1, 1) end, "along dim 1 only, got dim 2")
  T.errors(function() ds.images:index_select(1, lg.tensor{13}) end, "row 13 at position 1 is outside 1..12")
  T.errors(function() ds.images:index_select(1, {1, 1.5}) end, "not an integer")
  T.errors(function() ds.images:narrow(1, 10, 5) end, "rows 10..14 are outside 1..12")
  T.errors(function() data.fashion_mnist{path = fake_fashion("fmb", 12), limit = -1} end, "limit")
end)

T.test("limit reads only the first images: a gzip stream cut after them still loads", function()
  -- 400 images of noise (incompressible), gzip, the file cut to a third:
  -- the first 20 images decompress, the rest of the stream is never read
  local n = 400
  local x = lg.randint(0, 256, {n, 28, 28})
  local sub = path("cut")
  os.execute("mkdir -p '" .. sub .. "'")
  data.save_idx(sub .. "/full.gz", x, {dtype = "ubyte"})
  local f = assert(io.open(sub .. "/full.gz", "rb"))
  local gz = f:read("a")
  f:close()
  put("cut/train-images-idx3-ubyte.gz", gz:sub(1, #gz // 3))
  local lbl = {}
  for i = 1, n do lbl[i] = i % 10 end
  put("cut/train-labels-idx1-ubyte", idx_u8({n}, lbl))
  local ds = data.fashion_mnist{path = sub, limit = 20, scale = "raw"}
  T.shape(ds.images, {20, 1, 28, 28})
  T.shape(ds.labels, {20})
  T.close(ds.images:float(), x:narrow(1, 1, 20):reshape(20, 1, 28, 28), 0)
  T.errors(function() data.fashion_mnist{path = sub} end, "train-images-idx3-ubyte.gz")
  -- labels and images must still agree in count over the whole files
  lbl[n] = nil
  put("cut/train-labels-idx1-ubyte", idx_u8({n - 1}, lbl))
  T.errors(function() data.fashion_mnist{path = sub, limit = 20} end, "399 labels but")
end)

-- ---- DataLoader ---------------------------------------------------------------------------
local function column(n)    -- x = 1..n as (n,1), y = 2x as (n)
  local xs, ys = {}, {}
  for i = 1, n do xs[i] = {i}; ys[i] = 2 * i end
  return lg.tensor(xs), lg.tensor(ys)
end

local function batches(loader)
  local out = {}
  for x, y in loader:epoch() do
    local xs, ys = x:reshape(x:shape()[1]):totable(), y:totable()
    for i = 1, #xs do T.eq(ys[i], 2 * xs[i]) end       -- x and y stay aligned
    out[#out + 1] = xs
  end
  return out
end

T.test("DataLoader batches in order, with and without drop_last", function()
  local x, y = column(10)
  local l = data.DataLoader({x, y}, {batch_size = 3})
  T.eq(#l, 4)
  T.eq(batches(l), {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10}})
  local d = data.DataLoader({x, y}, {batch_size = 3, drop_last = true})
  T.eq(#d, 3)
  T.eq(batches(d), {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}})
  local one = data.DataLoader(x, {batch_size = 4})
  local n = 0
  for b in one:epoch() do n = n + 1; T.eq(b:dim(), 2) end
  T.eq(n, 3)
  -- batches are copies: writing into one leaves the data set alone
  for b in one:epoch() do lg.no_grad(function() b:fill_(0) end) end
  T.eq(x[1][1], 1)
  T.errors(function() data.DataLoader({x, lg.zeros(9)}, {batch_size = 2}) end, "tensor 2 has 9 samples")
  T.errors(function() data.DataLoader({x}, {batch_size = 0}) end, "batch_size")
  T.errors(function() data.DataLoader({x}, {batchsize = 2}) end, "unknown option 'batchsize'")
end)

T.test("DataLoader shuffling: a permutation per epoch, reproducible, own generator", function()
  local x, y = column(23)
  local before = lg.get_rng_state()
  local a = data.DataLoader({x, y}, {batch_size = 5, shuffle = true, seed = 42})
  local b = data.DataLoader({x, y}, {batch_size = 5, shuffle = true, seed = 42})
  local c = data.DataLoader({x, y}, {batch_size = 5, shuffle = true, seed = 43})
  local e1, e2 = batches(a), batches(a)
  T.eq(lg.get_rng_state(), before, "the global generator is untouched")
  T.eq(batches(b), e1)
  T.eq(batches(b), e2)
  T.ok(not pcall(T.eq, batches(c), e1), "another seed gives another order")
  T.ok(not pcall(T.eq, e1, e2), "each epoch has its own order")
  for _, e in ipairs{e1, e2} do
    local seen = {}
    for _, bt in ipairs(e) do for _, v in ipairs(bt) do T.ok(not seen[v]); seen[v] = true end end
    for i = 1, 23 do T.ok(seen[i], "sample " .. i .. " in every epoch") end
    T.eq(#e[5], 3)
  end
  -- without a seed the order follows lg.manual_seed
  lg.manual_seed(5)
  local d1 = batches(data.DataLoader({x, y}, {batch_size = 5, shuffle = true}))
  lg.manual_seed(5)
  local d2 = batches(data.DataLoader({x, y}, {batch_size = 5, shuffle = true}))
  T.eq(d1, d2)
end)

T.test("DataLoader resumes exactly, mid-epoch and between epochs", function()
  local x, y = column(17)
  local opts = {batch_size = 4, shuffle = true, seed = 7, drop_last = true}
  local full = data.DataLoader({x, y}, opts)
  local ref = {batches(full), batches(full), batches(full)}
  -- stop after 2 batches of epoch 2, save, resume in a fresh loader
  local a = data.DataLoader({x, y}, opts)
  batches(a)
  local it = a:epoch()
  it(); it()
  local st = a:state_dict()
  T.eq(st.epoch, 2)
  T.eq(st.pos, 2)
  local b = data.DataLoader({x, y}, {batch_size = 4, shuffle = true, seed = 999, drop_last = true})
  b:load_state_dict(st)
  local rest = batches(b)
  T.eq(rest, {ref[2][3], ref[2][4]})
  T.eq(batches(b), ref[3])
  -- between epochs
  local c = data.DataLoader({x, y}, opts)
  batches(c)
  local d = data.DataLoader({x, y}, opts)
  d:load_state_dict(c:state_dict())
  T.eq(batches(d), ref[2])
  -- the state survives a checkpoint (numbers and strings only)
  local io_ = require "luagan.io"
  io_.save_checkpoint(path("loader.safetensors"), {loader = st})
  local e = data.DataLoader({x, y}, opts)
  e:load_state_dict(io_.load_checkpoint(path("loader.safetensors")).loader)
  T.eq(batches(e), {ref[2][3], ref[2][4]})
  T.errors(function() e:load_state_dict({epoch = 0, pos = 0}) end, "bad state")
end)

-- ---- 2D mixtures ------------------------------------------------------------------------------
-- Every sample is nearest to its labelled centre, none is farther than 6σ
-- from it, and at most a handful are beyond 4σ (a 2D Gaussian puts
-- exp(-8) = 0.03 % of its mass there). Returns the number of modes used.
local function check_mixture(x, centres, labels, std)
  local xs, cs, ls = x:totable(), centres:totable(), labels:totable()
  local used, beyond4 = {}, 0
  for i, p in ipairs(xs) do
    local best, bd = nil, math.huge
    for j, c in ipairs(cs) do
      local d = math.sqrt((p[1] - c[1]) ^ 2 + (p[2] - c[2]) ^ 2)
      if d < bd then best, bd = j, d end
    end
    T.ok(bd <= 6 * std, string.format("sample %d is %.4g from the nearest centre", i, bd))
    if bd > 4 * std then beyond4 = beyond4 + 1 end
    T.eq(best, ls[i])
    used[best] = true
  end
  T.ok(beyond4 <= 5, beyond4 .. " samples beyond 4 sigma")
  local n = 0
  for _ in pairs(used) do n = n + 1 end
  return n
end

T.test("ring of 8: distinct modes at angles 2πk/8, σ = 0.01", function()
  local x, c, l = data.ring{n = 2500, seed = 1}
  T.shape(x, {2500, 2})
  T.shape(c, {8, 2})
  local cs = c:totable()
  for k = 0, 7 do
    T.near(cs[k + 1][1], math.cos(2 * math.pi * k / 8), 1e-6)
    T.near(cs[k + 1][2], math.sin(2 * math.pi * k / 8), 1e-6)
  end
  for i = 1, 8 do
    for j = i + 1, 8 do
      local d = math.sqrt((cs[i][1] - cs[j][1]) ^ 2 + (cs[i][2] - cs[j][2]) ^ 2)
      T.ok(d > 0.7, "modes " .. i .. " and " .. j .. " are distinct")
    end
  end
  T.eq(check_mixture(x, c, l, 0.01), 8)
  -- the empirical std per coordinate is σ
  local dev = x - c:index_select(1, l)
  local sd = dev:std():item()
  T.ok(math.abs(sd - 0.01) < 0.0005, "sample std " .. sd)
  local x2 = data.ring{n = 2500, seed = 1}
  T.close(x2, x, 0)
end)

T.test("grid of 25 at {-4,-2,0,2,4}^2, σ = 0.05", function()
  local x, c, l = data.grid{n = 2500, seed = 2}
  T.shape(c, {25, 2})
  local want = {}
  for _, a in ipairs{-4, -2, 0, 2, 4} do for _, b in ipairs{-4, -2, 0, 2, 4} do want[a .. "," .. b] = true end end
  local got = 0
  for _, p in ipairs(c:totable()) do
    local key = string.format("%d,%d", p[1], p[2])
    T.ok(want[key], key)
    want[key] = nil
    got = got + 1
  end
  T.eq(got, 25)
  T.eq(check_mixture(x, c, l, 0.05), 25)
end)

T.test("spiral and moons: samples near their curves", function()
  local x, curve = data.spiral{n = 500, seed = 3}
  T.shape(x, {500, 2})
  T.shape(curve, {200, 2})
  local xm, cm, lm = data.moons{n = 500, seed = 3}
  T.shape(xm, {500, 2})
  T.shape(cm, {200, 2})
  local cs, ls = cm:totable(), lm:totable()
  for i, p in ipairs(xm:totable()) do
    local bd, bj = math.huge, 0
    for j, c in ipairs(cs) do
      local d = math.sqrt((p[1] - c[1]) ^ 2 + (p[2] - c[2]) ^ 2)
      if d < bd then bd, bj = d, j end
    end
    T.ok(bd < 4.5 * 0.05 + 0.02, "moon sample " .. i .. " off its curve by " .. bd)
    if bd < 0.1 then T.eq(bj <= 100 and 1 or 2, ls[i]) end
  end
  local sc = curve:totable()
  for _, p in ipairs(x:totable()) do
    local bd = math.huge
    for _, c in ipairs(sc) do bd = math.min(bd, math.sqrt((p[1] - c[1]) ^ 2 + (p[2] - c[2]) ^ 2)) end
    T.ok(bd < 4.5 * 0.02 + 0.05, "spiral sample off its curve by " .. bd)
  end
end)

-- ---- two domains ---------------------------------------------------------------------------------
T.test("unpaired domains: disjoint halves, known transforms", function()
  local ds = data.fashion_mnist{path = fake_fashion("fm", 12)}
  for _, name in ipairs{"invert", "edges", "rotate"} do
    local u = data.unpaired{transform = name, dataset = ds, seed = 4}
    T.shape(u.a, {6, 1, 28, 28})
    T.shape(u.b, {6, 1, 28, 28})
    local seen = {}
    for _, i in ipairs(u.truth.a_index:totable()) do seen[i] = "a" end
    for _, i in ipairs(u.truth.b_index:totable()) do T.ok(seen[i] == nil, "b image also in a"); seen[i] = "b" end
    -- a and b stay bytes (row lists into ds.images); b is transformed as drawn,
    -- which gives what transforming the whole half did, bit for bit
    T.ok(data.is_byte_images(u.a) and data.is_byte_images(u.b))
    local old_a = ds.images:index_select(1, u.truth.a_index)
    local old_b = u.transform(ds.images:index_select(1, u.truth.b_index))
    T.close(u.a:float(), old_a, 0)
    T.close(u.b:float(), old_b, 0)
    T.close(u.b:narrow(1, 2, 3), old_b:narrow(1, 2, 3), 0)
    T.close(u.b:index_select(1, lg.tensor{6, 1}), old_b:index_select(1, lg.tensor{6, 1}), 0)
    T.eq(same_batches(u.b, old_b, {batch_size = 4, shuffle = true, seed = 2}), 2)
    T.errors(function() u.a:narrow(1, 5, 3) end, "rows 5..7 are outside 1..6")
    -- a data set of float tensors gives float halves
    local f = data.unpaired{transform = name, dataset = {images = ds.images:float(), labels = ds.labels},
                            seed = 4}
    T.ok(lg.is_tensor(f.a) and lg.is_tensor(f.b))
    T.close(f.b, old_b, 0)
    T.close(u.b_labels, ds.labels:index_select(1, u.truth.b_index), 0)
  end
  local img = lg.tensor{{{{-1, 1, 0.5}, {0, -0.5, 1}, {1, 1, -1}}}}   -- 1x1x3x3 in [-1,1]
  T.close(data.transforms.invert(img), img * -1, 1e-7)
  T.close(data.transforms.invert(lg.tensor{0, 0.25, 1}, "unit"), {1, 0.75, 0}, 1e-7)
  -- rotation: counterclockwise, four times is the identity
  T.close(data.transforms.rotate(img), {{{{0.5, 1, -1}, {1, -0.5, 1}, {-1, 0, 1}}}}, 0)
  local r4 = img
  for _ = 1, 4 do r4 = data.transforms.rotate(r4) end
  T.close(r4, img, 0)
  -- Sobel on a vertical step (unit scale): columns 0 0 1 1; the two middle
  -- columns see |gx| = 4 in the interior rows -> 4/4 = 1
  local step = lg.tensor{{{{0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 1, 1}}}}
  local e = data.transforms.edges(step, "unit")
  T.near(e[1][1][2][2], 1, 1e-5)
  T.near(e[1][1][3][3], 1, 1e-5)
  -- gx at (2,2) is 4 and gy 0; at the top row (1,2) the zero padding gives
  -- gx = 3 and gy = 1: sqrt(10)/4
  T.near(e[1][1][1][2], math.sqrt(10) / 4, 1e-5)
  T.errors(function() data.unpaired{transform = "blur", dataset = ds} end, "transform")
end)

-- ---- image folder -----------------------------------------------------------------------------------
T.test("image_folder: classes from subfolders, resized, scaled", function()
  local root = path("folder")
  os.execute("mkdir -p '" .. root .. "/cats' '" .. root .. "/dogs'")
  local function flat(c, h, w, v) return lg.full({c, h, w}, v) end
  lg.write_png(root .. "/dogs/d1.png", flat(3, 10, 12, 1))
  lg.write_png(root .. "/cats/c1.png", flat(3, 6, 6, 0))
  lg.write_png(root .. "/cats/c2.png", flat(1, 20, 20, 128 / 255))   -- gray, read as RGB
  put("folder/cats/notes.txt", "not an image")
  local ds = data.image_folder(root, {size = 8})
  T.shape(ds.images, {3, 3, 8, 8})
  T.eq(ds.classes, {"cats", "dogs"})
  T.eq(ds.labels:totable(), {1, 1, 2})
  T.close(ds.images[1], -1, 1e-6)
  T.close(ds.images[2], 128 / 127.5 - 1, 1e-5)
  T.close(ds.images[3], 1, 1e-6)
  local g = data.image_folder(root, {size = {4, 6}, channels = 1, scale = "unit"})
  T.shape(g.images, {3, 1, 4, 6})
  T.errors(function() data.image_folder(path("empty-none")) end, "no PNG/JPEG")
  T.errors(function() data.image_folder(root, {size = 0}) end, "size")
end)

T.test("cleanup", function() os.execute("rm -rf '" .. dir .. "'") end)
