-- readme_spec.lua — the README runs as written: every fenced ```lua block is
-- run as a script by build/klua in an empty directory and must succeed; a
-- block whose info string says `lua partial` (a fragment, on purpose) must
-- still compile.
local helpers = require("helpers")

local function lua_blocks()
  local blocks, current, info, start = {}, nil, nil, nil
  local n = 0
  for line in io.lines("README.md") do
    n = n + 1
    if current then
      if line:match("^```%s*$") then
        blocks[#blocks + 1] = { info = info, line = start, code = table.concat(current, "\n") }
        current = nil
      else
        current[#current + 1] = line
      end
    else
      local i = line:match("^```(lua.*)$")
      if i then current, info, start = {}, i, n end
    end
  end
  return blocks
end

describe("The README", function()
  local blocks = lua_blocks()

  it("has Lua blocks to check", function()
    assert.is_true(#blocks >= 4, "found only " .. #blocks .. " ```lua blocks")
  end)

  for _, b in ipairs(blocks) do
    if b.info:match("partial") then
      it(("block at line %d compiles (a fragment on purpose)"):format(b.line), function()
        local f, err = loadstring(b.code, "=README.md:" .. b.line)
        assert(f, err)
      end)
    else
      it(("block at line %d runs as a script"):format(b.line), function()
        local dir = helpers.tmpdir()
        helpers.write_file(dir .. "/snippet.lua", b.code .. "\n")
        local exe = helpers.EXE:sub(1, 1) == "/" and helpers.EXE or (os.getenv("PWD") .. "/" .. helpers.EXE)
        local out, code = helpers.shell(("cd %s && %s snippet.lua 2>&1"):format(helpers.shell_quote(dir),
          helpers.shell_quote(exe)))
        helpers.remove_tree(dir)
        assert(code == 0, ("README.md:%d failed (exit %s):\n%s"):format(b.line, tostring(code), out))
      end)
    end
  end
end)
