#!/usr/bin/env bash
# tools/setup.sh - install the Debian packages the build, tests, cross tests and
# benchmarks need, if any is missing. `make test`, `make demo` and .ci/run call
# it; it does nothing (quickly) when everything is there. As root it installs;
# otherwise it uses sudo when available, else prints the apt-get line and fails.
#   tools/setup.sh          everything
#   tools/setup.sh --demo   a C compiler and BearSSL (make demo)
#   tools/setup.sh --ds     node, npm and the Durable Streams reference server (tools/ds-server)
set -euo pipefail
cd "$(dirname "$0")/.."

# The cross C libraries are only "recommended" by the cross compilers; name them.
PACKAGES="build-essential clang python3 pkg-config libbearssl-dev libboost-context-dev qemu-user
  gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross
  libc6-dev-riscv64-cross libc6-dev-armhf-cross libnspr4-dev valgrind libclang-rt-14-dev nodejs openssl ca-certificates nginx-light curl wrk
  cmake libuv1-dev"

# `setup.sh --demo`: only what `make demo` needs (a C compiler and BearSSL).
if [ "${1:-}" = --demo ]; then
    PACKAGES="gcc libc6-dev make libbearssl-dev"
elif [ "${1:-}" = --ds ]; then
    PACKAGES=""
fi

missing=""
for p in $PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ "${1:-}" != --ds ] || command -v node >/dev/null 2>&1 || missing="$missing nodejs"
# npm ships inside some nodejs builds (NodeSource); Debian's nodejs needs the npm package.
# --ds needs it only to install the server into build/ds.
case ${1:-} in
--demo) ;;
--ds) [ -f build/ds/node_modules/@durable-streams/server/package.json ] || command -v npm >/dev/null 2>&1 ||
          missing="$missing npm" ;;
*) command -v npm >/dev/null 2>&1 || missing="$missing npm" ;;
esac
# The Durable Streams reference server (npm) for the ds suite, into build/ds.
ds_server() {
    [ "${1:-}" = --demo ] && return 0
    [ -f build/ds/node_modules/@durable-streams/server/package.json ] && return 0
    command -v npm >/dev/null 2>&1 || return 0 # after the apt step below
    echo "setup: installing @durable-streams/server 0.3.7 into build/ds (npm)"
    mkdir -p build/ds
    npm install --silent --no-audit --no-fund --prefix build/ds @durable-streams/server@0.3.7 >build/ds/npm.log 2>&1 ||
        { echo "setup: npm install failed (see build/ds/npm.log)"; return 1; }
}
if [ -z "$missing" ]; then
    ds_server "${1:-}"
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo=sudo
else
    echo "setup: missing packages:$missing"
    echo "setup: run as root: apt-get install -y$missing"
    exit 1
fi
echo "setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
ds_server "${1:-}"
