/* fuzz_lua.c — a libFuzzer target that embeds LuaJIT and hands each input,
 * as a Lua string, to a driver script: tests/fuzz/<FUZZ_NAME>.lua returns a
 * function(bytes) that calls the API under test and raises only when an
 * oracle fails (a crash of the C side is caught by the sanitizers instead).
 * Built as fuzz_model (klua.saving.load_model: the safetensors reader and the
 * model config reaching deserialization) and fuzz_json (klua.json).
 *
 * The Lua library is not compiled with coverage instrumentation, so a line
 * hook gives libFuzzer coverage of the Lua side: each (previous line, line)
 * pair bumps a counter in libFuzzer's extra-counters section, as AFL counts
 * edges. The JIT is off (hooks do not run in compiled traces).
 *
 * The Lua heap is malloc'd (lua_newstate with a realloc allocator), so that
 * LeakSanitizer scans it and sees the tensors Lua still holds. */
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FUZZ_NAME
#error "build with -DFUZZ_NAME=\"model\" or \"json\""
#endif

#define EDGES (1 << 16)
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[EDGES];

static lua_State *L;
static int driver_ref;
static uint32_t prev_loc;

/* FNV-1a of a chunk name, cached by its address (LuaJIT's GC does not move strings). */
static uint32_t source_hash(const char *src) {
  static const char *keys[256];
  static uint32_t vals[256];
  unsigned slot = (unsigned)(((uintptr_t)src >> 4) & 255);
  if (keys[slot] == src) return vals[slot];
  uint32_t h = 2166136261u;
  for (const char *p = src; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
  keys[slot] = src;
  vals[slot] = h;
  return h;
}

static void on_line(lua_State *l, lua_Debug *ar) {
  if (!lua_getinfo(l, "S", ar) || !ar->source) return;
  uint32_t cur = (source_hash(ar->source) ^ ((uint32_t)ar->currentline * 2654435761u)) & (EDGES - 1);
  lua_edges[cur ^ prev_loc]++;
  prev_loc = cur >> 1;
}

static void *lua_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud; (void)osize;
  if (nsize == 0) { free(p); return NULL; }
  return realloc(p, nsize);
}

/* The tree's root: $KLUA_ROOT, else the directory above the executable's (build-fuzz/..). */
static void find_root(char *root, size_t n, const char *argv0) {
  const char *env = getenv("KLUA_ROOT");
  if (env && *env) { snprintf(root, n, "%s", env); return; }
  char exe[4096];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (k <= 0) { snprintf(exe, sizeof exe, "%s", argv0); k = (ssize_t)strlen(exe); }
  exe[k] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0; else snprintf(exe, sizeof exe, ".");
  if (snprintf(root, n, "%s/..", exe) >= (int)n) { fprintf(stderr, "fuzz: path too long\n"); abort(); }
}

static void die(const char *what) {
  fprintf(stderr, "fuzz_%s: %s: %s\n", FUZZ_NAME, what, lua_tostring(L, -1));
  abort();
}

/* A driver may leave a global FUZZ_CLEANUP() to remove its scratch files. */
static void cleanup(void) {
  if (!L) return;
  lua_getglobal(L, "FUZZ_CLEANUP");
  if (lua_isfunction(L, -1)) lua_pcall(L, 0, 0, 0);
  else lua_pop(L, 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char root[4096], code[16384];
  find_root(root, sizeof root, (*argv)[0]);
  L = lua_newstate(lua_alloc, NULL);
  if (!L) { fprintf(stderr, "fuzz_%s: lua_newstate failed\n", FUZZ_NAME); abort(); }
  luaL_openlibs(L);
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  lua_pushboolean(L, 1);
  lua_setglobal(L, "KLUA_EMBEDDED");   /* klua.core finds the C library in this executable */
  int len = snprintf(code, sizeof code,
                     "package.path = '%s/lua/?.lua;%s/lua/?/init.lua;' .. package.path\n"
                     "return dofile('%s/tests/fuzz/%s.lua')",
                     root, root, root, FUZZ_NAME);
  if (len < 0 || len >= (int)sizeof code) { fprintf(stderr, "fuzz: path too long\n"); abort(); }
  if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) die("cannot load the driver");
  if (!lua_isfunction(L, -1)) { lua_pushstring(L, "the driver did not return a function"); die("driver"); }
  driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned runs;
  lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
  lua_pushlstring(L, (const char *)data, size);
  prev_loc = 0;
  lua_sethook(L, on_line, LUA_MASKLINE, 0);
  int rc = lua_pcall(L, 1, 0, 0);
  lua_sethook(L, NULL, 0, 0);
  if (rc != 0) die("oracle failed");
  /* Keep the heap (and the tensors it holds) from growing between inputs. */
  if (++runs % 64 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
