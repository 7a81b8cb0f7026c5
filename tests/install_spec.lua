-- install_spec.lua — `make install PREFIX=...` gives a klua that works from any
-- directory, and a header, library and pkg-config file a C program builds with.
local helpers = require("helpers")

describe("make install", function()
  local prefix = os.tmpname()
  os.remove(prefix)
  local build = os.getenv("KLUA_BUILD") or "build"

  setup(function()
    local out, rc = helpers.shell(("make -s install BUILD=%s PREFIX=%s"):format(build, prefix))
    assert.are.equal(0, rc, out)
  end)
  teardown(function() helpers.remove_tree(prefix) end)

  it("installs a klua that runs scripts from another directory", function()
    local out, rc = helpers.shell(("cd / && %s/bin/klua -e 'local k = require(\"klua\"); print(k.ops.sum(k.ones{2, 3}):item())'"):format(prefix))
    assert.are.equal(0, rc, out)
    assert.matches("^6", out)
  end)

  it("installs headers under include/klua/, a versioned library and a pkg-config file a C program builds and runs with", function()
    local src = prefix .. "/prog.c"
    helpers.write_file(src, [[
#include <klua/klua.h>
#include <stdio.h>
int main(void) {
  int64_t d[1] = {4};
  kl_tensor *t = kl_tensor_full(1, d, 2.5);
  printf("%s %g\n", kl_version(), kl_sum_all(t));
  kl_tensor_release(t);
  return 0;
}
]])
    -- no rpath by hand, no ldconfig: the pkg-config file carries it
    local out, rc = helpers.shell(("cd %s && cc prog.c -o prog $(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs klua) && ./prog")
      :format(prefix, prefix))
    assert.are.equal(0, rc, out)
    assert.matches("klua %S+ 10", out)
    assert.are.equal("klua\n", (helpers.shell(("ls %s/include"):format(prefix))))   -- nothing but klua/
    assert.matches("image%.h", (helpers.shell(("ls %s/include/klua"):format(prefix))))
    local dyn = helpers.shell(("objdump -p %s/lib/libklua.so"):format(prefix))
    assert.matches("SONAME%s+libklua%.so%.0", dyn)
  end)

  it("installs the Lua modules where LuaJIT looks (PREFIX/share/lua/5.1)", function()
    local out, rc = helpers.shell(("cd / && LUA_PATH='%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;;' luajit -e 'print(require(\"klua\").ones{2, 3}:sum():item())'")
      :format(prefix, prefix))
    assert.are.equal(0, rc, out)
    assert.matches("^6", out)
    -- with PREFIX=/usr/local no LUA_PATH is needed: LuaJIT searches there by default
    local path = helpers.shell("luajit -e 'print(package.path)'")
    assert.matches("/usr/local/share/lua/5.1/%?%.lua", path)
  end)

  it("lets a C program embed LuaJIT with the whole Lua API (klua/klua_lua.h)", function()
    local src = prefix .. "/embed.c"
    helpers.write_file(src, [[
#include <klua/klua_lua.h>
#include <lualib.h>
#include <stdio.h>
int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (klua_lua_open(L) != 0) { fprintf(stderr, "%s\n", lua_tostring(L, -1)); return 1; }
  lua_setglobal(L, "klua");
  if (luaL_dostring(L, "print(klua.ops.matmul(klua.ones{2, 3}, klua.ones{3, 2}):sum():item())")) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1)); return 1;
  }
  lua_close(L);
  return 0;
}
]])
    local out, rc = helpers.shell(("cd / && cc %s -o %s/embed $(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs klua luajit) && %s/embed")
      :format(src, prefix, prefix, prefix))
    assert.are.equal(0, rc, out)
    assert.matches("^12", out)
  end)

  it("builds and installs with `luarocks make` into a rocks tree", function()
    if build ~= "build" then pending("luarocks builds the default build/ only") return end
    if select(2, helpers.shell("command -v luarocks")) ~= 0 then pending("luarocks is not installed (make deps installs it)") return end
    local tree = prefix .. "/rocks"
    local out, rc = helpers.shell(("luarocks --lua-version=5.1 make --tree=%s klua-0.1.0-1.rockspec"):format(tree))
    assert.are.equal(0, rc, out)
    out, rc = helpers.shell(("cd / && eval \"$(luarocks --lua-version=5.1 path --tree=%s)\" && luajit -e 'print(require(\"klua\").ones{4}:sum():item())' && %s/bin/klua -e 'print(require(\"klua\").ones{5}:sum():item())'")
      :format(tree, tree))
    assert.are.equal(0, rc, out)
    assert.matches("^4\n5", out)
  end)
end)
