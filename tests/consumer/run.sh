#!/usr/bin/env bash
# tests/consumer/run.sh - build and run the consumer program (tests/consumer)
# against pristine each way a project can take it, in build/consumer:
#   1. make install PREFIX=build/consumer/prefix, then cc with pkg-config
#   2. CMake add_subdirectory of the repository
#   3. CMake FetchContent of the repository (a tarball of its working tree)
#   4. CMake find_package(pristine) from the prefix of step 1
#   5. CMake's own install (cmake --install) into a second prefix, then
#      find_package from there, with PRISTINE_NO_TLS
# and checks DESTDIR, that both installs put the same files and make uninstall.
# .ci/run runs it (step "consumers"). Needs cc, make, pkg-config, cmake, BearSSL.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=$root/build/consumer
rm -rf "$out"
mkdir -p "$out"
cc=${CC:-cc}
version=$(sed -n 's/^#define PRISTINE_VERSION "\(.*\)"$/\1/p' pristine.h)
want=$(echo "$version" | cut -d. -f1,2) # what a project would ask find_package for

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
[ "$(pkg-config --modversion pristine)" = "$version" ] ||
    { echo "pkg-config: wrong version $(pkg-config --modversion pristine)"; exit 1; }
# shellcheck disable=SC2046 # the flags are words
$cc -std=c99 -Wall -Wextra -Wpedantic -Werror -o "$out/pkgconfig" tests/consumer/main.c tests/consumer/impl.c \
    $(pkg-config --cflags --libs pristine)
run pkg-config "$out/pkgconfig"
unset PKG_CONFIG_PATH
# DESTDIR stages the files; pristine.pc names the final prefix (CLI= skips the CLI build)
make -s --no-print-directory install CLI= PREFIX=/opt/pristine DESTDIR="$out/stage" >>"$out/install.log" 2>&1 &&
    [ -f "$out/stage/opt/pristine/include/pristine.h" ] &&
    grep -qx 'prefix=/opt/pristine' "$out/stage/opt/pristine/lib/pkgconfig/pristine.pc" ||
    { cat "$out/install.log"; echo "install: DESTDIR=$out/stage PREFIX=/opt/pristine went wrong"; exit 1; }

# 2. add_subdirectory
cmake_build subdirectory -DMODE=subdirectory -DPRISTINE_SOURCE="$root"

# 3. FetchContent, from a tarball of the working tree (as a release archive
#    would be; a project of yours would give GIT_REPOSITORY and GIT_TAG)
tar -czf "$out/pristine-src.tar.gz" --exclude=./build --exclude=./.git -C "$root" .
cmake_build fetchcontent -DMODE=fetchcontent -DPRISTINE_SOURCE="$out/pristine-src.tar.gz"

found_in() {  # found_in NAME PREFIX: find_package took the files of PREFIX (not another install)
    local dir
    dir=$(sed -n 's/^pristine_DIR:PATH=//p' "$out/$1/CMakeCache.txt")
    [ "$dir" = "$2/lib/cmake/pristine" ] || { echo "$1: find_package used $dir, not $2"; return 1; }
}
refused() {  # refused WANT: find_package(pristine WANT) turns the installed version down
    if cmake -S tests/consumer -B "$out/package-$1" -DMODE=package -DWANT="$1" -DCMAKE_PREFIX_PATH="$out/prefix" \
        >"$out/package-$1.log" 2>&1; then
        echo "package: find_package(pristine $1) accepted version $version"; return 1
    fi
    tr -s ' \n' '  ' <"$out/package-$1.log" |
        grep -q "compatible with requested version \"$1\".* considered but not accepted: .*, version: $version " ||
        { cat "$out/package-$1.log"; echo "package-$1: failed, but not on the version"; return 1; }
    echo "package-$1: refused, as it should be"
}

# 4. find_package after make install
cmake_build package -DMODE=package -DWANT="$want" -DCMAKE_PREFIX_PATH="$out/prefix"
found_in package "$out/prefix"

# ... and not when a newer version is asked for, nor (before 1.0) an older minor one
refused 0.99
refused 0.0

# 5. CMake's install of the repository, then find_package with PRISTINE_NO_TLS
cmake -S . -B "$out/self" -DCMAKE_C_COMPILER="$cc" -DCMAKE_INSTALL_PREFIX="$out/cmake-prefix" \
    >"$out/self.log" 2>&1 && cmake --build "$out/self" >>"$out/self.log" 2>&1 &&
    cmake --install "$out/self" >>"$out/self.log" 2>&1 ||
    { cat "$out/self.log"; echo "cmake-install: failed"; exit 1; }
cmake_build package-notls -DMODE=package -DWANT="$want" -DCMAKE_PREFIX_PATH="$out/cmake-prefix" -DPRISTINE_NO_TLS=ON
found_in package-notls "$out/cmake-prefix"
grep -q "tls no" <("$out/package-notls/consumer") || { echo "package-notls: TLS is still on"; exit 1; }
PKG_CONFIG_PATH=$out/cmake-prefix/lib/pkgconfig pkg-config --cflags pristine | grep -q -- "-I$out/cmake-prefix/lib/pkgconfig/../../include" ||
    { echo "cmake-install: pristine.pc does not point at its prefix"; exit 1; }
(cd "$out/prefix" && find . -type f | sort) >"$out/files-make"
(cd "$out/cmake-prefix" && find . -type f | sort) >"$out/files-cmake"
diff -u "$out/files-make" "$out/files-cmake" ||
    { echo "install: make install and cmake --install put different files"; exit 1; }

# make uninstall removes every file make install put
make -s --no-print-directory uninstall PREFIX="$out/prefix" >>"$out/install.log" 2>&1 ||
    { cat "$out/install.log"; echo "uninstall: make uninstall failed"; exit 1; }
[ -z "$(find "$out/prefix" -type f)" ] || { find "$out/prefix" -type f; echo "uninstall: files are left"; exit 1; }
echo "consumers ok: pkg-config, add_subdirectory, FetchContent, find_package (make install, cmake --install), DESTDIR, uninstall"
