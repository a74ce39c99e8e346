#!/usr/bin/env bash
# examples/run.sh - build every examples/NAME.c, run it, check its output.
#
#   bash examples/run.sh [NAME...]   all examples, or the ones named
#   bash examples/run.sh --show NAME build and run one with its output on
#                                    the terminal (make demo: --show sse)
#
# Each example's line 1 is "// build: <command>" (run from the repository
# root, it writes build/ex_NAME: the -o argument) and line 2 is
# "// run: <arguments>", where $TS stands for the base URL of the project's
# test server (build/testserver, built and started here) and $DS for the
# reference Durable Streams server's (node tools/ds-server.mjs build/ds,
# started only when build/ds is installed; examples that need it are
# skipped otherwise). Arguments are split like a shell's words (quotes
# group, nothing else is interpreted). The program's stdout must equal
# examples/NAME.expected when that file exists, and it must exit 0; its
# stderr (timings, offsets, request ids) is only shown on failure. A build
# line that succeeds without making its program (one that checks for a
# library first, say) skips the example, its last output line the reason.
# Each run
# is bounded by EXAMPLE_TIMEOUT seconds (60). Both servers stop when this
# script ends. Prints one line per example and
#   examples: N passed, N failed, N skipped
# and exits non-zero when one failed. Logs: build/ex/NAME.{build,out,err}.
set -u
cd "$(dirname "$0")/.."

OUT=build/ex
TIMEOUT=${EXAMPLE_TIMEOUT:-60}
BUILD_JOBS=${BUILD_JOBS:-2}
mkdir -p "$OUT"
TS_PID='' DS_PID='' TS='' DS='' DS_WHY=''

cleanup() {
    [ -n "$TS_PID" ] && kill "$TS_PID" 2>/dev/null
    [ -n "$DS_PID" ] && kill "$DS_PID" 2>/dev/null
    exec 9>&- 2>/dev/null
    rm -f "$OUT/ds.in"
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_line FILE PATTERN: up to 20 s for a line matching PATTERN in FILE.
wait_line() {
    local i
    for i in $(seq 1 400); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

start_testserver() {
    [ -n "$TS" ] && return 0
    if ! ${CC:-cc} -std=c99 -O2 -DPR_TESTSERVER_MAIN tools/testserver.c -o build/testserver -lbearssl -lpthread \
        >"$OUT/testserver.build" 2>&1; then
        echo "examples: build/testserver did not build:"
        tail -n 20 "$OUT/testserver.build"
        return 1
    fi
    build/testserver --lifetime 900000 >"$OUT/ts.out" 2>"$OUT/ts.err" 9>&- &
    TS_PID=$!
    wait_line "$OUT/ts.out" '^[0-9]' || { echo "examples: build/testserver printed no port"; return 1; }
    TS="http://127.0.0.1:$(head -n 1 "$OUT/ts.out")"
}

# The reference server stops when its stdin closes: fd 9 holds the FIFO open.
start_ds() {
    [ -n "$DS" ] || [ -n "$DS_WHY" ] && return 0
    if [ ! -e build/ds/node_modules/@durable-streams/server/package.json ]; then
        DS_WHY="the reference Durable Streams server is not installed in build/ds (tools/setup.sh)"
        return 0
    fi
    command -v node >/dev/null || { DS_WHY="node is not installed"; return 0; }
    rm -f "$OUT/ds.in"
    mkfifo "$OUT/ds.in" && exec 9<>"$OUT/ds.in"
    node tools/ds-server.mjs --stdin build/ds 0 500 900000 <"$OUT/ds.in" >"$OUT/ds.out" 2>"$OUT/ds.err" 9>&- &
    DS_PID=$!
    if wait_line "$OUT/ds.out" '^listening http'; then
        DS=$(sed -n 's/^listening \(http[^ ]*\).*/\1/p' "$OUT/ds.out" | head -n 1)
        DS=${DS%/}
    else
        DS_WHY="the reference Durable Streams server did not start ($(head -c 200 "$OUT/ds.err"))"
    fi
}

build_line() { sed -n '1s|^// build: ||p' "examples/$1.c"; }
run_line() { sed -n '2{/^\/\/ run:/{s|^// run:[ ]*||;p;}}' "examples/$1.c"; }
has_run_line() { sed -n '2p' "examples/$1.c" | grep -q '^// run:'; }
program() { build_line "$1" | sed -n 's|.*-o \([^ ]*\).*|\1|p'; }

# build NAME: its build line, into build/ex/NAME.build; the exit status.
build() {
    local cmd
    cmd=$(build_line "$1")
    [ -n "$cmd" ] || { echo "examples/$1.c: line 1 must be '// build: <command>'" >"$OUT/$1.build"; return 1; }
    [ -n "$(program "$1")" ] || { echo "examples/$1.c: no '-o <program>' in its build line" >"$OUT/$1.build"; return 1; }
    rm -f "$(program "$1")"
    { echo "+ $cmd"; sh -c "$cmd"; } >"$OUT/$1.build" 2>&1
}

# args NAME: the run line's words, $TS and $DS substituted, NUL-separated.
args() {
    local line
    line=$(run_line "$1")
    line=${line//\$\{TS\}/$TS}
    line=${line//\$TS/$TS}
    line=${line//\$\{DS\}/$DS}
    line=${line//\$DS/$DS}
    [ -n "${line//[[:space:]]/}" ] || return 0
    printf '%s\n' "$line" | xargs printf '%s\0'
}

needs() { run_line "$1" | grep -q "\\\$[{]*$2"; }

if [ "${1:-}" = --show ]; then
    name=${2:?usage: examples/run.sh --show NAME}
    echo "building examples/$name.c and the test server ..."
    build "$name" || { cat "$OUT/$name.build"; exit 1; }
    start_testserver || exit 1
    if needs "$name" DS; then start_ds; [ -n "$DS" ] || { echo "examples: $DS_WHY"; exit 1; }; fi
    mapfile -d '' argv < <(args "$name")
    echo "+ $(program "$name") ${argv[*]}"
    timeout "$TIMEOUT" "./$(program "$name")" "${argv[@]}" 9>&-
    exit $?
fi

if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in examples/*.c; do n=${f#examples/}; names+=("${n%.c}"); done
fi
for n in "${names[@]}"; do
    [ -f "examples/$n.c" ] || { echo "examples: no examples/$n.c"; exit 2; }
done

# Build them all, BUILD_JOBS at a time; status in build/ex/NAME.built.
for n in "${names[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$BUILD_JOBS" ]; do wait -n; done
    (build "$n"; echo $? >"$OUT/$n.built") &
done
wait
start_testserver || exit 1
for n in "${names[@]}"; do if needs "$n" DS; then start_ds; break; fi; done

passed=0 failed=0 skipped=0
for n in "${names[@]}"; do
    if [ "$(cat "$OUT/$n.built" 2>/dev/null)" != 0 ]; then
        echo "FAIL  $n: did not build"
        tail -n 30 "$OUT/$n.build" | sed 's/^/      /'
        failed=$((failed + 1))
        continue
    fi
    if [ ! -e "$(program "$n")" ]; then # a build line may skip itself (a library it needs is missing)
        echo "skip  $n: its build line made no $(program "$n") ($(tail -n 1 "$OUT/$n.build"))"
        skipped=$((skipped + 1))
        continue
    fi
    if ! has_run_line "$n"; then
        echo "ok    $n (built; no '// run:' line, not run)"
        passed=$((passed + 1))
        continue
    fi
    if needs "$n" DS && [ -z "$DS" ]; then
        echo "skip  $n: $DS_WHY"
        skipped=$((skipped + 1))
        continue
    fi
    mapfile -d '' argv < <(args "$n")
    t0=$(date +%s%N)
    timeout "$TIMEOUT" "./$(program "$n")" "${argv[@]}" >"$OUT/$n.out" 2>"$OUT/$n.err" 9>&- </dev/null
    rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    why=''
    if [ $rc -eq 124 ]; then why="timed out after $TIMEOUT s"
    elif [ $rc -ne 0 ]; then why="exit status $rc"
    elif [ -f "examples/$n.expected" ] && ! cmp -s "examples/$n.expected" "$OUT/$n.out"; then
        why="stdout differs from examples/$n.expected"
    fi
    if [ -z "$why" ]; then
        echo "ok    $n ($ms ms)"
        passed=$((passed + 1))
    else
        echo "FAIL  $n: $why"
        [ -f "examples/$n.expected" ] && diff -u "examples/$n.expected" "$OUT/$n.out" | head -n 30 | sed 's/^/      /'
        echo "      -- stderr (last lines):"
        tail -n 10 "$OUT/$n.err" | sed 's/^/      /'
        failed=$((failed + 1))
    fi
done
echo "examples: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
