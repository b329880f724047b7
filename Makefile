# mqlb: plain GNU make. `make`, `make deps`, `make test`, `make test SAN=1`,
# `make test-brokers`, `make demo`, `make bench`, `make bench-quick`, `make clean`. Local overrides go in config.mak.

CC       ?= gcc
PKGS     := inih libmicrohttpd jansson libsystemd libssl libcrypto libcares
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wformat=2
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -pthread -Iinclude $(WARN) -MMD -MP
LDLIBS   += -lev -lm -pthread

ifeq ($(DEBUG),1)
CFLAGS   += -O0 -DMQ_DEBUG
endif

BUILD    := build
# The sanitizer builds keep line tables only (-g1): a report still names
# file and line, and the build takes 40 % less CPU than with -g.
ifeq ($(SAN),1)
BUILD    := build-san
CFLAGS   += -O1 -g1 -fno-omit-frame-pointer -fsanitize=address,undefined \
            -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif
ifeq ($(SAN),thread)
BUILD    := build-tsan
CFLAGS   += -O1 -g1 -fsanitize=thread
LDFLAGS  += -fsanitize=thread
endif

-include config.mak

# The builds inside `make test` use every core (the tests themselves set
# their own parallelism: criterion --jobs, TEST_JOBS).
BUILD_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

SRC      := $(wildcard src/*.c)
OBJ      := $(SRC:src/%.c=$(BUILD)/%.o)
LIBOBJ   := $(filter-out $(BUILD)/main.o,$(OBJ))
TSRC     := $(wildcard tests/test_*.c)
TOBJ     := $(TSRC:tests/%.c=$(BUILD)/tests/%.o)
BIN      := $(BUILD)/mqlb
# the fuzz targets, and this build's replays of them (see fuzz-replay)
FUZZ_NAMES   := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAY_BINS  := $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)

# `make install`: PREFIX, DESTDIR and the GNU directory variables.
PREFIX        ?= /usr/local
sbindir       ?= $(PREFIX)/sbin
# FHS: with PREFIX=/usr the config goes in /etc, not /usr/etc.
sysconfdir    ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
mandir        ?= $(PREFIX)/share/man
docdir        ?= $(PREFIX)/share/doc/mqlb
systemdunitdir ?= $(PREFIX)/lib/systemd/system
INSTALL       ?= install
# The unit and the man pages name installed paths; they are written for
# the default PREFIX and rewritten to this install's on the way.
INSTALL_PATHS  = -e 's|/usr/local/sbin|$(sbindir)|g' \
                 -e 's|/usr/local/etc/mqlb|$(sysconfdir)/mqlb|g' \
                 -e 's|/usr/local/lib/systemd/system|$(systemdunitdir)|g' \
                 -e 's|/usr/local/share/doc/mqlb|$(docdir)|g'

.PHONY: all deps test test-build unit layers integration test-brokers demo bench bench-quick clean
all: mqlb

mqlb: $(BIN)
	@if [ "$(BUILD)" = build ]; then cp $(BIN) mqlb.tmp && mv -f mqlb.tmp mqlb; fi

$(BIN): $(OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/%.o: src/%.c $(BUILD)/dashboard.inc | $(BUILD)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -I$(BUILD) -c -o $@ $<

# The dashboard page is kept as HTML and embedded as a C string.
$(BUILD)/dashboard.inc: src/dashboard.html | $(BUILD)
	od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g' > $@

# The unit tests' own files are harness code, built without optimisation
# (at -O2 criterion's assertion macros took two thirds of the build's
# CPU); the code they test keeps the build's flags and sanitizers. Their
# locals start as a fixed pattern: a test that reads one it never set
# does the same in every build and run, not what the stack held.
TEST_CFLAGS := -O0 -ftrivial-auto-var-init=pattern
$(BUILD)/tests/%.o: tests/%.c | $(BUILD)/tests
	$(CC) $(CFLAGS) $(TEST_CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/unit_tests: $(TOBJ) $(LIBOBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcriterion $(LDLIBS)

$(BUILD) $(BUILD)/tests:
	mkdir -p $@

deps:
	@scripts/deps.sh

# criterion reports a test passed before the sanitizer's exit-time leak
# check runs in its process, so reports in the output fail the target.
unit: $(BUILD)/unit_tests layers
	@$(BUILD)/unit_tests --jobs 2 >$(BUILD)/unit.log 2>&1; rc=$$?; \
	cat $(BUILD)/unit.log; \
	if grep -q 'ERROR: LeakSanitizer\|ERROR: AddressSanitizer\|runtime error:' \
	    $(BUILD)/unit.log; then echo "unit: sanitizer reports above"; exit 1; fi; \
	exit $$rc

# Calls go down, notifications come up through hooks (tests/check_layers.py).
layers:
	@python3 tests/check_layers.py

# MQLB_SAN tells the tests which build runs: bounds on CPU and memory hold
# only for the plain one. INTEGRATION names files: `make integration
# INTEGRATION="test_tls.py test_admin.py"`. TEST_JOBS test classes run at
# once: most wait on timeouts and brokers, not on the 2 cores (classes that
# measure or load the machine, RUN_ALONE, still run by themselves); each
# run's times order the next one, longest first.
INTEGRATION ?=
TEST_JOBS   ?= 10
TEST_ENV     = MQLB_TEST_JOBS=$(TEST_JOBS) \
               MQLB_TEST_TIMES=$(abspath $(BUILD))/integration-times.json
integration: $(BIN)
	MQLB_SAN=$(SAN) MQLB_BIN=$(abspath $(BIN)) $(TEST_ENV) \
	    python3 tests/integration/run.py $(INTEGRATION)

# Brokers too slow to start inside the main suite (RabbitMQ).
test-brokers: $(BIN)
	@scripts/deps.sh brokers
	MQLB_TEST_BROKERS=1 MQLB_BIN=$(abspath $(BIN)) python3 tests/integration/run.py \
	    test_brokers.py

# What `make test` runs, built: mqlb, the unit tests, the fuzz replays.
test-build: all $(BUILD)/unit_tests $(REPLAY_BINS)

test: deps
	$(MAKE) -j$(BUILD_JOBS) test-build
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) fuzz-replay
	@if [ -z "$(SAN)" ]; then $(MAKE) soak SOAK_SECONDS=$(TEST_SOAK_SECONDS); fi
	@echo "make test: done"

demo: deps
	$(MAKE) all
	scripts/demo.sh

bench: deps
	$(MAKE) all
	scripts/bench.sh $(BENCH_ARGS)
	scripts/bench_tls.sh $(BENCH_ARGS)
	scripts/bench_fleet.sh $(BENCH_ARGS)

# Every bench script in --quick mode (one repeat, small counts): a smoke run
# of the whole benchmark, under 3 minutes on a quiet 2-core machine.
bench-quick: deps
	$(MAKE) all
	scripts/bench.sh --quick $(BENCH_ARGS)
	scripts/bench_tls.sh --quick $(BENCH_ARGS)
	scripts/bench_fleet.sh --quick $(BENCH_ARGS)

# Chaos soak (scripts/soak.sh): 10 minutes by default; in `make test` a
# 30-second chaos smoke (TEST_SOAK_SECONDS) that meets every kind of fault.
# Its faults and data come from SOAK_SEED (printed at the start), so a run
# can be repeated: `make soak SOAK_SEED=1234`.
SOAK_SECONDS ?= 600
TEST_SOAK_SECONDS ?= 30
SOAK_SEED    ?= 1
.PHONY: soak
soak: $(BIN)
	MQLB_BIN=$(abspath $(BIN)) scripts/soak.sh --seconds $(SOAK_SECONDS) \
	    --seed $(SOAK_SEED)

.PHONY: install uninstall
# The config is installed only if none is there; the paths in the unit
# and the man pages are rewritten from /usr/local to the install's.
install: $(BIN)
	$(INSTALL) -d $(DESTDIR)$(sbindir) $(DESTDIR)$(sysconfdir)/mqlb \
	    $(DESTDIR)$(mandir)/man8 $(DESTDIR)$(mandir)/man5 \
	    $(DESTDIR)$(systemdunitdir) $(DESTDIR)$(docdir)/examples
	$(INSTALL) -m 755 $(BIN) $(DESTDIR)$(sbindir)/mqlb
	@if [ -e $(DESTDIR)$(sysconfdir)/mqlb/mqlb.ini ]; then \
	    echo "keeping $(DESTDIR)$(sysconfdir)/mqlb/mqlb.ini"; \
	else \
	    echo "$(INSTALL) -m 644 etc/mqlb.ini $(DESTDIR)$(sysconfdir)/mqlb/mqlb.ini"; \
	    $(INSTALL) -m 644 etc/mqlb.ini $(DESTDIR)$(sysconfdir)/mqlb/mqlb.ini; \
	fi
	sed $(INSTALL_PATHS) man/mqlb.8 > $(DESTDIR)$(mandir)/man8/mqlb.8
	sed $(INSTALL_PATHS) man/mqlb.ini.5 > $(DESTDIR)$(mandir)/man5/mqlb.ini.5
	sed $(INSTALL_PATHS) etc/mqlb.service \
	    > $(DESTDIR)$(systemdunitdir)/mqlb.service
	chmod 644 $(DESTDIR)$(mandir)/man8/mqlb.8 \
	    $(DESTDIR)$(mandir)/man5/mqlb.ini.5 \
	    $(DESTDIR)$(systemdunitdir)/mqlb.service
	$(INSTALL) -m 644 etc/examples/* $(DESTDIR)$(docdir)/examples/

# Leaves mqlb.ini if it was changed after the install.
uninstall:
	rm -f $(DESTDIR)$(sbindir)/mqlb $(DESTDIR)$(mandir)/man8/mqlb.8 \
	    $(DESTDIR)$(mandir)/man5/mqlb.ini.5 $(DESTDIR)$(systemdunitdir)/mqlb.service
	rm -f $(addprefix $(DESTDIR)$(docdir)/examples/,$(notdir $(wildcard etc/examples/*)))
	rmdir $(DESTDIR)$(docdir)/examples $(DESTDIR)$(docdir) 2>/dev/null || true
	@if cmp -s etc/mqlb.ini $(DESTDIR)$(sysconfdir)/mqlb/mqlb.ini; then \
	    rm -f $(DESTDIR)$(sysconfdir)/mqlb/mqlb.ini; \
	    rmdir $(DESTDIR)$(sysconfdir)/mqlb 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(sysconfdir)/mqlb/mqlb.ini ]; then \
	    echo "kept $(DESTDIR)$(sysconfdir)/mqlb/mqlb.ini (changed since install)"; \
	fi

.PHONY: fuzz fuzz-build fuzz-replay test-tsan integration-with-tsan
# ---- fuzz targets ------------------------------------------------------
# Each tests/fuzz/fuzz_X.c is built two ways.
# `make fuzz`: with clang and libFuzzer, ASan and UBSan, in build-fuzz/
# (every src/*.c but main.c in one archive, each target linking what it
# needs); it replays the regression inputs, then fuzzes each target
# FUZZ_SECONDS.
# `make fuzz-replay` (part of `make test`, and of `make test SAN=1` with
# the sanitizers): with this build's compiler, flags and objects and
# tests/fuzz/replay.c as main(), each regression input and seed given once:
# the same verdict every run, and no second compiler to install.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -std=c11 \
                -D_GNU_SOURCE -pthread -Iinclude -MMD -MP \
                $(filter-out -Werror,$(WARN)) -Wno-format-nonliteral
FUZZ_SRCOBJ  := $(filter-out $(FUZZ_BUILD)/main.o,$(SRC:src/%.c=$(FUZZ_BUILD)/%.o))
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/%)
.SECONDARY: $(FUZZ_NAMES:%=$(FUZZ_BUILD)/tests/%.o)

# flock: a second fuzz-build started meanwhile (.ci/run builds the fuzz
# targets beside the tests) waits, then finds them built.
fuzz-build:
	@scripts/deps.sh --fuzz
	@mkdir -p $(FUZZ_BUILD)
	flock $(FUZZ_BUILD)/.lock $(MAKE) -j$(BUILD_JOBS) $(FUZZ_BINS)

$(FUZZ_BUILD)/%.o: src/%.c $(FUZZ_BUILD)/dashboard.inc
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) \
	    -I$(FUZZ_BUILD) -c -o $@ $<

$(FUZZ_BUILD)/dashboard.inc: src/dashboard.html
	mkdir -p $(FUZZ_BUILD)/tests
	od -An -v -tx1 $< | sed 's/\([0-9a-f][0-9a-f]\)/0x\1,/g' > $@

$(FUZZ_BUILD)/libmqlb.a: $(FUZZ_SRCOBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/tests/%.o: tests/fuzz/%.c $(FUZZ_BUILD)/dashboard.inc
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -c -o $@ $<

# --wrap: fuzz_config resolves numeric hosts only (no DNS per input).
FUZZ_WRAP    := -Wl,--wrap=getaddrinfo
$(FUZZ_BUILD)/fuzz_config: FUZZ_WRAP += -Wl,--wrap=resolver_lookup_sync
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz_%.o $(FUZZ_BUILD)/libmqlb.a
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) $(FUZZ_WRAP) \
	    -o $@ $^ $(PKG_LIBS) $(LDLIBS)

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-replay: $(REPLAY_BINS)
	FUZZ_BIN_DIR=$(BUILD)/fuzz tests/fuzz/run.sh 0 $(FUZZ_NAMES)

$(BUILD)/fuzz/obj/%.o: tests/fuzz/%.c | $(BUILD)/fuzz/obj
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/libmqlb.a: $(LIBOBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/fuzz_config: FUZZ_WRAP += -Wl,--wrap=resolver_lookup_sync
$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/obj/fuzz_%.o $(BUILD)/fuzz/obj/replay.o \
                      $(BUILD)/libmqlb.a
	$(CC) $(LDFLAGS) $(FUZZ_WRAP) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/fuzz/obj:
	mkdir -p $@

# ---- ThreadSanitizer: the multi-worker integration tests ---------------
# A race makes mqlb exit 66 at once, which fails the test that ran it;
# reports go to build-tsan/reports/ too, so that one found while mqlb
# shuts down (after the test's last check) still fails the target.
TSAN_TESTS ?= test_proxy.py test_reload.py test_isolation.py \
              test_takeover.py test_admin.py test_checks.py
TSAN_OPTS  := halt_on_error=1 exitcode=66 second_deadlock_stack=1 \
              suppressions=$(abspath tests/tsan.supp) \
              log_path=$(abspath build-tsan/reports/tsan)

# A report fails the run even if every test passed (found at shutdown).
TSAN_REPORTS = @if [ -n "$$(ls build-tsan/reports)" ]; then \
	    cat build-tsan/reports/*; echo "$@: ThreadSanitizer reports above"; \
	    exit 1; \
	fi; echo "$@: no ThreadSanitizer reports"
TSAN_ENV   = TSAN_OPTIONS="$(TSAN_OPTS)"

test-tsan: deps
	$(MAKE) -j$(BUILD_JOBS) SAN=thread mqlb
	@rm -rf build-tsan/reports && mkdir -p build-tsan/reports
	MQLB_SAN=thread MQLB_BIN=$(abspath build-tsan/mqlb) MQLB_TEST_JOBS=$(TEST_JOBS) \
	    MQLB_TEST_TIMES=$(abspath build-tsan)/integration-times.json \
	    $(TSAN_ENV) python3 tests/integration/run.py $(TSAN_TESTS)
	$(TSAN_REPORTS)

# .ci/run: `make SAN=1 integration` and the integration part of `make
# test-tsan` in one runner, their classes sharing the TEST_JOBS slots
# (both builds made before).
integration-with-tsan: $(BIN) build-tsan/mqlb
	@rm -rf build-tsan/reports && mkdir -p build-tsan/reports
	MQLB_SAN=$(SAN) MQLB_BIN=$(abspath $(BIN)) $(TEST_ENV) $(TSAN_ENV) \
	    python3 tests/integration/run.py $(INTEGRATION) \
	    --also tsan thread $(abspath build-tsan/mqlb) \
	    $(abspath build-tsan)/integration-times.json $(TSAN_TESTS)
	$(TSAN_REPORTS)

clean:
	rm -rf build build-san build-tsan build-fuzz mqlb

-include $(OBJ:.o=.d) $(TOBJ:.o=.d) $(FUZZ_SRCOBJ:.o=.d) \
         $(wildcard $(BUILD)/fuzz/obj/*.d)
