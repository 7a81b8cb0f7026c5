-- asan_helper.lua — busted's --helper under `make asan`. The test process runs
-- with libasan preloaded and LeakSanitizer on. The processes the specs start
-- (the klua executable, make, cc, luajit, gzip) inherit the preload, and the
-- toolchain's deliberate leaks at exit would fail them, so they run with
-- detect_leaks=0 (AddressSanitizer and UBSan stay on). Leaks are checked in
-- this process, which runs nearly all of klua, in test_core and in the fuzz
-- seeds.
local ffi = require("ffi")
pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
local opts = (os.getenv("ASAN_OPTIONS") or ""):gsub(":?detect_leaks=%d", "")
ffi.C.setenv("ASAN_OPTIONS", opts .. ":detect_leaks=0", 1)
