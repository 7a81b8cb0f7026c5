/* klua_lua.h — embed klua's whole Lua API in a C program that runs LuaJIT.
 *
 *   #include <klua/klua_lua.h>
 *   lua_State *L = luaL_newstate();
 *   luaL_openlibs(L);
 *   if (klua_lua_open(L) != 0) fprintf(stderr, "%s\n", lua_tostring(L, -1));
 *   // else the klua table is on the stack (and in package.loaded)
 *
 * Build: cc prog.c $(pkg-config --cflags --libs klua luajit)
 * `make install` writes the directory of the installed Lua modules into
 * KLUA_LUA_DIR below; klua's Lua side then loads libklua from PREFIX/lib.
 */
#ifndef KLUA_LUA_H
#define KLUA_LUA_H
#include <lauxlib.h>
#include <lua.h>

#ifndef KLUA_LUA_DIR
#define KLUA_LUA_DIR "@LUADIR@"
#endif

/* Puts KLUA_LUA_DIR on package.path and requires "klua": 0 with the module
 * on the stack, or an error code with the message on the stack. */
static inline int klua_lua_open(lua_State *L) {
  lua_getglobal(L, "package");
  lua_pushstring(L, KLUA_LUA_DIR "/?.lua;" KLUA_LUA_DIR "/?/init.lua;");
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, "klua");
  return lua_pcall(L, 1, 1, 0);
}
#endif
