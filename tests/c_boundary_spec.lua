-- c_boundary_spec.lua — only a few modules may call the C library. Each C
-- source family has one Lua wrapper module, and every other module goes
-- through those wrappers, so a change to a C signature touches one Lua file.
-- This spec reads every lua/klua/**.lua file (comments removed) and names the
-- module and line of each direct use of the C namespace outside the list.
-- Plain buffer helpers (ffi.new, ffi.fill, ffi.string, ffi.cast) are fine.

-- The wrapper modules and the C they wrap. README.md's Architecture section
-- lists the same modules (checked below).
local helpers = require("helpers")

local ALLOWED = {
  ["klua.core"] = "loads libklua, errors, op dispatch",
  ["klua.tensor"] = "src/tensor.c",
  ["klua.ops"] = "src/ops/*",
  ["klua.nn"] = "src/ops/* (layer kernels), src/kernels/metrics.c, orthogonal.c",
  ["klua.no_grad"] = "src/tape.c (pausing the tapes)",
  ["klua.tape"] = "src/tape.c",
  ["klua.profiler"] = "src/tape.c (the op profiler in the dispatcher)",
  ["klua.variable"] = "src/tensor.c (assignment, variables)",
  ["klua.random"] = "src/random.c",
  ["klua.optimizers.optimizer"] = "src/kernels/optim.c",
  ["klua.saving.safetensors"] = "src/kernels/io.c (files)",
  ["klua.image"] = "src/image.c",
  ["klua.plot"] = "src/plot.c",
  ["klua.datasets"] = "src/idx.c",
  ["klua.utils"] = "src/kernels/io.c (clock, isatty, directory listing)",
  ["klua.distribution.mpi"] = "src/dist/mpi.c (libklua_mpi.so, loaded at run time when MPI is installed)",
}

-- Direct uses of the C namespace, as Lua patterns over one line of code.
local FORBIDDEN = {
  { "core%.C%f[^%w_]", "core.C" },
  { "ffi%.C%f[^%w_]", "ffi.C" },
  { "ffi%.cdef%f[^%w_]", "ffi.cdef" },
  { "ffi%.load%f[^%w_]", "ffi.load" },
  { "%f[%w_]C%.kl_", "C.kl_" },
  { "%f[%w_]local%s+C%f[^%w_]", "local C" },
}

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The source with comments blanked out, newlines kept so line numbers hold.
-- Strings are skipped over so that "--" inside one starts no comment.
local function strip_comments(src)
  local out, i, n = {}, 1, #src
  while i <= n do
    local c = src:sub(i, i)
    local long = src:match("^%-%-%[(=*)%[", i) or src:match("^%[(=*)%[", i)
    if long then
      local _, e = src:find("]" .. long .. "]", i, true)
      e = e or n
      local chunk = src:sub(i, e)
      if c == "-" then chunk = chunk:gsub("[^\n]", " ") end
      out[#out + 1] = chunk
      i = e + 1
    elseif c == "-" and src:sub(i + 1, i + 1) == "-" then
      local e = (src:find("\n", i, true) or n + 1) - 1
      i = e + 1
    elseif c == '"' or c == "'" then
      local j = i + 1
      while j <= n do
        local d = src:sub(j, j)
        if d == "\\" then j = j + 2
        elseif d == c or d == "\n" then break
        else j = j + 1 end
      end
      out[#out + 1] = src:sub(i, j)
      i = j + 1
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- {"lua/klua/metrics.lua:24 (klua.metrics) core.C: local C = core.C", ...}
local function violations(path, module)
  local found, lineno = {}, 0
  for line in (strip_comments(read(path)) .. "\n"):gmatch("(.-)\n") do
    lineno = lineno + 1
    for _, f in ipairs(FORBIDDEN) do
      if line:find(f[1]) then
        found[#found + 1] = ("%s:%d (%s) %s: %s"):format(path, lineno, module, f[2], line:match("^%s*(.-)%s*$"))
        break
      end
    end
  end
  return found
end

describe("the C boundary", function()
  it("finds the uses it forbids and lets comments and buffer helpers pass", function()
    local code = strip_comments(table.concat({
      "local C = core.C  -- core.C",
      "-- ffi.cdef in a comment",
      "--[[ C.kl_sum_all( ]] local buf = ffi.new('char[8]')",
      "local s = \"-- not a comment\"; ffi.load('x')",
      "local Cx = ffi.string(p); lib.C.kl_now()",
      "ffi.C.isatty(1); ffi.fill(buf, 8)",
    }, "\n"))
    local lines = {}
    for line in (code .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
    local function hits(line)
      local r = {}
      for _, f in ipairs(FORBIDDEN) do if line:find(f[1]) then r[#r + 1] = f[2] end end
      return table.concat(r, " ")
    end
    assert.are.equal("core.C local C", hits(lines[1]))
    assert.are.equal("", hits(lines[2]))
    assert.are.equal("", hits(lines[3]))
    assert.are.equal("ffi.load", hits(lines[4]))
    assert.are.equal("C.kl_", hits(lines[5]))
    assert.are.equal("ffi.C", hits(lines[6]))
  end)

  it("lets only the wrapper modules index the C namespace", function()
    local problems, seen = {}, 0
    for _, mod in ipairs(helpers.lua_modules()) do
      local path, module = mod.path, mod.name
      seen = seen + 1
      if not ALLOWED[module] then
        for _, v in ipairs(violations(path, module)) do problems[#problems + 1] = v end
      end
    end
    assert.is_true(seen > 20, "found only " .. seen .. " files under lua/klua (run from the repository root)")
    assert(#problems == 0, "these modules call the C library directly; go through a wrapper module "
      .. "(tests/c_boundary_spec.lua lists them) instead:\n  " .. table.concat(problems, "\n  "))
  end)

  it("lists the same wrapper modules as README.md's Architecture section", function()
    local readme = read("README.md")
    local section = readme:match("\n## Architecture\n(.-)\n## ") or readme:match("\n## Architecture\n(.*)$") or ""
    -- the paragraph that names this spec lists the modules
    local para
    for p in (section .. "\n\n"):gmatch("(.-)\n%s*\n") do
      if p:find("c_boundary_spec", 1, true) then para = p break end
    end
    assert(para, "README.md's Architecture section has no paragraph naming tests/c_boundary_spec.lua "
      .. "and listing the modules that may call the C library")
    local listed = {}
    for name in para:gmatch("klua%.[%w_%.]+") do listed[(name:gsub("%.+$", ""))] = true end
    local missing, extra = {}, {}
    for name in pairs(ALLOWED) do if not listed[name] then missing[#missing + 1] = name end end
    for name in pairs(listed) do if not ALLOWED[name] then extra[#extra + 1] = name end end
    table.sort(missing); table.sort(extra)
    assert(#missing == 0 and #extra == 0, ("README and spec disagree: missing from README: %s; not in the spec: %s")
      :format(table.concat(missing, ", "), table.concat(extra, ", ")))
  end)
end)
