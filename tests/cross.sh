#!/usr/bin/env bash
# tests/cross.sh - the context-switch and scheduler suites on foreign
# architectures under qemu-user (`make test-cross`). For each target it
# cross-compiles tests/all.c statically against the committed pristine.h, runs
# build/x/<target>/pristine_tests once per suite (coro, sched) and adds up the
# runners' closing lines. The last line is "N passed, N failed"; the exit
# status is 0 iff nothing failed and every target was built and run.
#
#   tests/cross.sh [target...]   targets: aarch64 riscv64 armhf armhf-arm (default: all)
#   CROSS_SUITES="coro. sched."  runner filters, one run each
#   CROSS_TIMEOUT=120            per-test timeout handed to the runner (-t), in seconds
#
# Needs (Debian): gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu gcc-arm-linux-gnueabihf
# qemu-user (or qemu-user-static).
set -u
cd "$(dirname "$0")/.." || exit 2

SUITES=${CROSS_SUITES:-"coro. sched."}
TIMEOUT=${CROSS_TIMEOUT:-120}
CFLAGS="-std=c99 -Wall -Wextra -Wpedantic -Werror -DPRISTINE_TESTING -DPRISTINE_NO_TLS -O1 -g -static"

# target -> "compiler extra-flags|qemu|sysroot"
spec() {
    case "$1" in
        aarch64)   echo "aarch64-linux-gnu-gcc|qemu-aarch64|/usr/aarch64-linux-gnu" ;;
        riscv64)   echo "riscv64-linux-gnu-gcc|qemu-riscv64|/usr/riscv64-linux-gnu" ;;
        armhf)     echo "arm-linux-gnueabihf-gcc|qemu-arm|/usr/arm-linux-gnueabihf" ;;          # Thumb-2, Debian's default
        armhf-arm) echo "arm-linux-gnueabihf-gcc -marm|qemu-arm|/usr/arm-linux-gnueabihf" ;;  # ARM state
        *) return 1 ;;
    esac
}

TARGETS=${*:-"aarch64 riscv64 armhf armhf-arm"}
[ -f pristine.h ] || { echo "cross.sh: pristine.h is missing: run python3 amalgamate.py"; echo "0 passed, 1 failed"; exit 1; }

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
    pass=0
    fail=0
    for suite in $SUITES; do
        log=$dir/run-${suite%.}.log
        QEMU_LD_PREFIX=$sysroot "$qbin" "$dir/pristine_tests" -q -t "$TIMEOUT" "$suite" >"$log" 2>&1
        rc=$?
        last=$(tail -n 1 "$log")
        sed '$d' "$log" | sed "s/^/[$t] /"
        if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
            p=${BASH_REMATCH[1]}
            f=${BASH_REMATCH[2]}
            if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
        else
            echo "[$t] FAIL $suite: the runner ended without its closing line (exit status $rc): $last"
            p=0
            f=1
        fi
        echo "$t ${suite%.}: $p passed, $f failed"
        pass=$((pass + p))
        fail=$((fail + f))
    done
    summary="$summary$t: $pass passed, $fail failed\n"
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
done
printf "%b" "$summary"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
