#!/usr/bin/env bash
# tests/rock/test_rock.sh: luagan as a LuaRocks rock, end to end (CTest label "rock").
#
#   bash tests/rock/test_rock.sh
#
# 1. Copies this checkout (tracked and untracked-but-not-ignored files, no
#    build dirs) to a fresh temp dir and runs `luarocks make` there into a
#    fresh tree, then deletes the copy: nothing may lean on the source tree.
#    The rockspec's external_dependencies dirs reach CMake (-DOPENBLAS_LIBDIR=...).
# 2. A stock lua5.4, with LUA_PATH/LUA_CPATH from `luarocks path`, loads
#    luagan from the tree and trains small models (train_small.lua).
# 3. The installed `luagan` executable reads its scripts/ and models/ from the
#    rock, while the checkout it was built from exists and after it is gone,
#    and runs the examples' tests.
# 4. The C-op example builds against the installed package twice, with CMake
#    (find_package(luagan)) and with pkg-config + cc, and its tests pass in a
#    stock lua5.4 and in the installed executable; loaded before luagan, it
#    still shares one runtime (one libluagan_runtime.so mapped).
# 5. `luarocks remove` takes it all out of the tree again.
# Takes about a minute on 2 cores (one full build).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
lr=(luarocks --lua-version 5.4)

for tool in luarocks lua5.4 cmake cc pkg-config; do
  command -v "$tool" >/dev/null || {
    echo "test_rock: '$tool' not found (Debian 12: apt-get install luarocks lua5.4 cmake gcc pkg-config)" >&2
    exit 1
  }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/luagan-rock.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tree=$tmp/tree
step() { printf '\n== test_rock: %s\n' "$*"; }
fail() { echo "test_rock: FAILED: $*" >&2; exit 1; }

step "copy the checkout to $tmp/src"
mkdir "$tmp/src"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  # what git would see: tracked files plus untracked ones that are not ignored
  git -C "$src" ls-files -z -co --exclude-standard \
    | tar -C "$src" --null -T - --ignore-failed-read -cf - 2>/dev/null \
    | tar -C "$tmp/src" -xf -
else
  tar -C "$src" --exclude='./build*' --exclude='./out' -cf - . | tar -C "$tmp/src" -xf -
fi
spec=$(cd "$tmp/src" && ls rocks/luagan-*.rockspec 2>/dev/null | head -n 1)
[ -n "$spec" ] || fail "the copy has no rocks/luagan-*.rockspec"

step "luarocks make into the fresh tree $tree"
if ! (cd "$tmp/src" && CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
      "${lr[@]}" --tree "$tree" make "$spec") >"$tmp/make.log" 2>&1; then
  tail -n 40 "$tmp/make.log"
  fail "luarocks make"
fi
tail -n 3 "$tmp/make.log"
# the directories of the rockspec's external_dependencies reached CMake as
# existing directories (not an unsubstituted "$(OPENBLAS_LIBDIR)")
cache=$tmp/src/build.luarocks/CMakeCache.txt
[ -f "$cache" ] || fail "no $cache"
for dep in LUA OPENBLAS ZLIB STB PNG JPEG; do
  for kind in INCDIR LIBDIR; do
    val=$(sed -n "s/^${dep}_${kind}:[A-Z]*=//p" "$cache")
    # LuaRocks leaves LUA_LIBDIR empty unless a rock must link liblua (luagan's don't)
    [ "$dep$kind" = LUALIBDIR ] && [ -z "$val" ] && continue
    [ -n "$val" ] && [ -d "$val" ] || fail "CMake got ${dep}_${kind}='$val' from the rockspec"
  done
done
echo "CMake got the rockspec's dependency dirs (OPENBLAS_LIBDIR=$(sed -n 's/^OPENBLAS_LIBDIR:[A-Z]*=//p' "$cache"))"
rockdir=$("${lr[@]}" --tree "$tree" show --rock-dir luagan)
echo "rock dir: $rockdir"
luagan_root() { env -u LUAGAN_ROOT "$tree/bin/luagan" -e 'io.write(require("luagan.config").root)'; }
# the rock's executable reads the rock, not the checkout it was built from
[ "$(luagan_root)" = "$rockdir/share/luagan" ] || fail "luagan's root is '$(luagan_root)' with the checkout present"
rm -rf "$tmp/src"                     # from here on nothing may lean on the source tree
for f in "$tree/bin/luagan" "$tree/share/lua/5.4/luagan/init.lua" "$tree/lib/lua/5.4/luagan/core.so" \
         "$rockdir/share/luagan/scripts/luagan/init.lua" "$rockdir/sdk/include/luagan/lgl.h" \
         "$rockdir/sdk/lib/libluagan_runtime.so.0" "$rockdir/sdk/lib/cmake/luagan/luaganConfig.cmake" \
         "$rockdir/sdk/lib/pkgconfig/luagan.pc"; do
  [ -e "$f" ] || fail "not installed: $f"
done

eval "$("${lr[@]}" --tree "$tree" path)"
export LUA_PATH LUA_CPATH PATH

step "stock lua5.4: require \"luagan\" from the tree and train"
lua5.4 "$here/train_small.lua" "$tree"

step "the installed luagan executable finds scripts/ and models/ in the rock"
exe=$tree/bin/luagan
root=$(luagan_root)
[ "$root" = "$rockdir/share/luagan" ] || fail "luagan's root is '$root', expected '$rockdir/share/luagan'"
env -u LUAGAN_ROOT "$exe" -e '
  local root = require("luagan.config").root
  local p = package.searchpath("luagan", package.path)
  assert(p == root .. "/scripts/luagan/init.lua", "luagan from " .. tostring(p))
  for f in io.popen("ls \"" .. root .. "/models\" 2>/dev/null"):lines() do
    local name = f:match("^(.+)%.lua$")
    if name then
      local m = package.searchpath(name, package.path)
      assert(m == root .. "/models/" .. f, "model " .. name .. " resolves to " .. tostring(m))
      print("model " .. name .. ": " .. m)
    end
  end
  local lg = require "luagan"
  print("luagan " .. lg.version .. " at " .. root .. ": " .. (lg.ones(2, 3) * 2):sum():item())'
"$exe" help >/dev/null || fail "luagan help"

step "C extension against the installed package: CMake (find_package) and pkg-config"
ex=$rockdir/share/luagan/examples
cmake -S "$ex/c_op" -B "$tmp/ext-cmake" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$rockdir/sdk" >"$tmp/ext.log" 2>&1 || { cat "$tmp/ext.log"; fail "cmake (extension)"; }
cmake --build "$tmp/ext-cmake" >>"$tmp/ext.log" 2>&1 || { cat "$tmp/ext.log"; fail "build (extension)"; }
mkdir "$tmp/ext-pc"
# shellcheck disable=SC2046  # pkg-config's flags are meant to split
PKG_CONFIG_PATH=$rockdir/sdk/lib/pkgconfig \
  cc -O2 -std=gnu11 -shared -fPIC -o "$tmp/ext-pc/pixelnorm.so" "$ex/c_op/pixel_norm.c" \
     $(PKG_CONFIG_PATH=$rockdir/sdk/lib/pkgconfig pkg-config --cflags --libs luagan) -lm
for so in "$tmp/ext-cmake/pixelnorm.so" "$tmp/ext-pc/pixelnorm.so"; do
  readelf -d "$so" | grep -q 'NEEDED.*libluagan_lua\.so\.0' || fail "$so does not link libluagan_lua.so.0"
  if readelf -d "$so" | grep -q 'NEEDED.*liblua5\.4'; then fail "$so links liblua (two Lua VMs)"; fi
done

step "the examples' tests: stock lua5.4 + CMake-built module, luagan + pkg-config-built module"
export LUAGAN_EXAMPLES=$ex
LUA_CPATH="$tmp/ext-cmake/?.so;$LUA_CPATH" lua5.4 "$src/tests/lua/run.lua" "$src/tests/lua/test_examples.lua"
LUA_CPATH="$tmp/ext-pc/?.so;$LUA_CPATH" "$exe" "$src/tests/lua/run.lua" "$src/tests/lua/test_examples.lua"

step "the extension loaded before luagan shares its runtime"
LUA_CPATH="$tmp/ext-cmake/?.so;$LUA_CPATH" lua5.4 -e '
  local pn = require "pixelnorm"          -- loads libluagan_{lua,runtime}.so.0 first
  local lg = require "luagan"
  local x = lg.randn(3, 4, {requires_grad = true})
  assert(pn.pixel_norm(x).grad_fn == "pixel_norm")
  assert(lg.no_grad(function() return pn.pixel_norm(x) end).grad_fn == nil, "grad mode not shared")
  local maps = {}
  for line in io.lines("/proc/self/maps") do
    local path = line:match("(/%S*libluagan_runtime%S*)$")
    if path then maps[path] = true end
  end
  local n = 0
  for p in pairs(maps) do n = n + 1; print("mapped: " .. p) end
  assert(n == 1, n .. " copies of libluagan_runtime are mapped")'

step "luarocks remove"
"${lr[@]}" --tree "$tree" remove luagan >/dev/null
if lua5.4 -e 'require "luagan"' 2>/dev/null; then fail "luagan still loads after luarocks remove"; fi
[ ! -e "$tree/bin/luagan" ] || fail "bin/luagan left behind"

echo
echo "test_rock: ok"
