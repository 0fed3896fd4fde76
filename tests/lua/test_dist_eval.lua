-- luagan eval under mpirun: sampling a checkpoint and the classifier
-- features split over 2 ranks give the same report as one process, bit for
-- bit (every number of the JSON but the wall time). Small counts (300
-- samples: 2 sampling chunks, 3 feature batches; 500 test images) keep it
-- to seconds. Skipped with a message without MPI or the data set.
local T = ...
local lg = require "luagan"
local H = dofile("tests/dist/harness.lua")(T)

local function have_data()
  return pcall(lg.data.fashion_mnist, {split = "test", limit = 1})
end

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  return out, p:close()
end

local function read_json(path)
  local f = assert(io.open(path))
  local r = lg.io.json_decode(f:read("a"))
  f:close()
  r.seconds = nil
  if r.floor then r.floor.seconds = nil end
  return r
end

H.mpi_test("mpirun -np 2 luagan eval: the same report as one process", function()
  if not have_data() then print("  skipped: no Fashion-MNIST (apt-get install dataset-fashion-mnist)") return end
  local d = H.tmpdir()
  local out, ok = run(string.format("OMP_NUM_THREADS=1 '%s' run dcgan --steps 2 --batch 8 --limit 64 " ..
                                    "--threads 1 --quiet --sample-every 0 --out '%s/run'", H.exe, d))
  T.ok(ok, out)
  local args = string.format("eval '%s/run' --n 300 --test-limit 500 --memo 100 --kid-subsets 5 " ..
                             "--kid-size 100 --threads 1 --json '%s/%%s.json'", d, d)
  out, ok = run(string.format("OMP_NUM_THREADS=1 '%s' %s", H.exe, args:format("one")))
  T.ok(ok, out)
  out, ok = H.mpirun_args(2, args:format("two"))
  T.ok(ok, out)
  local _, wrote = out:gsub("wrote ", "")
  T.eq(wrote, 1, "rank 0 alone writes and prints:\n" .. out)
  local one, two = read_json(d .. "/one.json"), read_json(d .. "/two.json")
  T.eq(one.n, 300); T.eq(one.n_real, 500)
  T.ok(one.memorisation and one.floor, "the memorisation check and the floor ran")
  T.eq(two, one)
  os.execute("rm -rf '" .. d .. "'")
end)
