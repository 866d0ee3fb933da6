# nodeinit: one small C binary that prepares Kubernetes nodes. See README.md.
#   make            build/nodeinit (dynamic, for development)
#   make test       unit + integration tests, ends with "N passed, N failed, N skipped"
#                   (a skip fails it unless ALLOW_SKIP=1)
#   make check      the same under ASan+UBSan (and Lua's API checks)
#   make static     build/nodeinit linked statically (what the image ships); a later make relinks it
#   make demo       the main job against a throwaway fake host
#   make static ARCH=arm64 | test-arm64   the arm64 build, tested under qemu-user (README: Architectures)
#   make valgrind | image | image-test | bench | fuzz   (see README)

VERSION   := 0.1.0
BUILD     ?= build
CC        ?= cc
SAN       ?=

# Build dependencies, installed with apt-get when missing (README: Dependencies).
DEB_PKGS  := gcc make lua5.4 liblua5.4-dev libyaml-dev libcmocka-dev libmd-dev util-linux bash file procps iproute2 strace valgrind python3-yaml libseccomp-dev libmbedtls-dev libjansson-dev openssl jq curl

# Architectures (README: Architectures). ARCH is a Debian architecture name; the machine's own is the
# default and builds in $(BUILD) as always. ARCH=arm64 on another machine cross-builds with Debian's
# cross gcc and the arm64 multiarch libraries, in $(BUILD)/arm64, so objects of two architectures
# never meet: `make static ARCH=arm64` leaves build/arm64/nodeinit. Its package list replaces DEB_PKGS
# (the native list is for the machine's own tests); qemu-user-static runs the result (make test-arm64).
HOST_ARCH := $(shell dpkg --print-architecture 2>/dev/null || uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')
ARCH      ?= $(HOST_ARCH)
ARM64_PKGS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross make file qemu-user-static \
              liblua5.4-dev:arm64 libyaml-dev:arm64 libmd-dev:arm64 libmbedtls-dev:arm64 libjansson-dev:arm64 \
              libcmocka-dev:arm64
ifneq ($(ARCH),$(HOST_ARCH))
ifneq ($(ARCH),arm64)
$(error ARCH=$(ARCH): this machine ($(HOST_ARCH)) builds for itself and, with ARCH=arm64, for arm64)
endif
CROSS     := aarch64-linux-gnu-
# The cross compiler, unless CC was given: make's built-in default "cc" is the machine's own.
ifeq ($(origin CC),default)
CC        := $(CROSS)gcc
endif
# BUILD=build becomes build/arm64; a BUILD that already ends in /arm64 stays (sub-makes, scripts).
ifneq ($(notdir $(BUILD)),$(ARCH))
override BUILD := $(BUILD)/$(ARCH)
endif
DEB_PKGS  := $(ARM64_PKGS)
endif

WARN      := -std=gnu11 -Wall -Wextra -Wshadow -Wundef -Wwrite-strings -Wmissing-prototypes \
             -Wmissing-declarations -Wstrict-prototypes -Wold-style-definition -Wformat=2 \
             -Wimplicit-fallthrough -Wpointer-arith -fno-common
ifeq ($(CI),true)
WARN      += -Werror
endif

LUA_INC   := -I/usr/include/lua5.4
DEFS      := -DNI_VERSION='"$(VERSION)"'
ifeq ($(SAN),1)
OPT       := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
DEFS      += -DLUA_USE_APICHECK
LDSAN     := -fsanitize=address,undefined
else
OPT       := -O2 -g -D_FORTIFY_SOURCE=2
endif
CFLAGS    ?=
# -iquote, not -I: core/yaml.h must not hide libyaml's <yaml.h>.
CFLAGS    += $(WARN) $(OPT) $(DEFS) $(LUA_INC) -iquote core -I$(BUILD)
LIBS      := -llua5.4 -lyaml -lmd -ljansson -lmbedtls -lmbedx509 -lmbedcrypto -lm
STATIC_LIBS := $(LIBS)

CORE_SRCS := $(sort $(wildcard core/*.c))
LIB_SRCS  := $(filter-out core/main.c,$(CORE_SRCS))
LUA_SRCS  := $(sort $(wildcard lua/*.lua))
OBJS      := $(CORE_SRCS:core/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/lua_embed.o

# Unit tests: -O0 and no _FORTIFY_SOURCE, so -Wl,--wrap= sees the plain syscall names.
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
TCFLAGS   := $(filter-out -O2 -D_FORTIFY_SOURCE=2,$(CFLAGS)) -O0 -Itests/unit
# core/ without main.c, compiled once with TCFLAGS and archived: every unit binary links against it.
TOBJS     := $(LIB_SRCS:core/%.c=$(BUILD)/tobj/%.o) $(BUILD)/tobj/lua_embed.o
# Present while build/nodeinit is the dynamic link: `make static` removes it, so `make` relinks.
LINK_STAMP := $(BUILD)/.link-dynamic

DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: FORCE all deps test unit integration check static demo valgrind image image-test bench fuzz clean helpers
all: $(BUILD)/nodeinit

# $(call apt_install,PACKAGES): installs those of the Debian PACKAGES that are missing (as root).
define apt_install
	@missing=""; for p in $(1); do dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make as root to install them)"; exit 1; fi; \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef

deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	$(call apt_install,$(DEB_PKGS))
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/obj/%.o: core/%.c $(wildcard core/*.h) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

# lua/*.lua baked in as byte arrays, registered in package.preload as nodeinit.<name>.
$(BUILD)/lua_embed.c: $(LUA_SRCS) Makefile | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@{ echo '/* Generated from lua/ by the Makefile. */'; echo '#include "embed.h"'; \
	  for f in $(LUA_SRCS); do n=$$(basename $$f .lua); \
	    echo "static const char lua_$$n[] = {"; od -An -v -tx1 $$f | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'; echo "};"; done; \
	  echo "const struct ni_embedded ni_embedded_lua[] = {"; \
	  for f in $(LUA_SRCS); do n=$$(basename $$f .lua); echo "  { \"$$n\", lua_$$n, sizeof(lua_$$n) },"; done; \
	  echo "  { 0, 0, 0 },"; echo "};"; \
	  echo "const char ni_embedded_lua_sha256[] = \"$$(cat $(LUA_SRCS) | sha256sum | cut -c1-64)\";"; } > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/lua_embed.o: $(BUILD)/lua_embed.c core/embed.h
	@mkdir -p $(@D)
	@$(CC) $(filter-out -Wmissing-prototypes,$(CFLAGS)) -c -o $@ $<

$(LINK_STAMP): | $(DEPS_STAMP)
	@touch $@

$(BUILD)/nodeinit: $(OBJS) $(LINK_STAMP)
	@echo "  LD      $@"
	@$(CC) $(LDSAN) -o $@ $(OBJS) $(LIBS)

# Same path as the dynamic build (the image, the bench and scripts use it); dropping the stamp makes
# the next `make` or `make test` relink dynamically instead of testing this binary unnoticed.
static: $(OBJS)
	@rm -f $(LINK_STAMP)
	@echo "  LD      $(BUILD)/nodeinit (static)"
	@$(CC) -static -o $(BUILD)/nodeinit $^ $(STATIC_LIBS)
	@file $(BUILD)/nodeinit

$(BUILD)/tobj/%.o: core/%.c $(wildcard core/*.h) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TCFLAGS) -c -o $@ $<

$(BUILD)/tobj/lua_embed.o: $(BUILD)/lua_embed.c core/embed.h
	@mkdir -p $(@D)
	@$(CC) $(filter-out -Wmissing-prototypes,$(TCFLAGS)) -c -o $@ $<

# The member list, rewritten only when it changes: a core file removed rebuilds the archive too,
# so no stale member can satisfy a link that a fresh build would fail.
$(BUILD)/tobj/members: FORCE
	@mkdir -p $(@D) && echo '$(TOBJS)' | cmp -s - $@ || echo '$(TOBJS)' > $@

$(BUILD)/libnicore.a: $(TOBJS) $(BUILD)/tobj/members
	@echo "  AR      $@"
	@rm -f $@ && ar rcs $@ $(TOBJS)

# The fixtures every unit test may use (tests/unit/fixture.h), compiled once.
$(BUILD)/unit/fixture.o: tests/unit/fixture.c tests/unit/fixture.h tests/unit/unit.h $(wildcard core/*.h) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TCFLAGS) -c -o $@ $<

# --wrap rewrites the undefined references of every input, archive members included.
$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/unit/fixture.o $(BUILD)/libnicore.a tests/unit/unit.h tests/unit/fixture.h \
		$(wildcard core/*.h) $(wildcard tests/unit/*.wrap)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(TCFLAGS) -o $@ $< $(BUILD)/unit/fixture.o $(BUILD)/libnicore.a $(LDSAN) \
		$(foreach s,$(shell cat tests/unit/$*.wrap 2>/dev/null),-Wl,--wrap=$(s)) -lcmocka $(LIBS)

# Test helpers, built by the integration tests that use them: enosys runs a command with the
# syscalls newer than 4.18 answering ENOSYS (tests/integration/oldkernel.sh).
HELPERS := $(BUILD)/helpers/enosys
$(BUILD)/helpers/%: tests/helpers/%.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(WARN) -O2 -g -o $@ $< -lseccomp
helpers: $(HELPERS)

unit: $(UNIT_BINS)
test: $(BUILD)/nodeinit $(UNIT_BINS)
	@BUILD=$(BUILD) bash tests/run.sh

check:
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 test

# A dynamic build of its own: valgrind is noisy on static glibc.
valgrind:
	@$(MAKE) --no-print-directory BUILD=build/valgrind build/valgrind/nodeinit
	@BUILD=build/valgrind NODEINIT_WRAP="valgrind --vgdb=no --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --quiet" \
		bash tests/run.sh integration

demo: $(BUILD)/nodeinit
	@bash tests/demo.sh $(BUILD)/nodeinit

# The container image (README: Image); neither is part of `make test`. tests/image/docker.sh uses a
# running docker daemon or starts its own under build/docker/ (and stops it), and makes a local
# debian:bookworm-slim with debootstrap when no registry has one.
image:
	@VERSION=$(VERSION) bash tests/image/docker.sh build

# Builds the image (cached when nothing changed), then runs it against fake hosts.
image-test:
	@VERSION=$(VERSION) BUILD=$(BUILD) bash tests/image/image.sh

# nodeinit against the legacy loop, sysctl -p and sysctl -w on fake hosts, as one table (README:
# Performance). The static binary, as the image ships it, built in a directory of its own.
BENCH_PKGS := strace procps iproute2 util-linux binutils file
bench:
	$(call apt_install,$(BENCH_PKGS))
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/bench static >/dev/null
	@BUILD=$(BUILD)/bench bash tests/bench/bench.sh $(BUILD)/bench/nodeinit

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang in their own directory, each run for
# FUZZ_SECONDS; prints executions per target and fails on a crash (tests/fuzz/run.sh).
FUZZ_SECONDS ?= 10
FUZZ_BUILD   := build/fuzz
FUZZ_CC      ?= clang
FUZZ_TARGETS := state yaml recipe_yaml sysctl cli nsenter
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := $(filter-out -Werror,$(WARN)) -Wno-unknown-warning-option -g -O1 -fno-omit-frame-pointer \
                $(FUZZ_SAN) -DLUA_USE_APICHECK $(DEFS) $(LUA_INC) -iquote core -I$(FUZZ_BUILD)
FUZZ_LIB_OBJS := $(LIB_SRCS:core/%.c=$(FUZZ_BUILD)/obj/%.o) $(FUZZ_BUILD)/obj/lua_embed.o

$(FUZZ_BUILD)/.clang-ok: | $(DEPS_STAMP)
	@command -v $(FUZZ_CC) >/dev/null || { [ "$$(id -u)" = 0 ] && echo "installing: clang" && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang >/dev/null; } || \
		{ echo "make fuzz needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p $(@D) && touch $@

$(FUZZ_BUILD)/obj/%.o: core/%.c $(wildcard core/*.h) | $(FUZZ_BUILD)/.clang-ok
	@mkdir -p $(@D)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/obj/lua_embed.o: $(BUILD)/lua_embed.c core/embed.h
	@mkdir -p $(@D)
	@$(FUZZ_CC) $(filter-out -Wmissing-prototypes,$(FUZZ_CFLAGS)) -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJS)
	@echo "  FUZZLD  $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(LIBS)

.SECONDARY: $(FUZZ_LIB_OBJS)
fuzz: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
	@bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf build

# --- Architectures (README: Architectures).
# A cross build's packages are another architecture's: dpkg must know it before apt-get can see them.
ifneq ($(ARCH),$(HOST_ARCH))
$(DEPS_STAMP): | dpkg-arch
.PHONY: dpkg-arch
dpkg-arch:
	@dpkg --print-foreign-architectures | grep -qx '$(ARCH)' || { \
		if [ "$$(id -u)" != 0 ]; then echo "dpkg does not know $(ARCH) (run make as root to add it)"; exit 1; fi; \
		echo "adding the dpkg architecture $(ARCH)"; dpkg --add-architecture $(ARCH); }
endif

# The unit tests cross-built for arm64 and run under qemu-user, then tests/integration/arm64.sh (the
# static arm64 binary against fake hosts); ends with "N passed, N failed, N skipped". Slow: test_lua's
# instruction-limit test alone takes minutes under emulation. make test runs only arm64.sh.
.PHONY: test-arm64
test-arm64: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory ARCH=arm64 BUILD=build static unit
	@BUILD=$(BUILD) bash tests/arm64/run.sh
