-- Memory safety and undefined behaviour from Lua (issue 17): sizes whose
-- product wrapped, drawing with huge coordinates, the text scale. Each case
-- crashed, hung, tripped UBSan or returned a wrong value before its fix.
local T = ...
local lg = require "luagan"
local core = require "luagan.core"
local image = require "luagan.image"

local TOO_LARGE = "is too large: its sizes multiply to more than 2^40"

T.test("zero-element tensors with huge other sizes are refused", function()
  -- the strides of 0 x 2^40 x 2^40 overflowed int64 (UBSan: signed overflow)
  T.errors(function() return lg.zeros(0, 2^40, 2^40) end, "zeros: shape 0x1099511627776x1099511627776 " .. TOO_LARGE)
  T.errors(function() return lg.ones{0, 2^62} end, "ones: shape 0x4611686018427387904")
  T.errors(function() return lg.randn(2^40, 0, 2) end, "randn: shape")
  T.shape(lg.zeros(0, 1 << 20, 1 << 20), {0, 1 << 20, 1 << 20})
end)

T.test("expand and reshape check the element count before it can wrap", function()
  -- 2^33 * 2^33 wrapped to 0: sum() returned 0
  T.errors(function() return lg.ones(1, 1):expand(2^33, 2^33):sum() end,
           "expand: shape 8589934592x8589934592 " .. TOO_LARGE)
  T.errors(function() return lg.ones(1):expand(0, 2^62, 1) end, "expand: shape 0x4611686018427387904x1")
  local big = lg.ones(1, 1):expand(1 << 20, 1 << 20)
  T.eq(big:numel(), 1 << 40)
  -- 2^32 * 2^32 wrapped to 0 and matched the 0 elements of the input
  T.errors(function() return lg.zeros(0):reshape(2^32, 2^32) end, "reshape: shape 4294967296x4294967296 " .. TOO_LARGE)
  T.errors(function() return lg.zeros(0):view(0, 2^40, 2^40) end, "view: shape 0x1099511627776x1099511627776")
  T.shape(lg.zeros(0):reshape(0, 7), {0, 7})
end)

T.test("drawing with huge finite coordinates stays on the canvas", function()
  -- a 1e30 corner converted to int64 was undefined and bypassed the clipping
  -- (heap overflow under ASan); a 1e30-long line never returned
  local img = lg.zeros(3, 20, 30)
  core.draw_rect(img, -1e30, -1e30, 1e30, 1e30, {color = 1})
  T.eq(img:sum():item(), 3 * 20 * 30)
  img = lg.zeros(3, 20, 30)
  core.draw_rect(img, 1e30, 1e30, 2e30, 2e30, {color = 1})
  core.draw_rect(img, -2e30, -2e30, -1e30, -1e30, {color = 1})
  core.draw_text(img, 1e30, 1e30, "off the canvas", {color = 1})
  core.draw_text(img, -1e30, 5, "off the canvas", {color = 1})
  T.eq(img:sum():item(), 0)
  local t0 = os.clock()
  core.draw_line(img, -1e30, 10.5, 1e30, 10.5, {color = 1})   -- exactly row 10, every column
  T.eq(img:select(1, 1):select(1, 11):sum():item(), 30)
  T.eq(img:sum():item(), 3 * 30)
  core.draw_line(img, -1e30, -1e30, 3e30, 2e30, {color = 1, width = 1e30})
  core.draw_points(img, lg.tensor{{1e30, -1e30}, {5, 5}}, {radius = 1e30})
  T.ok(os.clock() - t0 < 5, "bounded by the canvas")
end)

T.test("non-finite coordinates, widths and radii are errors", function()
  local img = lg.zeros(1, 4, 4)
  T.errors(function() core.draw_line(img, 0 / 0, 0, 1, 1) end, "draw_line: coordinates")
  T.errors(function() core.draw_line(img, 0, 0, 1, 1, {width = math.huge}) end, "draw_line: width inf")
  T.errors(function() core.draw_rect(img, 0, -math.huge, 1, 1) end, "draw_rect: coordinates (0, -inf, 1, 1) must be finite")
  T.errors(function() core.draw_text(img, math.huge, 0, "a") end, "draw_text: coordinates")
  T.errors(function() core.draw_points(img, lg.zeros(1, 2), {radius = 0 / 0}) end, "draw_points: radius")
  -- a diverged sample is skipped, as before
  core.draw_points(img, lg.tensor{{0 / 0, 1}, {1, math.huge}})
  T.eq(img:sum():item(), 0)
end)

T.test("text scale is range-checked before it becomes an int", function()
  local img = lg.zeros(1, 4, 4)
  T.errors(function() core.draw_text(img, 0, 0, "a", {scale = 2^40}) end, "scale must be an integer in [1, 2^10], got 1099511627776")
  T.errors(function() core.draw_text(img, 0, 0, "a", {scale = 1.5}) end, "must be an integer")
  T.errors(function() core.text_width("abc", 2^62) end, "scale must be an integer in [1, 2^10]")
  T.eq(core.text_width("abc", 3), 3 * core.text_width("abc"))
  T.errors(function() core.text_width(string.rep("a", 65537)) end, "text_width: text of 65537 bytes")
  -- the plots still draw
  local p = image.loss_curve(nil, {{step = 1, loss = 1}, {step = 2, loss = 1e30}, {step = 3, loss = -1e30}},
                             {size = {200, 120}, title = "huge"})
  T.shape(p, {3, 120, 200})
end)

T.test("read_image: a pixel limit from the header, before decoding", function()
  local dir = os.tmpname()
  os.remove(dir)
  local path = dir .. ".png"
  core.write_png(path, lg.zeros(3, 4, 4))
  T.errors(function() return core.read_image(path, {max_pixels = 15}) end, "4x4 pixels is over the limit of 15")
  T.shape(core.read_image(path, {max_pixels = 16}), {3, 4, 4})
  T.errors(function() return core.read_image(path, {max_pixels = 2^40}) end, "option 'max_pixels'")
  T.errors(function() return core.read_image(path, {max_pixels = 1.5}) end, "option 'max_pixels'")
  T.errors(function() return core.read_image(path, {maxpixels = 1}) end, "unknown option 'maxpixels'")
  -- formats other than PNG and JPEG are refused by content, whatever the name
  local f = assert(io.open(dir .. ".tga", "wb"))
  f:write(string.char(0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x69, 0x73, 0x65, 0x20, 24, 0) .. string.rep("\255", 67))
  f:close()
  T.errors(function() return core.read_image(dir .. ".tga") end, "not a PNG or JPEG file")
  os.remove(path)
  os.remove(dir .. ".tga")
end)

T.test("image_grid and resize check their size arithmetic", function()
  -- rows * (H + padding) overflowed int64 for an expanded batch of 2^40 images
  local many = lg.ones(1, 1, 1, 1):expand(1 << 40, 1, 1, 1)
  T.errors(function() return core.image_grid(many, {nrow = 1, padding = 1 << 30}) end,
           "padding must be an integer in [0, 2^10], got 1073741824")
  T.errors(function() return core.image_grid(many, {nrow = 1}) end, "with padding 2 is too large")
  -- input rows x output columns of the intermediate pass
  local tall = lg.ones(1, 1):expand(1 << 40, 1)
  T.errors(function() return core.resize(tall, 1, 1 << 24) end, "resize: 1099511627776x1 to 1x16777216")
  T.shape(core.resize(lg.ones(3, 5, 7), 2, 3), {3, 2, 3})
end)

T.test("conv and upsample output sizes are computed with checked products", function()
  -- an expanded input or weight can have a side of 2^40; times a stride or
  -- dilation of 2^30 that overflowed int64 (UBSan: signed overflow). The
  -- bindings now cap geometry at 2^20, so the runtime's checked products are
  -- reached with the largest values the bindings let through.
  local tall = lg.ones(1, 1, 1, 1):expand(1, 1, 1 << 40, 1)
  T.errors(function() return lg.upsample(tall, {scale = 1 << 30, mode = "bilinear"}) end,
           "scale must be an integer in [1, 2^20], got 1073741824")
  T.errors(function() return lg.upsample(tall, {scale = 1 << 20, mode = "bilinear"}) end,
           "upsample: 1099511627776x1 upsampled by 1048576x1048576 is too large")
  local x = lg.ones(1, 1, 1, 1):expand(1, 1, 1 << 39, 1)
  T.errors(function() return lg.conv_transpose2d(x, lg.ones(1, 1, 1, 1), nil, {stride = 1 << 20}) end,
           "conv_transpose2d: input 1x1x549755813888x1, weight 1x1x1x1: stride 1048576x1048576")
  local w = lg.ones(1, 1, 1, 1):expand(1, 1, 1 << 39, 1)
  T.errors(function() return lg.conv2d(lg.ones(1, 1, 4, 4), w, nil, {dilation = 1 << 20}) end,
           "does not fit in the padded input")
  T.errors(function() return lg.conv_transpose2d(lg.ones(1, 1, 2, 2), w, nil, {dilation = 1 << 20}) end,
           "give an output side of more than 2^40")
  -- OH * OW of a padded tall input: (2^40 + 2^31) x (2^31 + 1) overflowed
  T.errors(function() return lg.conv2d(tall, lg.ones(1, 1, 1, 1), nil, {padding = 1 << 20}) end,
           "conv2d: sizes exceed what BLAS can index")
  T.shape(lg.upsample(lg.ones(1, 1, 2, 3), {scale = 2, mode = "bilinear"}), {1, 1, 4, 6})
  T.shape(lg.conv_transpose2d(lg.ones(1, 1, 2, 2), lg.ones(1, 1, 3, 3), nil, {stride = 2}), {1, 1, 5, 5})
end)
