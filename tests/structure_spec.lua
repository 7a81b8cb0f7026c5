-- structure_spec.lua — the module layering stays as the README draws it: no
-- module of lua/klua requires another in a cycle (lazy requires inside
-- functions included), only the package root requires the root, and every
-- require stays in its layer or goes down (README.md, "Module layers").
local helpers = require("helpers")

-- module -> {required module = line number}, from every require("klua...") in the text.
local function require_graph()
  local graph = {}
  for _, mod in ipairs(helpers.lua_modules()) do
    local path = mod.path
    local edges = {}
    local n = 0
    for line in io.lines(path) do
      n = n + 1
      line = line:gsub("%-%-.*$", "")   -- comments mention require too
      for target in line:gmatch("require%s*%(?%s*[\"'](klua[%w_%.]*)[\"']") do
        -- require("klua.layers." .. file) loads a file by name: not an edge
        if target:sub(-1) ~= "." then edges[target] = edges[target] or n end
      end
    end
    graph[mod.name] = edges
  end
  return graph
end

-- The first cycle found, as a list of modules (nil when there is none).
local function find_cycle(graph)
  local state, stack = {}, {}
  local function visit(m)
    state[m] = "open"
    stack[#stack + 1] = m
    local targets = {}
    for t in pairs(graph[m] or {}) do targets[#targets + 1] = t end
    table.sort(targets)
    for _, t in ipairs(targets) do
      if state[t] == "open" then
        local cycle = {}
        for i = #stack, 1, -1 do
          table.insert(cycle, 1, stack[i])
          if stack[i] == t then break end
        end
        cycle[#cycle + 1] = t
        return cycle
      elseif state[t] == nil and graph[t] then
        local c = visit(t)
        if c then return c end
      end
    end
    stack[#stack] = nil
    state[m] = "done"
  end
  local names = {}
  for m in pairs(graph) do names[#names + 1] = m end
  table.sort(names)
  for _, m in ipairs(names) do
    if state[m] == nil then
      local c = visit(m)
      if c then return c end
    end
  end
end

-- README.md's "Module layers" table: module name (or prefix for `mod.*`) -> layer number.
local function readme_layers()
  local f = assert(io.open("README.md"))
  local text = f:read("*a")
  f:close()
  local section = text:match("\n### Module layers\n(.-)\n##") or ""
  local exact, prefixes = {}, {}
  for num, mods in section:gmatch("\n| (%d+) [^|]*|([^|]*)|") do
    for m in mods:gmatch("`([%w_%.%*]+)`") do
      if m:sub(-2) == ".*" then
        prefixes[#prefixes + 1] = { m:sub(1, -3), tonumber(num) }
      else
        exact[m] = tonumber(num)
      end
    end
  end
  return function(module)
    if exact[module] then return exact[module] end
    for _, p in ipairs(prefixes) do
      if module == p[1] or module:sub(1, #p[1] + 1) == p[1] .. "." then return p[2] end
    end
  end
end

describe("The Lua modules", function()
  local graph = require_graph()

  it("are found and parsed", function()
    assert.is_truthy(graph["klua.layer"])
    assert.is_truthy(graph["klua.layer"]["klua.core"])
  end)

  it("require each other without a cycle", function()
    local cycle = find_cycle(graph)
    assert.is_nil(cycle, cycle and ("require cycle: " .. table.concat(cycle, " -> ")))
  end)

  -- The REPL is an application on top of the package: it may load the root.
  local above_root = { klua = true, ["klua.repl"] = true }

  it("never require the package root (only klua/init.lua assembles it, the REPL uses it)", function()
    local offenders = {}
    for m, edges in pairs(graph) do
      if not above_root[m] and edges["klua"] then offenders[#offenders + 1] = ("%s (line %d)"):format(m, edges["klua"]) end
    end
    table.sort(offenders)
    assert.are.same({}, offenders)
  end)

  it("each belong to one layer of the README's table, and require only their own layer or lower ones", function()
    local layer_of = readme_layers()
    assert.are.equal(0, layer_of("klua.core"))
    local unplaced, upward = {}, {}
    for m, edges in pairs(graph) do
      local lm = layer_of(m)
      if lm == nil then
        unplaced[#unplaced + 1] = m
      else
        for t, line in pairs(edges) do
          local lt = layer_of(t)
          if lt and lt > lm then
            upward[#upward + 1] = ("%s (layer %d) requires %s (layer %d) at line %d"):format(m, lm, t, lt, line)
          end
        end
      end
    end
    table.sort(unplaced); table.sort(upward)
    assert.are.same({}, unplaced)
    assert.are.same({}, upward)
  end)

  it("require only modules that exist", function()
    local missing = {}
    for m, edges in pairs(graph) do
      for t, line in pairs(edges) do
        if not graph[t] then missing[#missing + 1] = ("%s:%d requires %s"):format(m, line, t) end
      end
    end
    table.sort(missing)
    assert.are.same({}, missing)
  end)

  it("find the cycle a test graph has", function()
    local c = find_cycle { a = { b = 1 }, b = { c = 1 }, c = { a = 1 }, d = { a = 1 } }
    assert.are.same({ "a", "b", "c", "a" }, c)
    assert.is_nil(find_cycle { a = { b = 1 }, b = {}, c = { a = 1, b = 1 } })
  end)
end)
