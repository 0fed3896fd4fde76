-- luagan.io and luagan.image from Lua: safetensors round trips, checkpoints
-- of nested state, a file laid out by hand the way PyTorch's safetensors
-- writes it, malformed files, JSON and the metrics log, PNG grids and plots
-- read back. Expected bytes and pixels are built here by hand.
local T = ...
local lg = require "luagan"
local lio = require "luagan.io"
local image = require "luagan.image"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function path(name) return dir .. "/" .. name end

local function read_bytes(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_bytes(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
  return p
end

local function ls(d)
  local p = io.popen("ls -A '" .. d .. "'")
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

-- ---- safetensors -----------------------------------------------------------------------
T.test("save_safetensors / load_safetensors round trip", function()
  lg.manual_seed(1)
  local a, b = lg.randn(3, 4), lg.randn(2, 1, 5)
  local s = lg.tensor(7.5)
  lg.save_safetensors(path("rt.safetensors"), {["G.0.weight"] = a:t(), bias = b, s = s},
                      {step = "12", note = "ü \"q\"\n"})
  local ts, meta = lg.load_safetensors(path("rt.safetensors"))
  T.close(ts["G.0.weight"], a:t(), 0)
  T.close(ts.bias, b, 0)
  T.eq(ts.s:dim(), 0)
  T.eq(ts.s:item(), 7.5)
  T.eq(meta, {step = "12", note = "ü \"q\"\n"})
  T.ok(not ts["G.0.weight"].requires_grad)
  T.errors(function() lg.save_safetensors(path("x"), {a = 1}) end, "'a' is a number, not a (live) tensor")
  T.errors(function() lg.save_safetensors(path("x"), {a}) end, "names must be strings")
  T.errors(function() lg.save_safetensors(path("x"), {a = a}, {n = 1}) end, "metadata must map strings")
end)

-- The layout PyTorch's safetensors.torch.save_file writes, spelled out by
-- hand: {"__metadata__":{"format":"pt"}, ...} padded with spaces to 8 bytes.
local function pytorch_style_file(p)
  local header = '{"__metadata__":{"format":"pt"},' ..
    '"bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' ..
    '"weight":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}}'
  while (#header + 8) % 8 ~= 0 do header = header .. " " end
  local vals = {0.5, -1, 1, 2, 3, 4, 5, 6}
  local parts = {string.pack("<I8", #header), header}
  for _, v in ipairs(vals) do parts[#parts + 1] = string.pack("<f", v) end
  return write_bytes(p, table.concat(parts))
end

T.test("a file in PyTorch's layout, made by hand, loads", function()
  local p = pytorch_style_file(path("torch.safetensors"))
  local ts, meta = lio.load_checkpoint(p)          -- no luagan tree: flat table
  T.close(ts.weight, {{1, 2, 3}, {4, 5, 6}}, 0)
  T.close(ts.bias, {0.5, -1}, 0)
  T.eq(meta.format, "pt")
  -- and the bytes we write for the same content are the same bytes
  lg.save_safetensors(path("ours.safetensors"), {weight = ts.weight, bias = ts.bias}, {format = "pt"})
  T.eq(read_bytes(path("ours.safetensors")), read_bytes(p))
end)

T.test("python3 (stdlib only) reads what we write", function()
  local py = io.open("/usr/bin/python3", "rb")
  if not py then return end
  py:close()
  local x = lg.tensor{{1.5, -2}, {0.25, 8}}
  lio.save_checkpoint(path("py.safetensors"), {G = {["0.weight"] = x}, step = 3})
  local script = write_bytes(path("check.py"), [[
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
assert (8 + n) % 8 == 0, "data not 8-byte aligned"
e = h["G.0.weight"]
s, t = e["data_offsets"]
vals = struct.unpack("<%df" % ((t - s) // 4), b[8 + n + s:8 + n + t])
print(e["dtype"], e["shape"], list(vals), h["__metadata__"]["step"])
]])
  local p = io.popen("/usr/bin/python3 '" .. script .. "' '" .. path("py.safetensors") .. "' 2>&1")
  local out = p:read("a")
  p:close()
  T.eq(out, "F32 [2, 2] [1.5, -2.0, 0.25, 8.0] 3\n")
end)

T.test("malformed safetensors files are rejected with the file named", function()
  local good = read_bytes(pytorch_style_file(path("t.safetensors")))
  local p = write_bytes(path("trunc.safetensors"), good:sub(1, #good - 4))
  local err = T.errors(function() lg.load_safetensors(p) end, "outside the data region")
  T.ok(err:find(p, 1, true), err)
  p = write_bytes(path("len.safetensors"), string.pack("<I8", 1 << 40) .. good:sub(9))
  T.errors(function() lg.load_safetensors(p) end, "exceeds the file size")
  p = write_bytes(path("dtype.safetensors"), (good:gsub('"F32","shape":%[2%]', '"F64","shape":[1]')))
  T.errors(function() lg.load_safetensors(p) end, "dtype F64 not supported")
  p = write_bytes(path("json.safetensors"), (good:gsub('"bias":', '"bias" ')))
  T.errors(function() lg.load_safetensors(p) end, "expected ':'")
  T.errors(function() lio.load_checkpoint(path("nope.safetensors")) end, "nope.safetensors: cannot open")
end)

-- ---- checkpoints ------------------------------------------------------------------------
T.test("checkpoint of nested state comes back exactly", function()
  lg.manual_seed(3)
  local state = {
    G = {["0.weight"] = lg.randn(4, 3), ["0.bias"] = lg.zeros(4)},
    D = {["1.weight"] = lg.randn(2, 2)},
    optG = {["state.1.exp_avg"] = lg.ones(4, 3), ["state.1.step"] = 10, ["group.1.lr"] = 2e-4},
    step = 1200, epoch = 3, done = false, rng = lg.get_rng_state(),
    floats = {0.1, 1 / 3, -0.0, 1e-300, 2 ^ 60 + 0.0, math.huge, -math.huge},
    config = {loss = "ns", betas = {0.5, 0.999}, name = "naïve \"quoted\"\n", deep = {x = {y = 1}}},
    empty = {},
  }
  lio.save_checkpoint(path("ck.safetensors"), state)
  local ck, meta = lio.load_checkpoint(path("ck.safetensors"))
  T.ok(meta["luagan.tree"])
  T.close(ck.G["0.weight"], state.G["0.weight"], 0)
  T.close(ck.G["0.bias"], state.G["0.bias"], 0)
  T.close(ck.D["1.weight"], state.D["1.weight"], 0)
  T.close(ck.optG["state.1.exp_avg"], state.optG["state.1.exp_avg"], 0)
  T.eq(math.type(ck.step), "integer")
  T.eq(ck.step, 1200)
  T.eq(math.type(ck.optG["state.1.step"]), "integer")
  T.eq(ck.optG["group.1.lr"], 2e-4)
  T.eq(ck.done, false)
  T.eq(ck.rng, state.rng)
  for i, v in ipairs(state.floats) do
    T.eq(math.type(ck.floats[i]), "float")
    T.ok(ck.floats[i] == v, "float " .. i .. " round-trips: " .. tostring(ck.floats[i]))
  end
  T.eq(ck.config, state.config)
  T.eq(ck.empty, {})
  -- tensors are stored under their dotted paths for other tools
  local ts = lg.load_safetensors(path("ck.safetensors"))
  T.ok(ts["G.0.weight"] and ts["optG.state.1.exp_avg"])
  -- a NaN comes back as NaN
  lio.save_checkpoint(path("nan.safetensors"), {x = 0 / 0})
  local n = lio.load_checkpoint(path("nan.safetensors")).x
  T.ok(n ~= n)
end)

T.test("checkpoint errors and atomic replacement", function()
  local p = path("atomic.safetensors")
  lio.save_checkpoint(p, {w = lg.ones(2), step = 1})
  local before = read_bytes(p)
  T.errors(function() lio.save_checkpoint(p, {w = lg.ones(2), f = print}) end, "cannot store a function at 'f'")
  T.errors(function() lio.save_checkpoint(p, {a = {b = lg.ones(1)}, ["a.b"] = 1}) end, "same name 'a.b'")
  T.errors(function() lio.save_checkpoint(p, {[true] = 1}) end, "key of type boolean")
  T.errors(function() lio.save_checkpoint(p, {s = "\xff"}) end, "not valid UTF-8")
  T.errors(function() lio.save_checkpoint(p, lg.ones(2)) end, "state must be a table")
  T.eq(read_bytes(p), before, "a failed save leaves the old file")
  for _, f in ipairs(ls(dir)) do T.ok(not f:find("%.tmp%."), "leftover temp file " .. f) end
  T.errors(function() lio.save_checkpoint(path("no/such/dir/ck.safetensors"), {x = 1}) end, "cannot create")
  -- a tree that does not match the tensors
  lg.save_safetensors(path("tampered.safetensors"), {["a"] = lg.ones(1), ["b"] = lg.ones(1)},
                      {["luagan.tree"] = '{"a":"t"}'})
  T.errors(function() lio.load_checkpoint(path("tampered.safetensors")) end, "'b' is not listed")
  lg.save_safetensors(path("tampered2.safetensors"), {}, {["luagan.tree"] = '{"a":"t"}'})
  T.errors(function() lio.load_checkpoint(path("tampered2.safetensors")) end, "no such tensor")
  lg.save_safetensors(path("tampered3.safetensors"), {}, {["luagan.tree"] = '{"a":'})
  T.errors(function() lio.load_checkpoint(path("tampered3.safetensors")) end, "malformed")
end)

T.test("checkpoint strings keep NUL bytes, floats keep -0.0; NaN/inf and bad UTF-8", function()
  local p = path("bytes.safetensors")
  local state = {
    nul = "a\0b", only = "\0", ends = "x\0", mixed = "é\0\1\n\"\\😀", plain = "no nul",
    list = {"\0\0", "ok"}, nested = {s = "\0z"},
    negz = -0.0, zs = {-0.0, 0.0}, big = -1e-310, inf = math.huge, ninf = -math.huge, nan = 0 / 0,
  }
  lio.save_checkpoint(p, state)
  local ck, meta = lio.load_checkpoint(p)
  for _, k in ipairs{"nul", "only", "ends", "mixed", "plain"} do
    T.eq(ck[k], state[k], k .. " round-trips byte for byte")
  end
  T.eq(ck.list, state.list)
  T.eq(ck.nested.s, "\0z")
  -- a NUL-free string stays plain text for other tools; one with NUL is a JSON literal
  T.eq(meta.plain, "no nul")
  T.eq(meta.nul, '"a\\u0000b"')
  T.eq(math.type(ck.negz), "float")
  T.eq(1 / ck.negz, -math.huge, "-0.0 keeps its sign")
  T.eq(1 / ck.zs[1], -math.huge)
  T.eq(1 / ck.zs[2], math.huge)
  T.eq(ck.big, -1e-310)
  T.eq(ck.inf, math.huge)
  T.eq(ck.ninf, -math.huge)
  T.ok(ck.nan ~= ck.nan, "NaN stays NaN")
  T.eq(meta.nan, "NaN")
  T.eq(meta.negz, "-0.0")
  -- JSON itself: -0.0 and NUL both ways
  T.eq(lio.json_encode({-0.0, "a\0"}), '[-0.0,"a\\u0000"]')
  T.eq(1 / lio.json_decode("-0.0"), -math.huge)
  T.eq(lio.json_decode('"\\u0000x"'), "\0x")
  -- the format cannot hold other bytes: a clear error, the old file kept
  local before = read_bytes(p)
  T.errors(function() lio.save_checkpoint(p, {s = "\0\xff"}) end, "string at 's' is not valid UTF-8")
  T.errors(function() lio.save_checkpoint(p, {["a\0b"] = 1}) end, "contains a NUL byte")
  T.errors(function() lio.save_checkpoint(p, {x = 1}, {metadata = {note = "a\0b"}}) end,
           "contains a NUL byte")
  T.eq(read_bytes(p), before)
  -- the raw writer refuses NUL rather than cutting the string there
  T.errors(function() lg.save_safetensors(p, {}, {k = "a\0b"}) end,
           "the value of metadata 'k' contains a NUL byte")
  T.errors(function() lg.save_safetensors(p, {["w\0x"] = lg.ones(1)}) end, "tensor name")
  T.errors(function() lg.save_safetensors(p .. "\0.x", {}) end, "file name contains a NUL byte")
  T.eq(read_bytes(p), before)
  -- a hand-edited tree entry that is not a JSON string is named
  lg.save_safetensors(path("badq.safetensors"), {}, {["luagan.tree"] = '{"s":"q"}', s = "oops"})
  T.errors(function() lio.load_checkpoint(path("badq.safetensors")) end, "'s' is not a JSON string literal")
end)

-- ---- JSON and the metrics log -------------------------------------------------------------
T.test("json encode / decode", function()
  local v = {a = 1, b = {1.5, "x\n\"y\"", true, false}, c = {d = -2e-7}, e = "é\1"}
  local s = lio.json_encode(v)
  T.eq(s, '{"a":1,"b":[1.5,"x\\n\\"y\\"",true,false],"c":{"d":-2e-07},"e":"é\\u0001"}')
  T.eq(lio.json_decode(s), v)
  T.eq(lio.json_decode(' [1, 2.0, -3e2, "\\u00e9\\ud83d\\ude00", null, {}] '),
       {1, 2.0, -300.0, "é😀", nil, {}})
  T.eq(math.type(lio.json_decode("2")), "integer")
  T.eq(math.type(lio.json_decode("2.0")), "float")
  T.eq(lio.json_encode(2.0), "2.0")
  local nan = lio.json_decode("NaN")
  T.ok(nan ~= nan)
  T.eq(lio.json_decode("-Infinity"), -math.huge)
  T.errors(function() lio.json_decode("{1:2}") end, "expected a string key")
  T.errors(function() lio.json_decode("[1,]x") end, "json:")
  T.errors(function() lio.json_encode({f = print}) end, "cannot encode a function")
  T.errors(function() lio.json_encode({t = lg.ones(1)}) end, "tensor")
end)

T.test("metrics log: one JSON line per record, flushed per line, appendable", function()
  local p = path("metrics.jsonl")
  local log = lio.MetricsLog(p, {append = false})
  log:write{step = 1, loss_d = 0.5, loss_g = 1.25}
  -- readable before close: flushed per line
  T.eq(read_bytes(p), '{"loss_d":0.5,"loss_g":1.25,"step":1}\n')
  log:write{step = 2, loss_d = 0 / 0, loss_g = math.huge}
  log:close()
  local log2 = lio.MetricsLog(p)        -- append (a resumed run)
  log2:write{step = 3, loss_d = 0.25}
  log2:close()
  local f = assert(io.open(p, "a"))
  f:write('{"step":4,"loss_d":')        -- a crash in the middle of a line
  f:close()
  local recs = lio.read_jsonl(p)
  T.eq(#recs, 3)
  T.eq(recs[1], {step = 1, loss_d = 0.5, loss_g = 1.25})
  T.ok(recs[2].loss_d ~= recs[2].loss_d and recs[2].loss_g == math.huge)
  T.eq(recs[3].step, 3)
  write_bytes(path("bad.jsonl"), '{"a":1}\nnot json\n{"a":2}\n')
  T.errors(function() lio.read_jsonl(path("bad.jsonl")) end, "bad.jsonl:2")
  T.errors(function() log:write{step = 5} end, "closed")
end)

-- ---- images ------------------------------------------------------------------------------------
T.test("write_png / read_image round trip", function()
  local vals = {}
  for c = 1, 3 do
    vals[c] = {}
    for i = 1, 4 do
      vals[c][i] = {}
      for j = 1, 5 do vals[c][i][j] = ((c * 31 + i * 7 + j * 3) % 256) / 255 end
    end
  end
  local t = lg.tensor(vals)
  lg.write_png(path("rgb.png"), t)
  T.close(lg.read_image(path("rgb.png")), t, 1e-6)
  -- a range maps onto 0..255; gray (H,W)
  lg.write_png(path("g.png"), lg.tensor{{-1, 1}, {0, 3}}, {range = {-1, 1}})
  T.close(lg.read_image(path("g.png")), {{{0, 1}, {128 / 255, 1}}}, 1e-6)
  T.shape(lg.read_image(path("g.png"), {channels = 3}), {3, 2, 2})
  T.errors(function() lg.read_image(path("missing.png")) end, "missing.png: cannot open")
  T.errors(function() lg.write_png(path("x.png"), lg.zeros(2, 2, 2, 2)) end, "expected an image")
end)

T.test("save_grid: the PNG holds the images where make_grid puts them", function()
  -- 3 images 1x2x2 with values in [-1,1]; nrow 2, padding 1 -> 2 rows, 2 cols
  local imgs = lg.tensor{{{{-1, 1}, {0, 0.5}}}, {{{1, 1}, {1, 1}}}, {{{-1, -1}, {-1, 0}}}}
  local g = image.save_grid(path("grid.png"), imgs, {nrow = 2, padding = 1, pad_value = 0.25})
  T.shape(g, {1, 7, 7})
  local back = lg.read_image(path("grid.png"))
  T.shape(back, {1, 7, 7})
  local P = 64 / 255                              -- 0.25 * 255 = 63.75 -> 64
  local want = {
    {P, P, P, P, P, P, P},
    {P, 0, 1, P, 1, 1, P},
    {P, 128 / 255, 191 / 255, P, 1, 1, P},
    {P, P, P, P, P, P, P},
    {P, 0, 0, P, P, P, P},
    {P, 0, 128 / 255, P, P, P, P},
    {P, P, P, P, P, P, P},
  }
  T.close(back, {want}, 1e-6)
end)

T.test("scatter and loss-curve PNGs are drawn", function()
  local x, c = lg.data.ring{n = 400, seed = 2}
  local img = image.scatter(path("ring.png"), x, {centres = c, std = 0.01, size = 300, title = "ring"})
  T.shape(img, {3, 300, 300})
  T.shape(lg.read_image(path("ring.png")), {3, 300, 300})
  -- the pixel at mode (1, 0) is painted, the plot's centre (0, 0) is not
  local _, fx, fy = image.scatter(nil, x, {centres = c, std = 0.01, size = 300})
  local px, py = math.floor(fx(1)) + 1, math.floor(fy(0)) + 1
  T.ok(img[3][py][px] < 0.99 or img[1][py][px] < 0.99, "mode pixel painted")
  local cx, cy = math.floor(fx(0.3)) + 1, math.floor(fy(0.3)) + 1
  T.eq({img[1][cy][cx], img[2][cy][cx], img[3][cy][cx]}, {1.0, 1.0, 1.0})
  local p = path("m.jsonl")
  local log = lio.MetricsLog(p, {append = false})
  for i = 1, 50 do log:write{step = i, loss_d = 1 / i, loss_g = i / 50, lr = 1e-3} end
  log:close()
  local curve = image.loss_curve(path("loss.png"), p, {size = {320, 200}, title = "loss"})
  T.shape(curve, {3, 200, 320})
  local back = lg.read_image(path("loss.png"))
  T.shape(back, {3, 200, 320})
  -- both series' colours appear somewhere (orange for the second series)
  local c1 = image.PALETTE[2]
  local hits = lg.lt((back - lg.tensor(c1):view(3, 1, 1)):abs():sum(1), 0.05):sum():item()
  T.ok(hits > 20, "orange pixels: " .. hits)
  T.errors(function() image.scatter(nil, lg.zeros(3, 3)) end, "expected samples (N,2)")
end)


-- A 26-byte gzip whose IDX header claims 2^32-1 bytes: refused from the header
-- (deflate expands at most 1032:1), before any allocation (found by fuzz_idx).
T.test("gzip IDX claiming more than its file can hold is refused before allocating", function()
  local bomb = "\31\139\8\0\0\0\0\0\2\3\99\96\224\96\252\15\4\0\87\84\170\106\8\0\0\0"
  local p = write_bytes(path("bomb.idx.gz"), bomb)
  T.errors(function() lg.load_idx(p) end, "more than the 26-byte gzip file can hold")
end)

T.test("cleanup", function() os.execute("rm -rf '" .. dir .. "'") end)
