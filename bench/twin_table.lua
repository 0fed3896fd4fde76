-- bench/twin_table.lua: the dcgan-vs-PyTorch-twin comparison over seeds, from
-- the `luagan eval --json` reports of both sides.
--
--   build/luagan bench/twin_table.lua --lg 'runs/lg{seed}.json' \
--       --pt 'runs/pt{seed}.json' --seeds 1-8
--
-- {seed} in each pattern is replaced by the seed. For every metric the script
-- prints each seed's value, the mean +- standard error of each side, the
-- difference of the means (luagan - twin) and Welch's t with its
-- Welch-Satterthwaite degrees of freedom. Nothing is fitted or adjusted: the
-- numbers are the reports' own. (The runs themselves: docs/RESULTS.md, "DCGAN
-- vs the PyTorch twin"; one seed is `luagan run dcgan --seed S` + `luagan eval`
-- on its samples, and `bench/dcgan_twin.py --seed S` + the same `luagan eval`.)
local io_ = require "luagan.io"
local mean_se = require("luagan.eval2d").mean_se

local METRICS = {
  {"fd", "Frechet distance", "%.2f"},
  {"kid", "KID x1000", "%.1f", 1000},
  {"precision", "precision", "%.3f"},
  {"recall", "recall", "%.3f"},
  {"cs", "classifier score", "%.3f"},
}

local function fail(msg) error("twin_table: " .. msg, 0) end

-- "1-8" or "1,3,5" -> {1, 2, ...}
local function parse_seeds(s)
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
  if #out < 2 then fail("--seeds: need at least two seeds, got '" .. s .. "'") end
  return out
end

local function parse(argv)
  local o = {}
  local i = 1
  while i <= #argv do
    local k, v = argv[i]:match("^%-%-(.+)$"), argv[i + 1]
    if k ~= "lg" and k ~= "pt" and k ~= "seeds" then fail("unknown option " .. tostring(argv[i])) end
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
  o.seeds = parse_seeds(o.seeds)
  return o
end

local function read_report(pattern, seed)
  local path = pattern:gsub("{seed}", tostring(seed))
  local f, err = io.open(path, "r")
  if not f then fail("cannot open " .. path .. ": " .. tostring(err)) end
  local text = f:read("a")
  f:close()
  local ok, rep = pcall(io_.json_decode, text)
  if not ok then fail(path .. ": not a JSON report: " .. tostring(rep)) end
  for _, m in ipairs(METRICS) do
    if type(rep[m[1]]) ~= "number" then fail(path .. ": no numeric field '" .. m[1] .. "'") end
  end
  return rep
end

-- Welch's t of mean(a) - mean(b) and its Welch-Satterthwaite degrees of freedom
local function welch(ma, sa, na, mb, sb, nb)
  local va, vb = sa * sa, sb * sb         -- squared standard errors
  local t = (ma - mb) / math.sqrt(va + vb)
  local df = (va + vb) ^ 2 / (va * va / (na - 1) + vb * vb / (nb - 1))
  return t, df
end

local o = parse(arg)
local lg_reps, pt_reps = {}, {}
for _, s in ipairs(o.seeds) do
  lg_reps[#lg_reps + 1] = read_report(o.lg, s)
  pt_reps[#pt_reps + 1] = read_report(o.pt, s)
end

local n = #o.seeds
print(string.format("dcgan vs PyTorch twin, %d seeds (%s), luagan eval reports", n,
                    table.concat(o.seeds, ",")))
for _, m in ipairs(METRICS) do
  local key, label, fmt, scale = m[1], m[2], m[3], m[4] or 1
  local a, b = {}, {}
  for i = 1, n do
    a[i] = lg_reps[i][key] * scale
    b[i] = pt_reps[i][key] * scale
  end
  local ma, sa = mean_se(a)
  local mb, sb = mean_se(b)
  local t, df = welch(ma, sa, n, mb, sb, n)
  local function row(name, xs, mean, se)
    local cells = {}
    for i, x in ipairs(xs) do cells[i] = string.format(fmt, x) end
    print(string.format("  %-7s %s   mean " .. fmt .. " +- " .. fmt, name,
                        table.concat(cells, " "), mean, se))
  end
  print(label)
  row("luagan", a, ma, sa)
  row("twin", b, mb, sb)
  print(string.format("  luagan - twin = " .. fmt .. " +- " .. fmt .. "  (Welch t %.2f, df %.1f)",
                      ma - mb, math.sqrt(sa * sa + sb * sb), t, df))
end
