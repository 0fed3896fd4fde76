-- test_options.lua: every options table of the public Lua API rejects an
-- unknown key, naming the function, the key and the accepted keys (with a
-- "did you mean" when one is close); integer options are range-checked, not
-- cast; optimizer hyperparameters and arguments are validated.
--
-- The walk: every function and class of the modules in MODULES must be either
-- a CASE below (called with a bogus option, which must be rejected) or listed
-- in NO_OPTIONS with the reason it takes no options table. A new public
-- function without an entry fails the "every public function is classified"
-- test, as test_gradcheck fails for an op without a gradcheck case.
local T = ...
local lg = require "luagan"
local nn, optim = lg.nn, lg.optim

lg.manual_seed(7)

local BOGUS = "bogus_opt"
local function bad() return {[BOGUS] = 1} end

-- fixtures, made on first use
local function param() return lg.randn(3):requires_grad_() end
local function net() return nn.Sequential{nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)} end
local function adam() return optim.Adam({param()}) end
local function img() return lg.rand(2, 1, 8, 8) end

-- name -> function(opts) calling the public function with opts as its
-- options table; `who` (optional) is the name the error must carry when it
-- differs from the walked name.
local CASES = {
  -- nn layers
  ["nn.Linear"] = function(o) return nn.Linear(2, 3, o) end,
  ["nn.Conv2d"] = function(o) return nn.Conv2d(1, 2, 3, o) end,
  ["nn.ConvTranspose2d"] = function(o) return nn.ConvTranspose2d(1, 2, 3, o) end,
  ["nn.Embedding"] = function(o) return nn.Embedding(4, 2, o) end,
  ["nn.MaxPool2d"] = function(o) return nn.MaxPool2d(2, o) end,
  ["nn.AvgPool2d"] = function(o) return nn.AvgPool2d(2, o) end,
  ["nn.Upsample"] = function(o) return nn.Upsample(2, o) end,
  ["nn.Pad"] = function(o) return nn.Pad(1, o) end,
  ["nn.Flatten"] = function(o) return nn.Flatten(o) end,
  ["nn.BatchNorm1d"] = function(o) return nn.BatchNorm1d(3, o) end,
  ["nn.BatchNorm2d"] = function(o) return nn.BatchNorm2d(3, o) end,
  ["nn.SyncBatchNorm"] = function(o) return nn.SyncBatchNorm(3, o) end,
  ["nn.GroupNorm"] = function(o) return nn.GroupNorm(2, 4, o) end,
  ["nn.Conv1d"] = function(o) return nn.Conv1d(1, 2, 3, o) end,
  ["nn.PReLU"] = function(o) return nn.PReLU(o) end,
  ["dist.init"] = function(o) return lg.dist.init(o) end,
  ["dist.allreduce"] = function(o) return lg.dist.allreduce(lg.ones(2), o) end,
  ["dist.allreduce_grads"] = function(o) return lg.dist.allreduce_grads({}, o) end,
  ["nn.LayerNorm"] = function(o) return nn.LayerNorm(3, o) end,
  ["nn.InstanceNorm2d"] = function(o) return nn.InstanceNorm2d(3, o) end,
  ["nn.VirtualBatchNorm"] = function(o) return nn.VirtualBatchNorm(3, o) end,
  ["nn.SpectralNorm"] = function(o) return nn.SpectralNorm(nn.Linear(2, 2), o) end,
  ["nn.MinibatchDiscrimination"] = function(o) return nn.MinibatchDiscrimination(4, 2, 2, o) end,
  -- nn.init
  ["nn.init.xavier_uniform"] = function(o) return nn.init.xavier_uniform(lg.zeros(3, 3), o) end,
  ["nn.init.xavier_normal"] = function(o) return nn.init.xavier_normal(lg.zeros(3, 3), o) end,
  ["nn.init.kaiming_uniform"] = function(o) return nn.init.kaiming_uniform(lg.zeros(3, 3), o) end,
  ["nn.init.kaiming_normal"] = function(o) return nn.init.kaiming_normal(lg.zeros(3, 3), o) end,
  ["nn.init.orthogonal"] = function(o) return nn.init.orthogonal(lg.zeros(3, 3), o) end,
  ["nn.init.dcgan"] = function(o) return nn.init.dcgan(net(), o) end,
  -- optim
  ["optim.SGD"] = function(o) o.lr = 0.1; return optim.SGD({param()}, o) end,
  ["optim.Adam"] = function(o) return optim.Adam({param()}, o) end,
  ["optim.AdamW"] = function(o) return optim.AdamW({param()}, o) end,
  ["optim.RMSprop"] = function(o) return optim.RMSprop({param()}, o) end,
  ["optim.StepLR"] = function(o) o.step_size = 2; return optim.StepLR(adam(), o) end,
  ["optim.LinearDecay"] = function(o) return optim.LinearDecay(adam(), 1, 5, o) end,
  ["optim.CosineAnnealing"] = function(o) o.T_max = 5; return optim.CosineAnnealing(adam(), o) end,
  ["optim.EMA"] = function(o) return optim.EMA(net(), o) end,
  ["optim.clip_grad_norm"] = function(o) return optim.clip_grad_norm({param()}, 1, o) end,
  -- losses
  ["losses.mmgan"] = function(o) return lg.losses.mmgan(o) end,
  ["losses.nsgan"] = function(o) return lg.losses.nsgan(o) end,
  ["losses.lsgan"] = function(o) return lg.losses.lsgan(o) end,
  ["losses.wgan"] = function(o) return lg.losses.wgan(o) end,
  ["losses.hinge"] = function(o) return lg.losses.hinge(o) end,
  ["losses.fgan"] = function(o) return lg.losses.fgan(o) end,
  ["losses.ebgan"] = function(o) return lg.losses.ebgan(o) end,
  ["losses.rsgan"] = function(o) return lg.losses.rsgan(o) end,
  ["losses.ragan"] = function(o) return lg.losses.ragan(o) end,
  ["losses.make"] = {who = "losses.hinge", function(o) return lg.losses.make("hinge", o) end},
  -- penalties
  ["penalties.gradient_penalty"] = function(o)
    return lg.penalties.gradient_penalty(net(), lg.randn(4, 2), lg.randn(4, 2), o) end,
  ["penalties.wgan_gp"] = {who = "penalties.gradient_penalty", function(o)
    return lg.penalties.wgan_gp(net(), lg.randn(4, 2), lg.randn(4, 2), o) end},
  ["penalties.dragan"] = function(o) return lg.penalties.dragan(net(), lg.randn(4, 2), o) end,
  ["penalties.r1"] = function(o) return lg.penalties.r1(net(), lg.randn(4, 2), o) end,
  ["penalties.r2"] = function(o) return lg.penalties.r2(net(), lg.randn(4, 2), o) end,
  -- tricks
  ["tricks.one_sided_label_smoothing"] = function(o) return lg.tricks.one_sided_label_smoothing(0.9, o) end,
  ["tricks.feature_matching"] = function(o)
    return lg.tricks.feature_matching(lg.randn(4, 3), lg.randn(4, 3), o) end,
  ["tricks.HistoricalAverage"] = function(o) return lg.tricks.HistoricalAverage({param()}, o) end,
  ["tricks.InstanceNoise"] = function(o) return lg.tricks.InstanceNoise(o) end,
  ["tricks.Schedule"] = function(o) return lg.tricks.Schedule(o) end,
  ["tricks.ttur"] = function(o) return lg.tricks.ttur(net(), net(), o) end,
  ["tricks.EMA"] = {who = "optim.EMA", function(o) return lg.tricks.EMA(net(), o) end},
  -- data
  ["data.DataLoader"] = function(o) return lg.data.DataLoader(lg.randn(4, 2), o) end,
  ["data.fashion_mnist"] = function(o) return lg.data.fashion_mnist(o) end,
  ["data.mnist"] = function(o) return lg.data.mnist(o) end,
  ["data.ring"] = function(o) return lg.data.ring(o) end,
  ["data.grid"] = function(o) return lg.data.grid(o) end,
  ["data.spiral"] = function(o) return lg.data.spiral(o) end,
  ["data.moons"] = function(o) return lg.data.moons(o) end,
  ["data.unpaired"] = function(o) return lg.data.unpaired(o) end,
  ["data.image_folder"] = function(o) return lg.data.image_folder("/nonexistent", o) end,
  ["data.save_idx"] = {who = "save_idx", function(o)
    return lg.data.save_idx(os.tmpname(), lg.zeros(2), o) end},
  -- image
  ["image.save_grid"] = function(o) return lg.image.save_grid("/nonexistent/x.png", img(), o) end,
  ["image.scatter"] = function(o) return lg.image.scatter("/nonexistent/x.png", lg.randn(5, 2), o) end,
  ["image.loss_curve"] = function(o) return lg.image.loss_curve("/nonexistent/x.png", "/nonexistent/m.jsonl", o) end,
  ["image.write_png"] = {who = "write_png", function(o)
    return lg.image.write_png("/nonexistent/x.png", lg.rand(1, 4, 4), o) end},
  ["image.read"] = {who = "'read'", function(o) return lg.image.read("/nonexistent.png", o) end},
  ["image.grid"] = {who = "'grid'", function(o) return lg.image.grid(img(), o) end},
  -- eval
  ["eval.features"] = function(o) return lg.eval.features(img(), o) end,
  ["eval.predict"] = function(o) return lg.eval.predict(img(), o) end,
  ["eval.kid"] = function(o) return lg.eval.kid(lg.randn(4, 2), lg.randn(4, 2), o) end,
  ["eval.precision_recall"] = function(o)
    return lg.eval.precision_recall(lg.randn(6, 2), lg.randn(6, 2), o) end,
  ["eval.class_stats"] = function(o) return lg.eval.class_stats(lg.tensor{1, 2}, o) end,
  ["eval.memorisation"] = function(o) return lg.eval.memorisation(img(), o) end,
  ["eval.reference"] = function(o) return lg.eval.reference(o) end,
  ["eval.fashion"] = function(o) return lg.eval.fashion(img(), o) end,
  ["eval.label_accuracy"] = function(o) return lg.eval.label_accuracy(img(), lg.tensor{1, 2}, o) end,
  ["eval.code_accuracy"] = function(o) return lg.eval.code_accuracy(img(), lg.tensor{1, 2}, o) end,
  ["eval.linear_probe"] = function(o)
    return lg.eval.linear_probe(lg.randn(4, 2), lg.tensor{1, 2, 1, 2}, lg.randn(4, 2), lg.tensor{1, 2, 1, 2}, o) end,
  ["eval.translation"] = function(o) return lg.eval.translation(o) end,
  ["eval.sample_checkpoint"] = function(o) return lg.eval.sample_checkpoint("/nonexistent", 4, o) end,
  -- eval2d
  ["eval2d.ring_spec"] = function(o) return lg.eval2d.ring_spec(o) end,
  ["eval2d.grid_spec"] = function(o) return lg.eval2d.grid_spec(o) end,
  ["eval2d.evaluate"] = function(o) return lg.eval2d.evaluate(lg.randn(10, 2), "ring", o) end,
  ["eval2d.over_seeds"] = function(o)
    return lg.eval2d.over_seeds(1, function() return lg.randn(10, 2) end, "ring", o) end,
  -- nets
  ["nets.mlp"] = function(o) return lg.nets.mlp({2, 3, 1}, o) end,
  ["nets.Maxout"] = function(o) return lg.nets.Maxout(2, 3, 2, o) end,
  ["nets.PackedD"] = {who = "nets.PackedD", function(o) return lg.nets.PackedD(o) end},
  ["nets.packed_D"] = {who = "nets.PackedD", function(o) return lg.nets.packed_D(o) end},
  ["nets.AutoencoderD"] = {who = "nets.autoencoder_D", function(o) return lg.nets.AutoencoderD(o) end},
  ["nets.autoencoder_D"] = function(o) return lg.nets.autoencoder_D(o) end,
  ["nets.dcgan_G"] = function(o) return lg.nets.dcgan_G(o) end,
  ["nets.dcgan_D"] = function(o) return lg.nets.dcgan_D(o) end,
  ["nets.dcgan_G_layers"] = function(o) return lg.nets.dcgan_G_layers(o) end,
  ["nets.dcgan_D_layers"] = function(o) return lg.nets.dcgan_D_layers(o) end,
}

-- Public functions and classes that take no options table, and why.
local NO_OPTIONS = {
  -- nn: positional arguments only (each validated), or not a layer
  ["nn.Identity"] = "no arguments", ["nn.ReLU"] = "no arguments", ["nn.Tanh"] = "no arguments",
  ["nn.Sigmoid"] = "no arguments", ["nn.Softplus"] = "no arguments",
  ["nn.LeakyReLU"] = "slope", ["nn.ELU"] = "alpha", ["nn.Softmax"] = "dim",
  ["nn.LogSoftmax"] = "dim", ["nn.Dropout"] = "p", ["nn.Reshape"] = "sizes",
  ["nn.Lambda"] = "fn, label", ["nn.Sequential"] = "a list of modules",
  ["nn.ModuleList"] = "a list of modules", ["nn.ModuleDict"] = "a map of modules",
  ["nn.Module"] = "the base class", ["nn.class"] = "name, parent",
  ["nn.commas"] = "helper", ["nn.is_module"] = "predicate", ["nn.is_tensor"] = "predicate",
  ["nn.set_wrap_errors"] = "flag", ["nn.convert_sync_batchnorm"] = "a module",
  ["nn.PixelShuffle"] = "r", ["nn.AdaptiveAvgPool2d"] = "size", ["nn.shape_str"] = "helper", ["nn.init"] = "walked as nn.init",
  ["nn.init.fans"] = "tensor", ["nn.init.gain"] = "name, param",
  ["nn.init.normal"] = "tensor, mean, std", ["nn.init.uniform"] = "tensor, a, b",
  ["nn.init.constant"] = "tensor, value", ["nn.init.zeros"] = "tensor", ["nn.init.ones"] = "tensor",
  -- dist: positional arguments only
  ["dist.launched"] = "none", ["dist.is_initialized"] = "none", ["dist.exact"] = "none",
  ["dist.sync_on_step"] = "none", ["dist.rank"] = "none", ["dist.size"] = "none",
  ["dist.is_main"] = "none", ["dist.local_size"] = "none", ["dist.barrier"] = "none",
  ["dist.broadcast"] = "tensor, root", ["dist.allgather"] = "tensor",
  ["dist.allreduce_number"] = "number, op", ["dist.same"] = "string",
  ["dist.broadcast_module"] = "module, root", ["dist.allreduce_sum"] = "tensor",
  ["dist.split_map"] = "n, chunk, fn", ["dist.set_bucket_mb"] = "number", ["dist.bucket_mb"] = "none",
  ["dist.profile_take"] = "none", ["dist.profiling"] = "none", ["dist.overlapping"] = "none",
  ["dist.overlap_stats"] = "none", ["dist.grads_zeroed"] = "optimizer",
  -- optim
  ["optim.LambdaLR"] = "opt, fn", ["optim.Optimizer"] = "the base class",
  ["optim.clip_grad_value"] = "params, value", ["optim.clip_weights"] = "params, c",
  -- losses
  ["losses.pullaway"] = "embeddings", ["losses.reconstruction_energy"] = "x, reconstruction",
  ["losses.fgan_divergences"] = "a table", ["losses.fgan_divergence_names"] = "a list",
  ["losses.names"] = "a list",
  -- penalties
  ["penalties.input_grad_norms"] = "out, x", ["penalties.clip_weights"] = "params, c",
  -- tricks
  ["tricks.forward_to"] = "seq, layer, x", ["tricks.features"] = "net, x, names",
  -- data
  ["data.load_idx"] = "path", ["data.transforms"] = "walked as data.transforms",
  ["data.transforms.invert"] = "x, scale", ["data.transforms.edges"] = "x, scale",
  ["data.transforms.rotate"] = "x", ["data.FASHION_MNIST_CLASSES"] = "a list",
  ["data.MNIST_CLASSES"] = "a list", ["data.SCALES"] = "a table",
  ["data.is_byte_images"] = "v: a predicate",
  -- image
  ["image.resize"] = "t, h, w", ["image.PALETTE"] = "a list",
  -- eval
  ["eval.as_images"] = "x, who", ["eval.classifier"] = "no arguments",
  ["eval.classifier_path"] = "no arguments", ["eval.classifier_score"] = "probs",
  ["eval.has_classifier"] = "no arguments", ["nets.seq"] = "list, from, to",
  ["eval.clear_cache"] = "no arguments", ["eval.format"] = "report", ["eval.frechet"] = "a, b",
  ["eval.hungarian"] = "matrix", ["eval.load_samples"] = "path", ["eval.save_samples"] = "path, x",
  ["eval.set_classifier"] = "weights", ["eval.stats"] = "features",
  ["eval.reconstruction_error"] = "x, xr", ["eval.perturb"] = "walked as eval.perturb",
  ["eval.perturb.noise"] = "x, sigma, seed", ["eval.perturb.blur"] = "x, sigma",
  -- eval2d
  ["eval2d.spec"] = "spec or (centres, std)", ["eval2d.nearest"] = "samples, centres",
  ["eval2d.mean_se"] = "list", ["eval2d.summarize"] = "results", ["eval2d.format"] = "summary",
  -- nets
  ["nets.dcgan_init"] = "net",
}

local MODULES = {"nn", "nn.init", "optim", "losses", "penalties", "tricks", "data",
                 "data.transforms", "image", "eval", "eval.perturb", "eval2d", "nets", "dist"}

local function module_table(path)
  local t = lg
  for part in path:gmatch("[^.]+") do t = t[part] end
  return t
end

-- "nn.Conv2d", ... for every function, class or table the modules export
-- (upper-case constants such as eval.FD_SAMPLES are numbers: not walked;
-- nn.init's "_"-suffixed names are aliases of the plain ones).
local function public_names()
  local out = {}
  for _, m in ipairs(MODULES) do
    for k, v in pairs(module_table(m)) do
      local ty = type(v)
      if (ty == "function" or ty == "table") and not (m == "nn.init" and k:sub(-1) == "_") then
        out[#out + 1] = m .. "." .. k
      end
    end
  end
  table.sort(out)
  return out
end

T.test("every public function is classified (a case or a reason it takes no options)", function()
  local missing = {}
  for _, name in ipairs(public_names()) do
    if CASES[name] == nil and NO_OPTIONS[name] == nil then missing[#missing + 1] = name end
  end
  T.ok(#missing == 0, "add a case to CASES (or a reason to NO_OPTIONS) for: " ..
       table.concat(missing, ", "))
  local gone = {}
  for name in pairs(CASES) do
    local m, k = name:match("^(.*)%.([^.]+)$")
    if module_table(m)[k] == nil then gone[#gone + 1] = name end
  end
  T.ok(#gone == 0, "cases for names that no longer exist: " .. table.concat(gone, ", "))
end)

T.test("every options table rejects an unknown key, naming the function and the key", function()
  local names = {}
  for name in pairs(CASES) do names[#names + 1] = name end
  table.sort(names)
  local wrong = {}
  for _, name in ipairs(names) do
    local case = CASES[name]
    local fn, who = case, name
    if type(case) == "table" then fn, who = case[1], case.who end
    local ok, err = pcall(fn, bad())
    err = tostring(err)
    if ok then
      wrong[#wrong + 1] = name .. ": accepted the unknown option"
    elseif not err:find("unknown option '" .. BOGUS .. "'", 1, true) then
      wrong[#wrong + 1] = name .. ": " .. err
    elseif not err:find(who, 1, true) then
      wrong[#wrong + 1] = name .. ": the error does not name " .. who .. ": " .. err
    elseif not err:find("expected: ", 1, true) then
      wrong[#wrong + 1] = name .. ": the error does not list the accepted keys: " .. err
    end
  end
  T.ok(#wrong == 0, "\n  " .. table.concat(wrong, "\n  "))
end)

T.test("the issue's examples: did you mean, accepted keys, the caller's line", function()
  local err = T.errors(function() local m = nn.Conv2d(1, 4, 4, {strides = 2}); return m end,
                       "nn.Conv2d: unknown option 'strides' (did you mean 'stride'?; " ..
                       "expected: stride, padding, dilation, bias)")
  T.ok(err:find("test_options.lua:%d+:"), err)
  T.errors(function() return nn.Linear(2, 3, {biass = false}) end,
           "nn.Linear: unknown option 'biass' (did you mean 'bias'?; expected: bias)")
  T.errors(function() return optim.Adam({param()}, {betas1 = 0.5}) end,
           "optim.Adam: unknown option 'betas1' (did you mean 'betas'?")
  T.errors(function() return nn.MaxPool2d(2, {pad = 1}) end, "did you mean 'padding'?")
  -- nothing close: no suggestion
  local e2 = T.errors(function() return nn.Linear(2, 3, {colour = 1}) end, "unknown option 'colour'")
  T.ok(not e2:find("did you mean"), e2)
  local e3 = T.errors(function() return lg.losses.lsgan{d = 1} end, "unknown option 'd'")
  T.ok(not e3:find("did you mean"), e3)   -- a one-letter key is not a typo of another
  -- the C bindings suggest the same way
  T.errors(function() return lg.conv2d(lg.randn(1, 1, 4, 4), lg.randn(1, 1, 3, 3), nil, {strides = 2}) end,
           "unknown option 'strides' (did you mean 'stride'?; expected: stride, padding, dilation)")
  T.errors(function() return lg.ones(2, 2):sum(1, {keepdims = true}) end, "did you mean 'keepdim'?")
  T.errors(function() return lg.gradcheck(function(x) return x * x end, {param()}, {epss = 1}) end,
           "gradcheck: unknown option 'epss' (did you mean 'eps'?")
  -- an optimizer's parameter groups are options tables too
  T.errors(function() return optim.Adam({{params = {param()}, lrr = 1}}) end,
           "optim.Adam: group 1: unknown option 'lrr' (did you mean 'lr'?")
  -- a custom module uses the same check
  local My = nn.Module:extend("MyLayer")
  function My:init(o) o = self:check_opts(o, {"alpha"}) self.alpha = o.alpha end
  T.errors(function() return My{alpah = 1} end, "MyLayer: unknown option 'alpah' (did you mean 'alpha'?")
  T.eq(My{alpha = 2}.alpha, 2)
end)

T.test("modules built with valid options still work", function()
  local c = nn.Conv2d(1, 2, 3, {stride = {1, 2}, padding = 1, bias = false})
  T.shape(c(lg.randn(1, 1, 5, 6)), {1, 2, 5, 3})
  T.ok(c.bias == nil)
  T.shape(nn.Upsample{scale = 2, mode = "bilinear"}(lg.randn(1, 1, 2, 2)), {1, 1, 4, 4})
  T.shape(nn.MaxPool2d({2, 2}, {stride = 2})(lg.randn(1, 1, 4, 4)), {1, 1, 2, 2})
  T.shape(nn.Linear(3, 2, {bias = false})(lg.randn(4, 3)), {4, 2})
end)

T.test("integer options are range-checked, never cast to int", function()
  local x, w = lg.randn(1, 1, 8, 8), lg.randn(2, 1, 3, 3)
  T.errors(function() return lg.conv2d(x, w, nil, {padding = 2^32 + 1}) end,
           "padding must be an integer in [0, 2^20], got 4294967297)")
  T.errors(function() return lg.conv2d(x, w, nil, {stride = 2^32 + 2}) end,
           "stride must be an integer in [1, 2^20], got 4294967298")
  T.errors(function() return lg.conv2d(x, w, nil, {stride = {1, 2.5}}) end,
           "stride[2] must be an integer in [1, 2^20], got 2.5")
  T.errors(function() return lg.conv_transpose2d(x, lg.randn(1, 2, 3, 3), nil, {output_padding = -1}) end,
           "output_padding must be an integer in [0, 2^20], got -1")
  T.errors(function() return lg.upsample(x, {scale = 0}) end, "scale must be an integer in [1, 2^20], got 0")
  T.errors(function() return lg.upsample(x, 0) end, "scale must be an integer in [1, 2^20], got 0")
  T.errors(function() return lg.max_pool2d(x, 2^40) end, "kernel size must be an integer in [1, 2^20]")
  T.errors(function() return lg.max_pool2d(x, 2, {stride = 0}) end, "stride must be an integer in [1, 2^20], got 0")
  T.errors(function() return lg.pad(x, {1, 2^33}) end, "padding (right) must be an integer in [0, 2^20]")
  T.errors(function() return lg.pad(x, -1) end, "padding must be an integer in [0, 2^20], got -1")
  T.errors(function() return lg.linalg.knn(lg.randn(3, 2), lg.randn(3, 2), 2^40) end,
           "k must be an integer in [1, 2^20]")
  T.eq(#x:chunk(math.maxinteger), 1)   -- no overflow in the piece size: one piece
  T.errors(function() return lg.ones(4):split({2, math.maxinteger}) end, "exceeds size 4 of dim 1")
  T.errors(function() return lg.ones(4):narrow(1, 2, math.maxinteger) end, "exceeds size 4")
  local canvas = lg.zeros(3, 8, 8)
  T.errors(function() lg.core.draw_text(canvas, 0, 0, "a", {scale = 2^40}) end,
           "scale must be an integer in [1, 2^10], got 1099511627776")
  T.errors(function() return lg.core.text_width("a", 0) end, "scale must be an integer in [1, 2^10], got 0")
  T.errors(function() return lg.image.grid(lg.rand(2, 1, 4, 4), {nrow = 2^33}) end,
           "nrow must be an integer in [1, 2^20], got 8589934592")
  T.errors(function() return lg.image.read("/nonexistent.png", {channels = 5}) end,
           "channels must be an integer in [0, 4], got 5")
  -- the modules check at construction, naming the layer
  T.errors(function() return nn.Conv2d(1, 4, 4, {padding = 2^40}) end,
           "nn.Conv2d: padding must be an integer in [0, 2^20], got 1099511627776")
  T.errors(function() return nn.Upsample{scale = 0} end, "nn.Upsample: scale must be an integer in [1, 2^20], got 0")
  T.errors(function() return nn.MaxPool2d(2, {stride = 2.5}) end, "nn.MaxPool2d: stride must be an integer")
  T.errors(function() return nn.Pad({1, -1}) end, "nn.Pad: pad[2] must be an integer in [0, 2^20], got -1")
end)

T.test("layer sizes are validated at construction, naming the layer and argument", function()
  T.errors(function() return nn.Linear(0, 3) end, "nn.Linear: in_features must be an integer >= 1, got 0")
  T.errors(function() return nn.Linear(2, 2.5) end, "nn.Linear: out_features must be an integer >= 1, got 2.5")
  T.errors(function() return nn.Linear("a", 3) end, "nn.Linear: in_features must be an integer >= 1, got string")
  T.errors(function() return nn.Conv2d(0, 4, 3) end, "nn.Conv2d: in_channels must be an integer >= 1, got 0")
  T.errors(function() return nn.ConvTranspose2d(1, 4, 0) end, "nn.ConvTranspose2d: kernel_size must be an integer")
  T.errors(function() return nn.Embedding(-1, 4) end, "nn.Embedding: num_embeddings must be an integer >= 1, got -1")
  T.errors(function() return nn.BatchNorm2d(0) end, "nn.BatchNorm2d: num_features must be an integer >= 1, got 0")
  T.errors(function() return nn.BatchNorm2d(4, {eps = -1}) end, "nn.BatchNorm2d: eps must be a finite number > 0, got -1")
  T.errors(function() return nn.BatchNorm1d(4, {momentum = 0 / 0}) end, "nn.BatchNorm1d: momentum must be a finite number in [0, 1], got nan")
  T.errors(function() return nn.LayerNorm({4, 0}) end, "nn.LayerNorm: normalized_shape[2] must be an integer >= 1, got 0")
  T.errors(function() return nn.InstanceNorm2d(3, {eps = 0}) end, "nn.InstanceNorm2d: eps must be a finite number > 0")
  T.errors(function() return nn.MinibatchDiscrimination(4, 0, 2) end, "nn.MinibatchDiscrimination: num_kernels")
  T.errors(function() return nn.SpectralNorm(nn.Linear(2, 2), {n_power_iterations = -1}) end,
           "nn.SpectralNorm: n_power_iterations must be an integer >= 0, got -1")
  T.errors(function() return nn.Dropout(2) end, "nn.Dropout: p must be a finite number in [0, 1], got 2")
  T.errors(function() return nn.LeakyReLU("x") end, "nn.LeakyReLU: negative slope must be a finite number")
  T.errors(function() return nn.Softmax(1.5) end, "nn.Softmax: dim must be an integer, got 1.5")
  T.errors(function() return nn.Lambda(3) end, "nn.Lambda(fn, label): fn must be a function, got number")
  T.errors(function() return nn.Reshape(2, -3) end, "nn.Reshape: size 2 must be an integer >= 0, got -3")
  T.errors(function() return nn.Linear(2, 3, {bias = 0}) end, "nn.Linear: bias must be true or false, got 0")
  T.errors(function() return nn.BatchNorm2d(3, {affine = "no"}) end, "nn.BatchNorm2d: affine must be true or false, got string")
  T.errors(function() return nn.Upsample(2, {mode = "cubic"}) end, "nn.Upsample: mode must be 'nearest' or 'bilinear', got cubic")
end)

T.test("optimizer hyperparameters are validated", function()
  local nan = 0 / 0
  T.errors(function() return optim.Adam({param()}, {lr = nan}) end, "optim.Adam: lr must be a finite number >= 0, got nan")
  T.errors(function() return optim.Adam({param()}, {lr = math.huge}) end, "lr must be a finite number >= 0, got inf")
  T.errors(function() return optim.Adam({param()}, {eps = -1}) end, "optim.Adam: eps must be a finite number > 0, got -1")
  T.errors(function() return optim.Adam({param()}, {eps = 0}) end, "eps must be a finite number > 0, got 0")
  T.errors(function() return optim.Adam({param()}, {betas = {0.5, 1}}) end, "betas[2] must be a finite number in [0, 1), got 1")
  T.errors(function() return optim.AdamW({param()}, {weight_decay = -0.1}) end, "optim.AdamW: weight_decay must be a finite number >= 0")
  T.errors(function() return optim.SGD({param()}, {lr = 0.1, momentum = -1}) end, "optim.SGD: momentum must be a finite number >= 0, got -1")
  T.errors(function() return optim.SGD({param()}, {lr = 0.1, dampening = 2}) end, "dampening must be a finite number in [0, 1]")
  T.errors(function() return optim.SGD({param()}, {lr = 0.1, nesterov = 1}) end, "nesterov must be a boolean, got number")
  T.errors(function() return optim.RMSprop({param()}, {alpha = 1.5}) end, "optim.RMSprop: alpha must be a finite number in [0, 1]")
  T.errors(function() return optim.Adam({{params = {param()}}, {params = {param()}, lr = -1}}) end,
           "optim.Adam: group 2: lr must be a finite number >= 0, got -1")
  local o = adam()
  T.errors(function() o:add_param_group({params = {param()}, lr = nan}) end,
           "optim.Adam:add_param_group: lr must be a finite number >= 0, got nan")
  T.errors(function() o:add_param_group({params = {param()}, momentum = 0.9}) end,
           "optim.Adam:add_param_group: unknown option 'momentum'")
  T.errors(function() o:add_param_group({params = o.param_groups[1].params}) end,
           "a parameter appears in more than one group")
  -- the C steps are a second line of defence
  local p = lg.ones(2)
  T.errors(function() lg.core.adam_step(p, lg.ones(2), lg.zeros(2), lg.zeros(2), nan, 0.9, 0.999, 1e-8, 0, false, 1) end,
           "adam: lr = nan is out of range (expected a finite value >= 0)")
  T.errors(function() lg.core.adam_step(p, lg.ones(2), lg.zeros(2), lg.zeros(2), 0.1, 1, 0.999, 1e-8, 0, false, 1) end,
           "adam: beta1 = 1 is out of range (expected [0, 1))")
  T.errors(function() lg.core.sgd_step(p, lg.ones(2), nil, 0.1, 0, 0, -1, false, true) end,
           "sgd: weight_decay = -1 is out of range")
  T.errors(function() lg.core.rmsprop_step(p, lg.ones(2), lg.zeros(2), nil, 0.1, 0.99, -1, 0, 0) end,
           "rmsprop: eps = -1 is out of range")
  T.close(p, 1)      -- no failed step changed the parameter
end)

T.test("non-leaf parameters and empty parameter lists are rejected", function()
  local p = param()
  T.errors(function() return optim.Adam({p * 2}) end,
           "optim.Adam: parameter 1 is not a leaf tensor (it was computed by mul_scalar)")
  T.errors(function() return optim.SGD({{params = {p}}, {params = {param(), p + 1}}}, {lr = 1}) end,
           "parameter 2 of group 2 is not a leaf tensor")
  T.errors(function() return optim.Adam({}) end, "optim.Adam: the parameter list is empty")
  T.errors(function() return optim.Adam(nn.ReLU()) end, "optim.Adam: the parameter list is empty")
  T.errors(function() return optim.Adam({p, "x"}) end, "parameter 2 is a string, not a tensor")
  -- a leaf that requires no grad is allowed (a frozen parameter)
  T.ok(optim.Adam({lg.zeros(2)}))
end)

T.test("clipping, schedulers and EMA validate their arguments", function()
  local p = param()
  p.grad = lg.tensor{3, 4, 0}
  T.errors(function() optim.clip_grad_norm({p}, -1) end,
           "optim.clip_grad_norm: max_norm must be a finite number >= 0, got -1")
  T.close(p.grad, {3, 4, 0})             -- untouched (the bug flipped its sign)
  T.errors(function() optim.clip_grad_norm({p}, 0 / 0) end, "max_norm must be a finite number >= 0, got nan")
  T.errors(function() optim.clip_grad_norm({p}, 1, {norm_type = -2}) end, "norm_type must be a finite number > 0")
  T.errors(function() optim.clip_grad_norm({p}, 1, {norm = 2}) end, "did you mean 'norm_type'?")
  T.near(optim.clip_grad_norm({p}, 1, {norm_type = math.huge}), 4)
  T.errors(function() optim.clip_grad_value({p}, -1) end,
           "optim.clip_grad_value: clip_value must be a finite number >= 0, got -1")
  T.errors(function() optim.clip_weights({p}, 0 / 0) end, "optim.clip_weights: c must be a finite number >= 0, got nan")
  local o = adam()
  T.errors(function() return optim.StepLR(o, {step_size = 0}) end, "optim.StepLR: step_size must be an integer >= 1, got 0")
  T.errors(function() return optim.StepLR(o, {step_size = 2, gamma = -1}) end, "optim.StepLR: gamma must be a finite number >= 0, got -1")
  T.errors(function() return optim.StepLR(o, {}) end, "step_size must be given")
  T.errors(function() return optim.CosineAnnealing(o, {T_max = 0 / 0}) end, "optim.CosineAnnealing: T_max must be a finite number > 0, got nan")
  T.errors(function() return optim.LinearDecay(o, 0 / 0, 5) end, "optim.LinearDecay: start_step must be a finite number >= 0, got nan")
  T.errors(function() return optim.LinearDecay(o, 1, 5, {final = -1}) end, "final must be a finite number >= 0, got -1")
  T.errors(function() return optim.LambdaLR(o, 3) end, "optim.LambdaLR(opt, fn): fn must be a function of the step, got number")
  T.errors(function() return optim.StepLR({}, {step_size = 1}) end, "optim.StepLR: the first argument must be an optimizer, got table")
  local s = optim.StepLR(o, {step_size = 2})
  T.errors(function() s:load_state_dict(nil) end, "optim.StepLR:load_state_dict: expected the table of a state_dict(), got nil")
  T.errors(function() s:load_state_dict({}) end, "last_step is missing")
  T.errors(function() s:load_state_dict({last_step = -1}) end, "last_step must be an integer >= 0, got -1")
  T.errors(function() return optim.EMA(net(), {decay = 2}) end, "optim.EMA: decay must be a finite number in [0, 1], got 2")
  T.errors(function() return optim.EMA(net(), {warmup = 1}) end, "optim.EMA: warmup must be a boolean, got number")
  T.errors(function() return optim.EMA(net(), {decy = 0.9}) end, "did you mean 'decay'?")
  T.errors(function() optim.EMA(net()):load_state_dict(nil) end, "optim.EMA:load_state_dict: expected the table")
end)

T.test("penalty and trick weights are finite and in range", function()
  local nan = 0 / 0
  local x = lg.randn(4, 2)
  local e = T.errors(function() local r = lg.penalties.gradient_penalty(net(), x, x, {lambda = nan}); return r end,
                     "penalties.gradient_penalty: lambda must be a finite number >= 0, got nan")
  T.ok(e:find("test_options.lua:%d+:"), e)
  T.errors(function() return lg.penalties.dragan(net(), x, {c = -1}) end, "penalties.dragan: c must be a finite number >= 0, got -1")
  local e2 = T.errors(function() local r = lg.penalties.r1(net(), x, {gamma = -1}); return r end,
                      "penalties.r1: gamma must be a finite number >= 0, got -1")
  T.ok(e2:find("test_options.lua:%d+:"), e2)
  T.errors(function() return lg.tricks.InstanceNoise{std = nan} end, "tricks.InstanceNoise: std must be a finite number >= 0, got nan")
  T.errors(function() return lg.tricks.InstanceNoise{anneal_steps = 0} end, "anneal_steps must be a finite number > 0, got 0")
  T.errors(function() return lg.tricks.HistoricalAverage({param()}, {lambda = -1}) end,
           "tricks.HistoricalAverage: lambda must be a finite number >= 0, got -1")
end)

T.test("optimizer load_state_dict names what is wrong", function()
  local p = param()
  local o = optim.Adam({p})
  p.grad = lg.ones(3)
  o:step()
  local sd = o:state_dict()
  local function with(k, v)
    local c = {}
    for key, val in pairs(sd) do c[key] = val end
    c[k] = v
    return c
  end
  T.errors(function() o:load_state_dict(nil) end,
           "optim.Adam:load_state_dict: expected the table of a state_dict(), got nil")
  T.errors(function() o:load_state_dict(lg.ones(2)) end, "got a tensor")
  T.errors(function() o:load_state_dict(with("state.1.exp_avg", 3)) end,
           "optim.Adam:load_state_dict: state.1.exp_avg must be a tensor, got number")
  T.errors(function() o:load_state_dict(with("state.1.exp_avg_sq", nil)) end,
           "state.1.exp_avg is given but state.1.exp_avg_sq is missing")
  T.errors(function() o:load_state_dict(with("state.1.step", nil)) end, "state.1.step is missing")
  T.errors(function() o:load_state_dict(with("state.1.step", -2)) end, "state.1.step must be a non-negative integer, got -2")
  T.errors(function() o:load_state_dict(with("state.1.momentum_buffer", lg.zeros(3))) end,
           "unexpected key state.1.momentum_buffer (Adam keeps step, exp_avg, exp_avg_sq)")
  T.errors(function() o:load_state_dict(with("group.1.lrr", 1)) end,
           "unexpected key group.1.lrr (Adam has no option 'lrr')")
  T.errors(function() o:load_state_dict(with("group.1.lr", "-1")) end,
           "optim.Adam:load_state_dict: group 1: lr must be a finite number >= 0, got -1")
  T.errors(function() o:load_state_dict(with("group.1.betas.2", 1)) end, "group 1: betas[2] must be")
  T.errors(function() o:load_state_dict(with("group.1.lr", "abc")) end,
           'optim.Adam:load_state_dict: group.1.lr is not a number (got "abc")')
  -- nothing changed by the failed loads; a good one still loads
  T.near(o.param_groups[1].lr, 1e-3)
  o:load_state_dict(with("group.1.lr", "0.5"))
  T.near(o.param_groups[1].lr, 0.5)
  T.eq(o.state[p].step, 1)
end)

T.test("state loading methods check their arguments", function()
  local m = nn.Linear(2, 2)
  T.errors(function() m:load_state_dict(m:state_dict(), {strcit = false}) end,
           "load_state_dict (net): unknown option 'strcit' (did you mean 'strict'?")
  T.errors(function() m:load_state_dict(nil) end, "load_state_dict (net): expected a table of tensors, got nil")
  T.ok(m:load_state_dict({weight = lg.zeros(2, 2)}, {strict = false}))
  local ha = lg.tricks.HistoricalAverage({param()})
  T.errors(function() ha:load_state_dict(nil) end,
           "tricks.HistoricalAverage:load_state_dict: expected the table of a state_dict(), got nil")
end)

T.test("a closed tensor is called a closed tensor, not userdata", function()
  local keep
  do
    local t <close> = lg.ones(3)
    keep = t
  end
  T.errors(function() return lg.cat({lg.ones(3), keep}) end, "element 2 of the list is a closed tensor (used after __close)")
  T.errors(function() return lg.stack({keep}) end, "closed tensor")
  T.errors(function() return lg.data.DataLoader({lg.ones(3), keep}) end,
           "data.DataLoader: entry 2 is a closed tensor (used after __close)")
  T.errors(function() return lg.data.DataLoader(keep) end, "got closed tensor")
  T.errors(function() return optim.Adam({keep}) end, "parameter 1 is a closed tensor (used after __close)")
  T.errors(function() lg.grad(lg.ones(1):requires_grad_():sum(), {keep}) end, "closed tensor")
  T.errors(function() nn.Linear(2, 2):load_state_dict({weight = keep, bias = lg.zeros(2)}) end,
           "weight: expected a tensor, got closed tensor")
end)

T.test("class and row indices are reported 1-based", function()
  T.errors(function() return lg.cross_entropy(lg.randn(2, 3), lg.tensor{1, 4}) end,
           "cross_entropy: target 4 at (2) is not a class index in [1, 3]")
  T.errors(function() return lg.cross_entropy(lg.randn(2, 3), lg.tensor{0, 1}) end,
           "cross_entropy: target 0 at (1) is not a class index in [1, 3]")
  T.errors(function() return lg.nll_loss(lg.randn(2, 3, 2), lg.tensor{{1, 2}, {3, 1.5}}) end,
           "nll_loss: target 1.5 at (2, 2) is not a class index in [1, 3]")
  T.errors(function() return lg.embedding(lg.tensor{1, 6}, lg.randn(5, 2)) end,
           "embedding: index 6 at (2) is not a row index in [1, 5]")
  T.errors(function() return nn.Embedding(5, 2)(lg.tensor{{1, 0}}) end,
           "embedding: index 0 at (1, 2) is not a row index in [1, 5]")
  T.errors(function() return lg.eval.class_stats(lg.tensor{1, 0}) end,
           "eval.class_stats: prediction 0 at 2 is not a class in [1, 10] (classes are 1-based)")
  T.errors(function() return lg.eval.class_stats(lg.tensor{3}, {classes = 2}) end, "prediction 3 at 1")
  -- the largest valid class and row work
  T.ok(lg.cross_entropy(lg.randn(2, 3), lg.tensor{3, 1}):item() > 0)
  T.shape(lg.embedding(lg.tensor{5}, lg.randn(5, 2)), {1, 2})
end)
