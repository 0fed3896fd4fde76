-- luagan.image: pictures of what a GAN does, as PNG files, with no plotting
-- library: sample grids, scatter plots of 2D samples over the true mixture,
-- and loss curves from the JSONL metrics log. Images are (C,H,W) tensors in
-- [0,1]; drawing happens in C (luagan.core draw_* functions).
--
--   local image = require "luagan.image"        -- also lg.image
--   image.save_grid("out/samples.png", G(z), {nrow = 8, range = {-1, 1}})
--   image.scatter("out/ring.png", G(z2d), {centres = centres, std = 0.01})
--   image.loss_curve("out/loss.png", "out/metrics.jsonl", {keys = {"loss_d", "loss_g"}})
local lg = require "luagan"
local core = require "luagan.core"
local util = require "luagan.util"
local opts_check = util.check_opts

local image = {}

image.write_png = core.write_png     -- (path, t (C,H,W)|(H,W), {range = {0, 1}})
image.read = core.read_image         -- (path, {channels = n}) -> (C,H,W) in [0,1]
image.resize = core.resize           -- (t, h, w), antialiased bilinear
image.grid = core.image_grid         -- (t (N,C,H,W), opts) -> (C,H',W') in [0,1]

-- save_grid(path, t (N,C,H,W) or (C,H,W), {nrow = 8, padding = 2, range = {-1, 1},
-- pad_value = 0}) writes the tiled images as one PNG (nrow images per row, as
-- torchvision's make_grid) and returns the grid tensor.
function image.save_grid(path, t, o)
  o = opts_check("image.save_grid", o, {"nrow", "padding", "range", "pad_value"})
  if not core.is_tensor(t) then error("image.save_grid: expected a tensor, got " .. util.what(t), 2) end
  if t:dim() == 3 then t = t:unsqueeze(1) end
  if t:dim() ~= 4 then
    error("image.save_grid: expected images (N,C,H,W), got shape " .. lg.shape_str(t), 2)
  end
  local g = core.image_grid(t:detach(), {nrow = o.nrow or 8, padding = o.padding or 2,
                                        range = o.range or {-1, 1}, pad_value = o.pad_value or 0})
  core.write_png(path, g)
  return g
end

---------------------------------------------------------------------------
-- axes

local BLACK, GRAY, LIGHT = {0, 0, 0}, {0.45, 0.45, 0.45}, {0.9, 0.9, 0.9}
image.PALETTE = {{0.12, 0.47, 0.71}, {1.0, 0.50, 0.05}, {0.17, 0.63, 0.17},
                 {0.84, 0.15, 0.16}, {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29},
                 {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}, {0.74, 0.74, 0.13},
                 {0.09, 0.75, 0.81}}

-- About n "nice" tick values (1, 2, 5 x 10^k steps) covering [lo, hi].
local function nice_ticks(lo, hi, n)
  if not (hi > lo) then return {lo} end
  local raw = (hi - lo) / math.max(n, 1)
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs{1, 2, 5, 10} do
    if m * mag >= raw then step = m * mag break end
  end
  local out = {}
  local v = math.ceil(lo / step - 1e-9) * step
  while v <= hi + step * 1e-9 and #out < 50 do
    out[#out + 1] = math.abs(v) < step * 1e-9 and 0 or v
    v = v + step
  end
  return out
end

local function tick_label(v)
  local s = string.format("%.4g", v)
  return s
end

-- Frame, grid lines and tick labels for the data box [xlo,xhi]x[ylo,yhi]
-- shown in the pixel box {x0, y0, x1, y1}; returns fx, fy mapping data to
-- pixels. ylabel_fmt may map a tick value to its label (log axes).
local function draw_axes(img, box, xlo, xhi, ylo, yhi, ylabel_fmt)
  local x0, y0, x1, y1 = box[1], box[2], box[3], box[4]
  local function fx(x) return x0 + (x - xlo) / (xhi - xlo) * (x1 - x0) end
  local function fy(y) return y1 - (y - ylo) / (yhi - ylo) * (y1 - y0) end
  for _, t in ipairs(nice_ticks(xlo, xhi, 6)) do
    local px = fx(t)
    core.draw_line(img, px, y0, px, y1, {color = LIGHT})
    core.draw_line(img, px, y1, px, y1 + 4, {color = BLACK})
    local s = tick_label(t)
    core.draw_text(img, px - core.text_width(s) / 2, y1 + 7, s, {color = BLACK})
  end
  for _, t in ipairs(nice_ticks(ylo, yhi, 5)) do
    local py = fy(t)
    core.draw_line(img, x0, py, x1, py, {color = LIGHT})
    core.draw_line(img, x0 - 4, py, x0, py, {color = BLACK})
    local s = ylabel_fmt and ylabel_fmt(t) or tick_label(t)
    core.draw_text(img, x0 - 7 - core.text_width(s), py - 4, s, {color = BLACK})
  end
  core.draw_line(img, x0, y0, x1, y0, {color = BLACK})
  core.draw_line(img, x0, y1, x1, y1, {color = BLACK})
  core.draw_line(img, x0, y0, x0, y1, {color = BLACK})
  core.draw_line(img, x1, y0, x1, y1, {color = BLACK})
  return fx, fy
end

local function canvas_size(size, dw, dh)
  if type(size) == "table" then return size[1], size[2] end
  if size then return size, size end
  return dw, dh
end

-- centred at the top; at half size when the double-size text would not fit
local function title(img, text, w)
  if not text then return end
  local scale = core.text_width(text, 2) <= w - 8 and 2 or 1
  core.draw_text(img, math.max(0, (w - core.text_width(text, scale)) / 2), 8, text,
                 {scale = scale, color = BLACK})
end

---------------------------------------------------------------------------
-- scatter plots of 2D samples

-- scatter(path, pts (N,2), {centres = (K,2), std = σ, bounds = {xmin, xmax, ymin, ymax},
-- size = 520 | {w, h}, title =, radius = 1.5, alpha = 0.5, color = {r,g,b}})
-- Draws the true modes as red discs of radius 3σ (the "high quality" zone
-- of the evaluation protocol) under the samples. Samples outside the bounds
-- are clipped. Returns the image (3,H,W).
function image.scatter(path, pts, o)
  local who = "image.scatter"
  o = opts_check(who, o, {"centres", "std", "bounds", "size", "title", "radius", "alpha", "color"})
  if not core.is_tensor(pts) or pts:dim() ~= 2 or pts:shape()[2] ~= 2 then
    error(who .. ": expected samples (N,2)" ..
          (core.is_tensor(pts) and ", got shape " .. lg.shape_str(pts) or ""), 2)
  end
  pts = pts:detach()
  local W, H = canvas_size(o.size, 520, 520)
  local b = o.bounds
  if not b then
    local src = o.centres and o.centres:detach() or pts
    local v = src:totable()
    local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
    for _, p in ipairs(v) do
      if p[1] == p[1] and math.abs(p[1]) < math.huge and math.abs(p[2]) < math.huge then
        xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
        ymin, ymax = math.min(ymin, p[2]), math.max(ymax, p[2])
      end
    end
    if xmin > xmax then xmin, xmax, ymin, ymax = -1, 1, -1, 1 end
    local span = math.max(xmax - xmin, ymax - ymin, 1e-3)
    local cx, cy, half = (xmin + xmax) / 2, (ymin + ymax) / 2, span * 0.65
    b = {cx - half, cx + half, cy - half, cy + half}
  end
  local img = lg.ones(3, H, W)
  local box = {56, 40, W - 20, H - 36}
  local fx, fy = draw_axes(img, box, b[1], b[2], b[3], b[4])
  local sx = (box[3] - box[1]) / (b[2] - b[1])
  local sy = (box[4] - box[2]) / (b[4] - b[3])
  local function to_px(t)
    local x = t:select(2, 1) * sx + (box[1] - b[1] * sx)
    local y = t:select(2, 2) * (-sy) + (box[4] + b[3] * sy)
    -- keep to the plot box: clipped samples pile up on its border, visibly
    x = x:clamp(box[1], box[3])
    y = y:clamp(box[2], box[4])
    return lg.stack({x, y}, 2)
  end
  if o.centres then
    local r = math.max(3, 3 * (o.std or 0) * sx)
    core.draw_points(img, to_px(o.centres:detach()), {radius = r, color = {0.9, 0.2, 0.2}, alpha = 0.35})
  end
  core.draw_points(img, to_px(pts), {radius = o.radius or 1.5, alpha = o.alpha or 0.5,
                                     color = o.color or {0.1, 0.3, 0.8}})
  title(img, o.title, W)
  if path then core.write_png(path, img) end
  return img, fx, fy
end

---------------------------------------------------------------------------
-- loss curves

local SKIP_KEYS = {step = true, epoch = true, time = true, wall = true, elapsed = true,
                   lr = true, steps_per_s = true}

-- loss_curve(path, log, {keys = {...}, x = "step", size = {720, 420}, title =,
-- smooth = 0, logy = false}); log: a JSONL file name or a list of records.
-- keys defaults to every numeric field but the x field and bookkeeping ones
-- (epoch, time, lr, ...). smooth in [0,1) is an exponential moving average
-- weight (0.9 smooths a lot). Non-finite values are skipped (a diverged loss
-- leaves a gap). Returns the image (3,H,W).
function image.loss_curve(path, log, o)
  local who = "image.loss_curve"
  o = opts_check(who, o, {"keys", "x", "size", "title", "smooth", "logy"})
  local records = log
  if type(log) == "string" then records = require("luagan.io").read_jsonl(log) end
  if type(records) ~= "table" then error(who .. ": log must be a file name or a list of records", 2) end
  local xkey = o.x or "step"
  local keys = o.keys
  if not keys then
    local seen = {}
    keys = {}
    for _, r in ipairs(records) do
      for k, v in pairs(r) do
        if type(v) == "number" and k ~= xkey and not SKIP_KEYS[k] and not seen[k] then
          seen[k] = true
          keys[#keys + 1] = k
        end
      end
    end
    table.sort(keys)
  end
  local smooth = o.smooth or 0
  if smooth < 0 or smooth >= 1 then error(who .. ": smooth must be in [0, 1)", 2) end
  local function tf(v) if o.logy then return v > 0 and math.log(v, 10) or nil end return v end
  local series = {}
  local xmin, xmax, ymin, ymax = math.huge, -math.huge, math.huge, -math.huge
  for si, k in ipairs(keys) do
    local s, ema = {}, nil
    for i, r in ipairs(records) do
      local x, y = r[xkey], r[k]
      if x == nil then x = i end
      if type(x) == "number" and type(y) == "number" and y == y and math.abs(y) < math.huge then
        ema = ema and smooth * ema + (1 - smooth) * y or y
        local ty = tf(ema)
        if ty then
          s[#s + 1] = {x, ty}
          xmin, xmax = math.min(xmin, x), math.max(xmax, x)
          ymin, ymax = math.min(ymin, ty), math.max(ymax, ty)
        end
      end
    end
    series[si] = s
  end
  local W, H = canvas_size(o.size, 720, 420)
  local img = lg.ones(3, H, W)
  if xmin > xmax then    -- nothing to plot: an empty frame says so
    xmin, xmax, ymin, ymax = 0, 1, 0, 1
  end
  if xmax == xmin then xmin, xmax = xmin - 0.5, xmax + 0.5 end
  if ymax == ymin then ymin, ymax = ymin - 0.5, ymax + 0.5 end
  local pad = (ymax - ymin) * 0.05
  ymin, ymax = ymin - pad, ymax + pad
  local box = {64, 40, W - 20, H - 36}
  local fmt = o.logy and function(t) return string.format("%.3g", 10 ^ t) end or nil
  local fx, fy = draw_axes(img, box, xmin, xmax, ymin, ymax, fmt)
  local maxpts = 2 * (box[3] - box[1])
  for si, s in ipairs(series) do
    local color = image.PALETTE[(si - 1) % #image.PALETTE + 1]
    local stride = math.max(1, #s // maxpts)
    local px, py
    for i = 1, #s, stride do
      local x, y = fx(s[i][1]), fy(s[i][2])
      if px then core.draw_line(img, px, py, x, y, {color = color, width = 1.5}) end
      px, py = x, y
    end
  end
  -- legend, top right inside the box
  local lx, ly = box[3] - 8, box[2] + 8
  local wmax = 0
  for _, k in ipairs(keys) do wmax = math.max(wmax, core.text_width(k)) end
  for si, k in ipairs(keys) do
    local color = image.PALETTE[(si - 1) % #image.PALETTE + 1]
    local y = ly + (si - 1) * 14
    core.draw_rect(img, lx - wmax - 22, y, lx - wmax - 10, y + 8, {color = color})
    core.draw_text(img, lx - wmax - 4, y, k, {color = BLACK})
  end
  core.draw_text(img, (box[1] + box[3]) / 2 - core.text_width(xkey) / 2, H - 16, xkey, {color = GRAY})
  title(img, o.title, W)
  if path then core.write_png(path, img) end
  return img
end

return image
