-- The LuaRocks package: `luarocks make` in a checkout builds klua with its
-- Makefile and installs the Lua modules, libklua and the klua executable into
-- the rocks tree (Debian packages from `make deps` must be installed first).
rockspec_format = "3.0"
package = "klua"
version = "0.1.0-1"
source = { url = "git+file:///dev/null" }   -- built from a checkout with `luarocks make`
description = {
  summary = "A deep-learning training framework for LuaJIT with Keras 3's API",
  license = "not declared yet (see README)",
}
dependencies = { "lua == 5.1" }
build = {
  type = "make",
  build_target = "all",
  install_target = "install",
  build_variables = { CFLAGS = "$(CFLAGS) -O3 -g" },
  install_variables = {
    PREFIX = "$(PREFIX)", LUADIR = "$(LUADIR)", LIBDIR = "$(LIBDIR)", BINDIR = "$(BINDIR)", LIB_LINKS = "no",
  },
}
