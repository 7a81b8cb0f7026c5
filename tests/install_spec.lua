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

  it("installs a header, libraries and a pkg-config file a C program can use", function()
    local src = prefix .. "/prog.c"
    helpers.write_file(src, [[
#include <klua.h>
#include <stdio.h>
int main(void) {
  int64_t d[1] = {4};
  kl_tensor *t = kl_tensor_full(1, d, 2.5);
  printf("%s %g\n", kl_version(), kl_sum_all(t));
  kl_tensor_release(t);
  return 0;
}
]])
    local out, rc = helpers.shell(("cd %s && PKG_CONFIG_PATH=%s/lib/pkgconfig cc prog.c -o prog $(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs klua) -Wl,-rpath,%s/lib && ./prog"):format(prefix, prefix, prefix, prefix))
    assert.are.equal(0, rc, out)
    assert.matches("klua %S+ 10", out)
  end)
end)
