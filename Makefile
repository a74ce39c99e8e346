# pristine.h - developer entry points. `make test` is the README's test command.
# `make test` first runs tools/setup.sh, which installs missing Debian packages
# (as root) and is quick when nothing is missing; `make demo` runs it with
# --demo, which installs only a compiler and BearSSL.
.PHONY: all setup test test-san test-poll test-clang test-cross check amalg bench demo fuzz fuzz-smoke failtable soak \
	install uninstall ds-server clean

all: test

setup:
	@bash tools/setup.sh

test: setup
	@bash tests/run.sh

test-san:
	@SAN=1 bash tests/run.sh

test-poll:
	@POLLER=poll bash tests/run.sh

test-clang:
	@CC=clang bash tests/run.sh

# The foreign-architecture runs (qemu-user); tests/cross.sh holds the recipe.
test-cross:
	@bash tests/cross.sh

# What CI runs, minus the package installs.
check:
	@bash .ci/run --no-install

amalg:
	@python3 amalgamate.py

# bench/bench.c against Boost.Context (bench/fctx.cpp); build/bench_nofp is the
# same file with PRISTINE_NO_FP_SAVE.
bench: setup
	@mkdir -p build
	$(CXX) -O2 -c bench/fctx.cpp -o build/fctx.o
	$(CC) -O2 -std=c11 -DPRISTINE_NO_TLS bench/bench.c build/fctx.o -o build/bench \
	    -lboost_context -lstdc++ -lpthread
	$(CC) -O2 -std=c11 -DPRISTINE_NO_TLS -DPRISTINE_NO_FP_SAVE bench/bench.c build/fctx.o \
	    -o build/bench_nofp -lboost_context -lstdc++ -lpthread
	build/bench && build/bench_nofp
	$(CC) -O2 -std=c11 -DPRISTINE_NO_TLS bench/bench_codecs.c -o build/bench_codecs -lpthread
	build/bench_codecs
	$(CC) -O2 -std=c11 bench/bench_resilience.c -o build/bench_resilience -lbearssl -lpthread
	build/bench_resilience
	$(CC) -O2 -std=c11 bench/bench_http.c -o build/bench_http -lbearssl -lpthread
	build/bench_http
	$(CC) -O2 -std=c11 -DPR_TESTSERVER_MAIN tools/testserver.c -o build/testserver -lbearssl -lpthread
	$(CC) -O2 -std=c11 bench/bench_rfuture.c -o build/bench_rfuture -lbearssl -lpthread
	build/bench_rfuture
	$(CC) -O2 -std=c11 bench/bench_sse.c -o build/bench_sse -lbearssl -lpthread
	build/bench_sse
	$(CC) -O2 -std=c11 bench/bench_streams.c -o build/bench_streams -lbearssl -lpthread
	build/bench_streams 10000 && build/bench_streams 10000 tls
	$(CC) -O2 -std=c11 bench/bench_ds.c -o build/bench_ds -lbearssl -lpthread
	build/bench_ds

# libFuzzer targets on the pure parsers: tests/fuzz_<name>.c -> build/fuzz/<name>.
# fuzz-smoke runs each for FUZZ_SECONDS (default 60) and prints its exec count; it
# grows build/fuzz/corpus_<name> from the seeds in tests/fuzz/corpus/<name> (when present).
# FUZZ_JOBS (default 2) targets build and run at a time; each still gets its full FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 2
FUZZ_FLAGS = -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all
FUZZ_NAMES = $(patsubst tests/fuzz_%.c,%,$(wildcard tests/fuzz_*.c))
fuzz: setup
	@mkdir -p build/fuzz
	@printf '%s\n' $(FUZZ_NAMES) | xargs -n1 -P $(FUZZ_JOBS) sh -c \
	    'clang $(FUZZ_FLAGS) tests/fuzz_$$0.c -o build/fuzz/$$0 -lpthread || exit 255; echo "built build/fuzz/$$0"'

fuzz-smoke: fuzz
	@printf '%s\n' $(FUZZ_NAMES) | xargs -n1 -P $(FUZZ_JOBS) sh -c \
	    'n=$$0; mkdir -p build/fuzz/corpus_$$n; seeds=; [ -d tests/fuzz/corpus/$$n ] && seeds=tests/fuzz/corpus/$$n; \
	    build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build/fuzz/corpus_$$n $$seeds \
	        >build/fuzz/$$n.log 2>&1 || { tail -n 40 build/fuzz/$$n.log; echo "fuzz $$n: FAILED"; exit 255; }; \
	    echo "fuzz $$n: $$(sed -n "s/^stat::number_of_executed_units: *//p" build/fuzz/$$n.log) execs in $(FUZZ_SECONDS) s"'

# The main demo: a live event stream read in a while loop across a dropped
# connection: examples/sse.c against build/testserver (both built here; no
# node needed), with examples/sse.c's own `// run:` arguments.
demo:
	@bash tools/setup.sh --demo
	@mkdir -p build
	@bash examples/run.sh --show sse

# What each call returns, and when, against servers that say no (tools/failtable.c).
failtable: setup
	@mkdir -p build
	@sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures
	$(CC) -std=c99 -O1 -I. tools/failtable.c -o build/failtable -lbearssl -lpthread
	build/failtable

# The command-line client (tools/pristine.c): build/pristine. `pristine --help`
# is its documentation; tools/README.md has examples.
# The fault-injecting proxy (tools/faultproxy.c): build/faultproxy --help.
# `make soak`: tests/soak.c, every reader and the producer through it against
# the test server and the reference Durable Streams server, for SOAK_SECONDS
# (150) or until SOAK_FAULTS faults (0 = no bound); the long form:
# `make soak SOAK_SECONDS=1500 SOAK_FAULTS=1000`. SOAK_CFLAGS replaces -O2
# (e.g. -O1 -g -fsanitize=address,undefined). tests/README.md has the details.
SOAK_SECONDS ?= 150
SOAK_FAULTS ?= 0
SOAK_SEED ?= 1
SOAK_CFLAGS ?= -O2
WARN = -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror
.PHONY: faultproxy soak
faultproxy:
	@mkdir -p build
	@$(CC) $(WARN) -O2 -DPR_FAULTPROXY_MAIN tools/faultproxy.c -o build/faultproxy -lbearssl -lpthread

soak: setup faultproxy
	@mkdir -p build
	@$(CC) $(WARN) $(SOAK_CFLAGS) tests/soak.c -o build/soak -lbearssl -lpthread
	@build/soak --seconds $(SOAK_SECONDS) --faults $(SOAK_FAULTS) --seed $(SOAK_SEED)

.PHONY: cli
cli:
	@mkdir -p build
	$(CC) -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. tools/pristine.c -o build/pristine -lbearssl -lpthread

# `make install [PREFIX=/usr/local] [DESTDIR=]`: the header, the pristine CLI,
# pristine.pc for pkg-config and the find_package(pristine) files (the same
# files as CMake's install; templates in cmake/). `make uninstall` removes them.
PREFIX ?= /usr/local
bindir = $(PREFIX)/bin
includedir = $(PREFIX)/include
pkgconfigdir = $(PREFIX)/lib/pkgconfig
cmakedir = $(PREFIX)/lib/cmake/pristine
PR_VERSION := $(shell sed -n 's/^\#define PRISTINE_VERSION "\(.*\)"$$/\1/p' pristine.h)
SUBST = sed -e 's|@PC_PREFIX@|$(abspath $(PREFIX))|' -e 's|@PRISTINE_VERSION@|$(PR_VERSION)|' \
	-e 's|@PRISTINE_VERSION_MAJOR@|$(word 1,$(subst ., ,$(PR_VERSION)))|' \
	-e 's|@PRISTINE_VERSION_MINOR@|$(word 2,$(subst ., ,$(PR_VERSION)))|'
# `CLI=` leaves the command out (tests/consumer/run.sh's DESTDIR check).
CLI = cli

install: $(CLI)
	@mkdir -p build/install
	$(SUBST) cmake/pristine.pc.in >build/install/pristine.pc
	$(SUBST) cmake/pristineConfigVersion.cmake.in >build/install/pristineConfigVersion.cmake
	install -d $(DESTDIR)$(includedir) $(DESTDIR)$(pkgconfigdir) $(DESTDIR)$(cmakedir)
	install -m 644 pristine.h $(DESTDIR)$(includedir)/pristine.h
	install -m 644 build/install/pristine.pc $(DESTDIR)$(pkgconfigdir)/pristine.pc
	install -m 644 cmake/pristineConfig.cmake cmake/pristineDeps.cmake \
	    build/install/pristineConfigVersion.cmake $(DESTDIR)$(cmakedir)
	$(if $(CLI),install -d $(DESTDIR)$(bindir))
	$(if $(CLI),install -m 755 build/pristine $(DESTDIR)$(bindir)/pristine)

uninstall:
	rm -f $(DESTDIR)$(includedir)/pristine.h $(DESTDIR)$(pkgconfigdir)/pristine.pc \
	    $(DESTDIR)$(bindir)/pristine $(DESTDIR)$(cmakedir)/pristineConfig.cmake \
	    $(DESTDIR)$(cmakedir)/pristineDeps.cmake $(DESTDIR)$(cmakedir)/pristineConfigVersion.cmake
	rmdir $(DESTDIR)$(cmakedir) 2>/dev/null || true

# The Durable Streams reference server on 127.0.0.1:$(PORT) in the foreground
# until Ctrl-C (tools/ds-server; installs it into build/ds first when missing).
PORT ?= 4437
ds-server:
	@tools/ds-server $(PORT)

clean:
	rm -rf build
