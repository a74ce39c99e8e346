#!/usr/bin/env bash
# tests/run.sh - build the compile-only checks and the test runner against the
# committed pristine.h, then run the runner; its closing "N passed, N failed"
# line is this script's last line, and its exit status is ours.
#
#   tests/run.sh [runner args]     e.g. tests/run.sh -q sched.
#   CC=clang      compiler (default cc; CXX defaults to clang++ or c++ to match)
#   SAN=1         AddressSanitizer + UndefinedBehaviorSanitizer
#   POLLER=poll   force a poller (poll, epoll or kqueue)
#   VALGRIND=1    run the runner under valgrind
set -u
cd "$(dirname "$0")/.."
CC=${CC:-cc}
case "$CC" in *clang*) CXX=${CXX:-clang++} ;; *) CXX=${CXX:-c++} ;; esac
B=build
mkdir -p "$B"

STRICT="-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror"
CFLAGS="$STRICT -DPRISTINE_TESTING -O1 -g"
if [ "${SAN:-0}" = 1 ]; then
    CFLAGS="$CFLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
fi
case "${POLLER:-}" in
    "") ;;
    poll|epoll|kqueue) CFLAGS="$CFLAGS -DPRISTINE_POLL_$(echo "$POLLER" | tr a-z A-Z)" ;;
    *) echo "run.sh: POLLER must be poll, epoll or kqueue, not '$POLLER'"; exit 2 ;;
esac

# Compile checks build like a user's release: optimised (more warnings), TLS on.
CHECK="$STRICT -O2"
CXXCHECK="-std=c++11 -Wall -Wextra -Wpedantic -Wshadow -Werror -O2"
TLSLIB=-lbearssl
if ! echo '#include <bearssl.h>' | $CC -E -x c - >/dev/null 2>&1; then
    echo "run.sh: <bearssl.h> not found: install libbearssl-dev (.ci/run does)"
    exit 1
fi
NSPR=""
if pkg-config --exists nspr 2>/dev/null; then
    NSPR="-DPT_HAVE_NSPR $(pkg-config --cflags-only-I nspr | sed 's/-I/-isystem /g')"
elif [ -f /usr/include/nspr/nspr.h ]; then
    NSPR="-DPT_HAVE_NSPR -isystem /usr/include/nspr"
fi

# libuv (Debian libuv1-dev) is a test-only dependency: the hostloop suite drives the scheduler from a
# uv loop when <uv.h> is there, and skips those tests when it is not
UV=""
UVLIB=""
if echo '#include <uv.h>' | $CC -E -x c - >/dev/null 2>&1; then
    UV="-DPT_HAVE_LIBUV"
    UVLIB="-luv"
fi

step() {  # step NAME COMMAND...: run a build step; on failure show why and stop
    local name=$1
    shift
    if ! "$@" >"$B/$name.log" 2>&1; then
        cat "$B/$name.log"
        echo "run.sh: $name failed: $*"
        exit 1
    fi
}

[ -f pristine.h ] || { echo "run.sh: pristine.h is missing: run python3 amalgamate.py"; exit 1; }
step compile_twice $CC $CHECK -c tests/compile_twice.c -o $B/compile_twice.o
step compile_cpp $CXX $CXXCHECK tests/compile_cpp.cpp -o $B/compile_cpp -pthread $TLSLIB
step compile_cpp_run $B/compile_cpp
step compile_cpp_link $CXX $CXXCHECK -DPT_LINK_ONLY tests/compile_cpp.cpp $B/compile_twice.o \
    -o $B/compile_cpp_link -pthread $TLSLIB
step compile_cpp_link_run $B/compile_cpp_link
step compile_static $CC $CHECK -DNDEBUG tests/compile_static.c tests/compile_static2.c -o $B/compile_static \
    -pthread $TLSLIB
step compile_static_run $B/compile_static
step compile_notls $CC $CHECK tests/compile_notls.c -o $B/compile_notls -pthread
step compile_nothreads $CC $CHECK tests/compile_nothreads.c -o $B/compile_nothreads
step compile_nothreads_run $B/compile_nothreads
step compile_clash $CC $CHECK $NSPR -c tests/compile_clash.c -o $B/compile_clash.o
step compile_kqueue $CC $CHECK -Itests/shim -c tests/compile_kqueue.c -o $B/compile_kqueue.o
# the Durable Streams conformance adapter (tools/ds-adapter runs it; the ds suite drives it)
step ds_adapter $CC $CHECK -O2 tools/ds_adapter.c -o build/ds-adapter -pthread $TLSLIB
# make failtable's program keeps building
[ -n "$TLSLIB" ] && step failtable $CC $CHECK -I. -c tools/failtable.c -o $B/failtable.o
echo "compile checks ok: C++11 (+ C linkage), twice, static x2, no-TLS, no-threads, clash (prctl${NSPR:+, nspr}), kqueue (shim), ds-adapter, failtable with $CC"

# the command-line client, with the runner's flags (SAN=1 covers it); the cli suite runs it
step cli $CC $CFLAGS -I. tools/pristine.c -o $B/pristine -pthread $TLSLIB
step build $CC $CFLAGS $UV tests/all.c -o $B/pristine_tests -pthread $TLSLIB $UVLIB
if [ "${VALGRIND:-0}" = 1 ]; then
    exec valgrind -q --child-silent-after-fork=yes --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --child-silent-after-fork=yes $B/pristine_tests "$@"
fi
exec $B/pristine_tests "$@"
