-- distribution_spec.lua — klua.distribution: Keras 3's distribution API
-- (keras/src/distribution/distribution_lib_test.py for the single-process
-- facts) and data parallelism over MPI. The multi-process specs run
-- tests/dist/*.lua under `mpirun -np 2` and `-np 4` (oversubscribed) and
-- compare with one process; they are pending, with the reason, where mpirun
-- or libklua_mpi.so is missing.
local helpers = require("helpers")
local klua = require("klua")
local json = require("klua.json")
local dist = klua.distribution
local L = klua.layers

local raises, shell, q = helpers.raises, helpers.shell, helpers.shell_quote

describe("klua.distribution in one process", function()
  it("initialize() is a no-op outside mpirun: one process, rank 0", function()
    dist.initialize()
    assert.are.equal(1, dist.num_processes())
    assert.are.equal(0, dist.process_id())
    assert.is_false(dist.is_initialized())
  end)

  it("initialize refuses num_processes > 1 outside mpirun, naming the command", function()
    raises("not started by mpirun %(run: mpirun %-np 2", dist.initialize, { num_processes = 2 })
    raises("unknown argument `bogus`", dist.initialize, { bogus = 1 })
  end)

  it("list_devices() has one cpu device per process and no gpu or tpu", function()
    assert.are.same({ "cpu:0" }, dist.list_devices())
    assert.are.same({}, dist.list_devices("gpu"))
    assert.are.equal(1, dist.get_device_count())
    raises("device_type must be", dist.list_devices, "npu")
  end)

  -- Keras: DeviceMeshTest.test_mesh_creation and test_input_validation
  it("DeviceMesh checks its shape, axis names and devices as Keras does", function()
    local devices = {}
    for i = 0, 7 do devices[#devices + 1] = "cpu:" .. i end
    local mesh = dist.DeviceMesh({ 4, 2 }, { "batch", "model" }, devices)
    assert.are.same({ 4, 2 }, mesh.shape)
    assert.are.same({ "batch", "model" }, mesh.axis_names)
    local four = { "cpu:0", "cpu:1", "cpu:2", "cpu:3" }
    raises("Shape and axis_names cannot be empty", dist.DeviceMesh, { 4 }, "", four)
    raises("Shape and axis_names should have same size", dist.DeviceMesh, { 4, 2 }, { "batch" }, four)
    raises("Shape does not match the number of devices", dist.DeviceMesh, { 4, 2 }, { "batch", "model" }, four)
  end)

  -- Keras: DataParallelDistributionTest.test_create_with_device_mesh / test_create_with_devices
  it("DataParallel takes a device mesh or devices, and names the batch dimension", function()
    local d = dist.DataParallel { device_mesh = dist.DeviceMesh({ 1 }, { "data" }, { "cpu:0" }) }
    assert.are.equal("data", d.batch_dim_name)
    assert.is_false(d._is_multi_process)
    assert.are.equal(0, d._process_id)
    assert.are.equal(1, d.num_processes)
    local e = dist.DataParallel { devices = { "cpu:0" } }
    assert.are.equal("batch", e.batch_dim_name)
    assert.are.equal(0, e.data_shard_id)
    assert.is_true(e.auto_shard_dataset)
    assert.is_false(dist.DataParallel { auto_shard_dataset = false }.auto_shard_dataset)
    raises("one replica per process: expected 1 devices %(one per process%), got 2", dist.DataParallel,
      { devices = { "cpu:0", "cpu:1" } })
    raises("unknown argument `mesh`", dist.DataParallel, { mesh = 1 })
  end)

  -- Keras: DistributionTest.test_scope
  it("set_distribution, distribution() and scope nest as in Keras", function()
    local d1, d2 = dist.DataParallel(), dist.DataParallel()
    assert.is_nil(dist.distribution())
    d1:scope(function()
      assert.are.equal(d1, dist.distribution())
      d2:scope(function() assert.are.equal(d2, dist.distribution()) end)
      assert.are.equal(d1, dist.distribution())
    end)
    assert.is_nil(dist.distribution())
    raises("expected a klua.distribution.DataParallel", dist.set_distribution, 3)
  end)

  it("BatchNormalization keeps synchronized in its config and trains as usual in one process", function()
    local bn = L.BatchNormalization { synchronized = true }
    assert.is_true(bn:get_config().synchronized)
    assert.is_true(L.BatchNormalization.from_config(bn:get_config()).synchronized)
    assert.is_false(L.BatchNormalization():get_config().synchronized)
    local x = klua.random.normal { 8, 3 }
    local a = L.BatchNormalization { synchronized = true }
    local b = L.BatchNormalization()
    assert.are.equal(0, helpers.max_abs_diff(a(x, { training = true }), b(x, { training = true })))
  end)

  it("has no process stream in one process: unseeded Dropout draws from the global stream as before", function()
    dist.set_distribution(dist.DataParallel())
    assert.is_nil(klua.random.process_stream())
    klua.random.seed(3)
    local a = L.Dropout(0.5)(klua.ones { 3, 8 }, { training = true })
    klua.random.seed(3)
    local b = klua.random.bernoulli({ 3, 8 }, 0.5) * 2
    assert.are.equal(0, helpers.max_abs_diff(a, b))
    dist.set_distribution(nil)
  end)

  it("start_process_stream gives each rank its own reproducible stream and leaves the global stream alone", function()
    klua.random.seed(9)
    local before = klua.random.get_state()
    local function first(rank) return klua.random.start_process_stream(rank):next() end
    local r0, r1 = first(0), first(1)
    assert.are_not.equal(r0, r1)
    assert.are.equal(r0, first(0))
    assert.are.same(before, klua.random.get_state())
    assert.are.equal(klua.random.start_process_stream(1), klua.random.process_stream())
    klua.random.start_process_stream(nil)
    assert.is_nil(klua.random.process_stream())
    raises("rank must be an integer", klua.random.start_process_stream, -1)
  end)

  it("the collectives return their input in one process", function()
    local x = klua.tensor { 1, 2, 3 }
    assert.are.equal(x, dist.all_reduce(x))
    assert.are.equal(x, dist.broadcast(x))
    assert.are.equal(x, dist.all_gather(x))
    dist.barrier()
    raises("op must be", dist.all_reduce, x, { op = "avg" })
  end)

  it("fit under a one-process DataParallel trains exactly as without one", function()
    local function train(with)
      klua.random.seed(5)
      local x, y = klua.random.normal { 40, 3 }, klua.random.normal { 40, 1 }
      local model = klua.Sequential { klua.Input { shape = { 3 } }, L.Dense { units = 4, activation = "relu" }, L.Dense { units = 1 } }
      model:compile { optimizer = "adam", loss = "mse" }
      local run = function() return model:fit { x = x, y = y, batch_size = 8, epochs = 2, verbose = 0 } end
      local h = with and dist.DataParallel():scope(run) or run()
      return model:get_weights(), h.history.loss
    end
    local w1, l1 = train(false)
    local w2, l2 = train(true)
    for i = 1, #w1 do assert.are.equal(0, helpers.max_abs_diff(w1[i], w2[i])) end
    assert.are.same(l1, l2)
  end)
end)

--------------------------------------------------------------------------------
-- Several processes

local function skip_reason()
  local _, code = shell("command -v mpirun")
  if code ~= 0 then return "mpirun is not installed (make deps installs openmpi-bin)" end
  local ok, why = dist.mpi_available()
  if not ok then return why end
end
local SKIP = skip_reason()

-- As root (CI) mpirun needs --allow-run-as-root; 4 processes on 2 cores need
-- --oversubscribe; in containers the shared-memory transport may not use
-- process_vm_readv, hence single_copy_mechanism none.
-- Under `make asan` mpirun must not get the sanitizer preloaded for busted,
-- and MPI's own allocations at exit are not klua's leaks.
local function mpirun(n, args, limit, options)
  local build = os.getenv("KLUA_BUILD") or "build"
  return shell(("env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=0 timeout %d mpirun --allow-run-as-root --oversubscribe"
    .. " --mca btl_vader_single_copy_mechanism none -x ASAN_OPTIONS"
    .. " -np %d -x OMP_NUM_THREADS=1 -x KLUA_BUILD=%s %s %s %s"):format(limit or 60, n, q(build), options or "", helpers.EXE, args))
end

local function load_json(dir, name) return json.decode(helpers.read_file(dir .. "/" .. name .. ".json")) end

-- tests/dist/cases.lua alone and under mpirun -np 2 and -np 4, run once.
local runs
local function run_cases()
  if runs then return runs end
  runs = {}
  for _, n in ipairs { 1, 2, 4 } do
    local dir = helpers.tmpdir()
    local out, code
    if n == 1 then out, code = helpers.run_klua("tests/dist/cases.lua " .. q(dir))
    else out, code = mpirun(n, "tests/dist/cases.lua " .. q(dir), 120) end
    assert(code == 0, ("cases.lua on %d process(es) failed (status %s):\n%s"):format(n, tostring(code), out))
    runs[n] = { dir = dir, output = out }
  end
  return runs
end

-- The largest difference between two weight lists, relative to the largest weight of each.
local function max_rel_weights(a, b)
  local worst = 0
  for i, w in ipairs(a) do
    local m, d = 0, 0
    for j, v in ipairs(w) do
      m = math.max(m, math.abs(v))
      d = math.max(d, math.abs(v - b[i][j]))
    end
    worst = math.max(worst, d / math.max(m, 1e-12))
  end
  return worst
end

local function max_rel(a, b)
  local worst = 0
  for j, v in ipairs(a) do worst = math.max(worst, math.abs(v - b[j]) / math.max(math.abs(v), 1e-3)) end
  return worst
end

local function describe_mpi(name, fn)
  describe(name, function()
    if SKIP then
      it("is skipped: " .. SKIP, function() pending(SKIP) end)
      return
    end
    fn()
  end)
end

describe_mpi("data parallelism over MPI (mpirun -np 2 and -np 4)", function()
  teardown(function()
    for _, r in pairs(runs or {}) do helpers.remove_tree(r.dir) end
    runs = nil
  end)

  for _, case in ipairs { "mlp", "cnn", "cnn_bn", "lstm", "dataset", "uneven" } do
    it(("gives a %s the weights of one process with the global batch after 20 steps (rel. diff <= 1e-5)"):format(case), function()
      local r = run_cases()
      local one = load_json(r[1].dir, case)
      for _, n in ipairs { 2, 4 } do
        local many = load_json(r[n].dir, case)
        assert.are.equal(one.iterations, many.iterations)
        local d = max_rel_weights(one.weights, many.weights)
        assert(d <= 1e-5, ("%s on %d processes: weights differ by %.3g (relative)"):format(case, n, d))
      end
    end)
  end

  it("gives a custom GradientTape loop the weights of one process (the optimizer averages the gradients)", function()
    local r = run_cases()
    local one = load_json(r[1].dir, "tape")
    for _, n in ipairs { 2, 4 } do
      local many = load_json(r[n].dir, "tape")
      assert.are.equal(n, many.n)
      assert.are.same({ 1, 2 }, many.calls_per_step)   -- one collective per bucket: 4 MB buckets, then 256 bytes
      local d = max_rel_weights(one.weights, many.weights)
      assert(d <= 1e-5, ("tape loop on %d processes: weights differ by %.3g"):format(n, d))
    end
  end)

  it("reports the History, evaluate and predict of one process", function()
    local r = run_cases()
    for _, case in ipairs { "mlp", "cnn", "cnn_bn", "lstm", "dataset", "uneven" } do
      local one = load_json(r[1].dir, case)
      for _, n in ipairs { 2, 4 } do
        local many = load_json(r[n].dir, case)
        for key, values in pairs(one.history) do
          assert(max_rel(values, many.history[key]) <= 1e-5, ("%s, %d processes: history.%s differs"):format(case, n, key))
        end
        for key, v in pairs(one.evaluate) do
          assert(max_rel({ v }, { many.evaluate[key] }) <= 1e-5, ("%s, %d processes: evaluate %s differs"):format(case, n, key))
        end
        assert.are.equal(#one.predict, #many.predict)
        local d = 0
        for j, v in ipairs(one.predict) do d = math.max(d, math.abs(v - many.predict[j])) end
        assert(d <= 1e-5, ("%s, %d processes: predict differs by %.3g"):format(case, n, d))
      end
    end
  end)

  it("has only rank 0 print the progress and write the CSV log", function()
    local r = run_cases()
    for _, n in ipairs { 2, 4 } do
      local _, epochs = r[n].output:gsub("Epoch 1/2", "")
      assert.are.equal(1, epochs)
      local csv = helpers.read_file(r[n].dir .. "/mlp.csv")
      assert.are.equal(helpers.read_file(r[1].dir .. "/mlp.csv"):match("^[^\n]*"), csv:match("^[^\n]*"))
      local _, rows = csv:gsub("\n", "")
      assert.are.equal(3, rows)
    end
  end)

  it("writes a ModelCheckpoint on 2 processes that loads in one process and predicts identically", function()
    local r = run_cases()
    local model = klua.models.load_model(r[2].dir .. "/mlp.klua")
    klua.random.seed(11)
    local x = klua.random.normal { 200, 6 }
    local pred = model:predict { x = x, verbose = 0 }:reshape { -1 }:tolist()
    local saved = load_json(r[2].dir, "mlp").predict
    local d = 0
    for j, v in ipairs(saved) do d = math.max(d, math.abs(v - pred[j])) end
    assert(d <= 1e-6, ("the checkpoint predicts %.3g away from the distributed model"):format(d))
  end)

  it("sees every sample once per epoch when the batch does not divide (50 samples, batches of 16)", function()
    local r = run_cases()
    for _, n in ipairs { 2, 4 } do
      for epoch = 1, 2 do
        local count, total = {}, 0
        for rank = 0, n - 1 do
          for _, id in ipairs(load_json(r[n].dir, "seen-" .. rank)[epoch]) do
            count[id] = (count[id] or 0) + 1
            total = total + 1
          end
        end
        assert.are.equal(50, total)
        for id = 0, 49 do assert.are.equal(1, count[id], ("sample %d, epoch %d, %d processes"):format(id, epoch, n)) end
      end
    end
  end)

  it("resumes a 2-process run killed mid-training (BackupAndRestore) on 2 processes and on 1, "
    .. "ending with the weights of an uninterrupted run", function()
    local plain, crashed = helpers.tmpdir(), helpers.tmpdir()
    local _, code = helpers.run_klua("tests/dist/resume.lua " .. q(plain))
    assert.are.equal(0, code)
    local want = load_json(plain, "weights")
    local out
    out, code = mpirun(2, ("tests/dist/resume.lua %s 2"):format(q(crashed)))   -- rank 0 exits as epoch 3 begins
    assert.are.equal(3, code, out)
    assert.is_true(helpers.exists(crashed .. "/backup/backup.klua"))
    for _, n in ipairs { 2, 1 } do
      local dir = helpers.tmpdir()
      os.execute(("cp -r %s/backup %s/"):format(q(crashed), q(dir)))
      if n == 1 then out, code = helpers.run_klua("tests/dist/resume.lua " .. q(dir))
      else out, code = mpirun(2, "tests/dist/resume.lua " .. q(dir)) end
      assert.are.equal(0, code, out)
      local got = load_json(dir, "weights")
      assert.are.equal(want.iterations, got.iterations)
      local d = max_rel_weights(want.weights, got.weights)
      assert(d <= 1e-5, ("resumed on %d process(es): weights differ by %.3g"):format(n, d))
      assert.is_false(helpers.exists(dir .. "/backup/backup.klua"))
      helpers.remove_tree(dir)
    end
    helpers.remove_tree(plain)
    helpers.remove_tree(crashed)
  end)

  it("trains examples/mnist_data_parallel.lua on 2 processes to the accuracy of 1 (no dropout)", function()
    local root = helpers.tmpdir()
    local dir = root .. "/mnist"
    os.execute("mkdir -p " .. q(dir))
    local saved = klua.random.get_state()   -- the specs share one Lua state
    klua.random.seed(3)
    for _, part in ipairs { { "train", 160 }, { "t10k", 50 } } do
      local y = klua.ops.floor(klua.random.uniform { part[2] } * 10)
      local x = klua.ops.floor(klua.random.uniform { part[2], 28, 28 } * 255)
      klua.datasets.write_idx(("%s/%s-images-idx3-ubyte"):format(dir, part[1]), x)
      klua.datasets.write_idx(("%s/%s-labels-idx1-ubyte"):format(dir, part[1]), y)
    end
    klua.random.set_state(saved)
    local args = "examples/mnist_data_parallel.lua --epochs 2 --batch 32 --dropout 0"
    local one, code = helpers.shell(("KLUA_DATA=%s %s %s"):format(q(root), helpers.EXE, args))
    assert.are.equal(0, code, one)
    local two
    two, code = mpirun(2, args, 60, "-x KLUA_DATA=" .. q(root))
    assert.are.equal(0, code, two)
    local result = "test loss [%d.]+, test accuracy [%d.]+"
    assert.truthy(one:match(result), one)
    assert.are.equal(one:match(result), two:match(result))
    assert.truthy(two:find("2 process(es)", 1, true))
    assert.truthy(two:find("collectives: ", 1, true))
    helpers.remove_tree(root)
  end)

  it("gives unseeded Dropout a stream per process: masks differ by rank, repeat run to run, and resume from a backup", function()
    local function run(dir, crash)
      local out, code = mpirun(2, ("tests/dist/dropout.lua %s %s"):format(q(dir), crash or ""))
      assert.are.equal(crash and 3 or 0, code, out)
    end
    local a, b, c = helpers.tmpdir(), helpers.tmpdir(), helpers.tmpdir()
    run(a); run(b)
    local m0, m1 = load_json(a, "masks-0"), load_json(a, "masks-1")
    assert.are_not.same(m0, m1)
    assert.are.same(m0, load_json(b, "masks-0"))
    assert.are.same(m1, load_json(b, "masks-1"))
    local want = load_json(a, "weights")
    assert.are.same(want, load_json(b, "weights"))
    run(c, 1)   -- rank 0 exits as epoch 1 begins; then resume from the backup
    assert.is_true(helpers.exists(c .. "/backup/backup.klua"))
    run(c)
    local d = max_rel_weights(want.weights, load_json(c, "weights").weights)
    assert(d <= 1e-6, ("resumed with dropout: weights differ by %.3g"):format(d))
    for _, dir in ipairs { a, b, c } do helpers.remove_tree(dir) end
  end)

  it("ends the whole job within 30 s, naming the rank, when rank 1 raises a Lua error", function()
    local t0 = os.time()
    local out, code = mpirun(2, "tests/dist/faults.lua error_on_rank1", 60)
    assert.is_true(os.time() - t0 < 30)
    assert.are_not.equal(0, code)
    assert.are_not.equal(124, code)   -- not the timeout
    assert.truthy(out:find("deliberate failure in step 3 on rank 1", 1, true))
    assert.truthy(out:find("rank 1 of 2 (on ", 1, true))
    assert.is_nil(out:find("rank 0 finished", 1, true))
  end)

  it("ends the whole job within 30 s, naming the rank, when rank 1 is killed", function()
    local t0 = os.time()
    local out, code = mpirun(2, "tests/dist/faults.lua killed_rank1", 60)
    assert.is_true(os.time() - t0 < 30)
    assert.are_not.equal(0, code)
    assert.are_not.equal(124, code)   -- not the timeout
    assert.truthy(out:find("rank 1") , out)
    assert.is_nil(out:find("rank 0 finished", 1, true))
  end)

  it("stops at the first step, naming the variable and its shape on each rank, when the models differ", function()
    local out, code = mpirun(2, "tests/dist/faults.lua wider_on_rank1", 60)
    assert.are_not.equal(0, code)
    assert.truthy(out:find("the processes hold different models", 1, true))
    assert.truthy(out:find("variable 1 is 'dense/kernel' (4,8) on rank 0, 'dense/kernel' (4,9) on rank 1", 1, true))
    out, code = mpirun(2, "tests/dist/faults.lua extra_on_rank1", 60)
    assert.are_not.equal(0, code)
    assert.truthy(out:find("variables: 6 on rank 0, 8 on rank 1", 1, true))
    assert.truthy(out:find("'dense_1/kernel' (8,1) on rank 0, 'dense_1/kernel' (8,8) on rank 1", 1, true))
  end)

  it("stops, naming the rank, when synchronized BatchNormalization meets a batch with fewer rows than processes", function()
    local out, code = mpirun(4, "tests/dist/faults.lua sync_bn_short", 60)
    assert.are_not.equal(0, code)
    assert.are_not.equal(124, code)
    assert.truthy(out:find("needs rows of every batch on every process, but rank [23] has none"))
  end)
end)

--------------------------------------------------------------------------------
-- Two machines: network namespaces on this one, joined by a veth pair, each
-- process under its own hostname, Open MPI's TCP transport between them and
-- tests/dist/netns-agent.sh as the launcher in place of ssh. Open MPI takes
-- each "host" for a machine of its own and busy-polls, which on a shared
-- 2-core machine costs a time slice per collective: mpi_yield_when_idle.

local NS = ("klua%d"):format(math.random(1000, 9999))   -- unique names: several test runs may share the machine
local ADDR = { ("10.%d.%d.1"):format(200 + math.random(0, 50), math.random(0, 255)) }
ADDR[2] = ADDR[1]:gsub("%.1$", ".2")
local NET = ADDR[1]:gsub("%.1$", ".0/24")

local function netns_down()
  shell(("ip netns del %sa; ip netns del %sb"):format(NS, NS))
end

-- The namespaces, or nil and why they cannot be made here.
local function netns_up()
  local _, code = shell("command -v ip && command -v unshare")
  if code ~= 0 then return nil, "the two-host spec needs `ip` (iproute2) and `unshare` (util-linux)" end
  local steps = {
    ("ip netns add %sa && ip netns add %sb"):format(NS, NS),
    ("ip link add %sva type veth peer name %svb"):format(NS, NS),
    ("ip link set %sva netns %sa && ip link set %svb netns %sb"):format(NS, NS, NS, NS),
    ("ip netns exec %sa ip addr add %s/24 dev %sva"):format(NS, ADDR[1], NS),
    ("ip netns exec %sb ip addr add %s/24 dev %svb"):format(NS, ADDR[2], NS),
    ("ip netns exec %sa ip link set lo up && ip netns exec %sa ip link set %sva up"):format(NS, NS, NS),
    ("ip netns exec %sb ip link set lo up && ip netns exec %sb ip link set %svb up"):format(NS, NS, NS),
  }
  for _, cmd in ipairs(steps) do
    local out, c = shell(cmd)
    if c ~= 0 then
      netns_down()
      return nil, ("cannot make network namespaces here (`%s`: %s); run as root on a machine that allows them"):format(cmd, out:gsub("%s+$", ""))
    end
  end
  return true
end

describe_mpi("data parallelism across two hosts (network namespaces, TCP)", function()
  it("trains as one process, one rank on each host", function()
    local ok, why = netns_up()
    if not ok then pending(why) return end
    local dir = helpers.tmpdir()
    local build = os.getenv("KLUA_BUILD") or "build"
    local cwd = io.popen("pwd"):read("*l")
    local cmd = ("env -u LD_PRELOAD ASAN_OPTIONS=detect_leaks=0 KLUA_NETNS_HOSTS=%s timeout 120 ip netns exec %sa unshare --uts sh -c %s"):format(
      q(("%s=%sa %s=%sb"):format(ADDR[1], NS, ADDR[2], NS)), NS,
      q(("hostname %sa && mpirun --allow-run-as-root -H %s:1,%s:1 -np 2 --mca plm_rsh_agent %s"
        .. " --mca btl tcp,self --mca btl_tcp_if_include %s --mca oob_tcp_if_include %s --mca mpi_yield_when_idle 1"
        .. " -x ASAN_OPTIONS -x KLUA_BUILD=%s -x OMP_NUM_THREADS=1 %s/%s tests/dist/cases.lua %s"):format(
        NS, ADDR[1], ADDR[2], q(cwd .. "/tests/dist/netns-agent.sh"), NET, NET, build, cwd, helpers.EXE, dir)))
    local out, code = shell(cmd)
    netns_down()
    assert(code == 0, ("the two-host run failed (status %s):\n%s"):format(tostring(code), out))
    assert.are.equal(NS .. "a", helpers.read_file(dir .. "/host-0.txt"))
    assert.are.equal(NS .. "b", helpers.read_file(dir .. "/host-1.txt"))
    local alone = helpers.tmpdir()
    local _, c1 = helpers.run_klua("tests/dist/cases.lua " .. q(alone))
    assert.are.equal(0, c1)
    for _, case in ipairs { "mlp", "cnn", "lstm", "tape" } do
      local d = max_rel_weights(load_json(alone, case).weights, load_json(dir, case).weights)
      assert(d <= 1e-5, ("two hosts, %s: weights differ by %.3g"):format(case, d))
    end
    helpers.remove_tree(dir)
    helpers.remove_tree(alone)
  end)
end)
