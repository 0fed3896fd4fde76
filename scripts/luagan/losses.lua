-- luagan.losses (lg.losses): every adversarial loss as a pair of functions.
--
--   local loss = lg.losses.nsgan()
--   local ld = loss.d(D(x), D(G(z):detach()))     -- discriminator / critic minimises
--   local lgen = loss.g(D(G(z)))                  -- generator minimises
--
-- Inputs are the discriminator's raw outputs (logits, any shape, usually
-- (N,1) or (N)); each function returns a differentiable 0-dim tensor (the mean
-- over all elements). Relativistic losses also need the real logits in the
-- generator step: loss.g(fake_logits, real_logits) (loss.relativistic is true);
-- the others ignore a second argument, so a training loop can always pass it.
-- Notation: l = D(x) a logit, sp(t) = log(1 + e^t) (lg.softplus, stable for any
-- t), sigma the sigmoid, E the mean over the batch. Never log(sigmoid(l)):
-- -log sigma(l) = sp(-l) and -log(1 - sigma(l)) = sp(l).
--
-- Every constructor takes an options table and returns
--   {name = "nsgan", d = fn, g = fn, relativistic = bool, opts = {...}}
-- lg.losses.make(name, opts) builds one by name (for --loss flags), and
-- lg.losses.names lists the names. The regularisers are in lg.penalties, the
-- training tricks in lg.tricks; docs/losses.md has the formulas and examples.
local lg = require "luagan"
local util = require "luagan.util"
local check_opts, is_tensor, shape_str = util.check_opts, util.is_tensor, util.shape_str

local losses = {}

local LOG2 = math.log(2)

---------------------------------------------------------------------------
-- argument checks

local function check_tensor(who, what, v)
  if not is_tensor(v) then
    error(string.format("%s: %s must be a tensor, got %s", who, what, util.what(v)), 3)
  end
  return v
end

local function num_opt(who, o, k, default)
  local v = o[k]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v then
    error(string.format("%s: %s must be a number, got %s", who, k, tostring(v)), 3)
  end
  return v
end

local function same_numel(who, a, b)
  if a:numel() ~= b:numel() then
    error(string.format("%s: real logits %s and fake logits %s must have the same number "
                        .. "of elements (relativistic losses pair them)", who,
                        shape_str(a), shape_str(b)), 3)
  end
end

local function mean(t) return t:mean() end
local function sp(t) return lg.softplus(t) end

-- E[-log sigma(l)] with one-sided label smoothing: binary cross-entropy of l
-- against target alpha = alpha sp(-l) + (1 - alpha) sp(l)  (alpha = 1: sp(-l)).
local function real_term(l, alpha)
  if alpha == 1 then return mean(sp(-l)) end
  return mean(sp(-l) * alpha + sp(l) * (1 - alpha))
end

local function loss_table(name, d, g, opts, extra)
  local t = {name = name, d = d, g = g, relativistic = false, opts = opts}
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

---------------------------------------------------------------------------
-- GAN (Goodfellow et al. 2014)
--
-- mmgan{real_label = 1}: minimax.
--   D: E sp(-l_real) + E sp(l_fake)        (= -E log D(x) - E log(1 - D(G(z))))
--   G: -E sp(l_fake)                       (= E log(1 - D(G(z))); saturates when
--                                            D rejects the fakes)
-- At D(x) = 1/2 everywhere (l = 0) the D loss is 2 log 2.
-- real_label < 1 is one-sided label smoothing (Salimans et al. 2016): the real
-- term becomes the cross-entropy against alpha, alpha sp(-l) + (1-alpha) sp(l);
-- the fake target stays 0.
function losses.mmgan(o)
  local who = "losses.mmgan"
  o = check_opts(who, o, {"real_label"})
  local alpha = num_opt(who, o, "real_label", 1)
  return loss_table("mmgan",
    function(real, fake)
      check_tensor(who .. ".d", "real_logits", real)
      check_tensor(who .. ".d", "fake_logits", fake)
      return real_term(real, alpha) + mean(sp(fake))
    end,
    function(fake)
      check_tensor(who .. ".g", "fake_logits", fake)
      return -mean(sp(fake))
    end, {real_label = alpha})
end

-- nsgan{real_label = 1}: non-saturating (the default GAN).
--   D: E sp(-l_real) + E sp(l_fake)
--   G: E sp(-l_fake)                       (= -E log D(G(z)))
function losses.nsgan(o)
  local who = "losses.nsgan"
  o = check_opts(who, o, {"real_label"})
  local alpha = num_opt(who, o, "real_label", 1)
  return loss_table("nsgan",
    function(real, fake)
      check_tensor(who .. ".d", "real_logits", real)
      check_tensor(who .. ".d", "fake_logits", fake)
      return real_term(real, alpha) + mean(sp(fake))
    end,
    function(fake)
      check_tensor(who .. ".g", "fake_logits", fake)
      return mean(sp(-fake))
    end, {real_label = alpha})
end

---------------------------------------------------------------------------
-- lsgan{a = 0, b = 1, c = 1} (Mao et al. 2017), on the raw output (no sigmoid).
--   D: 1/2 E (l_real - b)^2 + 1/2 E (l_fake - a)^2
--   G: 1/2 E (l_fake - c)^2
-- a, b, c = -1, 1, 0 is the Pearson chi^2 form (b - c = 1, b - a = 2).
function losses.lsgan(o)
  local who = "losses.lsgan"
  o = check_opts(who, o, {"a", "b", "c"})
  local a, b, c = num_opt(who, o, "a", 0), num_opt(who, o, "b", 1), num_opt(who, o, "c", 1)
  return loss_table("lsgan",
    function(real, fake)
      check_tensor(who .. ".d", "real_logits", real)
      check_tensor(who .. ".d", "fake_logits", fake)
      local r, f = real - b, fake - a
      return mean(r * r) * 0.5 + mean(f * f) * 0.5
    end,
    function(fake)
      check_tensor(who .. ".g", "fake_logits", fake)
      local f = fake - c
      return mean(f * f) * 0.5
    end, {a = a, b = b, c = c})
end

---------------------------------------------------------------------------
-- wgan() (Arjovsky et al. 2017): the critic output is a score, not a logit.
--   critic: E l_fake - E l_real            (minus the Wasserstein estimate)
--   G:      -E l_fake
-- The Lipschitz constraint is separate: weight clipping
-- (lg.penalties.clip_weights(D, 0.01) after every critic step) or a gradient
-- penalty (lg.penalties.gradient_penalty, WGAN-GP).
function losses.wgan(o)
  local who = "losses.wgan"
  check_opts(who, o, {})
  return loss_table("wgan",
    function(real, fake)
      check_tensor(who .. ".d", "real_logits", real)
      check_tensor(who .. ".d", "fake_logits", fake)
      return mean(fake) - mean(real)
    end,
    function(fake)
      check_tensor(who .. ".g", "fake_logits", fake)
      return -mean(fake)
    end, {})
end

---------------------------------------------------------------------------
-- hinge() (Lim & Ye 2017; Miyato et al. 2018), usual partner of spectral norm.
--   D: E max(0, 1 - l_real) + E max(0, 1 + l_fake)
--   G: -E l_fake
function losses.hinge(o)
  local who = "losses.hinge"
  check_opts(who, o, {})
  return loss_table("hinge",
    function(real, fake)
      check_tensor(who .. ".d", "real_logits", real)
      check_tensor(who .. ".d", "fake_logits", fake)
      return mean((1 - real):relu()) + mean((fake + 1):relu())
    end,
    function(fake)
      check_tensor(who .. ".g", "fake_logits", fake)
      return -mean(fake)
    end, {})
end

---------------------------------------------------------------------------
-- f-GAN (Nowozin et al. 2016). v is the raw critic output, g the output
-- activation (maps v into the domain of f*), f* the Fenchel conjugate of the
-- generator function f of the divergence D_f(P||Q) = E_Q f(dP/dQ).
--   critic: -(E_P g(v) - E_Q f*(g(v)))     (minus the variational lower bound)
--   G, saddle:      -E_Q f*(g(v))
--   G, alternative: -E_Q g(v)               (the paper's choice in practice)
-- f*(g(v)) is always computed in its stable closed form (table below); the
-- Lua-number functions f, fstar and g_num are the textbook definitions, kept
-- for tests and for reading.
--
--   divergence  g(v)              f*(t)             f*(g(v)) stable
--   kl          v                 exp(t - 1)        exp(v - 1)
--   rkl         -exp(-v)          -1 - log(-t)      v - 1
--   pearson     v                 t^2/4 + t         v^2/4 + v
--   hellinger   1 - exp(-v)       t / (1 - t)       exp(v) - 1
--   js          log 2 - sp(-v)    -log(2 - e^t)     sp(v) - log 2
--   gan         -sp(-v)           -log(1 - e^t)     sp(v)
--   tv          tanh(v) / 2       t                 tanh(v) / 2
local function lsp(t)              -- softplus of a Lua number, stable
  if t > 0 then return t + math.log(1 + math.exp(-t)) end
  return math.log(1 + math.exp(t))
end

losses.fgan_divergences = {
  kl = {
    f = function(u) return u * math.log(u) end,
    fstar = function(t) return math.exp(t - 1) end,
    g_num = function(v) return v end,
    g = function(v) return v end,
    fstar_g = function(v) return (v - 1):exp() end,
  },
  rkl = {
    f = function(u) return -math.log(u) end,
    fstar = function(t) return -1 - math.log(-t) end,
    g_num = function(v) return -math.exp(-v) end,
    g = function(v) return -((-v):exp()) end,
    fstar_g = function(v) return v - 1 end,
  },
  pearson = {
    f = function(u) return (u - 1) ^ 2 end,
    fstar = function(t) return t * t / 4 + t end,
    g_num = function(v) return v end,
    g = function(v) return v end,
    fstar_g = function(v) return v * v * 0.25 + v end,
  },
  hellinger = {
    f = function(u) return (math.sqrt(u) - 1) ^ 2 end,
    fstar = function(t) return t / (1 - t) end,
    g_num = function(v) return 1 - math.exp(-v) end,
    g = function(v) return 1 - (-v):exp() end,
    fstar_g = function(v) return v:exp() - 1 end,
  },
  js = {
    f = function(u) return -(u + 1) * math.log((1 + u) / 2) + u * math.log(u) end,
    fstar = function(t) return -math.log(2 - math.exp(t)) end,
    g_num = function(v) return LOG2 - lsp(-v) end,
    g = function(v) return LOG2 - sp(-v) end,
    fstar_g = function(v) return sp(v) - LOG2 end,
  },
  gan = {
    f = function(u) return u * math.log(u) - (u + 1) * math.log(u + 1) end,
    fstar = function(t) return -math.log(1 - math.exp(t)) end,
    g_num = function(v) return -lsp(-v) end,
    g = function(v) return -sp(-v) end,
    fstar_g = function(v) return sp(v) end,
  },
  tv = {
    f = function(u) return 0.5 * math.abs(u - 1) end,
    fstar = function(t) return t end,
    g_num = function(v) return 0.5 * math.tanh(v) end,
    g = function(v) return v:tanh() * 0.5 end,
    fstar_g = function(v) return v:tanh() * 0.5 end,
  },
}

local DIVERGENCES = {"kl", "rkl", "pearson", "hellinger", "js", "gan", "tv"}
losses.fgan_divergence_names = DIVERGENCES

-- fgan{divergence = "kl", generator = "alternative" | "saddle"}
-- The loss table also carries activation(v) = g(v), conjugate(v) = f*(g(v))
-- and estimate(v_real, v_fake) = E_P g(v) - E_Q f*(g(v)) as a number: the
-- variational lower bound on D_f(P||Q) (what the critic maximises).
function losses.fgan(o)
  local who = "losses.fgan"
  o = check_opts(who, o, {"divergence", "generator"})
  local name = o.divergence or "kl"
  local div = losses.fgan_divergences[name]
  if not div then
    error(string.format("%s: divergence must be one of %s, got %s", who,
                        table.concat(DIVERGENCES, ", "), tostring(name)), 2)
  end
  local gen = o.generator or "alternative"
  if gen ~= "alternative" and gen ~= "saddle" then
    error(who .. ": generator must be \"alternative\" or \"saddle\", got " .. tostring(gen), 2)
  end
  local g_fn
  if gen == "saddle" then
    g_fn = function(fake)
      check_tensor(who .. ".g", "fake_logits", fake)
      return -mean(div.fstar_g(fake))
    end
  else
    g_fn = function(fake)
      check_tensor(who .. ".g", "fake_logits", fake)
      return -mean(div.g(fake))
    end
  end
  return loss_table("fgan", function(real, fake)
      check_tensor(who .. ".d", "real_logits", real)
      check_tensor(who .. ".d", "fake_logits", fake)
      return mean(div.fstar_g(fake)) - mean(div.g(real))
    end, g_fn, {divergence = name, generator = gen}, {
      divergence = name,
      activation = div.g,
      conjugate = div.fstar_g,
      estimate = function(real, fake)
        return lg.no_grad(function()
          return (mean(div.g(real)) - mean(div.fstar_g(fake))):item()
        end)
      end,
    })
end

---------------------------------------------------------------------------
-- EBGAN (Zhao et al. 2017): D is an autoencoder; its energy is the
-- reconstruction error D(x) = ||Dec(Enc(x)) - x||^2 (per sample, mean or sum
-- over the sample's elements). The loss functions take energies, not logits:
--   D: E D(x) + E max(0, m - D(G(z)))
--   G: E D(G(z)) + lambda_PT f_PT(S)       (S: encoder embeddings of the fakes)
-- ebgan{margin = 1, pullaway = 0.1, energy = "mean"}:
--   loss.energy(recon, x) -> (N) energies of a batch (mean or sum of squares
--                            over all but the first dim);
--   loss.d(e_real, e_fake), loss.g(e_fake, embeddings) (embeddings optional;
--   the pull-away term is added when given and pullaway > 0).
-- The margin depends on the energy's scale: with mean energies of images in
-- [-1, 1] a margin near 1 fits; with "sum" energies it scales with the pixel
-- count (the paper's MNIST margins are of order 10 with sums over patches).
function losses.ebgan(o)
  local who = "losses.ebgan"
  o = check_opts(who, o, {"margin", "pullaway", "energy"})
  local m = num_opt(who, o, "margin", 1)
  local lambda = num_opt(who, o, "pullaway", 0.1)
  local kind = o.energy or "mean"
  if kind ~= "mean" and kind ~= "sum" then
    error(who .. ": energy must be \"mean\" or \"sum\", got " .. tostring(kind), 2)
  end
  return loss_table("ebgan",
    function(e_real, e_fake)
      check_tensor(who .. ".d", "real energies", e_real)
      check_tensor(who .. ".d", "fake energies", e_fake)
      return mean(e_real) + mean((m - e_fake):relu())
    end,
    function(e_fake, embeddings)
      check_tensor(who .. ".g", "fake energies", e_fake)
      local l = mean(e_fake)
      if embeddings ~= nil and lambda > 0 then
        check_tensor(who .. ".g", "embeddings", embeddings)
        l = l + losses.pullaway(embeddings) * lambda
      end
      return l
    end, {margin = m, pullaway = lambda, energy = kind}, {
      energy = function(recon, x) return losses.reconstruction_energy(recon, x, kind) end,
    })
end

-- Per-sample squared reconstruction error: recon, x (N, ...) -> (N).
-- kind "mean" (default) averages over each sample's elements, "sum" adds them.
function losses.reconstruction_energy(recon, x, kind)
  local who = "losses.reconstruction_energy"
  check_tensor(who, "recon", recon)
  check_tensor(who, "x", x)
  if shape_str(recon) ~= shape_str(x) then
    error(string.format("%s: recon %s and x %s must have the same shape", who,
                        shape_str(recon), shape_str(x)), 2)
  end
  local n = x:size(1)
  local d = (recon - x):reshape(n, -1)
  local e = (d * d)
  if kind == "sum" then return e:sum(2) end
  return e:mean(2)
end

-- Pull-away term of EBGAN: S (N, ...) embeddings, rows flattened,
--   f_PT = 1/(N(N-1)) sum_i sum_{j ~= i} (S_i . S_j / (|S_i| |S_j|))^2
-- (the square matters: without it opposite directions cancel). N >= 2.
function losses.pullaway(s)
  local who = "losses.pullaway"
  check_tensor(who, "embeddings", s)
  local n = s:size(1)
  if n < 2 then error(who .. ": needs at least 2 rows, got " .. n, 2) end
  s = s:reshape(n, -1)
  local unit = s / ((s * s):sum(2, {keepdim = true}) + 1e-12):sqrt()
  local c = lg.matmul(unit, unit:t())                   -- (N, N) cosine similarities
  local off = 1 - lg.eye(n)
  return (c * c * off):sum() / (n * (n - 1))
end

---------------------------------------------------------------------------
-- Relativistic GANs (Jolicoeur-Martineau 2019). The generator's loss needs
-- the real logits too: loss.g(fake_logits, real_logits).
--
-- rsgan(): relativistic standard GAN, pairs real and fake samples i:
--   D: E sp(-(l_real - l_fake))
--   G: E sp(-(l_fake - l_real))
function losses.rsgan(o)
  local who = "losses.rsgan"
  check_opts(who, o, {})
  return loss_table("rsgan",
    function(real, fake)
      check_tensor(who .. ".d", "real_logits", real)
      check_tensor(who .. ".d", "fake_logits", fake)
      same_numel(who .. ".d", real, fake)
      return mean(sp(fake:reshape(-1) - real:reshape(-1)))
    end,
    function(fake, real)
      check_tensor(who .. ".g", "fake_logits", fake)
      check_tensor(who .. ".g", "real_logits (relativistic losses need them)", real)
      same_numel(who .. ".g", real, fake)
      return mean(sp(real:reshape(-1) - fake:reshape(-1)))
    end, {}, {relativistic = true})
end

-- ragan{kind = "sgan" | "lsgan" | "hinge"}: relativistic average GANs. With
--   dr = l_real - E l_fake,  df = l_fake - E l_real:
--   sgan  (RaSGAN):  D: E sp(-dr) + E sp(df)            G: E sp(-df) + E sp(dr)
--   lsgan (RaLSGAN): D: E (dr-1)^2 + E (df+1)^2         G: E (df-1)^2 + E (dr+1)^2
--   hinge (RaHinge): D: E max(0,1-dr) + E max(0,1+df)   G: E max(0,1-df) + E max(0,1+dr)
-- The generator's loss is the discriminator's with real and fake swapped.
local RA = {
  sgan = function(pos, neg) return mean(sp(-pos)) + mean(sp(neg)) end,
  lsgan = function(pos, neg)
    local a, b = pos - 1, neg + 1
    return mean(a * a) + mean(b * b)
  end,
  hinge = function(pos, neg) return mean((1 - pos):relu()) + mean((neg + 1):relu()) end,
}

function losses.ragan(o)
  local who = "losses.ragan"
  o = check_opts(who, o, {"kind"})
  local kind = o.kind or "sgan"
  local f = RA[kind]
  if not f then
    error(who .. ": kind must be \"sgan\", \"lsgan\" or \"hinge\", got " .. tostring(kind), 2)
  end
  local function rel(a, b) return a - mean(b) end
  return loss_table("ragan",
    function(real, fake)
      check_tensor(who .. ".d", "real_logits", real)
      check_tensor(who .. ".d", "fake_logits", fake)
      return f(rel(real, fake), rel(fake, real))
    end,
    function(fake, real)
      check_tensor(who .. ".g", "fake_logits", fake)
      check_tensor(who .. ".g", "real_logits (relativistic losses need them)", real)
      return f(rel(fake, real), rel(real, fake))
    end, {kind = kind}, {relativistic = true})
end

---------------------------------------------------------------------------
-- by name

losses.names = {"mmgan", "nsgan", "lsgan", "wgan", "hinge", "fgan", "ebgan", "rsgan", "ragan"}

-- lg.losses.make("lsgan", {a = -1, b = 1, c = 0}); aliases: "gan" and "ns" ->
-- nsgan, "mm" -> mmgan, "wgan-gp"/"wgan_gp" -> wgan (add the penalty yourself).
local ALIASES = {gan = "nsgan", ns = "nsgan", mm = "mmgan", ["wgan-gp"] = "wgan",
                 wgan_gp = "wgan", ls = "lsgan", relativistic = "rsgan"}

function losses.make(name, o)
  local key = ALIASES[name] or name
  local ctor = type(key) == "string" and rawget(losses, key)
  local known = false
  for _, n in ipairs(losses.names) do if n == key then known = true end end
  if not known or type(ctor) ~= "function" then
    error(string.format("losses.make: unknown loss %s (expected one of %s)", tostring(name),
                        table.concat(losses.names, ", ")), 2)
  end
  return ctor(o)
end

return losses
