# Nexra build. `make run` and `make test` are the two entry points named in
# the README; both bootstrap the machine first (idempotent).

CC       ?= cc
BUILD    ?= build
SANITIZE ?=
OPT      ?= -O2

PKGS     := libmicrohttpd jansson libcurl openssl libsodium sqlite3 libpq yaml-0.1 libpcre2-8
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wno-format-nonliteral -Wvla
CFLAGS   := -std=c17 -D_GNU_SOURCE -g $(OPT) $(WARN) -Isrc -I$(BUILD)/gen \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lstemmer -lpthread -lm
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

# Every .c under src/ except the entry point goes into one static library
# that the binary, the unit tests and the fuzz targets link.
LIB_SRC  := $(sort $(shell find src -name '*.c' ! -name main.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/migrations.o $(BUILD)/obj/gen/lexicon.o
MIGR     := $(sort $(wildcard src/store/migrations/*/*.sql))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
PYTHON   := /usr/bin/python3

.PHONY: all bootstrap run test unit schema-suite fuzz-replay integration integration-san bench fuzz clean format demo
all: $(BUILD)/nexra

bootstrap:
	@bash scripts/bootstrap.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/migrations.c: $(MIGR) scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	bash scripts/embed-migrations.sh $(MIGR) > $@

$(BUILD)/obj/gen/migrations.o: $(BUILD)/gen/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The built-in embedder's WordNet lexicon (src/discovery/lexicon.h), compiled
# from the wordnet-base package and linked into the binary.
WORDNET  := /usr/share/wordnet
$(BUILD)/gen/lexicon.txt: scripts/wordnet-lexicon.py
	@mkdir -p $(dir $@)
	$(PYTHON) scripts/wordnet-lexicon.py $(WORDNET) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/lexicon.o: $(BUILD)/gen/lexicon.txt
	@mkdir -p $(dir $@)
	printf '\t.section .rodata\n\t.globl nx_lexicon\n\t.globl nx_lexicon_end\nnx_lexicon:\n\t.incbin "%s"\nnx_lexicon_end:\n\t.section .note.GNU-stack,"",@progbits\n' \
	    $(abspath $<) | $(CC) -c -x assembler -o $@ -

$(BUILD)/libnexra.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/nexra: $(BUILD)/obj/src/main.o $(BUILD)/libnexra.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit: $(UNIT_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libnexra.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzz targets: replayed over their corpus in `make test` (sanitized build),
# run coverage-guided with libFuzzer by `make fuzz`.
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/replay_main.c $(BUILD)/libnexra.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay_main.c $(BUILD)/libnexra.a $(LDLIBS)

run: bootstrap $(BUILD)/nexra
	@mkdir -p var
	$(BUILD)/nexra serve --listen 127.0.0.1:8000 --db sqlite:./var/nexra.db --signup open

# The six lifecycle steps with the Python SDK: a throwaway --dev server,
# examples/research_agent.py (callee) and examples/sales_agent.py (caller).
demo: bootstrap $(BUILD)/nexra
	$(PYTHON) examples/demo.py $(abspath $(BUILD)/nexra)

unit: $(BUILD)/unit
	$(BUILD)/unit

fuzz-replay:
	$(MAKE) --no-print-directory BUILD=build-san SANITIZE=address,undefined OPT=-O1 \
	    $(FUZZ_SRC:tests/fuzz/%.c=build-san/fuzz/%)
	@for f in $(FUZZ_SRC:tests/fuzz/%.c=%); do \
	    ASAN_OPTIONS=detect_leaks=1 build-san/fuzz/$$f tests/fuzz/corpus/$${f#fuzz_} || exit 1; done

integration: $(BUILD)/nexra
	cd tests/integration && NEXRA_BIN=$(abspath $(BUILD)/nexra) $(PYTHON) -m pytest -q -p no:cacheprovider

# The same unit and black-box suites against an ASan/UBSan build (SQLite;
# the store conformance suite also on PostgreSQL): any memory error,
# undefined behaviour or leak at shutdown fails the run.
integration-san:
	$(MAKE) --no-print-directory BUILD=build-san SANITIZE=address,undefined OPT=-O1 \
	    build-san/nexra build-san/unit
	build-san/unit
	cd tests/integration && NEXRA_BIN=$(abspath build-san/nexra) NEXRA_TEST_BACKENDS=sqlite \
	    $(PYTHON) -m pytest -q -p no:cacheprovider

test: bootstrap
	$(MAKE) --no-print-directory all unit
	$(MAKE) --no-print-directory schema-suite
	$(MAKE) --no-print-directory fuzz-replay
	$(MAKE) --no-print-directory integration-san
	$(MAKE) --no-print-directory integration

# The official JSON-Schema-Test-Suite (draft 7), from its Debian package.
$(BUILD)/schema-suite: tests/schema-suite/run_suite.c $(BUILD)/libnexra.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libnexra.a $(LDLIBS)

schema-suite: $(BUILD)/schema-suite
	$(BUILD)/schema-suite --exceptions tests/schema-suite/exceptions.txt

$(BUILD)/%_bench: bench/%_bench.c $(BUILD)/libnexra.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libnexra.a $(LDLIBS)

$(BUILD)/discover_eval $(BUILD)/discover_load: $(BUILD)/%: bench/%.c $(BUILD)/libnexra.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libnexra.a $(LDLIBS)

# In-process figures first (one core, no network), then the HTTP run.
bench: bootstrap $(BUILD)/nexra $(BUILD)/policy_bench $(BUILD)/schema_bench $(BUILD)/audit_bench \
       $(BUILD)/discover_eval $(BUILD)/discover_load
	$(BUILD)/policy_bench
	$(BUILD)/schema_bench
	$(BUILD)/audit_bench
	$(BUILD)/discover_eval tests/data/discovery_agents.tsv tests/data/discovery_queries.tsv
	bash bench/run.sh $(abspath $(BUILD)/nexra)
	bash bench/delegate.sh $(abspath $(BUILD)/nexra)
	bash bench/discover.sh $(abspath $(BUILD)/nexra) $(abspath $(BUILD)/discover_load)

fuzz:
	bash tests/fuzz/run-libfuzzer.sh

format:
	clang-format -i $(shell find src tests -name '*.[ch]')

print-pkgs: # for scripts that build outside make (tests/fuzz/run-libfuzzer.sh)
	@echo $(PKGS)

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
