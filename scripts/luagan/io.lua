-- luagan.io: checkpoints, JSON and the JSONL metrics log.
--
--   local lgio = require "luagan.io"          -- also lg.io
--   lgio.save_checkpoint("out/ck.safetensors", {
--     G = G:state_dict(), D = D:state_dict(), optG = optG:state_dict(),
--     step = 1200, rng = lg.get_rng_state(), config = {lr = 2e-4, loss = "ns"}})
--   local ck = lgio.load_checkpoint("out/ck.safetensors")
--   G:load_state_dict(ck.G); lg.set_rng_state(ck.rng)
--
-- A checkpoint is one safetensors file (readable by PyTorch's
-- safetensors.torch.load_file and anything else that reads the format):
-- every tensor of the nested table is stored under its dotted path
-- ("G.0.weight"), every number, string and boolean goes into the string
-- metadata under its dotted path ("step" = "1200"), and the metadata entry
-- "luagan.tree" (JSON) records the shape of the table and the Lua type of
-- each leaf so loading gives back exactly the table that was saved (integers
-- stay integers, floats round-trip bit for bit including -0.0, strings byte
-- for byte including NUL bytes). The file is written to a temporary and
-- renamed, so a crash never leaves a half-written checkpoint.
-- Files made by other tools (no "luagan.tree") load as a flat table
-- name -> tensor, with their metadata as the second result.
local core = require "luagan.core"

local M = {}

M.save_safetensors = core.save_safetensors
M.load_safetensors = core.load_safetensors

---------------------------------------------------------------------------
-- plain files: every write is checked and names the file and the OS error

-- Call a core file function; its error (already "what: file: OS error")
-- raised at the caller of the io function, without the io.lua position.
local function checked(fn, ...)
  local ok, err = pcall(fn, ...)
  if not ok then error(err, 3) end
end

-- write_atomic(path, data): replace the file with the string data (any
-- bytes). A new temporary next to it, created exclusively (never through a
-- link planted at its name), is written, fsynced and renamed over path; on
-- any failure (a full disk, no permission) the previous file stays as it
-- was and the error names the file and the OS error. The one implementation
-- is the C runtime's (runtime/lg_atomic.c), which the checkpoint, PNG and
-- IDX writers use too.
function M.write_atomic(path, data)
  if type(path) ~= "string" then error("write_atomic: path must be a string, got " .. type(path), 2) end
  if type(data) ~= "string" then error("write_atomic: data must be a string, got " .. type(data), 2) end
  checked(core.write_file_atomic, path, data)
end

-- append(path, data): append the string to the file (created if missing).
-- All or nothing: a failed or short write is cut back off the file and
-- raised as an error naming the file and the OS error.
function M.append(path, data)
  if type(path) ~= "string" then error("append: path must be a string, got " .. type(path), 2) end
  if type(data) ~= "string" then error("append: data must be a string, got " .. type(data), 2) end
  checked(core.append_file, path, data)
end

-- clean_stale_temps(dir, names) -> count: remove the temporaries that
-- writers killed mid-write left for the files in dir named by names (file
-- names or shell patterns: {"checkpoint.safetensors", "samples_*.png"}):
-- "<name>.tmp.<pid>.<XXXXXX>" and the older "<name>.tmp.<pid>", only when
-- that pid is not running here and no process holds the file locked, so a
-- concurrent writer's temporary is never removed, nor anything else.
function M.clean_stale_temps(dir, names)
  if type(dir) ~= "string" then error("clean_stale_temps: dir must be a string, got " .. type(dir), 2) end
  if type(names) ~= "table" then
    error("clean_stale_temps: names must be a list of file names, got " .. type(names), 2)
  end
  local ok, n = pcall(core.clean_stale_temps, dir, names)
  if not ok then error(n, 2) end
  return n
end

---------------------------------------------------------------------------
-- JSON (enough for logs, configs and the checkpoint tree)

local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                 ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- Shortest "%.Ng" that reads back as the same double; NaN and infinities
-- as Python's json module writes and reads them.
local function json_number(x)
  if math.type(x) == "integer" then return string.format("%d", x) end
  if x ~= x then return "NaN" end
  if x == math.huge then return "Infinity" end
  if x == -math.huge then return "-Infinity" end
  for prec = 15, 17 do
    local s = string.format("%." .. prec .. "g", x)
    if tonumber(s) == x then
      if not s:find("[%.eEn]") then s = s .. ".0" end   -- keep floats floats
      return s
    end
  end
end
M.format_number = json_number

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local function encode(v, out, seen, where)
  local tv = type(v)
  if v == nil then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = tostring(v)
  elseif tv == "number" then out[#out + 1] = json_number(v)
  elseif tv == "string" then out[#out + 1] = json_string(v)
  elseif tv == "table" then
    if seen[v] then error("json: cycle at " .. where, 0) end
    seen[v] = true
    if is_sequence(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out, seen, where .. "[" .. i .. "]")
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" and math.type(k) ~= "integer" then
          error("json: key of type " .. type(k) .. " at " .. where, 0)
        end
        keys[#keys + 1] = tostring(k)
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        local val = v[k]
        if val == nil then val = v[tonumber(k)] end
        out[#out + 1] = json_string(k)
        out[#out + 1] = ":"
        encode(val, out, seen, where .. "." .. k)
      end
      out[#out + 1] = "}"
    end
    seen[v] = nil
  elseif core.is_tensor(v) then
    error("json: a tensor at " .. where .. " (store tensors in a checkpoint, or call :totable())", 0)
  else
    error("json: cannot encode a " .. tv .. " at " .. where, 0)
  end
end

-- Lua value -> JSON text (objects with sorted keys; a Lua sequence is an array).
function M.json_encode(v)
  local out = {}
  encode(v, out, {}, "value")
  return table.concat(out)
end

local function decode_error(s, i, msg)
  error(string.format("json: %s at byte %d near %q", msg, i, s:sub(i, i + 10)), 0)
end

local decode_value

local function skip(s, i)
  return (s:find("[^ \t\r\n]", i)) or #s + 1
end

local function decode_string(s, i)   -- s:sub(i, i) == '"'
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then decode_error(s, i, "unterminated string") end
    if c == '"' then return table.concat(out), j + 1 end
    if c == "\\" then
      local e = s:sub(j + 1, j + 1)
      local simple = ({['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f',
                       n = '\n', r = '\r', t = '\t'})[e]
      if simple then
        out[#out + 1] = simple
        j = j + 2
      elseif e == "u" then
        local hex = s:sub(j + 2, j + 5)
        if not hex:match("^%x%x%x%x$") then decode_error(s, j, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        j = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = s:match("^\\u(%x%x%x%x)", j)
          lo = lo and tonumber(lo, 16)
          if not lo or lo < 0xDC00 or lo > 0xDFFF then decode_error(s, j, "lone surrogate") end
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
          j = j + 6
        end
        out[#out + 1] = utf8.char(cp)
      else
        decode_error(s, j, "bad escape")
      end
    elseif c:byte() < 32 then
      decode_error(s, j, "control character in string")
    else
      local k = s:find('["\\%c]', j) or #s + 1
      out[#out + 1] = s:sub(j, k - 1)
      j = k
    end
  end
end

function decode_value(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return t, i + 1 end
    while true do
      i = skip(s, i)
      if s:sub(i, i) ~= '"' then decode_error(s, i, "expected a string key") end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then decode_error(s, i, "expected ':'") end
      t[k], i = decode_value(s, i + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return t, i + 1 end
      if d ~= "," then decode_error(s, i, "expected ',' or '}'") end
      i = i + 1
    end
  elseif c == "[" then
    local t, n = {}, 0
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return t, i + 1 end
    while true do
      n = n + 1
      t[n], i = decode_value(s, i)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return t, i + 1 end
      if d ~= "," then decode_error(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then
    return decode_string(s, i)
  elseif s:find("^true", i) then return true, i + 4
  elseif s:find("^false", i) then return false, i + 5
  elseif s:find("^null", i) then return nil, i + 4
  elseif s:find("^NaN", i) then return 0 / 0, i + 3
  elseif s:find("^Infinity", i) then return math.huge, i + 8
  elseif s:find("^%-Infinity", i) then return -math.huge, i + 9
  else
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not num or num == "" or num == "-" then decode_error(s, i, "unexpected character") end
    local v = math.tointeger(tonumber(num)) and not num:find("[.eE]") and math.tointeger(tonumber(num))
              or tonumber(num)
    if v == nil then decode_error(s, i, "bad number") end
    return v, i + #num
  end
end

-- JSON text -> Lua value (null -> nil; NaN/Infinity accepted).
function M.json_decode(s)
  if type(s) ~= "string" then error("json_decode: expected a string, got " .. type(s), 2) end
  local v, i = decode_value(s, 1)
  i = skip(s, i)
  if i <= #s then decode_error(s, i, "trailing characters") end
  return v
end

---------------------------------------------------------------------------
-- checkpoints

local TREE = "luagan.tree"

local function key_part(k, where)
  if type(k) == "string" then
    if k == "" then error("save_checkpoint: empty key at " .. where, 0) end
    return k
  end
  if math.type(k) == "integer" then return tostring(k) end
  error("save_checkpoint: key of type " .. type(k) .. " at " .. where ..
        " (keys must be strings or integers)", 0)
end

-- Walk the state; fill tensors/meta (by dotted name) and return the skeleton
-- of v: a table of skeletons, or a leaf type letter
-- t tensor, i integer, f float, s string, b boolean, q string holding NUL
-- bytes (stored as a JSON string literal).
local function flatten(v, name, tensors, meta, used, seen)
  local tv = type(v)
  local function leaf(kind, text)
    if name == "" then error("save_checkpoint: the state must be a table", 0) end
    if used[name] then
      error("save_checkpoint: two entries flatten to the same name '" .. name .. "'", 0)
    end
    if name == TREE then error("save_checkpoint: '" .. TREE .. "' is a reserved name", 0) end
    used[name] = true
    if kind == "t" then tensors[name] = v else meta[name] = text end
    return kind
  end
  if core.is_tensor(v) then return leaf("t")
  elseif tv == "number" then
    if math.type(v) == "integer" then return leaf("i", string.format("%d", v)) end
    return leaf("f", json_number(v))
  elseif tv == "string" then
    if not utf8.len(v) then
      error("save_checkpoint: string at '" .. name .. "' is not valid UTF-8 " ..
            "(checkpoint metadata is text)", 0)
    end
    -- metadata values are C strings: one holding a NUL byte is stored as a
    -- JSON string literal ("q"), where it is the escape \u0000
    if v:find("\0", 1, true) then return leaf("q", json_string(v)) end
    return leaf("s", v)
  elseif tv == "boolean" then return leaf("b", tostring(v))
  elseif tv == "table" then
    if seen[v] then error("save_checkpoint: the state has a cycle at '" .. name .. "'", 0) end
    seen[v] = true
    local skel = {}
    local seq = is_sequence(v)
    for k, x in pairs(v) do
      local part = key_part(k, name == "" and "the top level" or "'" .. name .. "'")
      local sub = name == "" and part or name .. "." .. part
      local s = flatten(x, sub, tensors, meta, used, seen)
      if seq then skel[k] = s else skel[part] = s end
      if not seq and math.type(k) == "integer" then
        error("save_checkpoint: table at '" .. name .. "' mixes integer and string keys " ..
              "(or has holes)", 0)
      end
    end
    seen[v] = nil
    if next(v) == nil then return {} end
    if seq then return skel end
    return skel
  else
    error("save_checkpoint: cannot store a " .. tv .. " at '" .. name .. "'", 0)
  end
end

-- Write state (a nested table of tensors, numbers, strings, booleans) to
-- path as safetensors, atomically. Extra string metadata may be given in
-- opts.metadata (flat, string -> string).
function M.save_checkpoint(path, state, opts)
  if type(path) ~= "string" then error("save_checkpoint: path must be a string", 2) end
  if type(state) ~= "table" or core.is_tensor(state) then
    error("save_checkpoint: state must be a table, got " .. type(state), 2)
  end
  local tensors, meta = {}, {}
  local ok, skel = pcall(flatten, state, "", tensors, meta, {}, {})
  if not ok then error(skel, 2) end
  if opts and opts.metadata then
    for k, v in pairs(opts.metadata) do
      if meta[k] ~= nil or k == TREE or tensors[k] then
        error("save_checkpoint: metadata key '" .. tostring(k) .. "' clashes with the state", 2)
      end
      meta[k] = v
    end
  end
  meta[TREE] = M.json_encode(skel)
  checked(core.save_safetensors, path, tensors, meta)
end

local function rebuild(skel, name, tensors, meta, used, path)
  if type(skel) == "table" then
    local t = {}
    for k, s in pairs(skel) do
      local sub = name == "" and tostring(k) or name .. "." .. tostring(k)
      t[k] = rebuild(s, sub, tensors, meta, used, path)
    end
    return t
  end
  local function bad(msg)
    error(string.format("load_checkpoint: %s: entry '%s' %s", path, name, msg), 0)
  end
  used[name] = true
  if skel == "t" then
    if not tensors[name] then bad("is listed in " .. TREE .. " but the file has no such tensor") end
    return tensors[name]
  end
  local text = meta[name]
  if text == nil then bad("is listed in " .. TREE .. " but missing from the metadata") end
  if skel == "s" then return text end
  if skel == "q" then
    local ok, v = pcall(M.json_decode, text)
    if not ok or type(v) ~= "string" then bad("is not a JSON string literal: " .. text) end
    return v
  end
  if skel == "b" then
    if text ~= "true" and text ~= "false" then bad("is not a boolean: " .. text) end
    return text == "true"
  end
  if skel == "i" then
    local v = math.tointeger(tonumber(text))
    if not v or not text:match("^-?%d+$") then bad("is not an integer: " .. text) end
    return v
  end
  if skel == "f" then
    local v = ({NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge})[text]
              or tonumber(text)
    if not v then bad("is not a number: " .. text) end
    -- an integer-looking text ("3", "-0") becomes a float with its sign:
    -- v + 0.0 would turn -0 into +0.0
    if math.type(v) == "integer" then v = tonumber(text .. ".0") or v + 0.0 end
    return v
  end
  bad("has an unknown type tag " .. tostring(skel))
end

-- Load a checkpoint. Returns the nested table that was saved and the raw
-- metadata (string -> string). Files without luagan's tree (made by other
-- tools) give the flat table name -> tensor.
function M.load_checkpoint(path)
  if type(path) ~= "string" then error("load_checkpoint: path must be a string", 2) end
  local tensors, meta = core.load_safetensors(path)
  local tree = meta[TREE]
  if tree == nil then return tensors, meta end
  local ok, skel = pcall(M.json_decode, tree)
  if not ok or type(skel) ~= "table" then
    error("load_checkpoint: " .. path .. ": metadata " .. TREE .. " is malformed: " ..
          tostring(skel), 2)
  end
  local used = {}
  local ok2, state = pcall(rebuild, skel, "", tensors, meta, used, path)
  if not ok2 then error(state, 2) end
  for name in pairs(tensors) do
    if not used[name] then
      error("load_checkpoint: " .. path .. ": tensor '" .. name .. "' is not listed in " ..
            TREE .. " (file edited by another tool?)", 2)
    end
  end
  return state, meta
end

-- lg.save / lg.load: a user's own objects

-- The metadata entry that marks a file written by lg.save of a bare tensor
-- (stored under the name "tensor", so other readers see a plain file).
local ROOT = "luagan.root"

-- What lg.save stores for v: a tensor as it is, anything with state_dict()
-- (a module, an optimizer, a scheduler, an EMA) as its state dict, a table
-- entry by entry; numbers, strings and booleans as they are.
local function saveable(v, where, seen)
  if core.is_tensor(v) then return v end
  if type(v) ~= "table" then return v end
  if type(v.state_dict) == "function" then return v:state_dict() end
  if seen[v] then error("lg.save: the value has a cycle at " .. where, 0) end
  seen[v] = true
  local out = {}
  for k, x in pairs(v) do out[k] = saveable(x, where .. "." .. tostring(k), seen) end
  seen[v] = nil
  return out
end

-- save(path, x): write x -- a tensor, a module or optimizer (its
-- state_dict()), or a nested table of those and of numbers, strings and
-- booleans -- to path as one safetensors file, atomically (a crash or a full
-- disk leaves the previous file as it was). load(path) gives back the same
-- nesting (modules and optimizers as their state dicts: pass them to
-- load_state_dict).
function M.save(path, x)
  if type(path) ~= "string" then error("lg.save: path must be a string, got " .. type(path), 2) end
  if core.is_tensor(x) then
    local ok, err = pcall(M.save_checkpoint, path, {tensor = x}, {metadata = {[ROOT] = "tensor"}})
    if not ok then error((tostring(err):gsub("^save_checkpoint", "lg.save")), 2) end
    return
  end
  if type(x) ~= "table" then
    error("lg.save: expected a tensor, a module, an optimizer or a table of them, got " ..
          type(x), 2)
  end
  local ok, v = pcall(saveable, x, "the value", {})
  if not ok then error(v, 2) end
  local ok2, err = pcall(M.save_checkpoint, path, v)
  if not ok2 then error((tostring(err):gsub("^save_checkpoint", "lg.save")), 2) end
end

-- load(path) -> x: what save(path, x) wrote (a file made by another tool
-- loads as the flat table name -> tensor). Loading reads tensors and text
-- only: it never runs code.
function M.load(path)
  if type(path) ~= "string" then error("lg.load: path must be a string, got " .. type(path), 2) end
  local ok, state, meta = pcall(M.load_checkpoint, path)
  if not ok then error((tostring(state):gsub("^load_checkpoint", "lg.load")), 2) end
  if meta[ROOT] == "tensor" then
    if not core.is_tensor(state.tensor) then
      error("lg.load: " .. path .. ": marked as one tensor but holds no tensor 'tensor'", 2)
    end
    return state.tensor
  end
  return state
end

---------------------------------------------------------------------------
-- the JSONL metrics log: one JSON object per line, each appended with one
-- checked write(2) so a crash loses at most the line being written and a
-- failed append (a full disk) is an error that leaves no half line behind.

local Log = {}
Log.__index = Log

-- MetricsLog(path, {append = true}): append (default) keeps earlier lines
-- (a resumed run continues its log); append = false starts a new file.
function M.MetricsLog(path, opts)
  if type(path) ~= "string" then error("MetricsLog: path must be a string", 2) end
  local append = not (opts and opts.append == false)
  -- create (or empty) the file now, so an unwritable path fails here
  local ok, err = pcall(append and core.append_file or core.write_file_atomic, path, "")
  if not ok then error("MetricsLog: " .. err, 2) end
  return setmetatable({path = path, open = true}, Log)
end

-- Append one record (a flat or nested table of numbers, strings, booleans).
function Log:write(record)
  if not self.open then error("MetricsLog: " .. self.path .. " is closed", 2) end
  if type(record) ~= "table" then error("MetricsLog:write expects a table", 2) end
  local ok, line = pcall(M.json_encode, record)
  if not ok then error("MetricsLog:write: " .. line, 2) end
  local ok2, err = pcall(core.append_file, self.path, line .. "\n")
  if not ok2 then error("MetricsLog: " .. err, 2) end
end

function Log:close()
  self.open = false
end
Log.__close = Log.close

-- Read a JSONL file into a list of tables. A last line cut short by a crash
-- is skipped; a bad line elsewhere is an error naming the line.
function M.read_jsonl(path)
  local f, err = io.open(path, "r")
  if not f then error("read_jsonl: cannot open " .. path .. ": " .. tostring(err), 2) end
  local text = f:read("a")
  f:close()
  local out, lineno = {}, 0
  local lines = {}
  for line in text:gmatch("([^\n]*)\n?") do lines[#lines + 1] = line end
  if lines[#lines] == "" then lines[#lines] = nil end
  for i, line in ipairs(lines) do
    lineno = i
    if line:find("%S") then
      local ok, v = pcall(M.json_decode, line)
      if ok then
        out[#out + 1] = v
      elseif not (i == #lines and not text:find("\n$")) then
        error(string.format("read_jsonl: %s:%d: %s", path, lineno, v), 2)
      end
    end
  end
  return out
end

return M
