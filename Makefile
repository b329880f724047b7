# mqlb: plain GNU make. `make`, `make deps`, `make test`, `make test SAN=1`,
# `make test-brokers`, `make demo`, `make bench`, `make clean`. Local overrides go in config.mak.

CC       ?= gcc
PKGS     := inih libmicrohttpd jansson
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wformat=2
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -pthread -Iinclude $(WARN) -MMD -MP
LDLIBS   += -lev -lm -pthread

ifeq ($(DEBUG),1)
CFLAGS   += -O0 -DMQ_DEBUG
endif

BUILD    := build
ifeq ($(SAN),1)
BUILD    := build-san
CFLAGS   += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
            -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif
ifeq ($(SAN),thread)
BUILD    := build-tsan
CFLAGS   += -O1 -fsanitize=thread
LDFLAGS  += -fsanitize=thread
endif

-include config.mak

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

SRC      := $(wildcard src/*.c)
OBJ      := $(SRC:src/%.c=$(BUILD)/%.o)
LIBOBJ   := $(filter-out $(BUILD)/main.o,$(OBJ))
TSRC     := $(wildcard tests/test_*.c)
TOBJ     := $(TSRC:tests/%.c=$(BUILD)/tests/%.o)
BIN      := $(BUILD)/mqlb

.PHONY: all deps test unit integration test-brokers demo bench clean
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

$(BUILD)/tests/%.o: tests/%.c | $(BUILD)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/unit_tests: $(TOBJ) $(LIBOBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcriterion $(LDLIBS)

$(BUILD):
	mkdir -p $(BUILD)/tests

deps:
	@scripts/deps.sh

unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests --jobs 2

integration: $(BIN)
	MQLB_BIN=$(abspath $(BIN)) python3 tests/integration/run.py

# Brokers too slow to start inside the main suite (RabbitMQ).
test-brokers: $(BIN)
	@scripts/deps.sh brokers
	MQLB_TEST_BROKERS=1 MQLB_BIN=$(abspath $(BIN)) python3 tests/integration/run.py \
	    test_brokers.py

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration

demo: deps
	$(MAKE) all
	scripts/demo.sh

bench: deps
	$(MAKE) all
	scripts/bench.sh $(BENCH_ARGS)

clean:
	rm -rf build build-san build-tsan mqlb

-include $(OBJ:.o=.d) $(TOBJ:.o=.d)
