-- threads_spec.lua — the thread pool's size: fixed by the user, or ("auto", the
-- default) following the cores that other processes leave free (src/threads.c).
-- Behaviour only; how fast each setting is lives in `make bench`.
local klua = require("klua")
local helpers = require("helpers")
local utils = require("klua.utils")

local function cpus()
  local p = io.popen("nproc")
  local n = tonumber(p:read("*l"))
  p:close()
  return n or 1
end

-- Runs small ops for `seconds` (the pool is re-sized from the op dispatcher).
local function work(seconds)
  local x = klua.ones { 64, 64 }
  local t0 = utils.now()
  while utils.now() - t0 < seconds do x = klua.ops.matmul(x, x) * 0.01 end
end

-- Runs fn while n busy processes keep the cores busy; stops them even when fn fails.
local function beside_busy(n, fn)
  local pids = {}
  for _ = 1, n do
    local p = io.popen("sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!")
    pids[#pids + 1] = p:read("*l")
    p:close()
  end
  local ok, err = pcall(fn)
  os.execute("kill " .. table.concat(pids, " ") .. " 2>/dev/null")
  assert(ok, err)
end

describe("the thread pool", function()
  after_each(function() klua.set_num_threads("auto") end)

  it("adapts to the load by default, and set_num_threads returns the previous setting", function()
    assert.equal("auto", klua.set_num_threads(1))
    assert.equal(1, klua.get_num_threads())
    assert.equal(1, klua.set_num_threads(2))
    assert.equal(2, klua.get_num_threads())
    assert.equal(2, klua.set_num_threads("auto"))
  end)

  it("uses one thread while other processes keep every core busy", function()
    beside_busy(cpus(), function()
      work(0.6)
      assert.equal(1, klua.get_num_threads())
    end)
  end)

  it("keeps a count the user fixed, however busy the machine", function()
    klua.set_num_threads(2)
    beside_busy(cpus(), function()
      work(0.3)
      assert.equal(2, klua.get_num_threads())
    end)
  end)

  it("names the function and the value it got for a bad count", function()
    helpers.raises('set_num_threads: n must be "auto" or an integer from 1 to 4096, got', klua.set_num_threads, 0)
    helpers.raises("set_num_threads: .*got", klua.set_num_threads, "two")
  end)

  it("follows KLUA_NUM_THREADS and OMP_NUM_THREADS, which fix the count", function()
    for _, var in ipairs { "KLUA_NUM_THREADS", "OMP_NUM_THREADS" } do
      local out = helpers.shell(("%s=1 %s -e 'local k = require(\"klua\"); print(k.get_num_threads(), k.set_num_threads(1))'")
        :format(var, helpers.EXE))
      assert.equal("1\t1", out:match("^[^\n]*"))
    end
  end)
end)
