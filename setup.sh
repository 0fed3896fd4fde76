#!/usr/bin/env bash
# setup.sh: install what is missing (Debian 12), build, then run the main job
# or the tests.
#   bash setup.sh          # deps + build + the main job
#   bash setup.sh test     # deps + build + every test (C, Lua, sanitizer build,
#                          # 30 s of each fuzzer in tests/fuzz)
#   bash setup.sh build    # deps + build only
set -euo pipefail
cd "$(dirname "$0")"
what=${1:-main}
jobs=$(nproc 2>/dev/null || echo 2)

# ---- packages ---------------------------------------------------------------
pkgs=(cmake gcc make pkg-config liblua5.4-dev lua5.4 luarocks libopenblas-dev libopenblas0-openmp libstb-dev zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin libreadline-dev)
# the fuzzers of the test run (tests/fuzz/run.sh): clang with libFuzzer and OpenMP
[ "$what" != test ] || pkgs+=(clang-14 libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ---- build ------------------------------------------------------------------
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"

case "$what" in
  build) ;;
  main)
    exec build/luagan run dcgan --out out/dcgan
    ;;
  test)
    # The C and Lua tests again under AddressSanitizer + UBSan (with leak
    # detection), except the slow training tests and the rock install.
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLUAGAN_SANITIZE=ON >/dev/null
    cmake --build build-asan -j"$jobs"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1 \
       ctest -LE 'slow|rock' --output-on-failure -j"$jobs")
    (cd build && ctest --output-on-failure -j"$jobs")
    # The file readers under libFuzzer + ASan/UBSan, 30 s each: must find
    # nothing (docs/fuzzing.md)
    bash tests/fuzz/run.sh 30
    ;;
  *) echo "usage: bash setup.sh [main|test|build]" >&2; exit 2 ;;
esac
