-- bench/twin_table.lua: a recipe against its PyTorch twin over seeds, from
-- the `luagan eval --json` reports of both sides.
--
--   build/luagan bench/twin_table.lua --lg 'runs/lg{seed}.json' \
--       --pt 'runs/pt{seed}.json' --seeds 1-8 [--name dcgan]
--
-- {seed} in each pattern is replaced by the seed. For every metric the script
-- prints each seed's value, the mean +- standard error of each side, the
-- difference of the means (luagan - twin) and Welch's t with its
-- Welch-Satterthwaite degrees of freedom. Nothing is fitted or adjusted: the
-- numbers are the reports' own. (The runs themselves: docs/RESULTS.md, "DCGAN
-- vs the PyTorch twin"; one seed is `luagan run dcgan --seed S` + `luagan eval`
-- on its samples, and `bench/dcgan_twin.py --seed S` + the same `luagan eval`.)
--
-- Also a module (bench/results.lua requires it): parse_seeds, read_json,
-- welch, compare and METRICS, so the statistics are written once.
local io_ = require "luagan.io"
local mean_se = require("luagan.eval2d").mean_se

local M = {}

-- key, label, format, scale of the luagan eval report fields compared
M.METRICS = {
  {"fd", "Frechet distance", "%.2f"},
  {"kid", "KID x1000", "%.1f", 1000},
  {"precision", "precision", "%.3f"},
  {"recall", "recall", "%.3f"},
  {"cs", "classifier score", "%.3f"},
}

local function fail(msg) error("twin_table: " .. msg, 0) end

-- "1-8" or "1,3,5" -> {1, 2, ...}; at least `min` seeds (default 2).
function M.parse_seeds(s, min)
  local a, b = s:match("^(%d+)%-(%d+)$")
  local out = {}
  if a then
    for i = tonumber(a), tonumber(b) do out[#out + 1] = i end
  else
    for x in s:gmatch("[^,]+") do
      local v = math.tointeger(tonumber(x))
      if not v then fail("--seeds: '" .. x .. "' is not an integer (use 1-8 or 1,2,5)") end
      out[#out + 1] = v
    end
  end
  if #out < (min or 2) then
    fail(string.format("--seeds: need at least %d seed(s), got '%s'", min or 2, s))
  end
  return out
end

-- The JSON object in a file (errors name the file).
function M.read_json(path)
  local f, err = io.open(path, "r")
  if not f then fail("cannot open " .. path .. ": " .. tostring(err)) end
  local text = f:read("a")
  f:close()
  local ok, rep = pcall(io_.json_decode, text)
  if not ok or type(rep) ~= "table" then fail(path .. ": not a JSON report: " .. tostring(rep)) end
  return rep
end

local function read_report(pattern, seed)
  local path = pattern:gsub("{seed}", tostring(seed))
  local rep = M.read_json(path)
  for _, m in ipairs(M.METRICS) do
    if type(rep[m[1]]) ~= "number" then fail(path .. ": no numeric field '" .. m[1] .. "'") end
  end
  return rep
end

-- Welch's t of mean(a) - mean(b) from the means, standard errors and counts,
-- and its Welch-Satterthwaite degrees of freedom (nil, nil when both
-- standard errors are 0 or a side has a single value).
function M.welch(ma, sa, na, mb, sb, nb)
  local va, vb = sa * sa, sb * sb         -- squared standard errors
  if na < 2 or nb < 2 or va + vb == 0 then return nil, nil end
  local t = (ma - mb) / math.sqrt(va + vb)
  local df = (va + vb) ^ 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
  return t, df
end

-- Two lists of numbers -> {ma, sa, na, mb, sb, nb, diff, diff_se, t, df}
-- (b may be empty: the twin-less recipes; then only ma, sa, na; a standard
-- error, and so t, needs two values: nil with one).
function M.compare(a, b)
  local r = {na = #a, nb = #b}
  if #a > 0 then r.ma, r.sa = mean_se(a) end
  if #b > 0 then r.mb, r.sb = mean_se(b) end
  if #a > 0 and #b > 0 then
    r.diff = r.ma - r.mb
    if r.sa and r.sb then        -- standard errors need 2+ values a side
      r.diff_se = math.sqrt(r.sa * r.sa + r.sb * r.sb)
      r.t, r.df = M.welch(r.ma, r.sa, #a, r.mb, r.sb, #b)
    end
  end
  return r
end

local function parse(argv)
  local o = {name = "dcgan"}
  local i = 1
  while i <= #argv do
    local k, v = argv[i]:match("^%-%-(.+)$"), argv[i + 1]
    if k ~= "lg" and k ~= "pt" and k ~= "seeds" and k ~= "name" then
      fail("unknown option " .. tostring(argv[i]))
    end
    if v == nil then fail("--" .. k .. " needs a value") end
    o[k] = v
    i = i + 2
  end
  for _, k in ipairs{"lg", "pt", "seeds"} do
    if not o[k] then fail("--" .. k .. " is required (see the header of bench/twin_table.lua)") end
  end
  for _, k in ipairs{"lg", "pt"} do
    if not o[k]:find("{seed}", 1, true) then fail("--" .. k .. " must contain {seed}: " .. o[k]) end
  end
  o.seeds = M.parse_seeds(o.seeds)
  return o
end

function M.main(argv)
  local o = parse(argv)
  local lg_reps, pt_reps = {}, {}
  for _, s in ipairs(o.seeds) do
    lg_reps[#lg_reps + 1] = read_report(o.lg, s)
    pt_reps[#pt_reps + 1] = read_report(o.pt, s)
  end
  local n = #o.seeds
  print(string.format("%s vs PyTorch twin, %d seeds (%s), luagan eval reports", o.name, n,
                      table.concat(o.seeds, ",")))
  for _, m in ipairs(M.METRICS) do
    local key, label, fmt, scale = m[1], m[2], m[3], m[4] or 1
    local a, b = {}, {}
    for i = 1, n do
      a[i] = lg_reps[i][key] * scale
      b[i] = pt_reps[i][key] * scale
    end
    local c = M.compare(a, b)
    local function row(name, xs, mean, se)
      local cells = {}
      for i, x in ipairs(xs) do cells[i] = string.format(fmt, x) end
      print(string.format("  %-7s %s   mean " .. fmt .. " +- " .. fmt, name,
                          table.concat(cells, " "), mean, se))
    end
    print(label)
    row("luagan", a, c.ma, c.sa)
    row("twin", b, c.mb, c.sb)
    print(string.format("  luagan - twin = " .. fmt .. " +- " .. fmt .. "  (Welch t %s, df %s)",
                        c.diff, c.diff_se, c.t and string.format("%.2f", c.t) or "-",
                        c.df and string.format("%.1f", c.df) or "-"))
  end
end

-- required as a module: `...` is the module name; run as a script: the arguments
if ... == "twin_table" then return M end
-- a user error is one line; a bug keeps its traceback
local ok, err = xpcall(M.main, function(e)
  if type(e) == "string" and e:match("^twin_table: ") then return e end
  return debug.traceback(e, 2)
end, arg)
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
