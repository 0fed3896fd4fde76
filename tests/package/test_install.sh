#!/usr/bin/env bash
# tests/package/test_install.sh BUILD_DIR: the installed package, as a C
# program sees it (CTest install_package).
#
# 1. `cmake --install BUILD_DIR` into a fresh prefix, which is then MOVED:
#    nothing installed may name the prefix it was installed to, the build or
#    the source tree (luaganConfig.cmake, luaganTargets*.cmake and luagan.pc
#    are relative to where they lie; no file names like .so.0.1.0 in them).
# 2. Every installed header compiles on its own.
# 3. A C program (tests/package/consumer) builds against the moved prefix with
#    find_package(luagan) + luagan::runtime, and with pkg-config + cc, and
#    runs: matmul, sum and backward on the shared runtime.
# Skipped (77) for a sanitizer build, whose runtime needs the sanitizer's
# own runtime loaded first.
set -euo pipefail

build=${1:?usage: test_install.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
fail() { echo "test_install: FAILED: $*" >&2; exit 1; }
step() { printf '\n== test_install: %s\n' "$*"; }

if grep -q '^LUAGAN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "test_install: skipped: a sanitizer build ($build)"
  exit 77
fi
for tool in cmake cc pkg-config; do
  command -v "$tool" >/dev/null || fail "'$tool' not found (Debian 12: apt-get install cmake gcc pkg-config)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/luagan-pkg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

step "cmake --install into $tmp/first, then moved to $tmp/moved"
cmake --install "$build" --prefix "$tmp/first" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install"; }
mv "$tmp/first" "$tmp/moved"
prefix=$tmp/moved
libdir=$(cd "$prefix" && dirname "$(find . -name luagan.pc -path '*/pkgconfig/*' | head -n 1)")
[ "$libdir" != . ] || fail "no pkgconfig/luagan.pc installed"
libdir=$prefix/${libdir#./}
libdir=${libdir%/pkgconfig}
cmakedir=$libdir/cmake/luagan
for f in luaganConfig.cmake luaganConfigVersion.cmake luaganTargets.cmake; do
  [ -f "$cmakedir/$f" ] || fail "not installed: $cmakedir/$f"
done
# (luaganTargets-release.cmake, which CMake generates, names the real files)
for f in "$cmakedir"/*.cmake "$libdir/pkgconfig/luagan.pc"; do
  for bad in "$tmp/first" "$build" "$src/" '\.so\.[0-9]+\.[0-9]+\.[0-9]+'; do
    case "$f:$bad" in */luaganTargets-*.cmake:*.so*) continue ;; esac
    if grep -Eq -- "$bad" "$f"; then
      grep -En -- "$bad" "$f" | head -n 3 >&2
      fail "$f names '$bad': the installed package must not"
    fi
  done
done

step "every installed header compiles on its own"
inc=$(cd "$prefix" && find . -type d -path '*/include/luagan' | head -n 1)
[ -n "$inc" ] || fail "no include/luagan installed"
inc=$prefix/${inc#./}
lua_inc=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --variable=lua_includedir luagan)
n=0
for h in "$inc"/*.h; do
  printf '#include <%s>\n' "$(basename "$h")" >"$tmp/h.c"
  cc -std=gnu11 -fsyntax-only -Wall -Werror -I"$inc" -I"$lua_inc" "$tmp/h.c" \
    || fail "$(basename "$h") does not compile on its own from $inc"
  n=$((n + 1))
done
echo "$n headers"

step "consumer with find_package(luagan) + luagan::runtime"
cmake -S "$here/consumer" -B "$tmp/c-cmake" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/c.log" 2>&1 || { cat "$tmp/c.log"; fail "cmake (consumer)"; }
cmake --build "$tmp/c-cmake" >>"$tmp/c.log" 2>&1 || { cat "$tmp/c.log"; fail "build (consumer)"; }
out=$("$tmp/c-cmake/consumer") || fail "consumer (CMake): $out"
echo "$out"
ver=$(sed -n 's/^project(luagan VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ "$out" = "luagan $ver: y=12 dx=2" ] || fail "consumer (CMake) printed '$out'"
readelf -d "$tmp/c-cmake/consumer" | grep -q 'NEEDED.*libluagan_runtime\.so\.0' \
  || fail "the consumer does not link libluagan_runtime.so.0"

step "consumer with pkg-config + cc"
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion luagan)" = "$ver" ] || fail "pkg-config --modversion: $(pkg-config --modversion luagan)"
# shellcheck disable=SC2046  # pkg-config's flags are meant to split
cc -O2 -std=gnu11 -o "$tmp/consumer-pc" "$here/consumer/main.c" \
   -DLUAGAN_CONSUMER_VERSION="\"$(pkg-config --modversion luagan)\"" \
   $(pkg-config --cflags --libs luagan) || fail "cc with pkg-config"
out=$("$tmp/consumer-pc") || fail "consumer (pkg-config): $out"
echo "$out"
[ "$out" = "luagan $ver: y=12 dx=2" ] || fail "consumer (pkg-config) printed '$out'"

echo
echo "test_install: ok"
