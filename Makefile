# pristine.h - developer entry points. `make test` is the README's test command.
# `make test` first runs tools/setup.sh, which installs missing Debian packages
# (as root) and is quick when nothing is missing; `make demo` runs it with
# --demo, which installs only a compiler and BearSSL.
.PHONY: all setup test test-san test-poll test-clang test-cross check amalg bench demo fuzz fuzz-smoke failtable clean

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
	@if [ -f tests/cross.sh ]; then bash tests/cross.sh; \
	else echo "test-cross: tests/cross.sh is not written yet; nothing to run"; fi

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
# fuzz-smoke runs each for FUZZ_SECONDS (default 60) and prints its exec count.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS = -std=c11 -g -O1 -DPRISTINE_NO_TLS -DPRISTINE_TESTING -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all
fuzz: setup
	@mkdir -p build/fuzz
	@for f in tests/fuzz_*.c; do n=$${f#tests/fuzz_}; n=$${n%.c}; \
	    clang $(FUZZ_FLAGS) $$f -o build/fuzz/$$n -lpthread || exit 1; echo "built build/fuzz/$$n"; done

fuzz-smoke: fuzz
	@for f in tests/fuzz_*.c; do n=$${f#tests/fuzz_}; n=$${n%.c}; mkdir -p build/fuzz/corpus_$$n; \
	    build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build/fuzz/corpus_$$n \
	        >build/fuzz/$$n.log 2>&1 || { tail -n 40 build/fuzz/$$n.log; exit 1; }; \
	    echo "fuzz $$n: $$(sed -n 's/^stat::number_of_executed_units: *//p' build/fuzz/$$n.log) execs in $(FUZZ_SECONDS) s"; done

# The main demo: a live event stream read in a while loop across a dropped
# connection (examples/stream.c, with the test server embedded).
demo:
	@bash tools/setup.sh --demo
	@mkdir -p build
	$(CC) -std=c99 -O2 examples/stream.c -o build/stream -lbearssl -lpthread
	build/stream

# What each call returns, and when, against servers that say no (tools/failtable.c).
failtable: setup
	@mkdir -p build
	@sh tests/fixtures/tls_mkcerts.sh build/tls-fixtures
	$(CC) -std=c99 -O1 -I. tools/failtable.c -o build/failtable -lbearssl -lpthread
	build/failtable

# The command-line client (tools/pristine.c): build/pristine. `pristine --help`
# is its documentation; tools/README.md has examples.
.PHONY: cli
cli:
	@mkdir -p build
	$(CC) -std=c99 -Wall -Wextra -Wpedantic -Werror -O2 -I. tools/pristine.c -o build/pristine -lbearssl -lpthread

clean:
	rm -rf build
