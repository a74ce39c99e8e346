#!/usr/bin/env bash
# tests/cross.sh - the unit suite on foreign architectures under qemu-user
# (`make test-cross`). For each target it cross-compiles tests/all.c
# statically, without TLS (-DPRISTINE_NO_TLS: no foreign BearSSL), against the
# committed pristine.h, runs build/x/<target>/pristine_tests once per suite
# (every suite the binary lists, less the left-out ones below) and adds up the
# runners' closing lines. The last line is "N passed, N failed"; the exit
# status is 0 iff nothing failed and every target was built and run. Tests
# that skip themselves (TLS ones, libuv ones: "skip" lines) count as neither.
#
#   tests/cross.sh [target...]   targets: aarch64 riscv64 armhf armhf-arm (default: all)
#   CROSS_SUITES="^coro. ^sched." runner filters, one run each (default: "^NAME." for every
#                                 suite the binary lists, less CROSS_SKIP)
#   CROSS_VERBOSE=1              a line per suite, not only per failing suite
#   CROSS_SKIP="..."             suites left out (default: none)
#   CROSS_TIMEOUT=120            per-test timeout handed to the runner (-t), in seconds
#   CROSS_JOBS=1                 targets run at a time
#
# The cli suite runs build/x/<target>/pristine (tools/pristine.c built here the
# same way) through qemu: qemu-user does not follow execve, so the runner is
# told the program (PT_CLI_BIN) and the emulator to start it with (PT_CLI_EMU).
# Not in a -DPRISTINE_NO_TLS build at all: tls, nginx (needs nginx and TLS);
# TLS tests elsewhere and the libuv ones skip themselves.
# The ds suites use the embedded test server, not the reference server (node).
#
# qemu-user 7.x sometimes aborts a forked child of a threaded process with
# "cpu_exec: assertion failed: (cpu == current_cpu)" (a qemu bug, seen in
# signal.signal_program_exits_zero_on_ctrl_c): a suite whose log shows that
# abort is run once more, and the second run counts.
#
# Needs (Debian): gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu gcc-arm-linux-gnueabihf
# qemu-user (or qemu-user-static).
set -u
cd "$(dirname "$0")/.." || exit 2

SKIP=${CROSS_SKIP-}
TIMEOUT=${CROSS_TIMEOUT:-120}
CFLAGS="-std=c99 -Wall -Wextra -Wpedantic -Werror -DPRISTINE_TESTING -DPRISTINE_NO_TLS -O1 -g -static"

# target -> "compiler extra-flags|qemu|sysroot"
spec() {
    case "$1" in
        aarch64)   echo "aarch64-linux-gnu-gcc|qemu-aarch64|/usr/aarch64-linux-gnu" ;;
        riscv64)   echo "riscv64-linux-gnu-gcc|qemu-riscv64|/usr/riscv64-linux-gnu" ;;
        # 32-bit: -D_FILE_OFFSET_BITS=64, or readdir (the json suite's JSONTestSuite
        # walk) fails with EOVERFLOW under qemu-arm: it hands over the 64-bit host
        # directory offsets, which a 32-bit kernel would have kept to 32 bits
        armhf)     echo "arm-linux-gnueabihf-gcc -D_FILE_OFFSET_BITS=64|qemu-arm|/usr/arm-linux-gnueabihf" ;;        # Thumb-2, Debian's default
        armhf-arm) echo "arm-linux-gnueabihf-gcc -marm -D_FILE_OFFSET_BITS=64|qemu-arm|/usr/arm-linux-gnueabihf" ;; # ARM state
        *) return 1 ;;
    esac
}

TARGETS=${*:-"aarch64 riscv64 armhf armhf-arm"}
[ -f pristine.h ] || { echo "cross.sh: pristine.h is missing: run python3 amalgamate.py"; echo "0 passed, 1 failed"; exit 1; }

# CROSS_JOBS=N: N targets at a time, each in a child run of this script (the
# tests mostly wait on sockets and timers, so the wall time falls with N).
if [ "${CROSS_JOBS:-1}" -gt 1 ] && [ -z "${CROSS_CHILD:-}" ]; then
    mkdir -p build/x
    # shellcheck disable=SC2086
    printf '%s\n' $TARGETS | xargs -P "$CROSS_JOBS" -I{} sh -c 'CROSS_CHILD=1 bash tests/cross.sh {} >build/x/{}.out 2>&1'
    total_pass=0
    total_fail=0
    for t in $TARGETS; do
        sed '$d' "build/x/$t.out"
        if [[ $(tail -n 1 "build/x/$t.out") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
            total_pass=$((total_pass + BASH_REMATCH[1]))
            total_fail=$((total_fail + BASH_REMATCH[2]))
        else
            echo "FAIL $t: its run ended without its closing line"
            total_fail=$((total_fail + 1))
        fi
    done
    echo "$total_pass passed, $total_fail failed"
    [ "$total_fail" = 0 ]
    exit
fi

total_pass=0
total_fail=0
summary=""
for t in $TARGETS; do
    if ! s=$(spec "$t"); then
        echo "cross.sh: unknown target '$t' (aarch64 riscv64 armhf armhf-arm)"
        total_fail=$((total_fail + 1))
        continue
    fi
    cc=${s%%|*}; rest=${s#*|}; qemu=${rest%%|*}; sysroot=${rest#*|}
    ccbin=${cc%% *}
    qbin=$qemu
    command -v "$qbin" >/dev/null 2>&1 || qbin="$qemu-static"
    if ! command -v "$ccbin" >/dev/null 2>&1 || ! command -v "$qbin" >/dev/null 2>&1; then
        echo "FAIL $t: needs $ccbin and $qemu (apt-get install gcc-${ccbin%-gcc} qemu-user)"
        summary="$summary$t: not run (missing tools)\n"
        total_fail=$((total_fail + 1))
        continue
    fi
    dir=build/x/$t
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    if ! $cc $CFLAGS tests/all.c -o "$dir/pristine_tests" -pthread >"$dir/build.log" 2>&1; then
        cat "$dir/build.log"
        echo "FAIL $t: build failed: $cc $CFLAGS tests/all.c"
        summary="$summary$t: build failed\n"
        total_fail=$((total_fail + 1))
        continue
    fi
    # shellcheck disable=SC2086
    if ! $cc ${CFLAGS/-DPRISTINE_TESTING /} -I. tools/pristine.c -o "$dir/pristine" -pthread >"$dir/build-cli.log" 2>&1; then
        cat "$dir/build-cli.log"
        echo "FAIL $t: build failed: $cc tools/pristine.c"
        summary="$summary$t: build failed\n"
        total_fail=$((total_fail + 1))
        continue
    fi
    export PT_CLI_BIN=$dir/pristine
    PT_CLI_EMU=$(command -v "$qbin")
    export PT_CLI_EMU
    pass=0
    fail=0
    skipped=0
    t0=$(date +%s)
    if [ -n "${CROSS_SUITES:-}" ]; then
        suites=$CROSS_SUITES
    else
        suites=""
        for name in $(QEMU_LD_PREFIX=$sysroot "$qbin" "$dir/pristine_tests" -l | sed 's/\..*//' | uniq); do
            case " $SKIP " in *" $name "*) echo "[$t] left out: $name" ;; *) suites="$suites ^$name." ;; esac
        done
    fi
    for suite in $suites; do
        name=${suite#^}; name=${name%.}
        log=$dir/run-$name.log
        for try in 1 2; do
            QEMU_LD_PREFIX=$sysroot "$qbin" "$dir/pristine_tests" -q -t "$TIMEOUT" "$suite" >"$log" 2>&1
            rc=$?
            grep -q 'cpu_exec: assertion failed' "$log" || break
            [ "$try" = 1 ] && echo "[$t] $suite: qemu aborted a forked child (its cpu_exec assertion); running the suite again"
        done
        last=$(tail -n 1 "$log")
        sed '$d' "$log" | grep -v '^skip ' | sed "s/^/[$t] /"
        if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
            p=${BASH_REMATCH[1]}
            f=${BASH_REMATCH[2]}
            k=${BASH_REMATCH[4]:-0}
            if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
        else
            echo "[$t] FAIL $suite: the runner ended without its closing line (exit status $rc): $last"
            p=0
            f=1
            k=0
        fi
        if [ -n "${CROSS_VERBOSE:-}" ] || [ "$f" != 0 ]; then echo "$t $name: $p passed, $f failed, $k skipped"; fi
        pass=$((pass + p))
        fail=$((fail + f))
        skipped=$((skipped + k))
    done
    summary="$summary$t: $pass passed, $fail failed, $skipped skipped ($(( $(date +%s) - t0 )) s)\n"
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
done
printf "%b" "$summary"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
