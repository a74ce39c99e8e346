#!/usr/bin/env bash
# tests/consumer/run.sh - build and run the consumer program (tests/consumer)
# against pristine each way a project can take it, in build/consumer:
#   1. make install PREFIX=build/consumer/prefix, then cc with pkg-config
#   2. CMake add_subdirectory of the repository
#   3. CMake FetchContent of the repository (a tarball of its working tree)
#   4. CMake find_package(pristine) from the prefix of step 1
#   5. CMake's own install (cmake --install) into a second prefix, then
#      find_package from there, with PRISTINE_NO_TLS
# .ci/run runs it (step "consumers"). Needs cc, make, pkg-config, cmake, BearSSL.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/build/consumer
rm -rf "$out"
mkdir -p "$out"
cc=${CC:-cc}

run() {  # run NAME PROGRAM: run it and check its line
    local line
    line=$("$2")
    echo "$1: $line"
    case $line in "pristine "*", url ok, task 49") ;; *) echo "$1: unexpected output"; return 1 ;; esac
}
cmake_build() {  # cmake_build NAME CMAKE-ARGS...: configure, build and run tests/consumer
    local name=$1
    shift
    cmake -S tests/consumer -B "$out/$name" -DCMAKE_C_COMPILER="$cc" "$@" >"$out/$name.log" 2>&1 &&
        cmake --build "$out/$name" >>"$out/$name.log" 2>&1 ||
        { cat "$out/$name.log"; echo "$name: the build failed"; return 1; }
    run "$name" "$out/$name/consumer"
}

# 1. make install + pkg-config
make -s --no-print-directory install PREFIX="$out/prefix" >"$out/install.log" 2>&1 ||
    { cat "$out/install.log"; echo "install: make install failed"; exit 1; }
for f in include/pristine.h lib/pkgconfig/pristine.pc lib/cmake/pristine/pristineConfig.cmake \
         lib/cmake/pristine/pristineConfigVersion.cmake; do
    [ -f "$out/prefix/$f" ] || { echo "install: $f is missing"; exit 1; }
done
if [ -f tools/pristine.c ]; then
    [ -x "$out/prefix/bin/pristine" ] || { echo "install: bin/pristine is missing"; exit 1; }
fi
export PKG_CONFIG_PATH=$out/prefix/lib/pkgconfig
[ "$(pkg-config --modversion pristine)" = "$(sed -n 's/^#define PRISTINE_VERSION "\(.*\)"$/\1/p' pristine.h)" ] ||
    { echo "pkg-config: wrong version $(pkg-config --modversion pristine)"; exit 1; }
# shellcheck disable=SC2046 # the flags are words
$cc -std=c99 -Wall -Wextra -Wpedantic -Werror -o "$out/pkgconfig" tests/consumer/main.c tests/consumer/impl.c \
    $(pkg-config --cflags --libs pristine)
run pkg-config "$out/pkgconfig"
unset PKG_CONFIG_PATH

# 2. add_subdirectory
cmake_build subdirectory -DMODE=subdirectory -DPRISTINE_SOURCE="$root"

# 3. FetchContent, from a tarball of the working tree (as a release archive
#    would be; a project of yours would give GIT_REPOSITORY and GIT_TAG)
tar -czf "$out/pristine-src.tar.gz" --exclude=./build --exclude=./.git -C "$root" .
cmake_build fetchcontent -DMODE=fetchcontent -DPRISTINE_SOURCE="$out/pristine-src.tar.gz"

# 4. find_package after make install
cmake_build package -DMODE=package -DCMAKE_PREFIX_PATH="$out/prefix"

# ... and not when a newer minor version is asked for (before 1.0 a minor one may break)
if cmake -S tests/consumer -B "$out/package-0.99" -DMODE=package -DWANT=0.99 -DCMAKE_PREFIX_PATH="$out/prefix" \
    >"$out/package-0.99.log" 2>&1; then
    echo "package: find_package(pristine 0.99) accepted this version"; exit 1
fi
echo "package-0.99: refused, as it should be"

# 5. CMake's install of the repository, then find_package with PRISTINE_NO_TLS
cmake -S . -B "$out/self" -DCMAKE_C_COMPILER="$cc" -DCMAKE_INSTALL_PREFIX="$out/cmake-prefix" \
    >"$out/self.log" 2>&1 && cmake --build "$out/self" >>"$out/self.log" 2>&1 &&
    cmake --install "$out/self" >>"$out/self.log" 2>&1 ||
    { cat "$out/self.log"; echo "cmake-install: failed"; exit 1; }
cmake_build package-notls -DMODE=package -DCMAKE_PREFIX_PATH="$out/cmake-prefix" -DPRISTINE_NO_TLS=ON
grep -q "tls no" <("$out/package-notls/consumer") || { echo "package-notls: TLS is still on"; exit 1; }
PKG_CONFIG_PATH=$out/cmake-prefix/lib/pkgconfig pkg-config --cflags pristine | grep -q -- "-I$out/cmake-prefix/lib/pkgconfig/../../include" ||
    { echo "cmake-install: pristine.pc does not point at its prefix"; exit 1; }
echo "consumers ok: pkg-config, add_subdirectory, FetchContent, find_package (make install, cmake --install)"
