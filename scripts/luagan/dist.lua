-- luagan.dist (lg.dist): data-parallel training on MPI.
--
--   local dist = lg.dist
--   dist.init()                         -- under mpirun: MPI; else one process
--   print(dist.rank(), dist.size())     -- 0-based rank, the MPI convention
--   dist.broadcast_module(G)            -- rank 0's parameters and buffers everywhere
--   ... loss:backward()
--   dist.allreduce_grads(optG)          -- mean of the gradients over ranks
--   optG:step()
--
-- Without mpirun (or without the luagan.mpi module, built when CMake finds
-- MPI) everything works as one process of size 1, so code written for
-- several ranks runs unchanged on one. docs/distributed.md has the whole story.
--
-- Every collective walks tensors in a fixed order (registration order for
-- modules, group order for optimizers; never pairs(), whose order differs
-- between processes because Lua randomises string hashing), and checks that
-- all ranks take part in the same collective with the same tensors: a rank
-- that branched differently gets an error naming the collective, not a hang.
local core = require "luagan.core"
local util = require "luagan.util"

local dist = {}

local function type_name(v) return core.is_tensor(v) and "tensor" or type(v) end

local mpi          -- the C module, once init() found it
local exact = false
local sync_step = true
local overlap = false  -- start bucket allreduces during backward (init{overlap}, LUAGAN_DIST_OVERLAP)

-- LUAGAN_DIST_PROFILE=1: seconds spent waiting for the other ranks (the
-- agreement check that opens a gradient allreduce returns when the slowest
-- rank arrives), communicating (the allreduces) and copying gradients in
-- and out of buckets, and the bytes reduced; train.run prints them per step
-- (dist.profile_take). nil when off: the timers cost nothing then.
local prof
local function clock() return mpi.wtime() end

-- Was this process started by an MPI launcher (mpirun / mpiexec / srun)?
function dist.launched()
  for _, v in ipairs{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"} do
    if os.getenv(v) then return true end
  end
  return false
end

-- The luagan.mpi module, or nil and why not.
local function load_mpi()
  local ok, m = pcall(require, "luagan.mpi")
  if ok then return m end
  return nil, m
end

-- init{exact = false, sync_on_step = true, overlap = false, force = false} -> rank, size
-- Starts MPI when launched by mpirun (or when force = true); otherwise the
-- process is rank 0 of 1. exact = true (or LUAGAN_DIST_EXACT=1) makes every
-- sum add the ranks' values in rank order, so N ranks reproduce an
-- in-process run over N shards bit for bit (at N buffers of memory).
-- sync_on_step: every optimizer's step() first averages its gradients over
-- the ranks (allreduce_grads); false leaves that to the caller.
-- overlap = true (or LUAGAN_DIST_OVERLAP=1; default false, or =0): an
-- optimizer's gradients start their allreduce during the backward pass, as
-- soon as a bucket of them is final (see allreduce_grads). Off by default:
-- dcgan at np 2 measured 4-9 % slower with it, on one host and across two
-- (docs/distributed.md, "Overlap"). Exact mode turns it off (its ordered
-- sum is a blocking allgather).
function dist.init(opts)
  util.check_opts("dist.init", opts, {"exact", "force", "overlap", "sync_on_step"})
  opts = opts or {}
  exact = opts.exact == true or os.getenv("LUAGAN_DIST_EXACT") == "1"
  sync_step = opts.sync_on_step ~= false
  if opts.overlap ~= nil and type(opts.overlap) ~= "boolean" then
    error("dist.init: overlap must be true or false, got " .. tostring(opts.overlap), 2)
  end
  if opts.overlap ~= nil then overlap = opts.overlap
  else overlap = os.getenv("LUAGAN_DIST_OVERLAP") == "1" end
  if mpi then return dist.rank(), dist.size() end
  if not (dist.launched() or opts.force) then return 0, 1 end
  local m, why = load_mpi()
  if not m then
    error("dist.init: started by an MPI launcher, but luagan was built without MPI " ..
          "(install libopenmpi-dev and rebuild): " .. tostring(why), 2)
  end
  mpi = m
  mpi.init()
  if os.getenv("LUAGAN_DIST_PROFILE") == "1" then dist.profile_take() end
  dist.set_bucket_mb(tonumber(os.getenv("LUAGAN_DIST_BUCKET_MB") or "") or nil)
  return dist.rank(), dist.size()
end

-- profile_take() -> {wait, comm, copy = seconds, bytes, buckets} since the
-- last call (and starts counting), or nil when profiling is off and was
-- never asked for. LUAGAN_DIST_PROFILE=1 turns it on at init().
function dist.profile_take()
  local p = prof
  prof = {wait = 0.0, comm = 0.0, copy = 0.0, bytes = 0, buckets = 0}
  return p
end
function dist.profiling() return prof ~= nil end

function dist.is_initialized() return mpi ~= nil end
-- true when optimizers must average their gradients in step()
function dist.sync_on_step() return sync_step and mpi ~= nil and mpi.size() > 1 end
function dist.exact() return exact end
function dist.rank() return mpi and mpi.rank() or 0 end
function dist.size() return mpi and mpi.size() or 1 end
function dist.is_main() return dist.rank() == 0 end

-- ranks on this host, and this rank's index among them
function dist.local_size()
  if not mpi then return 1, 0 end
  return mpi.local_size()
end

function dist.barrier() if mpi then mpi.barrier() end end

-- Fail on every rank, naming the collective, when the ranks disagree on
-- what they are doing (signature: the collective and the tensors' shapes).
local function agree(what, signature)
  if mpi.same(what .. "|" .. signature) then return end
  error(string.format("dist.%s: the ranks disagree (rank %d: %s); a branch that depends " ..
                      "on a rank-local value reached different collectives", what, dist.rank(),
                      signature), 3)
end

local function shape_sig(t) return table.concat(t:shape(), "x") end

local function check_tensor(t, who)
  if not core.is_tensor(t) then
    error(string.format("dist.%s: expected a tensor, got %s", who, type_name(t)), 3)
  end
end

-- Run fn(buf) on a contiguous tensor with t's values and put the result back
-- into t (t itself when it is contiguous).
local function in_place(t, fn)
  local t0 = prof and clock()
  if t:is_contiguous() then fn(t)
  else
    local c = t:contiguous()
    fn(c)
    core.no_grad(function() t:copy_(c) end)
  end
  if prof then prof.comm = prof.comm + (clock() - t0) end
  return t
end

local OPS = {sum = "sum", mean = "sum", max = "max", min = "min"}

-- allreduce(t, {op = "sum"|"mean"|"max"|"min"}) -> t, reduced in place
-- over all ranks (the tensor must have the same shape on every rank).
function dist.allreduce(t, opts)
  util.check_opts("dist.allreduce", opts, {"op"})
  check_tensor(t, "allreduce")
  local op = opts and opts.op or "sum"
  if not OPS[op] then
    error("dist.allreduce: op must be one of sum, mean, max, min, got " .. tostring(op), 2)
  end
  if not mpi then return t end
  agree("allreduce", op .. " " .. shape_sig(t))
  in_place(t, function(b) mpi.allreduce_(b, OPS[op], exact) end)
  if op == "mean" then core.no_grad(function() t:mul_(1 / dist.size()) end) end
  return t
end

-- broadcast(t, root) -> t holding rank root's values (root 0-based, default 0)
function dist.broadcast(t, root)
  check_tensor(t, "broadcast")
  root = root or 0
  if math.type(root) ~= "integer" or root < 0 or root >= dist.size() then
    error(string.format("dist.broadcast: root must be a rank in [0, %d), got %s", dist.size(),
                        tostring(root)), 2)
  end
  if not mpi then return t end
  agree("broadcast", root .. " " .. shape_sig(t))
  return in_place(t, function(b) mpi.broadcast_(b, root) end)
end

-- allgather(t) -> a new tensor: every rank's t stacked along dim 1, in rank order
function dist.allgather(t)
  check_tensor(t, "allgather")
  if t:dim() == 0 then t = t:reshape(1) end
  if not mpi then return t:clone() end
  agree("allgather", shape_sig(t))
  return mpi.allgather(t:contiguous())
end

-- The mean of a number over ranks (metrics), or its max/min/sum.
function dist.allreduce_number(x, op)
  op = op or "mean"
  if not OPS[op] then error("dist.allreduce_number: bad op " .. tostring(op), 2) end
  if not mpi then return x end
  local t0 = prof and clock()
  local v = mpi.allreduce_number(x, OPS[op])
  if prof then prof.comm = prof.comm + (clock() - t0) end
  return op == "mean" and v / dist.size() or v
end

-- All ranks hold the same string? (e.g. a decision every rank must share)
function dist.same(s)
  if not mpi then return true end
  return mpi.same(tostring(s))
end

-- The chunks [lo, hi) (1-based chunk numbers) rank r computes: a
-- contiguous run of about nchunks / size of them, so that the ranks'
-- results joined in rank order are in index order.
local function chunk_range(nchunks, r, size)
  return r * nchunks // size + 1, (r + 1) * nchunks // size + 1
end

-- split_map(n, chunk, fn) -> tensor (n, ...) on every rank: fn(first, count)
-- -> tensor (count, ...) for the items first..first+count-1 of the chunks
-- 1..chunk, chunk+1..2*chunk, ... of items 1..n; each rank computes a
-- contiguous run of the chunks and the results are gathered in index order.
-- The same as one process calling fn on every chunk in order and joining
-- the results (bit for bit when fn's rows do not depend on which rank runs
-- it). Every rank must call it with the same n and chunk.
function dist.split_map(n, chunk, fn)
  if math.type(n) ~= "integer" or n < 0 or math.type(chunk) ~= "integer" or chunk < 1 then
    error(string.format("dist.split_map: n must be an integer >= 0 and chunk >= 1, got %s, %s",
                        tostring(n), tostring(chunk)), 2)
  end
  if type(fn) ~= "function" then error("dist.split_map: fn must be a function, got " .. type(fn), 2) end
  local size, rank = dist.size(), dist.rank()
  local nchunks = (n + chunk - 1) // chunk
  local function rows_of(r)
    local lo, hi = chunk_range(nchunks, r, size)
    return math.max(0, math.min(n, (hi - 1) * chunk) - (lo - 1) * chunk)
  end
  local lo, hi = chunk_range(nchunks, rank, size)
  local parts = {}
  for c = lo, hi - 1 do
    local first = (c - 1) * chunk + 1
    local count = math.min(chunk, n - first + 1)
    local t = fn(first, count)
    if not core.is_tensor(t) or t:dim() < 1 or t:shape()[1] ~= count then
      error(string.format("dist.split_map: fn(%d, %d) must return a tensor of %d rows, got %s", first,
                          count, count, core.is_tensor(t) and shape_sig(t) or type_name(t)), 2)
    end
    parts[#parts + 1] = t
  end
  local mine = #parts == 1 and parts[1] or (#parts > 1 and core.cat(parts, 1) or nil)
  if size == 1 then return mine or core.zeros(0) end
  -- every rank learns the rows' shape (a rank without chunks has none)
  local dims = {}
  local s = mine and mine:shape() or {}
  for d = 1, 8 do dims[d] = s[d + 1] or 0 end
  dims[9] = mine and #s or 0
  local agreed = dist.allreduce(core.tensor(dims), {op = "max"}):totable()
  local ndim = math.tointeger(agreed[9])
  if ndim == 0 then return core.zeros(0) end
  local most = 0
  for r = 0, size - 1 do most = math.max(most, rows_of(r)) end
  local shape = {most}
  for d = 2, ndim do shape[d] = math.tointeger(agreed[d - 1]) end
  local buf = core.zeros(table.unpack(shape))
  if mine then core.no_grad(function() buf:narrow(1, 1, mine:shape()[1]):copy_(mine) end) end
  local all = dist.allgather(buf)                 -- (size * most, ...)
  local out = {}
  for r = 0, size - 1 do
    local k = rows_of(r)
    if k > 0 then out[#out + 1] = all:narrow(1, r * most + 1, k) end
  end
  return core.cat(out, 1)
end

---------------------------------------------------------------------------
-- modules and gradients

-- Tensors of a module (parameters, then buffers) or an optimizer's
-- parameters, in their fixed order, with names for messages.
local function module_tensors(m)
  local out = {}
  for name, p in m:named_parameters() do out[#out + 1] = {name, p} end
  for name, b in m:named_buffers() do out[#out + 1] = {name, b} end
  return out
end

-- broadcast_module(m, root): every parameter and buffer of m from rank root
-- (default 0), so all ranks start from the same weights.
function dist.broadcast_module(m, root)
  if type(m) ~= "table" or type(m.named_parameters) ~= "function" then
    error("dist.broadcast_module: expected a module, got " .. type_name(m), 2)
  end
  if not mpi then return m end
  local list = module_tensors(m)
  local sig = {}
  for i, e in ipairs(list) do sig[i] = e[1] .. ":" .. shape_sig(e[2]) end
  agree("broadcast_module", table.concat(sig, ","))
  core.no_grad(function()
    for _, e in ipairs(list) do
      local t = e[2]
      in_place(t:detach(), function(b) mpi.broadcast_(b, root or 0) end)
    end
  end)
  return m
end

-- The parameters of an optimizer (group order) or a module (registration
-- order), or a list of tensors as given.
local function params_of(x, who)
  if type(x) == "table" and type(x.params) == "function" and x.param_groups then return x:params() end
  if type(x) == "table" and type(x.parameters) == "function" then return x:parameters() end
  if type(x) == "table" and (x[1] == nil or core.is_tensor(x[1])) then return x end
  error(who .. ": expected an optimizer, a module or a list of tensors, got " .. type_name(x), 3)
end

-- Gradient buckets are reused between steps: glibc maps and unmaps every
-- buffer over its mmap threshold on each allocation, which made one large
-- allreduce many times slower than the same bytes in reused buckets
-- (docs/distributed.md has the figure).
local buckets = {}
local function bucket(n)
  local b = buckets[n]
  if not b then b = core.zeros(n); buckets[n] = b end
  return b
end

local BUCKET_ELEMS = 25 * 1024 * 1024 // 4      -- 25 MiB of float32
-- gradients of at least this many elements (1 MiB) are reduced in place
local DIRECT_ELEMS = 256 * 1024

-- set_bucket_mb(mb): the largest gradient bucket, in MiB (default 25; nil
-- restores it; LUAGAN_DIST_BUCKET_MB at init). Over 32 MiB, glibc's mmap
-- threshold stops adapting: Open MPI's temporaries of each allreduce are
-- then mapped and unmapped on every call (bench/dist_allreduce.lua), so a
-- warning says so.
function dist.set_bucket_mb(mb)
  if mb == nil then BUCKET_ELEMS = 25 * 1024 * 1024 // 4 return end
  if type(mb) ~= "number" or mb <= 0 or mb ~= mb then
    error("dist.set_bucket_mb: expected a size in MiB > 0, got " .. tostring(mb), 2)
  end
  if mb > 32 and dist.rank() == 0 then
    io.stderr:write(string.format("luagan: dist: gradient buckets of %g MiB: above 32 MiB glibc " ..
                                  "maps and unmaps the allreduce's buffers on every call (slow); " ..
                                  "25 is the default\n", mb))
  end
  BUCKET_ELEMS = math.max(1, math.floor(mb * 1024 * 1024 / 4))
end
function dist.bucket_mb() return BUCKET_ELEMS * 4 / (1024 * 1024) end

-- Overlap (dist.init's overlap): each optimizer gets a group in the C module
-- the first time its gradients are reduced; from its next zero_grad on, the
-- buckets of its gradients start their allreduce during the backward pass
-- (luagan_mpi.c says how), and allreduce_grads collects them. Groups are
-- keyed weakly by the optimizer and remember the parameter list they were
-- made for (a new list, after add_param_group, makes a new group).
local groups = setmetatable({}, {__mode = "k"})

local function overlapping() return overlap and not exact and mpi ~= nil and mpi.size() > 1 end
-- whether allreduce_grads overlaps optimizers' gradients with backward now
function dist.overlapping() return overlapping() end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if rawequal(a[i], b[i]) == false then return false end end
  return true
end

-- grads_zeroed(optimizer): the optimizer's gradients were just dropped
-- (Optimizer:zero_grad calls it): reductions started from now on belong to
-- its next step.
function dist.grads_zeroed(opt)
  local g = groups[opt]
  if g and overlapping() then mpi.overlap_arm(g.h) end
end

-- overlap_stats() -> {early = buckets started during a backward pass, used =
-- buckets whose overlapped result was taken, redone = buckets left to the
-- blocking path (a second backward before the step, a gradient changed
-- after it was final, ...)}, counted since init; zeros without MPI.
function dist.overlap_stats()
  if not mpi then return {early = 0, used = 0, redone = 0} end
  local early, used, redone = mpi.overlap_stats()
  return {early = early, used = used, redone = redone}
end

-- allreduce_grads(opt_or_module_or_list, {op = "mean"|"sum"}): replace each
-- parameter's .grad by its mean (default) or sum over ranks: gradients of
-- 1 MiB or more in place, the others packed into reused buckets of at most
-- 25 MiB (dist.set_bucket_mb). A parameter without a gradient on every rank is skipped; one
-- with a gradient on some ranks only is an error (the ranks' graphs differ).
function dist.allreduce_grads(x, opts)
  util.check_opts("dist.allreduce_grads", opts, {"op"})
  local op = opts and opts.op or "mean"
  if op ~= "mean" and op ~= "sum" then
    error("dist.allreduce_grads: op must be mean or sum, got " .. tostring(op), 2)
  end
  local params = params_of(x, "dist.allreduce_grads")
  if not mpi then return end
  local grads, sig = {}, {}
  for i, p in ipairs(params) do
    local g = p.grad
    sig[i] = g and shape_sig(g) or "-"
    if g then grads[#grads + 1] = g end
  end
  -- the overlap group of an optimizer: "new" makes one (a collective, so
  -- it is part of the signature every rank must agree on)
  local group, gstate = nil, "-"
  if overlapping() and type(x) == "table" and x.param_groups then
    group = groups[x]
    if group and not same_list(group.params, params) then group = nil end
    gstate = group and "ov" or "new"
  end
  local t0 = prof and clock()
  agree("allreduce_grads", table.concat(sig, ",") .. "|" .. gstate)   -- returns when the slowest rank arrives
  local scale = op == "mean" and 1 / dist.size() or nil
  if gstate == "new" then
    local list = {}
    for i, p in ipairs(params) do list[i] = p end
    group = {params = list, h = mpi.overlap_new(list, BUCKET_ELEMS)}
    groups[x] = group
  elseif group then
    -- the buckets this step's backward started (or their fallback): the
    -- gradients they hold are reduced; the rest go the blocking way below
    local t1 = prof and clock()
    if prof then prof.wait = prof.wait + (t1 - t0) end
    local done, used = mpi.overlap_finish(group.h, scale)
    if prof then
      t0 = clock()
      prof.comm = prof.comm + (t0 - t1)
      prof.buckets = prof.buckets + used
    end
    grads = {}
    for i, p in ipairs(params) do
      if p.grad then
        if done[i] then
          if prof then prof.bytes = prof.bytes + 4 * p.grad:numel() end
        else
          grads[#grads + 1] = p.grad
        end
      end
    end
  end
  -- a large contiguous gradient is reduced where it lies (slices of at most
  -- a bucket): copying it into a bucket and back cost as much as the sum
  local direct, small = {}, {}
  for _, g in ipairs(grads) do
    if g:numel() >= DIRECT_ELEMS and g:is_contiguous() then direct[#direct + 1] = g
    else small[#small + 1] = g end
  end
  core.no_grad(function()
    local t1 = prof and clock()
    if prof then prof.wait = prof.wait + (t1 - t0) end
    local function reduce(buf, n)          -- buf: (n,) contiguous, summed (or averaged) in place
      local t2 = prof and clock()
      mpi.allreduce_(buf, "sum", exact)
      local t3 = prof and clock()
      if scale then buf:mul_(scale) end
      if prof then
        prof.comm, prof.copy = prof.comm + (t3 - t2), prof.copy + (t2 - t1)
        prof.bytes, prof.buckets = prof.bytes + 4 * n, prof.buckets + 1
        t1 = t3
      end
    end
    for _, g in ipairs(direct) do
      local flat = g:view(g:numel())
      for off = 1, g:numel(), BUCKET_ELEMS do
        local len = math.min(BUCKET_ELEMS, g:numel() - off + 1)
        reduce(flat:narrow(1, off, len), len)
      end
    end
    local i = 1
    while i <= #small do
      -- fill one bucket with whole gradients
      local j, n = i, 0
      repeat
        n = n + small[j]:numel()
        j = j + 1
      until j > #small or n + small[j]:numel() > BUCKET_ELEMS
      local b = bucket(n)
      local off = 1
      for k = i, j - 1 do
        local g = small[k]
        b:narrow(1, off, g:numel()):copy_(g:reshape(g:numel()))
        off = off + g:numel()
      end
      reduce(b, n)
      off = 1
      for k = i, j - 1 do
        local g = small[k]
        g:copy_(b:narrow(1, off, g:numel()):view(g:shape()))
        off = off + g:numel()
      end
      i = j
    end
    if prof then prof.copy = prof.copy + (clock() - t1) end
  end)
end

---------------------------------------------------------------------------
-- differentiable collectives

-- allreduce_sum(t) -> a new tensor, the sum over ranks, recorded on the
-- graph: its gradient is again an allreduce of the incoming gradients (each
-- rank's loss depends on every rank's t), so gradients of gradients flow
-- through it too (a gradient penalty through SyncBatchNorm).
local AllreduceSum
AllreduceSum = core.Function{name = "dist.allreduce_sum",
  forward = function(_, t)
    local out = t:contiguous():clone()
    if mpi then
      local t0 = prof and clock()
      mpi.allreduce_(out, "sum", exact)
      if prof then prof.comm = prof.comm + (clock() - t0) end
    end
    return out
  end,
  backward = function(_, g) return AllreduceSum(g) end}

function dist.allreduce_sum(t)
  check_tensor(t, "allreduce_sum")
  if not mpi then return t * 1 end
  agree("allreduce_sum", shape_sig(t))
  return AllreduceSum(t)
end

return dist
