#!/usr/bin/env bash
# tests/fuzz/run.sh: build the libFuzzer harnesses into build-fuzz/ and run
# each for SECONDS with its seed corpus (docs/fuzzing.md).
#
#   bash tests/fuzz/run.sh [options] SECONDS [fuzzer ...]
#
#   fuzzer            safetensors, idx, image (default: all three, one after another)
#   -FLAG=VALUE       passed to libFuzzer, after the defaults so it wins:
#                     -rss_limit_mb=2048 -timeout=10 (also -max_len=N, -seed=N, ...)
#   --keep-going      do not stop at the first finding: fork mode with
#                     -ignore_crashes/-ignore_ooms/-ignore_timeouts, to count them
#   --no-build        run what build-fuzz/ holds
#
# Prints, per fuzzer, the runs, edges (libFuzzer's cov), features (ft) and
# findings (crashes, leaks, timeouts and out-of-memory inputs: every file in
# build-fuzz/findings/NAME/, the reproducers, emptied at the start of its run).
# Exits 1 when any fuzzer found anything. New corpus entries go to
# build-fuzz/corpus/NAME/, never into the seed corpus tests/fuzz/corpus/NAME/.
# Needs clang-14 and libclang-rt-14-dev (libFuzzer), libomp-14-dev (OpenMP).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
here=tests/fuzz
out=build-fuzz
all=(safetensors idx image)

usage() { sed -n '4,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
flags=() names=() keep=0 build=1 secs=""
for a in "$@"; do
  case "$a" in
    --keep-going) keep=1 ;;
    --no-build) build=0 ;;
    -h|--help) usage ;;
    -[a-z]*=*) flags+=("$a") ;;
    *)
      if [ -z "$secs" ]; then
        [[ "$a" =~ ^[0-9]+$ ]] && [ "$a" -gt 0 ] || { echo "run.sh: SECONDS must be a positive integer, got '$a'" >&2; usage; }
        secs=$a
      else
        a=${a#fuzz_}
        [[ " ${all[*]} " == *" $a "* ]] || { echo "run.sh: unknown fuzzer '$a' (expected: ${all[*]})" >&2; exit 2; }
        names+=("$a")
      fi ;;
  esac
done
[ -n "$secs" ] || usage
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")

cc=${LUAGAN_FUZZ_CC:-clang-14}
if [ "$build" = 1 ]; then
  command -v "$cc" >/dev/null || { echo "run.sh: $cc not found: apt-get install clang-14 libclang-rt-14-dev libomp-14-dev" >&2; exit 2; }
  cmake -S . -B "$out" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug -DLUAGAN_FUZZ=ON \
        -DLUAGAN_TESTS=OFF -DLUAGAN_SANITIZE=OFF >/dev/null
  cmake --build "$out" -j"$(nproc 2>/dev/null || echo 2)" --target $(printf 'fuzz_%s ' "${names[@]}")
fi

# The readers are serial; one thread keeps the runs cheap and the reports plain.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# last "cov: N ft: M" of a log; runs from the final stats (or, in fork mode,
# the "#N:" count of the last status line)
stat_of() {   # log key
  case "$2" in
    runs)
      local r
      r=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$1" | tail -1 | grep -o '[0-9]*$' || true)
      [ -n "$r" ] || r=$(grep -oE '^#[0-9]+' "$1" | tail -1 | tr -d '#' || true)
      echo "${r:-?}" ;;
    cov|ft) { grep -oE "$2: [0-9]+" "$1" | tail -1 | grep -oE '[0-9]+$'; } || echo "?" ;;
  esac
}

# The reproducers (the first 30), each run once more and grouped by what
# went wrong: the sanitizer's first line (numbers in it blanked) and the first
# frame in luagan's or stb's code; one example of each group with its report.
report() {   # bin dir
  local f k=0 i lines sig
  local -a sigs=() count=() example=() detail=()
  for f in $(find "$2" -type f | sort); do
    k=$((k + 1))
    [ "$k" -le 30 ] || { echo "   (only the first 30 of $(find "$2" -type f | wc -l) replayed)"; break; }
    lines=$("$1" -rss_limit_mb=2048 -timeout=10 "${flags[@]}" "$f" 2>&1 |
      grep -E 'ERROR: |runtime error|lgfuzz: | in (lg|stbi)_|SUMMARY: ' |
      sed -E 's/==[0-9]+==//; s/0x[0-9a-f]+ //; s/^ +//' | head -6 || true)
    sig=$( { grep -m1 -E 'runtime error|ERROR: |lgfuzz: ' <<<"$lines" |
               sed -E 's/\(malloc\([0-9]+\)\)|\(used: .*//; s/[0-9]{4,}/N/g' || true;
             grep -m1 -E ' in (lg|stbi)_' <<<"$lines" | sed -E 's/^#[0-9]+ //' || true; } | tr '\n' ' ')
    [ -n "$sig" ] || sig="(no report: exit status only)"
    for ((i = 0; i < ${#sigs[@]}; i++)); do [ "${sigs[i]}" = "$sig" ] && break; done
    if [ "$i" -eq "${#sigs[@]}" ]; then
      sigs+=("$sig"); count+=(0); example+=("$f"); detail+=("$lines")
    fi
    count[i]=$((count[i] + 1))
  done
  for ((i = 0; i < ${#sigs[@]}; i++)); do
    echo "   ${count[i]} x ${example[i]} ($(stat -c %s "${example[i]}") bytes) and alike:"
    sed 's/^/       /' <<<"${detail[i]}"
  done
}

status=0
rows=()
for n in "${names[@]}"; do
  bin=$out/tests/fuzz/fuzz_$n
  [ -x "$bin" ] || { echo "run.sh: $bin is not built" >&2; exit 2; }
  mkdir -p "$out/corpus/$n" "$out/logs"
  rm -rf "$out/findings/$n"; mkdir -p "$out/findings/$n"
  log=$out/logs/$n.log
  args=(-max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10
        -artifact_prefix="$out/findings/$n/")
  [ -f "$here/$n.dict" ] && args+=(-dict="$here/$n.dict")
  [ "$keep" = 1 ] && args+=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  args+=("${flags[@]}")
  echo "== fuzz_$n: ${secs}s ${args[*]} (log: $log)"
  set +e
  "$bin" "${args[@]}" "$out/corpus/$n" "$here/corpus/$n" >"$log" 2>&1
  rc=$?
  set -e
  found=$(find "$out/findings/$n" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    status=1
    [ "$found" -gt 0 ] || found="rc=$rc"
    echo "-- fuzz_$n: FOUND SOMETHING (exit $rc):"
    report "$bin" "$out/findings/$n"
  fi
  rows+=("$(printf '%-18s %7s %12s %7s %9s %9s' "fuzz_$n" "$secs" "$(stat_of "$log" runs)" \
             "$(stat_of "$log" cov)" "$(stat_of "$log" ft)" "$found")")
done

printf '\n%-18s %7s %12s %7s %9s %9s\n' fuzzer seconds runs edges features findings
printf '%s\n' "${rows[@]}"
[ "$status" = 0 ] || echo "run.sh: findings above; reproduce one with $out/tests/fuzz/fuzz_NAME FILE" >&2
exit "$status"
