-- The mpirun side of the lg.dist tests (tests/lua/test_dist*.lua):
--   local H = dofile("tests/dist/harness.lua")(T)
--   H.mpi_test("name", function() local out, ok = H.mpirun(2, "script.lua", "args") end)
-- Every run: one thread per rank, --oversubscribe --bind-to none (CI has 2
-- cores), Open MPI's TCP paths kept on the loopback interface, a 60 s
-- timeout that ends in SIGKILL; a test is skipped with a message when mpirun
-- or the luagan.mpi module is missing.
local lg = require "luagan"

return function(T)
  local H = {}
  local exe = arg and arg[-1]
  if exe and exe:find("/") and exe:sub(1, 1) ~= "/" then exe = (os.getenv("PWD") or ".") .. "/" .. exe end
  H.exe = exe
  H.have_mpi = exe and os.execute("command -v mpirun >/dev/null 2>&1") and pcall(require, "luagan.mpi")

  function H.tmpdir()
    local d = os.tmpname()
    os.remove(d)
    lg.core.mkdir_p(d)
    return d
  end

  -- The environment of every mpirun: root allowed (containers, CI), and, in
  -- the sanitizer build, no leak report at exit: Open MPI keeps allocations
  -- of components it has unloaded (LeakSanitizer shows them as "unknown
  -- module"); the single-process tests keep leak detection.
  local asan = os.getenv("ASAN_OPTIONS")
  H.MPI_ENV = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " ..
    (asan and string.format("ASAN_OPTIONS='%s:detect_leaks=0' ", asan) or "")

  -- `timeout ... mpirun` and the options every single-host run takes, for
  -- a command line ending in "-np N EXE ARGS". The out-of-band and TCP
  -- paths stay on loopback: Open MPI otherwise uses every interface, and an
  -- interface that disappears mid-run (the dist_netns test's bridge, a VPN)
  -- leaves a rank waiting on a dead connection. SIGTERM alone can leave
  -- mpirun waiting on such a rank, hence -k: SIGKILL 10 s later.
  function H.mpirun_cmd(seconds)
    return string.format("timeout -k 10 %d mpirun --oversubscribe --bind-to none " ..
      "--mca oob_tcp_if_include lo --mca btl_tcp_if_include lo", seconds)
  end

  -- Run `luagan ARGS` on np ranks: its output, whether it exited 0, the code.
  -- env: "NAME=value ..." set and exported to every rank (mpirun -x NAME).
  function H.mpirun_args(np, args, env)
    local export = (env or ""):gsub("([%w_]+)=%S*", "-x %1")
    local cmd = string.format(H.MPI_ENV ..
      "OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1 %s %s %s -np %d '%s' %s 2>&1",
      env or "", H.mpirun_cmd(60), export, np, exe, args)
    local p = io.popen(cmd)
    local out = p:read("a")
    local ok, _, code = p:close()
    return out, ok, code
  end

  -- Run the script tests/dist/SCRIPT under mpirun.
  function H.mpirun(np, script, args, env)
    return H.mpirun_args(np, "tests/dist/" .. script .. " " .. (args or ""), env)
  end

  function H.mpi_test(name, fn)
    T.test(name, function()
      if not H.have_mpi then
        print("  skipped: no mpirun or no luagan.mpi module (apt-get install libopenmpi-dev openmpi-bin)")
        return
      end
      fn()
    end)
  end
  return H
end
